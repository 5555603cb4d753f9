//! Why a refund is made. A booking makes at most one refund per cause, so the cause keys
//! its refund records, its refund effect (`refund:{cause}`, also Stripe's idempotency
//! key) and the refund's metadata at Stripe, where the executor looks before any retry.
//! Its text is stored and sent: the constructors below are its only spellings.

use std::fmt;

use serde::{Deserialize, Serialize};

const CANCELLATION: &str = "cancellation";
const COACH_PREFIX: &str = "coach:";
const LATE_PAYMENT_PREFIX: &str = "late-payment:";

/// Why a refund is made (see the module's doc).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefundCause(String);

/// What kind of decision a refund came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseKind {
    /// The refund a cancellation calls for by policy (one per booking).
    Cancellation,
    /// Asked for by the coach in the app (one per click).
    CoachRequest,
    /// A payment that came after the booking expired or was cancelled, given back whole
    /// (one per payment).
    LatePayment,
    /// A cause this version does not make (read back from an older row or Stripe).
    Other,
}

impl RefundCause {
    /// The refund a cancellation calls for.
    pub fn cancellation() -> RefundCause {
        RefundCause(CANCELLATION.to_owned())
    }

    /// A refund the coach asked for; `action_id` names the click.
    pub fn coach_request(action_id: &str) -> RefundCause {
        RefundCause(format!("{COACH_PREFIX}{action_id}"))
    }

    /// A late payment's full refund; one per Checkout Session.
    pub fn late_payment(checkout_session: &str) -> RefundCause {
        RefundCause(format!("{LATE_PAYMENT_PREFIX}{checkout_session}"))
    }

    /// A cause as stored or read back from a refund's metadata.
    pub fn from_stored(text: impl Into<String>) -> RefundCause {
        RefundCause(text.into())
    }

    pub fn kind(&self) -> CauseKind {
        if self.0 == CANCELLATION {
            CauseKind::Cancellation
        } else if self.0.starts_with(COACH_PREFIX) {
            CauseKind::CoachRequest
        } else if self.0.starts_with(LATE_PAYMENT_PREFIX) {
            CauseKind::LatePayment
        } else {
            CauseKind::Other
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RefundCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_keep_their_stored_spelling_and_kind() {
        let causes = [
            RefundCause::cancellation(),
            RefundCause::coach_request("a-1"),
            RefundCause::late_payment("cs_9"),
            RefundCause::from_stored("dispute-fee"),
        ];
        let texts: Vec<&str> = causes.iter().map(RefundCause::as_str).collect();
        assert_eq!(
            texts,
            [
                "cancellation",
                "coach:a-1",
                "late-payment:cs_9",
                "dispute-fee"
            ]
        );
        let kinds: Vec<CauseKind> = causes.iter().map(RefundCause::kind).collect();
        assert_eq!(
            kinds,
            [
                CauseKind::Cancellation,
                CauseKind::CoachRequest,
                CauseKind::LatePayment,
                CauseKind::Other
            ]
        );
        assert_eq!(
            serde_json::to_string(&causes[1]).expect("json"),
            "\"coach:a-1\""
        );
    }
}
