//! The SQLite backend: one file in WAL mode, numbered migrations, one writer connection,
//! one reader connection per worker.
//!
//! Durability: `synchronous=FULL` (the default: a commit has reached the disk before the
//! writer reports it) or `synchronous=NORMAL` (a commit has reached the OS, so it survives
//! the process but not a power loss). Sequence numbers come from `AUTOINCREMENT`, so they
//! are never reused after a purge. Deduplication is a `UNIQUE(tenant, provider, key)`
//! constraint.
//!
//! The schema is the numbered files in `crates/relay/migrations/`, applied in order like
//! the app's: `PRAGMA user_version` holds the last applied number, each file runs in its
//! own transaction with the version bump, and a database newer than this relay is refused.
//! A database made before the files were numbered (user_version 0 with the tables of
//! `0001_init.sql`) is taken as version 1.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use coachdesk_protocol::relay::{PaymentLinkRoute, PulledEvent};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{
    Acked, Backend, CheckoutClaim, Consumer, ConsumerId, Inserted, InviteeNote, NewEvent, PayRoute,
    ReadStore, RedirectCount, RelayId, StoreError, WriteStore, WriteTx, KEPT_CALENDLY_KEYS,
};
use crate::config::Durability;
use crate::store::{
    ConsumerSet, StoredCheckoutKey, APP_KEY_SET, CHECKOUT_KEY_SET, NEWEST_CHECKOUT_KEY,
    STRIPE_SECRET_SET,
};
use crate::tenant::{Tenant, TenantId, TenantName};
use crate::token::{TokenMode, TokenName};

/// Every migration, in order. A test checks this list against the directory.
pub(crate) const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "0001_init.sql",
        include_str!("../../migrations/0001_init.sql"),
    ),
    (
        2,
        "0002_consumers.sql",
        include_str!("../../migrations/0002_consumers.sql"),
    ),
    (
        3,
        "0003_stripe_secrets.sql",
        include_str!("../../migrations/0003_stripe_secrets.sql"),
    ),
    (
        4,
        "0004_checkout.sql",
        include_str!("../../migrations/0004_checkout.sql"),
    ),
    (
        5,
        "0005_invitees.sql",
        include_str!("../../migrations/0005_invitees.sql"),
    ),
    (
        6,
        "0006_tenants.sql",
        include_str!("../../migrations/0006_tenants.sql"),
    ),
    (
        7,
        "0007_sealing.sql",
        include_str!("../../migrations/0007_sealing.sql"),
    ),
    (
        8,
        "0008_index_key.sql",
        include_str!("../../migrations/0008_index_key.sql"),
    ),
    (
        9,
        "0009_checkout_keys.sql",
        include_str!("../../migrations/0009_checkout_keys.sql"),
    ),
];

/// The schema version this relay writes.
pub const SCHEMA_VERSION: u32 = 9;

/// How often the checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

trait Context<T> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for rusqlite::Result<T> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database {
            what,
            source: Box::new(source),
        })
    }
}

/// A connection in WAL mode with the given durability.
fn connect(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).ctx("open the database file")?;
    conn.busy_timeout(Duration::from_secs(10))
        .ctx("set the busy timeout")?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .ctx("switch to WAL")?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database {
            what: "switch to WAL",
            source: format!("the journal mode stayed {mode}").into(),
        });
    }
    conn.pragma_update(None, "synchronous", durability.synchronous())
        .ctx("set synchronous")?;
    Ok(conn)
}

fn user_version(conn: &Connection) -> Result<u32, StoreError> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .ctx("read the schema version")
}

/// Brings the schema to [`SCHEMA_VERSION`]. Each step takes the write lock first, so
/// relays and `token` commands opening the file at once migrate it once.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin a migration")?;
        let current = user_version(&tx)?;
        if current > known {
            return Err(StoreError::TooNew {
                found: current,
                known,
            });
        }
        let unversioned = current == 0
            && tx
                .query_row(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'",
                    [],
                    |_| Ok(()),
                )
                .optional()
                .ctx("look for a database of before migrations")?
                .is_some();
        let step = if unversioned {
            // Made before the files were numbered: exactly what 0001 creates.
            Some((1, None))
        } else {
            MIGRATIONS
                .iter()
                .find(|m| m.0 > current)
                .map(|(v, _, sql)| (*v, Some(*sql)))
        };
        let Some((version, sql)) = step else {
            return Ok(());
        };
        let fail = |source: rusqlite::Error| StoreError::Migration {
            version,
            source: Box::new(source),
        };
        if let Some(sql) = sql {
            tx.execute_batch(sql).map_err(fail)?;
        }
        tx.pragma_update(None, "user_version", version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
}

