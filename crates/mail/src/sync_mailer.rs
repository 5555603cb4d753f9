//! The SMTP mailer plugged into the sync crate's effect executor
//! (`coachdesk_sync::Outlets { mailer, .. }`).
//!
//! The executor hands over `(booking id, EmailKind, the outbox row's idempotency key)`
//! (`send_for_row`; plain `send` rebuilds the key the way the store derives it,
//! `coachdesk-{booking}-{effect key}`), this adapter reads the clock (the trait passes no
//! `now`), and runs [`Dispatcher::deliver`] off the async
//! worker (SMTP is blocking). The outcome maps onto the executor's vocabulary: sent; not
//! sent with a note (a drop the books justify, kept on the outbox row); a transient error
//! (retried with the executor's backoff); a permanent one (the booking is flagged with the
//! server's answer).

use coachdesk_domain::booking::{BookingId, EmailKind};
use coachdesk_providers::ProviderError;
use coachdesk_sync::{MailOutcome, Mailer};
use time::OffsetDateTime;

use crate::dispatch::{Delivery, Dispatcher, EmailJob};
use crate::error::MailError;

/// What the executor sees as the failing provider.
const PROVIDER: &str = "The SMTP server";

/// The executor's mailer: decides from the booking at send time, sends over SMTP.
pub struct SmtpMailer {
    dispatcher: Dispatcher,
}

impl SmtpMailer {
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self { dispatcher }
    }
}

impl SmtpMailer {
    fn run(&self, job: &EmailJob) -> Result<MailOutcome, ProviderError> {
        let deliver = || self.dispatcher.deliver(job);
        // The executor calls this from async code: keep the SMTP round trips off the
        // runtime's cooperative scheduling where the runtime allows it.
        let result = match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(deliver)
            }
            _ => deliver(),
        };
        outcome(result)
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, booking_id: &BookingId, email: EmailKind) -> Result<MailOutcome, ProviderError> {
        self.run(&EmailJob::for_effect(
            booking_id,
            email,
            OffsetDateTime::now_utc(),
        ))
    }

    /// The row's own key makes the Message-ID: a resend the coach asked for is a new
    /// message, a retry of the same row is the same one.
    fn send_for_row(
        &self,
        booking_id: &BookingId,
        email: EmailKind,
        idempotency_key: &str,
    ) -> Result<MailOutcome, ProviderError> {
        self.run(&EmailJob {
            booking_id: booking_id.clone(),
            kind: email,
            idempotency_key: idempotency_key.to_owned(),
            now: OffsetDateTime::now_utc(),
        })
    }
}

/// Maps a delivery onto the executor's outcome (pure).
pub fn outcome(result: Result<Delivery, MailError>) -> Result<MailOutcome, ProviderError> {
    match result {
        Ok(Delivery::Sent { .. }) => Ok(MailOutcome::Sent),
        Ok(Delivery::Dropped { reason, note }) if !reason.needs_attention() => {
            Ok(MailOutcome::NotSent(note))
        }
        Ok(Delivery::Dropped { note, .. }) => Err(ProviderError::Permanent {
            provider: "Coachdesk",
            status: 0,
            message: note,
        }),
        Err(MailError::NotConfigured) => Ok(MailOutcome::NotSent(
            coachdesk_sync::executor::EMAIL_NOT_CONFIGURED.to_owned(),
        )),
        Err(err) if err.is_transient() => Err(ProviderError::Transient {
            provider: PROVIDER,
            status: None,
            message: err.coach_message(),
            retry_after: None,
            source: Some(Box::new(err)),
        }),
        Err(err) => Err(ProviderError::Permanent {
            provider: PROVIDER,
            status: smtp_code(&err),
            message: err.coach_message(),
        }),
    }
}

fn smtp_code(err: &MailError) -> u16 {
    match err {
        MailError::AuthRejected { answer }
        | MailError::Rejected { answer }
        | MailError::Temporary { answer } => answer
            .get(..3)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::DropReason;
    use coachdesk_domain::booking::BookingState;

    #[test]
    fn a_drop_the_books_justify_is_done_with_a_note() {
        let reason = DropReason::AlreadyPaid {
            state: BookingState::Confirmed,
        };
        let note = reason.describe(crate::MailKind::PaymentRequest);
        assert_eq!(
            outcome(Ok(Delivery::Dropped {
                reason,
                note: note.clone()
            }))
            .unwrap(),
            MailOutcome::NotSent(note)
        );
    }

    #[test]
    fn a_drop_that_needs_the_coach_is_a_permanent_failure() {
        let err = outcome(Ok(Delivery::Dropped {
            reason: DropReason::NoClientAddress,
            note: "no address".into(),
        }))
        .unwrap_err();
        assert!(!err.is_transient());
    }

    #[test]
    fn smtp_failures_keep_their_class_and_the_servers_answer() {
        let down = outcome(Err(MailError::Unreachable {
            server: "127.0.0.1:25".into(),
            message: "Connection refused".into(),
        }))
        .unwrap_err();
        assert!(down.is_transient());
        let auth = outcome(Err(MailError::AuthRejected {
            answer: "535 5.7.8 Authentication credentials invalid".into(),
        }))
        .unwrap_err();
        assert!(!auth.is_transient());
        let text = auth.to_string();
        assert!(
            text.contains("(535)") && text.contains("user name or password"),
            "{text}"
        );
    }
}
