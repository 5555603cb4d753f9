//! The relay's storage, behind one set of traits: the webhook queue, the consumers (named
//! tokens with their own cursors), the payment link table, handed-over Calendly keys and
//! the relay's identity.
//!
//! The HTTP layer and the writer see only these traits, so another backend (PostgreSQL,
//! for a relay serving many coaches) can be added without touching them. SQLite
//! ([`sqlite`]) is the default; PostgreSQL ([`pg`]) is chosen by `database_url`.
//!
//! What every backend must keep:
//! - Sequence numbers only grow and are never reused after a purge, so a cursor only moves
//!   forward.
//! - Every row a coach owns names its tenant ([`crate::tenant`]), and every query names
//!   the tenant it reads or writes: nothing crosses tenants.
//! - Deduplication by `(tenant, provider, key)` holds across concurrent requests and
//!   restarts.
//! - [`WriteStore::group`] applies a whole group of changes in one transaction: the writer
//!   answers 2xx only after it returned `Ok`, so a 2xx means committed (and, with
//!   `durability = "full"`, on disk).
//! - An event is "acknowledged" (and its retention starts) once every consumer it is for
//!   acknowledged it: Calendly events are for every consumer, Stripe events for the
//!   consumers of their mode (see [`TokenMode`]).

#[cfg(test)]
mod conformance;
pub mod pg;
pub mod sqlite;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

use coachdesk_protocol::relay::{CheckoutTerms, PaymentLinkRoute, Provider, PulledEvent};

use crate::config::{Durability, Settings};
use crate::tenant::{Tenant, TenantId, TenantName};
use crate::token::{TokenMode, TokenName};
pub use crate::webhook::InviteeNote;

/// A storage failure, by kind.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed while the relay was doing `what`.
    #[error("relay database: {what}: {source}")]
    Database {
        what: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database was made or migrated by a newer relay.
    #[error(
        "the relay database is at schema version {found}, newer than this relay knows ({known}): \
         run the coachdesk-relay version that last used it, or a newer one"
    )]
    TooNew { found: u32, known: u32 },
    /// A numbered migration failed; the database stays at the version before it.
    #[error("relay database migration {version} failed: {source}")]
    Migration {
        version: u32,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `token create` with a name already in use.
    #[error("a token named {0:?} exists already; revoke it first or choose another name")]
    NameTaken(String),
    /// `tenant create` with a name already in use.
    #[error("a tenant named {0:?} exists already")]
    TenantTaken(String),
    /// The database's event keys were hashed with another index key.
    #[error(
        "this database's event keys were hashed with another index key: start the relay with \
         the key it was made with (index_key, or the .index-key file beside an SQLite database)"
    )]
    IndexKeyMismatch,
}

/// A consumer's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsumerId(pub i64);

/// One app install allowed to use the pull API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub id: ConsumerId,
    /// Whose events it reads: a token is accepted only under its own tenant's paths.
    pub tenant: TenantId,
    pub name: String,
    pub mode: TokenMode,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
    /// The highest sequence this consumer acknowledged.
    pub acked_through: i64,
}

impl Consumer {
    /// A consumer just made: nothing used or acknowledged yet.
    pub(crate) fn made(
        id: ConsumerId,
        tenant: TenantId,
        name: &TokenName,
        mode: TokenMode,
        now_ms: i64,
    ) -> Consumer {
        Consumer {
            id,
            tenant,
            name: name.as_str().to_owned(),
            mode,
            created_at_ms: now_ms,
            last_used_at_ms: None,
            acked_through: 0,
        }
    }
}

/// The relay's identity: random, made with its database, never changed after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayId(pub String);

