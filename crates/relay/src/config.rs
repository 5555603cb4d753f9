//! The relay's settings: defaults, then a TOML file, then environment variables.
//!
//! Operators script the relay, so the keys and variable names here are a fixed interface
//! (see `docs/relay.md`). Settings are validated once at start. Secrets live in
//! [`Secret`], whose `Debug` never shows them, so a settings dump in a log is safe.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A webhook signing secret. Its `Debug` is redacted; the bytes are reachable only through
/// [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret's bytes, for the HMAC key. Never print them.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
    /// The secret as text, for an `Authorization` header. Never print it.
    pub fn expose_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A PostgreSQL connection string. It may hold a password, so its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// `None` for an empty value, so `COACHDESK_RELAY_DATABASE_URL=` means SQLite.
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into().trim().to_owned();
        (!value.is_empty()).then_some(DatabaseUrl(value))
    }
    /// The connection string, for the driver. Never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl(<redacted>)")
    }
}

/// What a 2xx promises about an event (`COACHDESK_RELAY_DURABILITY`, key `durability`).
///
/// Both modes use a WAL and answer only after the event's transaction committed; they
/// differ in whether that commit waited for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=FULL` (PostgreSQL: `synchronous_commit=on`): every group commit is
    /// fsynced before its answers, so a 2xx survives a power loss or kernel crash.
    #[default]
    Full,
    /// `synchronous=NORMAL`: a commit is written to the WAL (the OS page cache) but fsynced
    /// only at checkpoints, so a 2xx survives a crash or `kill -9` of the relay, but the last
    /// commits (about a checkpoint interval's worth) may be lost on a power loss.
    /// PostgreSQL: `synchronous_commit=off` for the writer, so a crash of the database
    /// server may lose them too.
    Normal,
}

impl Durability {
    /// The SQLite `synchronous` value for this mode.
    pub fn synchronous(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }

    /// The setting's name, as written in the file and the variable.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Full => "full",
            Durability::Normal => "normal",
        }
    }
}

impl std::str::FromStr for Durability {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Durability::Full),
            "normal" => Ok(Durability::Normal),
            _ => Err(()),
        }
    }
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid TOML for the relay: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{name}={value:?} is not valid: {reason}")]
    Env {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("invalid setting `{key}`: {reason}")]
    Invalid {
        key: &'static str,
        reason: &'static str,
    },
}

