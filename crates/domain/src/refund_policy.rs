//! Refund policies: how much of a payment comes back when a session is cancelled.
//!
//! A policy is a list of tiers ("100% if cancelled at least 48 h before the start, 50% at
//! least 24 h before, nothing after"). The coach may always override the amount by hand;
//! that is a coach action, not part of the policy.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::{Duration, OffsetDateTime};

use crate::money::Money;

/// Cancelled at least `min_hours_before` the start: `percent` of the payment back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundTier {
    pub min_hours_before: u32,
    pub percent: u8,
}

/// Why a list of tiers is not a policy.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    #[error("a refund percentage must be between 0 and 100; {0}% is not")]
    PercentOutOfRange(u8),
    #[error("two tiers start at {0} h before the session; merge them")]
    DuplicateTier(u32),
    #[error("an earlier cancellation must never get less back: {earlier_percent}% at {earlier_hours} h is below {later_percent}% at {later_hours} h")]
    NotMonotonic {
        earlier_hours: u32,
        earlier_percent: u8,
        later_hours: u32,
        later_percent: u8,
    },
}

/// Tiers sorted from the earliest cancellation (most hours before) to the latest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundPolicy {
    tiers: Vec<RefundTier>,
}

impl Default for RefundPolicy {
    /// 100% up to 48 h before, 50% up to 24 h before, nothing after.
    fn default() -> Self {
        Self {
            tiers: vec![
                RefundTier {
                    min_hours_before: 48,
                    percent: 100,
                },
                RefundTier {
                    min_hours_before: 24,
                    percent: 50,
                },
            ],
        }
    }
}

impl RefundPolicy {
    /// Validates and sorts tiers. An empty list means "no refunds".
    pub fn new(mut tiers: Vec<RefundTier>) -> Result<Self, PolicyError> {
        for tier in &tiers {
            if tier.percent > 100 {
                return Err(PolicyError::PercentOutOfRange(tier.percent));
            }
        }
        tiers.sort_by_key(|tier| std::cmp::Reverse(tier.min_hours_before));
        for pair in tiers.windows(2) {
            let (earlier, later) = (pair[0], pair[1]);
            if earlier.min_hours_before == later.min_hours_before {
                return Err(PolicyError::DuplicateTier(earlier.min_hours_before));
            }
            if earlier.percent < later.percent {
                return Err(PolicyError::NotMonotonic {
                    earlier_hours: earlier.min_hours_before,
                    earlier_percent: earlier.percent,
                    later_hours: later.min_hours_before,
                    later_percent: later.percent,
                });
            }
        }
        Ok(Self { tiers })
    }

    pub fn tiers(&self) -> &[RefundTier] {
        &self.tiers
    }

    /// The percentage due for a cancellation at `cancelled_at` of a session starting at `starts_at`.
    pub fn percent_for(&self, starts_at: OffsetDateTime, cancelled_at: OffsetDateTime) -> u8 {
        let notice = starts_at - cancelled_at;
        self.tiers
            .iter()
            .find(|tier| notice >= Duration::hours(i64::from(tier.min_hours_before)))
            .map_or(0, |tier| tier.percent)
    }

    /// The percentage due for a cancellation `hours_before` the start.
    pub fn percent_at_notice(&self, hours_before: u32) -> u8 {
        self.tiers
            .iter()
            .find(|tier| hours_before >= tier.min_hours_before)
            .map_or(0, |tier| tier.percent)
    }

    /// What the session-type form previews: "Cancelled 30 h before: 50% back, 75.00 EUR."
    pub fn preview_sentence(&self, price: Money, hours_before: u32) -> String {
        let percent = self.percent_at_notice(hours_before);
        format!(
            "Cancelled {hours_before} h before: {percent}% back, {}.",
            price.percent(percent)
        )
    }

    /// The amount due back out of `paid`.
    pub fn refund_for(
        &self,
        paid: Money,
        starts_at: OffsetDateTime,
        cancelled_at: OffsetDateTime,
    ) -> Money {
        paid.percent(self.percent_for(starts_at, cancelled_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use time::macros::datetime;

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::parse("EUR").unwrap())
    }

    #[test]
    fn default_policy_gives_full_half_and_nothing() {
        let policy = RefundPolicy::default();
        let start = datetime!(2026-12-01 10:00 UTC);
        let cases = [
            (Duration::hours(72), 15000),
            (Duration::hours(48), 15000),
            (Duration::hours(47), 7500),
            (Duration::hours(30), 7500),
            (Duration::hours(24), 7500),
            (Duration::hours(23), 0),
            (Duration::hours(-2), 0),
        ];
        for (notice, expected) in cases {
            let got = policy.refund_for(eur(15000), start, start - notice);
            assert_eq!(got.minor, expected, "notice {notice}");
        }
    }

    #[test]
    fn tiers_are_sorted_and_validated() {
        let policy = RefundPolicy::new(vec![
            RefundTier {
                min_hours_before: 24,
                percent: 50,
            },
            RefundTier {
                min_hours_before: 72,
                percent: 100,
            },
        ])
        .unwrap();
        assert_eq!(policy.tiers()[0].min_hours_before, 72);
        assert!(matches!(
            RefundPolicy::new(vec![RefundTier {
                min_hours_before: 1,
                percent: 101
            }]),
            Err(PolicyError::PercentOutOfRange(101))
        ));
        assert!(matches!(
            RefundPolicy::new(vec![
                RefundTier {
                    min_hours_before: 48,
                    percent: 20
                },
                RefundTier {
                    min_hours_before: 24,
                    percent: 50
                }
            ]),
            Err(PolicyError::NotMonotonic { .. })
        ));
        assert!(matches!(
            RefundPolicy::new(vec![
                RefundTier {
                    min_hours_before: 24,
                    percent: 50
                },
                RefundTier {
                    min_hours_before: 24,
                    percent: 40
                }
            ]),
            Err(PolicyError::DuplicateTier(24))
        ));
    }

    #[test]
    fn previews_state_the_share_and_the_money() {
        let policy = RefundPolicy::default();
        assert_eq!(
            policy.preview_sentence(eur(15000), 30),
            "Cancelled 30 h before: 50% back, 75.00 EUR."
        );
        assert_eq!(
            policy.preview_sentence(eur(15000), 48),
            "Cancelled 48 h before: 100% back, 150.00 EUR."
        );
        assert_eq!(
            policy.preview_sentence(eur(15000), 3),
            "Cancelled 3 h before: 0% back, 0.00 EUR."
        );
        let start = datetime!(2026-12-01 10:00 UTC);
        for hours in [0u32, 23, 24, 47, 48, 100] {
            assert_eq!(
                policy.percent_at_notice(hours),
                policy.percent_for(start, start - Duration::hours(i64::from(hours))),
                "the preview and the cancellation agree at {hours} h"
            );
        }
    }

    #[test]
    fn empty_policy_refunds_nothing() {
        let policy = RefundPolicy::new(vec![]).unwrap();
        let start = datetime!(2026-12-01 10:00 UTC);
        assert_eq!(
            policy
                .refund_for(eur(15000), start, start - Duration::days(30))
                .minor,
            0
        );
    }
}
