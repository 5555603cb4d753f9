//! What a transition asks the outside world to do.
//!
//! Effects are data. The store writes them to the outbox in the same transaction as the
//! transition, keyed by [`Effect::key`]: the same effect derived twice is stored once, and
//! the key doubles as the Stripe `Idempotency-Key`, so a money movement happens at most
//! once per cause whatever the order or repetition of events.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::cause::RefundCause;
use super::event::{BookingEvent, TimerKind};
use super::id::BookingId;
use crate::money::Money;

/// Something to tell the coach on the desktop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    NewBooking,
    PaymentReceived,
    PaymentFailed,
    NeedsAttention,
}

impl Notice {
    /// The notice's name in stored effect keys. Written out, not derived, so renaming a
    /// variant changes no key already in an outbox (these are the names keys have had).
    pub fn key_name(self) -> &'static str {
        match self {
            Notice::NewBooking => "NewBooking",
            Notice::PaymentReceived => "PaymentReceived",
            Notice::PaymentFailed => "PaymentFailed",
            Notice::NeedsAttention => "NeedsAttention",
        }
    }
}

/// Emails to the client (sent through the coach's SMTP server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailKind {
    /// Right after booking: please pay, with the payment link.
    PaymentRequest,
    /// Still unpaid shortly before the payment deadline: a recovery link.
    PaymentReminder,
    /// Paid: the session is confirmed.
    Confirmation,
    /// Cancelled, with the refund amount.
    Cancellation,
    /// Moved to a new time.
    Reschedule,
    /// A payment came after the booking expired or was cancelled and was refunded in full.
    LatePaymentRefund,
}

impl EmailKind {
    /// Every kind, in the order the template editor lists them.
    pub const ALL: [EmailKind; 6] = [
        Self::PaymentRequest,
        Self::PaymentReminder,
        Self::Confirmation,
        Self::Cancellation,
        Self::Reschedule,
        Self::LatePaymentRefund,
    ];

    /// The stable name (its serde name), used in setting keys (`mail.template.{name}`) and
    /// by the UI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentRequest => "payment_request",
            Self::PaymentReminder => "payment_reminder",
            Self::Confirmation => "confirmation",
            Self::Cancellation => "cancellation",
            Self::Reschedule => "reschedule",
            Self::LatePaymentRefund => "late_payment_refund",
        }
    }

    /// The inverse of [`EmailKind::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// One effect of a transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// A per-booking Checkout Session (recovery link) for the booking's price.
    CreateCheckoutSession {
        amount: Money,
    },
    /// Cancel the Calendly event (frees the slot).
    CancelCalendlyEvent {
        event_uri: String,
        reason: String,
    },
    /// Refund `amount` of `payment_intent`; `cause` names why (one refund per cause).
    IssueRefund {
        cause: RefundCause,
        payment_intent: String,
        amount: Money,
        /// Decided by a rule (a client's or host's cancellation), not asked for by the
        /// coach in the app: such a refund waits for approval while automatic refunds are
        /// off. Rows stored before the flag existed read as automatic, so an old refund is
        /// held rather than sent without the coach's say.
        #[serde(default = "automatic_unless_known")]
        automatic: bool,
    },
    SendEmail {
        email: EmailKind,
    },
    /// The same email again because the coach asked (`action_id` names the click): a
    /// payment request, or the recovery link once a reminder was due or a payment failed.
    ResendEmail {
        email: EmailKind,
        action_id: String,
    },
    Notify {
        notice: Notice,
    },
    /// Wake the booking at `at` with `BookingEvent::TimerFired`.
    ScheduleTimer {
        timer: TimerKind,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Apply `event` to the booking of invitee `invitee_uri` in the same transaction
    /// (the two halves of a reschedule). Never reaches the outbox.
    Forward {
        invitee_uri: String,
        event: Box<BookingEvent>,
    },
}

/// An effect's identity within its booking: same key, same effect, done once. Stored in
/// the outbox (unique per booking) and part of the effect's Stripe `Idempotency-Key`, so
/// its text never changes for a given effect; [`Effect::key`] is its one spelling.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EffectKey(String);

const REFUND_KEY_PREFIX: &str = "refund:";