/// Every setting of the relay.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`COACHDESK_RELAY_LISTEN`, key `listen`).
    pub listen: String,
    /// The SQLite file (`COACHDESK_RELAY_DB`, key `db`), used unless `database_url` is set.
    pub db: PathBuf,
    /// A PostgreSQL database instead of the SQLite file, for a relay serving many coaches
    /// or run as several processes (`COACHDESK_RELAY_DATABASE_URL`, key `database_url`):
    /// `postgresql://user:password@host:port/dbname` or `host=... dbname=...`.
    pub database_url: Option<DatabaseUrl>,
    /// Most pooled PostgreSQL connections for reads, per relay process, besides the
    /// writer's and the listener's (`COACHDESK_RELAY_DATABASE_CONNECTIONS`, key
    /// `database_connections`). Ignored with SQLite.
    pub database_connections: u32,
    /// Stripe endpoint secrets, `whsec_...`, several during rotation
    /// (`COACHDESK_RELAY_STRIPE_SECRETS`, key `stripe_secrets`).
    pub stripe_secrets: Vec<Secret>,
    /// Calendly signing keys, several during rotation
    /// (`COACHDESK_RELAY_CALENDLY_KEYS`, key `calendly_keys`).
    pub calendly_keys: Vec<Secret>,
    /// Days an acknowledged event is kept before it is purged
    /// (`COACHDESK_RELAY_RETENTION_DAYS`, key `retention_days`).
    pub retention_days: u32,
    /// Whether a 2xx waits for an fsync (`COACHDESK_RELAY_DURABILITY`, key `durability`).
    pub durability: Durability,
    /// Worker threads answering requests (`COACHDESK_RELAY_WORKERS`, key `workers`).
    pub workers: usize,
    /// Seconds a client may stay silent while sending a request before it is dropped
    /// (`COACHDESK_RELAY_READ_TIMEOUT_SECS`, key `read_timeout_secs`).
    pub read_timeout_secs: u64,
    /// Signature timestamp tolerance in seconds, both ways (key `tolerance_secs`).
    pub tolerance_secs: i64,
    /// Largest accepted webhook body in bytes (key `max_body_bytes`).
    pub max_body_bytes: usize,
    /// Longest long-poll a pull may ask for, in seconds (key `max_wait_secs`).
    pub max_wait_secs: u64,
    /// Hosts a pushed payment link may point at besides Stripe's own (`buy.stripe.com`,
    /// `checkout.stripe.com`, always https): `host` or `host:port` for https, or
    /// `http://host[:port]` to allow plain http too; without a port any port matches
    /// (`COACHDESK_RELAY_PAYMENT_LINK_HOSTS`, comma-separated, key `payment_link_hosts`).
    pub payment_link_hosts: Vec<String>,
    /// Whether apps may hand over Calendly signing keys (`PUT /v1/calendly-signing-key`);
    /// when off, only `calendly_keys` verify Calendly
    /// (`COACHDESK_RELAY_CALENDLY_KEY_HANDOVER`, true|false, key `calendly_key_handover`).
    pub calendly_key_handover: bool,
    /// Whether apps may hand over the signing secrets of the Stripe webhook endpoints they
    /// made (`PUT /v1/stripe-signing-secrets`); when off, only `stripe_secrets` verify
    /// Stripe (`COACHDESK_RELAY_STRIPE_SECRET_HANDOVER`, true|false, key
    /// `stripe_secret_handover`).
    pub stripe_secret_handover: bool,
    /// Days after its receipt an event is purged even if some token never acknowledged it
    /// (an app install gone for good); 0 keeps it until acknowledged
    /// (`COACHDESK_RELAY_UNACKED_RETENTION_DAYS`, key `unacked_retention_days`).
    pub unacked_retention_days: u32,
    /// Most open client connections; lowered at run time to what the open-file limit
    /// leaves room for (`COACHDESK_RELAY_MAX_CONNECTIONS`, key `max_connections`).
    pub max_connections: usize,
    /// Most open connections from one address; trusted proxies are exempt
    /// (`COACHDESK_RELAY_MAX_CONNECTIONS_PER_IP`, key `max_connections_per_ip`).
    pub max_connections_per_ip: usize,
    /// Seconds from the start of waiting for a request to its last body byte; a trickling
    /// client cannot extend it (`COACHDESK_RELAY_REQUEST_DEADLINE_SECS`, key
    /// `request_deadline_secs`).
    pub request_deadline_secs: u64,
    /// Largest request head, request line and fields (`COACHDESK_RELAY_MAX_HEADER_BYTES`,
    /// key `max_header_bytes`).
    pub max_header_bytes: usize,
    /// Webhooks per second and burst per source address (`COACHDESK_RELAY_RATE_HOOKS_PER_SEC`,
    /// `COACHDESK_RELAY_RATE_HOOKS_BURST`; keys `rate_hooks_per_sec`, `rate_hooks_burst`).
    pub rate_hooks_per_sec: u32,
    pub rate_hooks_burst: u32,
    /// Webhooks per second and burst per tenant (not the relay's own coach), from every
    /// address together, so one coach's flood cannot take the writer from the others
    /// (`COACHDESK_RELAY_RATE_TENANT_HOOKS_PER_SEC`, `..._BURST`).
    pub rate_tenant_hooks_per_sec: u32,
    pub rate_tenant_hooks_burst: u32,
    /// App API requests (`/v1/*`) per second and burst per source address
    /// (`COACHDESK_RELAY_RATE_API_PER_SEC`, `COACHDESK_RELAY_RATE_API_BURST`).
    pub rate_api_per_sec: u32,
    pub rate_api_burst: u32,
    /// Payment redirects (`/pay/*`) per second and burst per source address
    /// (`COACHDESK_RELAY_RATE_PAY_PER_SEC`, `COACHDESK_RELAY_RATE_PAY_BURST`).
    pub rate_pay_per_sec: u32,
    pub rate_pay_burst: u32,
    /// Failed authentications one address may make at once, and new tries it earns per
    /// minute; past them it gets 429 on `/v1/*` (`COACHDESK_RELAY_AUTH_FAILURES_BURST`,
    /// `COACHDESK_RELAY_AUTH_FAILURES_PER_MIN`).
    pub auth_failures_burst: u32,
    pub auth_failures_per_min: u32,
    /// Proxies whose `X-Forwarded-For` (its last address) names the client for rate limits
    /// (`COACHDESK_RELAY_TRUSTED_PROXIES`, comma-separated; key `trusted_proxies`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// A Stripe restricted key (`rk_live_...`/`rk_test_...`) with Checkout Sessions: Write
    /// (which includes read), so `/pay/{slug}` makes each booking its own Checkout
    /// Session; without one it redirects to the payment link
    /// (`COACHDESK_RELAY_STRIPE_RESTRICTED_KEY`, key `stripe_restricted_key`).
    pub stripe_restricted_key: Option<Secret>,
    /// The key event keys are hashed with (`COACHDESK_RELAY_INDEX_KEY`, key `index_key`;
    /// at least 32 characters): required on PostgreSQL, the same for every process; on
    /// SQLite, a key file beside the database is made when unset (see `index`).
    pub index_key: Option<Secret>,
    /// Stripe's API address; tests point it at the simulator
    /// (`COACHDESK_RELAY_STRIPE_API_BASE`, key `stripe_api_base`).
    pub stripe_api_base: String,
    /// Most milliseconds one Stripe call may take while the client waits; past it the
    /// client is sent to the payment link (`COACHDESK_RELAY_STRIPE_TIMEOUT_MS`, key
    /// `stripe_timeout_ms`).
    pub stripe_timeout_ms: u64,
    /// The relay's public address (`https://relay.example.com`), for the Checkout page's
    /// return link; the request's `Host` with https when unset
    /// (`COACHDESK_RELAY_PUBLIC_URL`, key `public_url`).
    pub public_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8787".to_owned(),
            db: PathBuf::from("coachdesk-relay.db"),
            database_url: None,
            database_connections: 8,
            stripe_secrets: Vec::new(),
            calendly_keys: Vec::new(),
            retention_days: 7,
            durability: Durability::Full,
            workers: 64,
            read_timeout_secs: 10,
            tolerance_secs: coachdesk_signature::DEFAULT_TOLERANCE_SECS,
            max_body_bytes: 1024 * 1024,
            max_wait_secs: 30,
            payment_link_hosts: Vec::new(),
            calendly_key_handover: true,
            stripe_secret_handover: true,
            unacked_retention_days: 0,
            max_connections: 1024,
            max_connections_per_ip: 64,
            request_deadline_secs: 15,
            max_header_bytes: 16 * 1024,
            rate_hooks_per_sec: 100,
            rate_hooks_burst: 1000,
            rate_tenant_hooks_per_sec: 200,
            rate_tenant_hooks_burst: 2000,
            rate_api_per_sec: 50,
            rate_api_burst: 500,
            rate_pay_per_sec: 5,
            rate_pay_burst: 60,
            auth_failures_burst: 10,
            auth_failures_per_min: 10,
            trusted_proxies: Vec::new(),
            stripe_restricted_key: None,
            index_key: None,
            stripe_api_base: "https://api.stripe.com".to_owned(),
            stripe_timeout_ms: 4000,
            public_url: None,
        }
    }
}

