//! The booking-action, dashboard and admin commands through Tauri's real IPC path (mock
//! runtime, no display), on the demo data: argument names, answers and error shape.

mod common;

use coachdesk_app::{AppState, Mode};
use serde_json::{json, Value};
use tauri::Manager;

use common::Harness;

fn demo() -> Harness {
    common::harness("data/commands.sqlite", Mode::Demo)
}

impl Harness {
    fn booking_of(&self, client: &str) -> Value {
        let list = self
            .invoke("list_bookings", json!({ "filter": {} }))
            .expect("list bookings");
        list.as_array()
            .and_then(|all| all.iter().find(|b| b["client_name"] == client))
            .cloned()
            .unwrap_or_else(|| panic!("the demo data has {client}: {list}"))
    }
}

#[test]
fn refund_preview_states_the_policy_refund_in_money() {
    let h = demo();
    let dana = h.booking_of("Dana Client");
    let preview = h
        .invoke("refund_preview", json!({ "booking_id": dana["id"] }))
        .expect("preview");
    assert_eq!(preview["paid_minor"], 15000, "{preview}");
    assert_eq!(preview["currency"], "EUR", "{preview}");
    let sentence = preview["sentence"].as_str().unwrap_or_default();
    assert!(sentence.contains("EUR"), "{preview}");
}

#[test]
fn cancel_with_the_policy_refund_is_one_action_even_when_sent_twice() {
    let h = demo();
    let dana = h.booking_of("Dana Client");
    let args = json!({
        "booking_id": dana["id"],
        "action_id": "act-test-1",
        "action": { "action": "cancel", "refund": { "kind": "policy" }, "reason": "Coach is ill" }
    });
    let first = h.invoke("coach_action", args.clone()).expect("cancel");
    assert_eq!(first["summary"]["state"], "refund_pending", "{first}");
    let refunded = first["summary"]["refunded_minor"].as_i64().unwrap_or(0);
    assert!(refunded > 0, "{first}");
    let again = h
        .invoke("coach_action", args)
        .expect("the same click again");
    assert_eq!(
        again["summary"]["refunded_minor"],
        json!(refunded),
        "{again}"
    );
    assert_eq!(
        again["audit"].as_array().map(Vec::len),
        first["audit"].as_array().map(Vec::len)
    );
}

#[test]
fn coach_action_on_an_unknown_booking_is_not_found() {
    let h = demo();
    let error = h
        .invoke(
            "coach_action",
            json!({ "booking_id": "nope", "action_id": "a1", "action": { "action": "mark_no_show" } }),
        )
        .expect_err("unknown booking");
    assert_eq!(error["code"], "not_found", "{error}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{error}"
    );
}

#[test]
fn correcting_to_an_unknown_state_is_refused_on_the_field() {
    let h = demo();
    let dana = h.booking_of("Dana Client");
    let error = h
        .invoke(
            "coach_action",
            json!({
                "booking_id": dana["id"], "action_id": "a2",
                "action": { "action": "correct", "state": "on_the_moon", "reason": "typo" }
            }),
        )
        .expect_err("no such state");
    assert_eq!(error["code"], "invalid", "{error}");
}

#[test]
fn attention_items_and_metrics_answer_lists() {
    let h = demo();
    let items = h.invoke("attention_items", json!({})).expect("attention");
    assert!(items.is_array(), "{items}");
    let metrics = h
        .invoke("business_metrics", json!({ "days": 30 }))
        .expect("metrics");
    let eur = metrics
        .as_array()
        .and_then(|m| m.iter().find(|m| m["currency"] == "EUR"))
        .cloned()
        .unwrap_or_else(|| panic!("EUR metrics: {metrics}"));
    assert!(eur["bookings"].as_i64().unwrap_or(0) > 0, "{eur}");
    assert!(eur["days"].is_array(), "{eur}");
}

