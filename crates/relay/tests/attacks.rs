//! The relay binary on loopback under the attacks of issue 10: each test runs an attack
//! from other loopback addresses (127.0.0.2 and up) while a watcher asks `/healthz` from
//! 127.0.0.1 and a sender posts signed webhooks; the relay must stay up, answer every
//! health check within 1 s, and accept and serve every webhook.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::http;
use support::*;

/// A connection from a chosen loopback source address.
fn connect_from(src: Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.bind(&SocketAddr::new(IpAddr::V4(src), 0).into())?;
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))?;
    Ok(sock.into())
}

fn attacker(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, n)
}

/// Reads what the relay answers (up to `max`) until it closes or `within` passes.
fn read_answer(s: &mut TcpStream, within: Duration) -> String {
    let until = Instant::now() + within;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < until && out.len() < 64 * 1024 {
        let left = until
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Health checks and signed webhooks from 127.0.0.1 while an attack runs.
struct Witness {
    stop: Arc<AtomicBool>,
    checks: Arc<AtomicU64>,
    accepted: Arc<AtomicU64>,
    health: JoinHandle<(usize, Duration, Vec<String>)>,
    hooks: JoinHandle<(Vec<String>, Vec<String>)>,
}

impl Witness {
    fn start(addr: SocketAddr, run: &str) -> Witness {
        let stop = Arc::new(AtomicBool::new(false));
        let checks_done = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let flag = stop.clone();
        let counter = checks_done.clone();
        let health = std::thread::spawn(move || {
            let (mut checks, mut worst, mut failures) = (0, Duration::ZERO, Vec::new());
            while !flag.load(Ordering::SeqCst) {
                let started = Instant::now();
                match health_check(addr) {
                    Ok(()) => {}
                    Err(e) => failures.push(format!("{e} after {:?}", started.elapsed())),
                }
                worst = worst.max(started.elapsed());
                checks += 1;
                counter.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(50));
            }
            (checks, worst, failures)
        });
        let flag = stop.clone();
        let counter = accepted.clone();
        let run = run.to_owned();
        let hooks = std::thread::spawn(move || {
            let (mut sent, mut failures) = (Vec::new(), Vec::new());
            let mut n = 0;
            while !flag.load(Ordering::SeqCst) {
                n += 1;
                let id = format!("evt_{run}_{n}");
                let body = stripe_body(&id, 1500);
                let r = http::request(
                    addr,
                    "POST",
                    "/hooks/stripe",
                    &[
                        ("Content-Type", "application/json"),
                        ("Stripe-Signature", &sign(&body)),
                    ],
                    body.as_bytes(),
                );
                match r {
                    Ok(r) if r.status == 200 => {
                        sent.push(id);
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => failures.push(format!("{id}: {} {}", r.status, r.text())),
                    Err(e) => failures.push(format!("{id}: {e}")),
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (sent, failures)
        });
        Witness {
            stop,
            checks: checks_done,
            accepted,
            health,
            hooks,
        }
    }

    /// Stops and checks: every health check answered within 1 s, every webhook accepted
    /// and then pulled.
    fn finish(self, relay: &Relay) {
        // At least ten health checks and five webhooks overlap the attack's end.
        let (checks_at, accepted_at) = (
            self.checks.load(Ordering::SeqCst),
            self.accepted.load(Ordering::SeqCst),
        );
        let until = Instant::now() + Duration::from_secs(30);
        while (self.checks.load(Ordering::SeqCst) < (checks_at + 2).max(10)
            || self.accepted.load(Ordering::SeqCst) < (accepted_at + 1).max(5))
            && Instant::now() < until
            && !self.health.is_finished()
            && !self.hooks.is_finished()
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::SeqCst);
        let (checks, worst, failures) = self.health.join().expect("health thread");
        let (sent, hook_failures) = self.hooks.join().expect("hook thread");
        assert!(failures.is_empty(), "health checks failed: {failures:?}");
        assert!(checks >= 5, "only {checks} health checks ran");
        assert!(
            worst < Duration::from_secs(1),
            "slowest health check {worst:?}"
        );
        assert!(
            hook_failures.is_empty(),
            "webhooks refused: {hook_failures:?}"
        );
        assert!(sent.len() >= 5, "only {} webhooks sent", sent.len());
        let pulled = keys(&relay.pull_all(0));
        for id in &sent {
            assert!(pulled.contains(id), "{id} accepted but not pulled");
        }
        assert!(relay.child.is_some());
    }
}

/// `GET /healthz` with a 1 s budget for connect, write and answer.
fn health_check(addr: SocketAddr) -> Result<(), String> {
    let budget = Duration::from_secs(1);
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, budget).map_err(|e| format!("connect: {e}"))?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let answer = read_answer(&mut s, budget.saturating_sub(started.elapsed()));
    if answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n") {
        Ok(())
    } else {
        Err(format!("answer {answer:?}"))
    }
}

/// The relay process's resident memory in KiB.
fn rss_kib(relay: &Relay) -> u64 {
    let pid = relay.child.as_ref().expect("running").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn assert_alive(relay: &mut Relay) {
    let child = relay.child.as_mut().expect("running");
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the relay exited"
    );
}

fn huge_declared_lengths_are_refused_before_any_body_and_the_relay_stays_up() {
    let mut relay = Relay::start();
    let witness = Witness::start(relay.addr, "lengths");
    for (i, length) in [
        "1000000000000000",
        "18446744073709551615",
        "18446744073709551616",
        "1048577",
    ]
    .iter()
    .enumerate()
    {
        for path in ["/hooks/stripe", "/hooks/calendly", "/v1/ack", "/healthz"] {
            let mut s = connect_from(attacker(i as u8 + 1), relay.addr).expect("connect");
            write!(
                s,
                "POST {path} HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
            )
            .expect("write");
            let answer = read_answer(&mut s, Duration::from_secs(5));
            assert!(
                answer.starts_with("HTTP/1.1 413"),
                "{path} with {length}: {answer:?}"
            );
        }
    }
    // Answered, then closed without waiting for the body.
    assert_alive(&mut relay);
    witness.finish(&relay);
    // Each refusal shows in the metrics, the webhooks' also by provider.
    assert_eq!(
        metric(
            relay.addr,
            "coachdesk_relay_guard_answered_total{status=\"413\"}"
        ),
        16
    );
    assert_eq!(
        metric(
            relay.addr,
            "coachdesk_relay_webhooks_rejected_total{provider=\"calendly\",reason=\"too_large\"}"
        ),
        4
    );
}

fn a_chunked_body_over_the_limit_is_cut_as_it_streams() {
    let mut relay = Relay::start();
    let witness = Witness::start(relay.addr, "chunked");
    let mut s = connect_from(attacker(1), relay.addr).expect("connect");
    write!(
        s,
        "POST /hooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .expect("write");
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    let mut refused = false;
    // Up to 64 MiB in 64 KiB chunks; the relay refuses once more than 1 MiB is declared
    // and closes, so writing fails long before (socket buffers take a few MiB).
    while sent < 64 * 1024 * 1024 {
        let ok = write!(s, "{:x}\r\n", chunk.len()).is_ok()
            && s.write_all(&chunk).is_ok()
            && s.write_all(b"\r\n").is_ok();
        if !ok {
            refused = true;
            break;
        }
        sent += chunk.len();
    }
    let answer = read_answer(&mut s, Duration::from_secs(5));
    assert!(
        refused && sent < 16 * 1024 * 1024,
        "the relay took {sent} bytes"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 413"),
        "after {sent} bytes: {answer:?}"
    );
    // One over the limit announced in one chunk-size line.
    let mut s = connect_from(attacker(2), relay.addr).expect("connect");
    write!(
        s,
        "POST /hooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"
    )
    .expect("write");
    assert!(read_answer(&mut s, Duration::from_secs(5)).starts_with("HTTP/1.1 413"));
    // A good chunked webhook passes.
    let body = stripe_body("evt_chunked_ok", 3000);
    let (a, b) = body.split_at(1000);
    let mut s = TcpStream::connect(relay.addr).expect("connect");
    write!(
        s,
        "POST /hooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nStripe-Signature: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
        sign(&body),
        a.len(),
        b.len()
    )
    .expect("write");
    let answer = read_answer(&mut s, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert_alive(&mut relay);
    witness.finish(&relay);
}

/// A sender that writes its whole body after the 413 has been sent (as a webhook sender
/// that does not wait for `100 Continue` does) must still read the 413, not a reset.
fn a_refused_body_is_drained_so_its_answer_is_not_lost_to_a_reset() {
    let mut relay = Relay::start();
    let mut s = TcpStream::connect(relay.addr).expect("connect");
    let body = vec![b' '; 1024 * 1024 + 10];
    write!(
        s,
        "POST /hooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("write head");
    // The answer is on its way before the body is sent: without a drain, the relay's
    // socket is closed by now and the body is answered with a reset.
    let mut first = [0u8; 12];
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.read_exact(&mut first).expect("status line");
    assert_eq!(&first, b"HTTP/1.1 413");
    s.write_all(&body).expect("the body is drained, not reset");
    let rest = read_answer(&mut s, Duration::from_secs(5));
    assert!(
        rest.contains("body too large") || rest.contains("Payload Too Large"),
        "{rest:?}"
    );
    assert_alive(&mut relay);
}

fn eighty_slow_loris_connections_hold_nothing() {
    let mut relay = Relay::start_with(&[("COACHDESK_RELAY_REQUEST_DEADLINE_SECS", "3")]);
    let witness = Witness::start(relay.addr, "loris");
    let addr = relay.addr;
    let cut = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let lorises: Vec<_> = (0..80u8)
        .map(|i| {
            let cut = cut.clone();
            std::thread::spawn(move || {
                let Ok(mut s) = connect_from(attacker(i % 4 + 1), addr) else {
                    cut.fetch_add(1, Ordering::SeqCst);
                    return;
                };
                let head = "POST /hooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n";
                if s.write_all(head.as_bytes()).is_err() {
                    cut.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                // One byte every 500 ms: each keeps its connection busy, never finishes.
                let _ = s.set_read_timeout(Some(Duration::from_millis(1)));
                for _ in 0..20 {
                    let mut probe = [0u8; 64];
                    if s.read(&mut probe).is_ok() || s.write_all(b"{").is_err() {
                        cut.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        })
        .collect();
    for l in lorises {
        l.join().expect("loris");
    }
    // Every trickling connection was answered (408) or closed by the deadline.
    assert_eq!(cut.load(Ordering::SeqCst), 80);
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    assert_alive(&mut relay);
    witness.finish(&relay);
}

fn a_one_mebibyte_header_line_does_not_grow_memory() {
    let mut relay = Relay::start();
    let witness = Witness::start(relay.addr, "header");
    let before = rss_kib(&relay);
    let addr = relay.addr;
    let answers: Vec<_> = (0..20u8)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = connect_from(attacker(i % 4 + 1), addr).expect("connect");
                let mut line = b"GET /healthz HTTP/1.1\r\nX-Long: ".to_vec();
                line.resize(1024 * 1024, b'a');
                // The relay answers and closes once its cap is passed; the rest may fail.
                let _ = s.write_all(&line);
                read_answer(&mut s, Duration::from_secs(5))
            })
        })
        .collect();
    for a in answers {
        let answer = a.join().expect("thread");
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "{answer:?}"
        );
    }
    let after = rss_kib(&relay);
    // 20 MiB of header sent; tiny_http alone would have buffered all of it.
    assert!(after < before + 8 * 1024, "RSS {before} KiB -> {after} KiB");
    assert_alive(&mut relay);
    witness.finish(&relay);
}

fn two_thousand_idle_connections_against_a_low_open_file_limit() {
    let mut relay = Relay::start_with(&[
        ("COACHDESK_RELAY_WORKERS", "8"),
        ("COACHDESK_RELAY_REQUEST_DEADLINE_SECS", "10"),
    ]);
    let pid = relay.child.as_ref().expect("running").id();
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), "--nofile=256:256"])
        .status()
        .expect("prlimit (util-linux) must be installed");
    assert!(status.success());
    // The relay reads its open-file limit at every accept, so the new one counts at once.
    let witness = Witness::start(relay.addr, "idle");
    let held = Mutex::new(Vec::new());
    let mut refused = 0;
    for i in 0..2000u32 {
        // 50 addresses, 40 connections each: under the per-address cap, over the total.
        match connect_from(attacker((i % 50) as u8 + 1), relay.addr) {
            Ok(s) => held.lock().expect("lock").push(s),
            Err(_) => refused += 1,
        }
    }
    // Hold them idle while the witness works.
    std::thread::sleep(Duration::from_secs(3));
    let open = held.lock().expect("lock").len();
    assert!(open + refused == 2000);
    assert_alive(&mut relay);
    witness.finish(&relay);
    drop(held);
    assert_alive(&mut relay);
    let turned_away = metric(relay.addr, "coachdesk_relay_idle_connections_cut_total")
        + metric(relay.addr, "coachdesk_relay_connections_refused_total");
    assert!(
        turned_away > 0,
        "2,000 connections over the cap, none cut or refused"
    );
}

fn rate_limits_answer_429_with_retry_after_and_a_provider_burst_passes() {
    let relay = Relay::start_with(&[
        ("COACHDESK_RELAY_RATE_HOOKS_BURST", "20"),
        ("COACHDESK_RELAY_RATE_HOOKS_PER_SEC", "1"),
    ]);
    let addr = relay.addr;
    let post = |src: Ipv4Addr, id: &str| {
        let body = stripe_body(id, 800);
        let mut s = connect_from(src, addr).expect("connect");
        write!(
            s,
            "POST /hooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nStripe-Signature: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            sign(&body),
            body.len()
        )
        .expect("write");
        read_answer(&mut s, Duration::from_secs(5))
    };
    for n in 0..20 {
        let a = post(attacker(1), &format!("evt_rl_{n}"));
        assert!(a.starts_with("HTTP/1.1 200"), "{n}: {a:?}");
    }
    let a = post(attacker(1), "evt_rl_over");
    assert!(a.starts_with("HTTP/1.1 429"), "{a:?}");
    assert!(a.contains("\r\nRetry-After: 1\r\n"), "{a:?}");
    // Another address is not affected.
    assert!(post(attacker(2), "evt_rl_other").starts_with("HTTP/1.1 200"));
    assert_eq!(
        metric(addr, "coachdesk_relay_guard_answered_total{status=\"429\"}"),
        1
    );
}

fn a_provider_burst_passes_the_default_limits() {
    let relay = Relay::start();
    let addr = relay.addr;
    // Stripe retrying a backlog: 600 deliveries from one address, 24 at a time.
    let senders: Vec<_> = (0..24)
        .map(|t| {
            std::thread::spawn(move || {
                let mut conn = http::Conn::open(addr).expect("connect");
                (0..25)
                    .map(|n| {
                        let body = stripe_body(&format!("evt_burst_{t}_{n}"), 2000);
                        conn.send(
                            "POST",
                            "/hooks/stripe",
                            &[
                                ("Content-Type", "application/json"),
                                ("Stripe-Signature", &sign(&body)),
                            ],
                            body.as_bytes(),
                        )
                        .expect("post")
                        .status
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for s in senders {
        assert!(s.join().expect("sender").iter().all(|&st| st == 200));
    }
    assert_eq!(relay.pull_all(0).len(), 600);
}

fn repeated_failed_authentication_is_slowed_down() {
    let relay = Relay::start();
    let get = |src: Ipv4Addr, token: &str| {
        let mut s = connect_from(src, relay.addr).expect("connect");
        write!(
            s,
            "GET /v1/events HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        read_answer(&mut s, Duration::from_secs(5))
    };
    for n in 0..10 {
        let a = get(attacker(1), "cdr_guess");
        assert!(a.starts_with("HTTP/1.1 401"), "{n}: {a:?}");
    }
    let a = get(attacker(1), "cdr_guess");
    assert!(a.starts_with("HTTP/1.1 401"), "{a:?}");
    // Past the allowance, even a right token from that address waits.
    let a = get(attacker(1), &relay.token);
    assert!(a.starts_with("HTTP/1.1 429"), "{a:?}");
    let retry: u64 = a
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Retry-After: "))
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=6).contains(&retry), "{retry}");
    // The app's own address is not affected.
    assert!(get(Ipv4Addr::LOCALHOST, &relay.token).starts_with("HTTP/1.1 200"));
}

fn running_out_of_file_descriptors_stops_nothing() {
    let mut relay = Relay::start_with(&[("COACHDESK_RELAY_WORKERS", "4")]);
    let pid = relay.child.as_ref().expect("running").id();
    let fds = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let prlimit = |soft: usize| {
        let status = std::process::Command::new("prlimit")
            .args(["--pid", &pid.to_string(), &format!("--nofile={soft}:")])
            .status()
            .expect("prlimit (util-linux) must be installed");
        assert!(status.success());
    };
    // Not one descriptor to spare: every accept() fails with EMFILE, and so does the
    // internal connection of any request in flight (tiny_http's accept thread dies of it).
    prlimit(fds());
    let mut held = Vec::new();
    for i in 0..100u8 {
        if let Ok(mut s) = connect_from(attacker(i % 2 + 1), relay.addr) {
            let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: r\r\n\r\n");
            held.push(s);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_alive(&mut relay);
    drop(held);
    prlimit(4096);
    // The relay serves again as before, at once.
    eventually(
        "serving after the limit was raised",
        Duration::from_secs(5),
        || health_check(relay.addr),
    );
    let witness = Witness::start(relay.addr, "emfile");
    assert_alive(&mut relay);
    witness.finish(&relay);
}

/// What well-behaved clients do still works through the guard: pipelined requests on one
/// keep-alive connection answered in order, `Expect: 100-continue`, HEAD, HTTP/1.0.
fn keep_alive_pipelining_continue_head_and_http_1_0_pass_the_guard() {
    let relay = Relay::start();
    let a = stripe_body("evt_pipe_a", 1200);
    let b = stripe_body("evt_pipe_b", 2600);
    let mut s = TcpStream::connect(relay.addr).expect("connect");
    let mut both = Vec::new();
    for body in [&a, &b] {
        write!(
            both,
            "POST /hooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nStripe-Signature: {}\r\nContent-Length: {}\r\n\r\n{body}",
            sign(body),
            body.len()
        )
        .expect("format");
    }
    both.extend_from_slice(b"HEAD /healthz HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n");
    s.write_all(&both).expect("write");
    let answers = read_answer(&mut s, Duration::from_secs(10));
    // Bodies have no line end: count the status lines where they start.
    assert_eq!(
        answers.matches("HTTP/1.1 200 OK\r\n").count(),
        3,
        "{answers:?}"
    );
    assert_eq!(answers.matches("HTTP/1.1 ").count(), 3, "{answers:?}");
    assert!(
        answers.contains("\"seq\":1") && answers.contains("\"seq\":2"),
        "{answers:?}"
    );
    assert!(
        answers.ends_with("\r\n\r\n"),
        "HEAD has no body: {answers:?}"
    );

    let c = stripe_body("evt_continue", 900);
    let mut s = TcpStream::connect(relay.addr).expect("connect");
    write!(
        s,
        "POST /hooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nStripe-Signature: {}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        sign(&c),
        c.len()
    )
    .expect("write head");
    let mut interim = [0u8; 25];
    s.read_exact(&mut interim).expect("100 Continue");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(c.as_bytes()).expect("write body");
    assert!(read_answer(&mut s, Duration::from_secs(10)).starts_with("HTTP/1.1 200"));

    let mut s = TcpStream::connect(relay.addr).expect("connect");
    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
        .expect("write");
    let answer = read_answer(&mut s, Duration::from_secs(5));
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"),
        "{answer:?}"
    );
    assert_eq!(relay.pull_all(0).len(), 3);
}

on_both_backends!(
    huge_declared_lengths_are_refused_before_any_body_and_the_relay_stays_up,
    a_chunked_body_over_the_limit_is_cut_as_it_streams,
    a_refused_body_is_drained_so_its_answer_is_not_lost_to_a_reset,
    eighty_slow_loris_connections_hold_nothing,
    a_one_mebibyte_header_line_does_not_grow_memory,
    two_thousand_idle_connections_against_a_low_open_file_limit,
    rate_limits_answer_429_with_retry_after_and_a_provider_burst_passes,
    a_provider_burst_passes_the_default_limits,
    repeated_failed_authentication_is_slowed_down,
    running_out_of_file_descriptors_stops_nothing,
    keep_alive_pipelining_continue_head_and_http_1_0_pass_the_guard,
);
