//! Backups from the Settings page: back up now (to a file the coach picks), the list of
//! daily backups, and restore. The work is the desk's ([`coachdesk_desk::backups`]).

use std::path::{Path, PathBuf};

use coachdesk_desk::backups::{self, RestoreError};
use coachdesk_protocol::ipc::{BackupDone, BackupFile, BackupPath, BackupsView, CommandError};
use coachdesk_store::BackupError;
use tauri::{AppHandle, Runtime, State};
use tauri_plugin_dialog::DialogExt;
use time::OffsetDateTime;

use crate::AppState;

/// The daily backups, newest first.
#[tauri::command(rename_all = "snake_case")]
pub async fn list_backups(state: State<'_, AppState>) -> Result<BackupsView, CommandError> {
    let dir = state.backups_dir();
    let mut automatic: Vec<BackupFile> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            backups::is_daily(&name).then(|| BackupFile {
                path: e.path().display().to_string(),
                bytes: e.metadata().map_or(0, |m| m.len()),
                name,
            })
        })
        .collect();
    automatic.sort_by(|a, b| b.name.cmp(&a.name));
    Ok(BackupsView {
        folder: dir.display().to_string(),
        keep_days: u32::try_from(backups::KEEP_DAILY_DAYS).unwrap_or(14),
        automatic,
    })
}

/// Writes a backup to `path`, or to the file the coach picks in the save dialog (`None`
/// answered when the dialog is closed).
#[tauri::command(rename_all = "snake_case")]
pub async fn backup_database<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    request: BackupPath,
) -> Result<Option<BackupDone>, CommandError> {
    let suggested = backups::daily_name(OffsetDateTime::now_utc().date());
    let Some(path) = given_or_picked(&app, request, Some(&suggested)).await else {
        return Ok(None);
    };
    let summary = state.store().backup_to(&path).map_err(|e| {
        tracing::warn!(command = "backup_database", path = %path.display(), error = %e, "backup failed");
        backup_error(&e)
    })?;
    tracing::info!(path = %path.display(), bookings = summary.bookings, "backup written");
    Ok(Some(BackupDone {
        path: path.display().to_string(),
        bookings: summary.bookings,
        newest_entry: summary.newest_entry,
        kept_aside: None,
    }))
}

/// Replaces the database with the backup at `path` (or the file the coach picks), keeping
/// the current one aside; sync then fetches what the backup does not know.
#[tauri::command(rename_all = "snake_case")]
pub async fn restore_database<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    request: BackupPath,
) -> Result<Option<BackupDone>, CommandError> {
    let Some(path) = given_or_picked(&app, request, None).await else {
        return Ok(None);
    };
    let database = state.database_path().to_owned();
    let restored = {
        let mut store = state.store();
        backups::restore(&mut store, &database, &path, OffsetDateTime::now_utc())
    }
    .map_err(|e| {
        tracing::warn!(command = "restore_database", path = %path.display(), error = %e, "restore refused");
        match &e {
            RestoreError::Backup(b) => backup_error(b),
            RestoreError::Store(_) | RestoreError::Sync(_) => CommandError {
                code: "storage".to_owned(),
                message: format!("The backup could not be restored ({e}). Your database is as it was."),
                fields: Vec::new(),
            },
        }
    })?;
    tracing::info!(path = %path.display(), aside = %restored.kept_aside.display(), "database restored");
    if let Some(sync) = state.sync_handle() {
        sync.reconcile_soon();
    }
    Ok(Some(BackupDone {
        path: path.display().to_string(),
        bookings: restored.summary.bookings,
        newest_entry: restored.summary.newest_entry,
        kept_aside: Some(restored.kept_aside.display().to_string()),
    }))
}

/// The path the request names, or else the one the coach picks in the system's dialog:
/// a save dialog suggesting `save_as`, or an open dialog without it. `None`: closed.
async fn given_or_picked<R: Runtime>(
    app: &AppHandle<R>,
    request: BackupPath,
    save_as: Option<&str>,
) -> Option<PathBuf> {
    if let Some(path) = request.path {
        return Some(PathBuf::from(path));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let dialog = app.dialog().file().add_filter("Coachdesk backup", &["db"]);
    let answer = move |file: Option<tauri_plugin_dialog::FilePath>| {
        let _ = tx.send(file.and_then(|f| f.into_path().ok()));
    };
    match save_as {
        Some(name) => dialog
            .set_title("Back up Coachdesk")
            .set_file_name(name)
            .save_file(answer),
        None => dialog
            .set_title("Restore a Coachdesk backup")
            .pick_file(answer),
    }
    rx.await.ok().flatten()
}

fn backup_error(e: &BackupError) -> CommandError {
    let (code, advice) = match e {
        BackupError::Missing { .. }
        | BackupError::NotCoachdesk { .. }
        | BackupError::Damaged { .. } => ("invalid", "Choose another file; nothing was changed."),
        BackupError::TooNew { .. } => ("invalid", "Nothing was changed."),
        BackupError::Write { .. } | BackupError::Sqlite { .. } => (
            "storage",
            "Check that the folder exists, is writable and has room; nothing was changed.",
        ),
    };
    CommandError {
        code: code.to_owned(),
        message: format!("{} {advice}", coachdesk_desk::capitalised(&e.to_string())),
        fields: Vec::new(),
    }
}

/// Takes today's automatic backup if it is not there yet, a minute after start and then
/// hourly while the app runs.
pub fn spawn_daily_backups(
    store: std::sync::Arc<std::sync::Mutex<coachdesk_store::Store>>,
    dir: PathBuf,
) {
    let spawned = std::thread::Builder::new()
        .name("daily-backup".to_owned())
        .spawn(move || loop {
            // Not at the very start: the window's first requests need the store first.
            std::thread::sleep(std::time::Duration::from_secs(60));
            daily_once(&store, &dir);
            std::thread::sleep(std::time::Duration::from_secs(3600 - 60));
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "daily backups are off: their thread did not start");
    }
}

fn daily_once(store: &std::sync::Mutex<coachdesk_store::Store>, dir: &Path) {
    let store = coachdesk_desk::lock(store);
    match backups::daily_backup(&store, dir, OffsetDateTime::now_utc().date()) {
        Ok(Some(path)) => tracing::info!(path = %path.display(), "daily backup written"),
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%error, "the daily backup failed; it is tried again within the hour")
        }
    }
}
