//! The Coachdesk desktop shell.
//!
//! It exists to connect the webview to the core: it opens the store, manages one
//! [`AppState`], and exposes thin commands (see [`commands`]) that call the store and
//! return `Result<T, CommandError>`. Business rules live in the domain and store crates,
//! never here. The builder is generic over the Tauri runtime so tests can drive the same
//! wiring with `tauri::test::mock_builder()`.

pub mod backup_commands;
pub mod commands;
pub mod demo_sync;
pub mod desk_commands;
pub mod desktop;
pub mod instance;
pub mod launch;
pub mod live;
pub mod mail_commands;
pub mod settings_commands;
pub mod setup_commands;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use coachdesk_protocol::ipc::{AppInfo, SyncHealth};
use coachdesk_store::Store;
use coachdesk_sync::{
    Keychain, Outlets, Providers, SecretSource, SyncConfig, SyncEngine, SyncHandle,
};
use tauri::{App, Builder, Runtime};

pub use launch::{Launch, Mode};

/// Everything the commands share: the store behind one lock, and what the header shows.
pub struct AppState {
    store: Arc<Mutex<Store>>,
    info: AppInfo,
    /// The background sync, when a relay is configured (see [`AppState::start_sync`]).
    sync: Mutex<Option<(String, Arc<SyncHandle>)>>,
    /// Where CSV exports are written: `exports/` next to the database.
    exports_dir: PathBuf,
    /// The database file (a restore replaces it in place).
    database: PathBuf,
    /// Where secrets are read and written: the OS keychain (the simulator's keys held in
    /// memory in demo mode, so demos never touch the coach's keychain).
    secrets: Arc<dyn SecretSource>,
    /// Provider API bases, relay URL and timings the provider clients and sync use.
    sync_config: Mutex<SyncConfig>,
    /// Notices sync raised for the coach, picked up by the window (see [`live`]).
    toasts: Arc<live::Toasts>,
    /// Times a second start brought the window forward (see [`desktop::focus_main_window`]).
    focus_requests: std::sync::atomic::AtomicU64,
    /// The log file the log plugin writes, once known (see [`desktop::log_plugin`]).
    log_file: std::sync::OnceLock<PathBuf>,
}

