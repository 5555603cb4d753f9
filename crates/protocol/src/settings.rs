//! Commands and DTOs of the Settings page: the secrets (shown only as set or not), the
//! relay URL, test or live mode, the feature toggles, and "test connection".

use serde::{Deserialize, Serialize};

/// Names of the settings commands.
pub mod command {
    pub const SETTINGS: &str = "settings";
    pub const SAVE_SECRET: &str = "save_secret";
    pub const CLEAR_SECRET: &str = "clear_secret";
    pub const SAVE_RELAY_URL: &str = "save_relay_url";
    pub const SAVE_API_BASE: &str = "save_api_base";
    pub const SET_FEATURE: &str = "set_feature";
    pub const CHOOSE_MODE: &str = "choose_mode";
    pub const TEST_CONNECTION: &str = "test_connection";
    pub const APPROVE_REFUND: &str = "approve_refund";
    /// The support report behind Settings' "Copy diagnostics" (see [`super::Diagnostics`]).
    pub const DIAGNOSTICS: &str = "diagnostics";
}

/// The secrets Settings can save, by their wire names.
pub mod secret {
    pub const STRIPE_TEST_KEY: &str = "stripe_test_key";
    pub const STRIPE_LIVE_KEY: &str = "stripe_live_key";
    pub const CALENDLY_TOKEN: &str = "calendly_token";
    pub const RELAY_TOKEN: &str = "relay_token";
    /// The Stripe restricted key the relay makes Checkout Sessions with.
    pub const STRIPE_CHECKOUT_KEY: &str = "stripe_checkout_key";
}

/// The services "test connection" can check.
pub mod service {
    pub const STRIPE: &str = "stripe";
    pub const CALENDLY: &str = "calendly";
    pub const RELAY: &str = "relay";
}

/// A provider's API address: the one in force and whether the coach chose it (else it is
/// the environment's `COACHDESK_*_API_BASE` or the provider's own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiBase {
    /// `stripe` or `calendly` (see [`service`]).
    pub service: String,
    pub in_force: String,
    /// What the coach saved in Settings, if anything.
    pub saved: Option<String>,
    /// The provider's own address, used when nothing else is set.
    pub default: String,
}

/// Whether a secret is in the keychain; never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretStatus {
    /// Wire name (see [`secret`]).
    pub name: String,
    /// What the coach reads, such as "Stripe secret key (test mode)".
    pub label: String,
    pub set: bool,
    /// The last four characters, so the coach can tell which key is saved.
    pub last4: Option<String>,
    /// Why the keychain could not be read, if it could not.
    pub problem: Option<String>,
}

/// Where the secrets are kept and whether they survive a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretStoreStatus {
    /// The store's name, such as "Secret Service (GNOME Keyring, KWallet)".
    pub name: String,
    /// False for the kernel keyring (the fallback) and demo mode's memory.
    pub survives_restart: bool,
    /// What the coach should know, in plain words, when secrets will not survive a restart.
    pub warning: Option<String>,
}

/// One feature toggle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureToggle {
    /// Wire name: `payments`, `webhook_processing`, `automatic_refunds`,
    /// `late_payment_refunds`, `test_mode_calendly_cancels`.
    pub name: String,
    pub label: String,
    /// What turning it off does, in a sentence.
    pub description: String,
    pub enabled: bool,
}

/// Everything the Settings page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsView {
    /// The mode running now: `test`, `live` or `demo`.
    pub mode: String,
    /// The mode chosen for the next start (`test` or `live`).
    pub next_mode: String,
    /// The database file in use.
    pub database_path: String,
    pub secrets: Vec<SecretStatus>,
    /// Where those secrets are kept.
    pub secret_store: SecretStoreStatus,
    /// The relay's base URL (saved, or the demo's).
    pub relay_url: Option<String>,
    pub features: Vec<FeatureToggle>,
    /// Stripe's and Calendly's API addresses (advanced: a compatible server or a simulator).
    pub api_bases: Vec<ApiBase>,
    /// Whether background sync is running.
    pub sync_running: bool,
    /// What still needs setting up, in words; empty when everything is configured.
    pub missing: Vec<String>,
}

impl SettingsView {
    /// Nothing is configured yet (the first run): the app leads to Settings.
    pub fn first_run(&self) -> bool {
        self.mode != "demo" && !self.missing.is_empty()
    }
}

/// The outcome of "test connection".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionCheck {
    /// Which service (see [`service`]).
    pub service: String,
    pub ok: bool,
    /// A sentence for the coach: what works, or what is wrong and how to fix it.
    pub message: String,
    /// The technical detail, for support (never a secret).
    pub detail: Option<String>,
}

/// What support needs to understand a problem, for Settings' "Copy diagnostics": versions,
/// where things are, how sync is doing and its last errors. Never a secret, never a
/// client's name, email or an amount (the desk scrubs error texts before they get here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostics {
    pub app_version: String,
    pub tauri_version: String,
    /// The webview engine's version (WebKitGTK on Linux), when it could be read.
    pub webview_version: Option<String>,
    /// The operating system (its release name where known) and architecture.
    pub os: String,
    /// `demo`, `test` or `live`.
    pub mode: String,
    pub data_dir: String,
    pub schema_version: u32,
    /// The app's log file, when the log plugin writes one.
    pub log_file: Option<String>,
    /// Which keychain holds the secrets, and whether they survive a restart.
    pub keychain: String,
    pub keychain_survives_restart: bool,
    /// The relay's address without credentials, path or query; `None` when none is set.
    pub relay_url: Option<String>,
    /// Whether the relay answered just now, in words; `None` when no relay is set.
    pub relay_reachable: Option<bool>,
    pub relay_check: Option<String>,
    /// `None` when sync is not running.
    pub sync: Option<SyncDiagnostics>,
    /// The last failed effects (kind and scrubbed error), newest first.
    pub failed_effects: Vec<String>,
    /// Times a second start brought this window forward in this run.
    pub focus_requests: u64,
    /// The whole report as plain text, the form that is copied.
    pub text: String,
}

/// Sync's counters for [`Diagnostics`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncDiagnostics {
    pub connected: bool,
    /// When the last pull succeeded (RFC 3339).
    pub last_pull: Option<String>,
    /// The highest relay sequence applied.
    pub cursor: i64,
    pub events_applied: u64,
    pub pull_rounds: u64,
    pub executor_passes: u64,
    pub queue_depth: u64,
    pub effects_done: u64,
    pub effects_failed: u64,
    pub webhooks_paused: bool,
    pub last_reconcile_at: Option<String>,
    /// Scrubbed.
    pub last_error: Option<String>,
    /// Whether the relay keeps the coach's client data sealed for this install, in words.
    #[serde(default)]
    pub sealing: Option<String>,
    /// What the relay's `/pay` does for the coach's bookings, in words.
    #[serde(default)]
    pub relay_checkout: Option<String>,
}
