//! Stripe in one step, against the simulator over loopback and the real relay binary: the
//! app creates its webhook endpoint once (even when asked twice at once), selecting exactly
//! the handled events and pinned to the parsed API version; the relay verifies what Stripe
//! signs with the endpoint's secret; a rotation keeps verifying across the switch and
//! refuses the old secret after.

mod support;

use std::sync::Mutex;

use coachdesk_desk::stripe_webhook::{
    ConnectAction, ReplaceReason, StripeWebhook, METADATA_KEY, METADATA_VALUE,
};
use coachdesk_domain::provider::{stripe_webhook_events, STRIPE_API_VERSION};
use coachdesk_providers::StripeApi;
use coachdesk_sim::{Fault, FaultKind, SimClient, SimConfig, Simulator};
use coachdesk_store::Store;
use coachdesk_sync::relay::RelayClient;
use coachdesk_sync::{MemorySecrets, Secret, SecretName, SecretSource};
use serde_json::{json, Value};
use support::RelayProc;

const KEY: &str = "sk_test_stripe_in_one_step";

struct World {
    relay: RelayProc,
    _sim: Simulator,
    client: SimClient,
    stripe: StripeApi,
    relay_client: RelayClient,
    secrets: MemorySecrets,
    store: Mutex<Store>,
    _dir: tempfile::TempDir,
}

impl World {
    fn start() -> World {
        let relay = RelayProc::start();
        let sim = Simulator::start(SimConfig::default()).expect("simulator");
        let client = sim.client();
        let stripe = StripeApi::new(sim.base_url(), KEY).expect("stripe client");
        let relay_client =
            RelayClient::new(&relay.url, std::time::Duration::from_secs(5)).expect("relay client");
        let secrets = MemorySecrets::default();
        secrets.set(SecretName::RelayToken, Secret::new(relay.token.clone()));
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Mutex::new(Store::open(&dir.path().join("coachdesk.db")).expect("store"));
        World {
            relay,
            _sim: sim,
            client,
            stripe,
            relay_client,
            secrets,
            store,
            _dir: dir,
        }
    }

