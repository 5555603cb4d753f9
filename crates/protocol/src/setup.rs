//! Commands and DTOs of the coach's set-up: a session type's Stripe product, price and
//! payment link, the Calendly event-type mapping, and the relay's Calendly webhook
//! subscription.

use serde::{Deserialize, Serialize};

/// Names of the set-up commands.
pub mod command {
    pub const SETUP_STRIPE: &str = "setup_stripe";
    pub const LIST_CALENDLY_EVENT_TYPES: &str = "list_calendly_event_types";
    pub const MAP_EVENT_TYPE: &str = "map_event_type";
    pub const CALENDLY_SUBSCRIPTION: &str = "calendly_subscription";
    pub const REGISTER_CALENDLY_WEBHOOK: &str = "register_calendly_webhook";
    pub const PREVIEW_REFUND_POLICY: &str = "preview_refund_policy";
}

/// Where a session type stands with Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StripeStatus {
    /// No product, price or payment link yet.
    #[default]
    NotSetUp,
    /// The payment link sells the current name and price.
    Ready,
    /// The name or price changed since the set-up: set it up again.
    Outdated,
}

/// A session type's Stripe objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeSetup {
    pub session_type_id: String,
    pub status: StripeStatus,
    pub product_id: String,
    pub price_id: String,
    pub payment_link_id: String,
    /// The payment link clients pay through.
    pub payment_link_url: String,
    /// True when these objects already existed for this version (nothing new was made).
    pub already_set_up: bool,
    /// What the relay was told: its `/pay/{slug}` now redirects here, or why not.
    #[serde(default)]
    pub relay_note: Option<String>,
}

/// One Calendly event type with the session type it sells, if linked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTypeRow {
    pub uri: String,
    pub name: String,
    #[serde(default)]
    pub slug: Option<String>,
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    /// Bookable at Calendly now.
    pub active: bool,
    /// Still listed by Calendly (false: only our stored link remembers it).
    pub at_calendly: bool,
    #[serde(default)]
    pub session_type_id: Option<String>,
    #[serde(default)]
    pub session_type_name: Option<String>,
}

/// Links (or, with `session_type_id: None`, unlinks) a Calendly event type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventTypeLink {
    pub event_type_uri: String,
    /// The event type's name, as Calendly showed it.
    #[serde(default)]
    pub event_type_name: Option<String>,
    #[serde(default)]
    pub session_type_id: Option<String>,
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
