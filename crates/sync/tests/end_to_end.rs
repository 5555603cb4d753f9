//! DESIGN section 4 scenarios end to end: simulator -> relay (real binary) -> sync -> store,
//! with the Stripe and Calendly calls checked in the simulator's request log.
//!
//! Needs a session keyring: `keyctl session - cargo test -p coachdesk-sync`.

mod support;

use std::time::{Duration, Instant};

use coachdesk_domain::booking::{BookingId, RefundChoice};
use coachdesk_domain::BookingEvent;
use coachdesk_sim::{DeliveryKnobs, Fault, FaultKind};
use support::{eventually, World};
use time::OffsetDateTime;

/// The coach cancels the booking now (one click, `click-1`), with `refund`.
fn coach_cancels(w: &World, booking: &BookingId, refund: RefundChoice) {
    let now = OffsetDateTime::now_utc();
    let cancel = BookingEvent::CoachCancelled {
        refund,
        reason: "Coach is ill".into(),
        at: now,
    };
    w.store
        .lock()
        .unwrap()
        .apply_coach_action(booking, "click-1", &cancel, now)
        .expect("coach cancel");
}

#[tokio::test]
async fn happy_path_books_pays_and_confirms_with_valid_stripe_requests() {
    let w = World::start(DeliveryKnobs::default()).await;
    let b = w.book_coaching("Ada", "ada@example.com");
    w.settle_to(&b.invitee_uri, "awaiting_payment").await;
    w.pay(&b.invitee_uuid, &b.email);
    let booking = w.settle_to(&b.invitee_uri, "confirmed").await;
    assert_eq!(booking.captured_minor(), 15000);
    // The status is updated after the ack, a moment after the commit the store shows.
    eventually("the status to count both events", || async {
        let status = w.handle().status();
        (status.connected && status.events_applied >= 2).then_some(())
    })
    .await;
    assert!(w.stripe_requests("/v1/refunds").is_empty());
    w.assert_no_invalid_stripe_requests();
}

#[tokio::test]
async fn payment_before_booking_and_duplicates_end_confirmed() {
    let knobs = DeliveryKnobs {
        duplicate_probability: 1.0,
        reorder_window: 4,
        seed: Some(7),
        paused: true,
        ..DeliveryKnobs::default()
    };
    let w = World::start(knobs).await;
    let b = w.book_coaching("Bo", "bo@example.com");
    w.pay(&b.invitee_uuid, &b.email);
    w.client.flush().expect("flush");
    w.settle_to(&b.invitee_uri, "confirmed").await;
    w.assert_no_invalid_stripe_requests();
}

#[tokio::test]
async fn client_cancels_inside_the_refund_window_and_gets_one_full_refund() {
    let w = World::start(DeliveryKnobs::default()).await;
    // A week ahead: well inside the 48-hour full-refund tier.
    let start = (OffsetDateTime::now_utc() + Duration::from_secs(7 * 24 * 3600))
        .replace_nanosecond(0)
        .expect("whole seconds")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("rfc3339");
    let b = w
        .client
        .book_with(serde_json::json!({"event_type": "coaching-60", "name": "Cy", "email": "cy@example.com", "start_time": start}))
        .expect("book");
    w.pay_then_client_cancels(&b).await;
    let booking = w.settle_to(&b.invitee_uri, "refunded").await;
    let refunds: Vec<_> = w
        .stripe_requests("/v1/refunds")
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(refunds.len(), 1, "{refunds:#?}");
    let key = refunds[0].idempotency_key.clone().expect("idempotency key");
    assert!(
        key.starts_with(&format!("coachdesk-{}-refund:", booking.id)),
        "{key}"
    );
    assert!(
        refunds[0].body.contains("requested_by_customer"),
        "{}",
        refunds[0].body
    );
    assert_eq!(booking.refunded_minor(), 15000);
    w.assert_no_invalid_stripe_requests();
}

