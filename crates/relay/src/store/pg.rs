//! The PostgreSQL backend, for a relay serving many coaches or run as several processes
//! over one database (`database_url`).
//!
//! Connections: the writer has its own, with its statements prepared once; reads take a
//! connection from a small pool for each query, so a long-poll holds none while it
//! waits; a listener has one more (see [`Backend::watch`]).
//!
//! What SQLite gets from its single write lock, PostgreSQL gets from an advisory lock
//! every write transaction takes first ([`WRITE_LOCK`]): relay processes sharing the
//! database take their turns, so sequence numbers are committed in the order they were
//! drawn (a cursor never passes an event that commits later) and the dedup check before
//! an insert sees every committed key. The writer's group commit keeps that one lock
//! round per group, not per event. Durability: `full` keeps `synchronous_commit = on`
//! (the 2xx waits for the WAL flush); `normal` sets it `off` for the writer (a 2xx
//! survives the relay, not a crash of the database server).
//!
//! Schema: the numbered files in `crates/relay/migrations-pg/`, each applied in its own
//! transaction under [`MIGRATE_LOCK`] with the version in `relay_schema`; a database
//! newer than this relay is refused.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use coachdesk_protocol::relay::{PaymentLinkRoute, PulledEvent};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls, Row, Statement, Transaction};
use r2d2_postgres::PostgresConnectionManager;

use super::{
    Acked, Backend, CheckoutClaim, Consumer, ConsumerId, Inserted, InviteeNote, NewEvent, PayRoute,
    ReadStore, RedirectCount, RelayId, StoreError, WriteStore, WriteTx, KEPT_CALENDLY_KEYS,
};
use crate::config::{DatabaseUrl, Durability};
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
        include_str!("../../migrations-pg/0001_init.sql"),
    ),
    (
        2,
        "0002_stripe_secrets.sql",
        include_str!("../../migrations-pg/0002_stripe_secrets.sql"),
    ),
    (
        3,
        "0003_checkout.sql",
        include_str!("../../migrations-pg/0003_checkout.sql"),
    ),
    (
        4,
        "0004_invitees.sql",
        include_str!("../../migrations-pg/0004_invitees.sql"),
    ),
    (
        5,
        "0005_tenants.sql",
        include_str!("../../migrations-pg/0005_tenants.sql"),
    ),
    (
        6,
        "0006_sealing.sql",
        include_str!("../../migrations-pg/0006_sealing.sql"),
    ),
    (
        7,
        "0007_index_key.sql",
        include_str!("../../migrations-pg/0007_index_key.sql"),
    ),
    (
        8,
        "0008_event_storage.sql",
        include_str!("../../migrations-pg/0008_event_storage.sql"),
    ),
    (
        9,
        "0009_checkout_keys.sql",
        include_str!("../../migrations-pg/0009_checkout_keys.sql"),
    ),
];

/// The schema version this relay writes.
pub const SCHEMA_VERSION: u32 = 9;

/// Advisory lock held by every write transaction (keys are per database).
pub const WRITE_LOCK: i64 = 0x636f_6163_6801;
/// Advisory lock held while the schema is migrated.
pub const MIGRATE_LOCK: i64 = 0x636f_6163_6802;
/// Advisory lock of the purge: one process purges at a time, the others skip their turn.
pub const PURGE_LOCK: i64 = 0x636f_6163_6803;
/// The channel a commit with new events notifies, with the newest sequence as payload.
pub const CHANNEL: &str = "coachdesk_relay_events";
/// The channel a change of a tenant's keys (signing keys, secrets, app keys, tokens)
/// notifies, with the tenant's id as payload, or `*` for every tenant (one was removed).
pub const KEYS_CHANNEL: &str = "coachdesk_relay_keys";

/// Notifies [`KEYS_CHANNEL`] for the tenant of consumer `$1`, at commit.
const NOTIFY_KEYS_OF: &str = "SELECT pg_notify('coachdesk_relay_keys',
    COALESCE((SELECT tenant::text FROM consumers WHERE id = $1), '*'))";

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// The invitee's claimed Checkout Session, through a connection or a transaction.
fn checkout_claim(
    conn: &mut impl postgres::GenericClient,
    tenant: TenantId,
    invitee: &str,
) -> Result<Option<CheckoutClaim>, StoreError> {
    Ok(conn
        .query_opt(
            "SELECT invitee, slug, email, expires_at, session_id, created_at_ms
             FROM checkout_sessions WHERE tenant = $1 AND invitee = $2",
            &[&tenant.0, &invitee],
        )
        .ctx("look up a checkout session")?
        .map(|r| CheckoutClaim {
            invitee: r.get(0),
            slug: r.get(1),
            email: r.get(2),
            expires_at: r.get(3),
            session_id: r.get(4),
            created_at_ms: r.get(5),
        }))
}

trait Context<T> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, postgres::Error> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database {
            what,
            source: Box::new(source),
        })
    }
}

impl<T> Context<T> for Result<T, r2d2::Error> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database {
            what,
            source: Box::new(source),
        })
    }
}

/// The connection settings of `url`, named for the server's activity view.
fn config(url: &DatabaseUrl) -> Result<postgres::Config, StoreError> {
    let mut config = postgres::Config::from_str(url.expose()).ctx("read the database URL")?;
    if config.get_application_name().is_none() {
        config.application_name("coachdesk-relay");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    Ok(config)
}

fn schema_version(client: &mut impl postgres::GenericClient) -> Result<u32, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('relay_schema') IS NOT NULL", &[])
        .ctx("look for the schema version")?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let version: i32 = client
        .query_one("SELECT version FROM relay_schema WHERE id = 1", &[])
        .ctx("read the schema version")?
        .get(0);
    Ok(u32::try_from(version).unwrap_or(0))
}

