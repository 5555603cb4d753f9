//! A whole Coachdesk sync world on loopback: the real relay binary, the in-process
//! simulator, a real SQLite file, the real keychain (run under `keyctl session -`).
#![allow(dead_code)]

#[path = "../selling/mod.rs"]
mod selling;

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coachdesk_domain::{Booking, BookingId};
use coachdesk_providers::PaymentLinkCreated;
use coachdesk_sim::{DeliveryKnobs, SimClient, SimConfig, Simulator, WebhookTarget};
use coachdesk_store::Store;
use coachdesk_sync::{
    Backoff, Keychain, Mode, Outlets, Providers, Secret, SecretName, SyncConfig, SyncEngine,
    SyncHandle,
};

pub const STRIPE_WHSEC: &str = "whsec_sync_tests_secret";
pub const CALENDLY_SIGNING_KEY: &str = "calendly-signing-key-sync-tests";

fn rand_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The relay binary beside this test's target dir, or `COACHDESK_RELAY_BIN`.
pub fn relay_bin() -> PathBuf {
    coachdesk_waiting::workspace_binary("coachdesk-relay", "COACHDESK_RELAY_BIN")
}

pub struct RelayProc {
    pub dir: tempfile::TempDir,
    pub child: Child,
    pub url: String,
    pub token: String,
}

impl RelayProc {
    /// A relay with its own database, configured with the Stripe endpoint secret but no
    /// Calendly signing key: it learns that from the app (`PUT /v1/calendly-signing-key`).
    pub fn start() -> RelayProc {
        Self::start_on("127.0.0.1:0", &[])
    }

    /// A relay started with these settings (`COACHDESK_RELAY_*` variables) besides the tests'.
    pub fn start_with(env: &[(&str, &str)]) -> RelayProc {
        Self::start_on("127.0.0.1:0", env)
    }

    /// Replaces this relay with a new one on the same address and an empty database (a
    /// relay redeployed without its data): a new token, no signing key.
    pub fn replace_with_empty(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let addr = self.url.trim_start_matches("http://").to_owned();
        *self = Self::start_on(&addr, &[]);
    }

    fn start_on(listen: &str, env: &[(&str, &str)]) -> RelayProc {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("relay.db");
        let token = relay_token_create(&db, "app", "test");
        let (child, addr) = coachdesk_waiting::spawn_listening(
            relay_command(&db, listen)
                .envs(env.iter().copied())
                .arg("serve")
                .stderr(Stdio::inherit()),
            Duration::from_secs(30),
        );
        RelayProc {
            dir,
            child,
            url: format!("http://{addr}"),
            token,
        }
    }

    /// `token create --name NAME --mode MODE` on this relay's database: another app
    /// install's token.
    pub fn create_token(&self, name: &str, mode: &str) -> String {
        relay_token_create(&self.dir.path().join("relay.db"), name, mode)
    }

    /// The cursor of the token named `name`, from `coachdesk-relay token list`.
    pub fn token_cursor(&self, name: &str) -> i64 {
        let out = relay_command(&self.dir.path().join("relay.db"), "127.0.0.1:0")
            .args(["token", "list"])
            .output()
            .expect("token list");
        assert!(out.status.success(), "token list: {out:?}");
        let list = String::from_utf8(out.stdout).expect("utf8");
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no cursor for {name} in {list}"))
    }
}

/// The relay binary on `db`, with the tests' settings. The simulator's payment links
/// (plain http on loopback) are allowed beside Stripe's own hosts.
fn relay_command(db: &std::path::Path, listen: &str) -> Command {
    let mut c = Command::new(relay_bin());
    c.env("COACHDESK_RELAY_DB", db)
        .env("COACHDESK_RELAY_LISTEN", listen)
        .env("COACHDESK_RELAY_STRIPE_SECRETS", STRIPE_WHSEC)
        .env("COACHDESK_RELAY_PAYMENT_LINK_HOSTS", "http://127.0.0.1")
        .env("COACHDESK_RELAY_LOG", "warn");
    c
}

