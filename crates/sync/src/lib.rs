//! Coachdesk's background sync: the relay pull, the effect executor, reconciliation and
//! the Calendly subscription check, around the store's one apply path.
//!
//! Each part is a pure plan plus an async execute: [`executor::plan`]/[`executor::settle`]
//! decide, [`executor::Executor::run_once`] calls the providers; [`reconcile::calendly_facts`]
//! compares, [`reconcile::run`] reads and feeds. [`SyncEngine::start`] runs them all as tokio
//! tasks and keeps a [`SyncStatus`] for the UI.
//!
//! Secrets (Stripe key, Calendly token, relay token, Calendly signing key) come from a
//! [`secrets::SecretSource`] (the OS keychain in the app), read just before each use and
//! never written to the database or the logs.
//!
//! Depends on domain, store and providers; not on Tauri.

pub mod backoff;
pub mod executor;
pub mod keychain_backend;
pub mod read_back;
pub mod reconcile;
pub mod relay;
pub mod secrets;
pub mod subscription;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coachdesk_providers::{CalendlyApi, ProviderError, StripeApi};
use coachdesk_store::{Store, StoreError};
use serde::Serialize;
use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

pub use backoff::Backoff;
pub use executor::{
    Executor, ExecutorReport, LogNotifier, MailOutcome, Mailer, Notifier, UnconfiguredMailer,
};
pub use keychain_backend::{keychain_backend, keychain_entry, KeychainBackend};
pub use reconcile::ReconcileReport;
pub use secrets::{
    Keychain, MemorySecrets, Secret, SecretError, SecretName, SecretSource, SecretStorage,
};
pub use subscription::SubscriptionHealth;

/// What can stop a sync step.
#[derive(Debug, Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{0}")]
    Setup(String),
    /// The relay's operator turned Calendly key hand-over off: a subscription signed with
    /// a key of the app's would have every delivery refused, so none is registered.
    #[error("the relay's operator turned Calendly key hand-over off; the relay verifies Calendly only with the keys in its configuration (calendly_keys)")]
    KeyHandoverDisabled,
}

/// Test mode or live mode: which Stripe key is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Test,
    Live,
}

/// Everything the background tasks need besides the store and the secrets.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub mode: Mode,
    /// The relay's base URL (`https://relay.example.com`).
    pub relay_url: String,
    /// Stripe's API base (see `coachdesk_providers::stripe_base_from_env`).
    pub stripe_base: String,
    /// Calendly's API base.
    pub calendly_base: String,
    /// Where the relay receives Calendly webhooks (`{relay}/hooks/calendly`).
    pub calendly_callback_url: String,
    /// Where a client lands after paying a per-booking Checkout Session.
    pub checkout_success_url: String,
    pub pull_limit: u32,
    pub long_poll: Duration,
    /// Backoff while the relay is unreachable.
    pub relay_backoff: Backoff,
    /// Backoff of failing effects.
    pub effect_backoff: Backoff,
    /// Tries before a transiently failing effect is given up (and the booking flagged).
    pub effect_max_attempts: u32,
    /// How often the executor looks for due effects when nothing wakes it.
    pub executor_poll: Duration,
    pub provider_timeout: Duration,
    /// How often reconciliation runs on its own (`None`: only on demand).
    pub reconcile_every: Option<Duration>,
    /// How far back reconciliation compares Calendly's scheduled events.
    pub calendly_lookback: Duration,
    /// How often the Calendly subscription is checked (`None`: only at start-up).
    pub subscription_check_every: Option<Duration>,
    /// Added to the system clock wherever the tasks read the time (zero in the app): a
    /// harness that moves the providers' clock by days moves the app's with it, as a
    /// laptop that slept through them would see.
    pub clock_offset: time::Duration,
}