/// The relay's id, made now if the database has none yet.
fn identity(conn: &Connection, now_ms: i64) -> Result<RelayId, StoreError> {
    conn.execute(
        "INSERT OR IGNORE INTO relay_identity (id, relay_id, created_at_ms) VALUES (1, ?1, ?2)",
        params![RelayId::generate().as_str(), now_ms],
    )
    .ctx("make the relay's identity")?;
    conn.query_row(
        "SELECT relay_id FROM relay_identity WHERE id = 1",
        [],
        |r| r.get(0),
    )
    .ctx("read the relay's identity")
    .map(RelayId)
}

fn checkout_claim(
    conn: &Connection,
    tenant: TenantId,
    invitee: &str,
) -> Result<Option<CheckoutClaim>, StoreError> {
    conn.prepare_cached(
        "SELECT invitee, slug, email, expires_at, session_id, created_at_ms
         FROM checkout_sessions WHERE tenant = ?1 AND invitee = ?2",
    )
    .ctx("prepare checkout lookup")?
    .query_row(params![tenant.0, invitee], |r| {
        Ok(CheckoutClaim {
            invitee: r.get(0)?,
            slug: r.get(1)?,
            email: r.get(2)?,
            expires_at: r.get(3)?,
            session_id: r.get(4)?,
            created_at_ms: r.get(5)?,
        })
    })
    .optional()
    .ctx("look up a checkout session")
}

fn invitee_note(
    conn: &Connection,
    tenant: TenantId,
    invitee: &str,
) -> Result<Option<InviteeNote>, StoreError> {
    conn.prepare_cached(
        "SELECT invitee, booked_at, canceled_at, moved_to FROM invitees
         WHERE tenant = ?1 AND invitee = ?2",
    )
    .ctx("prepare invitee lookup")?
    .query_row(params![tenant.0, invitee], |r| {
        Ok(InviteeNote {
            invitee: r.get(0)?,
            booked_at: r.get(1)?,
            canceled_at: r.get(2)?,
            moved_to: r.get(3)?,
        })
    })
    .optional()
    .ctx("look up an invitee")
}

/// A relay database in one SQLite file.
pub struct SqliteBackend {
    path: PathBuf,
    durability: Durability,
    relay_id: RelayId,
}

impl SqliteBackend {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteBackend, StoreError> {
        let mut conn = connect(path, durability)?;
        migrate(&mut conn)?;
        let relay_id = identity(&conn, crate::writer::now_ms())?;
        Ok(SqliteBackend {
            path: path.to_owned(),
            durability,
            relay_id,
        })
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = connect(&self.path, self.durability)?;
        // Another process may have migrated the file further since: refuse it then.
        let found = user_version(&conn)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found,
                known: SCHEMA_VERSION,
            });
        }
        Ok(conn)
    }
}

impl Backend for SqliteBackend {
    fn relay_id(&self) -> &RelayId {
        &self.relay_id
    }

    fn reader(&self) -> Result<Box<dyn ReadStore>, StoreError> {
        Ok(Box::new(SqliteReader {
            conn: self.connect()?,
            relay_id: self.relay_id.clone(),
        }))
    }

    fn writer(&self) -> Result<Box<dyn WriteStore>, StoreError> {
        let conn = self.connect()?;
        // Checkpoints copy the WAL into the database and fsync it; done on the writer they
        // would stall every answer waiting on that commit, so a second connection does them.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .ctx("turn off automatic checkpoints")?;
        let checkpointer = self.connect()?;
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name("relay-checkpoint".to_owned())
            .spawn(move || checkpoint_loop(&checkpointer, &stopped))
            .map_err(|e| StoreError::Database {
                what: "start the checkpointer",
                source: Box::new(e),
            })?;
        Ok(Box::new(SqliteWriter {
            conn,
            checkpointer: Some((stop, handle)),
        }))
    }

