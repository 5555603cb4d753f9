//! The effect executor: runs the outbox's due effects against the providers and feeds each
//! outcome back to the booking as an event.
//!
//! Split as the rest of the crate: [`plan`] (pure) says what a row asks for, [`settle`]
//! (pure) turns a call's result into what to write, and [`Executor::run_once`] does the I/O.
//!
//! Safe to kill at any instant: a row stays `pending` until its outcome is written, so a
//! restart runs it again; the Stripe call carries the row's idempotency key (Stripe replays
//! the first answer instead of refunding twice), Calendly's cancel of a cancelled event is
//! treated as done, and outcome events are deduplicated by key in the store.
//!
//! Stripe keeps an idempotency key for 24 hours only. A refund row queued longer ago than
//! [`KEY_TRUSTED_FOR`] (a laptop that slept through its retry), and a refund the coach
//! released from hold, is therefore looked up first (`GET /v1/refunds?payment_intent=`,
//! matched by the booking and cause in its metadata, see [`check_refund`]): a refund that
//! exists settles the row, and a new one is capped at what is still refundable then.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coachdesk_domain::booking::{
    BookingId, CauseKind, EmailKind, Notice, RefundCause, RefundStatus,
};
use coachdesk_domain::provider::uuid_of;
use coachdesk_domain::{BookingEvent, Effect, Money};
use coachdesk_providers::{CheckoutRequest, ProviderError, RefundRequest, RefundSeen};
use coachdesk_store::{Features, OutboxRow, Store};
use time::OffsetDateTime;

use crate::backoff::Backoff;
use crate::{lock, Providers, SyncError};

/// What the coach is told on the desktop (the shell emits it to the UI).
pub trait Notifier: Send + Sync + 'static {
    fn notify(&self, booking_id: &BookingId, notice: Notice);
}

/// Logs notices; the default until the shell plugs in its own.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogNotifier;

impl Notifier for LogNotifier {
    fn notify(&self, booking_id: &BookingId, notice: Notice) {
        tracing::info!(
            booking = booking_id.as_str(),
            ?notice,
            "notice for the coach"
        );
    }
}

/// How an email effect ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    Sent,
    /// Not sent, and not to be retried; the note is kept on the outbox row.
    NotSent(String),
}

/// Sends the client's emails. The emails issue plugs an SMTP mailer in here.
pub trait Mailer: Send + Sync + 'static {
    fn send(&self, booking_id: &BookingId, email: EmailKind) -> Result<MailOutcome, ProviderError>;

    /// Sends the email of one outbox row. `idempotency_key` is the row's key, which an SMTP
    /// mailer makes the Message-ID of (so a coach's resend is a message of its own).
    /// Defaults to [`Mailer::send`].
    fn send_for_row(
        &self,
        booking_id: &BookingId,
        email: EmailKind,
        idempotency_key: &str,
    ) -> Result<MailOutcome, ProviderError> {
        let _ = idempotency_key;
        self.send(booking_id, email)
    }
}

/// The mailer until SMTP is set up: every email is recorded as not sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnconfiguredMailer;

/// The note kept on an email effect that was not sent.
pub const EMAIL_NOT_CONFIGURED: &str = "email sending not configured";

impl Mailer for UnconfiguredMailer {
    fn send(
        &self,
        _booking_id: &BookingId,
        _email: EmailKind,
    ) -> Result<MailOutcome, ProviderError> {
        Ok(MailOutcome::NotSent(EMAIL_NOT_CONFIGURED.to_owned()))
    }
}

/// What one outbox row asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Refund {
        cause: RefundCause,
        payment_intent: String,
        amount: Money,
        /// Decided by a rule, not by the coach: held while automatic refunds are off.
        automatic: bool,
    },
    CancelCalendlyEvent {
        event_uuid: String,
        reason: String,
    },
    CreateCheckoutSession {
        amount: Money,
    },
    FireTimer {
        event: Box<BookingEvent>,
    },
    Notify(Notice),
    Email(EmailKind),
    /// Nothing to do (a `Forward` never reaches the outbox; if one did, it is done).
    Nothing,
}

