//! End to end on the live stack: the real app (demo mode) syncing through the real relay
//! with the provider simulator (`coachdesk_tests::stack`), under Xvfb through tauri-driver.
//! Nothing is restarted: every change reaches the open window through sync and the
//! window's live refresh.
//!
//! - a client books and pays at the simulator: the booking appears, then turns confirmed,
//!   and toasts announce the booking and the payment;
//! - the coach cancels a paid session 30 h ahead from its page: the dialog states the 50%
//!   refund (75.00 EUR of 150.00 EUR), the simulator receives that refund, the booking ends
//!   `refunded` with the amount;
//! - a client reschedules: the old booking is marked rescheduled, the new one is confirmed,
//!   and the simulator saw no new charge.
//!
//! It prints the cold start time (launch to the dashboard on screen). Screenshots:
//! `target/e2e-artifacts/e2e-live-*.png`; relay, simulator and driver logs next to them.
//!
//! Run by hand: `cargo build -p coachdesk-relay -p coachdesk-sim` and the app, then
//! `xvfb-run -a cargo test -p coachdesk-tests --test e2e_live -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context as _};
use coachdesk_tests::e2e::{self, capture, click, step, text_of, type_into, wait_for, Sandbox};
use coachdesk_tests::stack::Stack;
use coachdesk_tests::steps::{booking_rows, wait_row_state, SYNC_WAIT};
use fantoccini_loopback::Client;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The stack on its own: a booking and its payment at the simulator arrive at the relay
/// as signed webhooks (the relay refuses unsigned ones), ready for the app to pull.
#[test]
#[ignore = "needs the relay and simulator binaries; run by ./scripts/test"]
fn the_stack_relays_a_booking_and_its_payment() -> anyhow::Result<()> {
    let stack = Stack::start(None)?;
    let booking = stack.book("coaching-60", "Pat Client", "pat@example.com", None)?;
    stack.pay("coaching-60", &booking)?;
    let pull = || {
        let answer = coachdesk_sim::http::request(
            "GET",
            &format!("{}/v1/events?after=0&limit=50", stack.relay_url),
            &[(
                "Authorization",
                format!("Bearer {}", stack.relay_token).as_str(),
            )],
            b"",
            Duration::from_secs(5),
        )
        .context("pull from the relay")?;
        ensure!(answer.status == 200, "relay pull: {}", answer.text());
        let text = answer.json()?.to_string();
        let both = text.contains("invitee.created") && text.contains("checkout.session.completed");
        anyhow::Ok(if both { Ok(text) } else { Err(text) })
    };
    let every = Duration::from_millis(100);
    let text = coachdesk_waiting::until(Duration::from_secs(10), every, pull, |text| {
        anyhow!("the relay did not receive both webhooks within 10 s: {text}")
    })?;
    ensure!(text.contains(&booking.invitee_uuid), "{text}");
    Ok(())
}

#[tokio::test]
#[ignore = "needs a display, the built app, relay and simulator: run by ./scripts/test"]
async fn bookings_payments_cancellations_and_reschedules_reach_the_open_window(
) -> anyhow::Result<()> {
    let app = e2e::app_binary()?;
    let artifacts = e2e::artifacts_dir()?;
    let stack = Stack::start(Some(&artifacts.join("e2e-live-stack")))?;
    let sandbox = Sandbox::new()?;
    let driver = stack.start_driver(&sandbox, "tauri-driver-live")?;

    let launched = Instant::now();
    let client = driver.launch(&app).await?;
    let outcome = async {
        wait_for(&client, "#dashboard #upcoming").await?;
        wait_for(&client, "#mode-banner[data-mode=demo]").await?;
        let cold = launched.elapsed();
        println!(
            "cold start to first screen (launch to dashboard visible): {} ms",
            cold.as_millis()
        );
        capture(&client, "e2e-live-dashboard").await?;
        book_and_pay(&client, &stack).await?;
        cancel_thirty_hours_ahead(&client, &stack).await?;
        reschedule(&client, &stack, &sandbox.db).await
    }
    .await;
    if outcome.is_err() {
        let _ = capture(&client, "e2e-live-failure").await;
    }
    step("quit the app", client.close()).await?;
    outcome
}

/// (a) The bookings page is open; a client books, then pays: no restart, no click.
async fn book_and_pay(client: &Client, stack: &Stack) -> anyhow::Result<()> {
    click(client, "#nav-bookings").await?;
    wait_for(client, "[data-testid=booking-row]").await?;
    let booking = stack.book(
        "coaching-60",
        "Pat Live",
        "pat.live@example.com",
        Some(&in_hours(72)),
    )?;
    wait_row_state(client, "Pat Live", "Awaiting payment").await?;
    wait_for(client, "[data-testid=toast][data-kind=new-booking]").await?;
    capture(client, "e2e-live-booked").await?;
    stack.pay("coaching-60", &booking)?;
    wait_row_state(client, "Pat Live", "Confirmed").await?;
    wait_for(client, "[data-testid=toast][data-kind=payment]").await?;
    capture(client, "e2e-live-paid").await?;
    Ok(())
}

