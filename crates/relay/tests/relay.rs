//! End-to-end tests of the `coachdesk-relay` binary over loopback: each test runs the real
//! process on port 0, once on a temporary SQLite file and once on a PostgreSQL database.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::http::{self, Conn};
use support::*;

fn stripe_library_headers_are_accepted_and_tampering_is_rejected() {
    let relay = Relay::start();
    let body = stripe_body("evt_lib_1", 3000);
    let header = stripe_library_header(&body, STRIPE_SECRET, now());
    let ok = relay.post_hook("stripe", Some(&header), body.as_bytes());
    assert_eq!(ok.status, 200, "{}", ok.text());

    // The previous secret still works during rotation.
    let body2 = stripe_body("evt_lib_2", 500);
    let old = stripe_library_header(&body2, STRIPE_OLD_SECRET, now());
    assert_eq!(
        relay
            .post_hook("stripe", Some(&old), body2.as_bytes())
            .status,
        200
    );

    let mut tampered = stripe_body("evt_lib_3", 3000).into_bytes();
    let h3 = stripe_library_header(
        std::str::from_utf8(&tampered).expect("utf8"),
        STRIPE_SECRET,
        now(),
    );
    let last = tampered.len() - 10;
    tampered[last] = b'y';
    let r = relay.post_hook("stripe", Some(&h3), &tampered);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("no signature matches"), "{}", r.text());

    let body4 = stripe_body("evt_lib_4", 800);
    let stale = stripe_library_header(&body4, STRIPE_SECRET, now() - 301);
    let r = relay.post_hook("stripe", Some(&stale), body4.as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.text().contains("too old"), "{}", r.text());

    // Signed in the future, or with another endpoint's secret.
    for sig in [
        stripe_library_header(&body4, STRIPE_SECRET, now() + 400),
        stripe_library_header(&body4, "whsec_someone_else", now()),
    ] {
        let r = relay.post_hook("stripe", Some(&sig), body4.as_bytes());
        assert_eq!(r.status, 400, "{sig}");
    }

    let r = relay.post_hook("stripe", None, body4.as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.text().contains("Stripe-Signature"), "{}", r.text());

    // A Stripe header is not valid for the Calendly endpoint (other secret).
    assert_eq!(
        relay
            .post_hook("calendly", Some(&header), body.as_bytes())
            .status,
        400
    );

    let events = relay.pull_all(0);
    assert_eq!(keys(&events), vec!["evt_lib_1", "evt_lib_2"]);
    assert_eq!(events[0]["body"].as_str(), Some(body.as_str()));
    assert_eq!(events[0]["provider"].as_str(), Some("stripe"));
}

fn calendly_headers_are_accepted_and_tampering_is_rejected() {
    let relay = Relay::start();
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/invitee_created.json"
    ))
    .expect("fixture");
    let header = calendly_header(&body, CALENDLY_KEY, now());
    let r = relay.post_hook("calendly", Some(&header), body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    // Redelivery of the same webhook: 2xx, nothing added.
    let again = calendly_header(&body, CALENDLY_KEY, now());
    let r = relay.post_hook("calendly", Some(&again), body.as_bytes());
    assert_eq!(r.status, 200);
    assert!(r.text().contains("duplicate"));

    // A changed body under the original signature, or the body signed with another key.
    let tampered = body.replace("Dana", "Dina");
    assert_ne!(tampered, body);
    let wrong_key = calendly_header(&body, "not-the-key", now());
    for (sig, sent) in [(&header, &tampered), (&wrong_key, &body)] {
        let r = relay.post_hook("calendly", Some(sig), sent.as_bytes());
        assert_eq!(r.status, 400, "{sig}");
    }

    let events = relay.pull_all(0);
    assert_eq!(events.len(), 1);
    let key = &keys(&events)[0];
    assert!(
        key.starts_with("invitee.created|https://api.calendly.com/scheduled_events/"),
        "{key}"
    );
    assert_eq!(events[0]["provider"].as_str(), Some("calendly"));
}

