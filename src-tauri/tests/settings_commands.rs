//! The Settings commands through Tauri's IPC (mock runtime): secrets into the keychain (a
//! service of each test's own, under `keyctl session -`) and never into SQLite or back to
//! the window; "test connection" against the in-process simulator with a wrong and a right
//! key; the relay URL, the toggles, the mode for the next start, the first-run list, and
//! a database that refuses to be opened in the other mode.

mod common;

use std::sync::Arc;

use coachdesk_app::{AppState, Launch, Mode};
use coachdesk_sim::{SimConfig, Simulator};
use coachdesk_sync::{Keychain, SecretName, SecretSource, SyncConfig};
use serde_json::{json, Value};
use tauri::test::MockRuntime;
use tauri::App;

const STRIPE_KEY: &str = "sk_test_settings_commands_4242";
const CALENDLY_TOKEN: &str = "settings-commands-calendly-token";

struct Harness {
    dir: tempfile::TempDir,
    app: App<MockRuntime>,
    keychain: Keychain,
    _sim: Option<Simulator>,
}

fn unique() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

fn harness(with_sim: bool) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let launch = Launch {
        database_path: dir.path().join("test.sqlite"),
        mode: Mode::Test,
    };
    let keychain = Keychain::new(&format!("coachdesk-settings-test-{}", unique()));
    let mut state = AppState::open(&launch, time::OffsetDateTime::now_utc())
        .expect("open store")
        .with_secrets(Arc::new(keychain.clone()));
    let sim = with_sim.then(|| {
        Simulator::start(SimConfig {
            stripe_api_key: Some(STRIPE_KEY.into()),
            calendly_token: CALENDLY_TOKEN.into(),
            ..SimConfig::default()
        })
        .expect("simulator")
    });
    if let Some(sim) = &sim {
        let mut config = SyncConfig::new(coachdesk_sync::Mode::Test, "");
        config.stripe_base = format!("{}/", sim.base_url());
        config.calendly_base = sim.base_url().to_owned();
        state = state.with_sync_config(config);
    }
    let app = common::mock_app(state);
    Harness {
        dir,
        app,
        keychain,
        _sim: sim,
    }
}

impl Harness {
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        common::invoke(&self.app, cmd, args)
    }

    fn save(&self, name: &str, value: &str) -> Value {
        self.invoke("save_secret", json!({ "name": name, "value": value }))
            .unwrap_or_else(|e| panic!("save {name}: {e}"))
    }

    fn check(&self, service: &str) -> Value {
        self.invoke("test_connection", json!({ "service": service }))
            .expect("test_connection answers")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for name in [
            SecretName::StripeTestKey,
            SecretName::StripeLiveKey,
            SecretName::CalendlyToken,
            SecretName::RelayToken,
        ] {
            let _ = self.keychain.delete(name);
        }
    }
}

fn secret_status<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["secrets"]
        .as_array()
        .and_then(|list| list.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("{name} in {view}"))
}

fn keychain_usable(keychain: &Keychain) {
    keychain
        .store(
            SecretName::RelayToken,
            &coachdesk_sync::Secret::new("probe"),
        )
        .unwrap_or_else(|e| {
            panic!("the keychain is not usable ({e}); run inside `keyctl session - cargo test ...`")
        });
    keychain
        .delete(SecretName::RelayToken)
        .expect("delete probe");
}

