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
}

/// The secrets Settings can save, by their wire names.
pub mod secret {
    pub const STRIPE_TEST_KEY: &str = "stripe_test_key";
    pub const STRIPE_LIVE_KEY: &str = "stripe_live_key";
    pub const CALENDLY_TOKEN: &str = "calendly_token";
    pub const RELAY_TOKEN: &str = "relay_token";
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
