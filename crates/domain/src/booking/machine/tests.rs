//! Table tests of the transition function: scenarios and every (state, event) pair.

use time::{Duration, OffsetDateTime};

use super::*;
use crate::booking::effect::EmailKind;
use crate::booking::testkit::*;

#[test]
fn happy_path_books_pays_and_completes() {
    let b = run(&[created(INV_A), paid(INV_A, "cs_1", "pi_1", 15000, -100)]);
    assert_eq!(b.state, BookingState::Confirmed);
    assert!(b.attention.is_empty(), "{:?}", b.attention);
    let b = step(&b, &timer(TimerKind::SessionEnded, 1));
    assert_eq!(b.state, BookingState::Completed);
}

#[test]
fn payment_before_booking_is_kept_and_flagged_until_the_booking_arrives() {
    let b = run(&[paid(INV_A, "cs_1", "pi_1", 15000, -100)]);
    assert_eq!(b.state, BookingState::Confirmed);
    assert_eq!(b.attention, vec![AttentionReason::PaymentForUnknownBooking]);
    let b = step(&b, &created(INV_A));
    assert_eq!(b.state, BookingState::Confirmed);
    assert!(b.attention.is_empty());
}

#[test]
fn client_cancels_inside_each_refund_tier() {
    for (hours_before, expected_refund, end_state) in [
        (72, 15000, BookingState::RefundPending),
        (30, 7500, BookingState::RefundPending),
        (2, 0, BookingState::Cancelled),
    ] {
        let b = run(&[created(INV_A), paid(INV_A, "cs_1", "pi_1", 15000, -100)]);
        let t = apply(&b, &client_cancel(INV_A, -hours_before)).unwrap();
        let refunds: Vec<_> = t.effects.iter().filter(|e| e.moves_money()).collect();
        if expected_refund == 0 {
            assert!(refunds.is_empty(), "{hours_before} h: {refunds:?}");
        } else {
            assert_eq!(
                refunds,
                [&Effect::IssueRefund {
                    cause: RefundCause::cancellation(),
                    payment_intent: "pi_1".into(),
                    amount: eur(expected_refund),
                    automatic: true,
                }],
                "{hours_before} h"
            );
        }
        assert_eq!(t.to, end_state, "{hours_before} h");
        let settled = step(&t.booking, &refund_issued("cancellation", "re_1"));
        let settled = step(
            &settled,
            &refund_reported(
                "re_1",
                "cancellation",
                expected_refund,
                RefundStatus::Succeeded,
            ),
        );
        let want = if expected_refund > 0 {
            BookingState::Refunded
        } else {
            BookingState::Cancelled
        };
        assert_eq!(settled.state, want, "{hours_before} h");
    }
}

#[test]
fn coach_cancel_cancels_the_calendly_event_and_refunds_as_chosen() {
    let b = run(&[created(INV_A), paid(INV_A, "cs_1", "pi_1", 15000, -100)]);
    let t = apply(
        &b,
        &BookingEvent::CoachCancelled {
            refund: RefundChoice::Amount { amount: eur(5000) },
            reason: "Coach is ill".into(),
            at: at(-30),
        },
    )
    .unwrap();
    assert!(t
        .effects
        .iter()
        .any(|e| matches!(e, Effect::CancelCalendlyEvent { .. })));
    assert!(t.effects.contains(&Effect::IssueRefund {
        cause: RefundCause::cancellation(),
        payment_intent: "pi_1".into(),
        amount: eur(5000),
        automatic: false,
    }));
    // Calendly's echo of the same cancellation changes nothing about the money.
    let echo = apply(&t.booking, &host_cancel(INV_A, -30)).unwrap();
    assert!(echo.effects.iter().all(|e| !e.moves_money()));
    assert_eq!(echo.to, BookingState::RefundPending);
}

#[test]
fn a_refund_cannot_exceed_what_is_left() {
    let b = run(&[created(INV_A), paid(INV_A, "cs_1", "pi_1", 15000, -100)]);
    let b = step(&b, &coach_refund("a1", 10000));
    let err = apply(&b, &coach_refund("a2", 6000)).unwrap_err();
    assert!(
        matches!(err, Rejection::RefundExceedsRefundable { .. }),
        "{err}"
    );
    assert!(apply(&b, &coach_refund("a3", 5000)).is_ok());
    // The same action twice is one refund.
    let again = apply(&b, &coach_refund("a1", 10000)).unwrap();
    assert!(again.effects.iter().all(|e| !e.moves_money()));
}

