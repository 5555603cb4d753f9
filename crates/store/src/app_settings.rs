//! The app's own settings in the `settings` table: the relay URL, the feature toggles, and
//! which mode (test or live) a database belongs to.
//!
//! Never a secret: the Stripe keys, the Calendly token and the relay token live in the OS
//! keychain. Toggles are stored as `on`/`off` under `feature.*` keys; a missing key means
//! the feature is on (a new database works as before the toggles existed).

use coachdesk_protocol::ipc::FieldError;

use crate::{Store, StoreError};

/// The setting holding the relay's base URL.
pub const RELAY_URL_SETTING: &str = "relay.url";
/// The setting naming the mode a database was first opened in (`test`, `live`, `demo`).
pub const MODE_SETTING: &str = "app.mode";

/// A switch the coach can turn off in Settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// Checkout sessions and payment links are created at Stripe.
    Payments,
    /// The relay is pulled: webhooks are applied as they arrive.
    WebhookProcessing,
    /// Refunds that follow from a client's cancellation are issued without asking.
    AutomaticRefunds,
}

impl Feature {
    /// Every feature, in the order Settings lists them.
    pub const ALL: [Feature; 3] = [
        Feature::Payments,
        Feature::WebhookProcessing,
        Feature::AutomaticRefunds,
    ];

    /// The setting's key.
    pub fn key(self) -> &'static str {
        match self {
            Feature::Payments => "feature.payments",
            Feature::WebhookProcessing => "feature.webhook_processing",
            Feature::AutomaticRefunds => "feature.automatic_refunds",
        }
    }

    /// The name on the wire (`payments`, `webhook_processing`, `automatic_refunds`).
    pub fn name(self) -> &'static str {
        &self.key()["feature.".len()..]
    }

    /// The feature named `name` on the wire.
    pub fn from_name(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// The three toggles as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub payments: bool,
    pub webhook_processing: bool,
    pub automatic_refunds: bool,
}

impl Features {
    /// Whether `feature` is on.
    pub fn enabled(self, feature: Feature) -> bool {
        match feature {
            Feature::Payments => self.payments,
            Feature::WebhookProcessing => self.webhook_processing,
            Feature::AutomaticRefunds => self.automatic_refunds,
        }
    }
}

impl Store {
    /// Whether `feature` is on (on unless the coach turned it off).
    pub fn feature_enabled(&self, feature: Feature) -> Result<bool, StoreError> {
        match self.setting(feature.key())?.as_deref() {
            None | Some("on") => Ok(true),
            Some("off") => Ok(false),
            Some(other) => Err(StoreError::Corrupt(format!(
                "the setting {} holds {other:?}, expected \"on\" or \"off\"",
                feature.key()
            ))),
        }
    }

    /// All toggles at once.
    pub fn features(&self) -> Result<Features, StoreError> {
        Ok(Features {
            payments: self.feature_enabled(Feature::Payments)?,
            webhook_processing: self.feature_enabled(Feature::WebhookProcessing)?,
            automatic_refunds: self.feature_enabled(Feature::AutomaticRefunds)?,
        })
    }

    /// Turns `feature` on or off.
    pub fn set_feature(&self, feature: Feature, on: bool) -> Result<(), StoreError> {
        self.set_setting(feature.key(), if on { "on" } else { "off" })
    }

