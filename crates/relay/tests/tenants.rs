//! Tenants on the real `coachdesk-relay` binary, on both backends: the operator's
//! `tenant` commands, paths under `/t/{name}/`, and nothing crossing from one coach to
//! another (tokens, webhooks, signing secrets, payment links, rates).

mod support;

use std::time::Duration;

use coachdesk_signature::sign_header;
use support::http;
use support::*;

/// What `tenant create` printed: the tenant's base path and first token.
struct Tenant {
    base: String,
    token: String,
    secret: String,
}

fn create_tenant(relay: &Relay, name: &str) -> Tenant {
    let made = relay.create_tenant(name);
    let url = made
        .printed
        .lines()
        .find_map(|l| l.strip_prefix("relay URL"))
        .map(str::trim)
        .expect("relay URL");
    assert!(
        made.printed
            .contains(&format!("Stripe webhook  {url}/hooks/stripe")),
        "the printed webhook URL is under the tenant: {}",
        made.printed
    );
    let tenant = Tenant {
        base: made.base,
        token: made.token,
        secret: format!("whsec_endpoint_secret_of_{name}"),
    };
    // The tenant's app hands over its Stripe endpoint's secret, as the app does.
    let r = relay.api(
        "PUT",
        &format!("{}/v1/stripe-signing-secrets", tenant.base),
        &tenant.token,
        format!("{{\"secrets\":[\"{}\"]}}", tenant.secret).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    tenant
}

fn post_stripe(relay: &Relay, base: &str, secret: &str, id: &str) -> http::Reply {
    let body = format!(
        "{{\"id\":\"{id}\",\"object\":\"event\",\"livemode\":false,\"type\":\"checkout.session.completed\",\"data\":{{\"object\":{{\"object\":\"checkout.session\"}}}}}}"
    );
    let sig = sign_header(secret.as_bytes(), now(), body.as_bytes());
    http::request(
        relay.addr,
        "POST",
        &format!("{base}/hooks/stripe"),
        &[
            ("Content-Type", "application/json"),
            ("Stripe-Signature", &sig),
        ],
        body.as_bytes(),
    )
    .expect("post")
}

fn pulled_keys(relay: &Relay, base: &str, token: &str) -> Vec<String> {
    let r = relay.api("GET", &format!("{base}/v1/events?after=0"), token, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let page: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    keys(page["events"].as_array().expect("events"))
}

fn tenants_share_nothing() {
    // Every refused token below comes from 127.0.0.1: the slowing down of an address that
    // keeps failing is lifted so each refusal is the tenant check's own.
    let relay = Relay::start_with(&[("COACHDESK_RELAY_AUTH_FAILURES_BURST", "1000")]);
    let a = create_tenant(&relay, "coach-a");
    let b = create_tenant(&relay, "coach-b");

    // The same event id reaches both coaches: each stores its own. Signed for A and posted
    // to B, or signed with the relay's own configured secret and posted to A, is refused;
    // so is a tenant's secret at the relay's own coach's path.
    let home = String::new();
    for (base, secret, id, status) in [
        (&a.base, a.secret.as_str(), "evt_same", 200),
        (&b.base, b.secret.as_str(), "evt_same", 200),
        (&b.base, b.secret.as_str(), "evt_b_only", 200),
        (&b.base, a.secret.as_str(), "evt_forged", 400),
        (&a.base, STRIPE_SECRET, "evt_forged", 400),
        (&home, a.secret.as_str(), "evt_forged", 400),
    ] {
        let r = post_stripe(&relay, base, secret, id);
        assert_eq!(r.status, status, "{id} to {base:?}: {}", r.text());
    }

    assert_eq!(pulled_keys(&relay, &a.base, &a.token), vec!["evt_same"]);
    assert_eq!(
        pulled_keys(&relay, &b.base, &b.token),
        vec!["evt_same", "evt_b_only"]
    );
    assert!(
        relay.pull_all(0).is_empty(),
        "the relay's own coach sees neither"
    );

    // A token reads, acks and configures only under its own tenant.
    let path = |base: &str, rest: &str| format!("{base}{rest}");
    for (method, rest, body) in [
        ("GET", "/v1/events?after=0", &b""[..]),
        ("POST", "/v1/ack", &b"{\"through\":1}"[..]),
        ("PUT", "/v1/payment-links", &b"{\"links\":[]}"[..]),
        ("GET", "/v1/redirects", &b""[..]),
        (
            "PUT",
            "/v1/stripe-signing-secrets",
            &b"{\"secrets\":[]}"[..],
        ),
    ] {
        for (base, token) in [(&b.base, &a.token), (&home, &a.token)] {
            let r = relay.api(method, &path(base, rest), token, body);
            assert_eq!(r.status, 401, "{method} {base}{rest} with A's token");
        }
        let r = relay.api(method, &path(&a.base, rest), &relay.token, body);
        assert_eq!(
            r.status, 401,
            "{method} {rest} under A with the relay's own token"
        );
    }
    assert_eq!(
        pulled_keys(&relay, &b.base, &b.token),
        vec!["evt_same", "evt_b_only"],
        "B's queue and secrets are as they were"
    );

    // Payment links: the same slug, each coach's own link.
    let links = |url: &str| format!("{{\"links\":[{{\"slug\":\"coaching\",\"url\":\"{url}\"}}]}}");
    for (t, url) in [
        (&a, "https://buy.stripe.com/a"),
        (&b, "https://buy.stripe.com/b"),
    ] {
        let r = relay.api(
            "PUT",
            &path(&t.base, "/v1/payment-links"),
            &t.token,
            links(url).as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for (t, url) in [
        (&a, "https://buy.stripe.com/a"),
        (&b, "https://buy.stripe.com/b"),
    ] {
        let r = http::request(relay.addr, "GET", &path(&t.base, "/pay/coaching"), &[], b"")
            .expect("pay");
        assert_eq!(r.status, 302);
        assert!(r.header("Location").is_some_and(|l| l.starts_with(url)));
    }
    let home = http::request(relay.addr, "GET", "/pay/coaching", &[], b"").expect("pay");
    assert_eq!(home.status, 404, "the relay's own coach has no such link");

    // Unknown tenants and the operator's routes under a tenant are not found.
    for p in [
        "/t/nobody/v1/events",
        "/t/coach-a/metrics",
        "/t/coach-a/healthz",
        "/t/Bad/x",
    ] {
        let r = http::request(relay.addr, "GET", p, &[], b"").expect("get");
        assert_eq!(r.status, 404, "{p}");
    }
    assert_eq!(
        metric(
            relay.addr,
            "coachdesk_relay_tenant_webhooks_total{tenant=\"coach-b\",outcome=\"stored\"}"
        ),
        2
    );
    for name in ["coach-a", "coach-b"] {
        let sample = format!(
            "coachdesk_relay_tenant_webhooks_total{{tenant=\"{name}\",outcome=\"rejected\"}}"
        );
        assert_eq!(metric(relay.addr, &sample), 1, "one forged webhook each");
    }
    // Each tenant's app used the API just now (its pulls above): recorded by the writer.
    eventually(
        "coach-a's last API use in the metrics",
        Duration::from_secs(10),
        || {
            let page = http::request(relay.addr, "GET", "/metrics", &[], b"")
                .expect("metrics")
                .text();
            page.contains("coachdesk_relay_tenant_last_api_use_seconds{tenant=\"coach-a\"}")
                .then_some(())
                .ok_or("not yet")
        },
    );
    let used = metric(
        relay.addr,
        "coachdesk_relay_tenant_last_api_use_seconds{tenant=\"coach-a\"}",
    );
    assert!((now() - 600..=now() + 5).contains(&(used as i64)), "{used}");
    assert_eq!(
        metric(
            relay.addr,
            "coachdesk_relay_tenant_queue_depth{tenant=\"coach-a\"}"
        ),
        1
    );

    let list = relay.command(&["tenant", "list"]);
    let listed = String::from_utf8(list.stdout).expect("utf8");
    assert!(
        listed.contains("coach-a") && listed.contains("coach-b"),
        "{listed}"
    );
    let removed = relay.command(&["tenant", "remove", "coach-b"]);
    assert!(removed.status.success(), "{removed:?}");
    // Gone on every process within a second (names resolved before are trusted that long).
    eventually(
        "the removed tenant's URLs to be gone",
        Duration::from_secs(5),
        || {
            let r = relay.api("GET", &path(&b.base, "/v1/events"), &b.token, b"");
            if r.status == 404 {
                Ok(())
            } else {
                Err(r.status)
            }
        },
    );
    assert_eq!(pulled_keys(&relay, &a.base, &a.token), vec!["evt_same"]);
    let again = relay.command(&["tenant", "remove", "coach-b"]);
    assert!(!again.status.success());
    let bad = relay.command(&["tenant", "create", "Not_A_Label", "--mode", "test"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("a-z 0-9"));
}

/// One coach's flood meets its own rate (429, which providers retry) while another
/// coach's webhooks, interleaved with it, are all stored; every 2xx of the flood is
/// delivered.
fn one_tenant_flooding_leaves_the_others_served() {
    // Every request comes from 127.0.0.1 here: the per-address quota is lifted so that
    // only the per-tenant one is at work.
    let relay = Relay::start_with(&[
        ("COACHDESK_RELAY_RATE_HOOKS_PER_SEC", "100000"),
        ("COACHDESK_RELAY_RATE_HOOKS_BURST", "100000"),
        ("COACHDESK_RELAY_RATE_TENANT_HOOKS_PER_SEC", "1"),
        ("COACHDESK_RELAY_RATE_TENANT_HOOKS_BURST", "25"),
    ]);
    let flood = create_tenant(&relay, "flood");
    let calm = create_tenant(&relay, "calm");
    let (mut stored, mut refused, mut calm_stored) = (Vec::new(), 0u64, 0);
    for i in 0..100 {
        let r = post_stripe(
            &relay,
            &flood.base,
            &flood.secret,
            &format!("evt_flood_{i}"),
        );
        match r.status {
            200 => stored.push(format!("evt_flood_{i}")),
            429 => {
                assert_eq!(r.header("Retry-After"), Some("1"));
                refused += 1;
            }
            other => panic!("flood answered {other}: {}", r.text()),
        }
        if i % 5 == 0 {
            let r = post_stripe(&relay, &calm.base, &calm.secret, &format!("evt_calm_{i}"));
            assert_eq!(r.status, 200, "the calm coach is served during the flood");
            calm_stored += 1;
        }
    }
    // At most the burst and a refill per second got through; the test sends for far less
    // than the 25 s that would take to reach half.
    assert!(refused >= 50, "only {refused} of 100 refused");
    assert_eq!(pulled_keys(&relay, &flood.base, &flood.token), stored);
    assert_eq!(
        pulled_keys(&relay, &calm.base, &calm.token).len(),
        calm_stored
    );
    assert_eq!(
        metric(
            relay.addr,
            "coachdesk_relay_tenant_webhooks_total{tenant=\"flood\",outcome=\"rate_limited\"}"
        ),
        refused
    );
}

/// After a restart, the relay reads every tenant's keys ahead of its webhooks: the first
/// webhook of each coach finds them in memory and reads nothing itself.
fn keys_are_read_ahead_of_each_coach_s_first_webhook() {
    let mut relay = Relay::start();
    let coaches: Vec<Tenant> = (0..3)
        .map(|i| create_tenant(&relay, &format!("warm{i}")))
        .collect();
    relay.terminate();
    relay.spawn();
    let ahead = "coachdesk_relay_tenant_key_reads_total{when=\"ahead\"}";
    let on_request = "coachdesk_relay_tenant_key_reads_total{when=\"on_request\"}";
    eventually(
        "every coach's keys read ahead",
        Duration::from_secs(10),
        || match metric(relay.addr, ahead) {
            n if n >= 3 => Ok(()),
            n => Err(n),
        },
    );
    let before = metric(relay.addr, on_request);
    for (i, coach) in coaches.iter().enumerate() {
        let r = post_stripe(&relay, &coach.base, &coach.secret, &format!("evt_warm_{i}"));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(
        metric(relay.addr, on_request),
        before,
        "a webhook read its coach's keys itself"
    );
}

on_both_backends!(
    tenants_share_nothing,
    one_tenant_flooding_leaves_the_others_served,
    keys_are_read_ahead_of_each_coach_s_first_webhook
);
