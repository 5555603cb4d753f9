//! The relay: the always-on half of Coachdesk.
//!
//! Calendly and Stripe post webhooks here; the relay verifies each signature, commits the
//! raw body to a SQLite queue (deduplicated by the provider's key) before answering 2xx,
//! and the desktop app pulls and acknowledges the queue whenever it is online. It also
//! serves the post-booking redirect to a session type's Stripe payment link.
//!
//! The library holds everything but argument parsing, so that the binary stays a thin
//! shell. It depends on the shared wire types (`coachdesk-protocol`) and the signature
//! scheme (`coachdesk-signature`), never on the app's domain or store crates.

pub mod at_rest;
pub mod checkout;
pub mod config;
pub mod fuzzing;
pub mod guard;
pub mod handover;
pub mod index;
pub mod metrics;
pub mod paylink;
pub mod server;
pub mod store;
pub mod tenant;
pub mod token;
pub mod webhook;
pub mod writer;