impl EffectKey {
    /// A key as stored (an outbox row, an event of before).
    pub fn from_stored(text: impl Into<String>) -> EffectKey {
        EffectKey(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The effect's `Idempotency-Key` at the provider: unique per booking and effect, the
    /// same on every retry.
    pub fn idempotency_key(&self, booking_id: &BookingId) -> String {
        format!("coachdesk-{booking_id}-{}", self.0)
    }

    /// The cause of a refund effect's key; `None` for any other effect.
    pub fn refund_cause(&self) -> Option<RefundCause> {
        self.0
            .strip_prefix(REFUND_KEY_PREFIX)
            .map(RefundCause::from_stored)
    }
}

impl std::fmt::Display for EffectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Effect {
    /// The effect's identity within its booking: same key, same effect, done once.
    pub fn key(&self) -> EffectKey {
        EffectKey(self.key_text())
    }

    fn key_text(&self) -> String {
        match self {
            Self::CreateCheckoutSession { .. } => "checkout".into(),
            Self::CancelCalendlyEvent { .. } => "calendly-cancel".into(),
            Self::IssueRefund { cause, .. } => format!("{REFUND_KEY_PREFIX}{cause}"),
            Self::SendEmail { email } => format!("email:{}", email_name(*email)),
            Self::ResendEmail { action_id, .. } => format!("email-again:{action_id}"),
            Self::Notify { notice } => format!("notify:{}", notice.key_name()),
            Self::ScheduleTimer { timer, .. } => format!("timer:{}", timer.key_name()),
            // The whole event: a second payment, or a larger refunded total, is a new
            // fact to pass on (these keys live only in memory, never in the outbox).
            Self::Forward { invitee_uri, event } => format!(
                "forward:{}:{invitee_uri}:{}",
                event.kind(),
                serde_json::to_string(event).unwrap_or_default()
            ),
        }
    }

    /// Whether this effect moves money (the invariants' "money movements").
    pub fn moves_money(&self) -> bool {
        matches!(self, Self::IssueRefund { .. })
    }
}

fn automatic_unless_known() -> bool {
    true
}

fn email_name(email: EmailKind) -> &'static str {
    match email {
        EmailKind::PaymentRequest => "payment-request",
        EmailKind::PaymentReminder => "payment-reminder",
        EmailKind::Confirmation => "confirmation",
        EmailKind::Cancellation => "cancellation",
        EmailKind::Reschedule => "reschedule",
        EmailKind::LatePaymentRefund => "late-payment-refund",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Effect keys are stored in outboxes and serve as Stripe idempotency keys: they are
    /// pinned here, so a change of name or format shows as a failing test, not as a
    /// notice or refund done twice.
    #[test]
    fn effect_keys_are_stable() {
        let at = time::macros::datetime!(2027-01-15 09:30 UTC);
        let keys: Vec<String> = [
            Effect::Notify {
                notice: Notice::NewBooking,
            },
            Effect::Notify {
                notice: Notice::NeedsAttention,
            },
            Effect::ScheduleTimer {
                timer: TimerKind::PaymentDeadline,
                at,
            },
            Effect::ScheduleTimer {
                timer: TimerKind::PaymentReminder,
                at,
            },
            Effect::SendEmail {
                email: EmailKind::LatePaymentRefund,
            },
            Effect::CancelCalendlyEvent {
                event_uri: "u".into(),
                reason: "r".into(),
            },
        ]
        .iter()
        .map(|e| e.key().to_string())
        .collect();
        assert_eq!(
            keys,
            [
                "notify:NewBooking",
                "notify:NeedsAttention",
                "timer:PaymentDeadline",
                "timer:PaymentReminder",
                "email:late-payment-refund",
                "calendly-cancel",
            ]
        );
        let refund = Effect::IssueRefund {
            cause: RefundCause::coach_request("a-1"),
            payment_intent: "pi_1".into(),
            amount: Money::new(100, crate::money::Currency::parse("EUR").expect("eur")),
            automatic: false,
        };
        assert_eq!(refund.key().as_str(), "refund:coach:a-1");
        assert_eq!(
            refund.key().refund_cause(),
            Some(RefundCause::coach_request("a-1"))
        );
        assert_eq!(EffectKey::from_stored("checkout").refund_cause(), None);
    }
}
