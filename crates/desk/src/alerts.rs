//! The dashboard's alerts: rates of webhook and payment failures against thresholds the
//! coach can change (kept in the settings table), and any event the state machine could
//! not place. [`evaluate_alerts`] is pure; the store only counts.

use coachdesk_protocol::desk::{Alert, AlertCounts, AlertLevel, AlertReport, AlertThresholds};
use coachdesk_protocol::ipc::FieldError;
use time::{Duration, OffsetDateTime};

use coachdesk_store::{Store, StoreError};

/// The settings key the thresholds are kept under (JSON).
pub const ALERT_THRESHOLDS_SETTING: &str = "alerts.thresholds";

/// `part / whole` in percent; `None` when nothing happened.
fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

fn level(rate: f64, warn: f64, critical: f64) -> Option<AlertLevel> {
    if rate >= critical {
        Some(AlertLevel::Critical)
    } else if rate >= warn {
        Some(AlertLevel::Warning)
    } else {
        None
    }
}

/// The alerts the counts call for under `thresholds`, most severe first.
pub fn evaluate_alerts(counts: &AlertCounts, thresholds: &AlertThresholds) -> Vec<Alert> {
    let mut alerts = Vec::new();
    if let Some(r) = rate(counts.webhooks_failed, counts.webhooks) {
        if let Some(level) = level(
            r,
            thresholds.webhook_failure_warn,
            thresholds.webhook_failure_critical,
        ) {
            alerts.push(Alert {
                code: "webhook_failures".into(),
                level,
                message: format!(
                    "{:.1}% of the webhooks from Stripe and Calendly could not be processed ({} of {}).",
                    r, counts.webhooks_failed, counts.webhooks
                ),
                way_out: "Open the webhook log filtered on \"failed\", read the payload and the note, then replay the event once the cause is fixed; run a reconciliation to fetch anything missed.".into(),
                rate_percent: Some(r),
            });
        }
    }
    if let Some(r) = rate(counts.payments_failed, counts.payments_ended) {
        if let Some(level) = level(
            r,
            thresholds.payment_failure_warn,
            thresholds.payment_failure_critical,
        ) {
            alerts.push(Alert {
                code: "payment_failures".into(),
                level,
                message: format!(
                    "{:.1}% of payment attempts failed ({} of {}).",
                    r, counts.payments_failed, counts.payments_ended
                ),
                way_out: "Filter the bookings on \"Payment failed\" and send those clients the payment link again; check the Stripe dashboard if many fail the same way.".into(),
                rate_percent: Some(r),
            });
        }
    }
    if counts.unconfirmed > 0 {
        alerts.push(Alert {
            code: "unconfirmed_webhooks".into(),
            level: AlertLevel::Critical,
            message: format!(
                "{} signed webhook{} said something Stripe or Calendly do not confirm (forged or replayed); nothing was confirmed and no money moved.",
                counts.unconfirmed,
                plural(counts.unconfirmed)
            ),
            way_out: "Open the webhook log filtered on \"unconfirmed\" and read the notes. If you did not expect them, someone may hold a signing key: create a new relay token and renew the Stripe and Calendly webhook signing secrets.".into(),
            rate_percent: None,
        });
    }
    let stuck = counts.parked + counts.internal_failed;
    if stuck > 0 {
        let mut parts = Vec::new();
        if counts.parked > 0 {
            parts.push(format!(
                "{} event{} waiting for a booking {} name{}",
                counts.parked,
                plural(counts.parked),
                if counts.parked == 1 { "it" } else { "they" },
                if counts.parked == 1 { "s" } else { "" },
            ));
        }
        if counts.internal_failed > 0 {
            parts.push(format!(
                "{} timer or effect outcome{} that could not be applied",
                counts.internal_failed,
                plural(counts.internal_failed)
            ));
        }
        alerts.push(Alert {
            code: "state_machine".into(),
            level: AlertLevel::Warning,
            message: format!("The booking state machine could not place {}.", parts.join(" and ")),
            way_out: "Open the webhook log filtered on \"parked\" or \"failed\": run a reconciliation so the missing booking arrives, then replay the event.".into(),
            rate_percent: None,
        });
    }
    alerts.sort_by_key(|a| std::cmp::Reverse(a.level));
    alerts
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Checks thresholds the coach typed: each within 0..=100, warning below critical.
pub fn validate_thresholds(t: &AlertThresholds) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let fields = [
        ("webhook_failure_warn", t.webhook_failure_warn),
        ("webhook_failure_critical", t.webhook_failure_critical),
        ("payment_failure_warn", t.payment_failure_warn),
        ("payment_failure_critical", t.payment_failure_critical),
    ];
    for (field, value) in fields {
        if !value.is_finite() || !(0.0..=100.0).contains(&value) {
            errors.push(FieldError {
                field: field.into(),
                message: "Enter a percentage between 0 and 100.".into(),
            });
        }
    }
    for (warn, critical, field) in [
        (
            t.webhook_failure_warn,
            t.webhook_failure_critical,
            "webhook_failure_critical",
        ),
        (
            t.payment_failure_warn,
            t.payment_failure_critical,
            "payment_failure_critical",
        ),
    ] {
        if errors.is_empty() && critical < warn {
            errors.push(FieldError {
                field: field.into(),
                message: "The critical level must be at least the warning level.".into(),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The dashboard's alerts and the coach's thresholds, over the store's settings and counts.
pub trait Alerts {
    /// The coach's thresholds, or the defaults when never set (or unreadable).
    fn alert_thresholds(&self) -> Result<AlertThresholds, StoreError>;

    /// Validates and saves new thresholds.
    fn set_alert_thresholds(
        &self,
        thresholds: &AlertThresholds,
    ) -> Result<AlertThresholds, StoreError>;

    /// The dashboard's alerts over the last `days` days up to `now`.
    fn dashboard_alerts(&self, now: OffsetDateTime, days: u32) -> Result<AlertReport, StoreError>;
}

impl Alerts for Store {
    fn alert_thresholds(&self) -> Result<AlertThresholds, StoreError> {
        Ok(self
            .setting(ALERT_THRESHOLDS_SETTING)?
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default())
    }

    fn set_alert_thresholds(
        &self,
        thresholds: &AlertThresholds,
    ) -> Result<AlertThresholds, StoreError> {
        validate_thresholds(thresholds).map_err(StoreError::Invalid)?;
        let json =
            serde_json::to_string(thresholds).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.set_setting(ALERT_THRESHOLDS_SETTING, &json)?;
        Ok(thresholds.clone())
    }

    fn dashboard_alerts(&self, now: OffsetDateTime, days: u32) -> Result<AlertReport, StoreError> {
        let days = days.clamp(1, 366);
        let counts = self.alert_counts(now - Duration::days(i64::from(days)), now)?;
        let thresholds = self.alert_thresholds()?;
        Ok(AlertReport {
            alerts: evaluate_alerts(&counts, &thresholds),
            thresholds,
            counts,
            days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(webhooks: u64, webhooks_failed: u64, payments: u64, failed: u64) -> AlertCounts {
        AlertCounts {
            webhooks,
            webhooks_failed,
            payments_ended: payments,
            payments_failed: failed,
            parked: 0,
            internal_failed: 0,
            unconfirmed: 0,
        }
    }

    fn levels(alerts: &[Alert]) -> Vec<(String, AlertLevel)> {
        alerts.iter().map(|a| (a.code.clone(), a.level)).collect()
    }

    #[test]
    fn nothing_happened_means_no_alert() {
        assert!(evaluate_alerts(&AlertCounts::default(), &AlertThresholds::default()).is_empty());
    }

    #[test]
    fn webhook_failures_warn_at_5_and_are_critical_at_10_percent() {
        let t = AlertThresholds::default();
        assert!(evaluate_alerts(&counts(1000, 49, 0, 0), &t).is_empty());
        assert_eq!(
            levels(&evaluate_alerts(&counts(1000, 50, 0, 0), &t)),
            [("webhook_failures".into(), AlertLevel::Warning)]
        );
        assert_eq!(
            levels(&evaluate_alerts(&counts(1000, 99, 0, 0), &t)),
            [("webhook_failures".into(), AlertLevel::Warning)]
        );
        let critical = evaluate_alerts(&counts(1000, 100, 0, 0), &t);
        assert_eq!(
            levels(&critical),
            [("webhook_failures".into(), AlertLevel::Critical)]
        );
        assert!(critical[0].message.contains("10.0%"), "{critical:?}");
        assert!(critical[0].message.contains("100 of 1000"));
        assert!(critical[0].way_out.contains("webhook log"));
    }

    #[test]
    fn payment_failures_warn_at_5_and_are_critical_at_15_percent() {
        let t = AlertThresholds::default();
        assert!(evaluate_alerts(&counts(0, 0, 100, 4), &t).is_empty());
        assert_eq!(
            levels(&evaluate_alerts(&counts(0, 0, 100, 5), &t)),
            [("payment_failures".into(), AlertLevel::Warning)]
        );
        assert_eq!(
            levels(&evaluate_alerts(&counts(0, 0, 100, 14), &t)),
            [("payment_failures".into(), AlertLevel::Warning)]
        );
        assert_eq!(
            levels(&evaluate_alerts(&counts(0, 0, 100, 15), &t)),
            [("payment_failures".into(), AlertLevel::Critical)]
        );
    }

    #[test]
    fn the_coachs_thresholds_move_the_banner() {
        let strict = AlertThresholds {
            webhook_failure_warn: 1.0,
            webhook_failure_critical: 2.0,
            payment_failure_warn: 50.0,
            payment_failure_critical: 80.0,
        };
        let c = counts(100, 2, 100, 20);
        assert_eq!(
            levels(&evaluate_alerts(&c, &strict)),
            [("webhook_failures".into(), AlertLevel::Critical)]
        );
        assert_eq!(
            levels(&evaluate_alerts(&c, &AlertThresholds::default())),
            [("payment_failures".into(), AlertLevel::Critical)]
        );
    }

    #[test]
    fn any_unconfirmed_webhook_is_a_critical_alert() {
        let one = AlertCounts {
            unconfirmed: 1,
            ..AlertCounts::default()
        };
        let alerts = evaluate_alerts(&one, &AlertThresholds::default());
        assert_eq!(
            levels(&alerts),
            [("unconfirmed_webhooks".into(), AlertLevel::Critical)]
        );
        assert!(alerts[0].message.starts_with("1 signed webhook said"));
        assert!(evaluate_alerts(&AlertCounts::default(), &AlertThresholds::default()).is_empty());
    }

    #[test]
    fn any_parked_or_unapplied_event_is_a_state_machine_alert() {
        let t = AlertThresholds::default();
        let one = AlertCounts {
            parked: 1,
            ..AlertCounts::default()
        };
        let alerts = evaluate_alerts(&one, &t);
        assert_eq!(
            levels(&alerts),
            [("state_machine".into(), AlertLevel::Warning)]
        );
        assert!(alerts[0]
            .message
            .contains("1 event waiting for a booking it names"));
        let both = AlertCounts {
            parked: 2,
            internal_failed: 3,
            webhooks: 10,
            webhooks_failed: 5,
            ..AlertCounts::default()
        };
        let alerts = evaluate_alerts(&both, &t);
        assert_eq!(
            levels(&alerts),
            [
                ("webhook_failures".into(), AlertLevel::Critical),
                ("state_machine".into(), AlertLevel::Warning)
            ],
            "most severe first"
        );
        assert!(alerts[1].message.contains("2 events waiting"));
        assert!(alerts[1].message.contains("3 timer or effect outcomes"));
    }

    #[test]
    fn thresholds_must_be_percentages_with_warning_below_critical() {
        assert!(validate_thresholds(&AlertThresholds::default()).is_ok());
        let bad = AlertThresholds {
            webhook_failure_warn: -1.0,
            payment_failure_critical: f64::NAN,
            ..AlertThresholds::default()
        };
        let fields: Vec<String> = validate_thresholds(&bad)
            .unwrap_err()
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(fields, ["webhook_failure_warn", "payment_failure_critical"]);
        let upside_down = AlertThresholds {
            payment_failure_warn: 20.0,
            ..AlertThresholds::default()
        };
        assert_eq!(
            validate_thresholds(&upside_down).unwrap_err()[0].field,
            "payment_failure_critical"
        );
    }

    #[test]
    fn thresholds_are_kept_in_the_settings_and_default_until_set() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(
            store.alert_thresholds().unwrap(),
            AlertThresholds::default()
        );
        let mine = AlertThresholds {
            webhook_failure_warn: 2.0,
            ..AlertThresholds::default()
        };
        store.set_alert_thresholds(&mine).unwrap();
        assert_eq!(store.alert_thresholds().unwrap(), mine);
        let refused = store.set_alert_thresholds(&AlertThresholds {
            webhook_failure_critical: 1.0,
            ..mine.clone()
        });
        assert!(matches!(refused, Err(StoreError::Invalid(_))));
        assert_eq!(store.alert_thresholds().unwrap(), mine, "unchanged");
    }
}
