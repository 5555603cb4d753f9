//! What to tell the client, decided from the booking as it stands when the email is sent.
//!
//! An email is queued by one transition and sent later (after retries, after a crash, after
//! the client paid...). So [`decide`] looks at the booking *now*: a payment request for a
//! booking that is paid by the time it goes out is dropped, never sent; a confirmation for
//! a booking cancelled in between is dropped; a cancellation notice states the refund the
//! books hold at that moment. Pure: the caller passes the booking, the context and `now`.

use coachdesk_domain::booking::{BookingState, CauseKind, RefundStatus};
use coachdesk_domain::provider::uuid_of;
use coachdesk_domain::{Booking, Money};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::kind::MailKind;
use crate::template::{Placeholder, Rendered, Template, Values};

/// Who the email is from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoachIdentity {
    /// Shown as the sender's name and as `{coach_name}`.
    pub name: String,
    /// The From address (usually the SMTP account's).
    pub from_address: String,
    /// Where the client's answers go, if not the From address.
    pub reply_to: Option<String>,
}

/// The session type's name and its `/pay/{slug}` slug.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub name: String,
    pub slug: String,
}

/// Everything besides the booking that an email is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailContext {
    pub coach: CoachIdentity,
    /// The coach's template for this kind (or the default).
    pub template: Template,
    /// The relay's public address (`https://relay.example.com`): payment and recovery links
    /// go through its `/pay/{slug}` redirect, which ties the payment to the booking.
    pub relay_url: Option<String>,
    /// The booking's session type, if it is known.
    pub session: Option<SessionInfo>,
}

/// An email ready to send (the Message-ID is added by the sender, from the outbox key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub kind: MailKind,
    pub to_name: Option<String>,
    pub to_address: String,
    pub from_name: String,
    pub from_address: String,
    pub reply_to: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why an email is not sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DropReason {
    /// The booking has no schedule (Calendly has not told us the session yet).
    NoSchedule,
    /// Calendly gave no email address for the client.
    NoClientAddress,
    /// A payment request or reminder for a booking that is already paid.
    AlreadyPaid { state: BookingState },
    /// A payment request or reminder for a booking that can no longer be paid.
    NotPayable { state: BookingState },
    /// A payment request or reminder after the payment deadline.
    DeadlinePassed,
    /// A payment request or reminder whose booking has no payment link.
    NoPaymentLink,
    /// A confirmation for a booking nothing was paid for.
    NotPaid,
    /// A confirmation or reschedule notice for a booking no longer on (cancelled...).
    NotOn { state: BookingState },
    /// A cancellation notice for a booking that is not cancelled.
    NotCancelled { state: BookingState },
    /// A cancellation notice while the refund failed: the client is not told an amount
    /// that did not go back.
    RefundFailed,
    /// A reschedule notice for a booking that is not the new half of a reschedule.
    NotRescheduled,
    /// The session has already started: telling the client about it is pointless.
    SessionStarted,
    /// A late payment's refund notice before Stripe took the refund (or after it failed).
    NoLateRefund,
}

impl DropReason {
    /// The note kept on the outbox row (the audit of a dropped email).
    pub fn describe(&self, kind: MailKind) -> String {
        let what = crate::kind::label(kind).to_lowercase();
        let state = |s: &BookingState| s.as_str().replace('_', " ");
        match self {
            Self::NoSchedule => format!("{what} not sent: the session's time is not known yet"),
            Self::NoClientAddress => format!("{what} not sent: the client has no email address"),
            Self::AlreadyPaid { state: s } => format!(
                "{what} dropped: the booking was already paid ({}) when it was due to be sent",
                state(s)
            ),
            Self::NotPayable { state: s } => format!(
                "{what} dropped: the booking is {} and can no longer be paid",
                state(s)
            ),
            Self::DeadlinePassed => format!("{what} dropped: the payment deadline has passed"),
            Self::NoPaymentLink => format!(
                "{what} not sent: there is no payment link (set the relay address and the session type)"
            ),
            Self::NotPaid => format!("{what} dropped: nothing has been paid for this booking"),
            Self::NotOn { state: s } => {
                format!("{what} dropped: the booking is {} now", state(s))
            }
            Self::NotCancelled { state: s } => format!(
                "{what} dropped: the booking is {}, not cancelled",
                state(s)
            ),
            Self::RefundFailed => format!(
                "{what} not sent: the refund failed, so the client is not told an amount; resolve the refund and write to the client"
            ),
            Self::NotRescheduled => format!("{what} dropped: this booking was not rescheduled"),
            Self::SessionStarted => format!("{what} dropped: the session has already started"),
            Self::NoLateRefund => format!(
                "{what} not sent: no refund of the late payment has gone through at Stripe"
            ),
        }
    }

