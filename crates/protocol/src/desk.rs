//! Wire types of the coach's desk at scale: a page of bookings, the dashboard's alerts and
//! their thresholds, and the report of a reconciliation run.

use serde::{Deserialize, Serialize};

pub use coachdesk_views::{AlertCounts, BookingPage};

/// Where the dashboard's alert banner turns on, in percent (0..=100) of the period's
/// attempts. A rate at or above `warn` warns; at or above `critical` it is critical.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertThresholds {
    pub webhook_failure_warn: f64,
    pub webhook_failure_critical: f64,
    pub payment_failure_warn: f64,
    pub payment_failure_critical: f64,
}

impl Default for AlertThresholds {
    /// The original plan's defaults: webhooks 5% / 10%, payments 5% / 15%.
    fn default() -> Self {
        Self {
            webhook_failure_warn: 5.0,
            webhook_failure_critical: 10.0,
            payment_failure_warn: 5.0,
            payment_failure_critical: 15.0,
        }
    }
}

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertLevel {
    Warning,
    Critical,
}

/// One alert for the banner: what is wrong, in words, and the way out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `webhook_failures`, `payment_failures` or `state_machine`.
    pub code: String,
    pub level: AlertLevel,
    pub message: String,
    /// What to do about it.
    pub way_out: String,
    /// The rate that tripped it, in percent, when it is a rate.
    pub rate_percent: Option<f64>,
}

/// The dashboard's alerts with what they were computed from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertReport {
    pub alerts: Vec<Alert>,
    pub thresholds: AlertThresholds,
    pub counts: AlertCounts,
    /// The period's length in days.
    pub days: u32,
}

/// What a reconciliation run found and fixed (the sync engine's report, for the coach).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileSummary {
    pub stripe_events_read: u64,
    /// Stripe events the app had missed, now applied (event ids).
    pub stripe_events_recovered: Vec<String>,
    pub calendly_invitees_checked: u64,
    /// Calendly facts the app had missed, now applied (`kind invitee-uri`).
    pub calendly_facts_recovered: Vec<String>,
    /// Sources that could not be read, in words (the other one still ran).
    pub errors: Vec<String>,
    /// When the run finished (RFC 3339).
    pub finished_at: String,
}