impl AppState {
    /// Opens (and migrates) the database the launch settings name, seeding demo data in demo mode.
    pub fn open(launch: &Launch, now: time::OffsetDateTime) -> anyhow::Result<AppState> {
        let path = &launch.database_path;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data folder {}", dir.display()))?;
        }
        let mut store = Store::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        // Test and live data never share a file: a database belongs to its first mode.
        store
            .claim_mode(launch.mode.as_str())
            .with_context(|| format!("cannot use the database {}", path.display()))?;
        if launch.mode == Mode::Demo {
            coachdesk_demo::seed_demo(&mut store, now)
                .with_context(|| format!("cannot seed demo data into {}", path.display()))?;
        }
        let state = AppState {
            store: Arc::new(Mutex::new(store)),
            sync: Mutex::new(None),
            info: AppInfo {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                mode: launch.mode.as_str().to_owned(),
                database_path: path.display().to_string(),
            },
            exports_dir: path
                .parent()
                .map_or_else(|| PathBuf::from("exports"), |dir| dir.join("exports")),
            database: path.clone(),
            secrets: Arc::new(Keychain::default()),
            sync_config: Mutex::new(SyncConfig::new(sync_mode(launch.mode), "")),
            toasts: Arc::new(live::Toasts::default()),
            focus_requests: std::sync::atomic::AtomicU64::new(0),
            log_file: std::sync::OnceLock::new(),
        };
        state
            .use_saved_api_bases()
            .context("cannot read the saved provider addresses")?;
        Ok(state)
    }

    /// Uses `secrets` instead of the OS keychain (tests: a keychain service of their own).
    pub fn with_secrets(mut self, secrets: Arc<dyn SecretSource>) -> AppState {
        self.secrets = secrets;
        self
    }

    /// Where secrets are read and written (see the `secrets` field).
    pub fn secrets(&self) -> Arc<dyn SecretSource> {
        self.secrets.clone()
    }

    /// The provider bases, relay URL and timings in force.
    pub fn sync_config(&self) -> SyncConfig {
        self.sync_config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stripe and Calendly clients built from the current settings and secrets, at the
    /// moment of use (`providers().stripe()?`, `providers().calendly()?`).
    pub fn providers(&self) -> Providers {
        Providers::new(self.sync_config(), self.secrets())
    }

    /// Starts the background sync (relay pull, effects, reconciliation) against the relay
    /// at `relay_url`, with secrets from the OS keychain. Runs on Tauri's async runtime.
    pub fn start_sync(&self, relay_url: &str) -> anyhow::Result<()> {
        self.start_sync_with(SyncConfig::new(self.sync_config().mode, relay_url))
    }

    /// Demo mode against the simulator: its keys in memory (never the keychain), its
    /// address as Stripe's and Calendly's API, then sync with the demo relay.
    pub fn start_demo_sync(&mut self, demo: &demo_sync::DemoStack) -> anyhow::Result<()> {
        self.secrets = Arc::new(demo.secrets());
        self.start_sync_with(demo.config())
    }

    /// Starts sync with `config` and the current secrets; notices become toasts.
    pub fn start_sync_with(&self, config: SyncConfig) -> anyhow::Result<()> {
        let relay_url = config.relay_url.clone();
        *self.sync_config.lock().unwrap_or_else(|p| p.into_inner()) = config.clone();
        let store = self.store.clone();
        let secrets = self.secrets();
        let outlets = Outlets {
            notifier: Arc::new(live::DesktopNotifier {
                store: self.store.clone(),
                toasts: self.toasts.clone(),
            }),
            // Client emails through the coach's SMTP server (settings read at each send,
            // the password from the secret source).
            mailer: coachdesk_desk::mail::mailer(self.store.clone(), self.secrets()),
        };
        let handle = tauri::async_runtime::block_on(async move {
            SyncEngine::start(config, store, secrets, outlets)
        })
        .with_context(|| format!("cannot start sync with the relay {relay_url}"))?;
        *self.sync.lock().unwrap_or_else(|p| p.into_inner()) = Some((relay_url, Arc::new(handle)));
        Ok(())
    }

    /// Asks the running sync to run due effects now (after a coach action wrote some).
    pub fn run_effects_soon(&self) {
        if let Some((_, handle)) = self.sync.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            handle.run_effects_soon();
        }
    }

    /// Changes whenever the store does: the window reloads the open page when it moves.
    pub fn data_version(&self) -> u64 {
        self.store().change_count()
    }

    /// The notices raised for the coach in this run.
    pub fn toasts(&self) -> &live::Toasts {
        &self.toasts
    }

    /// The running sync, for commands that await it (reconciliation); `None` when sync is
    /// not running. The lock is released before the caller awaits anything.
    pub fn sync_handle(&self) -> Option<Arc<SyncHandle>> {
        let sync = self.sync.lock().unwrap_or_else(|p| p.into_inner());
        sync.as_ref().map(|(_, handle)| handle.clone())
    }

    /// What the dashboard shows about sync; `None` when it is not running.
    pub fn sync_health(&self) -> Option<SyncHealth> {
        let sync = self.sync.lock().unwrap_or_else(|p| p.into_inner());
        sync.as_ref().map(|(relay_url, handle)| {
            let status = handle.status();
            SyncHealth {
                relay_url: relay_url.clone(),
                connected: status.connected,
                last_sync: status.last_sync,
                events_applied: status.events_applied,
                queue_depth: status.queue_depth,
                effects_failed: status.effects_failed,
                last_error: status.last_error,
                last_reconcile_at: status.last_reconcile_at,
            }
        })
    }

    /// Times a second start brought the window forward in this run.
    pub fn focus_requests(&self) -> u64 {
        self.focus_requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Counts one more second start that brought the window forward.
    pub fn count_focus_request(&self) {
        self.focus_requests
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The log file, when the log plugin writes one.
    pub fn log_file(&self) -> Option<&std::path::Path> {
        self.log_file.get().map(PathBuf::as_path)
    }

    /// The database file.
    pub fn database_path(&self) -> &std::path::Path {
        &self.database
    }

    /// Where the daily backups are kept: `backups/` next to the database.
    pub fn backups_dir(&self) -> PathBuf {
        self.database
            .parent()
            .map_or_else(|| PathBuf::from("backups"), |dir| dir.join("backups"))
    }

    /// The store, even after a command panicked while holding it (see
    /// `coachdesk_desk::lock`).
    fn store(&self) -> MutexGuard<'_, Store> {
        coachdesk_desk::lock(&self.store)
    }
}

