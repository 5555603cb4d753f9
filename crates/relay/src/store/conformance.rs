//! The storage contract every backend must keep, as one set of tests run against each:
//! SQLite on a temporary file and PostgreSQL on the test binary's private server (see
//! `tests/support/postgres.rs`; without it the PostgreSQL variants fail).

use std::sync::Arc;

use coachdesk_protocol::relay::Provider;

use super::{
    Acked, Backend, ConsumerId, Inserted, NewEvent, ReadStore, StoreError, WriteStore,
    KEPT_CALENDLY_KEYS,
};
use crate::config::{DatabaseUrl, Durability};
use crate::tenant::TenantId;
use crate::token::{TokenMode, TokenName};

/// The relay's own coach, where the single-tenant contract is checked.
const H: TenantId = TenantId::HOME;

#[path = "../../tests/support/postgres.rs"]
mod test_postgres;

/// Each backend's migrations: every file in its folder listed, numbered in order, the last
/// one its schema version.
#[test]
fn every_migration_file_is_listed_in_order() {
    let backends = [
        (
            "/migrations",
            super::sqlite::MIGRATIONS,
            super::sqlite::SCHEMA_VERSION,
        ),
        (
            "/migrations-pg",
            super::pg::MIGRATIONS,
            super::pg::SCHEMA_VERSION,
        ),
    ];
    for (folder, migrations, schema_version) in backends {
        let dir = format!("{}{folder}", env!("CARGO_MANIFEST_DIR"));
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = migrations.iter().map(|m| m.1.to_owned()).collect();
        assert_eq!(files, listed, "{folder}");
        for (index, (version, name, _)) in migrations.iter().enumerate() {
            assert_eq!(*version as usize, index + 1, "{folder}");
            assert!(
                name.starts_with(&format!("{version:04}_")),
                "{folder}: {name}"
            );
        }
        assert_eq!(
            migrations.last().map(|m| m.0),
            Some(schema_version),
            "{folder}"
        );
    }
}

fn sqlite() -> (tempfile::TempDir, Arc<dyn Backend>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = super::sqlite::SqliteBackend::open(&dir.path().join("r.db"), Durability::Full)
        .expect("open");
    (dir, Arc::new(backend))
}

/// A backend on a fresh PostgreSQL database (`None` only with `COACHDESK_TEST_POSTGRES=skip`).
pub(super) fn postgres() -> Option<Arc<dyn Backend>> {
    let url = test_postgres::fresh_database()?;
    let url = DatabaseUrl::new(url).expect("url");
    Some(Arc::new(
        super::pg::PgBackend::open(&url, Durability::Full, 4).expect("open"),
    ))
}

/// The URL of a fresh PostgreSQL database, for backend-specific tests.
pub(super) fn postgres_url() -> Option<DatabaseUrl> {
    test_postgres::fresh_database().and_then(DatabaseUrl::new)
}

/// Each test once per backend: `on_sqlite::NAME` and `on_postgres::NAME`.
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test]
            fn $test() {
                let (_dir, backend) = super::sqlite();
                super::$test(&*backend);
            })*
        }
        mod on_postgres {
            $(#[test]
            fn $test() {
                if let Some(backend) = super::postgres() {
                    super::$test(&*backend);
                }
            })*
        }
    };
}

on_both_backends!(
    dedup_cursors_marks_and_purge,
    modes_see_their_own_stripe_events_and_every_calendly_one,
    handed_over_keys_are_kept_per_consumer,
    handed_over_stripe_secrets_are_replaced_per_consumer,
    pull_respects_byte_budget_but_returns_one,
    a_failed_group_keeps_nothing,
    the_identity_is_made_once,
    a_batch_of_inserts_dedups_within_itself_and_against_the_store,
    links_keep_their_checkout_terms_and_old_tables_still_work,
    the_first_checkout_claim_wins_and_records_its_session,
    redirect_visits_add_up_per_slug,
    invitee_notes_keep_the_first_value_of_each_field,
    tenants_share_nothing,
    events_stored_before_the_index_key_are_rekeyed_once,
);

