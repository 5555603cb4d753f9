//! The Settings page's commands: secrets into the keychain (never SQLite, never logs, never
//! back to the window), the relay URL, the provider API addresses, test or live mode for the next start, the feature
//! toggles, "test connection" per service, and approving a refund held while automatic
//! refunds are off.
//!
//! What a failed connection means is decided by [`explain`], a pure function from the
//! provider error to a sentence, so every wording is unit-tested.

use std::time::Duration;

use anyhow::Context as _;
use coachdesk_protocol::ipc::{CommandError, FieldError};
use coachdesk_protocol::settings::{
    secret, service, ApiBase, ConnectionCheck, FeatureToggle, SecretStatus, SettingsView,
};
use coachdesk_providers::{
    calendly_base_from_env, stripe_base_from_env, ProviderError, CALENDLY_DEFAULT_BASE,
    STRIPE_DEFAULT_BASE,
};
use coachdesk_store::{Feature, CALENDLY_API_BASE_SETTING, STRIPE_API_BASE_SETTING};
use coachdesk_sync::{relay::RelayClient, Secret, SecretError, SecretName, SyncConfig};
use tauri::State;

use crate::launch::{self, Mode};
use crate::AppState;

/// How long "test connection" waits for an answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// A service "test connection" can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Stripe,
    Calendly,
    Relay,
}

impl Service {
    pub fn from_name(name: &str) -> Option<Service> {
        match name {
            service::STRIPE => Some(Service::Stripe),
            service::CALENDLY => Some(Service::Calendly),
            service::RELAY => Some(Service::Relay),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::Stripe => service::STRIPE,
            Service::Calendly => service::CALENDLY,
            Service::Relay => service::RELAY,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Service::Stripe => "Stripe",
            Service::Calendly => "Calendly",
            Service::Relay => "The relay",
        }
    }

    fn credential(self) -> &'static str {
        match self {
            Service::Stripe => "secret key",
            Service::Calendly => "access token",
            Service::Relay => "relay token",
        }
    }

    fn fix_credential(self) -> &'static str {
        match self {
            Service::Stripe => {
                "Copy the secret key again from the Stripe dashboard (Developers, API keys) and save it."
            }
            Service::Calendly => {
                "Create a new personal access token in Calendly (Integrations, API and webhooks) and save it."
            }
            Service::Relay => {
                "Create a new token on the relay's server with `coachdesk-relay token create` and save it."
            }
        }
    }

    /// What is safe whatever failed: the test changes nothing.
    fn reassurance(self) -> &'static str {
        match self {
            Service::Relay => {
                "Nothing is lost: webhooks wait at the relay and are applied once the connection works."
            }
            Service::Stripe | Service::Calendly => {
                "Nothing was changed: the test only reads, and your saved settings stay as they are."
            }
        }
    }
}

/// What kind of failure a provider error is, for the coach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// 401/403: the key or token is wrong.
    WrongCredential,
    /// 404: something answered, but not the service's API.
    WrongAddress,
    /// The host name does not resolve.
    HostNotFound,
    /// Nothing listens at the address.
    Refused,
    /// No answer in time.
    Timeout,
    /// The network failed some other way.
    Unreachable,
    /// 429.
    Busy,
    /// 5xx.
    ServerTrouble(u16),
    /// The address is not a URL.
    BadAddress(String),
    /// An answer that is not the service's (an HTML page, say).
    NotTheService,
    /// The key or token is not saved.
    NotSaved,
    /// Another refusal, with the service's own words.
    Refused4xx(u16, String),
}

