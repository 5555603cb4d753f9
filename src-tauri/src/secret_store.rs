//! What Settings says about where secrets are kept: a plain warning when they will not
//! survive a restart (the kernel keyring fallback, or demo mode's memory).

use coachdesk_protocol::settings::SecretStoreStatus;
use coachdesk_sync::{KeychainBackend, SecretStorage};

/// The Settings answer for `storage`.
pub fn status(storage: SecretStorage) -> SecretStoreStatus {
    match storage {
        SecretStorage::Keychain(backend) => SecretStoreStatus {
            name: backend.name().to_owned(),
            survives_restart: backend.survives_restart(),
            warning: (backend == KeychainBackend::KernelSession).then(|| {
                "No keychain service (GNOME Keyring, KWallet) answered, so keys and tokens are \
                 kept in the kernel keyring: they will be gone after a restart and must be \
                 entered again. Install and unlock GNOME Keyring or KWallet to keep them."
                    .to_owned()
            }),
        },
        SecretStorage::Memory => SecretStoreStatus {
            name: "memory (demo)".to_owned(),
            survives_restart: false,
            warning: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_kernel_keyring_fallback_carries_a_warning() {
        let kernel = status(SecretStorage::Keychain(KeychainBackend::KernelSession));
        assert!(!kernel.survives_restart);
        let warning = kernel.warning.unwrap();
        assert!(warning.contains("gone after a restart"), "{warning}");

        let service = status(SecretStorage::Keychain(KeychainBackend::SecretService));
        assert!(service.survives_restart);
        assert_eq!(service.warning, None);
        assert!(service.name.contains("Secret Service"));

        // Demo keys are the simulator's: nothing for the coach to re-enter.
        assert_eq!(status(SecretStorage::Memory).warning, None);
    }
}
