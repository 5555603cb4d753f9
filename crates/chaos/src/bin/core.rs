//! `coachdesk-chaos-core`: the app's sync core without a window — the store on a SQLite
//! file, the relay pull loop, the effect executor and reconciliation, all from
//! `coachdesk_sync::SyncEngine` — run by the chaos harness as a process it can kill -9.
//!
//! Settings come from the environment (see [`Env`]); secrets are held in memory except the
//! relay token, read from a file at each use so the harness can hand over a new relay's
//! token. Client emails go through the app's own SMTP mailer (`coachdesk_mail::SmtpMailer`,
//! deciding at send time) to the SMTP server in the store's mail settings. A reconciliation runs
//! each time `<control>/reconcile.req` holds a number higher than the last one run; its
//! report goes to `<control>/reconcile.done`.
//!
//! Prints `listening on <pid>` once sync runs, as the stack's processes do.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use coachdesk_mail::{Dispatcher, FixedPassword, SmtpMailer};
use coachdesk_store::Store;
use coachdesk_sync::{
    Backoff, LogNotifier, Mode, Outlets, Secret, SecretError, SecretName, SecretSource, SyncConfig,
    SyncEngine,
};

/// The core's settings, from `COACHDESK_CHAOS_*` variables.
struct Env {
    db: PathBuf,
    control: PathBuf,
    relay_url: String,
    sim_url: String,
    stripe_key: String,
    calendly_token: String,
    clock_offset_secs: i64,
}

fn var(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is not set"))
}

impl Env {
    fn read() -> anyhow::Result<Env> {
        Ok(Env {
            db: var("COACHDESK_CHAOS_DB")?.into(),
            control: var("COACHDESK_CHAOS_CONTROL")?.into(),
            relay_url: var("COACHDESK_CHAOS_RELAY_URL")?,
            sim_url: var("COACHDESK_CHAOS_SIM_URL")?,
            stripe_key: var("COACHDESK_CHAOS_STRIPE_KEY")?,
            calendly_token: var("COACHDESK_CHAOS_CALENDLY_TOKEN")?,
            clock_offset_secs: var("COACHDESK_CHAOS_CLOCK_OFFSET")?
                .parse()
                .context("COACHDESK_CHAOS_CLOCK_OFFSET takes whole seconds")?,
        })
    }
}

/// Provider keys in memory, the relay token from its file, and the app's sealing key in
/// a file of its own, so a killed and restarted core keeps opening what the relay sealed
/// for it.
struct ChaosSecrets {
    stripe_key: String,
    calendly_token: String,
    relay_token_file: PathBuf,
    sealing_key_file: PathBuf,
}

impl SecretSource for ChaosSecrets {
    fn get(&self, name: SecretName) -> Result<Secret, SecretError> {
        let missing = || SecretError::Missing {
            label: "secret the chaos core does not hold",
        };
        match name {
            SecretName::StripeTestKey => Ok(Secret::new(self.stripe_key.clone())),
            SecretName::CalendlyToken => Ok(Secret::new(self.calendly_token.clone())),
            SecretName::RelayToken => std::fs::read_to_string(&self.relay_token_file)
                .map(|t| Secret::new(t.trim().to_owned()))
                .map_err(|_| missing()),
            SecretName::RelaySealingKey => std::fs::read_to_string(&self.sealing_key_file)
                .map(|t| Secret::new(t.trim().to_owned()))
                .map_err(|_| missing()),
            _ => Err(missing()),
        }
    }

    fn store(&self, name: SecretName, value: &Secret) -> Result<(), SecretError> {
        if name != SecretName::RelaySealingKey {
            return Err(SecretError::ReadOnly {
                label: "secret the chaos core does not keep",
            });
        }
        // Written whole, then renamed: a core killed meanwhile leaves the old file or none.
        let tmp = self.sealing_key_file.with_extension("tmp");
        std::fs::write(&tmp, value.expose())
            .and_then(|()| std::fs::rename(&tmp, &self.sealing_key_file))
            .map_err(|_| SecretError::ReadOnly {
                label: "relay sealing key (its file could not be written)",
            })
    }
}

/// Short waits and retries so a run settles in seconds; the simulator as both providers.
fn config(env: &Env) -> SyncConfig {
    let mut config = SyncConfig::new(Mode::Test, &env.relay_url);
    config.stripe_base = format!("{}/", env.sim_url);
    config.calendly_base = env.sim_url.clone();
    config.long_poll = Duration::from_millis(500);
    config.relay_backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(300),
        jitter: 0.2,
    };
    config.effect_backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(1500),
        jitter: 0.2,
    };
    config.effect_max_attempts = 12;
    config.executor_poll = Duration::from_millis(50);
    config.provider_timeout = Duration::from_secs(3);
    config.reconcile_every = None;
    config.subscription_check_every = None;
    config.calendly_lookback = Duration::from_secs(90 * 24 * 3600);
    config.clock_offset = time::Duration::seconds(env.clock_offset_secs);
    config
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COACHDESK_CHAOS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let env = Env::read()?;
    let store = Store::open(&env.db).with_context(|| format!("opening {}", env.db.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(env, store))
}

async fn run(env: Env, store: Store) -> anyhow::Result<()> {
    let secrets = Arc::new(ChaosSecrets {
        stripe_key: env.stripe_key.clone(),
        calendly_token: env.calendly_token.clone(),
        relay_token_file: env.control.join("relay_token"),
        sealing_key_file: env.control.join("sealing_key"),
    });
    let store = Arc::new(Mutex::new(store));
    let outlets = Outlets {
        notifier: Arc::new(LogNotifier),
        // The loopback SMTP server needs no login.
        mailer: Arc::new(SmtpMailer::new(Dispatcher::new(
            store.clone(),
            Arc::new(FixedPassword(None)),
        ))),
    };
    let handle = SyncEngine::start(config(&env), store, secrets, outlets)?;
    println!("listening on {}", std::process::id());
    let request = env.control.join("reconcile.req");
    let done = env.control.join("reconcile.done");
    let read_n = |path: &PathBuf| -> u64 {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()))
            .unwrap_or(0)
    };
    let mut last = read_n(&done);
    loop {
        let wanted = read_n(&request);
        if wanted > last {
            let report = handle.reconcile_now().await;
            let text = format!(
                "{wanted}\n{}\n",
                serde_json::to_string(&report).context("report as JSON")?
            );
            // Written whole then renamed: the harness never reads half a report.
            let tmp = env.control.join("reconcile.done.tmp");
            std::fs::write(&tmp, text)?;
            std::fs::rename(&tmp, &done)?;
            last = wanted;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
