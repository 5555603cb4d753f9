//! The live stack for end-to-end tests and the demo: the real relay binary
//! (`coachdesk-relay`) and the real simulator binary (`coachdesk-sim serve`) on loopback,
//! the simulator delivering signed Stripe and Calendly webhooks to the relay.
//!
//! The simulator's Calendly account offers the demo seed's event types under the same URIs
//! (`crates/store/src/demo.rs`), so a client booking through [`Stack::book`] becomes a
//! booking of a demo session type, and [`Stack::pay`] pays it through a payment link of
//! that session type's price. [`Stack::app_env`] is what the app needs to sync with it in
//! demo mode (the simulator's keys held in memory, never the keychain).
//!
//! Both processes are killed when the [`Stack`] is dropped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context as _};
use coachdesk_sim::{EventTypeConfig, SimClient, SimConfig, WebhookTarget};
use serde_json::{json, Value};

pub use coachdesk_sim::Booking as SimBooking;

/// The Stripe webhook secret the simulator signs with and the relay checks.
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_coachdesk_live_stack";
/// The Calendly signing key the simulator signs with and the relay checks.
pub const CALENDLY_SIGNING_KEY: &str = "calendly-signing-key-live-stack";
/// The Stripe key the demo app uses at the simulator (it accepts any `sk_test_...`;
/// the app's `demo` module holds the same value).
pub const DEMO_STRIPE_KEY: &str = "sk_test_coachdesk_demo";
/// The Calendly token the simulator accepts (its default; the app's demo uses it too).
pub const DEMO_CALENDLY_TOKEN: &str = "sim-calendly-token";
/// Slugs of the simulator's event types, in the order of the demo seed's event types.
pub const DEMO_SLUGS: [&str; 3] = ["coaching-60", "intro-30", "deep-dive-90"];

/// A binary of this workspace: `$<env_var>`, else next to the app in `<target>/debug/`.
pub fn workspace_binary(name: &str, env_var: &str) -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os(env_var) {
        Some(path) => PathBuf::from(path),
        None => crate::e2e::target_dir().join("debug").join(name),
    };
    if !path.is_file() {
        bail!(
            "the {name} binary {} does not exist; build it with \
             `cargo build -p coachdesk-relay -p coachdesk-sim` (or set {env_var})",
            path.display()
        );
    }
    Ok(path)
}

/// A child process killed (SIGKILL) when dropped.
pub struct Proc(Child);

impl Proc {
    /// Starts `command` with its stdout piped and waits (within `limit`) for its first line,
    /// `listening on ADDR`; answers the process and `ADDR`. Later output is drained.
    pub fn spawn_listening(
        command: Command,
        what: &str,
        limit: Duration,
    ) -> anyhow::Result<(Proc, String)> {
        Self::spawn_ready(command, what, limit, "listening on ")
    }

