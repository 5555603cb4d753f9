//! `/pay/{slug}` making each booking its own Stripe Checkout Session (issue 11), against
//! the real relay binary and the provider simulator's Stripe (which checks every request
//! against Stripe's OpenAPI description and refuses a restricted key anything but Checkout
//! Sessions), and the redirect visits it counts per slug (issue 13). Both backends.

mod support;

use std::time::{Duration, Instant};

use coachdesk_sim::{Fault, FaultKind, RequestRecord, SimClient, SimConfig, Simulator};
use serde_json::Value;
use support::{eventually, http, now, Relay};

const RESTRICTED_KEY: &str = "rk_test_relay_checkout";
const LINK: &str = "https://buy.stripe.com/test_coaching";
const BOOK_AGAIN: &str = "https://calendly.com/sam-coach/coaching-60";

struct World {
    sim: Simulator,
    client: SimClient,
    relay: Relay,
}

fn world(extra: &[(&str, &str)]) -> World {
    let sim = Simulator::start(SimConfig::default()).expect("simulator");
    let client = SimClient::new(sim.base_url());
    let base = sim.base_url().to_owned();
    let mut env = vec![
        ("COACHDESK_RELAY_STRIPE_RESTRICTED_KEY", RESTRICTED_KEY),
        ("COACHDESK_RELAY_STRIPE_API_BASE", base.as_str()),
    ];
    env.extend_from_slice(extra);
    let relay = Relay::start_with(&env);
    push_table(&relay, 120);
    World { sim, client, relay }
}

/// The app's table: `coaching` with its price and a payment window of `window` minutes,
/// `intro` as an app of before pushes it (link only).
fn push_table(relay: &Relay, window: u32) {
    push_table_as(relay, "", &relay.token, window);
}