fn duplicates_concurrent_duplicates_and_out_of_order_are_pulled_once() {
    let relay = Arc::new(Relay::start());
    // 40 distinct events, each posted by 4 threads at once, in a shuffled order per thread.
    let ids: Vec<String> = (0..40).map(|i| format!("evt_dup_{i:03}")).collect();
    let mut threads = Vec::new();
    for t in 0..4usize {
        let relay = relay.clone();
        let mut order = ids.clone();
        order.rotate_left(t * 7);
        if t % 2 == 1 {
            order.reverse();
        }
        threads.push(std::thread::spawn(move || {
            let mut conn = Conn::open(relay.addr).expect("connect");
            for id in order {
                let body = stripe_body(&id, 2048);
                let sig = sign(&body);
                let r = conn
                    .send(
                        "POST",
                        "/hooks/stripe",
                        &[
                            ("Content-Type", "application/json"),
                            ("Stripe-Signature", &sig),
                        ],
                        body.as_bytes(),
                    )
                    .expect("post");
                assert_eq!(r.status, 200, "{}", r.text());
            }
        }));
    }
    for t in threads {
        t.join().expect("thread");
    }
    let events = relay.pull_all(0);
    let got: HashSet<String> = keys(&events).into_iter().collect();
    assert_eq!(events.len(), ids.len(), "each event exactly once");
    assert_eq!(got, ids.iter().cloned().collect());
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in sequence order");

    // After an ack, nothing comes again, even for a cursor from before the ack.
    let last = *seqs.last().expect("some");
    let r = relay.ack(last);
    assert_eq!(r.status, 200);
    assert!(relay.pull_all(0).is_empty());
    // A late redelivery of an already-applied event still adds nothing.
    let body = stripe_body(&ids[3], 2048);
    assert_eq!(
        relay
            .post_hook("stripe", Some(&sign(&body)), body.as_bytes())
            .status,
        200
    );
    assert!(relay.pull_all(0).is_empty());
}

fn kill_9_mid_burst_loses_no_acknowledged_event_durability_full() {
    kill_9_mid_burst_loses_no_acknowledged_event("full");
}

/// `normal` skips the per-commit fsync, but a commit is in the OS's page cache before the
/// 2xx, so killing the process must lose nothing either.
fn kill_9_mid_burst_loses_no_acknowledged_event_durability_normal() {
    kill_9_mid_burst_loses_no_acknowledged_event("normal");
}

fn kill_9_mid_burst_loses_no_acknowledged_event(durability: &str) {
    let mut relay = Relay::start_with(&[("COACHDESK_RELAY_DURABILITY", durability)]);
    let addr = relay.addr;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..4 {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut sent = 0;
            let mut conn = Conn::open(addr).ok();
            while let Some(c) = conn.as_mut() {
                if stop.load(std::sync::atomic::Ordering::SeqCst) && sent > 2000 {
                    break;
                }
                let id = format!("evt_k9_{t}_{sent:05}");
                sent += 1;
                let body = stripe_body(&id, 2500);
                let sig = sign(&body);
                match c.send(
                    "POST",
                    "/hooks/stripe",
                    &[
                        ("Content-Type", "application/json"),
                        ("Stripe-Signature", &sig),
                    ],
                    body.as_bytes(),
                ) {
                    Ok(r) if r.status == 200 => acked.push(id),
                    _ => break, // the relay died under us
                }
            }
            acked
        }));
    }
    std::thread::sleep(Duration::from_millis(700));
    relay.kill9();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let acked: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    assert!(
        acked.len() > 50,
        "the burst was too small to mean anything: {}",
        acked.len()
    );

    relay.spawn();
    let events = relay.pull_all(0);
    let pulled: Vec<String> = keys(&events);
    let pulled_set: HashSet<&String> = pulled.iter().collect();
    assert_eq!(pulled.len(), pulled_set.len(), "no event twice");
    let missing: Vec<&String> = acked.iter().filter(|id| !pulled_set.contains(id)).collect();
    assert!(missing.is_empty(), "answered 2xx but lost: {missing:?}");

    let last = events.last().and_then(|e| e["seq"].as_i64()).expect("seq");
    assert_eq!(relay.ack(last).status, 200);
    relay.kill9();
    relay.spawn();
    assert!(
        relay.pull_all(0).is_empty(),
        "acked events come back after restart"
    );
}