/// Two tenants with the same names everywhere: nothing one writes is seen, acknowledged or
/// removed through the other, and removing one takes exactly what it owned.
fn tenants_share_nothing(b: &dyn Backend) {
    use crate::tenant::TenantName;
    use coachdesk_protocol::relay::PaymentLinkRoute;
    let name = |n: &str| TenantName::parse(n).expect("name");
    let a = b.create_tenant(&name("coach-a"), 1).expect("a").id;
    let c = b.create_tenant(&name("coach-c"), 2).expect("c").id;
    assert!(matches!(
        b.create_tenant(&name("coach-a"), 3),
        Err(StoreError::TenantTaken(_))
    ));
    let app = TokenName::parse("app").expect("token name");
    let ca = b
        .create_consumer(a, &app, TokenMode::Test, "hash-a", 1)
        .expect("a's app");
    let cc = b
        .create_consumer(c, &app, TokenMode::Test, "hash-c", 1)
        .expect("c's app, same name");
    assert_eq!((ca.tenant, cc.tenant), (a, c));

    let mut w = b.writer().expect("writer");
    let event = |tenant, key| NewEvent {
        tenant,
        provider: Provider::Stripe,
        key,
        body: "{}",
        sealed: None,
        livemode: Some(false),
        received_at_ms: 10,
    };
    let mut outcomes = Vec::new();
    w.group(&mut |tx| {
        outcomes = tx.insert_events(&[event(a, "evt_1"), event(c, "evt_1"), event(a, "evt_1")])?;
        outcomes.push(tx.insert_event(&event(c, "evt_2"))?);
        Ok(())
    })
    .expect("insert");
    assert!(matches!(
        outcomes.as_slice(),
        [
            Inserted::New(_),
            Inserted::New(_),
            Inserted::Duplicate,
            Inserted::New(_)
        ]
    ));
    let r = b.reader().expect("reader");
    let pulled = |t| r.pull(t, TokenMode::Test, 0, 10, 1 << 20).expect("pull");
    assert_eq!(pulled(a).len(), 1);
    assert_eq!(pulled(c).len(), 2);
    assert!(pulled(H).is_empty(), "the relay's own coach sees neither");

    // A's app acknowledges everything there is: C's events stay in C's queue.
    let newest = r.newest_seq().expect("newest");
    assert_eq!(ack(&mut *w, ca.id, newest, 20), Acked::Through(newest));
    let depths = r.queue_by_tenant().expect("depths");
    assert_eq!(depths, vec![("coach-c".to_owned(), 2)]);

    let link = |url: &str| PaymentLinkRoute {
        slug: "coaching".into(),
        url: url.into(),
        ..PaymentLinkRoute::default()
    };
    w.group(&mut |tx| {
        tx.replace_links(a, &[link("https://buy.stripe.com/a")])?;
        tx.replace_links(c, &[link("https://buy.stripe.com/c")])?;
        tx.count_redirect(a, "coaching", 5)?;
        tx.add_calendly_key(ca.id, "calendly-key-of-tenant-a", 5)?;
        tx.replace_stripe_secrets(cc.id, &["whsec_secret_of_tenant_c".to_owned()], 5)
    })
    .expect("tables");
    assert_eq!(
        r.link_for(a, "coaching").expect("a").as_deref(),
        Some("https://buy.stripe.com/a")
    );
    assert_eq!(
        r.link_for(c, "coaching").expect("c").as_deref(),
        Some("https://buy.stripe.com/c")
    );
    assert_eq!(r.link_for(H, "coaching").expect("home"), None);
    assert_eq!(r.redirects(c).expect("c's visits"), vec![]);
    assert_eq!(r.calendly_keys(c).expect("c's keys"), Vec::<String>::new());
    assert_eq!(
        r.stripe_secrets(a).expect("a's secrets"),
        Vec::<String>::new()
    );
    assert_eq!(
        r.consumer_by_hash("hash-c").expect("c").map(|x| x.tenant),
        Some(c)
    );

    // App keys are per tenant; a sealed event keeps only its sealed bytes.
    w.group(&mut |tx| {
        tx.replace_app_keys(ca.id, &["age1-key-of-a".to_owned()], 6)?;
        tx.insert_event(&NewEvent {
            body: "",
            sealed: Some(b"\x00sealed\xff"),
            ..event(a, "evt_sealed")
        })
        .map(drop)
    })
    .expect("sealed");
    assert_eq!(r.app_keys(a).expect("a's keys"), vec!["age1-key-of-a"]);
    assert_eq!(r.app_keys(c).expect("c's keys"), Vec::<String>::new());
    let sealed = pulled(a).pop().expect("the sealed event");
    assert_eq!(
        (sealed.body.as_str(), sealed.sealed.as_deref()),
        ("", Some("AHNlYWxlZP8="))
    );
    assert_eq!(r.sealed_waiting(a, TokenMode::Test, 0).expect("count"), 1);
    assert_eq!(r.sealed_waiting(c, TokenMode::Test, 0).expect("count"), 0);

    // A restricted key is per tenant; the newest handed over is used; `None` forgets it.
    let stored = |consumer, sealed: &str| {
        Some(super::StoredCheckoutKey {
            consumer,
            sealed: sealed.to_owned(),
        })
    };
    w.group(&mut |tx| {
        tx.replace_checkout_key(cc.id, Some("v1.key-of-c"), 7)?;
        tx.replace_checkout_key(ca.id, Some("v1.first-of-a"), 7)?;
        tx.replace_checkout_key(ca.id, Some("v1.second-of-a"), 8)
    })
    .expect("checkout keys");
    assert_eq!(
        r.checkout_key(a).expect("a's"),
        stored(ca.id, "v1.second-of-a")
    );
    assert_eq!(
        r.checkout_key(c).expect("c's"),
        stored(cc.id, "v1.key-of-c")
    );
    assert_eq!(r.checkout_key(H).expect("home's"), None);
    w.group(&mut |tx| tx.replace_checkout_key(cc.id, None, 9))
        .expect("forget");
    assert_eq!(r.checkout_key(c).expect("c's"), None);
    w.group(&mut |tx| tx.replace_checkout_key(cc.id, Some("v1.key-of-c"), 9))
        .expect("again");

    // Revoking "app" under A leaves C's "app".
    assert!(b.revoke_consumer(a, "app", 30).expect("revoke"));
    assert_eq!(r.app_keys(a).expect("revoked"), Vec::<String>::new());
    assert_eq!(r.checkout_key(a).expect("revoked"), None);
    assert_eq!(r.consumers(c).expect("c's").len(), 1);

    assert!(b.remove_tenant(&name("coach-c")).expect("remove"));
    assert!(!b.remove_tenant(&name("coach-c")).expect("again"));
    assert_eq!(r.tenant(&name("coach-c")).expect("lookup"), None);
    assert!(pulled(c).is_empty());
    assert_eq!(r.consumer_by_hash("hash-c").expect("gone"), None);
    assert_eq!(r.link_for(c, "coaching").expect("gone"), None);
    assert_eq!(r.checkout_key(c).expect("gone"), None);
    assert_eq!(pulled(a).len(), 2, "A keeps its own");
    let names: Vec<String> = r
        .tenants()
        .expect("tenants")
        .into_iter()
        .map(|t| t.name.as_str().to_owned())
        .collect();
    assert_eq!(names, vec!["coach-a".to_owned()]);
}