/// The same, under a tenant's `base` path with its token.
fn push_table_as(relay: &Relay, base: &str, token: &str, window: u32) {
    let table = serde_json::json!({"links": [
        {"slug": "coaching", "url": LINK, "booking_url": BOOK_AGAIN,
         "checkout": {"name": "Coaching session", "amount_minor": 9000, "currency": "eur",
                      "payment_window_minutes": window}},
        {"slug": "intro", "url": "https://buy.stripe.com/test_intro"}
    ]});
    let r = relay.api(
        "PUT",
        &format!("{base}/v1/payment-links"),
        token,
        table.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

fn visit(relay: &Relay, path: &str) -> http::Reply {
    http::request(relay.addr, "GET", path, &[], b"").expect("pay")
}

/// The session creations Stripe carried out (replays of an Idempotency-Key left out),
/// each checked against Stripe's OpenAPI description.
fn created(client: &SimClient) -> Vec<RequestRecord> {
    let all = client.requests(None, Some("/v1/")).expect("requests");
    for r in &all {
        assert_eq!(
            r.invalid_request, None,
            "{} {}: {}",
            r.method, r.path, r.body
        );
        assert!(r.invalid_response.is_empty(), "{:?}", r.invalid_response);
        assert!(
            r.path.starts_with("/v1/checkout/sessions"),
            "the relay called {} {}",
            r.method,
            r.path
        );
    }
    all.into_iter()
        .filter(|r| {
            r.method == "POST"
                && r.path == "/v1/checkout/sessions"
                && r.status == 200
                && !r.replayed
        })
        .collect()
}

fn form(record: &RequestRecord) -> Vec<(String, String)> {
    form_urlencoded::parse(record.body.as_bytes())
        .into_owned()
        .collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The session Stripe has under `id`, read with a secret key.
fn session(client: &SimClient, id: &str) -> Value {
    let r = client
        .stripe(
            "GET",
            &format!("/v1/checkout/sessions/{id}"),
            &Value::Null,
            None,
        )
        .expect("get session");
    assert_eq!(r.status, 200);
    r.json().expect("json")
}

/// The session id in the simulator's checkout URL (`{base}/c/pay/{id}`).
fn session_id_of(location: &str) -> String {
    location
        .rsplit('/')
        .next()
        .filter(|id| id.starts_with("cs_"))
        .unwrap_or_else(|| panic!("no session id in {location}"))
        .to_owned()
}

fn two_visits_of_one_booking_make_one_session_expiring_at_the_deadline() {
    let w = world(&[]);
    let before = now();
    let first = visit(
        &w.relay,
        "/pay/coaching?invitee_uuid=inv-A1&invitee_email=ann%2Bx%40example.com",
    );
    let after = now();
    assert_eq!(first.status, 302, "{}", first.text());
    let location = first.header("Location").expect("location").to_owned();
    assert!(location.starts_with(w.sim.base_url()), "{location}");
    let second = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-A1");
    assert_eq!(second.header("Location"), Some(location.as_str()));

    let made = created(&w.client);
    assert_eq!(made.len(), 1, "one Checkout Session for one booking");
    let sent = form(&made[0]);
    assert_eq!(field(&sent, "client_reference_id"), Some("inv-A1"));
    assert_eq!(field(&sent, "metadata[coachdesk_invitee]"), Some("inv-A1"));
    assert_eq!(
        field(&sent, "metadata[coachdesk_session_type]"),
        Some("coaching")
    );
    assert_eq!(field(&sent, "customer_email"), Some("ann+x@example.com"));
    assert_eq!(
        made[0].idempotency_key.as_deref(),
        Some("coachdesk-relay-checkout-inv-A1")
    );
    let id = session_id_of(&location);
    let s = session(&w.client, &id);
    assert_eq!(s["amount_total"], 9000);
    assert_eq!(s["currency"], "eur");
    assert_eq!(s["customer_email"], "ann+x@example.com");
    // The deadline: the 120-minute payment window from the first visit.
    let expires = s["expires_at"].as_i64().expect("expires_at");
    assert!(
        (before + 7200..=after + 7200).contains(&expires),
        "{expires} not within [{}, {}]",
        before + 7200,
        after + 7200
    );

    // A session starting before the window ends: the deadline is its start.
    let start = now() + 3600;
    let start_text = time::OffsetDateTime::from_unix_timestamp(start)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let r = visit(
        &w.relay,
        &format!(
            "/pay/coaching?invitee_uuid=inv-A2&event_start_time={}",
            support_encode(&start_text)
        ),
    );
    assert_eq!(r.status, 302);
    let id = session_id_of(r.header("Location").expect("location"));
    assert_eq!(session(&w.client, &id)["expires_at"], start);
}

fn support_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn concurrent_first_visits_make_one_session() {
    let w = world(&[]);
    let relay = &w.relay;
    let locations: Vec<Option<String>> = std::thread::scope(|scope| {
        let visits: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    let r = visit(relay, "/pay/coaching?invitee_uuid=inv-B1");
                    assert_eq!(r.status, 302, "{}", r.text());
                    r.header("Location").map(str::to_owned)
                })
            })
            .collect();
        visits
            .into_iter()
            .map(|v| v.join().expect("visit"))
            .collect()
    });
    assert_eq!(created(&w.client).len(), 1);
    let first = locations[0].clone().expect("location");
    assert!(first.starts_with(w.sim.base_url()), "{first}");
    assert!(locations
        .iter()
        .all(|l| l.as_deref() == Some(first.as_str())));
}

fn a_paid_booking_says_so_and_an_expired_one_offers_to_book_again() {
    let w = world(&[]);
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-C1");
    let paid = session_id_of(r.header("Location").expect("location"));
    w.client.pay_session(&paid, false).expect("pay");
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-C1");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("already paid"), "{}", r.text());
    assert_eq!(r.header("Location"), None);

    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-C2");
    let expired = session_id_of(r.header("Location").expect("location"));
    w.client.expire_session(&expired).expect("expire");
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-C2");
    assert_eq!(r.status, 410);
    let page = r.text();
    assert!(page.contains("Payment time has passed"), "{page}");
    assert!(page.contains(&format!("href=\"{BOOK_AGAIN}\"")), "{page}");
    // Read back, never made again.
    assert_eq!(created(&w.client).len(), 2);
}