fn sigterm_finishes_in_flight_and_exits_zero() {
    let mut relay = Relay::start();
    let body = stripe_body("evt_term", 2000);
    assert_eq!(
        relay
            .post_hook("stripe", Some(&sign(&body)), body.as_bytes())
            .status,
        200
    );
    // A long-poll in flight is answered, not cut, when the relay stops.
    let addr = relay.addr;
    let auth = relay.auth();
    let poll = std::thread::spawn(move || {
        http::request(
            addr,
            "GET",
            "/v1/events?after=1&wait=20",
            &[("Authorization", &auth)],
            b"",
        )
    });
    wait_for_long_polls(relay.addr, 1);
    let started = Instant::now();
    let status = relay.terminate();
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let r = poll.join().expect("thread").expect("long-poll answered");
    assert_eq!(r.status, 200);
    relay.spawn();
    assert_eq!(keys(&relay.pull_all(0)), vec!["evt_term"]);
}

fn pull_and_ack_need_a_valid_token() {
    let relay = Relay::start();
    let body = stripe_body("evt_secret_payload", 600);
    assert_eq!(
        relay
            .post_hook("stripe", Some(&sign(&body)), body.as_bytes())
            .status,
        200
    );
    let wrong = format!("Bearer {}x", relay.token);
    for headers in [
        vec![],
        vec![("Authorization", wrong.as_str())],
        vec![("Authorization", "Basic Zm9vOmJhcg==")],
    ] {
        let r = http::request(relay.addr, "GET", "/v1/events?after=0", &headers, b"").expect("get");
        assert_eq!(r.status, 401);
        assert!(!r.text().contains("evt_secret_payload"));
        let mut h = headers.clone();
        h.push(("Content-Type", "application/json"));
        let r = http::request(relay.addr, "POST", "/v1/ack", &h, b"{\"through\":1}").expect("ack");
        assert_eq!(r.status, 401);
        let r = http::request(
            relay.addr,
            "PUT",
            "/v1/payment-links",
            &h,
            b"{\"links\":[]}",
        )
        .expect("put");
        assert_eq!(r.status, 401);
    }
    // Nothing was acked by the refused calls.
    assert_eq!(keys(&relay.pull_all(0)), vec!["evt_secret_payload"]);
}

fn http_errors_size_method_type_and_json() {
    let relay = Relay::start();
    let big = stripe_body("evt_big", 1024 * 1024 + 10);
    let r = relay.post_hook("stripe", Some(&sign(&big)), big.as_bytes());
    assert_eq!(r.status, 413);
    let r = http::request(relay.addr, "GET", "/hooks/stripe", &[], b"").expect("get");
    assert_eq!(r.status, 405);
    let body = stripe_body("evt_type", 300);
    let r = http::request(
        relay.addr,
        "POST",
        "/hooks/stripe",
        &[
            ("Content-Type", "text/plain"),
            ("Stripe-Signature", &sign(&body)),
        ],
        body.as_bytes(),
    )
    .expect("post");
    assert_eq!(r.status, 415);
    let not_json = "{\"id\": evt";
    let r = relay.post_hook("stripe", Some(&sign(not_json)), not_json.as_bytes());
    assert_eq!(r.status, 400);
    assert!(r.text().contains("not valid JSON"));
    let no_id = "{\"object\":\"event\"}";
    let r = relay.post_hook("stripe", Some(&sign(no_id)), no_id.as_bytes());
    assert_eq!(r.status, 400);
    let r = http::request(relay.addr, "GET", "/nope", &[], b"").expect("get");
    assert_eq!(r.status, 404);
    assert!(relay.pull_all(0).is_empty());

    let health = http::request(relay.addr, "GET", "/healthz", &[], b"").expect("health");
    assert_eq!(health.status, 200);
    let metrics = http::request(relay.addr, "GET", "/metrics", &[], b"")
        .expect("metrics")
        .text();
    for line in [
        "coachdesk_relay_webhooks_rejected_total{provider=\"stripe\",reason=\"too_large\"} 1",
        "coachdesk_relay_webhooks_rejected_total{provider=\"stripe\",reason=\"wrong_method\"} 1",
        "coachdesk_relay_webhooks_rejected_total{provider=\"stripe\",reason=\"unsupported_media_type\"} 1",
        "coachdesk_relay_webhooks_rejected_total{provider=\"stripe\",reason=\"malformed_json\"} 1",
        "coachdesk_relay_queue_depth 0",
    ] {
        assert!(metrics.contains(line), "missing {line}\n{metrics}");
    }
}