/// Reads a row (pure).
pub fn plan(row: &OutboxRow) -> Action {
    match &row.effect {
        Effect::IssueRefund {
            cause,
            payment_intent,
            amount,
            automatic,
        } => Action::Refund {
            cause: cause.clone(),
            payment_intent: payment_intent.clone(),
            amount: *amount,
            automatic: *automatic,
        },
        Effect::CancelCalendlyEvent { event_uri, reason } => Action::CancelCalendlyEvent {
            event_uuid: uuid_of(event_uri).to_owned(),
            reason: reason.clone(),
        },
        Effect::CreateCheckoutSession { amount } => {
            Action::CreateCheckoutSession { amount: *amount }
        }
        Effect::ScheduleTimer { timer, at } => Action::FireTimer {
            event: Box::new(BookingEvent::TimerFired {
                timer: *timer,
                at: *at,
            }),
        },
        Effect::Notify { notice } => Action::Notify(*notice),
        Effect::SendEmail { email } | Effect::ResendEmail { email, .. } => Action::Email(*email),
        Effect::Forward { .. } => Action::Nothing,
    }
}

/// Whether the coach's feature toggles let a row run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Run,
    /// Automatic refunds are off: the refund waits for the coach's approval.
    Hold(String),
    /// Payments are off: the call is not made and the row is settled with this note.
    Skip(String),
    /// Test mode and Calendly cancellations are off there: the call is not made, the row
    /// is settled, and the booking's timeline says what would have been cancelled.
    NotInTestMode(String),
}

/// The timeline event kind of a Calendly cancellation not sent in test mode.
pub const WOULD_CANCEL_IN_CALENDLY: &str = "would_cancel_in_calendly";
/// The note on a refund held because automatic refunds are off.
pub const REFUND_HELD_NOTE: &str =
    "Automatic refunds are off in Settings: this refund waits for the coach's approval.";
/// The note on a checkout session not created because payments are off.
pub const PAYMENTS_OFF_NOTE: &str =
    "Payments are off in Settings: no checkout session was created.";

/// The note on a late payment's refund held because refunds of late payments are off.
pub const LATE_REFUND_HELD_NOTE: &str =
    "Refunds of late payments are off in Settings: this refund waits for the coach's approval.";

/// The timeline's words for a Calendly cancellation not sent in test mode.
pub fn would_cancel_note(reason: &str) -> String {
    format!("Test mode: would cancel in Calendly ({reason}); not sent, since Calendly has no test mode. Turn on \"Cancel in Calendly in test mode\" in Settings to send it.")
}

/// Applies the toggles to a row (pure). Whether a refund is automatic is the effect's own
/// flag (the machine knows who asked for it). `approved`: the coach released this row
/// from hold. `test_mode`: the app runs on Stripe's test mode (Calendly has none).
pub fn gate(action: &Action, approved: bool, features: Features, test_mode: bool) -> Gate {
    match action {
        Action::Refund { cause, .. }
            if cause.kind() == CauseKind::LatePayment
                && !features.late_payment_refunds
                && !approved =>
        {
            Gate::Hold(LATE_REFUND_HELD_NOTE.to_owned())
        }
        Action::Refund {
            automatic: true, ..
        } if !features.automatic_refunds && !approved => Gate::Hold(REFUND_HELD_NOTE.to_owned()),
        Action::CancelCalendlyEvent { reason, .. }
            if test_mode && !features.test_mode_calendly_cancels =>
        {
            Gate::NotInTestMode(would_cancel_note(reason))
        }
        Action::CreateCheckoutSession { .. } if !features.payments => {
            Gate::Skip(PAYMENTS_OFF_NOTE.to_owned())
        }
        _ => Gate::Run,
    }
}

/// How long after a refund row was queued Stripe is trusted to still know its
/// `Idempotency-Key` (Stripe keeps keys at least 24 hours; the margin covers a computer
/// clock that is off). Later, Stripe is asked for the payment's refunds first.
pub const KEY_TRUSTED_FOR: time::Duration = time::Duration::hours(12);

/// Whether a refund row must look at Stripe's refunds before calling (pure): it was
/// released from hold (its amount was decided long ago), or it was queued so long ago
/// that Stripe may have forgotten its idempotency key.
pub fn must_look_first(row: &OutboxRow, now: OffsetDateTime) -> bool {
    row.approved || now - row.created_at >= KEY_TRUSTED_FOR
}

