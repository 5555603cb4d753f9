//! The relay's SQLite database: the webhook queue, the acknowledgement mark, access token
//! hashes and the payment link table.
//!
//! Durability rests here: WAL with `synchronous=FULL` (the default: a commit has reached the
//! disk before the writer reports it) or `synchronous=NORMAL` (a commit has reached the OS,
//! so it survives the process but not a power loss); the HTTP answer waits for that report. Sequence numbers
//! come from `AUTOINCREMENT`, so they are never reused after a purge and the app's cursor
//! only moves forward. Deduplication is a `UNIQUE(provider, key)` constraint with
//! `INSERT OR IGNORE`, so it holds across concurrent requests and restarts alike.

use std::path::Path;
use std::time::Duration;

use coachdesk_protocol::relay::{PaymentLinkRoute, Provider, PulledEvent};
use rusqlite::{params, Connection, OptionalExtension};

use crate::config::Durability;

/// A database failure, with what the relay was doing.
#[derive(Debug, thiserror::Error)]
#[error("relay database: {what}: {source}")]
pub struct StoreError {
    pub what: &'static str,
    #[source]
    pub source: rusqlite::Error,
}

trait Context<T> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError { what, source })
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    key TEXT NOT NULL,
    received_at_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    acked_at_ms INTEGER,
    UNIQUE (provider, key)
);
CREATE TABLE IF NOT EXISTS ack_mark (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through INTEGER NOT NULL
);
INSERT OR IGNORE INTO ack_mark (id, through) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS payment_links (
    slug TEXT PRIMARY KEY,
    url TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS calendly_keys (
    key TEXT PRIMARY KEY,
    added_at_ms INTEGER NOT NULL
);
";

/// How many signing keys handed over by the app are kept (the newest): a renewed
/// subscription's key and the ones before it, so deliveries in flight still verify.
pub const KEPT_CALENDLY_KEYS: usize = 3;

/// Open (creating if needed) the relay database in WAL mode with the given durability, and
/// make sure the schema exists.
pub fn open(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).ctx("open the database file")?;
    conn.busy_timeout(Duration::from_secs(10))
        .ctx("set the busy timeout")?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .ctx("switch to WAL")?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError {
            what: "switch to WAL",
            source: rusqlite::Error::InvalidQuery,
        });
    }
    conn.pragma_update(None, "synchronous", durability.synchronous())
        .ctx("set synchronous")?;
    conn.execute_batch(SCHEMA).ctx("create the schema")?;
    Ok(conn)
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new event, with its sequence number.
    New(i64),
    /// The provider key was already stored; nothing was added.
    Duplicate,
}

/// Insert one event unless its key is already stored. Call inside a transaction.
pub fn insert_event(
    conn: &Connection,
    provider: Provider,
    key: &str,
    body: &str,
    received_at_ms: i64,
) -> Result<Inserted, StoreError> {
    // Look first: a conflicting INSERT OR IGNORE would still consume a sequence number.
    let exists = conn
        .prepare_cached("SELECT 1 FROM events WHERE provider = ?1 AND key = ?2")
        .ctx("prepare dedup lookup")?
        .query_row(params![provider.as_str(), key], |_| Ok(()))
        .optional()
        .ctx("dedup lookup")?
        .is_some();
    if exists {
        return Ok(Inserted::Duplicate);
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO events (provider, key, received_at_ms, body) VALUES (?1, ?2, ?3, ?4)",
        )
        .ctx("prepare insert")?;
    let n = stmt
        .execute(params![provider.as_str(), key, received_at_ms, body])
        .ctx("insert event")?;
    if n == 0 {
        Ok(Inserted::Duplicate)
    } else {
        Ok(Inserted::New(conn.last_insert_rowid()))
    }
}

/// The highest acknowledged sequence.
pub fn acked_through(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT through FROM ack_mark WHERE id = 1")
        .ctx("prepare ack mark")?
        .query_row([], |r| r.get(0))
        .ctx("read ack mark")
}

/// The highest sequence stored so far (0 if none ever was).
pub fn max_seq(conn: &Connection) -> Result<i64, StoreError> {
    let from_seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |r| r.get(0),
        )
        .optional()
        .ctx("read the sequence")?;
    Ok(from_seq.unwrap_or(0))
}

