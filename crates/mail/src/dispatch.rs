//! One email effect, end to end: read the booking and the settings, decide, send.
//!
//! [`Dispatcher::deliver`] is what an executor calls for an outbox row that asks for an
//! email. It reads the booking *at that moment* (not as it was when the email was queued),
//! lets [`decide`] drop what the books contradict, and sends the rest with a Message-ID
//! made from the row's idempotency key. It never writes: the caller settles the row.
//!
//! [`run_due_emails`] is a small outbox runner for the email rows alone, used by the tests
//! and by tools; the app runs emails through the sync crate's executor instead.
//!
//! # Exactly once, and the window that remains
//! SMTP has no idempotency key. A row is marked done in the step right after the server
//! accepted the message; a crash between the server's `250` and that write (a few
//! milliseconds) makes the restarted runner send the message again. The resend carries the
//! same Message-ID and content (only the Date is the new attempt's), so it is recognisably the same email and clients that
//! deduplicate by Message-ID show it once. No other crash point can send twice: before the
//! `250` nothing was delivered, after the write the row is no longer due.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coachdesk_domain::booking::{BookingId, EmailKind};
use coachdesk_domain::{Booking, BookingEvent, Effect};
use coachdesk_store::{lock, Store, StoreError};
use time::OffsetDateTime;

use crate::decide::{decide, Decision, DropReason, MailContext, SessionInfo};
use crate::error::MailError;
use crate::kind::MailKind;
use crate::settings::{load_settings, load_template, MailSettings};
use crate::smtp::{self, message_id, PasswordSource};

/// One email to send: which booking, which kind, the outbox row's key, and the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailJob {
    pub booking_id: BookingId,
    pub kind: MailKind,
    /// The outbox row's idempotency key (the Message-ID is made from it).
    pub idempotency_key: String,
    pub now: OffsetDateTime,
}

impl EmailJob {
    /// The job of the domain's `SendEmail` effect, with the idempotency key the store
    /// gives its outbox row. Prefer the row's own key where the caller has it.
    pub fn for_effect(booking_id: &BookingId, email: EmailKind, now: OffsetDateTime) -> Self {
        Self {
            booking_id: booking_id.clone(),
            kind: email,
            idempotency_key: Effect::SendEmail { email }
                .key()
                .idempotency_key(booking_id),
            now,
        }
    }
}

/// How an email job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The server accepted it.
    Sent {
        message_id: String,
        server_answer: String,
    },
    /// Not sent, on purpose; `note` is the sentence for the outbox row and the audit.
    Dropped { reason: DropReason, note: String },
}

impl Delivery {
    /// The note to keep on the outbox row.
    pub fn note(&self) -> String {
        match self {
            Self::Sent {
                message_id,
                server_answer,
            } => format!("sent as {message_id} (server: {server_answer})"),
            Self::Dropped { note, .. } => note.clone(),
        }
    }
}

/// Sends email jobs for one store.
pub struct Dispatcher {
    store: Arc<Mutex<Store>>,
    passwords: Arc<dyn PasswordSource>,
}

impl Dispatcher {
    pub fn new(store: Arc<Mutex<Store>>, passwords: Arc<dyn PasswordSource>) -> Self {
        Self { store, passwords }
    }

    /// Decides and, if the booking still calls for it, sends one email. Blocking (SMTP);
    /// the store is locked only to read, never during the network call.
    pub fn deliver(&self, job: &EmailJob) -> Result<Delivery, MailError> {
        let (settings, booking, ctx) = {
            let store = lock(&self.store);
            let settings = load_settings(&store)?.ok_or(MailError::NotConfigured)?;
            let booking = store
                .booking(&job.booking_id)?
                .ok_or_else(|| StoreError::NotFound {
                    what: "booking",
                    id: job.booking_id.to_string(),
                })?;
            let ctx = context(&store, &settings, &booking, job.kind)?;
            (settings, booking, ctx)
        };
        match decide(job.kind, &booking, &ctx, job.now) {
            Decision::Drop(reason) => {
                let note = reason.describe(job.kind);
                tracing::info!(booking = %job.booking_id, kind = job.kind.as_str(), %note, "email dropped");
                Ok(Delivery::Dropped { reason, note })
            }
            Decision::Send(message) => {
                let id = message_id(&job.idempotency_key, &settings.coach.from_address);
                let receipt = smtp::send(
                    &settings.smtp,
                    self.passwords.as_ref(),
                    &message,
                    &id,
                    job.now,
                )?;
                tracing::info!(booking = %job.booking_id, kind = job.kind.as_str(), message_id = %receipt.message_id, "email sent");
                Ok(Delivery::Sent {
                    message_id: receipt.message_id,
                    server_answer: receipt.server_answer,
                })
            }
        }
    }
}