    /// As [`Proc::spawn_listening`] for a process whose first line is `<banner><rest>`
    /// (`READY 2525` from the mail tests' SMTP sink); answers the process and `<rest>`.
    pub fn spawn_ready(
        mut command: Command,
        what: &str,
        limit: Duration,
        banner: &str,
    ) -> anyhow::Result<(Proc, String)> {
        let mut proc = Proc(
            command
                .stdout(Stdio::piped())
                .spawn()
                .with_context(|| format!("cannot start {what}"))?,
        );
        let rest = first_line_after(&mut proc.0, what, limit, banner)?;
        Ok((proc, rest))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Kills the process with SIGKILL (no chance to clean up) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The relay binary on the database `db`, listening on `listen`, with the stack's webhook
/// secrets; plain-http loopback payment links are allowed. Add `serve` or `token ...`.
pub fn relay_command(bin: &Path, db: &Path, listen: &str) -> Command {
    let mut command = Command::new(bin);
    command
        .env("COACHDESK_RELAY_DB", db)
        .env("COACHDESK_RELAY_LISTEN", listen)
        .env("COACHDESK_RELAY_STRIPE_SECRETS", STRIPE_WEBHOOK_SECRET)
        .env("COACHDESK_RELAY_CALENDLY_KEYS", CALENDLY_SIGNING_KEY)
        // The simulator's payment links are plain http on loopback.
        .env("COACHDESK_RELAY_PAYMENT_LINK_HOSTS", "http://127.0.0.1")
        .env("COACHDESK_RELAY_LOG", "info");
    command
}

/// `coachdesk-relay token create --name NAME --mode MODE` on the database `db`: the token.
pub fn create_relay_token(bin: &Path, db: &Path, name: &str, mode: &str) -> anyhow::Result<String> {
    let out = relay_command(bin, db, "127.0.0.1:0")
        .args(["token", "create", "--name", name, "--mode", mode])
        .output()
        .context("cannot run `coachdesk-relay token create`")?;
    if !out.status.success() {
        bail!(
            "`coachdesk-relay token create` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)
        .context("the relay token is not UTF-8")?
        .trim()
        .to_owned())
}

/// Reads the child's first stdout line, `<banner>REST`, within `limit`; answers `REST`.
fn first_line_after(
    child: &mut Child,
    what: &str,
    limit: Duration,
    banner: &str,
) -> anyhow::Result<String> {
    let stdout = child
        .stdout
        .take()
        .with_context(|| format!("{what}: no stdout"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = tx.send(reader.read_line(&mut line).map(|_| line.clone()));
        // Keep draining so the child never blocks on a full pipe.
        let mut sink = String::new();
        while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    let line = rx
        .recv_timeout(limit)
        .with_context(|| format!("{what} did not say where it listens within {limit:?}"))?
        .with_context(|| format!("cannot read {what}'s output"))?;
    line.trim()
        .strip_prefix(banner)
        .map(str::to_owned)
        .with_context(|| format!("{what} printed {line:?} instead of `{banner}...`"))
}

/// The relay and the simulator, running.
pub struct Stack {
    // Field order: the processes stop before their folder is removed.
    _sim: Proc,
    _relay: Proc,
    dir: tempfile::TempDir,
    /// The relay's base URL (`http://127.0.0.1:PORT`).
    pub relay_url: String,
    /// A bearer token for the relay's `/v1/events`.
    pub relay_token: String,
    /// The simulator's base URL (Stripe and Calendly APIs and `/_sim/...`).
    pub sim_url: String,
    /// The scripted client and the simulator's control API.
    pub client: SimClient,
    /// Payment links created so far, by event type URI.
    links: Mutex<HashMap<String, String>>,
}

impl Stack {
    /// Starts the relay, then the simulator delivering webhooks to it. Logs go to
    /// `<logs>/relay.log` and `<logs>/sim.log` when `logs` is given (stderr otherwise).
    pub fn start(logs: Option<&Path>) -> anyhow::Result<Stack> {
        let dir = tempfile::tempdir().context("cannot create the stack's folder")?;
        let log = |name: &str| -> anyhow::Result<Stdio> {
            Ok(match logs {
                Some(folder) => {
                    std::fs::create_dir_all(folder)?;
                    let path = folder.join(name);
                    std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?
                        .into()
                }
                None => Stdio::inherit(),
            })
        };

        let relay_bin = workspace_binary("coachdesk-relay", "COACHDESK_RELAY_BIN")?;
        let relay_db = dir.path().join("relay.db");
        // The demo and e2e apps run in test mode.
        let relay_token = create_relay_token(&relay_bin, &relay_db, "app", "test")?;
        let mut serve = relay_command(&relay_bin, &relay_db, "127.0.0.1:0");
        serve.arg("serve").stderr(log("relay.log")?);
        let (relay, relay_addr) =
            Proc::spawn_listening(serve, "the relay", Duration::from_secs(20))?;
        let relay_url = format!("http://{relay_addr}");

        let config_path = dir.path().join("sim.json");
        let config = sim_config(&relay_url);
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config)?)
            .context("cannot write the simulator's config")?;
        let sim_bin = workspace_binary("coachdesk-sim", "COACHDESK_SIM_BIN")?;
        let mut serve = Command::new(&sim_bin);
        serve
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .stderr(log("sim.log")?);
        let (sim, sim_addr) =
            Proc::spawn_listening(serve, "the simulator", Duration::from_secs(20))?;
        let sim_url = format!("http://{sim_addr}");
        let mut client = SimClient::new(&sim_url);
        client.stripe_key = DEMO_STRIPE_KEY.to_owned();
        client.calendly_token = DEMO_CALENDLY_TOKEN.to_owned();
        Ok(Stack {
            _sim: sim,
            _relay: relay,
            dir,
            relay_url,
            relay_token,
            sim_url,
            client,
            links: Mutex::new(HashMap::new()),
        })
    }

    /// The stack's scratch folder (relay database, simulator config).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Environment for the app in demo mode, syncing with this stack: `COACHDESK_DEMO=1`,
    /// the simulator as Stripe and Calendly, the relay and its token.
    pub fn app_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("COACHDESK_DEMO", "1".to_owned()),
            ("COACHDESK_SIM_URL", self.sim_url.clone()),
            ("COACHDESK_RELAY_URL", self.relay_url.clone()),
            ("COACHDESK_DEMO_RELAY_TOKEN", self.relay_token.clone()),
        ]
    }

    /// Starts tauri-driver for `sandbox` so the apps it launches sync with this stack
    /// ([`Stack::app_env`]); the driver's log is `<artifacts>/<log_name>.log`.
    pub fn start_driver(
        &self,
        sandbox: &crate::e2e::Sandbox,
        log_name: &str,
    ) -> anyhow::Result<crate::e2e::TauriDriver> {
        let env = self.app_env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        sandbox.start_driver(&env, log_name)
    }

    /// The demo event type URI with this slug (see [`DEMO_SLUGS`]).
    pub fn event_type_uri(slug: &str) -> anyhow::Result<&'static str> {
        DEMO_SLUGS
            .iter()
            .position(|s| *s == slug)
            .map(|i| coachdesk_demo::DEMO_EVENT_TYPES[i].0)
            .with_context(|| format!("no demo event type {slug:?}"))
    }