/// Brings the schema to [`SCHEMA_VERSION`]; relays starting at once migrate it once.
pub(crate) fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    loop {
        let mut tx = client.transaction().ctx("begin a migration")?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
            .ctx("take the migration lock")?;
        let current = schema_version(&mut tx)?;
        if current > known {
            return Err(StoreError::TooNew {
                found: current,
                known,
            });
        }
        let Some((version, _, sql)) = MIGRATIONS.iter().find(|m| m.0 > current) else {
            return Ok(());
        };
        let fail = |source: postgres::Error| StoreError::Migration {
            version: *version,
            source: Box::new(source),
        };
        if current == 0 {
            tx.batch_execute(
                "CREATE TABLE relay_schema (
                     id INTEGER PRIMARY KEY CHECK (id = 1),
                     version INTEGER NOT NULL
                 );
                 INSERT INTO relay_schema (id, version) VALUES (1, 0);",
            )
            .map_err(fail)?;
        }
        tx.batch_execute(sql).map_err(fail)?;
        let v = i32::try_from(*version).unwrap_or(i32::MAX);
        tx.execute("UPDATE relay_schema SET version = $1 WHERE id = 1", &[&v])
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
}

/// The relay's id, made now if the database has none yet.
fn identity(client: &mut Client, now_ms: i64) -> Result<RelayId, StoreError> {
    client
        .execute(
            "INSERT INTO relay_identity (id, relay_id, created_at_ms) VALUES (1, $1, $2)
             ON CONFLICT (id) DO NOTHING",
            &[&RelayId::generate().as_str(), &now_ms],
        )
        .ctx("make the relay's identity")?;
    client
        .query_one("SELECT relay_id FROM relay_identity WHERE id = 1", &[])
        .ctx("read the relay's identity")
        .map(|r| RelayId(r.get(0)))
}

/// A relay database on a PostgreSQL server.
pub struct PgBackend {
    config: postgres::Config,
    pool: Pool,
    durability: Durability,
    relay_id: RelayId,
}

impl PgBackend {
    /// Connects, migrates the schema and opens a pool of at most `connections` for reads.
    pub fn open(
        url: &DatabaseUrl,
        durability: Durability,
        connections: u32,
    ) -> Result<PgBackend, StoreError> {
        let config = config(url)?;
        let mut client = config.connect(NoTls).ctx("connect to PostgreSQL")?;
        migrate(&mut client)?;
        let relay_id = identity(&mut client, crate::writer::now_ms())?;
        drop(client);
        let pool = r2d2::Pool::builder()
            .max_size(connections.max(1))
            .min_idle(Some(1))
            // A broken connection is noticed by the query that meets it (a 503 at worst)
            // and replaced; testing each checkout would cost a round trip per read.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .build(PostgresConnectionManager::new(config.clone(), NoTls))
            .ctx("open the connection pool")?;
        Ok(PgBackend {
            config,
            pool,
            durability,
            relay_id,
        })
    }

    /// A connection of its own, refused if another relay migrated the schema further.
    fn connect(&self) -> Result<Client, StoreError> {
        connect_checked(&self.config)
    }
}

/// A connection, refused if another relay migrated the schema further.
fn connect_checked(config: &postgres::Config) -> Result<Client, StoreError> {
    let mut client = config.connect(NoTls).ctx("connect to PostgreSQL")?;
    let found = schema_version(&mut client)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(client)
}

/// The writer's connection with its durability set and its statements prepared.
fn writer_session(
    config: &postgres::Config,
    durability: Durability,
) -> Result<(Client, Statements), StoreError> {
    let mut client = connect_checked(config)?;
    if durability == Durability::Normal {
        client
            .batch_execute("SET synchronous_commit = off")
            .ctx("set synchronous_commit")?;
    }
    let statements = Statements::prepare(&mut client)?;
    Ok((client, statements))
}

impl Backend for PgBackend {
    fn relay_id(&self) -> &RelayId {
        &self.relay_id
    }

    fn reader(&self) -> Result<Box<dyn ReadStore>, StoreError> {
        Ok(Box::new(PgReader {
            pool: self.pool.clone(),
            relay_id: self.relay_id.clone(),
        }))
    }

    fn writer(&self) -> Result<Box<dyn WriteStore>, StoreError> {
        Ok(Box::new(PgWriter {
            session: Some(writer_session(&self.config, self.durability)?),
            config: self.config.clone(),
            durability: self.durability,
        }))
    }

    fn adopt_index_key(
        &self,
        check: &str,
        rehash: &dyn Fn(&str, &str) -> String,
    ) -> Result<u64, StoreError> {
        let mut client = self.connect()?;
        let mut tx = client.transaction().ctx("begin")?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .ctx("take the write lock")?;
        let stored: Option<String> = tx
            .query_one("SELECT index_check FROM relay_identity WHERE id = 1", &[])
            .ctx("read the index key check")?
            .get(0);
        match stored {
            Some(stored) if stored == check => return Ok(0),
            Some(_) => return Err(StoreError::IndexKeyMismatch),
            None => {}
        }
        let plain: Vec<(i64, String, String)> = tx
            .query("SELECT seq, provider, key FROM events", &[])
            .ctx("read the events' keys")?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let update = tx
            .prepare("UPDATE events SET key = $1 WHERE seq = $2")
            .ctx("prepare re-keying")?;
        for (seq, provider, key) in &plain {
            tx.execute(&update, &[&rehash(provider, key), seq])
                .ctx("re-key an event")?;
        }
        tx.execute(
            "UPDATE relay_identity SET index_check = $1 WHERE id = 1",
            &[&check],
        )
        .ctx("record the index key check")?;
        tx.commit().ctx("commit the index key")?;
        Ok(plain.len() as u64)
    }

    fn create_tenant(&self, name: &TenantName, now_ms: i64) -> Result<Tenant, StoreError> {
        let row = self
            .connect()?
            .query_opt(
                "INSERT INTO tenants (name, created_at_ms) VALUES ($1, $2)
                 ON CONFLICT (name) DO NOTHING RETURNING id",
                &[&name.as_str(), &now_ms],
            )
            .ctx("store the tenant")?;
        let Some(row) = row else {
            return Err(StoreError::TenantTaken(name.as_str().to_owned()));
        };
        Ok(Tenant {
            id: TenantId(row.get(0)),
            name: name.clone(),
            created_at_ms: now_ms,
        })
    }

