//! Builders for booking events, shared by the unit and property tests.
//!
//! Times are hours relative to the session's start (`at(-30)` is 30 h before it).

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::money::{Currency, Money};
use crate::refund_policy::RefundPolicy;

pub const INV_A: &str = "https://api.calendly.com/scheduled_events/EVT_A/invitees/INV_A";
pub const INV_B: &str = "https://api.calendly.com/scheduled_events/EVT_B/invitees/INV_B";
pub const INV_C: &str = "https://api.calendly.com/scheduled_events/EVT_C/invitees/INV_C";

/// The session's start.
pub const START: OffsetDateTime = datetime!(2026-12-01 10:00 UTC);

pub fn at(hours: i64) -> OffsetDateTime {
    START + Duration::hours(hours)
}

pub fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").expect("EUR"))
}

pub fn jpy(minor: i64) -> Money {
    Money::new(minor, Currency::parse("JPY").expect("JPY"))
}

pub fn terms() -> Terms {
    Terms {
        session_type_id: "st_1".into(),
        price: eur(15000),
        policy: RefundPolicy::default(),
        payment_window_minutes: 24 * 60,
    }
}

/// The schedule Calendly reports for an invitee: B is the rebooked time, a day later.
pub fn schedule(invitee: &str) -> Schedule {
    let (shift, booked) = if invitee == INV_B {
        (Duration::days(1), at(-50))
    } else {
        (Duration::ZERO, at(-168))
    };
    Schedule {
        invitee_uri: invitee.into(),
        event_uri: invitee.split("/invitees/").next().unwrap_or(invitee).into(),
        event_type_uri: Some("https://api.calendly.com/event_types/ET1".into()),
        event_name: Some("Coaching".into()),
        start: START + shift,
        end: START + shift + Duration::hours(1),
        client_name: Some("Dana Client".into()),
        client_email: Some("dana@example.com".into()),
        timezone: Some("Europe/Berlin".into()),
        booked_at: booked,
    }
}

pub fn created(invitee: &str) -> BookingEvent {
    BookingEvent::InviteeCreated {
        schedule: schedule(invitee),
        terms: Some(terms()),
        rescheduled_from: None,
    }
}

pub fn rebooked(invitee: &str, from: &str) -> BookingEvent {
    BookingEvent::InviteeCreated {
        schedule: schedule(invitee),
        terms: Some(terms()),
        rescheduled_from: Some(from.into()),
    }
}

pub fn client_cancel(invitee: &str, hours: i64) -> BookingEvent {
    cancel(invitee, hours, Canceler::Client, None)
}

pub fn host_cancel(invitee: &str, hours: i64) -> BookingEvent {
    cancel(invitee, hours, Canceler::Host, None)
}

pub fn rescheduled(invitee: &str, to: &str, hours: i64) -> BookingEvent {
    cancel(invitee, hours, Canceler::Client, Some(to.into()))
}

fn cancel(invitee: &str, hours: i64, canceler: Canceler, to: Option<String>) -> BookingEvent {
    BookingEvent::InviteeCanceled {
        schedule: schedule(invitee),
        terms: Some(terms()),
        canceler,
        reason: Some("Something came up".into()),
        at: at(hours),
        rescheduled_to: to,
    }
}

pub fn payment(
    cs: &str,
    pi: Option<&str>,
    amount: Money,
    status: PaymentStatus,
    hours: i64,
) -> BookingEvent {
    BookingEvent::PaymentReported {
        payment: PaymentFact {
            checkout_session: cs.into(),
            payment_intent: pi.map(Into::into),
            amount,
            status,
            at: at(hours),
        },
    }
}

pub fn paid(_invitee: &str, cs: &str, pi: &str, minor: i64, hours: i64) -> BookingEvent {
    payment(cs, Some(pi), eur(minor), PaymentStatus::Succeeded, hours)
}

pub fn paid_money(_invitee: &str, cs: &str, pi: &str, amount: Money, hours: i64) -> BookingEvent {
    payment(cs, Some(pi), amount, PaymentStatus::Succeeded, hours)
}

pub fn failed_payment(_invitee: &str, cs: &str, hours: i64) -> BookingEvent {
    payment(
        cs,
        Some("pi_failed"),
        eur(15000),
        PaymentStatus::Failed,
        hours,
    )
}

pub fn expired_checkout(_invitee: &str, cs: &str, hours: i64) -> BookingEvent {
    payment(cs, None, eur(15000), PaymentStatus::Expired, hours)
}

pub fn timer(timer: TimerKind, hours: i64) -> BookingEvent {
    BookingEvent::TimerFired {
        timer,
        at: at(hours),
    }
}

pub fn refund_issued(cause: &str, refund_id: &str) -> BookingEvent {
    BookingEvent::RefundIssued {
        cause: RefundCause::from_stored(cause),
        refund_id: refund_id.into(),
        status: RefundStatus::Pending,
        amount: None,
    }
}

pub fn refund_reported(
    refund_id: &str,
    cause: &str,
    minor: i64,
    status: RefundStatus,
) -> BookingEvent {
    BookingEvent::RefundReported {
        refund: RefundFact {
            refund_id: refund_id.into(),
            payment_intent: Some("pi_1".into()),
            amount: eur(minor),
            status,
            cause: Some(RefundCause::from_stored(cause)),
            failure_reason: (status == RefundStatus::Failed)
                .then(|| "expired_or_canceled_card".into()),
        },
    }
}

