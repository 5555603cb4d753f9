//! End to end: first run and bad settings, on the real app in test mode with the real relay
//! and the provider simulator (`coachdesk_tests::stack`), under Xvfb through tauri-driver.
//!
//! - first run: nothing is configured, so the app opens Settings by itself and lists what
//!   is missing; the banner says TEST MODE;
//! - a wrong Stripe key: "Test connection" says Stripe refused the key (HTTP 401); with the
//!   right key it says connected;
//! - the relay down (its URL points at a port nobody listens on): "Test connection" says
//!   connection refused and that nothing is lost, and the dashboard shows sync not
//!   connected; a client books meanwhile (the webhook waits at the relay) and the booking
//!   is not in the app;
//! - fixed: the right relay URL is saved, sync restarts, the booking made while it was
//!   wrong appears without a restart, and the first-run strip is gone.
//!
//! Secrets go to a keychain service of this test's own (`COACHDESK_KEYCHAIN_SERVICE`) in
//! the session keyring (scripts/test runs the e2e tests under `keyctl session -`).
//! Screenshots: `target/e2e-artifacts/e2e-settings-*.png`.
//!
//! Run by hand: `./scripts/build-ui && cargo build -p coachdesk-app -p coachdesk-relay
//! -p coachdesk-sim`, then `keyctl session - xvfb-run -a cargo test -p coachdesk-tests
//! --test e2e_settings -- --ignored --nocapture`.

use std::time::Duration;

use anyhow::{anyhow, ensure, Context as _};
use coachdesk_tests::e2e::{
    self, capture, click, step, text_of, wait_for, wait_for_text, wait_for_texts, Sandbox,
};
use coachdesk_tests::stack::Stack;
use coachdesk_tests::steps::{
    connect_stripe_and_calendly, page_text, remove_secrets, save_relay_url, save_secret,
    test_connection, wait_gone, SYNC_WAIT,
};
use fantoccini_loopback::Client;

#[tokio::test]
#[ignore = "needs a display, the built app, relay and simulator: run by ./scripts/test"]
async fn bad_settings_are_explained_nothing_is_lost_and_fixing_them_recovers() -> anyhow::Result<()>
{
    let app = e2e::app_binary()?;
    let artifacts = e2e::artifacts_dir()?;
    let stack = Stack::start(Some(&artifacts.join("e2e-settings-stack")))?;
    let sandbox = Sandbox::new()?;
    let driver = sandbox.start_driver_on(&stack, "settings")?;
    let client = driver.launch(&app).await?;
    let outcome = async {
        first_run(&client).await?;
        stripe_key(&client).await?;
        relay_down_then_fixed(&client, &stack).await
    }
    .await;
    if outcome.is_err() {
        let _ = capture(&client, "e2e-settings-failure").await;
    }
    // Leave nothing in the session keyring for the next test.
    let _ = remove_secrets(&client).await;
    step("quit the app", client.close()).await?;
    outcome
}

/// Nothing configured: Settings opens by itself and says what is missing.
async fn first_run(client: &Client) -> anyhow::Result<()> {
    wait_for(client, "#mode-banner[data-mode=test]").await?;
    let banner = text_of(client, "#mode-banner").await?;
    ensure!(banner.contains("TEST MODE"), "banner: {banner:?}");
    wait_for(client, "#settings").await?;
    let strip = text_of(client, "#first-run").await?;
    ensure!(
        strip.contains("not connected yet")
            && strip.contains("Stripe secret key")
            && strip.contains("relay URL"),
        "the first-run strip should list what is missing, it says {strip:?}"
    );
    capture(client, "e2e-settings-first-run").await?;
    Ok(())
}

/// A wrong key is explained; the right one connects.
async fn stripe_key(client: &Client) -> anyhow::Result<()> {
    // A restricted-key shape the simulator does not accept: Stripe answers 401.
    save_secret(client, "stripe_test_key", "rk_test_revoked_key_0001").await?;
    let answer = test_connection(client, "stripe").await?;
    ensure!(
        !answer.0
            && answer
                .1
                .starts_with("Stripe refused the secret key (HTTP 401)"),
        "a wrong key should be named as such, the app says {answer:?}"
    );
    ensure!(
        !answer.1.contains("rk_test_revoked_key_0001"),
        "the key must not be shown back: {answer:?}"
    );
    let status = text_of(client, "#secret-stripe_test_key-status").await?;
    ensure!(status.ends_with("…0001"), "status: {status:?}");
    capture(client, "e2e-settings-wrong-stripe-key").await?;

    connect_stripe_and_calendly(client).await?;
    Ok(())
}

