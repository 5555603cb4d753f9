//! The Settings toggles acting on real sync: with automatic refunds off a client's
//! cancellation refund waits for the coach and runs once approved; with webhook processing
//! off nothing is pulled, events wait at the relay and are applied once it is back on.
//!
//! Needs a session keyring: `keyctl session - cargo test -p coachdesk-sync`.

mod support;

use coachdesk_domain::BookingId;
use coachdesk_sim::DeliveryKnobs;
use coachdesk_store::Feature;
use support::{eventually, World};
use time::OffsetDateTime;

fn refund_posts(w: &World) -> usize {
    w.stripe_requests("/v1/refunds")
        .into_iter()
        .filter(|r| r.method == "POST")
        .count()
}

#[tokio::test]
async fn with_automatic_refunds_off_a_client_cancellation_refund_waits_for_approval() {
    let w = World::start(DeliveryKnobs::default()).await;
    w.store
        .lock()
        .unwrap()
        .set_feature(Feature::AutomaticRefunds, false)
        .unwrap();
    let b = w.book_coaching("Hana", "hana@example.com");
    w.pay_then_client_cancels(&b).await;

    let item = eventually("the refund to be held for the coach", || async {
        w.store
            .lock()
            .unwrap()
            .held_refund_items()
            .ok()?
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(item.codes, vec!["refund_awaiting_approval".to_owned()]);
    // Three more passes of the executor over the held refund: still no call to Stripe.
    let passes = w.handle().status().executor_passes;
    eventually("three more executor passes", || async {
        (w.handle().status().executor_passes >= passes + 3).then_some(())
    })
    .await;
    assert_eq!(refund_posts(&w), 0, "a held refund must not reach Stripe");
    let booking = w.booking_of(&b.invitee_uri).expect("booking");
    assert_eq!(booking.state.as_str(), "refund_pending");
    assert!(
        booking.refunds.values().all(|r| r.refund_id.is_none()),
        "no refund exists at Stripe yet: {:?}",
        booking.refunds
    );

    let released = w
        .store
        .lock()
        .unwrap()
        .approve_held_refunds(
            &BookingId::from_stored(item.booking_id.as_str()),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
    assert_eq!(released, 1);
    w.handle().run_effects_soon();
    let booking = w.settle_to(&b.invitee_uri, "refunded").await;
    assert!(booking.refunded_minor() > 0);
    assert_eq!(refund_posts(&w), 1);
    w.assert_no_invalid_stripe_requests();
}

#[tokio::test]
async fn with_webhook_processing_off_events_wait_at_the_relay_and_nothing_is_lost() {
    let w = World::start(DeliveryKnobs::default()).await;
    w.store
        .lock()
        .unwrap()
        .set_feature(Feature::WebhookProcessing, false)
        .unwrap();
    eventually("the pull loop to pause", || async {
        w.handle().status().webhooks_paused.then_some(())
    })
    .await;
    // A pull already in flight when the toggle changed finishes within one more round.
    let rounds = w.handle().status().pull_rounds;
    eventually("the pull loop to finish a paused round", || async {
        (w.handle().status().pull_rounds >= rounds + 2).then_some(())
    })
    .await;
    let applied_before = w.handle().status().events_applied;

    let b = w.book_coaching("Ivo", "ivo@example.com");
    // The booking waits at the relay, and the loop has looked twice since it arrived.
    eventually("the booking to wait at the relay", || async {
        (support::relay_queue_depth(&w).await >= 1).then_some(())
    })
    .await;
    let rounds = w.handle().status().pull_rounds;
    eventually("two more rounds of the paused pull loop", || async {
        (w.handle().status().pull_rounds >= rounds + 2).then_some(())
    })
    .await;
    assert!(
        w.booking_of(&b.invitee_uri).is_none(),
        "nothing is applied while webhook processing is off"
    );
    let status = w.handle().status();
    assert_eq!(status.events_applied, applied_before);
    assert_eq!(
        status.last_error.as_deref(),
        Some(coachdesk_sync::WEBHOOKS_PAUSED)
    );

    w.store
        .lock()
        .unwrap()
        .set_feature(Feature::WebhookProcessing, true)
        .unwrap();
    w.settle_to(&b.invitee_uri, "awaiting_payment").await;
    // The status is updated after the ack, a moment after the commit the store shows.
    let status = eventually("the status to show the pull running", || async {
        let status = w.handle().status();
        (!status.webhooks_paused && status.connected && status.last_error.is_none())
            .then_some(status)
    })
    .await;
    assert!(status.events_applied > applied_before, "{status:?}");
}