#[tokio::test]
async fn coach_cancels_with_refund_cancels_the_calendly_event_and_refunds_once() {
    let w = World::start(DeliveryKnobs::default()).await;
    let b = w.book_coaching("Di", "di@example.com");
    w.pay(&b.invitee_uuid, &b.email);
    let booking = w.settle_to(&b.invitee_uri, "confirmed").await;
    coach_cancels(&w, &booking.id, RefundChoice::Full);
    w.settle_to(&b.invitee_uri, "refunded").await;
    let cancels = w
        .client
        .requests(
            Some("POST"),
            Some(&format!("/scheduled_events/{}/cancellation", b.event_uuid)),
        )
        .expect("log");
    assert_eq!(cancels.len(), 1, "{cancels:#?}");
    assert_eq!(
        w.client
            .requests(Some("POST"), Some("/v1/refunds"))
            .expect("log")
            .len(),
        1
    );
    w.assert_no_invalid_stripe_requests();
}

#[tokio::test]
async fn reschedule_carries_the_payment_without_a_new_charge() {
    let w = World::start(DeliveryKnobs::default()).await;
    let b = w.book_coaching("Ed", "ed@example.com");
    w.pay(&b.invitee_uuid, &b.email);
    w.settle_to(&b.invitee_uri, "confirmed").await;
    let new = w
        .client
        .reschedule(&b.invitee_uri, false)
        .expect("reschedule");
    w.settle_to(&b.invitee_uri, "rescheduled").await;
    let successor = w.settle_to(&new.invitee_uri, "confirmed").await;
    assert_eq!(successor.captured_minor(), 15000);
    assert!(w
        .client
        .requests(Some("POST"), Some("/v1/checkout/sessions"))
        .expect("log")
        .is_empty());
    assert!(w
        .client
        .requests(Some("POST"), Some("/v1/refunds"))
        .expect("log")
        .is_empty());
    w.assert_no_invalid_stripe_requests();
}

#[tokio::test]
async fn calendly_429_with_retry_after_is_honoured() {
    let w = World::start(DeliveryKnobs::default()).await;
    let b = w.book_coaching("Fy", "fy@example.com");
    let booking = w.settle_to(&b.invitee_uri, "awaiting_payment").await;
    w.client
        .inject_fault(&Fault {
            path_prefix: "/scheduled_events/".into(),
            method: Some("POST".into()),
            kind: FaultKind::RateLimit {
                retry_after_secs: 1,
            },
            remaining: 1,
        })
        .expect("fault");
    let started = Instant::now();
    coach_cancels(&w, &booking.id, RefundChoice::None);
    w.handle().run_effects_soon();
    eventually("the cancellation to go through after the 429", || async {
        let entries = w
            .store
            .lock()
            .unwrap()
            .outbox_entries(Some(&booking.id))
            .ok()?;
        entries
            .iter()
            .any(|e| e.kind == "cancel_calendly_event" && e.status == "done")
            .then_some(())
    })
    .await;
    // The effect backoff is 10 ms: only Retry-After explains a wait of a second.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    let statuses: Vec<u16> = w
        .client
        .requests(
            Some("POST"),
            Some(&format!("/scheduled_events/{}/cancellation", b.event_uuid)),
        )
        .expect("log")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 201]);
}

#[tokio::test]
async fn a_permanent_stripe_refusal_flags_the_booking_with_stripes_message() {
    let w = World::start(DeliveryKnobs::default()).await;
    let b = w.book_coaching("Gu", "gu@example.com");
    w.pay(&b.invitee_uuid, &b.email);
    let booking = w.settle_to(&b.invitee_uri, "confirmed").await;
    let pi = booking
        .primary_payment()
        .and_then(|p| p.fact.payment_intent.clone())
        .expect("pi");
    // The money went back in Stripe's dashboard and the webhook is late: the app's
    // refund is refused.
    w.client
        .set_delivery(&DeliveryKnobs {
            paused: true,
            ..DeliveryKnobs::default()
        })
        .expect("pause");
    w.client
        .dashboard_refund(&pi, None)
        .expect("dashboard refund");
    coach_cancels(&w, &booking.id, RefundChoice::Full);
    w.handle().run_effects_soon();
    let flagged = eventually("the booking to need attention", || async {
        let b = w.booking_of(&b.invitee_uri)?;
        (!b.failed_effects.is_empty()).then_some(b)
    })
    .await;
    let message = flagged
        .failed_effects
        .values()
        .next()
        .expect("message")
        .clone();
    assert!(message.contains("has already been refunded"), "{message}");
    assert!(!flagged.attention.is_empty(), "{flagged:?}");
    let refunds = w
        .client
        .requests(Some("POST"), Some("/v1/refunds"))
        .expect("log");
    assert_eq!(
        refunds.len(),
        1,
        "a permanent refusal is not retried: {refunds:#?}"
    );
}

