//! Secrets in the OS keychain (keyring), never in SQLite, settings or logs.
//!
//! Each secret is read where it is used, just before the call that needs it, and held in a
//! [`Secret`] whose `Debug` and `Display` print `<redacted>`. On Linux the backend is the
//! Secret Service when one answers, else the kernel keyutils session keyring (see
//! [`crate::keychain_backend`]); the latter needs a session keyring
//! (`keyctl session - <command>`), otherwise every read fails with a clear
//! [`SecretError::Backend`]/[`SecretError::Missing`].

use std::fmt;

use thiserror::Error;

use crate::keychain_backend::{keychain_backend, keychain_entry, KeychainBackend};

/// The keychain service name all Coachdesk secrets live under.
pub const SERVICE: &str = "coachdesk";

/// Which secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretName {
    /// The Stripe secret key of test mode (`sk_test_...`).
    StripeTestKey,
    /// The Stripe secret key of live mode (`sk_live_...`).
    StripeLiveKey,
    /// The Calendly personal access token.
    CalendlyToken,
    /// The relay's bearer token for `/v1/events`.
    RelayToken,
    /// The signing key chosen for the Calendly webhook subscription.
    CalendlySigningKey,
    /// The password of the coach's SMTP account (client emails).
    SmtpPassword,
    /// The signing secret (`whsec_...`) of the Stripe webhook endpoint the app created.
    StripeWebhookSecret,
    /// During a rotation, the secret of the endpoint being retired (until it is deleted).
    StripeWebhookPreviousSecret,
    /// This install's private key for events the relay sealed for it (`AGE-SECRET-KEY-1...`).
    RelaySealingKey,
    /// After a new sealing key was made, the one before: it opens what the relay sealed
    /// for it until then.
    RelaySealingKeyPrevious,
    /// The coach's Stripe restricted key (`rk_...`, Checkout Sessions: Write), handed over
    /// to the relay so `/pay` makes each booking its own Checkout Session.
    StripeCheckoutKey,
}

impl SecretName {
    /// The keychain entry's user name.
    pub fn entry(self) -> &'static str {
        match self {
            Self::StripeTestKey => "stripe-secret-key-test",
            Self::StripeLiveKey => "stripe-secret-key-live",
            Self::CalendlyToken => "calendly-token",
            Self::RelayToken => "relay-token",
            Self::CalendlySigningKey => "calendly-signing-key",
            Self::SmtpPassword => "smtp-password",
            Self::StripeWebhookSecret => "stripe-webhook-secret",
            Self::StripeWebhookPreviousSecret => "stripe-webhook-secret-previous",
            Self::RelaySealingKey => "relay-sealing-key",
            Self::RelaySealingKeyPrevious => "relay-sealing-key-previous",
            Self::StripeCheckoutKey => "stripe-checkout-key",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::StripeTestKey => "Stripe test-mode secret key",
            Self::StripeLiveKey => "Stripe live-mode secret key",
            Self::CalendlyToken => "Calendly access token",
            Self::RelayToken => "relay token",
            Self::CalendlySigningKey => "Calendly webhook signing key",
            Self::SmtpPassword => "SMTP password",
            Self::StripeWebhookSecret => "Stripe webhook signing secret",
            Self::StripeWebhookPreviousSecret => "previous Stripe webhook signing secret",
            Self::RelaySealingKey => "relay sealing key",
            Self::RelaySealingKeyPrevious => "previous relay sealing key",
            Self::StripeCheckoutKey => "Stripe restricted key for the relay's Checkout Sessions",
        }
    }
}

/// A secret value; only [`Secret::expose`] shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A secret could not be read or written.
#[derive(Debug, Error)]
pub enum SecretError {
    #[error("the {label} is not in the keychain; enter it in Settings")]
    Missing { label: &'static str },
    #[error("the {label} cannot be stored here")]
    ReadOnly { label: &'static str },
    #[error("the keychain could not be used for the {label}")]
    Backend {
        label: &'static str,
        #[source]
        source: keyring::Error,
    },
}

/// Where secrets are read from. The app uses [`Keychain`]; the trait lets the background
/// tasks take any source without knowing the backend.
pub trait SecretSource: Send + Sync + 'static {
    fn get(&self, name: SecretName) -> Result<Secret, SecretError>;

    /// Stores (or replaces) a secret the app made itself, such as the Calendly signing key.
    /// Read-only sources refuse.
    fn store(&self, name: SecretName, value: &Secret) -> Result<(), SecretError> {
        let _ = value;
        Err(SecretError::ReadOnly {
            label: name.label(),
        })
    }

    /// Removes a secret (the coach's "Remove" in Settings); absent is fine. Read-only
    /// sources refuse.
    fn remove(&self, name: SecretName) -> Result<(), SecretError> {
        Err(SecretError::ReadOnly {
            label: name.label(),
        })
    }

    /// Where the secrets are kept, so Settings can say whether they survive a restart.
    fn storage(&self) -> SecretStorage {
        SecretStorage::Memory
    }
}

/// Where a [`SecretSource`] keeps its secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretStorage {
    /// An OS keychain.
    Keychain(KeychainBackend),
    /// This process's memory (demo mode, tests): gone when the app closes.
    Memory,
}

