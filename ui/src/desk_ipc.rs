//! Bindings for the desk commands: the paged bookings list, alerts and their thresholds,
//! and a reconciliation run (see `src-tauri/src/desk_commands.rs`).

use coachdesk_protocol::desk::{AlertReport, AlertThresholds, BookingPage, ReconcileSummary};
use coachdesk_protocol::ipc::{command, BookingFilter, CommandError};
use serde::Serialize;

use crate::ipc::invoke;

#[derive(Serialize)]
struct Filter<'a> {
    filter: &'a BookingFilter,
}

#[derive(Serialize)]
struct Days {
    days: u32,
}

#[derive(Serialize)]
struct Thresholds<'a> {
    thresholds: &'a AlertThresholds,
}

#[derive(Serialize)]
struct NoArgs {}

pub async fn booking_page(filter: &BookingFilter) -> Result<BookingPage, CommandError> {
    invoke(command::BOOKING_PAGE, &Filter { filter }).await
}

pub async fn dashboard_alerts(days: u32) -> Result<AlertReport, CommandError> {
    invoke(command::DASHBOARD_ALERTS, &Days { days }).await
}

pub async fn set_alert_thresholds(
    thresholds: &AlertThresholds,
) -> Result<AlertThresholds, CommandError> {
    invoke(command::SET_ALERT_THRESHOLDS, &Thresholds { thresholds }).await
}

pub async fn run_reconciliation() -> Result<ReconcileSummary, CommandError> {
    invoke(command::RUN_RECONCILIATION, &NoArgs {}).await
}
