//! Only Coachdesk's money counts: other sales on the coach's Stripe account, their refunds
//! and disputes are kept in the log as not Coachdesk's and never become a booking, revenue
//! or an attention item; a Stripe event of the other mode is refused into the log.

mod desk;

use coachdesk_domain::provider::Provider;
use coachdesk_protocol::ipc::{BookingFilter, InboxFilter};
use coachdesk_store::{Source, PARKED_FOR_AT_MOST};
use desk::Desk;
use serde_json::json;
use time::OffsetDateTime;

fn statuses(desk: &Desk, kind: &str) -> Vec<String> {
    desk.store
        .lock()
        .unwrap()
        .list_inbox(&InboxFilter {
            kind: Some(kind.into()),
            ..InboxFilter::default()
        })
        .expect("inbox")
        .into_iter()
        .map(|e| e.status)
        .collect()
}

#[tokio::test]
async fn other_sales_their_refunds_and_disputes_never_become_bookings_revenue_or_attention() {
    let desk = Desk::start().await;
    let now = OffsetDateTime::now_utc();
    // Coachdesk's own booking, paid: the control.
    let (invitee, _pi) = desk.paid_booking("uma", now).await;

    // A sale of something else on the same account: its own Checkout Session, no booking,
    // no invitee, no Coachdesk payment link; then refunded in part and disputed.
    let t = desk.client.advance_clock(0).expect("clock");
    let mut shop = desk.client.clone();
    shop.stripe_key = desk::STRIPE_KEY.into();
    let session = shop
        .stripe(
            "POST",
            "/v1/checkout/sessions",
            &json!({
                "mode": "payment",
                "line_items": [{"price_data": {"currency": "eur", "unit_amount": 9900, "product_data": {"name": "E-book"}}, "quantity": 1}],
                "success_url": "https://shop.example.com/thanks",
                "expires_at": t + 3600,
            }),
            Some("shop-1"),
        )
        .expect("session")
        .json()
        .expect("json");
    let paid = desk
        .client
        .pay_session(session["id"].as_str().expect("id"), false)
        .expect("pay");
    let other_pi = paid["payment_intent"].as_str().expect("pi").to_owned();
    desk.client
        .dashboard_refund(&other_pi, Some(1000))
        .expect("refund");
    desk.client.dispute(&other_pi).expect("dispute");
    desk.feed(now).await;

    let store = desk.store.lock().unwrap();
    let bookings = store
        .list_bookings(&BookingFilter::default())
        .expect("list");
    assert_eq!(bookings.len(), 1, "only Coachdesk's booking: {bookings:#?}");
    assert_eq!(
        bookings[0].id,
        store
            .booking_by_invitee(&invitee)
            .unwrap()
            .unwrap()
            .id
            .as_str()
    );
    drop(store);
    assert_eq!(
        statuses(&desk, "checkout.session.completed"),
        ["foreign", "applied"]
    );
    // Only Coachdesk's payment was read back from Stripe; the other sale costs no call.
    let reads: Vec<String> = desk
        .client
        .requests(Some("GET"), Some("/v1/checkout/sessions/"))
        .expect("log")
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert!(!reads[0].ends_with(session["id"].as_str().expect("id")));
    // Their refund and dispute wait a while for a payment that could still come...
    assert_eq!(statuses(&desk, "charge.refunded"), ["parked"]);
    assert_eq!(statuses(&desk, "charge.dispute.created"), ["parked"]);

    // ...and once Stripe would have delivered it long since, they are not Coachdesk's.
    let later = now + PARKED_FOR_AT_MOST + time::Duration::hours(1);
    let settled = desk
        .store
        .lock()
        .unwrap()
        .settle_stale_parked(later)
        .expect("settle");
    assert_eq!(settled, 2);
    assert_eq!(statuses(&desk, "charge.refunded"), ["foreign"]);
    assert_eq!(statuses(&desk, "charge.dispute.created"), ["foreign"]);

    let store = desk.store.lock().unwrap();
    assert!(
        store.attention_items().expect("attention").is_empty(),
        "no attention item from other sales"
    );
    let parked = store
        .inbox_counts()
        .expect("counts")
        .into_iter()
        .find(|(status, _)| status == "parked");
    assert_eq!(parked, None, "nothing left waiting: no alert");
    let metrics = store
        .business_metrics(now - time::Duration::days(1), now + time::Duration::days(1))
        .expect("metrics");
    let revenue: i64 = metrics.iter().map(|m| m.revenue_minor).sum();
    let refunds: i64 = metrics.iter().map(|m| m.refunds_minor).sum();
    assert_eq!(revenue, 15000, "Coachdesk's booking only: {metrics:#?}");
    assert_eq!(refunds, 0);
}

#[tokio::test]
async fn a_live_event_reaching_a_test_database_is_refused_and_logged() {
    let desk = Desk::start().await;
    desk.store.lock().unwrap().claim_mode("test").expect("mode");
    let now = OffsetDateTime::now_utc();
    let b = desk
        .client
        .book("coaching-60", "vic", "vic@example.com")
        .expect("book");
    desk.feed(now).await;
    // A live payment for this invitee (say, a live key's webhook pointed at this relay).
    desk.client
        .pay_link(&desk.link.payment_link, &b.invitee_uuid, &b.email, false)
        .expect("pay");
    let mut live = desk
        .client
        .stripe_events()
        .expect("events")
        .into_iter()
        .find(|e| e["type"] == "checkout.session.completed")
        .expect("payment event");
    live["livemode"] = json!(true);
    live["data"]["object"]["livemode"] = json!(true);
    let applied = desk
        .store
        .lock()
        .unwrap()
        .apply_provider_event(
            Provider::Stripe,
            live.to_string().as_bytes(),
            Source::Relay,
            now,
        )
        .expect("apply");
    assert_eq!(applied.status, "refused");
    assert_eq!(applied.booking_id, None);
    assert!(
        applied.note.as_deref().unwrap_or("").contains("live-mode"),
        "{:?}",
        applied.note
    );
    assert_eq!(
        desk.booking(&b.invitee_uri).state.as_str(),
        "awaiting_payment"
    );
    assert_eq!(statuses(&desk, "checkout.session.completed"), ["refused"]);
}
