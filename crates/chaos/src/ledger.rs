//! The books after a run: what the simulator saw (captures, refunds, deliveries), what the
//! app holds (bookings, inbox, emails sent), the invariants between them, and the
//! comparison of a faulted run with the reference run.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use coachdesk_protocol::ipc::InboxFilter;
use coachdesk_sim::Provider;
use coachdesk_store::Store;
use serde_json::Value;

use crate::run::RunOutput;

/// A booking as the app ended with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingView {
    pub state: String,
    pub currency: String,
    pub captured: i64,
    pub refunded: i64,
    pub attention: Vec<String>,
    /// The audit timeline, one line per entry.
    pub timeline: Vec<String>,
}

/// What of a booking must equal the reference run's: state, captured, refunded, flags.
type Outcome = (String, i64, i64, Vec<String>);

impl BookingView {
    /// The outcome (the timeline may differ in order and causes).
    fn outcome(&self) -> Outcome {
        (
            self.state.clone(),
            self.captured,
            self.refunded,
            self.attention.clone(),
        )
    }
}

/// One client's books at the end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientBooks {
    /// Per invitee of the client (reschedules add some), the app's booking if any.
    pub bookings: Vec<Option<BookingView>>,
    /// What the simulator captured and refunded for the client's payments.
    pub sim_captured: i64,
    pub sim_refunded: i64,
    /// Emails sent, by kind (each outbox row counted once).
    pub emails: BTreeMap<String, usize>,
}

/// A run's books.
#[derive(Debug, Clone, Default)]
pub struct Books {
    pub clients: Vec<ClientBooks>,
    /// Invariants broken, in words.
    pub violations: Vec<String>,
    /// Money captured at the simulator, by currency (minor units).
    pub captured: BTreeMap<String, i64>,
    pub refunded: BTreeMap<String, i64>,
    /// Emails sent again by the same outbox row (same Message-ID) after a crash.
    pub email_resends: usize,
    /// Stripe events the relay answered 2xx to (checked applied once each).
    pub relay_2xx_stripe: usize,
}

/// A payment as the simulator holds it.
#[derive(Debug, Clone)]
struct SimPayment {
    payment_intent: String,
    reference: String,
    amount: i64,
    currency: String,
}