impl SyncConfig {
    /// Production defaults for a relay at `relay_url`.
    pub fn new(mode: Mode, relay_url: &str) -> Self {
        let relay_url = relay_url.trim_end_matches('/').to_owned();
        Self {
            mode,
            stripe_base: coachdesk_providers::stripe_base_from_env(None),
            calendly_base: coachdesk_providers::calendly_base_from_env(None),
            calendly_callback_url: format!("{relay_url}/hooks/calendly"),
            checkout_success_url: format!("{relay_url}/paid?session={{CHECKOUT_SESSION_ID}}"),
            relay_url,
            pull_limit: 500,
            long_poll: Duration::from_secs(25),
            relay_backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(60),
                jitter: 0.3,
            },
            effect_backoff: Backoff::default(),
            effect_max_attempts: 20,
            executor_poll: Duration::from_secs(5),
            provider_timeout: Duration::from_secs(30),
            reconcile_every: Some(Duration::from_secs(15 * 60)),
            calendly_lookback: Duration::from_secs(30 * 24 * 3600),
            subscription_check_every: Some(Duration::from_secs(60 * 60)),
            clock_offset: time::Duration::ZERO,
        }
    }

    /// The time the background tasks work at: the system clock plus [`Self::clock_offset`].
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.clock_offset
    }
}

/// Builds provider clients from the secrets, at the moment of use.
pub struct Providers {
    config: SyncConfig,
    secrets: Arc<dyn SecretSource>,
}

impl Providers {
    pub fn new(config: SyncConfig, secrets: Arc<dyn SecretSource>) -> Self {
        Self { config, secrets }
    }

    /// A Stripe client with the current mode's key.
    pub fn stripe(&self) -> Result<StripeApi, ProviderError> {
        let name = match self.config.mode {
            Mode::Test => SecretName::StripeTestKey,
            Mode::Live => SecretName::StripeLiveKey,
        };
        let key = self.secrets.get(name).map_err(missing)?;
        Ok(StripeApi::new(&self.config.stripe_base, key.expose())?
            .with_timeout(self.config.provider_timeout))
    }

    /// A Calendly client with the stored token.
    pub fn calendly(&self) -> Result<CalendlyApi, ProviderError> {
        let token = self
            .secrets
            .get(SecretName::CalendlyToken)
            .map_err(missing)?;
        CalendlyApi::new(
            &self.config.calendly_base,
            token.expose(),
            self.config.provider_timeout,
        )
    }
}

/// A missing secret is worth retrying: the coach may enter it.
fn missing(err: SecretError) -> ProviderError {
    ProviderError::Transient {
        provider: "the keychain",
        status: None,
        message: err.to_string(),
        retry_after: None,
        source: Some(Box::new(err)),
    }
}

pub(crate) use coachdesk_store::lock;

/// What the UI shows about sync (serialised for the shell's command).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// The last relay pull succeeded.
    pub connected: bool,
    /// When the last pull succeeded (RFC 3339).
    pub last_sync: Option<String>,
    /// Events applied from the relay since start (duplicates not counted).
    pub events_applied: u64,
    /// The highest relay sequence applied.
    pub relay_cursor: i64,
    /// Effects waiting to run.
    pub queue_depth: u64,
    pub effects_done: u64,
    pub effects_failed: u64,
    /// The last error of any task, in words for the coach.
    pub last_error: Option<String>,
    pub subscription: Option<SubscriptionHealth>,
    pub last_reconcile: Option<ReconcileReport>,
    /// When reconciliation last ran (RFC 3339).
    pub last_reconcile_at: Option<String>,
    /// Webhook processing is off in Settings: the relay is not pulled, events wait there.
    pub webhooks_paused: bool,
    /// Rounds of the pull loop finished (a pull, a failed pull or a paused check): a test
    /// or a support person can see the loop is alive and has looked since a given moment.
    pub pull_rounds: u64,
    /// Passes of the effect executor finished, for the same reason.
    pub executor_passes: u64,
    /// Whether the relay keeps the coach's client data sealed for this install.
    pub sealing: Sealing,
    /// Whether the relay makes each booking its own Checkout Session for this coach.
    pub relay_checkout: relay::RelayCheckout,
}

/// Whether the relay seals the coach's events for this install (see `relay::sealing`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum Sealing {
    /// Not known before the first pull, which registers this install's key.
    #[default]
    NotYet,
    /// This install's key is registered: the relay stores the coach's events sealed.
    On,
    /// Secrets are read-only here, so there is no key to seal for.
    NoKeyReadOnlySecrets,
    /// The relay does not seal (older than sealing).
    RelayDoesNotSeal,
}

impl Sealing {
    /// In words, for the diagnostics.
    pub fn words(self) -> &'static str {
        match self {
            Sealing::NotYet => "not known yet (this install registers its key at its first pull)",
            Sealing::On => "on: the relay keeps the coach's client data sealed for this install",
            Sealing::NoKeyReadOnlySecrets => {
                "off: secrets are read-only here, so this install has no key; the relay keeps events readable"
            }
            Sealing::RelayDoesNotSeal => "off: the relay is older than sealing and keeps events readable",
        }
    }
}

