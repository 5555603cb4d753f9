//! The commands the webview may call, one per name in `coachdesk_protocol::ipc::command`.
//!
//! Each is a few lines: take the store, call it, convert its error into a
//! [`CommandError`] (`{code, message, fields}`), which the UI shows as it is. They are
//! `async` so Tauri runs them off the main thread and a slow disk never freezes the window.
//! Argument names stay snake_case on the wire, like the protocol structs.

use coachdesk_protocol::ipc::{
    AppInfo, BookingDetail, BookingFilter, BookingSummary, CommandError, SessionTypeDraft,
    SessionTypeView,
};
use coachdesk_store::StoreError;
use tauri::State;

use crate::AppState;

/// Converts the store's answer for the UI, logging failures: a validation refusal is
/// routine (debug), anything else is worth a look (warn).
fn logged<T>(command: &str, result: Result<T, StoreError>) -> Result<T, CommandError> {
    result.map_err(|error| {
        let error = CommandError::from(error);
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
    logged("booking_detail", state.store().booking_detail(&id))
}