/// (b) 30 h ahead under the demo policy (100% from 48 h, 50% from 24 h): half back.
async fn cancel_thirty_hours_ahead(client: &Client, stack: &Stack) -> anyhow::Result<()> {
    // Thirty hours and a few minutes, so the test's own minutes never cross a tier.
    let start = OffsetDateTime::now_utc() + time::Duration::minutes(30 * 60 + 10);
    let booking = stack.book(
        "coaching-60",
        "Robin Refund",
        "robin.refund@example.com",
        Some(&start.format(&Rfc3339)?),
    )?;
    stack.pay("coaching-60", &booking)?;
    wait_row_state(client, "Robin Refund", "Confirmed").await?;
    e2e::open_booking(client, "Robin Refund", "Confirmed").await?;

    click(client, "#action-cancel").await?;
    let statement = text_of(client, "#refund-statement").await?;
    ensure!(
        statement == "The client gets back 75.00 EUR.",
        "the dialog should state the 50% refund of 150.00 EUR, it says {statement:?}"
    );
    let preview = text_of(client, "#refund-preview").await?;
    ensure!(
        preview.contains("50%") && preview.contains("75.00 EUR"),
        "the policy sentence should give 50% and the money, it says {preview:?}"
    );
    capture(client, "e2e-live-cancel-dialog").await?;
    click(client, "#action-confirm").await?;

    wait_text_within(
        client,
        "#booking-detail [data-testid=booking-state]",
        "Refunded",
        SYNC_WAIT,
    )
    .await?;
    wait_text_within(client, "#booking-refunded", "75.00 EUR", SYNC_WAIT).await?;
    let refunds: Vec<_> = stack
        .requests(Some("POST"), "/v1/refunds")?
        .into_iter()
        .filter(|r| r.status == 200 && !r.replayed)
        .collect();
    ensure!(
        refunds.len() == 1 && refunds[0].body.contains("amount=7500"),
        "the simulator should have received one refund of 7500 cents: {refunds:#?}"
    );
    capture(client, "e2e-live-refunded").await?;
    Ok(())
}

/// (c) The client moves a paid session: the payment goes with it, nobody is charged again.
async fn reschedule(client: &Client, stack: &Stack, db: &std::path::Path) -> anyhow::Result<()> {
    click(client, "#nav-bookings").await?;
    let booking = stack.book(
        "coaching-60",
        "Sasha Move",
        "sasha.move@example.com",
        Some(&in_hours(96)),
    )?;
    stack.pay("coaching-60", &booking)?;
    wait_row_state(client, "Sasha Move", "Confirmed").await?;
    let charges_before = completed_checkouts(stack)?;
    let checkouts_before = stack.requests(Some("POST"), "/v1/checkout/sessions")?.len();

    let moved = stack
        .client
        .reschedule(&booking.invitee_uri, false)
        .context("reschedule at the simulator")?;
    ensure!(moved.invitee_uri != booking.invitee_uri, "a new invitee");
    type_into(client, "#booking-search", "sasha.move@example.com").await?;
    wait_states(client, "Sasha Move", &["Confirmed", "Rescheduled"]).await?;
    capture(client, "e2e-live-rescheduled").await?;

    // No new charge: once the app has run every effect due (its outbox, read from its
    // database), no payment completed and no checkout was created since.
    let store = coachdesk_store::Store::open(db).context("open the app's database")?;
    coachdesk_waiting::eventually_async(
        "the app's effects settling",
        Duration::from_secs(30),
        || async {
            match store.due_effects(time::OffsetDateTime::now_utc(), 10) {
                Ok(due) if due.is_empty() => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    ensure!(
        completed_checkouts(stack)? == charges_before,
        "the reschedule charged the client again"
    );
    ensure!(
        stack.requests(Some("POST"), "/v1/checkout/sessions")?.len() == checkouts_before,
        "the app created a new Checkout Session for a rescheduled, paid booking"
    );
    Ok(())
}

fn in_hours(hours: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::hours(hours))
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn completed_checkouts(stack: &Stack) -> anyhow::Result<usize> {
    Ok(stack
        .client
        .stripe_events()
        .context("the simulator's Stripe events")?
        .iter()
        .filter(|e| e["type"] == "checkout.session.completed")
        .count())
}

/// Waits until the rows of `name` have exactly `states` (in any order).
async fn wait_states(client: &Client, name: &str, states: &[&str]) -> anyhow::Result<()> {
    let mut want: Vec<String> = states.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    let states = || async {
        let mut got: Vec<String> = booking_rows(client)
            .await?
            .into_iter()
            .filter(|(n, _)| n == name)
            .map(|(_, s)| s)
            .collect();
        got.sort();
        anyhow::Ok(if got == want { Ok(()) } else { Err(got) })
    };
    coachdesk_waiting::until_async(SYNC_WAIT, Duration::from_millis(250), states, |got| {
        anyhow!("the bookings of {name} should be {want:?}, they are {got:?}")
    })
    .await
}

async fn wait_text_within(
    client: &Client,
    css: &str,
    text: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let what = format!("read {text:?}");
    e2e::wait_for_texts(client, css, limit, &what, |t| t.iter().any(|f| f == text))
        .await
        .map(drop)
}