fn pay_redirects_to_the_pushed_payment_link() {
    let relay = Relay::start();
    let table = r#"{"links":[{"slug":"intro-call","url":"https://buy.stripe.com/test_intro"}]}"#;
    let r = relay.api("PUT", "/v1/payment-links", &relay.token, table.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http::request(
        relay.addr,
        "GET",
        "/pay/intro-call?invitee_uuid=AB12-cd_34&invitee_email=ann%2Bx%40example.com&event_type_uuid=E",
        &[],
        b"",
    )
    .expect("pay");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("Location"),
        Some("https://buy.stripe.com/test_intro?client_reference_id=AB12-cd_34&prefilled_email=ann%2Bx%40example.com")
    );
    let r = http::request(
        relay.addr,
        "GET",
        "/pay/intro-call?invitee_uuid=no%20way&invitee_email=a%40b.c",
        &[],
        b"",
    )
    .expect("pay");
    assert_eq!(
        r.header("Location"),
        Some("https://buy.stripe.com/test_intro?prefilled_email=a%40b.c")
    );
    let r = http::request(relay.addr, "GET", "/pay/unknown", &[], b"").expect("pay");
    assert_eq!(r.status, 404);
}

fn long_poll_returns_when_an_event_arrives() {
    let relay = Arc::new(Relay::start());
    let r2 = relay.clone();
    let poll = std::thread::spawn(move || {
        let started = Instant::now();
        let r = http::request(
            r2.addr,
            "GET",
            "/v1/events?after=0&wait=10",
            &[("Authorization", &r2.auth())],
            b"",
        )
        .expect("poll");
        (r, started.elapsed())
    });
    wait_for_long_polls(relay.addr, 1);
    let body = stripe_body("evt_poll", 400);
    assert_eq!(
        relay
            .post_hook("stripe", Some(&sign(&body)), body.as_bytes())
            .status,
        200
    );
    let (r, waited) = poll.join().expect("thread");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert!(r.text().contains("evt_poll"), "{}", r.text());
}

fn a_stalled_client_does_not_hold_the_only_worker() {
    let relay = Relay::start_with(&[
        ("COACHDESK_RELAY_WORKERS", "1"),
        ("COACHDESK_RELAY_READ_TIMEOUT_SECS", "1"),
    ]);
    use std::io::Write;
    // Headers and half a body, then silence.
    let mut slow = std::net::TcpStream::connect(relay.addr).expect("connect");
    write!(
        slow,
        "POST /hooks/stripe HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: 4000\r\n\r\n{{\"id\":\"evt_"
    )
    .expect("write");
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let body = stripe_body("evt_after_slow", 2500);
    let r = relay.post_hook("stripe", Some(&sign(&body)), body.as_bytes());
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    drop(slow);
}

/// One worker, many clients: the worker hands each verified event to the writer and takes
/// the next request, so a group commit holds more events than there are workers, and every
/// event is still answered (after its commit) and stored once.
fn group_commits_are_not_capped_by_the_worker_count() {
    let relay = Arc::new(Relay::start_with(&[("COACHDESK_RELAY_WORKERS", "1")]));
    let mut threads = Vec::new();
    for t in 0..32 {
        let relay = relay.clone();
        threads.push(std::thread::spawn(move || {
            let mut conn = Conn::open(relay.addr).expect("connect");
            for i in 0..20 {
                let body = stripe_body(&format!("evt_grp_{t:02}_{i:02}"), 2048);
                let sig = sign(&body);
                let r = conn
                    .send(
                        "POST",
                        "/hooks/stripe",
                        &[
                            ("Content-Type", "application/json"),
                            ("Stripe-Signature", &sig),
                        ],
                        body.as_bytes(),
                    )
                    .expect("post");
                assert_eq!(r.status, 200, "{}", r.text());
                assert!(r.text().contains("\"stored\""), "{}", r.text());
            }
        }));
    }
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(relay.pull_all(0).len(), 32 * 20);
    let metrics = http::request(relay.addr, "GET", "/metrics", &[], b"")
        .expect("metrics")
        .text();
    let counter = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    let commits = counter("coachdesk_relay_commits_total ");
    let jobs = counter("coachdesk_relay_committed_jobs_total ");
    assert_eq!(jobs, 640.0);
    assert!(
        commits < jobs,
        "one worker, yet every commit held one event: {commits} commits"
    );
}