#[test]
fn a_saved_secret_goes_to_the_keychain_and_never_to_sqlite_or_the_window() {
    let h = harness(false);
    keychain_usable(&h.keychain);
    let view = h.save("stripe_test_key", &format!("  {STRIPE_KEY}\n"));
    let status = secret_status(&view, "stripe_test_key");
    assert_eq!(status["set"], true);
    assert_eq!(status["last4"], "4242");
    assert!(
        !view.to_string().contains(STRIPE_KEY),
        "the value must never come back to the window: {view}"
    );
    assert_eq!(
        h.keychain.get(SecretName::StripeTestKey).unwrap().expose(),
        STRIPE_KEY,
        "trimmed and stored in the keychain"
    );
    h.save("calendly_token", CALENDLY_TOKEN);
    h.save("relay_token", "relay-token-value-0001");
    let view = h.save("stripe_checkout_key", "rk_test_checkout_value_0001");
    assert_eq!(secret_status(&view, "stripe_checkout_key")["last4"], "0001");
    assert_eq!(
        h.keychain
            .get(SecretName::StripeCheckoutKey)
            .unwrap()
            .expose(),
        "rk_test_checkout_value_0001"
    );

    // Force everything to disk, then look for the values in every file of the database.
    h.invoke(
        "set_feature",
        json!({ "name": "payments", "enabled": true }),
    )
    .expect("a write");
    let mut scanned = 0;
    for entry in std::fs::read_dir(h.dir.path()).expect("read dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read file");
        scanned += bytes.len();
        for value in [
            STRIPE_KEY,
            CALENDLY_TOKEN,
            "relay-token-value-0001",
            "rk_test_checkout_value_0001",
        ] {
            assert!(
                !bytes.windows(value.len()).any(|w| w == value.as_bytes()),
                "{value} found in {}",
                path.display()
            );
        }
    }
    assert!(scanned > 0, "the database files were read");

    let view = h
        .invoke("clear_secret", json!({ "name": "stripe_test_key" }))
        .expect("clear");
    assert_eq!(secret_status(&view, "stripe_test_key")["set"], false);
    assert!(h.keychain.get(SecretName::StripeTestKey).is_err());
}

#[test]
fn a_wrong_looking_key_is_refused_next_to_the_field_and_not_saved() {
    let h = harness(false);
    keychain_usable(&h.keychain);
    let err = h
        .invoke(
            "save_secret",
            json!({ "name": "stripe_test_key", "value": "sk_live_oops" }),
        )
        .expect_err("a live key in the test slot");
    assert_eq!(err["code"], "invalid");
    assert_eq!(err["fields"][0]["field"], "value");
    assert!(
        err["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("live-mode key"),
        "{err}"
    );
    assert!(h.keychain.get(SecretName::StripeTestKey).is_err());
    // The relay's restricted key: a secret key can do anything with the account.
    let err = h
        .invoke(
            "save_secret",
            json!({ "name": "stripe_checkout_key", "value": "sk_test_everything" }),
        )
        .expect_err("a secret key in the restricted key's slot");
    assert_eq!(err["fields"][0]["field"], "value");
    assert!(
        err["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Checkout Sessions: Write"),
        "{err}"
    );
    assert!(h.keychain.get(SecretName::StripeCheckoutKey).is_err());
    let err = h
        .invoke("save_secret", json!({ "name": "smtp", "value": "x" }))
        .expect_err("unknown secret");
    assert_eq!(err["code"], "invalid");
}

#[test]
fn test_connection_says_wrong_key_then_connected_with_the_right_one() {
    let h = harness(true);
    keychain_usable(&h.keychain);

    let unset = h.check("stripe");
    assert_eq!(unset["ok"], false);
    assert!(
        unset["message"]
            .as_str()
            .unwrap()
            .starts_with("No secret key is saved yet"),
        "{unset}"
    );

    h.save("stripe_test_key", "sk_test_not_the_right_one");
    let wrong = h.check("stripe");
    assert_eq!(wrong["ok"], false, "{wrong}");
    let message = wrong["message"].as_str().unwrap();
    assert!(
        message.starts_with("Stripe refused the secret key (HTTP 401)"),
        "{message}"
    );
    assert!(message.contains("Nothing was changed"), "{message}");
    assert!(
        !wrong.to_string().contains("sk_test_not_the_right_one"),
        "the key must not be echoed: {wrong}"
    );

    h.save("stripe_test_key", STRIPE_KEY);
    let right = h.check("stripe");
    assert_eq!(right["ok"], true, "{right}");
    assert_eq!(
        right["message"],
        "Connected to Stripe: the test-mode secret key works."
    );

    h.save("calendly_token", "not-the-token");
    let wrong = h.check("calendly");
    assert!(
        wrong["message"]
            .as_str()
            .unwrap()
            .starts_with("Calendly refused the access token (HTTP 401)"),
        "{wrong}"
    );
    h.save("calendly_token", CALENDLY_TOKEN);
    let right = h.check("calendly");
    assert_eq!(right["ok"], true, "{right}");

    let err = h
        .invoke("test_connection", json!({ "service": "smtp" }))
        .expect_err("unknown service");
    assert_eq!(err["code"], "invalid");
}

fn api_base<'a>(view: &'a Value, service: &str) -> &'a Value {
    view["api_bases"]
        .as_array()
        .and_then(|list| list.iter().find(|b| b["service"] == service))
        .unwrap_or_else(|| panic!("{service} in {view}"))
}