fn invitee_notes_keep_the_first_value_of_each_field(b: &dyn Backend) {
    use super::InviteeNote;
    let note = |booked_at, canceled_at, moved_to: Option<&str>| InviteeNote {
        invitee: "inv-1".into(),
        booked_at,
        canceled_at,
        moved_to: moved_to.map(str::to_owned),
    };
    let mut w = b.writer().expect("writer");
    // The cancellation arrives before the booking; a repeated booking changes nothing.
    for n in [
        note(None, Some(500), Some("inv-2")),
        note(Some(100), None, None),
        note(Some(300), Some(900), Some("inv-3")),
    ] {
        w.group(&mut |tx| tx.note_invitee(H, &n, 1)).expect("note");
    }
    let r = b.reader().expect("reader");
    assert_eq!(
        r.invitee(H, "inv-1").expect("read"),
        Some(note(Some(100), Some(500), Some("inv-2")))
    );
    assert_eq!(r.invitee(H, "inv-9").expect("read"), None);
}

fn links_keep_their_checkout_terms_and_old_tables_still_work(b: &dyn Backend) {
    use coachdesk_protocol::relay::{CheckoutTerms, PaymentLinkRoute};
    let terms = CheckoutTerms {
        name: "Coaching".into(),
        amount_minor: 9000,
        currency: "eur".into(),
        payment_window_minutes: 90,
    };
    let links = vec![
        PaymentLinkRoute {
            slug: "coaching".into(),
            url: "https://buy.stripe.com/a".into(),
            checkout: Some(terms.clone()),
            booking_url: Some("https://calendly.com/coach/coaching".into()),
        },
        PaymentLinkRoute {
            slug: "intro".into(),
            url: "https://buy.stripe.com/b".into(),
            ..PaymentLinkRoute::default()
        },
    ];
    let mut w = b.writer().expect("writer");
    w.group(&mut |tx| tx.replace_links(H, &links))
        .expect("links");
    let r = b.reader().expect("reader");
    let route = r.pay_route(H, "coaching").expect("route").expect("some");
    assert_eq!(route.checkout, Some(terms));
    assert_eq!(
        route.booking_url.as_deref(),
        Some("https://calendly.com/coach/coaching")
    );
    let old = r.pay_route(H, "intro").expect("route").expect("some");
    assert_eq!((old.checkout, old.booking_url), (None, None));
    assert_eq!(
        r.link_for(H, "intro").expect("link").as_deref(),
        Some("https://buy.stripe.com/b")
    );
    assert_eq!(r.pay_route(H, "gone").expect("route"), None);
}

