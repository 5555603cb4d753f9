//! `live_status` through Tauri's real IPC path (mock runtime): the data version moves when
//! the store changes, and toasts are handed out once, after the id the window last saw.

mod common;

use coachdesk_app::{AppState, Launch, Mode};
use coachdesk_protocol::live::ToastKind;
use serde_json::{json, Value};
use tauri::Manager;

#[test]
fn the_data_version_moves_with_the_store_and_toasts_come_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let launch = Launch {
        database_path: dir.path().join("live.sqlite"),
        mode: Mode::Test,
    };
    let state = AppState::open(&launch, time::OffsetDateTime::now_utc()).expect("open store");
    let app = common::mock_app(state);
    let invoke = |cmd: &str, args: Value| -> Value {
        common::invoke(&app, cmd, args).unwrap_or_else(|e| panic!("{cmd} refused: {e:?}"))
    };

    let before = invoke("live_status", json!({ "after_toast": 0 }));
    assert_eq!(before["toasts"], json!([]));
    let same = invoke("live_status", json!({ "after_toast": 0 }));
    assert_eq!(
        same["data_version"], before["data_version"],
        "nothing changed, so the window must not reload"
    );

    invoke(
        "create_session_type",
        json!({ "draft": {
            "name": "Discovery call", "duration_minutes": 60, "price": "150.00",
            "currency": "EUR", "refund_tiers": [{ "min_hours_before": 24, "percent": 100 }],
            "calendly_event_type_uri": null
        }}),
    );
    let after = invoke("live_status", json!({ "after_toast": 0 }));
    assert!(
        after["data_version"].as_u64() > before["data_version"].as_u64(),
        "a write must move the version: {before} -> {after}"
    );

    app.state::<AppState>().toasts().push(
        ToastKind::Payment,
        "Payment received".into(),
        "Dana Client paid.".into(),
        Some("bk_1".into()),
    );
    let news = invoke("live_status", json!({ "after_toast": 0 }));
    assert_eq!(news["toasts"][0]["kind"], "payment");
    assert_eq!(news["toasts"][0]["title"], "Payment received");
    let seen = news["toasts"][0]["id"].as_u64().expect("toast id");
    let later = invoke("live_status", json!({ "after_toast": seen }));
    assert_eq!(later["toasts"], json!([]), "a toast is handed out once");
}
