//! Coachdesk's local store: one SQLite file per mode, through rusqlite.
//!
//! Owns the schema (numbered files in `migrations/`, applied at open), and the one way
//! anything changes a booking: [`Store::apply_provider_event`] and its siblings record the
//! input in the inbox, run the pure state machine, and write the booking, the audit row and
//! the outbox rows in a single transaction. The domain crate decides; this crate keeps.

mod admin;
mod app_settings;
mod backup;
mod booking_queries;
mod error;
mod ingest;
mod mail_settings;
mod mappings;
mod metrics;
mod migrate;
mod outbox;
mod refund_hold;
mod rows;
mod session_types;
mod sync_state;
mod versioned;

use std::path::Path;

use rusqlite::Connection;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub use admin::Export;
pub use app_settings::{
    Feature, Features, CALENDLY_API_BASE_SETTING, MODE_SETTING, RELAY_URL_SETTING,
    STRIPE_API_BASE_SETTING,
};
pub use backup::{inspect as inspect_backup, restore_file, BackupError, BackupSummary};
pub use booking_queries::{SearchKind, DEFAULT_PAGE, MAX_LIST};
pub use error::StoreError;
pub use ingest::{
    Applied, Source, FOREIGN_NOTE, PARKED_FOR_AT_MOST, STALE_PARKED_NOTE, UNCONFIRMED,
    UNCONFIRMED_NOTE,
};
pub use mappings::{ListedEventType, StoredLink};
pub use outbox::OutboxRow;
pub use refund_hold::REFUND_AWAITING_APPROVAL;
pub use session_types::{StripeObjects, StripeSetupPlan};
pub use sync_state::OutboxEntry;

/// The store behind the lock the app's tasks share it with, even after a panic while it
/// was held: every write is one SQLite transaction, which rusqlite rolls back when an
/// unfinished one is dropped, so the connection is consistent and a poisoned lock is taken
/// over.
pub fn lock(store: &std::sync::Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    store
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The open database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the file, turns on WAL and foreign keys, and migrates.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_connection(conn)
    }

    /// An in-memory store, for tests that do not need a file.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::from_connection(Connection::open_in_memory()?)
    }

    fn from_connection(mut conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A larger page cache and fewer checkpoints: the apply path writes a few rows per
        // event and reads the booking it changes.
        conn.pragma_update(None, "cache_size", -32_000)?;
        conn.pragma_update(None, "wal_autocheckpoint", 4_000)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // The apply path alone uses about twenty statements: keep them all prepared.
        conn.set_prepared_statement_cache_capacity(64);
        migrate::migrate(&mut conn)?;
        Ok(Store { conn })
    }

    /// Grows with every row written through this store (SQLite's `total_changes`): a cheap
    /// "did anything change" number for the window's live refresh.
    pub fn change_count(&self) -> u64 {
        self.conn.total_changes()
    }

    /// The schema version (the number of the last migration applied).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?)
    }

    /// A setting's value.
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()?)
    }

    /// Removes a setting (absent is fine).
    pub fn delete_setting(&self, key: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM settings WHERE key = ?1", [key])?;
        Ok(())
    }

    /// Sets a setting. Never a secret: secrets live in the OS keychain.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }
}

/// RFC 3339 text for SQLite columns (sorts as time).
pub(crate) fn ts(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// A new id with a readable prefix, such as `bk_0193a2b4c5d60000e7f8a9b0` (24 hex digits):
/// the creation time in milliseconds and a counter (16 digits, strictly increasing within
/// the process), then 8 random digits.
///
/// Later ids sort after earlier ones, so the rows and index entries keyed by a booking id
/// (bookings, inbox, audit, outbox, payments) land at the end of their B-trees instead of
/// on a random page each: a batch rewrites a few pages per index, not one per event.
pub(crate) fn new_id(prefix: &str) -> String {
    use rand::Rng;
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let stamp = millis << 16;
    let previous = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(stamp.max(last + 1))
        })
        .unwrap_or(0);
    let ordered = stamp.max(previous + 1);
    let random: u32 = rand::thread_rng().gen();
    format!("{prefix}_{ordered:016x}{random:08x}")
}

/// The demo's and `bulk` bulk bookings' histories through the real apply path, for unit
/// tests (the demo crate's seeding works on the library as others see it, not on this
/// test build of it).
#[cfg(test)]
pub(crate) mod samples {
    use crate::{Source, Store};

    pub fn seed(store: &mut Store, now: time::OffsetDateTime, bulk: usize) {
        let types = coachdesk_demo::demo_session_types()
            .and_then(|d| coachdesk_demo::bulk_session_types().map(|b| [d, b].concat()))
            .expect("sample session types");
        for spec in types {
            store.insert_session_type(&spec).expect("session type");
        }
        let mut bodies = coachdesk_demo::demo_events(now);
        bodies.extend(coachdesk_demo::bulk_events(0..bulk, now));
        store
            .apply_provider_batch(
                bodies.iter().map(|(p, b)| (*p, b.as_slice())),
                Source::App,
                now,
            )
            .expect("apply samples");
    }
}

#[cfg(test)]
mod id_tests {
    #[test]
    fn new_ids_keep_their_shape_and_sort_in_creation_order() {
        let ids: Vec<String> = (0..1_000).map(|_| super::new_id("bk")).collect();
        for id in &ids {
            assert_eq!(id.len(), "bk_".len() + 24, "{id}");
            assert!(id[3..].bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids out of order");
    }
}