fn the_first_checkout_claim_wins_and_records_its_session(b: &dyn Backend) {
    let claim = |slug: &str, expires_at: i64| super::CheckoutClaim {
        invitee: "inv-1".into(),
        slug: slug.into(),
        email: Some("ann@example.com".into()),
        expires_at,
        session_id: None,
        created_at_ms: expires_at,
    };
    let mut w = b.writer().expect("writer");
    let mut kept = Vec::new();
    w.group(&mut |tx| {
        kept.push(tx.claim_checkout(H, &claim("coaching", 100))?);
        kept.push(tx.claim_checkout(H, &claim("intro", 200))?);
        Ok(())
    })
    .expect("claims");
    assert_eq!(kept, vec![claim("coaching", 100), claim("coaching", 100)]);
    let r = b.reader().expect("reader");
    assert_eq!(
        r.checkout_for(H, "inv-1").expect("read"),
        Some(claim("coaching", 100))
    );
    w.group(&mut |tx| tx.record_checkout_session(H, "inv-1", "cs_1"))
        .expect("record");
    let again = w_claim(&mut *w, &claim("intro", 300));
    assert_eq!(again.session_id.as_deref(), Some("cs_1"));
    assert_eq!(again.slug, "coaching");
    assert_eq!(r.checkout_for(H, "inv-2").expect("read"), None);
}

fn w_claim(w: &mut dyn WriteStore, claim: &super::CheckoutClaim) -> super::CheckoutClaim {
    let mut out = None;
    w.group(&mut |tx| {
        out = Some(tx.claim_checkout(H, claim)?);
        Ok(())
    })
    .expect("claim");
    out.expect("outcome")
}

fn redirect_visits_add_up_per_slug(b: &dyn Backend) {
    let mut w = b.writer().expect("writer");
    w.group(&mut |tx| {
        tx.count_redirect(H, "coaching", 1_000)?;
        tx.count_redirect(H, "coaching", 3_000)?;
        // Visits may commit out of order across processes: the last time only grows.
        tx.count_redirect(H, "coaching", 2_000)?;
        tx.count_redirect(H, "intro", 5_000)
    })
    .expect("count");
    let counts = b.reader().expect("reader").redirects(H).expect("read");
    let seen: Vec<(String, i64, i64)> = counts
        .into_iter()
        .map(|c| (c.slug, c.visits, c.last_at_ms))
        .collect();
    assert_eq!(
        seen,
        vec![("coaching".into(), 3, 3_000), ("intro".into(), 1, 5_000)]
    );
}

