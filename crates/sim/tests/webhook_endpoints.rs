//! `POST/GET /v1/webhook_endpoints` and `GET/POST/DELETE /v1/webhook_endpoints/{id}` as
//! Stripe's OpenAPI description has them, and deliveries to API-made endpoints signed with
//! each endpoint's own secret and rendered in its API version.

use std::sync::{Arc, Mutex};

use coachdesk_sim::{SimClient, SimConfig, Simulator, WebhookTarget};

mod common;
use common::{checkout, stripe_json};
use serde_json::{json, Value};

/// One request a receiver got: path, `Stripe-Signature` header, raw body.
type Got = (String, String, Vec<u8>);

/// Keeps every request it gets.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Got>>>,
    server: Arc<tiny_http::Server>,
}

impl Receiver {
    fn start() -> Receiver {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let (s, g) = (Arc::clone(&server), Arc::clone(&got));
        std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let mut body = Vec::new();
                std::io::Read::read_to_end(req.as_reader(), &mut body).unwrap();
                let header = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Stripe-Signature"))
                    .map(|h| h.value.to_string())
                    .unwrap_or_default();
                g.lock()
                    .unwrap()
                    .push((req.url().to_string(), header, body));
                let _ = req.respond(tiny_http::Response::empty(200));
            }
        });
        Receiver { url, got, server }
    }

    fn take(&self) -> Vec<Got> {
        std::mem::take(&mut *self.got.lock().unwrap())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn verifies(header: &str, body: &[u8], secret: &str) -> bool {
    coachdesk_signature::verify(header, body, &[secret.as_bytes()], now(), 300).is_ok()
}

fn create(c: &SimClient, url: &str, events: &[&str], key: Option<&str>) -> Value {
    let params = json!({
        "url": url, "enabled_events": events, "api_version": "2023-10-16",
        "description": "Coachdesk", "metadata": {"coachdesk": "webhook"},
    });
    let r = c
        .stripe("POST", "/v1/webhook_endpoints", &params, key)
        .unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    r.json().unwrap()
}

#[test]
fn the_secret_is_in_the_creation_answer_only_and_every_answer_fits_the_description() {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let c = sim.client();
    let made = create(
        &c,
        "https://relay.example.com/hooks/stripe",
        &["checkout.session.completed"],
        None,
    );
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(made["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(made["api_version"], "2023-10-16");
    assert_eq!(made["status"], "enabled");
    assert_eq!(made["metadata"]["coachdesk"], "webhook");

    let got: Value = stripe_json(&c, "GET", &format!("/v1/webhook_endpoints/{id}"));
    assert!(got.get("secret").is_none(), "{got}");
    let listed: Value = c
        .stripe(
            "GET",
            "/v1/webhook_endpoints",
            &json!({"limit": "100"}),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(listed["data"][0].get("secret").is_none());

    let updated: Value = c
        .stripe(
            "POST",
            &format!("/v1/webhook_endpoints/{id}"),
            &json!({"url": "https://relay2.example.com/hooks/stripe",
                    "enabled_events": ["charge.refunded", "refund.updated"], "disabled": "true"}),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(updated["url"], "https://relay2.example.com/hooks/stripe");
    assert_eq!(
        updated["enabled_events"],
        json!(["charge.refunded", "refund.updated"])
    );
    assert_eq!(updated["status"], "disabled");
    assert!(updated.get("secret").is_none());

    // Stripe's update takes no api_version: it is fixed at creation.
    let r = c
        .stripe(
            "POST",
            &format!("/v1/webhook_endpoints/{id}"),
            &json!({"api_version": "2023-08-16"}),
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json().unwrap()["error"]["param"], "api_version");
    // An event type Stripe does not know is refused.
    let r = c
        .stripe(
            "POST",
            "/v1/webhook_endpoints",
            &json!({"url": "https://x.example/h", "enabled_events": ["booking.paid"]}),
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400);

    let deleted: Value = stripe_json(&c, "DELETE", &format!("/v1/webhook_endpoints/{id}"));
    assert_eq!(
        deleted,
        json!({"id": id, "object": "webhook_endpoint", "deleted": true})
    );
    let r = c
        .stripe(
            "GET",
            &format!("/v1/webhook_endpoints/{id}"),
            &Value::Null,
            None,
        )
        .unwrap();
    assert_eq!(r.status, 404);

    let log = c.requests(None, Some("/v1/webhook_endpoints")).unwrap();
    assert!(log.len() >= 7);
    for r in log.iter().filter(|r| r.status == 200) {
        assert!(
            r.invalid_request.is_none() && r.invalid_response.is_empty(),
            "{r:?}"
        );
    }
}

#[test]
fn a_replayed_create_is_the_same_endpoint_and_the_account_holds_at_most_sixteen() {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let c = sim.client();
    let url = "https://relay.example.com/hooks/stripe";
    let first = create(&c, url, &["charge.refunded"], Some("endpoint-1"));
    let again = create(&c, url, &["charge.refunded"], Some("endpoint-1"));
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["secret"], again["secret"]);
    for i in 2..=16 {
        create(
            &c,
            url,
            &["charge.refunded"],
            Some(&format!("endpoint-{i}")),
        );
    }
    let r = c
        .stripe(
            "POST",
            "/v1/webhook_endpoints",
            &json!({"url": url, "enabled_events": ["charge.refunded"]}),
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json().unwrap()["error"]["code"],
        "webhook_endpoint_limit_reached"
    );
}

#[test]
fn endpoints_get_the_events_they_selected_signed_with_their_own_secret_in_their_version() {
    let rx = Receiver::start();
    let configured = "whsec_configured_target";
    let sim = Simulator::start(SimConfig {
        stripe_webhook: Some(WebhookTarget {
            url: format!("{}/configured", rx.url),
            secret: configured.into(),
        }),
        ..SimConfig::default()
    })
    .unwrap();
    let c = sim.client();
    let paid = create(
        &c,
        &format!("{}/paid", rx.url),
        &["checkout.session.completed"],
        None,
    );
    let other = create(&c, &format!("{}/other", rx.url), &["charge.refunded"], None);

    let b = c.book("coaching-60", "Dana", "dana@example.com").unwrap();
    checkout(&c, &b.invitee_uuid);
    c.pay(&b.invitee_uuid).unwrap();
    c.flush().unwrap();
    let mut got = rx.take();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let paths: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    // The configured target gets everything; `other` selected no checkout event.
    assert_eq!(paths, ["/configured", "/paid"], "{paths:?}");
    let (_, header, body) = &got[1];
    let secret = paid["secret"].as_str().unwrap();
    assert!(verifies(header, body, secret));
    assert!(!verifies(header, body, configured));
    assert!(!verifies(header, body, other["secret"].as_str().unwrap()));
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["api_version"], "2023-10-16");
    assert_eq!(event["pending_webhooks"], 2);
    let (_, header, body) = &got[0];
    assert!(verifies(header, body, configured));
    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        event["api_version"],
        SimConfig::default().stripe_api_version
    );

    // A deleted endpoint gets nothing more.
    let id = paid["id"].as_str().unwrap();
    c.stripe(
        "DELETE",
        &format!("/v1/webhook_endpoints/{id}"),
        &Value::Null,
        None,
    )
    .unwrap();
    let b = c.book("coaching-60", "Eli", "eli@example.com").unwrap();
    checkout(&c, &b.invitee_uuid);
    c.pay(&b.invitee_uuid).unwrap();
    c.flush().unwrap();
    let paths: Vec<String> = rx.take().into_iter().map(|g| g.0).collect();
    assert_eq!(paths, ["/configured"]);
}
