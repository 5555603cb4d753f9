//! The set-up commands through Tauri's IPC (mock runtime) against the in-process
//! simulator, with the real keychain (run under `keyctl session -`) and, for the webhook
//! subscription, the real relay binary (`cargo build -p coachdesk-relay`).
//!
//! The app reads its provider bases from `COACHDESK_STRIPE_API_BASE` /
//! `COACHDESK_CALENDLY_API_BASE` and its secrets from the keychain's `coachdesk` service,
//! both process-wide: the tests share one simulator and run one at a time.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use coachdesk_app::{AppState, Launch, Mode};
use coachdesk_sim::{EventTypeConfig, SimClient, SimConfig, Simulator};
use coachdesk_sync::{Keychain, Secret, SecretName, SecretSource};
use serde_json::{json, Value};
use tauri::test::MockRuntime;
use tauri::{App, Manager};

const STRIPE_KEY: &str = "sk_test_setup_commands";
const CALENDLY_TOKEN: &str = "setup-commands-calendly-token";
/// More than one page of Calendly's `count=100`.
const EVENT_TYPES: usize = 103;

struct Shared {
    sim: Simulator,
}

/// The simulator, the environment pointing the app at it, and the lock serialising tests.
fn shared() -> (&'static Shared, MutexGuard<'static, ()>) {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let shared = SHARED.get_or_init(|| {
        // Built from JSON so the test does not depend on every optional field.
        let event_type = |slug: &str, name: &str, minutes: i64| -> EventTypeConfig {
            serde_json::from_value(json!({"slug": slug, "name": name, "duration_minutes": minutes}))
                .expect("event type config")
        };
        let mut event_types: Vec<EventTypeConfig> = (0..EVENT_TYPES)
            .map(|i| event_type(&format!("type-{i:03}"), &format!("Event type {i:03}"), 30))
            .collect();
        event_types[0] = event_type("coaching-60", "Coaching session (60 min)", 60);
        let sim = Simulator::start(SimConfig {
            calendly_token: CALENDLY_TOKEN.into(),
            event_types,
            ..SimConfig::default()
        })
        .expect("simulator");
        std::env::set_var("COACHDESK_STRIPE_API_BASE", format!("{}/", sim.base_url()));
        std::env::set_var("COACHDESK_CALENDLY_API_BASE", sim.base_url());
        Shared { sim }
    });
    (shared, guard)
}

fn keychain() -> Keychain {
    Keychain::default()
}

fn set_secret(name: SecretName, value: &str) {
    keychain()
        .set(name, &Secret::new(value))
        .unwrap_or_else(|e| {
            panic!("the keychain is not usable ({e}); run inside `keyctl session - cargo test ...`")
        });
}

struct Harness {
    _dir: tempfile::TempDir,
    app: App<MockRuntime>,
    client: SimClient,
}

fn harness(shared: &Shared) -> Harness {
    set_secret(SecretName::StripeTestKey, STRIPE_KEY);
    set_secret(SecretName::CalendlyToken, CALENDLY_TOKEN);
    let dir = tempfile::tempdir().expect("temp dir");
    let launch = Launch {
        database_path: dir.path().join("setup.sqlite"),
        mode: Mode::Test,
    };
    let state = AppState::open(&launch, time::OffsetDateTime::now_utc()).expect("open store");
    let app = common::mock_app(state);
    let mut client = shared.sim.client();
    client.calendly_token = CALENDLY_TOKEN.into();
    Harness {
        _dir: dir,
        app,
        client,
    }
}

impl Harness {
    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        common::invoke(&self.app, cmd, args)
    }

    fn session_type(&self, name: &str, price: &str) -> String {
        let created = self
            .invoke(
                "create_session_type",
                json!({ "draft": {
                    "name": name,
                    "duration_minutes": 60,
                    "price": price,
                    "currency": "EUR",
                    "refund_tiers": [
                        { "min_hours_before": 48, "percent": 100 },
                        { "min_hours_before": 24, "percent": 50 }
                    ],
                    "calendly_event_type_uri": null
                }}),
            )
            .expect("create session type");
        created["id"].as_str().expect("id").to_owned()
    }

    /// The simulator's Stripe requests whose Idempotency-Key belongs to session type `id`.
    fn stripe_posts(&self, id: &str) -> Vec<coachdesk_sim::RequestRecord> {
        self.client
            .requests(Some("POST"), Some("/v1/"))
            .expect("requests")
            .into_iter()
            .filter(|r| {
                r.idempotency_key
                    .as_deref()
                    .is_some_and(|k| k.starts_with(&format!("coachdesk-{id}-")))
            })
            .collect()
    }
}