fn consumer(b: &dyn Backend, name: &str, mode: TokenMode) -> ConsumerId {
    b.create_consumer(
        H,
        &TokenName::parse(name).expect("name"),
        mode,
        &format!("hash-{name}"),
        1,
    )
    .expect("create")
    .id
}

fn insert(
    w: &mut dyn WriteStore,
    provider: Provider,
    key: &str,
    live: Option<bool>,
    at: i64,
) -> Inserted {
    let mut out = None;
    w.group(&mut |tx| {
        out = Some(tx.insert_event(&NewEvent {
            tenant: H,
            provider,
            key,
            body: "{}",
            sealed: None,
            livemode: live,
            received_at_ms: at,
        })?);
        Ok(())
    })
    .expect("insert");
    out.expect("outcome")
}

fn ack(w: &mut dyn WriteStore, c: ConsumerId, through: i64, now: i64) -> Acked {
    let mut out = None;
    w.group(&mut |tx| {
        out = Some(tx.ack(c, through, now)?);
        Ok(())
    })
    .expect("ack");
    out.expect("outcome")
}

pub(super) fn seqs(r: &dyn ReadStore, mode: TokenMode, after: i64) -> Vec<i64> {
    r.pull(H, mode, after, 100, 1 << 20)
        .expect("pull")
        .iter()
        .map(|e| e.seq)
        .collect()
}

fn dedup_cursors_marks_and_purge(b: &dyn Backend) {
    let mut w = b.writer().expect("writer");
    let r = b.reader().expect("reader");
    let (one, two) = (
        consumer(b, "one", TokenMode::Test),
        consumer(b, "two", TokenMode::Test),
    );
    assert_eq!(
        insert(&mut *w, Provider::Stripe, "evt_1", Some(false), 1000),
        Inserted::New(1)
    );
    assert_eq!(
        insert(&mut *w, Provider::Stripe, "evt_1", Some(false), 1001),
        Inserted::Duplicate
    );
    // Same key under another provider is another event.
    assert_eq!(
        insert(&mut *w, Provider::Calendly, "evt_1", None, 1002),
        Inserted::New(2)
    );
    assert_eq!(
        ack(&mut *w, one, 3, 5000),
        Acked::BeyondNewest { newest: 2 }
    );
    assert_eq!(r.queue_stats().expect("stats"), (2, Some(1000)));
    assert_eq!(ack(&mut *w, one, 2, 5000), Acked::Through(2));
    // One consumer's ack leaves the events unacknowledged for the other.
    assert_eq!(r.queue_stats().expect("stats").0, 2);
    assert_eq!(ack(&mut *w, two, 1, 5000), Acked::Through(1));
    assert_eq!(r.queue_stats().expect("stats"), (1, Some(1002)));
    // A cursor never moves back.
    assert_eq!(ack(&mut *w, one, 1, 5000), Acked::Through(2));
    assert_eq!(
        insert(&mut *w, Provider::Stripe, "evt_3", Some(false), 6000),
        Inserted::New(3)
    );
    assert_eq!(w.purge(5001, None).expect("purge"), 1);
    // Revoking the consumer that held event 2 back acknowledges it.
    assert!(b.revoke_consumer(H, "two", 7000).expect("revoke"));
    assert!(!b.revoke_consumer(H, "two", 7000).expect("revoke"));
    assert_eq!(r.queue_stats().expect("stats"), (1, Some(6000)));
    assert_eq!(ack(&mut *w, two, 3, 7000), Acked::Revoked);
    // Sequence numbers are not reused after a purge.
    w.purge(i64::MAX, None).expect("purge");
    assert_eq!(
        insert(&mut *w, Provider::Stripe, "evt_4", Some(false), 8000),
        Inserted::New(4)
    );
    assert_eq!(seqs(&*r, TokenMode::Test, 0), vec![3, 4]);
    // Unacknowledged events are purged only past the unacknowledged retention.
    assert_eq!(w.purge(0, Some(7000)).expect("purge"), 1);
    assert_eq!(seqs(&*r, TokenMode::Test, 0), vec![4]);
}

