//! Client data sealed for a coach's apps: the relay encrypts each verified webhook body to
//! the public keys of the apps it is for, and only those apps can open it.
//!
//! The construction is age's (<https://c2sp.org/age>), through the `age` crate, with
//! X25519 recipients: a random file key per body, wrapped for each recipient with an
//! ephemeral X25519 exchange and HKDF-SHA-256, and the body encrypted with
//! ChaCha20-Poly1305 in age's STREAM. One body is sealed once however many apps may read
//! it (each gets a ~100-byte stanza), which is what a second device and a key rotation
//! need. A sealed body is tamper-evident: a changed byte fails to open.
//!
//! The relay holds only public keys ([`AppKey`]); each app install keeps its private key
//! ([`AppIdentity`]) in the OS keychain.

use std::io::{Read, Write};
use std::str::FromStr;

use age::secrecy::ExposeSecret;

/// An app install's public key, as an age recipient (`age1...`).
#[derive(Clone)]
pub struct AppKey(age::x25519::Recipient);

impl AppKey {
    /// The key as registered and stored (`age1` and bech32).
    pub fn as_string(&self) -> String {
        self.0.to_string()
    }
}

impl FromStr for AppKey {
    type Err = SealError;

    fn from_str(s: &str) -> Result<AppKey, SealError> {
        age::x25519::Recipient::from_str(s.trim())
            .map(AppKey)
            .map_err(|_| SealError::BadKey)
    }
}

impl PartialEq for AppKey {
    fn eq(&self, other: &AppKey) -> bool {
        self.as_string() == other.as_string()
    }
}

impl Eq for AppKey {}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppKey({})", self.as_string())
    }
}

/// An app install's private key. Its `Debug` shows only the public half.
pub struct AppIdentity(age::x25519::Identity);

impl AppIdentity {
    /// A new random key pair.
    pub fn generate() -> AppIdentity {
        AppIdentity(age::x25519::Identity::generate())
    }

    /// The public half, to register with the relay.
    pub fn public(&self) -> AppKey {
        AppKey(self.0.to_public())
    }

    /// The private key as kept in the keychain (`AGE-SECRET-KEY-1...`). Handle as a secret.
    pub fn to_secret_string(&self) -> String {
        self.0.to_string().expose_secret().to_owned()
    }

    /// A private key as kept in the keychain.
    pub fn from_secret_str(s: &str) -> Result<AppIdentity, SealError> {
        age::x25519::Identity::from_str(s.trim())
            .map(AppIdentity)
            .map_err(|_| SealError::BadKey)
    }
}

impl std::fmt::Debug for AppIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AppIdentity(public {})", self.public().as_string())
    }
}

/// Why a key could not be read or a body not sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("not an age X25519 key")]
    BadKey,
    #[error("no key to seal for")]
    NoRecipients,
    #[error("sealing failed: {0}")]
    Encrypt(String),
}

/// Why a sealed body could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Sealed for other keys only: this app's key was not registered when it arrived (or
    /// the key was lost). Its content can be recovered from the providers' APIs.
    #[error("sealed for other keys than this app's")]
    NotForUs,
    /// Not a sealed body, or changed since it was sealed.
    #[error("the sealed body is damaged")]
    Damaged,
}

/// `body` sealed for every key in `to`.
pub fn seal(body: &[u8], to: &[AppKey]) -> Result<Vec<u8>, SealError> {
    if to.is_empty() {
        return Err(SealError::NoRecipients);
    }
    let recipients = to.iter().map(|k| &k.0 as &dyn age::Recipient);
    let encryptor = age::Encryptor::with_recipients(recipients)
        .map_err(|e| SealError::Encrypt(e.to_string()))?;
    let mut out = Vec::with_capacity(body.len() + 200 + 100 * to.len());
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|e| SealError::Encrypt(e.to_string()))?;
    writer
        .write_all(body)
        .and_then(|()| writer.finish().map(drop))
        .map_err(|e| SealError::Encrypt(e.to_string()))?;
    Ok(out)
}

/// The body `sealed` holds, with whichever of `identities` it was sealed for.
pub fn open(sealed: &[u8], identities: &[&AppIdentity]) -> Result<Vec<u8>, OpenError> {
    let decryptor = age::Decryptor::new_buffered(sealed).map_err(|_| OpenError::Damaged)?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| &i.0 as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => OpenError::NotForUs,
            _ => OpenError::Damaged,
        })?;
    let mut body = Vec::with_capacity(sealed.len());
    reader
        .read_to_end(&mut body)
        .map_err(|_| OpenError::Damaged)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"name":"Ann Client","email":"ann@example.com","amount_total":15000}"#;

    #[test]
    fn a_body_opens_for_each_of_its_keys_and_no_other() {
        let (laptop, phone, stranger) = (
            AppIdentity::generate(),
            AppIdentity::generate(),
            AppIdentity::generate(),
        );
        let sealed = seal(BODY, &[laptop.public(), phone.public()]).expect("seal");
        for needle in [&b"Ann Client"[..], b"ann@example.com", b"15000"] {
            assert!(!sealed.windows(needle.len()).any(|w| w == needle));
        }
        assert_eq!(open(&sealed, &[&laptop]).expect("laptop"), BODY);
        assert_eq!(open(&sealed, &[&phone]).expect("phone"), BODY);
        assert!(matches!(
            open(&sealed, &[&stranger]),
            Err(OpenError::NotForUs)
        ));
        // A rotated key still opens what was sealed for the one before.
        assert_eq!(open(&sealed, &[&stranger, &laptop]).expect("rotated"), BODY);
    }

    #[test]
    fn damaged_or_foreign_bytes_do_not_open() {
        let me = AppIdentity::generate();
        let mut sealed = seal(BODY, &[me.public()]).expect("seal");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(open(&sealed, &[&me]), Err(OpenError::Damaged)));
        assert!(matches!(open(BODY, &[&me]), Err(OpenError::Damaged)));
        assert!(matches!(seal(BODY, &[]), Err(SealError::NoRecipients)));
    }

    #[test]
    fn keys_round_trip_through_their_text() {
        let me = AppIdentity::generate();
        let again = AppIdentity::from_secret_str(&me.to_secret_string()).expect("identity");
        assert_eq!(again.public(), me.public());
        let public: AppKey = me.public().as_string().parse().expect("key");
        assert_eq!(public, me.public());
        assert!(public.as_string().starts_with("age1"));
        assert!("age1nonsense".parse::<AppKey>().is_err());
        assert!(AppIdentity::from_secret_str("AGE-SECRET-KEY-1X").is_err());
        assert!(!format!("{me:?}").contains("SECRET"));
    }
}