    /// Whether the coach should look at it (the booking is flagged), rather than the email
    /// simply being no longer true.
    pub fn needs_attention(&self) -> bool {
        matches!(
            self,
            Self::NoClientAddress | Self::NoPaymentLink | Self::RefundFailed
        )
    }
}

/// Send this message, or drop the email for this reason.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    Send(Box<Message>),
    Drop(DropReason),
}

/// Decides an email from the booking as it stands at `now`.
pub fn decide(
    kind: MailKind,
    booking: &Booking,
    ctx: &MailContext,
    now: OffsetDateTime,
) -> Decision {
    match check(kind, booking, ctx, now) {
        Err(reason) => Decision::Drop(reason),
        Ok((to_address, values)) => {
            let Rendered {
                subject,
                text,
                html,
            } = ctx.template.render(&values);
            Decision::Send(Box::new(Message {
                kind,
                to_name: booking
                    .schedule
                    .as_ref()
                    .and_then(|s| s.client_name.clone()),
                to_address,
                from_name: ctx.coach.name.clone(),
                from_address: ctx.coach.from_address.clone(),
                reply_to: ctx.coach.reply_to.clone(),
                subject,
                text,
                html,
            }))
        }
    }
}

/// Renders a template against a booking without deciding anything: the editor's preview.
pub fn preview(
    kind: MailKind,
    template: &Template,
    booking: &Booking,
    ctx: &MailContext,
) -> Rendered {
    template.render(&values(kind, booking, ctx))
}

fn check(
    kind: MailKind,
    b: &Booking,
    ctx: &MailContext,
    now: OffsetDateTime,
) -> Result<(String, Values), DropReason> {
    let schedule = b.schedule.as_ref().ok_or(DropReason::NoSchedule)?;
    let state = b.state;
    let paid = b.captured_minor() > 0;
    match kind {
        MailKind::PaymentRequest | MailKind::PaymentReminder => {
            if paid {
                return Err(DropReason::AlreadyPaid { state });
            }
            if !matches!(
                state,
                BookingState::AwaitingPayment | BookingState::PaymentFailed
            ) {
                return Err(DropReason::NotPayable { state });
            }
            if b.payment_deadline().is_some_and(|deadline| now >= deadline) {
                return Err(DropReason::DeadlinePassed);
            }
            if now >= schedule.start {
                return Err(DropReason::SessionStarted);
            }
            if payment_link(b, ctx).is_none() {
                return Err(DropReason::NoPaymentLink);
            }
        }
        MailKind::Confirmation => {
            if !paid {
                return Err(DropReason::NotPaid);
            }
            if state != BookingState::Confirmed {
                return Err(DropReason::NotOn { state });
            }
            if now >= schedule.start {
                return Err(DropReason::SessionStarted);
            }
        }
        MailKind::Cancellation => {
            if b.cancellation.is_none()
                || !matches!(
                    state,
                    BookingState::Cancelled | BookingState::RefundPending | BookingState::Refunded
                )
            {
                return Err(DropReason::NotCancelled { state });
            }
            if b.refunds
                .values()
                .any(|r| r.status == RefundStatus::Failed && r.cause.is_some())
            {
                return Err(DropReason::RefundFailed);
            }
        }
        MailKind::LatePaymentRefund => {
            if late_refunded_minor(b) == 0 {
                return Err(DropReason::NoLateRefund);
            }
        }
        MailKind::Reschedule => {
            if b.rescheduled_from.is_none() {
                return Err(DropReason::NotRescheduled);
            }
            if state.is_closed() || state == BookingState::Disputed {
                return Err(DropReason::NotOn { state });
            }
            if now >= schedule.start {
                return Err(DropReason::SessionStarted);
            }
        }
    }
    let to = schedule
        .client_email
        .as_deref()
        .map(str::trim)
        .filter(|a| a.contains('@'))
        .ok_or(DropReason::NoClientAddress)?;
    Ok((to.to_owned(), values(kind, b, ctx)))
}

