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
                payment_window_minutes: None,
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

/// The payment deadline is a field of the session type (default 24 h, 30 min to 24 h, as
/// long as a Checkout Session may stay open): a booking takes the window in force when it
/// is made, and a later edit moves no existing deadline.
#[test]
fn the_time_to_pay_is_the_session_types_and_kept_with_each_booking() {
    let (_dir, _path, mut store) = store();
    let st = store.list_session_types(false).unwrap().remove(0);
    assert_eq!(st.payment_window_minutes, 24 * 60, "the default");
    let draft = |minutes: Option<u32>| SessionTypeDraft {
        name: "Coaching".into(),
        duration_minutes: 60,
        price: "150".into(),
        currency: "EUR".into(),
        refund_tiers: vec![RefundTierDto {
            min_hours_before: 48,
            percent: 100,
        }],
        calendly_event_type_uri: st.calendly_event_type_uri.clone(),
        payment_window_minutes: minutes,
    };
    let refused = store
        .update_session_type(&st.id, &draft(Some(25 * 60)))
        .unwrap_err();
    let coachdesk_store::StoreError::Invalid(fields) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(fields[0].field, "payment_window_minutes");
    let saved = store
        .update_session_type(&st.id, &draft(Some(120)))
        .unwrap();
    assert_eq!(saved.payment_window_minutes, 120);

    let booked_at = datetime!(2026-11-20 09:20 UTC);
    let booking_id = book_and_pay(&mut store, booked_at);
    let booking = store.booking(&booking_id).unwrap().expect("booking");
    let schedule_booked = booking.schedule.as_ref().expect("schedule").booked_at;
    assert_eq!(
        booking.payment_deadline(),
        Some(schedule_booked + time::Duration::minutes(120))
    );
    store.update_session_type(&st.id, &draft(Some(30))).unwrap();
    let after = store.booking(&booking_id).unwrap().expect("booking");
    assert_eq!(
        after.payment_deadline(),
        booking.payment_deadline(),
        "kept at booking"
    );
}