fn provider_from(s: &str) -> Provider {
    if s == "calendly" {
        Provider::Calendly
    } else {
        Provider::Stripe
    }
}

/// RFC 3339 (UTC, milliseconds) for a unix time in milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Unacknowledged events after `after`, in sequence order: at most `limit`, and stopping
/// once `max_bytes` of bodies are gathered (always at least one event if any is due).
pub fn pull(
    conn: &Connection,
    after: i64,
    limit: usize,
    max_bytes: usize,
) -> Result<Vec<PulledEvent>, StoreError> {
    let from = after.max(acked_through(conn)?);
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, provider, key, received_at_ms, body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .ctx("prepare pull")?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![from, limit]).ctx("pull")?;
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next().ctx("pull row")? {
        let body: String = row.get(4).ctx("pull body")?;
        if !out.is_empty() && bytes + body.len() > max_bytes {
            break;
        }
        bytes += body.len();
        let provider: String = row.get(1).ctx("pull provider")?;
        out.push(PulledEvent {
            seq: row.get(0).ctx("pull seq")?,
            provider: provider_from(&provider),
            key: row.get(2).ctx("pull key")?,
            received_at: rfc3339_ms(row.get(3).ctx("pull time")?),
            body,
        });
    }
    Ok(out)
}

/// Mark everything through `through` as applied (clamped to what exists, so an ack can
/// never swallow a future event). Returns the new mark. Call inside a transaction.
pub fn ack(conn: &Connection, through: i64, now_ms: i64) -> Result<i64, StoreError> {
    let current = acked_through(conn)?;
    let target = through.min(max_seq(conn)?);
    if target <= current {
        return Ok(current);
    }
    conn.prepare_cached(
        "UPDATE events SET acked_at_ms = ?1 WHERE seq > ?2 AND seq <= ?3 AND acked_at_ms IS NULL",
    )
    .ctx("prepare ack")?
    .execute(params![now_ms, current, target])
    .ctx("ack events")?;
    conn.prepare_cached("UPDATE ack_mark SET through = ?1 WHERE id = 1")
        .ctx("prepare ack mark")?
        .execute(params![target])
        .ctx("move ack mark")?;
    Ok(target)
}

/// Delete acknowledged events acknowledged before `cutoff_ms`. Returns how many.
pub fn purge(conn: &Connection, cutoff_ms: i64) -> Result<usize, StoreError> {
    conn.execute(
        "DELETE FROM events WHERE acked_at_ms IS NOT NULL AND acked_at_ms < ?1",
        params![cutoff_ms],
    )
    .ctx("purge acknowledged events")
}

/// Queue depth (unacknowledged events) and the receipt time of the oldest of them.
pub fn queue_stats(conn: &Connection) -> Result<(i64, Option<i64>), StoreError> {
    let through = acked_through(conn)?;
    let depth: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM events WHERE seq > ?1")
        .ctx("prepare depth")?
        .query_row(params![through], |r| r.get(0))
        .ctx("count queue")?;
    let oldest: Option<i64> = conn
        .prepare_cached("SELECT received_at_ms FROM events WHERE seq > ?1 ORDER BY seq LIMIT 1")
        .ctx("prepare oldest")?
        .query_row(params![through], |r| r.get(0))
        .optional()
        .ctx("read oldest")?;
    Ok((depth, oldest))
}

/// Store a token hash.
pub fn add_token(conn: &Connection, hash: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO tokens (hash, created_at_ms) VALUES (?1, ?2)",
        params![hash, now_ms],
    )
    .ctx("store token hash")?;
    Ok(())
}

/// Whether a token hash is known.
pub fn token_known(conn: &Connection, hash: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT 1 FROM tokens WHERE hash = ?1")
        .ctx("prepare token lookup")?
        .query_row(params![hash], |_| Ok(()))
        .optional()
        .ctx("look up token")
        .map(|r| r.is_some())
}