/// The relay "down" (a port nobody listens on): explained, nothing lost, recovered.
async fn relay_down_then_fixed(client: &Client, stack: &Stack) -> anyhow::Result<()> {
    save_secret(client, "relay_token", &stack.relay_token).await?;
    let dead = format!("http://127.0.0.1:{}", e2e::free_port()?);
    save_relay_url(client, &dead).await?;
    let answer = test_connection(client, "relay").await?;
    ensure!(
        !answer.0
            && answer.1.contains("connection refused")
            && answer.1.contains("Nothing is lost"),
        "the relay being down should be explained, the app says {answer:?}"
    );
    capture(client, "e2e-settings-relay-down").await?;

    // A client books while the app cannot reach the relay: the webhook waits there.
    let waiting_before = stack.relay_queue_depth()?;
    stack.book(
        "coaching-60",
        "Kim Waiting",
        "kim.waiting@example.com",
        None,
    )?;
    click(client, "#nav-dashboard").await?;
    wait_for_text(
        client,
        "#sync-health [data-testid=sync-state]",
        "Not connected",
    )
    .await?;
    capture(client, "e2e-settings-dashboard-not-connected").await?;
    // The booking waits at the relay, which says no consumer has taken it: the app, with
    // its wrong URL, has pulled nothing, so the window cannot show it.
    coachdesk_waiting::eventually_async(
        "the booking waiting at the relay",
        Duration::from_secs(30),
        || async {
            match stack.relay_queue_depth() {
                Ok(depth) if depth > waiting_before => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    click(client, "#nav-bookings").await?;
    wait_for(client, "#main").await?;
    ensure!(
        !page_text(client).await?.contains("Kim Waiting"),
        "nothing can arrive while the relay URL is wrong"
    );
    ensure!(
        stack.relay_queue_depth()? > waiting_before,
        "the relay still holds the booking, unacknowledged"
    );

    // Fixed: the right URL, sync restarts, the waiting booking arrives.
    click(client, "#nav-settings").await?;
    save_relay_url(client, &stack.relay_url).await?;
    let answer = test_connection(client, "relay").await?;
    ensure!(
        answer.0 && answer.1.starts_with("Connected to the relay"),
        "{answer:?}"
    );
    wait_gone(client, "#first-run", Duration::from_secs(10))
        .await
        .context("the first-run strip should go once everything is set")?;
    click(client, "#nav-bookings").await?;
    let arrived = || async {
        if page_text(client).await?.contains("Kim Waiting") {
            return anyhow::Ok(Ok(()));
        }
        // The list reloads when the store changes; a click also reloads it.
        click(client, "#nav-bookings").await?;
        Ok(Err(()))
    };
    coachdesk_waiting::until_async(SYNC_WAIT, Duration::from_millis(500), arrived, |()| {
        anyhow!(
            "the booking made while the relay URL was wrong did not arrive within {} s",
            SYNC_WAIT.as_secs()
        )
    })
    .await?;
    capture(client, "e2e-settings-recovered").await?;
    click(client, "#nav-dashboard").await?;
    wait_for_text(client, "#sync-health [data-testid=sync-state]", "Connected").await?;

    // A new sealing key: made and registered with the relay at a click.
    click(client, "#nav-settings").await?;
    click(client, "#rotate-sealing-key").await?;
    wait_for_texts(
        client,
        "#sealing-key-answer",
        e2e::STEP_TIMEOUT,
        "the relay's answer",
        |texts| {
            texts
                .iter()
                .any(|t| t.starts_with("A new sealing key is registered"))
        },
    )
    .await?;

    // The coach's Stripe restricted key: handed to the relay when saved, forgotten there
    // when removed; the diagnostics say what the relay made of it.
    save_secret(
        client,
        "stripe_checkout_key",
        "rk_test_e2e_checkout_key_0001",
    )
    .await?;
    relay_checkout_says(client, "each booking gets its own Stripe Checkout Session").await?;
    click(client, "#secret-stripe_checkout_key-remove").await?;
    relay_checkout_says(
        client,
        "clients pay through the session type's payment link",
    )
    .await?;
    Ok(())
}

/// Waits until Settings' diagnostics report says `words` on its "Relay checkout" line.
async fn relay_checkout_says(client: &Client, words: &str) -> anyhow::Result<()> {
    coachdesk_waiting::eventually_async(
        "the relay's answer in the diagnostics",
        SYNC_WAIT,
        || async {
            click(client, "#copy-diagnostics")
                .await
                .map_err(|e| e.to_string())?;
            let text = text_of(client, "#diagnostics-text")
                .await
                .map_err(|e| e.to_string())?;
            match text.lines().find(|l| l.starts_with("Relay checkout: ")) {
                Some(line) if line.contains(words) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    Ok(())
}
