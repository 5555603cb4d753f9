//! Consumers of the real `coachdesk-relay` binary over loopback: one token per app install
//! with its own cursor and mode, revocation, payment link hosts, the relay's identity and
//! its schema migrations.

mod support;

use coachdesk_signature::sign_header;
use support::http;
use support::*;

fn stripe_event(id: &str, livemode: bool) -> String {
    format!(
        "{{\"id\":\"{id}\",\"object\":\"event\",\"livemode\":{livemode},\"type\":\"checkout.session.completed\",\"data\":{{\"object\":{{\"object\":\"checkout.session\"}}}}}}"
    )
}

fn post_stripe(relay: &Relay, body: &str) {
    let sig = sign_header(STRIPE_SECRET.as_bytes(), now(), body.as_bytes());
    let r = relay.post_hook("stripe", Some(&sig), body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
}

fn post_calendly(relay: &Relay) {
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/invitee_created.json"
    ))
    .expect("fixture");
    let r = relay.post_hook(
        "calendly",
        Some(&calendly_header(&body, CALENDLY_KEY, now())),
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn last_seq(events: &[serde_json::Value]) -> i64 {
    events
        .last()
        .and_then(|e| e["seq"].as_i64())
        .expect("an event")
}

fn queue_depth(relay: &Relay) -> i64 {
    let text = http::request(relay.addr, "GET", "/metrics", &[], b"")
        .expect("metrics")
        .text();
    text.lines()
        .find_map(|l| l.strip_prefix("coachdesk_relay_queue_depth "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no queue depth in {text}"))
}

fn json_of(reply: &http::Reply) -> serde_json::Value {
    serde_json::from_slice(&reply.body).unwrap_or_else(|_| panic!("not JSON: {}", reply.text()))
}

fn pull_page(relay: &Relay, token: &str, after: i64) -> http::Reply {
    http::request(
        relay.addr,
        "GET",
        &format!("/v1/events?after={after}"),
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
    .expect("pull")
}

fn two_tokens_two_cursors() {
    let relay = Relay::start();
    let second = relay.create_token("laptop-2", "test");
    for i in 0..5 {
        post_stripe(&relay, &stripe_event(&format!("evt_two_{i}"), false));
    }
    let mine = relay.pull_all(0);
    let theirs = relay.pull_all_as(&second, 0);
    assert_eq!(keys(&mine).len(), 5, "each consumer pulls every event");
    assert_eq!(keys(&mine), keys(&theirs));

    // The first app acks all it applied: it is not served them again, even from 0...
    let r = relay.ack(last_seq(&mine));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json_of(&r)["acked_through"], last_seq(&mine));
    assert!(relay.pull_all(0).is_empty());
    // ...while the second app still gets every one, once.
    assert_eq!(keys(&relay.pull_all_as(&second, 0)), keys(&theirs));
    assert_eq!(queue_depth(&relay), 5, "not acknowledged until both acked");

    // The second app acks part, then more arrive: each sees exactly what it has not acked.
    assert_eq!(relay.ack_as(&second, last_seq(&theirs[..2])).status, 200);
    post_stripe(&relay, &stripe_event("evt_two_late", false));
    assert_eq!(keys(&relay.pull_all(0)), vec!["evt_two_late"]);
    let rest = relay.pull_all_as(&second, 0);
    assert_eq!(rest.len(), 4, "{:?}", keys(&rest));
    assert_eq!(queue_depth(&relay), 4);
    assert_eq!(relay.ack_as(&second, last_seq(&rest)).status, 200);
    assert_eq!(
        queue_depth(&relay),
        1,
        "the first app has not acked the late one"
    );

    // `token list`: names, modes and cursors, never a token.
    let out = relay.command(&["token", "list"]);
    assert!(out.status.success(), "{out:?}");
    let list = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        !list.contains(&relay.token) && !list.contains(&second),
        "{list}"
    );
    let line = |name: &str| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {list}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let app = line("app");
    assert_eq!(app[1], "test");
    assert_eq!(app.last().map(String::as_str), Some("5"), "{list}");
    assert_ne!(app[3], "never", "an ack is a use: {list}");
    assert_eq!(line("laptop-2").last().map(String::as_str), Some("6"));
}

fn each_mode_gets_its_own_stripe_events_and_every_calendly_event() {
    let relay = Relay::start();
    let live = relay.create_token("live-app", "live");
    post_stripe(&relay, &stripe_event("evt_test_1", false));
    post_stripe(&relay, &stripe_event("evt_live_1", true));
    post_calendly(&relay);
    post_stripe(&relay, &stripe_event("evt_live_2", true));

    let test_keys = keys(&relay.pull_all(0));
    assert_eq!(test_keys.len(), 2, "{test_keys:?}");
    assert_eq!(test_keys[0], "evt_test_1");
    assert!(
        test_keys[1].starts_with("invitee.created|"),
        "{test_keys:?}"
    );
    let live_events = relay.pull_all_as(&live, 0);
    let live_keys = keys(&live_events);
    assert_eq!(live_keys.len(), 3, "{live_keys:?}");
    assert_eq!(live_keys[0], "evt_live_1");
    assert_eq!(live_keys[1], test_keys[1], "Calendly goes to both");
    assert_eq!(live_keys[2], "evt_live_2");

    // The test app acks its last: the live events and the Calendly one wait for the live
    // app.
    let test_last = last_seq(&relay.pull_all(0));
    assert_eq!(relay.ack(test_last).status, 200);
    assert_eq!(queue_depth(&relay), 3);
    assert_eq!(relay.ack_as(&live, last_seq(&live_events)).status, 200);
    assert_eq!(queue_depth(&relay), 0);

    // A long-poll of the test app is not answered with a live event.
    let started = std::time::Instant::now();
    let poll = std::thread::scope(|s| {
        let poll = s.spawn(|| {
            http::request(
                relay.addr,
                "GET",
                &format!("/v1/events?after={test_last}&wait=2"),
                &[("Authorization", &relay.auth())],
                b"",
            )
            .expect("long-poll")
        });
        wait_for_long_polls(relay.addr, 1);
        post_stripe(&relay, &stripe_event("evt_live_3", true));
        poll.join().expect("poll")
    });
    assert_eq!(poll.status, 200);
    assert_eq!(json_of(&poll)["events"], serde_json::json!([]));
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
}

fn a_revoked_token_is_refused_at_once() {
    let relay = Relay::start();
    let other = relay.create_token("old-laptop", "live");
    assert_eq!(pull_page(&relay, &other, 0).status, 200);

    let out = relay.command(&["token", "revoke", "old-laptop"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        pull_page(&relay, &other, 0).status,
        401,
        "no restart needed"
    );
    assert_eq!(relay.ack_as(&other, 0).status, 401);
    assert_eq!(
        pull_page(&relay, &relay.token, 0).status,
        200,
        "others keep working"
    );

    let out = relay.command(&["token", "revoke", "old-laptop"]);
    assert!(!out.status.success(), "revoking twice says so");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token is named"));

    // A name is unique; create needs a name and a mode.
    let out = relay.command(&["token", "create", "--name", "app", "--mode", "live"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exists already"),
        "{out:?}"
    );
    let out = relay.command(&["token", "create"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--name"),
        "{out:?}"
    );
    let out = relay.command(&["token", "create", "--name", "x", "--mode", "any"]);
    assert!(!out.status.success());
}

fn put_links(relay: &Relay, table: &str) -> http::Reply {
    relay.api("PUT", "/v1/payment-links", &relay.token, table.as_bytes())
}

fn payment_links_must_point_at_stripe_or_an_allowed_host() {
    let relay = Relay::start_with(&[("COACHDESK_RELAY_PAYMENT_LINK_HOSTS", "http://127.0.0.1")]);
    let good = r#"{"links":[{"slug":"intro","url":"https://buy.stripe.com/test_intro"},
                            {"slug":"sim","url":"http://127.0.0.1:4242/b/plink_1"}]}"#;
    assert_eq!(put_links(&relay, good).status, 200);

    let foreign = r#"{"links":[{"slug":"intro","url":"https://buy.stripe.com/test_intro"},
                               {"slug":"evil","url":"https://pay.evil.example/login"}]}"#;
    let r = put_links(&relay, foreign);
    assert_eq!(r.status, 422, "{}", r.text());
    let refusal = json_of(&r);
    assert_eq!(refusal["error"], "payment_link_host");
    assert_eq!(refusal["host"], "https://pay.evil.example");
    let message = refusal["message"].as_str().expect("message");
    assert!(
        message.contains("pay.evil.example") && message.contains("evil"),
        "{message}"
    );

    // Nothing of a refused table is stored.
    let r = http::request(relay.addr, "GET", "/pay/sim", &[], b"").expect("pay");
    assert_eq!(r.status, 302);
    assert_eq!(
        http::request(relay.addr, "GET", "/pay/evil", &[], b"")
            .expect("pay")
            .status,
        404
    );

    // Without the operator's entry the simulator's host is foreign too.
    let strict = Relay::start();
    let r = put_links(&strict, good);
    assert_eq!(r.status, 422);
    assert_eq!(json_of(&r)["host"], "http://127.0.0.1:4242");
}

fn the_relay_has_an_identity_and_refuses_acks_it_cannot_honour() {
    let mut relay = Relay::start();
    post_stripe(&relay, &stripe_event("evt_id_1", false));
    post_stripe(&relay, &stripe_event("evt_id_2", false));
    let page = pull_page(&relay, &relay.token, 0);
    let id = json_of(&page)["relay_id"]
        .as_str()
        .expect("relay_id")
        .to_owned();
    assert!(id.starts_with("rly_"), "{id}");

    // Beyond the newest sequence: 409, and nothing marked.
    let r = relay.ack(3);
    assert_eq!(r.status, 409, "{}", r.text());
    let refusal = json_of(&r);
    assert_eq!(refusal["error"], "ack_beyond_newest");
    assert_eq!(refusal["newest"], 2);
    assert_eq!(refusal["relay_id"], id.as_str());
    assert_eq!(relay.pull_all(0).len(), 2);

    // An ack naming another relay: 409, nothing marked.
    let ack_for = |relay: &Relay, relay_id: &str| {
        http::request(
            relay.addr,
            "POST",
            "/v1/ack",
            &[
                ("Authorization", &relay.auth()),
                ("Content-Type", "application/json"),
            ],
            serde_json::json!({ "through": 1, "relay_id": relay_id })
                .to_string()
                .as_bytes(),
        )
        .expect("ack")
    };
    let r = ack_for(&relay, "rly_someone_else");
    assert_eq!(r.status, 409);
    assert_eq!(json_of(&r)["error"], "relay_changed");
    assert_eq!(relay.pull_all(0).len(), 2);
    let r = ack_for(&relay, &id);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json_of(&r)["relay_id"], id.as_str());
    assert_eq!(relay.pull_all(0).len(), 1);

    // Kept across restarts; another database is another relay.
    relay.terminate();
    relay.spawn();
    assert_eq!(
        json_of(&pull_page(&relay, &relay.token, 0))["relay_id"],
        id.as_str()
    );
    let other = Relay::start();
    assert_ne!(
        json_of(&pull_page(&other, &other.token, 0))["relay_id"],
        id.as_str()
    );
}

