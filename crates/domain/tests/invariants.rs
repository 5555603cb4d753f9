//! Property tests of DESIGN.md section 4, invariants 1 and 2, over its scenario list.
//!
//! Each scenario is a list of provider deliveries (and, first, any coach action that
//! causes some of them). proptest shuffles the deliveries and duplicates some; a small
//! in-memory ledger routes each to its booking by invitee (as the store does) and applies
//! `Forward` effects at once. Every shuffle must end in the same states and the same money
//! movements as the delivery order, and refunds must never exceed captures.

use std::collections::BTreeMap;

use coachdesk_domain::booking::testkit::*;
use coachdesk_domain::booking::{
    apply, Booking, BookingEvent, BookingState, Effect, RefundCause, RefundChoice, RefundStatus,
    TimerKind,
};
use proptest::prelude::*;

/// A delivery addressed to a booking by invitee URI.
type Delivery = (&'static str, BookingEvent);

/// Per booking (state, captured, refunded), and the refunds asked for.
type Outcome = (
    BTreeMap<String, (BookingState, i64, i64)>,
    BTreeMap<(String, RefundCause), (String, i64)>,
);

/// A scenario's expected end: its name, the bookings' states, the refunds asked for.
type Expected<'a> = (&'a str, &'a [(&'a str, BookingState)], i64);

#[derive(Default)]
struct Ledger {
    bookings: BTreeMap<String, Booking>,
    /// Money movements asked for: (booking, cause) -> (payment intent, amount), one per
    /// cause as the outbox keeps them.
    refunds: BTreeMap<(String, RefundCause), (String, i64)>,
}

impl Ledger {
    fn deliver(&mut self, invitee: &str, event: &BookingEvent) {
        let booking = self
            .bookings
            .entry(invitee.to_owned())
            .or_insert_with(|| Booking::new(coachdesk_domain::BookingId::from_stored(invitee)));
        let Ok(t) = apply(booking, event) else {
            return;
        };
        *booking = t.booking;
        for effect in t.effects {
            match effect {
                Effect::Forward { invitee_uri, event } => self.deliver(&invitee_uri, &event),
                Effect::IssueRefund {
                    cause,
                    payment_intent,
                    amount,
                    ..
                } => {
                    // As the outbox does (UNIQUE booking + effect key, and the key is
                    // Stripe's Idempotency-Key): a cause is refunded once, first ask wins.
                    self.refunds
                        .entry((invitee.to_owned(), cause))
                        .or_insert((payment_intent, amount.minor));
                }
                _ => {}
            }
        }
    }

    fn outcome(&self) -> Outcome {
        let states = self
            .bookings
            .iter()
            .map(|(k, b)| (k.clone(), (b.state, b.captured_minor(), b.refunded_minor())))
            .collect();
        (states, self.refunds.clone())
    }

    fn check_money(&self) {
        for (invitee, b) in &self.bookings {
            let asked: i64 = self
                .refunds
                .iter()
                .filter(|((inv, _), _)| inv == invitee)
                .map(|(_, (_, amount))| amount)
                .sum();
            assert!(
                asked <= b.captured_minor(),
                "{invitee}: refunds {asked} > captured {}",
                b.captured_minor()
            );
            assert!(b.refunded_minor() <= b.captured_minor().max(b.refunded_minor()));
        }
    }
}

struct Scenario {
    name: &'static str,
    /// Applied first, in order (coach actions and what they cause come after them).
    prefix: Vec<Delivery>,
    deliveries: Vec<Delivery>,
}