/// A verified Calendly delivery about invitee `uuid`: booked at `booked_at`, and if
/// `cancelled`, cancelled then (moved to `moved_to` by a reschedule).
fn calendly(w: &World, uuid: &str, booked_at: i64, cancelled: Option<i64>, moved_to: Option<&str>) {
    let rfc = |t: i64| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .expect("time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    let invitee = |u: &str| format!("https://api.calendly.com/scheduled_events/EV/invitees/{u}");
    let body = serde_json::json!({
        "event": if cancelled.is_some() { "invitee.canceled" } else { "invitee.created" },
        "created_at": rfc(cancelled.unwrap_or(booked_at)),
        "payload": {
            "uri": invitee(uuid),
            "created_at": rfc(booked_at),
            "status": if cancelled.is_some() { "canceled" } else { "active" },
            "rescheduled": moved_to.is_some(),
            "new_invitee": moved_to.map(invitee),
            "cancellation": cancelled.map(|t| serde_json::json!({"created_at": rfc(t), "canceled_by": "Ann", "canceler_type": "invitee"})),
        }
    })
    .to_string();
    let header = support::calendly_header(&body, support::CALENDLY_KEY, now());
    let r = w
        .relay
        .post_hook("calendly", Some(&header), body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
}

fn the_deadline_counts_from_the_booking_not_the_first_visit() {
    let w = world(&[]);
    // Booked an hour ago with a two-hour window: one hour is left.
    let booked = now() - 3600;
    calendly(&w, "inv-B1", booked, None, None);
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-B1");
    assert_eq!(r.status, 302, "{}", r.text());
    let sent = form(&created(&w.client)[0]);
    assert_eq!(
        field(&sent, "expires_at").and_then(|v| v.parse::<i64>().ok()),
        Some(booked + 120 * 60)
    );
    // Booked three hours ago: the window has passed, no session is made.
    calendly(&w, "inv-B2", now() - 3 * 3600, None, None);
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-B2");
    assert_eq!(r.status, 410);
    assert!(r.text().contains("Payment time has passed"), "{}", r.text());
    assert_eq!(created(&w.client).len(), 1);
}

fn a_cancelled_booking_is_not_sold_and_its_open_session_is_expired() {
    let w = world(&[]);
    let booked = now() - 60;
    calendly(&w, "inv-X1", booked, None, None);
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-X1");
    let open = session_id_of(r.header("Location").expect("location"));
    assert_eq!(session(&w.client, &open)["status"], "open");
    // The client cancels in Calendly: the relay stops the session taking payment (after
    // answering the delivery).
    calendly(&w, "inv-X1", booked, Some(now()), None);
    eventually("the session expiring", Duration::from_secs(10), || {
        let status = session(&w.client, &open)["status"].clone();
        if status == "expired" {
            Ok(())
        } else {
            Err(status)
        }
    });
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-X1");
    assert_eq!(r.status, 410);
    let page = r.text();
    assert!(page.contains("This booking was cancelled"), "{page}");
    assert!(page.contains(&format!("href=\"{BOOK_AGAIN}\"")), "{page}");
    // Cancelled before any visit: no session is ever made for it.
    calendly(&w, "inv-X2", booked, Some(now()), None);
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-X2");
    assert_eq!(r.status, 410);
    assert_eq!(created(&w.client).len(), 1);
    let metrics = http::request(w.relay.addr, "GET", "/metrics", &[], b"")
        .expect("metrics")
        .text();
    assert!(
        metrics.contains("coachdesk_relay_checkout_expired_on_cancel_total{result=\"expired\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("coachdesk_relay_pay_checkout_total{outcome=\"cancelled\"} 2"),
        "{metrics}"
    );
}

fn a_moved_booking_sends_the_client_to_the_new_booking_s_payment() {
    let w = world(&[("COACHDESK_RELAY_PUBLIC_URL", "https://relay.example")]);
    let booked = now() - 60;
    calendly(&w, "inv-M1", booked, Some(now()), Some("inv-M2"));
    calendly(&w, "inv-M2", now(), None, None);
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-M1");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("Location"),
        Some("https://relay.example/pay/coaching?invitee_uuid=inv-M2")
    );
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-M2");
    assert!(r
        .header("Location")
        .is_some_and(|l| l.starts_with(w.sim.base_url())));
    assert_eq!(created(&w.client).len(), 1);
}

fn a_swapped_slug_keeps_the_booking_s_first_session() {
    let w = world(&[]);
    let first = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-D1");
    let again = visit(&w.relay, "/pay/intro?invitee_uuid=inv-D1");
    // `intro` has no Checkout terms: its link, with the reference, as before.
    assert_eq!(
        again.header("Location"),
        Some("https://buy.stripe.com/test_intro?client_reference_id=inv-D1")
    );
    assert!(first
        .header("Location")
        .is_some_and(|l| l.starts_with(w.sim.base_url())));
    assert_eq!(created(&w.client).len(), 1);
}

fn without_a_restricted_key_the_client_gets_the_payment_link() {
    let relay = Relay::start();
    push_table(&relay, 120);
    let r = visit(
        &relay,
        "/pay/coaching?invitee_uuid=inv-E1&invitee_email=a%40b.c",
    );
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("Location"),
        Some(format!("{LINK}?client_reference_id=inv-E1&prefilled_email=a%40b.c").as_str())
    );
}

fn a_stripe_failure_sends_the_client_to_the_payment_link() {
    let w = world(&[("COACHDESK_RELAY_STRIPE_TIMEOUT_MS", "700")]);
    let link = format!("{LINK}?client_reference_id=inv-F1");
    w.client
        .inject_fault(&Fault {
            method: Some("POST".into()),
            path_prefix: "/v1/checkout/sessions".into(),
            kind: FaultKind::ServerError,
            remaining: 1,
        })
        .expect("fault");
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-F1");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("Location"), Some(link.as_str()));

    // Stripe makes the session but the answer never comes: the link now, and the same
    // session (by its Idempotency-Key) at the next visit.
    w.client
        .inject_fault(&Fault {
            method: Some("POST".into()),
            path_prefix: "/v1/checkout/sessions".into(),
            kind: FaultKind::LoseAnswer { ms: Some(3000) },
            remaining: 1,
        })
        .expect("fault");
    let started = Instant::now();
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-F2");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the timeout held"
    );
    assert_eq!(
        r.header("Location"),
        Some(format!("{LINK}?client_reference_id=inv-F2").as_str())
    );
    let r = visit(&w.relay, "/pay/coaching?invitee_uuid=inv-F2");
    let location = r.header("Location").expect("location");
    assert!(location.starts_with(w.sim.base_url()), "{location}");
    created(&w.client);
    let posts: Vec<(u16, bool)> = w
        .client
        .requests(Some("POST"), Some("/v1/checkout/sessions"))
        .expect("requests")
        .iter()
        .filter(|r| field(&form(r), "client_reference_id") == Some("inv-F2"))
        .map(|r| (r.status, r.replayed))
        .collect();
    // The second visit was answered from the Idempotency-Key: the session of the first
    // (carried out, its answer lost; the simulator records it once its hold ends).
    assert!(posts.contains(&(200, true)), "{posts:?}");
    assert!(
        !posts.contains(&(200, false)),
        "a second session: {posts:?}"
    );

    let metrics = visit(&w.relay, "/metrics").text();
    assert!(
        metrics.contains("coachdesk_relay_pay_checkout_total{outcome=\"server_error\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("coachdesk_relay_pay_checkout_total{outcome=\"unreachable\"} 1"),
        "{metrics}"
    );
}

fn redirects_seen(relay: &Relay) -> Value {
    let r = http::request(
        relay.addr,
        "GET",
        "/v1/redirects",
        &[("Authorization", &relay.auth())],
        b"",
    )
    .expect("redirects");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).expect("json")
}