#[test]
fn payment_after_cancellation_is_refunded_in_full_then_the_client_is_told() {
    let b = run(&[created(INV_A), client_cancel(INV_A, -100)]);
    let t = apply(&b, &paid(INV_A, "cs_1", "pi_1", 15000, -90)).unwrap();
    assert_eq!(t.to, BookingState::RefundPending);
    let refunds: Vec<_> = t.effects.iter().filter(|e| e.moves_money()).collect();
    assert_eq!(
        refunds,
        [&Effect::IssueRefund {
            cause: RefundCause::late_payment("cs_1"),
            payment_intent: "pi_1".into(),
            amount: eur(15000),
            automatic: true,
        }]
    );
    assert!(t.booking.attention.is_empty(), "{:?}", t.booking.attention);
    let late_email = Effect::SendEmail {
        email: EmailKind::LatePaymentRefund,
    };
    assert!(
        !t.effects.contains(&late_email),
        "not before Stripe took it"
    );
    // Delivered again: nothing new.
    let again = apply(&t.booking, &paid(INV_A, "cs_1", "pi_1", 15000, -90)).unwrap();
    assert!(again.effects.iter().all(|e| !e.moves_money()));
    let issued = apply(
        &t.booking,
        &BookingEvent::RefundIssued {
            cause: RefundCause::late_payment("cs_1"),
            refund_id: "re_1".into(),
            status: RefundStatus::Succeeded,
            amount: None,
        },
    )
    .unwrap();
    assert_eq!(issued.to, BookingState::Refunded);
    assert_eq!(issued.effects, [late_email]);
    assert_eq!(issued.booking.refunded_minor(), 15000);
}

#[test]
fn a_late_payment_whose_refund_failed_needs_the_coach() {
    let b = run(&[
        created(INV_A),
        client_cancel(INV_A, -100),
        paid(INV_A, "cs_1", "pi_1", 15000, -90),
    ]);
    let failed = step(
        &b,
        &BookingEvent::RefundReported {
            refund: crate::booking::RefundFact {
                refund_id: "re_1".into(),
                payment_intent: Some("pi_1".into()),
                amount: eur(15000),
                status: RefundStatus::Failed,
                cause: Some(RefundCause::late_payment("cs_1")),
                failure_reason: Some("expired_or_canceled_card".into()),
            },
        },
    );
    assert!(failed
        .attention
        .contains(&AttentionReason::PaidAfterCancellation));
}

#[test]
fn paying_twice_is_flagged() {
    let b = run(&[
        created(INV_A),
        paid(INV_A, "cs_1", "pi_1", 15000, -100),
        paid(INV_A, "cs_2", "pi_2", 15000, -99),
    ]);
    assert!(b
        .attention
        .contains(&AttentionReason::PaidTwice { payments: 2 }));
}

#[test]
fn amount_mismatch_is_flagged() {
    let b = run(&[created(INV_A), paid(INV_A, "cs_1", "pi_1", 9000, -100)]);
    assert!(b.attention.contains(&AttentionReason::AmountMismatch {
        expected_minor: 15000,
        paid_minor: 9000
    }));
}

#[test]
fn paying_less_than_the_price_never_confirms_nor_sends_the_confirmation() {
    let b = run(&[created(INV_A)]);
    let t = apply(&b, &paid(INV_A, "cs_1", "pi_1", 9000, -100)).unwrap();
    assert_eq!(t.to, BookingState::AwaitingPayment);
    assert!(
        !t.effects.contains(&Effect::SendEmail {
            email: EmailKind::Confirmation
        }),
        "{:?}",
        t.effects
    );
    assert!(t
        .booking
        .attention
        .iter()
        .any(|a| a.code() == "amount_mismatch"));
    // The client pays the rest: confirmed, and only now the email.
    let t = apply(&t.booking, &paid(INV_A, "cs_2", "pi_2", 6000, -90)).unwrap();
    assert_eq!(t.to, BookingState::Confirmed);
    assert!(t.effects.contains(&Effect::SendEmail {
        email: EmailKind::Confirmation
    }));
}