/// Replace the whole payment link table. Call inside a transaction.
pub fn replace_links(conn: &Connection, links: &[PaymentLinkRoute]) -> Result<(), StoreError> {
    conn.execute("DELETE FROM payment_links", [])
        .ctx("clear payment links")?;
    let mut stmt = conn
        .prepare_cached("INSERT OR REPLACE INTO payment_links (slug, url) VALUES (?1, ?2)")
        .ctx("prepare link insert")?;
    for l in links {
        stmt.execute(params![l.slug, l.url])
            .ctx("insert payment link")?;
    }
    Ok(())
}

/// Adds a Calendly signing key the app registered a subscription with, keeping the newest
/// [`KEPT_CALENDLY_KEYS`]. Call inside a transaction.
pub fn add_calendly_key(conn: &Connection, key: &str, now_ms: i64) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO calendly_keys (key, added_at_ms) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET added_at_ms = excluded.added_at_ms",
        params![key, now_ms],
    )
    .ctx("store a Calendly signing key")?;
    conn.execute(
        "DELETE FROM calendly_keys WHERE key NOT IN
             (SELECT key FROM calendly_keys ORDER BY added_at_ms DESC, rowid DESC LIMIT ?1)",
        params![KEPT_CALENDLY_KEYS as i64],
    )
    .ctx("forget old Calendly signing keys")?;
    Ok(())
}

/// The Calendly signing keys the app handed over, newest first.
pub fn calendly_keys(conn: &Connection) -> Result<Vec<String>, StoreError> {
    conn.prepare_cached("SELECT key FROM calendly_keys ORDER BY added_at_ms DESC, rowid DESC")
        .ctx("prepare Calendly key list")?
        .query_map([], |r| r.get(0))
        .ctx("list Calendly signing keys")?
        .collect::<Result<_, _>>()
        .ctx("read Calendly signing keys")
}

/// The payment link for a slug.
pub fn link_for(conn: &Connection, slug: &str) -> Result<Option<String>, StoreError> {
    conn.prepare_cached("SELECT url FROM payment_links WHERE slug = ?1")
        .ctx("prepare link lookup")?
        .query_row(params![slug], |r| r.get(0))
        .optional()
        .ctx("look up payment link")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("r.db"), Durability::Full).expect("open");
        (dir, conn)
    }

    #[test]
    fn dedup_ack_pull_and_purge() {
        let (_d, conn) = db();
        assert_eq!(
            insert_event(&conn, Provider::Stripe, "evt_1", "{}", 1000).expect("i"),
            Inserted::New(1)
        );
        assert_eq!(
            insert_event(&conn, Provider::Stripe, "evt_1", "{}", 1001).expect("i"),
            Inserted::Duplicate
        );
        // Same key under another provider is another event.
        assert_eq!(
            insert_event(&conn, Provider::Calendly, "evt_1", "{}", 1002).expect("i"),
            Inserted::New(2)
        );
        assert_eq!(pull(&conn, 0, 10, 1 << 20).expect("pull").len(), 2);
        // An ack beyond what exists is clamped.
        assert_eq!(ack(&conn, 99, 5000).expect("ack"), 2);
        assert!(pull(&conn, 0, 10, 1 << 20).expect("pull").is_empty());
        assert_eq!(
            insert_event(&conn, Provider::Stripe, "evt_3", "{}", 6000).expect("i"),
            Inserted::New(3)
        );
        assert_eq!(queue_stats(&conn).expect("stats"), (1, Some(6000)));
        assert_eq!(purge(&conn, 5001).expect("purge"), 2);
        // Sequence numbers are not reused after a purge.
        assert_eq!(
            insert_event(&conn, Provider::Stripe, "evt_4", "{}", 7000).expect("i"),
            Inserted::New(4)
        );
        let seqs: Vec<i64> = pull(&conn, 0, 10, 1 << 20)
            .expect("pull")
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, vec![3, 4]);
    }

    #[test]
    fn pull_respects_byte_budget_but_returns_one() {
        let (_d, conn) = db();
        let big = "x".repeat(100);
        for i in 0..3 {
            insert_event(&conn, Provider::Stripe, &format!("e{i}"), &big, 0).expect("i");
        }
        assert_eq!(pull(&conn, 0, 10, 10).expect("pull").len(), 1);
        assert_eq!(pull(&conn, 0, 10, 250).expect("pull").len(), 2);
    }

    #[test]
    fn time_format() {
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