fn redirect_visits_are_counted_per_slug_and_reported() {
    let relay = Relay::start();
    push_table(&relay, 120);
    assert_eq!(redirects_seen(&relay)["redirects"], serde_json::json!([]));
    for path in [
        "/pay/coaching?invitee_uuid=a",
        "/pay/coaching",
        "/pay/intro?invitee_uuid=b",
        "/pay/unknown",
        "/pay/..%2Fcoaching",
    ] {
        visit(&relay, path);
    }
    // Counted after the answer, without holding the client: wait for the count.
    let seen = eventually("the visit counts", Duration::from_secs(10), || {
        let seen = redirects_seen(&relay);
        let visits: Vec<(String, u64)> = seen["redirects"]
            .as_array()
            .expect("list")
            .iter()
            .map(|r| {
                (
                    r["slug"].as_str().expect("slug").to_owned(),
                    r["visits"].as_u64().expect("visits"),
                )
            })
            .collect();
        if visits == vec![("coaching".to_owned(), 2), ("intro".to_owned(), 1)] {
            Ok(seen)
        } else {
            Err(visits)
        }
    });
    let last = seen["redirects"][0]["last_at"].as_str().expect("last_at");
    assert!(last.ends_with('Z'), "{last}");
    let metrics = visit(&relay, "/metrics").text();
    assert!(
        metrics.contains("coachdesk_relay_pay_redirects_total{slug=\"coaching\"} 2"),
        "{metrics}"
    );
    assert!(!metrics.contains("slug=\"unknown\""), "{metrics}");
    let anonymous = http::request(relay.addr, "GET", "/v1/redirects", &[], b"").expect("get");
    assert_eq!(anonymous.status, 401);
}