impl RelayId {
    /// A new random id (`rly_` and 32 hex digits).
    pub fn generate() -> RelayId {
        use rand::RngCore;
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        RelayId(format!("rly_{}", hex::encode(bytes)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A verified webhook to queue.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub tenant: TenantId,
    pub provider: Provider,
    pub key: &'a str,
    /// The body as received; empty when it is stored only `sealed`.
    pub body: &'a str,
    /// The body sealed for the tenant's app keys (see `coachdesk_seal`).
    pub sealed: Option<&'a [u8]>,
    /// Which consumers it is for (see [`crate::token::event_livemode`]).
    pub livemode: Option<bool>,
    pub received_at_ms: i64,
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new event, with its sequence number.
    New(i64),
    /// The provider key was already stored; nothing was added.
    Duplicate,
}

/// What an acknowledgement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    /// The consumer's cursor now stands at this sequence (never moved backwards).
    Through(i64),
    /// The ack named a sequence the relay never stored; nothing was marked.
    BeyondNewest { newest: i64 },
    /// The consumer was revoked meanwhile; nothing was marked.
    Revoked,
}

/// What `/pay/{slug}` may do for a slug: the payment link, and what a Checkout Session of
/// its own needs when the app pushed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRoute {
    pub link: String,
    pub checkout: Option<CheckoutTerms>,
    pub booking_url: Option<String>,
}

/// A booking's Checkout Session as the relay keeps it, per Calendly invitee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutClaim {
    /// The Calendly invitee UUID (Stripe's `client_reference_id`).
    pub invitee: String,
    /// The slug of the first visit: its price is the session's.
    pub slug: String,
    pub email: Option<String>,
    /// Unix seconds: the session's `expires_at` (the payment deadline, within Stripe's
    /// limits).
    pub expires_at: i64,
    /// Stripe's id, once the session was made.
    pub session_id: Option<String>,
    pub created_at_ms: i64,
}

/// Post-booking redirect visits of one slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectCount {
    pub slug: String,
    pub visits: i64,
    pub last_at_ms: i64,
}

/// How many signing keys handed over by one consumer are kept (its newest): a renewed
/// subscription's key and the ones before it, so deliveries in flight still verify.
pub const KEPT_CALENDLY_KEYS: usize = 3;

/// Most Stripe signing secrets one consumer may hand over at once: the endpoint's, and
/// during a rotation the retiring endpoint's.
pub const MAX_STRIPE_SECRETS: usize = 2;

/// Most app keys one consumer may register at once: its key, and during a rotation the
/// retiring one.
pub const MAX_APP_KEYS: usize = 2;

/// A set of strings each consumer hands over whole, replacing what it handed over before,
/// and that is read back per tenant: its Stripe endpoint secrets, its app keys. Both
/// backends store each in its own table, `(consumer_id, column, added_at_ms)`.
pub(crate) struct ConsumerSet {
    pub table: &'static str,
    pub column: &'static str,
    /// What a failed replacement was doing, for its error.
    pub replacing: &'static str,
    /// What a failed read was doing.
    pub listing: &'static str,
}

pub(crate) const STRIPE_SECRET_SET: ConsumerSet = ConsumerSet {
    table: "stripe_secrets",
    column: "secret",
    replacing: "replace the handed-over Stripe secrets",
    listing: "list Stripe signing secrets",
};

pub(crate) const APP_KEY_SET: ConsumerSet = ConsumerSet {
    table: "app_keys",
    column: "public_key",
    replacing: "replace the registered app keys",
    listing: "list the app keys",
};

/// At most one a consumer: its Stripe restricted key, encrypted (see `at_rest`).
pub(crate) const CHECKOUT_KEY_SET: ConsumerSet = ConsumerSet {
    table: "checkout_keys",
    column: "sealed_key",
    replacing: "replace the handed-over Stripe restricted key",
    listing: "read the handed-over Stripe restricted key",
};

/// The SQL (both backends) of [`ReadStore::checkout_key`]: `?1`/`$1` the tenant.
pub(crate) const NEWEST_CHECKOUT_KEY: &str =
    "SELECT s.consumer_id, s.sealed_key FROM checkout_keys s
     JOIN consumers c ON c.id = s.consumer_id
     WHERE c.tenant = {t} ORDER BY s.added_at_ms DESC, s.consumer_id DESC LIMIT 1";

/// A Stripe restricted key an app handed over, as stored: encrypted for its consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckoutKey {
    pub consumer: ConsumerId,
    pub sealed: String,
}

