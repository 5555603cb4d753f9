//! The Settings page's use cases: what the page shows (the keychain's secrets by their
//! last four characters, the feature toggles, the API addresses, what still needs setting
//! up) and what its saves do before the shell restarts sync (a secret into the keychain,
//! an API address into the store). The shell gathers only what it alone knows
//! ([`AppFacts`]: the mode, the files, whether sync runs) and restarts sync when asked.

use std::sync::Mutex;

use coachdesk_protocol::ipc::CommandError;
use coachdesk_protocol::settings::{
    secret, service, ApiBase, FeatureToggle, SecretStatus, SecretStoreStatus, SettingsView,
};
use coachdesk_providers::{
    calendly_base_from_env, stripe_base_from_env, CALENDLY_DEFAULT_BASE, STRIPE_DEFAULT_BASE,
};
use coachdesk_store::{
    Feature, Store, StoreError, CALENDLY_API_BASE_SETTING, STRIPE_API_BASE_SETTING,
};
use coachdesk_sync::{
    KeychainBackend, Secret, SecretError, SecretName, SecretSource, SecretStorage, SyncConfig,
};

use crate::settings::{check_secret, feature_text, last4, secret_name, SECRETS};
use crate::{command_error, lock};

/// What only the shell knows, for the Settings page.
#[derive(Debug, Clone)]
pub struct AppFacts {
    /// The mode running now (`test`, `live` or `demo`).
    pub mode: String,
    /// Live mode: the live Stripe key is the one that must be set.
    pub live: bool,
    /// The mode chosen for the next start.
    pub next_mode: String,
    pub database_path: String,
    /// The relay URL in force (saved, or the demo's).
    pub relay_url: Option<String>,
    pub sync_running: bool,
}

fn refusal(code: &str, message: impl Into<String>) -> CommandError {
    CommandError {
        code: code.into(),
        message: message.into(),
        fields: Vec::new(),
    }
}