#[test]
fn stripe_setup_makes_one_product_price_and_link_however_often_it_is_asked() {
    let (shared, _serial) = shared();
    let h = harness(shared);
    let id = h.session_type("Deep dive", "150.00");

    let first = h
        .invoke("setup_stripe", json!({ "id": id }))
        .expect("set up");
    assert_eq!(first["status"], "ready");
    assert_eq!(first["already_set_up"], false);
    let url = first["payment_link_url"].as_str().expect("url").to_owned();
    assert!(url.starts_with(shared.sim.base_url()), "{url}");

    let second = h
        .invoke("setup_stripe", json!({ "id": id }))
        .expect("set up again");
    assert_eq!(second["payment_link_id"], first["payment_link_id"]);
    assert_eq!(second["already_set_up"], true);

    let posts = h.stripe_posts(&id);
    let created: Vec<&str> = posts
        .iter()
        .filter(|r| !r.replayed)
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        created,
        ["/v1/products", "/v1/prices", "/v1/payment_links"],
        "exactly one of each"
    );
    let listed = h
        .invoke("list_session_types", json!({ "include_archived": false }))
        .expect("list");
    assert_eq!(listed[0]["stripe_status"], "ready");
    assert_eq!(listed[0]["payment_link_url"], url);

    // A new price makes the set-up outdated; setting up again makes a new price and link
    // under the new version's keys, once.
    h.invoke(
        "update_session_type",
        json!({ "id": id, "draft": {
            "name": "Deep dive", "duration_minutes": 60, "price": "180.00", "currency": "EUR",
            "refund_tiers": [{ "min_hours_before": 24, "percent": 100 }]
        }}),
    )
    .expect("new price");
    let listed = h
        .invoke("list_session_types", json!({ "include_archived": false }))
        .expect("list");
    assert_eq!(listed[0]["stripe_status"], "outdated");
    let renewed = h
        .invoke("setup_stripe", json!({ "id": id }))
        .expect("set up v2");
    assert_ne!(renewed["payment_link_id"], first["payment_link_id"]);
    let v2: Vec<_> = h
        .stripe_posts(&id)
        .into_iter()
        .filter(|r| {
            r.idempotency_key
                .as_deref()
                .is_some_and(|k| k.contains("-v2-"))
        })
        .collect();
    assert_eq!(v2.len(), 3);
    assert!(v2[1].body.contains("unit_amount=18000"), "{}", v2[1].body);
}

#[test]
fn a_retry_after_a_failure_half_way_makes_nothing_twice() {
    let (shared, _serial) = shared();
    let h = harness(shared);
    let id = h.session_type("Half way", "90.00");
    h.client
        .inject_fault(&coachdesk_sim::Fault {
            path_prefix: "/v1/payment_links".into(),
            method: Some("POST".into()),
            kind: coachdesk_sim::FaultKind::ServerError,
            remaining: 1,
        })
        .expect("fault");
    let error = h
        .invoke("setup_stripe", json!({ "id": id }))
        .expect_err("the link failed");
    assert_eq!(error["code"], "unavailable", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("try again")),
        "{error}"
    );
    let listed = h
        .invoke("list_session_types", json!({ "include_archived": false }))
        .expect("list");
    assert_eq!(listed[0]["stripe_status"], "not_set_up");

    h.invoke("setup_stripe", json!({ "id": id }))
        .expect("the retry succeeds");
    let posts = h.stripe_posts(&id);
    let made: Vec<&str> = posts
        .iter()
        .filter(|r| !r.replayed && (200..300).contains(&r.status))
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(made, ["/v1/products", "/v1/prices", "/v1/payment_links"]);
}

#[test]
fn a_missing_stripe_key_is_explained() {
    let (shared, _serial) = shared();
    let h = harness(shared);
    let id = h.session_type("No key", "50.00");
    keychain()
        .delete(SecretName::StripeTestKey)
        .expect("delete key");
    let error = h
        .invoke("setup_stripe", json!({ "id": id }))
        .expect_err("no key");
    set_secret(SecretName::StripeTestKey, STRIPE_KEY);
    assert_eq!(error["code"], "not_configured", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Enter your Stripe key in Settings")),
        "{error}"
    );
    assert!(h.stripe_posts(&id).is_empty());
}

