//! The Settings page's commands: secrets into the keychain (never SQLite, never logs, never
//! back to the window), the relay URL, the provider API addresses, test or live mode for
//! the next start, the feature toggles, "test connection" per service, and approving a
//! refund held while automatic refunds are off.
//!
//! The use cases are the desk's (`coachdesk_desk::settings_page`: the page's view and its
//! saves; `coachdesk_desk::settings`: "test connection" and what a failure reads as);
//! each command here gathers what only the shell knows and restarts sync when asked.

use anyhow::Context as _;
use coachdesk_desk::settings::Service;
use coachdesk_desk::settings_page::{self as page, AppFacts};
use coachdesk_protocol::ipc::CommandError;
use coachdesk_protocol::settings::{ConnectionCheck, SettingsView};
use coachdesk_sync::{SecretName, SyncConfig};
use tauri::State;

use crate::launch::{self, Mode};
use crate::AppState;

fn command_error(code: &str, message: impl Into<String>) -> CommandError {
    CommandError {
        code: code.into(),
        message: message.into(),
        fields: Vec::new(),
    }
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

    /// Points the provider clients at the API addresses saved in Settings.
    pub fn use_saved_api_bases(&self) -> Result<(), coachdesk_store::StoreError> {
        let mut config = self.sync_config.lock().unwrap_or_else(|p| p.into_inner());
        page::use_saved_api_bases(&self.store, &mut config)
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
                let config = page::with_relay(self.sync_config(), &url);
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

    /// What the Settings page shows (the desk's [`page::settings_view`] with what only
    /// the shell knows).
    pub fn settings_view(&self) -> Result<SettingsView, CommandError> {
        let mode = self.mode();
        let facts = AppFacts {
            mode: mode.as_str().to_owned(),
            live: mode == Mode::Live,
            next_mode: launch::chosen_mode(&self.data_folder())
                .map(|m| m.as_str().to_owned())
                .unwrap_or_else(|_| "test".to_owned()),
            database_path: self.info.database_path.clone(),
            relay_url: self.relay_url_in_force(),
            sync_running: self
                .sync
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some(),
        };
        page::settings_view(&self.store, &*self.secrets(), &self.sync_config(), facts)
    }

    /// Runs "test connection" for `service` (the use case is the desk's
    /// [`coachdesk_desk::settings::ConnectionChecks`]).
    pub async fn check_connection(&self, service: Service) -> ConnectionCheck {
        let config = self.sync_config();
        coachdesk_desk::settings::ConnectionChecks {
            store: &self.store,
            config: &config,
            secrets: self.secrets(),
            relay_url: self.relay_url_in_force(),
        }
        .check(service)
        .await
    }
}

/// Everything the Settings page shows.
#[tauri::command(rename_all = "snake_case")]
pub async fn settings(state: State<'_, AppState>) -> Result<SettingsView, CommandError> {
    state.settings_view()
}

/// Saves a secret in the keychain (the value never goes back to the window, nor to the
/// database or the logs). Saving the relay token or the restricted key restarts sync. Not `async`: restarting
/// sync blocks on the async runtime, which must not happen from inside it.
#[tauri::command(rename_all = "snake_case")]
pub fn save_secret(
    state: State<'_, AppState>,
    name: String,
    value: String,
) -> Result<SettingsView, CommandError> {
    if restarts_sync(page::save_secret(&*state.secrets(), &name, &value)?) {
        restart(&state, "setting")?;
    }
    state.settings_view()
}

/// The secrets sync hands to the relay at its start: saving one restarts it.
fn restarts_sync(name: SecretName) -> bool {
    matches!(name, SecretName::RelayToken | SecretName::StripeCheckoutKey)
}

/// Removes a secret from the keychain (the restricted key: and has the relay forget it).
#[tauri::command(rename_all = "snake_case")]
pub fn clear_secret(
    state: State<'_, AppState>,
    name: String,
) -> Result<SettingsView, CommandError> {
    page::clear_secret(&*state.secrets(), &name)?;
    if coachdesk_desk::settings::secret_name(&name).is_some_and(restarts_sync) {
        restart(&state, "setting")?;
    }
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
    restart(&state, "setting")?;
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
    page::save_api_base(&state.store(), state.mode() == Mode::Demo, &service, &url)?;
    state
        .use_saved_api_bases()
        .map_err(coachdesk_desk::command_error)?;
    if state.sync_handle().is_some() {
        // The same relay, the new address.
        state
            .start_sync_with(state.sync_config())
            .map_err(|err| page::restart_failed("address", &format!("{err:#}")))?;
    }
    state.settings_view()
}

/// Restarts sync after a save of `what` (the demo's own relay keeps running).
fn restart(state: &AppState, what: &str) -> Result<(), CommandError> {
    if state.mode() == Mode::Demo && state.store().relay_url().ok().flatten().is_none() {
        return Ok(());
    }
    state
        .restart_sync_from_settings()
        .map(|_| ())
        .map_err(|err| {
            tracing::warn!(error = %format!("{err:#}"), "sync restart failed");
            page::restart_failed(what, &format!("{err:#}"))
        })
}

/// Turns a feature on or off. Takes effect at once.
#[tauri::command(rename_all = "snake_case")]
pub async fn set_feature(
    state: State<'_, AppState>,
    name: String,
    enabled: bool,
) -> Result<SettingsView, CommandError> {
    let feature = page::feature(&name)?;
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
    let service = page::service_to_check(&service)?;
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
