//! The provider events that used to be ignored: a dashboard refund makes a refund row (the
//! refunds CSV and the Refunds metric see it), a dispute closes won or lost and its funds
//! move the booking's money, a no-show mark taken back in Calendly is undone.

mod desk;

use coachdesk_domain::booking::RefundStatus;
use coachdesk_sim::SimConfig;
use coachdesk_store::Export;
use desk::{assert_no_invalid_stripe_requests, Desk};
use time::OffsetDateTime;

/// A simulator on an API version that sends `refund.created` for every refund.
fn refund_events() -> SimConfig {
    SimConfig {
        stripe_api_version: "2024-10-28.acacia".into(),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn a_dashboard_refund_makes_a_refund_row_in_the_csv_and_the_metrics() {
    let desk = Desk::start_with(refund_events()).await;
    let now = OffsetDateTime::now_utc();
    let (invitee, pi) = desk.paid_booking("olga", now).await;
    let refund = desk
        .client
        .dashboard_refund(&pi, Some(4000))
        .expect("dashboard refund");
    desk.feed(now).await;
    let booking = desk.booking(&invitee);
    let id = refund["id"].as_str().expect("refund id");
    let record = booking
        .refunds
        .values()
        .find(|r| r.refund_id.as_deref() == Some(id))
        .unwrap_or_else(|| panic!("no refund row for {id}: {:?}", booking.refunds));
    assert_eq!(record.amount.minor, 4000);
    assert_eq!(record.status, RefundStatus::Succeeded);
    assert_eq!(record.cause, None, "made outside the app");
    assert_eq!(booking.refunded_minor(), 4000, "counted once");
    assert_eq!(booking.state.as_str(), "confirmed", "a partial refund");

    let store = desk.store.lock().unwrap();
    let csv = store.export_csv(Export::Refunds).expect("csv");
    let line = csv
        .lines()
        .find(|l| l.contains(id))
        .unwrap_or_else(|| panic!("{id} is not in the refunds CSV:\n{csv}"));
    assert!(line.contains("40.00"), "{line}");
    let metrics = store
        .business_metrics(now - time::Duration::days(1), now + time::Duration::days(1))
        .expect("metrics");
    let eur = metrics
        .iter()
        .find(|m| m.currency == "EUR")
        .expect("EUR metrics");
    assert_eq!(eur.refunds_minor, 4000);
    drop(store);
    assert_no_invalid_stripe_requests(&desk);
}

#[tokio::test]
async fn our_own_refund_reported_by_refund_created_is_one_row_not_two() {
    let desk = Desk::start_with(refund_events()).await;
    let now = OffsetDateTime::now_utc();
    let (invitee, _pi) = desk.paid_booking("pia", now).await;
    desk.client
        .cancel_as_invitee(&invitee, "cannot make it")
        .expect("cancel");
    desk.feed(now).await;
    desk.executor.run_once(now).await.expect("run");
    desk.feed(now).await;
    let booking = desk.booking(&invitee);
    assert_eq!(booking.refunds.len(), 1, "{:?}", booking.refunds);
    assert_eq!(booking.refunded_minor(), 15000);
    assert_eq!(booking.state.as_str(), "refunded");
}

#[tokio::test]
async fn a_dispute_won_after_the_funds_were_withdrawn_gives_the_booking_its_money_back() {
    let desk = Desk::start().await;
    let now = OffsetDateTime::now_utc();
    let (invitee, pi) = desk.paid_booking("quinn", now).await;
    desk.client.dispute_withdrawing_funds(&pi).expect("dispute");
    desk.feed(now).await;
    let booking = desk.booking(&invitee);
    assert_eq!(booking.state.as_str(), "disputed");
    assert_eq!(
        booking.refunded_minor(),
        15000,
        "the money is out while disputed"
    );

    desk.client.close_dispute(&pi, "won").expect("won");
    desk.feed(now).await;
    let booking = desk.booking(&invitee);
    assert_eq!(booking.state.as_str(), "confirmed");
    assert!(booking.attention.is_empty(), "{:?}", booking.attention);
    assert_eq!(booking.refunded_minor(), 0, "reinstated");
    assert_eq!(booking.refundable().map(|(_, m)| m.minor), Some(15000));
    let kinds: Vec<String> = desk
        .client
        .stripe_events()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str().map(str::to_owned))
        .filter(|k| k.starts_with("charge.dispute"))
        .collect();
    assert_eq!(
        kinds,
        [
            "charge.dispute.created",
            "charge.dispute.funds_withdrawn",
            "charge.dispute.funds_reinstated",
            "charge.dispute.closed"
        ]
    );
    assert_no_invalid_stripe_requests(&desk);
}

#[tokio::test]
async fn a_lost_dispute_leaves_the_booking_refunded_through_the_bank() {
    let desk = Desk::start().await;
    let now = OffsetDateTime::now_utc();
    let (invitee, pi) = desk.paid_booking("rui", now).await;
    desk.client.dispute(&pi).expect("dispute");
    desk.feed(now).await;
    assert_eq!(desk.booking(&invitee).state.as_str(), "disputed");
    desk.client.close_dispute(&pi, "lost").expect("lost");
    desk.feed(now).await;
    let booking = desk.booking(&invitee);
    assert_eq!(booking.state.as_str(), "refunded");
    assert!(booking.attention.is_empty(), "{:?}", booking.attention);
    assert_eq!(booking.refunded_minor(), 15000);
    assert_eq!(
        booking.refundable().map(|(_, m)| m.minor),
        Some(0),
        "nothing left to refund"
    );
    assert_no_invalid_stripe_requests(&desk);
}

#[tokio::test]
async fn a_no_show_marked_then_removed_in_calendly_is_undone() {
    let desk = Desk::start().await;
    let now = OffsetDateTime::now_utc();
    let (invitee, _pi) = desk.paid_booking("sol", now).await;
    let no_show = desk.client.no_show(&invitee).expect("no-show");
    desk.feed(now).await;
    assert_eq!(desk.booking(&invitee).state.as_str(), "no_show");
    let uuid = no_show["uri"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .expect("no-show uri")
        .to_owned();
    let r = desk
        .client
        .calendly(
            "DELETE",
            &format!("/invitee_no_shows/{uuid}"),
            &serde_json::Value::Null,
        )
        .expect("delete");
    assert!((200..300).contains(&r.status), "{}", r.text());
    desk.feed(now).await;
    let booking = desk.booking(&invitee);
    assert_eq!(booking.state.as_str(), "confirmed");
    assert!(!booking.is_no_show());
}