#[test]
fn webhook_log_filters_shows_the_payload_and_replays() {
    let h = demo();
    let stripe = h
        .invoke("list_inbox", json!({ "filter": { "provider": "stripe" } }))
        .expect("list inbox");
    let stripe = stripe.as_array().cloned().unwrap_or_default();
    assert!(!stripe.is_empty(), "the demo data has Stripe events");
    assert!(stripe.iter().all(|e| e["provider"] == "stripe"));
    let id = stripe[0]["id"].clone();
    let payload = h
        .invoke("inbox_payload", json!({ "id": id }))
        .expect("payload");
    assert!(
        payload["body"].as_str().is_some_and(|b| b.contains('{')),
        "{payload}"
    );
    let replayed = h
        .invoke("replay_inbox", json!({ "id": id }))
        .expect("replay");
    assert_eq!(replayed["id"], id, "{replayed}");
    let missing = h
        .invoke("inbox_payload", json!({ "id": 987654 }))
        .expect_err("unknown id");
    assert_eq!(missing["code"], "not_found", "{missing}");
}

#[test]
fn csv_export_is_written_next_to_the_database() {
    let h = demo();
    for what in ["bookings", "payments", "refunds"] {
        let export = h
            .invoke("export_csv", json!({ "what": what }))
            .expect("export");
        let path = std::path::PathBuf::from(export["path"].as_str().expect("path"));
        assert!(
            path.starts_with(h.dir.path().join("data").join("exports")),
            "{export}"
        );
        let written = std::fs::read_to_string(&path).expect("the file exists");
        assert_eq!(export["csv"].as_str(), Some(written.as_str()));
        assert!(written.lines().count() >= 1, "{what}: a header at least");
    }
    let error = h
        .invoke("export_csv", json!({ "what": "everything" }))
        .expect_err("unknown export");
    assert_eq!(error["code"], "invalid", "{error}");
}

#[test]
fn dismissing_a_flag_clears_it_from_the_attention_list() {
    let h = demo();
    let items = h.invoke("attention_items", json!({})).expect("attention");
    let item = items
        .as_array()
        .and_then(|all| all.first())
        .cloned()
        .unwrap_or_else(|| panic!("the demo data has a flagged booking: {items}"));
    for code in item["codes"].as_array().cloned().unwrap_or_default() {
        h.invoke(
            "coach_action",
            json!({
                "booking_id": item["booking_id"], "action_id": format!("dismiss-{code}"),
                "action": { "action": "dismiss", "code": code }
            }),
        )
        .expect("dismiss");
    }
    let after = h.invoke("attention_items", json!({})).expect("attention");
    let still = after
        .as_array()
        .map(|all| all.iter().any(|i| i["booking_id"] == item["booking_id"]));
    assert_eq!(still, Some(false), "{after}");
}

#[test]
fn sync_status_is_null_until_a_relay_is_configured() {
    let h = demo();
    let status = h.invoke("sync_status", json!({})).expect("sync status");
    assert!(status.is_null(), "{status}");
    h.app
        .state::<AppState>()
        .start_sync("http://127.0.0.1:9")
        .expect("start the engine");
    let status = h.invoke("sync_status", json!({})).expect("sync status");
    assert_eq!(status["relay_url"], "http://127.0.0.1:9", "{status}");
    assert!(status["connected"].is_boolean(), "{status}");
}

#[test]
fn a_partial_refund_is_recorded_and_too_much_is_refused_in_words() {
    let h = demo();
    let dana = h.booking_of("Dana Client");
    let refund = |action_id: &str, amount_minor: i64| {
        h.invoke(
            "coach_action",
            json!({
                "booking_id": dana["id"], "action_id": action_id,
                "action": { "action": "refund", "amount_minor": amount_minor, "reason": "Goodwill" }
            }),
        )
    };
    let too_much = refund("r-too-much", 999_999).expect_err("more than was paid");
    assert!(
        too_much["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{too_much}"
    );
    let detail = refund("r-part", 2000).expect("a part refund");
    assert_eq!(detail["summary"]["refunded_minor"], 2000, "{detail}");
}