    fn adopt_index_key(
        &self,
        check: &str,
        rehash: &dyn Fn(&str, &str) -> String,
    ) -> Result<u64, StoreError> {
        let mut conn = self.connect()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin")?;
        let stored: Option<String> = tx
            .query_row(
                "SELECT index_check FROM relay_identity WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .ctx("read the index key check")?;
        match stored {
            Some(stored) if stored == check => return Ok(0),
            Some(_) => return Err(StoreError::IndexKeyMismatch),
            None => {}
        }
        let plain: Vec<(i64, String, String)> = tx
            .prepare("SELECT seq, provider, key FROM events")
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .ctx("read the events' keys")?;
        {
            let mut update = tx
                .prepare("UPDATE events SET key = ?1 WHERE seq = ?2")
                .ctx("prepare re-keying")?;
            for (seq, provider, key) in &plain {
                update
                    .execute(params![rehash(provider, key), seq])
                    .ctx("re-key an event")?;
            }
        }
        tx.execute(
            "UPDATE relay_identity SET index_check = ?1 WHERE id = 1",
            params![check],
        )
        .ctx("record the index key check")?;
        tx.commit().ctx("commit the index key")?;
        Ok(plain.len() as u64)
    }

    fn create_tenant(&self, name: &TenantName, now_ms: i64) -> Result<Tenant, StoreError> {
        let conn = self.connect()?;
        let n = conn
            .execute(
                "INSERT INTO tenants (name, created_at_ms) VALUES (?1, ?2)
                 ON CONFLICT (name) DO NOTHING",
                params![name.as_str(), now_ms],
            )
            .ctx("store the tenant")?;
        if n == 0 {
            return Err(StoreError::TenantTaken(name.as_str().to_owned()));
        }
        Ok(Tenant {
            id: TenantId(conn.last_insert_rowid()),
            name: name.clone(),
            created_at_ms: now_ms,
        })
    }

    fn remove_tenant(&self, name: &TenantName) -> Result<bool, StoreError> {
        let mut conn = self.connect()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin")?;
        let Some(id) = tenant_id(&tx, name)? else {
            return Ok(false);
        };
        tx.execute_batch(&format!(
            "DELETE FROM calendly_keys WHERE consumer_id IN
                 (SELECT id FROM consumers WHERE tenant = {t});
             DELETE FROM stripe_secrets WHERE consumer_id IN
                 (SELECT id FROM consumers WHERE tenant = {t});
             DELETE FROM app_keys WHERE consumer_id IN
                 (SELECT id FROM consumers WHERE tenant = {t});
             DELETE FROM checkout_keys WHERE consumer_id IN
                 (SELECT id FROM consumers WHERE tenant = {t});
             DELETE FROM consumers WHERE tenant = {t};
             DELETE FROM events WHERE tenant = {t};
             DELETE FROM payment_links WHERE tenant = {t};
             DELETE FROM checkout_sessions WHERE tenant = {t};
             DELETE FROM redirect_visits WHERE tenant = {t};
             DELETE FROM invitees WHERE tenant = {t};
             DELETE FROM tenants WHERE id = {t};",
            t = id.0
        ))
        .ctx("remove the tenant's rows")?;
        tx.commit().ctx("commit the removal")?;
        Ok(true)
    }

    fn create_consumer(
        &self,
        tenant: TenantId,
        name: &TokenName,
        mode: TokenMode,
        hash: &str,
        now_ms: i64,
    ) -> Result<Consumer, StoreError> {
        let mut conn = self.connect()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin")?;
        let taken = tx
            .query_row(
                "SELECT 1 FROM consumers WHERE tenant = ?1 AND name = ?2",
                params![tenant.0, name.as_str()],
                |_| Ok(()),
            )
            .optional()
            .ctx("look up the token name")?
            .is_some();
        if taken {
            return Err(StoreError::NameTaken(name.as_str().to_owned()));
        }
        tx.execute(
            "INSERT INTO consumers (tenant, name, hash, mode, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![tenant.0, name.as_str(), hash, mode.as_str(), now_ms],
        )
        .ctx("store the token")?;
        let id = ConsumerId(tx.last_insert_rowid());
        tx.commit().ctx("commit the token")?;
        Ok(Consumer::made(id, tenant, name, mode, now_ms))
    }

    fn revoke_consumer(
        &self,
        tenant: TenantId,
        name: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.connect()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .ctx("begin")?;
        let id: Option<i64> = tx
            .query_row(
                "SELECT id FROM consumers WHERE tenant = ?1 AND name = ?2",
                params![tenant.0, name],
                |r| r.get(0),
            )
            .optional()
            .ctx("look up the token")?;
        let Some(id) = id else {
            return Ok(false);
        };
        tx.execute("DELETE FROM calendly_keys WHERE consumer_id = ?1", [id])
            .ctx("forget the token's Calendly keys")?;
        tx.execute("DELETE FROM stripe_secrets WHERE consumer_id = ?1", [id])
            .ctx("forget the token's Stripe secrets")?;
        tx.execute("DELETE FROM app_keys WHERE consumer_id = ?1", [id])
            .ctx("forget the token's app keys")?;
        tx.execute("DELETE FROM checkout_keys WHERE consumer_id = ?1", [id])
            .ctx("forget the token's Stripe restricted key")?;
        tx.execute("DELETE FROM consumers WHERE id = ?1", [id])
            .ctx("delete the token")?;
        mark_fully_acked(&tx, tenant, now_ms)?;
        tx.commit().ctx("commit the revocation")?;
        Ok(true)
    }
}

fn checkpoint_loop(conn: &Connection, stop: &Receiver<()>) {
    // PASSIVE never blocks the writer; it copies what it can while readers allow.
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

fn tenant_id(conn: &Connection, name: &TenantName) -> Result<Option<TenantId>, StoreError> {
    conn.prepare_cached("SELECT id FROM tenants WHERE name = ?1")
        .ctx("prepare the tenant lookup")?
        .query_row([name.as_str()], |r| r.get(0).map(TenantId))
        .optional()
        .ctx("look up the tenant")
}

fn consumer_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Consumer> {
    let mode: String = row.get(2)?;
    Ok(Consumer {
        id: ConsumerId(row.get(0)?),
        tenant: TenantId(row.get(6)?),
        name: row.get(1)?,
        // The CHECK constraint admits nothing else; an unknown value would be another
        // relay's schema, which migrate() refuses.
        mode: TokenMode::from_stored(&mode).unwrap_or(TokenMode::Test),
        created_at_ms: row.get(3)?,
        last_used_at_ms: row.get(4)?,
        acked_through: row.get(5)?,
    })
}

const CONSUMER_COLUMNS: &str =
    "SELECT id, name, mode, created_at_ms, last_used_at_ms, acked_through, tenant FROM consumers";

/// The highest sequence stored so far (0 if none ever was).
fn max_seq(conn: &Connection) -> Result<i64, StoreError> {
    let from_seq: Option<i64> = conn
        .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
        .ctx("prepare the sequence")?
        .query_row([], |r| r.get(0))
        .optional()
        .ctx("read the sequence")?;
    Ok(from_seq.unwrap_or(0))
}

/// Marks acknowledged (starting their retention) the tenant's events every consumer they
/// are for has acknowledged. An event with no consumer at all stays unacknowledged.
fn mark_fully_acked(conn: &Connection, tenant: TenantId, now_ms: i64) -> Result<(), StoreError> {
    let (all, test, live): (Option<i64>, Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT MIN(acked_through),
                    MIN(CASE WHEN mode IN ('test', 'any') THEN acked_through END),
                    MIN(CASE WHEN mode IN ('live', 'any') THEN acked_through END)
             FROM consumers WHERE tenant = ?1",
        )
        .ctx("prepare the cursor minimums")?
        .query_row([tenant.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .ctx("read the cursor minimums")?;
    let (all, test, live) = (all.unwrap_or(0), test.unwrap_or(0), live.unwrap_or(0));
    conn.prepare_cached(
        "UPDATE events SET acked_at_ms = ?1
         WHERE acked_at_ms IS NULL AND tenant = ?5 AND seq <= MAX(?2, ?3, ?4)
           AND ((livemode IS NULL AND seq <= ?2)
             OR (livemode = 0 AND seq <= ?3)
             OR (livemode = 1 AND seq <= ?4))",
    )
    .ctx("prepare the acknowledgement marks")?
    .execute(params![now_ms, all, test, live, tenant.0])
    .ctx("mark acknowledged events")?;
    Ok(())
}

/// Every value the tenant's consumers hold in `set`, once each, in order.
fn tenant_set(
    conn: &Connection,
    set: &ConsumerSet,
    tenant: TenantId,
) -> Result<Vec<String>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT DISTINCT s.{col} FROM {table} s JOIN consumers c ON c.id = s.consumer_id
         WHERE c.tenant = ?1 ORDER BY s.{col}",
        col = set.column,
        table = set.table
    ))
    .ctx(set.listing)?
    .query_map([tenant.0], |r| r.get(0))
    .ctx(set.listing)?
    .collect::<Result<_, _>>()
    .ctx(set.listing)
}

/// Replaces what `consumer` holds in `set` with `values`.
fn replace_set(
    conn: &Connection,
    set: &ConsumerSet,
    consumer: ConsumerId,
    values: &[String],
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        &format!("DELETE FROM {} WHERE consumer_id = ?1", set.table),
        [consumer.0],
    )
    .ctx(set.replacing)?;
    let mut insert = conn
        .prepare_cached(&format!(
            "INSERT INTO {} (consumer_id, {}, added_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            set.table, set.column
        ))
        .ctx(set.replacing)?;
    for value in values {
        insert
            .execute(params![consumer.0, value, now_ms])
            .ctx(set.replacing)?;
    }
    Ok(())
}

