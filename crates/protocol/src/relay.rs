//! The relay's pull API as the app sees it (`GET /v1/events`, `POST /v1/ack`), and the
//! slug-to-payment-link table the app pushes (`PUT /v1/payment-links`), and the redirect
//! visits it counts (`GET /v1/redirects`).
//!
//! New fields are optional (`#[serde(default)]`) so that an app and a relay of different
//! versions still understand each other.
//!
//! These are wire types shared by the relay (which answers with them) and the app's sync
//! client (which reads them). Serde and the pure domain only, so that they build for
//! wasm32 as well.

use serde::{Deserialize, Serialize};

/// Which provider posted a webhook: the domain's, by its lowercase name on the wire.
pub use coachdesk_domain::provider::Provider;

/// One verified webhook, as stored by the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledEvent {
    /// The relay's sequence number: strictly increasing, never reused.
    pub seq: i64,
    pub provider: Provider,
    /// The relay's deduplication key, the same for every delivery of one provider event: a
    /// keyed hash (64 hex digits) of Stripe's event `id`, or for Calendly of
    /// `"{event}|{payload.uri}|{created_at}"`. Relays of before hashed keys served the key
    /// itself. The app deduplicates by the body's own key, not by this.
    pub key: String,
    /// When the relay committed it, RFC 3339 in UTC.
    pub received_at: String,
    /// The raw request body exactly as the provider sent it (a JSON document, as a string);
    /// empty when the event is [`sealed`](Self::sealed).
    pub body: String,
    /// The body sealed for the tenant's app keys (`coachdesk-seal`, age), base64: set when
    /// an app of the tenant had registered a key (`PUT /v1/app-keys`) when it arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<String>,
}

/// The answer to `GET /v1/events?after=SEQ&limit=N&wait=S`: the events for the token's
/// mode after `max(SEQ, the token's own cursor)`, in sequence order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsPage {
    pub events: Vec<PulledEvent>,
    /// The relay's identity, made with its database. A different one than before means
    /// another relay (replaced, restored or reset): its sequences are not the old ones.
    /// Absent from relays older than identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_id: Option<String>,
}

/// The body of `POST /v1/ack`: every event up to and including `through` has been applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRequest {
    pub through: i64,
    /// The relay the events came from; a relay with another identity refuses the ack
    /// (409) instead of marking its own events with a foreign cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_id: Option<String>,
}

/// The answer to `POST /v1/ack`: the token's cursor now (never beyond the highest sequence
/// the relay has stored: an ack beyond it is refused with 409).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckResponse {
    pub acked_through: i64,
    /// The relay's identity (see [`EventsPage::relay_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_id: Option<String>,
}

/// A refusal from the relay's API, as JSON: `error` is a stable code to match on,
/// `message` says it in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    pub message: String,
    /// The relay's identity, on refusals of an ack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_id: Option<String>,
    /// The newest sequence the relay holds, on an ack beyond it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<i64>,
    /// The refused host, on a payment link that points elsewhere than allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// [`ApiError::error`] codes.
pub mod error_code {
    /// An ack named a sequence the relay never stored.
    pub const ACK_BEYOND_NEWEST: &str = "ack_beyond_newest";
    /// An ack named another relay's identity.
    pub const RELAY_CHANGED: &str = "relay_changed";
    /// A payment link points at a host the relay does not allow.
    pub const PAYMENT_LINK_HOST: &str = "payment_link_host";
    /// The operator turned Calendly key (or Stripe secret) hand-over off.
    pub const HANDOVER_DISABLED: &str = "handover_disabled";
    /// A Stripe secret key (`sk_`) was offered where only a restricted key is taken.
    pub const SECRET_KEY_REFUSED: &str = "secret_key_refused";
    /// A key of the other mode (live or test) than the token's.
    pub const MODE_MISMATCH: &str = "mode_mismatch";
}

/// One row of the slug-to-payment-link table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentLinkRoute {
    /// The session type's slug, as in `GET /pay/{slug}` (`[A-Za-z0-9_-]{1,100}`).
    pub slug: String,
    /// The Stripe payment link URL (`https://buy.stripe.com/...`): where the relay sends
    /// the client when it cannot make the booking its own Checkout Session.
    pub url: String,
    /// What a booking of this session type costs, for the Checkout Session the relay makes
    /// per booking (with a Stripe restricted key). Absent from apps of before: the relay
    /// then redirects to `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<CheckoutTerms>,
    /// The Calendly event type's scheduling page, linked from the relay's "payment time
    /// has passed" page so the client can book again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_url: Option<String>,
}