#[test]
fn event_types_are_listed_from_every_page_and_links_saved() {
    let (shared, _serial) = shared();
    let h = harness(shared);
    let id = h.session_type("Coaching", "150.00");
    let rows = h
        .invoke("list_calendly_event_types", json!({}))
        .expect("event types");
    let rows = rows.as_array().expect("list");
    assert_eq!(rows.len(), EVENT_TYPES, "both pages are read");
    let uri = rows[0]["uri"].as_str().expect("uri").to_owned();
    assert_eq!(rows[0]["name"], "Coaching session (60 min)");
    assert_eq!(rows[0]["duration_minutes"], 60);
    assert!(rows.iter().all(|r| r["session_type_id"].is_null()));

    h.invoke(
        "map_event_type",
        json!({ "link": { "event_type_uri": uri, "event_type_name": "Coaching session (60 min)", "session_type_id": id } }),
    )
    .expect("link");
    let rows = h
        .invoke("list_calendly_event_types", json!({}))
        .expect("event types");
    assert_eq!(rows[0]["session_type_id"], id.as_str());
    assert_eq!(rows[0]["session_type_name"], "Coaching");
    let listed = h
        .invoke("list_session_types", json!({ "include_archived": false }))
        .expect("list");
    assert_eq!(listed[0]["event_type_uris"], json!([uri]));

    h.invoke(
        "map_event_type",
        json!({ "link": { "event_type_uri": uri, "session_type_id": null } }),
    )
    .expect("unlink");
    let rows = h
        .invoke("list_calendly_event_types", json!({}))
        .expect("event types");
    assert!(rows[0]["session_type_id"].is_null());
}

#[test]
fn a_wrong_calendly_token_is_explained() {
    let (shared, _serial) = shared();
    let h = harness(shared);
    set_secret(SecretName::CalendlyToken, "not-the-token");
    let error = h
        .invoke("list_calendly_event_types", json!({}))
        .expect_err("wrong token");
    set_secret(SecretName::CalendlyToken, CALENDLY_TOKEN);
    assert_eq!(error["code"], "refused", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("Check it in Settings")),
        "{error}"
    );
}

/// The relay binary beside this test's target dir, or `COACHDESK_RELAY_BIN`.
fn relay_bin() -> PathBuf {
    coachdesk_waiting::workspace_binary("coachdesk-relay", "COACHDESK_RELAY_BIN")
}