#[test]
fn deadline_without_payment_expires_and_frees_the_slot() {
    let b = run(&[created(INV_A), expired_checkout(INV_A, "cs_1", -150)]);
    assert_eq!(b.state, BookingState::AwaitingPayment);
    let t = apply(&b, &timer(TimerKind::PaymentDeadline, -140)).unwrap();
    assert_eq!(t.to, BookingState::Expired);
    assert!(t
        .effects
        .iter()
        .any(|e| matches!(e, Effect::CancelCalendlyEvent { .. })));
}

#[test]
fn calendlys_echo_of_the_expiry_cancellation_keeps_the_booking_expired() {
    // Deadline: booked at -168 h with a 24 h window, so -144 h.
    let expired = run(&[
        created(INV_A),
        expired_checkout(INV_A, "cs_1", -150),
        timer(TimerKind::PaymentDeadline, -140),
    ]);
    let echo = host_cancel(INV_A, -139);
    let t = apply(&expired, &echo).unwrap();
    assert_eq!(t.to, BookingState::Expired);
    assert!(
        !t.effects.iter().any(|e| matches!(
            e,
            Effect::SendEmail {
                email: EmailKind::Cancellation
            }
        )),
        "no cancellation notice for a booking that expired: {:?}",
        t.effects
    );
    // The same facts in the other order end the same.
    let reordered = run(&[
        echo,
        created(INV_A),
        timer(TimerKind::PaymentDeadline, -140),
        expired_checkout(INV_A, "cs_1", -150),
    ]);
    assert_eq!(reordered.state, BookingState::Expired);
}

#[test]
fn a_cancellation_before_the_deadline_stays_a_cancellation() {
    let b = run(&[
        created(INV_A),
        client_cancel(INV_A, -150),
        timer(TimerKind::PaymentDeadline, -140),
    ]);
    assert_eq!(b.state, BookingState::Cancelled);
}

#[test]
fn failed_then_successful_payment_confirms() {
    let b = run(&[created(INV_A), failed_payment(INV_A, "cs_1", -120)]);
    assert_eq!(b.state, BookingState::PaymentFailed);
    let b = step(&b, &paid(INV_A, "cs_2", "pi_2", 15000, -110));
    assert_eq!(b.state, BookingState::Confirmed);
}

#[test]
fn refund_failure_is_flagged() {
    let b = run(&[
        created(INV_A),
        paid(INV_A, "cs_1", "pi_1", 15000, -100),
        client_cancel(INV_A, -72),
        refund_reported("re_1", "cancellation", 15000, RefundStatus::Failed),
    ]);
    assert_eq!(b.state, BookingState::Cancelled);
    assert!(b
        .attention
        .iter()
        .any(|a| matches!(a, AttentionReason::RefundFailed { .. })));
}

#[test]
fn a_failed_refund_never_counts_as_money_returned() {
    // Stripe's charge.refunded was sent when the refund was created; the refund then failed.
    let b = run(&[
        created(INV_A),
        paid(INV_A, "cs_1", "pi_1", 15000, -100),
        client_cancel(INV_A, -72),
        BookingEvent::ChargeRefunded {
            payment_intent: "pi_1".into(),
            amount_refunded: eur(15000),
        },
        refund_reported("re_1", "cancellation", 15000, RefundStatus::Failed),
    ]);
    assert_eq!(b.refunded_minor(), 0);
    assert_eq!(b.state, BookingState::Cancelled);
    assert!(b
        .attention
        .iter()
        .any(|a| matches!(a, AttentionReason::RefundFailed { .. })));
}

#[test]
fn refund_made_in_the_stripe_dashboard_is_reflected() {
    let b = run(&[
        created(INV_A),
        paid(INV_A, "cs_1", "pi_1", 15000, -100),
        BookingEvent::ChargeRefunded {
            payment_intent: "pi_1".into(),
            amount_refunded: eur(15000),
        },
    ]);
    assert_eq!(b.state, BookingState::Refunded);
    assert_eq!(b.refunded_minor(), 15000);
}

