//! Ingest benchmark: `cargo bench -p coachdesk-relay`.
//!
//! Runs the real relay binary on loopback once per durability mode (`full`: every group
//! commit fsynced; `normal`: WAL written, fsynced at checkpoints), each on a fresh database,
//! and, in the same run, a bare tiny_http server that answers 200 and does nothing, with the
//! same load against each: concurrent keep-alive clients posting signed Stripe webhooks of
//! 2 to 4 KiB. It prints sustained events per second (with the relay's mean events per
//! commit, read from its metrics), and p50/p99 latency at a fixed 1,000 events/s sent on
//! an open model (each request released at its scheduled time whatever is outstanding,
//! latency measured from that time, so a stall counts), then each relay's figures as a
//! ratio of the bare server's, and of the relay's guard in front of the bare server (what
//! the hostile-input guard alone leaves). Last, events per second while 200 slow clients hold
//! connections (declaring 1 MiB bodies, sending a byte a second), as a ratio of the same
//! relay's rate without them.
//!
//! With PostgreSQL (the relay's second backend), the same loads run against a private
//! server started in a temporary directory with fsync on (see `tests/support/postgres.rs`):
//! one relay process, and two processes sharing the database with the load split over
//! both. Then a hosted relay's load: 1,000 tenants, each webhook to a tenant in turn
//! under `/t/{tenant}/`, plain and then sealed for one app key per tenant (the cost of
//! sealing), with one and two processes. Without PostgreSQL binaries those rows are left
//! out, with the reason. `COACHDESK_BENCH_ONLY=sqlite,postgres,hosted,attack` (any of them) runs
//! only those rows, beside the bare server.

#[path = "../tests/support/http.rs"]
mod http;
#[path = "../tests/support/postgres.rs"]
mod postgres;

