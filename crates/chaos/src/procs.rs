//! The processes of one run: the real relay binary (killed, restarted, replaced on the same
//! address), the in-process simulator delivering webhooks to it, and the headless sync core
//! (`coachdesk-chaos-core`) on the run's SQLite file. Launching and waiting for
//! `listening on` are the test stack's ([`coachdesk_tests::stack`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use coachdesk_sim::{DeliveryKnobs, SimClient, SimConfig, Simulator};
use coachdesk_tests::stack::{create_relay_token, relay_command, sim_config, Proc};

/// The Stripe key the simulator accepts in chaos runs.
pub const STRIPE_KEY: &str = "sk_test_coachdesk_chaos";
/// The mail tests' SMTP sink (Python, aiosmtpd; `scripts/setup` installs it).
const SMTP_SINK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../mail/smtp_sink.py");
/// How long a process gets to say where it listens.
const START_LIMIT: Duration = Duration::from_secs(20);

/// A binary next to the running one (`target/<profile>/`), or `$env_var`.
pub fn sibling_binary(name: &str, env_var: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("where am I")?;
    let mut dir = exe.parent().context("the binary has no folder")?;
    // Tests run from target/<profile>/deps.
    if dir.ends_with("deps") {
        dir = dir.parent().context("deps has no parent")?;
    }
    let path = dir.join(name);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p coachdesk-relay -p coachdesk-chaos` \
         in the same profile, or set {env_var}",
        path.display()
    );
    Ok(path)
}

/// What a reconciliation of the core found (`coachdesk_sync::ReconcileReport`, read back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Stripe events and Calendly facts it had to recover.
    pub recovered: usize,
    pub errors: Vec<String>,
}

/// Everything running for one run.
pub struct Procs {
    pub dir: tempfile::TempDir,
    pub sim: Simulator,
    pub client: SimClient,
    relay_bin: PathBuf,
    core_bin: PathBuf,
    relay: Option<Proc>,
    /// `127.0.0.1:PORT`, kept across restarts so the simulator and the core still reach it.
    pub relay_addr: String,
    relay_db: PathBuf,
    /// How many relays were started empty (1 at first).
    pub relay_generation: u32,
    core: Option<Proc>,
    smtp: Option<Proc>,
    pub smtp_port: u16,
    /// Where the SMTP sink stores each message accepted (`NAME.json`).
    pub mail_dir: PathBuf,
    pub db: PathBuf,
    pub control: PathBuf,
    /// Seconds the simulator's clock (and the core's) was moved forward.
    pub clock_offset: i64,
    reconcile_requests: u64,
}

impl Procs {
    pub fn start(knobs: DeliveryKnobs) -> anyhow::Result<Procs> {
        let dir = tempfile::tempdir().context("scratch folder")?;
        let control = dir.path().join("control");
        std::fs::create_dir_all(&control)?;
        let relay_bin = sibling_binary("coachdesk-relay", "COACHDESK_RELAY_BIN")?;
        let core_bin = sibling_binary("coachdesk-chaos-core", "COACHDESK_CHAOS_CORE_BIN")?;
        let relay_db = dir.path().join("relay-1.db");
        let token = create_relay_token(&relay_bin, &relay_db, "app", "test")?;
        std::fs::write(control.join("relay_token"), token)?;
        let (relay, relay_addr) =
            launch_relay(&relay_bin, &relay_db, "127.0.0.1:0", log_file(dir.path())?)?;
        let sim = Simulator::start(SimConfig {
            stripe_api_key: Some(STRIPE_KEY.into()),
            delivery: knobs,
            hang_ms: 100,
            ..sim_config(&format!("http://{relay_addr}"))
        })
        .context("simulator")?;
        let mut client = sim.client();
        client.stripe_key = STRIPE_KEY.into();
        let smtp_port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("a free port for SMTP")?
            .port();
        let mut procs = Procs {
            smtp: None,
            smtp_port,
            mail_dir: dir.path().join("mail"),
            db: dir.path().join("coachdesk.db"),
            relay_db,
            dir,
            sim,
            client,
            relay_bin,
            core_bin,
            relay: Some(relay),
            relay_addr,
            relay_generation: 1,
            core: None,
            control,
            clock_offset: 0,
            reconcile_requests: 0,
        };
        procs.start_smtp()?;
        Ok(procs)
    }

    pub fn relay_url(&self) -> String {
        format!("http://{}", self.relay_addr)
    }

    pub fn sim_url(&self) -> String {
        self.sim.base_url().to_owned()
    }

    /// Starts the relay on its database; `new_token` makes the app's token first (a fresh
    /// database) and hands it to the core through `control/relay_token`.
    fn start_relay(&mut self, new_token: bool) -> anyhow::Result<()> {
        if new_token {
            let token = create_relay_token(&self.relay_bin, &self.relay_db, "app", "test")?;
            std::fs::write(self.control.join("relay_token"), token)?;
        }
        let (proc, addr) = launch_relay(
            &self.relay_bin,
            &self.relay_db,
            &self.relay_addr,
            log_file(self.dir.path())?,
        )?;
        self.relay_addr = addr;
        self.relay = Some(proc);
        Ok(())
    }

    pub fn relay_running(&self) -> bool {
        self.relay.is_some()
    }

    /// kill -9 of the relay (its database stays).
    pub fn kill_relay(&mut self) {
        if let Some(mut relay) = self.relay.take() {
            relay.kill();
        }
    }

    /// Starts the killed relay again on its database and address.
    pub fn restart_relay(&mut self) -> anyhow::Result<()> {
        if self.relay.is_none() {
            self.start_relay(false)?;
        }
        Ok(())
    }

    /// The relay redeployed without its data: kill -9, then an empty database (new token,
    /// new identity) on the same address.
    pub fn replace_relay(&mut self) -> anyhow::Result<()> {
        self.kill_relay();
        self.relay_generation += 1;
        self.relay_db = self
            .dir
            .path()
            .join(format!("relay-{}.db", self.relay_generation));
        self.start_relay(true)
    }

    pub fn core_running(&self) -> bool {
        self.core.is_some()
    }

    /// Starts the sync core on the run's database (no-op when it runs).
    pub fn start_core(&mut self) -> anyhow::Result<()> {
        if self.core.is_some() {
            return Ok(());
        }
        let mut command = Command::new(&self.core_bin);
        command
            .env("COACHDESK_CHAOS_DB", &self.db)
            .env("COACHDESK_CHAOS_CONTROL", &self.control)
            .env("COACHDESK_CHAOS_RELAY_URL", self.relay_url())
            .env("COACHDESK_CHAOS_SIM_URL", self.sim_url())
            .env("COACHDESK_CHAOS_STRIPE_KEY", STRIPE_KEY)
            .env("COACHDESK_CHAOS_CALENDLY_TOKEN", self.sim.calendly_token())
            .env(
                "COACHDESK_CHAOS_CLOCK_OFFSET",
                self.clock_offset.to_string(),
            )
            .stderr(append(self.dir.path(), "core.log")?);
        let (proc, _) = Proc::spawn_listening(command, "the sync core", START_LIMIT)?;
        self.core = Some(proc);
        Ok(())
    }

    /// kill -9 of the sync core, wherever it is.
    pub fn kill_core(&mut self) {
        if let Some(mut core) = self.core.take() {
            core.kill();
        }
    }

    /// Moves the simulator's clock, and the core's with it (the core restarts to read it).
    pub fn advance_clock(&mut self, seconds: i64) -> anyhow::Result<()> {
        self.client
            .advance_clock(seconds)
            .context("advance the simulator's clock")?;
        self.clock_offset += seconds;
        Ok(())
    }

    /// Starts the SMTP sink (the mail tests' loopback server) on its port (no-op when up).
    pub fn start_smtp(&mut self) -> anyhow::Result<()> {
        if self.smtp.is_some() {
            return Ok(());
        }
        let mut command = Command::new("python3");
        command
            .arg(SMTP_SINK)
            .arg("--port")
            .arg(self.smtp_port.to_string())
            .arg("--out")
            .arg(&self.mail_dir)
            .stderr(append(self.dir.path(), "smtp.log")?);
        let (proc, _) = Proc::spawn_ready(command, "the SMTP sink", START_LIMIT, "READY ")?;
        self.smtp = Some(proc);
        Ok(())
    }

    /// SMTP down: kill -9 of the sink (connections refused until it is started again).
    pub fn kill_smtp(&mut self) {
        if let Some(mut smtp) = self.smtp.take() {
            smtp.kill();
        }
    }

    /// Asks the running core for a reconciliation and waits for its report.
    pub fn reconcile(&mut self, limit: Duration) -> anyhow::Result<Reconciled> {
        self.reconcile_requests += 1;
        let n = self.reconcile_requests;
        let done = self.control.join("reconcile.done");
        // A report of an earlier core's request is not this one's.
        let start = std::fs::read_to_string(&done)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u64>().ok()))
            .unwrap_or(0);
        let n = n.max(start + 1);
        self.reconcile_requests = n;
        std::fs::write(self.control.join("reconcile.req"), n.to_string())?;
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(text) = std::fs::read_to_string(&done) {
                let mut lines = text.lines();
                if lines.next().and_then(|l| l.trim().parse::<u64>().ok()) == Some(n) {
                    let report: serde_json::Value =
                        serde_json::from_str(lines.next().unwrap_or("{}"))
                            .context("the core's reconcile report")?;
                    let list = |field: &str| report[field].as_array().map_or(0, Vec::len);
                    return Ok(Reconciled {
                        recovered: list("stripe_events_recovered")
                            + list("calendly_facts_recovered"),
                        errors: report["errors"]
                            .as_array()
                            .map(|e| e.iter().map(ToString::to_string).collect())
                            .unwrap_or_default(),
                    });
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the core did not reconcile within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Events the relay holds that the app has not acknowledged (its `/metrics`).
    pub fn relay_queue_depth(&self) -> anyhow::Result<i64> {
        let answer = coachdesk_sim::http::request(
            "GET",
            &format!("{}/metrics", self.relay_url()),
            &[],
            &[],
            Duration::from_secs(5),
        )
        .context("relay metrics")?;
        answer
            .text()
            .lines()
            .find_map(|l| l.strip_prefix("coachdesk_relay_queue_depth "))
            .and_then(|v| v.trim().parse().ok())
            .context("no queue depth in the relay's metrics")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn append(dir: &Path, name: &str) -> anyhow::Result<Stdio> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .with_context(|| format!("log {name}"))?;
    Ok(file.into())
}

fn log_file(dir: &Path) -> anyhow::Result<Stdio> {
    append(dir, "relay.log")
}

/// `coachdesk-relay serve` on `db` at `listen`; answers the process and its address.
fn launch_relay(bin: &Path, db: &Path, listen: &str, log: Stdio) -> anyhow::Result<(Proc, String)> {
    let mut serve = relay_command(bin, db, listen);
    serve
        .arg("serve")
        .env("COACHDESK_RELAY_LOG", "warn")
        .stderr(log);
    Proc::spawn_listening(serve, "the relay", START_LIMIT)
}