/// Opens handles on one relay database.
pub trait Backend: Send + Sync {
    /// The relay's identity.
    fn relay_id(&self) -> &RelayId;
    /// A handle for one worker's reads.
    fn reader(&self) -> Result<Box<dyn ReadStore>, StoreError>;
    /// The single writer's handle (see [`crate::writer`]).
    fn writer(&self) -> Result<Box<dyn WriteStore>, StoreError>;
    /// Records the index key's `check` in a database that has none, re-keying the events
    /// stored before with `rehash(provider, key)`, in one transaction; refuses a database
    /// whose keys were made with another index key. Returns how many events were re-keyed.
    fn adopt_index_key(
        &self,
        check: &str,
        rehash: &dyn Fn(&str, &str) -> String,
    ) -> Result<u64, StoreError>;
    /// Adds a tenant (`tenant create`).
    fn create_tenant(&self, name: &TenantName, now_ms: i64) -> Result<Tenant, StoreError>;
    /// Removes a tenant with everything it owns: events, consumers, their keys and
    /// secrets, payment links, checkout claims, invitees, redirect counts. `false` if no
    /// tenant has that name.
    fn remove_tenant(&self, name: &TenantName) -> Result<bool, StoreError>;
    /// Adds a consumer (`token create`); its cursor starts before every stored event.
    fn create_consumer(
        &self,
        tenant: TenantId,
        name: &TokenName,
        mode: TokenMode,
        hash: &str,
        now_ms: i64,
    ) -> Result<Consumer, StoreError>;
    /// Removes a consumer and the keys and secrets it handed over (`token revoke`). Events it
    /// alone held back become acknowledged. `false` if no consumer has that name.
    fn revoke_consumer(
        &self,
        tenant: TenantId,
        name: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    /// For a database other processes write to: a thread that calls `on_new` with the
    /// newest sequence whenever any of them commits events, so long-polls here wake for
    /// events stored there, and `on_keys` when a tenant's keys changed (its id; `None`:
    /// any tenant's, or a tenant was removed), so caches here forget them; until `stop` is
    /// set. `None` where only this process writes (SQLite: its own writer advances the tip).
    fn watch(
        &self,
        on_new: Box<dyn Fn(i64) + Send>,
        on_keys: Box<dyn Fn(Option<TenantId>) + Send>,
        stop: Arc<AtomicBool>,
    ) -> Result<Option<JoinHandle<()>>, StoreError> {
        let _ = (on_new, on_keys, stop);
        Ok(None)
    }
}

/// Reads, from any worker thread.
pub trait ReadStore: Send {
    /// The relay's identity (as [`Backend::relay_id`]).
    fn relay_id(&self) -> &RelayId;
    /// The consumer a token hash belongs to, with its current cursor.
    fn consumer_by_hash(&self, hash: &str) -> Result<Option<Consumer>, StoreError>;
    /// The tenant a `/t/{name}/` path names, if it exists.
    fn tenant(&self, name: &TenantName) -> Result<Option<TenantId>, StoreError>;
    /// Every tenant but [`TenantId::HOME`], by name.
    fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;
    /// Every consumer of a tenant, oldest first.
    fn consumers(&self, tenant: TenantId) -> Result<Vec<Consumer>, StoreError>;
    /// The tenant's events for `mode` after `after`, in sequence order: at most `limit`,
    /// and stopping once `max_bytes` of bodies are gathered (always at least one event if
    /// any is due).
    fn pull(
        &self,
        tenant: TenantId,
        mode: TokenMode,
        after: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<PulledEvent>, StoreError>;
    /// The highest sequence ever stored (0 if none).
    fn newest_seq(&self) -> Result<i64, StoreError>;
    /// The payment link for a slug.
    fn link_for(&self, tenant: TenantId, slug: &str) -> Result<Option<String>, StoreError> {
        Ok(self.pay_route(tenant, slug)?.map(|r| r.link))
    }
    /// The payment link and Checkout terms for a slug.
    fn pay_route(&self, tenant: TenantId, slug: &str) -> Result<Option<PayRoute>, StoreError>;
    /// The Checkout Session claimed for a Calendly invitee, if any.
    fn checkout_for(
        &self,
        tenant: TenantId,
        invitee: &str,
    ) -> Result<Option<CheckoutClaim>, StoreError>;
    /// What verified Calendly deliveries said about an invitee, if anything.
    fn invitee(&self, tenant: TenantId, invitee: &str) -> Result<Option<InviteeNote>, StoreError>;
    /// Redirect visits per slug, by slug.
    fn redirects(&self, tenant: TenantId) -> Result<Vec<RedirectCount>, StoreError>;
    /// Every Calendly signing key the tenant's consumers handed over, newest first.
    fn calendly_keys(&self, tenant: TenantId) -> Result<Vec<String>, StoreError>;
    /// Every Stripe endpoint signing secret the tenant's consumers handed over (no order).
    fn stripe_secrets(&self, tenant: TenantId) -> Result<Vec<String>, StoreError>;
    /// Every app key the tenant's consumers registered (no order).
    fn app_keys(&self, tenant: TenantId) -> Result<Vec<String>, StoreError>;
    /// The newest Stripe restricted key the tenant's consumers handed over, if any.
    fn checkout_key(&self, tenant: TenantId) -> Result<Option<StoredCheckoutKey>, StoreError>;
    /// How many of the tenant's events for `mode` after `after` are stored sealed.
    fn sealed_waiting(
        &self,
        tenant: TenantId,
        mode: TokenMode,
        after: i64,
    ) -> Result<i64, StoreError>;
    /// Events not yet acknowledged by every consumer they are for, and the receipt time of
    /// the oldest of them.
    fn queue_stats(&self) -> Result<(i64, Option<i64>), StoreError>;
    /// Unacknowledged events per tenant that has any, by tenant name (`""` for
    /// [`TenantId::HOME`]).
    fn queue_by_tenant(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// When each tenant's apps last used the API (unix ms, recorded at most once a
    /// minute per token), by tenant name; tenants whose tokens were never used are left out.
    fn last_use_by_tenant(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Whether the database answers.
    fn ping(&self) -> Result<(), StoreError>;
}

/// The writer's handle. Dropping it finishes the backend's housekeeping.
pub trait WriteStore: Send {
    /// Runs `ops` in one transaction and commits it; if `ops` or the commit fails, nothing
    /// of it is kept.
    fn group(
        &mut self,
        ops: &mut dyn FnMut(&mut dyn WriteTx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Deletes events acknowledged before `acked_before_ms`, and, if given, every event
    /// received before `received_before_ms`. Returns how many.
    fn purge(
        &mut self,
        acked_before_ms: i64,
        received_before_ms: Option<i64>,
    ) -> Result<usize, StoreError>;
}

/// The changes one group may hold.
pub trait WriteTx {
    /// Queues an event unless its key is already stored.
    fn insert_event(&mut self, event: &NewEvent<'_>) -> Result<Inserted, StoreError>;
    /// Queues several events, each unless its key is stored already or came earlier in
    /// `events`; the outcomes in order. A backend where each statement is a round trip
    /// (PostgreSQL) stores them in one.
    fn insert_events(&mut self, events: &[NewEvent<'_>]) -> Result<Vec<Inserted>, StoreError> {
        events.iter().map(|e| self.insert_event(e)).collect()
    }
    /// Moves the consumer's cursor to `through` (refused beyond the newest sequence).
    fn ack(&mut self, consumer: ConsumerId, through: i64, now_ms: i64)
        -> Result<Acked, StoreError>;
    /// Replaces the tenant's whole payment link table.
    fn replace_links(
        &mut self,
        tenant: TenantId,
        links: &[PaymentLinkRoute],
    ) -> Result<(), StoreError>;
    /// Keeps a Calendly key the consumer handed over, with its newest
    /// [`KEPT_CALENDLY_KEYS`] (other consumers' keys are untouched).
    fn add_calendly_key(
        &mut self,
        consumer: ConsumerId,
        key: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Replaces the Stripe signing secrets the consumer handed over with `secrets` (other
    /// consumers' are untouched); an empty list forgets them.
    fn replace_stripe_secrets(
        &mut self,
        consumer: ConsumerId,
        secrets: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Replaces the app keys the consumer registered with `keys` (other consumers' are
    /// untouched); an empty list forgets them.
    fn replace_app_keys(
        &mut self,
        consumer: ConsumerId,
        keys: &[String],
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Replaces the Stripe restricted key the consumer handed over (encrypted: `sealed`);
    /// `None` forgets it.
    fn replace_checkout_key(
        &mut self,
        consumer: ConsumerId,
        sealed: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Keeps `claim` unless the invitee has one already; the one kept.
    fn claim_checkout(
        &mut self,
        tenant: TenantId,
        claim: &CheckoutClaim,
    ) -> Result<CheckoutClaim, StoreError>;
    /// Records the session Stripe made for the invitee's claim.
    fn record_checkout_session(
        &mut self,
        tenant: TenantId,
        invitee: &str,
        session_id: &str,
    ) -> Result<(), StoreError>;
    /// Merges what a verified Calendly delivery said about an invitee: each field keeps
    /// the first value it was given (deliveries repeat and arrive out of order).
    fn note_invitee(
        &mut self,
        tenant: TenantId,
        note: &InviteeNote,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Counts a visit of `/pay/{slug}`.
    fn count_redirect(
        &mut self,
        tenant: TenantId,
        slug: &str,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Records that the consumer used the API.
    fn touch_consumer(&mut self, consumer: ConsumerId, now_ms: i64) -> Result<(), StoreError>;
}

/// The configured backend, migrated to the current schema: PostgreSQL if `database_url`
/// is set, else the SQLite file `db`.
pub fn open(settings: &Settings, durability: Durability) -> Result<Arc<dyn Backend>, StoreError> {
    Ok(match &settings.database_url {
        Some(url) => Arc::new(pg::PgBackend::open(
            url,
            durability,
            settings.database_connections,
        )?),
        None => Arc::new(sqlite::SqliteBackend::open(&settings.db, durability)?),
    })
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

/// A payment link row as stored: Checkout terms only when every part of them is.
pub(crate) fn pay_route(
    link: String,
    name: Option<String>,
    amount_minor: Option<i64>,
    currency: Option<String>,
    window_minutes: Option<i64>,
    booking_url: Option<String>,
) -> PayRoute {
    let checkout = match (name, amount_minor, currency, window_minutes) {
        (Some(name), Some(amount_minor), Some(currency), Some(window)) => u32::try_from(window)
            .ok()
            .map(|payment_window_minutes| CheckoutTerms {
                name,
                amount_minor,
                currency,
                payment_window_minutes,
            }),
        _ => None,
    };
    PayRoute {
        link,
        checkout,
        booking_url,
    }
}

/// Tenants from `(id, name, created_at_ms)` rows. Names were checked when made; a row
/// whose name no longer parses (edited by hand) is left out rather than served.
pub(crate) fn tenants_from_rows(rows: Vec<(i64, String, i64)>) -> Vec<Tenant> {
    rows.into_iter()
        .filter_map(|(id, name, created_at_ms)| {
            Some(Tenant {
                id: TenantId(id),
                name: TenantName::parse(&name)?,
                created_at_ms,
            })
        })
        .collect()
}

/// A pulled event from its stored columns: a sealed one carries its sealed bytes (base64)
/// and an empty body.
pub(crate) fn pulled_event(
    seq: i64,
    provider: &str,
    key: String,
    received_at_ms: i64,
    body: String,
    sealed: Option<Vec<u8>>,
) -> PulledEvent {
    use base64::Engine as _;
    PulledEvent {
        seq,
        provider: provider_from(provider),
        key,
        received_at: rfc3339_ms(received_at_ms),
        body,
        sealed: sealed.map(|s| base64::engine::general_purpose::STANDARD.encode(s)),
    }
}

/// A provider as stored in the `provider` column.
pub(crate) fn provider_from(stored: &str) -> Provider {
    if stored == "calendly" {
        Provider::Calendly
    } else {
        Provider::Stripe
    }
}

/// A pull's page from the events in sequence order: the first always, then while the
/// bodies stay within `max_bytes`.
pub(crate) fn page_within<E>(
    events: impl IntoIterator<Item = Result<PulledEvent, E>>,
    max_bytes: usize,
) -> Result<Vec<PulledEvent>, E> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for event in events {
        let event = event?;
        let size = event.body.len() + event.sealed.as_ref().map_or(0, String::len);
        if !out.is_empty() && bytes + size > max_bytes {
            break;
        }
        bytes += size;
        out.push(event);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn relay_ids_are_random() {
        let (a, b) = (RelayId::generate(), RelayId::generate());
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("rly_") && a.as_str().len() == 36);
    }
}