struct SqliteReader {
    conn: Connection,
    relay_id: RelayId,
}

impl ReadStore for SqliteReader {
    fn relay_id(&self) -> &RelayId {
        &self.relay_id
    }

    fn consumer_by_hash(&self, hash: &str) -> Result<Option<Consumer>, StoreError> {
        self.conn
            .prepare_cached(&format!("{CONSUMER_COLUMNS} WHERE hash = ?1"))
            .ctx("prepare the token lookup")?
            .query_row([hash], consumer_from_row)
            .optional()
            .ctx("look up the token")
    }

    fn tenant(&self, name: &TenantName) -> Result<Option<TenantId>, StoreError> {
        tenant_id(&self.conn, name)
    }

    fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows: Vec<(i64, String, i64)> = self
            .conn
            .prepare_cached("SELECT id, name, created_at_ms FROM tenants ORDER BY name")
            .ctx("prepare the tenant list")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .ctx("list the tenants")?
            .collect::<Result<_, _>>()
            .ctx("read the tenants")?;
        Ok(super::tenants_from_rows(rows))
    }

    fn consumers(&self, tenant: TenantId) -> Result<Vec<Consumer>, StoreError> {
        self.conn
            .prepare_cached(&format!("{CONSUMER_COLUMNS} WHERE tenant = ?1 ORDER BY id"))
            .ctx("prepare the token list")?
            .query_map([tenant.0], consumer_from_row)
            .ctx("list the tokens")?
            .collect::<Result<_, _>>()
            .ctx("read the tokens")
    }

    fn pull(
        &self,
        tenant: TenantId,
        mode: TokenMode,
        after: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<PulledEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, provider, key, received_at_ms, body, sealed FROM events
                 WHERE tenant = ?5 AND seq > ?1 AND (livemode IS NULL OR ?3 OR livemode = ?4)
                 ORDER BY seq LIMIT ?2",
            )
            .ctx("prepare pull")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let any = mode == TokenMode::Any;
        let live = mode == TokenMode::Live;
        let rows = stmt
            .query_map(params![after, limit, any, live, tenant.0], |row| {
                let provider: String = row.get(1)?;
                Ok(super::pulled_event(
                    row.get(0)?,
                    &provider,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                ))
            })
            .ctx("pull")?;
        super::page_within(rows.map(|event| event.ctx("pull row")), max_bytes)
    }

    fn newest_seq(&self) -> Result<i64, StoreError> {
        max_seq(&self.conn)
    }

    fn pay_route(&self, tenant: TenantId, slug: &str) -> Result<Option<PayRoute>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT url, checkout_name, amount_minor, currency, payment_window_minutes,
                        booking_url
                 FROM payment_links WHERE tenant = ?1 AND slug = ?2",
            )
            .ctx("prepare link lookup")?
            .query_row(params![tenant.0, slug], |r| {
                Ok(super::pay_route(
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get(5)?,
                ))
            })
            .optional()
            .ctx("look up payment link")
    }

    fn checkout_for(
        &self,
        tenant: TenantId,
        invitee: &str,
    ) -> Result<Option<CheckoutClaim>, StoreError> {
        checkout_claim(&self.conn, tenant, invitee)
    }

    fn invitee(&self, tenant: TenantId, invitee: &str) -> Result<Option<InviteeNote>, StoreError> {
        invitee_note(&self.conn, tenant, invitee)
    }

    fn redirects(&self, tenant: TenantId) -> Result<Vec<RedirectCount>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT slug, visits, last_at_ms FROM redirect_visits WHERE tenant = ?1
                 ORDER BY slug",
            )
            .ctx("prepare redirect list")?
            .query_map([tenant.0], |r| {
                Ok(RedirectCount {
                    slug: r.get(0)?,
                    visits: r.get(1)?,
                    last_at_ms: r.get(2)?,
                })
            })
            .ctx("list redirect visits")?
            .collect::<Result<_, _>>()
            .ctx("read redirect visits")
    }

    fn calendly_keys(&self, tenant: TenantId) -> Result<Vec<String>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT k.key FROM calendly_keys k JOIN consumers c ON c.id = k.consumer_id
                 WHERE c.tenant = ?1 ORDER BY k.added_at_ms DESC, k.rowid DESC",
            )
            .ctx("prepare Calendly key list")?
            .query_map([tenant.0], |r| r.get(0))
            .ctx("list Calendly signing keys")?
            .collect::<Result<_, _>>()
            .ctx("read Calendly signing keys")
    }

    fn stripe_secrets(&self, tenant: TenantId) -> Result<Vec<String>, StoreError> {
        tenant_set(&self.conn, &STRIPE_SECRET_SET, tenant)
    }

    fn app_keys(&self, tenant: TenantId) -> Result<Vec<String>, StoreError> {
        tenant_set(&self.conn, &APP_KEY_SET, tenant)
    }

    fn checkout_key(&self, tenant: TenantId) -> Result<Option<StoredCheckoutKey>, StoreError> {
        self.conn
            .prepare_cached(&NEWEST_CHECKOUT_KEY.replace("{t}", "?1"))
            .ctx(CHECKOUT_KEY_SET.listing)?
            .query_row([tenant.0], |r| {
                Ok(StoredCheckoutKey {
                    consumer: ConsumerId(r.get(0)?),
                    sealed: r.get(1)?,
                })
            })
            .optional()
            .ctx(CHECKOUT_KEY_SET.listing)
    }

    fn sealed_waiting(
        &self,
        tenant: TenantId,
        mode: TokenMode,
        after: i64,
    ) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT COUNT(*) FROM events
                 WHERE tenant = ?1 AND seq > ?2 AND sealed IS NOT NULL
                   AND (livemode IS NULL OR ?3 OR livemode = ?4)",
            )
            .ctx("prepare the sealed count")?
            .query_row(
                params![
                    tenant.0,
                    after,
                    mode == TokenMode::Any,
                    mode == TokenMode::Live
                ],
                |r| r.get(0),
            )
            .ctx("count sealed events")
    }

    fn queue_stats(&self) -> Result<(i64, Option<i64>), StoreError> {
        self.conn
            .prepare_cached(
                "SELECT COUNT(*), (SELECT received_at_ms FROM events WHERE acked_at_ms IS NULL
                                   ORDER BY seq LIMIT 1)
                 FROM events WHERE acked_at_ms IS NULL",
            )
            .ctx("prepare queue stats")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("count the queue")
    }

    fn queue_by_tenant(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT COALESCE(t.name, ''), COUNT(*) FROM events e
                 LEFT JOIN tenants t ON t.id = e.tenant
                 WHERE e.acked_at_ms IS NULL GROUP BY e.tenant ORDER BY 1",
            )
            .ctx("prepare the queue per tenant")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("count the queue per tenant")?
            .collect::<Result<_, _>>()
            .ctx("read the queue per tenant")
    }

    fn last_use_by_tenant(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT t.name, MAX(c.last_used_at_ms) FROM consumers c
                 JOIN tenants t ON t.id = c.tenant
                 WHERE c.last_used_at_ms IS NOT NULL GROUP BY t.name ORDER BY 1",
            )
            .ctx("prepare the last use per tenant")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .ctx("read the last use per tenant")?
            .collect::<Result<_, _>>()
            .ctx("read the last use per tenant")
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
            .ctx("ping")
            .map(|_| ())
    }
}

