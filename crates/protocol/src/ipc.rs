//! The Tauri commands the UI may call: their names, arguments and answers.
//!
//! Amounts travel as integer minor units with their currency code; the UI formats them.
//! Times travel as RFC 3339 strings in UTC.

use serde::{Deserialize, Serialize};

pub use coachdesk_views::{
    AttentionItem, AuditEntry, BookingDetail, BookingFilter, BookingSummary, BusinessMetrics,
    DailyMetrics, FieldError, InboxEntry, InboxFilter, InboxPayload, OfferedActions, RefundTierDto,
    SessionTypeView,
};

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
    pub const LIST_BACKUPS: &str = "list_backups";
    pub const BACKUP_DATABASE: &str = "backup_database";
    pub const RESTORE_DATABASE: &str = "restore_database";
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
    /// How long after booking the client has to pay, in minutes (30 to 1440); `None`: 24 h.
    #[serde(default)]
    pub payment_window_minutes: Option<u32>,
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

/// The Settings page's backups: the automatic daily ones, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupsView {
    /// The folder the daily backups are kept in (next to the database).
    pub folder: String,
    /// Days a daily backup is kept.
    pub keep_days: u32,
    pub automatic: Vec<BackupFile>,
}

/// One backup file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFile {
    pub path: String,
    pub name: String,
    pub bytes: u64,
}

/// The arguments of `backup_database` and `restore_database`: the file, or `None` to ask
/// the coach with the system's file dialog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupPath {
    #[serde(default)]
    pub path: Option<String>,
}

/// A backup written or restored; `None` answers a dialog the coach closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupDone {
    pub path: String,
    pub bookings: i64,
    /// The newest timeline entry the file holds (RFC 3339).
    pub newest_entry: Option<String>,
    /// On a restore: where the database as it was before was kept.
    #[serde(default)]
    pub kept_aside: Option<String>,
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