fn handed_over_keys_never_evict_the_configured_key_nor_another_tokens_key() {
    let relay = Relay::start();
    let other = relay.create_token("laptop-2", "test");
    let body = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/invitee_created.json"
    ))
    .expect("fixture");
    let deliver = |key: &str| {
        relay
            .post_hook(
                "calendly",
                Some(&calendly_header(&body, key, now())),
                body.as_bytes(),
            )
            .status
    };
    let hand_over = |token: &str, key: &str| {
        http::request(
            relay.addr,
            "PUT",
            "/v1/calendly-signing-key",
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            serde_json::json!({ "key": key }).to_string().as_bytes(),
        )
        .expect("put")
        .status
    };
    let mine = "the-first-apps-subscription-key-0001";
    assert_eq!(hand_over(&relay.token, mine), 200);
    for i in 0..5 {
        assert_eq!(
            hand_over(&other, &format!("another-apps-key-{i:02}-abcdef")),
            200
        );
    }
    assert_eq!(
        deliver(mine),
        200,
        "another token's renewals do not evict it"
    );
    assert_eq!(deliver(CALENDLY_KEY), 200, "the configured key stays");
    assert_eq!(deliver("another-apps-key-04-abcdef"), 200);
    assert_eq!(
        deliver("another-apps-key-00-abcdef"),
        400,
        "its own oldest went"
    );

    // Revoking a token forgets the keys it handed over.
    assert!(relay
        .command(&["token", "revoke", "laptop-2"])
        .status
        .success());
    let _ = relay.pull_all(0);
    assert_eq!(deliver("another-apps-key-04-abcdef"), 400);
    assert_eq!(deliver(mine), 200);
}