    fn remove_tenant(&self, name: &TenantName) -> Result<bool, StoreError> {
        let mut client = self.connect()?;
        let mut tx = client.transaction().ctx("begin")?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .ctx("take the write lock")?;
        let id: Option<i64> = tx
            .query_opt("SELECT id FROM tenants WHERE name = $1", &[&name.as_str()])
            .ctx("look up the tenant")?
            .map(|r| r.get(0));
        let Some(id) = id else {
            return Ok(false);
        };
        for sql in [
            "DELETE FROM calendly_keys WHERE consumer_id IN
                 (SELECT id FROM consumers WHERE tenant = $1)",
            "DELETE FROM stripe_secrets WHERE consumer_id IN
                 (SELECT id FROM consumers WHERE tenant = $1)",
            "DELETE FROM app_keys WHERE consumer_id IN
                 (SELECT id FROM consumers WHERE tenant = $1)",
            "DELETE FROM checkout_keys WHERE consumer_id IN
                 (SELECT id FROM consumers WHERE tenant = $1)",
            "DELETE FROM consumers WHERE tenant = $1",
            "DELETE FROM events WHERE tenant = $1",
            "DELETE FROM payment_links WHERE tenant = $1",
            "DELETE FROM checkout_sessions WHERE tenant = $1",
            "DELETE FROM redirect_visits WHERE tenant = $1",
            "DELETE FROM invitees WHERE tenant = $1",
            "DELETE FROM tenants WHERE id = $1",
        ] {
            tx.execute(sql, &[&id]).ctx("remove the tenant's rows")?;
        }
        tx.execute("SELECT pg_notify($1, '*')", &[&KEYS_CHANNEL])
            .ctx("notify the removal")?;
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
        let mut client = self.connect()?;
        let row = client
            .query_opt(
                "INSERT INTO consumers (tenant, name, hash, mode, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant, name) DO NOTHING RETURNING id",
                &[&tenant.0, &name.as_str(), &hash, &mode.as_str(), &now_ms],
            )
            .ctx("store the token")?;
        let Some(row) = row else {
            return Err(StoreError::NameTaken(name.as_str().to_owned()));
        };
        Ok(Consumer::made(
            ConsumerId(row.get(0)),
            tenant,
            name,
            mode,
            now_ms,
        ))
    }

    fn revoke_consumer(
        &self,
        tenant: TenantId,
        name: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut client = self.connect()?;
        let mut tx = client.transaction().ctx("begin")?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
            .ctx("take the write lock")?;
        let id: Option<i64> = tx
            .query_opt(
                "SELECT id FROM consumers WHERE tenant = $1 AND name = $2",
                &[&tenant.0, &name],
            )
            .ctx("look up the token")?
            .map(|r| r.get(0));
        let Some(id) = id else {
            return Ok(false);
        };
        tx.execute("DELETE FROM calendly_keys WHERE consumer_id = $1", &[&id])
            .ctx("forget the token's Calendly keys")?;
        tx.execute("DELETE FROM stripe_secrets WHERE consumer_id = $1", &[&id])
            .ctx("forget the token's Stripe secrets")?;
        tx.execute(NOTIFY_KEYS_OF, &[&id])
            .ctx("notify the revocation")?;
        tx.execute("DELETE FROM app_keys WHERE consumer_id = $1", &[&id])
            .ctx("forget the token's app keys")?;
        tx.execute("DELETE FROM checkout_keys WHERE consumer_id = $1", &[&id])
            .ctx("forget the token's Stripe restricted key")?;
        tx.execute("DELETE FROM consumers WHERE id = $1", &[&id])
            .ctx("delete the token")?;
        tx.execute(MARK_FULLY_ACKED, &[&now_ms, &tenant.0])
            .ctx("mark acknowledged events")?;
        tx.commit().ctx("commit the revocation")?;
        Ok(true)
    }

    fn watch(
        &self,
        on_new: Box<dyn Fn(i64) + Send>,
        on_keys: Box<dyn Fn(Option<TenantId>) + Send>,
        stop: Arc<AtomicBool>,
    ) -> Result<Option<JoinHandle<()>>, StoreError> {
        let mut client = self.connect()?;
        client
            .batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {KEYS_CHANNEL}"))
            .ctx("listen for new events")?;
        let config = self.config.clone();
        std::thread::Builder::new()
            .name("relay-listen".to_owned())
            .spawn(move || listen_loop(client, &config, &*on_new, &*on_keys, &stop))
            .map(Some)
            .map_err(|e| StoreError::Database {
                what: "start the listener",
                source: Box::new(e),
            })
    }
}

/// Passes every notified sequence to `on_new` and every notified tenant to `on_keys`
/// until `stop`. After a lost connection it reconnects and reports the newest sequence and
/// "every tenant's keys", so nothing missed meanwhile is lost.
fn listen_loop(
    mut client: Client,
    config: &postgres::Config,
    on_new: &dyn Fn(i64),
    on_keys: &dyn Fn(Option<TenantId>),
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let broken = {
            let mut notes = client.notifications();
            let mut iter = notes.timeout_iter(Duration::from_millis(250));
            loop {
                match iter.next() {
                    Ok(Some(n)) if n.channel() == KEYS_CHANNEL => {
                        on_keys(n.payload().parse::<i64>().ok().map(TenantId));
                    }
                    Ok(Some(n)) => {
                        if let Ok(seq) = n.payload().parse::<i64>() {
                            on_new(seq);
                        }
                    }
                    Ok(None) => break false,
                    Err(e) => {
                        tracing::warn!(error = %e, "lost the database listener; reconnecting");
                        break true;
                    }
                }
            }
        };
        if !broken {
            continue;
        }
        client = loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
            let Ok(mut c) = config.connect(NoTls) else {
                continue;
            };
            if c.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {KEYS_CHANNEL}"))
                .is_err()
            {
                continue;
            }
            if let Ok(seq) = max_seq(&mut c) {
                on_new(seq);
            }
            on_keys(None);
            break c;
        };
    }
}

fn consumer_from_row(row: &Row) -> Result<Consumer, StoreError> {
    let get = |e| StoreError::Database {
        what: "read a token",
        source: Box::new(e),
    };
    let mode: String = row.try_get(2).map_err(get)?;
    Ok(Consumer {
        id: ConsumerId(row.try_get(0).map_err(get)?),
        tenant: TenantId(row.try_get(6).map_err(get)?),
        name: row.try_get(1).map_err(get)?,
        // The CHECK constraint admits nothing else.
        mode: TokenMode::from_stored(&mode).unwrap_or(TokenMode::Test),
        created_at_ms: row.try_get(3).map_err(get)?,
        last_used_at_ms: row.try_get(4).map_err(get)?,
        acked_through: row.try_get(5).map_err(get)?,
    })
}

