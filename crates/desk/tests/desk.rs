//! The coach's desk over a real file: alert counts from what happened, the webhook log's
//! type and day filters, and sending the payment link again (one email per click).

use coachdesk_desk::{Alerts, CoachActions};
use coachdesk_domain::provider::Provider;
use coachdesk_protocol::desk::AlertLevel;
use coachdesk_protocol::ipc::{CoachActionDto, InboxFilter};
use coachdesk_store::{Source, Store, StoreError};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

#[path = "../../store/tests/common/mod.rs"]
mod common;
use common::{book, book_and_pay, fixture, store};

/// Three hours after the fixtures' invitee booked (the payment window is still open).
const BOOKED: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);

fn unpaid(store: &mut Store) -> coachdesk_domain::BookingId {
    book(store, BOOKED).booking_id.unwrap()
}

fn resend_rows(store: &Store, id: &coachdesk_domain::BookingId) -> Vec<String> {
    store
        .outbox_entries(Some(id))
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "resend_email")
        .map(|e| e.effect_key)
        .collect()
}

#[test]
fn sending_the_link_again_is_one_email_per_click() {
    let (_dir, _path, mut store) = store();
    let id = unpaid(&mut store);
    let detail = store
        .coach_action(&id, "click-1", &CoachActionDto::ResendPaymentLink, BOOKED)
        .unwrap();
    assert_eq!(detail.summary.state, "awaiting_payment");
    assert!(detail
        .audit
        .iter()
        .any(|a| a.summary.contains("payment link to the client again")));
    // The same click delivered twice is one email; a second click is another.
    store
        .coach_action(&id, "click-1", &CoachActionDto::ResendPaymentLink, BOOKED)
        .unwrap();
    assert_eq!(resend_rows(&store, &id), ["email-again:click-1"]);
    store
        .coach_action(
            &id,
            "click-2",
            &CoachActionDto::ResendPaymentLink,
            BOOKED + Duration::minutes(5),
        )
        .unwrap();
    assert_eq!(
        resend_rows(&store, &id),
        ["email-again:click-1", "email-again:click-2"]
    );
}

#[test]
fn the_link_is_not_sent_for_a_paid_booking_or_after_the_deadline() {
    let (_dir, _path, mut store) = store();
    let id = unpaid(&mut store);
    let late = store.coach_action(
        &id,
        "late",
        &CoachActionDto::ResendPaymentLink,
        BOOKED + Duration::days(2),
    );
    match late {
        Err(StoreError::Rejected(r)) => {
            assert!(r.to_string().contains("deadline has passed"), "{r}")
        }
        other => panic!("{other:?}"),
    }

    let (_dir2, _path2, mut store2) = store_fresh();
    let paid = book_and_pay(&mut store2, BOOKED);
    let refused = store2.coach_action(&paid, "x", &CoachActionDto::ResendPaymentLink, BOOKED);
    let message = coachdesk_desk::command_error(refused.unwrap_err()).message;
    assert_eq!(
        message,
        "This booking is already paid, so there is no payment link to send."
    );
    assert!(resend_rows(&store2, &paid).is_empty());
}

fn store_fresh() -> (tempfile::TempDir, std::path::PathBuf, Store) {
    store()
}

#[test]
fn alert_counts_come_from_the_inbox_and_the_payments() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("alerts.sqlite")).unwrap();
    let now = datetime!(2026-06-01 12:00 UTC);
    // Seeded two months ago: none of it falls in the dashboard's last 30 days.
    coachdesk_demo::seed_bulk(&mut store, 40, now - Duration::days(60)).unwrap();
    let wide = store
        .alert_counts(now - Duration::days(800), now + Duration::days(800))
        .unwrap();
    // 40 bookings: 34 payment attempts ended (26 + 4 paid then cancelled, 4 failed) and 4
    // cancellations: 78 webhooks, none failed.
    assert_eq!(wide.payments_ended, 34);
    assert_eq!(wide.payments_failed, 4);
    assert_eq!(wide.webhooks, 78);
    assert_eq!(wide.webhooks_failed, 0);
    assert_eq!(wide.parked, 0);

    // An unreadable Stripe body is a processing failure.
    store
        .apply_provider_event(Provider::Stripe, b"{\"id\": 5}", Source::Relay, now)
        .unwrap();
    let report = store.dashboard_alerts(now, 30).unwrap();
    assert_eq!(report.counts.webhooks, 1, "only the last 30 days");
    assert_eq!(report.counts.webhooks_failed, 1);
    let codes: Vec<_> = report
        .alerts
        .iter()
        .map(|a| (a.code.as_str(), a.level))
        .collect();
    assert!(
        codes.contains(&("webhook_failures", AlertLevel::Critical)),
        "{codes:?}"
    );
}

#[test]
fn a_refund_for_an_unknown_payment_is_parked_and_alerted() {
    let (_dir, _path, mut store) = store();
    let now = datetime!(2026-11-20 12:00 UTC);
    let applied = store
        .apply_provider_event(
            Provider::Stripe,
            &fixture("stripe", "charge.refunded.partial"),
            Source::Relay,
            now,
        )
        .unwrap();
    assert_eq!(applied.status, "parked");
    let report = store.dashboard_alerts(now, 30).unwrap();
    assert_eq!(report.counts.parked, 1);
    assert_eq!(report.alerts[0].code, "state_machine");
    assert!(report.alerts[0].way_out.contains("reconciliation"));
}

#[test]
fn the_webhook_log_filters_by_type_prefix_and_day() {
    let (_dir, _path, mut store) = store();
    book_and_pay(&mut store, datetime!(2026-11-20 12:00 UTC));
    store
        .apply_provider_event(
            Provider::Stripe,
            b"{\"id\": 5}",
            Source::Relay,
            datetime!(2026-11-22 08:00 UTC),
        )
        .unwrap();
    let kinds = |filter: InboxFilter| -> Vec<String> {
        store
            .list_inbox(&filter)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    };
    assert_eq!(
        kinds(InboxFilter {
            kind: Some("checkout.session".into()),
            ..Default::default()
        }),
        ["checkout.session.completed"]
    );
    assert_eq!(
        kinds(InboxFilter {
            kind: Some("invitee.created".into()),
            ..Default::default()
        }),
        ["invitee.created"]
    );
    assert!(kinds(InboxFilter {
        kind: Some("checkout".into()),
        provider: Some("calendly".into()),
        ..Default::default()
    })
    .is_empty());
    assert_eq!(
        kinds(InboxFilter {
            from: Some("2026-11-20".into()),
            to: Some("2026-11-20".into()),
            ..Default::default()
        })
        .len(),
        2
    );
    let later = store
        .list_inbox(&InboxFilter {
            from: Some("2026-11-21".into()),
            status: Some("failed".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].provider, "stripe");
    assert!(matches!(
        store.list_inbox(&InboxFilter {
            to: Some("22.11.2026".into()),
            ..Default::default()
        }),
        Err(StoreError::Invalid(_))
    ));
}
