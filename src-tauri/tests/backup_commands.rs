//! The backup commands through Tauri's real IPC path (mock runtime, no display; paths are
//! given, so no file dialog opens): back up, change, restore, and a file that is not a
//! backup refused in words with nothing changed.

mod common;

use coachdesk_app::{AppState, Launch, Mode};
use serde_json::{json, Value};

fn names(app: &tauri::App<tauri::test::MockRuntime>) -> Vec<String> {
    let listed = common::invoke(
        app,
        "list_session_types",
        json!({ "include_archived": true }),
    )
    .expect("list");
    listed
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_owned())
        .collect()
}

fn create(app: &tauri::App<tauri::test::MockRuntime>, name: &str) {
    common::invoke(
        app,
        "create_session_type",
        json!({ "draft": {
            "name": name, "duration_minutes": 60, "price": "150.00", "currency": "EUR",
            "refund_tiers": [{ "min_hours_before": 0, "percent": 100 }]
        }}),
    )
    .expect("create");
}

#[test]
fn a_backup_restores_what_it_held_and_keeps_the_database_it_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let launch = Launch {
        database_path: dir.path().join("data").join("coachdesk.sqlite"),
        mode: Mode::Test,
    };
    let state = AppState::open(&launch, time::OffsetDateTime::now_utc()).expect("open store");
    let backups_dir = state.backups_dir();
    let app = common::mock_app(state);
    create(&app, "Discovery call");

    let target = dir.path().join("usb-stick.db");
    let done = common::invoke(
        &app,
        "backup_database",
        json!({ "request": { "path": target.display().to_string() } }),
    )
    .expect("backup");
    assert_eq!(done["path"], Value::from(target.display().to_string()));
    assert_eq!(done["bookings"], 0);
    assert!(done["kept_aside"].is_null());

    create(&app, "Made after the backup");
    assert_eq!(names(&app).len(), 2);

    let restored = common::invoke(
        &app,
        "restore_database",
        json!({ "request": { "path": target.display().to_string() } }),
    )
    .expect("restore");
    assert_eq!(names(&app), vec!["Discovery call".to_owned()]);
    let aside = restored["kept_aside"].as_str().expect("kept aside");
    assert!(
        aside.contains("coachdesk.before-restore-"),
        "{aside} next to the database"
    );
    let kept = coachdesk_store::Store::open(std::path::Path::new(aside)).expect("aside opens");
    assert_eq!(kept.list_session_types(true).expect("list").len(), 2);

    let view = common::invoke(&app, "list_backups", json!({})).expect("list backups");
    assert_eq!(
        view["folder"],
        Value::from(backups_dir.display().to_string())
    );
    assert_eq!(view["keep_days"], 14);
}

#[test]
fn a_file_that_is_not_a_backup_is_refused_in_words_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let launch = Launch {
        database_path: dir.path().join("coachdesk.sqlite"),
        mode: Mode::Test,
    };
    let app = common::mock_app(
        AppState::open(&launch, time::OffsetDateTime::now_utc()).expect("open store"),
    );
    create(&app, "Kept");
    let photo = dir.path().join("photo.db");
    std::fs::write(&photo, b"\xff\xd8\xff\xe0 a photo, not a database").expect("write");
    let err = common::invoke(
        &app,
        "restore_database",
        json!({ "request": { "path": photo.display().to_string() } }),
    )
    .expect_err("refused");
    assert_eq!(err["code"], "invalid");
    let message = err["message"].as_str().expect("message");
    assert!(message.contains("is not a Coachdesk database"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(names(&app), vec!["Kept".to_owned()]);

    let nowhere = dir.path().join("no-such-folder").join("copy.db");
    let err = common::invoke(
        &app,
        "backup_database",
        json!({ "request": { "path": nowhere.display().to_string() } }),
    )
    .expect_err("no folder");
    assert_eq!(err["code"], "storage");
}