fn scenarios() -> Vec<Scenario> {
    let pay = |h| paid(INV_A, "cs_1", "pi_1", 15000, h);
    let s = |name, deliveries| Scenario {
        name,
        prefix: vec![],
        deliveries,
    };
    vec![
        s(
            "happy path",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, timer(TimerKind::SessionEnded, 1)),
            ],
        ),
        s(
            "client cancels with full refund",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, client_cancel(INV_A, -72)),
                (
                    INV_A,
                    refund_reported("re_1", "cancellation", 15000, RefundStatus::Succeeded),
                ),
            ],
        ),
        s(
            "client cancels with half refund",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, client_cancel(INV_A, -30)),
            ],
        ),
        s(
            "client cancels too late",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, client_cancel(INV_A, -2)),
            ],
        ),
        s(
            "reschedule carries the payment",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, rescheduled(INV_A, INV_B, -60)),
                (INV_B, rebooked(INV_B, INV_A)),
            ],
        ),
        s(
            "reschedule then cancel the new booking",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, rescheduled(INV_A, INV_B, -60)),
                (INV_B, rebooked(INV_B, INV_A)),
                (INV_B, client_cancel(INV_B, -10)),
            ],
        ),
        s(
            "payment fails then succeeds",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, failed_payment(INV_A, "cs_f", -120)),
                (INV_A, paid(INV_A, "cs_2", "pi_2", 15000, -110)),
            ],
        ),
        s(
            "checkout expires and the deadline passes",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, expired_checkout(INV_A, "cs_x", -150)),
                (INV_A, timer(TimerKind::PaymentDeadline, -144)),
            ],
        ),
        s(
            "payment arrives after cancellation",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, client_cancel(INV_A, -100)),
                (INV_A, pay(-90)),
            ],
        ),
        s(
            "client pays twice",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, paid(INV_A, "cs_2", "pi_2", 15000, -99)),
            ],
        ),
        s(
            "refund fails",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, client_cancel(INV_A, -72)),
                (
                    INV_A,
                    refund_reported("re_1", "cancellation", 15000, RefundStatus::Failed),
                ),
            ],
        ),
        s(
            "refund made in the dashboard",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (
                    INV_A,
                    BookingEvent::ChargeRefunded {
                        payment_intent: "pi_1".into(),
                        amount_refunded: eur(5000),
                    },
                ),
                (
                    INV_A,
                    refund_reported("re_ext", "dashboard", 5000, RefundStatus::Succeeded),
                ),
            ],
        ),
        s(
            "dispute",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, dispute()),
            ],
        ),
        s(
            "no-show",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, BookingEvent::InviteeNoShow { at: at(0) }),
            ],
        ),
        s("zero-decimal currency", {
            let mut c = created(INV_A);
            if let BookingEvent::InviteeCreated { terms: Some(t), .. } = &mut c {
                t.price = jpy(15001);
            }
            let mut cancel = client_cancel(INV_A, -30);
            if let BookingEvent::InviteeCanceled { terms: Some(t), .. } = &mut cancel {
                t.price = jpy(15001);
            }
            vec![
                (INV_A, c),
                (INV_A, paid_money(INV_A, "cs_1", "pi_1", jpy(15001), -100)),
                (INV_A, cancel),
            ]
        }),
        s(
            "amount mismatch",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, paid(INV_A, "cs_1", "pi_1", 9000, -100)),
            ],
        ),
        s(
            "dashboard refund between two reschedules",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, rescheduled(INV_A, INV_B, -60)),
                (INV_B, rebooked(INV_B, INV_A)),
                (INV_B, rescheduled(INV_B, INV_C, -50)),
                (INV_C, rebooked(INV_C, INV_B)),
                // Routed by payment intent to whichever booking held the payment then.
                (
                    INV_B,
                    BookingEvent::ChargeRefunded {
                        payment_intent: "pi_1".into(),
                        amount_refunded: eur(7500),
                    },
                ),
                (INV_A, dashboard_refund("re_dash", 7500)),
            ],
        ),
        s(
            "dispute lost, then the booking is rescheduled",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, dispute()),
                (
                    INV_A,
                    BookingEvent::DisputeClosed {
                        payment_intent: "pi_1".into(),
                        amount: eur(15000),
                        reason: "fraudulent".into(),
                        outcome: coachdesk_domain::booking::DisputeOutcome::Lost,
                        at: at(30),
                    },
                ),
                (INV_A, rescheduled(INV_A, INV_B, -60)),
                (INV_B, rebooked(INV_B, INV_A)),
            ],
        ),
        s(
            "client pays twice, then reschedules",
            vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (INV_A, paid(INV_A, "cs_2", "pi_2", 15000, -99)),
                (INV_A, rescheduled(INV_A, INV_B, -60)),
                (INV_B, rebooked(INV_B, INV_A)),
            ],
        ),
        Scenario {
            name: "coach cancels with a partial refund",
            prefix: vec![
                (INV_A, created(INV_A)),
                (INV_A, pay(-100)),
                (
                    INV_A,
                    BookingEvent::CoachCancelled {
                        refund: RefundChoice::Amount { amount: eur(5000) },
                        reason: "ill".into(),
                        at: at(-30),
                    },
                ),
            ],
            deliveries: vec![
                (INV_A, host_cancel(INV_A, -30)),
                (INV_A, refund_issued("cancellation", "re_1")),
                (
                    INV_A,
                    refund_reported("re_1", "cancellation", 5000, RefundStatus::Succeeded),
                ),
            ],
        },
    ]
}

