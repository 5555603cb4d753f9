//! What every command test needs: the app on Tauri's mock runtime with its main window, and
//! a command called through the real IPC path (argument names, answers and error shape).
#![allow(dead_code)]

use coachdesk_app::{AppState, Launch, Mode};
use serde_json::Value;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{App, Manager, WebviewWindow, WebviewWindowBuilder};

/// Builds the app around `state` on the mock runtime and opens its main window.
pub fn mock_app(state: AppState) -> App<MockRuntime> {
    let app = coachdesk_app::build(mock_builder(), state).expect("build app");
    WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("main window");
    app
}

/// Calls `cmd` with `args` from the main window; `Err` holds the command's error answer.
pub fn invoke(app: &App<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    let window = app
        .get_webview_window("main")
        .expect("the harness opened the main window");
    invoke_in(&window, cmd, args)
}

/// Calls `cmd` with `args` from `window` (a window without the capability is refused).
pub fn invoke_in(
    window: &WebviewWindow<MockRuntime>,
    cmd: &str,
    args: Value,
) -> Result<Value, Value> {
    get_ipc_response(
        window,
        InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            // tauri://localhost is the app's own origin on Linux; http://tauri.localhost
            // would be treated as remote and refused.
            url: "tauri://localhost".parse().expect("url"),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|body| body.deserialize::<Value>().expect("json answer"))
}

/// The app in a mode over a database in a temporary folder of its own.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub app: App<MockRuntime>,
}

/// The app in `mode` over the database `file` (a path inside a new temporary folder).
pub fn harness(file: &str, mode: Mode) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let launch = Launch {
        database_path: dir.path().join(file),
        mode,
    };
    let state = AppState::open(&launch, time::OffsetDateTime::now_utc()).expect("open store");
    let app = mock_app(state);
    Harness { dir, app }
}

impl Harness {
    pub fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        invoke(&self.app, cmd, args)
    }
}