/// What Stripe took of the refunds of late payments (pending or succeeded).
fn late_refunded_minor(b: &Booking) -> i64 {
    b.refunds
        .values()
        .filter(|r| {
            r.cause
                .as_ref()
                .is_some_and(|c| c.kind() == CauseKind::LatePayment)
        })
        .filter(|r| matches!(r.status, RefundStatus::Pending | RefundStatus::Succeeded))
        .map(|r| r.amount.minor)
        .sum()
}

/// The placeholder values of an email of `kind` about `b`.
fn values(kind: MailKind, b: &Booking, ctx: &MailContext) -> Values {
    let mut v = Values::default();
    v.set(Placeholder::CoachName, ctx.coach.name.clone());
    let schedule = b.schedule.as_ref();
    let zone = schedule.and_then(|s| s.timezone.as_deref());
    v.set(
        Placeholder::ClientName,
        schedule
            .and_then(|s| s.client_name.clone())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "there".into()),
    );
    v.set(
        Placeholder::Session,
        ctx.session
            .as_ref()
            .map(|s| s.name.clone())
            .or_else(|| schedule.and_then(|s| s.event_name.clone()))
            .unwrap_or_else(|| "your session".into()),
    );
    if let Some(s) = schedule {
        v.set(Placeholder::StartLocal, format_local(s.start, zone));
    }
    let captured = b.captured_minor();
    let amount = match (b.currency(), b.terms.as_ref()) {
        (Some(currency), _) if captured > 0 => Some(Money::new(captured, currency)),
        (_, Some(terms)) => Some(terms.price),
        _ => None,
    };
    if let Some(amount) = amount {
        v.set(Placeholder::Amount, amount.to_string());
    }
    if kind == MailKind::Cancellation {
        let refunded = b.refunded_minor();
        let text = match b.currency() {
            Some(currency) if refunded > 0 => Money::new(refunded, currency).to_string(),
            _ if captured == 0 => "none (nothing was paid)".into(),
            _ => "none".into(),
        };
        v.set(Placeholder::RefundAmount, text);
    }
    if kind == MailKind::LatePaymentRefund {
        if let Some(currency) = b.currency() {
            v.set(
                Placeholder::RefundAmount,
                Money::new(late_refunded_minor(b), currency).to_string(),
            );
        }
    }
    if matches!(kind, MailKind::PaymentRequest | MailKind::PaymentReminder) {
        if let Some(deadline) = b.payment_deadline() {
            v.set(Placeholder::DeadlineLocal, format_local(deadline, zone));
        }
        if let Some(link) = payment_link(b, ctx) {
            v.set(Placeholder::PaymentLink, link.clone());
            if kind == MailKind::PaymentReminder {
                v.set(Placeholder::RecoveryLink, format!("{link}&recovery=1"));
            }
        }
    }
    v
}

/// The relay's `/pay/{slug}` link for this booking: it redirects to the session type's
/// Stripe payment link with the invitee as `client_reference_id`, so the payment finds the
/// booking.
pub fn payment_link(b: &Booking, ctx: &MailContext) -> Option<String> {
    let base = ctx.relay_url.as_deref()?.trim_end_matches('/');
    let slug = &ctx.session.as_ref()?.slug;
    let schedule = b.schedule.as_ref()?;
    if base.is_empty() || slug.is_empty() {
        return None;
    }
    let mut link = format!(
        "{base}/pay/{}?invitee_uuid={}",
        percent_encode(slug),
        percent_encode(uuid_of(&schedule.invitee_uri))
    );
    if let Some(email) = &schedule.client_email {
        link.push_str("&invitee_email=");
        link.push_str(&percent_encode(email.trim()));
    }
    Some(link)
}

