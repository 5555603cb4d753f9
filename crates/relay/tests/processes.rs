//! Several relay processes over one PostgreSQL database: webhooks land on any, pulls are
//! served by any, a long-poll on one wakes for an event stored by another, and killing one
//! with SIGKILL mid-burst loses no event it answered 2xx.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::http::{self, Conn};
use support::*;

/// Posts `count` events named `{prefix}_{n}` on one keep-alive connection to `relay`;
/// returns the ids answered 200. Stops at the first failure (the process died).
fn post_burst(
    addr: std::net::SocketAddr,
    prefix: String,
    count: usize,
    answered: Arc<AtomicUsize>,
) -> Vec<String> {
    let mut ok = Vec::new();
    let Ok(mut conn) = Conn::open(addr) else {
        return ok;
    };
    for n in 0..count {
        let id = format!("{prefix}_{n:05}");
        let body = stripe_body(&id, 1500);
        let sig = sign(&body);
        match conn.send(
            "POST",
            "/hooks/stripe",
            &[
                ("Content-Type", "application/json"),
                ("Stripe-Signature", &sig),
            ],
            body.as_bytes(),
        ) {
            Ok(r) if r.status == 200 => {
                ok.push(id);
                answered.fetch_add(1, Ordering::SeqCst);
            }
            _ => break,
        }
    }
    ok
}

/// One page of events for `token` from `relay` after `after`.
fn page(relay: &Relay, token: &str, after: i64, limit: usize) -> Vec<serde_json::Value> {
    let r = http::request(
        relay.addr,
        "GET",
        &format!("/v1/events?after={after}&limit={limit}"),
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
    .expect("pull");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    v["events"].as_array().cloned().unwrap_or_default()
}

/// Pulls everything for `token`, each page from the next relay in turn, acknowledging
/// each page on the one after; the events in order.
fn pull_round_robin(relays: &[&Relay], token: &str, after: i64) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut cursor = after;
    for turn in 0.. {
        let events = page(relays[turn % relays.len()], token, cursor, 37);
        let Some(last) = events.last().and_then(|e| e["seq"].as_i64()) else {
            return out;
        };
        assert!(last > cursor, "a cursor only moves forward");
        cursor = last;
        let acker = relays[(turn + 1) % relays.len()];
        assert_eq!(acker.ack_as(token, last).status, 200);
        out.extend(events);
    }
    out
}

fn assert_once_each_in_order(events: &[serde_json::Value], expected: &[String], who: &str) {
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "{who}: sequences out of order"
    );
    let pulled = keys(events);
    let set: HashSet<&String> = pulled.iter().collect();
    assert_eq!(set.len(), pulled.len(), "{who}: an event pulled twice");
    let missing: Vec<&String> = expected.iter().filter(|k| !set.contains(k)).collect();
    assert!(
        missing.is_empty(),
        "{who}: answered 2xx but never pulled: {missing:?}"
    );
}

