//! Signed webhook delivery to a tiny local receiver (verified with
//! `coachdesk_signature::verify`), the delivery knobs, and injected API faults.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coachdesk_sim::{
    DeliveryKnobs, Fault, FaultKind, SimClient, SimConfig, Simulator, WebhookTarget,
};
use serde_json::{json, Value};

mod common;
use common::checkout;

const STRIPE_SECRET: &str = "whsec_test_secret";
const CALENDLY_SECRET: &str = "calendly-signing-key";

/// A receiver that verifies each signature and keeps the bodies it accepted.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(String, Value)>>>,
    server: Arc<tiny_http::Server>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let (s, g) = (Arc::clone(&server), Arc::clone(&got));
        std::thread::spawn(move || {
            let mut failures = fail_first;
            for mut req in s.incoming_requests() {
                let mut body = Vec::new();
                std::io::Read::read_to_end(req.as_reader(), &mut body).unwrap();
                let (name, secret) = if req.url() == "/hooks/stripe" {
                    ("Stripe-Signature", STRIPE_SECRET)
                } else {
                    ("Calendly-Webhook-Signature", CALENDLY_SECRET)
                };
                let header = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv(name))
                    .map(|h| h.value.to_string())
                    .unwrap_or_default();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64;
                let status = if failures > 0 {
                    failures -= 1;
                    503
                } else if coachdesk_signature::verify(
                    &header,
                    &body,
                    &[secret.as_bytes()],
                    now,
                    300,
                )
                .is_ok()
                {
                    g.lock().unwrap().push((
                        req.url().to_string(),
                        serde_json::from_slice(&body).unwrap(),
                    ));
                    200
                } else {
                    400
                };
                let _ = req.respond(tiny_http::Response::empty(status));
            }
        });
        Receiver { url, got, server }
    }

    fn bodies(&self) -> Vec<(String, Value)> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn sim_with(receiver: &Receiver, delivery: DeliveryKnobs) -> (Simulator, SimClient) {
    let config = SimConfig {
        stripe_webhook: Some(WebhookTarget {
            url: format!("{}/hooks/stripe", receiver.url),
            secret: STRIPE_SECRET.into(),
        }),
        calendly_webhook: Some(WebhookTarget {
            url: format!("{}/hooks/calendly", receiver.url),
            secret: CALENDLY_SECRET.into(),
        }),
        delivery,
        ..SimConfig::default()
    };
    let sim = Simulator::start(config).unwrap();
    let client = sim.client();
    (sim, client)
}

#[test]
fn booking_and_payment_webhooks_arrive_signed() {
    let rx = Receiver::start(0);
    let (_sim, c) = sim_with(&rx, DeliveryKnobs::default());
    let b = c.book("coaching-60", "Dana", "dana@example.com").unwrap();
    checkout(&c, &b.invitee_uuid);
    let session = c.pay(&b.invitee_uuid).unwrap();
    c.flush().unwrap();
    let got = rx.bodies();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "/hooks/calendly");
    assert_eq!(got[0].1["payload"]["uri"], json!(b.invitee_uri));
    assert_eq!(got[1].0, "/hooks/stripe");
    assert_eq!(
        got[1].1["data"]["object"]["client_reference_id"],
        json!(b.invitee_uuid)
    );
    assert_eq!(got[1].1["data"]["object"]["id"], session["id"]);
    // The webhook's id is the one GET /v1/events lists (reconciliation finds it).
    let listed = c
        .stripe("GET", "/v1/events", &Value::Null, None)
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(listed["data"][0]["id"], got[1].1["id"]);
}

#[test]
fn non_2xx_answers_are_retried() {
    let rx = Receiver::start(2);
    let knobs = DeliveryKnobs {
        retry_backoff_ms: 10,
        max_attempts: 3,
        ..DeliveryKnobs::default()
    };
    let (_sim, c) = sim_with(&rx, knobs);
    c.book("coaching-60", "Dana", "dana@example.com").unwrap();
    c.flush().unwrap();
    assert_eq!(rx.bodies().len(), 1);
    let attempts: Vec<Option<u16>> = c.deliveries().unwrap().iter().map(|d| d.status).collect();
    assert_eq!(attempts, [Some(503), Some(503), Some(200)]);
}

/// With a seed, the same script gives the same drops, duplicates and order every run.
#[test]
fn seeded_knobs_reorder_duplicate_and_drop_deterministically() {
    let run = || {
        let rx = Receiver::start(0);
        let knobs = DeliveryKnobs {
            seed: Some(7),
            paused: true,
            reorder_window: 4,
            duplicate_probability: 0.3,
            drop_probability: 0.2,
            ..DeliveryKnobs::default()
        };
        let (_sim, c) = sim_with(&rx, knobs);
        for i in 0..8 {
            c.book("intro-30", &format!("C{i}"), &format!("c{i}@example.com"))
                .unwrap();
        }
        c.flush().unwrap();
        let names: Vec<String> = rx
            .bodies()
            .iter()
            .map(|(_, b)| b["payload"]["name"].as_str().unwrap().to_string())
            .collect();
        let dropped = c.deliveries().unwrap().iter().filter(|d| d.dropped).count();
        (names, dropped)
    };
    let (first, dropped) = run();
    assert_eq!(run(), (first.clone(), dropped));
    let in_order: Vec<String> = (0..8).map(|i| format!("C{i}")).collect();
    assert_ne!(first, in_order, "the knobs changed nothing: {first:?}");
    assert!(dropped > 0 || first.len() > 8, "{first:?}");
}

