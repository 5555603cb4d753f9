//! The simulator's in-memory state, shared by the Stripe and Calendly fakes and the
//! control API: the clock, id generation, the request log, injected faults and the
//! webhooks waiting to be handed to the sender.
//!
//! Everything here is behind one `Mutex` in the server; handlers are plain methods that
//! take a parsed request and return a [`Reply`], so they are easy to test without sockets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::calendly::CalendlyState;
use crate::stripe::StripeState;
use crate::webhook::{Delivery, WebhookTarget};
use crate::SimConfig;

/// An HTTP answer before it is written to the socket.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub fn empty(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// A request as the handlers see it.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Path segments after splitting on `/` (empty ones dropped).
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// Query parameters as flat pairs (Calendly style).
    pub fn query_pairs(&self) -> BTreeMap<String, String> {
        form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }
}

/// One request the simulator received, for assertions like "exactly one refund".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub seq: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    pub idempotency_key: Option<String>,
    pub status: u16,
    /// Set when the answer was a replay of an earlier idempotent request.
    pub replayed: bool,
    /// Stripe only: why the request breaks the OpenAPI description (the 400 it got).
    #[serde(default)]
    pub invalid_request: Option<String>,
    /// Stripe only: where a 200 answer departs from the description's response schema.
    #[serde(default)]
    pub invalid_response: Vec<String>,
    /// The last four characters of the bearer key it was sent with, as Stripe's dashboard
    /// shows a key: which of several keys made a call.
    #[serde(default)]
    pub key_last4: Option<String>,
}

/// A failure to inject into the next `remaining` requests matching `method` + `path_prefix`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub method: Option<String>,
    pub path_prefix: String,
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub remaining: u32,
}

fn one() -> u32 {
    1
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// 429 with `Retry-After` (seconds).
    RateLimit { retry_after_secs: u64 },
    /// 500 with the provider's error body.
    ServerError,
    /// Hold the request this long (or the configured hang time), then answer 504.
    Timeout { ms: Option<u64> },
    /// Carry the request out (objects, events, the idempotent result are all kept), then
    /// hold the answer this long (or the hang time) and answer 504: the provider acted but
    /// the caller never learns how, as when a connection drops after the request.
    LoseAnswer { ms: Option<u64> },
}

/// All mutable state.
pub struct World {
    pub config: SimConfig,
    pub base_url: String,
    pub clock_offset: i64,
    counter: u64,
    salt: String,
    pub stripe: StripeState,
    pub calendly: CalendlyState,
    pub requests: Vec<RequestRecord>,
    pub faults: Vec<Fault>,
    /// Webhooks produced by the last handler, taken by the server for the sender.
    pub outgoing: Vec<Delivery>,
    /// Replaces `config.stripe_webhook` / `calendly_webhook` when set at run time.
    pub stripe_target: Option<WebhookTarget>,
    pub calendly_target: Option<WebhookTarget>,
}

impl World {
    pub fn new(config: SimConfig, base_url: String, salt: String) -> Self {
        let stripe_target = config.stripe_webhook.clone();
        let calendly_target = config.calendly_webhook.clone();
        let mut world = World {
            calendly: CalendlyState::default(),
            stripe: StripeState::default(),
            config,
            base_url,
            clock_offset: 0,
            counter: 0,
            salt,
            requests: Vec::new(),
            faults: Vec::new(),
            outgoing: Vec::new(),
            stripe_target,
            calendly_target,
        };
        world.seed_calendly();
        world
    }

    /// Unix seconds on the simulator's clock (real time plus any advance).
    pub fn now(&self) -> i64 {
        unix_now() + self.clock_offset
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// A Stripe-style id: `prefix` + a per-run salt + a counter (unique across restarts).
    pub fn stripe_id(&mut self, prefix: &str) -> String {
        let n = self.next();
        format!("{prefix}_{}{n:010}", self.salt)
    }

    /// A UUID-shaped Calendly id.
    pub fn uuid(&mut self) -> String {
        let n = self.next();
        let salt: String = self
            .salt
            .chars()
            .map(|c| if c.is_ascii_hexdigit() { c } else { 'a' })
            .collect();
        let salt = format!("{salt:0>8}");
        format!(
            "{}-{:04x}-4{:03x}-8000-{n:012x}",
            &salt[..8],
            (n >> 16) & 0xffff,
            n & 0xfff
        )
    }

    /// Take the first matching fault, decrementing its count.
    pub fn take_fault(&mut self, method: &str, path: &str) -> Option<FaultKind> {
        let index = self.faults.iter().position(|f| {
            f.remaining > 0
                && path.starts_with(&f.path_prefix)
                && f.method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(method))
        })?;
        let fault = &mut self.faults[index];
        fault.remaining -= 1;
        let kind = fault.kind.clone();
        if fault.remaining == 0 {
            self.faults.remove(index);
        }
        Some(kind)
    }
}

/// Real wall-clock seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Calendly's timestamp format: `2026-11-27T10:00:00.000000Z`.
pub fn calendly_time(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000000Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parse an RFC 3339 timestamp into unix seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendly_time_round_trips() {
        let t = parse_time("2026-11-27T10:00:00.000000Z").unwrap();
        assert_eq!(calendly_time(t), "2026-11-27T10:00:00.000000Z");
    }
}
