//! End-to-end smoke tests of the real desktop app, driven through tauri-driver.
//!
//! 1. The app keeps what the coach enters: the form rejects an invalid session type with a
//!    message next to the field, accepts a valid one, and after the app is quit and started
//!    again on the same database the session type is still listed.
//! 2. Demo mode: the seeded bookings can be filtered by state, searched, and opened to
//!    their audit timeline.
//!
//! Needs a display (Xvfb), tauri-driver, WebKitWebDriver and imagemagick; it fails, never
//! skips, when one is missing. Run by `./scripts/test`; by hand:
//! `xvfb-run -a cargo test -p coachdesk-tests --test e2e_smoke -- --ignored`.

use std::time::Instant;

use anyhow::ensure;
use coachdesk_tests::e2e::{
    self, click, replace, step, text_of, texts_of, type_into, wait_for, wait_for_text,
    wait_for_texts, Sandbox,
};
use fantoccini_loopback::Client;

const NAME: &str = "E2E Deep Dive";

#[tokio::test]
#[ignore = "needs a display and the built app: run by ./scripts/test (xvfb-run ... -- --ignored)"]
async fn a_session_type_created_in_the_form_survives_a_restart() -> anyhow::Result<()> {
    let app = e2e::app_binary()?;
    let sandbox = Sandbox::new()?;
    let db = sandbox.db.clone();
    let driver = sandbox.start_driver(&[], "tauri-driver-smoke")?;

    // First run: an invalid draft is refused field by field, a valid one is listed.
    let started = Instant::now();
    let client = driver.launch(&app).await?;
    let outcome = first_run(&client, started).await;
    let _ = e2e::screenshot("e2e-smoke-first-run");
    step("quit the app", client.close()).await?;
    outcome?;

    // Second run on the same database: the session type is still there.
    let client = driver.launch(&app).await?;
    let outcome = second_run(&client).await;
    let shot = e2e::screenshot("e2e-smoke");
    step("quit the app", client.close()).await?;
    outcome?;
    let shot = shot?;
    eprintln!("e2e: screenshot saved to {}", shot.display());
    ensure!(
        db.is_file(),
        "the app did not create its database at {}",
        db.display()
    );
    Ok(())
}

async fn first_run(client: &Client, started: Instant) -> anyhow::Result<()> {
    wait_for(client, "#mode-banner[data-mode]").await?;
    eprintln!(
        "e2e: cold start to first screen: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let banner_text = text_of(client, "#mode-banner[data-mode]").await?;
    ensure!(
        banner_text.contains("TEST MODE"),
        "the header should say TEST MODE, it says {banner_text:?}"
    );

    // The app opens on the dashboard; session types are one click away.
    wait_for(client, "#nav-session-types").await?;
    click(client, "#nav-session-types").await?;
    click(client, "#new-session-type").await?;
    wait_for(client, "#session-type-form").await?;

    // Invalid: no name, and a price that is not a number.
    type_into(client, "#field-price", "twelve").await?;
    click(client, "#save-session-type").await?;
    let message = text_of(client, "#error-name").await?;
    ensure!(!message.is_empty(), "the name error is empty");
    wait_for(client, "#session-type-form").await?;
    e2e::screenshot("e2e-smoke-field-error")?;

    // Valid.
    type_into(client, "#field-name", NAME).await?;
    replace(client, "#field-price", "120.00").await?;
    click(client, "#save-session-type").await?;
    wait_for_text(client, "[data-testid=session-type-name]", NAME).await?;
    Ok(())
}

#[tokio::test]
#[ignore = "needs a display and the built app: run by ./scripts/test (xvfb-run ... -- --ignored)"]
async fn demo_bookings_can_be_filtered_searched_and_opened() -> anyhow::Result<()> {
    let app = e2e::app_binary()?;
    let sandbox = Sandbox::new()?;
    let driver = sandbox.start_driver(&[("COACHDESK_DEMO", "1")], "tauri-driver-demo")?;
    let client = driver.launch(&app).await?;
    let outcome = browse_demo_bookings(&client).await;
    let shot = e2e::screenshot("e2e-demo-booking");
    step("quit the app", client.close()).await?;
    outcome?;
    shot?;
    Ok(())
}

async fn browse_demo_bookings(client: &Client) -> anyhow::Result<()> {
    let text = text_of(client, "#mode-banner[data-mode=demo]").await?;
    ensure!(
        text.contains("DEMO MODE"),
        "the header should say DEMO MODE, it says {text:?}"
    );

    click(client, "#nav-bookings").await?;
    wait_for(client, "[data-testid=booking-row]").await?;
    let all = rows(client).await?.len();

    // Only confirmed bookings once the state filter says so.
    click(client, "#booking-state-filter option[value=confirmed]").await?;
    let confirmed = wait_until_rows(client, |states| {
        !states.is_empty() && states.iter().all(|s| s == "Confirmed")
    })
    .await?;
    ensure!(
        confirmed <= all,
        "filtering cannot add rows ({confirmed} > {all})"
    );

    // Search narrows further, by the first confirmed client's email.
    let email = text_of(client, "[data-testid=booking-row] .small").await?;
    type_into(client, "#booking-search", &email).await?;
    wait_until_rows(client, |states| {
        !states.is_empty() && states.len() <= confirmed
    })
    .await?;

    click(client, "[data-testid=open-booking]").await?;
    wait_for(client, "#booking-detail").await?;
    wait_for(client, "#audit-timeline [data-testid=audit-entry]").await?;
    Ok(())
}

const STATES: &str = "[data-testid=booking-row] [data-testid=booking-state]";

/// The state badge text of every listed booking.
async fn rows(client: &Client) -> anyhow::Result<Vec<String>> {
    texts_of(client, STATES).await
}

/// Waits (bounded) until the listed states satisfy `done`; returns how many rows there are.
async fn wait_until_rows(
    client: &Client,
    done: impl Fn(&[String]) -> bool,
) -> anyhow::Result<usize> {
    let states = wait_for_texts(client, STATES, e2e::STEP_TIMEOUT, "settle", done).await?;
    Ok(states.len())
}

async fn second_run(client: &Client) -> anyhow::Result<()> {
    wait_for(client, "#mode-banner[data-mode]").await?;
    click(client, "#nav-session-types").await?;
    wait_for_text(client, "[data-testid=session-type-name]", NAME).await?;
    let shown = text_of(client, "[data-testid=session-type-price]").await?;
    ensure!(
        shown.contains("120"),
        "the price should show 120, it shows {shown:?}"
    );
    Ok(())
}