fn modes_see_their_own_stripe_events_and_every_calendly_one(b: &dyn Backend) {
    let mut w = b.writer().expect("writer");
    let r = b.reader().expect("reader");
    let test = consumer(b, "test", TokenMode::Test);
    let live = consumer(b, "live", TokenMode::Live);
    insert(&mut *w, Provider::Stripe, "t1", Some(false), 1);
    insert(&mut *w, Provider::Stripe, "l1", Some(true), 1);
    insert(&mut *w, Provider::Calendly, "c1", None, 1);
    assert_eq!(seqs(&*r, TokenMode::Test, 0), vec![1, 3]);
    assert_eq!(seqs(&*r, TokenMode::Live, 0), vec![2, 3]);
    assert_eq!(seqs(&*r, TokenMode::Any, 0), vec![1, 2, 3]);
    // The test app acks what it was served: the live event still waits for the live app.
    ack(&mut *w, test, 3, 10);
    assert_eq!(r.queue_stats().expect("stats"), (2, Some(1)));
    ack(&mut *w, live, 2, 10);
    assert_eq!(
        r.queue_stats().expect("stats").0,
        1,
        "the Calendly event waits for live"
    );
    ack(&mut *w, live, 3, 10);
    assert_eq!(r.queue_stats().expect("stats").0, 0);
}

fn handed_over_keys_are_kept_per_consumer(b: &dyn Backend) {
    let mut w = b.writer().expect("writer");
    let r = b.reader().expect("reader");
    let (one, two) = (
        consumer(b, "one", TokenMode::Live),
        consumer(b, "two", TokenMode::Live),
    );
    let mut add = |c: ConsumerId, key: &str, at: i64| {
        w.group(&mut |tx| tx.add_calendly_key(c, key, at))
            .expect("add");
    };
    add(one, "key-of-one", 1);
    for i in 0..5 {
        add(two, &format!("key-of-two-{i}"), 10 + i);
    }
    let keys = r.calendly_keys(H).expect("keys");
    assert!(keys.contains(&"key-of-one".to_owned()), "{keys:?}");
    assert_eq!(keys.len(), 1 + KEPT_CALENDLY_KEYS);
    b.revoke_consumer(H, "two", 100).expect("revoke");
    assert_eq!(
        r.calendly_keys(H).expect("keys"),
        vec!["key-of-one".to_owned()]
    );
}

