//! Which OS keychain holds Coachdesk's secrets on this machine.
//!
//! On Linux the Secret Service (GNOME Keyring, KWallet) keeps secrets across a restart;
//! the kernel keyutils session keyring forgets them when the machine stops, so it is only
//! the fallback when no Secret Service answers (a headless machine, a test run), and
//! Settings warns about it. macOS and Windows use their own stores (Keychain, Credential
//! Manager). The choice is made once per process, at the first secret it touches.

use std::sync::OnceLock;

/// Where secrets live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeychainBackend {
    /// The Secret Service over D-Bus (GNOME Keyring, KWallet).
    SecretService,
    /// The kernel's session keyring: gone at the next restart.
    KernelSession,
    /// The platform's own store (macOS Keychain, Windows Credential Manager).
    Native,
}

impl KeychainBackend {
    /// Whether a secret saved here is still there after the machine restarts.
    pub fn survives_restart(self) -> bool {
        !matches!(self, Self::KernelSession)
    }

    /// What Settings and the diagnostics call it.
    pub fn name(self) -> &'static str {
        match self {
            Self::SecretService => "Secret Service (GNOME Keyring, KWallet)",
            Self::KernelSession => "kernel session keyring",
            Self::Native if cfg!(target_os = "macos") => "macOS Keychain",
            Self::Native if cfg!(target_os = "windows") => "Windows Credential Manager",
            Self::Native => "the system keychain",
        }
    }
}

/// The backend of this process, chosen at the first call.
pub fn keychain_backend() -> KeychainBackend {
    static CHOSEN: OnceLock<KeychainBackend> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let chosen = choose();
        if chosen.survives_restart() {
            tracing::info!(keychain = chosen.name(), "secrets are kept in the keychain");
        } else {
            tracing::warn!(
                keychain = chosen.name(),
                "no Secret Service answered: secrets are kept in the kernel keyring and will not survive a restart"
            );
        }
        chosen
    })
}

/// The keychain entry `user` under `service`, in this process's backend.
pub fn keychain_entry(service: &str, user: &str) -> keyring::Result<keyring::Entry> {
    entry_in(keychain_backend(), service, user)
}

#[cfg(target_os = "linux")]
fn entry_in(
    backend: KeychainBackend,
    service: &str,
    user: &str,
) -> keyring::Result<keyring::Entry> {
    use keyring::{keyutils::KeyutilsCredential, secret_service::SsCredential};
    Ok(match backend {
        KeychainBackend::KernelSession => keyring::Entry::new_with_credential(Box::new(
            KeyutilsCredential::new_with_target(None, service, user)?,
        )),
        KeychainBackend::SecretService | KeychainBackend::Native => {
            keyring::Entry::new_with_credential(Box::new(SsCredential::new_with_target(
                None, service, user,
            )?))
        }
    })
}

#[cfg(not(target_os = "linux"))]
fn entry_in(
    _backend: KeychainBackend,
    service: &str,
    user: &str,
) -> keyring::Result<keyring::Entry> {
    keyring::Entry::new(service, user)
}

#[cfg(target_os = "linux")]
fn choose() -> KeychainBackend {
    if secret_service_answers() {
        KeychainBackend::SecretService
    } else {
        KeychainBackend::KernelSession
    }
}

#[cfg(not(target_os = "linux"))]
fn choose() -> KeychainBackend {
    KeychainBackend::Native
}

/// A Secret Service runs on the session bus and has a default collection (the login
/// keyring) to keep secrets in. Without a session bus address nothing is tried: libdbus
/// would otherwise autolaunch a private bus on an X display, whose freshly activated
/// keyring has no collection and would prompt for one.
#[cfg(target_os = "linux")]
fn secret_service_answers() -> bool {
    use dbus_secret_service::{EncryptionType, SecretService};
    let has_address = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty())
        || std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|dir| std::path::Path::new(&dir).join("bus").exists());
    if !has_address {
        return false;
    }
    match SecretService::connect(EncryptionType::Plain) {
        Ok(service) => match service.get_default_collection() {
            Ok(_) => true,
            Err(err) => {
                tracing::info!(error = %err, "the Secret Service has no default collection");
                false
            }
        },
        Err(err) => {
            tracing::info!(error = %err, "no Secret Service on the session bus");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_kernel_keyring_forgets_at_restart() {
        assert!(!KeychainBackend::KernelSession.survives_restart());
        assert!(KeychainBackend::SecretService.survives_restart());
        assert!(KeychainBackend::Native.survives_restart());
    }
}
