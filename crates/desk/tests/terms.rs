//! Terms fixed at booking: the price, currency and refund policy a client booked under stay
//! with the booking; editing the session type afterwards changes no existing booking.

use coachdesk_desk::{CoachActions, SessionTypeForms};
use coachdesk_domain::provider::Provider;
use coachdesk_domain::Effect;
use coachdesk_protocol::ipc::{RefundTierDto, SessionTypeDraft};
use coachdesk_store::Source;
#[path = "../../store/tests/common/mod.rs"]
mod common;
use common::{book_and_pay, fixture, store};
use time::macros::datetime;

#[test]
fn a_session_type_edited_after_booking_leaves_the_bookings_refund_on_the_old_terms() {
    let (_dir, _path, mut store) = store();
    let booking_id = book_and_pay(&mut store, datetime!(2026-11-20 09:20 UTC));
    let before = store.booking(&booking_id).unwrap().expect("booking");
    let terms = before.terms.clone().expect("terms kept at booking");
    assert_eq!(terms.price.minor, 15000);

    // The coach raises the price and drops refunds for late cancellations.
    let st = store.list_session_types(false).unwrap().remove(0);
    store
        .update_session_type(
            &st.id,
            &SessionTypeDraft {
                name: "Coaching".into(),
                duration_minutes: 60,
                price: "200".into(),
                currency: "EUR".into(),
                refund_tiers: vec![RefundTierDto {
                    min_hours_before: 72,
                    percent: 100,
                }],
                calendly_event_type_uri: st.calendly_event_type_uri.clone(),
            },
        )
        .unwrap();

    // The client cancels 40 h before: the old policy's 50% of what was paid, not nothing.
    let now = datetime!(2026-11-25 18:03 UTC);
    let preview = store.refund_preview(&booking_id, now).unwrap();
    assert_eq!(preview.policy_percent, 50);
    assert_eq!(preview.policy_refund_minor, 7500);
    store
        .apply_provider_event(
            Provider::Calendly,
            &fixture("calendly", "invitee.canceled"),
            Source::Relay,
            now,
        )
        .unwrap();
    let after = store.booking(&booking_id).unwrap().expect("booking");
    assert_eq!(after.terms, Some(terms), "the booking's terms did not move");
    assert!(
        after.attention.is_empty(),
        "the paid price is still the booking's price: {:?}",
        after.attention
    );
    let refund = store
        .due_effects(now, 50)
        .unwrap()
        .into_iter()
        .find_map(|row| match row.effect {
            Effect::IssueRefund { amount, .. } => Some(amount.minor),
            _ => None,
        });
    assert_eq!(
        refund,
        Some(7500),
        "the refund follows the policy booked under"
    );
}
