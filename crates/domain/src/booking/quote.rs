//! The refund a cancellation gives: one computation for the state machine (which asks
//! Stripe for it) and for the cancel dialog (which promises it), so the two never differ.

use time::OffsetDateTime;

use super::cause::RefundCause;
use super::event::RefundChoice;
use super::Booking;
use crate::money::Money;

/// What a cancellation at a given time would give back, and out of which payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundQuote {
    /// The payment the refund goes to: the first that succeeded before the cancellation
    /// (or was carried over from a rescheduled booking).
    pub payment_intent: String,
    /// What that payment brought in.
    pub paid: Money,
    /// The policy's percentage, when the choice is the policy.
    pub percent: Option<u8>,
    /// What goes back: the choice's amount, capped at what is still refundable of the
    /// payment (refunds already made for other causes count). May be zero.
    pub amount: Money,
}

/// The refund `choice` gives for a cancellation at `at` (pure). `None` when nothing was
/// paid before `at`, or the policy is asked for but the session's time or terms are not
/// known. A second payment (paid twice) and a payment made after `at` are never part of
/// it: they are flagged for the coach instead.
pub fn cancellation_quote(
    booking: &Booking,
    choice: RefundChoice,
    at: OffsetDateTime,
) -> Option<RefundQuote> {
    let primary = booking
        .succeeded_payments()
        .into_iter()
        .find(|p| p.fact.at <= at || p.carried_from.is_some())?;
    let payment_intent = primary.fact.payment_intent.clone()?;
    let paid = primary.fact.amount;
    let (wanted, percent) = match choice {
        RefundChoice::None => (Money::new(0, paid.currency), None),
        RefundChoice::Full => (paid, None),
        RefundChoice::Amount { amount } => (amount, None),
        RefundChoice::Policy => {
            let (schedule, terms) = (booking.schedule.as_ref()?, booking.terms.as_ref()?);
            (
                terms.policy.refund_for(paid, schedule.start, at),
                Some(terms.policy.percent_for(schedule.start, at)),
            )
        }
    };
    let left = paid.minor
        - booking.committed_refunds_minor(&payment_intent, Some(&RefundCause::cancellation()));
    let amount = wanted.minor.min(left).max(0);
    Some(RefundQuote {
        payment_intent,
        paid,
        percent,
        amount: Money::new(amount, paid.currency),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::booking::testkit::*;
    use crate::booking::{apply, CauseKind, Effect};

    /// What the machine asks Stripe for when the client cancels `hours` before the start.
    fn machine_refund(b: &Booking, hours: i64) -> i64 {
        apply(b, &client_cancel(INV_A, hours))
            .unwrap()
            .effects
            .iter()
            .find_map(|e| match e {
                Effect::IssueRefund { amount, cause, .. }
                    if cause.kind() == CauseKind::Cancellation =>
                {
                    Some(amount.minor)
                }
                _ => None,
            })
            .unwrap_or(0)
    }

    fn quoted(b: &Booking, hours: i64) -> i64 {
        cancellation_quote(b, RefundChoice::Policy, at(hours)).map_or(0, |q| q.amount.minor)
    }

    #[test]
    fn the_dialog_and_the_machine_get_the_same_amount_when_paid_twice() {
        let b = run(&[
            created(INV_A),
            paid(INV_A, "cs_1", "pi_1", 15000, -100),
            paid(INV_A, "cs_2", "pi_2", 15000, -90),
        ]);
        for hours in [-72, -30, -2] {
            assert_eq!(quoted(&b, hours), machine_refund(&b, hours), "{hours} h");
        }
        let quote = cancellation_quote(&b, RefundChoice::Policy, at(-30)).unwrap();
        assert_eq!(quote.payment_intent, "pi_1", "the first payment only");
        assert_eq!(quote.percent, Some(50));
        assert_eq!(quote.amount, eur(7500));
    }

    #[test]
    fn money_paid_after_the_cancellation_is_not_part_of_its_refund() {
        let b = run(&[created(INV_A), paid(INV_A, "cs_1", "pi_1", 15000, -10)]);
        assert_eq!(cancellation_quote(&b, RefundChoice::Full, at(-20)), None);
        assert_eq!(machine_refund(&b, -20), 0);
    }

    #[test]
    fn a_quote_is_capped_at_what_other_refunds_left() {
        let b = run(&[
            created(INV_A),
            paid(INV_A, "cs_1", "pi_1", 15000, -100),
            coach_refund("a1", 10000),
        ]);
        assert_eq!(quoted(&b, -72), 5000);
        assert_eq!(machine_refund(&b, -72), 5000);
        let none = cancellation_quote(&b, RefundChoice::None, at(-72)).unwrap();
        assert_eq!(none.amount, eur(0));
    }
}
