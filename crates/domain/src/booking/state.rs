//! The states a booking can be in, and the reasons it may need the coach's attention.

use serde::{Deserialize, Serialize};

/// Where a booking stands. Derived from what is known about it (see `machine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BookingState {
    AwaitingPayment,
    Confirmed,
    PaymentFailed,
    Expired,
    Cancelled,
    RefundPending,
    Refunded,
    Rescheduled,
    NoShow,
    Completed,
    Disputed,
}

impl BookingState {
    /// Every state, for exhaustive tests and filters.
    pub const ALL: [BookingState; 11] = [
        Self::AwaitingPayment,
        Self::Confirmed,
        Self::PaymentFailed,
        Self::Expired,
        Self::Cancelled,
        Self::RefundPending,
        Self::Refunded,
        Self::Rescheduled,
        Self::NoShow,
        Self::Completed,
        Self::Disputed,
    ];

    /// The stable name stored in SQLite and shown to the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingPayment => "awaiting_payment",
            Self::Confirmed => "confirmed",
            Self::PaymentFailed => "payment_failed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::RefundPending => "refund_pending",
            Self::Refunded => "refunded",
            Self::Rescheduled => "rescheduled",
            Self::NoShow => "no_show",
            Self::Completed => "completed",
            Self::Disputed => "disputed",
        }
    }

    /// The inverse of [`BookingState::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Whether the session is off: nothing more will happen but money settling.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            Self::Expired
                | Self::Cancelled
                | Self::RefundPending
                | Self::Refunded
                | Self::Rescheduled
        )
    }
}

/// Why a booking needs a person to look at it. Never blocks the books: it is a flag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum AttentionReason {
    /// Money arrived for an invitee Calendly has not told us about (yet).
    PaymentForUnknownBooking,
    /// The Calendly event type is not mapped to a session type: no price, no policy.
    UnmappedEventType { event_type_uri: Option<String> },
    /// The client paid another amount than the session type's price.
    AmountMismatch {
        expected_minor: i64,
        paid_minor: i64,
    },
    /// More than one successful payment for one booking.
    PaidTwice { payments: usize },
    /// The client paid after the booking was cancelled.
    PaidAfterCancellation,
    /// The client paid after the payment deadline released the slot.
    PaidAfterExpiry,
    /// A refund was refused by Stripe.
    RefundFailed { reason: String },
    /// The client disputed the charge with their bank.
    Disputed { reason: String },
    /// An effect failed for good (the provider's message).
    EffectFailed { effect: String, message: String },
}

impl AttentionReason {
    /// The stable code used to dismiss it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PaymentForUnknownBooking => "payment_for_unknown_booking",
            Self::UnmappedEventType { .. } => "unmapped_event_type",
            Self::AmountMismatch { .. } => "amount_mismatch",
            Self::PaidTwice { .. } => "paid_twice",
            Self::PaidAfterCancellation => "paid_after_cancellation",
            Self::PaidAfterExpiry => "paid_after_expiry",
            Self::RefundFailed { .. } => "refund_failed",
            Self::Disputed { .. } => "disputed",
            Self::EffectFailed { .. } => "effect_failed",
        }
    }

    /// A sentence for the coach.
    pub fn describe(&self) -> String {
        match self {
            Self::PaymentForUnknownBooking => {
                "A payment arrived for a booking Calendly has not reported yet.".into()
            }
            Self::UnmappedEventType { event_type_uri } => format!(
                "This Calendly event type is not linked to a session type ({}); map it to know the price and refund policy.",
                event_type_uri.as_deref().unwrap_or("unknown")
            ),
            Self::AmountMismatch {
                expected_minor,
                paid_minor,
            } => format!(
                "The client paid {paid_minor} (minor units) but the price is {expected_minor}."
            ),
            Self::PaidTwice { payments } => {
                format!("The client paid {payments} times for this booking; refund the extra payment.")
            }
            Self::PaidAfterCancellation => {
                "The client paid after the booking was cancelled; refund or rebook.".into()
            }
            Self::PaidAfterExpiry => {
                "The client paid after the payment deadline released the slot; refund or rebook."
                    .into()
            }
            Self::RefundFailed { reason } => format!("Stripe could not make the refund: {reason}."),
            Self::Disputed { reason } => {
                format!("The client disputed the payment with their bank ({reason}).")
            }
            Self::EffectFailed { effect, message } => format!("{effect} failed: {message}"),
        }
    }
}
