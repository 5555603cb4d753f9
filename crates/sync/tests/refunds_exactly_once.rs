//! Refunds happen once for ever, not only while Stripe remembers an `Idempotency-Key`
//! (24 hours): a refund whose answer was lost and that is retried two days later, and a
//! refund released from hold after the client got money back in the dashboard, both end
//! with exactly the money owed at Stripe.
//!
//! The executor is driven by hand with its own `now`, against the simulator (whose clock is
//! moved as much), a real SQLite file and secrets in memory: no relay, no keychain.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coachdesk_domain::booking::{BookingEvent, RefundChoice, RefundStatus};
use coachdesk_domain::provider::Provider;
use coachdesk_domain::Booking;
use coachdesk_protocol::ipc::{RefundTierDto, SessionTypeDraft};
use coachdesk_providers::{CalendlyApi, PaymentLinkCreated, StripeApi};
use coachdesk_sim::{Fault, FaultKind, SimClient, SimConfig, Simulator};
use coachdesk_store::{Feature, Source, Store};
use coachdesk_sync::executor::Executor;
use coachdesk_sync::{
    Backoff, MemorySecrets, Mode, Outlets, Providers, Secret, SecretName, SyncConfig,
};
use serde_json::Value;
use time::OffsetDateTime;

const STRIPE_KEY: &str = "sk_test_refunds_once";
const DAY: i64 = 24 * 3600;

struct Desk {
    /// Kept alive for the test's length (dropping it stops the server).
    _sim: Simulator,
    client: SimClient,
    _dir: tempfile::TempDir,
    store: Arc<Mutex<Store>>,
    executor: Executor,
    link: PaymentLinkCreated,
    /// Provider events already handed to the store (by Stripe event id / Calendly key).
    fed: Mutex<std::collections::BTreeSet<String>>,
}