/// The TOML file's shape: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    db: Option<PathBuf>,
    database_url: Option<String>,
    database_connections: Option<u32>,
    stripe_secrets: Option<Vec<String>>,
    calendly_keys: Option<Vec<String>>,
    retention_days: Option<u32>,
    durability: Option<Durability>,
    workers: Option<usize>,
    read_timeout_secs: Option<u64>,
    tolerance_secs: Option<i64>,
    max_body_bytes: Option<usize>,
    max_wait_secs: Option<u64>,
    payment_link_hosts: Option<Vec<String>>,
    calendly_key_handover: Option<bool>,
    stripe_secret_handover: Option<bool>,
    unacked_retention_days: Option<u32>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    request_deadline_secs: Option<u64>,
    max_header_bytes: Option<usize>,
    rate_hooks_per_sec: Option<u32>,
    rate_hooks_burst: Option<u32>,
    rate_tenant_hooks_per_sec: Option<u32>,
    rate_tenant_hooks_burst: Option<u32>,
    rate_api_per_sec: Option<u32>,
    rate_api_burst: Option<u32>,
    rate_pay_per_sec: Option<u32>,
    rate_pay_burst: Option<u32>,
    auth_failures_burst: Option<u32>,
    auth_failures_per_min: Option<u32>,
    trusted_proxies: Option<Vec<std::net::IpAddr>>,
    stripe_restricted_key: Option<String>,
    index_key: Option<String>,
    stripe_api_base: Option<String>,
    stripe_timeout_ms: Option<u64>,
    public_url: Option<String>,
}

