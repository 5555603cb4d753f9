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
