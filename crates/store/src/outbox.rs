//! The outbox: effects waiting to run, written with the transition that asked for them.
//!
//! Each row's `idempotency_key` is derived from the booking and the effect's cause, and is
//! sent as Stripe's `Idempotency-Key`, so a retry after a crash cannot move money twice.

use coachdesk_domain::booking::{BookingId, Effect, EffectKey};
use rusqlite::{params, Connection};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::{ts, Store, StoreError};

/// One effect to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub booking_id: BookingId,
    pub effect_key: EffectKey,
    pub idempotency_key: String,
    pub effect: Effect,
    pub attempts: u32,
    /// When the effect was queued: no call for it can be older, so a row queued less than
    /// a day ago can trust Stripe to still know its `Idempotency-Key`.
    pub created_at: OffsetDateTime,
    /// The coach released it from hold (a refund waiting for approval).
    pub approved: bool,
}

pub(crate) fn enqueue(
    conn: &Connection,
    booking_id: &BookingId,
    effect: &Effect,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let key = effect.key();
    let due = match effect {
        Effect::ScheduleTimer { at, .. } => *at,
        _ => now,
    };
    let payload =
        crate::versioned::to_json(effect).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let kind = payload_kind(effect);
    conn.prepare_cached(
        "INSERT INTO outbox (booking_id, effect_key, kind, payload, idempotency_key, due_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        booking_id.as_str(),
        key.as_str(),
        kind,
        payload,
        key.idempotency_key(booking_id),
        ts(due),
        ts(now)
    ])?;
    Ok(())
}

fn payload_kind(effect: &Effect) -> &'static str {
    match effect {
        Effect::CreateCheckoutSession { .. } => "create_checkout_session",
        Effect::CancelCalendlyEvent { .. } => "cancel_calendly_event",
        Effect::IssueRefund { .. } => "issue_refund",
        Effect::SendEmail { .. } => "send_email",
        Effect::ResendEmail { .. } => "resend_email",
        Effect::Notify { .. } => "notify",
        Effect::ScheduleTimer { .. } => "schedule_timer",
        Effect::Forward { .. } => "forward",
    }
}

impl Store {
    /// Pending effects due by `now`, oldest first.
    pub fn due_effects(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, booking_id, effect_key, idempotency_key, payload, attempts, created_at,
                    approved_at IS NOT NULL
             FROM outbox
             WHERE status = 'pending' AND due_at <= ?1 ORDER BY due_at, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![ts(now), limit], |row| {
            Ok((
                (
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ),
                (
                    row.get::<_, String>(4)?,
                    row.get::<_, u32>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, bool>(7)?,
                ),
            ))
        })?;
        rows.map(|row| {
            let (
                (id, booking_id, effect_key, idempotency_key),
                (payload, attempts, created, approved),
            ) = row?;
            let effect = crate::versioned::from_json(&payload)
                .map_err(|e| StoreError::Corrupt(format!("outbox row {id}: {e}")))?;
            let created_at = OffsetDateTime::parse(&created, &Rfc3339)
                .map_err(|e| StoreError::Corrupt(format!("outbox row {id} created_at: {e}")))?;
            Ok(OutboxRow {
                id,
                booking_id: BookingId::from_stored(booking_id),
                effect_key: EffectKey::from_stored(effect_key),
                idempotency_key,
                effect,
                attempts,
                created_at,
                approved,
            })
        })
        .collect()
    }

    /// Marks an effect done.
    pub fn complete_effect(&self, id: i64, now: OffsetDateTime) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET status = 'done', done_at = ?2, attempts = attempts + 1 WHERE id = ?1",
            params![id, ts(now)],
        )?;
        Ok(())
    }

    /// Puts an effect back for another try at `retry_at`.
    pub fn retry_effect(
        &self,
        id: i64,
        retry_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET due_at = ?2, last_error = ?3, attempts = attempts + 1 WHERE id = ?1",
            params![id, ts(retry_at), error],
        )?;
        Ok(())
    }

    /// Marks every pending notice and refund as done without running it, with `why` as
    /// its note: sample data (the demo's) is history, not work, and its invented payment
    /// ids exist at no Stripe.
    pub fn settle_pending_as_history(
        &mut self,
        why: &str,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE outbox SET status = 'done', done_at = ?1, last_error = ?2
             WHERE status = 'pending' AND kind IN ('notify', 'issue_refund')",
            params![ts(now), why],
        )?)
    }

    /// Gives an effect up for good (the booking is flagged by the caller's outcome event).
    pub fn fail_effect(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET status = 'failed', last_error = ?2, attempts = attempts + 1 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }
}
