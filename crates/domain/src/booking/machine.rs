//! The transition function: `(booking, event) -> Result<Transition, Rejection>`.
//!
//! Three pure steps: check a coach action against the current state (the only events that
//! can be refused: a provider fact is never refused, it is recorded and, if odd, flagged);
//! merge the event's facts into the booking; derive the new state, attention flags and the
//! effects now due. Effects are the difference between what is due after and before, and
//! each has a stable key, so repeating or reordering events never repeats an effect.

use std::collections::BTreeMap;

use thiserror::Error;
use time::OffsetDateTime;

use super::cause::{CauseKind, RefundCause};
use super::effect::{EffectKey, EmailKind, Notice};
use super::event::{
    Canceler, DisputeOutcome, PaymentStatus, RefundChoice, RefundFact, RefundStatus, TimerKind,
};
use super::quote::cancellation_quote;
use super::state::{AttentionReason, BookingState};
use super::{
    Booking, BookingEvent, CancellationFact, DisputeFact, Effect, HandedOn, ManualState,
    PaymentRecord, RefundRecord,
};
use crate::money::{Currency, Money};

/// The outcome of applying an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Transition {
    pub booking: Booking,
    pub from: BookingState,
    pub to: BookingState,
    /// New effects, in a stable order; `Effect::Forward` ones are for the store to apply now.
    pub effects: Vec<Effect>,
    /// A sentence for the audit trail.
    pub summary: String,
}

/// Why a coach action was refused. Provider facts are never refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Rejection {
    #[error("this booking is already {} and cannot be cancelled again", .state.as_str().replace('_', " "))]
    AlreadyClosed { state: BookingState },
    #[error("this cannot be done while the booking is {}", .state.as_str().replace('_', " "))]
    NotAllowed {
        state: BookingState,
        event: &'static str,
    },
    #[error("nothing has been paid for this booking, so there is nothing to refund")]
    NothingToRefund,
    #[error("a refund must be more than zero")]
    InvalidAmount,
    #[error("only {refundable} can still be refunded; {requested} is more than that")]
    RefundExceedsRefundable { requested: Money, refundable: Money },
    #[error("the booking is paid in {expected}, not {got}")]
    CurrencyMismatch { expected: Currency, got: Currency },
    #[error("the refund policy needs the session's time and terms, which are not known yet; enter an amount instead")]
    PolicyUnknown,
    #[error("the session has not started yet, so the client cannot have missed it")]
    SessionNotStarted,
    #[error("a correction needs a reason, for the audit trail")]
    ReasonRequired,
    #[error("the booking is already {}", .state.as_str().replace('_', " "))]
    AlreadyInState { state: BookingState },
    #[error("there is no \"{code}\" flag on this booking")]
    NothingToDismiss { code: String },
    #[error("this booking is already paid, so there is no payment link to send")]
    AlreadyPaid,
    #[error("the client's email address is not known yet, so the link cannot be emailed; wait for Calendly's booking to arrive")]
    NoClientEmail,
    #[error("the payment deadline has passed, so the link no longer works; cancel the booking or correct its state first")]
    PaymentWindowClosed,
}

/// Applies one event to a booking.
pub fn apply(booking: &Booking, event: &BookingEvent) -> Result<Transition, Rejection> {
    check_coach_action(booking, event)?;
    let before_due = due_effects(booking);
    let mut next = booking.clone();
    merge(&mut next, event);
    hand_on_money(&mut next);
    derive(&mut next);
    let effects = new_effects(&mut next, &before_due);
    Ok(Transition {
        from: booking.state,
        to: next.state,
        summary: summarise(event),
        booking: next,
        effects,
    })
}

/// The coach actions a booking's page offers: exactly those the state machine would
/// accept now (correcting the state by hand is always offered).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoachOffer {
    pub cancel: bool,
    pub refund: bool,
    pub no_show: bool,
    pub resend_link: bool,
}

/// What the coach may do with `booking` at `now`, asked of the same checks that accept or
/// refuse the actions themselves, so the page never offers what would be refused (pure).
pub fn coach_offer(booking: &Booking, now: OffsetDateTime) -> CoachOffer {
    let accepts = |event: BookingEvent| check_coach_action(booking, &event).is_ok();
    let one_minor = booking
        .refundable()
        .filter(|(_, left)| left.minor > 0)
        .map(|(_, left)| Money::new(1, left.currency));
    CoachOffer {
        cancel: accepts(BookingEvent::CoachCancelled {
            refund: RefundChoice::None,
            reason: String::new(),
            at: now,
        }),
        refund: one_minor.is_some_and(|amount| {
            accepts(BookingEvent::CoachRefunded {
                action_id: String::new(),
                amount,
                reason: String::new(),
            })
        }),
        no_show: accepts(BookingEvent::CoachMarkedNoShow { at: now }),
        resend_link: accepts(BookingEvent::CoachResentPaymentLink {
            action_id: String::new(),
            at: now,
        }),
    }
}

