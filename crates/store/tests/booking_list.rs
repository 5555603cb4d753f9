//! The bookings list at scale: filters, date range, search by each kind of id, paging and
//! the totals, over bookings made through the real apply path (the bulk seed).

use coachdesk_demo::bulk_booking;
use coachdesk_store::{SearchKind, Store, StoreError};
use coachdesk_views::BookingFilter;
use time::macros::datetime;
use time::OffsetDateTime;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
const COUNT: usize = 400;

fn seeded() -> (tempfile::TempDir, Store, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("list.sqlite")).unwrap();
    let types = coachdesk_demo::seed_bulk(&mut store, COUNT, NOW).unwrap();
    (dir, store, types)
}

fn filter() -> BookingFilter {
    BookingFilter::default()
}

#[test]
fn a_page_holds_the_limit_and_the_total_counts_every_match() {
    let (_dir, store, _) = seeded();
    let page = store
        .booking_page(&BookingFilter {
            limit: Some(25),
            ..filter()
        })
        .unwrap();
    assert_eq!(page.total, COUNT as u64);
    assert_eq!(page.items.len(), 25);
    let starts: Vec<_> = page.items.iter().map(|b| b.start_time.clone()).collect();
    let mut sorted = starts.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(starts, sorted, "latest session first");

    // Walking the pages visits every booking once.
    let mut seen = std::collections::BTreeSet::new();
    let mut offset = 0;
    loop {
        let page = store
            .booking_page(&BookingFilter {
                limit: Some(60),
                offset: Some(offset),
                ..filter()
            })
            .unwrap();
        if page.items.is_empty() {
            break;
        }
        for b in page.items {
            assert!(seen.insert(b.id), "a booking appears on two pages");
        }
        offset += 60;
    }
    assert_eq!(seen.len(), COUNT);
}

#[test]
fn state_filter_counts_match_the_seed() {
    let (_dir, store, _) = seeded();
    for (state, share) in [
        ("confirmed", 13),
        ("awaiting_payment", 3),
        ("payment_failed", 2),
        ("refund_pending", 2),
    ] {
        let page = store
            .booking_page(&BookingFilter {
                state: Some(state.into()),
                ..filter()
            })
            .unwrap();
        assert_eq!(page.total, (COUNT / 20 * share) as u64, "{state}");
        assert!(page.items.iter().all(|b| b.state == state), "{state}");
    }
}

#[test]
fn session_type_and_date_range_narrow_the_list() {
    let (_dir, store, types) = seeded();
    let by_type = store
        .booking_page(&BookingFilter {
            session_type_id: Some(types[2].clone()),
            ..filter()
        })
        .unwrap();
    // Every third booking is made through the third event type.
    assert_eq!(
        by_type.total,
        (0..COUNT).filter(|i| i % 3 == 2).count() as u64
    );
    assert!(by_type
        .items
        .iter()
        .all(|b| b.session_type_name.as_deref() == Some("Bulk deep dive (90 min)")));

    // Sessions are hours apart from 200 days back: one day holds 24 of them at most.
    let all = store
        .list_bookings(&BookingFilter {
            limit: Some(500),
            ..filter()
        })
        .unwrap();
    let day = all[100].start_time.clone().unwrap()[..10].to_owned();
    let on_day = store
        .booking_page(&BookingFilter {
            from: Some(day.clone()),
            to: Some(day.clone()),
            ..filter()
        })
        .unwrap();
    let expected = all
        .iter()
        .filter(|b| b.start_time.as_deref().is_some_and(|s| s.starts_with(&day)))
        .count();
    assert!(expected > 0);
    assert_eq!(on_day.total, expected as u64);
    assert!(on_day
        .items
        .iter()
        .all(|b| b.start_time.as_deref().unwrap().starts_with(&day)));

    let combined = store
        .booking_page(&BookingFilter {
            state: Some("confirmed".into()),
            from: Some(day.clone()),
            ..filter()
        })
        .unwrap();
    assert!(combined.total > 0);
    assert!(combined
        .items
        .iter()
        .all(|b| b.state == "confirmed" && b.start_time.as_deref().unwrap() >= day.as_str()));
}

#[test]
fn bad_dates_are_refused_with_the_field_named() {
    let (_dir, store, _) = seeded();
    for (from, to, field) in [
        ("31/03/2026", "", "from"),
        ("", "tomorrow", "to"),
        ("2026-03-10", "2026-03-01", "to"),
    ] {
        let answer = store.booking_page(&BookingFilter {
            from: Some(from.into()),
            to: Some(to.into()),
            ..filter()
        });
        match answer {
            Err(StoreError::Invalid(fields)) => assert_eq!(fields[0].field, field),
            other => panic!("{from}..{to}: {other:?}"),
        }
    }
}