fn handed_over_stripe_secrets_are_replaced_per_consumer(b: &dyn Backend) {
    let mut w = b.writer().expect("writer");
    let r = b.reader().expect("reader");
    let (one, two) = (
        consumer(b, "one", TokenMode::Test),
        consumer(b, "two", TokenMode::Test),
    );
    let mut replace = |c: ConsumerId, secrets: &[&str], at: i64| {
        let secrets: Vec<String> = secrets.iter().map(|s| (*s).to_owned()).collect();
        w.group(&mut |tx| tx.replace_stripe_secrets(c, &secrets, at))
            .expect("replace");
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    replace(one, &["whsec_one_old"], 1);
    replace(two, &["whsec_two"], 2);
    // A rotation: the new secret beside the old one, then the new one alone.
    replace(one, &["whsec_one_new", "whsec_one_old"], 3);
    assert_eq!(
        sorted(r.stripe_secrets(H).expect("secrets")),
        ["whsec_one_new", "whsec_one_old", "whsec_two"]
    );
    replace(one, &["whsec_one_new"], 4);
    assert_eq!(
        sorted(r.stripe_secrets(H).expect("secrets")),
        ["whsec_one_new", "whsec_two"]
    );
    b.revoke_consumer(H, "one", 100).expect("revoke");
    assert_eq!(r.stripe_secrets(H).expect("secrets"), ["whsec_two"]);
}

fn pull_respects_byte_budget_but_returns_one(b: &dyn Backend) {
    let mut w = b.writer().expect("writer");
    let r = b.reader().expect("reader");
    let big = "x".repeat(100);
    for i in 0..3 {
        let key = format!("e{i}");
        w.group(&mut |tx| {
            tx.insert_event(&NewEvent {
                tenant: H,
                provider: Provider::Stripe,
                key: &key,
                body: &big,
                sealed: None,
                livemode: None,
                received_at_ms: 0,
            })
            .map(|_| ())
        })
        .expect("insert");
    }
    assert_eq!(
        r.pull(H, TokenMode::Test, 0, 10, 10).expect("pull").len(),
        1
    );
    assert_eq!(
        r.pull(H, TokenMode::Test, 0, 10, 250).expect("pull").len(),
        2
    );
}

fn a_failed_group_keeps_nothing(b: &dyn Backend) {
    let mut w = b.writer().expect("writer");
    let r = b.reader().expect("reader");
    let err = w.group(&mut |tx| {
        tx.insert_event(&NewEvent {
            tenant: H,
            provider: Provider::Stripe,
            key: "kept-not",
            body: "{}",
            sealed: None,
            livemode: None,
            received_at_ms: 0,
        })?;
        Err(StoreError::NameTaken("forced".into()))
    });
    assert!(err.is_err());
    assert!(r
        .pull(H, TokenMode::Any, 0, 10, 1 << 20)
        .expect("pull")
        .is_empty());
}

/// A database from before hashed keys: its events are re-keyed when a key is adopted, the
/// same key is adopted again with nothing to do, and another key is refused.
fn events_stored_before_the_index_key_are_rekeyed_once(b: &dyn Backend) {
    let mut w = b.writer().expect("writer");
    assert!(matches!(
        insert(&mut *w, Provider::Stripe, "evt_old", Some(false), 1),
        Inserted::New(_)
    ));
    let rehash = |provider: &str, key: &str| format!("h({provider},{key})");
    assert_eq!(b.adopt_index_key("check-a", &rehash).expect("adopt"), 1);
    let keys = |b: &dyn Backend| -> Vec<String> {
        let r = b.reader().expect("reader");
        let events = r.pull(H, TokenMode::Test, 0, 10, 1 << 20).expect("pull");
        events.into_iter().map(|e| e.key).collect()
    };
    assert_eq!(keys(b), ["h(stripe,evt_old)"]);
    assert_eq!(b.adopt_index_key("check-a", &rehash).expect("again"), 0);
    assert_eq!(keys(b), ["h(stripe,evt_old)"], "re-keyed once only");
    assert!(matches!(
        b.adopt_index_key("check-b", &rehash),
        Err(StoreError::IndexKeyMismatch)
    ));
}

fn the_identity_is_made_once(b: &dyn Backend) {
    let id = b.relay_id();
    assert!(id.as_str().starts_with("rly_"));
    assert_eq!(b.reader().expect("reader").relay_id(), id);
}

fn a_batch_of_inserts_dedups_within_itself_and_against_the_store(b: &dyn Backend) {
    let mut w = b.writer().expect("writer");
    let r = b.reader().expect("reader");
    assert_eq!(
        insert(&mut *w, Provider::Stripe, "stored", Some(false), 1),
        Inserted::New(1)
    );
    let event = |provider, key| NewEvent {
        tenant: H,
        provider,
        key,
        body: "{}",
        sealed: None,
        livemode: Some(false),
        received_at_ms: 2,
    };
    let batch = [
        event(Provider::Stripe, "a"),
        event(Provider::Stripe, "stored"),
        event(Provider::Stripe, "a"),
        event(Provider::Calendly, "a"),
        event(Provider::Stripe, "b"),
    ];
    let mut out = Vec::new();
    w.group(&mut |tx| {
        out = tx.insert_events(&batch)?;
        Ok(())
    })
    .expect("group");
    assert_eq!(
        out,
        vec![
            Inserted::New(2),
            Inserted::Duplicate,
            Inserted::Duplicate,
            Inserted::New(3),
            Inserted::New(4),
        ]
    );
    assert_eq!(r.newest_seq().expect("newest"), 4);
    assert_eq!(seqs(r.as_ref(), TokenMode::Any, 0), vec![1, 2, 3, 4]);
}