/// Found by the chaos harness: a refund made in the dashboard between a client's two
/// reschedules stayed on the middle booking, so the current one still offered the whole
/// payment for refund. The money facts now follow the payment to the current booking.
#[test]
fn a_dashboard_refund_follows_the_payment_down_a_reschedule_chain() {
    let refund = BookingEvent::ChargeRefunded {
        payment_intent: "pi_1".into(),
        amount_refunded: eur(7500),
    };
    // The middle booking learns of the refund before its own reschedule...
    let middle = run(&[rebooked(INV_B, INV_A), refund.clone()]);
    let carried = BookingEvent::PaymentCarried {
        from: super::super::BookingId::from_stored("bk_a"),
        payment: crate::booking::PaymentFact {
            checkout_session: "cs_1".into(),
            payment_intent: Some("pi_1".into()),
            amount: eur(15000),
            status: PaymentStatus::Succeeded,
            at: at(-100),
        },
    };
    let middle = step(&middle, &carried);
    assert_eq!(middle.refunded_minor(), 7500, "its own while it is current");
    let t = apply(&middle, &rescheduled(INV_B, INV_C, -50)).expect("applies");
    // ...then hands it on: it counts it no more, and forwards it with the payment.
    assert_eq!(t.booking.state, BookingState::Rescheduled);
    assert_eq!(t.booking.refunded_minor(), 0);
    let forwarded: Vec<&BookingEvent> = t
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Forward { invitee_uri, event } if invitee_uri == INV_C => Some(&**event),
            _ => None,
        })
        .collect();
    assert!(forwarded.contains(&&refund), "{forwarded:?}");
    let current = forwarded
        .iter()
        .fold(run(&[rebooked(INV_C, INV_B)]), |b, e| step(&b, e));
    assert_eq!(current.captured_minor(), 15000);
    assert_eq!(current.refunded_minor(), 7500);
    assert_eq!(current.refundable().map(|(_, m)| m.minor), Some(7500));

    // A fact reaching the rescheduled booking later is handed on at once.
    let t = apply(&t.booking, &dispute()).expect("applies");
    assert!(t.booking.dispute.is_none());
    assert!(t.effects.iter().any(|e| matches!(e,
        Effect::Forward { event, .. } if matches!(**event, BookingEvent::DisputeOpened { .. }))));
}

/// Each of two payments moves with a reschedule (they once shared one forward key, so
/// the second stayed behind).
#[test]
fn both_payments_move_with_a_reschedule() {
    let t = apply(
        &run(&[
            created(INV_A),
            paid(INV_A, "cs_1", "pi_1", 15000, -100),
            paid(INV_A, "cs_2", "pi_2", 15000, -99),
        ]),
        &rescheduled(INV_A, INV_B, -60),
    )
    .expect("applies");
    let carried = t
        .effects
        .iter()
        .filter(|e| {
            matches!(e,
            Effect::Forward { event, .. } if matches!(**event, BookingEvent::PaymentCarried { .. }))
        })
        .count();
    assert_eq!(carried, 2);
}

#[test]
fn dispute_and_no_show() {
    let b = run(&[
        created(INV_A),
        paid(INV_A, "cs_1", "pi_1", 15000, -100),
        dispute(),
    ]);
    assert_eq!(b.state, BookingState::Disputed);
    let b = run(&[
        created(INV_A),
        paid(INV_A, "cs_1", "pi_1", 15000, -100),
        BookingEvent::InviteeNoShow { at: at(0) },
    ]);
    assert_eq!(b.state, BookingState::NoShow);
}

#[test]
fn zero_decimal_currencies_refund_in_whole_yen() {
    let mut created = created(INV_A);
    if let BookingEvent::InviteeCreated { terms: Some(t), .. } = &mut created {
        t.price = jpy(15001);
    }
    let b = run(&[
        created,
        paid_money(INV_A, "cs_1", "pi_1", jpy(15001), -100),
        client_cancel(INV_A, -30),
    ]);
    let refund = b.refunds.get("cancellation").unwrap();
    assert_eq!(refund.amount, jpy(7500));
}

#[test]
fn coach_actions_are_refused_with_a_reason_where_they_make_no_sense() {
    let unpaid = run(&[created(INV_A)]);
    assert_eq!(
        apply(&unpaid, &coach_refund("x", 100)).unwrap_err(),
        Rejection::NothingToRefund
    );
    let err = apply(&unpaid, &BookingEvent::CoachMarkedNoShow { at: at(-1) }).unwrap_err();
    assert_eq!(err, Rejection::SessionNotStarted);
    let err = apply(
        &unpaid,
        &BookingEvent::CoachCorrected {
            state: BookingState::Confirmed,
            reason: "  ".into(),
        },
    )
    .unwrap_err();
    assert_eq!(err, Rejection::ReasonRequired);
    assert!(err.to_string().contains("reason"));
}

