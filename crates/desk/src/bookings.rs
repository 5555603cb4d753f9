//! The coach's actions on a booking and the refund preview their dialogs show.

use coachdesk_domain::booking::{cancellation_quote, BookingEvent, BookingId, RefundChoice};
use coachdesk_domain::{Booking, BookingState, Money};
use coachdesk_protocol::ipc::{BookingDetail, CoachActionDto, RefundChoiceDto, RefundPreview};
use coachdesk_store::{Store, StoreError};

use crate::capitalised;
use time::OffsetDateTime;

/// The booking id the window sent: a booking's id is never empty, so an empty one is the
/// window's mistake, answered as an invalid field rather than as a missing booking.
pub fn booking_id(text: &str) -> Result<BookingId, StoreError> {
    BookingId::parse(text).map_err(|e| {
        StoreError::Invalid(vec![coachdesk_protocol::ipc::FieldError {
            field: "booking_id".into(),
            message: capitalised(&e.to_string()),
        }])
    })
}

/// The booking `booking_id` names, which must exist.
fn existing(store: &Store, booking_id: &BookingId) -> Result<Booking, StoreError> {
    store
        .booking(booking_id)?
        .ok_or_else(|| StoreError::NotFound {
            what: "booking",
            id: booking_id.to_string(),
        })
}

/// The coach's actions on a booking, over the store (whose apply transaction does the
/// writing): the window's action DTOs become domain events here.
pub trait CoachActions {
    /// Applies a coach action and answers the booking as it now stands.
    fn coach_action(
        &mut self,
        booking_id: &BookingId,
        action_id: &str,
        action: &CoachActionDto,
        now: OffsetDateTime,
    ) -> Result<BookingDetail, StoreError>;

    /// What cancelling now would refund, in words for the confirmation dialog.
    fn refund_preview(
        &self,
        booking_id: &BookingId,
        now: OffsetDateTime,
    ) -> Result<RefundPreview, StoreError>;
}

impl CoachActions for Store {
    fn coach_action(
        &mut self,
        booking_id: &BookingId,
        action_id: &str,
        action: &CoachActionDto,
        now: OffsetDateTime,
    ) -> Result<BookingDetail, StoreError> {
        let booking = existing(self, booking_id)?;
        let money = |minor: i64| -> Result<Money, StoreError> {
            let currency = booking.currency().ok_or_else(|| {
                StoreError::Conflict(
                    "This booking has no payment and no price yet, so there is nothing to refund."
                        .into(),
                )
            })?;
            Ok(Money::new(minor, currency))
        };
        let event = match action {
            CoachActionDto::Cancel { refund, reason } => BookingEvent::CoachCancelled {
                refund: match refund {
                    RefundChoiceDto::Policy => RefundChoice::Policy,
                    RefundChoiceDto::Full => RefundChoice::Full,
                    RefundChoiceDto::None => RefundChoice::None,
                    RefundChoiceDto::Amount { amount_minor } => RefundChoice::Amount {
                        amount: money(*amount_minor)?,
                    },
                },
                reason: non_empty(reason, "Cancelled by the coach"),
                at: now,
            },
            CoachActionDto::Refund {
                amount_minor,
                reason,
            } => BookingEvent::CoachRefunded {
                action_id: action_id.to_owned(),
                amount: money(*amount_minor)?,
                reason: non_empty(reason, "Refund by the coach"),
            },
            CoachActionDto::MarkNoShow => BookingEvent::CoachMarkedNoShow { at: now },
            CoachActionDto::Correct { state, reason } => BookingEvent::CoachCorrected {
                state: BookingState::parse(state).ok_or_else(|| {
                    StoreError::Invalid(vec![coachdesk_protocol::ipc::FieldError {
                        field: "state".into(),
                        message: format!("\"{state}\" is not a booking state."),
                    }])
                })?,
                reason: reason.clone(),
            },
            CoachActionDto::Dismiss { code } => BookingEvent::CoachDismissed { code: code.clone() },
            CoachActionDto::ResendPaymentLink => BookingEvent::CoachResentPaymentLink {
                action_id: action_id.to_owned(),
                at: now,
            },
        };
        self.apply_coach_action(booking_id, action_id, &event, now)?;
        self.booking_detail(booking_id)
    }

    fn refund_preview(
        &self,
        booking_id: &BookingId,
        now: OffsetDateTime,
    ) -> Result<RefundPreview, StoreError> {
        let booking = existing(self, booking_id)?;
        let currency = booking.currency();
        let paid = booking.captured_minor();
        let refundable = booking.refundable().map_or(0, |(_, left)| left.minor);
        let hours_before = booking
            .schedule
            .as_ref()
            .map(|s| (s.start - now).whole_hours());
        // The domain's quote, the same the state machine asks Stripe for.
        let quote = cancellation_quote(&booking, RefundChoice::Policy, now);
        let percent = quote.as_ref().and_then(|q| q.percent).unwrap_or(0);
        let policy_refund = quote.map_or(0, |q| q.amount.minor);
        let show = |minor: i64| {
            currency.map_or_else(|| minor.to_string(), |c| Money::new(minor, c).to_string())
        };
        let sentence = match (paid, hours_before) {
            (0, _) => "Nothing has been paid, so nothing will be refunded.".to_owned(),
            (_, Some(hours)) if hours >= 0 => format!(
                "Cancelled {hours} h before: {percent}% back, {}.",
                show(policy_refund)
            ),
            (_, Some(_)) => format!(
                "The session has started: the policy gives {percent}% back, {}.",
                show(policy_refund)
            ),
            (_, None) => format!(
                "The session's time is not known; choose an amount (up to {}).",
                show(refundable)
            ),
        };
        Ok(RefundPreview {
            paid_minor: paid,
            refundable_minor: refundable,
            policy_refund_minor: policy_refund,
            policy_percent: percent,
            currency: currency.map(|c| c.code().to_owned()),
            hours_before,
            sentence,
        })
    }
}

fn non_empty(text: &str, fallback: &str) -> String {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        fallback.to_owned()
    } else {
        trimmed.to_owned()
    }
}
