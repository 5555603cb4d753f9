//! What can happen to a booking: provider facts, coach actions, timers and effect outcomes.
//!
//! Events are facts in the past tense (a coach action is the coach's decision, already
//! taken). Each carries its own time, so applying one never needs the clock.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::cause::RefundCause;
use super::effect::EffectKey;
use super::state::BookingState;
use crate::money::Money;
use crate::refund_policy::RefundPolicy;

/// When and for whom a session was booked (from Calendly's invitee).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub invitee_uri: String,
    pub event_uri: String,
    pub event_type_uri: Option<String>,
    pub event_name: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
    pub client_name: Option<String>,
    pub client_email: Option<String>,
    pub timezone: Option<String>,
    /// When the client booked.
    #[serde(with = "time::serde::rfc3339")]
    pub booked_at: OffsetDateTime,
}

/// The session type's terms, frozen on the booking when it is first known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub session_type_id: String,
    pub price: Money,
    pub policy: RefundPolicy,
    /// How long after booking the client has to pay before the slot is released.
    pub payment_window_minutes: u32,
}

/// Who cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Canceler {
    /// The coach, from this app (the app then cancels the Calendly event).
    CoachInApp,
    /// The host, in Calendly.
    Host,
    /// The client, through Calendly.
    Client,
}

/// How much to give back on a cancellation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RefundChoice {
    /// What the session type's policy says for the notice given.
    Policy,
    /// Everything paid.
    Full,
    /// This amount (capped at what was paid).
    Amount { amount: Money },
    /// Nothing.
    None,
}

/// A payment attempt's outcome as Stripe reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Checkout completed with a delayed method; money not there yet.
    Pending,
    /// The checkout session expired unpaid.
    Expired,
    Failed,
    Succeeded,
}

/// One Checkout Session's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFact {
    pub checkout_session: String,
    pub payment_intent: Option<String>,
    pub amount: Money,
    pub status: PaymentStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A refund's status at Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Asked for by this app, no answer yet.
    Requested,
    Pending,
    Succeeded,
    Canceled,
    Failed,
}

impl RefundStatus {
    /// Whether the money is (or will be) out of the coach's account.
    pub fn commits_money(self) -> bool {
        matches!(self, Self::Requested | Self::Pending | Self::Succeeded)
    }
}

/// A refund as Stripe reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundFact {
    pub refund_id: String,
    pub payment_intent: Option<String>,
    pub amount: Money,
    pub status: RefundStatus,
    /// The cause key this app put in the refund's metadata, if it made it.
    pub cause: Option<RefundCause>,
    pub failure_reason: Option<String>,
}

/// How the bank closed a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeOutcome {
    /// The coach keeps the money.
    Won,
    /// The client gets the money back through the bank.
    Lost,
    /// An early warning (inquiry) closed without a chargeback.
    WarningClosed,
}

/// Timers the booking asks for (see `Effect::ScheduleTimer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// Some hours before the payment deadline: remind an unpaid client.
    PaymentReminder,
    PaymentDeadline,
    SessionEnded,
}

impl TimerKind {
    /// The timer's name in stored effect keys, written out for the same reason as
    /// [`super::effect::Notice::key_name`].
    pub fn key_name(self) -> &'static str {
        match self {
            TimerKind::PaymentReminder => "PaymentReminder",
            TimerKind::PaymentDeadline => "PaymentDeadline",
            TimerKind::SessionEnded => "SessionEnded",
        }
    }
}