fn hostile_slugs_and_queries_are_refused_cleanly() {
    let w = world(&[]);
    for path in [
        "/pay/",
        "/pay/..%2F..%2Fetc",
        "/pay/coaching%00",
        "/pay/coaching/extra",
        "/pay/<script>",
        &format!("/pay/{}", "a".repeat(200)),
    ] {
        let r = visit(&w.relay, path);
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.text().contains("<script>"), "{path}");
    }
    // An invitee Stripe would not keep, a header injection, a doubtful email: never a
    // session, the link without them.
    let r = visit(
        &w.relay,
        "/pay/coaching?invitee_uuid=%3Cscript%3E&invitee_email=a%0D%0ALocation%3A%20x",
    );
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("Location"),
        Some(format!("{LINK}?prefilled_email=a%0D%0ALocation%3A%20x").as_str())
    );
    let r = visit(
        &w.relay,
        "/pay/coaching?invitee_uuid=inv-G1&invitee_email=not%20an%20email&event_start_time=soon",
    );
    assert_eq!(r.status, 302);
    let made = created(&w.client);
    assert_eq!(made.len(), 1);
    let sent = form(&made[0]);
    assert_eq!(field(&sent, "customer_email"), None);
    let r = http::request(w.relay.addr, "POST", "/pay/coaching", &[], b"").expect("post");
    assert_eq!(r.status, 405);
}

