//! A small desk for money tests: the simulator, a real SQLite file and the effect executor,
//! driven by hand (`feed` hands the providers' events to the store, `run_once(now)` runs
//! the outbox at the test's own time). No relay, no keychain.
#![allow(dead_code)]

#[path = "../selling/mod.rs"]
mod selling;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coachdesk_domain::provider::Provider;
use coachdesk_domain::Booking;
use coachdesk_providers::PaymentLinkCreated;
use coachdesk_sim::{SimClient, SimConfig, Simulator};
use coachdesk_store::{Source, Store};
use coachdesk_sync::executor::Executor;
use coachdesk_sync::{
    Backoff, MemorySecrets, Mode, Outlets, Providers, Secret, SecretName, SyncConfig,
};
use serde_json::Value;
use time::OffsetDateTime;

pub const STRIPE_KEY: &str = "sk_test_refunds_once";
pub const DAY: i64 = 24 * 3600;

pub struct Desk {
    /// Kept alive for the test's length (dropping it stops the server).
    _sim: Simulator,
    pub client: SimClient,
    _dir: tempfile::TempDir,
    pub store: Arc<Mutex<Store>>,
    pub executor: Executor,
    pub providers: Arc<Providers>,
    pub link: PaymentLinkCreated,
    /// Provider events already handed to the store (by Stripe event id / Calendly key).
    fed: Mutex<std::collections::BTreeSet<String>>,
}

impl Desk {
    pub async fn start() -> Desk {
        Self::start_with(SimConfig::default()).await
    }

    /// A desk on a simulator configured as `sim` (its Stripe key and hang time are set).
    pub async fn start_with(sim: SimConfig) -> Desk {
        let sim = Simulator::start(SimConfig {
            stripe_api_key: Some(STRIPE_KEY.into()),
            hang_ms: 50,
            ..sim
        })
        .expect("simulator");
        let client = sim.client();
        let mut config = SyncConfig::new(Mode::Test, "http://127.0.0.1:9");
        config.stripe_base = format!("{}/", sim.base_url());
        config.calendly_base = sim.base_url().to_owned();
        config.provider_timeout = Duration::from_secs(5);
        config.effect_backoff = Backoff {
            initial: Duration::from_secs(60),
            max: Duration::from_secs(3600),
            jitter: 0.0,
        };
        let secrets = MemorySecrets::default();
        secrets.set(SecretName::StripeTestKey, Secret::new(STRIPE_KEY));
        secrets.set(SecretName::CalendlyToken, Secret::new(sim.calendly_token()));
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("coachdesk.db")).expect("store");