    /// A client books the event type `slug` starting at `start` (RFC 3339; the simulator
    /// picks a slot two days ahead when `None`).
    pub fn book(
        &self,
        slug: &str,
        name: &str,
        email: &str,
        start: Option<&str>,
    ) -> anyhow::Result<SimBooking> {
        let mut args = json!({"event_type": slug, "name": name, "email": email});
        if let Some(start) = start {
            args["start_time"] = json!(start);
        }
        self.client
            .book_with(args)
            .with_context(|| format!("{email} cannot book {slug} at the simulator"))
    }

    /// The client of `booking` pays through the payment link of the session type sold as
    /// event type `slug`, as the relay's `/pay` redirect sends them (`client_reference_id`
    /// is the invitee's UUID). Returns the simulator's answer (session, payment intent).
    pub fn pay(&self, slug: &str, booking: &SimBooking) -> anyhow::Result<Value> {
        let link = self.payment_link(slug)?;
        self.client
            .pay_link(&link, &booking.invitee_uuid, &booking.email, false)
            .with_context(|| format!("{} cannot pay at the simulator", booking.email))
    }

    /// The payment link (id) selling event type `slug` at its demo price, created at the
    /// simulator's Stripe on first use.
    pub fn payment_link(&self, slug: &str) -> anyhow::Result<String> {
        let index = DEMO_SLUGS
            .iter()
            .position(|s| *s == slug)
            .with_context(|| format!("no demo event type {slug:?}"))?;
        let mut links = self
            .links
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(link) = links.get(slug) {
            return Ok(link.clone());
        }
        let (_, name) = coachdesk_demo::DEMO_EVENT_TYPES[index];
        let (_, price, currency) = coachdesk_demo::DEMO_TERMS[index];
        let minor = minor_units(price, currency)?;
        let product = self.stripe("/v1/products", &json!({"name": name}))?;
        let price = self.stripe(
            "/v1/prices",
            &json!({"product": product["id"], "unit_amount": minor, "currency": currency.to_lowercase()}),
        )?;
        let link = self.stripe(
            "/v1/payment_links",
            &json!({"line_items": [{"price": price["id"], "quantity": 1}]}),
        )?;
        let id = link["id"]
            .as_str()
            .context("the simulator's payment link has no id")?
            .to_owned();
        links.insert(slug.to_owned(), id.clone());
        Ok(id)
    }

