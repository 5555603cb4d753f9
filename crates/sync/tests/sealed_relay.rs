//! The relay keeps only sealed copies of the coach's webhooks once the app registered its
//! key. A key lost with the keychain leaves events no key of the app opens: the app passes
//! them and reconciliation with the providers recovers what they said.
//!
//! Needs a session keyring: `keyctl session - cargo test -p coachdesk-sync`.

mod support;

use coachdesk_protocol::ipc::InboxFilter;
use coachdesk_sim::DeliveryKnobs;
use coachdesk_sync::relay::sealing;
use coachdesk_sync::{SecretName, SecretSource};
use support::{eventually, World};

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

#[tokio::test]
async fn events_sealed_for_a_lost_key_are_recovered_by_reconciliation() {
    let mut w = World::start(DeliveryKnobs::default()).await;
    let first = w
        .client
        .book("coaching-60", "Ada Sealed", "ada@example.com")
        .expect("book");
    w.pay(&first.invitee_uuid, &first.email);
    w.client.flush().expect("flush");
    let ada = w.settle_to(&first.invitee_uri, "confirmed").await;
    assert!(
        sources_of(&w, &ada.id).iter().all(|s| s == "relay"),
        "opened from the relay's sealed copies"
    );
    let old_key = sealing::identity(&w.keychain).expect("key").public();

    // The keychain loses the key while the app is off; the next booking's webhooks are
    // sealed for the lost key only.
    w.stop_sync();
    w.keychain
        .remove(SecretName::RelaySealingKey)
        .expect("forget the key");
    let second = w
        .client
        .book("coaching-60", "Bea Lost", "bea@example.com")
        .expect("book");
    w.pay(&second.invitee_uuid, &second.email);
    w.client.flush().expect("flush");
    eventually("both webhooks to wait at the relay", || async {
        (support::relay_queue_depth(&w).await == 2).then_some(())
    })
    .await;

    w.start_sync();
    let bea = w.settle_to(&second.invitee_uri, "confirmed").await;
    let sources = sources_of(&w, &bea.id);
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
