//! Client data sealed for a coach's apps: the relay encrypts each verified webhook body to
//! the public keys of the apps it is for, and only those apps can open it.
//!
//! Envelope encryption, from audited parts:
//! - a random 256-bit data key is wrapped for every app key with age
//!   (<https://c2sp.org/age>, the `age` crate, X25519 recipients: an ephemeral X25519
//!   exchange, HKDF-SHA-256 and ChaCha20-Poly1305 per recipient), once per epoch;
//! - each body is encrypted under the data key with XChaCha20-Poly1305 (RustCrypto's
//!   `chacha20poly1305`) under a random 192-bit nonce, the wrapped key as associated data;
//! - a sealed body carries its wrapped key, so it opens on its own:
//!   `CDS1 | wrapped length (u16, big-endian) | wrapped key | nonce | ciphertext and tag`.
//!
//! Why an epoch and not age per body: the two X25519 operations per body cost a hosted
//! relay 40% of its throughput, and a data key may encrypt far more bodies than a relay
//! receives in an epoch. The data key lives only in the sealing process's memory, for at
//! most [`EPOCH`]; the database and the disk hold it only wrapped. Someone reading a
//! running relay's memory could open that epoch's bodies, which the relay holds in clear
//! anyway while it verifies them. One body is sealed once however many apps may read it,
//! which is what a second device and a key rotation need, and a changed byte fails to open.
//! Bodies sealed by the first version (one age file per body) still open.
//!
//! The relay holds only public keys ([`AppKey`]); each app install keeps its private key
//! ([`AppIdentity`]) in the OS keychain.

use std::io::{Read, Write};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// How long one data key seals bodies before a new one is made and wrapped.
pub const EPOCH: Duration = Duration::from_secs(600);
/// The first bytes of an envelope-sealed body.
const MAGIC: &[u8] = b"CDS1";
const NONCE: usize = 24;
const TAG: usize = 16;

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
    #[error("too many keys to seal for")]
    TooManyKeys,
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

/// Seals bodies for a fixed set of app keys, wrapping a fresh data key for them once per
/// [`EPOCH`]. Shared by the threads that seal for one tenant.
pub struct Sealer {
    to: Vec<AppKey>,
    epoch: Mutex<Option<Arc<Epoch>>>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// One data key, with the header (magic, length, wrapped key) every body sealed under it
/// starts with.
struct Epoch {
    cipher: XChaCha20Poly1305,
    header: Vec<u8>,
    made: Instant,
}

impl Epoch {
    fn new(to: &[AppKey]) -> Result<Epoch, SealError> {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let wrapped = age_seal(&key, to)?;
        let cipher = XChaCha20Poly1305::new(&key.into());
        key.fill(0);
        let len = u16::try_from(wrapped.len()).map_err(|_| SealError::TooManyKeys)?;
        let mut header = Vec::with_capacity(MAGIC.len() + 2 + wrapped.len());
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&len.to_be_bytes());
        header.extend_from_slice(&wrapped);
        Ok(Epoch {
            cipher,
            header,
            made: Instant::now(),
        })
    }
}

impl Sealer {
    /// A sealer for `to`; its first data key is made on first use.
    pub fn new(to: Vec<AppKey>) -> Result<Sealer, SealError> {
        if to.is_empty() {
            return Err(SealError::NoRecipients);
        }
        Ok(Sealer {
            to,
            epoch: Mutex::new(None),
        })
    }

    /// The keys it seals for.
    pub fn keys(&self) -> &[AppKey] {
        &self.to
    }

    /// `body` sealed for every key of the sealer.
    pub fn seal(&self, body: &[u8]) -> Result<Vec<u8>, SealError> {
        let epoch = self.epoch()?;
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(epoch.header.len() + NONCE + body.len() + TAG);
        out.extend_from_slice(&epoch.header);
        out.extend_from_slice(&nonce);
        let at = out.len();
        out.extend_from_slice(body);
        let tag = epoch
            .cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), &epoch.header, &mut out[at..])
            .map_err(|_| SealError::Encrypt("the body could not be encrypted".to_owned()))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// The current data key, or a new one when there is none or it is past its epoch.
    fn epoch(&self) -> Result<Arc<Epoch>, SealError> {
        let mut current = self.epoch.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(epoch) = current.as_ref().filter(|e| e.made.elapsed() < EPOCH) {
            return Ok(epoch.clone());
        }
        let fresh = Arc::new(Epoch::new(&self.to)?);
        *current = Some(fresh.clone());
        Ok(fresh)
    }
}

/// `body` sealed for every key in `to` (a sealer used once).
pub fn seal(body: &[u8], to: &[AppKey]) -> Result<Vec<u8>, SealError> {
    Sealer::new(to.to_vec())?.seal(body)
}

