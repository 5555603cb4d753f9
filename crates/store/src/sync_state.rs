//! What the sync crate reads and writes besides the apply path: bookings by id or
//! invitee (reconciliation compares them with Calendly), the outbox's depth (the UI's
//! queue), and an effect completed with a note (an email the app is not set up to send).
//!
//! Cursors and sync figures are plain settings (`Store::setting`), in this same file, so
//! a restored database and its cursors never disagree.

use coachdesk_domain::provider::Provider;
use coachdesk_domain::read_back::Contradiction;
use coachdesk_domain::{Booking, BookingId};
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
    ///
    /// The commit is durable when this returns (see [`commit_durably`]): the caller acks
    /// the page to the relay next, and the relay then deletes it, so a power cut after the
    /// ack must not roll the page back.
    pub fn apply_provider_batch_with_cursor<'a>(
        &mut self,
        batch: impl IntoIterator<Item = (Provider, &'a [u8])>,
        source: Source,
        now: OffsetDateTime,
        cursor: (&str, &str),
    ) -> Result<Vec<Applied>, StoreError> {
        self.apply_checked_batch_with_cursor(
            batch
                .into_iter()
                .map(|(provider, body)| (provider, body, None)),
            source,
            now,
            cursor,
        )
    }

    /// [`Store::apply_provider_batch_with_cursor`] for events read back from their
    /// provider first: an event the provider's API contradicted is kept in the log as
    /// `unconfirmed` with the contradiction, and changes no booking.
    pub fn apply_checked_batch_with_cursor<'a>(
        &mut self,
        batch: impl IntoIterator<Item = (Provider, &'a [u8], Option<&'a Contradiction>)>,
        source: Source,
        now: OffsetDateTime,
        cursor: (&str, &str),
    ) -> Result<Vec<Applied>, StoreError> {
        commit_durably(&mut self.conn, |tx| {
            let mut results = Vec::new();
            for (provider, body, contradiction) in batch {
                results.push(ingest(tx, provider, body, source, contradiction, now)?);
            }
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [cursor.0, cursor.1],
            )?;
            Ok(results)
        })
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
    pub fn booking(&self, id: &BookingId) -> Result<Option<Booking>, StoreError> {
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
            Some(id) => load_booking(&self.conn, &BookingId::from_stored(id)),
            None => Ok(None),
        }
    }

    /// Every booking id, oldest first.
    pub fn booking_ids(&self) -> Result<Vec<BookingId>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM bookings ORDER BY created_at, id")?;
        let ids = stmt
            .query_map([], |row| {
                row.get::<_, String>(0).map(BookingId::from_stored)
            })?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    /// Every client name and email the bookings hold, distinct: what a report meant for
    /// support must not contain (the diagnostics scrub them from error texts).
    pub fn client_identities(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT client_name FROM bookings WHERE client_name IS NOT NULL AND client_name <> ''
             UNION
             SELECT client_email FROM bookings WHERE client_email IS NOT NULL AND client_email <> ''",
        )?;
        let found = stmt
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(found)
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
    pub fn outbox_entries(
        &self,
        booking_id: Option<&BookingId>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, booking_id, effect_key, kind, status, attempts, last_error FROM outbox
             WHERE ?1 IS NULL OR booking_id = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map(params![booking_id.map(BookingId::as_str)], |row| {
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

/// Runs `work` in a transaction whose commit is on disk when this returns.
///
/// The store runs WAL with `synchronous=NORMAL` (a commit reaches the WAL file but is
/// fsynced only at the next checkpoint: fast, and safe against a crash of the app, not of
/// the machine). For a commit that something outside the file relies on (the relay's ack),
/// `synchronous=FULL` is set for that one commit, so SQLite fsyncs the WAL before `COMMIT`
/// returns, and NORMAL is restored after. (The pragma cannot change inside a transaction,
/// hence around it.)
pub(crate) fn commit_durably<T>(
    conn: &mut rusqlite::Connection,
    work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.pragma_update(None, "synchronous", "FULL")?;
    let outcome = (|| {
        let tx = conn.transaction()?;
        let value = work(&tx)?;
        tx.commit()?;
        Ok(value)
    })();
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(conn: &rusqlite::Connection) -> i64 {
        conn.pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap()
    }

    /// The order the relay's ack relies on: FULL while the page's transaction commits,
    /// the commit visible to another connection when the call returns, NORMAL again after.
    #[test]
    fn a_durable_commit_runs_under_synchronous_full_and_is_committed_on_return() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coachdesk.sqlite");
        let mut store = Store::open(&path).unwrap();
        const NORMAL: i64 = 1;
        const FULL: i64 = 2;
        assert_eq!(synchronous(&store.conn), NORMAL);
        let during = commit_durably(&mut store.conn, |tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('probe', 'x')",
                [],
            )?;
            Ok(synchronous(tx))
        })
        .unwrap();
        assert_eq!(during, FULL, "the commit is fsynced");
        assert_eq!(synchronous(&store.conn), NORMAL, "other writes stay fast");
        // What the relay is told next is already in the file for any reader.
        let other = rusqlite::Connection::open(&path).unwrap();
        let value: String = other
            .query_row(
                "SELECT value FROM settings WHERE key = 'probe'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(value, "x");

        // A failed page restores NORMAL too and commits nothing.
        let failed = commit_durably(&mut store.conn, |tx| -> Result<(), StoreError> {
            tx.execute("INSERT INTO settings (key, value) VALUES ('half', 'y')", [])?;
            Err(StoreError::Conflict("the page could not be applied".into()))
        });
        assert!(failed.is_err());
        assert_eq!(synchronous(&store.conn), NORMAL);
        assert_eq!(store.setting("half").unwrap(), None);
    }

    #[test]
    fn a_relay_page_is_applied_through_the_durable_commit() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .apply_provider_batch_with_cursor(
                std::iter::empty(),
                Source::Relay,
                OffsetDateTime::UNIX_EPOCH,
                ("relay_cursor", "7"),
            )
            .unwrap();
        assert_eq!(store.setting("relay_cursor").unwrap().as_deref(), Some("7"));
        assert_eq!(synchronous(&store.conn), 1);
    }
}