/// Reads the books of a finished run (the core should be stopped).
pub fn read(output: &RunOutput) -> anyhow::Result<Books> {
    let procs = &output.procs;
    let client = &procs.client;
    let store = Store::open(&procs.db)?;
    let mut books = Books::default();

    // Captures at the simulator: Checkout sessions paid (card) or settled (delayed).
    let events = client.stripe_events().context("stripe events")?;
    let mut payments: BTreeMap<String, SimPayment> = BTreeMap::new();
    for event in &events {
        let object = &event["data"]["object"];
        let captured = match event["type"].as_str() {
            Some("checkout.session.completed") => object["payment_status"] == "paid",
            Some("checkout.session.async_payment_succeeded") => true,
            _ => false,
        };
        if let (true, Some(pi)) = (captured, object["payment_intent"].as_str()) {
            payments.insert(
                pi.to_owned(),
                SimPayment {
                    payment_intent: pi.to_owned(),
                    reference: object["client_reference_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    amount: object["amount_total"].as_i64().unwrap_or(0),
                    currency: object["currency"].as_str().unwrap_or("?").to_uppercase(),
                },
            );
        }
    }

    // The app's bookings.
    let mut app = Vec::new();
    for id in store.booking_ids()? {
        if let Some(booking) = store.booking(&id)? {
            app.push(booking);
        }
    }

    let mut refunded_by_reference: BTreeMap<String, i64> = BTreeMap::new();
    for payment in payments.values() {
        *books.captured.entry(payment.currency.clone()).or_default() += payment.amount;
        let refunds = sim_refunds(client, &payment.payment_intent)?;
        let mut total = 0;
        let mut causes: BTreeMap<(String, String), usize> = BTreeMap::new();
        for refund in &refunds {
            if matches!(refund["status"].as_str(), Some("failed" | "canceled")) {
                continue;
            }
            total += refund["amount"].as_i64().unwrap_or(0);
            let meta = &refund["metadata"];
            if let Some(cause) = meta["cause"].as_str() {
                let booking = meta["booking_id"].as_str().unwrap_or("?").to_owned();
                *causes.entry((booking, cause.to_owned())).or_default() += 1;
            }
        }
        for ((booking, cause), count) in causes {
            if count > 1 {
                books.violations.push(format!(
                    "{count} refunds for one cause ({cause}) of booking {booking} on {}",
                    payment.payment_intent
                ));
            }
        }
        if total > payment.amount {
            books.violations.push(format!(
                "refunds of {total} exceed the capture of {} on {}",
                payment.amount, payment.payment_intent
            ));
        }
        *books.refunded.entry(payment.currency.clone()).or_default() += total;
        *refunded_by_reference
            .entry(payment.reference.clone())
            .or_default() += total;

        // A reschedule carries the payment over to the new booking (`carried_from`): the
        // booking it was made for is the one that holds it.
        let holders: Vec<&coachdesk_domain::Booking> = app
            .iter()
            .filter(|b| {
                b.succeeded_payments().iter().any(|p| {
                    p.carried_from.is_none()
                        && p.fact.payment_intent.as_deref() == Some(&payment.payment_intent)
                })
            })
            .collect();
        match holders.len() {
            1 => {}
            0 if total >= payment.amount => {}
            0 => books.violations.push(format!(
                "the capture {} ({} {}) is on no booking, not refunded and not flagged",
                payment.payment_intent, payment.amount, payment.currency
            )),
            n => books.violations.push(format!(
                "the capture {} is on {n} bookings",
                payment.payment_intent
            )),
        }
    }

    // Emails as the SMTP server received them; the Message-ID is made from the outbox row's
    // key (`coachdesk-{booking}-email.{kind}@...`): the same one twice is a row sent again
    // after a crash between the server's 250 and the row's completion.
    let mut messages: BTreeMap<String, usize> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(&procs.mail_dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            let id = v["message_id"].as_str().unwrap_or_default().to_owned();
            *messages.entry(id).or_default() += 1;
        }
    }
    books.email_resends = messages.values().map(|n| n - 1).sum();
    let rows_sent: Vec<(String, String)> = messages
        .keys()
        .filter_map(|id| {
            let id = id.trim_matches(|c| c == '<' || c == '>');
            let (left, _) = id.split_once('@')?;
            let (booking, kind) = left.rsplit_once("-email.")?;
            Some((
                booking.trim_start_matches("coachdesk-").to_owned(),
                kind.to_owned(),
            ))
        })
        .collect();
    let mut per_cause: BTreeMap<&(String, String), usize> = BTreeMap::new();
    for row in &rows_sent {
        *per_cause.entry(row).or_default() += 1;
    }
    for ((booking, kind), n) in per_cause {
        if n > 1 {
            books
                .violations
                .push(format!("{n} different {kind} emails for booking {booking}"));
        }
    }

    // Per client: the bookings of its invitees, its money at the simulator, its emails.
    for trace in &output.traces {
        let mut client_books = ClientBooks::default();
        let mut ids = BTreeSet::new();
        for invitee in &trace.invitees {
            let booking = store.booking_by_invitee(invitee)?;
            let view = match booking {
                Some(b) => {
                    ids.insert(b.id.clone());
                    let detail = store.booking_detail(&b.id)?;
                    Some(BookingView {
                        state: b.state.as_str().to_owned(),
                        currency: b.currency().map(|c| c.to_string()).unwrap_or_default(),
                        captured: b.captured_minor(),
                        refunded: b.refunded_minor(),
                        attention: {
                            let mut codes: Vec<String> =
                                b.attention.iter().map(|a| a.code().to_owned()).collect();
                            codes.sort();
                            codes
                        },
                        timeline: detail
                            .audit
                            .iter()
                            .map(|a| {
                                format!(
                                    "{} {} -> {}: {} [{}]",
                                    a.at,
                                    a.from_state.as_deref().unwrap_or("-"),
                                    a.to_state,
                                    a.summary,
                                    a.cause
                                )
                            })
                            .collect(),
                    })
                }
                None => None,
            };
            client_books.bookings.push(view);
        }
        for uuid in &trace.invitee_uuids {
            for p in payments.values().filter(|p| &p.reference == uuid) {
                client_books.sim_captured += p.amount;
            }
            client_books.sim_refunded += refunded_by_reference.get(uuid).copied().unwrap_or(0);
        }
        for (booking, kind) in &rows_sent {
            if ids.iter().any(|id| booking.contains(id.as_str())) {
                *client_books.emails.entry(kind.clone()).or_default() += 1;
            }
        }
        // Paying less never confirms a booking (issue 11): no confirmed state, no email.
        if trace.paid_less {
            let confirmed = client_books
                .bookings
                .iter()
                .flatten()
                .any(|b| matches!(b.state.as_str(), "confirmed" | "completed"));
            if confirmed || client_books.emails.contains_key("confirmation") {
                books.violations.push(format!(
                    "a client who paid less got a confirmed booking or a confirmation email: {:?}",
                    trace.invitees
                ));
            }
        }
        books.clients.push(client_books);
    }

    // Every Stripe event the relay answered 2xx to is in the app's inbox exactly once.
    let inbox = store.list_inbox(&InboxFilter {
        provider: Some("stripe".into()),
        limit: Some(1000),
        ..InboxFilter::default()
    })?;
    let mut inbox_keys: BTreeMap<&str, usize> = BTreeMap::new();
    for entry in &inbox {
        *inbox_keys.entry(entry.key.as_str()).or_default() += 1;
    }
    let delivered: BTreeSet<String> = client
        .deliveries()?
        .into_iter()
        .filter(|d| d.provider == Provider::Stripe)
        .filter(|d| d.status.is_some_and(|s| (200..300).contains(&s)))
        .map(|d| d.key)
        .collect();
    books.relay_2xx_stripe = delivered.len();
    for key in &delivered {
        let count = inbox_keys
            .iter()
            .filter(|(k, _)| k.contains(key.as_str()))
            .map(|(_, n)| n)
            .sum::<usize>();
        if count != 1 {
            books.violations.push(format!(
                "the Stripe event {key}, answered 2xx by the relay, is in the app's inbox {count} times"
            ));
        }
    }
    Ok(books)
}

