//! Running the real relay binary for the tests: temp database, port 0, signed requests.
#![allow(dead_code)]

pub mod http;
pub mod postgres;

use std::cell::Cell;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const STRIPE_SECRET: &str = "whsec_test_relay_secret";
pub const STRIPE_OLD_SECRET: &str = "whsec_test_relay_previous";
pub const CALENDLY_KEY: &str = "calendly-signing-key-for-tests";

pub const BIN: &str = env!("CARGO_BIN_EXE_coachdesk-relay");

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub use coachdesk_waiting::eventually;

/// One sample of the relay's `/metrics`, by its name and labels as printed.
pub fn metric(addr: SocketAddr, sample: &str) -> u64 {
    let page = http::request(addr, "GET", "/metrics", &[], b"").expect("metrics");
    match page.sample(sample) {
        Some(value) => value as u64,
        None => panic!("{sample} not in the metrics: {}", page.text()),
    }
}

/// Waits until the relay has `n` long-polls waiting (a pull sent from another thread has
/// arrived and is parked).
pub fn wait_for_long_polls(addr: SocketAddr, n: u64) {
    eventually("the long-poll parking", Duration::from_secs(10), || {
        let waiting = metric(addr, "coachdesk_relay_long_polls_waiting");
        if waiting == n {
            Ok(())
        } else {
            Err(waiting)
        }
    });
}

/// Which database the relays a test starts use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// A SQLite file in the relay's temporary directory (the default).
    Sqlite,
    /// A fresh database on this test binary's private PostgreSQL server.
    Postgres,
}

thread_local! {
    static DB: Cell<Db> = const { Cell::new(Db::Sqlite) };
}

/// Runs `test` with every relay it starts on `db`. A PostgreSQL run fails if no server can
/// be started (see [`postgres::server`]).
pub fn on_db(db: Db, test: fn()) {
    if db == Db::Postgres && postgres::server().is_none() {
        return;
    }
    DB.with(|d| d.set(db));
    test();
    DB.with(|d| d.set(Db::Sqlite));
}