/// The real relay, configured with no Calendly signing key: it accepts Calendly's
/// deliveries only once the app has handed it the key of its subscription.
struct Relay {
    child: Child,
    url: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Relay {
    fn start() -> Relay {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("relay.db");
        let cmd = |args: &[&str]| {
            let mut c = Command::new(relay_bin());
            c.env("COACHDESK_RELAY_DB", &db)
                .env("COACHDESK_RELAY_LISTEN", "127.0.0.1:0")
                .env("COACHDESK_RELAY_STRIPE_SECRETS", "whsec_setup_commands")
                // The simulator's payment links are plain http on loopback.
                .env("COACHDESK_RELAY_PAYMENT_LINK_HOSTS", "http://127.0.0.1")
                .env("COACHDESK_RELAY_LOG", "warn")
                .args(args);
            c
        };
        let out = cmd(&["token", "create", "--name", "app", "--mode", "test"])
            .output()
            .expect("token create");
        assert!(out.status.success(), "token create: {out:?}");
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let (child, addr) = coachdesk_waiting::spawn_listening(
            cmd(&["serve"]).stderr(Stdio::inherit()),
            Duration::from_secs(30),
        );
        Relay {
            child,
            url: format!("http://{addr}"),
            token,
            _dir: dir,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_webhook_is_registered_with_the_relay_and_bookings_take_the_mapped_terms() {
    let (shared, _serial) = shared();
    let h = harness(shared);

    let error = h
        .invoke("calendly_subscription", json!({}))
        .expect_err("no relay configured yet");
    assert_eq!(error["code"], "not_configured", "{error}");

    let relay = Relay::start();
    // No signing key yet: registering makes one.
    let _ = keychain().delete(SecretName::CalendlySigningKey);
    set_secret(SecretName::RelayToken, "not-the-relay-token");
    h.app
        .state::<AppState>()
        .start_sync(&relay.url)
        .expect("sync");
    let callback = format!("{}/hooks/calendly", relay.url);
    let subscriptions_to_this_relay = || {
        h.client
            .requests(Some("POST"), Some("/webhook_subscriptions"))
            .expect("requests")
            .iter()
            .filter(|r| r.body.contains(&relay.url))
            .count()
    };

    // The relay refuses the key: nothing is registered with Calendly, which would
    // otherwise sign deliveries the relay rejects.
    let refused = h
        .invoke("register_calendly_webhook", json!({}))
        .expect_err("the relay refuses the token");
    assert_eq!(refused["code"], "relay", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("nothing was registered with Calendly")),
        "{refused}"
    );
    assert_eq!(subscriptions_to_this_relay(), 0);
    set_secret(SecretName::RelayToken, &relay.token);

    let before = h.invoke("calendly_subscription", json!({})).expect("state");
    assert_eq!(before["state"], "missing");
    assert_eq!(before["callback_url"], callback.as_str());

    let registered = h
        .invoke("register_calendly_webhook", json!({}))
        .expect("register");
    assert_eq!(registered["state"], "active", "{registered}");
    let posts: Vec<Value> = h
        .client
        .requests(Some("POST"), Some("/webhook_subscriptions"))
        .expect("requests")
        .iter()
        .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
        .filter(|b| b["url"] == callback.as_str())
        .collect();
    assert_eq!(posts.len(), 1, "one subscription for this relay");
    let made = keychain()
        .get(SecretName::CalendlySigningKey)
        .expect("the key made for the subscription");
    assert_eq!(posts[0]["signing_key"], made.expose());
    assert!(
        registered["message"]
            .as_str()
            .is_some_and(|m| m.contains("The relay has the subscription's signing key")),
        "{registered}"
    );
    let events: Vec<&str> = posts[0]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        events,
        [
            "invitee.created",
            "invitee.canceled",
            "invitee_no_show.created"
        ]
    );

    // Registering again keeps the one active subscription.
    h.invoke("register_calendly_webhook", json!({}))
        .expect("register again");
    assert_eq!(subscriptions_to_this_relay(), 1);

    // Calendly disables it: the state says so, and registering renews it.
    let uri = registered["uri"].as_str().expect("uri");
    let uuid = uri.rsplit('/').next().expect("uuid");
    h.client.disable_subscription(uuid).expect("disable");
    let disabled = h.invoke("calendly_subscription", json!({})).expect("state");
    assert_eq!(disabled["state"], "disabled");
    let renewed = h
        .invoke("register_calendly_webhook", json!({}))
        .expect("renew");
    assert_eq!(renewed["state"], "active");
    assert_ne!(renewed["uri"], registered["uri"]);

    // A booking of the linked event type arrives through the relay (which verified
    // Calendly's delivery with the key the app handed it) with the session type's terms.
    let id = h.session_type("Coaching", "150.00");
    let rows = h
        .invoke("list_calendly_event_types", json!({}))
        .expect("event types");
    let uri = rows[0]["uri"].as_str().expect("uri");
    // As the mapping screen sends it: with the event type's scheduling page.
    let scheduling_url = rows[0]["scheduling_url"].as_str().expect("scheduling page");
    assert_eq!(scheduling_url, "https://calendly.com/coach/coaching-60");
    h.invoke(
        "map_event_type",
        json!({ "link": { "event_type_uri": uri, "session_type_id": id,
                          "scheduling_url": scheduling_url } }),
    )
    .expect("link");

    // Its payment link is handed to the relay: `/pay/{slug}` redirects there.
    let setup = h
        .invoke("setup_stripe", json!({ "id": id }))
        .expect("set up");
    assert!(
        setup["relay_note"]
            .as_str()
            .is_some_and(|n| n.contains("/pay/")),
        "{setup}"
    );
    let redirect = coachdesk_sim::http::request(
        "GET",
        &format!("{}/pay/coaching?invitee_uuid=abc-123", relay.url),
        &[],
        b"",
        Duration::from_secs(5),
    )
    .expect("pay redirect");
    assert_eq!(redirect.status, 302, "{}", redirect.text());
    let location = redirect.header("Location").expect("location");
    let link = setup["payment_link_url"].as_str().expect("url");
    assert!(location.starts_with(link), "{location} should go to {link}");

    let booking = h
        .client
        .book("coaching-60", "Ada Client", "ada@example.com")
        .expect("book");
    let found = coachdesk_waiting::eventually(
        "the booking arriving through the relay",
        Duration::from_secs(20),
        || {
            let list = h
                .invoke(
                    "list_bookings",
                    json!({ "filter": { "search": booking.email } }),
                )
                .expect("bookings");
            list.as_array()
                .and_then(|l| l.first())
                .cloned()
                .ok_or("no booking")
        },
    );
    assert_eq!(found["session_type_name"], "Coaching");
    assert_eq!(found["state"], "awaiting_payment");

    // The client cancels in Calendly: the relay's `/pay` for the booking says so and
    // offers the event type's scheduling page to book again.
    h.client
        .cancel_as_invitee(&booking.invitee_uuid, "cannot come")
        .expect("cancel");
    let pay = format!(
        "{}/pay/coaching?invitee_uuid={}",
        relay.url, booking.invitee_uuid
    );
    let page = coachdesk_waiting::eventually(
        "the relay learning of the cancellation",
        Duration::from_secs(20),
        || {
            let r = coachdesk_sim::http::request("GET", &pay, &[], b"", Duration::from_secs(5))
                .expect("pay page");
            if r.status == 410 {
                Ok(r.text())
            } else {
                Err((r.status, r.text()))
            }
        },
    );
    assert!(page.contains("This booking was cancelled"), "{page}");
    assert!(
        page.contains(&format!("href=\"{scheduling_url}\"")),
        "{page}"
    );
}

#[test]
fn the_refund_policy_preview_states_the_money() {
    let (shared, _serial) = shared();
    let h = harness(shared);
    let preview = h
        .invoke(
            "preview_refund_policy",
            json!({ "request": {
                "price": "150.00", "currency": "EUR", "hours_before": 30,
                "refund_tiers": [
                    { "min_hours_before": 48, "percent": 100 },
                    { "min_hours_before": 24, "percent": 50 }
                ]
            }}),
        )
        .expect("preview");
    assert_eq!(
        preview["sentence"],
        "Cancelled 30 h before: 50% back, 75.00 EUR."
    );
    assert!(preview["problem"].is_null());
}

/// The Settings card's three commands through Tauri's IPC: state, connect (twice: one
/// endpoint), rotate (a new endpoint replaces the old), against the simulator's Stripe
/// and the real relay.
#[test]
fn the_stripe_webhook_card_connects_once_and_rotates() {
    let (shared, _serial) = shared();
    let h = harness(shared);
    let relay = Relay::start();
    set_secret(SecretName::RelayToken, &relay.token);
    let _ = keychain().delete(SecretName::StripeWebhookSecret);
    h.app
        .state::<AppState>()
        .start_sync(&relay.url)
        .expect("sync");
    let endpoints_to_this_relay = || -> Vec<Value> {
        let r = h
            .client
            .stripe("GET", "/v1/webhook_endpoints?limit=100", &Value::Null, None)
            .expect("list endpoints");
        r.json().expect("json")["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["url"] == format!("{}/hooks/stripe", relay.url))
            .collect()
    };

    let before = h.invoke("stripe_webhook", json!({})).expect("state");
    assert_eq!(before["exists"], false, "{before}");
    assert_eq!(before["relay_reach"], "loopback", "{before}");

    let connected = h
        .invoke("connect_stripe_webhook", json!({}))
        .expect("connect");
    assert_eq!(connected["exists"], true, "{connected}");
    assert_eq!(connected["enabled"], true, "{connected}");
    assert_eq!(connected["events_match"], true, "{connected}");
    assert_eq!(connected["secret_handed_over"], true, "{connected}");
    assert_eq!(
        connected["api_version"],
        coachdesk_domain::provider::STRIPE_API_VERSION
    );
    let again = h
        .invoke("connect_stripe_webhook", json!({}))
        .expect("connect again");
    assert_eq!(again["endpoint_id"], connected["endpoint_id"]);
    assert_eq!(endpoints_to_this_relay().len(), 1);

    let rotated = h
        .invoke("rotate_stripe_webhook_secret", json!({}))
        .expect("rotate");
    assert_ne!(
        rotated["endpoint_id"], connected["endpoint_id"],
        "{rotated}"
    );
    assert_eq!(rotated["rotation_in_progress"], false, "{rotated}");
    assert!(rotated["last_rotated_at"].is_string(), "{rotated}");
    let left = endpoints_to_this_relay();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"], rotated["endpoint_id"]);
}