/// What Stripe's list of a payment's refunds says about one refund to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundCheck {
    /// Stripe has it already (matched by booking and cause in its metadata).
    Exists(RefundSeen),
    /// Not made yet: ask for `amount` (capped at what is left) with this idempotency key
    /// (the row's, or a new one when the amount changed, since Stripe refuses a key reused
    /// with other parameters).
    Send {
        amount: Money,
        idempotency_key: String,
    },
    /// Nothing of the payment is left to refund.
    NothingLeft { reason: String },
}

/// Matches a refund to make against the payment's refunds at Stripe (pure). `paid` is
/// what the payment brought in, if the booking knows it.
pub fn check_refund(
    row: &OutboxRow,
    cause: &RefundCause,
    wanted: Money,
    paid: Option<Money>,
    seen: &[RefundSeen],
) -> RefundCheck {
    let ours = seen.iter().find(|r| {
        r.cause.as_deref() == Some(cause.as_str())
            && r.booking_id.as_deref() == Some(row.booking_id.as_str())
    });
    if let Some(refund) = ours {
        return RefundCheck::Exists(refund.clone());
    }
    let Some(paid) = paid else {
        return RefundCheck::Send {
            amount: wanted,
            idempotency_key: row.idempotency_key.clone(),
        };
    };
    let refunded: i64 = seen
        .iter()
        .filter(|r| r.commits_money())
        .map(|r| r.amount_minor)
        .sum();
    let left = (paid.minor - refunded).max(0);
    if left == 0 {
        return RefundCheck::NothingLeft {
            reason: format!(
                "Stripe shows the whole payment of {paid} refunded already, so nothing was sent."
            ),
        };
    }
    if wanted.minor <= left {
        return RefundCheck::Send {
            amount: wanted,
            idempotency_key: row.idempotency_key.clone(),
        };
    }
    RefundCheck::Send {
        amount: Money::new(left, wanted.currency),
        idempotency_key: format!("{}-capped-{left}", row.idempotency_key),
    }
}

/// What a call achieved.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutcome {
    /// Done; `feed` is the outcome event for the booking, if any.
    Done {
        feed: Option<BookingEvent>,
        note: Option<String>,
    },
}

/// What to write for a row (pure).
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    Complete {
        feed: Option<(String, BookingEvent)>,
        note: Option<String>,
    },
    Retry {
        at: OffsetDateTime,
        error: String,
    },
    Fail {
        error: String,
        feed: (String, BookingEvent),
    },
}

/// Turns a call's result into what to write (pure; `draw` is the jitter's random number).
pub fn settle(
    row: &OutboxRow,
    result: Result<CallOutcome, ProviderError>,
    now: OffsetDateTime,
    backoff: &Backoff,
    max_attempts: u32,
    draw: f64,
) -> Settlement {
    match result {
        Ok(CallOutcome::Done { feed, note }) => Settlement::Complete {
            feed: feed.map(|event| (format!("outcome:{}:{}", row.id, row.effect_key), event)),
            note,
        },
        Err(err) if err.is_transient() && row.attempts + 1 < max_attempts => {
            let delay = backoff.delay(row.attempts, err.retry_after(), draw);
            Settlement::Retry {
                at: now + delay,
                error: err.to_string(),
            }
        }
        Err(err) => {
            let message = if err.is_transient() {
                format!("gave up after {} tries: {err}", row.attempts + 1)
            } else {
                err.to_string()
            };
            Settlement::Fail {
                error: message.clone(),
                feed: (
                    format!("failed:{}:{}", row.id, row.effect_key),
                    BookingEvent::EffectFailed {
                        effect_key: row.effect_key.clone(),
                        message,
                    },
                ),
            }
        }
    }
}

/// Counts of one drain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecutorReport {
    pub done: u32,
    pub retried: u32,
    pub failed: u32,
    /// Refunds held for the coach's approval (automatic refunds off).
    pub held: u32,
}