/// `data` as an age file for every key in `to`.
fn age_seal(data: &[u8], to: &[AppKey]) -> Result<Vec<u8>, SealError> {
    let recipients = to.iter().map(|k| &k.0 as &dyn age::Recipient);
    let encryptor = age::Encryptor::with_recipients(recipients)
        .map_err(|e| SealError::Encrypt(e.to_string()))?;
    let mut out = Vec::with_capacity(data.len() + 200 + 100 * to.len());
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|e| SealError::Encrypt(e.to_string()))?;
    writer
        .write_all(data)
        .and_then(|()| writer.finish().map(drop))
        .map_err(|e| SealError::Encrypt(e.to_string()))?;
    Ok(out)
}

/// The body `sealed` holds, with whichever of `identities` it was sealed for.
pub fn open(sealed: &[u8], identities: &[&AppIdentity]) -> Result<Vec<u8>, OpenError> {
    let Some(rest) = sealed.strip_prefix(MAGIC) else {
        // The first version's format: one age file per body.
        return age_open(sealed, identities);
    };
    let (len, rest) = rest.split_first_chunk::<2>().ok_or(OpenError::Damaged)?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len + NONCE + TAG {
        return Err(OpenError::Damaged);
    }
    let (wrapped, rest) = rest.split_at(len);
    let header = &sealed[..MAGIC.len() + 2 + len];
    let key: [u8; 32] = age_open(wrapped, identities)?
        .try_into()
        .map_err(|_| OpenError::Damaged)?;
    let (nonce, rest) = rest.split_at(NONCE);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG);
    let mut body = ciphertext.to_vec();
    XChaCha20Poly1305::new(&key.into())
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            header,
            &mut body,
            Tag::from_slice(tag),
        )
        .map_err(|_| OpenError::Damaged)?;
    Ok(body)
}

/// What an age file holds, with whichever of `identities` it was made for.
fn age_open(file: &[u8], identities: &[&AppIdentity]) -> Result<Vec<u8>, OpenError> {
    let decryptor = age::Decryptor::new_buffered(file).map_err(|_| OpenError::Damaged)?;
    let mut reader = decryptor
        .decrypt(identities.iter().map(|i| &i.0 as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => OpenError::NotForUs,
            _ => OpenError::Damaged,
        })?;
    let mut data = Vec::with_capacity(file.len());
    reader
        .read_to_end(&mut data)
        .map_err(|_| OpenError::Damaged)?;
    Ok(data)
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
    fn one_data_key_is_wrapped_per_epoch_and_each_body_has_its_own_nonce() {
        let me = AppIdentity::generate();
        let sealer = Sealer::new(vec![me.public()]).expect("sealer");
        let (a, b) = (sealer.seal(BODY).expect("a"), sealer.seal(BODY).expect("b"));
        let header = MAGIC.len() + 2 + usize::from(u16::from_be_bytes([a[4], a[5]]));
        assert_eq!(a[..header], b[..header], "the wrapped key is made once");
        assert_ne!(a[header..], b[header..], "nonce and ciphertext differ");
        assert_eq!(open(&a, &[&me]).expect("a"), BODY);
        assert_eq!(open(&b, &[&me]).expect("b"), BODY);
        // Another sealer (another tenant, or the same after a key change) has another key.
        // (Its wrapped key may differ in length too: compare each whole header.)
        let other = Sealer::new(vec![me.public()]).expect("other").seal(BODY);
        let other = other.expect("other");
        let other_header = MAGIC.len() + 2 + usize::from(u16::from_be_bytes([other[4], other[5]]));
        assert_ne!(other[..other_header], a[..header]);
    }

    #[test]
    fn bodies_sealed_by_the_first_version_still_open() {
        let me = AppIdentity::generate();
        let first_version = age_seal(BODY, &[me.public()]).expect("age file");
        assert_eq!(open(&first_version, &[&me]).expect("open"), BODY);
    }

    #[test]
    fn a_changed_header_or_a_cut_body_does_not_open() {
        let me = AppIdentity::generate();
        let sealed = seal(BODY, &[me.public()]).expect("seal");
        let header = MAGIC.len() + 2 + usize::from(u16::from_be_bytes([sealed[4], sealed[5]]));
        for cut in [5, header, header + NONCE, sealed.len() - 1] {
            assert!(
                matches!(open(&sealed[..cut], &[&me]), Err(OpenError::Damaged)),
                "{cut}"
            );
        }
        let mut nonce_changed = sealed.clone();
        nonce_changed[header] ^= 1;
        assert!(matches!(
            open(&nonce_changed, &[&me]),
            Err(OpenError::Damaged)
        ));
        let mut length_changed = sealed.clone();
        length_changed[5] ^= 1;
        assert!(open(&length_changed, &[&me]).is_err());
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