/// Classes a provider error (pure).
pub fn classify(err: &ProviderError) -> Problem {
    match err {
        ProviderError::BadBaseUrl { value, .. } => Problem::BadAddress(value.clone()),
        ProviderError::Transient { provider, .. } if *provider == "the keychain" => {
            Problem::NotSaved
        }
        ProviderError::Transient {
            status: Some(status),
            ..
        }
        | ProviderError::Permanent { status, .. }
            if matches!(status, 401 | 403) =>
        {
            Problem::WrongCredential
        }
        ProviderError::Transient {
            status: Some(404), ..
        }
        | ProviderError::Permanent { status: 404, .. } => Problem::WrongAddress,
        ProviderError::Transient {
            status: Some(429), ..
        } => Problem::Busy,
        ProviderError::Transient {
            status: Some(status),
            ..
        } if *status >= 500 => Problem::ServerTrouble(*status),
        ProviderError::Transient {
            status: Some(status),
            message,
            ..
        } => Problem::Refused4xx(*status, message.clone()),
        ProviderError::Transient { status: None, .. } => {
            let text = chain_text(err).to_lowercase();
            if [
                "dns error",
                "failed to lookup",
                "name or service not known",
                "no such host",
                "nodename nor servname",
                "name resolution",
            ]
            .iter()
            .any(|needle| text.contains(needle))
            {
                Problem::HostNotFound
            } else if text.contains("connection refused") {
                Problem::Refused
            } else if text.contains("timed out")
                || text.contains("timeout")
                || text.contains("no answer")
            {
                Problem::Timeout
            } else {
                Problem::Unreachable
            }
        }
        ProviderError::Permanent {
            status, message, ..
        } if *status == 0 || (200..300).contains(status) => {
            let _ = message;
            Problem::NotTheService
        }
        ProviderError::Permanent {
            status, message, ..
        } => Problem::Refused4xx(*status, message.clone()),
    }
}

/// The sentence the coach reads when `service` failed with `err` (pure).
pub fn explain(service: Service, err: &ProviderError) -> String {
    let title = service.title();
    let what = match classify(err) {
        Problem::WrongCredential => format!(
            "{title} refused the {} (HTTP 401): it is wrong, was revoked, or belongs to another account or mode. {}",
            service.credential(),
            service.fix_credential()
        ),
        Problem::WrongAddress => match service {
            Service::Relay => "Something answered at the relay URL, but it is not a Coachdesk relay (HTTP 404). Check the relay URL: it is the relay's base address, such as https://relay.example.com.".to_owned(),
            _ => format!("Something answered at {title}'s API address, but not {title}'s API (HTTP 404). Check the API address."),
        },
        Problem::HostNotFound => format!(
            "{title}'s host name cannot be found (DNS lookup failed). Check the address for typos, and that this computer is online."
        ),
        Problem::Refused => format!(
            "Nothing answers at {} address (connection refused): the server is down, or the address or port is wrong.",
            match service {
                Service::Relay => "the relay's",
                Service::Stripe => "Stripe's",
                Service::Calendly => "Calendly's",
            }
        ),
        Problem::Timeout => format!(
            "{title} did not answer in time: the server is down or cannot be reached from this network. Try again in a minute."
        ),
        Problem::Unreachable => format!(
            "{title} cannot be reached: check the address and this computer's internet connection."
        ),
        Problem::Busy => format!(
            "{title} is limiting requests right now (HTTP 429). Wait a minute and test again; your settings look fine."
        ),
        Problem::ServerTrouble(status) => format!(
            "{title} is having trouble (HTTP {status}). Try again later; this is not caused by your settings."
        ),
        Problem::BadAddress(value) => format!(
            "{title}'s address {value:?} is not a valid URL. Enter it as https://host."
        ),
        Problem::NotTheService => format!(
            "Something answered at {title}'s address, but the answer was not from {title}. Check the address."
        ),
        Problem::NotSaved => format!(
            "No {} is saved yet: paste it above and press Save.",
            service.credential()
        ),
        Problem::Refused4xx(status, message) => format!(
            "{title} refused the check (HTTP {status}): {message}"
        ),
    };
    format!("{what} {}", service.reassurance())
}

