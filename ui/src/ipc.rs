//! The one way the UI reaches the shell: a typed wrapper over Tauri's `invoke`.
//!
//! `withGlobalTauri` puts `invoke` at `window.__TAURI__.core.invoke`; the extern below is
//! declared with `catch`, so a rejected promise (a `CommandError`, or no Tauri at all when
//! the page is opened in a plain browser) comes back as `Err` instead of a JS exception.
//! Arguments are snake_case objects, matching `#[tauri::command(rename_all = "snake_case")]`.

use coachdesk_protocol::ipc::{
    command, AppInfo, AttentionItem, BookingDetail, BookingFilter, BookingSummary, BusinessMetrics,
    CoachActionDto, CommandError, CsvExport, InboxEntry, InboxFilter, InboxPayload, RefundPreview,
    SessionTypeDraft, SessionTypeView, SyncHealth,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = ["window", "__TAURI__", "core"], js_name = invoke)]
    async fn tauri_invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;
}

/// Calls command `cmd` with `args` and decodes its answer or its `CommandError`.
pub async fn invoke<A: Serialize, T: DeserializeOwned>(
    cmd: &str,
    args: &A,
) -> Result<T, CommandError> {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    let args = args
        .serialize(&serializer)
        .map_err(|e| internal(format!("could not encode the arguments of {cmd}: {e}")))?;
    match tauri_invoke(cmd, args).await {
        Ok(value) => serde_wasm_bindgen::from_value(value)
            .map_err(|e| internal(format!("unexpected answer from {cmd}: {e}"))),
        Err(error) => Err(
            serde_wasm_bindgen::from_value::<CommandError>(error.clone()).unwrap_or_else(|_| {
                internal(format!(
                    "the app could not run {cmd}: {}",
                    error.as_string().unwrap_or_else(|| format!("{error:?}"))
                ))
            }),
        ),
    }
}

fn internal(message: String) -> CommandError {
    CommandError {
        code: "internal".to_owned(),
        message,
        fields: Vec::new(),
    }
}

#[derive(Serialize)]
struct NoArgs {}

#[derive(Serialize)]
struct IncludeArchived {
    include_archived: bool,
}

#[derive(Serialize)]
struct Draft<'a> {
    draft: &'a SessionTypeDraft,
}

#[derive(Serialize)]
struct IdAndDraft<'a> {
    id: &'a str,
    draft: &'a SessionTypeDraft,
}

#[derive(Serialize)]
struct Id<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct Filter<'a> {
    filter: &'a BookingFilter,
}

pub async fn app_info() -> Result<AppInfo, CommandError> {
    invoke(command::APP_INFO, &NoArgs {}).await
}

pub async fn list_session_types(
    include_archived: bool,
) -> Result<Vec<SessionTypeView>, CommandError> {
    invoke(
        command::LIST_SESSION_TYPES,
        &IncludeArchived { include_archived },
    )
    .await
}

pub async fn create_session_type(
    draft: &SessionTypeDraft,
) -> Result<SessionTypeView, CommandError> {
    invoke(command::CREATE_SESSION_TYPE, &Draft { draft }).await
}

pub async fn update_session_type(
    id: &str,
    draft: &SessionTypeDraft,
) -> Result<SessionTypeView, CommandError> {
    invoke(command::UPDATE_SESSION_TYPE, &IdAndDraft { id, draft }).await
}

pub async fn archive_session_type(id: &str) -> Result<SessionTypeView, CommandError> {
    invoke(command::ARCHIVE_SESSION_TYPE, &Id { id }).await
}

pub async fn list_bookings(filter: &BookingFilter) -> Result<Vec<BookingSummary>, CommandError> {
    invoke(command::LIST_BOOKINGS, &Filter { filter }).await
}

pub async fn booking_detail(id: &str) -> Result<BookingDetail, CommandError> {
    invoke(command::BOOKING_DETAIL, &Id { id }).await
}

#[derive(Serialize)]
struct Action<'a> {
    booking_id: &'a str,
    action_id: &'a str,
    action: &'a CoachActionDto,
}

#[derive(Serialize)]
struct BookingId<'a> {
    booking_id: &'a str,
}

#[derive(Serialize)]
struct InboxQuery<'a> {
    filter: &'a InboxFilter,
}

#[derive(Serialize)]
struct InboxId {
    id: i64,
}

#[derive(Serialize)]
struct Days {
    days: u32,
}

#[derive(Serialize)]
struct What<'a> {
    what: &'a str,
}

/// Sends one coach action; `action_id` is the same for every retry of one click.
pub async fn coach_action(
    booking_id: &str,
    action_id: &str,
    action: &CoachActionDto,
) -> Result<BookingDetail, CommandError> {
    let args = Action {
        booking_id,
        action_id,
        action,
    };
    invoke(command::COACH_ACTION, &args).await
}

pub async fn refund_preview(booking_id: &str) -> Result<RefundPreview, CommandError> {
    invoke(command::REFUND_PREVIEW, &BookingId { booking_id }).await
}

pub async fn list_inbox(filter: &InboxFilter) -> Result<Vec<InboxEntry>, CommandError> {
    invoke(command::LIST_INBOX, &InboxQuery { filter }).await
}

pub async fn inbox_payload(id: i64) -> Result<InboxPayload, CommandError> {
    invoke(command::INBOX_PAYLOAD, &InboxId { id }).await
}

pub async fn replay_inbox(id: i64) -> Result<InboxEntry, CommandError> {
    invoke(command::REPLAY_INBOX, &InboxId { id }).await
}

pub async fn attention_items() -> Result<Vec<AttentionItem>, CommandError> {
    invoke(command::ATTENTION_ITEMS, &NoArgs {}).await
}

pub async fn business_metrics(days: u32) -> Result<Vec<BusinessMetrics>, CommandError> {
    invoke(command::BUSINESS_METRICS, &Days { days }).await
}

pub async fn export_csv(what: &str) -> Result<CsvExport, CommandError> {
    invoke(command::EXPORT_CSV, &What { what }).await
}

pub async fn sync_status() -> Result<Option<SyncHealth>, CommandError> {
    invoke(command::SYNC_STATUS, &NoArgs {}).await
}

/// A fresh id for one coach action: random from the platform's CSPRNG, else from the clock.
pub fn new_action_id() -> String {
    web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.random_uuid())
        .unwrap_or_else(|| format!("act-{}-{}", js_sys::Date::now(), js_sys::Math::random()))
}