fn the_operator_can_turn_key_hand_over_off() {
    let relay = Relay::start_with(&[("COACHDESK_RELAY_CALENDLY_KEY_HANDOVER", "false")]);
    let r = http::request(
        relay.addr,
        "PUT",
        "/v1/calendly-signing-key",
        &[
            ("Authorization", &relay.auth()),
            ("Content-Type", "application/json"),
        ],
        br#"{"key":"a-key-the-app-would-like-to-use"}"#,
    )
    .expect("put");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(json_of(&r)["error"], "handover_disabled");
}

fn put_stripe_secrets(relay: &Relay, token: &str, secrets: &[&str]) -> http::Reply {
    http::request(
        relay.addr,
        "PUT",
        "/v1/stripe-signing-secrets",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        serde_json::json!({ "secrets": secrets })
            .to_string()
            .as_bytes(),
    )
    .expect("put")
}

/// The app's endpoint secret is handed over, then rotated: during the switch both the old
/// and the new secret verify; once the app hands over the new one alone, the old one is
/// refused. Another token's secret and the configured ones are never touched.
fn stripe_secrets_handed_over_verify_across_a_rotation_and_survive_a_restart() {
    let mut relay = Relay::start();
    let other = relay.create_token("laptop-2", "test");
    let n = std::cell::Cell::new(0);
    let deliver = |relay: &Relay, secret: &str| {
        n.set(n.get() + 1);
        let body = stripe_event(&format!("evt_rotation_{}", n.get()), false);
        let sig = sign_header(secret.as_bytes(), now(), body.as_bytes());
        relay
            .post_hook("stripe", Some(&sig), body.as_bytes())
            .status
    };
    let (old, new) = (
        "whsec_endpoint_made_by_the_app_old",
        "whsec_endpoint_made_by_the_app_new",
    );
    let theirs = "whsec_endpoint_of_another_app_install";
    assert_eq!(deliver(&relay, old), 400, "not handed over yet");
    let r = put_stripe_secrets(&relay, &relay.token, &[old]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json_of(&r)["kept"], 1);
    assert_eq!(put_stripe_secrets(&relay, &other, &[theirs]).status, 200);
    assert_eq!(deliver(&relay, old), 200);

    // The switch: the new endpoint's secret beside the retiring one's.
    assert_eq!(
        put_stripe_secrets(&relay, &relay.token, &[new, old]).status,
        200
    );
    assert_eq!(deliver(&relay, old), 200, "signed before the switch");
    assert_eq!(deliver(&relay, new), 200, "signed after the switch");
    // The old endpoint is gone: the app hands over the new secret alone.
    let r = put_stripe_secrets(&relay, &relay.token, &[new]);
    assert_eq!(json_of(&r)["kept"], 2, "its own and the other token's");
    assert_eq!(deliver(&relay, old), 400, "the retired secret is refused");
    assert_eq!(deliver(&relay, new), 200);
    assert_eq!(deliver(&relay, theirs), 200, "another token's stays");
    assert_eq!(
        deliver(&relay, STRIPE_SECRET),
        200,
        "the configured one stays"
    );

    // Stored, not only in memory.
    relay.terminate();
    relay.spawn();
    assert_eq!(deliver(&relay, new), 200);
    assert_eq!(deliver(&relay, old), 400);

    // Malformed lists are refused whole; nothing changes.
    for bad in [&["short"][..], &[new, old, theirs][..]] {
        assert_eq!(put_stripe_secrets(&relay, &relay.token, bad).status, 400);
    }
    assert_eq!(deliver(&relay, new), 200);
    let r = http::request(
        relay.addr,
        "PUT",
        "/v1/stripe-signing-secrets",
        &[("Content-Type", "application/json")],
        br#"{"secrets":["whsec_without_a_token_000"]}"#,
    )
    .expect("put");
    assert_eq!(r.status, 401);

    // Revoking a token forgets its secrets.
    assert!(relay
        .command(&["token", "revoke", "laptop-2"])
        .status
        .success());
    let _ = relay.pull_all(0);
    assert_eq!(deliver(&relay, theirs), 400);
    assert_eq!(deliver(&relay, new), 200);
}

