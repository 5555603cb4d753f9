//! Sample data, kept out of the store so that the storage library ships none: the demo
//! mode's session types and bookings in every interesting state ([`seed_demo`]), and many
//! realistic bookings at once for benchmarks and the 10,000-booking test ([`seed_bulk`]).
//! Both feed provider-shaped events through the store's real apply path, so rows,
//! payments, refunds and audit timelines are the ones the app would have made.

mod bulk;
pub mod calendly;
mod demo;

pub use bulk::{bulk_booking, bulk_events, bulk_session_types, seed_bulk, BulkBooking};
pub use demo::{
    demo_events, demo_session_types, sample_session_type, seed_demo, DEMO_EVENT_TYPES, DEMO_TERMS,
};
