//! The relay pull against the real relay binary: a page and its cursor commit in one
//! transaction, then the ack; a crash between the commit and the ack applies nothing twice.
//!
//! Needs a session keyring: `keyctl session - cargo test -p coachdesk-sync`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use coachdesk_protocol::ipc::InboxFilter;
use coachdesk_sim::DeliveryKnobs;
use coachdesk_sync::relay::{apply_page, cursor, sealing, KeyHandover, RelayClient, RELAY_CURSOR};
use coachdesk_sync::MemorySecrets;
use support::{eventually, World};
use time::OffsetDateTime;

/// What the database holds for the booking: inbox rows by key, audit causes, outbox keys.
fn footprint(
    w: &World,
    booking_id: &coachdesk_domain::BookingId,
) -> (BTreeMap<String, usize>, Vec<String>, Vec<String>) {
    let store = w.store.lock().unwrap();
    let mut inbox = BTreeMap::new();
    for e in store
        .list_inbox(&InboxFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .expect("inbox")
        .into_iter()
        .filter(|e| e.provider == "stripe" || e.provider == "calendly")
    {
        *inbox.entry(e.key).or_insert(0) += 1;
    }
    let audit = store
        .booking_detail(booking_id)
        .expect("detail")
        .audit
        .into_iter()
        .map(|a| a.cause)
        .collect();
    let outbox = store
        .outbox_entries(Some(booking_id))
        .expect("outbox")
        .into_iter()
        .map(|e| e.effect_key)
        .collect();
    (inbox, audit, outbox)
}

#[tokio::test]
async fn a_crash_between_commit_and_ack_applies_nothing_twice() {
    let mut w = World::start(DeliveryKnobs::default()).await;
    w.stop_sync();
    let b = w.book_coaching("Sol", "sol@example.com");
    w.pay(&b.invitee_uuid, &b.email);
    w.client.flush().expect("flush");
    eventually("both webhooks to wait at the relay", || async {
        (support::relay_queue_depth(&w).await == 2).then_some(())
    })
    .await;

    // The loop's first half by hand: pull, then apply the page and its cursor...
    let relay = RelayClient::new(&w.relay.url, Duration::from_secs(1)).expect("client");
    let mut page = relay
        .pull(&w.relay.token, 0, 100, Duration::ZERO)
        .await
        .expect("pull");
    // The relay seals for the key the app registered at its start: open as the loop does.
    assert!(
        page.events
            .iter()
            .all(|e| e.sealed.is_some() && e.body.is_empty()),
        "the relay keeps only sealed copies once the app registered its key"
    );
    let me = sealing::keys(&w.keychain).expect("the app's sealing key");
    assert_eq!(sealing::open_page(&mut page, Some(&me)), Vec::<i64>::new());
    assert_eq!(page.events.len(), 2, "{page:?}");
    let last = page.events.last().expect("events").seq;
    let report = apply_page(
        &w.store,
        &page,
        &Default::default(),
        OffsetDateTime::now_utc(),
    )
    .expect("apply");
    assert_eq!((report.applied, report.cursor), (2, last));
    // ...and "crash" before the ack: the cursor committed with the events.
    assert_eq!(cursor(&w.store.lock().unwrap()).expect("cursor"), last);
    assert_eq!(
        support::relay_queue_depth(&w).await,
        2,
        "nothing acknowledged yet"
    );
    let booking = w.booking_of(&b.invitee_uri).expect("booking");
    assert_eq!(booking.state.as_str(), "confirmed");
    let before = footprint(&w, &booking.id);
    assert_eq!(before.0.len(), 2);
    assert!(before.0.values().all(|&n| n == 1), "{:?}", before.0);

    // Restart: the first pull acknowledges what was committed and applies nothing again.
    w.start_sync();
    eventually("the relay to get the ack after the restart", || async {
        (support::relay_queue_depth(&w).await == 0).then_some(())
    })
    .await;
    let status = eventually("the status to show the cursor", || async {
        let status = w.handle().status();
        (status.relay_cursor == last).then_some(status)
    })
    .await;
    assert_eq!(
        (status.events_applied, status.relay_cursor),
        (0, last),
        "{status:?}"
    );
    w.settle_to(&b.invitee_uri, "confirmed").await;
    let after = footprint(&w, &booking.id);
    assert_eq!(after.0, before.0, "inbox rows");
    for key in before.0.keys() {
        assert_eq!(
            after.1.iter().filter(|c| c.ends_with(key.as_str())).count(),
            before
                .1
                .iter()
                .filter(|c| c.ends_with(key.as_str()))
                .count(),
            "audit rows caused by {key}: {:?}",
            after.1
        );
    }
    assert_eq!(after.2, before.2, "outbox rows");

    // Were the page sent again anyway (a database restored from before the cursor), the
    // inbox's unique provider keys absorb it: no row, no transition, no effect.
    w.stop_sync();
    w.store
        .lock()
        .unwrap()
        .set_setting(RELAY_CURSOR, "0")
        .expect("rewind");
    let again = apply_page(
        &w.store,
        &page,
        &Default::default(),
        OffsetDateTime::now_utc(),
    )
    .expect("apply again");
    assert_eq!((again.applied, again.cursor), (0, last));
    assert_eq!(footprint(&w, &booking.id), after);
    assert!(w.refund_posts().is_empty());
    w.assert_no_invalid_stripe_requests();
}

/// The relay is replaced by an empty one at the same address (redeployed without its
/// data) while the app is off, and receives more events than the app's old cursor: the app
/// notices the new identity, pulls that relay from its beginning (losing none of its
/// events), acks only what it applied, and reconciles.
#[tokio::test]
async fn a_relay_replaced_by_an_empty_one_is_pulled_from_its_beginning() {
    use coachdesk_sync::relay::RELAY_ID;
    use coachdesk_sync::{Secret, SecretName};

    let mut w = World::start(DeliveryKnobs::default()).await;
    let first = w.book_coaching("Ada Before", "ada@example.com");
    w.settle_to(&first.invitee_uri, "awaiting_payment").await;
    eventually("the first relay to get the ack", || async {
        (support::relay_queue_depth(&w).await == 0).then_some(())
    })
    .await;
    let old_cursor = cursor(&w.store.lock().unwrap()).expect("cursor");
    let old_id = w.store.lock().unwrap().setting(RELAY_ID).expect("id");
    assert!(
        old_cursor >= 1 && old_id.is_some(),
        "{old_cursor} {old_id:?}"
    );

    // The new relay, with the app's new token and the subscription's key handed over.
    w.stop_sync();
    w.relay.replace_with_empty();
    w.keychain
        .set(SecretName::RelayToken, &Secret::new(&w.relay.token))
        .expect("keychain");
    let handed = coachdesk_sync::subscription::hand_key_to_relay(
        &w.relay.url,
        &w.keychain,
        &Secret::new(support::CALENDLY_SIGNING_KEY),
    )
    .await
    .expect("key to the new relay");
    assert_eq!(handed, KeyHandover::Accepted);
    // It receives more events than the old cursor, while the app is off.
    let observer = w.relay.create_token("observer", "test");
    let relay = RelayClient::new(&w.relay.url, Duration::from_secs(1)).expect("client");
    let mut booked = Vec::new();
    let held = loop {
        let page = relay
            .pull(&observer, 0, 1000, Duration::ZERO)
            .await
            .expect("observer pull");
        if page.events.len() as i64 > old_cursor + 1 {
            assert_ne!(page.relay_id, old_id, "a new relay has a new identity");
            break page;
        }
        let n = booked.len();
        let b = w
            .client
            .book(
                "coaching-60",
                &format!("Bo After {n}"),
                &format!("bo{n}@example.com"),
            )
            .expect("book");
        booked.push(b);
        w.client.flush().expect("flush");
        eventually("the new relay to hold the booking", || async {
            let page = relay.pull(&observer, 0, 1000, Duration::ZERO).await.ok()?;
            (page.events.len() > n).then_some(())
        })
        .await;
    };
    let newest = held.events.last().expect("events").seq;

    w.start_sync();
    // Every event the new relay holds reaches the app, including those at or below the
    // old cursor, which a pull after the old cursor would have skipped.
    eventually("every event of the new relay in the inbox", || async {
        let inbox: std::collections::HashSet<String> = w
            .store
            .lock()
            .unwrap()
            .list_inbox(&InboxFilter {
                limit: Some(1000),
                ..Default::default()
            })
            .ok()?
            .into_iter()
            .map(|e| e.key)
            .collect();
        // The relay serves a keyed hash of each key: the provider's own is in the body.
        held.events
            .iter()
            .all(|e| {
                coachdesk_domain::provider::parse(e.provider, e.body.as_bytes())
                    .is_ok_and(|parsed| inbox.contains(&parsed.key))
            })
            .then_some(())
    })
    .await;
    for b in &booked {
        w.settle_to(&b.invitee_uri, "awaiting_payment").await;
    }
    let store_cursor = eventually("the app's cursor on the new relay", || async {
        let c = cursor(&w.store.lock().unwrap()).ok()?;
        (c == newest).then_some(c)
    })
    .await;
    assert_eq!(
        w.store.lock().unwrap().setting(RELAY_ID).expect("id"),
        held.relay_id,
        "the cursor now belongs to the new relay"
    );
    // The app acked exactly what it applied: its cursor at the relay is its own cursor.
    eventually("the ack to reach the new relay", || async {
        (w.relay.token_cursor("app") == store_cursor).then_some(())
    })
    .await;
    eventually("a reconciliation after the relay changed", || async {
        w.handle().status().last_reconcile_at.map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn a_relay_with_key_hand_over_turned_off_says_so_and_is_not_an_outage() {
    let relay =
        support::RelayProc::start_with(&[("COACHDESK_RELAY_CALENDLY_KEY_HANDOVER", "false")]);
    let keychain = MemorySecrets::default();
    keychain.set(
        coachdesk_sync::SecretName::RelayToken,
        coachdesk_sync::Secret::new(&relay.token),
    );
    let key = coachdesk_sync::Secret::new(support::CALENDLY_SIGNING_KEY);
    let handed = coachdesk_sync::subscription::hand_key_to_relay(&relay.url, &keychain, &key)
        .await
        .expect("a refusal by configuration is an answer, not an error");
    assert_eq!(handed, KeyHandover::Disabled);
    // A bad token is still an error, not "turned off".
    keychain.set(
        coachdesk_sync::SecretName::RelayToken,
        coachdesk_sync::Secret::new("cdr_wrong"),
    );
    let err = coachdesk_sync::subscription::hand_key_to_relay(&relay.url, &keychain, &key)
        .await
        .expect_err("401");
    assert!(
        matches!(
            err,
            coachdesk_sync::SyncError::Provider(coachdesk_providers::ProviderError::Transient {
                status: Some(401),
                ..
            })
        ),
        "{err:?}"
    );
}

/// The coach's Stripe restricted key goes to the relay at sync's start (Settings restarts
/// sync on a save), and the status says what the relay made of it: a key of the other mode
/// is refused with the relay's reason while webhooks keep flowing; a removed key has the
/// relay forget it.
#[tokio::test]
async fn the_restricted_key_is_handed_to_the_relay_and_its_answer_shown() {
    use coachdesk_sync::relay::RelayCheckout;
    use coachdesk_sync::{Secret, SecretName, SecretSource};
    let mut w = World::start(DeliveryKnobs::default()).await;
    let checkout_after_restart = |w: &mut World| {
        w.stop_sync();
        w.start_sync();
    };
    eventually("the first pull to hand over (no key saved)", || async {
        (w.handle().status().relay_checkout == RelayCheckout::PaymentLink).then_some(())
    })
    .await;

    w.keychain
        .set(
            SecretName::StripeCheckoutKey,
            &Secret::new("rk_test_coach_checkout_key_0001"),
        )
        .expect("save");
    checkout_after_restart(&mut w);
    eventually("the relay to take the key", || async {
        (w.handle().status().relay_checkout == RelayCheckout::Sessions).then_some(())
    })
    .await;

    // A live key on a test token: refused, with the relay's reason; pulls go on.
    w.keychain
        .set(
            SecretName::StripeCheckoutKey,
            &Secret::new("rk_live_coach_checkout_key_0002"),
        )
        .expect("save");
    checkout_after_restart(&mut w);
    let why = eventually("the relay to refuse the key", || async {
        match w.handle().status().relay_checkout {
            RelayCheckout::Refused(why) => Some(why),
            _ => None,
        }
    })
    .await;
    assert!(why.contains("mode"), "{why}");
    let booking = w.book_coaching("Kim Keys", "kim@example.com");
    w.pay(&booking.invitee_uuid, &booking.email);
    w.client.flush().expect("flush");
    w.settle_to(&booking.invitee_uri, "confirmed").await;

    w.keychain
        .remove(SecretName::StripeCheckoutKey)
        .expect("remove");
    checkout_after_restart(&mut w);
    eventually("the relay to forget the key", || async {
        (w.handle().status().relay_checkout == RelayCheckout::PaymentLink).then_some(())
    })
    .await;
}