/// `COACHDESK_KEYCHAIN_SERVICE`: the keychain service secrets live under (default
/// `coachdesk`).
fn keychain_service_from_env() -> Option<String> {
    std::env::var("COACHDESK_KEYCHAIN_SERVICE")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Which Stripe key sync uses in a launch mode (demo runs on test keys).
fn sync_mode(mode: Mode) -> coachdesk_sync::Mode {
    match mode {
        Mode::Live => coachdesk_sync::Mode::Live,
        Mode::Test | Mode::Demo => coachdesk_sync::Mode::Test,
    }
}

/// Registers the state and every command on `builder` and builds the app from
/// the top-level `tauri.conf.json` (window, CSP, capabilities).
pub fn build<R: Runtime>(builder: Builder<R>, state: AppState) -> tauri::Result<App<R>> {
    register(builder)
        .manage(state)
        .build(tauri::generate_context!("../tauri.conf.json"))
}

/// The plugins every run uses and every command, on `builder`.
fn register<R: Runtime>(builder: Builder<R>) -> Builder<R> {
    builder
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::list_session_types,
            commands::create_session_type,
            commands::update_session_type,
            commands::archive_session_type,
            commands::list_bookings,
            commands::booking_detail,
            commands::coach_action,
            commands::refund_preview,
            commands::list_inbox,
            commands::inbox_payload,
            commands::replay_inbox,
            commands::attention_items,
            commands::business_metrics,
            commands::export_csv,
            commands::sync_status,
            settings_commands::settings,
            settings_commands::save_secret,
            settings_commands::clear_secret,
            settings_commands::save_relay_url,
            settings_commands::save_api_base,
            settings_commands::set_feature,
            settings_commands::choose_mode,
            settings_commands::test_connection,
            settings_commands::approve_refund,
            settings_commands::diagnostics,
            desk_commands::booking_page,
            desk_commands::dashboard_alerts,
            desk_commands::set_alert_thresholds,
            desk_commands::run_reconciliation,
            live::live_status,
            setup_commands::setup_stripe,
            setup_commands::list_calendly_event_types,
            setup_commands::map_event_type,
            setup_commands::calendly_subscription,
            setup_commands::register_calendly_webhook,
            setup_commands::preview_refund_policy,
            setup_commands::stripe_webhook,
            setup_commands::connect_stripe_webhook,
            setup_commands::rotate_stripe_webhook_secret,
            setup_commands::rotate_relay_sealing_key,
            mail_commands::mail_settings,
            mail_commands::save_mail_settings,
            mail_commands::check_mail_server,
            mail_commands::send_test_email,
            mail_commands::list_mail_templates,
            mail_commands::preview_mail_template,
            mail_commands::save_mail_template,
            mail_commands::reset_mail_template,
            backup_commands::list_backups,
            backup_commands::backup_database,
            backup_commands::restore_database,
        ])
}

/// When [`run`] started, for the cold-start mark.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Milliseconds since [`run`] started (0 outside it, as in tests).
pub(crate) fn since_start_ms() -> u128 {
    STARTED.get().map_or(0, |t| t.elapsed().as_millis())
}