#[test]
fn hand_correction_sets_the_state_and_is_summarised() {
    let b = run(&[created(INV_A)]);
    let t = apply(
        &b,
        &BookingEvent::CoachCorrected {
            state: BookingState::Confirmed,
            reason: "Paid in cash".into(),
        },
    )
    .unwrap();
    assert_eq!(t.to, BookingState::Confirmed);
    assert!(t.summary.contains("Paid in cash"));
}

/// Every (state, event) pair has a defined outcome: a transition or a typed rejection,
/// never a panic; and coach actions are refused exactly where the table says.
#[test]
fn every_state_event_pair_has_a_defined_outcome() {
    let mut pairs = 0;
    for state in BookingState::ALL {
        let booking = booking_in(state);
        assert_eq!(booking.state, state, "fixture for {state:?}");
        for event in sample_events() {
            let outcome = std::panic::catch_unwind(|| apply(&booking, &event));
            let outcome =
                outcome.unwrap_or_else(|_| panic!("{state:?} x {} panicked", event.kind()));
            match outcome {
                Ok(t) => {
                    assert_eq!(t.from, state);
                    assert!(!t.summary.is_empty());
                    // A refund this app asks for never exceeds what was captured.
                    let asked: i64 = t
                        .effects
                        .iter()
                        .filter_map(|e| match e {
                            Effect::IssueRefund { amount, .. } => Some(amount.minor),
                            _ => None,
                        })
                        .sum();
                    assert!(
                        asked <= t.booking.captured_minor(),
                        "{state:?} x {}",
                        event.kind()
                    );
                }
                Err(rejection) => {
                    assert!(
                        event.is_coach_action(),
                        "{state:?} refused provider fact {}: {rejection}",
                        event.kind()
                    );
                    assert!(!rejection.to_string().is_empty());
                }
            }
            pairs += 1;
        }
    }
    assert!(pairs >= 11 * 18, "{pairs}");
}

#[test]
fn coach_cancel_is_allowed_exactly_in_open_states() {
    for state in BookingState::ALL {
        let outcome = apply(
            &booking_in(state),
            &BookingEvent::CoachCancelled {
                refund: RefundChoice::None,
                reason: "r".into(),
                at: at(-30),
            },
        );
        let allowed = matches!(
            state,
            BookingState::AwaitingPayment | BookingState::Confirmed | BookingState::PaymentFailed
        );
        assert_eq!(outcome.is_ok(), allowed, "{state:?}: {outcome:?}");
    }
}

#[test]
fn the_booking_serialises_and_reads_back() {
    let b = run(&[
        created(INV_A),
        paid(INV_A, "cs_1", "pi_1", 15000, -100),
        client_cancel(INV_A, -30),
    ]);
    let json = serde_json::to_string(&b).unwrap();
    let back: Booking = serde_json::from_str(&json).unwrap();
    assert_eq!(back, b);
    let _ = OffsetDateTime::UNIX_EPOCH + Duration::ZERO;
}

#[test]
fn an_unpaid_client_is_reminded_before_the_deadline_and_a_paid_one_is_not() {
    let t = apply(
        &Booking::new(super::super::BookingId::from_stored("bk")),
        &created(INV_A),
    )
    .unwrap();
    let reminder_at = t.effects.iter().find_map(|e| match e {
        Effect::ScheduleTimer {
            timer: TimerKind::PaymentReminder,
            at,
        } => Some(*at),
        _ => None,
    });
    // Booked 168 h ahead with a 24 h window: reminded 6 h before the deadline.
    assert_eq!(reminder_at, Some(at(-168 + 24 - 6)));
    let reminded = apply(&t.booking, &timer(TimerKind::PaymentReminder, -150)).unwrap();
    assert!(reminded.effects.contains(&Effect::SendEmail {
        email: EmailKind::PaymentReminder
    }));
    let paid = run(&[created(INV_A), paid(INV_A, "cs_1", "pi_1", 15000, -160)]);
    let not_reminded = apply(&paid, &timer(TimerKind::PaymentReminder, -150)).unwrap();
    assert!(!not_reminded
        .effects
        .iter()
        .any(|e| matches!(e, Effect::SendEmail { .. })));
}

