//! The emails a client can receive: the domain's [`EmailKind`] (its stable names included),
//! with what the template editor shows of each.

pub use coachdesk_domain::booking::EmailKind as MailKind;

/// What the coach sees in the template list.
pub fn label(kind: MailKind) -> &'static str {
    match kind {
        MailKind::PaymentRequest => "Payment request",
        MailKind::PaymentReminder => "Payment reminder",
        MailKind::Confirmation => "Booking confirmed",
        MailKind::Cancellation => "Cancellation notice",
        MailKind::Reschedule => "Reschedule confirmation",
        MailKind::LatePaymentRefund => "Late payment refunded",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_the_serde_names() {
        for kind in MailKind::ALL {
            assert_eq!(MailKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_string(&kind).ok(),
                Some(format!("\"{}\"", kind.as_str()))
            );
            assert!(!label(kind).is_empty());
        }
        assert_eq!(MailKind::parse("nope"), None);
    }
}
