//! The desk commands through Tauri's real IPC path (mock runtime, no display): the paged
//! bookings list, alerts and their thresholds, sending the payment link again, and a
//! reconciliation run (refused in words without sync; a report with sync against the
//! provider simulator).

mod common;

use coachdesk_app::demo_sync::DemoStack;
use coachdesk_app::{AppState, Launch, Mode};
use serde_json::{json, Value};
use tauri::App;

struct Harness {
    _dir: tempfile::TempDir,
    app: App<tauri::test::MockRuntime>,
}

fn open(with: impl FnOnce(&mut AppState)) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let launch = Launch {
        database_path: dir.path().join("data").join("desk.sqlite"),
        mode: Mode::Demo,
    };
    let mut state = AppState::open(&launch, time::OffsetDateTime::now_utc()).expect("open store");
    with(&mut state);
    let app = common::mock_app(state);
    Harness { _dir: dir, app }
}

fn demo() -> Harness {
    open(|_| {})
}

impl Harness {
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        common::invoke(&self.app, cmd, args)
    }

    fn page(&self, filter: Value) -> Value {
        self.invoke("booking_page", json!({ "filter": filter }))
            .expect("booking page")
    }

    fn id_of(&self, client: &str) -> String {
        let page = self.page(json!({ "search": client }));
        page["items"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{client} in the demo: {page}"))
            .to_owned()
    }
}

#[test]
fn booking_page_filters_searches_and_counts() {
    let h = demo();
    let all = h.page(json!({}));
    let total = all["total"].as_u64().expect("total");
    assert!(total >= 6, "{all}");
    assert_eq!(all["items"].as_array().map(Vec::len), Some(total as usize));

    let one = h.page(json!({ "limit": 2, "offset": 1 }));
    assert_eq!(one["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(one["offset"], 1);
    assert_eq!(one["total"], total);

    let by_pi = h.page(json!({ "search": "pi_demo_dana" }));
    assert_eq!(by_pi["total"], 1, "{by_pi}");
    assert_eq!(by_pi["items"][0]["client_name"], "Dana Client");
    let by_cs = h.page(json!({ "search": "cs_demo_ray" }));
    assert_eq!(by_cs["items"][0]["client_name"], "Ray Chen");
    let by_email = h.page(json!({ "search": "ALEX@example.com" }));
    assert_eq!(by_email["items"][0]["state"], "awaiting_payment");

    let confirmed = h.page(json!({ "state": "confirmed" }));
    assert!(confirmed["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|b| b["state"] == "confirmed"));

    let bad = h
        .invoke("booking_page", json!({ "filter": { "from": "next week" } }))
        .expect_err("a date that is not one");
    assert_eq!(bad["code"], "invalid");
    assert_eq!(bad["fields"][0]["field"], "from");
    assert!(bad["fields"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("2026-03-31"));
}

#[test]
fn alert_thresholds_default_to_the_plan_and_the_coach_can_change_them() {
    let h = demo();
    let report = h
        .invoke("dashboard_alerts", json!({ "days": 30 }))
        .expect("alerts");
    assert_eq!(report["thresholds"]["webhook_failure_warn"], 5.0);
    assert_eq!(report["thresholds"]["webhook_failure_critical"], 10.0);
    assert_eq!(report["thresholds"]["payment_failure_warn"], 5.0);
    assert_eq!(report["thresholds"]["payment_failure_critical"], 15.0);
    assert_eq!(report["days"], 30);

    let mine = json!({
        "webhook_failure_warn": 1.0, "webhook_failure_critical": 3.0,
        "payment_failure_warn": 2.0, "payment_failure_critical": 4.0,
    });
    h.invoke("set_alert_thresholds", json!({ "thresholds": mine }))
        .expect("saved");
    let report = h
        .invoke("dashboard_alerts", json!({ "days": 7 }))
        .expect("alerts");
    assert_eq!(report["thresholds"], mine);

    let refused = h
        .invoke(
            "set_alert_thresholds",
            json!({ "thresholds": {
                "webhook_failure_warn": 20.0, "webhook_failure_critical": 10.0,
                "payment_failure_warn": 2.0, "payment_failure_critical": 400.0,
            } }),
        )
        .expect_err("upside down and out of range");
    assert_eq!(refused["code"], "invalid");
    let fields: Vec<&str> = refused["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(fields, ["payment_failure_critical"]);
}

#[test]
fn sending_the_payment_link_again_is_audited_and_refused_when_paid() {
    let h = demo();
    let alex = h.id_of("alex@example.com");
    let args = json!({
        "booking_id": alex, "action_id": "resend-1", "action": { "action": "resend_payment_link" }
    });
    let detail = h.invoke("coach_action", args.clone()).expect("sent");
    let audited = |d: &Value| {
        d["audit"]
            .as_array()
            .expect("audit")
            .iter()
            .filter(|a| {
                a["summary"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("payment link to the client again")
            })
            .count()
    };
    assert_eq!(audited(&detail), 1);
    // The same click again is the same action.
    let again = h.invoke("coach_action", args).expect("same click");
    assert_eq!(audited(&again), 1);

    let dana = h.id_of("dana@example.com");
    let refused = h
        .invoke(
            "coach_action",
            json!({ "booking_id": dana, "action_id": "r", "action": { "action": "resend_payment_link" } }),
        )
        .expect_err("paid");
    assert_eq!(refused["code"], "rejected");
    assert_eq!(
        refused["message"],
        "This booking is already paid, so there is no payment link to send."
    );
}

#[test]
fn reconciliation_without_sync_says_so_in_words() {
    let h = demo();
    let refused = h
        .invoke("run_reconciliation", json!({}))
        .expect_err("no sync");
    assert_eq!(refused["code"], "conflict");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Sync is not running"), "{message}");
    assert!(message.contains("relay"), "{message}");
}

#[test]
fn a_new_sealing_key_without_sync_says_so_in_words() {
    let h = demo();
    let refused = h
        .invoke("rotate_relay_sealing_key", json!({}))
        .expect_err("no sync");
    assert_eq!(refused["code"], "conflict");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Sync is not running"), "{message}");
}

#[test]
fn reconciliation_with_sync_reports_what_it_recovered() {
    let sim = coachdesk_sim::Simulator::start(coachdesk_sim::SimConfig::default()).expect("sim");
    // A booking the app never heard of: the relay below is down, so only reconciliation
    // can find it.
    let booked = sim
        .client()
        .book("coaching-60", "Rene Recovered", "rene@example.com")
        .expect("booked at the simulator");
    let dead_relay = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    let stack = DemoStack {
        sim_url: sim.base_url().to_owned(),
        relay_url: dead_relay,
        relay_token: "token".into(),
    };
    let h = open(|state| state.start_demo_sync(&stack).expect("sync starts"));
    let report = h
        .invoke("run_reconciliation", json!({}))
        .expect("reconciled");
    assert!(report["finished_at"].as_str().is_some(), "{report}");
    assert!(
        report["calendly_invitees_checked"].as_u64() >= Some(1),
        "{report}"
    );
    let recovered = report["calendly_facts_recovered"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(Value::as_str)
        .any(|fact| fact.contains(&booked.invitee_uri));
    assert!(recovered, "{report}");
    let found = h.page(json!({ "search": booked.invitee_uri }));
    assert_eq!(found["total"], 1, "{found}");
}
