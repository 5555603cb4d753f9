//! The booking aggregate and its state machine.
//!
//! A booking keeps the *facts* it has learnt (schedule, payments, refunds, cancellation,
//! reschedule links, timers fired...), merged so that the order they arrive in does not
//! matter: every merge is a union or a max. Its state, its attention flags and the
//! effects due are all functions of those facts. That is what makes the order
//! independence invariant hold by construction rather than by case analysis; the
//! exhaustive and property tests in `machine` check it.

mod cause;
mod effect;
mod event;
mod id;
mod machine;
mod quote;
mod state;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

pub use cause::{CauseKind, RefundCause};
pub use effect::{Effect, EffectKey, EmailKind, Notice};
pub use event::{
    BookingEvent, Canceler, DisputeOutcome, PaymentFact, PaymentStatus, RefundChoice, RefundFact,
    RefundStatus, Schedule, Terms, TimerKind,
};
pub use id::{BookingId, EmptyBookingId};
pub use machine::{apply, coach_offer, CoachOffer, Rejection, Transition};
pub use quote::{cancellation_quote, RefundQuote};
pub use state::{AttentionReason, BookingState};

use crate::money::{Currency, Money};

/// A cancellation: who, when, why, and what refund was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationFact {
    pub canceler: Canceler,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub reason: Option<String>,
    pub refund: RefundChoice,
}

/// A payment as the booking holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    #[serde(flatten)]
    pub fact: PaymentFact,
    /// Set when the payment was made for the booking this one replaced.
    pub carried_from: Option<BookingId>,
}

/// A refund as the booking holds it: one of this app's (keyed by cause) or one made
/// elsewhere (keyed by Stripe's refund id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    pub cause: Option<RefundCause>,
    pub refund_id: Option<String>,
    pub payment_intent: Option<String>,
    pub amount: Money,
    pub status: RefundStatus,
    pub failure_reason: Option<String>,
}

/// A dispute opened by the client's bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeFact {
    pub payment_intent: String,
    pub amount: Money,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// How the bank closed it; `None` while it is open.
    #[serde(default)]
    pub outcome: Option<DisputeOutcome>,
    /// The disputed money left the coach's balance.
    #[serde(default)]
    pub withdrawn: bool,
    /// ...and came back (a won dispute).
    #[serde(default)]
    pub reinstated: bool,
}

impl DisputeFact {
    /// What the dispute took from the coach for good: the amount once it is lost, or
    /// withdrawn and not (yet) reinstated.
    pub fn taken_minor(&self) -> i64 {
        let lost = self.outcome == Some(DisputeOutcome::Lost);
        if lost || (self.withdrawn && !self.reinstated) {
            self.amount.minor
        } else {
            0
        }
    }

    /// Still waiting for the bank.
    pub fn is_open(&self) -> bool {
        self.outcome.is_none()
    }
}

/// A state set by hand, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualState {
    pub state: BookingState,
    pub reason: String,
}

/// One booking: a client's session and the money around it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub id: BookingId,
    pub state: BookingState,
    pub attention: Vec<AttentionReason>,
    pub schedule: Option<Schedule>,
    pub terms: Option<Terms>,
    pub cancellation: Option<CancellationFact>,
    pub rescheduled_to: Option<String>,
    pub rescheduled_from: Option<String>,
    pub payments: BTreeMap<String, PaymentRecord>,
    pub refunds: BTreeMap<String, RefundRecord>,
    /// Per payment intent, the largest cumulative refunded amount Stripe reported.
    pub charge_refunded: BTreeMap<String, Money>,
    pub dispute: Option<DisputeFact>,
    /// The first no-show mark.
    #[serde(with = "time::serde::rfc3339::option")]
    pub no_show_at: Option<OffsetDateTime>,
    /// The latest no-show mark (a mark taken back and made again).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub no_show_last_at: Option<OffsetDateTime>,
    /// When a no-show mark was last taken back (`invitee_no_show.deleted`).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub no_show_cleared_at: Option<OffsetDateTime>,
    pub timers_fired: BTreeSet<TimerKind>,
    pub manual: Option<ManualState>,
    /// Effects that failed for good, by effect key, with the provider's message.
    pub failed_effects: BTreeMap<EffectKey, String>,
    /// Attention codes the coach has dealt with.
    pub dismissed: BTreeSet<String>,
    /// Payment links the coach sent again, by action id, with the email each one is.
    #[serde(default)]
    pub link_resends: BTreeMap<String, EmailKind>,
    /// Money facts about payments this booking carried to its successor: they belong to
    /// the booking the payment moved to, wherever Stripe's event happened to land.
    #[serde(default, skip_serializing_if = "HandedOn::is_empty")]
    pub handed_on: HandedOn,
}

/// What Stripe said about money that moved on with a reschedule (refunds made outside the
/// app, the charge's refunded total, a dispute), kept by the rescheduled booking only to
/// pass it forward: merged like the booking's own facts, counted by none of its figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandedOn {
    #[serde(default)]
    pub charge_refunded: BTreeMap<String, Money>,
    #[serde(default)]
    pub dispute: Option<DisputeFact>,
    /// Refunds made outside the app, by Stripe's refund id.
    #[serde(default)]
    pub refunds: BTreeMap<String, RefundRecord>,
}

impl HandedOn {
    fn is_empty(&self) -> bool {
        self.charge_refunded.is_empty() && self.dispute.is_none() && self.refunds.is_empty()
    }
}

