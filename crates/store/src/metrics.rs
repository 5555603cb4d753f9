//! Business metrics for the dashboard, counted from what happened: revenue from payments
//! that succeeded (never attempts), refunds that went through, bookings by the day they
//! were made. A reschedule is not a new booking and its carried payment is not new money.

use std::collections::BTreeMap;

use coachdesk_views::{AlertCounts, BusinessMetrics, DailyMetrics};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::{Store, StoreError};

#[derive(Default)]
struct Tally {
    days: BTreeMap<String, DailyMetrics>,
    bookings: i64,
    paid_bookings: i64,
    cancelled: i64,
    succeeded: i64,
    failed: i64,
    minutes_to_payment: Vec<i64>,
}

impl Tally {
    fn day(&mut self, day: &str) -> &mut DailyMetrics {
        self.days
            .entry(day.to_owned())
            .or_insert_with(|| DailyMetrics {
                day: day.to_owned(),
                bookings: 0,
                paid: 0,
                payment_failures: 0,
                cancellations: 0,
                revenue_minor: 0,
                refunds_minor: 0,
            })
    }
}

fn day_of(text: &str) -> Option<&str> {
    text.get(..10)
}

fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

impl Store {
    /// Metrics per currency for bookings and money between `from` and `to`.
    pub fn business_metrics(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<BusinessMetrics>, StoreError> {
        let (from, to) = (crate::ts(from), crate::ts(to));
        let in_range = |at: &str| at >= from.as_str() && at <= to.as_str();
        let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();

        // The metric columns (migration 0006), not the facts JSON: only bookings made or
        // cancelled in the window are read further.
        let mut stmt = self.conn.prepare_cached(
            "SELECT currency, paid_minor, booked_at, cancelled_at,
                 (SELECT MIN(p.at) FROM payments p WHERE p.booking_id = b.id
                     AND p.status = 'succeeded' AND p.carried = 0)
             FROM bookings b
             WHERE currency IS NOT NULL AND rescheduled_from IS NULL
                 AND ((booked_at >= ?1 AND booked_at <= ?2)
                     OR (cancelled_at >= ?1 AND cancelled_at <= ?2))",
        )?;
        let mut rows = stmt.query([&from, &to])?;
        while let Some(row) = rows.next()? {
            let currency: String = row.get(0)?;
            let paid_minor: i64 = row.get(1)?;
            let booked_at: Option<String> = row.get(2)?;
            let cancelled_at: Option<String> = row.get(3)?;
            let first_paid: Option<String> = row.get(4)?;
            let tally = tallies.entry(currency).or_default();
            if let Some(booked) = booked_at.as_deref().filter(|b| in_range(b)) {
                tally.bookings += 1;
                let day = day_of(booked).unwrap_or_default().to_owned();
                tally.day(&day).bookings += 1;
                if paid_minor > 0 {
                    tally.paid_bookings += 1;
                    tally.day(&day).paid += 1;
                }
                if let (Some(b), Some(p)) = (parse(booked), first_paid.as_deref().and_then(parse)) {
                    tally
                        .minutes_to_payment
                        .push((p - b).whole_minutes().max(0));
                }
                if cancelled_at.is_some() {
                    tally.cancelled += 1;
                }
            }
            if let Some(cancelled) = cancelled_at.as_deref().filter(|c| in_range(c)) {
                let day = day_of(cancelled).unwrap_or_default().to_owned();
                tally.day(&day).cancellations += 1;
            }
        }

        let mut stmt = self.conn.prepare_cached(
            "SELECT currency, status, at, amount_minor FROM payments
             WHERE carried = 0 AND status IN ('succeeded', 'failed') AND at >= ?1 AND at <= ?2",
        )?;
        let mut rows = stmt.query([&from, &to])?;
        while let Some(row) = rows.next()? {
            let currency: String = row.get(0)?;
            let status: String = row.get(1)?;
            let at: String = row.get(2)?;
            let amount: i64 = row.get(3)?;
            let tally = tallies.entry(currency).or_default();
            let day = day_of(&at).unwrap_or_default().to_owned();
            if status == "succeeded" {
                tally.succeeded += 1;
                tally.day(&day).revenue_minor += amount;
            } else {
                tally.failed += 1;
                tally.day(&day).payment_failures += 1;
            }
        }

        let mut stmt = self.conn.prepare_cached(
            "SELECT currency, created_at, amount_minor FROM refunds
             WHERE status = 'succeeded' AND created_at >= ?1 AND created_at <= ?2",
        )?;
        let mut rows = stmt.query([&from, &to])?;
        while let Some(row) = rows.next()? {
            let currency: String = row.get(0)?;
            let at: String = row.get(1)?;
            let amount: i64 = row.get(2)?;
            let day = day_of(&at).unwrap_or_default().to_owned();
            tallies.entry(currency).or_default().day(&day).refunds_minor += amount;
        }

        Ok(tallies
            .into_iter()
            .map(|(currency, mut tally)| {
                let ratio = |part: i64, whole: i64| {
                    if whole == 0 {
                        0.0
                    } else {
                        part as f64 / whole as f64
                    }
                };
                tally.minutes_to_payment.sort_unstable();
                let median = (!tally.minutes_to_payment.is_empty())
                    .then(|| tally.minutes_to_payment[tally.minutes_to_payment.len() / 2]);
                let days: Vec<DailyMetrics> = tally.days.into_values().collect();
                BusinessMetrics {
                    currency,
                    bookings: tally.bookings,
                    conversion_rate: ratio(tally.paid_bookings, tally.bookings),
                    payment_success_rate: ratio(tally.succeeded, tally.succeeded + tally.failed),
                    cancellation_rate: ratio(tally.cancelled, tally.bookings),
                    median_minutes_to_payment: median,
                    revenue_minor: days.iter().map(|d| d.revenue_minor).sum(),
                    refunds_minor: days.iter().map(|d| d.refunds_minor).sum(),
                    days,
                }
            })
            .collect())
    }
}

impl Store {
    /// What the alerts are computed from, between `from` and `to`.
    pub fn alert_counts(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<AlertCounts, StoreError> {
        let (from, to) = (crate::ts(from), crate::ts(to));
        let (webhooks, webhooks_failed, internal_failed, unconfirmed): (i64, i64, i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT
                     COALESCE(SUM(provider IN ('stripe', 'calendly')), 0),
                     COALESCE(SUM(provider IN ('stripe', 'calendly') AND status = 'failed'), 0),
                     COALESCE(SUM(provider NOT IN ('stripe', 'calendly') AND status = 'failed'), 0),
                     COALESCE(SUM(status = 'unconfirmed'), 0)
                 FROM inbox WHERE received_at >= ?1 AND received_at <= ?2",
            )?
            .query_row([&from, &to], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })?;
        let (payments_ended, payments_failed): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(status = 'failed'), 0) FROM payments
                 WHERE carried = 0 AND status IN ('succeeded', 'failed') AND at >= ?1 AND at <= ?2",
            )?
            .query_row([&from, &to], |row| Ok((row.get(0)?, row.get(1)?)))?;
        let parked: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM inbox WHERE status = 'parked'")?
            .query_row([], |row| row.get(0))?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(AlertCounts {
            webhooks: n(webhooks),
            webhooks_failed: n(webhooks_failed),
            payments_ended: n(payments_ended),
            payments_failed: n(payments_failed),
            parked: n(parked),
            internal_failed: n(internal_failed),
            unconfirmed: n(unconfirmed),
        })
    }
}