/// Everything that can happen to a booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BookingEvent {
    // --- Calendly ---
    /// `invitee.created`; `rescheduled_from` is the old invitee of a reschedule.
    InviteeCreated {
        schedule: Schedule,
        terms: Option<Terms>,
        rescheduled_from: Option<String>,
    },
    /// `invitee.canceled`; `rescheduled_to` is set when it is half of a reschedule.
    InviteeCanceled {
        schedule: Schedule,
        terms: Option<Terms>,
        canceler: Canceler,
        reason: Option<String>,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
        rescheduled_to: Option<String>,
    },
    /// `invitee_no_show.created`.
    InviteeNoShow {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// `invitee_no_show.deleted`: the no-show mark was taken back at `at`.
    InviteeNoShowRemoved {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },

    // --- Stripe ---
    /// `checkout.session.completed` / `async_payment_succeeded` / `async_payment_failed` /
    /// `expired`: the session's payment as reported.
    PaymentReported { payment: PaymentFact },
    /// `charge.refunded`: the charge's cumulative refunded amount.
    ChargeRefunded {
        payment_intent: String,
        amount_refunded: Money,
    },
    /// `refund.updated` / `refund.failed` / `charge.refund.updated`.
    RefundReported { refund: RefundFact },
    /// `charge.dispute.created`.
    DisputeOpened {
        payment_intent: String,
        amount: Money,
        reason: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },

    /// `charge.dispute.closed`: the bank decided (`won`, `lost`, or `warning_closed`).
    DisputeClosed {
        payment_intent: String,
        amount: Money,
        reason: String,
        outcome: DisputeOutcome,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// `charge.dispute.funds_withdrawn` / `funds_reinstated`: the disputed money left the
    /// coach's balance, or came back to it.
    DisputeFunds {
        payment_intent: String,
        amount: Money,
        reason: String,
        withdrawn: bool,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },

    // --- Between bookings of one reschedule chain (applied in the same transaction) ---
    /// The old booking learns its successor.
    RescheduledTo { successor: String },
    /// The new booking receives the old booking's payment.
    PaymentCarried {
        from: super::BookingId,
        payment: PaymentFact,
    },

    // --- Coach actions ---
    CoachCancelled {
        refund: RefundChoice,
        reason: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// A refund outside a cancellation; `action_id` makes a double click harmless.
    CoachRefunded {
        action_id: String,
        amount: Money,
        reason: String,
    },
    CoachMarkedNoShow {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// A hand correction of the state; the reason is required and audited.
    CoachCorrected { state: BookingState, reason: String },
    /// The coach has dealt with an attention reason (by its code).
    CoachDismissed { code: String },
    /// The coach asked for the payment link to be emailed again; one email per `action_id`.
    CoachResentPaymentLink {
        action_id: String,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },

    // --- Timers ---
    TimerFired {
        timer: TimerKind,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },

    // --- Effect outcomes, fed back by the executor ---
    /// Stripe accepted a refund this app asked for (or the executor found it at Stripe
    /// before asking again). `amount` is set when Stripe refunded another amount than the
    /// booking recorded: the request was capped at what was still refundable.
    RefundIssued {
        cause: RefundCause,
        refund_id: String,
        status: RefundStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        amount: Option<Money>,
    },
    /// The executor did not ask Stripe for this refund: nothing of the payment was left
    /// to refund when it checked (refunded elsewhere meanwhile, say in the dashboard).
    RefundNotNeeded { cause: RefundCause, reason: String },
    /// An effect failed for good.
    EffectFailed {
        effect_key: EffectKey,
        message: String,
    },
    /// An effect that had failed went through (for example after a manual retry).
    EffectSucceeded { effect_key: EffectKey },
    /// An email was not sent because the booking's state, when it was due, contradicted
    /// it (a payment request for a booking already paid...). Recorded for the audit trail.
    EmailSkipped {
        effect_key: EffectKey,
        reason: String,
    },
}

impl BookingEvent {
    /// A short stable name for logs, the audit trail and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InviteeCreated { .. } => "invitee_created",
            Self::InviteeCanceled { .. } => "invitee_canceled",
            Self::InviteeNoShow { .. } => "invitee_no_show",
            Self::InviteeNoShowRemoved { .. } => "invitee_no_show_removed",
            Self::PaymentReported { .. } => "payment_reported",
            Self::ChargeRefunded { .. } => "charge_refunded",
            Self::RefundReported { .. } => "refund_reported",
            Self::DisputeOpened { .. } => "dispute_opened",
            Self::DisputeClosed { .. } => "dispute_closed",
            Self::DisputeFunds { .. } => "dispute_funds",
            Self::RescheduledTo { .. } => "rescheduled_to",
            Self::PaymentCarried { .. } => "payment_carried",
            Self::CoachCancelled { .. } => "coach_cancelled",
            Self::CoachRefunded { .. } => "coach_refunded",
            Self::CoachMarkedNoShow { .. } => "coach_marked_no_show",
            Self::CoachCorrected { .. } => "coach_corrected",
            Self::CoachDismissed { .. } => "coach_dismissed",
            Self::CoachResentPaymentLink { .. } => "coach_resent_payment_link",
            Self::TimerFired { .. } => "timer_fired",
            Self::RefundIssued { .. } => "refund_issued",
            Self::RefundNotNeeded { .. } => "refund_not_needed",
            Self::EffectFailed { .. } => "effect_failed",
            Self::EffectSucceeded { .. } => "effect_succeeded",
            Self::EmailSkipped { .. } => "email_skipped",
        }
    }

    /// Whether this is the coach's own decision (which may be refused).
    pub fn is_coach_action(&self) -> bool {
        matches!(
            self,
            Self::CoachCancelled { .. }
                | Self::CoachRefunded { .. }
                | Self::CoachMarkedNoShow { .. }
                | Self::CoachCorrected { .. }
                | Self::CoachDismissed { .. }
                | Self::CoachResentPaymentLink { .. }
        )
    }
}