fn secrets(list: impl IntoIterator<Item = String>) -> Vec<Secret> {
    list.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(Secret)
        .collect()
}

impl Settings {
    /// Defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_from(file, |name| std::env::var(name).ok())
    }

    /// As [`Settings::load`], with the environment given as a lookup (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            let f: FileSettings = toml::from_str(&text).map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source,
            })?;
            if let Some(v) = f.listen {
                s.listen = v;
            }
            if let Some(v) = f.db {
                s.db = v;
            }
            if let Some(v) = f.database_url {
                s.database_url = DatabaseUrl::new(v);
            }
            if let Some(v) = f.database_connections {
                s.database_connections = v;
            }
            if let Some(v) = f.stripe_secrets {
                s.stripe_secrets = secrets(v);
            }
            if let Some(v) = f.calendly_keys {
                s.calendly_keys = secrets(v);
            }
            if let Some(v) = f.retention_days {
                s.retention_days = v;
            }
            if let Some(v) = f.durability {
                s.durability = v;
            }
            if let Some(v) = f.workers {
                s.workers = v;
            }
            if let Some(v) = f.read_timeout_secs {
                s.read_timeout_secs = v;
            }
            if let Some(v) = f.tolerance_secs {
                s.tolerance_secs = v;
            }
            if let Some(v) = f.max_body_bytes {
                s.max_body_bytes = v;
            }
            if let Some(v) = f.max_wait_secs {
                s.max_wait_secs = v;
            }
            if let Some(v) = f.payment_link_hosts {
                s.payment_link_hosts = hosts(v);
            }
            if let Some(v) = f.calendly_key_handover {
                s.calendly_key_handover = v;
            }
            if let Some(v) = f.stripe_secret_handover {
                s.stripe_secret_handover = v;
            }
            if let Some(v) = f.unacked_retention_days {
                s.unacked_retention_days = v;
            }
            macro_rules! take {
                ($($key:ident),*) => {$(if let Some(v) = f.$key { s.$key = v; })*};
            }
            take!(
                max_connections,
                max_connections_per_ip,
                request_deadline_secs,
                max_header_bytes,
                rate_hooks_per_sec,
                rate_hooks_burst,
                rate_tenant_hooks_per_sec,
                rate_tenant_hooks_burst,
                rate_api_per_sec,
                rate_api_burst,
                rate_pay_per_sec,
                rate_pay_burst,
                auth_failures_burst,
                auth_failures_per_min,
                trusted_proxies,
                stripe_api_base,
                stripe_timeout_ms
            );
            if let Some(v) = f.stripe_restricted_key {
                s.stripe_restricted_key = secrets([v]).pop();
            }
            if let Some(v) = f.index_key {
                s.index_key = secrets([v]).pop();
            }
            if let Some(v) = f.public_url {
                s.public_url = Some(v);
            }
        }
        if let Some(v) = env("COACHDESK_RELAY_LISTEN") {
            s.listen = v;
        }
        if let Some(v) = env("COACHDESK_RELAY_DB") {
            s.db = PathBuf::from(v);
        }
        if let Some(v) = env("COACHDESK_RELAY_DATABASE_URL") {
            s.database_url = DatabaseUrl::new(v);
        }
        if let Some(v) = env("COACHDESK_RELAY_DATABASE_CONNECTIONS") {
            s.database_connections = parse_env("COACHDESK_RELAY_DATABASE_CONNECTIONS", v)?;
        }
        if let Some(v) = env("COACHDESK_RELAY_STRIPE_SECRETS") {
            s.stripe_secrets = secrets(v.split(',').map(str::to_owned));
        }
        if let Some(v) = env("COACHDESK_RELAY_CALENDLY_KEYS") {
            s.calendly_keys = secrets(v.split(',').map(str::to_owned));
        }
        if let Some(v) = env("COACHDESK_RELAY_RETENTION_DAYS") {
            s.retention_days = parse_env("COACHDESK_RELAY_RETENTION_DAYS", v)?;
        }
        if let Some(v) = env("COACHDESK_RELAY_DURABILITY") {
            s.durability = v.parse().map_err(|()| ConfigError::Env {
                name: "COACHDESK_RELAY_DURABILITY",
                value: v,
                reason: "expected full or normal",
            })?;
        }
        if let Some(v) = env("COACHDESK_RELAY_WORKERS") {
            s.workers = parse_env("COACHDESK_RELAY_WORKERS", v)?;
        }
        if let Some(v) = env("COACHDESK_RELAY_READ_TIMEOUT_SECS") {
            s.read_timeout_secs = parse_env("COACHDESK_RELAY_READ_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = env("COACHDESK_RELAY_PAYMENT_LINK_HOSTS") {
            s.payment_link_hosts = hosts(v.split(',').map(str::to_owned));
        }
        if let Some(v) = env("COACHDESK_RELAY_CALENDLY_KEY_HANDOVER") {
            s.calendly_key_handover = switch("COACHDESK_RELAY_CALENDLY_KEY_HANDOVER", v)?;
        }
        if let Some(v) = env("COACHDESK_RELAY_STRIPE_SECRET_HANDOVER") {
            s.stripe_secret_handover = switch("COACHDESK_RELAY_STRIPE_SECRET_HANDOVER", v)?;
        }
        if let Some(v) = env("COACHDESK_RELAY_UNACKED_RETENTION_DAYS") {
            s.unacked_retention_days = parse_env("COACHDESK_RELAY_UNACKED_RETENTION_DAYS", v)?;
        }
        macro_rules! number_env {
            ($($key:ident = $name:literal),*) => {$(
                if let Some(v) = env($name) {
                    s.$key = parse_env($name, v)?;
                }
            )*};
        }
        number_env!(
            max_connections = "COACHDESK_RELAY_MAX_CONNECTIONS",
            max_connections_per_ip = "COACHDESK_RELAY_MAX_CONNECTIONS_PER_IP",
            request_deadline_secs = "COACHDESK_RELAY_REQUEST_DEADLINE_SECS",
            max_header_bytes = "COACHDESK_RELAY_MAX_HEADER_BYTES",
            rate_hooks_per_sec = "COACHDESK_RELAY_RATE_HOOKS_PER_SEC",
            rate_hooks_burst = "COACHDESK_RELAY_RATE_HOOKS_BURST",
            rate_tenant_hooks_per_sec = "COACHDESK_RELAY_RATE_TENANT_HOOKS_PER_SEC",
            rate_tenant_hooks_burst = "COACHDESK_RELAY_RATE_TENANT_HOOKS_BURST",
            rate_api_per_sec = "COACHDESK_RELAY_RATE_API_PER_SEC",
            rate_api_burst = "COACHDESK_RELAY_RATE_API_BURST",
            rate_pay_per_sec = "COACHDESK_RELAY_RATE_PAY_PER_SEC",
            rate_pay_burst = "COACHDESK_RELAY_RATE_PAY_BURST",
            auth_failures_burst = "COACHDESK_RELAY_AUTH_FAILURES_BURST",
            auth_failures_per_min = "COACHDESK_RELAY_AUTH_FAILURES_PER_MIN",
            stripe_timeout_ms = "COACHDESK_RELAY_STRIPE_TIMEOUT_MS"
        );
        if let Some(v) = env("COACHDESK_RELAY_STRIPE_RESTRICTED_KEY") {
            s.stripe_restricted_key = secrets([v]).pop();
        }
        if let Some(v) = env("COACHDESK_RELAY_INDEX_KEY") {
            s.index_key = secrets([v]).pop();
        }
        if let Some(v) = env("COACHDESK_RELAY_STRIPE_API_BASE") {
            s.stripe_api_base = v.trim().to_owned();
        }
        if let Some(v) = env("COACHDESK_RELAY_PUBLIC_URL") {
            let v = v.trim().to_owned();
            s.public_url = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = env("COACHDESK_RELAY_TRUSTED_PROXIES") {
            s.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| {
                    a.parse().map_err(|_| ConfigError::Env {
                        name: "COACHDESK_RELAY_TRUSTED_PROXIES",
                        value: v.clone(),
                        reason: "expected IP addresses separated by commas",
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason| Err(ConfigError::Invalid { key, reason });
        if self.workers == 0 || self.workers > 1024 {
            return invalid("workers", "must be between 1 and 1024");
        }
        if self.read_timeout_secs == 0 {
            return invalid("read_timeout_secs", "must be at least 1");
        }
        if self.tolerance_secs <= 0 {
            return invalid("tolerance_secs", "must be positive");
        }
        if self.max_body_bytes == 0 {
            return invalid("max_body_bytes", "must be positive");
        }
        if self.db.as_os_str().is_empty() {
            return invalid("db", "must name a file");
        }
        if self.database_connections == 0 || self.database_connections > 1000 {
            return invalid("database_connections", "must be between 1 and 1000");
        }
        if self
            .payment_link_hosts
            .iter()
            .any(|h| crate::paylink::AllowedHost::parse(h).is_none())
        {
            return invalid(
                "payment_link_hosts",
                "each entry must be host, host:port, http://host[:port] or https://host[:port]",
            );
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return invalid("max_connections", "connection caps must be at least 1");
        }
        if self.request_deadline_secs == 0 {
            return invalid("request_deadline_secs", "must be at least 1");
        }
        if self.max_header_bytes < 1024 {
            return invalid("max_header_bytes", "must be at least 1024");
        }
        let rates = [
            self.rate_hooks_per_sec,
            self.rate_hooks_burst,
            self.rate_tenant_hooks_per_sec,
            self.rate_tenant_hooks_burst,
            self.rate_api_per_sec,
            self.rate_api_burst,
            self.rate_pay_per_sec,
            self.rate_pay_burst,
            self.auth_failures_burst,
            self.auth_failures_per_min,
        ];
        if rates.contains(&0) {
            return invalid("rate_*", "rates and bursts must be at least 1");
        }
        if !crate::paylink::valid_link(&self.stripe_api_base) {
            return invalid("stripe_api_base", "must be an absolute http(s) URL");
        }
        if self.stripe_timeout_ms < 100 || self.stripe_timeout_ms > 60_000 {
            return invalid("stripe_timeout_ms", "must be between 100 and 60000");
        }
        if self
            .stripe_restricted_key
            .as_ref()
            .is_some_and(|k| !k.expose_str().starts_with("rk_"))
        {
            return invalid(
                "stripe_restricted_key",
                "must be a Stripe restricted key (rk_live_... or rk_test_...), not a secret key",
            );
        }
        if self
            .public_url
            .as_deref()
            .is_some_and(|u| !crate::paylink::valid_link(u))
        {
            return invalid("public_url", "must be an absolute http(s) URL");
        }
        Ok(())
    }

    /// The per-request deadline (head and body) as a `Duration`.
    pub fn request_deadline(&self) -> Duration {
        Duration::from_secs(self.request_deadline_secs)
    }

    /// The read timeout as a `Duration`.
    pub fn read_timeout(&self) -> Duration {
        Duration::from_secs(self.read_timeout_secs)
    }
}

fn hosts(list: impl IntoIterator<Item = String>) -> Vec<String> {
    list.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// An on/off variable: true|1|yes|on or false|0|no|off.
fn switch(name: &'static str, value: String) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Env {
            name,
            value,
            reason: "expected true or false",
        }),
    }
}

fn parse_env<T: std::str::FromStr>(name: &'static str, value: String) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| ConfigError::Env {
        name,
        value,
        reason: "expected a whole number",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn env_overrides_file_and_defaults_apply() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\nstripe_secrets = [\"whsec_a\"]\nretention_days = 3\n",
        )
        .expect("write");
        let env: HashMap<&str, &str> = [
            ("COACHDESK_RELAY_STRIPE_SECRETS", "whsec_b, whsec_c,"),
            ("COACHDESK_RELAY_DB", "/tmp/x.db"),
        ]
        .into();
        let s =
            Settings::load_from(Some(&path), |k| env.get(k).map(|v| v.to_string())).expect("load");
        assert_eq!(s.listen, "0.0.0.0:9000");
        assert_eq!(s.db, PathBuf::from("/tmp/x.db"));
        assert_eq!(
            s.stripe_secrets,
            vec![Secret::new("whsec_b"), Secret::new("whsec_c")]
        );
        assert_eq!(s.retention_days, 3);
        assert_eq!(s.workers, 64);
        assert_eq!(s.durability, Durability::Full);
    }

    #[test]
    fn a_database_url_chooses_postgresql_and_is_never_printed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            "database_url = \"postgresql://relay:hunter2@db/relay\"\ndatabase_connections = 4\n",
        )
        .expect("write");
        let s = Settings::load_from(Some(&path), |_| None).expect("load");
        assert_eq!(
            s.database_url.as_ref().map(DatabaseUrl::expose),
            Some("postgresql://relay:hunter2@db/relay")
        );
        assert_eq!(s.database_connections, 4);
        assert!(!format!("{s:?}").contains("hunter2"));
        // An empty variable means SQLite, whatever the file said.
        let s = Settings::load_from(Some(&path), |k| {
            (k == "COACHDESK_RELAY_DATABASE_URL").then(String::new)
        })
        .expect("load");
        assert_eq!(s.database_url, None);
        assert_eq!(Settings::default().database_url, None);
    }

    #[test]
    fn durability_from_file_and_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, "durability = \"normal\"\n").expect("write");
        let s = Settings::load_from(Some(&path), |_| None).expect("load");
        assert_eq!(s.durability, Durability::Normal);
        let s = Settings::load_from(Some(&path), |k| {
            (k == "COACHDESK_RELAY_DURABILITY").then(|| "FULL".to_owned())
        })
        .expect("load");
        assert_eq!(s.durability, Durability::Full);
        let err = Settings::load_from(None, |k| {
            (k == "COACHDESK_RELAY_DURABILITY").then(|| "off".to_owned())
        })
        .expect_err("must fail");
        assert!(
            err.to_string().contains("COACHDESK_RELAY_DURABILITY"),
            "{err}"
        );
        std::fs::write(&path, "durability = \"off\"\n").expect("write");
        assert!(matches!(
            Settings::load_from(Some(&path), |_| None),
            Err(ConfigError::Parse { .. })
        ));
    }

    #[test]
    fn debug_redacts_secrets() {
        let s = Settings {
            stripe_secrets: vec![Secret::new("whsec_supersecret")],
            calendly_keys: vec![Secret::new("calendly-key-xyz")],
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(!shown.contains("calendly-key-xyz"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn bad_env_number_names_the_variable() {
        let err = Settings::load_from(None, |k| {
            (k == "COACHDESK_RELAY_RETENTION_DAYS").then(|| "soon".to_owned())
        })
        .expect_err("must fail");
        assert!(err.to_string().contains("COACHDESK_RELAY_RETENTION_DAYS"));
    }

    #[test]
    fn consumer_settings_from_file_and_env() {
        let s = Settings::load_from(None, |_| None).expect("defaults");
        assert!(s.payment_link_hosts.is_empty() && s.calendly_key_handover);
        assert_eq!(s.unacked_retention_days, 0);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            "payment_link_hosts = [\"pay.example.com\"]\ncalendly_key_handover = false\nunacked_retention_days = 60\n",
        )
        .expect("write");
        let s = Settings::load_from(Some(&path), |_| None).expect("load");
        assert_eq!(s.payment_link_hosts, vec!["pay.example.com".to_owned()]);
        assert!(!s.calendly_key_handover);
        assert_eq!(s.unacked_retention_days, 60);
        let env: HashMap<&str, &str> = [
            (
                "COACHDESK_RELAY_PAYMENT_LINK_HOSTS",
                "http://127.0.0.1, sim.test:8443",
            ),
            ("COACHDESK_RELAY_CALENDLY_KEY_HANDOVER", "on"),
        ]
        .into();
        let s =
            Settings::load_from(Some(&path), |k| env.get(k).map(|v| v.to_string())).expect("load");
        assert_eq!(
            s.payment_link_hosts,
            vec!["http://127.0.0.1", "sim.test:8443"]
        );
        assert!(s.calendly_key_handover);
        let bad = Settings::load_from(None, |k| {
            (k == "COACHDESK_RELAY_PAYMENT_LINK_HOSTS").then(|| "ftp://x".to_owned())
        });
        assert!(matches!(
            bad,
            Err(ConfigError::Invalid {
                key: "payment_link_hosts",
                ..
            })
        ));
    }

    #[test]
    fn guard_settings_from_file_and_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            "max_connections = 300\nrate_hooks_burst = 50\ntrusted_proxies = [\"127.0.0.1\", \"::1\"]\n",
        )
        .expect("write");
        let env: HashMap<&str, &str> = [
            ("COACHDESK_RELAY_RATE_HOOKS_BURST", "70"),
            ("COACHDESK_RELAY_REQUEST_DEADLINE_SECS", "5"),
        ]
        .into();
        let s =
            Settings::load_from(Some(&path), |k| env.get(k).map(|v| v.to_string())).expect("load");
        assert_eq!(s.max_connections, 300);
        assert_eq!(s.rate_hooks_burst, 70);
        assert_eq!(s.request_deadline_secs, 5);
        assert_eq!(s.trusted_proxies.len(), 2);
        assert_eq!(s.max_connections_per_ip, 64);
        let err = Settings::load_from(None, |k| {
            (k == "COACHDESK_RELAY_TRUSTED_PROXIES").then(|| "10.0.0.1, proxy".to_owned())
        })
        .expect_err("must fail");
        assert!(err.to_string().contains("COACHDESK_RELAY_TRUSTED_PROXIES"));
        let err = Settings::load_from(None, |k| {
            (k == "COACHDESK_RELAY_RATE_PAY_PER_SEC").then(|| "0".to_owned())
        })
        .expect_err("must fail");
        assert!(matches!(err, ConfigError::Invalid { .. }), "{err}");
    }

    #[test]
    fn unknown_file_key_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, "lisen = \"x\"\n").expect("write");
        assert!(matches!(
            Settings::load_from(Some(&path), |_| None),
            Err(ConfigError::Parse { .. })
        ));
    }
}