/// Runs due effects.
pub struct Executor {
    pub(crate) store: Arc<Mutex<Store>>,
    pub(crate) providers: Arc<Providers>,
    pub(crate) notifier: Arc<dyn Notifier>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) backoff: Backoff,
    pub(crate) max_attempts: u32,
    /// Where a client lands after paying a per-booking Checkout Session.
    pub(crate) checkout_success_url: String,
    /// Running on Stripe's test mode (Calendly cancellations are then gated).
    pub(crate) test_mode: bool,
}

impl Executor {
    /// An executor over `store` with the config's retry schedule.
    pub fn new(
        store: Arc<Mutex<Store>>,
        providers: Arc<Providers>,
        outlets: crate::Outlets,
        config: &crate::SyncConfig,
    ) -> Self {
        Self {
            store,
            providers,
            notifier: outlets.notifier,
            mailer: outlets.mailer,
            backoff: config.effect_backoff,
            max_attempts: config.effect_max_attempts,
            checkout_success_url: config.checkout_success_url.clone(),
            test_mode: config.mode == crate::Mode::Test,
        }
    }

    /// Runs every effect due by `now` (in batches of 50) and reports what happened.
    pub async fn run_once(&self, now: OffsetDateTime) -> Result<ExecutorReport, SyncError> {
        let mut report = ExecutorReport::default();
        loop {
            let rows = lock(&self.store).due_effects(now, 50)?;
            if rows.is_empty() {
                return Ok(report);
            }
            for row in rows {
                let span =
                    tracing::info_span!("effect", booking = %row.booking_id, key = %row.effect_key);
                let _enter = span.enter();
                let result = match self.gate(&row)? {
                    Gate::Run => self.call(&row, now).await,
                    Gate::Hold(note) => {
                        tracing::info!(%note, "refund held for the coach");
                        lock(&self.store).hold_effect(row.id, &note, now)?;
                        report.held += 1;
                        continue;
                    }
                    Gate::Skip(note) => {
                        tracing::info!(%note, "effect skipped");
                        Ok(CallOutcome::Done {
                            feed: None,
                            note: Some(note),
                        })
                    }
                    Gate::NotInTestMode(note) => {
                        tracing::info!(%note, "effect not sent in test mode");
                        lock(&self.store).settle_effect_not_sent(
                            row.id,
                            WOULD_CANCEL_IN_CALENDLY,
                            &note,
                            now,
                        )?;
                        report.done += 1;
                        continue;
                    }
                };
                let settlement = settle(
                    &row,
                    result,
                    now,
                    &self.backoff,
                    self.max_attempts,
                    rand::random::<f64>(),
                );
                self.write(&row, &settlement, now)?;
                match settlement {
                    Settlement::Complete { .. } => report.done += 1,
                    Settlement::Retry { at, error } => {
                        tracing::warn!(%error, retry_at = %at, "effect will be retried");
                        report.retried += 1;
                    }
                    Settlement::Fail { error, .. } => {
                        tracing::warn!(%error, "effect failed for good");
                        report.failed += 1;
                    }
                }
            }
        }
    }

    /// Reads the toggles and applies [`gate`].
    fn gate(&self, row: &OutboxRow) -> Result<Gate, SyncError> {
        let action = plan(row);
        if !matches!(
            action,
            Action::Refund { .. }
                | Action::CreateCheckoutSession { .. }
                | Action::CancelCalendlyEvent { .. }
        ) {
            return Ok(Gate::Run);
        }
        let features = lock(&self.store).features()?;
        Ok(gate(&action, row.approved, features, self.test_mode))
    }

    fn write(
        &self,
        row: &OutboxRow,
        settlement: &Settlement,
        now: OffsetDateTime,
    ) -> Result<(), SyncError> {
        let mut store = lock(&self.store);
        match settlement {
            Settlement::Complete { feed, note } => {
                // Outcome first: a crash before `complete` re-runs the call (idempotent)
                // and the outcome's key absorbs the second feed.
                if let Some((key, event)) = feed {
                    feed_outcome(&mut store, &row.booking_id, key, event, now)?;
                }
                match note {
                    Some(note) => store.complete_effect_with_note(row.id, now, note)?,
                    None => store.complete_effect(row.id, now)?,
                }
            }
            Settlement::Retry { at, error } => store.retry_effect(row.id, *at, error)?,
            Settlement::Fail { error, feed } => {
                feed_outcome(&mut store, &row.booking_id, &feed.0, &feed.1, now)?;
                store.fail_effect(row.id, error)?;
            }
        }
        Ok(())
    }