impl Desk {
    async fn start() -> Desk {
        let sim = Simulator::start(SimConfig {
            stripe_api_key: Some(STRIPE_KEY.into()),
            hang_ms: 50,
            ..SimConfig::default()
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
        let mut store = Store::open(&dir.path().join("coachdesk.db")).expect("store");

        let calendly = CalendlyApi::new(
            &config.calendly_base,
            &sim.calendly_token(),
            Duration::from_secs(5),
        )
        .expect("calendly");
        let me = calendly.current_user().await.expect("users/me");
        let coaching = calendly
            .event_types(&me.uri)
            .await
            .expect("event types")
            .iter()
            .find(|t| t["slug"] == "coaching-60")
            .and_then(|t| t["uri"].as_str())
            .expect("coaching-60")
            .to_owned();
        let st = store
            .create_session_type(&SessionTypeDraft {
                name: "Coaching".into(),
                duration_minutes: 60,
                price: "150.00".into(),
                currency: "EUR".into(),
                refund_tiers: vec![RefundTierDto {
                    min_hours_before: 0,
                    percent: 100,
                }],
                calendly_event_type_uri: Some(coaching),
            })
            .expect("session type");
        let stripe = StripeApi::new(&config.stripe_base, STRIPE_KEY).expect("stripe");
        let price = coachdesk_domain::Money::new(
            15000,
            coachdesk_domain::Currency::parse("EUR").expect("eur"),
        );
        let link = stripe
            .create_payment_link(&st.name, price, &format!("coachdesk-{}", st.id))
            .await
            .expect("payment link");
        let store = Arc::new(Mutex::new(store));
        let providers = Arc::new(Providers::new(config.clone(), Arc::new(secrets)));
        let executor = Executor::new(store.clone(), providers, Outlets::default(), &config);
        Desk {
            _sim: sim,
            client,
            _dir: dir,
            store,
            executor,
            link,
            fed: Mutex::default(),
        }
    }

    /// Hands every provider event not yet applied to the store, as the relay would.
    fn feed(&self, now: OffsetDateTime) {
        let mut fed = self.fed.lock().unwrap();
        let calendly = self.client.calendly_webhooks().expect("calendly webhooks");
        let stripe = self.client.stripe_events().expect("stripe events");
        let mut store = self.store.lock().unwrap();
        for (provider, body) in calendly
            .iter()
            .map(|b| (Provider::Calendly, b))
            .chain(stripe.iter().map(|b| (Provider::Stripe, b)))
        {
            let key = format!("{}|{}", body["id"], body);
            if fed.insert(key) {
                let bytes = serde_json::to_vec(body).expect("json");
                store
                    .apply_provider_event(provider, &bytes, Source::Relay, now)
                    .expect("apply");
            }
        }
    }

    fn booking(&self, invitee_uri: &str) -> Booking {
        self.store
            .lock()
            .unwrap()
            .booking_by_invitee(invitee_uri)
            .expect("query")
            .expect("booking")
    }

    /// The refunds that exist at Stripe for one payment.
    fn refunds_at_stripe(&self, payment_intent: &str) -> Vec<Value> {
        self.client
            .stripe_events()
            .expect("events")
            .into_iter()
            .filter(|e| e["type"] == "charge.refunded")
            .filter(|e| e["data"]["object"]["payment_intent"] == payment_intent)
            .collect()
    }

    fn refund_posts(&self) -> Vec<coachdesk_sim::RequestRecord> {
        self.client
            .requests(Some("POST"), Some("/v1/refunds"))
            .expect("log")
    }

    /// A booked and paid session; answers the invitee URI and the payment intent.
    async fn paid_booking(&self, name: &str, now: OffsetDateTime) -> (String, String) {
        let b = self
            .client
            .book("coaching-60", name, &format!("{name}@example.com"))
            .expect("book");
        self.client
            .pay_link(&self.link.payment_link, &b.invitee_uuid, &b.email, false)
            .expect("pay");
        self.feed(now);
        let booking = self.booking(&b.invitee_uri);
        assert_eq!(booking.state.as_str(), "confirmed");
        let pi = booking
            .primary_payment()
            .and_then(|p| p.fact.payment_intent.clone())
            .expect("payment intent");
        (b.invitee_uri, pi)
    }
}

#[tokio::test]
async fn a_refund_whose_answer_was_lost_and_retried_two_days_later_exists_once() {
    let desk = Desk::start().await;
    let now = OffsetDateTime::now_utc();
    let (invitee, pi) = desk.paid_booking("lena", now).await;
    let id = desk.booking(&invitee).id;
    desk.store
        .lock()
        .unwrap()
        .apply_coach_action(
            &id,
            "click-1",
            &BookingEvent::CoachCancelled {
                refund: RefundChoice::Full,
                reason: "Coach is ill".into(),
                at: now,
            },
            now,
        )
        .expect("cancel");
    // Stripe makes the refund; the answer never arrives.
    desk.client
        .inject_fault(&Fault {
            path_prefix: "/v1/refunds".into(),
            method: Some("POST".into()),
            kind: FaultKind::LoseAnswer { ms: Some(10) },
            remaining: 1,
        })
        .expect("fault");
    let report = desk.executor.run_once(now).await.expect("run");
    assert_eq!(report.retried, 1, "{report:?}");
    assert_eq!(desk.refunds_at_stripe(&pi).len(), 1);

    // The laptop sleeps two days: Stripe (the simulator) has forgotten the key.
    desk.client.advance_clock(2 * DAY).expect("clock");
    let later = now + time::Duration::days(2);
    let report = desk.executor.run_once(later).await.expect("run");
    assert_eq!(report.retried + report.failed, 0, "{report:?}");

    assert_eq!(
        desk.refunds_at_stripe(&pi).len(),
        1,
        "exactly one refund at Stripe: {:#?}",
        desk.refund_posts()
    );
    assert_eq!(
        desk.refund_posts().len(),
        1,
        "the retry found the refund instead of asking again"
    );
    let lookups = desk
        .client
        .requests(Some("GET"), Some("/v1/refunds"))
        .expect("log");
    assert_eq!(lookups.len(), 1, "{lookups:#?}");
    assert!(lookups[0].query.contains(&pi), "{lookups:#?}");
    let booking = desk.booking(&invitee);
    let record = &booking.refunds["cancellation"];
    assert!(record.refund_id.is_some(), "{record:?}");
    assert_eq!(record.status, RefundStatus::Succeeded);
    assert_eq!(booking.state.as_str(), "refunded");
    assert_eq!(booking.refunded_minor(), 15000);
    assert_no_invalid_stripe_requests(&desk);
}

#[tokio::test]
async fn a_held_refund_approved_after_a_dashboard_refund_is_capped_at_what_is_left() {
    let desk = Desk::start().await;
    desk.store
        .lock()
        .unwrap()
        .set_feature(Feature::AutomaticRefunds, false)
        .expect("toggle");
    let now = OffsetDateTime::now_utc();
    let (invitee, pi) = desk.paid_booking("mia", now).await;
    desk.client
        .cancel_as_invitee(&invitee, "cannot make it")
        .expect("cancel");
    desk.feed(now);
    let report = desk.executor.run_once(now).await.expect("run");
    assert_eq!(report.held, 1, "{report:?}");
    assert!(desk.refund_posts().is_empty(), "a held refund waits");

    // Meanwhile the coach gives 100.00 back in Stripe's dashboard.
    desk.client
        .dashboard_refund(&pi, Some(10000))
        .expect("dashboard refund");
    let id = desk.booking(&invitee).id;
    desk.store
        .lock()
        .unwrap()
        .approve_held_refunds(&id, now)
        .expect("approve");
    let report = desk.executor.run_once(now).await.expect("run");
    assert_eq!(report.done, 1, "{report:?}");

    let posts = desk.refund_posts();
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert!(
        posts[0].body.contains("amount=5000"),
        "capped at the 50.00 left: {}",
        posts[0].body
    );
    let events = desk.refunds_at_stripe(&pi);
    let refunded = events
        .iter()
        .filter_map(|e| e["data"]["object"]["amount_refunded"].as_i64())
        .max();
    assert_eq!(refunded, Some(15000), "never more than was paid");
    let booking = desk.booking(&invitee);
    assert_eq!(booking.refunds["cancellation"].amount.minor, 5000);
    desk.feed(now);
    let booking = desk.booking(&invitee);
    assert_eq!(booking.refunded_minor(), 15000);
    assert_eq!(booking.state.as_str(), "refunded");
    assert_no_invalid_stripe_requests(&desk);
}

#[tokio::test]
async fn a_held_refund_approved_after_the_whole_payment_went_back_sends_nothing() {
    let desk = Desk::start().await;
    desk.store
        .lock()
        .unwrap()
        .set_feature(Feature::AutomaticRefunds, false)
        .expect("toggle");
    let now = OffsetDateTime::now_utc();
    let (invitee, pi) = desk.paid_booking("noa", now).await;
    desk.client
        .cancel_as_invitee(&invitee, "cannot make it")
        .expect("cancel");
    desk.feed(now);
    assert_eq!(desk.executor.run_once(now).await.expect("run").held, 1);
    desk.client
        .dashboard_refund(&pi, None)
        .expect("dashboard refund");
    let id = desk.booking(&invitee).id;
    desk.store
        .lock()
        .unwrap()
        .approve_held_refunds(&id, now)
        .expect("approve");
    let report = desk.executor.run_once(now).await.expect("run");
    assert_eq!(report.done, 1, "{report:?}");
    assert!(desk.refund_posts().is_empty(), "nothing was left to refund");
    let booking = desk.booking(&invitee);
    assert_eq!(
        booking.refunds["cancellation"].status,
        RefundStatus::Canceled
    );
    desk.feed(now);
    let booking = desk.booking(&invitee);
    assert_eq!(booking.refunded_minor(), 15000);
    assert_eq!(booking.state.as_str(), "refunded");
}

fn assert_no_invalid_stripe_requests(desk: &Desk) {
    let bad: Vec<_> = desk
        .client
        .requests(None, Some("/v1/"))
        .expect("log")
        .into_iter()
        .filter(|r| r.invalid_request.is_some() || !r.invalid_response.is_empty())
        .collect();
    assert!(bad.is_empty(), "outside the OpenAPI description: {bad:#?}");
}