struct SqliteWriter {
    conn: Connection,
    checkpointer: Option<(Sender<()>, JoinHandle<()>)>,
}

impl Drop for SqliteWriter {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.checkpointer.take() {
            drop(stop);
            let _ = handle.join();
        }
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(error = %e, "final checkpoint failed");
        }
    }
}

impl WriteStore for SqliteWriter {
    fn group(
        &mut self,
        ops: &mut dyn FnMut(&mut dyn WriteTx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().ctx("begin")?;
        ops(&mut Tx(&tx))?;
        tx.commit().ctx("commit")
    }

    fn purge(
        &mut self,
        acked_before_ms: i64,
        received_before_ms: Option<i64>,
    ) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "DELETE FROM events WHERE (acked_at_ms IS NOT NULL AND acked_at_ms < ?1)
                                       OR received_at_ms < ?2",
                params![acked_before_ms, received_before_ms.unwrap_or(i64::MIN)],
            )
            .ctx("purge events past retention")
    }
}

struct Tx<'a>(&'a Connection);

impl WriteTx for Tx<'_> {
    fn insert_event(&mut self, e: &NewEvent<'_>) -> Result<Inserted, StoreError> {
        let conn = self.0;
        // Look first: a conflicting INSERT OR IGNORE would still consume a sequence number.
        let exists = conn
            .prepare_cached("SELECT 1 FROM events WHERE tenant = ?1 AND provider = ?2 AND key = ?3")
            .ctx("prepare dedup lookup")?
            .query_row(params![e.tenant.0, e.provider.as_str(), e.key], |_| Ok(()))
            .optional()
            .ctx("dedup lookup")?
            .is_some();
        if exists {
            return Ok(Inserted::Duplicate);
        }
        let n = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO events (provider, key, received_at_ms, body, livemode,
                                               tenant, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .ctx("prepare insert")?
            .execute(params![
                e.provider.as_str(),
                e.key,
                e.received_at_ms,
                e.body,
                e.livemode,
                e.tenant.0,
                e.sealed
            ])
            .ctx("insert event")?;
        if n == 0 {
            Ok(Inserted::Duplicate)
        } else {
            Ok(Inserted::New(conn.last_insert_rowid()))
        }
    }

    fn ack(
        &mut self,
        consumer: ConsumerId,
        through: i64,
        now_ms: i64,
    ) -> Result<Acked, StoreError> {
        let conn = self.0;
        let newest = max_seq(conn)?;
        if through > newest {
            return Ok(Acked::BeyondNewest { newest });
        }
        let current: Option<(i64, i64)> = conn
            .prepare_cached("SELECT acked_through, tenant FROM consumers WHERE id = ?1")
            .ctx("prepare the cursor lookup")?
            .query_row([consumer.0], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .ctx("read the cursor")?;
        let Some((current, tenant)) = current else {
            return Ok(Acked::Revoked);
        };
        let target = through.max(current);
        conn.prepare_cached(
            "UPDATE consumers SET acked_through = ?2, last_used_at_ms = ?3 WHERE id = ?1",
        )
        .ctx("prepare the cursor update")?
        .execute(params![consumer.0, target, now_ms])
        .ctx("move the cursor")?;
        if target > current {
            mark_fully_acked(conn, TenantId(tenant), now_ms)?;
        }
        Ok(Acked::Through(target))
    }

    fn replace_links(
        &mut self,
        tenant: TenantId,
        links: &[PaymentLinkRoute],
    ) -> Result<(), StoreError> {
        let conn = self.0;
        conn.execute("DELETE FROM payment_links WHERE tenant = ?1", [tenant.0])
            .ctx("clear payment links")?;
        let mut stmt = conn
            .prepare_cached(
                "INSERT OR REPLACE INTO payment_links (slug, url, checkout_name, amount_minor,
                     currency, payment_window_minutes, booking_url, tenant)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .ctx("prepare link insert")?;
        for l in links {
            let c = l.checkout.as_ref();
            stmt.execute(params![
                l.slug,
                l.url,
                c.map(|c| &c.name),
                c.map(|c| c.amount_minor),
                c.map(|c| &c.currency),
                c.map(|c| c.payment_window_minutes),
                l.booking_url,
                tenant.0
            ])
            .ctx("insert payment link")?;
        }
        Ok(())
    }

    fn claim_checkout(
        &mut self,
        tenant: TenantId,
        claim: &CheckoutClaim,
    ) -> Result<CheckoutClaim, StoreError> {
        let conn = self.0;
        conn.prepare_cached(
            "INSERT INTO checkout_sessions (invitee, slug, email, expires_at, created_at_ms,
                                            tenant)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tenant, invitee) DO NOTHING",
        )
        .ctx("prepare checkout claim")?
        .execute(params![
            claim.invitee,
            claim.slug,
            claim.email,
            claim.expires_at,
            claim.created_at_ms,
            tenant.0
        ])
        .ctx("claim a checkout session")?;
        checkout_claim(conn, tenant, &claim.invitee)?.ok_or_else(|| StoreError::Database {
            what: "claim a checkout session",
            source: "the claim was not kept".into(),
        })
    }

    fn record_checkout_session(
        &mut self,
        tenant: TenantId,
        invitee: &str,
        session_id: &str,
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "UPDATE checkout_sessions SET session_id = ?2 WHERE tenant = ?3 AND invitee = ?1",
            )
            .ctx("prepare checkout update")?
            .execute(params![invitee, session_id, tenant.0])
            .ctx("record a checkout session")
            .map(drop)
    }

    fn note_invitee(
        &mut self,
        tenant: TenantId,
        note: &InviteeNote,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO invitees (invitee, booked_at, canceled_at, moved_to, updated_at_ms,
                                       tenant)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (tenant, invitee) DO UPDATE SET
                     booked_at = coalesce(booked_at, excluded.booked_at),
                     canceled_at = coalesce(canceled_at, excluded.canceled_at),
                     moved_to = coalesce(moved_to, excluded.moved_to),
                     updated_at_ms = excluded.updated_at_ms",
            )
            .ctx("prepare invitee note")?
            .execute(params![
                note.invitee,
                note.booked_at,
                note.canceled_at,
                note.moved_to,
                now_ms,
                tenant.0
            ])
            .ctx("note an invitee")
            .map(drop)
    }

    fn count_redirect(
        &mut self,
        tenant: TenantId,
        slug: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO redirect_visits (slug, visits, last_at_ms, tenant)
                 VALUES (?1, 1, ?2, ?3)
                 ON CONFLICT (tenant, slug) DO UPDATE SET visits = visits + 1,
                     last_at_ms = MAX(last_at_ms, excluded.last_at_ms)",
            )
            .ctx("prepare redirect count")?
            .execute(params![slug, now_ms, tenant.0])
            .ctx("count a redirect")
            .map(drop)
    }

    fn add_calendly_key(
        &mut self,
        consumer: ConsumerId,
        key: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let conn = self.0;
        conn.execute(
            "INSERT INTO calendly_keys (key, added_at_ms, consumer_id) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET added_at_ms = excluded.added_at_ms,
                                             consumer_id = excluded.consumer_id",
            params![key, now_ms, consumer.0],
        )
        .ctx("store a Calendly signing key")?;
        conn.execute(
            "DELETE FROM calendly_keys WHERE consumer_id = ?2 AND key NOT IN
                 (SELECT key FROM calendly_keys WHERE consumer_id = ?2
                  ORDER BY added_at_ms DESC, rowid DESC LIMIT ?1)",
            params![KEPT_CALENDLY_KEYS as i64, consumer.0],
        )
        .ctx("forget old Calendly signing keys")?;
        Ok(())
    }

    fn replace_stripe_secrets(
        &mut self,
        consumer: ConsumerId,
        secrets: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        replace_set(self.0, &STRIPE_SECRET_SET, consumer, secrets, now_ms)
    }

    fn replace_app_keys(
        &mut self,
        consumer: ConsumerId,
        keys: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        replace_set(self.0, &APP_KEY_SET, consumer, keys, now_ms)
    }

    fn replace_checkout_key(
        &mut self,
        consumer: ConsumerId,
        sealed: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let values: Vec<String> = sealed.map(str::to_owned).into_iter().collect();
        replace_set(self.0, &CHECKOUT_KEY_SET, consumer, &values, now_ms)
    }

    fn touch_consumer(&mut self, consumer: ConsumerId, now_ms: i64) -> Result<(), StoreError> {
        self.0
            .prepare_cached("UPDATE consumers SET last_used_at_ms = ?2 WHERE id = ?1")
            .ctx("prepare the last-use update")?
            .execute(params![consumer.0, now_ms])
            .ctx("record the last use")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::seqs;

    /// A database exactly as relays made it before migrations were numbered.
    fn legacy_db(path: &Path) {
        let conn = Connection::open(path).expect("open");
        conn.execute_batch(MIGRATIONS[0].2).expect("old schema");
        conn.execute_batch(
            "INSERT INTO events (provider, key, received_at_ms, body, acked_at_ms) VALUES
                ('stripe', 'evt_a', 1, '{\"id\":\"evt_a\",\"livemode\":true}', 5),
                ('calendly', 'c|1|t', 2, '{}', NULL),
                ('stripe', 'evt_b', 3, '{\"id\":\"evt_b\",\"livemode\":false}', NULL);
             UPDATE ack_mark SET through = 1;
             INSERT INTO tokens (hash, created_at_ms) VALUES ('old-hash', 7);
             INSERT INTO payment_links (slug, url) VALUES ('intro', 'https://buy.stripe.com/x');
             INSERT INTO calendly_keys (key, added_at_ms) VALUES ('an-old-handed-over-key', 9);",
        )
        .expect("old rows");
        assert_eq!(user_version(&conn).expect("version"), 0);
    }

    #[test]
    fn a_database_of_before_migrations_is_migrated_with_its_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        legacy_db(&path);
        let b = SqliteBackend::open(&path, Durability::Full).expect("migrate");
        let r = b.reader().expect("reader");
        let consumers = r.consumers(TenantId::HOME).expect("consumers");
        assert_eq!(consumers.len(), 1);
        let old = &consumers[0];
        assert_eq!(
            (old.name.as_str(), old.mode, old.acked_through),
            ("legacy-1", TokenMode::Any, 1)
        );
        assert_eq!(
            r.consumer_by_hash("old-hash")
                .expect("lookup")
                .map(|c| c.id),
            Some(old.id)
        );
        assert_eq!(seqs(&*r, TokenMode::Any, old.acked_through), vec![2, 3]);
        assert_eq!(
            seqs(&*r, TokenMode::Live, 0),
            vec![1, 2],
            "livemode read from old bodies"
        );
        assert_eq!(
            r.link_for(TenantId::HOME, "intro")
                .expect("link")
                .as_deref(),
            Some("https://buy.stripe.com/x")
        );
        assert_eq!(
            r.calendly_keys(TenantId::HOME).expect("keys"),
            vec!["an-old-handed-over-key".to_owned()]
        );
        let id = b.relay_id().clone();
        drop(r);
        drop(b);
        let again = SqliteBackend::open(&path, Durability::Full).expect("reopen");
        assert_eq!(again.relay_id(), &id, "the identity is made once");
        let conn = Connection::open(&path).expect("open");
        assert_eq!(user_version(&conn).expect("version"), SCHEMA_VERSION);
    }

    /// Migration 6 rebuilds the events table: the sequence keeps its high-water mark, so a
    /// number given to a purged event is never given again.
    #[test]
    fn the_tenants_migration_keeps_the_sequence_past_purged_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v5.db");
        let conn = Connection::open(&path).expect("open");
        for (version, _, sql) in &MIGRATIONS[..5] {
            conn.execute_batch(sql).expect("migration");
            conn.pragma_update(None, "user_version", version)
                .expect("version");
        }
        conn.execute_batch(
            "INSERT INTO events (provider, key, received_at_ms, body) VALUES
                ('stripe', 'evt_1', 1, '{}'), ('stripe', 'evt_2', 2, '{}'),
                ('stripe', 'evt_3', 3, '{}');
             DELETE FROM events WHERE seq = 3;
             INSERT INTO payment_links (slug, url) VALUES ('intro', 'https://buy.stripe.com/x');",
        )
        .expect("rows");
        drop(conn);
        let b = SqliteBackend::open(&path, Durability::Full).expect("migrate");
        let mut w = b.writer().expect("writer");
        let mut seq = None;
        w.group(&mut |tx| {
            seq = Some(tx.insert_event(&NewEvent {
                tenant: TenantId::HOME,
                provider: coachdesk_protocol::relay::Provider::Stripe,
                key: "evt_4",
                body: "{}",
                sealed: None,
                livemode: None,
                received_at_ms: 4,
            })?);
            Ok(())
        })
        .expect("insert");
        assert_eq!(seq, Some(Inserted::New(4)));
        let r = b.reader().expect("reader");
        assert_eq!(seqs(&*r, TokenMode::Any, 0), vec![1, 2, 4]);
        assert_eq!(
            r.link_for(TenantId::HOME, "intro")
                .expect("link")
                .as_deref(),
            Some("https://buy.stripe.com/x")
        );
    }

    #[test]
    fn a_newer_database_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("new.db");
        drop(SqliteBackend::open(&path, Durability::Full).expect("create"));
        Connection::open(&path)
            .expect("open")
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
        match SqliteBackend::open(&path, Durability::Full) {
            Err(StoreError::TooNew { found, known }) => {
                assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
            }
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("a newer database was opened"),
        }
    }
}