fn two_processes_one_database() {
    let mut a = Relay::start();
    let b = a.another_process();
    let second = a.create_token("second", "test");
    let watcher = a.create_token("watcher", "test");

    // A long-poll on b wakes for an event stored through a (LISTEN/NOTIFY), well before
    // its wait runs out.
    let poll = {
        let (addr, auth) = (b.addr, b.auth());
        std::thread::spawn(move || {
            let started = Instant::now();
            let r = http::request(
                addr,
                "GET",
                "/v1/events?after=0&wait=20",
                &[("Authorization", &auth)],
                b"",
            )
            .expect("poll");
            (r, started.elapsed())
        })
    };
    wait_for_long_polls(b.addr, 1);
    let body = stripe_body("evt_wake", 400);
    assert_eq!(
        a.post_hook("stripe", Some(&sign(&body)), body.as_bytes())
            .status,
        200
    );
    let (r, waited) = poll.join().expect("poll thread");
    assert!(r.text().contains("evt_wake"), "{}", r.text());
    assert!(
        waited < Duration::from_secs(10),
        "the poll on the other process was not woken: {waited:?}"
    );

    // Webhooks spread over both, the same ones delivered twice (once to each), and pulls
    // from either: each event once per consumer, in order.
    // Meanwhile a third token pulls as events commit, from both processes in turn: a
    // cursor that passed an event committed later (a lower sequence committed after a
    // higher one) would never see it.
    let posting = Arc::new(AtomicBool::new(true));
    let live_puller = {
        let (addrs, posting) = ([a.addr, b.addr], posting.clone());
        let auth = format!("Bearer {watcher}");
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut cursor = 0;
            for turn in 0.. {
                let still_posting = posting.load(Ordering::SeqCst);
                let r = http::request(
                    addrs[turn % 2],
                    "GET",
                    &format!("/v1/events?after={cursor}&limit=50"),
                    &[("Authorization", &auth)],
                    b"",
                )
                .expect("pull");
                assert_eq!(r.status, 200, "{}", r.text());
                let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
                let events = v["events"].as_array().cloned().unwrap_or_default();
                match events.last().and_then(|e| e["seq"].as_i64()) {
                    Some(last) => cursor = last,
                    // Drained after the last post was answered: done.
                    None if !still_posting => break,
                    None => std::thread::sleep(Duration::from_millis(2)),
                }
                seen.extend(events);
            }
            seen
        })
    };
    let answered = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for (i, relay) in [&a, &b, &a, &b].into_iter().enumerate() {
        let (addr, answered) = (relay.addr, answered.clone());
        let prefix = format!("evt_spread_{}", i % 2);
        threads.push(std::thread::spawn(move || {
            post_burst(addr, prefix, 150, answered)
        }));
    }
    let mut spread: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("poster"))
        .collect();
    spread.sort();
    spread.dedup();
    assert_eq!(spread.len(), 300, "every spread webhook answered");
    posting.store(false, Ordering::SeqCst);
    let watched = live_puller.join().expect("live puller");
    spread.push("evt_wake".to_owned());
    assert_once_each_in_order(&watched, &spread, "token pulling during the burst");
    let first = pull_round_robin(&[&a, &b], &a.token, 0);
    assert_once_each_in_order(&first, &spread, "first token");
    assert_eq!(first.len(), spread.len(), "duplicates were stored once");
    let other = pull_round_robin(&[&b, &a], &second, 0);
    assert_once_each_in_order(&other, &spread, "second token");
    let cursor = first.last().and_then(|e| e["seq"].as_i64()).expect("seq");

    // SIGKILL of one process mid-burst: every event either answered 2xx is delivered.
    let answered = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..4 {
        let relay = if t % 2 == 0 { &a } else { &b };
        let (addr, answered, stop) = (relay.addr, answered.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut ok = Vec::new();
            let mut round = 0;
            while !stop.load(Ordering::SeqCst) {
                let got = post_burst(addr, format!("evt_k9_{t}_{round}"), 50, answered.clone());
                let died = got.len() < 50;
                ok.extend(got);
                if died {
                    break;
                }
                round += 1;
            }
            ok
        }));
    }
    let at_least = |n: usize| {
        let seen = answered.load(Ordering::SeqCst);
        if seen >= n {
            Ok(())
        } else {
            Err(seen)
        }
    };
    eventually("the burst getting going", Duration::from_secs(60), || {
        at_least(200)
    });
    a.kill9();
    let after_kill = answered.load(Ordering::SeqCst);
    eventually("the survivor answering", Duration::from_secs(60), || {
        at_least(after_kill + 100)
    });
    stop.store(true, Ordering::SeqCst);
    let acked: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("poster"))
        .collect();
    let rest = pull_round_robin(&[&b], &a.token, cursor);
    assert_once_each_in_order(&rest, &acked, "after the kill");
    assert!(
        rest.iter().all(|e| e["seq"].as_i64() > Some(cursor)),
        "nothing acknowledged comes again"
    );
}

/// The app hands its Calendly subscription's key to one process; Calendly's delivery
/// lands on the other, which has not reloaded its keys since.
fn a_key_handed_over_to_one_process_verifies_on_another() {
    let a = Relay::start();
    let b = a.another_process();
    let key = "handed-over-to-process-a-0123456789";
    let r = http::request(
        a.addr,
        "PUT",
        "/v1/calendly-signing-key",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &a.auth()),
        ],
        serde_json::json!({ "key": key }).to_string().as_bytes(),
    )
    .expect("put");
    assert!(r.status / 100 == 2, "{} {}", r.status, r.text());
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/invitee_created.json"
    ))
    .expect("fixture");
    let r = b.post_hook(
        "calendly",
        Some(&calendly_header(&body, key, now())),
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // A wrong key is still refused after the reload.
    let r = b.post_hook(
        "calendly",
        Some(&calendly_header(
            &body,
            "not-the-key-of-anyone-0123456789",
            now(),
        )),
        body.as_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(a.pull_all(0).len(), 1);
}

/// The app hands its Stripe endpoint's secret to one process; Stripe's delivery lands on
/// the other, which has not reloaded since.
fn a_stripe_secret_handed_over_to_one_process_verifies_on_another() {
    let a = Relay::start();
    let b = a.another_process();
    let secret = "whsec_handed_over_to_process_a_01";
    let r = http::request(
        a.addr,
        "PUT",
        "/v1/stripe-signing-secrets",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &a.auth()),
        ],
        serde_json::json!({ "secrets": [secret] })
            .to_string()
            .as_bytes(),
    )
    .expect("put");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = stripe_body("evt_handed_over_elsewhere", 0);
    let sig = coachdesk_signature::sign_header(secret.as_bytes(), now(), body.as_bytes());
    let r = b.post_hook("stripe", Some(&sig), body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let sig =
        coachdesk_signature::sign_header(b"whsec_nobody_has_this_one_0", now(), body.as_bytes());
    assert_eq!(
        b.post_hook("stripe", Some(&sig), body.as_bytes()).status,
        400
    );
}

#[test]
fn a_stripe_secret_handed_over_to_one_process_verifies_on_another_on_postgres() {
    on_db(
        Db::Postgres,
        a_stripe_secret_handed_over_to_one_process_verifies_on_another,
    );
}

/// Only PostgreSQL can be shared by several processes.
#[test]
fn two_processes_one_database_on_postgres() {
    on_db(Db::Postgres, two_processes_one_database);
}

#[test]
fn a_key_handed_over_to_one_process_verifies_on_another_on_postgres() {
    on_db(
        Db::Postgres,
        a_key_handed_over_to_one_process_verifies_on_another,
    );
}
