//! The workload of one seed (pure): session types in three currencies and clients who book,
//! pay, cancel, reschedule, dispute and get cancelled by the coach. The same seed gives the
//! same plan, for the reference run and the faulted run alike.

use rand::Rng as _;
use rand::SeedableRng as _;
use rand_chacha::ChaCha8Rng;

/// A session type the coach sells: the simulator's event type and the terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionKind {
    pub slug: &'static str,
    pub name: &'static str,
    pub minutes: u32,
    /// Price in major units as the form takes it.
    pub price: &'static str,
    pub minor: i64,
    pub currency: &'static str,
    /// Refund tiers: (at least this many hours before the start, percent back).
    pub tiers: &'static [(u32, u8)],
}

/// EUR (2 decimals), JPY (none) and KWD (3), on the simulator's three event types.
pub const KINDS: [SessionKind; 3] = [
    SessionKind {
        slug: "coaching-60",
        name: "Coaching",
        minutes: 60,
        price: "150.00",
        minor: 15000,
        currency: "EUR",
        tiers: &[(48, 100), (24, 50)],
    },
    SessionKind {
        slug: "intro-30",
        name: "Intro",
        minutes: 30,
        price: "5000",
        minor: 5000,
        currency: "JPY",
        tiers: &[(72, 100), (0, 50)],
    },
    SessionKind {
        slug: "deep-dive-90",
        name: "Deep dive",
        minutes: 90,
        price: "45.500",
        minor: 45500,
        currency: "KWD",
        tiers: &[(24, 100)],
    },
];

/// How a client pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pay {
    /// Never pays.
    Never,
    Card,
    /// Pays through the link twice.
    Twice,
    /// A delayed method that succeeds or fails later.
    Delayed {
        succeeds: bool,
    },
    /// Pays only after the laptop slept two days (past the payment deadline).
    Late,
    /// Pays less: through the link of the cheaper intro session (a swapped slug), which
    /// must never confirm the booking.
    Less,
}

/// The kind whose link a client who pays less goes through.
pub const CHEAPEST_KIND: usize = 1;

/// The refund a coach's cancellation gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoachRefund {
    Policy,
    Full,
    Half,
    Nothing,
}

/// What happens after paying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Keep,
    ClientCancels,
    CoachCancels(CoachRefund),
    /// The coach refunds a third from the app.
    CoachRefundsPart,
    /// The coach refunds in Stripe's dashboard, all or half.
    DashboardRefund {
        full: bool,
    },
    Dispute {
        won: bool,
    },
    /// Calendly marks the client a no-show after the sleep (sessions then past).
    NoShow,
}

/// One client's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub n: usize,
    pub kind: usize,
    /// Hours from now to the session's start (half past, away from tier edges).
    pub start_hours: i64,
    pub pay: Pay,
    /// Reschedules before `then` (each moves the session one week later).
    pub reschedules: u8,
    pub then: Then,
}

impl Client {
    pub fn name(&self) -> String {
        format!("client{:02}", self.n)
    }

    pub fn email(&self) -> String {
        format!("client{:02}@example.com", self.n)
    }

    /// The kind whose payment link the client pays through (another one when paying less).
    pub fn paid_kind(&self) -> usize {
        if self.pay == Pay::Less {
            CHEAPEST_KIND
        } else {
            self.kind
        }
    }

    /// Whether the client's payment is captured before round two.
    pub fn pays_early(&self) -> bool {
        matches!(
            self.pay,
            Pay::Card | Pay::Twice | Pay::Less | Pay::Delayed { succeeds: true }
        )
    }
}

/// A seed's workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub seed: u64,
    pub clients: Vec<Client>,
}

/// Hours ahead a session can start: inside and outside each kind's tiers.
const START_HOURS: [i64; 5] = [10, 30, 60, 100, 200];

impl Workload {
    /// The plan of `seed` with `clients` clients.
    pub fn from_seed(seed: u64, clients: usize) -> Workload {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let clients = (0..clients)
            .map(|n| {
                let pay = match rng.gen_range(0..100) {
                    0..=49 => Pay::Card,
                    50..=54 => Pay::Less,
                    55..=64 => Pay::Twice,
                    65..=74 => Pay::Delayed {
                        succeeds: rng.gen_bool(0.6),
                    },
                    75..=84 => Pay::Late,
                    _ => Pay::Never,
                };
                let then = match rng.gen_range(0..100) {
                    0..=24 => Then::Keep,
                    25..=39 => Then::ClientCancels,
                    40..=59 => Then::CoachCancels(
                        [
                            CoachRefund::Policy,
                            CoachRefund::Full,
                            CoachRefund::Half,
                            CoachRefund::Nothing,
                        ][rng.gen_range(0..4)],
                    ),
                    60..=67 => Then::CoachRefundsPart,
                    68..=77 => Then::DashboardRefund {
                        full: rng.gen_bool(0.5),
                    },
                    78..=89 => Then::Dispute {
                        won: rng.gen_bool(0.5),
                    },
                    _ => Then::NoShow,
                };
                let kind = rng.gen_range(0..KINDS.len());
                // Nothing is cheaper than the cheapest: its clients pay by card.
                let pay = if pay == Pay::Less && kind == CHEAPEST_KIND {
                    Pay::Card
                } else {
                    pay
                };
                Client {
                    n,
                    kind,
                    start_hours: START_HOURS[rng.gen_range(0..START_HOURS.len())],
                    pay,
                    reschedules: if rng.gen_bool(0.25) {
                        rng.gen_range(1..=2)
                    } else {
                        0
                    },
                    then,
                }
            })
            .collect();
        Workload { seed, clients }
    }

    pub fn kind(&self, client: &Client) -> SessionKind {
        KINDS[client.kind % KINDS.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_plan_and_another_seed_another() {
        assert_eq!(Workload::from_seed(7, 20), Workload::from_seed(7, 20));
        assert_ne!(Workload::from_seed(7, 20), Workload::from_seed(8, 20));
    }

    #[test]
    fn a_hundred_seeds_cover_every_path() {
        let plans: Vec<Client> = (0..100)
            .flat_map(|s| Workload::from_seed(s, 20).clients)
            .collect();
        for pay in [
            Pay::Never,
            Pay::Card,
            Pay::Twice,
            Pay::Late,
            Pay::Less,
            Pay::Delayed { succeeds: true },
            Pay::Delayed { succeeds: false },
        ] {
            assert!(plans.iter().any(|c| c.pay == pay), "{pay:?}");
        }
        for then in [
            Then::Keep,
            Then::ClientCancels,
            Then::CoachCancels(CoachRefund::Policy),
            Then::CoachCancels(CoachRefund::Nothing),
            Then::CoachRefundsPart,
            Then::DashboardRefund { full: true },
            Then::Dispute { won: false },
            Then::NoShow,
        ] {
            assert!(plans.iter().any(|c| c.then == then), "{then:?}");
        }
        assert!(plans.iter().any(|c| c.reschedules == 2));
        assert!((0..3).all(|k| plans.iter().any(|c| c.kind == k)));
    }
}
