//! What the window polls to stay live: a data version that changes whenever the store
//! does (sync applied an event, an effect finished, the coach acted), and the notices
//! sync raised for the coach (new booking, payment, failure), shown as toasts.

use serde::{Deserialize, Serialize};

/// Command name of the poll (see [`LiveStatus`]).
pub const LIVE_STATUS: &str = "live_status";

/// What kind of news a toast brings; the UI styles them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToastKind {
    NewBooking,
    Payment,
    Failure,
    Attention,
}

/// One notice for the coach, also sent as a native notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toast {
    /// Increasing from 1 within one run of the app.
    pub id: u64,
    pub kind: ToastKind,
    pub title: String,
    pub body: String,
    /// The booking it is about, to open it.
    pub booking_id: Option<String>,
    /// When it was raised (RFC 3339).
    pub at: String,
}

/// The answer of `live_status(after_toast)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveStatus {
    /// Changes whenever anything in the store changed; pages reload when it moves.
    pub data_version: u64,
    /// Toasts newer than `after_toast`, oldest first (the last few only).
    pub toasts: Vec<Toast>,
}