fn run(scenario: &Scenario, order: &[usize], duplicates: &[usize]) -> Ledger {
    let mut ledger = Ledger::default();
    for (invitee, event) in &scenario.prefix {
        ledger.deliver(invitee, event);
    }
    for &i in order {
        let (invitee, event) = &scenario.deliveries[i];
        ledger.deliver(invitee, event);
        if duplicates.contains(&i) {
            ledger.deliver(invitee, event);
        }
    }
    ledger.check_money();
    ledger
}

fn shuffled_with_duplicates() -> impl Strategy<Value = (usize, Vec<usize>, Vec<usize>)> {
    (0..scenarios().len()).prop_flat_map(|index| {
        let n = scenarios()[index].deliveries.len();
        (
            Just(index),
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            proptest::collection::vec(0..n, 0..n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Invariant 1 (order independence) and 2 (money) for every scenario.
    #[test]
    fn any_order_with_duplicates_ends_the_same((index, order, duplicates) in shuffled_with_duplicates()) {
        let all = scenarios();
        let scenario = &all[index];
        let in_order: Vec<usize> = (0..scenario.deliveries.len()).collect();
        let expected = run(scenario, &in_order, &[]).outcome();
        let got = run(scenario, &order, &duplicates).outcome();
        prop_assert_eq!(got, expected, "scenario {}: order {:?}, duplicates {:?}", scenario.name, order, duplicates);
    }
}

/// The expected end of each scenario, so the property above compares against the right thing.
#[test]
fn scenarios_end_where_the_design_says() {
    let expected: &[Expected] = &[
        ("happy path", &[(INV_A, BookingState::Completed)], 0),
        (
            "client cancels with full refund",
            &[(INV_A, BookingState::Refunded)],
            15000,
        ),
        (
            "client cancels with half refund",
            &[(INV_A, BookingState::RefundPending)],
            7500,
        ),
        (
            "client cancels too late",
            &[(INV_A, BookingState::Cancelled)],
            0,
        ),
        (
            "reschedule carries the payment",
            &[
                (INV_A, BookingState::Rescheduled),
                (INV_B, BookingState::Confirmed),
            ],
            0,
        ),
        (
            "reschedule then cancel the new booking",
            &[
                (INV_A, BookingState::Rescheduled),
                (INV_B, BookingState::RefundPending),
            ],
            7500,
        ),
        (
            "payment fails then succeeds",
            &[(INV_A, BookingState::Confirmed)],
            0,
        ),
        (
            "checkout expires and the deadline passes",
            &[(INV_A, BookingState::Expired)],
            0,
        ),
        // A payment for a cancelled booking goes back in full (issue 11, item 3).
        (
            "payment arrives after cancellation",
            &[(INV_A, BookingState::RefundPending)],
            15000,
        ),
        ("client pays twice", &[(INV_A, BookingState::Confirmed)], 0),
        ("refund fails", &[(INV_A, BookingState::Cancelled)], 15000),
        (
            "refund made in the dashboard",
            &[(INV_A, BookingState::Confirmed)],
            0,
        ),
        ("dispute", &[(INV_A, BookingState::Disputed)], 0),
        ("no-show", &[(INV_A, BookingState::NoShow)], 0),
        (
            "zero-decimal currency",
            &[(INV_A, BookingState::RefundPending)],
            7500,
        ),
        // Paying less than the price never confirms (issue 11, item 3): flagged, unpaid.
        (
            "amount mismatch",
            &[(INV_A, BookingState::AwaitingPayment)],
            0,
        ),
        // The refund follows the payment to the current booking, wherever it landed.
        (
            "dashboard refund between two reschedules",
            &[
                (INV_A, BookingState::Rescheduled),
                (INV_B, BookingState::Rescheduled),
                (INV_C, BookingState::Confirmed),
            ],
            0,
        ),
        (
            "dispute lost, then the booking is rescheduled",
            &[
                (INV_A, BookingState::Rescheduled),
                (INV_B, BookingState::Refunded),
            ],
            0,
        ),
        (
            "client pays twice, then reschedules",
            &[
                (INV_A, BookingState::Rescheduled),
                (INV_B, BookingState::Confirmed),
            ],
            0,
        ),
        (
            "coach cancels with a partial refund",
            &[(INV_A, BookingState::Refunded)],
            5000,
        ),
    ];
    let all = scenarios();
    assert_eq!(all.len(), expected.len());
    for (scenario, (name, states, refunds_asked)) in all.iter().zip(expected) {
        assert_eq!(scenario.name, *name);
        let order: Vec<usize> = (0..scenario.deliveries.len()).collect();
        let ledger = run(scenario, &order, &[]);
        for (invitee, state) in *states {
            assert_eq!(ledger.bookings[*invitee].state, *state, "{name}: {invitee}");
        }
        let asked: i64 = ledger.refunds.values().map(|(_, amount)| amount).sum();
        assert_eq!(asked, *refunds_asked, "{name}");
    }
}

/// Any event from a pool that mixes payments, cancellations, coach refunds of random
/// amounts, outside refunds and refund reports.
fn money_event() -> impl Strategy<Value = BookingEvent> {
    let amount = 1..20_000_i64;
    prop_oneof![
        Just(created(INV_A)),
        (-200..-1_i64).prop_map(|h| paid(INV_A, "cs_1", "pi_1", 15000, h)),
        (-200..-1_i64).prop_map(|h| paid(INV_A, "cs_2", "pi_2", 15000, h)),
        (-150..0_i64).prop_map(|h| client_cancel(INV_A, h)),
        (-150..0_i64, 0..20_000_i64).prop_map(|(h, minor)| BookingEvent::CoachCancelled {
            refund: RefundChoice::Amount {
                amount: eur(minor.max(1))
            },
            reason: "r".into(),
            at: at(h),
        }),
        (0..4_u8, amount.clone()).prop_map(|(id, minor)| coach_refund(&format!("r{id}"), minor)),
        amount
            .clone()
            .prop_map(|minor| BookingEvent::ChargeRefunded {
                payment_intent: "pi_1".into(),
                amount_refunded: eur(minor.min(15000)),
            }),
        // Refunds made in Stripe's dashboard.
        (0..3_u8, amount.clone()).prop_map(|(status, minor)| BookingEvent::RefundReported {
            refund: coachdesk_domain::booking::RefundFact {
                refund_id: format!("re_ext{status}"),
                payment_intent: Some("pi_1".into()),
                amount: eur(minor.min(15000)),
                status: [
                    RefundStatus::Succeeded,
                    RefundStatus::Failed,
                    RefundStatus::Pending
                ][status as usize],
                cause: None,
                failure_reason: None,
            },
        }),
        // Stripe's answers to this app's own refund requests.
        (0..3_u8).prop_map(|status| BookingEvent::RefundIssued {
            cause: RefundCause::cancellation(),
            refund_id: "re_1".into(),
            status: [
                RefundStatus::Succeeded,
                RefundStatus::Failed,
                RefundStatus::Pending
            ][status as usize],
            amount: None,
        }),
        Just(dispute()),
        Just(timer(TimerKind::SessionEnded, 1)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Invariant 2: whatever happens, the refunds this app asks for never exceed what was
    /// captured, in all and per payment.
    #[test]
    fn refunds_never_exceed_captures(events in proptest::collection::vec(money_event(), 1..25)) {
        let mut ledger = Ledger::default();
        for event in &events {
            ledger.deliver(INV_A, event);
            let booking = &ledger.bookings[INV_A];
            // This app's refunds that are (or will be) money out: asked and not failed.
            let ours = |pi: Option<&str>| -> i64 {
                booking
                    .refunds
                    .values()
                    .filter(|r| r.cause.is_some() && r.status.commits_money())
                    .filter(|r| pi.is_none() || r.payment_intent.as_deref() == pi)
                    .map(|r| r.amount.minor)
                    .sum()
            };
            prop_assert!(ours(None) <= booking.captured_minor(), "{} refunded of {} after {}", ours(None), booking.captured_minor(), event.kind());
            for payment in booking.succeeded_payments() {
                let pi = payment.fact.payment_intent.as_deref();
                prop_assert!(ours(pi) <= payment.fact.amount.minor, "{:?} over-refunded after {}", pi, event.kind());
            }
        }
    }
}
