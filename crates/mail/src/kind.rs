//! The emails a client can receive.
//!
//! The domain's [`EmailKind`], with what the template editor needs to know about each.

use coachdesk_domain::booking::EmailKind;
use serde::{Deserialize, Serialize};

/// One kind of client email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// Right after booking: please pay, with the payment link.
    PaymentRequest,
    /// Before the payment deadline, still unpaid: a recovery link.
    PaymentReminder,
    /// Paid: the session is confirmed.
    Confirmation,
    /// Cancelled, with the refund amount.
    Cancellation,
    /// Moved to a new time.
    Reschedule,
    /// A payment came after the booking expired or was cancelled: refunded in full.
    LatePaymentRefund,
}

impl MailKind {
    /// Every kind, in the order the template editor lists them.
    pub const ALL: [MailKind; 6] = [
        Self::PaymentRequest,
        Self::PaymentReminder,
        Self::Confirmation,
        Self::Cancellation,
        Self::Reschedule,
        Self::LatePaymentRefund,
    ];

    /// The stable name, used in setting keys (`mail.template.{name}`) and by the UI.
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

    /// The inverse of [`MailKind::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// What the coach sees in the template list.
    pub fn label(self) -> &'static str {
        match self {
            Self::PaymentRequest => "Payment request",
            Self::PaymentReminder => "Payment reminder",
            Self::Confirmation => "Booking confirmed",
            Self::Cancellation => "Cancellation notice",
            Self::Reschedule => "Reschedule confirmation",
            Self::LatePaymentRefund => "Late payment refunded",
        }
    }
}

impl From<EmailKind> for MailKind {
    fn from(kind: EmailKind) -> Self {
        match kind {
            EmailKind::PaymentRequest => Self::PaymentRequest,
            EmailKind::PaymentReminder => Self::PaymentReminder,
            EmailKind::Confirmation => Self::Confirmation,
            EmailKind::Cancellation => Self::Cancellation,
            EmailKind::Reschedule => Self::Reschedule,
            EmailKind::LatePaymentRefund => Self::LatePaymentRefund,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in MailKind::ALL {
            assert_eq!(MailKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(MailKind::parse("nope"), None);
    }
}
