//! Nothing confirmed and no money moved on a webhook's word alone: webhooks signed with the
//! right keys (someone holds them) but saying what Stripe's and Calendly's APIs do not
//! confirm go through the real relay, are kept as `unconfirmed`, change no booking, move
//! no money and raise the coach's alert. Genuine ones cost one read-back call each.
//!
//! Needs a session keyring: `keyctl session - cargo test -p coachdesk-sync`.

mod support;

use coachdesk_domain::read_back::Contradiction;
use coachdesk_protocol::desk::AlertThresholds;
use coachdesk_protocol::ipc::InboxFilter;
use coachdesk_sim::{DeliveryKnobs, Fault, FaultKind};
use serde_json::{json, Value};
use support::{eventually, World, CALENDLY_SIGNING_KEY, STRIPE_WHSEC};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Posts `body` to the relay signed as `provider` would sign it; the relay must take it.
async fn post_signed(w: &World, provider: &str, body: &Value) {
    let bytes = serde_json::to_vec(body).expect("json");
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let (header, secret) = match provider {
        "stripe" => ("Stripe-Signature", STRIPE_WHSEC),
        _ => ("Calendly-Webhook-Signature", CALENDLY_SIGNING_KEY),
    };
    let signature = coachdesk_signature::sign_header(secret.as_bytes(), now, &bytes);
    let status = reqwest::Client::new()
        .post(format!("{}/hooks/{provider}", w.relay.url))
        .header(header, signature)
        .header("Content-Type", "application/json")
        .body(bytes)
        .send()
        .await
        .expect("relay")
        .status();
    assert_eq!(
        status.as_u16(),
        200,
        "the relay accepts a correctly signed body"
    );
}

/// Waits until the webhook log holds `n` unconfirmed events; answers them.
async fn unconfirmed(w: &World, n: usize) -> Vec<coachdesk_protocol::ipc::InboxEntry> {
    eventually(&format!("{n} unconfirmed events"), || async {
        let entries = w
            .store
            .lock()
            .unwrap()
            .list_inbox(&InboxFilter {
                status: Some(coachdesk_store::UNCONFIRMED.into()),
                ..InboxFilter::default()
            })
            .ok()?;
        (entries.len() == n).then_some(entries)
    })
    .await
}

fn alert_codes(w: &World) -> Vec<String> {
    let now = OffsetDateTime::now_utc();
    let counts = w
        .store
        .lock()
        .unwrap()
        .alert_counts(now - time::Duration::days(1), now + time::Duration::days(1))
        .expect("counts");
    coachdesk_desk::evaluate_alerts(&counts, &AlertThresholds::default())
        .into_iter()
        .map(|a| a.code)
        .collect()
}

/// The genuine `invitee.created` body Calendly sent for `invitee_uri`.
fn created_body(w: &World, invitee_uri: &str) -> Value {
    w.client
        .calendly_webhooks()
        .expect("webhooks")
        .into_iter()
        .find(|b| b["event"] == "invitee.created" && b["payload"]["uri"] == invitee_uri)
        .expect("invitee.created")
}

#[tokio::test]
async fn a_signed_but_forged_host_cancellation_refunds_nothing_and_is_flagged() {
    let w = World::start(DeliveryKnobs::default()).await;
    let b = w.book_coaching("Faye", "faye@example.com");
    w.pay(&b.invitee_uuid, &b.email);
    w.settle_to(&b.invitee_uri, "confirmed").await;
    assert!(alert_codes(&w).is_empty(), "genuine events raise nothing");

    // Whoever holds the Calendly signing key claims the coach cancelled: a full refund,
    // were it believed. Calendly's API still has the invitee active.
    let mut forged = created_body(&w, &b.invitee_uri);
    let at = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("whole seconds")
        .format(&Rfc3339)
        .expect("rfc3339");
    forged["event"] = json!("invitee.canceled");
    forged["created_at"] = json!(at);
    forged["payload"]["status"] = json!("canceled");
    forged["payload"]["cancellation"] = json!({"canceled_by": "Coach", "reason": "forged", "canceler_type": "host", "created_at": at});
    post_signed(&w, "calendly", &forged).await;

    let flagged = unconfirmed(&w, 1).await;
    assert_eq!(flagged[0].kind, "invitee.canceled");
    let note = flagged[0].note.clone().unwrap_or_default();
    let expected = Contradiction::NotCanceled {
        status: "active".into(),
    };
    assert!(note.contains(&expected.to_string()), "{note}");
    let booking = w.settle_to(&b.invitee_uri, "confirmed").await;
    assert_eq!(booking.refunded_minor(), 0);
    assert!(w.refund_posts().is_empty(), "no money moved");
    assert_eq!(alert_codes(&w), ["unconfirmed_webhooks"]);

    // The coach cannot replay it into effect from the webhook log either.
    let replay = w
        .store
        .lock()
        .unwrap()
        .replay_inbox(flagged[0].id, OffsetDateTime::now_utc());
    assert!(
        matches!(replay, Err(coachdesk_store::StoreError::Conflict(_))),
        "{replay:?}"
    );
    assert!(w.refund_posts().is_empty());

    // The genuine cancellation afterwards is confirmed by Calendly and refunds once.
    w.client
        .cancel_as_host(&b.invitee_uri, "coach unavailable")
        .expect("cancel");
    let booking = w.settle_to(&b.invitee_uri, "refunded").await;
    assert_eq!(booking.refunded_minor(), 15000);
    assert_eq!(w.refund_posts().len(), 1);
    // One read of the invitee per cancellation webhook: the forged one and the real one.
    let invitee_path = format!(
        "/scheduled_events/{}/invitees/{}",
        b.event_uuid,
        coachdesk_domain::provider::uuid_of(&b.invitee_uri)
    );
    let reads: Vec<_> = w
        .client
        .requests(Some("GET"), Some(&invitee_path))
        .expect("log")
        .into_iter()
        .filter(|r| r.path == invitee_path)
        .collect();
    assert_eq!(reads.len(), 2, "{reads:#?}");
    w.assert_no_invalid_stripe_requests();
}

