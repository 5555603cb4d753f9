//! What every command test needs: the app on Tauri's mock runtime with its main window, and
//! a command called through the real IPC path (argument names, answers and error shape).
#![allow(dead_code)]

use coachdesk_app::AppState;
use serde_json::Value;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{App, Manager, WebviewWindowBuilder};

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
    get_ipc_response(
        &window,
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