    /// The relay's base URL, if the coach entered one.
    pub fn relay_url(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .setting(RELAY_URL_SETTING)?
            .filter(|url| !url.is_empty()))
    }

    /// Saves the relay's base URL after checking it is an `http(s)://host...` address
    /// (trailing slashes dropped), or forgets it when `url` is blank. Returns what was saved.
    pub fn set_relay_url(&self, url: &str) -> Result<Option<String>, StoreError> {
        let url = url.trim();
        if url.is_empty() {
            self.conn
                .execute("DELETE FROM settings WHERE key = ?1", [RELAY_URL_SETTING])?;
            return Ok(None);
        }
        let url = check_relay_url(url)?;
        self.set_setting(RELAY_URL_SETTING, &url)?;
        Ok(Some(url))
    }

    /// Records that this database belongs to `mode`, or refuses when it already belongs to
    /// another one: test and live data never share a file.
    pub fn claim_mode(&self, mode: &str) -> Result<(), StoreError> {
        match self.setting(MODE_SETTING)? {
            None => self.set_setting(MODE_SETTING, mode),
            Some(owner) if owner == mode => Ok(()),
            Some(owner) => Err(StoreError::Conflict(format!(
                "this database holds {owner}-mode data and cannot be opened in {mode} mode; \
                 each mode keeps its own database file"
            ))),
        }
    }
}

/// Checks a relay URL the way the sync client will use it.
fn check_relay_url(url: &str) -> Result<String, StoreError> {
    let invalid = |message: &str| {
        StoreError::Invalid(vec![FieldError {
            field: "relay_url".into(),
            message: message.into(),
        }])
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            invalid("Start the address with https:// (or http:// for a relay on this computer).")
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.contains(char::is_whitespace) {
        return Err(invalid(
            "The address needs a host name after https://, with no spaces.",
        ));
    }
    if url.contains(['?', '#']) {
        return Err(invalid(
            "Enter only the relay's base address, without ? or # parts.",
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_on_until_turned_off_and_round_trip() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(
            store.features().unwrap(),
            Features {
                payments: true,
                webhook_processing: true,
                automatic_refunds: true
            }
        );
        store.set_feature(Feature::AutomaticRefunds, false).unwrap();
        let features = store.features().unwrap();
        assert!(!features.automatic_refunds);
        assert!(features.payments && features.webhook_processing);
        assert!(!store.feature_enabled(Feature::AutomaticRefunds).unwrap());
        store.set_feature(Feature::AutomaticRefunds, true).unwrap();
        assert!(store.feature_enabled(Feature::AutomaticRefunds).unwrap());
    }

    #[test]
    fn feature_names_round_trip() {
        for feature in Feature::ALL {
            assert_eq!(Feature::from_name(feature.name()), Some(feature));
        }
        assert_eq!(
            Feature::from_name("automatic_refunds"),
            Some(Feature::AutomaticRefunds)
        );
        assert_eq!(Feature::from_name("refunds"), None);
    }

    #[test]
    fn a_garbled_toggle_is_reported_not_guessed() {
        let store = Store::open_in_memory().unwrap();
        store.set_setting("feature.payments", "maybe").unwrap();
        assert!(store.feature_enabled(Feature::Payments).is_err());
    }

    #[test]
    fn relay_url_is_checked_trimmed_and_cleared() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.relay_url().unwrap(), None);
        assert_eq!(
            store
                .set_relay_url(" https://relay.example.com/ ")
                .unwrap()
                .as_deref(),
            Some("https://relay.example.com")
        );
        assert_eq!(
            store.relay_url().unwrap().as_deref(),
            Some("https://relay.example.com")
        );
        for bad in [
            "relay.example.com",
            "ftp://x",
            "https://",
            "https://a b",
            "https://x/?a=1",
        ] {
            match store.set_relay_url(bad) {
                Err(StoreError::Invalid(fields)) => assert_eq!(fields[0].field, "relay_url"),
                other => panic!("{bad:?} should be refused, got {other:?}"),
            }
        }
        // A refused value leaves the saved one alone.
        assert_eq!(
            store.relay_url().unwrap().as_deref(),
            Some("https://relay.example.com")
        );
        assert_eq!(store.set_relay_url("  ").unwrap(), None);
        assert_eq!(store.relay_url().unwrap(), None);
    }

    #[test]
    fn a_database_belongs_to_one_mode() {
        let store = Store::open_in_memory().unwrap();
        store.claim_mode("test").unwrap();
        store.claim_mode("test").unwrap();
        let err = store.claim_mode("live").unwrap_err();
        assert!(err.to_string().contains("test-mode data"), "{err}");
    }
}
