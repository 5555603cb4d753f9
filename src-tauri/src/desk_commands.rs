//! Commands of the coach's desk at scale: the paged bookings list, the dashboard's alerts
//! and their thresholds, and a reconciliation run on demand. Thin, like [`crate::commands`].

use coachdesk_desk::{command_error, Alerts};
use coachdesk_protocol::desk::{AlertReport, AlertThresholds, BookingPage, ReconcileSummary};
use coachdesk_protocol::ipc::{BookingFilter, CommandError};
use coachdesk_store::StoreError;
use coachdesk_sync::ReconcileReport;
use tauri::State;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::AppState;

fn logged<T>(command: &str, result: Result<T, StoreError>) -> Result<T, CommandError> {
    result.map_err(|error| {
        let error = command_error(error);
        tracing::debug!(command, code = %error.code, "{}", error.message);
        error
    })
}

/// One page of the bookings list with the number of bookings the filter matches.
#[tauri::command(rename_all = "snake_case")]
pub async fn booking_page(
    state: State<'_, AppState>,
    filter: BookingFilter,
) -> Result<BookingPage, CommandError> {
    logged("booking_page", state.store().booking_page(&filter))
}

/// The dashboard's alerts over the last `days` days (1 to 366).
#[tauri::command(rename_all = "snake_case")]
pub async fn dashboard_alerts(
    state: State<'_, AppState>,
    days: u32,
) -> Result<AlertReport, CommandError> {
    let now = OffsetDateTime::now_utc();
    logged(
        "dashboard_alerts",
        state.store().dashboard_alerts(now, days),
    )
}

/// Saves the coach's alert thresholds (percentages, warning at most critical).
#[tauri::command(rename_all = "snake_case")]
pub async fn set_alert_thresholds(
    state: State<'_, AppState>,
    thresholds: AlertThresholds,
) -> Result<AlertThresholds, CommandError> {
    logged(
        "set_alert_thresholds",
        state.store().set_alert_thresholds(&thresholds),
    )
}

/// Runs a reconciliation with Stripe and Calendly now and answers its report; says in
/// words when sync is not running.
#[tauri::command(rename_all = "snake_case")]
pub async fn run_reconciliation(
    state: State<'_, AppState>,
) -> Result<ReconcileSummary, CommandError> {
    let Some(handle) = state.sync_handle() else {
        return Err(sync_not_running());
    };
    let report = handle.reconcile_now().await;
    Ok(summary(report, OffsetDateTime::now_utc()))
}

/// The answer when no sync is running.
pub fn sync_not_running() -> CommandError {
    CommandError {
        code: "conflict".to_owned(),
        message: "Sync is not running, so there is nothing to reconcile with. Connect the relay \
                  (start the app with COACHDESK_RELAY_URL set, or enter the relay in Settings) \
                  and try again."
            .to_owned(),
        fields: Vec::new(),
    }
}

/// The sync engine's report for the coach (pure).
pub fn summary(report: ReconcileReport, finished: OffsetDateTime) -> ReconcileSummary {
    let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
    ReconcileSummary {
        stripe_events_read: n(report.stripe_events_read),
        stripe_events_recovered: report.stripe_events_recovered,
        calendly_invitees_checked: n(report.calendly_invitees_checked),
        calendly_facts_recovered: report.calendly_facts_recovered,
        errors: report.errors,
        finished_at: finished.format(&Rfc3339).unwrap_or_default(),
    }
}
