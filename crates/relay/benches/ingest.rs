//! Ingest benchmark: `cargo bench -p coachdesk-relay`.
//!
//! Runs the real relay binary (durable group commits, `synchronous=FULL`) on loopback and,
//! in the same run, a bare tiny_http server that answers 200 and does nothing, with the
//! same load against each: concurrent keep-alive clients posting signed Stripe webhooks of
//! 2 to 4 KiB. It prints sustained events per second, and p50/p99 latency at a fixed
//! 1,000 events/s (measured from each request's scheduled send time, so a stall counts),
//! then the relay's figures as a ratio of the bare server's.

#[path = "../tests/support/http.rs"]
mod http;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: &str = "whsec_bench_secret";
const CLIENTS: usize = 128;
const SUSTAINED: Duration = Duration::from_secs(5);
const RATE: u64 = 1_000;
const RATE_CLIENTS: u64 = 8;
const RATE_FOR: Duration = Duration::from_secs(4);

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A signed Stripe-like event of 2 to 4 KiB with a fresh id.
fn signed_event(run: &str) -> (String, String) {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let size = 2048 + (n as usize * 37) % 2048;
    let head = format!(
        "{{\"id\":\"evt_{run}_{n:010}\",\"object\":\"event\",\"api_version\":\"2023-08-16\",\"type\":\"checkout.session.completed\",\"livemode\":false,\"data\":{{\"object\":{{\"id\":\"cs_test_{n}\",\"object\":\"checkout.session\",\"amount_total\":9000,\"currency\":\"eur\",\"client_reference_id\":\"inv_{n}\",\"payment_status\":\"paid\",\"metadata\":{{\"note\":\""
    );
    let tail = "\"}}}}";
    let body = format!("{head}{}{tail}", "x".repeat(size - head.len() - tail.len()));
    let sig = coachdesk_signature::sign_header(SECRET.as_bytes(), now(), body.as_bytes());
    (body, sig)
}

fn post(conn: &mut http::Conn, run: &str) -> bool {
    let (body, sig) = signed_event(run);
    matches!(
        conn.send(
            "POST",
            "/hooks/stripe",
            &[("Content-Type", "application/json"), ("Stripe-Signature", &sig)],
            body.as_bytes(),
        ),
        Ok(r) if r.status == 200
    )
}

/// Closed-loop load: `CLIENTS` connections posting back to back. Returns events/s.
fn sustained(addr: SocketAddr, run: &str) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (stop, ok, run) = (stop.clone(), ok.clone(), run.to_owned());
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

/// Open-loop load at `RATE`/s. Returns (p50, p99, max) in milliseconds.
fn fixed_rate(addr: SocketAddr, run: &str) -> (f64, f64, f64) {
    let per_client = RATE / RATE_CLIENTS;
    let interval = Duration::from_nanos(1_000_000_000 / per_client);
    let count = per_client * RATE_FOR.as_secs();
    let start = Instant::now() + Duration::from_millis(100);
    let threads: Vec<_> = (0..RATE_CLIENTS)
        .map(|c| {
            let run = run.to_owned();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(count as usize);
                let Ok(mut conn) = http::Conn::open(addr) else {
                    return lat;
                };
                let offset = interval * c as u32 / RATE_CLIENTS as u32;
                for i in 0..count {
                    let due = start + offset + interval * i as u32;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if !post(&mut conn, &run) {
                        break;
                    }
                    lat.push(due.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<f64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap_or_default())
        .collect();
    all.sort_by(|a, b| a.total_cmp(b));
    if all.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    (pct(0.50), pct(0.99), all[all.len() - 1])
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

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_coachdesk-relay"))
        .arg("serve")
        .env("COACHDESK_RELAY_DB", dir.path().join("bench.db"))
        .env("COACHDESK_RELAY_LISTEN", "127.0.0.1:0")
        .env("COACHDESK_RELAY_STRIPE_SECRETS", SECRET)
        .env("COACHDESK_RELAY_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the relay");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    let relay: SocketAddr = line
        .trim()
        .trim_start_matches("listening on ")
        .parse()
        .expect("relay address");

    println!("ingest benchmark: {CLIENTS} keep-alive clients for {SUSTAINED:?}; then {RATE}/s over {RATE_CLIENTS} clients for {RATE_FOR:?}; bodies 2-4 KiB, signed");
    let relay_eps = sustained(relay, "sus");
    let relay_lat = fixed_rate(relay, "rate");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    let (bare, _server) = bare_server();
    let bare_eps = sustained(bare, "bsus");
    let bare_lat = fixed_rate(bare, "brate");

    println!(
        "{:<34} {:>12} {:>10} {:>10} {:>10}",
        "server", "events/s", "p50 ms", "p99 ms", "max ms"
    );
    println!(
        "{:<34} {:>12.0} {:>10.3} {:>10.3} {:>10.3}",
        "relay (durable, synchronous=FULL)", relay_eps, relay_lat.0, relay_lat.1, relay_lat.2
    );
    println!(
        "{:<34} {:>12.0} {:>10.3} {:>10.3} {:>10.3}",
        "bare tiny_http answering 200", bare_eps, bare_lat.0, bare_lat.1, bare_lat.2
    );
    println!(
        "relay / bare: throughput {:.2}, p50 {:.2}x, p99 {:.2}x",
        relay_eps / bare_eps,
        relay_lat.0 / bare_lat.0,
        relay_lat.1 / bare_lat.1
    );
    println!(
        "targets: >= 10000 events/s: {}; p99 < 5 ms at 1000/s: {}",
        if relay_eps >= 10_000.0 {
            "met"
        } else {
            "NOT met"
        },
        if relay_lat.1 < 5.0 { "met" } else { "NOT met" }
    );
}