fn relay_token_create(db: &std::path::Path, name: &str, mode: &str) -> String {
    let out = relay_command(db, "127.0.0.1:0")
        .args(["token", "create", "--name", name, "--mode", mode])
        .output()
        .expect("token create");
    assert!(out.status.success(), "token create: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct World {
    pub relay: RelayProc,
    pub sim: Simulator,
    pub client: SimClient,
    pub dir: tempfile::TempDir,
    pub db_path: PathBuf,
    pub store: Arc<Mutex<Store>>,
    pub keychain: Keychain,
    pub stripe_key: String,
    pub calendly_token: String,
    pub config: SyncConfig,
    pub link: PaymentLinkCreated,
    pub handle: Option<SyncHandle>,
    /// Every client email the executor handed to the mail outlet.
    pub mails: Arc<RecordingMailer>,
}

/// A mail outlet that records what it is asked to send (and says it was sent).
#[derive(Default)]
pub struct RecordingMailer {
    sent: Mutex<Vec<(BookingId, coachdesk_domain::booking::EmailKind)>>,
}

impl RecordingMailer {
    /// The emails of one booking, in the order they were sent.
    pub fn of(&self, booking_id: &BookingId) -> Vec<coachdesk_domain::booking::EmailKind> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(b, _)| b == booking_id)
            .map(|(_, e)| *e)
            .collect()
    }
}

impl coachdesk_sync::Mailer for RecordingMailer {
    fn send(
        &self,
        booking_id: &BookingId,
        email: coachdesk_domain::booking::EmailKind,
    ) -> Result<coachdesk_sync::MailOutcome, coachdesk_providers::ProviderError> {
        self.sent.lock().unwrap().push((booking_id.clone(), email));
        Ok(coachdesk_sync::MailOutcome::Sent)
    }
}

pub fn test_config(relay_url: &str, sim_url: &str) -> SyncConfig {
    let mut config = SyncConfig::new(Mode::Test, relay_url);
    config.stripe_base = format!("{sim_url}/");
    config.calendly_base = sim_url.to_owned();
    config.long_poll = Duration::from_secs(1);
    config.relay_backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        jitter: 0.2,
    };
    config.effect_backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_secs(2),
        jitter: 0.2,
    };
    config.effect_max_attempts = 8;
    config.executor_poll = Duration::from_millis(50);
    config.provider_timeout = Duration::from_secs(5);
    config.reconcile_every = None;
    config.subscription_check_every = None;
    config.calendly_lookback = Duration::from_secs(3600);
    config
}

impl World {
    pub async fn start(knobs: DeliveryKnobs) -> World {
        let relay = RelayProc::start();
        let stripe_key = format!("sk_test_sync_{}", rand_hex());
        let calendly_token = format!("cal_pat_{}", rand_hex());
        let sim = Simulator::start(SimConfig {
            stripe_api_key: Some(stripe_key.clone()),
            calendly_token: calendly_token.clone(),
            stripe_webhook: Some(WebhookTarget {
                url: format!("{}/hooks/stripe", relay.url),
                secret: STRIPE_WHSEC.into(),
            }),
            delivery: knobs,
            hang_ms: 300,
            ..SimConfig::default()
        })
        .expect("simulator");
        let client = sim.client();
        let keychain = Keychain::new(&format!("coachdesk-test-{}", rand_hex()));
        for (name, value) in [
            (SecretName::StripeTestKey, stripe_key.as_str()),
            (SecretName::CalendlyToken, calendly_token.as_str()),
            (SecretName::RelayToken, relay.token.as_str()),
            (SecretName::CalendlySigningKey, CALENDLY_SIGNING_KEY),
        ] {
            keychain.set(name, &Secret::new(value)).unwrap_or_else(|e| {
                panic!("the keychain is not usable ({e}); run the tests inside `keyctl session - cargo test ...`")
            });
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let db_path = dir.path().join("coachdesk.db");
        let store = Store::open(&db_path).expect("store");
        // The simulator is a Calendly of the test's own: these scenarios check the
        // cancellations it receives, so test mode sends them (off by default).
        store
            .set_feature(coachdesk_store::Feature::TestModeCalendlyCancels, true)
            .expect("feature");
        let config = test_config(&relay.url, sim.base_url());

        // The coach's set-up: a session type mapped to the Calendly event type, sold
        // through a Stripe payment link.
        let store = Arc::new(Mutex::new(store));
        let link = selling::sell(
            &config,
            &calendly_token,
            &stripe_key,
            &store,
            &selling::coaching(&[(48, 100), (0, 50)]),
        )
        .await;
        let mut world = World {
            relay,
            sim,
            client,
            dir,
            db_path,
            store,
            keychain,
            stripe_key,
            calendly_token,
            config,
            link,
            handle: None,
            mails: Arc::default(),
        };
        world.start_sync();
        let health = world
            .handle()
            .recreate_subscription()
            .await
            .expect("calendly subscription");
        assert!(matches!(
            health,
            coachdesk_sync::SubscriptionHealth::Active { .. }
        ));
        world
    }

    pub fn start_sync(&mut self) {
        self.handle = Some(
            SyncEngine::start(
                self.config.clone(),
                self.store.clone(),
                Arc::new(self.keychain.clone()),
                Outlets {
                    mailer: self.mails.clone(),
                    ..Outlets::default()
                },
            )
            .expect("sync engine"),
        );
    }

    pub fn stop_sync(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
        }
    }

