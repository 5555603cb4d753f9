//! End to end: the desktop conventions the Tauri plugins give, on the real app under Xvfb.
//!
//! - single instance: with a session bus (a private one here), a second start on the same
//!   data folder exits 0 and the open window counts one focus request (the diagnostics
//!   report it);
//! - window state: a size and position set through WebDriver are saved once they settle
//!   and the next start opens the window there;
//! - diagnostics: Settings' "Copy diagnostics" shows the report (versions, data folder,
//!   log file) and the log file exists.
//!
//! Run by hand: `./scripts/build-ui && cargo build -p coachdesk-app`, then
//! `keyctl session - xvfb-run -a cargo test -p coachdesk-tests --test e2e_desktop --
//! --ignored --nocapture`.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, ensure, Context as _};
use coachdesk_tests::e2e::{self, capture, click, step, wait_for, PrivateBus, Sandbox};
use fantoccini_loopback::Client;

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
#[ignore = "needs a display and the built app: run by ./scripts/test"]
async fn a_second_start_focuses_the_window_and_the_window_keeps_its_place() -> anyhow::Result<()> {
    let app = e2e::app_binary()?;
    let bus = PrivateBus::start()?;
    let sandbox = Sandbox::new()?;
    let env = [("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str())];
    let driver = sandbox.start_driver(&env, "tauri-driver-desktop")?;

    let client = driver.launch(&app).await?;
    let first = async {
        wait_for(&client, "#mode-banner").await?;
        second_start_is_handed_over(&client, &sandbox, &bus, &app).await?;
        moved_and_resized(&client, &sandbox).await
    }
    .await;
    if first.is_err() {
        let _ = capture(&client, "e2e-desktop-failure").await;
    }
    let _ = step("quit the app", client.close()).await;
    let rect = first?;

    let client = driver.launch(&app).await?;
    let second = async {
        wait_for(&client, "#mode-banner").await?;
        let again = step("read the window's rect", client.get_window_rect()).await?;
        ensure!(
            again == rect,
            "the window opened at {again:?}, not where it was left ({rect:?})"
        );
        diagnostics(&client).await
    }
    .await;
    if second.is_err() {
        let _ = capture(&client, "e2e-desktop-failure-restart").await;
    }
    let _ = step("quit the app", client.close()).await;
    second
}

/// The app started again by hand on the same data folder and bus: it exits 0, and the
/// running one counted the focus request.
async fn second_start_is_handed_over(
    client: &Client,
    sandbox: &Sandbox,
    bus: &PrivateBus,
    app: &std::path::Path,
) -> anyhow::Result<()> {
    ensure!(focus_requests(client).await? == 0, "no second start yet");
    let mut second = Command::new(app)
        .env("COACHDESK_DB", &sandbox.db)
        .env("HOME", sandbox.folder("home"))
        .env("XDG_CACHE_HOME", sandbox.folder("cache"))
        .env("XDG_DATA_HOME", sandbox.folder("data"))
        .env("XDG_CONFIG_HOME", sandbox.folder("config"))
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .env("NO_AT_BRIDGE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the second instance")?;
    let mut exited = || anyhow::Ok(second.try_wait()?.ok_or(()));
    let exited = || std::future::ready(exited());
    let status = coachdesk_waiting::until_async(LIMIT, Duration::from_millis(100), exited, |()| {
        anyhow!(
            "the second instance did not exit within {} s",
            LIMIT.as_secs()
        )
    })
    .await;
    let status = status.inspect_err(|_| {
        let _ = second.kill();
    })?;
    ensure!(status.success(), "the second instance exited with {status}");
    ensure!(
        focus_requests(client).await? == 1,
        "the first window should have counted one focus request"
    );
    Ok(())
}

/// Sets a size and position and waits until the window-state file holds that size.
async fn moved_and_resized(
    client: &Client,
    sandbox: &Sandbox,
) -> anyhow::Result<(u64, u64, u64, u64)> {
    step(
        "set the window's rect",
        client.set_window_rect(60, 40, 1000, 650),
    )
    .await?;
    let rect = step("read the window's rect", client.get_window_rect()).await?;
    let file = sandbox
        .folder("config")
        .join("app.coachdesk.desktop")
        .join(".window-state.json");
    let held = || {
        let saved: Option<serde_json::Value> = std::fs::read_to_string(&file)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        let width = saved
            .as_ref()
            .and_then(|s| s["main"]["width"].as_u64())
            .unwrap_or(0);
        anyhow::Ok(if width == rect.2 {
            Ok(rect)
        } else {
            Err(saved)
        })
    };
    let every = Duration::from_millis(100);
    let held = || std::future::ready(held());
    coachdesk_waiting::until_async(LIMIT, every, held, |saved| {
        anyhow!(
            "{} did not come to hold the width {} within {} s (it holds {saved:?})",
            file.display(),
            rect.2,
            LIMIT.as_secs()
        )
    })
    .await
}

/// Settings' "Copy diagnostics" shows the report; the log file it names exists.
async fn diagnostics(client: &Client) -> anyhow::Result<()> {
    click(client, "#nav-settings").await?;
    click(client, "#copy-diagnostics").await?;
    let text = e2e::text_of(client, "#diagnostics-text").await?;
    for needed in [
        "Coachdesk diagnostics",
        "Tauri: 2.",
        "Log file: ",
        "Data folder: ",
    ] {
        ensure!(
            text.contains(needed),
            "{needed:?} is not in the report:\n{text}"
        );
    }
    let log = text
        .lines()
        .find_map(|l| l.strip_prefix("Log file: "))
        .context("no log file line")?;
    let written = std::fs::read_to_string(log).with_context(|| format!("the log file {log}"))?;
    ensure!(
        written.contains("starting Coachdesk"),
        "the log file should hold the start line"
    );
    capture(client, "e2e-desktop-diagnostics").await?;
    Ok(())
}

/// The focus requests the diagnostics report.
async fn focus_requests(client: &Client) -> anyhow::Result<u64> {
    let script = "const done = arguments[arguments.length - 1];
                  window.__TAURI__.core.invoke('diagnostics')
                    .then(r => done(r.focus_requests), e => done(-1));";
    let answer = step(
        "read the focus requests",
        client.execute_async(script, Vec::new()),
    )
    .await?;
    answer
        .as_u64()
        .with_context(|| format!("the diagnostics command answered {answer}"))
}