/// A hosted coach cannot set the relay's restricted key: its app hands one over, and the
/// coach's bookings get their own sessions, made with that key, also after a restart;
/// another coach's clients keep the payment link. A secret key, a key of the other mode or
/// a malformed one is refused with a reason; `null` forgets the key.
fn a_hosted_coach_s_handed_over_key_makes_its_bookings_sessions() {
    let sim = Simulator::start(SimConfig::default()).expect("simulator");
    let client = SimClient::new(sim.base_url());
    let mut relay = Relay::start_with(&[("COACHDESK_RELAY_STRIPE_API_BASE", sim.base_url())]);
    let ann = relay.create_tenant("ann");
    let bob = relay.create_tenant("bob");
    for t in [&ann, &bob] {
        push_table_as(&relay, &t.base, &t.token, 120);
    }
    let hand_over = |relay: &Relay, t: &support::TenantMade, token: &str, body: &str| {
        let path = format!("{}/v1/stripe-checkout-key", t.base);
        relay.api("PUT", &path, token, body.as_bytes())
    };
    let code = |r: &http::Reply| -> Value {
        serde_json::from_slice::<Value>(&r.body).expect("json")["error"].clone()
    };
    for (body, refusal) in [
        (
            r#"{"key":"sk_test_4eC39HqLyjWDarjtT1zdp7dc"}"#,
            "secret_key_refused",
        ),
        (
            r#"{"key":"rk_live_ann_checkout_key_0001"}"#,
            "mode_mismatch",
        ),
    ] {
        let r = hand_over(&relay, &ann, &ann.token, body);
        assert_eq!((r.status, code(&r)), (400, refusal.into()), "{}", r.text());
    }
    for bad in [r#"{"key":"not a key"}"#, "{", r#"{"key":7}"#] {
        assert_eq!(
            hand_over(&relay, &ann, &ann.token, bad).status,
            400,
            "{bad}"
        );
    }
    // Bob's token does not configure Ann.
    let ann_key = r#"{"key":"rk_test_ann_checkout_key_0001"}"#;
    assert_eq!(hand_over(&relay, &ann, &bob.token, ann_key).status, 401);
    let r = hand_over(&relay, &ann, &ann.token, ann_key);
    assert_eq!(r.status, 200, "{}", r.text());
    let answer: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(answer["checkout_sessions"], true);

    let pay = |relay: &Relay, t: &support::TenantMade, invitee: &str| {
        visit(
            relay,
            &format!("{}/pay/coaching?invitee_uuid={invitee}", t.base),
        )
    };
    let r = pay(&relay, &ann, "inv-ann-1");
    assert_eq!(r.status, 302, "{}", r.text());
    let location = r.header("Location").expect("location").to_owned();
    assert!(location.starts_with(sim.base_url()), "{location}");
    let made = created(&client);
    assert_eq!(made.len(), 1);
    assert_eq!(
        made[0].key_last4.as_deref(),
        Some("0001"),
        "made with Ann's key"
    );
    assert_eq!(
        field(&form(&made[0]), "client_reference_id"),
        Some("inv-ann-1")
    );
    let r = pay(&relay, &bob, "inv-bob-1");
    assert_eq!(r.status, 302);
    assert!(r.header("Location").is_some_and(|l| l.starts_with(LINK)));
    assert_eq!(
        created(&client).len(),
        1,
        "none for Bob, who handed no key over"
    );

    // Kept across a restart (stored encrypted under the index key, which is kept too).
    relay.kill9();
    relay.spawn();
    let r = pay(&relay, &ann, "inv-ann-2");
    assert!(r
        .header("Location")
        .is_some_and(|l| l.starts_with(sim.base_url())));
    assert_eq!(created(&client).len(), 2);

    let r = hand_over(&relay, &ann, &ann.token, r#"{"key":null}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    let answer: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(answer["checkout_sessions"], false);
    let r = pay(&relay, &ann, "inv-ann-3");
    assert!(r.header("Location").is_some_and(|l| l.starts_with(LINK)));
    assert_eq!(created(&client).len(), 2);
}

on_both_backends!(
    a_hosted_coach_s_handed_over_key_makes_its_bookings_sessions,
    the_deadline_counts_from_the_booking_not_the_first_visit,
    a_cancelled_booking_is_not_sold_and_its_open_session_is_expired,
    a_moved_booking_sends_the_client_to_the_new_booking_s_payment,
    two_visits_of_one_booking_make_one_session_expiring_at_the_deadline,
    concurrent_first_visits_make_one_session,
    a_paid_booking_says_so_and_an_expired_one_offers_to_book_again,
    a_swapped_slug_keeps_the_booking_s_first_session,
    without_a_restricted_key_the_client_gets_the_payment_link,
    a_stripe_failure_sends_the_client_to_the_payment_link,
    redirect_visits_are_counted_per_slug_and_reported,
    hostile_slugs_and_queries_are_refused_cleanly,
);
