//! The app's own settings in the `settings` table: the relay URL, the feature toggles, and
//! which mode (test or live) a database belongs to.
//!
//! Never a secret: the Stripe keys, the Calendly token and the relay token live in the OS
//! keychain. Toggles are stored as `on`/`off` under `feature.*` keys; a missing key means
//! the feature's default ([`Feature::default_on`]: on, except sending Calendly
//! cancellations in test mode).

use coachdesk_views::FieldError;

use crate::{Store, StoreError};

/// The setting holding the relay's base URL.
pub const RELAY_URL_SETTING: &str = "relay.url";
/// The setting naming a Stripe API address other than Stripe's own.
pub const STRIPE_API_BASE_SETTING: &str = "stripe.api_base";
/// The setting naming a Calendly API address other than Calendly's own.
pub const CALENDLY_API_BASE_SETTING: &str = "calendly.api_base";
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
    /// A payment for a booking that had expired or was cancelled is refunded in full.
    LatePaymentRefunds,
    /// In test mode, Calendly events are really cancelled (Calendly has no test mode: a
    /// test database connected to the coach's Calendly would cancel real clients).
    TestModeCalendlyCancels,
}

impl Feature {
    /// Every feature, in the order Settings lists them.
    pub const ALL: [Feature; 5] = [
        Feature::Payments,
        Feature::WebhookProcessing,
        Feature::AutomaticRefunds,
        Feature::LatePaymentRefunds,
        Feature::TestModeCalendlyCancels,
    ];

    /// Whether the feature is on while the coach has not chosen.
    pub fn default_on(self) -> bool {
        !matches!(self, Feature::TestModeCalendlyCancels)
    }

    /// The setting's key.
    pub fn key(self) -> &'static str {
        match self {
            Feature::Payments => "feature.payments",
            Feature::WebhookProcessing => "feature.webhook_processing",
            Feature::AutomaticRefunds => "feature.automatic_refunds",
            Feature::LatePaymentRefunds => "feature.late_payment_refunds",
            Feature::TestModeCalendlyCancels => "feature.test_mode_calendly_cancels",
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

/// The toggles as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub payments: bool,
    pub webhook_processing: bool,
    pub automatic_refunds: bool,
    pub late_payment_refunds: bool,
    pub test_mode_calendly_cancels: bool,
}

impl Default for Features {
    /// Every toggle at its default.
    fn default() -> Self {
        Self {
            payments: Feature::Payments.default_on(),
            webhook_processing: Feature::WebhookProcessing.default_on(),
            automatic_refunds: Feature::AutomaticRefunds.default_on(),
            late_payment_refunds: Feature::LatePaymentRefunds.default_on(),
            test_mode_calendly_cancels: Feature::TestModeCalendlyCancels.default_on(),
        }
    }
}

impl Features {
    /// Whether `feature` is on.
    pub fn enabled(self, feature: Feature) -> bool {
        match feature {
            Feature::Payments => self.payments,
            Feature::WebhookProcessing => self.webhook_processing,
            Feature::AutomaticRefunds => self.automatic_refunds,
            Feature::LatePaymentRefunds => self.late_payment_refunds,
            Feature::TestModeCalendlyCancels => self.test_mode_calendly_cancels,
        }
    }
}

impl Store {
    /// Whether `feature` is on (its default unless the coach chose).
    pub fn feature_enabled(&self, feature: Feature) -> Result<bool, StoreError> {
        match self.setting(feature.key())?.as_deref() {
            None => Ok(feature.default_on()),
            Some("on") => Ok(true),
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
            late_payment_refunds: self.feature_enabled(Feature::LatePaymentRefunds)?,
            test_mode_calendly_cancels: self.feature_enabled(Feature::TestModeCalendlyCancels)?,
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
        let url = check_base_url(url, "relay_url")?;
        self.set_setting(RELAY_URL_SETTING, &url)?;
        Ok(Some(url))
    }

    /// The API address saved under `key` ([`STRIPE_API_BASE_SETTING`] or
    /// [`CALENDLY_API_BASE_SETTING`]), if the coach entered one.
    pub fn api_base(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.setting(key)?.filter(|url| !url.is_empty()))
    }