#[test]
fn api_addresses_saved_in_settings_are_used_kept_across_a_restart_and_reset_when_blank() {
    let h = harness(false);
    keychain_usable(&h.keychain);
    let sim = Simulator::start(SimConfig {
        stripe_api_key: Some(STRIPE_KEY.into()),
        calendly_token: CALENDLY_TOKEN.into(),
        ..SimConfig::default()
    })
    .expect("simulator");
    let view = h.invoke("settings", json!({})).expect("settings");
    let stripe = api_base(&view, "stripe");
    assert_eq!(stripe["saved"], Value::Null);
    assert_eq!(stripe["default"], "https://api.stripe.com");
    assert_eq!(stripe["in_force"], "https://api.stripe.com", "{view}");

    // Plain http to another computer would carry the secret key in the clear.
    let err = h
        .invoke(
            "save_api_base",
            json!({ "service": "stripe", "url": "http://stripe-proxy.example.com" }),
        )
        .expect_err("refused");
    assert_eq!(err["fields"][0]["field"], "stripe_api_base", "{err}");

    let base = sim.base_url().trim_end_matches('/').to_owned();
    for service in ["stripe", "calendly"] {
        let view = h
            .invoke(
                "save_api_base",
                json!({ "service": service, "url": format!("{base}/") }),
            )
            .unwrap_or_else(|e| panic!("save {service}: {e}"));
        assert_eq!(
            api_base(&view, service)["in_force"],
            base.as_str(),
            "{view}"
        );
        assert_eq!(api_base(&view, service)["saved"], base.as_str());
    }
    h.save("stripe_test_key", STRIPE_KEY);
    h.save("calendly_token", CALENDLY_TOKEN);
    assert_eq!(
        h.check("stripe")["ok"],
        true,
        "Stripe reached at the saved address"
    );
    assert_eq!(
        h.check("calendly")["ok"],
        true,
        "Calendly reached at the saved address"
    );

    // A new start on the same database uses the saved addresses.
    let launch = Launch {
        database_path: h.dir.path().join("test.sqlite"),
        mode: Mode::Test,
    };
    let again = AppState::open(&launch, time::OffsetDateTime::now_utc())
        .expect("reopen")
        .with_secrets(Arc::new(h.keychain.clone()));
    let restarted = common::mock_app(again);
    let check = common::invoke(
        &restarted,
        "test_connection",
        json!({ "service": "stripe" }),
    )
    .expect("test_connection answers");
    assert_eq!(check["ok"], true, "after a restart: {check}");
    drop(restarted);

    let view = h
        .invoke("save_api_base", json!({ "service": "stripe", "url": "  " }))
        .expect("blank resets");
    assert_eq!(api_base(&view, "stripe")["saved"], Value::Null);
    assert_eq!(
        api_base(&view, "stripe")["in_force"],
        "https://api.stripe.com"
    );
    assert_eq!(api_base(&view, "calendly")["in_force"], base.as_str());
    let err = h
        .invoke("save_api_base", json!({ "service": "smtp", "url": base }))
        .expect_err("unknown service");
    assert_eq!(err["code"], "invalid");
}