    pub fn handle(&self) -> &SyncHandle {
        self.handle.as_ref().expect("sync running")
    }

    pub fn providers(&self) -> Providers {
        Providers::new(self.config.clone(), Arc::new(self.keychain.clone()))
    }

    pub fn booking_of(&self, invitee_uri: &str) -> Option<Booking> {
        self.store
            .lock()
            .unwrap()
            .booking_by_invitee(invitee_uri)
            .expect("query")
    }

    pub fn state_of(&self, invitee_uri: &str) -> String {
        self.booking_of(invitee_uri)
            .map(|b| b.state.as_str().to_owned())
            .unwrap_or_else(|| "missing".into())
    }

    /// Waits until the invitee's booking is in `state` and no effect is pending.
    pub async fn settle_to(&self, invitee_uri: &str, state: &str) -> Booking {
        eventually(
            &format!("{invitee_uri} to be {state} with an empty outbox"),
            || async {
                let b = self.booking_of(invitee_uri)?;
                let pending = self.store.lock().unwrap().pending_effect_count().ok()?;
                (b.state.as_str() == state && pending_due(self) == 0 && pending < 100).then_some(b)
            },
        )
        .await
    }

    /// A second session type on the `intro-30` event type, sold through its own payment
    /// link (other currencies, other refund tiers). `price` is in major units ("5000").
    pub async fn sell_intro(
        &self,
        price: &str,
        minor: i64,
        currency: &str,
        tiers: &[(u32, u8)],
    ) -> PaymentLinkCreated {
        selling::sell(
            &self.config,
            &self.calendly_token,
            &self.stripe_key,
            &self.store,
            &selling::Offer {
                name: "Intro",
                duration_minutes: 30,
                price,
                minor,
                currency,
                tiers,
                event_type: "intro-30",
            },
        )
        .await
    }

    /// Client `name` books the simulator's `coaching-60` event type.
    pub fn book_coaching(&self, name: &str, email: &str) -> coachdesk_sim::client::Booking {
        self.client.book("coaching-60", name, email).expect("book")
    }

    /// Exactly `n` refunds were made at Stripe (answered 200, not a replayed answer).
    pub fn assert_refunds_made(&self, n: usize) {
        let refunds = self.refund_posts();
        assert_eq!(
            refunds
                .iter()
                .filter(|r| r.status == 200 && !r.replayed)
                .count(),
            n,
            "{refunds:#?}"
        );
    }

    /// Pays booking `b` through its link, waits until it is confirmed, then the client
    /// cancels it ("cannot make it").
    pub async fn pay_then_client_cancels(&self, b: &coachdesk_sim::client::Booking) {
        self.pay(&b.invitee_uuid, &b.email);
        self.settle_to(&b.invitee_uri, "confirmed").await;
        self.client
            .cancel_as_invitee(&b.invitee_uri, "cannot make it")
            .expect("cancel");
    }