/// The OS keychain through the keyring crate.
#[derive(Debug, Clone)]
pub struct Keychain {
    service: String,
}

impl Default for Keychain {
    fn default() -> Self {
        Self::new(SERVICE)
    }
}

impl Keychain {
    /// A keychain under `service` (tests use their own service name).
    pub fn new(service: &str) -> Self {
        Self {
            service: service.to_owned(),
        }
    }

    fn entry(&self, name: SecretName) -> Result<keyring::Entry, SecretError> {
        keychain_entry(&self.service, name.entry()).map_err(|source| SecretError::Backend {
            label: name.label(),
            source,
        })
    }

    /// Stores a secret (from the settings page).
    pub fn set(&self, name: SecretName, value: &Secret) -> Result<(), SecretError> {
        self.entry(name)?
            .set_password(value.expose())
            .map_err(|source| SecretError::Backend {
                label: name.label(),
                source,
            })
    }

    /// Removes a secret; absent is fine.
    pub fn delete(&self, name: SecretName) -> Result<(), SecretError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(source) => Err(SecretError::Backend {
                label: name.label(),
                source,
            }),
        }
    }
}

impl SecretSource for Keychain {
    fn get(&self, name: SecretName) -> Result<Secret, SecretError> {
        match self.entry(name)?.get_password() {
            Ok(value) => Ok(Secret(value)),
            Err(keyring::Error::NoEntry) => Err(SecretError::Missing {
                label: name.label(),
            }),
            Err(source) => Err(SecretError::Backend {
                label: name.label(),
                source,
            }),
        }
    }

    fn store(&self, name: SecretName, value: &Secret) -> Result<(), SecretError> {
        self.set(name, value)
    }

    fn remove(&self, name: SecretName) -> Result<(), SecretError> {
        self.delete(name)
    }

    fn storage(&self) -> SecretStorage {
        SecretStorage::Keychain(keychain_backend())
    }
}

/// Secrets held in memory only: the simulator's keys in demo mode, where nothing may touch
/// the coach's real keychain.
#[derive(Debug, Default)]
pub struct MemorySecrets {
    values: std::sync::Mutex<std::collections::HashMap<SecretName, Secret>>,
}

impl MemorySecrets {
    /// Stores (or replaces) a secret.
    pub fn set(&self, name: SecretName, value: Secret) {
        self.values
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name, value);
    }
}

impl SecretSource for MemorySecrets {
    fn get(&self, name: SecretName) -> Result<Secret, SecretError> {
        self.values
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&name)
            .cloned()
            .ok_or(SecretError::Missing {
                label: name.label(),
            })
    }

    fn store(&self, name: SecretName, value: &Secret) -> Result<(), SecretError> {
        self.set(name, value.clone());
        Ok(())
    }

    fn remove(&self, name: SecretName) -> Result<(), SecretError> {
        self.values
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_print_redacted() {
        let s = Secret::new("sk_test_very_secret");
        assert_eq!(format!("{s:?} {s}"), "Secret(<redacted>) <redacted>");
    }

    #[test]
    fn memory_secrets_return_what_was_set_and_name_what_is_missing() {
        let secrets = MemorySecrets::default();
        secrets.set(SecretName::CalendlyToken, Secret::new("tok"));
        assert_eq!(
            secrets.get(SecretName::CalendlyToken).unwrap().expose(),
            "tok"
        );
        let err = secrets.get(SecretName::RelayToken).unwrap_err();
        assert!(err.to_string().contains("relay token"), "{err}");
        secrets.remove(SecretName::CalendlyToken).unwrap();
        secrets.remove(SecretName::CalendlyToken).unwrap();
        assert!(secrets.get(SecretName::CalendlyToken).is_err());
    }
}