#[tokio::test]
async fn a_refund_interrupted_after_stripe_answered_is_not_repeated() {
    let w = World::start(DeliveryKnobs::default()).await;
    let b = w.book_coaching("Hu", "hu@example.com");
    w.pay(&b.invitee_uuid, &b.email);
    let booking = w.settle_to(&b.invitee_uri, "confirmed").await;
    let mut w = w;
    w.stop_sync();
    // The provider fails twice with 500, then the executor is "killed" right after
    // Stripe created the refund (before its outcome was written): replay that call by hand.
    w.client
        .inject_fault(&Fault {
            path_prefix: "/v1/refunds".into(),
            method: Some("POST".into()),
            kind: FaultKind::ServerError,
            remaining: 2,
        })
        .expect("fault");
    coach_cancels(&w, &booking.id, RefundChoice::Full);
    let row = w
        .store
        .lock()
        .unwrap()
        .due_effects(OffsetDateTime::now_utc(), 10)
        .expect("due")
        .into_iter()
        .find(|r| r.effect.moves_money())
        .expect("refund row");
    let stripe = w.providers().stripe().expect("stripe");
    let coachdesk_domain::Effect::IssueRefund {
        cause,
        payment_intent,
        amount,
        ..
    } = row.effect.clone()
    else {
        panic!()
    };
    let request = coachdesk_providers::RefundRequest {
        payment_intent,
        amount: Some(amount),
        booking_id: row.booking_id.to_string(),
        cause: cause.to_string(),
    };
    for _ in 0..2 {
        let err = stripe
            .refund(&request, &row.idempotency_key)
            .await
            .expect_err("500");
        assert!(err.is_transient(), "{err}");
    }
    stripe
        .refund(&request, &row.idempotency_key)
        .await
        .expect("refund created");
    // Restart: the executor runs the row again with the same key.
    w.start_sync();
    w.settle_to(&b.invitee_uri, "refunded").await;
    let posts = w
        .client
        .requests(Some("POST"), Some("/v1/refunds"))
        .expect("log");
    let created: Vec<_> = posts
        .iter()
        .filter(|r| r.status == 200 && !r.replayed)
        .collect();
    assert_eq!(created.len(), 1, "exactly one refund at Stripe: {posts:#?}");
    assert!(
        posts.iter().any(|r| r.replayed),
        "the re-run was an idempotent replay"
    );
    w.assert_no_invalid_stripe_requests();
}

#[tokio::test]
async fn a_disabled_calendly_subscription_is_reported_and_recreated() {
    let w = World::start(DeliveryKnobs::default()).await;
    let coachdesk_sync::SubscriptionHealth::Active { uri } =
        w.handle().check_subscription().await.expect("check")
    else {
        panic!("not active")
    };
    w.client
        .disable_subscription(coachdesk_domain::provider::uuid_of(&uri))
        .expect("disable");
    let health = w.handle().check_subscription().await.expect("check");
    assert!(
        matches!(health, coachdesk_sync::SubscriptionHealth::Disabled { .. }),
        "{health:?}"
    );
    assert_eq!(w.handle().status().subscription, Some(health));
    let repaired = w.handle().recreate_subscription().await.expect("recreate");
    assert!(matches!(
        repaired,
        coachdesk_sync::SubscriptionHealth::Active { .. }
    ));
    let b = w.book_coaching("Io", "io@example.com");
    w.settle_to(&b.invitee_uri, "awaiting_payment").await;
}

