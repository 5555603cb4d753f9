//! Reconciliation alone recovers dropped webhooks; secrets reach neither SQLite nor logs;
//! Calendly payloads rebuilt by reconciliation parse like the documented webhooks.
//!
//! Needs a session keyring: `keyctl session - cargo test -p coachdesk-sync`.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coachdesk_domain::provider::{self, Provider};
use coachdesk_sim::DeliveryKnobs;
use support::World;
use time::OffsetDateTime;

fn week_ahead(hours: u64) -> String {
    (OffsetDateTime::now_utc() + Duration::from_secs(7 * 24 * 3600 + hours * 3600))
        .replace_nanosecond(0)
        .expect("whole seconds")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("rfc3339")
}

/// Books eight clients; pays, cancels and leaves some unpaid. Returns email -> invitee uri.
fn workload(w: &World) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for i in 0..8u64 {
        let email = format!("client{i}@example.com");
        let b = w
            .client
            .book_with(serde_json::json!({"event_type": "coaching-60", "name": format!("Client {i}"), "email": email, "start_time": week_ahead(i)}))
            .expect("book");
        if i % 4 != 3 {
            w.pay(&b.invitee_uuid, &b.email);
        }
        if i % 4 == 1 || i % 4 == 3 {
            w.client
                .cancel_as_invitee(&b.invitee_uri, "changed my mind")
                .expect("cancel");
        }
        out.insert(email, b.invitee_uri);
    }
    out
}

async fn final_states(
    w: &World,
    clients: &BTreeMap<String, String>,
    reconcile: bool,
) -> BTreeMap<String, (String, i64, i64)> {
    let mut previous = BTreeMap::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if reconcile {
            w.handle().reconcile_now().await;
        }
        let now: BTreeMap<_, _> = clients
            .iter()
            .map(|(email, uri)| {
                let b = w.booking_of(uri);
                let state = b
                    .as_ref()
                    .map_or("missing".into(), |b| b.state.as_str().to_owned());
                let money = b
                    .as_ref()
                    .map_or((0, 0), |b| (b.captured_minor(), b.refunded_minor()));
                (email.clone(), (state, money.0, money.1))
            })
            .collect();
        let idle = w
            .store
            .lock()
            .unwrap()
            .due_effects(OffsetDateTime::now_utc(), 1)
            .expect("due")
            .is_empty();
        if idle && now == previous {
            return now;
        }
        previous = now;
    }
    previous
}

#[tokio::test]
async fn with_a_fifth_of_webhooks_dropped_reconciliation_reaches_the_same_end() {
    let reference = World::start(DeliveryKnobs::default()).await;
    let clients = workload(&reference);
    let expected = final_states(&reference, &clients, false).await;
    assert!(
        expected.values().any(|(s, _, _)| s == "refunded"),
        "{expected:?}"
    );
    assert!(
        expected.values().any(|(s, _, _)| s == "confirmed"),
        "{expected:?}"
    );
    drop(reference);

    let lossy = World::start(DeliveryKnobs {
        drop_probability: 0.2,
        seed: Some(42),
        ..DeliveryKnobs::default()
    })
    .await;
    let clients = workload(&lossy);
    let dropped = lossy.client.deliveries().expect("deliveries").len();
    let got = final_states(&lossy, &clients, true).await;
    assert_eq!(
        got, expected,
        "after reconciliation ({dropped} delivery records)"
    );
    let report = lossy.handle().status().last_reconcile.expect("a report");
    assert!(report.errors.is_empty(), "{report:?}");
    let refunds = lossy
        .client
        .requests(Some("POST"), Some("/v1/refunds"))
        .expect("log");
    assert_eq!(
        refunds
            .iter()
            .filter(|r| r.status == 200 && !r.replayed)
            .count(),
        2,
        "{refunds:#?}"
    );
    lossy.assert_no_invalid_stripe_requests();
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test]
async fn secrets_reach_neither_the_database_nor_the_logs() {
    let logs = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let w = World::start(DeliveryKnobs::default()).await;
    let b = w.client.book_with(serde_json::json!({"event_type": "coaching-60", "name": "Sec", "email": "sec@example.com", "start_time": week_ahead(0)})).expect("book");
    w.pay(&b.invitee_uuid, &b.email);
    w.settle_to(&b.invitee_uri, "confirmed").await;
    w.client
        .cancel_as_invitee(&b.invitee_uri, "bye")
        .expect("cancel");
    w.settle_to(&b.invitee_uri, "refunded").await;
    w.handle().reconcile_now().await;
    tracing::debug!(status = ?w.handle().status(), providers = ?w.providers().stripe().expect("stripe"), "final");
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", w.db_path.display());
        if let Ok(b) = std::fs::read(&path) {
            bytes.extend(b);
        }
    }
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(logs.contains("final"), "the capture works");
    assert!(bytes.len() > 4096, "the database was read");
    for (name, secret) in [
        ("Stripe key", w.stripe_key.as_str()),
        ("Calendly token", w.calendly_token.as_str()),
        ("relay token", w.relay.token.as_str()),
        ("signing key", support::CALENDLY_SIGNING_KEY),
    ] {
        let needle = secret.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|win| win == needle),
            "the {name} is in the database"
        );
        assert!(!logs.contains(secret), "the {name} is in the logs");
    }
}

#[test]
fn reconciliation_payloads_parse_like_the_documented_webhooks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/fixtures/calendly");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let webhook: serde_json::Value = serde_json::from_str(&text).expect("json");
        let from_webhook =
            provider::parse(Provider::Calendly, text.as_bytes()).expect("fixture parses");
        let mut invitee = webhook["payload"].clone();
        let event = invitee["scheduled_event"].take();
        let facts = coachdesk_sync::reconcile::calendly_facts(
            webhook["created_by"].as_str().unwrap_or(""),
            &event,
            &invitee,
            None,
        );
        let kind = webhook["event"].as_str().expect("event");
        let fact = facts
            .iter()
            .find(|f| f.kind == kind)
            .unwrap_or_else(|| panic!("{}: no {kind} fact in {facts:?}", path.display()));
        let rebuilt = provider::parse(
            Provider::Calendly,
            &serde_json::to_vec(&fact.body).expect("json"),
        )
        .expect("rebuilt parses");
        assert_eq!(rebuilt.kind, from_webhook.kind, "{}", path.display());
        assert_eq!(rebuilt.target, from_webhook.target, "{}", path.display());
        assert_eq!(
            rebuilt.event.is_some(),
            from_webhook.event.is_some(),
            "{}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 5, "fixtures in {}", dir.display());
}