fn put_calendly_key(relay: &Relay, auth: Option<&str>, key: &str) -> http::Reply {
    let body = serde_json::json!({ "key": key }).to_string();
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = auth {
        headers.push(("Authorization", auth));
    }
    http::request(
        relay.addr,
        "PUT",
        "/v1/calendly-signing-key",
        &headers,
        body.as_bytes(),
    )
    .expect("put")
}

fn a_calendly_key_handed_over_by_the_app_verifies_deliveries_and_survives_a_restart() {
    let mut relay = Relay::start();
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/invitee_created.json"
    ))
    .expect("fixture");
    let app_key = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
    let deliver = |relay: &Relay, key: &str| {
        relay
            .post_hook(
                "calendly",
                Some(&calendly_header(&body, key, now())),
                body.as_bytes(),
            )
            .status
    };
    assert_eq!(
        deliver(&relay, app_key),
        400,
        "not known before the app hands it over"
    );

    assert_eq!(put_calendly_key(&relay, None, app_key).status, 401);
    assert_eq!(
        put_calendly_key(&relay, Some("Bearer not-a-token"), app_key).status,
        401
    );
    let auth = relay.auth();
    let short = put_calendly_key(&relay, Some(&auth), "short");
    assert_eq!(short.status, 400, "{}", short.text());
    assert_eq!(
        put_calendly_key(&relay, Some(&auth), "has a space in it, so no").status,
        400
    );
    let put = put_calendly_key(&relay, Some(&auth), app_key);
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(deliver(&relay, app_key), 200, "accepted once handed over");
    assert_eq!(
        deliver(&relay, CALENDLY_KEY),
        200,
        "the configured key still works"
    );
    assert_eq!(deliver(&relay, "some-other-key-0000000000"), 400);

    relay.terminate();
    relay.spawn();
    assert_eq!(deliver(&relay, app_key), 200, "kept across a restart");

    // Renewals: the newest three are kept, the oldest then no longer verifies.
    for i in 0..3 {
        let newer = format!("renewed-signing-key-{i:02}-0123456789abcdef");
        assert_eq!(put_calendly_key(&relay, Some(&auth), &newer).status, 200);
    }
    assert_eq!(deliver(&relay, app_key), 400, "the oldest key was let go");
    assert_eq!(
        deliver(&relay, "renewed-signing-key-00-0123456789abcdef"),
        200
    );
    assert_eq!(
        keys(&relay.pull_all(0)).len(),
        1,
        "one event, the rest duplicates"
    );
}

on_both_backends!(
    stripe_library_headers_are_accepted_and_tampering_is_rejected,
    calendly_headers_are_accepted_and_tampering_is_rejected,
    duplicates_concurrent_duplicates_and_out_of_order_are_pulled_once,
    kill_9_mid_burst_loses_no_acknowledged_event_durability_full,
    kill_9_mid_burst_loses_no_acknowledged_event_durability_normal,
    sigterm_finishes_in_flight_and_exits_zero,
    pull_and_ack_need_a_valid_token,
    http_errors_size_method_type_and_json,
    pay_redirects_to_the_pushed_payment_link,
    long_poll_returns_when_an_event_arrives,
    a_stalled_client_does_not_hold_the_only_worker,
    group_commits_are_not_capped_by_the_worker_count,
    a_calendly_key_handed_over_by_the_app_verifies_deliveries_and_survives_a_restart,
);