/// The refunds the simulator's Stripe holds for a payment.
fn sim_refunds(client: &coachdesk_sim::SimClient, pi: &str) -> anyhow::Result<Vec<Value>> {
    let answer = client
        .stripe(
            "GET",
            "/v1/refunds",
            &serde_json::json!({"payment_intent": pi, "limit": 100}),
            None,
        )
        .context("list refunds")?;
    anyhow::ensure!(
        answer.status == 200,
        "listing refunds of {pi}: {}",
        answer.text()
    );
    let body = answer.json().context("refund list")?;
    Ok(body["data"].as_array().cloned().unwrap_or_default())
}

/// The first client whose books differ from the reference's, with what differs.
pub fn first_divergence(reference: &Books, faulted: &Books) -> Option<(usize, String)> {
    for (n, (r, f)) in reference.clients.iter().zip(&faulted.clients).enumerate() {
        let outcomes = |c: &ClientBooks| -> Vec<Option<Outcome>> {
            c.bookings
                .iter()
                .map(|b| b.as_ref().map(BookingView::outcome))
                .collect()
        };
        if outcomes(r) != outcomes(f) {
            return Some((
                n,
                format!(
                    "bookings (state, captured, refunded, flags): reference {:?}, faulted {:?}",
                    outcomes(r),
                    outcomes(f)
                ),
            ));
        }
        if (r.sim_captured, r.sim_refunded) != (f.sim_captured, f.sim_refunded) {
            return Some((
                n,
                format!(
                    "money at Stripe (captured, refunded): reference {:?}, faulted {:?}",
                    (r.sim_captured, r.sim_refunded),
                    (f.sim_captured, f.sim_refunded)
                ),
            ));
        }
    }
    None
}
