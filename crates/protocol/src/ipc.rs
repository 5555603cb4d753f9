//! The Tauri commands the UI may call: their names, arguments and answers.
//!
//! Amounts travel as integer minor units with their currency code; the UI formats them.
//! Times travel as RFC 3339 strings in UTC.

use serde::{Deserialize, Serialize};

/// Names of the shell's commands, so the UI and the shell cannot drift apart.
pub mod command {
    pub const LIST_SESSION_TYPES: &str = "list_session_types";
    pub const CREATE_SESSION_TYPE: &str = "create_session_type";
    pub const UPDATE_SESSION_TYPE: &str = "update_session_type";
    pub const ARCHIVE_SESSION_TYPE: &str = "archive_session_type";
    pub const LIST_BOOKINGS: &str = "list_bookings";
    pub const BOOKING_DETAIL: &str = "booking_detail";
    pub const APP_INFO: &str = "app_info";
}

/// Every command answers `Result<T, CommandError>`; the error serialises as `{code, message, fields}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandError {
    /// Stable machine code: `invalid`, `not_found`, `conflict`, `storage`, `internal`.
    pub code: String,
    /// A sentence for the coach: what happened and what to do.
    pub message: String,
    /// Per-field validation errors, shown next to the field.
    #[serde(default)]
    pub fields: Vec<FieldError>,
}

/// One invalid field of a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's name as in the draft struct (`name`, `price`, `refund_tiers`...).
    pub field: String,
    pub message: String,
}

/// One tier of a refund policy: cancelled at least `min_hours_before` the start, `percent` back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundTierDto {
    pub min_hours_before: u32,
    pub percent: u8,
}

/// What the coach types into the session-type form. The price is the text as typed
/// ("150", "150.00", "15000" for JPY) so the core can say exactly what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SessionTypeDraft {
    pub name: String,
    pub duration_minutes: u32,
    pub price: String,
    /// ISO 4217 code, such as `EUR` or `JPY`.
    pub currency: String,
    pub refund_tiers: Vec<RefundTierDto>,
    /// The Calendly event type this session type is sold through, if mapped.
    #[serde(default)]
    pub calendly_event_type_uri: Option<String>,
}

/// A session type as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTypeView {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub duration_minutes: u32,
    pub price_minor: i64,
    pub currency: String,
    /// The price formatted with the currency's own exponent, such as `150.00 EUR`.
    pub price_display: String,
    pub refund_tiers: Vec<RefundTierDto>,
    pub calendly_event_type_uri: Option<String>,
    pub archived: bool,
}

/// Filters for the bookings list; every field narrows the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BookingFilter {
    /// A state name as in [`BookingSummary::state`].
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub session_type_id: Option<String>,
    /// Matches client email, invitee URI, checkout session or payment intent id.
    #[serde(default)]
    pub search: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One row of the bookings list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingSummary {
    pub id: String,
    /// `awaiting_payment`, `confirmed`, `payment_failed`, `expired`, `cancelled`,
    /// `refund_pending`, `refunded`, `rescheduled`, `no_show`, `completed`, `disputed`.
    pub state: String,
    pub needs_attention: Option<String>,
    pub client_name: Option<String>,
    pub client_email: Option<String>,
    pub session_type_name: Option<String>,
    pub start_time: Option<String>,
    pub paid_minor: i64,
    pub refunded_minor: i64,
    pub currency: Option<String>,
}

/// One row of a booking's audit timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub from_state: Option<String>,
    pub to_state: String,
    /// What caused it: a provider event key or a coach action.
    pub cause: String,
    /// A sentence saying what happened.
    pub summary: String,
}

/// A booking with its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingDetail {
    pub summary: BookingSummary,
    pub invitee_uri: Option<String>,
    pub payment_intent: Option<String>,
    pub audit: Vec<AuditEntry>,
}

/// What the window shows in its header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    pub version: String,
    /// `demo`, `test` or `live`.
    pub mode: String,
    pub database_path: String,
}
