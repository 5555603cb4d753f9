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
    pub const COACH_ACTION: &str = "coach_action";
    pub const REFUND_PREVIEW: &str = "refund_preview";
    pub const LIST_INBOX: &str = "list_inbox";
    pub const INBOX_PAYLOAD: &str = "inbox_payload";
    pub const REPLAY_INBOX: &str = "replay_inbox";
    pub const ATTENTION_ITEMS: &str = "attention_items";
    pub const BUSINESS_METRICS: &str = "business_metrics";
    pub const EXPORT_CSV: &str = "export_csv";
    pub const SYNC_STATUS: &str = "sync_status";
    pub const BOOKING_PAGE: &str = "booking_page";
    pub const DASHBOARD_ALERTS: &str = "dashboard_alerts";
    pub const SET_ALERT_THRESHOLDS: &str = "set_alert_thresholds";
    pub const RUN_RECONCILIATION: &str = "run_reconciliation";
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
    /// A Calendly event type to link to this session type (others stay linked; unlink
    /// on the mapping screen). `None` leaves the links as they are.
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
    /// Whether its Stripe product, price and payment link exist for the current price.
    #[serde(default)]
    pub stripe_status: crate::setup::StripeStatus,
    /// The Stripe payment link clients pay through, once set up.
    #[serde(default)]
    pub payment_link_url: Option<String>,
    /// Every Calendly event type linked to it (see the mapping screen).
    #[serde(default)]
    pub event_type_uris: Vec<String>,
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
    /// Sessions starting on or after this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub from: Option<String>,
    /// Sessions starting on or before this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub to: Option<String>,
    /// How many matching bookings to skip (paging).
    #[serde(default)]
    pub offset: Option<u32>,
    /// Soonest session first (the dashboard's upcoming list) instead of latest first.
    #[serde(default)]
    pub soonest_first: Option<bool>,
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
    /// The actions its page offers now.
    #[serde(default)]
    pub actions: OfferedActions,
}

/// The coach actions a booking's page offers: the state machine's own answer for the
/// booking as it is now. Correcting the state by hand is always offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferedActions {
    pub cancel: bool,
    /// A refund of part (or the rest) of what was paid.
    pub refund: bool,
    pub no_show: bool,
    /// Send the payment (or recovery) link again.
    pub resend_link: bool,
}

/// What the window shows in its header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppInfo {
    pub version: String,
    /// `demo`, `test` or `live`.
    pub mode: String,
    pub database_path: String,
}

/// How much to give back when the coach cancels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RefundChoiceDto {
    /// What the session type's policy says for the notice given.
    Policy,
    Full,
    None,
    /// This many minor units of the booking's currency.
    Amount {
        amount_minor: i64,
    },
}

/// Something the coach does to a booking. Each click carries a fresh `action_id`, so a
/// double submission is one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum CoachActionDto {
    Cancel {
        refund: RefundChoiceDto,
        reason: String,
    },
    Refund {
        amount_minor: i64,
        reason: String,
    },
    MarkNoShow,
    /// Sets the state by hand; the reason is required and audited.
    Correct {
        state: String,
        reason: String,
    },
    /// The coach has dealt with a needs-attention flag (by its code).
    Dismiss {
        code: String,
    },
    /// Email the client the payment link again (the recovery link once a reminder was
    /// due or a payment failed); one email per `action_id`.
    ResendPaymentLink,
}

/// What a cancellation now would refund, for the confirmation dialog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundPreview {
    pub paid_minor: i64,
    /// Still refundable (paid minus refunds already made).
    pub refundable_minor: i64,
    /// What the policy gives back if cancelled now.
    pub policy_refund_minor: i64,
    pub policy_percent: u8,
    pub currency: Option<String>,
    /// Whole hours between now and the session's start (negative once started).
    pub hours_before: Option<i64>,
    /// A sentence for the dialog: "Cancelled 30 h before: 50% back, 75.00 EUR."
    pub sentence: String,
}

/// Filters for the webhook log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct InboxFilter {
    /// `stripe`, `calendly`, `coach` or `internal`.
    #[serde(default)]
    pub provider: Option<String>,
    /// `applied`, `ignored`, `parked` or `failed`.
    #[serde(default)]
    pub status: Option<String>,
    /// Matches the event key, its type or the booking id.
    #[serde(default)]
    pub search: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
    /// The event type, or its start (`checkout.session` matches every Checkout event).
    #[serde(default)]
    pub kind: Option<String>,
    /// Received on or after this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub from: Option<String>,
    /// Received on or before this day (`YYYY-MM-DD`, UTC).
    #[serde(default)]
    pub to: Option<String>,
}

/// One stored input (webhook, reconciliation read, coach action, timer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    pub id: i64,
    pub provider: String,
    pub key: String,
    pub kind: String,
    pub source: String,
    pub status: String,
    pub booking_id: Option<String>,
    /// Why it was ignored, parked or failed.
    pub note: Option<String>,
    pub received_at: String,
}

/// A stored input with its raw body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxPayload {
    pub entry: InboxEntry,
    pub body: String,
}

/// A booking that needs the coach, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionItem {
    pub booking_id: String,
    pub client_name: Option<String>,
    pub start_time: Option<String>,
    pub state: String,
    /// Codes such as `paid_twice`, `refund_failed`, `payment_for_unknown_booking`.
    pub codes: Vec<String>,
    pub message: String,
}

/// Business figures per day, counted from what happened (payments that succeeded, never
/// attempts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyMetrics {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub bookings: i64,
    pub paid: i64,
    pub payment_failures: i64,
    pub cancellations: i64,
    pub revenue_minor: i64,
    pub refunds_minor: i64,
}

/// The dashboard's business metrics over a period, for one currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessMetrics {
    pub currency: String,
    pub days: Vec<DailyMetrics>,
    pub bookings: i64,
    /// Bookings paid / bookings made, 0..1.
    pub conversion_rate: f64,
    /// Payment attempts that succeeded / attempts that ended (succeeded or failed), 0..1.
    pub payment_success_rate: f64,
    /// Cancelled bookings / bookings made, 0..1.
    pub cancellation_rate: f64,
    /// Median minutes from booking to payment, if any were paid.
    pub median_minutes_to_payment: Option<i64>,
    pub revenue_minor: i64,
    pub refunds_minor: i64,
}

/// A CSV export written to disk, and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvExport {
    /// `bookings`, `payments` or `refunds`.
    pub what: String,
    /// The file the shell wrote, in the app's data folder (next to the database).
    pub path: String,
    pub bytes: usize,
    pub csv: String,
}

/// What the dashboard shows about background sync (`sync_status` answers `null` when no
/// relay is configured).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncHealth {
    pub relay_url: String,
    /// The last relay pull succeeded.
    pub connected: bool,
    /// When the last pull succeeded (RFC 3339).
    pub last_sync: Option<String>,
    pub events_applied: u64,
    /// Effects (refunds, emails...) waiting to run.
    pub queue_depth: u64,
    pub effects_failed: u64,
    /// The last error of any sync task, in words for the coach.
    pub last_error: Option<String>,
    /// When reconciliation last ran (RFC 3339).
    pub last_reconcile_at: Option<String>,
}
