//! Events are deduplicated by a keyed hash of their provider key, never the key itself.
//!
//! A provider's key names things outside the relay (Stripe's event id, Calendly's invitee
//! URI), so a copy of the database alone must not show them. The hash is HMAC-SHA-256
//! under the relay's index key, which lives outside the database: set by the operator
//! (`index_key`, the same for every process on one PostgreSQL database), or, for one
//! coach on SQLite, made once in a file beside the database. The database keeps a check
//! value of the key, so a relay started with another key refuses to run instead of storing
//! every provider retry a second time.

use std::io::Write;
use std::path::{Path, PathBuf};

use coachdesk_protocol::relay::Provider;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::config::Settings;

/// Shortest configured index key: 128 bits of hex, or more of anything else.
const MIN_CONFIGURED: usize = 32;
/// What the check value is the MAC of.
const CHECK: &[u8] = b"coachdesk-relay index key check";

/// Why the index key is not available.
#[derive(Debug, thiserror::Error)]
pub enum IndexKeyError {
    #[error(
        "a relay on PostgreSQL needs an index key (COACHDESK_RELAY_INDEX_KEY, key `index_key`), \
         the same for every relay process on the database: e.g. `openssl rand -hex 32`"
    )]
    Required,
    #[error("the index key must be at least {MIN_CONFIGURED} characters")]
    TooShort,
    #[error("index key file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("index key file {path} does not hold 64 hex digits; restore it from a backup")]
    Damaged { path: PathBuf },
}

/// A keyed hash of a provider's event key, as stored and served (64 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventKey(String);

impl EventKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The relay's index key. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct IndexKey([u8; 32]);

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(<redacted>)")
    }
}

impl IndexKey {
    /// The configured key, or for SQLite the one in the file beside the database (made
    /// on first start).
    pub fn for_settings(settings: &Settings) -> Result<IndexKey, IndexKeyError> {
        match (&settings.index_key, &settings.database_url) {
            (Some(configured), _) => IndexKey::from_configured(configured.expose()),
            (None, Some(_)) => Err(IndexKeyError::Required),
            (None, None) => IndexKey::from_file(&file_beside(&settings.db)),
        }
    }

    /// A key from the operator's secret, of any length from [`MIN_CONFIGURED`].
    pub fn from_configured(secret: &[u8]) -> Result<IndexKey, IndexKeyError> {
        if secret.len() < MIN_CONFIGURED {
            return Err(IndexKeyError::TooShort);
        }
        Ok(IndexKey(Sha256::digest(secret).into()))
    }

    /// The key in `path`, made (random, readable by the owner only) if there is none.
    pub fn from_file(path: &Path) -> Result<IndexKey, IndexKeyError> {
        let io = |source| IndexKeyError::File {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut key = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut key).map_err(|_| {
                    IndexKeyError::Damaged {
                        path: path.to_owned(),
                    }
                })?;
                Ok(IndexKey(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(io)?;
                file.write_all(hex::encode(key).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io)?;
                Ok(IndexKey(key))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// The stored key of a provider's event key.
    pub fn event_key(&self, provider: Provider, key: &str) -> EventKey {
        EventKey(self.rehash(provider.as_str(), key))
    }

    /// The same, for a row stored before keys were hashed (its provider as stored).
    pub fn rehash(&self, provider: &str, key: &str) -> String {
        self.mac(&[provider.as_bytes(), b"\0", key.as_bytes()])
    }

    /// What the database keeps to recognise the key.
    pub fn check(&self) -> String {
        self.mac(&[CHECK])
    }

    /// A key of its own for another use (`label` names the use), so the operator keeps one
    /// secret outside the database, not one per use.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        self.raw_mac(&[b"derive\0", label])
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        hex::encode(self.raw_mac(parts))
    }

    fn raw_mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            unreachable!("HMAC takes a key of any length")
        };
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// The index key file of the SQLite database at `db`.
pub fn file_beside(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".index-key");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file_beside(&dir.path().join("relay.db"));
        let made = IndexKey::from_file(&path).expect("made");
        let again = IndexKey::from_file(&path).expect("read");
        assert_eq!(made.check(), again.check());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by the owner only");
        }
        std::fs::write(&path, "not hex").expect("damage");
        assert!(matches!(
            IndexKey::from_file(&path),
            Err(IndexKeyError::Damaged { .. })
        ));
    }

    #[test]
    fn hashes_depend_on_the_key_the_provider_and_the_event() {
        let a = IndexKey::from_configured(&[b'a'; 32]).expect("a");
        let b = IndexKey::from_configured(&[b'b'; 32]).expect("b");
        let key = a.event_key(Provider::Stripe, "evt_1");
        assert_eq!(key, a.event_key(Provider::Stripe, "evt_1"));
        assert_eq!(key.as_str(), a.rehash("stripe", "evt_1"));
        assert!(!key.as_str().contains("evt_1"));
        assert_eq!(key.as_str().len(), 64);
        assert_ne!(key, b.event_key(Provider::Stripe, "evt_1"));
        assert_ne!(key, a.event_key(Provider::Calendly, "evt_1"));
        assert_ne!(key, a.event_key(Provider::Stripe, "evt_2"));
        assert_ne!(a.check(), b.check());
        assert!(matches!(
            IndexKey::from_configured(b"short"),
            Err(IndexKeyError::TooShort)
        ));
        assert!(!format!("{a:?}").contains('a'.to_string().repeat(4).as_str()));
    }
}