    fn desk(&self) -> StripeWebhook<'_> {
        StripeWebhook {
            stripe: &self.stripe,
            relay: &self.relay_client,
            secrets: &self.secrets,
            store: &self.store,
            relay_url: &self.relay.url,
        }
    }

    fn endpoints(&self) -> Vec<Value> {
        let list = self
            .client
            .stripe(
                "GET",
                "/v1/webhook_endpoints",
                &json!({"limit": "100"}),
                None,
            )
            .expect("list")
            .json()
            .expect("json");
        list["data"].as_array().cloned().unwrap_or_default()
    }

    fn secret(&self) -> String {
        self.secrets
            .get(SecretName::StripeWebhookSecret)
            .expect("secret in the keychain")
            .expose()
            .to_owned()
    }

    /// Posts a Stripe event signed with `secret` straight to the relay's hook.
    async fn deliver(&self, secret: &str, id: &str) -> u16 {
        let body = format!(
            "{{\"id\":\"{id}\",\"object\":\"event\",\"livemode\":false,\"type\":\"checkout.session.completed\",\"data\":{{\"object\":{{\"object\":\"checkout.session\"}}}}}}"
        );
        let sig = coachdesk_signature::sign_header(
            secret.as_bytes(),
            time::OffsetDateTime::now_utc().unix_timestamp(),
            body.as_bytes(),
        );
        reqwest::Client::new()
            .post(format!("{}/hooks/stripe", self.relay.url))
            .header("Content-Type", "application/json")
            .header("Stripe-Signature", sig)
            .body(body)
            .send()
            .await
            .expect("post")
            .status()
            .as_u16()
    }

    /// A booking paid at the simulator; the statuses the relay gave its deliveries.
    fn pay_and_flush(&self, name: &str) -> Vec<(String, Option<u16>)> {
        let c = &self.client;
        let b = c
            .book("coaching-60", name, "client@example.com")
            .expect("book");
        let t = c.advance_clock(0).expect("clock");
        c.stripe(
            "POST",
            "/v1/checkout/sessions",
            &json!({"mode": "payment", "success_url": "https://x/ok", "client_reference_id": b.invitee_uuid,
                    "expires_at": t + 3600, "line_items": [{"price_data": {"currency": "eur", "unit_amount": 9000,
                    "product_data": {"name": "S"}}, "quantity": 1}]}),
            None,
        )
        .expect("checkout");
        let before = c.deliveries().expect("deliveries").len();
        c.pay(&b.invitee_uuid).expect("pay");
        c.flush().expect("flush");
        c.deliveries().expect("deliveries")[before..]
            .iter()
            .filter(|d| d.url.ends_with("/hooks/stripe"))
            .map(|d| (d.key.clone(), d.status))
            .collect()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_makes_one_endpoint_even_twice_at_once_and_the_relay_verifies_its_webhooks() {
    let w = World::start();
    let (one, two) = (w.desk(), w.desk());
    let (a, b) = tokio::join!(one.connect(now()), two.connect(now()));
    let (a, b) = (a.expect("first connect"), b.expect("second connect"));
    let again = w.desk().connect(now()).await.expect("third connect");
    let endpoints = w.endpoints();
    assert_eq!(endpoints.len(), 1, "{endpoints:?}");
    let endpoint = &endpoints[0];
    assert_eq!(a.endpoint_id, endpoint["id"].as_str().unwrap());
    assert_eq!(b.endpoint_id, a.endpoint_id);
    assert_eq!(again.endpoint_id, a.endpoint_id);
    let mut actions = vec![a.action, b.action, again.action];
    actions.sort_by_key(|a| a != &ConnectAction::Created);
    assert_eq!(
        actions,
        [
            ConnectAction::Created,
            ConnectAction::Unchanged,
            ConnectAction::Unchanged
        ]
    );
    // The request log: one create, and every request valid per the OpenAPI description.
    let creates = w
        .client
        .requests(Some("POST"), Some("/v1/webhook_endpoints"))
        .expect("log");
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert!(creates[0].idempotency_key.is_some());
    for r in w
        .client
        .requests(None, Some("/v1/webhook_endpoints"))
        .expect("log")
    {
        assert!(
            r.invalid_request.is_none() && r.invalid_response.is_empty(),
            "{r:?}"
        );
    }

    // As specified: the relay's hook, exactly the handled events, the parsed version.
    assert_eq!(endpoint["url"], format!("{}/hooks/stripe", w.relay.url));
    let mut events: Vec<&str> = endpoint["enabled_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    events.sort_unstable();
    let mut wanted = stripe_webhook_events();
    wanted.sort_unstable();
    assert_eq!(events, wanted);
    assert_eq!(endpoint["api_version"], STRIPE_API_VERSION);
    assert_eq!(endpoint["metadata"][METADATA_KEY], METADATA_VALUE);
    assert_eq!(endpoint["status"], "enabled");
    // A loopback relay works with the simulator, and is named as unreachable for Stripe.
    assert_eq!(a.reach.code(), "loopback");

    // Stripe's (the simulator's) webhook, signed with the endpoint's secret, is taken.
    let delivered = w.pay_and_flush("Dana");
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].1, Some(200), "{delivered:?}");
    assert_eq!(
        w.deliver(&w.secret(), "evt_signed_with_the_endpoint").await,
        200
    );
    assert_eq!(
        w.deliver("whsec_not_the_endpoints_secret", "evt_forged")
            .await,
        400
    );

    let status = w.desk().status().await.expect("status");
    assert!(status.exists && status.enabled && status.url_matches && status.events_match);
    assert_eq!(status.api_version.as_deref(), Some(STRIPE_API_VERSION));
    assert!(status.secret_handed_over);
    assert_eq!(status.relay_reach, "loopback");
    assert_eq!(status.last_rotated_at, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_verifying_across_the_switch_and_refuses_the_old_secret_after() {
    let w = World::start();
    let first = w.desk().connect(now()).await.expect("connect");
    let old = w.secret();
    assert_eq!(w.deliver(&old, "evt_before_rotation").await, 200);

    let started = w
        .desk()
        .begin_rotation(now())
        .await
        .expect("begin rotation");
    assert_eq!(started.old_endpoint, first.endpoint_id);
    let new = w.secret();
    assert_ne!(new, old);
    // During the switch Stripe signs with either endpoint's secret: both are taken.
    assert_eq!(w.deliver(&old, "evt_old_during_switch").await, 200);
    assert_eq!(w.deliver(&new, "evt_new_during_switch").await, 200);
    let during = w.pay_and_flush("Eli");
    assert_eq!(during.len(), 2, "both endpoints get it: {during:?}");
    assert!(during.iter().all(|d| d.1 == Some(200)), "{during:?}");
    assert!(
        w.desk()
            .status()
            .await
            .expect("status")
            .rotation_in_progress
    );

    let at = now();
    w.desk().finish_rotation(at).await.expect("finish rotation");
    assert_eq!(w.deliver(&old, "evt_old_after_switch").await, 400);
    assert_eq!(w.deliver(&new, "evt_new_after_switch").await, 200);
    let endpoints = w.endpoints();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(
        endpoints[0]["id"].as_str(),
        Some(started.new_endpoint.as_str())
    );
    let after = w.pay_and_flush("Fay");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].1, Some(200));
    assert!(w
        .secrets
        .get(SecretName::StripeWebhookPreviousSecret)
        .is_err());
    let status = w.desk().status().await.expect("status");
    let rotated = status.last_rotated_at.expect("rotated at");
    assert_eq!(
        time::OffsetDateTime::parse(&rotated, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339")
            .unix_timestamp(),
        at
    );
    assert!(status.secret_handed_over && !status.rotation_in_progress);

    // The one-click rotation does both halves.
    let report = w.desk().rotate(now()).await.expect("rotate");
    assert!(matches!(
        report.action,
        ConnectAction::Replaced {
            reason: ReplaceReason::Rotation,
            ..
        }
    ));
    assert_eq!(
        w.deliver(&new, "evt_previous_after_second_rotation").await,
        400
    );
    assert_eq!(w.deliver(&w.secret(), "evt_current").await, 200);
    assert_eq!(w.endpoints().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_found_endpoint_is_corrected_in_place_or_replaced_when_its_version_or_secret_is_not_ours()
{
    let w = World::start();
    let first = w.desk().connect(now()).await.expect("connect");
    // Someone changed its events and disabled it in the dashboard: corrected in place.
    let r = w
        .client
        .stripe(
            "POST",
            &format!("/v1/webhook_endpoints/{}", first.endpoint_id),
            &json!({"enabled_events": ["charge.refunded"], "disabled": "true"}),
            None,
        )
        .expect("update");
    assert_eq!(r.status, 200);
    let fixed = w.desk().connect(now()).await.expect("connect");
    assert_eq!(fixed.action, ConnectAction::Updated);
    assert_eq!(fixed.endpoint_id, first.endpoint_id);
    let status = w.desk().status().await.expect("status");
    assert!(status.enabled && status.events_match);

    // A new computer: the keychain has no secret for it, and Stripe shows it only once.
    w.secrets
        .remove(SecretName::StripeWebhookSecret)
        .expect("remove");
    let replaced = w.desk().connect(now()).await.expect("connect");
    assert_eq!(
        replaced.action,
        ConnectAction::Replaced {
            old: first.endpoint_id.clone(),
            reason: ReplaceReason::SecretUnknown
        }
    );
    assert_eq!(w.endpoints().len(), 1);
    assert_eq!(w.deliver(&w.secret(), "evt_after_replacement").await, 200);

    // An endpoint made by hand on the account's default version, posting to the relay.
    let w = World::start();
    let hand_made: Value = w
        .client
        .stripe(
            "POST",
            "/v1/webhook_endpoints",
            &json!({"url": format!("{}/hooks/stripe", w.relay.url),
                    "enabled_events": ["checkout.session.completed"], "api_version": "2023-08-16"}),
            None,
        )
        .expect("create")
        .json()
        .expect("json");
    let report = w.desk().connect(now()).await.expect("connect");
    assert_eq!(
        report.action,
        ConnectAction::Replaced {
            old: hand_made["id"].as_str().unwrap().to_owned(),
            reason: ReplaceReason::ApiVersion
        }
    );
    assert!(report.message().contains("API version"));
    let endpoints = w.endpoints();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["api_version"], STRIPE_API_VERSION);
    assert_eq!(w.pay_and_flush("Gus")[0].1, Some(200));
}

/// Stripe made the endpoint but its answer never came back: the next connect repeats the
/// create under the same key, gets the same endpoint and its secret, and makes no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_replayed_not_repeated() {
    let w = World::start();
    w.client
        .inject_fault(&Fault {
            method: Some("POST".into()),
            path_prefix: "/v1/webhook_endpoints".into(),
            kind: FaultKind::LoseAnswer { ms: Some(50) },
            remaining: 1,
        })
        .expect("fault");
    let err = w
        .desk()
        .connect(now())
        .await
        .expect_err("the answer is lost");
    assert_eq!(err.kind(), "stripe_unreachable");
    let made = w.endpoints();
    assert_eq!(made.len(), 1, "Stripe did create it");
    let report = w.desk().connect(now()).await.expect("connect again");
    assert_eq!(report.action, ConnectAction::Created);
    assert_eq!(report.endpoint_id, made[0]["id"].as_str().unwrap());
    assert_eq!(w.endpoints().len(), 1);
    let creates = w
        .client
        .requests(Some("POST"), Some("/v1/webhook_endpoints"))
        .expect("log");
    assert_eq!(creates.len(), 2);
    assert!(creates[1].replayed, "{creates:?}");
    assert_eq!(w.pay_and_flush("Hal")[0].1, Some(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_refuses_hand_over_leaves_nothing_at_stripe() {
    let relay = RelayProc::start_with(&[("COACHDESK_RELAY_STRIPE_SECRET_HANDOVER", "false")]);
    let mut w = World::start();
    w.relay = relay;
    w.secrets
        .set(SecretName::RelayToken, Secret::new(w.relay.token.clone()));
    w.relay_client =
        RelayClient::new(&w.relay.url, std::time::Duration::from_secs(5)).expect("relay client");
    let err = w.desk().connect(now()).await.expect_err("refused");
    assert_eq!(err.kind(), "handover_disabled");
    assert!(w.endpoints().is_empty());
}
