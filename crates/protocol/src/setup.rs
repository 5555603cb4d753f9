//! Commands and DTOs of the coach's set-up: a session type's Stripe product, price and
//! payment link, the Calendly event-type mapping, and the relay's Calendly webhook
//! subscription.

use serde::{Deserialize, Serialize};

pub use coachdesk_views::{
    EventTypeLink, EventTypeRow, RedirectCheck, StripeSetup, StripeStatus, WHERE_AT_CALENDLY,
};

/// Names of the set-up commands.
pub mod command {
    pub const SETUP_STRIPE: &str = "setup_stripe";
    pub const LIST_CALENDLY_EVENT_TYPES: &str = "list_calendly_event_types";
    pub const MAP_EVENT_TYPE: &str = "map_event_type";
    pub const CALENDLY_SUBSCRIPTION: &str = "calendly_subscription";
    pub const REGISTER_CALENDLY_WEBHOOK: &str = "register_calendly_webhook";
    pub const PREVIEW_REFUND_POLICY: &str = "preview_refund_policy";
    pub const STRIPE_WEBHOOK: &str = "stripe_webhook";
    pub const CONNECT_STRIPE_WEBHOOK: &str = "connect_stripe_webhook";
    pub const ROTATE_STRIPE_WEBHOOK_SECRET: &str = "rotate_stripe_webhook_secret";
    /// A new key for the relay to seal the coach's client data with; answers a sentence.
    pub const ROTATE_RELAY_SEALING_KEY: &str = "rotate_relay_sealing_key";
}

/// The Calendly webhook subscription that posts to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionView {
    /// `active`, `disabled` or `missing`.
    pub state: String,
    #[serde(default)]
    pub uri: Option<String>,
    /// `{relay}/hooks/calendly`.
    pub callback_url: String,
    /// A sentence for the coach: what the state means and what to do.
    pub message: String,
}

/// The Stripe webhook endpoint the app creates for the relay, as Settings shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeWebhookView {
    /// Whether Stripe could reach the relay's address: `public`, or why not (`loopback`,
    /// `private_network`, `link_local`, `local_name`, `plain_http`, `invalid`).
    pub relay_reach: String,
    /// A sentence about that reachability.
    pub relay_reach_message: String,
    /// `{relay}/hooks/stripe`: where the endpoint should post.
    pub hook_url: String,
    pub exists: bool,
    #[serde(default)]
    pub endpoint_id: Option<String>,
    pub enabled: bool,
    /// The URL the endpoint posts to at Stripe.
    #[serde(default)]
    pub url: Option<String>,
    pub url_matches: bool,
    /// Whether it selects exactly the events the app handles.
    pub events_match: bool,
    /// The API version its events are rendered in (`None`: the account's default).
    #[serde(default)]
    pub api_version: Option<String>,
    /// The version the app parses.
    pub api_version_wanted: String,
    /// Whether the relay was given this endpoint's signing secret.
    pub secret_handed_over: bool,
    /// When the last rotation finished (RFC 3339).
    #[serde(default)]
    pub last_rotated_at: Option<String>,
    /// A rotation was started and not finished (the next connect finishes it).
    pub rotation_in_progress: bool,
    /// A sentence for the coach: the state, or what the last action did.
    pub message: String,
}

/// What the refund-policy preview is asked about: the form as typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPreviewRequest {
    pub price: String,
    pub currency: String,
    pub refund_tiers: Vec<crate::ipc::RefundTierDto>,
    /// The notice to preview: a cancellation this many hours before the start.
    pub hours_before: u32,
}

/// The preview under the refund-policy editor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPreview {
    /// "Cancelled 30 h before: 50% back, 75.00 EUR." (`None` while the form is invalid).
    #[serde(default)]
    pub sentence: Option<String>,
    /// The same at each tier's start, earliest first.
    #[serde(default)]
    pub tiers: Vec<String>,
    /// Why no preview can be made yet (a bad price or policy), in words.
    #[serde(default)]
    pub problem: Option<String>,
}