/// A keychain failure as the window shows it (the details go to the log).
pub fn secret_error(err: &SecretError) -> CommandError {
    tracing::warn!(error = %coachdesk_sync::error_chain(err), "keychain");
    refusal(
        "storage",
        format!(
            "{}. Check that the system keychain is unlocked, then try again.",
            capitalise(&err.to_string())
        ),
    )
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A setting name the window sent that this version does not know.
pub fn unknown_setting(name: &str) -> CommandError {
    refusal(
        "invalid",
        format!("\"{name}\" is not a setting Coachdesk knows; reload the window."),
    )
}

/// Sync could not restart after a save (`detail` is the error's chain): the save stands,
/// the coach is told to restart the app.
pub fn restart_failed(what: &str, detail: &str) -> CommandError {
    refusal(
        "internal",
        format!("The {what} was saved, but sync could not restart: {detail}. Restart Coachdesk."),
    )
}

/// The service a "test connection" names.
pub fn service_to_check(name: &str) -> Result<crate::settings::Service, CommandError> {
    crate::settings::Service::from_name(name).ok_or_else(|| {
        refusal(
            "invalid",
            format!("\"{name}\" cannot be tested; choose stripe, calendly or relay."),
        )
    })
}

/// The feature a toggle names.
pub fn feature(name: &str) -> Result<Feature, CommandError> {
    Feature::from_name(name).ok_or_else(|| unknown_setting(name))
}

/// Saves what the coach pasted into the keychain (checked first; the value never goes
/// back to the window, the database or the logs). Answers which secret it was, so the
/// shell restarts sync after a new relay token.
pub fn save_secret(
    secrets: &dyn SecretSource,
    name: &str,
    value: &str,
) -> Result<SecretName, CommandError> {
    let secret_name = secret_name(name).ok_or_else(|| unknown_setting(name))?;
    let value = check_secret(secret_name, value)?;
    secrets
        .store(secret_name, &Secret::new(value))
        .map_err(|err| secret_error(&err))?;
    tracing::info!(secret = %name, "secret saved in the keychain");
    Ok(secret_name)
}

/// Removes a secret from the keychain.
pub fn clear_secret(secrets: &dyn SecretSource, name: &str) -> Result<(), CommandError> {
    let secret_name = secret_name(name).ok_or_else(|| unknown_setting(name))?;
    secrets
        .remove(secret_name)
        .map_err(|err| secret_error(&err))?;
    tracing::info!(secret = %name, "secret removed from the keychain");
    Ok(())
}

/// Saves (or, when blank, forgets) the API address of `service` (`stripe` or
/// `calendly`). Demo mode talks to its bundled simulator and refuses.
pub fn save_api_base(
    store: &Store,
    demo: bool,
    service: &str,
    url: &str,
) -> Result<(), CommandError> {
    let key = match service {
        service::STRIPE => STRIPE_API_BASE_SETTING,
        service::CALENDLY => CALENDLY_API_BASE_SETTING,
        other => {
            return Err(refusal(
                "invalid",
                format!("There is no API address for {other:?}; use stripe or calendly."),
            ))
        }
    };
    if demo {
        return Err(refusal(
            "invalid",
            "Demo mode talks to the bundled simulator; API addresses apply in test and live mode.",
        ));
    }
    let field = format!("{service}_api_base");
    store
        .set_api_base(key, &field, url)
        .map_err(command_error)?;
    tracing::info!(%service, "provider API address changed");
    Ok(())
}

/// Points `config`'s provider clients at the API addresses saved in Settings (each left
/// to the environment or the provider's own when none is saved).
pub fn use_saved_api_bases(
    store: &Mutex<Store>,
    config: &mut SyncConfig,
) -> Result<(), StoreError> {
    let (stripe, calendly) = {
        let store = lock(store);
        (
            store.api_base(STRIPE_API_BASE_SETTING)?,
            store.api_base(CALENDLY_API_BASE_SETTING)?,
        )
    };
    // async-stripe joins request paths onto its base: keep the trailing slash.
    config.stripe_base = stripe_base_from_env(stripe.map(|base| format!("{base}/")).as_deref());
    config.calendly_base = calendly_base_from_env(calendly.as_deref());
    Ok(())
}

/// `config` with `url` as the relay (the callback and success URLs follow it).
pub fn with_relay(mut config: SyncConfig, url: &str) -> SyncConfig {
    let fresh = SyncConfig::new(config.mode, url);
    config.relay_url = fresh.relay_url;
    config.calendly_callback_url = fresh.calendly_callback_url;
    config.checkout_success_url = fresh.checkout_success_url;
    config
}

/// Where the secrets are kept, in the Settings page's words.
pub fn secret_store_status(storage: SecretStorage) -> SecretStoreStatus {
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

/// Everything the Settings page shows. Reads the keychain without holding the store's
/// lock (a keychain may take its time to answer).
pub fn settings_view(
    store: &Mutex<Store>,
    secrets: &dyn SecretSource,
    config: &SyncConfig,
    facts: AppFacts,
) -> Result<SettingsView, CommandError> {
    let statuses: Vec<SecretStatus> = SECRETS
        .iter()
        .map(|(wire, label, name)| {
            let (set, last4, problem) = match secrets.get(*name) {
                Ok(value) => (true, last4(value.expose()), None),
                Err(SecretError::Missing { .. }) => (false, None, None),
                Err(err) => (false, None, Some(capitalise(&err.to_string()))),
            };
            SecretStatus {
                name: (*wire).to_owned(),
                label: (*label).to_owned(),
                set,
                last4,
                problem,
            }
        })
        .collect();
    let features = lock(store).features().map_err(command_error)?;
    let toggles = Feature::ALL
        .into_iter()
        .map(|feature| {
            let (label, description) = feature_text(feature);
            FeatureToggle {
                name: feature.name().to_owned(),
                label: label.to_owned(),
                description: description.to_owned(),
                enabled: features.enabled(feature),
            }
        })
        .collect();
    let is_set = |wire: &str| statuses.iter().any(|s| s.name == wire && s.set);
    let (stripe_key, stripe_mode) = if facts.live {
        (secret::STRIPE_LIVE_KEY, "live")
    } else {
        (secret::STRIPE_TEST_KEY, "test")
    };
    let mut missing = Vec::new();
    if !is_set(stripe_key) {
        missing.push(format!("the Stripe secret key ({stripe_mode} mode)"));
    }
    if !is_set(secret::CALENDLY_TOKEN) {
        missing.push("the Calendly access token".to_owned());
    }
    if facts.relay_url.is_none() {
        missing.push("the relay URL".to_owned());
    }
    if !is_set(secret::RELAY_TOKEN) {
        missing.push("the relay token".to_owned());
    }
    Ok(SettingsView {
        mode: facts.mode,
        next_mode: facts.next_mode,
        database_path: facts.database_path,
        secrets: statuses,
        secret_store: secret_store_status(secrets.storage()),
        relay_url: facts.relay_url,
        features: toggles,
        api_bases: api_bases(&lock(store), config)?,
        sync_running: facts.sync_running,
        missing,
    })
}

/// Stripe's and Calendly's API addresses as Settings shows them.
fn api_bases(store: &Store, config: &SyncConfig) -> Result<Vec<ApiBase>, CommandError> {
    let view = |service: &str, key: &str, in_force: &str, default: &str| {
        Ok::<_, CommandError>(ApiBase {
            service: service.to_owned(),
            in_force: in_force.trim_end_matches('/').to_owned(),
            saved: store.api_base(key).map_err(command_error)?,
            default: default.trim_end_matches('/').to_owned(),
        })
    };
    Ok(vec![
        view(
            service::STRIPE,
            STRIPE_API_BASE_SETTING,
            &config.stripe_base,
            STRIPE_DEFAULT_BASE,
        )?,
        view(
            service::CALENDLY,
            CALENDLY_API_BASE_SETTING,
            &config.calendly_base,
            CALENDLY_DEFAULT_BASE,
        )?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_kernel_keyring_fallback_carries_a_warning() {
        let kernel = secret_store_status(SecretStorage::Keychain(KeychainBackend::KernelSession));
        assert!(!kernel.survives_restart);
        let warning = kernel.warning.unwrap();
        assert!(warning.contains("gone after a restart"), "{warning}");

        let service = secret_store_status(SecretStorage::Keychain(KeychainBackend::SecretService));
        assert!(service.survives_restart);
        assert_eq!(service.warning, None);
        assert!(service.name.contains("Secret Service"));

        // Demo keys are the simulator's: nothing for the coach to re-enter.
        assert_eq!(secret_store_status(SecretStorage::Memory).warning, None);
    }
}