/// Each listed test (a plain `fn()`) as two tests, `on_sqlite::NAME` and
/// `on_postgres::NAME`: one suite, two backends. Attributes before a name (`#[ignore]`)
/// go on both.
#[macro_export]
macro_rules! on_both_backends {
    ($($(#[$attr:meta])* $test:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test]
            $(#[$attr])*
            fn $test() {
                $crate::support::on_db($crate::support::Db::Sqlite, super::$test);
            })*
        }
        mod on_postgres {
            $(#[test]
            $(#[$attr])*
            fn $test() {
                $crate::support::on_db($crate::support::Db::Postgres, super::$test);
            })*
        }
    };
}

/// A relay process on a temporary database.
pub struct Relay {
    pub dir: tempfile::TempDir,
    pub child: Option<Child>,
    pub addr: SocketAddr,
    pub extra_env: Vec<(String, String)>,
    pub token: String,
}

fn command(db: &Path, extra_env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("COACHDESK_RELAY_DB", db)
        .env("COACHDESK_RELAY_LISTEN", "127.0.0.1:0")
        .env(
            "COACHDESK_RELAY_STRIPE_SECRETS",
            format!("{STRIPE_OLD_SECRET},{STRIPE_SECRET}"),
        )
        .env("COACHDESK_RELAY_CALENDLY_KEYS", CALENDLY_KEY)
        .env("COACHDESK_RELAY_LOG", "warn");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd
}

/// `token create FLAGS` on `db`; the printed token.
pub fn run_token_create(db: &Path, extra_env: &[(String, String)], flags: &[&str]) -> String {
    let out = command(db, extra_env)
        .args(["token", "create"])
        .args(flags)
        .output()
        .expect("run token create");
    assert!(out.status.success(), "token create failed: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

/// The index key of relays on PostgreSQL (shared by every process on one database).
pub const INDEX_KEY: &str = "relay-tests-index-key-0123456789abcdef";

impl Relay {
    pub fn start() -> Relay {
        Self::start_with(&[])
    }

    pub fn start_with(env: &[(&str, &str)]) -> Relay {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut extra_env: Vec<(String, String)> = Vec::new();
        if DB.with(Cell::get) == Db::Postgres {
            let url = postgres::fresh_database().expect("a PostgreSQL database");
            extra_env.push(("COACHDESK_RELAY_DATABASE_URL".to_owned(), url));
            extra_env.push(("COACHDESK_RELAY_INDEX_KEY".to_owned(), INDEX_KEY.to_owned()));
        }
        extra_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let token = run_token_create(
            &dir.path().join("relay.db"),
            &extra_env,
            &["--name", "app", "--mode", "test"],
        );
        let mut relay = Relay {
            dir,
            child: None,
            addr: "127.0.0.1:1".parse().expect("addr"),
            extra_env,
            token,
        };
        relay.spawn();
        if DB.with(Cell::get) == Db::Postgres {
            assert!(
                !relay.db().exists(),
                "a PostgreSQL run must not make a SQLite file"
            );
        }
        relay
    }

    /// A second relay process on this one's PostgreSQL database, with the same settings
    /// and token (a relay scaled out behind a load balancer).
    pub fn another_process(&self) -> Relay {
        assert!(
            self.extra_env
                .iter()
                .any(|(k, _)| k == "COACHDESK_RELAY_DATABASE_URL"),
            "several processes share a PostgreSQL database, not a SQLite file"
        );
        let mut relay = Relay {
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
            addr: "127.0.0.1:1".parse().expect("addr"),
            extra_env: self.extra_env.clone(),
            token: self.token.clone(),
        };
        relay.spawn();
        relay
    }

    /// Runs `coachdesk-relay ARGS` against this relay's database and settings.
    pub fn command(&self, args: &[&str]) -> std::process::Output {
        command(&self.db(), &self.extra_env)
            .args(args)
            .output()
            .expect("run the relay command")
    }

    /// `token create --name NAME --mode MODE`: the new token.
    pub fn create_token(&self, name: &str, mode: &str) -> String {
        run_token_create(
            &self.db(),
            &self.extra_env,
            &["--name", name, "--mode", mode],
        )
    }

    /// The SQLite file (unused when the test runs on PostgreSQL).
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("relay.db")
    }

    /// Start (or restart) the process and wait for its `listening on` line.
    pub fn spawn(&mut self) {
        let (child, addr) = coachdesk_waiting::spawn_listening(
            command(&self.db(), &self.extra_env)
                .arg("serve")
                .stderr(Stdio::inherit()),
            Duration::from_secs(30),
        );
        self.addr = addr.parse().expect("socket addr");
        self.child = Some(child);
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill");
            c.wait().expect("wait");
        }
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let status = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        eventually("the relay stopping", Duration::from_secs(20), || {
            c.try_wait().expect("try_wait").ok_or("running")
        })
    }

    pub fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub fn post_hook(&self, provider: &str, sig_header: Option<&str>, body: &[u8]) -> http::Reply {
        let name = match provider {
            "stripe" => "Stripe-Signature",
            _ => "Calendly-Webhook-Signature",
        };
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(h) = sig_header {
            headers.push((name, h));
        }
        http::request(
            self.addr,
            "POST",
            &format!("/hooks/{provider}"),
            &headers,
            body,
        )
        .expect("post hook")
    }

    /// Pull everything after `after`, following pages.
    pub fn pull_all(&self, after: i64) -> Vec<serde_json::Value> {
        self.pull_all_as(&self.token, after)
    }

    /// Pull everything after `after` with `token`, following pages.
    pub fn pull_all_as(&self, token: &str, after: i64) -> Vec<serde_json::Value> {
        let auth = format!("Bearer {token}");
        let mut out = Vec::new();
        let mut cursor = after;
        loop {
            let r = http::request(
                self.addr,
                "GET",
                &format!("/v1/events?after={cursor}&limit=1000"),
                &[("Authorization", &auth)],
                b"",
            )
            .expect("pull");
            assert_eq!(r.status, 200, "{}", r.text());
            let page: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
            let events = page["events"].as_array().cloned().unwrap_or_default();
            if events.is_empty() {
                return out;
            }
            cursor = events.last().and_then(|e| e["seq"].as_i64()).expect("seq");
            out.extend(events);
        }
    }

    pub fn ack(&self, through: i64) -> http::Reply {
        self.ack_as(&self.token, through)
    }

    /// `POST /v1/ack` with `token`.
    pub fn ack_as(&self, token: &str, through: i64) -> http::Reply {
        http::request(
            self.addr,
            "POST",
            "/v1/ack",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            format!("{{\"through\":{through}}}").as_bytes(),
        )
        .expect("ack")
    }
}

impl Relay {
    /// An app API request with `token`, the body JSON.
    pub fn api(&self, method: &str, path: &str, token: &str, body: &[u8]) -> http::Reply {
        http::request(
            self.addr,
            method,
            path,
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            body,
        )
        .expect("request")
    }
}

/// What `tenant create` printed: the tenant's base path (`/t/{name}`) and first token.
pub struct TenantMade {
    pub base: String,
    pub token: String,
    /// Every line of its output, for the tests that check them.
    pub printed: String,
}

impl Relay {
    /// `tenant create NAME --mode test` on this relay's database.
    pub fn create_tenant(&self, name: &str) -> TenantMade {
        let out = self.command(&["tenant", "create", name, "--mode", "test"]);
        assert!(out.status.success(), "tenant create failed: {out:?}");
        let printed = String::from_utf8(out.stdout).expect("utf8");
        let field = |label: &str| {
            printed
                .lines()
                .find_map(|l| l.strip_prefix(label))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| panic!("no {label} in {printed}"))
        };
        let url = field("relay URL");
        let base = url[url.find("/t/").expect("a /t/ path")..].to_owned();
        let token = field("token");
        TenantMade {
            base,
            token,
            printed,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A `Stripe-Signature` header made by Stripe's official Python library. Panics (fails the
/// test) if the library is missing: install it with the pip line in docs/relay.md.
pub fn stripe_library_header(payload: &str, secret: &str, timestamp: i64) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, stripe\nprint(stripe.WebhookSignature.generate_signature_header(sys.argv[1], sys.argv[2], int(sys.argv[3])))",
            payload,
            secret,
            &timestamp.to_string(),
        ])
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "Stripe's Python library is required (python3 -m pip install stripe==16.1.0): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

/// A Calendly header built to Calendly's documented scheme:
/// `t=<unix>,v1=<hex hmac-sha256(signing key, "{t}.{body}")>`, computed here independently
/// of the relay's verifier (with Python's hmac) so that the two cannot share a bug.
pub fn calendly_header(body: &str, key: &str, timestamp: i64) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, hmac, hashlib\nt=sys.argv[3]\nsig=hmac.new(sys.argv[2].encode(), (t+'.'+sys.argv[1]).encode(), hashlib.sha256).hexdigest()\nprint(f't={t},v1={sig}')",
            body,
            key,
            &timestamp.to_string(),
        ])
        .output()
        .expect("python3 must be installed");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