use std::net::SocketAddr;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: &str = "whsec_bench_secret";
const CLIENTS: usize = 128;
const SUSTAINED: Duration = Duration::from_secs(5);
const RATE: u64 = 1_000;
const RATE_CONNECTIONS: usize = 64;
const SLOW_CLIENTS: usize = 200;
const RATE_FOR: Duration = Duration::from_secs(4);
const WARM_UP: usize = 3;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The webhook paths the load posts to, in turn (`/hooks/stripe`, or every tenant's).
static PATHS: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// The path of the `n`th webhook.
fn hook_path(n: u64) -> String {
    let paths = PATHS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if paths.is_empty() {
        "/hooks/stripe".to_owned()
    } else {
        paths[(n % paths.len() as u64) as usize].clone()
    }
}

/// Tenants of the hosted-relay rows.
const TENANTS: usize = 1_000;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A signed Stripe-like event of 2 to 4 KiB with a fresh id, and its path.
fn signed_event(run: &str) -> (String, String, String) {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let size = 2048 + (n as usize * 37) % 2048;
    let head = format!(
        "{{\"id\":\"evt_{run}_{n:010}\",\"object\":\"event\",\"api_version\":\"2023-08-16\",\"type\":\"checkout.session.completed\",\"livemode\":false,\"data\":{{\"object\":{{\"id\":\"cs_test_{n}\",\"object\":\"checkout.session\",\"amount_total\":9000,\"currency\":\"eur\",\"client_reference_id\":\"inv_{n}\",\"payment_status\":\"paid\",\"metadata\":{{\"note\":\""
    );
    let tail = "\"}}}}";
    let body = format!("{head}{}{tail}", "x".repeat(size - head.len() - tail.len()));
    let sig = coachdesk_signature::sign_header(SECRET.as_bytes(), now(), body.as_bytes());
    (body, sig, hook_path(n))
}

fn post(conn: &mut http::Conn, run: &str) -> bool {
    let (body, sig, path) = signed_event(run);
    matches!(
        conn.send(
            "POST",
            &path,
            &[("Content-Type", "application/json"), ("Stripe-Signature", &sig)],
            body.as_bytes(),
        ),
        Ok(r) if r.status == 200
    )
}

/// Closed-loop load: `CLIENTS` connections posting back to back, spread over `addrs`.
/// Returns events/s.
fn sustained(addrs: &[SocketAddr], run: &str) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (stop, ok, run) = (stop.clone(), ok.clone(), run.to_owned());
            let addr = addrs[i % addrs.len()];
            std::thread::spawn(move || {
                let Ok(mut conn) = http::Conn::open(addr) else {
                    return;
                };
                while !stop.load(Ordering::Relaxed) {
                    if post(&mut conn, &run) {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        return;
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(SUSTAINED);
    stop.store(true, Ordering::Relaxed);
    let n = ok.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    for t in threads {
        let _ = t.join();
    }
    n as f64 / elapsed.as_secs_f64()
}

/// Open-model load at `RATE`/s: a scheduler releases one request every 1/`RATE` s,
/// whatever is still outstanding, to a pool of `RATE_CONNECTIONS` keep-alive connections;
/// each latency runs from the request's scheduled time, so time spent waiting for a free
/// connection (a stalled server) counts. Returns (p50, p99, max) in milliseconds; a
/// request that failed counts as infinitely late (and is reported on stderr).
fn fixed_rate(addrs: &[SocketAddr], run: &str) -> (f64, f64, f64) {
    let interval = Duration::from_nanos(1_000_000_000 / RATE);
    let count = RATE * RATE_FOR.as_secs();
    let (due_tx, due_rx) = std::sync::mpsc::channel::<Instant>();
    let due_rx = Arc::new(std::sync::Mutex::new(due_rx));
    // Connections are opened and warmed (untimed) before the schedule starts, so that
    // connection setup and the servers' thread start-up are not counted as latency.
    let ready = Arc::new(std::sync::Barrier::new(RATE_CONNECTIONS + 1));
    let threads: Vec<_> = (0..RATE_CONNECTIONS)
        .map(|i| {
            let (run, due_rx, ready) = (run.to_owned(), due_rx.clone(), ready.clone());
            let addr = addrs[i % addrs.len()];
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut conn = http::Conn::open(addr).ok();
                for _ in 0..WARM_UP {
                    if conn.is_none() {
                        conn = http::Conn::open(addr).ok();
                    }
                    if let Some(c) = conn.as_mut() {
                        if !post(c, &run) {
                            conn = None;
                        }
                    }
                }
                ready.wait();
                loop {
                    let next = due_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok(due)) = next else {
                        return lat;
                    };
                    if conn.is_none() {
                        conn = http::Conn::open(addr).ok();
                    }
                    let Some(c) = conn.as_mut() else {
                        lat.push(f64::INFINITY);
                        continue;
                    };
                    if post(c, &run) {
                        lat.push(due.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        lat.push(f64::INFINITY);
                        conn = None;
                    }
                }
            })
        })
        .collect();
    ready.wait();
    let start = Instant::now() + Duration::from_millis(50);
    for i in 0..count {
        let due = start + interval * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if due_tx.send(due).is_err() {
            break;
        }
    }
    drop(due_tx);
    let mut all: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    all.sort_by(|a, b| a.total_cmp(b));
    if all.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let failed = all.iter().filter(|l| l.is_infinite()).count();
    if failed > 0 {
        eprintln!("{run}: {failed} of {} requests failed", all.len());
    }
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (pct(0.50), pct(0.99), all[all.len() - 1])
}

/// `SLOW_CLIENTS` connections from other loopback addresses, each declaring a 1 MiB body
/// and sending a byte a second (reconnecting when the relay cuts it), until `stop`.
/// Returns once all of them are connected.
fn slow_clients(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    let connected = Arc::new(std::sync::Barrier::new(SLOW_CLIENTS + 1));
    let threads = (0..SLOW_CLIENTS)
        .map(|i| {
            let (stop, connected) = (stop.clone(), connected.clone());
            std::thread::spawn(move || {
                let src = std::net::Ipv4Addr::new(127, 0, 2, (i % 8) as u8 + 1);
                let open = || -> std::io::Result<std::net::TcpStream> {
                    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
                    sock.bind(&SocketAddr::new(src.into(), 0).into())?;
                    sock.connect(&addr.into())?;
                    let mut s: std::net::TcpStream = sock.into();
                    std::io::Write::write_all(
                        &mut s,
                        b"POST /hooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n",
                    )?;
                    Ok(s)
                };
                let mut conn = open().ok();
                connected.wait();
                while !stop.load(Ordering::Relaxed) {
                    let alive = conn
                        .as_mut()
                        .is_some_and(|s| std::io::Write::write_all(s, b"{").is_ok());
                    if !alive {
                        conn = open().ok();
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            })
        })
        .collect();
    connected.wait();
    threads
}

/// Sustained events/s without, then with, `SLOW_CLIENTS` slow clients holding connections.
fn under_attack(dir: &std::path::Path) -> (f64, f64) {
    let (mut child, addr) = start_relay(&sqlite_db(dir, "attack"), "full");
    let calm = sustained(&[addr], "calm");
    let stop = Arc::new(AtomicBool::new(false));
    let slow = slow_clients(addr, stop.clone());
    let attacked = sustained(&[addr], "attacked");
    stop.store(true, Ordering::Relaxed);
    for t in slow {
        let _ = t.join();
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    (calm, attacked)
}

fn bare_server() -> (SocketAddr, Arc<tiny_http::Server>) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind bare server"));
    let addr = server.server_addr().to_ip().expect("ip address");
    for _ in 0..16 {
        let s = server.clone();
        std::thread::spawn(move || {
            while let Ok(mut rq) = s.recv() {
                let mut sink = Vec::new();
                let _ = std::io::Read::read_to_end(rq.as_reader(), &mut sink);
                let _ = rq.respond(tiny_http::Response::from_string("ok"));
            }
        });
    }
    (addr, server)
}

/// The relay's guard in front of a tiny_http that answers 200 and does nothing: what the
/// hostile-input guard alone (a second parse, a hop over an internal socket) leaves of the
/// bare server, the ceiling of any relay behind it. Limits as the bench's relays have them.
fn guarded_bare_server() -> (SocketAddr, coachdesk_relay::guard::Guard) {
    use coachdesk_relay::guard::{Guard, Internal};
    let settings = coachdesk_relay::config::Settings {
        rate_hooks_per_sec: 1_000_000_000,
        rate_hooks_burst: 1_000_000_000,
        rate_api_per_sec: 1_000_000_000,
        rate_api_burst: 1_000_000_000,
        max_connections_per_ip: 100_000,
        ..coachdesk_relay::config::Settings::default()
    };
    let internal = Arc::new(Internal::start().expect("internal server"));
    for _ in 0..16 {
        let internal = internal.clone();
        std::thread::spawn(move || {
            while let Ok(mut rq) = internal.server().recv() {
                let mut sink = Vec::new();
                let _ = std::io::Read::read_to_end(rq.as_reader(), &mut sink);
                let _ = rq.respond(tiny_http::Response::from_string("ok"));
            }
        });
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind guarded server");
    let addr = listener.local_addr().expect("address");
    let cfg = coachdesk_relay::server::guard_config(&settings);
    let guard = Guard::spawn(listener, internal, cfg, Box::new(|_| {})).expect("guard");
    (addr, guard)
}

/// The environment naming a fresh SQLite file in `dir`.
fn sqlite_db(dir: &std::path::Path, name: &str) -> (&'static str, String) {
    (
        "COACHDESK_RELAY_DB",
        dir.join(format!("bench-{name}.db")).display().to_string(),
    )
}

/// A relay process on the database `db` names, in the given durability mode.
fn start_relay(db: &(&'static str, String), durability: &str) -> (Child, SocketAddr) {
    // COACHDESK_BENCH_RELAY_BIN runs another build (an older one, to compare).
    let bin = std::env::var("COACHDESK_BENCH_RELAY_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_coachdesk-relay").to_owned());
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .env(db.0, &db.1)
        .env("COACHDESK_RELAY_LISTEN", "127.0.0.1:0")
        .env("COACHDESK_RELAY_STRIPE_SECRETS", SECRET)
        .env("COACHDESK_RELAY_DURABILITY", durability)
        .env(
            "COACHDESK_RELAY_INDEX_KEY",
            "bench-index-key-0123456789abcdef01",
        )
        .env("COACHDESK_RELAY_LOG", "error")
        // The load comes from one address at far more than any provider sends: lift the
        // per-address limits (the attack phase's slow clients use other addresses).
        .env("COACHDESK_RELAY_RATE_HOOKS_PER_SEC", "1000000000")
        .env("COACHDESK_RELAY_RATE_HOOKS_BURST", "1000000000")
        // The hosted rows' set-up registers a thousand tenants' keys from here too.
        .env("COACHDESK_RELAY_RATE_API_PER_SEC", "1000000000")
        .env("COACHDESK_RELAY_RATE_API_BURST", "1000000000")
        .env("COACHDESK_RELAY_MAX_CONNECTIONS_PER_IP", "100000");
    let (child, addr) = coachdesk_waiting::spawn_listening(&mut command, Duration::from_secs(60));
    (child, addr.parse().expect("relay address"))
}

/// (commits, committed jobs) from the relay's metrics.
fn commit_counters(addr: SocketAddr) -> (f64, f64) {
    (
        metric(addr, "coachdesk_relay_commits_total"),
        metric(addr, "coachdesk_relay_committed_jobs_total"),
    )
}

/// One sample of the relay's metrics, by its name and labels as printed (NaN if missing).
fn metric(addr: SocketAddr, sample: &str) -> f64 {
    http::request(addr, "GET", "/metrics", &[], b"")
        .ok()
        .and_then(|page| page.sample(sample))
        .unwrap_or(f64::NAN)
}

struct Figures {
    name: String,
    eps: f64,
    per_commit: Option<f64>,
    lat: (f64, f64, f64),
}

/// (commits, committed jobs) summed over every process.
fn all_commit_counters(addrs: &[SocketAddr]) -> (f64, f64) {
    addrs
        .iter()
        .map(|a| commit_counters(*a))
        .fold((0.0, 0.0), |s, c| (s.0 + c.0, s.1 + c.1))
}

/// `processes` relay processes on the database `db` names, the load spread over them.
fn measure_relay(
    name: String,
    db: &(&'static str, String),
    durability: &str,
    processes: usize,
) -> Figures {
    let started: Vec<(Child, SocketAddr)> = (0..processes)
        .map(|_| start_relay(db, durability))
        .collect();
    let addrs: Vec<SocketAddr> = started.iter().map(|s| s.1).collect();
    // A hosted relay reads its tenants' keys in the background once it starts: it is
    // measured as it runs once they are in memory, not in its first seconds.
    let tenants = PATHS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .len() as f64;
    for &addr in addrs.iter().filter(|_| tenants > 0.0) {
        coachdesk_waiting::eventually("every tenant's keys read", Duration::from_secs(120), || {
            let read = metric(
                addr,
                "coachdesk_relay_tenant_key_reads_total{when=\"ahead\"}",
            );
            if read >= tenants {
                Ok(())
            } else {
                Err(read)
            }
        });
    }
    let run = format!("{durability}_{processes}");
    let lat = fixed_rate(&addrs, &format!("rate_{run}"));
    let before = all_commit_counters(&addrs);
    let eps = sustained(&addrs, &format!("sus_{run}"));
    let after = all_commit_counters(&addrs);
    for (mut child, _) in started {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    let per_commit = (after.1 - before.1) / (after.0 - before.0);
    Figures {
        name,
        eps,
        per_commit: per_commit.is_finite().then_some(per_commit),
        lat,
    }
}

/// `TENANTS` tenants on the database `db` names, through the relay's own commands and API
/// (at `addr`): each with its token, the bench's Stripe secret handed over, and, if
/// `sealed`, one app key registered. Their webhook paths.
fn make_tenants(db: &(&'static str, String), addr: SocketAddr, sealed: bool) -> Vec<String> {
    let bin = env!("CARGO_BIN_EXE_coachdesk-relay");
    let app_key = coachdesk_seal::AppIdentity::generate().public().as_string();
    let next = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (next, db, app_key) = (next.clone(), db.clone(), app_key.clone());
            std::thread::spawn(move || {
                let mut paths = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= TENANTS {
                        return paths;
                    }
                    let name = format!("coach-{i:04}");
                    let out = Command::new(bin)
                        .args(["tenant", "create", &name, "--mode", "test"])
                        .env(db.0, &db.1)
                        .output()
                        .expect("tenant create");
                    assert!(out.status.success(), "tenant create: {out:?}");
                    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                    let token = stdout
                        .lines()
                        .find_map(|l| l.strip_prefix("token"))
                        .map(|t| t.trim().to_owned())
                        .expect("token");
                    let auth = format!("Bearer {token}");
                    let put = |path: &str, body: String| {
                        let r = http::request(
                            addr,
                            "PUT",
                            &format!("/t/{name}{path}"),
                            &[
                                ("Authorization", &auth),
                                ("Content-Type", "application/json"),
                            ],
                            body.as_bytes(),
                        )
                        .expect("put");
                        assert_eq!(r.status, 200, "{path}: {}", r.text());
                    };
                    put(
                        "/v1/stripe-signing-secrets",
                        format!("{{\"secrets\":[\"{SECRET}\"]}}"),
                    );
                    if sealed {
                        put("/v1/app-keys", format!("{{\"keys\":[\"{app_key}\"]}}"));
                    }
                    paths.push(format!("/t/{name}/hooks/stripe"));
                }
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("tenant thread"))
        .collect()
}

/// A hosted relay's rows: `processes` relays on a fresh database of `server` with
/// `TENANTS` tenants, the load spread over every tenant.
fn measure_tenants(server: &postgres::Server, processes: usize, sealed: bool) -> Figures {
    let db = ("COACHDESK_RELAY_DATABASE_URL", server.create_database());
    let (mut setup, addr) = start_relay(&db, "full");
    let paths = make_tenants(&db, addr, sealed);
    let _ = Command::new("kill")
        .args(["-TERM", &setup.id().to_string()])
        .status();
    let _ = setup.wait();
    *PATHS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = paths;
    let what = if sealed { "sealed" } else { "plain" };
    let figures = measure_relay(
        format!("postgres, {TENANTS} tenants, {what}, {processes}p"),
        &db,
        "full",
        processes,
    );
    PATHS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    figures
}

/// The PostgreSQL rows: one process (both durabilities) and two processes sharing the
/// database, then the hosted relay's rows; empty, with the reason on stdout, if no server
/// can be started.
fn measure_postgres() -> Vec<Figures> {
    let server = match postgres::Server::start_durable() {
        Ok(s) => s,
        Err(why) => {
            println!("PostgreSQL: not measured: {why}");
            return Vec::new();
        }
    };
    let db = || ("COACHDESK_RELAY_DATABASE_URL", server.create_database());
    let mut rows = Vec::new();
    if wanted("postgres") {
        rows.push(measure_relay(
            "postgres, durability=full".to_owned(),
            &db(),
            "full",
            1,
        ));
        rows.push(measure_relay(
            "postgres, durability=normal".to_owned(),
            &db(),
            "normal",
            1,
        ));
        rows.push(measure_relay(
            "postgres, full, 2 processes".to_owned(),
            &db(),
            "full",
            2,
        ));
    }
    if wanted("hosted") {
        rows.push(measure_tenants(&server, 1, false));
        rows.push(measure_tenants(&server, 1, true));
        rows.push(measure_tenants(&server, 2, true));
    }
    rows
}

/// Whether a group of rows (`sqlite`, `postgres`, `hosted`, `attack`) is to run: all of them unless
/// `COACHDESK_BENCH_ONLY` lists some (comma-separated). The bare server always runs.
fn wanted(group: &str) -> bool {
    std::env::var("COACHDESK_BENCH_ONLY")
        .map_or(true, |only| only.split(',').any(|g| g.trim() == group))
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    println!("ingest benchmark: {RATE}/s open-model over up to {RATE_CONNECTIONS} connections for {RATE_FOR:?}; then {CLIENTS} keep-alive clients for {SUSTAINED:?}; bodies 2-4 KiB, signed; a fresh relay and database per mode");
    let sqlite: Vec<Figures> = if wanted("sqlite") {
        ["full", "normal"]
            .into_iter()
            .map(|mode| {
                let name = format!("relay, durability={mode}");
                measure_relay(name, &sqlite_db(dir.path(), mode), mode, 1)
            })
            .collect()
    } else {
        Vec::new()
    };
    let pg = if wanted("postgres") || wanted("hosted") {
        measure_postgres()
    } else {
        Vec::new()
    };
    let (bare_addr, _server) = bare_server();
    let bare = Figures {
        name: "bare tiny_http answering 200".to_owned(),
        lat: fixed_rate(&[bare_addr], "brate"),
        eps: sustained(&[bare_addr], "bsus"),
        per_commit: None,
    };

    let (guarded_addr, _guard) = guarded_bare_server();
    let guarded = Figures {
        name: "guard + bare tiny_http".to_owned(),
        lat: fixed_rate(&[guarded_addr], "grate"),
        eps: sustained(&[guarded_addr], "gsus"),
        per_commit: None,
    };

    println!(
        "{:<30} {:>10} {:>12} {:>9} {:>9} {:>9}",
        "server", "events/s", "events/commit", "p50 ms", "p99 ms", "max ms"
    );
    for f in sqlite.iter().chain(&pg).chain([&guarded, &bare]) {
        let per_commit = f.per_commit.map_or("-".to_owned(), |g| format!("{g:.0}"));
        println!(
            "{:<30} {:>10.0} {:>12} {:>9.3} {:>9.3} {:>9.3}",
            f.name, f.eps, per_commit, f.lat.0, f.lat.1, f.lat.2
        );
    }
    println!(
        "guard + bare / bare: throughput {:.2} (the most any relay behind the guard can reach)",
        guarded.eps / bare.eps
    );
    for f in sqlite.iter().chain(&pg) {
        println!(
            "{} / bare: throughput {:.2} ({:.2} of guard + bare), p50 {:.2}x, p99 {:.2}x; targets: >= 10000 events/s {}, p99 < 5 ms at {RATE}/s {}",
            f.name,
            f.eps / bare.eps,
            f.eps / guarded.eps,
            f.lat.0 / bare.lat.0,
            f.lat.1 / bare.lat.1,
            if f.eps >= 10_000.0 { "met" } else { "NOT met" },
            if f.lat.1 < 5.0 { "met" } else { "NOT met" },
        );
    }
    if let [full, normal] = sqlite.as_slice() {
        println!(
            "normal / full: throughput {:.2}, p99 {:.2}x",
            normal.eps / full.eps,
            normal.lat.1 / full.lat.1
        );
    }
    if wanted("attack") {
        let (calm, attacked) = under_attack(dir.path());
        println!(
            "under attack (durability=full): {attacked:.0} events/s with {SLOW_CLIENTS} slow clients holding connections, {calm:.0} without: ratio {:.2}",
            attacked / calm
        );
    }
    if bare.lat.1 > 5.0 {
        println!(
            "warning: the bare server's p99 is {:.1} ms: the machine was too busy for the latency figures to mean much",
            bare.lat.1
        );
    }
}
