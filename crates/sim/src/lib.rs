//! coachdesk-sim: the provider simulator. Fake Stripe and Calendly HTTP APIs on loopback,
//! for the endpoints Coachdesk uses and in their documented wire formats, plus a sender of
//! correctly signed webhooks with knobs for delay, duplication, reordering, drops and
//! provider errors. Demo mode and every test use it; no test talks to the real providers.
//!
//! Start one in-process with [`Simulator::start`] (port 0), drive it with [`SimClient`]
//! (book, pay, cancel, reschedule, no-show, dispute, refund from the dashboard, inspect the
//! requests it received), and point the product's Stripe and Calendly base URLs at
//! [`Simulator::base_url`]. The same control API is JSON over `/_sim/...` for the binary.
//!
//! It must not depend on the product's crates (domain, store, relay): it imitates the
//! providers, not Coachdesk. Its only project dependency is the shared signature scheme.

#![recursion_limit = "256"]

pub mod calendly;
pub mod client;
pub mod form;
pub mod http;
pub mod server;
pub mod spec;
pub mod stripe;
pub mod webhook;
pub mod world;

use serde::{Deserialize, Serialize};

pub use client::{Booking, SimClient};
pub use server::Simulator;
pub use webhook::{DeliveryKnobs, DeliveryRecord, Provider, WebhookTarget};
pub use world::{Fault, FaultKind, RequestRecord};

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("could not listen on {addr}: {message}")]
    Bind { addr: String, message: String },
}

/// An event type the fake Calendly account offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTypeConfig {
    pub slug: String,
    pub name: String,
    pub duration_minutes: i64,
    /// A fixed UUID for the event type's URI (demo mode maps its sample session types to
    /// these); random when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
}

/// Simulator settings (defaults fit tests; the binary reads overrides from flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimConfig {
    /// Address to bind; port 0 picks a free one.
    pub listen: String,
    /// Base of URLs in objects (checkout and payment link URLs); default the bound address.
    pub public_url: Option<String>,
    /// Only this Stripe key is accepted; `None` accepts any `sk_test_...`.
    pub stripe_api_key: Option<String>,
    /// The Calendly personal access token accepted.
    pub calendly_token: String,
    /// Stripe webhook endpoint (the relay's `/hooks/stripe`) and its `whsec_...` secret.
    pub stripe_webhook: Option<WebhookTarget>,
    /// A fixed Calendly webhook target besides API-created subscriptions.
    pub calendly_webhook: Option<WebhookTarget>,
    pub delivery: DeliveryKnobs,
    pub event_types: Vec<EventTypeConfig>,
    pub coach_name: String,
    pub coach_email: String,
    /// `api_version` written into Stripe events.
    pub stripe_api_version: String,
    /// Host part of Calendly resource URIs.
    pub calendly_uri_base: String,
    /// How long an injected timeout holds a request when the fault gives no time.
    pub hang_ms: u64,
    /// Check Stripe requests against the OpenAPI subset (400 like Stripe when invalid).
    pub validate_requests: bool,
    /// Disable a Calendly subscription whose delivery used all attempts (as Calendly does
    /// after 24 h of failures).
    pub disable_failed_subscriptions: bool,
    /// Fixed part of generated ids; random per run by default so restarts never collide.
    pub id_salt: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            listen: "127.0.0.1:0".into(),
            public_url: None,
            stripe_api_key: None,
            calendly_token: "sim-calendly-token".into(),
            stripe_webhook: None,
            calendly_webhook: None,
            delivery: DeliveryKnobs::default(),
            event_types: vec![
                EventTypeConfig {
                    slug: "coaching-60".into(),
                    name: "Coaching session (60 min)".into(),
                    duration_minutes: 60,
                    uuid: None,
                },
                EventTypeConfig {
                    slug: "intro-30".into(),
                    name: "Intro call (30 min)".into(),
                    duration_minutes: 30,
                    uuid: None,
                },
            ],
            coach_name: "Sam Coach".into(),
            coach_email: "coach@example.com".into(),
            stripe_api_version: "2023-08-16".into(),
            calendly_uri_base: "https://api.calendly.com".into(),
            hang_ms: 10_000,
            validate_requests: true,
            disable_failed_subscriptions: false,
            id_salt: None,
        }
    }
}