fn check_coach_action(booking: &Booking, event: &BookingEvent) -> Result<(), Rejection> {
    let state = booking.state;
    match event {
        BookingEvent::CoachCancelled { refund, .. } => {
            if state.is_closed() {
                return Err(Rejection::AlreadyClosed { state });
            }
            if matches!(
                state,
                BookingState::Disputed | BookingState::Completed | BookingState::NoShow
            ) {
                return Err(Rejection::NotAllowed {
                    state,
                    event: event.kind(),
                });
            }
            match refund {
                RefundChoice::Amount { amount } => check_refund_amount(booking, *amount),
                RefundChoice::Policy
                    if booking.captured_minor() > 0
                        && (booking.schedule.is_none() || booking.terms.is_none()) =>
                {
                    Err(Rejection::PolicyUnknown)
                }
                _ => Ok(()),
            }
        }
        BookingEvent::CoachRefunded {
            amount, action_id, ..
        } => {
            if booking
                .refunds
                .contains_key(RefundCause::coach_request(action_id).as_str())
            {
                return Ok(()); // The same action again: a no-op, not a second refund.
            }
            if state == BookingState::Disputed {
                return Err(Rejection::NotAllowed {
                    state,
                    event: event.kind(),
                });
            }
            check_refund_amount(booking, *amount)
        }
        BookingEvent::CoachMarkedNoShow { at } => {
            if state == BookingState::NoShow {
                return Err(Rejection::AlreadyInState { state });
            }
            if state.is_closed() || state == BookingState::Disputed {
                return Err(Rejection::NotAllowed {
                    state,
                    event: event.kind(),
                });
            }
            match &booking.schedule {
                Some(schedule) if *at >= schedule.start => Ok(()),
                _ => Err(Rejection::SessionNotStarted),
            }
        }
        BookingEvent::CoachCorrected { state: to, reason } => {
            if reason.trim().is_empty() {
                Err(Rejection::ReasonRequired)
            } else if *to == state {
                Err(Rejection::AlreadyInState { state })
            } else {
                Ok(())
            }
        }
        BookingEvent::CoachDismissed { code } => {
            if booking.attention.iter().any(|a| a.code() == code) {
                Ok(())
            } else {
                Err(Rejection::NothingToDismiss { code: code.clone() })
            }
        }
        BookingEvent::CoachResentPaymentLink { action_id, at } => {
            if booking.link_resends.contains_key(action_id) {
                return Ok(()); // The same click again: one email.
            }
            if booking.captured_minor() > 0 {
                return Err(Rejection::AlreadyPaid);
            }
            if !matches!(
                state,
                BookingState::AwaitingPayment | BookingState::PaymentFailed
            ) {
                return Err(Rejection::NotAllowed {
                    state,
                    event: event.kind(),
                });
            }
            let email = booking
                .schedule
                .as_ref()
                .and_then(|s| s.client_email.as_deref())
                .filter(|e| e.contains('@'));
            if email.is_none() {
                return Err(Rejection::NoClientEmail);
            }
            if booking.payment_deadline().is_some_and(|d| *at >= d) {
                return Err(Rejection::PaymentWindowClosed);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_refund_amount(booking: &Booking, amount: Money) -> Result<(), Rejection> {
    if amount.minor <= 0 {
        return Err(Rejection::InvalidAmount);
    }
    let Some((_, refundable)) = booking.refundable() else {
        return Err(Rejection::NothingToRefund);
    };
    if amount.currency != refundable.currency {
        return Err(Rejection::CurrencyMismatch {
            expected: refundable.currency,
            got: amount.currency,
        });
    }
    if refundable.minor == 0 {
        return Err(Rejection::NothingToRefund);
    }
    if amount.minor > refundable.minor {
        return Err(Rejection::RefundExceedsRefundable {
            requested: amount,
            refundable,
        });
    }
    Ok(())
}

/// Folds an event's facts into the booking. Every merge is order-independent.
fn merge(b: &mut Booking, event: &BookingEvent) {
    match event {
        BookingEvent::InviteeCreated {
            schedule,
            terms,
            rescheduled_from,
        } => {
            b.schedule.get_or_insert_with(|| schedule.clone());
            if b.terms.is_none() {
                b.terms.clone_from(terms);
            }
            if b.rescheduled_from.is_none() {
                b.rescheduled_from.clone_from(rescheduled_from);
            }
        }
        BookingEvent::InviteeCanceled {
            schedule,
            terms,
            canceler,
            reason,
            at,
            rescheduled_to,
        } => {
            b.schedule.get_or_insert_with(|| schedule.clone());
            if b.terms.is_none() {
                b.terms.clone_from(terms);
            }
            match rescheduled_to {
                Some(successor) => {
                    b.rescheduled_to.get_or_insert_with(|| successor.clone());
                }
                None => {
                    let refund = match canceler {
                        Canceler::Client => RefundChoice::Policy,
                        Canceler::Host | Canceler::CoachInApp => RefundChoice::Full,
                    };
                    merge_cancellation(
                        b,
                        CancellationFact {
                            canceler: *canceler,
                            at: *at,
                            reason: reason.clone(),
                            refund,
                        },
                    );
                }
            }
        }
        BookingEvent::InviteeNoShow { at } | BookingEvent::CoachMarkedNoShow { at } => {
            b.no_show_at = Some(b.no_show_at.map_or(*at, |prev| prev.min(*at)));
            b.no_show_last_at = Some(b.no_show_last_at.map_or(*at, |prev| prev.max(*at)));
        }
        BookingEvent::InviteeNoShowRemoved { at } => {
            b.no_show_cleared_at = Some(b.no_show_cleared_at.map_or(*at, |prev| prev.max(*at)));
        }
        BookingEvent::PaymentReported { payment } => merge_payment(b, payment, None),
        BookingEvent::PaymentCarried { from, payment } => {
            merge_payment(b, payment, Some(from.clone()));
        }
        BookingEvent::ChargeRefunded {
            payment_intent,
            amount_refunded,
        } => merge_charge_refunded(&mut b.charge_refunded, payment_intent, *amount_refunded),
        BookingEvent::RefundReported { refund } => merge_refund(&mut b.refunds, refund),
        BookingEvent::DisputeOpened {
            payment_intent,
            amount,
            reason,
            at,
        } => {
            merge_dispute(&mut b.dispute, payment_intent, *amount, reason, *at);
        }
        BookingEvent::DisputeClosed {
            payment_intent,
            amount,
            reason,
            outcome,
            at,
        } => {
            let dispute = merge_dispute(&mut b.dispute, payment_intent, *amount, reason, *at);
            // A closed dispute stays closed; the first outcome reported is Stripe's.
            dispute.outcome.get_or_insert(*outcome);
        }
        BookingEvent::DisputeFunds {
            payment_intent,
            amount,
            reason,
            withdrawn,
            at,
        } => {
            let dispute = merge_dispute(&mut b.dispute, payment_intent, *amount, reason, *at);
            if *withdrawn {
                dispute.withdrawn = true;
            } else {
                dispute.reinstated = true;
            }
        }
        BookingEvent::RescheduledTo { successor } => {
            b.rescheduled_to.get_or_insert_with(|| successor.clone());
        }
        BookingEvent::CoachCancelled { refund, reason, at } => merge_cancellation(
            b,
            CancellationFact {
                canceler: Canceler::CoachInApp,
                at: *at,
                reason: Some(reason.clone()),
                refund: *refund,
            },
        ),
        BookingEvent::CoachRefunded {
            action_id, amount, ..
        } => {
            let payment_intent = b.refundable().map(|(pi, _)| pi);
            let cause = RefundCause::coach_request(action_id);
            b.refunds.entry(cause.to_string()).or_insert(RefundRecord {
                cause: Some(cause),
                refund_id: None,
                payment_intent,
                amount: *amount,
                status: RefundStatus::Requested,
                failure_reason: None,
            });
        }
        BookingEvent::CoachCorrected { state, reason } => {
            b.manual = Some(ManualState {
                state: *state,
                reason: reason.clone(),
            });
        }
        BookingEvent::CoachDismissed { code } => {
            b.dismissed.insert(code.clone());
        }
        BookingEvent::CoachResentPaymentLink { action_id, .. } => {
            // A recovery link once the reminder was due or a payment failed.
            let email = if b.state == BookingState::PaymentFailed
                || b.timers_fired.contains(&TimerKind::PaymentReminder)
            {
                EmailKind::PaymentReminder
            } else {
                EmailKind::PaymentRequest
            };
            b.link_resends.entry(action_id.clone()).or_insert(email);
        }
        BookingEvent::TimerFired { timer, .. } => {
            b.timers_fired.insert(*timer);
        }
        BookingEvent::RefundIssued {
            cause,
            refund_id,
            status,
            amount,
        } => {
            if let Some(record) = b.refunds.get_mut(cause.as_str()) {
                record.refund_id.get_or_insert_with(|| refund_id.clone());
                if *status > record.status {
                    record.status = *status;
                }
                if let Some(amount) = amount {
                    record.amount = *amount;
                }
            }
        }
        BookingEvent::RefundNotNeeded { cause, reason } => {
            if let Some(record) = b.refunds.get_mut(cause.as_str()) {
                if record.status == RefundStatus::Requested {
                    record.status = RefundStatus::Canceled;
                    record.failure_reason = Some(reason.clone());
                }
            }
        }
        BookingEvent::EffectFailed {
            effect_key,
            message,
        } => {
            b.failed_effects.insert(effect_key.clone(), message.clone());
            if let Some(cause) = effect_key.refund_cause() {
                if let Some(record) = b.refunds.get_mut(cause.as_str()) {
                    if record.status == RefundStatus::Requested {
                        record.status = RefundStatus::Failed;
                        record.failure_reason = Some(message.clone());
                    }
                }
            }
        }
        BookingEvent::EffectSucceeded { effect_key } => {
            b.failed_effects.remove(effect_key);
        }
        // Nothing to learn: the audit row is the point.
        BookingEvent::EmailSkipped { .. } => {}
    }
}

/// The largest cumulative refunded amount Stripe reported for a charge.
fn merge_charge_refunded(into: &mut BTreeMap<String, Money>, payment_intent: &str, amount: Money) {
    let entry = into.entry(payment_intent.to_owned()).or_insert(amount);
    if amount.minor > entry.minor {
        *entry = amount;
    }
}

/// A refund Stripe reported: one of ours (keyed by its cause) or one made elsewhere (keyed
/// by Stripe's id); its status only moves forward.
fn merge_refund(into: &mut BTreeMap<String, RefundRecord>, refund: &RefundFact) {
    let key = refund
        .cause
        .as_ref()
        .map_or_else(|| refund.refund_id.clone(), RefundCause::to_string);
    let record = into.entry(key).or_insert_with(|| RefundRecord {
        cause: refund.cause.clone(),
        refund_id: None,
        payment_intent: refund.payment_intent.clone(),
        amount: refund.amount,
        status: RefundStatus::Requested,
        failure_reason: None,
    });
    record.refund_id = Some(refund.refund_id.clone());
    record.amount = refund.amount;
    if record.payment_intent.is_none() {
        record.payment_intent.clone_from(&refund.payment_intent);
    }
    if refund.status > record.status {
        record.status = refund.status;
        record.failure_reason.clone_from(&refund.failure_reason);
    }
}

/// A refund made outside the app, as Stripe reported it (what a handed-on record forwards).
fn external_refund_fact(refund_id: &str, record: &RefundRecord) -> RefundFact {
    RefundFact {
        refund_id: record
            .refund_id
            .clone()
            .unwrap_or_else(|| refund_id.to_owned()),
        payment_intent: record.payment_intent.clone(),
        amount: record.amount,
        status: record.status,
        cause: None,
        failure_reason: record.failure_reason.clone(),
    }
}

/// Once a booking is rescheduled, the money facts Stripe reports about its payments belong
/// to the booking the payment moved to: they leave this booking's figures for
/// [`Booking::handed_on`], from where they are forwarded. The move is a merge, so the
/// booking ends the same whether a fact arrived before or after the reschedule.
fn hand_on_money(b: &mut Booking) {
    if b.rescheduled_to.is_none() {
        return;
    }
    for (pi, amount) in std::mem::take(&mut b.charge_refunded) {
        merge_charge_refunded(&mut b.handed_on.charge_refunded, &pi, amount);
    }
    if let Some(d) = b.dispute.take() {
        let slot = &mut b.handed_on.dispute;
        let dispute = merge_dispute(slot, &d.payment_intent, d.amount, &d.reason, d.at);
        if let Some(outcome) = d.outcome {
            dispute.outcome.get_or_insert(outcome);
        }
        dispute.withdrawn |= d.withdrawn;
        dispute.reinstated |= d.reinstated;
    }
    let external: Vec<String> = b
        .refunds
        .iter()
        .filter(|(_, r)| r.cause.is_none())
        .map(|(key, _)| key.clone())
        .collect();
    for key in external {
        if let Some(record) = b.refunds.remove(&key) {
            merge_refund(
                &mut b.handed_on.refunds,
                &external_refund_fact(&key, &record),
            );
        }
    }
}

/// The events that tell a successor what [`hand_on_money`] kept for it.
fn handed_on_events(handed_on: &HandedOn) -> Vec<BookingEvent> {
    let mut events: Vec<BookingEvent> = handed_on
        .charge_refunded
        .iter()
        .map(|(pi, amount)| BookingEvent::ChargeRefunded {
            payment_intent: pi.clone(),
            amount_refunded: *amount,
        })
        .collect();
    events.extend(
        handed_on
            .refunds
            .iter()
            .map(|(id, record)| BookingEvent::RefundReported {
                refund: external_refund_fact(id, record),
            }),
    );
    if let Some(d) = &handed_on.dispute {
        events.push(BookingEvent::DisputeOpened {
            payment_intent: d.payment_intent.clone(),
            amount: d.amount,
            reason: d.reason.clone(),
            at: d.at,
        });
        if let Some(outcome) = d.outcome {
            events.push(BookingEvent::DisputeClosed {
                payment_intent: d.payment_intent.clone(),
                amount: d.amount,
                reason: d.reason.clone(),
                outcome,
                at: d.at,
            });
        }
        for (happened, withdrawn) in [(d.withdrawn, true), (d.reinstated, false)] {
            if happened {
                events.push(BookingEvent::DisputeFunds {
                    payment_intent: d.payment_intent.clone(),
                    amount: d.amount,
                    reason: d.reason.clone(),
                    withdrawn,
                    at: d.at,
                });
            }
        }
    }
    events
}

/// The booking's dispute (one per booking: the first payment's), created from whichever of
/// its events comes first; the earliest time wins.
fn merge_dispute<'b>(
    slot: &'b mut Option<DisputeFact>,
    payment_intent: &str,
    amount: Money,
    reason: &str,
    at: OffsetDateTime,
) -> &'b mut DisputeFact {
    let dispute = slot.get_or_insert_with(|| DisputeFact {
        payment_intent: payment_intent.to_owned(),
        amount,
        reason: reason.to_owned(),
        at,
        outcome: None,
        withdrawn: false,
        reinstated: false,
    });
    if at < dispute.at {
        dispute.at = at;
    }
    dispute
}

/// The coach's own cancellation wins over Calendly's echo of it; otherwise the earliest.
fn merge_cancellation(b: &mut Booking, fact: CancellationFact) {
    let replace = match &b.cancellation {
        None => true,
        Some(existing) => {
            let rank = |c: &CancellationFact| (c.canceler != Canceler::CoachInApp, c.at);
            rank(&fact) < rank(existing)
        }
    };
    if replace {
        b.cancellation = Some(fact);
    }
}

fn merge_payment(
    b: &mut Booking,
    fact: &super::PaymentFact,
    carried_from: Option<super::BookingId>,
) {
    let record = b
        .payments
        .entry(fact.checkout_session.clone())
        .or_insert_with(|| PaymentRecord {
            fact: fact.clone(),
            carried_from: carried_from.clone(),
        });
    if fact.status > record.fact.status {
        record.fact.status = fact.status;
        record.fact.at = fact.at;
        record.fact.amount = fact.amount;
    }
    if record.fact.payment_intent.is_none() {
        record.fact.payment_intent.clone_from(&fact.payment_intent);
    }
}

/// Sets `state` and `attention` from the facts.
fn derive(b: &mut Booking) {
    b.state = derive_state(b);
    let dismissed = b.dismissed.clone();
    b.attention = derive_attention(b)
        .into_iter()
        .filter(|reason| !dismissed.contains(reason.code()))
        .collect();
}

fn expired(b: &Booking) -> bool {
    if !b.timers_fired.contains(&TimerKind::PaymentDeadline) || b.rescheduled_to.is_some() {
        return false;
    }
    let Some(deadline) = b.payment_deadline() else {
        return false;
    };
    let paid_in_time = b
        .payments
        .values()
        .any(|p| p.fact.status == PaymentStatus::Succeeded && p.fact.at <= deadline);
    let still_processing = b
        .payments
        .values()
        .any(|p| p.fact.status == PaymentStatus::Pending);
    !paid_in_time && !still_processing
}

fn derive_state(b: &Booking) -> BookingState {
    if let Some(manual) = &b.manual {
        return manual.state;
    }
    if b.rescheduled_to.is_some() {
        return BookingState::Rescheduled;
    }
    if b.dispute.as_ref().is_some_and(DisputeFact::is_open) {
        return BookingState::Disputed;
    }
    let refund_in_flight = b
        .refunds
        .values()
        .any(|r| matches!(r.status, RefundStatus::Requested | RefundStatus::Pending));
    let captured = b.captured_minor();
    let refunded = b.refunded_minor();
    if b.cancellation.is_some() || expired(b) {
        return if refund_in_flight {
            BookingState::RefundPending
        } else if refunded > 0 {
            BookingState::Refunded
        } else if b.cancellation.is_some() && !cancelled_after_expiry(b) {
            BookingState::Cancelled
        } else {
            BookingState::Expired
        };
    }
    if refund_in_flight {
        return BookingState::RefundPending;
    }
    if captured > 0 && refunded >= captured {
        return BookingState::Refunded;
    }
    if b.is_no_show() {
        return BookingState::NoShow;
    }
    // Paying less than the price never confirms the booking (it stays flagged).
    if captured > 0 && !b.underpaid() {
        return if b.timers_fired.contains(&TimerKind::SessionEnded) {
            BookingState::Completed
        } else {
            BookingState::Confirmed
        };
    }
    let failed = b
        .payments
        .values()
        .any(|p| p.fact.status == PaymentStatus::Failed);
    let pending = b
        .payments
        .values()
        .any(|p| p.fact.status == PaymentStatus::Pending);
    if failed && !pending {
        BookingState::PaymentFailed
    } else {
        BookingState::AwaitingPayment
    }
}

fn derive_attention(b: &Booking) -> Vec<AttentionReason> {
    let mut reasons = Vec::new();
    let paid = b.succeeded_payments();
    if !paid.is_empty() && b.schedule.is_none() {
        reasons.push(AttentionReason::PaymentForUnknownBooking);
    }
    if let Some(schedule) = &b.schedule {
        if b.terms.is_none() {
            reasons.push(AttentionReason::UnmappedEventType {
                event_type_uri: schedule.event_type_uri.clone(),
            });
        }
    }
    if let Some(terms) = &b.terms {
        if let Some(mismatch) = paid
            .iter()
            .find(|p| p.carried_from.is_none() && p.fact.amount != terms.price)
        {
            reasons.push(AttentionReason::AmountMismatch {
                expected_minor: terms.price.minor,
                paid_minor: mismatch.fact.amount.minor,
            });
        }
    }
    if paid.len() > 1 {
        reasons.push(AttentionReason::PaidTwice {
            payments: paid.len(),
        });
    }
    // A late payment needs the coach only when no full refund of it is on its way (one
    // held while refunds of late payments are off shows as waiting for approval).
    let late_unrefunded = late_payments(b).into_iter().any(|p| {
        !b.refunds
            .get(late_refund_cause(p).as_str())
            .is_some_and(|r| r.status.commits_money())
    });
    if let Some(cancellation) = &b.cancellation {
        if late_unrefunded && paid.iter().any(|p| p.fact.at > cancellation.at) {
            reasons.push(AttentionReason::PaidAfterCancellation);
        }
    } else if late_unrefunded && expired_or_late(b) {
        reasons.push(AttentionReason::PaidAfterExpiry);
    }
    if let Some(failed) = b
        .refunds
        .values()
        .find(|r| r.status == RefundStatus::Failed)
    {
        reasons.push(AttentionReason::RefundFailed {
            reason: failed
                .failure_reason
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        });
    }
    if let Some(dispute) = b.dispute.as_ref().filter(|d| d.is_open()) {
        reasons.push(AttentionReason::Disputed {
            reason: dispute.reason.clone(),
        });
    }
    for (effect, message) in &b.failed_effects {
        if effect.refund_cause().is_none() {
            reasons.push(AttentionReason::EffectFailed {
                effect: effect.to_string(),
                message: message.clone(),
            });
        }
    }
    reasons
}

/// The booking had expired (deadline passed unpaid) before it was cancelled: the
/// cancellation is Calendly's echo of the app freeing the slot, or came too late to matter,
/// so the booking stays expired and no cancellation notice is due.
fn cancelled_after_expiry(b: &Booking) -> bool {
    match (&b.cancellation, b.payment_deadline()) {
        (Some(cancellation), Some(deadline)) => expired(b) && cancellation.at >= deadline,
        _ => false,
    }
}

/// A payment that came after the deadline released the slot.
fn expired_or_late(b: &Booking) -> bool {
    if !b.timers_fired.contains(&TimerKind::PaymentDeadline) || b.rescheduled_to.is_some() {
        return false;
    }
    let Some(deadline) = b.payment_deadline() else {
        return false;
    };
    let paid = b.succeeded_payments();
    !paid.is_empty() && paid.iter().all(|p| p.fact.at > deadline)
}

/// Payments that came when the booking no longer sold anything: after the payment
/// deadline released the slot, or after the cancellation (a payment carried over from a
/// rescheduled booking never is).
fn late_payments(b: &Booking) -> Vec<&PaymentRecord> {
    let all_late = expired(b) || expired_or_late(b);
    b.succeeded_payments()
        .into_iter()
        .filter(|p| p.carried_from.is_none())
        .filter(|p| {
            all_late
                || b.cancellation
                    .as_ref()
                    .is_some_and(|c| p.fact.at > c.at && !cancelled_after_expiry(b))
        })
        .collect()
}

/// The cause of a late payment's full refund.
fn late_refund_cause(p: &PaymentRecord) -> RefundCause {
    RefundCause::late_payment(&p.fact.checkout_session)
}

/// Whether Stripe took the late payment's refund (not merely that it is due or held).
fn late_refund_issued(b: &Booking, p: &PaymentRecord) -> bool {
    b.refunds
        .get(late_refund_cause(p).as_str())
        .is_some_and(|r| {
            r.refund_id.is_some()
                && matches!(r.status, RefundStatus::Pending | RefundStatus::Succeeded)
                || r.status == RefundStatus::Succeeded
        })
}

/// Every effect the booking's facts call for, by key.
fn due_effects(b: &Booking) -> BTreeMap<EffectKey, Effect> {
    let mut due = Vec::new();
    let captured = b.captured_minor();
    let closed = b.state.is_closed();

    if let Some(schedule) = &b.schedule {
        due.push(Effect::Notify {
            notice: Notice::NewBooking,
        });
        due.push(Effect::ScheduleTimer {
            timer: TimerKind::SessionEnded,
            at: schedule.end,
        });
        if b.rescheduled_from.is_some() {
            due.push(Effect::SendEmail {
                email: EmailKind::Reschedule,
            });
        } else {
            due.push(Effect::SendEmail {
                email: EmailKind::PaymentRequest,
            });
            if let Some(deadline) = b.payment_deadline() {
                due.push(Effect::ScheduleTimer {
                    timer: TimerKind::PaymentDeadline,
                    at: deadline,
                });
                due.push(Effect::ScheduleTimer {
                    timer: TimerKind::PaymentReminder,
                    at: reminder_time(schedule.booked_at, deadline),
                });
            }
            if b.timers_fired.contains(&TimerKind::PaymentReminder) && captured == 0 && !closed {
                due.push(Effect::SendEmail {
                    email: EmailKind::PaymentReminder,
                });
            }
            if captured > 0 && !closed && !b.underpaid() {
                due.push(Effect::SendEmail {
                    email: EmailKind::Confirmation,
                });
            }
        }
    }
    for (action_id, email) in &b.link_resends {
        due.push(Effect::ResendEmail {
            email: *email,
            action_id: action_id.clone(),
        });
    }
    if captured > 0 {
        due.push(Effect::Notify {
            notice: Notice::PaymentReceived,
        });
    }
    if b.payments
        .values()
        .any(|p| p.fact.status == PaymentStatus::Failed)
    {
        due.push(Effect::Notify {
            notice: Notice::PaymentFailed,
        });
    }
    if !b.attention.is_empty() {
        due.push(Effect::Notify {
            notice: Notice::NeedsAttention,
        });
    }

    // The two halves of a reschedule tell each other, and the payment moves forward with
    // what Stripe said about it since.
    if let Some(successor) = &b.rescheduled_to {
        for payment in b.succeeded_payments() {
            due.push(Effect::Forward {
                invitee_uri: successor.clone(),
                event: Box::new(BookingEvent::PaymentCarried {
                    from: b.id.clone(),
                    payment: payment.fact.clone(),
                }),
            });
        }
        for event in handed_on_events(&b.handed_on) {
            due.push(Effect::Forward {
                invitee_uri: successor.clone(),
                event: Box::new(event),
            });
        }
    }
    if let (Some(predecessor), Some(schedule)) = (&b.rescheduled_from, &b.schedule) {
        due.push(Effect::Forward {
            invitee_uri: predecessor.clone(),
            event: Box::new(BookingEvent::RescheduledTo {
                successor: schedule.invitee_uri.clone(),
            }),
        });
    }

    let after_expiry = cancelled_after_expiry(b);
    if let Some(cancellation) = b.cancellation.as_ref().filter(|_| !after_expiry) {
        if b.schedule.is_some() || cancellation.canceler == Canceler::CoachInApp {
            due.push(Effect::SendEmail {
                email: EmailKind::Cancellation,
            });
        }
        if cancellation.canceler == Canceler::CoachInApp {
            if let Some(schedule) = &b.schedule {
                due.push(Effect::CancelCalendlyEvent {
                    event_uri: schedule.event_uri.clone(),
                    reason: cancellation
                        .reason
                        .clone()
                        .unwrap_or_else(|| "Cancelled by the coach".into()),
                });
            }
        }
        if let Some(refund) = cancellation_refund(b, cancellation) {
            due.push(refund);
        }
    } else if expired(b) {
        // Money paid after the deadline goes back in full below (a later cancellation,
        // often Calendly's echo of the slot being freed, adds nothing).
        if let Some(schedule) = &b.schedule {
            due.push(Effect::CancelCalendlyEvent {
                event_uri: schedule.event_uri.clone(),
                reason: "The payment deadline passed without payment".into(),
            });
        }
    }

    // A payment for a booking that had expired or was cancelled goes back in full, with
    // an email saying why once Stripe took the refund.
    let late = late_payments(b);
    for payment in &late {
        let Some(pi) = &payment.fact.payment_intent else {
            continue;
        };
        let cause = late_refund_cause(payment);
        // Whatever of the payment other refunds have not already given back.
        let left = payment.fact.amount.minor - b.committed_refunds_minor(pi, Some(&cause));
        if left > 0 {
            due.push(Effect::IssueRefund {
                cause,
                payment_intent: pi.clone(),
                amount: Money::new(left, payment.fact.amount.currency),
                automatic: true,
            });
        }
    }
    if late.iter().any(|p| late_refund_issued(b, p)) {
        due.push(Effect::SendEmail {
            email: EmailKind::LatePaymentRefund,
        });
    }

    for record in b.refunds.values() {
        if let (Some(cause), Some(pi), RefundStatus::Requested) =
            (&record.cause, &record.payment_intent, record.status)
        {
            if cause.kind() == CauseKind::CoachRequest {
                due.push(Effect::IssueRefund {
                    cause: cause.clone(),
                    payment_intent: pi.clone(),
                    amount: record.amount,
                    automatic: false,
                });
            }
        }
    }

    due.into_iter().map(|e| (e.key(), e)).collect()
}

/// A reminder goes out a quarter of the payment window before the deadline (at most
/// 6 hours before it), so a client who booked long ahead is not nagged at once.
fn reminder_time(booked_at: OffsetDateTime, deadline: OffsetDateTime) -> OffsetDateTime {
    let window: time::Duration = deadline - booked_at;
    let lead: time::Duration = (window / 4_i32).min(time::Duration::hours(6));
    deadline - lead.max(time::Duration::ZERO)
}

/// The refund a cancellation calls for, if any: only of money paid before it (the amount
/// is [`cancellation_quote`]'s, the same the cancel dialog shows). Automatic unless the
/// coach cancelled in the app.
fn cancellation_refund(b: &Booking, cancellation: &CancellationFact) -> Option<Effect> {
    let quote = cancellation_quote(b, cancellation.refund, cancellation.at)?;
    (quote.amount.minor > 0).then(|| Effect::IssueRefund {
        cause: RefundCause::cancellation(),
        payment_intent: quote.payment_intent,
        amount: quote.amount,
        automatic: cancellation.canceler != Canceler::CoachInApp,
    })
}

/// The effects due now that were not due before; records refunds this app will ask for.
fn new_effects(b: &mut Booking, before: &BTreeMap<EffectKey, Effect>) -> Vec<Effect> {
    let after = due_effects(b);
    let mut fresh = Vec::new();
    for (key, effect) in after {
        if before.contains_key(&key) {
            continue;
        }
        if let Effect::IssueRefund {
            cause,
            payment_intent,
            amount,
            ..
        } = &effect
        {
            b.refunds.entry(cause.to_string()).or_insert(RefundRecord {
                cause: Some(cause.clone()),
                refund_id: None,
                payment_intent: Some(payment_intent.clone()),
                amount: *amount,
                status: RefundStatus::Requested,
                failure_reason: None,
            });
        }
        fresh.push(effect);
    }
    // Recording a requested refund can move the state (to refund pending).
    derive(b);
    fresh
}

fn summarise(event: &BookingEvent) -> String {
    match event {
        BookingEvent::InviteeCreated {
            rescheduled_from: Some(_),
            ..
        } => "The client rebooked this session in Calendly (a reschedule).".into(),
        BookingEvent::InviteeCreated { schedule, .. } => format!(
            "{} booked in Calendly.",
            schedule.client_name.as_deref().unwrap_or("A client")
        ),
        BookingEvent::InviteeCanceled {
            rescheduled_to: Some(_),
            ..
        } => "The client moved this session to another time.".into(),
        BookingEvent::InviteeCanceled {
            canceler, reason, ..
        } => format!(
            "Cancelled in Calendly by the {}{}.",
            match canceler {
                Canceler::Client => "client",
                _ => "host",
            },
            reason
                .as_deref()
                .map(|r| format!(": \"{r}\""))
                .unwrap_or_default()
        ),
        BookingEvent::InviteeNoShow { .. } => "Marked as no-show in Calendly.".into(),
        BookingEvent::InviteeNoShowRemoved { .. } => {
            "The no-show mark was taken back in Calendly.".into()
        }
        BookingEvent::DisputeClosed { outcome, .. } => match outcome {
            DisputeOutcome::Won => "The dispute was closed in the coach's favour.".into(),
            DisputeOutcome::Lost => {
                "The dispute was lost: the bank gave the money back to the client.".into()
            }
            DisputeOutcome::WarningClosed => "The bank's inquiry closed without a dispute.".into(),
        },
        BookingEvent::DisputeFunds {
            amount, withdrawn, ..
        } => {
            if *withdrawn {
                format!("Stripe withdrew the disputed {amount} from the balance.")
            } else {
                format!("Stripe put the disputed {amount} back into the balance.")
            }
        }
        BookingEvent::PaymentReported { payment } => format!(
            "Stripe reports {} {} for checkout {}.",
            match payment.status {
                PaymentStatus::Succeeded => "a payment of",
                PaymentStatus::Pending => "a pending payment of",
                PaymentStatus::Failed => "a failed payment of",
                PaymentStatus::Expired => "an expired checkout of",
            },
            payment.amount,
            payment.checkout_session
        ),
        BookingEvent::PaymentCarried { payment, .. } => format!(
            "The payment of {} was carried over from the rescheduled booking.",
            payment.amount
        ),
        BookingEvent::ChargeRefunded {
            amount_refunded, ..
        } => format!("Stripe reports {amount_refunded} refunded on the charge in all."),
        BookingEvent::RefundReported { refund } => {
            format!(
                "Stripe reports refund {} of {} as {:?}.",
                refund.refund_id, refund.amount, refund.status
            )
        }
        BookingEvent::DisputeOpened { amount, reason, .. } => {
            format!("The client's bank opened a dispute over {amount} ({reason}).")
        }
        BookingEvent::RescheduledTo { successor } => {
            format!("Rescheduled; the new booking is invitee {successor}.")
        }
        BookingEvent::CoachCancelled { refund, reason, .. } => format!(
            "The coach cancelled (\"{reason}\") with {}.",
            match refund {
                RefundChoice::Policy => "the policy's refund".to_owned(),
                RefundChoice::Full => "a full refund".to_owned(),
                RefundChoice::Amount { amount } => format!("a refund of {amount}"),
                RefundChoice::None => "no refund".to_owned(),
            }
        ),
        BookingEvent::CoachRefunded { amount, reason, .. } => {
            format!("The coach refunded {amount} (\"{reason}\").")
        }
        BookingEvent::CoachMarkedNoShow { .. } => "The coach marked the client as no-show.".into(),
        BookingEvent::CoachCorrected { state, reason } => format!(
            "The coach set the state to {} by hand: \"{reason}\".",
            state.as_str()
        ),
        BookingEvent::CoachDismissed { code } => format!("The coach dealt with \"{code}\"."),
        BookingEvent::CoachResentPaymentLink { .. } => {
            "The coach sent the payment link to the client again.".into()
        }
        BookingEvent::TimerFired { timer, .. } => match timer {
            TimerKind::PaymentReminder => "The payment reminder time came.".into(),
            TimerKind::PaymentDeadline => "The payment deadline passed.".into(),
            TimerKind::SessionEnded => "The session's time is over.".into(),
        },
        BookingEvent::RefundIssued {
            cause, refund_id, ..
        } => format!("Stripe accepted the {cause} refund ({refund_id})."),
        BookingEvent::RefundNotNeeded { cause, reason } => {
            format!("The {cause} refund was not sent: {reason}")
        }
        BookingEvent::EffectFailed {
            effect_key,
            message,
        } => format!("{effect_key} failed: {message}"),
        BookingEvent::EffectSucceeded { effect_key } => format!("{effect_key} went through."),
        BookingEvent::EmailSkipped { effect_key, reason } => {
            format!("{effect_key} was not sent: {reason}")
        }
    }
}

#[cfg(test)]
mod tests;
