//! Secrets the relay must use itself, kept encrypted in its database: a coach's Stripe
//! restricted key, which `/pay` calls Stripe with. They are encrypted with
//! XChaCha20-Poly1305 under a key derived from the index key, which lives outside the
//! database (see `index`), and bound to the row they belong to, so a copy of the database
//! shows none of them, and a row copied to another coach does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::index::IndexKey;

/// What a stored value starts with: the format's version.
const VERSION: &str = "v1.";
const NONCE_BYTES: usize = 24;

/// Why a stored secret did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AtRestError {
    #[error("the stored secret is not in a format this relay reads")]
    Format,
    /// Another index key, or the value was changed or moved to another row.
    #[error("the stored secret does not open with this relay's index key")]
    Key,
}

/// Encrypts and opens the relay's stored secrets. Its `Debug` shows nothing of the key.
pub struct AtRest(XChaCha20Poly1305);

impl std::fmt::Debug for AtRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AtRest(<redacted>)")
    }
}

impl AtRest {
    pub fn new(index: &IndexKey) -> AtRest {
        let key = index.derive(b"secrets at rest v1");
        AtRest(XChaCha20Poly1305::new(&key.into()))
    }

    /// `secret` encrypted for the row `row` names (`v1.` and hex of nonce, ciphertext and
    /// tag).
    pub fn seal(&self, row: &str, secret: &str) -> String {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let payload = Payload {
            msg: secret.as_bytes(),
            aad: row.as_bytes(),
        };
        let Ok(sealed) = self.0.encrypt(XNonce::from_slice(&nonce), payload) else {
            unreachable!("XChaCha20-Poly1305 encrypts any message shorter than 256 GiB")
        };
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{VERSION}{}", hex::encode(out))
    }

    /// What [`AtRest::seal`] stored for the same `row`.
    pub fn open(&self, row: &str, stored: &str) -> Result<String, AtRestError> {
        let raw = stored
            .strip_prefix(VERSION)
            .and_then(|h| hex::decode(h).ok())
            .filter(|b| b.len() > NONCE_BYTES)
            .ok_or(AtRestError::Format)?;
        let (nonce, sealed) = raw.split_at(NONCE_BYTES);
        let payload = Payload {
            msg: sealed,
            aad: row.as_bytes(),
        };
        let plain = self
            .0
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| AtRestError::Key)?;
        String::from_utf8(plain).map_err(|_| AtRestError::Format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_rest(secret: &str) -> AtRest {
        AtRest::new(&IndexKey::from_configured(secret.as_bytes()).expect("key"))
    }

    #[test]
    fn a_sealed_secret_opens_for_its_row_only_and_shows_nothing() {
        let a = at_rest("an index key of thirty-two characters");
        let stored = a.seal("consumer 7", "rk_test_secret_value");
        assert!(stored.starts_with("v1."));
        assert!(!stored.contains("rk_test"));
        assert_eq!(
            a.open("consumer 7", &stored).as_deref(),
            Ok("rk_test_secret_value")
        );
        assert_eq!(a.open("consumer 8", &stored), Err(AtRestError::Key));
        // A fresh nonce each time: the same secret is stored differently.
        assert_ne!(a.seal("consumer 7", "rk_test_secret_value"), stored);
    }

    #[test]
    fn another_index_key_or_a_changed_value_does_not_open() {
        let a = at_rest("an index key of thirty-two characters");
        let b = at_rest("another index key of thirty-two chars");
        let stored = a.seal("consumer 7", "rk_test_secret_value");
        assert_eq!(b.open("consumer 7", &stored), Err(AtRestError::Key));
        let mut changed = stored.clone().into_bytes();
        let last = changed.len() - 1;
        changed[last] = if changed[last] == b'0' { b'1' } else { b'0' };
        let changed = String::from_utf8(changed).expect("hex");
        assert_eq!(a.open("consumer 7", &changed), Err(AtRestError::Key));
        for bad in ["", "v1.", "v1.zz", "v2.00", "rk_test_plain", "v1.0011"] {
            assert_eq!(a.open("consumer 7", bad), Err(AtRestError::Format), "{bad}");
        }
    }
}
