//! The coach's desk: the use cases the window calls, between the store (SQL and the one
//! apply transaction) and the Tauri shell (a few lines per command).
//!
//! Here the window's DTOs become domain events and queries, previews are worded, alert
//! rules are applied, and every failure becomes the [`CommandError`] the window shows.
//! It talks to Stripe, Calendly, the relay and the SMTP server only through the clients of
//! the providers, sync and mail crates, and writes no file but the backups the coach asks
//! for ([`backups`]): it works on a [`Store`] it is given.
//!
//! [`CommandError`]: coachdesk_protocol::ipc::CommandError
//! [`Store`]: coachdesk_store::Store

mod alerts;
pub mod backups;
mod bookings;
pub mod diagnostics;
mod error;
pub mod exports;
pub mod mail;
pub mod notices;
pub mod relay_links;
pub mod sealing;
mod session_types;
pub mod settings;
pub mod settings_page;
pub mod setup;
pub mod stripe_webhook;

pub use alerts::{evaluate_alerts, validate_thresholds, Alerts, ALERT_THRESHOLDS_SETTING};
pub use bookings::{booking_id, CoachActions};
pub use error::{capitalised, command_error};
pub use session_types::{refund_policy_preview, SessionTypeForms};

/// The store behind its shared lock (see [`coachdesk_store::lock`]).
pub use coachdesk_store::lock;
