//! The apply path against a real SQLite file: idempotence, routing, parking, reschedules,
//! coach actions, the append-only audit log and the outbox.

use std::path::Path;

use coachdesk_domain::booking::{BookingEvent, BookingId, RefundChoice};
use coachdesk_domain::provider::Provider;
use coachdesk_store::{Source, Store, StoreError};
use coachdesk_views::BookingFilter;

mod common;
use common::{book, book_and_pay, fixture, paid_through_link, store};

const NOW: OffsetDateTime = datetime!(2026-11-20 12:00 UTC);
use rusqlite::Connection;
use time::macros::datetime;
use time::OffsetDateTime;

/// Everything a transition can touch, as text, to compare before and after.
fn snapshot(path: &Path) -> String {
    let conn = Connection::open(path).unwrap();
    let mut out = String::new();
    for table in [
        "bookings",
        "payments",
        "refunds",
        "audit_log",
        "outbox",
        "inbox",
    ] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .unwrap();
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |row| {
                (0..columns)
                    .map(|i| {
                        row.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        for row in rows {
            out.push_str(&format!("{table}: {}\n", row.unwrap().join(" | ")));
        }
    }
    out
}

fn count(path: &Path, sql: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(sql, [], |row| row.get(0))
        .unwrap()
}

fn booking_state(store: &Store, search: &str) -> String {
    let found = store
        .list_bookings(&BookingFilter {
            search: Some(search.into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), 1, "one booking for {search}: {found:?}");
    found[0].state.clone()
}

#[test]
fn the_same_raw_event_twice_changes_nothing_the_second_time() {
    let (_dir, path, mut store) = store();
    let body = fixture("calendly", "invitee.created");
    let first = store
        .apply_provider_event(Provider::Calendly, &body, Source::Relay, NOW)
        .unwrap();
    assert_eq!(first.status, "applied");
    let paid = fixture("stripe", "checkout.session.completed.unpaid");
    store
        .apply_provider_event(Provider::Stripe, &paid, Source::Relay, NOW)
        .unwrap();
    let before = snapshot(&path);
    for source in [Source::Relay, Source::Reconcile] {
        let again = store
            .apply_provider_event(Provider::Calendly, &body, source, NOW)
            .unwrap();
        assert!(again.duplicate);
        let again = store
            .apply_provider_event(Provider::Stripe, &paid, source, NOW)
            .unwrap();
        assert!(again.duplicate);
    }
    assert_eq!(snapshot(&path), before);
    drop(store);
    // And the file holds it after a reopen.
    let store = Store::open(&path).unwrap();
    assert_eq!(
        booking_state(&store, "dana.client@example.com"),
        "awaiting_payment"
    );
}

#[test]
fn payment_before_the_booking_is_kept_then_joined() {
    let (_dir, _path, mut store) = store();
    // Paid through the payment link: client_reference_id is the invitee UUID.
    let paid = paid_through_link();
    let applied = store
        .apply_provider_event(Provider::Stripe, &paid, Source::Relay, NOW)
        .unwrap();
    let list = store.list_bookings(&BookingFilter::default()).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].state, "confirmed");
    assert!(list[0]
        .needs_attention
        .as_deref()
        .unwrap_or("")
        .contains("not reported"));

    book(&mut store, NOW);
    let list = store.list_bookings(&BookingFilter::default()).unwrap();
    assert_eq!(list.len(), 1, "joined, not a second booking");
    assert_eq!(
        Some(list[0].id.clone()),
        applied.booking_id.map(BookingId::into_string)
    );
    assert_eq!(list[0].state, "confirmed");
    assert_eq!(list[0].needs_attention, None);
    assert_eq!(
        list[0].client_email.as_deref(),
        Some("dana.client@example.com")
    );
    assert_eq!(list[0].session_type_name.as_deref(), Some("Coaching"));
}

#[test]
fn charge_events_wait_for_their_payment_and_are_never_dropped() {
    let (_dir, path, mut store) = store();
    let refunded = fixture("stripe", "charge.refunded.partial");
    let parked = store
        .apply_provider_event(Provider::Stripe, &refunded, Source::Relay, NOW)
        .unwrap();
    assert_eq!(parked.status, "parked");
    book_and_pay(&mut store, NOW);
    assert_eq!(
        count(&path, "SELECT COUNT(*) FROM inbox WHERE status = 'parked'"),
        0
    );
    let booking = &store.list_bookings(&BookingFilter::default()).unwrap()[0];
    assert_eq!(booking.refunded_minor, 7500);
}

#[test]
fn unknown_and_unreadable_events_are_stored_and_shown() {
    let (_dir, path, mut store) = store();
    let unknown =
        br#"{"id":"evt_x","type":"customer.created","created":1,"data":{"object":{"id":"cus_1"}}}"#;
    assert_eq!(
        store
            .apply_provider_event(Provider::Stripe, unknown, Source::Relay, NOW)
            .unwrap()
            .status,
        "ignored"
    );
    let broken = b"{not json";
    let failed = store
        .apply_provider_event(Provider::Stripe, broken, Source::Relay, NOW)
        .unwrap();
    assert_eq!(failed.status, "failed");
    assert!(failed.note.unwrap().contains("not JSON"));
    assert_eq!(count(&path, "SELECT COUNT(*) FROM inbox"), 2);
    // The broken one again is a duplicate of itself, not a new row.
    assert!(
        store
            .apply_provider_event(Provider::Stripe, broken, Source::Relay, NOW)
            .unwrap()
            .duplicate
    );
}

#[test]
fn a_reschedule_carries_the_payment_in_either_order() {
    for created_first in [true, false] {
        let (_dir, path, mut store) = store();
        let mut deliveries = vec![
            (Provider::Calendly, fixture("calendly", "invitee.created")),
            (Provider::Stripe, paid_through_link()),
        ];
        let old = (
            Provider::Calendly,
            fixture("calendly", "reschedule.invitee.canceled"),
        );
        let new = (
            Provider::Calendly,
            fixture("calendly", "reschedule.invitee.created"),
        );
        if created_first {
            deliveries.extend([new, old]);
        } else {
            deliveries.extend([old, new]);
        }
        for (provider, body) in &deliveries {
            store
                .apply_provider_event(*provider, body, Source::Relay, NOW)
                .unwrap();
        }
        assert_eq!(booking_state(&store, "INV0000000000001"), "rescheduled");
        assert_eq!(
            booking_state(&store, "INV0000000000002"),
            "confirmed",
            "created first: {created_first}"
        );
        assert_eq!(count(&path, "SELECT COUNT(*) FROM bookings"), 2);
        // A refund on the charge now belongs to the booking that holds the money.
        store
            .apply_provider_event(
                Provider::Stripe,
                &fixture("stripe", "charge.refunded.partial"),
                Source::Relay,
                NOW,
            )
            .unwrap();
        let new_booking = store
            .list_bookings(&BookingFilter {
                search: Some("INV0000000000002".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(new_booking[0].refunded_minor, 7500);
    }
}

#[test]
fn coach_actions_are_audited_refused_cleanly_and_deduplicated() {
    let (_dir, path, mut store) = store();
    let paid = paid_through_link();
    book(&mut store, NOW);
    let applied = store
        .apply_provider_event(Provider::Stripe, &paid, Source::Relay, NOW)
        .unwrap();
    let booking_id = applied.booking_id.unwrap();

    let before = snapshot(&path);
    let too_much = BookingEvent::CoachRefunded {
        action_id: "a1".into(),
        amount: coachdesk_domain::Money::new(
            20000,
            coachdesk_domain::Currency::parse("EUR").unwrap(),
        ),
        reason: "goodwill".into(),
    };
    let err = store
        .apply_coach_action(&booking_id, "a1", &too_much, NOW)
        .unwrap_err();
    assert!(matches!(err, StoreError::Rejected(_)), "{err}");
    assert_eq!(
        snapshot(&path),
        before,
        "a refused action leaves nothing behind"
    );

    let cancel = BookingEvent::CoachCancelled {
        refund: RefundChoice::Policy,
        reason: "Coach is ill".into(),
        at: datetime!(2026-11-26 04:00 UTC), // 30 h before the session: 50%
    };
    store
        .apply_coach_action(&booking_id, "a2", &cancel, NOW)
        .unwrap();
    assert!(
        store
            .apply_coach_action(&booking_id, "a2", &cancel, NOW)
            .unwrap()
            .duplicate
    );
    let refunds: Vec<(String, String)> = Connection::open(&path)
        .unwrap()
        .prepare("SELECT idempotency_key, payload FROM outbox WHERE kind = 'issue_refund'")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(
        refunds[0].0,
        format!("coachdesk-{booking_id}-refund:cancellation")
    );
    assert!(refunds[0].1.contains("\"minor\":7500"), "{}", refunds[0].1);
    assert_eq!(
        count(
            &path,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'cancel_calendly_event'"
        ),
        1
    );

    let detail = store.booking_detail(&booking_id).unwrap();
    assert_eq!(detail.summary.state, "refund_pending");
    let causes: Vec<&str> = detail.audit.iter().map(|a| a.cause.as_str()).collect();
    assert_eq!(causes.last(), Some(&"coach:a2"));
    assert!(detail
        .audit
        .last()
        .unwrap()
        .summary
        .contains("Coach is ill"));
    assert_eq!(
        detail.audit.last().unwrap().from_state.as_deref(),
        Some("confirmed")
    );
}

#[test]
fn the_audit_log_is_append_only() {
    let (_dir, path, mut store) = store();
    book(&mut store, NOW);
    let conn = Connection::open(&path).unwrap();
    let update = conn.execute("UPDATE audit_log SET summary = 'edited'", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = conn.execute("DELETE FROM audit_log", []);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[test]
fn timers_wait_in_the_outbox_until_due() {
    let (_dir, _path, mut store) = store();
    book(&mut store, NOW);
    let due_now: Vec<String> = store
        .due_effects(NOW, 100)
        .unwrap()
        .into_iter()
        .map(|r| r.effect_key.to_string())
        .collect();
    assert!(
        due_now.contains(&"email:payment-request".to_owned()),
        "{due_now:?}"
    );
    assert!(
        !due_now.iter().any(|k| k.starts_with("timer:")),
        "{due_now:?}"
    );
    let later: Vec<String> = store
        .due_effects(datetime!(2026-12-30 00:00 UTC), 100)
        .unwrap()
        .into_iter()
        .map(|r| r.effect_key.to_string())
        .collect();
    assert!(
        later.contains(&"timer:PaymentDeadline".to_owned()),
        "{later:?}"
    );
    assert!(
        later.contains(&"timer:SessionEnded".to_owned()),
        "{later:?}"
    );
}

#[test]
fn demo_seed_is_idempotent_and_covers_the_interesting_states() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.sqlite");
    let now = OffsetDateTime::now_utc();
    let mut store = Store::open(&path).unwrap();
    coachdesk_demo::seed_demo(&mut store, now).unwrap();
    let first = snapshot(&path);
    coachdesk_demo::seed_demo(&mut store, now).unwrap();
    assert_eq!(snapshot(&path), first);
    let states: std::collections::BTreeSet<String> = store
        .list_bookings(&BookingFilter::default())
        .unwrap()
        .into_iter()
        .map(|b| b.state)
        .collect();
    for state in [
        "confirmed",
        "awaiting_payment",
        "refund_pending",
        "rescheduled",
    ] {
        assert!(states.contains(state), "{state} missing from {states:?}");
    }
    assert_eq!(store.list_session_types(false).unwrap().len(), 3);
}

#[test]
fn bookings_are_found_by_email_invitee_and_payment_id() {
    let (_dir, _path, mut store) = store();
    book_and_pay(&mut store, NOW);
    for search in [
        "DANA.CLIENT@example.com",
        "dana",
        "https://api.calendly.com/scheduled_events/EVT0000000000001/invitees/INV0000000000001",
        "INV0000000000001",
        "pi_3Q0000000000000000000001",
        "cs_test_a1B2c3D4e5F6g7H8",
    ] {
        assert_eq!(booking_state(&store, search), "confirmed", "{search}");
    }
    let none = store
        .list_bookings(&BookingFilter {
            search: Some("%".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(none.is_empty(), "a wildcard is searched literally");
    let bad = store.list_bookings(&BookingFilter {
        state: Some("lost".into()),
        ..Default::default()
    });
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
}

/// Only events that may change a booking are worth reading back: not another sale on the
/// account, not an unreadable body.
#[test]
fn only_events_that_may_act_are_read_back() {
    let (_dir, _path, store) = store();
    assert!(store
        .may_act_on(Provider::Stripe, &paid_through_link())
        .unwrap());
    let mut other_sale: serde_json::Value =
        serde_json::from_slice(&fixture("stripe", "checkout.session.completed")).unwrap();
    other_sale["data"]["object"]["metadata"] = serde_json::json!({});
    other_sale["data"]["object"]["client_reference_id"] = serde_json::Value::Null;
    other_sale["data"]["object"]["payment_link"] = serde_json::json!("plink_not_ours");
    assert!(!store
        .may_act_on(Provider::Stripe, other_sale.to_string().as_bytes())
        .unwrap());
    assert!(!store.may_act_on(Provider::Stripe, b"not json").unwrap());
}

/// A payment its provider contradicted is kept `unconfirmed` and changes nothing; the same
/// event confirmed later (read back again, or found by reconciliation) replaces it and is
/// applied once; a redelivery after that is a plain duplicate.
#[test]
fn an_unconfirmed_event_changes_nothing_until_the_same_event_is_confirmed() {
    use coachdesk_domain::read_back::Contradiction;
    let (_dir, path, mut store) = store();
    let now = datetime!(2026-03-01 10:00 UTC);
    book(&mut store, now);
    let before = snapshot(&path);
    let paid = paid_through_link();
    let contradiction = Contradiction::Missing {
        provider: "Stripe",
        what: "Checkout Session",
    };
    let kept = store
        .apply_checked_batch(
            [(Provider::Stripe, paid.as_slice(), Some(&contradiction))],
            Source::Relay,
            now,
        )
        .unwrap();
    assert_eq!(kept[0].status, coachdesk_store::UNCONFIRMED);
    let note = kept[0].note.clone().unwrap_or_default();
    assert!(
        note.starts_with(coachdesk_store::UNCONFIRMED_NOTE),
        "{note}"
    );
    assert!(
        note.contains("Stripe has no such Checkout Session"),
        "{note}"
    );
    let after = snapshot(&path);
    assert_eq!(
        before
            .lines()
            .filter(|l| !l.starts_with("inbox:"))
            .collect::<Vec<_>>(),
        after
            .lines()
            .filter(|l| !l.starts_with("inbox:"))
            .collect::<Vec<_>>(),
        "only the inbox row was written"
    );
    assert!(matches!(
        store.replay_inbox(kept[0].inbox_id.unwrap(), now),
        Err(StoreError::Conflict(_))
    ));
    assert!(
        store.may_act_on(Provider::Stripe, &paid).unwrap(),
        "an unconfirmed event is read back again when it comes again"
    );

    let confirmed = store
        .apply_checked_batch(
            [(Provider::Stripe, paid.as_slice(), None)],
            Source::Reconcile,
            now,
        )
        .unwrap();
    assert_eq!(confirmed[0].status, "applied");
    assert_eq!(
        confirmed[0].inbox_id, kept[0].inbox_id,
        "the same row, replaced"
    );
    assert!(
        !store.may_act_on(Provider::Stripe, &paid).unwrap(),
        "a redelivery"
    );
    assert_eq!(count(&path, "SELECT COUNT(*) FROM payments"), 1);
    let again = store
        .apply_provider_event(Provider::Stripe, &paid, Source::Relay, now)
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(count(&path, "SELECT COUNT(*) FROM payments"), 1);
}
