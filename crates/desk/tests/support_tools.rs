//! Coach actions through the app's types, the refund preview, the webhook log, the
//! needs-attention list, CSV exports and business metrics, on a real file.

use coachdesk_desk::CoachActions;
use coachdesk_protocol::ipc::{BookingFilter, CoachActionDto, InboxFilter, RefundChoiceDto};
use coachdesk_store::{Export, Store, StoreError};

#[path = "../../store/tests/common/mod.rs"]
mod common;
use common::{book_and_pay, store};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// The fixtures' session starts 2026-11-27 10:00 UTC; this is 30 h before.
const NOW: OffsetDateTime = datetime!(2026-11-26 04:00 UTC);

/// A booking of the fixtures' invitee, paid 150.00 EUR through the payment link.
fn paid_booking() -> (tempfile::TempDir, Store, coachdesk_domain::BookingId) {
    let (dir, _path, mut store) = store();
    let id = book_and_pay(&mut store, NOW);
    (dir, store, id)
}

#[test]
fn the_cancel_dialog_states_the_policy_refund() {
    let (_dir, store, id) = paid_booking();
    let preview = store.refund_preview(&id, NOW).unwrap();
    assert_eq!(
        preview.sentence,
        "Cancelled 30 h before: 50% back, 75.00 EUR."
    );
    assert_eq!(preview.policy_refund_minor, 7500);
    assert_eq!(preview.refundable_minor, 15000);
}

#[test]
fn coach_cancels_with_the_policy_refund_then_refunds_the_rest_by_hand() {
    let (_dir, mut store, id) = paid_booking();
    let cancel = CoachActionDto::Cancel {
        refund: RefundChoiceDto::Policy,
        reason: "".into(),
    };
    let detail = store.coach_action(&id, "click-1", &cancel, NOW).unwrap();
    assert_eq!(detail.summary.state, "refund_pending");
    assert_eq!(detail.summary.refunded_minor, 7500);
    // The rest, by hand; more than what is left is refused with the figures.
    let too_much = CoachActionDto::Refund {
        amount_minor: 9000,
        reason: "goodwill".into(),
    };
    let Err(StoreError::Rejected(rejection)) = store.coach_action(&id, "click-2", &too_much, NOW)
    else {
        panic!("over-refund accepted");
    };
    assert!(rejection.to_string().contains("75.00 EUR"), "{rejection}");
    let rest = CoachActionDto::Refund {
        amount_minor: 7500,
        reason: "goodwill".into(),
    };
    let detail = store.coach_action(&id, "click-3", &rest, NOW).unwrap();
    assert_eq!(detail.summary.refunded_minor, 15000);
    // A hand correction needs its reason.
    let correct = CoachActionDto::Correct {
        state: "cancelled".into(),
        reason: " ".into(),
    };
    assert!(matches!(
        store.coach_action(&id, "click-4", &correct, NOW),
        Err(StoreError::Rejected(_))
    ));
}

#[test]
fn the_webhook_log_lists_filters_and_shows_raw_bodies() {
    let (_dir, store, id) = paid_booking();
    let all = store.list_inbox(&InboxFilter::default()).unwrap();
    assert_eq!(all.len(), 2);
    let stripe = store
        .list_inbox(&InboxFilter {
            provider: Some("stripe".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(stripe.len(), 1);
    assert_eq!(stripe[0].kind, "checkout.session.completed");
    assert_eq!(stripe[0].booking_id.as_deref(), Some(id.as_str()));
    let payload = store.inbox_payload(stripe[0].id).unwrap();
    assert!(payload.body.contains("cs_test_a1B2c3D4e5F6g7H8"));
    let by_booking = store
        .list_inbox(&InboxFilter {
            search: Some(id.to_string()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_booking.len(), 2);
}

#[test]
fn replaying_a_stored_event_changes_nothing_already_applied() {
    let (_dir, mut store, id) = paid_booking();
    let before = store.booking_detail(&id).unwrap();
    let entry = store.list_inbox(&InboxFilter::default()).unwrap()[0].clone();
    let replayed = store.replay_inbox(entry.id, NOW).unwrap();
    assert_eq!(replayed.status, "applied");
    let after = store.booking_detail(&id).unwrap();
    assert_eq!(after.summary, before.summary);
    assert_eq!(
        after.audit.len(),
        before.audit.len() + 1,
        "the replay itself is audited"
    );
}

#[test]
fn csv_exports_are_in_major_units() {
    let (_dir, store, _id) = paid_booking();
    let bookings = store.export_csv(Export::Bookings).unwrap();
    let lines: Vec<&str> = bookings.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("booking_id,state,"));
    assert!(
        lines[1].contains(",confirmed,Dana Client,dana.client@example.com,Coaching,"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains(",EUR,150.00,0.00,"), "{}", lines[1]);
    let payments = store.export_csv(Export::Payments).unwrap();
    assert!(payments.contains("pi_3Q0000000000000000000001,succeeded"));
}

#[test]
fn metrics_count_succeeded_payments_only_and_attention_lists_the_odd_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("demo.sqlite")).unwrap();
    let now = OffsetDateTime::now_utc();
    coachdesk_demo::seed_demo(&mut store, now).unwrap();
    let metrics = store
        .business_metrics(now - Duration::days(30), now + Duration::days(1))
        .unwrap();
    let eur = metrics
        .iter()
        .find(|m| m.currency == "EUR")
        .expect("EUR metrics");
    // Demo EUR payments: Dana 150, Sam 150, Jo 150 + 150 (twice), Ray 150.
    assert_eq!(eur.revenue_minor, 75000);
    assert_eq!(eur.bookings, 5, "Dana, Alex, Sam, Jo, Ray");
    assert!(
        (eur.conversion_rate - 0.8).abs() < 1e-9,
        "{}",
        eur.conversion_rate
    );
    assert!((eur.cancellation_rate - 0.2).abs() < 1e-9);
    let jpy = metrics
        .iter()
        .find(|m| m.currency == "JPY")
        .expect("JPY metrics");
    assert_eq!(
        jpy.revenue_minor, 25000,
        "the reschedule's carried payment is not counted twice"
    );
    let attention = store.attention_items().unwrap();
    assert!(
        attention
            .iter()
            .any(|a| a.codes.contains(&"paid_twice".to_owned())),
        "{attention:?}"
    );
    let listed = store.list_bookings(&BookingFilter::default()).unwrap();
    assert_eq!(listed.len(), 7);
}
