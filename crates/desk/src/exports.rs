//! CSV exports: the bookings, payments or refunds the coach asks for, written into the
//! exports folder next to the database (with the backups, the only files the desk writes,
//! and only when the coach asks).

use std::path::Path;

use coachdesk_protocol::ipc::{CommandError, CsvExport};
use coachdesk_store::{Export, Store};
use time::macros::format_description;
use time::OffsetDateTime;

use crate::command_error;

/// Exports `what` (`bookings`, `payments` or `refunds`) as CSV into `folder`, in a file
/// named for `what` and `now`, and answers the file's path with the text.
pub fn export_csv(
    store: &Store,
    folder: &Path,
    what: &str,
    now: OffsetDateTime,
) -> Result<CsvExport, CommandError> {
    let export = Export::parse(what).ok_or_else(|| CommandError {
        code: "invalid".to_owned(),
        message: format!(
            "Choose bookings, payments or refunds to export; \"{what}\" is none of them."
        ),
        fields: Vec::new(),
    })?;
    let csv = store.export_csv(export).map_err(command_error)?;
    let stamp = now
        .format(format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap_or_default();
    let path = folder.join(format!("{what}-{stamp}.csv"));
    std::fs::create_dir_all(folder)
        .and_then(|()| std::fs::write(&path, &csv))
        .map_err(|error| {
            tracing::warn!(command = "export_csv", path = %path.display(), "{error}");
            CommandError {
                code: "storage".to_owned(),
                message: format!(
                    "Could not write the export to {}: {error}. Check that the folder is writable.",
                    path.display()
                ),
                fields: Vec::new(),
            }
        })?;
    Ok(CsvExport {
        what: what.to_owned(),
        path: path.display().to_string(),
        bytes: csv.len(),
        csv,
    })
}
