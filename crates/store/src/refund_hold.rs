//! Refunds held for the coach's approval while "automatic refunds" is off.
//!
//! The executor holds an automatic refund instead of running it: its outbox row moves from
//! `pending` to `held` (no call to Stripe, nothing lost, the idempotency key kept), the
//! booking shows in "needs attention" with code [`REFUND_AWAITING_APPROVAL`], and the
//! coach's approval puts the row back to `pending`, due now, marked approved (so the
//! executor runs it even while the toggle is still off). Both steps are audited.

use coachdesk_domain::booking::{BookingId, CauseKind, Effect};
use coachdesk_views::AttentionItem;
use rusqlite::{params, OptionalExtension};
use time::OffsetDateTime;

use crate::{ts, Store, StoreError};

/// The booking (id and state) of the outbox row `id` while it is pending; `None` once it is
/// not (held, done, or gone).
fn pending_effect_booking(
    conn: &rusqlite::Connection,
    id: i64,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT o.booking_id, b.state FROM outbox o JOIN bookings b ON b.id = o.booking_id
             WHERE o.id = ?1 AND o.status = 'pending'",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?)
}

/// The attention code of a booking whose refund waits for the coach.
pub const REFUND_AWAITING_APPROVAL: &str = "refund_awaiting_approval";

impl Store {
    /// Holds a pending effect (a refund) for the coach's approval, with `note` saying why.
    pub fn hold_effect(&self, id: i64, note: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let Some((booking_id, state)) = pending_effect_booking(&tx, id)? else {
            return Ok(());
        };
        tx.execute(
            "UPDATE outbox SET status = 'held', last_error = ?2 WHERE id = ?1",
            params![id, note],
        )?;
        audit(
            &tx,
            &booking_id,
            &state,
            now,
            "settings",
            "refund_held",
            note,
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Settles a pending effect without carrying it out because a setting says so, and
    /// writes `note` on the booking's timeline (event kind `kind`): what would have
    /// happened, such as a Calendly cancellation not sent in test mode.
    pub fn settle_effect_not_sent(
        &self,
        id: i64,
        kind: &str,
        note: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let Some((booking_id, state)) = pending_effect_booking(&tx, id)? else {
            return Ok(());
        };
        tx.execute(
            "UPDATE outbox SET status = 'done', done_at = ?2, last_error = ?3,
                 attempts = attempts + 1 WHERE id = ?1",
            params![id, ts(now), note],
        )?;
        audit(&tx, &booking_id, &state, now, "settings", kind, note)?;
        tx.commit()?;
        Ok(())
    }

    /// Whether the coach approved this outbox row (a refund released from hold).
    pub fn effect_approved(&self, id: i64) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT approved_at IS NOT NULL FROM outbox WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(false))
    }

    /// Bookings with a refund waiting for approval, as "needs attention" items.
    pub fn held_refund_items(&self) -> Result<Vec<AttentionItem>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT o.booking_id, b.client_name, b.start_time, b.state, o.payload
             FROM outbox o JOIN bookings b ON b.id = o.booking_id
             WHERE o.status = 'held' ORDER BY b.start_time IS NULL, b.start_time, o.id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
            ))
        })?;
        let mut items: Vec<AttentionItem> = Vec::new();
        for row in rows {
            let (booking_id, client_name, start_time, state, payload) = row?;
            let effect: Effect = crate::versioned::from_json(&payload)
                .map_err(|e| StoreError::Corrupt(format!("held outbox row: {e}")))?;
            let (amount, late) = match effect {
                Effect::IssueRefund { amount, cause, .. } => {
                    (amount.to_string(), cause.kind() == CauseKind::LatePayment)
                }
                _ => continue,
            };
            let message = if late {
                format!(
                    "A payment came after this booking expired or was cancelled: its refund of {amount} waits for your approval (refunds of late payments or automatic refunds are off in Settings)."
                )
            } else {
                format!(
                    "A refund of {amount} waits for your approval (automatic refunds are off in Settings)."
                )
            };
            match items.iter_mut().find(|i| i.booking_id == booking_id) {
                Some(item) => item.message.push_str(&format!(" Also {amount}.")),
                None => items.push(AttentionItem {
                    booking_id,
                    client_name,
                    start_time,
                    state,
                    codes: vec![REFUND_AWAITING_APPROVAL.to_owned()],
                    message,
                }),
            }
        }
        Ok(items)
    }

    /// The coach approves the held refunds of `booking_id`: they become due now. Returns
    /// how many were released; refuses when none was waiting.
    pub fn approve_held_refunds(
        &self,
        booking_id: &BookingId,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let booking_id = booking_id.as_str();
        let tx = self.conn.unchecked_transaction()?;
        let state: Option<String> = tx
            .query_row(
                "SELECT state FROM bookings WHERE id = ?1",
                [booking_id],
                |row| row.get(0),
            )
            .optional()?;
        let Some(state) = state else {
            return Err(StoreError::NotFound {
                what: "booking",
                id: booking_id.to_owned(),
            });
        };
        let released = tx.execute(
            "UPDATE outbox SET status = 'pending', due_at = ?2, last_error = NULL, approved_at = ?2
             WHERE booking_id = ?1 AND status = 'held'",
            params![booking_id, ts(now)],
        )?;
        if released == 0 {
            return Err(StoreError::Conflict(
                "No refund of this booking is waiting for approval; it may have been approved already."
                    .into(),
            ));
        }
        audit(
            &tx,
            booking_id,
            &state,
            now,
            "coach",
            "refund_approved",
            "The coach approved the held refund; it is sent to Stripe now.",
        )?;
        tx.commit()?;
        Ok(released)
    }
}

fn audit(
    conn: &rusqlite::Connection,
    booking_id: &str,
    state: &str,
    now: OffsetDateTime,
    cause: &str,
    kind: &str,
    summary: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit_log (booking_id, inbox_id, at, from_state, to_state, cause, event_kind, summary)
         VALUES (?1, NULL, ?2, ?3, ?3, ?4, ?5, ?6)",
        params![booking_id, ts(now), state, cause, kind, summary],
    )?;
    Ok(())
}