#[test]
fn delay_knob_holds_deliveries() {
    let rx = Receiver::start(0);
    let (_sim, c) = sim_with(
        &rx,
        DeliveryKnobs {
            delay_ms: 300,
            ..DeliveryKnobs::default()
        },
    );
    let start = Instant::now();
    c.book("intro-30", "Dana", "d@example.com").unwrap();
    assert!(rx.bodies().is_empty());
    c.flush().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(rx.bodies().len(), 1);
}

#[test]
fn injected_faults_answer_429_500_and_hang_then_recover() {
    let rx = Receiver::start(0);
    let (_sim, c) = sim_with(&rx, DeliveryKnobs::default());
    c.inject_fault(&Fault {
        method: Some("POST".into()),
        path_prefix: "/v1/refunds".into(),
        kind: FaultKind::RateLimit {
            retry_after_secs: 2,
        },
        remaining: 2,
    })
    .unwrap();
    c.inject_fault(&Fault {
        method: None,
        path_prefix: "/users/me".into(),
        kind: FaultKind::ServerError,
        remaining: 1,
    })
    .unwrap();
    c.inject_fault(&Fault {
        method: None,
        path_prefix: "/v1/events".into(),
        kind: FaultKind::Timeout { ms: Some(400) },
        remaining: 1,
    })
    .unwrap();

    let body = json!({"payment_intent": "pi_unknown"});
    for _ in 0..2 {
        let r = c.stripe("POST", "/v1/refunds", &body, Some("k")).unwrap();
        assert_eq!((r.status, r.header("Retry-After")), (429, Some("2")));
        assert_eq!(r.json().unwrap()["error"]["code"], "rate_limit");
    }
    let r = c.stripe("POST", "/v1/refunds", &body, Some("k")).unwrap();
    assert_eq!(
        r.status, 404,
        "the fault is used up; the real answer comes through"
    );

    let r = c.calendly("GET", "/users/me", &Value::Null).unwrap();
    assert_eq!(
        (r.status, r.json().unwrap()["title"].clone()),
        (500, json!("Internal Server Error"))
    );
    assert_eq!(
        c.calendly("GET", "/users/me", &Value::Null).unwrap().status,
        200
    );

    let mut impatient = c.clone();
    impatient.timeout = Duration::from_millis(150);
    assert!(
        impatient
            .stripe("GET", "/v1/events", &Value::Null, None)
            .is_err(),
        "the request hangs past the client's timeout"
    );
    assert_eq!(
        c.stripe("GET", "/v1/events", &Value::Null, None)
            .unwrap()
            .status,
        200
    );
    let logged = c.requests(None, Some("/v1/refunds")).unwrap();
    assert_eq!(
        logged.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 429, 404]
    );
}

#[test]
fn calendly_subscriptions_receive_signed_webhooks_until_disabled() {
    let rx = Receiver::start(0);
    let (_sim, c) = sim_with(&rx, DeliveryKnobs::default());
    c.set_targets(None, None).unwrap();
    let me = common::calendly_me(&c);
    let sub = json!({"url": format!("{}/hooks/calendly", rx.url), "events": ["invitee.created"], "scope": "user",
                     "organization": me["current_organization"], "user": me["uri"], "signing_key": CALENDLY_SECRET});
    let created = c
        .calendly("POST", "/webhook_subscriptions", &sub)
        .unwrap()
        .json()
        .unwrap();
    c.book("intro-30", "A", "a@example.com").unwrap();
    c.flush().unwrap();
    assert_eq!(rx.bodies().len(), 1);
    let uuid = common::uuid_of(&created["resource"]["uri"]);
    c.disable_subscription(&uuid).unwrap();
    c.book("intro-30", "B", "b@example.com").unwrap();
    c.flush().unwrap();
    assert_eq!(rx.bodies().len(), 1, "a disabled subscription gets nothing");
}

#[test]
fn a_lost_answer_keeps_what_the_provider_did_and_a_retry_with_the_key_replays_it() {
    let rx = Receiver::start(0);
    let (_sim, c) = sim_with(&rx, DeliveryKnobs::default());
    c.inject_fault(&Fault {
        method: Some("POST".into()),
        path_prefix: "/v1/products".into(),
        kind: FaultKind::LoseAnswer { ms: Some(50) },
        remaining: 1,
    })
    .unwrap();
    let params = json!({"name": "Coaching"});
    let lost = c
        .stripe("POST", "/v1/products", &params, Some("prod-key"))
        .unwrap();
    assert_eq!(lost.status, 504, "{}", lost.text());
    let again = c
        .stripe("POST", "/v1/products", &params, Some("prod-key"))
        .unwrap();
    assert_eq!(
        (again.status, again.header("Idempotent-Replayed")),
        (200, Some("true"))
    );
    let product = again.json().unwrap();
    assert_eq!(product["name"], "Coaching");
    let log = c.requests(Some("POST"), Some("/v1/products")).unwrap();
    assert_eq!(
        log.iter()
            .map(|r| (r.status, r.replayed))
            .collect::<Vec<_>>(),
        [(504, false), (200, true)],
        "the product was made once, by the first request"
    );
}