fn the_operator_can_turn_stripe_secret_hand_over_off() {
    let relay = Relay::start_with(&[("COACHDESK_RELAY_STRIPE_SECRET_HANDOVER", "false")]);
    let r = put_stripe_secrets(&relay, &relay.token, &["whsec_the_app_would_like_this"]);
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(json_of(&r)["error"], "handover_disabled");
}

/// A relay database exactly as relays made it before migrations were numbered, with one
/// token (returned), an acknowledged and two waiting events.
fn todays_database(path: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.execute_batch(include_str!("../migrations/0001_init.sql"))
        .expect("old schema");
    let token = coachdesk_relay::token::generate();
    conn.execute(
        "INSERT INTO tokens (hash, created_at_ms) VALUES (?1, 1)",
        [coachdesk_relay::token::hash(&token)],
    )
    .expect("token");
    conn.execute_batch(&format!(
        "INSERT INTO events (provider, key, received_at_ms, body, acked_at_ms) VALUES
             ('stripe', 'evt_old_1', 1, '{}', 2),
             ('stripe', 'evt_old_2', 3, '{}', NULL),
             ('stripe', 'evt_old_3', 4, '{}', NULL);
         UPDATE ack_mark SET through = 1;",
        stripe_event("evt_old_1", false),
        stripe_event("evt_old_2", true),
        stripe_event("evt_old_3", false),
    ))
    .expect("events");
    token
}