    async fn call(
        &self,
        row: &OutboxRow,
        now: OffsetDateTime,
    ) -> Result<CallOutcome, ProviderError> {
        let done = |feed: Option<BookingEvent>| Ok(CallOutcome::Done { feed, note: None });
        match plan(row) {
            Action::Refund {
                cause,
                payment_intent,
                amount,
                ..
            } => {
                let stripe = self.providers.stripe()?;
                let (amount, key) = if must_look_first(row, now) {
                    let seen = stripe.list_refunds(&payment_intent).await?;
                    let paid = self.paid(row, &payment_intent)?;
                    match check_refund(row, &cause, amount, paid, &seen) {
                        RefundCheck::Exists(refund) => {
                            tracing::info!(refund = %refund.id, "the refund exists at Stripe already");
                            let found = Money::new(refund.amount_minor, amount.currency);
                            return done(Some(BookingEvent::RefundIssued {
                                cause,
                                refund_id: refund.id,
                                status: refund_status(&refund.status),
                                amount: (found != amount).then_some(found),
                            }));
                        }
                        RefundCheck::NothingLeft { reason } => {
                            return Ok(CallOutcome::Done {
                                feed: Some(BookingEvent::RefundNotNeeded {
                                    cause,
                                    reason: reason.clone(),
                                }),
                                note: Some(reason),
                            });
                        }
                        RefundCheck::Send {
                            amount,
                            idempotency_key,
                        } => (amount, idempotency_key),
                    }
                } else {
                    (amount, row.idempotency_key.clone())
                };
                let refund = stripe
                    .refund(
                        &RefundRequest {
                            payment_intent,
                            amount: Some(amount),
                            booking_id: row.booking_id.to_string(),
                            cause: cause.to_string(),
                        },
                        &key,
                    )
                    .await?;
                let asked = match &row.effect {
                    Effect::IssueRefund { amount, .. } => *amount,
                    _ => amount,
                };
                done(Some(BookingEvent::RefundIssued {
                    cause,
                    refund_id: refund.id,
                    status: refund_status(&refund.status),
                    amount: (asked != amount).then_some(amount),
                }))
            }
            Action::CancelCalendlyEvent { event_uuid, reason } => {
                self.providers
                    .calendly()?
                    .cancel_event(&event_uuid, &reason)
                    .await?;
                done(None)
            }
            Action::CreateCheckoutSession { amount } => {
                let request = self.checkout_request(row, amount, now)?;
                self.providers
                    .stripe()?
                    .create_checkout_session(&request, &row.idempotency_key)
                    .await?;
                done(None)
            }
            Action::FireTimer { event } => done(Some(*event)),
            Action::Notify(notice) => {
                self.notifier.notify(&row.booking_id, notice);
                done(None)
            }
            Action::Email(email) => {
                match self
                    .mailer
                    .send_for_row(&row.booking_id, email, &row.idempotency_key)?
                {
                    MailOutcome::Sent => done(None),
                    // The audit trail says why the client got nothing.
                    MailOutcome::NotSent(note) => Ok(CallOutcome::Done {
                        feed: Some(BookingEvent::EmailSkipped {
                            effect_key: row.effect_key.clone(),
                            reason: note.clone(),
                        }),
                        note: Some(note),
                    }),
                }
            }
            Action::Nothing => done(None),
        }
    }

    /// What the booking's payment `payment_intent` brought in, if the booking knows it.
    fn paid(&self, row: &OutboxRow, payment_intent: &str) -> Result<Option<Money>, ProviderError> {
        let booking = self.read_booking(row)?;
        Ok(booking.and_then(|b| {
            b.succeeded_payments()
                .into_iter()
                .find(|p| p.fact.payment_intent.as_deref() == Some(payment_intent))
                .map(|p| p.fact.amount)
        }))
    }

