//! The relay pull against the real relay binary: a page and its cursor commit in one
//! transaction, then the ack; a crash between the commit and the ack applies nothing twice.
//!
//! Needs a session keyring: `keyctl session - cargo test -p coachdesk-sync`.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use coachdesk_protocol::ipc::InboxFilter;
use coachdesk_sim::DeliveryKnobs;
use coachdesk_sync::relay::{apply_page, cursor, RelayClient, RELAY_CURSOR};
use support::{eventually, World};
use time::OffsetDateTime;

/// What the database holds for the booking: inbox rows by key, audit causes, outbox keys.
fn footprint(w: &World, booking_id: &str) -> (BTreeMap<String, usize>, Vec<String>, Vec<String>) {
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
    let b = w
        .client
        .book("coaching-60", "Sol", "sol@example.com")
        .expect("book");
    w.pay(&b.invitee_uuid, &b.email);
    w.client.flush().expect("flush");
    eventually("both webhooks to wait at the relay", || async {
        (support::relay_queue_depth(&w).await == 2).then_some(())
    })
    .await;

    // The loop's first half by hand: pull, then apply the page and its cursor...
    let relay = RelayClient::new(&w.relay.url, Duration::from_secs(1)).expect("client");
    let page = relay
        .pull(&w.relay.token, 0, 100, Duration::ZERO)
        .await
        .expect("pull");
    assert_eq!(page.events.len(), 2, "{page:?}");
    let last = page.events.last().expect("events").seq;
    let report = apply_page(&w.store, &page, OffsetDateTime::now_utc()).expect("apply");
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
    let again = apply_page(&w.store, &page, OffsetDateTime::now_utc()).expect("apply again");
    assert_eq!((again.applied, again.cursor), (0, last));
    assert_eq!(footprint(&w, &booking.id), after);
    assert!(w.refund_posts().is_empty());
    w.assert_no_invalid_stripe_requests();
}
