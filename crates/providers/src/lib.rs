//! Coachdesk's clients for the two provider APIs it calls: Stripe (through async-stripe)
//! and Calendly (through reqwest).
//!
//! Why a crate of its own: the sync crate decides *when* to call a provider and what to do
//! with the answer; this crate only knows *how* to call it and how to class what went
//! wrong. Every failure is a [`ProviderError`] that is either transient (network, timeout,
//! 429, 5xx: try again later, honouring `Retry-After`) or permanent (a 4xx carrying the
//! provider's own message, shown to the coach as is).
//!
//! Base URLs come from the caller (a setting, or `COACHDESK_STRIPE_API_BASE` /
//! `COACHDESK_CALENDLY_API_BASE`, see [`stripe_base_from_env`]) so tests and demo mode point
//! both clients at the simulator. Keys and tokens are passed in by the caller, held in
//! memory only, and never printed: the clients' `Debug` output redacts them.
//!
//! Must not depend on the store or on tokio beyond timers: no database, no clock reading
//! for decisions.

mod calendly;
mod error;
pub mod network;
mod stripe_api;

pub use calendly::{CalendlyApi, CalendlyUser, WebhookSubscription};
pub use error::ProviderError;
pub use network::{network_failure, NetworkError, NetworkFailure};
pub use stripe_api::{
    CheckoutRequest, CheckoutSessionCreated, CreatedWebhookEndpoint, EndpointSecret, EventsPage,
    PaymentLinkCreated, RefundCreated, RefundRequest, RefundSeen, StripeApi, WebhookEndpoint,
    WebhookEndpointSpec,
};

/// The environment variable naming the Stripe API base URL (default Stripe's own).
pub const STRIPE_API_BASE_ENV: &str = "COACHDESK_STRIPE_API_BASE";
/// The environment variable naming the Calendly API base URL (default Calendly's own).
pub const CALENDLY_API_BASE_ENV: &str = "COACHDESK_CALENDLY_API_BASE";
/// Stripe's production API base.
pub const STRIPE_DEFAULT_BASE: &str = "https://api.stripe.com/";
/// Calendly's production API base.
pub const CALENDLY_DEFAULT_BASE: &str = "https://api.calendly.com";

/// The Stripe base URL: `setting` if given, else the environment, else Stripe's own.
pub fn stripe_base_from_env(setting: Option<&str>) -> String {
    setting
        .map(str::to_owned)
        .or_else(|| std::env::var(STRIPE_API_BASE_ENV).ok())
        .unwrap_or_else(|| STRIPE_DEFAULT_BASE.to_owned())
}

/// The Calendly base URL: `setting` if given, else the environment, else Calendly's own.
pub fn calendly_base_from_env(setting: Option<&str>) -> String {
    setting
        .map(str::to_owned)
        .or_else(|| std::env::var(CALENDLY_API_BASE_ENV).ok())
        .unwrap_or_else(|| CALENDLY_DEFAULT_BASE.to_owned())
}