/// Every value the tenant's consumers hold in `set`, once each, in order.
fn tenant_set(
    conn: &mut impl postgres::GenericClient,
    set: &ConsumerSet,
    tenant: TenantId,
) -> Result<Vec<String>, StoreError> {
    Ok(conn
        .query(
            &format!(
                "SELECT DISTINCT s.{col} FROM {table} s JOIN consumers c ON c.id = s.consumer_id
                 WHERE c.tenant = $1 ORDER BY s.{col}",
                col = set.column,
                table = set.table
            ),
            &[&tenant.0],
        )
        .ctx(set.listing)?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// An event row of a pull (`seq, provider, key, received_at_ms, body, sealed`).
fn pulled_from_row(row: &Row) -> Result<PulledEvent, StoreError> {
    let provider: String = row.try_get(1).ctx("pull provider")?;
    Ok(super::pulled_event(
        row.try_get(0).ctx("pull seq")?,
        &provider,
        row.try_get(2).ctx("pull key")?,
        row.try_get(3).ctx("pull time")?,
        row.try_get(4).ctx("pull body")?,
        row.try_get(5).ctx("pull sealed body")?,
    ))
}

const CONSUMER_COLUMNS: &str =
    "SELECT id, name, mode, created_at_ms, last_used_at_ms, acked_through, tenant FROM consumers";

const MAX_SEQ: &str = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM event_seq";

/// The highest sequence drawn so far (0 if none ever was). Under [`WRITE_LOCK`] that is
/// the newest committed one, or a number a failed group drew and left unused.
fn max_seq(client: &mut impl postgres::GenericClient) -> Result<i64, StoreError> {
    client
        .query_one(MAX_SEQ, &[])
        .ctx("read the sequence")
        .map(|r| r.get(0))
}

/// Marks acknowledged (starting their retention) the events of tenant `$2` every consumer
/// they are for has acknowledged; `$1` is now. An event with no consumer at all stays
/// unacknowledged.
const MARK_FULLY_ACKED: &str = "
    WITH m AS (
        SELECT COALESCE(MIN(acked_through), 0) AS all_,
               COALESCE(MIN(CASE WHEN mode IN ('test', 'any') THEN acked_through END), 0) AS test,
               COALESCE(MIN(CASE WHEN mode IN ('live', 'any') THEN acked_through END), 0) AS live
        FROM consumers WHERE tenant = $2
    )
    UPDATE events e SET acked_at_ms = $1 FROM m
    WHERE e.acked_at_ms IS NULL AND e.tenant = $2
      AND e.seq <= GREATEST(m.all_, m.test, m.live)
      AND ((e.livemode IS NULL AND e.seq <= m.all_)
        OR (e.livemode = false AND e.seq <= m.test)
        OR (e.livemode = true AND e.seq <= m.live))";

struct PgReader {
    pool: Pool,
    relay_id: RelayId,
}

impl PgReader {
    fn conn(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<NoTls>>, StoreError> {
        self.pool.get().ctx("take a database connection")
    }
}

impl ReadStore for PgReader {
    fn relay_id(&self) -> &RelayId {
        &self.relay_id
    }

    fn consumer_by_hash(&self, hash: &str) -> Result<Option<Consumer>, StoreError> {
        self.conn()?
            .query_opt(&format!("{CONSUMER_COLUMNS} WHERE hash = $1"), &[&hash])
            .ctx("look up the token")?
            .as_ref()
            .map(consumer_from_row)
            .transpose()
    }

    fn tenant(&self, name: &TenantName) -> Result<Option<TenantId>, StoreError> {
        Ok(self
            .conn()?
            .query_opt("SELECT id FROM tenants WHERE name = $1", &[&name.as_str()])
            .ctx("look up the tenant")?
            .map(|r| TenantId(r.get(0))))
    }

    fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let rows = self
            .conn()?
            .query(
                "SELECT id, name, created_at_ms FROM tenants ORDER BY name",
                &[],
            )
            .ctx("list the tenants")?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        Ok(super::tenants_from_rows(rows))
    }

    fn consumers(&self, tenant: TenantId) -> Result<Vec<Consumer>, StoreError> {
        self.conn()?
            .query(
                &format!("{CONSUMER_COLUMNS} WHERE tenant = $1 ORDER BY id"),
                &[&tenant.0],
            )
            .ctx("list the tokens")?
            .iter()
            .map(consumer_from_row)
            .collect()
    }

    fn pull(
        &self,
        tenant: TenantId,
        mode: TokenMode,
        after: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<PulledEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let any = mode == TokenMode::Any;
        let live = mode == TokenMode::Live;
        let mut conn = self.conn()?;
        let rows = conn
            .query_raw(
                "SELECT seq, provider, key, received_at_ms, body, sealed FROM events
                 WHERE tenant = $5 AND seq > $1 AND (livemode IS NULL OR $3 OR livemode = $4)
                 ORDER BY seq LIMIT $2",
                [
                    &after as &(dyn postgres::types::ToSql + Sync),
                    &limit,
                    &any,
                    &live,
                    &tenant.0,
                ],
            )
            .ctx("pull")?;
        super::page_within(
            rows.iterator()
                .map(|row| pulled_from_row(&row.ctx("pull row")?)),
            max_bytes,
        )
    }

    fn newest_seq(&self) -> Result<i64, StoreError> {
        max_seq(&mut *self.conn()?)
    }

    fn pay_route(&self, tenant: TenantId, slug: &str) -> Result<Option<PayRoute>, StoreError> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT url, checkout_name, amount_minor, currency, payment_window_minutes,
                        booking_url
                 FROM payment_links WHERE tenant = $1 AND slug = $2",
                &[&tenant.0, &slug],
            )
            .ctx("look up payment link")?
            .map(|r| super::pay_route(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))))
    }

    fn checkout_for(
        &self,
        tenant: TenantId,
        invitee: &str,
    ) -> Result<Option<CheckoutClaim>, StoreError> {
        checkout_claim(&mut *self.conn()?, tenant, invitee)
    }

    fn invitee(&self, tenant: TenantId, invitee: &str) -> Result<Option<InviteeNote>, StoreError> {
        Ok(self
            .conn()?
            .query_opt(
                "SELECT invitee, booked_at, canceled_at, moved_to FROM invitees
                 WHERE tenant = $1 AND invitee = $2",
                &[&tenant.0, &invitee],
            )
            .ctx("look up an invitee")?
            .map(|r| InviteeNote {
                invitee: r.get(0),
                booked_at: r.get(1),
                canceled_at: r.get(2),
                moved_to: r.get(3),
            }))
    }

    fn redirects(&self, tenant: TenantId) -> Result<Vec<RedirectCount>, StoreError> {
        Ok(self
            .conn()?
            .query(
                "SELECT slug, visits, last_at_ms FROM redirect_visits WHERE tenant = $1
                 ORDER BY slug",
                &[&tenant.0],
            )
            .ctx("list redirect visits")?
            .iter()
            .map(|r| RedirectCount {
                slug: r.get(0),
                visits: r.get(1),
                last_at_ms: r.get(2),
            })
            .collect())
    }

    fn calendly_keys(&self, tenant: TenantId) -> Result<Vec<String>, StoreError> {
        Ok(self
            .conn()?
            .query(
                "SELECT k.key FROM calendly_keys k JOIN consumers c ON c.id = k.consumer_id
                 WHERE c.tenant = $1 ORDER BY k.added_at_ms DESC, k.ord DESC",
                &[&tenant.0],
            )
            .ctx("list Calendly signing keys")?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn stripe_secrets(&self, tenant: TenantId) -> Result<Vec<String>, StoreError> {
        tenant_set(&mut *self.conn()?, &STRIPE_SECRET_SET, tenant)
    }

    fn app_keys(&self, tenant: TenantId) -> Result<Vec<String>, StoreError> {
        tenant_set(&mut *self.conn()?, &APP_KEY_SET, tenant)
    }

    fn checkout_key(&self, tenant: TenantId) -> Result<Option<StoredCheckoutKey>, StoreError> {
        Ok(self
            .conn()?
            .query_opt(&NEWEST_CHECKOUT_KEY.replace("{t}", "$1"), &[&tenant.0])
            .ctx(CHECKOUT_KEY_SET.listing)?
            .map(|r| StoredCheckoutKey {
                consumer: ConsumerId(r.get(0)),
                sealed: r.get(1),
            }))
    }

    fn sealed_waiting(
        &self,
        tenant: TenantId,
        mode: TokenMode,
        after: i64,
    ) -> Result<i64, StoreError> {
        Ok(self
            .conn()?
            .query_one(
                "SELECT COUNT(*) FROM events
                 WHERE tenant = $1 AND seq > $2 AND sealed IS NOT NULL
                   AND (livemode IS NULL OR $3 OR livemode = $4)",
                &[
                    &tenant.0,
                    &after,
                    &(mode == TokenMode::Any),
                    &(mode == TokenMode::Live),
                ],
            )
            .ctx("count sealed events")?
            .get(0))
    }

    fn queue_stats(&self) -> Result<(i64, Option<i64>), StoreError> {
        let row = self
            .conn()?
            .query_one(
                "SELECT COUNT(*), (SELECT received_at_ms FROM events WHERE acked_at_ms IS NULL
                                   ORDER BY seq LIMIT 1)
                 FROM events WHERE acked_at_ms IS NULL",
                &[],
            )
            .ctx("count the queue")?;
        Ok((row.get(0), row.get(1)))
    }

    fn queue_by_tenant(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(self
            .conn()?
            .query(
                "SELECT COALESCE(t.name, ''), COUNT(*) FROM events e
                 LEFT JOIN tenants t ON t.id = e.tenant
                 WHERE e.acked_at_ms IS NULL GROUP BY 1 ORDER BY 1",
                &[],
            )
            .ctx("count the queue per tenant")?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn last_use_by_tenant(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(self
            .conn()?
            .query(
                "SELECT t.name, MAX(c.last_used_at_ms) FROM consumers c
                 JOIN tenants t ON t.id = c.tenant
                 WHERE c.last_used_at_ms IS NOT NULL GROUP BY t.name ORDER BY 1",
                &[],
            )
            .ctx("read the last use per tenant")?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.conn()?
            .simple_query("SELECT 1")
            .ctx("ping")
            .map(|_| ())
    }
}

/// The writer's statements, prepared once on its connection.
struct Statements {
    lock: Statement,
    insert: Statement,
    insert_many: Statement,
    max_seq: Statement,
    cursor: Statement,
    move_cursor: Statement,
    mark: Statement,
    touch: Statement,
    notify: Statement,
}

impl Statements {
    fn prepare(client: &mut Client) -> Result<Statements, StoreError> {
        let mut p = |sql: &str| client.prepare(sql).ctx("prepare the writer's statements");
        Ok(Statements {
            lock: p("SELECT pg_advisory_xact_lock($1)")?,
            // The dedup check and the insert in one round trip; under the write lock no
            // other writer can store the key in between. A duplicate draws no number.
            insert: p(
                "INSERT INTO events (provider, key, received_at_ms, body, livemode, tenant, sealed)
                       SELECT $1::text, $2::text, $3::bigint, $4::text, $5::boolean, $6::bigint,
                              $7::bytea
                       WHERE NOT EXISTS
                           (SELECT 1 FROM events WHERE tenant = $6::bigint
                            AND provider = $1::text AND key = $2::text)
                       RETURNING seq",
            )?,
            // A group's events in one statement: keys already stored are left out (a
            // key twice in the group is sent once, see `insert_events`). `OFFSET 0` keeps
            // the check a per-row index lookup: as an anti-join, a plan made while the
            // table was small would hash the whole table for every group.
            insert_many: p(
                "INSERT INTO events (provider, key, received_at_ms, body, livemode, tenant, sealed)
                 SELECT e.provider, e.key, e.received_at_ms, e.body, e.livemode, e.tenant, e.sealed
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::boolean[],
                             $6::int[], $7::bigint[], $8::bytea[])
                      AS e(provider, key, received_at_ms, body, livemode, ord, tenant, sealed)
                 WHERE NOT EXISTS
                     (SELECT 1 FROM events x
                      WHERE x.tenant = e.tenant AND x.provider = e.provider AND x.key = e.key
                      OFFSET 0)
                 ORDER BY e.ord
                 RETURNING seq, provider, key, tenant",
            )?,
            max_seq: p(MAX_SEQ)?,
            cursor: p("SELECT acked_through, tenant FROM consumers WHERE id = $1")?,
            move_cursor: p(
                "UPDATE consumers SET acked_through = $2, last_used_at_ms = $3 WHERE id = $1",
            )?,
            mark: p(MARK_FULLY_ACKED)?,
            touch: p("UPDATE consumers SET last_used_at_ms = $2 WHERE id = $1")?,
            notify: p("SELECT pg_notify($1, $2)")?,
        })
    }
}

struct PgWriter {
    /// `None` after a lost connection that could not be made again yet.
    session: Option<(Client, Statements)>,
    config: postgres::Config,
    durability: Durability,
}

impl PgWriter {
    /// The writer's connection, made again if it was lost (a restarted or failed-over
    /// database): the group that met the loss got its 503, the next one goes through.
    fn session(&mut self) -> Result<&mut (Client, Statements), StoreError> {
        let session = match self.session.take() {
            Some(s) if !s.0.is_closed() => s,
            _ => writer_session(&self.config, self.durability)?,
        };
        Ok(self.session.insert(session))
    }
}

impl WriteStore for PgWriter {
    fn group(
        &mut self,
        ops: &mut dyn FnMut(&mut dyn WriteTx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let result = self.group_once(ops);
        self.forget_after(&result);
        result
    }

    fn purge(
        &mut self,
        acked_before_ms: i64,
        received_before_ms: Option<i64>,
    ) -> Result<usize, StoreError> {
        let result = self.purge_once(acked_before_ms, received_before_ms);
        self.forget_after(&result);
        result
    }
}

impl PgWriter {
    /// After a failure the connection is not trusted again: a lost connection is not
    /// always marked closed at once, and a new one costs only the failed group's time.
    fn forget_after<T>(&mut self, result: &Result<T, StoreError>) {
        if result.is_err() {
            self.session = None;
        }
    }

    fn group_once(
        &mut self,
        ops: &mut dyn FnMut(&mut dyn WriteTx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let (client, st) = self.session()?;
        let st = &*st;
        let mut tx = client.transaction().ctx("begin")?;
        tx.execute(&st.lock, &[&WRITE_LOCK])
            .ctx("take the write lock")?;
        let mut pg = PgTx {
            tx: &mut tx,
            st,
            newest: None,
        };
        ops(&mut pg)?;
        if let Some(seq) = pg.newest {
            // Delivered at commit, to every relay process listening (this one too).
            tx.execute(&st.notify, &[&CHANNEL, &seq.to_string()])
                .ctx("notify new events")?;
        }
        tx.commit().ctx("commit")
    }

    fn purge_once(
        &mut self,
        acked_before_ms: i64,
        received_before_ms: Option<i64>,
    ) -> Result<usize, StoreError> {
        let (client, _) = self.session()?;
        let mut tx = client.transaction().ctx("begin the purge")?;
        let ours: bool = tx
            .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&PURGE_LOCK])
            .ctx("take the purge lock")?
            .get(0);
        if !ours {
            // Another relay process is purging the same rows right now.
            return Ok(0);
        }
        let n = tx
            .execute(
                "DELETE FROM events WHERE (acked_at_ms IS NOT NULL AND acked_at_ms < $1)
                                       OR received_at_ms < $2",
                &[&acked_before_ms, &received_before_ms.unwrap_or(i64::MIN)],
            )
            .ctx("purge events past retention")?;
        tx.commit().ctx("commit the purge")?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}

struct PgTx<'a, 'c> {
    tx: &'a mut Transaction<'c>,
    st: &'a Statements,
    /// The newest sequence this group inserted, for the notification.
    newest: Option<i64>,
}

impl PgTx<'_, '_> {
    /// Replaces what `consumer` holds in `set` with `values`, and tells the other
    /// processes its tenant's keys changed.
    fn replace_set(
        &mut self,
        set: &ConsumerSet,
        consumer: ConsumerId,
        values: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                &format!("DELETE FROM {} WHERE consumer_id = $1", set.table),
                &[&consumer.0],
            )
            .ctx(set.replacing)?;
        let insert = self
            .tx
            .prepare(&format!(
                "INSERT INTO {} (consumer_id, {}, added_at_ms) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                set.table, set.column
            ))
            .ctx(set.replacing)?;
        for value in values {
            self.tx
                .execute(&insert, &[&consumer.0, value, &now_ms])
                .ctx(set.replacing)?;
        }
        self.tx
            .execute(NOTIFY_KEYS_OF, &[&consumer.0])
            .ctx("notify the key change")?;
        Ok(())
    }
}

impl WriteTx for PgTx<'_, '_> {
    fn insert_event(&mut self, e: &NewEvent<'_>) -> Result<Inserted, StoreError> {
        let row = self
            .tx
            .query_opt(
                &self.st.insert,
                &[
                    &e.provider.as_str(),
                    &e.key,
                    &e.received_at_ms,
                    &e.body,
                    &e.livemode,
                    &e.tenant.0,
                    &e.sealed,
                ],
            )
            .ctx("insert event")?;
        Ok(match row {
            Some(row) => {
                let seq: i64 = row.get(0);
                self.newest = Some(self.newest.map_or(seq, |n| n.max(seq)));
                Inserted::New(seq)
            }
            None => Inserted::Duplicate,
        })
    }

    fn insert_events(&mut self, events: &[NewEvent<'_>]) -> Result<Vec<Inserted>, StoreError> {
        // The first of each key in the group is sent; later ones are duplicates of it.
        let mut seen = HashSet::with_capacity(events.len());
        let first: Vec<bool> = events
            .iter()
            .map(|e| seen.insert((e.tenant, e.provider.as_str(), e.key)))
            .collect();
        let sent: Vec<&NewEvent<'_>> = events
            .iter()
            .zip(&first)
            .filter_map(|(e, f)| f.then_some(e))
            .collect();
        let providers: Vec<&str> = sent.iter().map(|e| e.provider.as_str()).collect();
        let keys: Vec<&str> = sent.iter().map(|e| e.key).collect();
        let received: Vec<i64> = sent.iter().map(|e| e.received_at_ms).collect();
        let bodies: Vec<&str> = sent.iter().map(|e| e.body).collect();
        let live: Vec<Option<bool>> = sent.iter().map(|e| e.livemode).collect();
        let tenants: Vec<i64> = sent.iter().map(|e| e.tenant.0).collect();
        let sealed: Vec<Option<&[u8]>> = sent.iter().map(|e| e.sealed).collect();
        let ords: Vec<i32> = (0..sent.len())
            .map(|i| i32::try_from(i).unwrap_or(i32::MAX))
            .collect();
        let rows = self
            .tx
            .query(
                &self.st.insert_many,
                &[
                    &providers, &keys, &received, &bodies, &live, &ords, &tenants, &sealed,
                ],
            )
            .ctx("insert events")?;
        let mut stored: HashMap<(i64, String, String), i64> = HashMap::with_capacity(rows.len());
        for row in rows {
            let seq: i64 = row.try_get(0).ctx("read an inserted sequence")?;
            self.newest = Some(self.newest.map_or(seq, |n| n.max(seq)));
            stored.insert(
                (
                    row.try_get(3).ctx("read an inserted tenant")?,
                    row.try_get(1).ctx("read an inserted provider")?,
                    row.try_get(2).ctx("read an inserted key")?,
                ),
                seq,
            );
        }
        Ok(events
            .iter()
            .zip(first)
            .map(|(e, first)| {
                let seq = first
                    .then(|| {
                        stored.get(&(e.tenant.0, e.provider.as_str().to_owned(), e.key.to_owned()))
                    })
                    .flatten();
                seq.map_or(Inserted::Duplicate, |s| Inserted::New(*s))
            })
            .collect())
    }

    fn ack(
        &mut self,
        consumer: ConsumerId,
        through: i64,
        now_ms: i64,
    ) -> Result<Acked, StoreError> {
        let newest: i64 = self
            .tx
            .query_one(&self.st.max_seq, &[])
            .ctx("read the sequence")?
            .get(0);
        if through > newest {
            return Ok(Acked::BeyondNewest { newest });
        }
        let current: Option<(i64, i64)> = self
            .tx
            .query_opt(&self.st.cursor, &[&consumer.0])
            .ctx("read the cursor")?
            .map(|r| (r.get(0), r.get(1)));
        let Some((current, tenant)) = current else {
            return Ok(Acked::Revoked);
        };
        let target = through.max(current);
        self.tx
            .execute(&self.st.move_cursor, &[&consumer.0, &target, &now_ms])
            .ctx("move the cursor")?;
        if target > current {
            self.tx
                .execute(&self.st.mark, &[&now_ms, &tenant])
                .ctx("mark acknowledged events")?;
        }
        Ok(Acked::Through(target))
    }

    fn replace_links(
        &mut self,
        tenant: TenantId,
        links: &[PaymentLinkRoute],
    ) -> Result<(), StoreError> {
        self.tx
            .execute("DELETE FROM payment_links WHERE tenant = $1", &[&tenant.0])
            .ctx("clear payment links")?;
        let insert = self
            .tx
            .prepare(
                "INSERT INTO payment_links (slug, url, checkout_name, amount_minor, currency,
                     payment_window_minutes, booking_url, tenant)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (tenant, slug) DO UPDATE SET url = excluded.url,
                     checkout_name = excluded.checkout_name,
                     amount_minor = excluded.amount_minor, currency = excluded.currency,
                     payment_window_minutes = excluded.payment_window_minutes,
                     booking_url = excluded.booking_url",
            )
            .ctx("prepare link insert")?;
        for l in links {
            let c = l.checkout.as_ref();
            let name = c.map(|c| c.name.as_str());
            let amount = c.map(|c| c.amount_minor);
            let currency = c.map(|c| c.currency.as_str());
            let window = c.map(|c| i64::from(c.payment_window_minutes));
            self.tx
                .execute(
                    &insert,
                    &[
                        &l.slug,
                        &l.url,
                        &name,
                        &amount,
                        &currency,
                        &window,
                        &l.booking_url,
                        &tenant.0,
                    ],
                )
                .ctx("insert payment link")?;
        }
        Ok(())
    }

    fn claim_checkout(
        &mut self,
        tenant: TenantId,
        claim: &CheckoutClaim,
    ) -> Result<CheckoutClaim, StoreError> {
        self.tx
            .execute(
                "INSERT INTO checkout_sessions (invitee, slug, email, expires_at, created_at_ms,
                                                tenant)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, invitee) DO NOTHING",
                &[
                    &claim.invitee,
                    &claim.slug,
                    &claim.email,
                    &claim.expires_at,
                    &claim.created_at_ms,
                    &tenant.0,
                ],
            )
            .ctx("claim a checkout session")?;
        checkout_claim(&mut *self.tx, tenant, &claim.invitee)?.ok_or_else(|| StoreError::Database {
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
        self.tx
            .execute(
                "UPDATE checkout_sessions SET session_id = $2 WHERE tenant = $3 AND invitee = $1",
                &[&invitee, &session_id, &tenant.0],
            )
            .ctx("record a checkout session")
            .map(drop)
    }

    fn note_invitee(
        &mut self,
        tenant: TenantId,
        note: &InviteeNote,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO invitees (invitee, booked_at, canceled_at, moved_to, updated_at_ms,
                                       tenant)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (tenant, invitee) DO UPDATE SET
                     booked_at = coalesce(invitees.booked_at, excluded.booked_at),
                     canceled_at = coalesce(invitees.canceled_at, excluded.canceled_at),
                     moved_to = coalesce(invitees.moved_to, excluded.moved_to),
                     updated_at_ms = excluded.updated_at_ms",
                &[
                    &note.invitee,
                    &note.booked_at,
                    &note.canceled_at,
                    &note.moved_to,
                    &now_ms,
                    &tenant.0,
                ],
            )
            .ctx("note an invitee")
            .map(drop)
    }

    fn count_redirect(
        &mut self,
        tenant: TenantId,
        slug: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO redirect_visits (slug, visits, last_at_ms, tenant)
                 VALUES ($1, 1, $2, $3)
                 ON CONFLICT (tenant, slug) DO UPDATE SET visits = redirect_visits.visits + 1,
                     last_at_ms = GREATEST(redirect_visits.last_at_ms, excluded.last_at_ms)",
                &[&slug, &now_ms, &tenant.0],
            )
            .ctx("count a redirect")
            .map(drop)
    }

    fn add_calendly_key(
        &mut self,
        consumer: ConsumerId,
        key: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO calendly_keys (key, added_at_ms, consumer_id) VALUES ($1, $2, $3)
                 ON CONFLICT (key) DO UPDATE SET added_at_ms = excluded.added_at_ms,
                                                 consumer_id = excluded.consumer_id",
                &[&key, &now_ms, &consumer.0],
            )
            .ctx("store a Calendly signing key")?;
        let kept = i64::try_from(KEPT_CALENDLY_KEYS).unwrap_or(i64::MAX);
        self.tx
            .execute(
                "DELETE FROM calendly_keys WHERE consumer_id = $2 AND key NOT IN
                     (SELECT key FROM calendly_keys WHERE consumer_id = $2
                      ORDER BY added_at_ms DESC, ord DESC LIMIT $1)",
                &[&kept, &consumer.0],
            )
            .ctx("forget old Calendly signing keys")?;
        self.tx
            .execute(NOTIFY_KEYS_OF, &[&consumer.0])
            .ctx("notify the key change")?;
        Ok(())
    }

    fn replace_stripe_secrets(
        &mut self,
        consumer: ConsumerId,
        secrets: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.replace_set(&STRIPE_SECRET_SET, consumer, secrets, now_ms)
    }

    fn replace_app_keys(
        &mut self,
        consumer: ConsumerId,
        keys: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.replace_set(&APP_KEY_SET, consumer, keys, now_ms)
    }

    fn replace_checkout_key(
        &mut self,
        consumer: ConsumerId,
        sealed: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let values: Vec<String> = sealed.map(str::to_owned).into_iter().collect();
        self.replace_set(&CHECKOUT_KEY_SET, consumer, &values, now_ms)
    }

    fn touch_consumer(&mut self, consumer: ConsumerId, now_ms: i64) -> Result<(), StoreError> {
        self.tx
            .execute(&self.st.touch, &[&consumer.0, &now_ms])
            .ctx("record the last use")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::postgres_url;
    use coachdesk_protocol::relay::Provider;

    #[test]
    fn relays_opening_at_once_migrate_once_and_share_one_identity() {
        let Some(url) = postgres_url() else { return };
        let opened: Vec<RelayId> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| PgBackend::open(&url, Durability::Full, 2).map(|b| b.relay_id)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread").expect("open"))
                .collect()
        });
        assert!(opened.windows(2).all(|w| w[0] == w[1]), "{opened:?}");
        let again = PgBackend::open(&url, Durability::Full, 2).expect("reopen");
        assert_eq!(again.relay_id(), &opened[0]);
        let mut client = again.connect().expect("connect");
        assert_eq!(
            schema_version(&mut client).expect("version"),
            SCHEMA_VERSION
        );
    }

    #[test]
    fn a_newer_database_is_refused() {
        let Some(url) = postgres_url() else { return };
        drop(PgBackend::open(&url, Durability::Full, 1).expect("create"));
        let mut client = config(&url)
            .expect("config")
            .connect(NoTls)
            .expect("connect");
        client
            .execute(
                "UPDATE relay_schema SET version = $1",
                &[&(SCHEMA_VERSION as i32 + 1)],
            )
            .expect("bump");
        match PgBackend::open(&url, Durability::Full, 1) {
            Err(StoreError::TooNew { found, known }) => {
                assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION))
            }
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("a newer database was opened"),
        }
    }

    #[test]
    fn a_purge_running_in_another_process_is_left_to_it() {
        let Some(url) = postgres_url() else { return };
        let b = PgBackend::open(&url, Durability::Full, 1).expect("open");
        let mut w = b.writer().expect("writer");
        w.group(&mut |tx| {
            tx.insert_event(&NewEvent {
                tenant: crate::tenant::TenantId::HOME,
                provider: Provider::Calendly,
                key: "old",
                body: "{}",
                sealed: None,
                livemode: None,
                received_at_ms: 1,
            })
            .map(|_| ())
        })
        .expect("insert");
        // Another relay process in the middle of its purge holds the purge lock.
        let mut other = b.connect().expect("connect");
        let mut purging = other.transaction().expect("begin");
        purging
            .execute("SELECT pg_advisory_xact_lock($1)", &[&PURGE_LOCK])
            .expect("lock");
        assert_eq!(w.purge(0, Some(10)).expect("purge"), 0, "skipped its turn");
        purging.commit().expect("release");
        assert_eq!(w.purge(0, Some(10)).expect("purge"), 1);
    }

    #[test]
    fn the_writer_and_the_readers_reconnect_after_losing_the_database() {
        let Some(url) = postgres_url() else { return };
        let b = PgBackend::open(&url, Durability::Full, 2).expect("open");
        let mut w = b.writer().expect("writer");
        let r = b.reader().expect("reader");
        let mut insert = |key: &str| {
            w.group(&mut |tx| {
                tx.insert_event(&NewEvent {
                    tenant: crate::tenant::TenantId::HOME,
                    provider: Provider::Stripe,
                    key,
                    body: "{}",
                    sealed: None,
                    livemode: Some(false),
                    received_at_ms: 1,
                })
                .map(|_| ())
            })
        };
        insert("before").expect("insert");
        assert_eq!(r.newest_seq().expect("newest"), 1);
        // The database drops every relay connection (a restart, a failover).
        let mut admin = b.connect().expect("admin");
        let killed: i64 = admin
            .query_one(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .expect("terminate")
            .get(0);
        assert!(
            killed >= 2,
            "the writer's and a reader's connections: {killed}"
        );
        // At most the group that meets the loss fails; the next one is committed.
        if insert("after").is_err() {
            insert("after").expect("the writer reconnected");
        }
        let newest = (0..3).find_map(|_| r.newest_seq().ok());
        assert_eq!(newest, Some(2), "a reader got a new connection");
    }

    #[test]
    fn a_group_in_normal_durability_commits_too() {
        let Some(url) = postgres_url() else { return };
        let b = PgBackend::open(&url, Durability::Normal, 1).expect("open");
        let mut w = b.writer().expect("writer");
        w.group(&mut |tx| {
            tx.insert_event(&NewEvent {
                tenant: crate::tenant::TenantId::HOME,
                provider: Provider::Stripe,
                key: "evt_n",
                body: "{}",
                sealed: None,
                livemode: Some(false),
                received_at_ms: 1,
            })
            .map(|_| ())
        })
        .expect("group");
        assert_eq!(b.reader().expect("reader").newest_seq().expect("newest"), 1);
    }
}