#[tokio::test]
async fn a_signed_but_forged_checkout_completion_confirms_nothing_and_is_flagged() {
    let w = World::start(DeliveryKnobs::default()).await;
    let paid_client = w.book_coaching("Gus", "gus@example.com");
    let genuine = w.pay(&paid_client.invitee_uuid, &paid_client.email);
    w.settle_to(&paid_client.invitee_uri, "confirmed").await;
    let b = w.book_coaching("Hal", "hal@example.com");
    w.settle_to(&b.invitee_uri, "awaiting_payment").await;
    let real_event = w
        .client
        .stripe_events()
        .expect("events")
        .into_iter()
        .find(|e| e["type"] == "checkout.session.completed")
        .expect("the genuine completion");

    // 1. A Checkout Session Stripe never made, "paid" for Hal's booking.
    let mut invented = real_event.clone();
    invented["id"] = json!("evt_forged_1");
    invented["data"]["object"]["id"] = json!("cs_test_forged");
    invented["data"]["object"]["client_reference_id"] = json!(b.invitee_uuid);
    invented["data"]["object"]["payment_intent"] = json!("pi_forged");
    post_signed(&w, "stripe", &invented).await;
    // 2. Gus's real, paid session replayed under a new event id as Hal's payment.
    let mut replayed = real_event.clone();
    replayed["id"] = json!("evt_forged_2");
    replayed["data"]["object"]["client_reference_id"] = json!(b.invitee_uuid);
    post_signed(&w, "stripe", &replayed).await;

    let flagged = unconfirmed(&w, 2).await;
    let notes: Vec<String> = flagged.iter().filter_map(|e| e.note.clone()).collect();
    let missing = Contradiction::Missing {
        provider: "Stripe",
        what: "Checkout Session",
    }
    .to_string();
    assert!(notes.iter().any(|n| n.contains(&missing)), "{notes:#?}");
    let owner = Contradiction::Owner {
        claimed: format!("invitee {}", b.invitee_uuid),
        seen: format!("invitee {}", paid_client.invitee_uuid),
    }
    .to_string();
    assert!(notes.iter().any(|n| n.contains(&owner)), "{notes:#?}");

    let hal = w.settle_to(&b.invitee_uri, "awaiting_payment").await;
    assert_eq!(hal.captured_minor(), 0, "not paid on a webhook's word");
    assert!(hal.payments.is_empty(), "{:?}", hal.payments);
    let gus = w.settle_to(&paid_client.invitee_uri, "confirmed").await;
    assert_eq!(
        gus.payments.len(),
        1,
        "the replay added nothing to Gus either"
    );
    assert_eq!(
        gus.primary_payment()
            .map(|p| p.fact.checkout_session.as_str()),
        genuine["id"].as_str()
    );
    assert!(alert_codes(&w).contains(&"unconfirmed_webhooks".to_owned()));
    assert!(w.refund_posts().is_empty());

    // Each genuine payment and cancellation cost one read-back; the forged ones one each.
    let session_reads = w
        .client
        .requests(Some("GET"), Some("/v1/checkout/sessions/"))
        .expect("log")
        .len();
    assert_eq!(session_reads, 3, "Gus's payment, then the two forgeries");
    w.assert_no_invalid_stripe_requests();
}

/// A read-back that fails for a passing reason (Stripe answers 500) applies nothing: the
/// page is pulled again, and the payment confirms once Stripe answers.
#[tokio::test]
async fn a_payment_is_not_applied_unchecked_while_stripe_cannot_be_asked() {
    let w = World::start(DeliveryKnobs::default()).await;
    let b = w.book_coaching("Ida", "ida@example.com");
    w.settle_to(&b.invitee_uri, "awaiting_payment").await;
    w.client
        .inject_fault(&Fault {
            path_prefix: "/v1/checkout/sessions/".into(),
            method: Some("GET".into()),
            kind: FaultKind::ServerError,
            remaining: 1_000,
        })
        .expect("fault");
    w.pay(&b.invitee_uuid, &b.email);
    eventually("three refused read-backs", || async {
        let failed = w
            .client
            .requests(Some("GET"), Some("/v1/checkout/sessions/"))
            .ok()?
            .into_iter()
            .filter(|r| r.status == 500)
            .count();
        (failed >= 3).then_some(())
    })
    .await;
    // The fault stays: nothing can have been read back, so nothing was applied.
    let booking = w.booking_of(&b.invitee_uri).expect("booking");
    assert_eq!(booking.state.as_str(), "awaiting_payment");
    assert!(booking.payments.is_empty(), "{:?}", booking.payments);
    let logged = w
        .store
        .lock()
        .unwrap()
        .list_inbox(&InboxFilter {
            kind: Some("checkout.session.completed".into()),
            ..InboxFilter::default()
        })
        .expect("inbox");
    assert!(logged.is_empty(), "not even logged: {logged:?}");
    assert!(w
        .handle()
        .status()
        .last_error
        .is_some_and(|e| e.contains("Stripe")));

    w.client.clear_faults().expect("clear");
    let booking = w.settle_to(&b.invitee_uri, "confirmed").await;
    assert_eq!(booking.captured_minor(), 15000);
    w.assert_no_invalid_stripe_requests();
}