/// What the status says while webhook processing is off.
pub const WEBHOOKS_PAUSED: &str =
    "Webhook processing is off in Settings: new events wait at the relay until it is turned on.";

fn rfc3339(at: OffsetDateTime) -> Option<String> {
    at.format(&Rfc3339).ok()
}

/// An error with its sources, `outer: inner: ...`: what the logs and the coach's
/// diagnostics show of a failure (the error's own text alone hides its cause).
/// A source whose text the chain already holds (many errors repeat their cause's) is
/// not said twice.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let next = inner.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = inner.source();
    }
    text
}

/// The shared parts of the running tasks.
struct Shared {
    config: SyncConfig,
    store: Arc<Mutex<Store>>,
    secrets: Arc<dyn SecretSource>,
    providers: Arc<Providers>,
    status: watch::Sender<SyncStatus>,
    wake_executor: Notify,
    wake_reconcile: Notify,
    /// This install's sealing key once the relay has it (registered again when the relay
    /// is replaced).
    sealing: tokio::sync::Mutex<Option<Option<Arc<relay::sealing::Keys>>>>,
    /// The coach's restricted key was handed over to this relay in this run.
    checkout_handed: tokio::sync::Mutex<bool>,
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut SyncStatus)) {
        self.status.send_modify(f);
    }

    fn refresh_queue_depth(&self) {
        if let Ok(depth) = lock(&self.store).pending_effect_count() {
            self.update(|s| s.queue_depth = depth);
        }
    }
}

/// The running background tasks. Dropping it stops them (as does [`SyncHandle::shutdown`]).
pub struct SyncHandle {
    shared: Arc<Shared>,
    status: watch::Receiver<SyncStatus>,
    tasks: Vec<JoinHandle<()>>,
}

impl SyncHandle {
    /// The current status (cheap; call it from the shell's command).
    pub fn status(&self) -> SyncStatus {
        self.status.borrow().clone()
    }

    /// A receiver that changes with the status (for pushing it to the UI).
    pub fn subscribe(&self) -> watch::Receiver<SyncStatus> {
        self.status.clone()
    }

    /// Asks for a reconciliation now (it runs in the background; see the status).
    pub fn reconcile_soon(&self) {
        self.shared.wake_reconcile.notify_one();
    }

    /// Runs a reconciliation now and returns its report.
    pub async fn reconcile_now(&self) -> ReconcileReport {
        reconcile_once(&self.shared).await
    }

    /// Checks the Calendly subscription now.
    pub async fn check_subscription(&self) -> Result<SubscriptionHealth, SyncError> {
        let calendly = self.shared.providers.calendly()?;
        let health =
            subscription::check(&calendly, &self.shared.config.calendly_callback_url).await?;
        self.shared
            .update(|s| s.subscription = Some(health.clone()));
        Ok(health)
    }

    /// Recreates the Calendly subscription with the stored signing key (the coach's
    /// "Repair" button).
    pub async fn recreate_subscription(&self) -> Result<SubscriptionHealth, SyncError> {
        let calendly = self.shared.providers.calendly()?;
        let key = self.shared.secrets.get(SecretName::CalendlySigningKey)?;
        // The relay learns the key before Calendly signs anything with it.
        let handed = subscription::hand_key_to_relay(
            &self.shared.config.relay_url,
            self.shared.secrets.as_ref(),
            &key,
        )
        .await?;
        if handed == relay::KeyHandover::Disabled {
            return Err(SyncError::KeyHandoverDisabled);
        }
        let health = subscription::recreate(
            &calendly,
            &self.shared.config.calendly_callback_url,
            key.expose(),
        )
        .await?;
        self.shared
            .update(|s| s.subscription = Some(health.clone()));
        Ok(health)
    }

