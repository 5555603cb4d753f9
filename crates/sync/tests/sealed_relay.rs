//! The relay keeps only sealed copies of the coach's webhooks once the app registered its
//! key. A key lost with the keychain leaves events no key of the app opens: the app passes
//! them and reconciliation with the providers recovers what they said. The app's relay
//! client works the same for a coach who is a tenant of a hosted relay (`/t/{name}`).
//!
//! Needs a session keyring: `keyctl session - cargo test -p coachdesk-sync`.

mod support;

use coachdesk_protocol::ipc::InboxFilter;
use coachdesk_sim::DeliveryKnobs;
use std::time::Duration;

use coachdesk_store::Feature;
use coachdesk_sync::relay::{sealing, KeyHandover, RelayClient};
use coachdesk_sync::{MemorySecrets, SecretName, SecretSource};
use support::{eventually, RelayProc, World};

/// The sources of the inbox entries that belong to the booking.
fn sources_of(w: &World, booking_id: &str) -> Vec<String> {
    w.store
        .lock()
        .unwrap()
        .list_inbox(&InboxFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .expect("inbox")
        .into_iter()
        .filter(|e| e.booking_id.as_deref() == Some(booking_id))
        .map(|e| e.source)
        .collect()
}

/// A client books the coaching session and pays; the simulator sends its webhooks.
fn book_and_pay(w: &World, name: &str, email: &str) -> coachdesk_sim::client::Booking {
    let booking = w.book_coaching(name, email);
    w.pay(&booking.invitee_uuid, &booking.email);
    w.client.flush().expect("flush");
    booking
}

#[tokio::test]
async fn events_sealed_for_a_lost_key_are_recovered_by_reconciliation() {
    let mut w = World::start(DeliveryKnobs::default()).await;
    let first = book_and_pay(&w, "Ada Sealed", "ada@example.com");
    let ada = w.settle_to(&first.invitee_uri, "confirmed").await;
    assert!(
        sources_of(&w, ada.id.as_str()).iter().all(|s| s == "relay"),
        "opened from the relay's sealed copies"
    );
    let old_key = sealing::identity(&w.keychain).expect("key").public();
    assert_eq!(
        w.handle().status().sealing,
        coachdesk_sync::Sealing::On,
        "the diagnostics say the relay seals for this install"
    );

    // Acknowledged before the app stops, so that what waits below is the next booking's.
    eventually("the first booking's events to be acknowledged", || async {
        (support::relay_queue_depth(&w).await == 0).then_some(())
    })
    .await;
    // The keychain loses the key while the app is off; the next booking's webhooks are
    // sealed for the lost key only.
    w.stop_sync();
    w.keychain
        .remove(SecretName::RelaySealingKey)
        .expect("forget the key");
    let second = book_and_pay(&w, "Bea Lost", "bea@example.com");
    eventually("both webhooks to wait at the relay", || async {
        (support::relay_queue_depth(&w).await == 2).then_some(())
    })
    .await;

    w.start_sync();
    let bea = w.settle_to(&second.invitee_uri, "confirmed").await;
    let sources = sources_of(&w, bea.id.as_str());
    assert!(!sources.is_empty());
    assert!(
        sources.iter().all(|s| s == "reconcile"),
        "nothing of it came from the relay's copies: {sources:?}"
    );
    assert_ne!(
        sealing::identity(&w.keychain).expect("new key").public(),
        old_key,
        "a new key was made and registered"
    );
    eventually("the unreadable events to be acknowledged", || async {
        (support::relay_queue_depth(&w).await == 0).then_some(())
    })
    .await;
}

/// A new sealing key while events wait at the relay sealed for the one before: they are
/// opened with the key before (nothing is left to reconciliation), and what arrives after
/// is opened with the new key.
#[tokio::test]
async fn a_new_sealing_key_still_opens_what_was_sealed_for_the_one_before() {
    let w = World::start(DeliveryKnobs::default()).await;
    let first = book_and_pay(&w, "Cai Before", "cai@example.com");
    w.settle_to(&first.invitee_uri, "confirmed").await;
    let old_key = sealing::identity(&w.keychain).expect("key").public();

    // Webhook processing off: the next booking's webhooks wait, sealed for the old key.
    w.store
        .lock()
        .unwrap()
        .set_feature(Feature::WebhookProcessing, false)
        .unwrap();
    let rounds = eventually("the pull loop to pause", || async {
        let status = w.handle().status();
        status.webhooks_paused.then_some(status.pull_rounds)
    })
    .await;
    // A pull already in flight when the toggle changed finishes within one more round.
    eventually("the pull loop to finish a paused round", || async {
        (w.handle().status().pull_rounds >= rounds + 2).then_some(())
    })
    .await;
    let waiting = book_and_pay(&w, "Dee Waiting", "dee@example.com");
    eventually("both webhooks to wait at the relay", || async {
        (support::relay_queue_depth(&w).await == 2).then_some(())
    })
    .await;

    let sealed_before = w.handle().rotate_sealing_key().await.expect("a new key");
    assert_eq!(
        sealed_before, 2,
        "the relay counts what waits for the old key"
    );
    let keys = sealing::keys(&w.keychain).expect("keys");
    assert_ne!(keys.current.public(), old_key);
    assert_eq!(keys.previous.map(|k| k.public()), Some(old_key));

    w.store
        .lock()
        .unwrap()
        .set_feature(Feature::WebhookProcessing, true)
        .unwrap();
    let dee = w.settle_to(&waiting.invitee_uri, "confirmed").await;
    let sources = sources_of(&w, dee.id.as_str());
    assert!(
        !sources.is_empty() && sources.iter().all(|s| s == "relay"),
        "opened with the key before from the relay's copies, not reconciled: {sources:?}"
    );
    let after = book_and_pay(&w, "Eli After", "eli@example.com");
    let eli = w.settle_to(&after.invitee_uri, "confirmed").await;
    let sources = sources_of(&w, eli.id.as_str());
    assert!(
        !sources.is_empty() && sources.iter().all(|s| s == "relay"),
        "sealed for the new key and opened with it: {sources:?}"
    );
}

/// A coach who is a tenant of a hosted relay: the app's relay client, given the tenant's
/// URL, hands over its Stripe secret, registers its key, pulls and opens what arrived,
/// and acknowledges it, all under `/t/{name}`.
#[tokio::test]
async fn the_relay_client_serves_a_tenant_of_a_hosted_relay() {
    let relay = RelayProc::start();
    let out = std::process::Command::new(support::relay_bin())
        .args(["tenant", "create", "ann-smith", "--mode", "test"])
        .env("COACHDESK_RELAY_DB", relay.dir.path().join("relay.db"))
        .output()
        .expect("tenant create");
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).expect("utf8");
    let token = printed
        .lines()
        .find_map(|l| l.strip_prefix("token"))
        .map(|t| t.trim().to_owned())
        .expect("token");
    let base = format!("{}/t/ann-smith", relay.url);
    let client = RelayClient::new(&base, Duration::from_secs(1)).expect("client");
    let secret = "whsec_endpoint_of_ann_smith";
    assert_eq!(
        client
            .put_stripe_signing_secrets(&token, &[secret])
            .await
            .expect("hand over"),
        KeyHandover::Accepted
    );
    let secrets = MemorySecrets::default();
    let me = sealing::keys(&secrets).expect("key");
    let registered = client
        .put_app_keys(&token, &[me.current.public().as_string()])
        .await
        .expect("register")
        .expect("a relay that seals");
    assert_eq!((registered.kept, registered.sealed_before), (1, 0));

    let body = r#"{"id":"evt_tenant_1","object":"event","livemode":false,"type":"checkout.session.completed","data":{"object":{"object":"checkout.session","customer_details":{"email":"ann.client@example.com"}}}}"#;
    let sig = coachdesk_signature::sign_header(
        secret.as_bytes(),
        time::OffsetDateTime::now_utc().unix_timestamp(),
        body.as_bytes(),
    );
    let posted = reqwest::Client::new()
        .post(format!("{base}/hooks/stripe"))
        .header("Content-Type", "application/json")
        .header("Stripe-Signature", sig)
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status().as_u16(), 200);

    let mut page = client
        .pull(&token, 0, 100, Duration::ZERO)
        .await
        .expect("pull");
    assert!(page.events.iter().all(|e| e.sealed.is_some()));
    assert_eq!(sealing::open_page(&mut page, Some(&me)), Vec::<i64>::new());
    let bodies: Vec<&str> = page.events.iter().map(|e| e.body.as_str()).collect();
    assert_eq!(bodies, vec![body]);
    let seq = page.events[0].seq;
    assert_eq!(
        client
            .ack(&token, seq, page.relay_id.as_deref())
            .await
            .expect("ack"),
        coachdesk_sync::relay::AckOutcome::Acked
    );
    // The relay's own coach's token is no key to the tenant.
    assert!(client
        .pull(&relay.token, 0, 100, Duration::ZERO)
        .await
        .is_err());
}
