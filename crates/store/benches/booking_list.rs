//! The bookings list over 10,000 bookings in a real SQLite file: seeds them through the
//! real apply path, then times each kind of list query the window sends (a page with its
//! total) and prints the median, the slowest run and SQLite's plan.
//!
//! `cargo bench -p coachdesk-store --bench booking_list`; `COACHDESK_BENCH_BOOKINGS` sets
//! the count, `COACHDESK_BENCH_DB` keeps the database at that path for a later look.

use std::time::{Duration, Instant};

use coachdesk_demo::bulk_booking;
use coachdesk_store::Store;
use coachdesk_views::BookingFilter;

const RUNS: usize = 50;

/// One dashboard query, run for its time.
type Query<'a> = Box<dyn Fn() -> Result<(), coachdesk_store::StoreError> + 'a>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = std::env::var("COACHDESK_BENCH_BOOKINGS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let path = std::env::var_os("COACHDESK_BENCH_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("bench.sqlite"));
    let _ = std::fs::remove_file(&path);
    let now = time::OffsetDateTime::now_utc();

    let mut store = Store::open(&path)?;
    let started = Instant::now();
    let types = coachdesk_demo::seed_bulk(&mut store, count, now)?;
    println!(
        "seeded {count} bookings through the apply path in {:.1} s ({})",
        started.elapsed().as_secs_f64(),
        path.display()
    );
    drop(store);
    // A fresh connection, as the app has after a start: nothing cached but SQLite's pages.
    let store = Store::open(&path)?;

    let probe = bulk_booking(count / 2 + 1);
    let month_from = (now + time::Duration::days(30)).date();
    let month_to = (now + time::Duration::days(60)).date();
    let cases: Vec<(&str, BookingFilter)> = vec![
        ("first page, no filter", BookingFilter::default()),
        (
            "page 100 (offset 4,950)",
            BookingFilter {
                offset: Some(4_950),
                ..Default::default()
            },
        ),
        (
            "state = confirmed",
            BookingFilter {
                state: Some("confirmed".into()),
                ..Default::default()
            },
        ),
        (
            "state = payment_failed",
            BookingFilter {
                state: Some("payment_failed".into()),
                ..Default::default()
            },
        ),
        (
            "session type",
            BookingFilter {
                session_type_id: Some(types[1].clone()),
                ..Default::default()
            },
        ),
        (
            "date range (30 days)",
            BookingFilter {
                from: Some(month_from.to_string()),
                to: Some(month_to.to_string()),
                ..Default::default()
            },
        ),
        (
            "state + type + dates",
            BookingFilter {
                state: Some("confirmed".into()),
                session_type_id: Some(types[0].clone()),
                from: Some(month_from.to_string()),
                to: Some(month_to.to_string()),
                ..Default::default()
            },
        ),
        (
            "search: full email",
            BookingFilter {
                search: Some(probe.email.clone()),
                ..Default::default()
            },
        ),
        (
            "search: part of a name",
            BookingFilter {
                search: Some("client 0049".into()),
                ..Default::default()
            },
        ),
        (
            "search: invitee URI",
            BookingFilter {
                search: Some(probe.invitee_uri.clone()),
                ..Default::default()
            },
        ),
        (
            "search: payment intent",
            BookingFilter {
                search: Some(probe.payment_intent.clone().unwrap_or_default()),
                ..Default::default()
            },
        ),
        (
            "search: checkout session",
            BookingFilter {
                search: Some(probe.checkout_session.clone().unwrap_or_default()),
                ..Default::default()
            },
        ),
    ];

    println!(
        "\n{:<28} {:>9} {:>9} {:>7}  plan",
        "query (page of 50 + total)", "median", "max", "total"
    );
    for (name, filter) in cases {
        let mut times = Vec::with_capacity(RUNS);
        let mut total = 0;
        for _ in 0..RUNS {
            let started = Instant::now();
            let page = store.booking_page(&filter)?;
            times.push(started.elapsed());
            total = page.total;
        }
        times.sort_unstable();
        let plan = store.booking_page_plan(&filter)?.join("; ");
        println!(
            "{name:<28} {:>9} {:>9} {total:>7}  {plan}",
            ms(times[RUNS / 2]),
            ms(times[RUNS - 1])
        );
    }

    // What the dashboard asks for when it opens, over the same bookings.
    println!("\n{:<28} {:>9} {:>9}", "dashboard query", "median", "max");
    let today = now.date().to_string();
    let dashboard: Vec<(&str, Query<'_>)> = vec![
        (
            "upcoming (soonest 100)",
            Box::new(|| {
                store
                    .booking_page(&BookingFilter {
                        from: Some(today.clone()),
                        soonest_first: Some(true),
                        limit: Some(100),
                        ..Default::default()
                    })
                    .map(drop)
            }),
        ),
        (
            "needs attention",
            Box::new(|| store.attention_items().map(drop)),
        ),
        (
            "business metrics, 30 days",
            Box::new(|| {
                store
                    .business_metrics(now - time::Duration::days(30), now)
                    .map(drop)
            }),
        ),
        (
            "alert counts, 30 days",
            Box::new(|| {
                store
                    .alert_counts(now - time::Duration::days(30), now)
                    .map(drop)
            }),
        ),
    ];
    for (name, run) in &dashboard {
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            run()?;
            times.push(started.elapsed());
        }
        times.sort_unstable();
        println!(
            "{name:<28} {:>9} {:>9}",
            ms(times[RUNS / 2]),
            ms(times[RUNS - 1])
        );
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
