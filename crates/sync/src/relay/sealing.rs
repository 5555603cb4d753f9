//! Events sealed for this app install (see `coachdesk_seal`): its key pair, the public
//! half registered with the relay, and opening what it pulls.
//!
//! The private key is made on first use and kept in the keychain, never in SQLite. Once
//! registered, the relay keeps only sealed copies of the coach's webhooks. An event sealed
//! for keys this install does not hold (a key lost with a wiped keychain, or events that
//! arrived before a second device registered) cannot be opened: it is left out of the page
//! and reconciliation with Stripe and Calendly recovers what it said.
//!
//! A new key can be made at any time ([`rotate`], the coach's "New sealing key"): the relay
//! seals for it from its registration on, and the key before it stays in the keychain to
//! open what was sealed for it until then. The key before that one is forgotten.

use base64::Engine as _;
use coachdesk_protocol::relay::{AppKeysRequest, EventsPage};
use coachdesk_providers::ProviderError;
use coachdesk_seal::{AppIdentity, OpenError};

use super::{RelayClient, RelayStatus};
use crate::secrets::{Secret, SecretError, SecretName, SecretSource};
use crate::SyncError;

/// This install's sealing key, from the keychain; made and kept there on first use. A
/// made key is read back before it is used, so a key the keychain did not keep is never
/// registered (events sealed for it could not be opened).
pub fn identity(secrets: &dyn SecretSource) -> Result<AppIdentity, SyncError> {
    match secrets.get(SecretName::RelaySealingKey) {
        Ok(kept) => AppIdentity::from_secret_str(kept.expose()).map_err(|_| {
            SyncError::Setup("the relay sealing key in the keychain is damaged".into())
        }),
        Err(SecretError::Missing { .. }) => {
            let made = AppIdentity::generate();
            secrets.store(
                SecretName::RelaySealingKey,
                &Secret::new(made.to_secret_string()),
            )?;
            let kept = secrets.get(SecretName::RelaySealingKey)?;
            AppIdentity::from_secret_str(kept.expose()).map_err(|_| {
                SyncError::Setup("the keychain did not keep the relay sealing key".into())
            })
        }
        Err(other) => Err(other.into()),
    }
}

/// This install's sealing keys: the one the relay seals for, and the one before it.
pub struct Keys {
    pub current: AppIdentity,
    pub previous: Option<AppIdentity>,
}

impl Keys {
    /// The keys that may open a pulled event, current first.
    pub fn all(&self) -> Vec<&AppIdentity> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .collect()
    }
}

/// This install's keys: the current one (made on first use, see [`identity`]) and the one
/// before it, if a new key was made. A damaged previous key is left out: what was sealed
/// for it is recovered by reconciliation.
pub fn keys(secrets: &dyn SecretSource) -> Result<Keys, SyncError> {
    let current = identity(secrets)?;
    let previous = match secrets.get(SecretName::RelaySealingKeyPrevious) {
        Ok(kept) => match AppIdentity::from_secret_str(kept.expose()) {
            Ok(previous) => Some(previous),
            Err(_) => {
                tracing::warn!(
                    "the previous relay sealing key in the keychain is damaged; left out"
                );
                None
            }
        },
        Err(SecretError::Missing { .. }) => None,
        Err(other) => return Err(other.into()),
    };
    Ok(Keys { current, previous })
}

/// Makes a new key for this install; the current one becomes the previous one. The old key
/// is written to its new place first, so a crash in between leaves it in both places.
/// Returns the keys as the keychain kept them.
pub fn rotate(secrets: &dyn SecretSource) -> Result<Keys, SyncError> {
    let old = identity(secrets)?;
    secrets.store(
        SecretName::RelaySealingKeyPrevious,
        &Secret::new(old.to_secret_string()),
    )?;
    let made = AppIdentity::generate();
    secrets.store(
        SecretName::RelaySealingKey,
        &Secret::new(made.to_secret_string()),
    )?;
    let kept = keys(secrets)?;
    if kept.current.public() != made.public() {
        return Err(SyncError::Setup(
            "the keychain did not keep the new relay sealing key".into(),
        ));
    }
    Ok(kept)
}

/// What the relay said to a key registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct Registered {
    /// App keys of this coach the relay seals for.
    pub kept: usize,
    /// Events waiting for this install that were sealed before this registration.
    pub sealed_before: i64,
}

impl RelayClient {
    /// Registers this install's public keys (`PUT /v1/app-keys`). `None` from a relay of
    /// before sealing (404): it stores bodies as they came, and pulls carry them readable.
    pub async fn put_app_keys(
        &self,
        token: &str,
        keys: &[String],
    ) -> Result<Option<Registered>, ProviderError> {
        let request = AppKeysRequest {
            keys: keys.to_vec(),
        };
        let (status, text) = self.put(token, "app-keys", &request).await?;
        match status {
            200 => serde_json::from_str(&text)
                .map(Some)
                .map_err(|_| ProviderError::from_relay_status(status, text)),
            404 => Ok(None),
            _ => Err(ProviderError::from_relay_status(status, text)),
        }
    }
}