#[test]
fn a_database_of_today_is_migrated_and_its_token_keeps_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut relay = Relay::start();
    relay.kill9();
    let db = dir.path().join("old.db");
    let old_token = todays_database(&db);
    relay.extra_env.push((
        "COACHDESK_RELAY_DB".to_owned(),
        db.to_string_lossy().into_owned(),
    ));
    relay.spawn();
    let events = relay.pull_all_as(&old_token, 0);
    assert_eq!(
        keys(&events),
        vec!["evt_old_2", "evt_old_3"],
        "from the old mark, both modes"
    );
    assert_eq!(relay.ack_as(&old_token, 3).status, 200);
    let out = relay.command(&["token", "list"]);
    let list = String::from_utf8(out.stdout).expect("utf8");
    assert!(
        list.contains("legacy-1") && list.contains(" any "),
        "{list}"
    );
}

fn a_database_newer_than_the_relay_is_refused() {
    let mut relay = Relay::start();
    relay.kill9();
    match relay
        .extra_env
        .iter()
        .find(|(k, _)| k == "COACHDESK_RELAY_DATABASE_URL")
    {
        Some((_, url)) => {
            ::postgres::Client::connect(url, ::postgres::NoTls)
                .expect("connect")
                .execute("UPDATE relay_schema SET version = 99 WHERE id = 1", &[])
                .expect("bump");
        }
        None => rusqlite::Connection::open(relay.db())
            .expect("open")
            .pragma_update(None, "user_version", 99)
            .expect("bump"),
    }
    for args in [&["serve"][..], &["token", "list"][..]] {
        let out = relay.command(args);
        assert!(!out.status.success(), "{args:?} ran on a newer database");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("schema version 99, newer than this relay knows"),
            "{stderr}"
        );
    }
}

/// Event keys are stored hashed with the relay's index key: started with another key, the
/// relay refuses to run (it would store every provider retry a second time), and with its
/// own key it serves its events as before.
fn a_relay_with_another_index_key_refuses_the_database() {
    let mut relay = Relay::start();
    post_stripe(&relay, &stripe_event("evt_indexed", false));
    relay.kill9();
    let on_postgres = relay
        .extra_env
        .iter()
        .any(|(k, _)| k == "COACHDESK_RELAY_DATABASE_URL");
    let key_file = {
        let mut name = relay.db().into_os_string();
        name.push(".index-key");
        std::path::PathBuf::from(name)
    };
    let own = if on_postgres {
        assert!(
            !key_file.exists(),
            "PostgreSQL's key is configured, not a file"
        );
        let own = INDEX_KEY.to_owned();
        set_env(
            &mut relay,
            "COACHDESK_RELAY_INDEX_KEY",
            "another-index-key-0123456789abcdef",
        );
        own
    } else {
        let own = std::fs::read_to_string(&key_file).expect("the key file beside the database");
        std::fs::write(&key_file, "ab".repeat(32)).expect("another key");
        own
    };
    let out = relay.command(&["serve"]);
    assert!(!out.status.success(), "served with another index key");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hashed with another index key"), "{stderr}");

    if on_postgres {
        set_env(&mut relay, "COACHDESK_RELAY_INDEX_KEY", &own);
    } else {
        std::fs::write(&key_file, own).expect("the key back");
    }
    relay.spawn();
    assert_eq!(keys(&relay.pull_all(0)), ["evt_indexed"]);
    post_stripe(&relay, &stripe_event("evt_indexed", false));
    assert_eq!(relay.pull_all(0).len(), 1, "a retry is still a duplicate");
}

fn set_env(relay: &mut Relay, name: &str, value: &str) {
    relay.extra_env.retain(|(k, _)| k != name);
    relay.extra_env.push((name.to_owned(), value.to_owned()));
}

on_both_backends!(
    a_database_newer_than_the_relay_is_refused,
    a_relay_with_another_index_key_refuses_the_database,
    two_tokens_two_cursors,
    each_mode_gets_its_own_stripe_events_and_every_calendly_event,
    a_revoked_token_is_refused_at_once,
    payment_links_must_point_at_stripe_or_an_allowed_host,
    the_relay_has_an_identity_and_refuses_acks_it_cannot_honour,
    handed_over_keys_never_evict_the_configured_key_nor_another_tokens_key,
    the_operator_can_turn_key_hand_over_off,
    stripe_secrets_handed_over_verify_across_a_rotation_and_survive_a_restart,
    the_operator_can_turn_stripe_secret_hand_over_off,
);
