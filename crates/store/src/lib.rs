//! Coachdesk's local store: one SQLite file per mode, through rusqlite.
//!
//! Owns the schema (numbered files in `migrations/`, applied at open), and the one way
//! anything changes a booking: [`Store::apply_provider_event`] and its siblings record the
//! input in the inbox, run the pure state machine, and write the booking, the audit row and
//! the outbox rows in a single transaction. The domain crate decides; this crate keeps.

mod admin;
mod app_settings;
mod booking_queries;
mod bulk;
mod coach;
mod demo;
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

use std::path::Path;

use rusqlite::Connection;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub use admin::Export;
pub use app_settings::{Feature, Features, MODE_SETTING, RELAY_URL_SETTING};
pub use booking_queries::{SearchKind, DEFAULT_PAGE, MAX_LIST};
pub use bulk::{bulk_booking, BulkBooking};
pub use demo::{DEMO_EVENT_TYPES, DEMO_TERMS};
pub use error::StoreError;
pub use ingest::{Applied, Source};
pub use mappings::{ListedEventType, StoredLink};
pub use outbox::OutboxRow;
pub use refund_hold::REFUND_AWAITING_APPROVAL;
pub use session_types::{StripeObjects, StripeSetupPlan};
pub use sync_state::OutboxEntry;

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
        migrate::migrate(&mut conn)?;
        Ok(Store { conn })
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

/// A random id with a readable prefix, such as `bk_3f9a…`.
pub(crate) fn new_id(prefix: &str) -> String {
    use rand::Rng;
    let bytes: [u8; 12] = rand::thread_rng().gen();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}