    fn read_booking(
        &self,
        row: &OutboxRow,
    ) -> Result<Option<coachdesk_domain::Booking>, ProviderError> {
        lock(&self.store)
            .booking(&row.booking_id)
            .map_err(|e| ProviderError::Permanent {
                provider: "Coachdesk",
                status: 0,
                message: format!("the booking could not be read: {e}"),
            })
    }

    fn checkout_request(
        &self,
        row: &OutboxRow,
        amount: Money,
        now: OffsetDateTime,
    ) -> Result<CheckoutRequest, ProviderError> {
        let booking = self.read_booking(row)?;
        let schedule = booking.as_ref().and_then(|b| b.schedule.clone());
        let reference = schedule
            .as_ref()
            .map(|s| uuid_of(&s.invitee_uri).to_owned())
            .unwrap_or_else(|| row.booking_id.to_string());
        Ok(CheckoutRequest {
            booking_id: row.booking_id.to_string(),
            client_reference_id: reference,
            product_name: schedule
                .as_ref()
                .and_then(|s| s.event_name.clone())
                .unwrap_or_else(|| "Coaching session".into()),
            amount,
            customer_email: schedule.and_then(|s| s.client_email),
            success_url: self.checkout_success_url.clone(),
            cancel_url: None,
            // Just under Stripe's 24-hour maximum.
            expires_at: (now + Duration::from_secs(23 * 3600)).unix_timestamp(),
        })
    }
}

