//! The relay's pull API as the app sees it (`GET /v1/events`, `POST /v1/ack`), and the
//! slug-to-payment-link table the app pushes (`PUT /v1/payment-links`).
//!
//! These are wire types shared by the relay (which answers with them) and the app's sync
//! client (which reads them). Serde only, so that they build for wasm32 as well.

use serde::{Deserialize, Serialize};

/// Which provider posted a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Stripe,
    Calendly,
}

impl Provider {
    /// The lowercase name used on the wire, in URLs (`/hooks/stripe`) and in metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Calendly => "calendly",
        }
    }
}

/// One verified webhook, as stored by the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledEvent {
    /// The relay's sequence number: strictly increasing, never reused.
    pub seq: i64,
    pub provider: Provider,
    /// The deduplication key: Stripe's event `id`; for Calendly
    /// `"{event}|{payload.uri}|{created_at}"`.
    pub key: String,
    /// When the relay committed it, RFC 3339 in UTC.
    pub received_at: String,
    /// The raw request body exactly as the provider sent it (a JSON document, as a string).
    pub body: String,
}

/// The answer to `GET /v1/events?after=SEQ&limit=N&wait=S`, events in sequence order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsPage {
    pub events: Vec<PulledEvent>,
}

/// The body of `POST /v1/ack`: every event up to and including `through` has been applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRequest {
    pub through: i64,
}

/// The answer to `POST /v1/ack`: the highest sequence now acknowledged (never beyond the
/// highest sequence the relay has stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckResponse {
    pub acked_through: i64,
}

/// One row of the slug-to-payment-link table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentLinkRoute {
    /// The session type's slug, as in `GET /pay/{slug}` (`[A-Za-z0-9_-]{1,100}`).
    pub slug: String,
    /// The Stripe payment link URL (`https://buy.stripe.com/...`).
    pub url: String,
}

/// The body of `PUT /v1/calendly-signing-key`: the key the app registered its Calendly
/// webhook subscription with, so the relay verifies Calendly's deliveries with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendlyKeyRequest {
    pub key: String,
}

/// The body of `PUT /v1/payment-links`: the whole table, replacing the previous one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentLinkTable {
    pub links: Vec<PaymentLinkRoute>,
}
