//! The shell's commands through Tauri's real IPC path (mock runtime, no display): argument
//! names, error shape, and the capability that grants the main window only our commands.

mod common;

use coachdesk_app::Mode;
use common::{invoke_in, Harness};
use serde_json::{json, Value};
use tauri::WebviewWindowBuilder;

fn harness(mode: Mode) -> Harness {
    common::harness("commands.sqlite", mode)
}

fn draft(name: &str, price: &str) -> Value {
    json!({
        "name": name,
        "duration_minutes": 60,
        "price": price,
        "currency": "EUR",
        "refund_tiers": [{ "min_hours_before": 24, "percent": 100 }],
        "calendly_event_type_uri": null
    })
}

#[test]
fn app_info_reports_mode_and_database() {
    let h = harness(Mode::Test);
    let info = h.invoke("app_info", json!({})).expect("app_info");
    assert_eq!(info["mode"], "test");
    assert!(info["database_path"]
        .as_str()
        .is_some_and(|p| p.ends_with("commands.sqlite")));
}

#[test]
fn created_session_type_is_listed_and_can_be_edited_and_archived() {
    let h = harness(Mode::Test);
    let created = h
        .invoke(
            "create_session_type",
            json!({ "draft": draft("Discovery call", "150.00") }),
        )
        .expect("create");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["price_minor"], 15000);

    let listed = h
        .invoke("list_session_types", json!({ "include_archived": false }))
        .expect("list");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    let updated = h
        .invoke(
            "update_session_type",
            json!({ "id": id, "draft": draft("Discovery call (long)", "180") }),
        )
        .expect("update");
    assert_eq!(updated["name"], "Discovery call (long)");

    let archived = h
        .invoke("archive_session_type", json!({ "id": id }))
        .expect("archive");
    assert_eq!(archived["archived"], true);
    let active = h
        .invoke("list_session_types", json!({ "include_archived": false }))
        .expect("list");
    assert_eq!(active.as_array().map(Vec::len), Some(0));
    let all = h
        .invoke("list_session_types", json!({ "include_archived": true }))
        .expect("list all");
    assert_eq!(all.as_array().map(Vec::len), Some(1));
}

#[test]
fn invalid_draft_comes_back_as_field_errors() {
    let h = harness(Mode::Test);
    let error = h
        .invoke(
            "create_session_type",
            json!({ "draft": draft("", "twelve") }),
        )
        .expect_err("an empty name and a non-number price must be refused");
    assert_eq!(error["code"], "invalid", "{error}");
    let fields: Vec<&str> = error["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert!(fields.contains(&"name"), "{error}");
}

#[test]
fn unknown_booking_is_not_found() {
    let h = harness(Mode::Test);
    let error = h
        .invoke("booking_detail", json!({ "id": "no-such-booking" }))
        .expect_err("unknown id");
    assert_eq!(error["code"], "not_found", "{error}");
}

#[test]
fn demo_mode_seeds_bookings_with_a_timeline() {
    let h = harness(Mode::Demo);
    let bookings = h
        .invoke("list_bookings", json!({ "filter": {} }))
        .expect("list bookings");
    let first = bookings
        .as_array()
        .and_then(|b| b.first())
        .expect("demo data has bookings");
    let detail = h
        .invoke("booking_detail", json!({ "id": first["id"] }))
        .expect("detail");
    assert_eq!(detail["summary"]["id"], first["id"]);
}

#[test]
fn a_window_without_the_capability_cannot_call_commands() {
    let h = harness(Mode::Test);
    let other = WebviewWindowBuilder::new(&h.app, "other", Default::default())
        .build()
        .expect("second window");
    let refused = invoke_in(
        &other,
        "list_session_types",
        json!({ "include_archived": false }),
    );
    let error = refused.expect_err("only the main window is granted our commands");
    let message = error.as_str().unwrap_or_default();
    assert!(message.contains("not allowed"), "{error}");
}

/// The one list of commands (`coachdesk_protocol::COMMANDS`) against the other places a
/// command is named: the main window's capability grants exactly these, and each one is
/// registered. A command Tauri refuses (unknown or not granted) answers a plain string; a
/// registered one answers its value or our `CommandError` object.
#[test]
fn every_listed_command_is_granted_and_registered_and_nothing_else_is_granted() {
    let capability: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/capabilities/main.json"
        ))
        .expect("capability file"),
    )
    .expect("capability json");
    let mut granted: Vec<String> = capability["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .map(|p| p.as_str().expect("a permission name").to_owned())
        .collect();
    let mut listed: Vec<String> = coachdesk_protocol::COMMANDS
        .iter()
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .collect();
    granted.sort();
    listed.sort();
    assert_eq!(granted, listed);

    let h = harness(Mode::Test);
    for command in coachdesk_protocol::COMMANDS {
        // An argument no command takes: commands with arguments stop at decoding them.
        let answer = h.invoke(command, json!({ "not_an_argument": true }));
        if let Err(refusal) = &answer {
            assert!(
                !refusal.is_string()
                    || refusal
                        .as_str()
                        .is_some_and(|m| m.contains("missing required key")),
                "{command}: refused by Tauri: {refusal}"
            );
        }
    }
}
