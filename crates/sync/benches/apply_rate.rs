//! Apply rate of the core: relay pages (as `GET /v1/events` returns them) applied by the
//! sync loop's own `relay::apply_page` to a real SQLite file. Half the events are Calendly
//! `invitee.created`, half the Stripe `checkout.session.completed` paying them, so every
//! event creates or changes a booking (inbox, state machine, audit, outbox).
//!
//! `cargo bench -p coachdesk-sync` (COACHDESK_BENCH_EVENTS overrides the 100,000).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use coachdesk_protocol::relay::{EventsPage, Provider, PulledEvent};
use coachdesk_store::Store;
use serde_json::Value;
use time::OffsetDateTime;

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sim/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
}

fn main() {
    let total: usize = std::env::var("COACHDESK_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let page_size = 500;
    let created = fixture("calendly/invitee.created.json");
    let paid = fixture("stripe/checkout.session.completed.json");
    let mut events = Vec::with_capacity(total);
    for i in 0..total / 2 {
        let mut c = created.clone();
        let inv = format!("INV{i:08}");
        let uri = format!("https://api.calendly.com/scheduled_events/EV{i:08}/invitees/{inv}");
        c["payload"]["uri"] = Value::String(uri.clone());
        c["payload"]["event"] = Value::String(format!(
            "https://api.calendly.com/scheduled_events/EV{i:08}"
        ));
        events.push((
            Provider::Calendly,
            format!("invitee.created|{uri}|x"),
            c.to_string(),
        ));
        let mut s = paid.clone();
        s["id"] = Value::String(format!("evt_bench_{i:08}"));
        s["data"]["object"]["id"] = Value::String(format!("cs_bench_{i:08}"));
        s["data"]["object"]["client_reference_id"] = Value::String(inv);
        s["data"]["object"]["payment_intent"] = Value::String(format!("pi_bench_{i:08}"));
        s["data"]["object"]["metadata"] = serde_json::json!({});
        events.push((Provider::Stripe, format!("evt_bench_{i:08}"), s.to_string()));
    }
    let pages: Vec<EventsPage> = events
        .chunks(page_size)
        .enumerate()
        .map(|(p, chunk)| EventsPage {
            events: chunk
                .iter()
                .enumerate()
                .map(|(j, (provider, key, body))| PulledEvent {
                    seq: (p * page_size + j + 1) as i64,
                    provider: *provider,
                    key: key.clone(),
                    received_at: "2025-01-01T00:00:00Z".into(),
                    body: body.clone(),
                    sealed: None,
                })
                .collect(),
            relay_id: None,
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    // COACHDESK_BENCH_DB keeps the database at that path for a look afterwards.
    let path = std::env::var_os("COACHDESK_BENCH_DB")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("bench.db"));
    let store = Arc::new(Mutex::new(Store::open(&path).expect("store")));
    let now = OffsetDateTime::now_utc();
    let cpu_before = thread_cpu_ns();
    let started = Instant::now();
    let applied = apply_all(&store, &pages, now);
    let secs = started.elapsed().as_secs_f64();
    let cpu = thread_cpu_ns()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let bookings = store.lock().unwrap().booking_ids().expect("ids").len();
    println!(
        "apply_rate: {applied} events in {secs:.2} s = {:.0} events/s (pages of {page_size}, {bookings} bookings, target >= 20000/s)",
        applied as f64 / secs
    );
    // The machine is shared: time on the CPU is the figure contention does not inflate.
    if let Some(ns) = cpu {
        println!(
            "apply_rate: {:.2} s on the CPU = {:.1} us per event, {:.0} events per CPU-second",
            ns as f64 / 1e9,
            ns as f64 / 1e3 / applied as f64,
            applied as f64 / (ns as f64 / 1e9)
        );
    }
}

/// The measured part, kept out of line so profilers can single it out.
#[inline(never)]
fn apply_all(store: &Arc<Mutex<Store>>, pages: &[EventsPage], now: OffsetDateTime) -> usize {
    let mut applied = 0;
    for page in pages {
        applied += coachdesk_sync::relay::apply_page(store, page, &Default::default(), now)
            .expect("apply")
            .applied;
    }
    applied
}

/// Nanoseconds this thread has run on a CPU (Linux `schedstat`; `None` elsewhere).
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}