    /// Saves an API address under `key` (checked like the relay URL, plain `http://` only
    /// to this computer: the secret key travels with every call), or forgets it when `url`
    /// is blank. `field` names the form field an error points at.
    pub fn set_api_base(
        &self,
        key: &str,
        field: &str,
        url: &str,
    ) -> Result<Option<String>, StoreError> {
        let url = url.trim();
        if url.is_empty() {
            self.conn
                .execute("DELETE FROM settings WHERE key = ?1", [key])?;
            return Ok(None);
        }
        let url = check_base_url(url, field)?;
        if url.starts_with("http://") && !is_loopback(&url) {
            return Err(field_error(
                field,
                "Use https:// for a server on another computer: the secret key goes with every call.",
            ));
        }
        self.set_setting(key, &url)?;
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

fn field_error(field: &str, message: &str) -> StoreError {
    StoreError::Invalid(vec![FieldError {
        field: field.into(),
        message: message.into(),
    }])
}

/// Checks a base address (relay, provider API) the way the HTTP clients will use it;
/// answers it without trailing slashes.
fn check_base_url(url: &str, field: &str) -> Result<String, StoreError> {
    let invalid = |message: &str| field_error(field, message);
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| {
            invalid("Start the address with https:// (or http:// for a server on this computer).")
        })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.contains(char::is_whitespace) {
        return Err(invalid(
            "The address needs a host name after https://, with no spaces.",
        ));
    }
    if url.contains(['?', '#']) {
        return Err(invalid(
            "Enter only the base address, without ? or # parts.",
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Whether an `http(s)://host[:port]/...` address names this computer.
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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
                automatic_refunds: true,
                late_payment_refunds: true,
                test_mode_calendly_cancels: false,
            }
        );
        assert_eq!(store.features().unwrap(), Features::default());
        store
            .set_feature(Feature::TestModeCalendlyCancels, true)
            .unwrap();
        assert!(store.features().unwrap().test_mode_calendly_cancels);
        store
            .set_feature(Feature::LatePaymentRefunds, false)
            .unwrap();
        assert!(!store.features().unwrap().late_payment_refunds);
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
    fn api_bases_are_checked_and_plain_http_stays_on_this_computer() {
        let store = Store::open_in_memory().unwrap();
        let key = STRIPE_API_BASE_SETTING;
        assert_eq!(store.api_base(key).unwrap(), None);
        for (url, saved) in [
            (
                "https://stripe-proxy.example.com/",
                "https://stripe-proxy.example.com",
            ),
            ("http://127.0.0.1:4010/", "http://127.0.0.1:4010"),
            ("http://localhost:4010", "http://localhost:4010"),
            ("http://[::1]:4010", "http://[::1]:4010"),
        ] {
            assert_eq!(
                store
                    .set_api_base(key, "stripe_api_base", url)
                    .unwrap()
                    .as_deref(),
                Some(saved)
            );
            assert_eq!(store.api_base(key).unwrap().as_deref(), Some(saved));
        }
        for bad in [
            "http://stripe-proxy.example.com",
            "http://127.0.0.1.example.com",
            "api.stripe.com",
            "https://",
            "https://x.example.com/?a=1",
        ] {
            match store.set_api_base(key, "stripe_api_base", bad) {
                Err(StoreError::Invalid(fields)) => assert_eq!(fields[0].field, "stripe_api_base"),
                other => panic!("{bad:?} should be refused, got {other:?}"),
            }
        }
        assert_eq!(
            store.api_base(key).unwrap().as_deref(),
            Some("http://[::1]:4010"),
            "a refused address leaves the saved one"
        );
        assert_eq!(
            store.set_api_base(key, "stripe_api_base", " ").unwrap(),
            None
        );
        assert_eq!(store.api_base(key).unwrap(), None);
        assert_eq!(store.api_base(CALENDLY_API_BASE_SETTING).unwrap(), None);
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
