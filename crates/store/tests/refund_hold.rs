//! Refunds held while "automatic refunds" is off: held rows are not due, show as needing
//! the coach, and run again once approved (with both steps in the audit trail).

mod common;

use coachdesk_domain::provider::Provider;
use coachdesk_domain::Effect;
use coachdesk_store::{Source, StoreError, REFUND_AWAITING_APPROVAL};
use time::macros::datetime;

const NOW: time::OffsetDateTime = datetime!(2026-11-25 18:05 UTC);

#[test]
fn a_held_refund_waits_for_approval_then_runs() {
    let (_dir, _path, mut store) = common::store();
    let booking_id = common::book_and_pay(&mut store, datetime!(2026-11-20 09:20 UTC));
    // The client cancels in Calendly ~40 h before: 50% back by the policy.
    store
        .apply_provider_event(
            Provider::Calendly,
            &common::fixture("calendly", "invitee.canceled"),
            Source::Relay,
            NOW,
        )
        .unwrap();
    let refund = store
        .due_effects(NOW, 50)
        .unwrap()
        .into_iter()
        .find(|row| matches!(row.effect, Effect::IssueRefund { .. }))
        .expect("the cancellation asks for a refund");
    assert!(store.held_refund_items().unwrap().is_empty());

    store
        .hold_effect(refund.id, "automatic refunds are off", NOW)
        .unwrap();
    let due = store
        .due_effects(NOW + time::Duration::days(30), 50)
        .unwrap();
    assert!(
        due.iter().all(|row| row.id != refund.id),
        "a held refund is never due"
    );
    let items = store.held_refund_items().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].booking_id, booking_id.as_str());
    assert_eq!(items[0].codes, vec![REFUND_AWAITING_APPROVAL.to_owned()]);
    assert!(
        items[0].message.contains("75.00 EUR"),
        "{}",
        items[0].message
    );

    assert!(!store.effect_approved(refund.id).unwrap());
    assert_eq!(store.approve_held_refunds(&booking_id, NOW).unwrap(), 1);
    assert!(store.effect_approved(refund.id).unwrap());
    let due = store.due_effects(NOW, 50).unwrap();
    let again = due
        .iter()
        .find(|row| row.id == refund.id)
        .expect("approved refund is due now");
    assert_eq!(again.idempotency_key, refund.idempotency_key);
    assert!(store.held_refund_items().unwrap().is_empty());
    assert!(matches!(
        store.approve_held_refunds(&booking_id, NOW),
        Err(StoreError::Conflict(_))
    ));

    let detail = store.booking_detail(&booking_id).unwrap();
    let summaries: Vec<&str> = detail
        .audit
        .iter()
        .map(|entry| entry.summary.as_str())
        .collect();
    assert!(
        summaries
            .iter()
            .any(|s| s.contains("automatic refunds are off"))
            && summaries
                .iter()
                .any(|s| s.contains("approved the held refund")),
        "{summaries:?}"
    );
}