impl Booking {
    /// A booking nothing is known about yet.
    pub fn new(id: BookingId) -> Self {
        Self {
            id,
            state: BookingState::AwaitingPayment,
            attention: Vec::new(),
            schedule: None,
            terms: None,
            cancellation: None,
            rescheduled_to: None,
            rescheduled_from: None,
            payments: BTreeMap::new(),
            refunds: BTreeMap::new(),
            charge_refunded: BTreeMap::new(),
            dispute: None,
            no_show_at: None,
            no_show_last_at: None,
            no_show_cleared_at: None,
            timers_fired: BTreeSet::new(),
            manual: None,
            failed_effects: BTreeMap::new(),
            dismissed: BTreeSet::new(),
            link_resends: BTreeMap::new(),
            handed_on: HandedOn::default(),
        }
    }

    /// The currency of the booking's money, from its terms or its first payment.
    pub fn currency(&self) -> Option<Currency> {
        self.terms
            .as_ref()
            .map(|terms| terms.price.currency)
            .or_else(|| {
                self.payments
                    .values()
                    .next()
                    .map(|p| p.fact.amount.currency)
            })
    }

    /// Successful payments, oldest first (ties broken by session id, so the order is total).
    pub fn succeeded_payments(&self) -> Vec<&PaymentRecord> {
        let mut paid: Vec<_> = self
            .payments
            .values()
            .filter(|p| p.fact.status == PaymentStatus::Succeeded)
            .collect();
        paid.sort_by(|a, b| {
            (a.fact.at, &a.fact.checkout_session).cmp(&(b.fact.at, &b.fact.checkout_session))
        });
        paid
    }

    /// The payment refunds go to: the first that succeeded.
    pub fn primary_payment(&self) -> Option<&PaymentRecord> {
        self.succeeded_payments().into_iter().next()
    }

    /// Everything captured for this booking, in minor units.
    pub fn captured_minor(&self) -> i64 {
        self.succeeded_payments()
            .iter()
            .map(|p| p.fact.amount.minor)
            .sum()
    }

    /// Money refunded or on its way back for one payment intent.
    pub fn committed_refunds_minor(
        &self,
        payment_intent: &str,
        except_cause: Option<&RefundCause>,
    ) -> i64 {
        let ours: i64 = self
            .refunds
            .values()
            .filter(|r| r.payment_intent.as_deref() == Some(payment_intent))
            .filter(|r| r.status.commits_money())
            .filter(|r| except_cause.is_none() || r.cause.as_ref() != except_cause)
            .map(|r| r.amount.minor)
            .sum();
        // Stripe's `amount_refunded` may still count a refund of ours that failed since
        // (the money came back to the balance): those never count as money returned.
        let failed: i64 = self
            .refunds
            .values()
            .filter(|r| r.payment_intent.as_deref() == Some(payment_intent))
            .filter(|r| r.status == RefundStatus::Failed)
            .map(|r| r.amount.minor)
            .sum();
        let reported = self
            .charge_refunded
            .get(payment_intent)
            .map_or(0, |m| m.minor);
        // A lost dispute gave the money back through the bank: not refundable any more.
        let taken = self
            .dispute
            .as_ref()
            .filter(|d| d.payment_intent == payment_intent)
            .map_or(0, DisputeFact::taken_minor);
        ours.max(reported - failed) + taken
    }

    /// Whether the client is marked as not having shown up (and the mark still stands).
    pub fn is_no_show(&self) -> bool {
        let Some(first) = self.no_show_at else {
            return false;
        };
        let last = self.no_show_last_at.unwrap_or(first).max(first);
        self.no_show_cleared_at.is_none_or(|cleared| last > cleared)
    }

    /// Whether what was paid falls short of the booking's price: such a booking is not
    /// confirmed (no confirmation email) until the coach accepts it as paid (a correction)
    /// or the client pays the rest. Unknown terms never count as short.
    pub fn underpaid(&self) -> bool {
        let Some(terms) = &self.terms else {
            return false;
        };
        let paid: i64 = self
            .succeeded_payments()
            .iter()
            .filter(|p| p.fact.amount.currency == terms.price.currency)
            .map(|p| p.fact.amount.minor)
            .sum();
        paid < terms.price.minor
    }

    /// Money refunded (or on its way back) across all payments.
    pub fn refunded_minor(&self) -> i64 {
        self.payment_intents()
            .iter()
            .map(|pi| self.committed_refunds_minor(pi, None))
            .sum()
    }

    /// What can still be refunded of the primary payment.
    pub fn refundable(&self) -> Option<(String, Money)> {
        let primary = self.primary_payment()?;
        let pi = primary.fact.payment_intent.clone()?;
        let left = primary.fact.amount.minor - self.committed_refunds_minor(&pi, None);
        Some((pi, Money::new(left.max(0), primary.fact.amount.currency)))
    }

    /// When the client must have paid by, if the terms are known.
    pub fn payment_deadline(&self) -> Option<OffsetDateTime> {
        let schedule = self.schedule.as_ref()?;
        let terms = self.terms.as_ref()?;
        let window =
            schedule.booked_at + Duration::minutes(i64::from(terms.payment_window_minutes));
        Some(window.min(schedule.start))
    }

    fn payment_intents(&self) -> BTreeSet<String> {
        self.payments
            .values()
            .filter_map(|p| p.fact.payment_intent.clone())
            .chain(self.charge_refunded.keys().cloned())
            .chain(self.dispute.iter().map(|d| d.payment_intent.clone()))
            .collect()
    }
}