/// Starts the desktop app: reads the launch settings from the environment, and runs the
/// event loop until the window closes.
///
/// The single-instance plugin goes first: a second start on the same data folder hands
/// over to the running window and exits 0 before anything below opens the store. The rest
/// (the store, sync, the watchers) starts in the setup hook, after the plugins, so its log
/// lines reach the log plugin.
pub fn run() -> anyhow::Result<()> {
    STARTED.get_or_init(std::time::Instant::now);
    let launch = Launch::from_env().context("invalid launch settings")?;
    let data_folder = launch
        .database_path
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."))
        .to_path_buf();
    let builder = tauri::Builder::default()
        .plugin(desktop::single_instance(&data_folder))
        .plugin(desktop::log_plugin())
        .plugin(tauri_plugin_window_state::Builder::new().build());
    let app = register(builder)
        .setup(move |app| {
            start(app, &launch, &data_folder)?;
            Ok(())
        })
        .build(tauri::generate_context!("../tauri.conf.json"))
        .context("cannot start the window")?;
    app.run(|_handle, _event| {});
    Ok(())
}

/// Everything after the plugins: the data folder's lock, the store, sync, the watchers.
fn start<R: Runtime>(
    app: &mut App<R>,
    launch: &Launch,
    data_folder: &std::path::Path,
) -> anyhow::Result<()> {
    use tauri::Manager as _;
    tracing::info!(
        mode = launch.mode.as_str(),
        database = %launch.database_path.display(),
        "starting Coachdesk"
    );
    // The fallback when the single-instance plugin could not use a session bus: the data
    // folder's file lock, held until the process ends.
    let lock = match instance::acquire_within(data_folder, std::time::Duration::from_secs(10)) {
        Ok(lock) => lock,
        Err(already @ instance::InstanceError::AlreadyRunning { .. }) => {
            // Not a failure to debug: one sentence, no backtrace.
            eprintln!("{already}");
            std::process::exit(1);
        }
        Err(other) => return Err(other.into()),
    };
    app.manage(desktop::FolderLock(lock));
    let mut state = AppState::open(launch, time::OffsetDateTime::now_utc())?;
    if let Some(service) = keychain_service_from_env() {
        // A keychain service of its own (end-to-end tests), never the coach's entries.
        state = state.with_secrets(Arc::new(Keychain::new(&service)));
    }
    if let Some(file) = desktop::log_file(app.handle()) {
        let _ = state.log_file.set(file);
    }
    state
        .toasts()
        .set_native(live::desktop_sink(app.handle().clone()));
    live::spawn_alert_watcher(state.store.clone(), state.toasts.clone());
    backup_commands::spawn_daily_backups(state.store.clone(), state.backups_dir());
    if launch.mode == Mode::Demo {
        // Demo emails go to the loopback SMTP server scripts/run-demo started.
        mail_commands::configure_demo_from_env(&state)?;
    }
    let relay_url = std::env::var("COACHDESK_RELAY_URL")
        .ok()
        .filter(|url| !url.trim().is_empty());
    match (&relay_url, launch.mode) {
        (Some(url), Mode::Test | Mode::Live) => {
            state.start_sync(url.trim())?;
            tracing::info!(relay = %url.trim(), "sync started");
        }
        (_, Mode::Demo) => match demo_sync::DemoStack::from_env()? {
            Some(demo) => {
                state.start_demo_sync(&demo)?;
                tracing::info!(simulator = %demo.sim_url, relay = %demo.relay_url, "demo sync started");
            }
            None => tracing::info!("demo on sample data only (COACHDESK_SIM_URL is not set)"),
        },
        (None, _) => match state.restart_sync_from_settings() {
            Ok(true) => {}
            Ok(false) => tracing::info!("sync not configured (no relay URL in Settings)"),
            // The window still opens: Settings shows what to fix.
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "sync could not start"),
        },
    }
    app.manage(state);
    desktop::save_window_state_when_moved(app.handle());
    Ok(())
}
