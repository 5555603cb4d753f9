//! The Settings page's commands: secrets into the keychain (never SQLite, never logs, never
//! back to the window), the relay URL, the provider API addresses, test or live mode for
//! the next start, the feature toggles, "test connection" per service, and approving a
//! refund held while automatic refunds are off.
//!
//! "Test connection" and what a failure reads as are the desk's
//! (`coachdesk_desk::settings::ConnectionChecks` and `explain`, unit-tested there).

use anyhow::Context as _;
use coachdesk_protocol::ipc::CommandError;
use coachdesk_protocol::settings::{
    secret, service, ApiBase, ConnectionCheck, FeatureToggle, SecretStatus, SettingsView,
};
use coachdesk_providers::{
    calendly_base_from_env, stripe_base_from_env, CALENDLY_DEFAULT_BASE, STRIPE_DEFAULT_BASE,
};
use coachdesk_store::{Feature, CALENDLY_API_BASE_SETTING, STRIPE_API_BASE_SETTING};
use coachdesk_sync::{Secret, SecretError, SecretName, SyncConfig};
use tauri::State;

use coachdesk_desk::settings::{
    chain_text, check_secret, feature_text, last4, secret_name, ConnectionChecks, Service, SECRETS,
};

use crate::launch::{self, Mode};
use crate::AppState;

fn command_error(code: &str, message: impl Into<String>) -> CommandError {
    CommandError {
        code: code.into(),
        message: message.into(),
        fields: Vec::new(),
    }
}

