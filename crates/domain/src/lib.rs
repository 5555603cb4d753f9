//! The Coachdesk domain: money, session types, refund policies and the booking state
//! machine.
//!
//! Everything here is pure: no clock, no database, no network, no logging. Inputs carry
//! their own time (`at`), outputs are plain values (a new booking and the effects to run),
//! so the same inputs always give the same outputs and every rule can be tested without a
//! runtime. The store, the sync loop and the shell drive it from the outside.

pub mod booking;
pub mod money;
pub mod provider;
pub mod read_back;
pub mod refund_policy;
pub mod session_type;

pub use booking::{
    apply, AttentionReason, Booking, BookingEvent, BookingId, BookingState, Effect, Rejection,
    Transition,
};
pub use money::{Currency, Money, MoneyError};
pub use refund_policy::{RefundPolicy, RefundTier};
