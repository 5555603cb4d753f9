//! Desktop conventions through Tauri's own plugins: one window per data folder
//! (single-instance), a rotated log file (log), and the window's size and position kept
//! across restarts (window-state).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sha2::Digest as _;
use tauri::plugin::TauriPlugin;
use tauri::{AppHandle, Manager, Runtime, WindowEvent};
use tauri_plugin_log::{RotationStrategy, Target, TargetKind};
use tauri_plugin_window_state::{AppHandleExt as _, StateFlags};

use crate::AppState;

/// The log file's name (without `.log`) in the app's log folder.
pub const LOG_FILE: &str = "coachdesk";

/// A log file is rotated when it reaches this size...
pub const LOG_MAX_BYTES: u128 = 2 * 1024 * 1024;

/// ...and this many files are kept.
pub const LOG_FILES_KEPT: usize = 5;

/// The data folder's file lock, held for the app's lifetime (see [`crate::instance`]).
pub struct FolderLock(pub crate::instance::InstanceLock);

/// The D-Bus name the single-instance plugin owns for `data_folder` (Linux): the app's
/// identifier and a digest of the folder, so two data folders (tests, a second profile)
/// run side by side while a second start on the same folder finds the first.
pub fn instance_bus_id(data_folder: &Path) -> String {
    let folder = std::fs::canonicalize(data_folder).unwrap_or_else(|_| data_folder.to_path_buf());
    let digest = sha2::Sha256::digest(folder.as_os_str().as_encoded_bytes());
    // A bus name element may not start with a digit.
    format!("app.coachdesk.desktop.f{}", &hex::encode(digest)[..16])
}

/// The single-instance plugin: a second start on the same data folder brings the open
/// window forward and exits 0. Without a session bus the plugin lets every start through
/// (it logs a warning), and the data folder's file lock refuses the second one instead.
pub fn single_instance<R: Runtime>(data_folder: &Path) -> TauriPlugin<R> {
    tauri_plugin_single_instance::Builder::new()
        .dbus_id(instance_bus_id(data_folder))
        .callback(|app, _args, _cwd| focus_main_window(app))
        .build()
}

/// Unminimizes, shows and focuses the main window, and counts it (the diagnostics and the
/// end-to-end test read the count).
pub fn focus_main_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        if let Err(err) = window.set_focus() {
            tracing::warn!(error = %err, "the window could not take the focus");
        }
    }
    if let Some(state) = app.try_state::<AppState>() {
        state.count_focus_request();
    }
    tracing::info!("a second start brought the window forward");
}

/// The log plugin: stdout and a rotated file in the app's log folder. `tracing` events
/// reach it as `log` records (tracing's `log` feature, with no tracing subscriber set).
/// `COACHDESK_LOG` names the level (error, warn, info, debug, trace; info by default).
pub fn log_plugin<R: Runtime>() -> TauriPlugin<R> {
    let level = std::env::var("COACHDESK_LOG")
        .ok()
        .and_then(|l| l.trim().parse::<log::LevelFilter>().ok())
        .unwrap_or(log::LevelFilter::Info);
    tauri_plugin_log::Builder::new()
        .clear_targets()
        .target(Target::new(TargetKind::Stdout))
        .target(Target::new(TargetKind::LogDir {
            file_name: Some(LOG_FILE.to_owned()),
        }))
        .max_file_size(LOG_MAX_BYTES)
        .rotation_strategy(RotationStrategy::KeepSome(LOG_FILES_KEPT))
        .level(level)
        .build()
}

/// Where the log plugin writes.
pub fn log_file<R: Runtime>(app: &AppHandle<R>) -> Option<PathBuf> {
    app.path()
        .app_log_dir()
        .ok()
        .map(|dir| dir.join(format!("{LOG_FILE}.log")))
}

/// How long the window must stay still before its place is saved.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(400);

/// The window-state plugin saves when the app exits normally; this saves as well once a
/// move or resize has settled, so a killed or crashed app still opens where it was.
pub fn save_window_state_when_moved<R: Runtime>(app: &AppHandle<R>) {
    let Some(window) = app.get_webview_window("main") else {
        return;
    };
    let changes = Arc::new(AtomicU64::new(0));
    let handle = app.clone();
    window.on_window_event(move |event| {
        if !matches!(event, WindowEvent::Moved(_) | WindowEvent::Resized(_)) {
            return;
        }
        let this_change = changes.fetch_add(1, Ordering::SeqCst) + 1;
        let changes = changes.clone();
        let handle = handle.clone();
        std::thread::spawn(move || {
            std::thread::sleep(SETTLE);
            if changes.load(Ordering::SeqCst) == this_change {
                if let Err(err) = handle.save_window_state(StateFlags::all()) {
                    tracing::debug!(error = %err, "the window's place was not saved");
                }
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_data_folder_has_its_own_valid_bus_name() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let id = instance_bus_id(a.path());
        assert_eq!(id, instance_bus_id(a.path()));
        assert_ne!(id, instance_bus_id(b.path()));
        for element in format!("{id}.SingleInstance").split('.') {
            assert!(!element.is_empty());
            assert!(!element.starts_with(|c: char| c.is_ascii_digit()), "{id}");
            assert!(
                element
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{id}"
            );
        }
    }
}