/// A refund of `pi_1` made in Stripe's dashboard (no cause of ours in its metadata).
pub fn dashboard_refund(refund_id: &str, minor: i64) -> BookingEvent {
    BookingEvent::RefundReported {
        refund: RefundFact {
            refund_id: refund_id.into(),
            payment_intent: Some("pi_1".into()),
            amount: eur(minor),
            status: RefundStatus::Succeeded,
            cause: None,
            failure_reason: None,
        },
    }
}

pub fn coach_refund(action: &str, minor: i64) -> BookingEvent {
    BookingEvent::CoachRefunded {
        action_id: action.into(),
        amount: eur(minor),
        reason: "goodwill".into(),
    }
}

pub fn dispute() -> BookingEvent {
    BookingEvent::DisputeOpened {
        payment_intent: "pi_1".into(),
        amount: eur(15000),
        reason: "fraudulent".into(),
        at: at(20),
    }
}

/// Applies events in order, panicking on a rejection (tests only).
pub fn run(events: &[BookingEvent]) -> Booking {
    events.iter().fold(
        Booking::new(BookingId::from_stored("bk_test")),
        |b, event| step(&b, event),
    )
}

pub fn step(booking: &Booking, event: &BookingEvent) -> Booking {
    match apply(booking, event) {
        Ok(t) => t.booking,
        Err(rejection) => panic!("{} refused: {rejection}", event.kind()),
    }
}

/// A booking in the given state, reached by real events.
pub fn booking_in(state: BookingState) -> Booking {
    let booked = || vec![created(INV_A)];
    let paid_ = || vec![created(INV_A), paid(INV_A, "cs_1", "pi_1", 15000, -100)];
    let events = match state {
        BookingState::AwaitingPayment => booked(),
        BookingState::Confirmed => paid_(),
        BookingState::PaymentFailed => vec![created(INV_A), failed_payment(INV_A, "cs_1", -120)],
        BookingState::Expired => vec![created(INV_A), timer(TimerKind::PaymentDeadline, -140)],
        BookingState::Cancelled => vec![created(INV_A), client_cancel(INV_A, -100)],
        BookingState::RefundPending => [paid_(), vec![client_cancel(INV_A, -72)]].concat(),
        BookingState::Refunded => [
            paid_(),
            vec![
                client_cancel(INV_A, -72),
                refund_reported("re_1", "cancellation", 15000, RefundStatus::Succeeded),
            ],
        ]
        .concat(),
        BookingState::Rescheduled => [paid_(), vec![rescheduled(INV_A, INV_B, -60)]].concat(),
        BookingState::NoShow => [paid_(), vec![BookingEvent::InviteeNoShow { at: at(0) }]].concat(),
        BookingState::Completed => [paid_(), vec![timer(TimerKind::SessionEnded, 1)]].concat(),
        BookingState::Disputed => [paid_(), vec![dispute()]].concat(),
    };
    run(&events)
}

/// One or more samples of every event kind.
pub fn sample_events() -> Vec<BookingEvent> {
    vec![
        created(INV_A),
        rebooked(INV_A, INV_B),
        client_cancel(INV_A, -30),
        host_cancel(INV_A, -10),
        rescheduled(INV_A, INV_B, -60),
        BookingEvent::InviteeNoShow { at: at(0) },
        paid(INV_A, "cs_1", "pi_1", 15000, -100),
        paid(INV_A, "cs_9", "pi_9", 15000, -1),
        payment(
            "cs_p",
            Some("pi_p"),
            eur(15000),
            PaymentStatus::Pending,
            -100,
        ),
        failed_payment(INV_A, "cs_f", -100),
        expired_checkout(INV_A, "cs_x", -100),
        BookingEvent::ChargeRefunded {
            payment_intent: "pi_1".into(),
            amount_refunded: eur(5000),
        },
        refund_reported("re_1", "cancellation", 7500, RefundStatus::Succeeded),
        refund_reported("re_2", "cancellation", 7500, RefundStatus::Failed),
        dispute(),
        BookingEvent::RescheduledTo {
            successor: INV_B.into(),
        },
        BookingEvent::PaymentCarried {
            from: BookingId::from_stored("bk_old"),
            payment: PaymentFact {
                checkout_session: "cs_old".into(),
                payment_intent: Some("pi_old".into()),
                amount: eur(15000),
                status: PaymentStatus::Succeeded,
                at: at(-200),
            },
        },
        BookingEvent::CoachCancelled {
            refund: RefundChoice::Policy,
            reason: "ill".into(),
            at: at(-30),
        },
        BookingEvent::CoachCancelled {
            refund: RefundChoice::Amount { amount: eur(20000) },
            reason: "ill".into(),
            at: at(-30),
        },
        coach_refund("r1", 5000),
        coach_refund("r2", 0),
        BookingEvent::CoachMarkedNoShow { at: at(1) },
        BookingEvent::CoachCorrected {
            state: BookingState::Completed,
            reason: "fixed by hand".into(),
        },
        BookingEvent::CoachDismissed {
            code: "paid_twice".into(),
        },
        timer(TimerKind::PaymentDeadline, -140),
        timer(TimerKind::SessionEnded, 1),
        refund_issued("cancellation", "re_1"),
        BookingEvent::EffectFailed {
            effect_key: EffectKey::from_stored("calendly-cancel"),
            message: "403 Forbidden".into(),
        },
        BookingEvent::EffectSucceeded {
            effect_key: EffectKey::from_stored("calendly-cancel"),
        },
        timer(TimerKind::PaymentReminder, -150),
        BookingEvent::EmailSkipped {
            effect_key: EffectKey::from_stored("email:payment-request"),
            reason: "the booking is already paid".into(),
        },
        BookingEvent::CoachResentPaymentLink {
            action_id: "again-1".into(),
            at: at(-160),
        },
    ]
}