/// The context of an email about `booking`: the coach, the template, the links.
pub fn context(
    store: &Store,
    settings: &MailSettings,
    booking: &Booking,
    kind: MailKind,
) -> Result<MailContext, MailError> {
    let session = match &booking.terms {
        Some(terms) => match store.session_type(&terms.session_type_id) {
            Ok(view) => Some(SessionInfo {
                name: view.name,
                slug: view.slug,
            }),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    Ok(MailContext {
        coach: settings.coach.clone(),
        template: load_template(store, kind)?,
        relay_url: settings.relay_url.clone(),
        session,
    })
}

/// How [`run_due_emails`] retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    /// Tries before a transient failure is given up and the booking flagged.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(30),
            max: Duration::from_secs(30 * 60),
            max_attempts: 12,
        }
    }
}

impl RetryPolicy {
    /// The delay before try `attempts + 1`: doubling, capped.
    pub fn delay(&self, attempts: u32) -> Duration {
        self.initial
            .saturating_mul(2u32.saturating_pow(attempts.min(30)))
            .min(self.max)
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailRunReport {
    pub sent: u32,
    pub dropped: u32,
    pub retried: u32,
    pub failed: u32,
}

/// Runs the email rows of the outbox due by `now`, at most `limit` of them, and settles
/// each: sent or dropped rows are marked done with a note (the audit of a drop), a
/// transient failure is retried with backoff, a permanent one (or a drop that needs the
/// coach) fails the row and flags the booking with the server's answer.
pub fn run_due_emails(
    store: &Arc<Mutex<Store>>,
    dispatcher: &Dispatcher,
    now: OffsetDateTime,
    policy: &RetryPolicy,
    limit: u32,
) -> Result<EmailRunReport, MailError> {
    let mut report = EmailRunReport::default();
    let rows = lock(store).due_effects(now, 1000)?;
    let emails = rows.into_iter().filter_map(|row| match row.effect {
        Effect::SendEmail { email } | Effect::ResendEmail { email, .. } => Some((
            row.id,
            row.booking_id,
            row.effect_key,
            row.idempotency_key,
            row.attempts,
            email,
        )),
        _ => None,
    });
    for (id, booking_id, effect_key, idempotency_key, attempts, email) in
        emails.take(limit as usize)
    {
        let job = EmailJob {
            booking_id: booking_id.clone(),
            kind: email,
            idempotency_key,
            now,
        };
        let failure = match dispatcher.deliver(&job) {
            Ok(delivery @ Delivery::Sent { .. }) => {
                lock(store).complete_effect_with_note(id, now, &delivery.note())?;
                report.sent += 1;
                None
            }
            Ok(Delivery::Dropped { reason, note }) if !reason.needs_attention() => {
                lock(store).complete_effect_with_note(id, now, &note)?;
                report.dropped += 1;
                None
            }
            Ok(Delivery::Dropped { note, .. }) => Some(note),
            Err(err) if err.is_transient() && attempts + 1 < policy.max_attempts => {
                let at = now + policy.delay(attempts);
                tracing::warn!(booking = %booking_id, error = %err, retry_at = %at, "email will be retried");
                lock(store).retry_effect(id, at, &err.coach_message())?;
                report.retried += 1;
                None
            }
            Err(err) if err.is_transient() => Some(format!(
                "gave up after {} tries: {}",
                attempts + 1,
                err.coach_message()
            )),
            Err(err) => Some(err.coach_message()),
        };
        if let Some(message) = failure {
            let mut store = lock(store);
            let event = BookingEvent::EffectFailed {
                effect_key: effect_key.clone(),
                message: message.clone(),
            };
            match store.apply_internal(
                &booking_id,
                &format!("failed:{id}:{effect_key}"),
                &event,
                now,
            ) {
                Ok(_) | Err(StoreError::Rejected(_)) => {}
                Err(e) => return Err(e.into()),
            }
            store.fail_effect(id, &message)?;
            report.failed += 1;
        }
    }
    Ok(report)
}

/// The template editor's preview against a real booking: `template` rendered with the
/// booking's values and the saved settings, whatever the booking's state (nothing is
/// decided or sent).
pub fn preview_booking(
    store: &Store,
    kind: MailKind,
    template: &crate::template::Template,
    booking_id: &BookingId,
) -> Result<crate::template::Rendered, MailError> {
    let settings = load_settings(store)?.ok_or(MailError::NotConfigured)?;
    let booking = store
        .booking(booking_id)?
        .ok_or_else(|| StoreError::NotFound {
            what: "booking",
            id: booking_id.to_string(),
        })?;
    let ctx = context(store, &settings, &booking, kind)?;
    Ok(crate::decide::preview(kind, template, &booking, &ctx))
}