    /// Events the relay holds that some consumer has not acknowledged yet (its
    /// `coachdesk_relay_queue_depth`).
    pub fn relay_queue_depth(&self) -> anyhow::Result<u64> {
        let page = coachdesk_sim::http::request(
            "GET",
            &format!("{}/metrics", self.relay_url),
            &[],
            b"",
            Duration::from_secs(5),
        )
        .context("read the relay's metrics")?
        .text();
        page.lines()
            .find_map(|l| l.strip_prefix("coachdesk_relay_queue_depth "))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no queue depth in the relay's metrics: {page}"))
    }

    /// Requests the simulator's fake APIs received whose path starts with `prefix`.
    pub fn requests(
        &self,
        method: Option<&str>,
        prefix: &str,
    ) -> anyhow::Result<Vec<coachdesk_sim::RequestRecord>> {
        self.client
            .requests(method, Some(prefix))
            .context("cannot read the simulator's request log")
    }

    fn stripe(&self, path: &str, params: &Value) -> anyhow::Result<Value> {
        let answer = self
            .client
            .stripe("POST", path, params, None)
            .with_context(|| format!("POST {path} at the simulator"))?;
        if !(200..300).contains(&answer.status) {
            bail!(
                "the simulator answered {} to POST {path}: {}",
                answer.status,
                answer.text()
            );
        }
        answer
            .json()
            .with_context(|| format!("POST {path}: not JSON"))
    }
}

/// The simulator's settings: the demo's event types under the demo's URIs, webhooks to
/// the relay, no random delivery faults.
pub fn sim_config(relay_url: &str) -> SimConfig {
    let mut config = SimConfig {
        listen: "127.0.0.1:0".into(),
        stripe_webhook: Some(WebhookTarget {
            url: format!("{relay_url}/hooks/stripe"),
            secret: STRIPE_WEBHOOK_SECRET.into(),
        }),
        calendly_webhook: Some(WebhookTarget {
            url: format!("{relay_url}/hooks/calendly"),
            secret: CALENDLY_SIGNING_KEY.into(),
        }),
        ..SimConfig::default()
    };
    config.event_types = coachdesk_demo::DEMO_EVENT_TYPES
        .iter()
        .zip(coachdesk_demo::DEMO_TERMS)
        .zip(DEMO_SLUGS)
        .map(|(((uri, name), (minutes, _, _)), slug)| EventTypeConfig {
            slug: slug.to_owned(),
            name: (*name).to_owned(),
            duration_minutes: i64::from(minutes),
            uuid: uri.rsplit('/').next().map(str::to_owned),
        })
        .collect();
    config
}

/// `"150.00"` EUR -> 15000; `"25000"` JPY -> 25000.
fn minor_units(price: &str, currency: &str) -> anyhow::Result<i64> {
    let currency = coachdesk_domain::Currency::parse(currency)
        .map_err(|e| anyhow::anyhow!("demo currency {currency}: {e}"))?;
    coachdesk_domain::Money::parse_major(price, currency)
        .map(|m| m.minor)
        .map_err(|e| anyhow::anyhow!("demo price {price}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_offers_the_demo_event_types_under_their_uris() {
        let config = sim_config("http://127.0.0.1:9");
        let uris: Vec<String> = config
            .event_types
            .iter()
            .map(|et| {
                format!(
                    "{}/event_types/{}",
                    config.calendly_uri_base,
                    et.uuid.as_deref().unwrap_or("?")
                )
            })
            .collect();
        let demo: Vec<&str> = coachdesk_demo::DEMO_EVENT_TYPES
            .iter()
            .map(|(uri, _)| *uri)
            .collect();
        assert_eq!(uris, demo);
        assert_eq!(
            config.calendly_webhook.map(|t| t.url).as_deref(),
            Some("http://127.0.0.1:9/hooks/calendly")
        );
    }

    #[test]
    fn demo_prices_in_minor_units() {
        assert_eq!(minor_units("150.00", "EUR").unwrap(), 15000);
        assert_eq!(minor_units("25000", "JPY").unwrap(), 25000);
    }
}