fn feed_outcome(
    store: &mut Store,
    booking_id: &BookingId,
    key: &str,
    event: &BookingEvent,
    now: OffsetDateTime,
) -> Result<(), SyncError> {
    match store.apply_internal(booking_id, key, event, now) {
        Ok(_) => Ok(()),
        // The machine refused the outcome (say, a timer for a closed booking): the
        // refusal is the answer, and the effect is still settled.
        Err(coachdesk_store::StoreError::Rejected(rejection)) => {
            tracing::info!(%rejection, "outcome not applied");
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}

fn refund_status(status: &str) -> RefundStatus {
    match status {
        "succeeded" => RefundStatus::Succeeded,
        "failed" => RefundStatus::Failed,
        "canceled" => RefundStatus::Canceled,
        _ => RefundStatus::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coachdesk_domain::booking::TimerKind;
    use time::macros::datetime;

    fn row(effect: Effect, attempts: u32) -> OutboxRow {
        OutboxRow {
            id: 7,
            booking_id: BookingId::from_stored("bk_1"),
            effect_key: effect.key(),
            idempotency_key: format!("coachdesk-bk_1-{}", effect.key()),
            effect,
            attempts,
            created_at: NOW,
            approved: false,
        }
    }

    const NOW: OffsetDateTime = datetime!(2025-01-01 10:00 UTC);

    fn backoff() -> Backoff {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            jitter: 0.0,
        }
    }

    #[test]
    fn timers_fire_as_events_and_cancels_name_the_event_uuid() {
        let at = datetime!(2025-01-01 09:00 UTC);
        let r = row(
            Effect::ScheduleTimer {
                timer: TimerKind::PaymentDeadline,
                at,
            },
            0,
        );
        assert_eq!(
            plan(&r),
            Action::FireTimer {
                event: Box::new(BookingEvent::TimerFired {
                    timer: TimerKind::PaymentDeadline,
                    at
                })
            }
        );
        let r = row(
            Effect::CancelCalendlyEvent {
                event_uri: "https://api.calendly.com/scheduled_events/EV1".into(),
                reason: "unpaid".into(),
            },
            0,
        );
        assert_eq!(
            plan(&r),
            Action::CancelCalendlyEvent {
                event_uuid: "EV1".into(),
                reason: "unpaid".into()
            }
        );
    }

    #[test]
    fn transient_failures_retry_with_retry_after_and_permanent_ones_fail_with_the_message() {
        let r = row(
            Effect::Notify {
                notice: Notice::NewBooking,
            },
            2,
        );
        let busy = ProviderError::Transient {
            provider: "Stripe",
            status: Some(429),
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(30)),
            source: None,
        };
        match settle(&r, Err(busy), NOW, &backoff(), 10, 0.5) {
            Settlement::Retry { at, .. } => assert_eq!(at, NOW + Duration::from_secs(30)),
            other => panic!("{other:?}"),
        }
        let refused = ProviderError::Permanent {
            provider: "Stripe",
            status: 400,
            message: "No such payment_intent: 'pi_x'".into(),
        };
        match settle(&r, Err(refused), NOW, &backoff(), 10, 0.5) {
            Settlement::Fail {
                feed: (_, BookingEvent::EffectFailed { message, .. }),
                ..
            } => {
                assert!(
                    message.contains("No such payment_intent: 'pi_x'"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    fn eur() -> coachdesk_domain::Currency {
        coachdesk_domain::Currency::parse("EUR").expect("EUR")
    }

    #[test]
    fn toggles_hold_automatic_refunds_and_skip_checkouts_only() {
        let all_on = Features {
            test_mode_calendly_cancels: true,
            ..Features::default()
        };
        let refunds_off = Features {
            automatic_refunds: false,
            ..all_on
        };
        let payments_off = Features {
            payments: false,
            ..all_on
        };
        // Client's and host's cancellations are automatic; the coach's own (a refund
        // action or a cancellation in the app) are not: the machine says which.
        let refund = |cause: &str, automatic: bool| Action::Refund {
            cause: RefundCause::from_stored(cause),
            payment_intent: "pi_1".into(),
            amount: Money::new(7500, eur()),
            automatic,
        };
        let checkout = Action::CreateCheckoutSession {
            amount: Money::new(15000, eur()),
        };
        let client = refund("cancellation", true);
        let host = refund("cancellation", true);
        assert_eq!(gate(&client, false, all_on, false), Gate::Run);
        assert!(matches!(
            gate(&client, false, refunds_off, false),
            Gate::Hold(_)
        ));
        assert!(matches!(
            gate(&host, false, refunds_off, false),
            Gate::Hold(_)
        ));
        // What the coach asked for in the app is not automatic.
        assert_eq!(
            gate(&refund("cancellation", false), false, refunds_off, false),
            Gate::Run
        );
        assert_eq!(
            gate(&refund("coach:a1", false), false, refunds_off, false),
            Gate::Run
        );
        // Approved by the coach: runs although the toggle is still off.
        assert_eq!(gate(&client, true, refunds_off, false), Gate::Run);
        assert_eq!(gate(&checkout, false, refunds_off, false), Gate::Run);
        assert_eq!(
            gate(&checkout, false, payments_off, false),
            Gate::Skip(PAYMENTS_OFF_NOTE.to_owned())
        );
        assert_eq!(gate(&client, false, payments_off, false), Gate::Run);
        assert_eq!(
            gate(
                &Action::Notify(Notice::NewBooking),
                false,
                payments_off,
                false
            ),
            Gate::Run
        );
    }

    #[test]
    fn late_payment_refunds_and_test_mode_calendly_cancels_follow_their_toggles() {
        let defaults = Features::default();
        let late = Action::Refund {
            cause: RefundCause::late_payment("cs_1"),
            payment_intent: "pi_1".into(),
            amount: Money::new(15000, eur()),
            automatic: true,
        };
        assert_eq!(gate(&late, false, defaults, true), Gate::Run);
        let late_off = Features {
            late_payment_refunds: false,
            ..defaults
        };
        assert_eq!(
            gate(&late, false, late_off, false),
            Gate::Hold(LATE_REFUND_HELD_NOTE.to_owned())
        );
        assert_eq!(gate(&late, true, late_off, false), Gate::Run, "approved");
        let client = Action::Refund {
            cause: RefundCause::cancellation(),
            payment_intent: "pi_1".into(),
            amount: Money::new(7500, eur()),
            automatic: true,
        };
        assert_eq!(gate(&client, false, late_off, false), Gate::Run);

        let cancel = Action::CancelCalendlyEvent {
            event_uuid: "EVT".into(),
            reason: "The payment deadline passed without payment".into(),
        };
        let Gate::NotInTestMode(note) = gate(&cancel, false, defaults, true) else {
            panic!("a test-mode cancellation is not sent by default")
        };
        assert!(note.contains("would cancel in Calendly"), "{note}");
        assert!(note.contains("payment deadline passed"), "{note}");
        assert_eq!(gate(&cancel, false, defaults, false), Gate::Run, "live");
        let on = Features {
            test_mode_calendly_cancels: true,
            ..defaults
        };
        assert_eq!(gate(&cancel, false, on, true), Gate::Run);
    }

    fn seen(
        id: &str,
        minor: i64,
        status: &str,
        booking: Option<&str>,
        cause: Option<&str>,
    ) -> RefundSeen {
        RefundSeen {
            id: id.into(),
            amount_minor: minor,
            status: status.into(),
            booking_id: booking.map(Into::into),
            cause: cause.map(Into::into),
        }
    }

    #[test]
    fn a_refund_found_at_stripe_by_booking_and_cause_settles_the_row() {
        let effect = Effect::IssueRefund {
            cause: RefundCause::cancellation(),
            payment_intent: "pi_1".into(),
            amount: Money::new(15000, eur()),
            automatic: true,
        };
        let r = row(effect, 1);
        let mine = seen(
            "re_2",
            15000,
            "succeeded",
            Some("bk_1"),
            Some("cancellation"),
        );
        let listed = [
            // The same cause of another booking, and another cause of this one.
            seen("re_1", 100, "succeeded", Some("bk_9"), Some("cancellation")),
            seen("re_3", 100, "succeeded", Some("bk_1"), Some("coach:a1")),
            mine.clone(),
        ];
        let paid = Some(Money::new(20000, eur()));
        assert_eq!(
            check_refund(
                &r,
                &RefundCause::cancellation(),
                Money::new(15000, eur()),
                paid,
                &listed
            ),
            RefundCheck::Exists(mine)
        );
        // Not there: sent with the row's own key.
        assert_eq!(
            check_refund(
                &r,
                &RefundCause::cancellation(),
                Money::new(15000, eur()),
                paid,
                &listed[..2]
            ),
            RefundCheck::Send {
                amount: Money::new(15000, eur()),
                idempotency_key: r.idempotency_key.clone()
            }
        );
    }

    #[test]
    fn a_refund_is_capped_at_what_stripe_still_holds_with_a_key_of_its_own() {
        let r = row(
            Effect::Notify {
                notice: Notice::NewBooking,
            },
            0,
        );
        let paid = Some(Money::new(15000, eur()));
        let dashboard = seen("re_d", 10000, "succeeded", None, None);
        let failed = seen("re_f", 5000, "failed", Some("bk_1"), Some("coach:x"));
        match check_refund(
            &r,
            &RefundCause::cancellation(),
            Money::new(15000, eur()),
            paid,
            &[dashboard.clone(), failed],
        ) {
            RefundCheck::Send {
                amount,
                idempotency_key,
            } => {
                assert_eq!(amount, Money::new(5000, eur()));
                assert_ne!(idempotency_key, r.idempotency_key);
            }
            other => panic!("{other:?}"),
        }
        let all = seen("re_e", 5000, "pending", None, None);
        assert!(matches!(
            check_refund(
                &r,
                &RefundCause::cancellation(),
                Money::new(15000, eur()),
                paid,
                &[dashboard, all]
            ),
            RefundCheck::NothingLeft { .. }
        ));
    }

    #[test]
    fn stripe_is_asked_first_after_the_key_may_be_forgotten_or_after_approval() {
        let mut r = row(
            Effect::Notify {
                notice: Notice::NewBooking,
            },
            1,
        );
        r.created_at = NOW - time::Duration::hours(1);
        assert!(!must_look_first(&r, NOW));
        r.created_at = NOW - time::Duration::days(2);
        assert!(must_look_first(&r, NOW));
        r.created_at = NOW;
        r.approved = true;
        assert!(must_look_first(&r, NOW));
    }

    #[test]
    fn a_transient_failure_at_the_last_attempt_gives_up() {
        let r = row(
            Effect::Notify {
                notice: Notice::NewBooking,
            },
            9,
        );
        let busy = ProviderError::Transient {
            provider: "Calendly",
            status: Some(500),
            message: "oops".into(),
            retry_after: None,
            source: None,
        };
        assert!(matches!(
            settle(&r, Err(busy), NOW, &backoff(), 10, 0.5),
            Settlement::Fail { .. }
        ));
    }
}