#[tokio::test]
async fn the_executor_killed_while_stripe_makes_a_refund_leaves_exactly_one_refund() {
    let mut w = World::start(DeliveryKnobs::default()).await;
    let b = w.book_coaching("Jo", "jo@example.com");
    w.pay(&b.invitee_uuid, &b.email);
    let booking = w.settle_to(&b.invitee_uri, "confirmed").await;
    // Stripe makes the refund, then the answer hangs: the app is killed meanwhile.
    w.client
        .inject_fault(&Fault {
            path_prefix: "/v1/refunds".into(),
            method: Some("POST".into()),
            kind: FaultKind::LoseAnswer { ms: Some(1500) },
            remaining: 1,
        })
        .expect("fault");
    coach_cancels(&w, &booking.id, RefundChoice::Full);
    w.handle().run_effects_soon();
    eventually("Stripe to have made the refund", || async {
        let events = w.client.stripe_events().ok()?;
        events
            .iter()
            .any(|e| e["type"] == "charge.refunded")
            .then_some(())
    })
    .await;
    w.stop_sync();
    let row = w
        .store
        .lock()
        .unwrap()
        .outbox_entries(Some(&booking.id))
        .expect("outbox")
        .into_iter()
        .find(|e| e.kind == "issue_refund")
        .expect("refund row");
    assert_eq!(row.status, "pending", "the kill left the refund undecided");

    // Restart: the executor runs the row again with the same key and Stripe replays.
    w.start_sync();
    let booking = w.settle_to(&b.invitee_uri, "refunded").await;
    assert_eq!(booking.refunded_minor(), 15000);
    let posts = eventually("both refund requests to be logged", || async {
        let posts = w.refund_posts();
        (posts.len() == 2).then_some(posts)
    })
    .await;
    let mut seen: Vec<_> = posts.iter().map(|r| (r.status, r.replayed)).collect();
    seen.sort_unstable();
    assert_eq!(seen, [(200, true), (504, false)], "{posts:#?}");
    assert_eq!(posts[0].idempotency_key, posts[1].idempotency_key);
    let made = w
        .client
        .stripe_events()
        .expect("events")
        .into_iter()
        .filter(|e| e["type"] == "charge.refunded")
        .count();
    assert_eq!(made, 1, "exactly one refund at Stripe");
    w.assert_no_invalid_stripe_requests();
}

/// Calendly has no test mode: with the setting at its default (off), a test-mode app
/// never cancels a Calendly event; the booking's timeline says what it would have done.
#[tokio::test]
async fn in_test_mode_calendly_cancellations_are_not_sent_unless_turned_on() {
    let w = World::start(DeliveryKnobs::default()).await;
    // The world turns it on for the simulator; the coach's default is off.
    assert!(!coachdesk_store::Feature::TestModeCalendlyCancels.default_on());
    w.store
        .lock()
        .unwrap()
        .set_feature(coachdesk_store::Feature::TestModeCalendlyCancels, false)
        .expect("toggle");
    let b = w.book_coaching("Tess", "tess@example.com");
    w.pay(&b.invitee_uuid, &b.email);
    let booking = w.settle_to(&b.invitee_uri, "confirmed").await;
    coach_cancels(&w, &booking.id, RefundChoice::Full);
    w.settle_to(&b.invitee_uri, "refunded").await;
    let detail = eventually("the timeline to say it would cancel", || async {
        let detail = w.store.lock().unwrap().booking_detail(&booking.id).ok()?;
        detail
            .audit
            .iter()
            .any(|a| a.summary.contains("would cancel in Calendly"))
            .then_some(detail)
    })
    .await;
    let line = detail
        .audit
        .iter()
        .find(|a| a.summary.contains("would cancel in Calendly"))
        .expect("line");
    assert!(line.summary.contains("Coach is ill"), "{}", line.summary);
    assert!(
        w.calendly_cancellations(&b.event_uuid).is_empty(),
        "no Calendly cancellation was sent"
    );
    assert_eq!(w.refund_posts().len(), 1, "the money side is not affected");
    let entries = w
        .store
        .lock()
        .unwrap()
        .outbox_entries(Some(&booking.id))
        .expect("outbox");
    let cancel = entries
        .iter()
        .find(|e| e.effect_key == "calendly-cancel")
        .expect("the cancellation effect");
    assert_eq!(
        (cancel.status.as_str(), cancel.attempts),
        ("done", 1),
        "settled once, not retried: {cancel:?}"
    );
}