    /// Makes this install a new sealing key and registers it with the relay, which seals
    /// for it from now on (the coach's "New sealing key"). The key before it stays to open
    /// what was sealed for it until then. Answers how many events waiting for this install
    /// were sealed before (still opened with the previous key).
    pub async fn rotate_sealing_key(&self) -> Result<i64, SyncError> {
        let mut registered = self.shared.sealing.lock().await;
        // Until registered below, the next pull registers whatever the keychain holds.
        *registered = None;
        let keys = relay::sealing::rotate(self.shared.secrets.as_ref())?;
        let token = self.shared.secrets.get(SecretName::RelayToken)?;
        let relay = relay::RelayClient::new(&self.shared.config.relay_url, Duration::from_secs(0))?;
        let answer = register_sealing_key(&self.shared, &relay, token.expose(), &keys).await?;
        let Some(answer) = answer else {
            return Err(SyncError::Setup(
                "the relay is older than sealing: it keeps events readable, so there is no key to renew".into(),
            ));
        };
        tracing::info!("a new sealing key is registered with the relay");
        *registered = Some(Some(Arc::new(keys)));
        Ok(answer.sealed_before)
    }

    /// Runs due effects now (also happens on its own after each pull).
    pub fn run_effects_soon(&self) {
        self.shared.wake_executor.notify_one();
    }