    /// Pays through the session type's payment link, as the relay's redirect does.
    pub fn pay(&self, invitee_uuid: &str, email: &str) -> serde_json::Value {
        self.client
            .pay_link(&self.link.payment_link, invitee_uuid, email, false)
            .expect("pay")
    }

    /// Pays through any payment link; `delayed` = an async method settled later.
    pub fn pay_through(
        &self,
        link: &PaymentLinkCreated,
        invitee_uuid: &str,
        email: &str,
        delayed: bool,
    ) -> serde_json::Value {
        self.client
            .pay_link(&link.payment_link, invitee_uuid, email, delayed)
            .expect("pay")
    }

    /// `POST /v1/refunds` the product made, with their status.
    pub fn refund_posts(&self) -> Vec<coachdesk_sim::RequestRecord> {
        self.client
            .requests(Some("POST"), Some("/v1/refunds"))
            .expect("log")
    }

    /// The product's cancellations of one Calendly event.
    pub fn calendly_cancellations(&self, event_uuid: &str) -> Vec<coachdesk_sim::RequestRecord> {
        self.client
            .requests(
                Some("POST"),
                Some(&format!("/scheduled_events/{event_uuid}/cancellation")),
            )
            .expect("log")
    }

    /// The booking's attention codes (`needs_attention` when not empty).
    pub fn attention_of(&self, invitee_uri: &str) -> Vec<&'static str> {
        self.booking_of(invitee_uri)
            .map(|b| b.attention.iter().map(|a| a.code()).collect())
            .unwrap_or_default()
    }

    /// Waits until the booking carries the attention flag `code`.
    pub async fn flagged(&self, invitee_uri: &str, code: &str) -> Booking {
        eventually(&format!("{invitee_uri} to be flagged {code}"), || async {
            let b = self.booking_of(invitee_uri)?;
            b.attention.iter().any(|a| a.code() == code).then_some(b)
        })
        .await
    }

    pub fn stripe_requests(&self, prefix: &str) -> Vec<coachdesk_sim::RequestRecord> {
        self.client.requests(None, Some(prefix)).expect("requests")
    }

    /// Fidelity: every Stripe request the product made, and the simulator's answer to it,
    /// is valid against Stripe's OpenAPI description (the simulator's verdict per request),
    /// and so is every event it sent as a webhook or listed for reconciliation.
    pub fn assert_no_invalid_stripe_requests(&self) {
        let log = self.stripe_requests("/v1/");
        assert!(!log.is_empty(), "no Stripe request was made");
        let bad: Vec<_> = log
            .iter()
            .filter(|r| r.invalid_request.is_some() || !r.invalid_response.is_empty())
            .collect();
        assert!(
            bad.is_empty(),
            "Stripe requests or answers outside the OpenAPI description: {bad:#?}"
        );
        let unkeyed: Vec<_> = log
            .iter()
            .filter(|r| r.method == "POST" && r.idempotency_key.is_none())
            .collect();
        assert!(
            unkeyed.is_empty(),
            "Stripe POSTs without an Idempotency-Key: {unkeyed:#?}"
        );
        let spec = coachdesk_sim::spec::stripe_spec().expect("spec");
        for event in self.client.stripe_events().expect("events") {
            if let Err(problems) = spec.check_object(&event) {
                panic!(
                    "{} {} does not match the description: {problems:#?}",
                    event["type"], event["id"]
                );
            }
        }
    }
}

/// Unacknowledged events at the relay (its `/metrics`).
pub async fn relay_queue_depth(w: &World) -> i64 {
    let text = reqwest::get(format!("{}/metrics", w.relay.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("coachdesk_relay_queue_depth "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no queue depth in {text}"))
}

/// Effects due now (timers far in the future do not count).
fn pending_due(world: &World) -> usize {
    world
        .store
        .lock()
        .unwrap()
        .due_effects(time::OffsetDateTime::now_utc(), 100)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
}

/// Polls `f` until it gives a value (30 s at most: a loaded two-core machine is slow).
pub async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    coachdesk_waiting::eventually_async(what, Duration::from_secs(30), || {
        let fut = f();
        async move { fut.await.ok_or("not yet") }
    })
    .await
}
