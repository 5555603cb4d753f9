//! The commands the webview may call, one per name in `coachdesk_protocol::ipc::command`.
//!
//! Each is a few lines: take the store, call it, convert its error into a
//! [`CommandError`] (`{code, message, fields}`), which the UI shows as it is. They are
//! `async` so Tauri runs them off the main thread and a slow disk never freezes the window.
//! Argument names stay snake_case on the wire, like the protocol structs.

use coachdesk_desk::{command_error, CoachActions, SessionTypeForms};
use coachdesk_protocol::ipc::{
    AppInfo, AttentionItem, BookingDetail, BookingFilter, BookingSummary, BusinessMetrics,
    CoachActionDto, CommandError, CsvExport, InboxEntry, InboxFilter, InboxPayload, RefundPreview,
    SessionTypeDraft, SessionTypeView, SyncHealth,
};
use coachdesk_store::StoreError;
use tauri::State;
use time::{Duration, OffsetDateTime};

use crate::AppState;

/// Converts the store's answer for the UI, logging failures: a validation refusal is
/// routine (debug), anything else is worth a look (warn).
fn logged<T>(command: &str, result: Result<T, StoreError>) -> Result<T, CommandError> {
    result.map_err(|error| {
        let error = command_error(error);
        if error.code == "invalid" {
            tracing::debug!(command, code = %error.code, "{}", error.message);
        } else {
            tracing::warn!(command, code = %error.code, "{}", error.message);
        }
        error
    })
}

#[tauri::command(rename_all = "snake_case")]
pub async fn app_info(state: State<'_, AppState>) -> Result<AppInfo, CommandError> {
    // The window asks for this once its first screen is rendered: the cold-start mark
    // (`scripts/bench-cold-start` times launches to this line).
    static FIRST: std::sync::Once = std::sync::Once::new();
    FIRST.call_once(|| tracing::info!(since_start_ms = crate::since_start_ms(), "first screen"));
    Ok(state.info.clone())
}

#[tauri::command(rename_all = "snake_case")]
pub async fn list_session_types(
    state: State<'_, AppState>,
    include_archived: bool,
) -> Result<Vec<SessionTypeView>, CommandError> {
    logged(
        "list_session_types",
        state.store().list_session_types(include_archived),
    )
}

#[tauri::command(rename_all = "snake_case")]
pub async fn create_session_type(
    state: State<'_, AppState>,
    draft: SessionTypeDraft,
) -> Result<SessionTypeView, CommandError> {
    logged(
        "create_session_type",
        state.store().create_session_type(&draft),
    )
}

#[tauri::command(rename_all = "snake_case")]
pub async fn update_session_type(
    state: State<'_, AppState>,
    id: String,
    draft: SessionTypeDraft,
) -> Result<SessionTypeView, CommandError> {
    logged(
        "update_session_type",
        state.store().update_session_type(&id, &draft),
    )
}

#[tauri::command(rename_all = "snake_case")]
pub async fn archive_session_type(
    state: State<'_, AppState>,
    id: String,
) -> Result<SessionTypeView, CommandError> {
    logged(
        "archive_session_type",
        state.store().archive_session_type(&id),
    )
}

#[tauri::command(rename_all = "snake_case")]
pub async fn list_bookings(
    state: State<'_, AppState>,
    filter: BookingFilter,
) -> Result<Vec<BookingSummary>, CommandError> {
    logged("list_bookings", state.store().list_bookings(&filter))
}

#[tauri::command(rename_all = "snake_case")]
pub async fn booking_detail(
    state: State<'_, AppState>,
    id: String,
) -> Result<BookingDetail, CommandError> {
    let id = logged("booking_detail", coachdesk_desk::booking_id(&id))?;
    logged("booking_detail", state.store().booking_detail(&id))
}

#[tauri::command(rename_all = "snake_case")]
pub async fn coach_action(
    state: State<'_, AppState>,
    booking_id: String,
    action_id: String,
    action: CoachActionDto,
) -> Result<BookingDetail, CommandError> {
    let booking_id = logged("coach_action", coachdesk_desk::booking_id(&booking_id))?;
    let now = OffsetDateTime::now_utc();
    let detail = logged(
        "coach_action",
        state
            .store()
            .coach_action(&booking_id, &action_id, &action, now),
    )?;
    // The action may have queued a refund or a Calendly cancel: run it now, not at the next poll.
    state.run_effects_soon();
    Ok(detail)
}

#[tauri::command(rename_all = "snake_case")]
pub async fn refund_preview(
    state: State<'_, AppState>,
    booking_id: String,
) -> Result<RefundPreview, CommandError> {
    let booking_id = logged("refund_preview", coachdesk_desk::booking_id(&booking_id))?;
    let now = OffsetDateTime::now_utc();
    logged(
        "refund_preview",
        state.store().refund_preview(&booking_id, now),
    )
}

#[tauri::command(rename_all = "snake_case")]
pub async fn list_inbox(
    state: State<'_, AppState>,
    filter: InboxFilter,
) -> Result<Vec<InboxEntry>, CommandError> {
    logged("list_inbox", state.store().list_inbox(&filter))
}

#[tauri::command(rename_all = "snake_case")]
pub async fn inbox_payload(
    state: State<'_, AppState>,
    id: i64,
) -> Result<InboxPayload, CommandError> {
    logged("inbox_payload", state.store().inbox_payload(id))
}

/// Replays one stored event and answers its log entry as it now stands.
#[tauri::command(rename_all = "snake_case")]
pub async fn replay_inbox(state: State<'_, AppState>, id: i64) -> Result<InboxEntry, CommandError> {
    let now = OffsetDateTime::now_utc();
    let mut store = state.store();
    let replayed = store
        .replay_inbox(id, now)
        .and_then(|_| store.inbox_payload(id));
    logged("replay_inbox", replayed.map(|payload| payload.entry))
}

#[tauri::command(rename_all = "snake_case")]
pub async fn attention_items(
    state: State<'_, AppState>,
) -> Result<Vec<AttentionItem>, CommandError> {
    let store = state.store();
    // Refunds held while automatic refunds are off wait here for the coach's approval.
    let items = store.attention_items().and_then(|mut items| {
        items.extend(store.held_refund_items()?);
        Ok(items)
    });
    logged("attention_items", items)
}

/// Metrics for the last `days` days (1 to 366), up to now.
#[tauri::command(rename_all = "snake_case")]
pub async fn business_metrics(
    state: State<'_, AppState>,
    days: u32,
) -> Result<Vec<BusinessMetrics>, CommandError> {
    let to = OffsetDateTime::now_utc();
    let from = to - Duration::days(i64::from(days.clamp(1, 366)));
    logged("business_metrics", state.store().business_metrics(from, to))
}

/// Exports `bookings`, `payments` or `refunds` as CSV into the exports folder next to the
/// database, and answers the file's path with the text.
#[tauri::command(rename_all = "snake_case")]
pub async fn export_csv(
    state: State<'_, AppState>,
    what: String,
) -> Result<CsvExport, CommandError> {
    coachdesk_desk::exports::export_csv(
        &state.store(),
        &state.exports_dir,
        &what,
        OffsetDateTime::now_utc(),
    )
}

/// Background sync as it stands, or `None` when no relay is configured.
#[tauri::command(rename_all = "snake_case")]
pub async fn sync_status(state: State<'_, AppState>) -> Result<Option<SyncHealth>, CommandError> {
    Ok(state.sync_health())
}