/// A Stripe event body of roughly `size` bytes.
pub fn stripe_body(id: &str, size: usize) -> String {
    let head = format!(
        "{{\"id\":\"{id}\",\"object\":\"event\",\"type\":\"checkout.session.completed\",\"data\":{{\"object\":{{\"object\":\"checkout.session\",\"client_reference_id\":\"abc\",\"metadata\":{{\"pad\":\""
    );
    let tail = "\"}}}}";
    let pad = size.saturating_sub(head.len() + tail.len());
    format!("{head}{}{tail}", "x".repeat(pad))
}

/// A `Stripe-Signature` header for `body`, signed now with the tests' endpoint secret.
pub fn sign(body: &str) -> String {
    coachdesk_signature::sign_header(STRIPE_SECRET.as_bytes(), now(), body.as_bytes())
}

/// The providers' keys of pulled (unsealed) events, in order, read from their bodies: the
/// relay serves only a keyed hash of each (64 hex digits, checked here).
pub fn keys(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let served = e["key"].as_str().expect("key");
            assert!(
                served.len() == 64 && served.bytes().all(|b| b.is_ascii_hexdigit()),
                "served key {served:?} is not a hash"
            );
            let provider = match e["provider"].as_str() {
                Some("calendly") => coachdesk_protocol::relay::Provider::Calendly,
                _ => coachdesk_protocol::relay::Provider::Stripe,
            };
            let body = e["body"].as_str().expect("body");
            coachdesk_relay::webhook::dedup_key(provider, body.as_bytes())
                .expect("a pulled body has its provider's key")
        })
        .collect()
}