fn chain_text(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The keychain entry behind a wire name.
pub fn secret_name(name: &str) -> Option<SecretName> {
    match name {
        secret::STRIPE_TEST_KEY => Some(SecretName::StripeTestKey),
        secret::STRIPE_LIVE_KEY => Some(SecretName::StripeLiveKey),
        secret::CALENDLY_TOKEN => Some(SecretName::CalendlyToken),
        secret::RELAY_TOKEN => Some(SecretName::RelayToken),
        _ => None,
    }
}

const SECRETS: [(&str, &str, SecretName); 4] = [
    (
        secret::STRIPE_TEST_KEY,
        "Stripe secret key (test mode)",
        SecretName::StripeTestKey,
    ),
    (
        secret::STRIPE_LIVE_KEY,
        "Stripe secret key (live mode)",
        SecretName::StripeLiveKey,
    ),
    (
        secret::CALENDLY_TOKEN,
        "Calendly personal access token",
        SecretName::CalendlyToken,
    ),
    (secret::RELAY_TOKEN, "Relay token", SecretName::RelayToken),
];

/// Checks what the coach pasted (pure): trimmed, not empty, no spaces inside, and a Stripe
/// key of the right mode. Answers the value to store.
pub fn check_secret(name: SecretName, value: &str) -> Result<String, CommandError> {
    let value = value.trim();
    let refuse = |message: &str| CommandError {
        code: "invalid".into(),
        message: "The value was not saved; see the note next to the field.".into(),
        fields: vec![FieldError {
            field: "value".into(),
            message: message.into(),
        }],
    };
    if value.is_empty() {
        return Err(refuse("Paste the value first."));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(refuse(
            "The value contains spaces or line breaks; copy it again without them.",
        ));
    }
    let stripe_prefix = |prefixes: [&str; 2], other: [&str; 2], mode: &str, other_mode: &str| {
        if other.iter().any(|p| value.starts_with(p)) {
            Err(refuse(&format!(
                "This is a {other_mode}-mode key; the {mode}-mode key starts with {}.",
                prefixes[0]
            )))
        } else if prefixes.iter().any(|p| value.starts_with(p)) {
            Ok(())
        } else {
            Err(refuse(&format!(
                "A Stripe {mode}-mode secret key starts with {} (or {} for a restricted key).",
                prefixes[0], prefixes[1]
            )))
        }
    };
    match name {
        SecretName::StripeTestKey => stripe_prefix(
            ["sk_test_", "rk_test_"],
            ["sk_live_", "rk_live_"],
            "test",
            "live",
        )?,
        SecretName::StripeLiveKey => stripe_prefix(
            ["sk_live_", "rk_live_"],
            ["sk_test_", "rk_test_"],
            "live",
            "test",
        )?,
        _ => {}
    }
    Ok(value.to_owned())
}

/// The last four characters of a secret (to tell keys apart), or none when it is too
/// short to show any without giving most of it away.
pub fn last4(value: &str) -> Option<String> {
    let count = value.chars().count();
    (count >= 12).then(|| value.chars().skip(count - 4).collect())
}

fn feature_text(feature: Feature) -> (&'static str, &'static str) {
    match feature {
        Feature::Payments => (
            "Payments",
            "Off: Coachdesk creates no Stripe checkout sessions or payment links.",
        ),
        Feature::WebhookProcessing => (
            "Webhook processing",
            "Off: nothing is pulled from the relay; webhooks wait there and nothing is lost.",
        ),
        Feature::AutomaticRefunds => (
            "Automatic refunds",
            "Off: a refund after a client's cancellation waits in Needs attention for your approval.",
        ),
    }
}

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
                saved: store.api_base(key).map_err(CommandError::from)?,
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
        let features = self.store().features().map_err(CommandError::from)?;
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

    /// Runs "test connection" for `service`.
    pub async fn check_connection(&self, service: Service) -> ConnectionCheck {
        let result = match service {
            Service::Stripe => self.check_stripe().await,
            Service::Calendly => self.check_calendly().await,
            Service::Relay => self.check_relay().await,
        };
        match result {
            Ok(message) => ConnectionCheck {
                service: service.name().to_owned(),
                ok: true,
                message,
                detail: None,
            },
            Err(err) => {
                let detail = chain_text(&err);
                tracing::info!(service = service.name(), error = %detail, "connection test failed");
                ConnectionCheck {
                    service: service.name().to_owned(),
                    ok: false,
                    message: explain(service, &err),
                    detail: Some(detail),
                }
            }
        }
    }

    async fn check_stripe(&self) -> Result<String, ProviderError> {
        let stripe = self.providers().stripe()?.with_timeout(CHECK_TIMEOUT);
        stripe.list_events(None, None, 1).await?;
        let mode = if self.sync_config().mode == coachdesk_sync::Mode::Live {
            "live"
        } else {
            "test"
        };
        Ok(format!(
            "Connected to Stripe: the {mode}-mode secret key works."
        ))
    }

    async fn check_calendly(&self) -> Result<String, ProviderError> {
        let calendly = self.providers().calendly()?;
        let me = calendly.current_user().await?;
        Ok(format!(
            "Connected to Calendly: the access token works ({}).",
            me.scheduling_url.unwrap_or(me.uri)
        ))
    }

    async fn check_relay(&self) -> Result<String, ProviderError> {
        let Some(url) = self.relay_url_in_force() else {
            return Err(ProviderError::BadBaseUrl {
                provider: "the relay",
                value: String::new(),
            });
        };
        let token =
            self.secrets()
                .get(SecretName::RelayToken)
                .map_err(|err| ProviderError::Transient {
                    provider: "the keychain",
                    status: None,
                    message: err.to_string(),
                    retry_after: None,
                    source: None,
                })?;
        let client =
            RelayClient::new(&url, Duration::ZERO).map_err(|err| ProviderError::Transient {
                provider: "the relay",
                status: None,
                message: err.to_string(),
                retry_after: None,
                source: None,
            })?;
        let after = coachdesk_sync::relay::cursor(&self.store()).unwrap_or(0);
        // A pull without an ack reads and changes nothing at the relay. The client's own
        // timeouts bound it (10 s to connect, 15 s in all).
        let page = client
            .pull(token.expose(), after, 1, Duration::ZERO)
            .await?;
        Ok(format!(
            "Connected to the relay at {url}: the token works{}.",
            if page.events.is_empty() {
                String::new()
            } else {
                " and events are waiting to be applied".to_owned()
            }
        ))
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
        .map_err(CommandError::from)?;
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
        .map_err(CommandError::from)?;
    state.use_saved_api_bases().map_err(CommandError::from)?;
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
        .map_err(CommandError::from)?;
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
    let released = state
        .store()
        .approve_held_refunds(&booking_id, time::OffsetDateTime::now_utc())
        .map_err(CommandError::from)?;
    state.run_effects_soon();
    Ok(u32::try_from(released).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient(status: Option<u16>, message: &str) -> ProviderError {
        ProviderError::Transient {
            provider: "Stripe",
            status,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    #[test]
    fn a_refused_key_says_wrong_key_and_how_to_fix_it() {
        let err = ProviderError::Permanent {
            provider: "Stripe",
            status: 401,
            message: "Invalid API Key provided: sk_test_****1234".into(),
        };
        assert_eq!(classify(&err), Problem::WrongCredential);
        let text = explain(Service::Stripe, &err);
        assert!(
            text.starts_with("Stripe refused the secret key (HTTP 401)"),
            "{text}"
        );
        assert!(text.contains("Developers, API keys"), "{text}");
        assert!(text.contains("Nothing was changed"), "{text}");
        // The relay's 401 comes back transient; it reads the same.
        let relay = ProviderError::Transient {
            provider: "the relay",
            status: Some(401),
            message: "refused".into(),
            retry_after: None,
            source: None,
        };
        let text = explain(Service::Relay, &relay);
        assert!(text.contains("refused the relay token"), "{text}");
        assert!(text.contains("coachdesk-relay token create"), "{text}");
        assert!(text.contains("Nothing is lost"), "{text}");
    }

    #[test]
    fn a_404_says_wrong_address() {
        let err = transient(Some(404), "HTTP 404: not found");
        assert_eq!(classify(&err), Problem::WrongAddress);
        assert!(explain(Service::Relay, &err).contains("not a Coachdesk relay (HTTP 404)"));
        let err = ProviderError::Permanent {
            provider: "Calendly",
            status: 404,
            message: "Resource Not Found".into(),
        };
        assert!(explain(Service::Calendly, &err).contains("not Calendly's API (HTTP 404)"));
    }

    #[test]
    fn network_failures_are_told_apart_by_their_cause() {
        let cases = [
            ("error trying to connect: tcp connect error: Connection refused (os error 111)", Problem::Refused),
            ("error trying to connect: dns error: failed to lookup address information: Name or service not known", Problem::HostNotFound),
            ("no answer within 10s", Problem::Timeout),
            ("operation timed out", Problem::Timeout),
            ("connection reset by peer", Problem::Unreachable),
        ];
        for (message, problem) in cases {
            assert_eq!(classify(&transient(None, message)), problem, "{message}");
        }
        let refused = explain(Service::Relay, &transient(None, "Connection refused"));
        assert!(
            refused.starts_with("Nothing answers at the relay's address (connection refused)"),
            "{refused}"
        );
        let dns = explain(Service::Calendly, &transient(None, "dns error"));
        assert!(dns.contains("host name cannot be found"), "{dns}");
        let slow = explain(Service::Stripe, &transient(None, "no answer within 10s"));
        assert!(slow.contains("did not answer in time"), "{slow}");
    }

    #[test]
    fn the_cause_is_found_in_the_source_chain() {
        #[derive(Debug)]
        struct Io;
        impl std::fmt::Display for Io {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tcp connect error: Connection refused (os error 111)")
            }
        }
        impl std::error::Error for Io {}
        let err = ProviderError::Transient {
            provider: "the relay",
            status: None,
            message: "it could not be reached".into(),
            retry_after: None,
            source: Some(Box::new(Io)),
        };
        assert_eq!(classify(&err), Problem::Refused);
    }

    #[test]
    fn busy_broken_unset_and_odd_answers_each_have_their_words() {
        assert!(explain(Service::Stripe, &transient(Some(429), "slow")).contains("HTTP 429"));
        let broken = explain(Service::Calendly, &transient(Some(503), "down"));
        assert!(broken.contains("having trouble (HTTP 503)"), "{broken}");
        assert!(broken.contains("not caused by your settings"), "{broken}");
        let unset = ProviderError::Transient {
            provider: "the keychain",
            status: None,
            message: "the Calendly access token is not in the keychain".into(),
            retry_after: None,
            source: None,
        };
        assert_eq!(
            explain(Service::Calendly, &unset),
            "No access token is saved yet: paste it above and press Save. Nothing was changed: the test only reads, and your saved settings stay as they are."
        );
        let html = ProviderError::Permanent {
            provider: "Stripe",
            status: 0,
            message: "Stripe's answer could not be read: expected value".into(),
        };
        assert_eq!(classify(&html), Problem::NotTheService);
        let bad = ProviderError::BadBaseUrl {
            provider: "Stripe",
            value: "api stripe".into(),
        };
        assert!(explain(Service::Stripe, &bad).contains("\"api stripe\" is not a valid URL"));
        let other = ProviderError::Permanent {
            provider: "Stripe",
            status: 400,
            message: "Invalid limit".into(),
        };
        assert!(explain(Service::Stripe, &other)
            .contains("refused the check (HTTP 400): Invalid limit"));
    }

    #[test]
    fn pasted_secrets_are_checked_before_they_are_saved() {
        assert_eq!(
            check_secret(SecretName::StripeTestKey, "  sk_test_abc123 \n").unwrap(),
            "sk_test_abc123"
        );
        assert!(check_secret(SecretName::StripeTestKey, "rk_test_abc").is_ok());
        let live_in_test = check_secret(SecretName::StripeTestKey, "sk_live_abc").unwrap_err();
        assert!(
            live_in_test.fields[0].message.contains("live-mode key"),
            "{live_in_test:?}"
        );
        assert!(check_secret(SecretName::StripeLiveKey, "sk_test_abc").is_err());
        assert!(check_secret(SecretName::StripeLiveKey, "pk_live_abc").is_err());
        assert!(check_secret(SecretName::CalendlyToken, "").is_err());
        assert!(check_secret(SecretName::CalendlyToken, "eyJ abc").is_err());
        assert_eq!(
            check_secret(SecretName::RelayToken, "tok_123").unwrap(),
            "tok_123"
        );
    }

    #[test]
    fn only_the_last_four_of_a_long_secret_are_shown() {
        assert_eq!(last4("sk_test_51abcdWXYZ").as_deref(), Some("WXYZ"));
        assert_eq!(last4("short"), None);
        assert!(secret_name("stripe_test_key").is_some());
        assert!(secret_name("smtp_password").is_none());
    }
}