/// Everything but RFC 3986's unreserved characters is escaped in the link's query.
fn percent_encode(s: &str) -> String {
    const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

/// A time as the client reads it: `Tuesday 1 December 2026, 11:00 (Europe/Berlin)`. An
/// unknown or missing zone falls back to UTC, and says so.
pub fn format_local(at: OffsetDateTime, zone: Option<&str>) -> String {
    const FORMAT: &str = "%A %-d %B %Y, %H:%M";
    let Some(utc) = chrono::DateTime::from_timestamp(at.unix_timestamp(), 0) else {
        return at.to_string();
    };
    match zone.and_then(|z| z.parse::<chrono_tz::Tz>().ok()) {
        Some(tz) => format!("{} ({})", utc.with_timezone(&tz).format(FORMAT), tz.name()),
        None => format!("{} (UTC)", utc.format(FORMAT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coachdesk_domain::booking::testkit::*;
    use coachdesk_domain::booking::{Canceler, RefundCause, RefundChoice};
    use coachdesk_domain::BookingEvent;

    use crate::template::default_template;

    fn ctx(kind: MailKind) -> MailContext {
        MailContext {
            coach: CoachIdentity {
                name: "Sam Coach".into(),
                from_address: "sam@coach.example".into(),
                reply_to: Some("hello@coach.example".into()),
            },
            template: default_template(kind),
            relay_url: Some("https://relay.example/".into()),
            session: Some(SessionInfo {
                name: "Coaching 60".into(),
                slug: "coaching-60".into(),
            }),
        }
    }

    fn send(kind: MailKind, b: &Booking, now: OffsetDateTime) -> Message {
        match decide(kind, b, &ctx(kind), now) {
            Decision::Send(m) => *m,
            Decision::Drop(reason) => panic!("{kind:?} dropped: {reason:?}"),
        }
    }

    fn dropped(kind: MailKind, b: &Booking, now: OffsetDateTime) -> DropReason {
        match decide(kind, b, &ctx(kind), now) {
            Decision::Send(m) => panic!("{kind:?} sent: {m:?}"),
            Decision::Drop(reason) => reason,
        }
    }

    #[test]
    fn a_payment_request_has_the_link_the_price_and_the_local_time() {
        let b = run(&[created(INV_A)]);
        let m = send(MailKind::PaymentRequest, &b, at(-160));
        assert_eq!(m.to_address, "dana@example.com");
        assert_eq!(m.reply_to.as_deref(), Some("hello@coach.example"));
        // 10:00 UTC is 11:00 in Berlin in December.
        assert!(
            m.subject
                .contains("Tuesday 1 December 2026, 11:00 (Europe/Berlin)"),
            "{}",
            m.subject
        );
        assert!(m.text.contains("150.00 EUR"), "{}", m.text);
        assert!(m.text.contains(
            "https://relay.example/pay/coaching-60?invitee_uuid=INV_A&invitee_email=dana%40example.com"
        ));
        assert!(m.text.contains("Sam Coach"));
        assert!(m.html.contains("<a href=\"https://relay.example/pay/coaching-60?invitee_uuid=INV_A&amp;invitee_email=dana%40example.com\">"));
    }

    #[test]
    fn a_payment_request_for_a_paid_booking_is_dropped() {
        let b = run(&[created(INV_A), paid(INV_A, "cs_1", "pi_1", 15000, -150)]);
        assert_eq!(b.state, BookingState::Confirmed);
        for kind in [MailKind::PaymentRequest, MailKind::PaymentReminder] {
            assert_eq!(
                dropped(kind, &b, at(-149)),
                DropReason::AlreadyPaid {
                    state: BookingState::Confirmed
                }
            );
        }
        let note = DropReason::AlreadyPaid {
            state: BookingState::Confirmed,
        }
        .describe(MailKind::PaymentRequest);
        assert!(note.contains("already paid"), "{note}");
    }

    #[test]
    fn a_payment_request_after_the_deadline_or_for_a_cancelled_booking_is_dropped() {
        let b = run(&[created(INV_A)]);
        let deadline = b.payment_deadline().unwrap();
        assert_eq!(
            dropped(MailKind::PaymentRequest, &b, deadline),
            DropReason::DeadlinePassed
        );
        let b = run(&[created(INV_A), client_cancel(INV_A, -100)]);
        assert!(matches!(
            dropped(MailKind::PaymentRequest, &b, at(-99)),
            DropReason::NotPayable { .. }
        ));
    }

    #[test]
    fn a_payment_request_without_a_relay_address_needs_attention() {
        let b = run(&[created(INV_A)]);
        let mut c = ctx(MailKind::PaymentRequest);
        c.relay_url = None;
        let Decision::Drop(reason) = decide(MailKind::PaymentRequest, &b, &c, at(-160)) else {
            panic!("sent without a link")
        };
        assert_eq!(reason, DropReason::NoPaymentLink);
        assert!(reason.needs_attention());
    }

    #[test]
    fn a_confirmation_needs_a_payment_and_a_booking_still_on() {
        let b = run(&[created(INV_A)]);
        assert_eq!(
            dropped(MailKind::Confirmation, &b, at(-160)),
            DropReason::NotPaid
        );
        let b = run(&[created(INV_A), paid(INV_A, "cs_1", "pi_1", 15000, -150)]);
        let m = send(MailKind::Confirmation, &b, at(-149));
        assert!(
            m.text.contains("payment of 150.00 EUR has arrived"),
            "{}",
            m.text
        );
        let b = step(
            &b,
            &BookingEvent::CoachCancelled {
                refund: RefundChoice::Full,
                reason: "ill".into(),
                at: at(-140),
            },
        );
        assert!(matches!(
            dropped(MailKind::Confirmation, &b, at(-139)),
            DropReason::NotOn { .. }
        ));
    }

    #[test]
    fn a_late_payment_notice_goes_once_stripe_took_the_refund_and_states_it() {
        let late = run(&[
            created(INV_A),
            client_cancel(INV_A, -100),
            paid(INV_A, "cs_1", "pi_1", 15000, -90),
        ]);
        assert_eq!(
            dropped(MailKind::LatePaymentRefund, &late, at(-89)),
            DropReason::NoLateRefund,
            "not while the refund is only asked for (or held)"
        );
        let refunded = step(
            &late,
            &BookingEvent::RefundIssued {
                cause: RefundCause::late_payment("cs_1"),
                refund_id: "re_1".into(),
                status: RefundStatus::Pending,
                amount: None,
            },
        );
        let m = send(MailKind::LatePaymentRefund, &refunded, at(-89));
        assert!(
            m.text.contains("refunded it in full: 150.00 EUR"),
            "{}",
            m.text
        );
        assert!(m
            .text
            .contains("after the booking had expired or been cancelled"));
    }

    #[test]
    fn a_cancellation_states_the_refund_the_books_hold() {
        let b = run(&[
            created(INV_A),
            paid(INV_A, "cs_1", "pi_1", 15000, -150),
            BookingEvent::CoachCancelled {
                refund: RefundChoice::Amount { amount: eur(5000) },
                reason: "moved away".into(),
                at: at(-100),
            },
        ]);
        let m = send(MailKind::Cancellation, &b, at(-99));
        assert!(m.text.contains("Refund: 50.00 EUR."), "{}", m.text);

        let unpaid = run(&[created(INV_A), client_cancel(INV_A, -100)]);
        assert_eq!(
            unpaid.cancellation.as_ref().unwrap().canceler,
            Canceler::Client
        );
        let m = send(MailKind::Cancellation, &unpaid, at(-99));
        assert!(
            m.text.contains("Refund: none (nothing was paid)."),
            "{}",
            m.text
        );

        let live = run(&[created(INV_A)]);
        assert!(matches!(
            dropped(MailKind::Cancellation, &live, at(-99)),
            DropReason::NotCancelled { .. }
        ));
    }

    #[test]
    fn a_reschedule_notice_has_the_new_time() {
        let b = run(&[rebooked(INV_B, INV_A)]);
        let m = send(MailKind::Reschedule, &b, at(-40));
        assert!(
            m.subject
                .contains("Wednesday 2 December 2026, 11:00 (Europe/Berlin)"),
            "{}",
            m.subject
        );
        let plain = run(&[created(INV_A)]);
        assert_eq!(
            dropped(MailKind::Reschedule, &plain, at(-100)),
            DropReason::NotRescheduled
        );
    }

    #[test]
    fn no_address_means_no_email() {
        let mut b = run(&[created(INV_A)]);
        b.schedule.as_mut().unwrap().client_email = None;
        assert_eq!(
            dropped(MailKind::Confirmation, &b, at(-100)),
            DropReason::NotPaid
        );
        assert_eq!(
            dropped(MailKind::PaymentRequest, &b, at(-160)),
            DropReason::NoClientAddress
        );
    }

    #[test]
    fn local_times_use_the_clients_zone_or_say_utc() {
        let t = START;
        assert_eq!(
            format_local(t, Some("America/New_York")),
            "Tuesday 1 December 2026, 05:00 (America/New_York)"
        );
        assert_eq!(
            format_local(t, Some("Mars/Base")),
            "Tuesday 1 December 2026, 10:00 (UTC)"
        );
        assert_eq!(
            format_local(t, None),
            "Tuesday 1 December 2026, 10:00 (UTC)"
        );
    }
}