#[test]
fn a_skipped_email_is_audited_and_changes_nothing_else() {
    let b = run(&[created(INV_A), paid(INV_A, "cs_1", "pi_1", 15000, -100)]);
    let t = apply(
        &b,
        &BookingEvent::EmailSkipped {
            effect_key: EffectKey::from_stored("email:payment-request"),
            reason: "the booking is already paid".into(),
        },
    )
    .unwrap();
    assert_eq!(t.booking, b);
    assert!(t.effects.is_empty());
    assert!(t.summary.contains("already paid"));
}

#[test]
fn the_coach_sends_the_payment_link_again_once_per_click() {
    let resend = |id: &str, hours: i64| BookingEvent::CoachResentPaymentLink {
        action_id: id.into(),
        at: at(hours),
    };
    let b = run(&[created(INV_A)]);
    let t = apply(&b, &resend("c1", -160)).unwrap();
    assert_eq!(
        t.effects,
        vec![Effect::ResendEmail {
            email: EmailKind::PaymentRequest,
            action_id: "c1".into()
        }]
    );
    assert_eq!(t.to, BookingState::AwaitingPayment);
    // The same click again: no new effect; another click: another email.
    let again = apply(&t.booking, &resend("c1", -159)).unwrap();
    assert!(again.effects.is_empty(), "{:?}", again.effects);
    let second = apply(&again.booking, &resend("c2", -158)).unwrap();
    assert_eq!(second.effects.len(), 1);

    // After a failed payment it is the recovery link.
    let failed = run(&[created(INV_A), failed_payment(INV_A, "cs_f", -165)]);
    let t = apply(&failed, &resend("c3", -160)).unwrap();
    assert!(t.effects.contains(&Effect::ResendEmail {
        email: EmailKind::PaymentReminder,
        action_id: "c3".into()
    }));

    // Refused when paid, after the deadline, or without an address.
    let paid = run(&[created(INV_A), paid(INV_A, "cs_1", "pi_1", 15000, -165)]);
    assert_eq!(
        apply(&paid, &resend("c4", -160)).unwrap_err(),
        Rejection::AlreadyPaid
    );
    assert_eq!(
        apply(&b, &resend("c5", -100)).unwrap_err(),
        Rejection::PaymentWindowClosed
    );
    let mut no_email = b.clone();
    if let Some(s) = no_email.schedule.as_mut() {
        s.client_email = None;
    }
    assert_eq!(
        apply(&no_email, &resend("c6", -160)).unwrap_err(),
        Rejection::NoClientEmail
    );
}

#[test]
fn the_page_offers_only_what_the_machine_accepts() {
    let none = CoachOffer::default();
    let awaiting = run(&[created(INV_A)]);
    assert_eq!(
        coach_offer(&awaiting, at(-160)),
        CoachOffer {
            cancel: true,
            resend_link: true,
            ..none
        }
    );
    assert!(
        !coach_offer(&awaiting, at(-100)).resend_link,
        "past the payment deadline the link no longer works"
    );
    let confirmed = run(&[created(INV_A), paid(INV_A, "cs_1", "pi_1", 15000, -100)]);
    assert_eq!(
        coach_offer(&confirmed, at(-1)),
        CoachOffer {
            cancel: true,
            refund: true,
            ..none
        },
        "before the session: no no-show, no payment link for a paid booking"
    );
    assert!(coach_offer(&confirmed, at(1)).no_show, "after the start");

    // Cancelled with everything refunded: only a hand correction is left.
    let refunded = step(&confirmed, &client_cancel(INV_A, -72));
    let refunded = step(&refunded, &refund_issued("cancellation", "re_1"));
    let refunded = step(
        &refunded,
        &refund_reported("re_1", "cancellation", 15000, RefundStatus::Succeeded),
    );
    assert_eq!(refunded.state, BookingState::Refunded);
    assert_eq!(coach_offer(&refunded, at(-1)), none);

    // Half refunded: the other half can still be refunded by hand.
    let half = step(&confirmed, &client_cancel(INV_A, -30));
    let half = step(&half, &refund_issued("cancellation", "re_1"));
    let half = step(
        &half,
        &refund_reported("re_1", "cancellation", 7500, RefundStatus::Succeeded),
    );
    assert_eq!(
        coach_offer(&half, at(-1)),
        CoachOffer {
            refund: true,
            ..none
        }
    );
}
