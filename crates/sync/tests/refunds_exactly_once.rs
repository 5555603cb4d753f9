//! Refunds happen once for ever, not only while Stripe remembers an `Idempotency-Key`
//! (24 hours): a refund whose answer was lost and that is retried two days later, and a
//! refund released from hold after the client got money back in the dashboard, both end
//! with exactly the money owed at Stripe.
//!
//! The executor is driven by hand with its own `now`, against the simulator (whose clock is
//! moved as much), a real SQLite file and secrets in memory: no relay, no keychain.

mod desk;

use coachdesk_domain::booking::{BookingEvent, RefundChoice, RefundStatus};
use coachdesk_sim::{Fault, FaultKind};
use desk::{assert_no_invalid_stripe_requests, Desk, DAY};
use time::OffsetDateTime;

#[tokio::test]
async fn a_refund_whose_answer_was_lost_and_retried_two_days_later_exists_once() {
    let desk = Desk::start().await;
    let now = OffsetDateTime::now_utc();
    let (invitee, pi) = desk.paid_booking("lena", now).await;
    let id = desk.booking(&invitee).id;
    desk.store
        .lock()
        .unwrap()
        .apply_coach_action(
            &id,
            "click-1",
            &BookingEvent::CoachCancelled {
                refund: RefundChoice::Full,
                reason: "Coach is ill".into(),
                // After the payment (whose time is the simulator's, in whole seconds and
                // possibly after `now`): a payment after the cancellation would be a late
                // payment, refunded under another cause.
                at: OffsetDateTime::now_utc(),
            },
            now,
        )
        .expect("cancel");
    // Stripe makes the refund; the answer never arrives.
    desk.client
        .inject_fault(&Fault {
            path_prefix: "/v1/refunds".into(),
            method: Some("POST".into()),
            kind: FaultKind::LoseAnswer { ms: Some(10) },
            remaining: 1,
        })
        .expect("fault");
    let report = desk.executor.run_once(now).await.expect("run");
    assert_eq!(report.retried, 1, "{report:?}");
    assert_eq!(desk.refunds_at_stripe(&pi).len(), 1);

    // The laptop sleeps two days: Stripe (the simulator) has forgotten the key.
    desk.client.advance_clock(2 * DAY).expect("clock");
    let later = now + time::Duration::days(2);
    let report = desk.executor.run_once(later).await.expect("run");
    assert_eq!(report.retried + report.failed, 0, "{report:?}");

    assert_eq!(
        desk.refunds_at_stripe(&pi).len(),
        1,
        "exactly one refund at Stripe: {:#?}",
        desk.refund_posts()
    );
    assert_eq!(
        desk.refund_posts().len(),
        1,
        "the retry found the refund instead of asking again"
    );
    let lookups = desk
        .client
        .requests(Some("GET"), Some("/v1/refunds"))
        .expect("log");
    assert_eq!(lookups.len(), 1, "{lookups:#?}");
    assert!(lookups[0].query.contains(&pi), "{lookups:#?}");
    let booking = desk.booking(&invitee);
    let record = &booking.refunds["cancellation"];
    assert!(record.refund_id.is_some(), "{record:?}");
    assert_eq!(record.status, RefundStatus::Succeeded);
    assert_eq!(booking.state.as_str(), "refunded");
    assert_eq!(booking.refunded_minor(), 15000);
    assert_no_invalid_stripe_requests(&desk);
}

#[tokio::test]
async fn a_held_refund_approved_after_a_dashboard_refund_is_capped_at_what_is_left() {
    let desk = Desk::start().await;
    let now = OffsetDateTime::now_utc();
    let (invitee, pi) = desk.held_cancellation("mia", now).await;
    let report = desk.executor.run_once(now).await.expect("run");
    assert_eq!(report.held, 1, "{report:?}");
    assert!(desk.refund_posts().is_empty(), "a held refund waits");

    // Meanwhile the coach gives 100.00 back in Stripe's dashboard.
    desk.client
        .dashboard_refund(&pi, Some(10000))
        .expect("dashboard refund");
    let report = desk.approve_and_run(&invitee, now).await;
    assert_eq!(report.done, 1, "{report:?}");

    let posts = desk.refund_posts();
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert!(
        posts[0].body.contains("amount=5000"),
        "capped at the 50.00 left: {}",
        posts[0].body
    );
    let events = desk.refunds_at_stripe(&pi);
    let refunded = events
        .iter()
        .filter_map(|e| e["data"]["object"]["amount_refunded"].as_i64())
        .max();
    assert_eq!(refunded, Some(15000), "never more than was paid");
    let booking = desk.booking(&invitee);
    assert_eq!(booking.refunds["cancellation"].amount.minor, 5000);
    desk.feed(now).await;
    let booking = desk.booking(&invitee);
    assert_eq!(booking.refunded_minor(), 15000);
    assert_eq!(booking.state.as_str(), "refunded");
    assert_no_invalid_stripe_requests(&desk);
}

#[tokio::test]
async fn a_held_refund_approved_after_the_whole_payment_went_back_sends_nothing() {
    let desk = Desk::start().await;
    let now = OffsetDateTime::now_utc();
    let (invitee, pi) = desk.held_cancellation("noa", now).await;
    assert_eq!(desk.executor.run_once(now).await.expect("run").held, 1);
    desk.client
        .dashboard_refund(&pi, None)
        .expect("dashboard refund");
    let report = desk.approve_and_run(&invitee, now).await;
    assert_eq!(report.done, 1, "{report:?}");
    assert!(desk.refund_posts().is_empty(), "nothing was left to refund");
    let booking = desk.booking(&invitee);
    assert_eq!(
        booking.refunds["cancellation"].status,
        RefundStatus::Canceled
    );
    desk.feed(now).await;
    let booking = desk.booking(&invitee);
    assert_eq!(booking.refunded_minor(), 15000);
    assert_eq!(booking.state.as_str(), "refunded");
}
