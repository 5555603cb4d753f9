//! Backups against the real relay and simulator: a backup taken while sync applies a burst
//! is one consistent moment; a restore brings back, through the relay and reconciliation,
//! every booking made after the backup, including one whose webhooks never arrived.
//!
//! Needs a session keyring: `keyctl session - cargo test -p coachdesk-sync`.

mod support;

use coachdesk_desk::backups;
use coachdesk_sim::DeliveryKnobs;
use coachdesk_store::Store;
use coachdesk_sync::relay::RECONCILE_SINCE;
use rusqlite::Connection;
use support::{eventually, World};
use time::OffsetDateTime;

/// Every booking's state is the last state its audit trail reached, and nothing points at
/// a missing row: what a copy torn between two writes would break.
fn assert_consistent(path: &std::path::Path) {
    let conn = Connection::open(path).expect("open copy");
    let check: String = conn
        .pragma_query_value(None, "integrity_check", |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    let dangling: i64 = conn
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("foreign_key_check");
    assert_eq!(dangling, 0);
    let torn: Vec<(String, String, String)> = conn
        .prepare(
            "SELECT b.id, b.state, a.to_state FROM bookings b
             JOIN audit_log a ON a.id = (SELECT MAX(id) FROM audit_log WHERE booking_id = b.id)
             WHERE a.to_state <> b.state",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .expect("query");
    assert!(
        torn.is_empty(),
        "bookings whose state is not their last audit's: {torn:?}"
    );
}

#[tokio::test]
async fn a_restore_followed_by_sync_loses_no_booking() {
    let mut w = World::start(DeliveryKnobs::default()).await;
    let first = w.book_coaching("Ada", "ada@example.com");
    w.pay(&first.invitee_uuid, &first.email);
    w.settle_to(&first.invitee_uri, "confirmed").await;

    // A burst that sync is applying while the backup is taken.
    let burst: Vec<_> = (0..6)
        .map(|i| {
            let b = w
                .client
                .book(
                    "coaching-60",
                    &format!("Burst {i}"),
                    &format!("burst{i}@example.com"),
                )
                .expect("book");
            w.pay(&b.invitee_uuid, &b.email);
            b
        })
        .collect();
    let backup = w.dir.path().join("picked-by-the-coach.db");
    let summary = w.store.lock().unwrap().backup_to(&backup).expect("backup");
    assert!(summary.bookings >= 1, "{summary:?}");
    assert_consistent(&backup);
    for b in &burst {
        w.settle_to(&b.invitee_uri, "confirmed").await;
    }

    // After the backup: one booking arrives through the relay as usual...
    let through_relay = w.book_coaching("Bea", "bea@example.com");
    w.pay(&through_relay.invitee_uuid, &through_relay.email);
    w.settle_to(&through_relay.invitee_uri, "confirmed").await;
    // ...and one whose webhooks are all lost: only the providers know it.
    w.client
        .set_delivery(&DeliveryKnobs {
            drop_probability: 1.0,
            ..DeliveryKnobs::default()
        })
        .expect("drop webhooks");
    let only_at_providers = w.book_coaching("Cy", "cy@example.com");
    w.pay(&only_at_providers.invitee_uuid, &only_at_providers.email);
    w.client.flush().expect("flush");
    assert!(w.booking_of(&only_at_providers.invitee_uri).is_none());
    w.client
        .set_delivery(&DeliveryKnobs::default())
        .expect("deliver again");

    // The coach restores the backup (the app's sync is stopped meanwhile).
    w.stop_sync();
    let restored = {
        let mut store = w.store.lock().unwrap();
        backups::restore(&mut store, &w.db_path, &backup, OffsetDateTime::now_utc())
            .expect("restore")
    };
    assert_eq!(restored.summary, summary);
    assert!(w.booking_of(&through_relay.invitee_uri).is_none());
    assert_eq!(w.state_of(&first.invitee_uri), "confirmed");
    // The database as it was is kept aside, whole.
    let aside = Store::open(&restored.kept_aside).expect("aside");
    assert!(aside
        .booking_by_invitee(&through_relay.invitee_uri)
        .expect("query")
        .is_some());
    drop(aside);

    // Sync starts again: the relay is pulled from its beginning and the providers are
    // reconciled since the backup.
    w.start_sync();
    for b in burst
        .iter()
        .chain([&first, &through_relay, &only_at_providers])
    {
        w.settle_to(&b.invitee_uri, "confirmed").await;
    }
    eventually(
        "the restore's reconciliation mark to be cleared",
        || async {
            w.store
                .lock()
                .unwrap()
                .setting(RECONCILE_SINCE)
                .expect("setting")
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert_consistent(&w.db_path);
    assert!(w.refund_posts().is_empty());
    w.assert_no_invalid_stripe_requests();
}

#[test]
fn a_file_that_is_not_a_backup_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("coachdesk.db");
    let mut store = Store::open(&db).expect("store");
    store.set_setting("marker", "kept").expect("setting");
    let bogus = dir.path().join("holiday-photo.db");
    std::fs::write(&bogus, b"\x89PNG not a database").expect("write");
    let err =
        backups::restore(&mut store, &db, &bogus, OffsetDateTime::now_utc()).expect_err("refused");
    assert!(
        matches!(
            err,
            backups::RestoreError::Backup(coachdesk_store::BackupError::NotCoachdesk { .. })
        ),
        "{err:?}"
    );
    assert_eq!(
        store.setting("marker").expect("read").as_deref(),
        Some("kept")
    );
    // Nothing was set aside either: the refusal came before any change.
    let aside = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("before-restore"))
        .count();
    assert_eq!(aside, 0);
}