fn secret_error(err: &SecretError) -> CommandError {
    tracing::warn!(error = %chain_text(err), "keychain");
    command_error(
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

/// A sync config with `url` as the relay (the callback and success URLs follow it).
fn with_relay(mut config: SyncConfig, url: &str) -> SyncConfig {
    let fresh = SyncConfig::new(config.mode, url);
    config.relay_url = fresh.relay_url;
    config.calendly_callback_url = fresh.calendly_callback_url;
    config.checkout_success_url = fresh.checkout_success_url;
    config
}

impl AppState {
    /// Uses `config` for the provider bases, relay URL and timings (tests point it at the
    /// simulator this way instead of through process-wide environment variables).
    pub fn with_sync_config(self, config: SyncConfig) -> AppState {
        *self.sync_config.lock().unwrap_or_else(|p| p.into_inner()) = config;
        self
    }

    fn mode(&self) -> Mode {
        match self.info.mode.as_str() {
            "demo" => Mode::Demo,
            "live" => Mode::Live,
            _ => Mode::Test,
        }
    }

    /// The folder of the database, which holds the mode file.
    fn data_folder(&self) -> std::path::PathBuf {
        std::path::Path::new(&self.info.database_path)
            .parent()
            .map_or_else(|| ".".into(), std::path::Path::to_path_buf)
    }

    /// The relay URL in force: the saved one, else the one sync runs with (demo).
    fn relay_url_in_force(&self) -> Option<String> {
        self.store().relay_url().ok().flatten().or_else(|| {
            // The demo's relay is not saved in the settings; it runs from the start.
            (self.mode() == Mode::Demo)
                .then(|| self.sync_config().relay_url)
                .filter(|url| !url.is_empty())
        })
    }

    /// Points the provider clients at the API addresses saved in Settings (each left to
    /// the environment or the provider's own when none is saved).
    pub fn use_saved_api_bases(&self) -> Result<(), coachdesk_store::StoreError> {
        let (stripe, calendly) = {
            let store = self.store();
            (
                store.api_base(STRIPE_API_BASE_SETTING)?,
                store.api_base(CALENDLY_API_BASE_SETTING)?,
            )
        };
        let mut config = self.sync_config.lock().unwrap_or_else(|p| p.into_inner());
        // async-stripe joins request paths onto its base: keep the trailing slash.
        config.stripe_base = stripe_base_from_env(stripe.map(|base| format!("{base}/")).as_deref());
        config.calendly_base = calendly_base_from_env(calendly.as_deref());
        Ok(())
    }

    /// Stripe's and Calendly's API addresses as Settings shows them.
    fn api_bases_view(&self) -> Result<Vec<ApiBase>, CommandError> {
        let config = self.sync_config();
        let store = self.store();
        let view = |service: &str, key: &str, in_force: &str, default: &str| {
            Ok::<_, CommandError>(ApiBase {
                service: service.to_owned(),
                in_force: in_force.trim_end_matches('/').to_owned(),
                saved: store.api_base(key).map_err(coachdesk_desk::command_error)?,
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

    /// (Re)starts sync with the saved relay URL, or stops it when none is saved. Returns
    /// whether sync runs. Call from a thread outside the async runtime.
    pub fn restart_sync_from_settings(&self) -> anyhow::Result<bool> {
        let saved = self
            .store()
            .relay_url()
            .context("cannot read the relay URL")?;
        match saved {
            Some(url) => {
                let config = with_relay(self.sync_config(), &url);
                self.start_sync_with(config)?;
                tracing::info!(relay = %url, "sync (re)started from settings");
                Ok(true)
            }
            None => {
                self.sync.lock().unwrap_or_else(|p| p.into_inner()).take();
                Ok(false)
            }
        }
    }

    /// What the Settings page shows.
    pub fn settings_view(&self) -> Result<SettingsView, CommandError> {
        let secrets = self.secrets();
        let mode = self.mode();
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
        let features = self
            .store()
            .features()
            .map_err(coachdesk_desk::command_error)?;
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
        let relay_url = self.relay_url_in_force();
        let is_set = |wire: &str| statuses.iter().any(|s| s.name == wire && s.set);
        let stripe_key = if mode == Mode::Live {
            secret::STRIPE_LIVE_KEY
        } else {
            secret::STRIPE_TEST_KEY
        };
        let mut missing = Vec::new();
        if !is_set(stripe_key) {
            missing.push(format!(
                "the Stripe secret key ({} mode)",
                if mode == Mode::Live { "live" } else { "test" }
            ));
        }
        if !is_set(secret::CALENDLY_TOKEN) {
            missing.push("the Calendly access token".to_owned());
        }
        if relay_url.is_none() {
            missing.push("the relay URL".to_owned());
        }
        if !is_set(secret::RELAY_TOKEN) {
            missing.push("the relay token".to_owned());
        }
        let next_mode = launch::chosen_mode(&self.data_folder())
            .map(|m| m.as_str().to_owned())
            .unwrap_or_else(|_| "test".to_owned());
        Ok(SettingsView {
            mode: mode.as_str().to_owned(),
            next_mode,
            database_path: self.info.database_path.clone(),
            secrets: statuses,
            secret_store: crate::secret_store::status(secrets.storage()),
            relay_url,
            features: toggles,
            api_bases: self.api_bases_view()?,
            sync_running: self
                .sync
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some(),
            missing,
        })
    }

    /// Runs "test connection" for `service` (the use case is the desk's
    /// [`ConnectionChecks`]).
    pub async fn check_connection(&self, service: Service) -> ConnectionCheck {
        let config = self.sync_config();
        ConnectionChecks {
            store: &self.store,
            config: &config,
            secrets: self.secrets(),
            relay_url: self.relay_url_in_force(),
        }
        .check(service)
        .await
    }
}

fn unknown_secret(name: &str) -> CommandError {
    command_error(
        "invalid",
        format!("\"{name}\" is not a setting Coachdesk knows; reload the window."),
    )
}

/// Everything the Settings page shows.
#[tauri::command(rename_all = "snake_case")]
pub async fn settings(state: State<'_, AppState>) -> Result<SettingsView, CommandError> {
    state.settings_view()
}

/// Saves a secret in the keychain (the value never goes back to the window, nor to the
/// database or the logs). Saving the relay token restarts sync. Not `async`: restarting
/// sync blocks on the async runtime, which must not happen from inside it.
#[tauri::command(rename_all = "snake_case")]
pub fn save_secret(
    state: State<'_, AppState>,
    name: String,
    value: String,
) -> Result<SettingsView, CommandError> {
    let secret_name = secret_name(&name).ok_or_else(|| unknown_secret(&name))?;
    let value = check_secret(secret_name, &value)?;
    state
        .secrets()
        .store(secret_name, &Secret::new(value))
        .map_err(|err| secret_error(&err))?;
    tracing::info!(secret = %name, "secret saved in the keychain");
    if secret_name == SecretName::RelayToken {
        restart(&state)?;
    }
    state.settings_view()
}

/// Removes a secret from the keychain.
#[tauri::command(rename_all = "snake_case")]
pub fn clear_secret(
    state: State<'_, AppState>,
    name: String,
) -> Result<SettingsView, CommandError> {
    let secret_name = secret_name(&name).ok_or_else(|| unknown_secret(&name))?;
    state
        .secrets()
        .remove(secret_name)
        .map_err(|err| secret_error(&err))?;
    tracing::info!(secret = %name, "secret removed from the keychain");
    state.settings_view()
}

/// Saves (or, when blank, forgets) the relay URL and restarts sync with it.
#[tauri::command(rename_all = "snake_case")]
pub fn save_relay_url(
    state: State<'_, AppState>,
    url: String,
) -> Result<SettingsView, CommandError> {
    state
        .store()
        .set_relay_url(&url)
        .map_err(coachdesk_desk::command_error)?;
    restart(&state)?;
    state.settings_view()
}

/// Saves (or, when blank, forgets) the API address of `service` (`stripe` or
/// `calendly`); the provider clients use it from the next call, sync after its restart.
#[tauri::command(rename_all = "snake_case")]
pub fn save_api_base(
    state: State<'_, AppState>,
    service: String,
    url: String,
) -> Result<SettingsView, CommandError> {
    let key = match service.as_str() {
        service::STRIPE => STRIPE_API_BASE_SETTING,
        service::CALENDLY => CALENDLY_API_BASE_SETTING,
        other => {
            return Err(command_error(
                "invalid",
                format!("There is no API address for {other:?}; use stripe or calendly."),
            ))
        }
    };
    if state.mode() == Mode::Demo {
        return Err(command_error(
            "invalid",
            "Demo mode talks to the bundled simulator; API addresses apply in test and live mode.",
        ));
    }
    let field = format!("{service}_api_base");
    state
        .store()
        .set_api_base(key, &field, &url)
        .map_err(coachdesk_desk::command_error)?;
    state
        .use_saved_api_bases()
        .map_err(coachdesk_desk::command_error)?;
    tracing::info!(%service, "provider API address changed");
    if state.sync_handle().is_some() {
        // The same relay, the new address.
        state.start_sync_with(state.sync_config()).map_err(|err| {
            command_error(
                "internal",
                format!("The address was saved, but sync could not restart: {err:#}. Restart Coachdesk."),
            )
        })?;
    }
    state.settings_view()
}

fn restart(state: &AppState) -> Result<(), CommandError> {
    if state.mode() == Mode::Demo && state.store().relay_url().ok().flatten().is_none() {
        // The demo's own relay keeps running.
        return Ok(());
    }
    state.restart_sync_from_settings().map(|_| ()).map_err(|err| {
        tracing::warn!(error = %format!("{err:#}"), "sync restart failed");
        command_error(
            "internal",
            format!("The setting was saved, but sync could not restart: {err:#}. Restart Coachdesk."),
        )
    })
}

/// Turns a feature on or off. Takes effect at once.
#[tauri::command(rename_all = "snake_case")]
pub async fn set_feature(
    state: State<'_, AppState>,
    name: String,
    enabled: bool,
) -> Result<SettingsView, CommandError> {
    let feature = Feature::from_name(&name).ok_or_else(|| unknown_secret(&name))?;
    state
        .store()
        .set_feature(feature, enabled)
        .map_err(coachdesk_desk::command_error)?;
    tracing::info!(feature = %name, enabled, "feature toggled");
    state.run_effects_soon();
    state.settings_view()
}

/// Chooses test or live mode for the next start (each has its own database).
#[tauri::command(rename_all = "snake_case")]
pub async fn choose_mode(
    state: State<'_, AppState>,
    mode: String,
) -> Result<SettingsView, CommandError> {
    let mode = match mode.as_str() {
        "test" => Mode::Test,
        "live" => Mode::Live,
        other => {
            return Err(command_error(
                "invalid",
                format!("\"{other}\" is not a mode; choose test or live."),
            ))
        }
    };
    launch::choose_mode(&state.data_folder(), mode).map_err(|err| {
        command_error("storage", format!("{err}. Check the folder's permissions."))
    })?;
    tracing::info!(mode = mode.as_str(), "mode chosen for the next start");
    state.settings_view()
}

/// Checks one service with the saved settings and says, in words, what is wrong.
#[tauri::command(rename_all = "snake_case")]
pub async fn test_connection(
    state: State<'_, AppState>,
    service: String,
) -> Result<ConnectionCheck, CommandError> {
    let service = Service::from_name(&service).ok_or_else(|| {
        command_error(
            "invalid",
            format!("\"{service}\" cannot be tested; choose stripe, calendly or relay."),
        )
    })?;
    Ok(state.check_connection(service).await)
}

/// The coach approves the refunds held for a booking; they are sent to Stripe now.
#[tauri::command(rename_all = "snake_case")]
pub async fn approve_refund(
    state: State<'_, AppState>,
    booking_id: String,
) -> Result<u32, CommandError> {
    let booking_id =
        coachdesk_desk::booking_id(&booking_id).map_err(coachdesk_desk::command_error)?;
    let released = state
        .store()
        .approve_held_refunds(&booking_id, time::OffsetDateTime::now_utc())
        .map_err(coachdesk_desk::command_error)?;
    state.run_effects_soon();
    Ok(u32::try_from(released).unwrap_or(u32::MAX))
}

/// Settings' "Copy diagnostics": gathers what only the shell sees and lets the desk build
/// the scrubbed report (the window copies its text).
#[tauri::command(rename_all = "snake_case")]
pub async fn diagnostics(
    state: State<'_, AppState>,
) -> Result<coachdesk_protocol::settings::Diagnostics, CommandError> {
    let relay_url = state.relay_url_in_force();
    let relay_check = match relay_url {
        Some(_) => {
            let check = state.check_connection(Service::Relay).await;
            Some((check.ok, check.message))
        }
        None => None,
    };
    let facts = coachdesk_desk::diagnostics::DiagnosticFacts {
        app_version: state.info.version.clone(),
        tauri_version: tauri::VERSION.to_owned(),
        webview_version: tauri::webview_version().ok(),
        os: os_name(),
        mode: state.info.mode.clone(),
        data_dir: state.data_folder().display().to_string(),
        log_file: state.log_file().map(|f| f.display().to_string()),
        keychain: coachdesk_sync::keychain_backend(),
        relay_url,
        relay_check,
        sync: state.sync_handle().map(|handle| handle.status()),
        focus_requests: state.focus_requests(),
    };
    coachdesk_desk::diagnostics::diagnostics(&state.store(), facts)
        .map_err(coachdesk_desk::command_error)
}

/// The OS's release name where it says one (`/etc/os-release`), and the architecture.
fn os_name() -> String {
    let release = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("PRETTY_NAME="))
                .map(|name| name.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    format!("{release}, {}", std::env::consts::ARCH)
}