#[test]
fn search_finds_one_booking_by_each_kind_of_id() {
    let (_dir, store, _) = seeded();
    let paid = bulk_booking(21); // confirmed
    let failed = bulk_booking(36); // payment failed
    let searches = [
        (paid.email.clone(), SearchKind::Email),
        (paid.email.to_uppercase(), SearchKind::Email),
        (paid.invitee_uri.clone(), SearchKind::InviteeUri),
        (paid.invitee_uuid.clone(), SearchKind::Text),
        (
            paid.payment_intent.clone().unwrap(),
            SearchKind::PaymentIntent,
        ),
        (
            paid.checkout_session.clone().unwrap(),
            SearchKind::CheckoutSession,
        ),
    ];
    for (search, kind) in searches {
        assert_eq!(SearchKind::of(&search), kind, "{search}");
        let page = store
            .booking_page(&BookingFilter {
                search: Some(format!("  {search} ")),
                ..filter()
            })
            .unwrap();
        assert_eq!(page.total, 1, "{search}");
        assert_eq!(
            page.items[0].client_email.as_deref(),
            Some(paid.email.as_str())
        );
        assert_eq!(page.items[0].state, "confirmed");
    }
    let by_failed = store
        .booking_page(&BookingFilter {
            search: Some(failed.payment_intent.clone().unwrap()),
            ..filter()
        })
        .unwrap();
    assert_eq!(by_failed.items[0].state, "payment_failed");

    // The booking id itself, and part of a name.
    let id = by_failed.items[0].id.clone();
    assert_eq!(SearchKind::of(&id), SearchKind::BookingId);
    let by_id = store
        .booking_page(&BookingFilter {
            search: Some(id.clone()),
            ..filter()
        })
        .unwrap();
    assert_eq!(by_id.items[0].id, id);
    let by_name = store
        .booking_page(&BookingFilter {
            search: Some("client 00003".into()),
            ..filter()
        })
        .unwrap();
    assert_eq!(by_name.total, 10, "Client 000030..000039");

    // Search and filters combine; unknown ids and wildcards find nothing.
    let wrong_state = store
        .booking_page(&BookingFilter {
            search: Some(paid.email.clone()),
            state: Some("refunded".into()),
            ..filter()
        })
        .unwrap();
    assert_eq!(wrong_state.total, 0);
    for nothing in ["pi_nobody", "cs_nobody", "re_nobody", "%", "_"] {
        let page = store
            .booking_page(&BookingFilter {
                search: Some(nothing.into()),
                ..filter()
            })
            .unwrap();
        assert_eq!(page.total, 0, "{nothing}");
    }
}

#[test]
fn every_list_query_is_answered_from_an_index() {
    let (_dir, store, types) = seeded();
    let filters = [
        filter(),
        BookingFilter {
            state: Some("confirmed".into()),
            ..filter()
        },
        BookingFilter {
            session_type_id: Some(types[0].clone()),
            ..filter()
        },
        BookingFilter {
            from: Some("2026-03-01".into()),
            to: Some("2026-03-31".into()),
            ..filter()
        },
        BookingFilter {
            search: Some("pi_bulk_000021".into()),
            ..filter()
        },
        BookingFilter {
            search: Some(bulk_booking(5).invitee_uri),
            ..filter()
        },
    ];
    for f in filters {
        let plan = store.booking_page_plan(&f).unwrap();
        let scans_bookings = plan.iter().any(|step| step == "SCAN b");
        let sorts = plan.iter().any(|step| step.contains("TEMP B-TREE"));
        assert!(!(scans_bookings && sorts), "{f:?}: {plan:?}");
    }
}

#[test]
fn soonest_first_lists_the_next_sessions_from_a_day() {
    let (_dir, store, _) = seeded();
    // The seed's 400 sessions lie between 197 and 180 days before NOW.
    let today = (NOW - time::Duration::days(190)).date().to_string();
    let page = store
        .booking_page(&BookingFilter {
            from: Some(today.clone()),
            soonest_first: Some(true),
            limit: Some(10),
            ..filter()
        })
        .unwrap();
    let starts: Vec<String> = page
        .items
        .iter()
        .map(|b| b.start_time.clone().unwrap())
        .collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted, "soonest first");
    assert_eq!(starts.len(), 10);
    assert!(starts[0].as_str() >= today.as_str());
    // The very next session after the start of the day, whatever the total.
    let all = store
        .list_bookings(&BookingFilter {
            limit: Some(500),
            ..filter()
        })
        .unwrap();
    let next = all
        .iter()
        .filter_map(|b| b.start_time.clone())
        .filter(|s| s.as_str() >= today.as_str())
        .min()
        .unwrap();
    assert_eq!(starts[0], next);
    let plan = store
        .booking_page_plan(&BookingFilter {
            from: Some(today),
            soonest_first: Some(true),
            ..filter()
        })
        .unwrap();
    assert!(!plan.iter().any(|s| s.contains("TEMP B-TREE")), "{plan:?}");
}