/// Moves the cursor past `seq` (the newest event left out as unreadable) if it stands
/// before it, so the page's unreadable tail is not pulled again.
pub fn pass(
    store: &std::sync::Arc<std::sync::Mutex<coachdesk_store::Store>>,
    seq: i64,
) -> Result<(), SyncError> {
    let store = crate::lock(store);
    if super::cursor(&store)? < seq {
        store.set_setting(super::RELAY_CURSOR, &seq.to_string())?;
    }
    Ok(())
}

/// Opens the page's sealed events in place. Returns the sequence numbers of those sealed
/// for other keys only, or damaged; they are left out of the page (its cursor still
/// passes them, so they are acknowledged), and their content comes back through
/// reconciliation.
pub fn open_page(page: &mut EventsPage, keys: Option<&Keys>) -> Vec<i64> {
    let mine: Vec<&AppIdentity> = keys.map(Keys::all).unwrap_or_default();
    let mut unreadable = Vec::new();
    page.events.retain_mut(|event| {
        let Some(sealed) = event.sealed.take() else {
            return true;
        };
        let opened = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| OpenError::Damaged)
            .and_then(|bytes| coachdesk_seal::open(&bytes, &mine))
            .and_then(|body| String::from_utf8(body).map_err(|_| OpenError::Damaged));
        match opened {
            Ok(body) => {
                event.body = body;
                true
            }
            Err(why) => {
                tracing::warn!(seq = event.seq, %why, "a sealed event cannot be opened here; reconciliation recovers it");
                unreadable.push(event.seq);
                false
            }
        }
    });
    unreadable
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemorySecrets;
    use coachdesk_protocol::relay::{Provider, PulledEvent};

    fn event(seq: i64, body: &str, sealed: Option<Vec<u8>>) -> PulledEvent {
        PulledEvent {
            seq,
            provider: Provider::Stripe,
            key: format!("evt_{seq}"),
            received_at: "2026-12-06T00:00:00Z".into(),
            body: body.into(),
            sealed: sealed.map(|s| base64::engine::general_purpose::STANDARD.encode(s)),
        }
    }

    #[test]
    fn the_key_is_made_once_and_kept() {
        let secrets = MemorySecrets::default();
        let first = identity(&secrets).expect("made");
        let again = identity(&secrets).expect("kept");
        assert_eq!(first.public(), again.public());
    }

    #[test]
    fn a_page_opens_what_is_sealed_for_this_install_and_sets_aside_the_rest() {
        let (me, other) = (AppIdentity::generate(), AppIdentity::generate());
        let seal = |body: &str, to: &AppIdentity| {
            coachdesk_seal::seal(body.as_bytes(), &[to.public()]).expect("seal")
        };
        let mut page = EventsPage {
            events: vec![
                event(1, r#"{"id":"evt_1"}"#, None),
                event(2, "", Some(seal(r#"{"id":"evt_2"}"#, &me))),
                event(3, "", Some(seal(r#"{"id":"evt_3"}"#, &other))),
                event(4, "", Some(b"not sealed".to_vec())),
            ],
            relay_id: None,
        };
        let mut without_key = page.clone();
        let mine = Keys {
            current: me,
            previous: None,
        };
        assert_eq!(open_page(&mut page, Some(&mine)), vec![3, 4]);
        let bodies: Vec<(i64, &str)> = page
            .events
            .iter()
            .map(|e| (e.seq, e.body.as_str()))
            .collect();
        assert_eq!(
            bodies,
            vec![(1, r#"{"id":"evt_1"}"#), (2, r#"{"id":"evt_2"}"#)]
        );
        assert_eq!(open_page(&mut without_key, None), vec![2, 3, 4]);
    }

    #[test]
    fn a_new_key_keeps_the_one_before_to_open_what_was_sealed_for_it() {
        let secrets = MemorySecrets::default();
        let first = identity(&secrets).expect("made");
        let seal = |body: &str, to: &AppIdentity| {
            let sealed = coachdesk_seal::seal(body.as_bytes(), &[to.public()]).expect("seal");
            event(0, "", Some(sealed))
        };
        let before = seal(r#"{"id":"evt_before"}"#, &first);

        let rotated = rotate(&secrets).expect("rotated");
        assert_ne!(rotated.current.public(), first.public());
        assert_eq!(
            rotated.previous.as_ref().map(AppIdentity::public),
            Some(first.public())
        );
        let after = seal(r#"{"id":"evt_after"}"#, &rotated.current);
        let mut page = EventsPage {
            events: vec![before.clone(), after],
            relay_id: None,
        };
        assert!(open_page(&mut page, Some(&keys(&secrets).expect("keys"))).is_empty());

        // A second new key forgets the first: what was sealed for it is set aside.
        rotate(&secrets).expect("again");
        let mut page = EventsPage {
            events: vec![before],
            relay_id: None,
        };
        assert_eq!(
            open_page(&mut page, Some(&keys(&secrets).expect("keys"))),
            vec![0]
        );
    }
}
