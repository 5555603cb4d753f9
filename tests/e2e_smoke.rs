//! End-to-end smoke test: the real desktop app keeps what the coach enters.
//!
//! Drives the built `coachdesk` binary through tauri-driver: the form rejects an invalid
//! session type with a message next to the field, accepts a valid one, and after the app
//! is quit and started again on the same database the session type is still listed.
//! Needs a display (Xvfb), tauri-driver, WebKitWebDriver and imagemagick; it fails, never
//! skips, when one is missing. Run by `./scripts/test`; by hand:
//! `xvfb-run -a cargo test -p coachdesk-tests --test e2e_smoke -- --ignored`.

use std::time::Instant;

use anyhow::{ensure, Context as _};
use coachdesk_tests::e2e::{self, step, wait_for, wait_for_text, TauriDriver};
use fantoccini_loopback::{Client, Locator};

const NAME: &str = "E2E Deep Dive";

#[tokio::test]
#[ignore = "needs a display and the built app: run by ./scripts/test (xvfb-run ... -- --ignored)"]
async fn a_session_type_created_in_the_form_survives_a_restart() -> anyhow::Result<()> {
    let app = e2e::app_binary()?;
    let artifacts = e2e::artifacts_dir()?;
    let scratch = tempfile::tempdir().context("cannot create a temporary folder")?;
    let db = scratch.path().join("e2e.sqlite");
    let home = scratch.path().join("home");
    let cache = scratch.path().join("cache");
    let data = scratch.path().join("data");
    let config = scratch.path().join("config");
    for dir in [&home, &cache, &data, &config] {
        std::fs::create_dir_all(dir)?;
    }
    let driver = TauriDriver::start(
        &[
            ("COACHDESK_DB", db.as_path()),
            ("HOME", home.as_path()),
            ("XDG_CACHE_HOME", cache.as_path()),
            ("XDG_DATA_HOME", data.as_path()),
            ("XDG_CONFIG_HOME", config.as_path()),
            ("MESA_SHADER_CACHE_DIR", cache.as_path()),
        ],
        &artifacts.join("tauri-driver.log"),
    )?;

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
    let banner = wait_for(client, "#mode-banner[data-mode]").await?;
    eprintln!(
        "e2e: cold start to first screen: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let banner_text = step("read the banner", banner.text()).await?;
    ensure!(
        banner_text.contains("TEST MODE"),
        "the header should say TEST MODE, it says {banner_text:?}"
    );

    click(client, "#new-session-type").await?;
    wait_for(client, "#session-type-form").await?;

    // Invalid: no name, and a price that is not a number.
    type_into(client, "#field-price", "twelve").await?;
    click(client, "#save-session-type").await?;
    let error = wait_for(client, "#error-name").await?;
    let message = step("read the name error", error.text()).await?;
    ensure!(!message.trim().is_empty(), "the name error is empty");
    wait_for(client, "#session-type-form").await?;
    e2e::screenshot("e2e-smoke-field-error")?;

    // Valid.
    type_into(client, "#field-name", NAME).await?;
    clear(client, "#field-price").await?;
    type_into(client, "#field-price", "120.00").await?;
    click(client, "#save-session-type").await?;
    wait_for_text(client, "[data-testid=session-type-name]", NAME).await?;
    Ok(())
}

async fn second_run(client: &Client) -> anyhow::Result<()> {
    wait_for(client, "#mode-banner[data-mode]").await?;
    wait_for_text(client, "[data-testid=session-type-name]", NAME).await?;
    let price = wait_for(client, "[data-testid=session-type-price]").await?;
    let shown = step("read the price", price.text()).await?;
    ensure!(
        shown.contains("120"),
        "the price should show 120, it shows {shown:?}"
    );
    Ok(())
}

async fn click(client: &Client, css: &str) -> anyhow::Result<()> {
    let element = wait_for(client, css).await?;
    step(&format!("click `{css}`"), element.click()).await
}

async fn type_into(client: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    let element = wait_for(client, css).await?;
    step(&format!("type into `{css}`"), element.send_keys(text)).await
}

async fn clear(client: &Client, css: &str) -> anyhow::Result<()> {
    let element = step(&format!("find `{css}`"), client.find(Locator::Css(css))).await?;
    step(&format!("clear `{css}`"), element.clear()).await
}