    /// Stops every task. Safe at any instant: nothing is lost or repeated.
    pub fn shutdown(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Pluggable outlets for effects that reach the coach or the client.
pub struct Outlets {
    pub notifier: Arc<dyn Notifier>,
    pub mailer: Arc<dyn Mailer>,
}

impl Default for Outlets {
    fn default() -> Self {
        Self {
            notifier: Arc::new(LogNotifier),
            mailer: Arc::new(UnconfiguredMailer),
        }
    }
}

/// Starts the background tasks.
pub struct SyncEngine;

impl SyncEngine {
    /// Spawns the relay pull, the executor, periodic reconciliation and the subscription
    /// check on the current tokio runtime, and returns their handle. Call from inside the
    /// runtime (in Tauri: `tauri::async_runtime::spawn` or the setup hook).
    pub fn start(
        config: SyncConfig,
        store: Arc<Mutex<Store>>,
        secrets: Arc<dyn SecretSource>,
        outlets: Outlets,
    ) -> Result<SyncHandle, SyncError> {
        let relay = relay::RelayClient::new(&config.relay_url, config.long_poll)?;
        let providers = Arc::new(Providers::new(config.clone(), secrets.clone()));
        let initial = {
            let guard = lock(&store);
            SyncStatus {
                relay_cursor: relay::cursor(&guard)?,
                queue_depth: guard.pending_effect_count()?,
                ..SyncStatus::default()
            }
        };
        let (tx, rx) = watch::channel(initial);
        let shared = Arc::new(Shared {
            config,
            store: store.clone(),
            secrets,
            providers: providers.clone(),
            status: tx,
            wake_executor: Notify::new(),
            wake_reconcile: Notify::new(),
            sealing: tokio::sync::Mutex::new(None),
            checkout_handed: tokio::sync::Mutex::new(false),
        });
        let executor = Executor::new(store, providers, outlets, &shared.config);
        let tasks = vec![
            tokio::spawn(pull_loop(shared.clone(), relay)),
            tokio::spawn(executor_loop(shared.clone(), executor)),
            tokio::spawn(reconcile_loop(shared.clone())),
            tokio::spawn(subscription_loop(shared.clone())),
        ];
        Ok(SyncHandle {
            shared,
            status: rx,
            tasks,
        })
    }
}

async fn pull_loop(shared: Arc<Shared>, relay: relay::RelayClient) {
    let mut failures: u32 = 0;
    // The highest sequence this run acknowledged: a batch committed just before a crash
    // (never acked) is acknowledged by the first pull after the restart.
    let mut acked: i64 = 0;
    loop {
        if webhooks_paused(&shared) {
            tokio::time::sleep(PAUSED_POLL).await;
            shared.update(|s| s.pull_rounds += 1);
            continue;
        }
        let pulled = pull_once(&shared, &relay, &mut acked).await;
        shared.update(|s| s.pull_rounds += 1);
        match pulled {
            Ok(()) => failures = 0,
            Err(err) => {
                let text = error_chain(&err);
                tracing::warn!(error = %text, "relay sync failed");
                shared.update(|s| {
                    s.connected = false;
                    s.last_error = Some(text);
                });
                let delay = shared
                    .config
                    .relay_backoff
                    .delay(failures, None, rand::random());
                failures = failures.saturating_add(1);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// How often a paused pull loop looks whether webhook processing is back on.
const PAUSED_POLL: Duration = Duration::from_millis(500);

/// Reads the webhook-processing toggle and records a change in the status. A toggle that
/// cannot be read counts as on: pulling is the safe default (nothing is lost either way).
fn webhooks_paused(shared: &Shared) -> bool {
    let paused = !lock(&shared.store)
        .feature_enabled(coachdesk_store::Feature::WebhookProcessing)
        .unwrap_or(true);
    if paused != shared.status.borrow().webhooks_paused {
        tracing::info!(paused, "webhook processing toggled");
        shared.update(|s| {
            s.webhooks_paused = paused;
            if paused {
                s.connected = false;
                s.last_error = Some(WEBHOOKS_PAUSED.to_owned());
            } else if s.last_error.as_deref() == Some(WEBHOOKS_PAUSED) {
                s.last_error = None;
            }
        });
    }
    paused
}

/// This install's sealing key, registered with the relay once per relay: made on first
/// use. A relay of before sealing (no `/v1/app-keys`) keeps bodies readable, and the key
/// is simply not needed. Where secrets cannot be stored (a read-only source), no key is
/// registered and the relay keeps bodies readable for this coach; a keychain that fails
/// is an error (the pull is tried again), never a reason to drop sealed events.
async fn sealing_key(
    shared: &Shared,
    relay: &relay::RelayClient,
    token: &str,
) -> Result<Option<Arc<relay::sealing::Keys>>, SyncError> {
    let mut registered = shared.sealing.lock().await;
    if let Some(me) = registered.as_ref() {
        return Ok(me.clone());
    }
    let me = match relay::sealing::keys(shared.secrets.as_ref()) {
        Ok(me) => Arc::new(me),
        Err(SyncError::Secret(SecretError::ReadOnly { .. })) => {
            tracing::info!("secrets are read-only here: events are not sealed for this install");
            shared.update(|s| s.sealing = Sealing::NoKeyReadOnlySecrets);
            *registered = Some(None);
            return Ok(None);
        }
        Err(other) => return Err(other),
    };
    match register_sealing_key(shared, relay, token, &me).await? {
        Some(answer) if answer.sealed_before > 0 => tracing::info!(
            sealed_before = answer.sealed_before,
            "the relay seals for this install from now on; events sealed before for keys it may not hold are recovered by reconciliation"
        ),
        Some(_) => tracing::info!("the relay seals the coach's events for this install"),
        None => tracing::info!("the relay does not seal events (an older relay)"),
    }
    *registered = Some(Some(me.clone()));
    Ok(Some(me))
}

/// Hands the coach's Stripe restricted key to the relay once per relay and run (Settings
/// restarts sync when the key is saved or removed), or, when none is saved, has the relay
/// forget the one this token handed over before. The answer goes to the status; a refused
/// key does not stop the pull (clients then pay through the payment link), a relay or
/// keychain that fails does, to be tried again.
async fn hand_over_checkout_key(
    shared: &Shared,
    relay: &relay::RelayClient,
    token: &str,
) -> Result<(), SyncError> {
    let mut handed = shared.checkout_handed.lock().await;
    if *handed {
        return Ok(());
    }
    let key = match shared.secrets.get(SecretName::StripeCheckoutKey) {
        Ok(key) => Some(key),
        Err(SecretError::Missing { .. } | SecretError::ReadOnly { .. }) => None,
        Err(other) => return Err(other.into()),
    };
    let answer = relay
        .put_stripe_checkout_key(token, key.as_ref().map(Secret::expose))
        .await?;
    match &answer {
        relay::RelayCheckout::Refused(why) => {
            tracing::warn!(reason = %why, "the relay refused the Stripe restricted key");
        }
        other => tracing::info!(checkout = ?other, "Stripe restricted key handed over"),
    }
    shared.update(|s| s.relay_checkout = answer);
    *handed = true;
    Ok(())
}

/// Registers this install's current key with the relay and records in the status whether
/// the relay seals for it (`None`: a relay of before sealing).
async fn register_sealing_key(
    shared: &Shared,
    relay: &relay::RelayClient,
    token: &str,
    keys: &relay::sealing::Keys,
) -> Result<Option<relay::sealing::Registered>, SyncError> {
    let answer = relay
        .put_app_keys(token, &[keys.current.public().as_string()])
        .await?;
    shared.update(|s| {
        s.sealing = match answer {
            Some(_) => Sealing::On,
            None => Sealing::RelayDoesNotSeal,
        }
    });
    Ok(answer)
}

async fn pull_once(
    shared: &Shared,
    relay: &relay::RelayClient,
    acked: &mut i64,
) -> Result<(), SyncError> {
    let token = shared.secrets.get(SecretName::RelayToken)?;
    let me = sealing_key(shared, relay, token.expose()).await?;
    hand_over_checkout_key(shared, relay, token.expose()).await?;
    let after = relay::cursor(&lock(&shared.store))?;
    let mut page = relay
        .pull(
            token.expose(),
            after,
            shared.config.pull_limit,
            shared.config.long_poll,
        )
        .await?;
    match relay::check_identity(&shared.store, page.relay_id.as_deref())? {
        relay::Identity::Same => {}
        relay::Identity::Adopted => {
            tracing::info!(relay_id = ?page.relay_id, "relay identity recorded");
        }
        relay::Identity::Changed { previous, current } => {
            // Another relay: its sequences are not ours. Nothing of this page (pulled
            // after the old cursor) is applied and nothing is acked; the next pull starts
            // from the beginning of what it holds, and reconciliation recovers the rest.
            tracing::warn!(%previous, %current, "the relay was replaced or reset: pulling it from the start and reconciling");
            *acked = 0;
            // The new relay has no key of ours yet.
            *shared.sealing.lock().await = None;
            *shared.checkout_handed.lock().await = false;
            shared.update(|s| {
                s.relay_cursor = 0;
                s.sealing = Sealing::NotYet;
                s.relay_checkout = relay::RelayCheckout::NotYet;
            });
            shared.wake_reconcile.notify_one();
            return Ok(());
        }
    }
    // A new key made while this page was on its way opens it too (the one before is kept).
    let me = shared.sealing.lock().await.clone().flatten().or(me);
    let unreadable = relay::sealing::open_page(&mut page, me.as_deref());
    // Nothing confirmed and no money moved on a webhook's word alone (see `read_back`).
    let (contradictions, _calls) =
        relay::read_back_page(&shared.providers, &shared.store, &page).await?;
    if relay::cursor(&lock(&shared.store))? != after {
        // The database was restored while this page was on its way: it was pulled after a
        // cursor the store no longer has. Pull again from the store's own cursor.
        return Ok(());
    }
    let mut report = relay::apply_page(&shared.store, &page, &contradictions, shared.config.now())?;
    if let Some(&newest) = unreadable.iter().max() {
        // Sealed for keys this install does not hold: passed, and recovered from the
        // providers by reconciliation.
        relay::sealing::pass(&shared.store, newest)?;
        report.cursor = report.cursor.max(newest);
        shared.wake_reconcile.notify_one();
    }
    if report.cursor > *acked {
        match relay
            .ack(token.expose(), report.cursor, page.relay_id.as_deref())
            .await?
        {
            relay::AckOutcome::Acked => *acked = report.cursor,
            relay::AckOutcome::Refused => {
                // The relay does not hold what the cursor says (restored from an older
                // copy, or swapped since the pull): start over from what it holds.
                tracing::warn!(
                    cursor = report.cursor,
                    "the relay refused the ack: pulling it from the start and reconciling"
                );
                relay::rewind(&shared.store)?;
                *acked = 0;
                shared.update(|s| s.relay_cursor = 0);
                shared.wake_reconcile.notify_one();
                return Ok(());
            }
        }
    }
    if !page.events.is_empty() {
        shared.wake_executor.notify_one();
    }
    shared.update(|s| {
        s.connected = true;
        s.last_sync = rfc3339(shared.config.now());
        s.events_applied += report.applied as u64;
        s.relay_cursor = report.cursor;
    });
    shared.refresh_queue_depth();
    Ok(())
}

async fn executor_loop(shared: Arc<Shared>, executor: Executor) {
    loop {
        match executor.run_once(shared.config.now()).await {
            Ok(report) => shared.update(|s| {
                s.effects_done += u64::from(report.done);
                s.effects_failed += u64::from(report.failed);
                s.executor_passes += 1;
            }),
            Err(err) => {
                let text = error_chain(&err);
                tracing::warn!(error = %text, "effect executor failed");
                shared.update(|s| s.last_error = Some(text));
            }
        }
        shared.refresh_queue_depth();
        let _ = tokio::time::timeout(shared.config.executor_poll, shared.wake_executor.notified())
            .await;
    }
}

async fn reconcile_once(shared: &Shared) -> ReconcileReport {
    let now = shared.config.now();
    // After a restore, reach back to the backup's newest entry.
    let restored_since = lock(&shared.store)
        .setting(relay::RECONCILE_SINCE)
        .ok()
        .flatten()
        .and_then(|v| OffsetDateTime::parse(&v, &Rfc3339).ok());
    let since = (now - shared.config.calendly_lookback).min(restored_since.unwrap_or(now));
    let report = reconcile::run(
        shared.providers.stripe(),
        shared.providers.calendly(),
        &shared.store,
        since,
        now,
    )
    .await;
    if restored_since.is_some() && report.errors.is_empty() {
        if let Err(err) = lock(&shared.store).delete_setting(relay::RECONCILE_SINCE) {
            tracing::warn!(error = %err, "could not clear the restore's reconciliation mark");
        }
    }
    if report.fixed_anything() {
        tracing::info!(
            stripe = report.stripe_events_recovered.len(),
            calendly = report.calendly_facts_recovered.len(),
            "reconciliation recovered missed events"
        );
        shared.wake_executor.notify_one();
    }
    shared.update(|s| {
        if let Some(first) = report.errors.first() {
            s.last_error = Some(first.clone());
        }
        s.last_reconcile = Some(report.clone());
        s.last_reconcile_at = rfc3339(now);
    });
    report
}

async fn reconcile_loop(shared: Arc<Shared>) {
    let restored = lock(&shared.store)
        .setting(relay::RECONCILE_SINCE)
        .ok()
        .flatten()
        .is_some();
    if restored {
        reconcile_once(&shared).await;
    }
    loop {
        match shared.config.reconcile_every {
            Some(every) => {
                let _ = tokio::time::timeout(every, shared.wake_reconcile.notified()).await;
            }
            None => shared.wake_reconcile.notified().await,
        }
        reconcile_once(&shared).await;
    }
}

/// An active subscription is signed with the stored key: make sure the relay has it (a
/// relay replaced or restored since would refuse every delivery otherwise). A subscription
/// made elsewhere, with no key stored here, is left to the relay's own configuration.
async fn keep_relay_key(shared: &Shared) {
    let handed = match shared.secrets.get(SecretName::CalendlySigningKey) {
        Ok(key) => {
            subscription::hand_key_to_relay(&shared.config.relay_url, shared.secrets.as_ref(), &key)
                .await
        }
        Err(err) => Err(err.into()),
    };
    match handed {
        Ok(relay::KeyHandover::Accepted) | Err(SyncError::Secret(SecretError::Missing { .. })) => {}
        Ok(relay::KeyHandover::Disabled) => tracing::debug!(
            "the relay verifies Calendly with its configured keys only (hand-over turned off)"
        ),
        Err(err) => tracing::warn!(
            error = %error_chain(&err),
            "the relay could not be given the Calendly signing key; it will be tried again at the next check"
        ),
    }
}

async fn subscription_loop(shared: Arc<Shared>) {
    loop {
        let result = match shared.providers.calendly() {
            Ok(calendly) => {
                subscription::check(&calendly, &shared.config.calendly_callback_url).await
            }
            Err(err) => Err(err),
        };
        match result {
            Ok(health) => {
                if matches!(health, SubscriptionHealth::Active { .. }) {
                    keep_relay_key(&shared).await;
                } else {
                    tracing::warn!(?health, "the Calendly webhook subscription needs repair");
                }
                shared.update(|s| s.subscription = Some(health));
            }
            Err(err) => {
                tracing::warn!(error = %error_chain(&err), "Calendly subscription check failed")
            }
        }
        match shared.config.subscription_check_every {
            Some(every) => tokio::time::sleep(every).await,
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    enum Fault {
        #[error("the relay did not answer")]
        Outer(#[source] std::io::Error),
        #[error("connect failed: {0}")]
        Repeats(#[source] std::io::Error),
    }

    #[test]
    fn a_chain_names_each_cause_once() {
        let refused = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert_eq!(
            error_chain(&Fault::Outer(refused())),
            "the relay did not answer: refused"
        );
        assert_eq!(
            error_chain(&Fault::Repeats(refused())),
            "connect failed: refused"
        );
    }
}
