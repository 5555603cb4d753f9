//! What the sync crate reads and writes besides the apply path: bookings by id or
//! invitee (reconciliation compares them with Calendly), the outbox's depth (the UI's
//! queue), and an effect completed with a note (an email the app is not set up to send).
//!
//! Cursors and sync figures are plain settings (`Store::setting`), in this same file, so
//! a restored database and its cursors never disagree.

use coachdesk_domain::provider::Provider;
use coachdesk_domain::Booking;
use rusqlite::{params, OptionalExtension};
use time::OffsetDateTime;

use crate::ingest::{ingest, Applied, Source};
use crate::rows::load_booking;
use crate::{ts, Store, StoreError};

/// One outbox row's bookkeeping, for support screens and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub booking_id: String,
    pub effect_key: String,
    pub kind: String,
    /// `pending`, `done` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

impl Store {
    /// Applies a batch of raw provider bodies and sets a cursor setting in ONE transaction
    /// (the relay pull: the page and the sequence it ends at commit together, or neither).
    pub fn apply_provider_batch_with_cursor<'a>(
        &mut self,
        batch: impl IntoIterator<Item = (Provider, &'a [u8])>,
        source: Source,
        now: OffsetDateTime,
        cursor: (&str, &str),
    ) -> Result<Vec<Applied>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut results = Vec::new();
        for (provider, body) in batch {
            results.push(ingest(&tx, provider, body, source, now)?);
        }
        tx.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [cursor.0, cursor.1],
        )?;
        tx.commit()?;
        Ok(results)
    }

    /// Sets several settings in ONE transaction (the relay pull's cursor and the relay's
    /// identity change together, or neither).
    pub fn set_settings(&mut self, settings: &[(&str, &str)]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for (key, value) in settings {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A booking as the state machine sees it.
    pub fn booking(&self, id: &str) -> Result<Option<Booking>, StoreError> {
        load_booking(&self.conn, id)
    }

    /// The booking of a Calendly invitee, by URI.
    pub fn booking_by_invitee(&self, invitee_uri: &str) -> Result<Option<Booking>, StoreError> {
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT id FROM bookings WHERE invitee_uri = ?1",
                [invitee_uri],
                |row| row.get(0),
            )
            .optional()?;
        match id {
            Some(id) => load_booking(&self.conn, &id),
            None => Ok(None),
        }
    }

    /// Every booking id, oldest first.
    pub fn booking_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM bookings ORDER BY created_at, id")?;
        let ids = stmt
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// How many effects wait to run (due or not).
    pub fn pending_effect_count(&self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending'",
            [],
            |row| row.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The outbox rows, optionally of one booking, in order.
    pub fn outbox_entries(&self, booking_id: Option<&str>) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, booking_id, effect_key, kind, status, attempts, last_error FROM outbox
             WHERE ?1 IS NULL OR booking_id = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![booking_id], |row| {
                Ok(OutboxEntry {
                    id: row.get(0)?,
                    booking_id: row.get(1)?,
                    effect_key: row.get(2)?,
                    kind: row.get(3)?,
                    status: row.get(4)?,
                    attempts: row.get(5)?,
                    last_error: row.get(6)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Marks an effect done, keeping a note of how (such as "email sending not configured").
    pub fn complete_effect_with_note(
        &self,
        id: i64,
        now: OffsetDateTime,
        note: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET status = 'done', done_at = ?2, last_error = ?3,
                 attempts = attempts + 1 WHERE id = ?1",
            params![id, ts(now), note],
        )?;
        Ok(())
    }
}