/// The price and payment window of a session type, as its Checkout Sessions use them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutTerms {
    /// The product name shown on Stripe's page.
    pub name: String,
    /// The price in the currency's minor unit (cents).
    pub amount_minor: i64,
    /// ISO 4217 code, lowercase (`eur`).
    pub currency: String,
    /// Minutes from booking until the booking expires unpaid; the session's `expires_at`.
    pub payment_window_minutes: u32,
}

/// One slug's post-booking redirect visits (`GET /v1/redirects`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectSeen {
    pub slug: String,
    /// Visits of `/pay/{slug}` since the relay's database was made.
    pub visits: u64,
    /// The last visit, RFC 3339 in UTC.
    pub last_at: String,
}

/// The answer to `GET /v1/redirects`: every slug a client came through at least once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedirectsPage {
    pub redirects: Vec<RedirectSeen>,
}

/// The body of `PUT /v1/calendly-signing-key`: the key the app registered its Calendly
/// webhook subscription with, so the relay verifies Calendly's deliveries with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendlyKeyRequest {
    pub key: String,
}

/// The body of `PUT /v1/stripe-signing-secrets`: the signing secrets (`whsec_...`) of the
/// Stripe webhook endpoints the app made, replacing the ones it handed over before. Two
/// while an endpoint is replaced (the new one and the one being retired), else one; the
/// relay verifies Stripe's deliveries with them beside its configured `stripe_secrets`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeSecretsRequest {
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for StripeSecretsRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeSecretsRequest")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// The answer to `PUT /v1/stripe-signing-secrets` (and `PUT /v1/calendly-signing-key`):
/// how many handed-over secrets the relay now verifies with, from every app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptSecrets {
    pub kept: usize,
}

/// The body of `PUT /v1/stripe-checkout-key`: the coach's Stripe restricted key
/// (`rk_live_...`/`rk_test_...`, with one permission: Checkout Sessions, Write), with which
/// the relay makes each booking its own Checkout Session at `/pay/{slug}`; `None` forgets
/// the one this app handed over. It replaces what this app handed over before; the relay
/// uses the newest any of the coach's apps handed over.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutKeyRequest {
    pub key: Option<String>,
}

impl std::fmt::Debug for CheckoutKeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckoutKeyRequest")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The answer to `PUT /v1/stripe-checkout-key`: whether `/pay` now makes Checkout
/// Sessions for this coach (with a key an app handed over, or the operator's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutKeyAnswer {
    pub checkout_sessions: bool,
}

/// The body of `PUT /v1/app-keys`: the public keys (`age1...`) this app install opens
/// sealed events with, replacing the ones it registered before: its key, and during a
/// rotation the retiring one. From then on the relay seals every event of the tenant for
/// the keys of all its apps, and keeps no readable copy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppKeysRequest {
    pub keys: Vec<String>,
}

/// The body of `PUT /v1/payment-links`: the whole table, replacing the previous one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentLinkTable {
    pub links: Vec<PaymentLinkRoute>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_tables_of_apps_before_checkout_terms_still_parse() {
        let table: PaymentLinkTable = serde_json::from_str(
            r#"{"links":[{"slug":"intro","url":"https://buy.stripe.com/x"}]}"#,
        )
        .expect("table");
        assert_eq!(table.links[0].checkout, None);
        assert_eq!(table.links[0].booking_url, None);
        let json = serde_json::to_string(&table.links[0]).expect("json");
        assert_eq!(json, r#"{"slug":"intro","url":"https://buy.stripe.com/x"}"#);
    }

    #[test]
    fn pages_and_acks_of_relays_without_identity_still_parse() {
        let page: EventsPage = serde_json::from_str(r#"{"events":[]}"#).expect("page");
        assert_eq!(page.relay_id, None);
        let ack: AckResponse = serde_json::from_str(r#"{"acked_through":4}"#).expect("ack");
        assert_eq!(ack.relay_id, None);
        let request: AckRequest = serde_json::from_str(r#"{"through":4}"#).expect("request");
        assert_eq!(request.relay_id, None);
        // And an old reader ignores the new field.
        let json = serde_json::to_string(&AckRequest {
            through: 4,
            relay_id: Some("rly_x".into()),
        })
        .expect("json");
        assert_eq!(json, r#"{"through":4,"relay_id":"rly_x"}"#);
        assert_eq!(
            serde_json::to_string(&AckRequest {
                through: 4,
                relay_id: None
            })
            .expect("json"),
            r#"{"through":4}"#
        );
    }
}