#[test]
fn a_relay_nobody_listens_on_reads_as_connection_refused_and_nothing_is_lost() {
    let h = harness(false);
    keychain_usable(&h.keychain);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let view = h
        .invoke(
            "save_relay_url",
            json!({ "url": format!("http://127.0.0.1:{port}/") }),
        )
        .expect("save relay url");
    assert_eq!(view["relay_url"], format!("http://127.0.0.1:{port}"));
    assert_eq!(view["sync_running"], true, "sync restarts with the new URL");
    h.save("relay_token", "relay-token-value-0002");
    let check = h.check("relay");
    assert_eq!(check["ok"], false);
    let message = check["message"].as_str().unwrap();
    assert!(
        message.starts_with("Nothing answers at the relay's address (connection refused)"),
        "{message}"
    );
    assert!(message.contains("Nothing is lost"), "{message}");

    let err = h
        .invoke("save_relay_url", json!({ "url": "relay.example.com" }))
        .expect_err("no scheme");
    assert_eq!(err["fields"][0]["field"], "relay_url");
    let view = h
        .invoke("save_relay_url", json!({ "url": "" }))
        .expect("forget the URL");
    assert_eq!(view["relay_url"], Value::Null);
    assert_eq!(view["sync_running"], false, "no URL, no sync");
}

#[test]
fn first_run_lists_what_is_missing_until_everything_is_set() {
    let h = harness(false);
    keychain_usable(&h.keychain);
    let view = h.invoke("settings", json!({})).expect("settings");
    assert_eq!(view["mode"], "test");
    assert_eq!(
        view["missing"],
        json!([
            "the Stripe secret key (test mode)",
            "the Calendly access token",
            "the relay URL",
            "the relay token"
        ])
    );
    h.save("stripe_test_key", STRIPE_KEY);
    h.save("calendly_token", CALENDLY_TOKEN);
    h.save("relay_token", "relay-token-value-0003");
    let view = h
        .invoke("save_relay_url", json!({ "url": "http://127.0.0.1:9" }))
        .expect("save url");
    assert_eq!(view["missing"], json!([]));
}

#[test]
fn toggles_and_the_next_mode_are_saved() {
    let h = harness(false);
    let view = h
        .invoke(
            "set_feature",
            json!({ "name": "automatic_refunds", "enabled": false }),
        )
        .expect("toggle");
    let toggles = view["features"].as_array().unwrap();
    let enabled = |name: &str| {
        toggles
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| f["enabled"].clone())
    };
    assert_eq!(enabled("automatic_refunds"), Some(json!(false)));
    assert_eq!(enabled("payments"), Some(json!(true)));
    assert_eq!(enabled("webhook_processing"), Some(json!(true)));
    assert!(h
        .invoke(
            "set_feature",
            json!({ "name": "refunds", "enabled": false })
        )
        .is_err());

    assert_eq!(
        h.invoke("settings", json!({})).unwrap()["next_mode"],
        "test"
    );
    let view = h
        .invoke("choose_mode", json!({ "mode": "live" }))
        .expect("choose live");
    assert_eq!(view["mode"], "test", "the running mode does not change");
    assert_eq!(view["next_mode"], "live");
    assert_eq!(
        std::fs::read_to_string(h.dir.path().join("mode"))
            .unwrap()
            .trim(),
        "live"
    );
    assert!(h.invoke("choose_mode", json!({ "mode": "demo" })).is_err());
}

#[test]
fn a_test_database_cannot_be_opened_in_live_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coachdesk.sqlite");
    let now = time::OffsetDateTime::now_utc();
    let test = Launch {
        database_path: path.clone(),
        mode: Mode::Test,
    };
    drop(AppState::open(&test, now).expect("test mode"));
    let live = Launch {
        database_path: path,
        mode: Mode::Live,
    };
    let err = AppState::open(&live, now).err().expect("refused");
    assert!(
        format!("{err:#}").contains("holds test-mode data"),
        "{err:#}"
    );
}

#[test]
fn with_payments_off_no_payment_link_is_created() {
    let h = harness(false);
    let created = h
        .invoke(
            "create_session_type",
            json!({ "draft": {
                "name": "Coaching",
                "duration_minutes": 60,
                "price": "150",
                "currency": "EUR",
                "refund_tiers": [{ "min_hours_before": 24, "percent": 100 }],
                "calendly_event_type_uri": null
            }}),
        )
        .expect("session type");
    h.invoke(
        "set_feature",
        json!({ "name": "payments", "enabled": false }),
    )
    .expect("payments off");
    let err = h
        .invoke("setup_stripe", json!({ "id": created["id"] }))
        .expect_err("no payment link while payments are off");
    assert_eq!(err["code"], "conflict");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("Payments are off in Settings"),
        "{err}"
    );
}