        let store = Arc::new(Mutex::new(store));
        let link = selling::sell(
            &config,
            &sim.calendly_token(),
            STRIPE_KEY,
            &store,
            &selling::coaching(&[(0, 100)]),
        )
        .await;
        let providers = Arc::new(Providers::new(config.clone(), Arc::new(secrets)));
        let executor = Executor::new(
            store.clone(),
            providers.clone(),
            Outlets::default(),
            &config,
        );
        Desk {
            _sim: sim,
            client,
            _dir: dir,
            store,
            executor,
            providers,
            link,
            fed: Mutex::default(),
        }
    }

    /// Hands every provider event not yet applied to the store, as the sync loop does with
    /// a relayed page: read back from the providers first, then applied.
    pub async fn feed(&self, now: OffsetDateTime) {
        let calendly = self.client.calendly_webhooks().expect("calendly webhooks");
        let stripe = self.client.stripe_events().expect("stripe events");
        let fresh: Vec<(Provider, Vec<u8>)> = {
            let mut fed = self.fed.lock().unwrap();
            calendly
                .iter()
                .map(|b| (Provider::Calendly, b))
                .chain(stripe.iter().map(|b| (Provider::Stripe, b)))
                .filter(|(_, body)| fed.insert(format!("{}|{}", body["id"], body)))
                .map(|(p, body)| (p, serde_json::to_vec(body).expect("json")))
                .collect()
        };
        self.feed_bodies(&fresh, now).await;
    }

    /// Hands these bodies to the store as the sync loop does with a relayed page (one
    /// transaction, each read back first); answers how many read-back calls it took.
    pub async fn feed_bodies(&self, bodies: &[(Provider, Vec<u8>)], now: OffsetDateTime) -> usize {
        let borrowed: Vec<(Provider, &[u8])> =
            bodies.iter().map(|(p, b)| (*p, b.as_slice())).collect();
        let found = coachdesk_sync::read_back::confirm(&self.providers, &self.store, &borrowed)
            .await
            .expect("read back");
        self.store
            .lock()
            .unwrap()
            .apply_checked_batch(
                borrowed
                    .iter()
                    .zip(&found.contradictions)
                    .map(|((p, b), c)| (*p, *b, c.as_ref())),
                Source::Relay,
                now,
            )
            .expect("apply");
        found.calls
    }

    pub fn booking(&self, invitee_uri: &str) -> Booking {
        self.store
            .lock()
            .unwrap()
            .booking_by_invitee(invitee_uri)
            .expect("query")
            .expect("booking")
    }

    /// The refunds that exist at Stripe for one payment.
    pub fn refunds_at_stripe(&self, payment_intent: &str) -> Vec<Value> {
        self.client
            .stripe_events()
            .expect("events")
            .into_iter()
            .filter(|e| e["type"] == "charge.refunded")
            .filter(|e| e["data"]["object"]["payment_intent"] == payment_intent)
            .collect()
    }

    pub fn refund_posts(&self) -> Vec<coachdesk_sim::RequestRecord> {
        self.client
            .requests(Some("POST"), Some("/v1/refunds"))
            .expect("log")
    }

    /// The coach approves the held refunds of invitee `invitee`'s booking, then the
    /// executor runs once; answers its report.
    pub async fn approve_and_run(
        &self,
        invitee: &str,
        now: OffsetDateTime,
    ) -> coachdesk_sync::executor::ExecutorReport {
        let id = self.booking(invitee).id;
        self.store
            .lock()
            .unwrap()
            .approve_held_refunds(&id, now)
            .expect("approve");
        self.executor.run_once(now).await.expect("run")
    }

    /// With automatic refunds off, a booked and paid session the client then cancels, fed
    /// to the store (its policy refund waits for the coach); answers the invitee URI and
    /// the payment intent.
    pub async fn held_cancellation(&self, name: &str, now: OffsetDateTime) -> (String, String) {
        self.store
            .lock()
            .unwrap()
            .set_feature(coachdesk_store::Feature::AutomaticRefunds, false)
            .expect("toggle");
        let (invitee, pi) = self.paid_booking(name, now).await;
        self.client
            .cancel_as_invitee(&invitee, "cannot make it")
            .expect("cancel");
        self.feed(now).await;
        (invitee, pi)
    }

    /// A booked and paid session; answers the invitee URI and the payment intent.
    pub async fn paid_booking(&self, name: &str, now: OffsetDateTime) -> (String, String) {
        let b = self
            .client
            .book("coaching-60", name, &format!("{name}@example.com"))
            .expect("book");
        self.client
            .pay_link(&self.link.payment_link, &b.invitee_uuid, &b.email, false)
            .expect("pay");
        self.feed(now).await;
        let booking = self.booking(&b.invitee_uri);
        assert_eq!(booking.state.as_str(), "confirmed");
        let pi = booking
            .primary_payment()
            .and_then(|p| p.fact.payment_intent.clone())
            .expect("payment intent");
        (b.invitee_uri, pi)
    }
}

pub fn assert_no_invalid_stripe_requests(desk: &Desk) {
    let bad: Vec<_> = desk
        .client
        .requests(None, Some("/v1/"))
        .expect("log")
        .into_iter()
        .filter(|r| r.invalid_request.is_some() || !r.invalid_response.is_empty())
        .collect();
    assert!(bad.is_empty(), "outside the OpenAPI description: {bad:#?}");
    let spec = coachdesk_sim::spec::stripe_spec().expect("spec");
    for event in desk.client.stripe_events().expect("events") {
        if let Err(problems) = spec.check_object(&event) {
            panic!(
                "{} does not match the description: {problems:#?}",
                event["type"]
            );
        }
    }
}
