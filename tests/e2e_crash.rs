//! The real app killed with SIGKILL while Stripe makes a refund, then started again on
//! the same database: exactly one refund exists at the simulator, the booking ends
//! `refunded`, and the retry carried the first attempt's Idempotency-Key.
//!
//! The simulator makes the refund and then withholds its answer (a lost response), so
//! the app is killed with the refund done at Stripe but not yet recorded locally: the
//! worst moment for a money movement. The app runs in demo mode against the live stack
//! (`coachdesk_tests::stack`), under Xvfb through tauri-driver.
//!
//! Run by hand: `cargo build -p coachdesk-relay -p coachdesk-sim` and the app, then
//! `xvfb-run -a cargo test -p coachdesk-tests --test e2e_crash -- --ignored --nocapture`.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, ensure, Context as _};
use coachdesk_sim::{Fault, FaultKind};
use coachdesk_tests::e2e::{
    self, capture, click, step, text_of, texts_of, wait_for, wait_for_text, wait_for_texts, Sandbox,
};
use coachdesk_tests::stack::Stack;
use fantoccini_loopback::Client;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How long sync may take to bring a change into the window.
const SYNC_WAIT: Duration = Duration::from_secs(45);
const CLIENT: &str = "Casey Crash";

#[tokio::test]
#[ignore = "needs a display, the built app, relay and simulator: run by ./scripts/test"]
async fn killed_during_a_refund_the_app_restarts_and_stripe_refunds_once() -> anyhow::Result<()> {
    let app = e2e::app_binary()?;
    let artifacts = e2e::artifacts_dir()?;
    let stack = Stack::start(Some(&artifacts.join("e2e-crash-stack")))?;
    let sandbox = Sandbox::new()?;

    // First run: a paid booking, cancelled by the coach with a full refund; killed while
    // Stripe's answer to the refund is on its way.
    let driver = stack.start_driver(&sandbox, "tauri-driver-crash")?;
    let client = driver.launch(&app).await?;
    let payment_intent = match cancel_and_kill(&client, &stack, &sandbox.db).await {
        Ok(pi) => pi,
        Err(err) => {
            let _ = capture(&client, "e2e-crash-failure").await;
            let _ = client.close().await;
            return Err(err);
        }
    };
    // The session's app is gone; its driver goes with it.
    drop(client);
    drop(driver);

    // Second run on the same database.
    let driver = stack.start_driver(&sandbox, "tauri-driver-crash-restart")?;
    let client = driver.launch(&app).await?;
    let outcome = after_restart(&client, &stack, &payment_intent).await;
    if outcome.is_err() {
        let _ = capture(&client, "e2e-crash-failure").await;
    }
    step("quit the app", client.close()).await?;
    outcome
}

/// Books and pays at the simulator, cancels from the booking's page with the full refund,
/// waits until Stripe has made it (its answer withheld), then kills the app with SIGKILL.
/// Answers the booking's payment intent.
async fn cancel_and_kill(client: &Client, stack: &Stack, db: &Path) -> anyhow::Result<String> {
    wait_for(client, "#dashboard #upcoming").await?;
    click(client, "#nav-bookings").await?;
    // 72 h ahead: the demo policy gives everything back from 48 h.
    let start = (OffsetDateTime::now_utc() + time::Duration::hours(72)).format(&Rfc3339)?;
    let booking = stack.book(
        "coaching-60",
        CLIENT,
        "casey.crash@example.com",
        Some(&start),
    )?;
    stack.pay("coaching-60", &booking)?;
    wait_row(client, "Confirmed").await?;

    stack
        .client
        .inject_fault(&Fault {
            method: Some("POST".into()),
            path_prefix: "/v1/refunds".into(),
            kind: FaultKind::LoseAnswer { ms: Some(20_000) },
            remaining: 1,
        })
        .context("withhold Stripe's answer to the refund")?;
    e2e::open_booking(client, CLIENT, "Confirmed").await?;
    click(client, "#action-cancel").await?;
    let statement = text_of(client, "#refund-statement").await?;
    ensure!(
        statement == "The client gets back 150.00 EUR.",
        "the dialog should state the full refund, it says {statement:?}"
    );
    click(client, "#action-confirm").await?;

    let asked = || {
        std::future::ready(refunds_made(stack).map(|r| if r.is_empty() { Err(()) } else { Ok(()) }))
    };
    coachdesk_waiting::until_async(SYNC_WAIT, Duration::from_millis(100), asked, |()| {
        anyhow!("the app never asked Stripe for the refund")
    })
    .await?;
    capture(client, "e2e-crash-before-kill").await?;
    let pid = app_pid(db)?;
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .context("run kill")?;
    ensure!(killed.success(), "kill -KILL {pid} failed");
    wait_gone(pid)?;
    println!("killed the app (process {pid}) while Stripe's refund answer was withheld");

    let paid = stack
        .client
        .stripe_events()
        .context("the simulator's Stripe events")?
        .into_iter()
        .find(|e| {
            e["type"] == "checkout.session.completed"
                && e["data"]["object"]["client_reference_id"] == booking.invitee_uuid.as_str()
        })
        .context("the booking's payment at the simulator")?;
    paid["data"]["object"]["payment_intent"]
        .as_str()
        .map(str::to_owned)
        .context("the payment's intent")
}

/// After the restart the refund row runs again with the same key: Stripe replays its
/// first answer, no second refund is made, the booking ends refunded.
async fn after_restart(client: &Client, stack: &Stack, payment_intent: &str) -> anyhow::Result<()> {
    wait_for(client, "#dashboard #upcoming").await?;
    click(client, "#nav-bookings").await?;
    wait_row(client, "Refunded").await?;
    e2e::open_booking(client, CLIENT, "Refunded").await?;
    wait_for_text(client, "#booking-refunded", "150.00 EUR").await?;
    // Everything went back: the page offers no cancel or refund, only a hand correction.
    wait_for(client, "#action-correct").await?;
    for gone in ["#action-cancel", "#action-refund", "#action-no-show"] {
        ensure!(
            texts_of(client, gone).await?.is_empty(),
            "a refunded booking should not offer {gone}"
        );
    }
    capture(client, "e2e-crash-after-restart").await?;

    // The withheld first request is logged only when its hang ends; the retry's answer is
    // a replay, which Stripe gives only for the first request's Idempotency-Key.
    let posts = stack.requests(Some("POST"), "/v1/refunds")?;
    let keys: Vec<Option<&str>> = posts.iter().map(|r| r.idempotency_key.as_deref()).collect();
    ensure!(
        !posts.is_empty() && keys[0].is_some() && keys.iter().all(|k| *k == keys[0]),
        "every refund request should carry the one Idempotency-Key: {posts:#?}"
    );
    ensure!(
        posts.iter().any(|r| r.replayed && r.status == 200),
        "after the restart Stripe should have replayed its first answer: {posts:#?}"
    );
    let made = refunds_made(stack)?;
    ensure!(
        made.len() == 1 && made[0] == payment_intent,
        "exactly one refund at the simulator, of {payment_intent}: {made:?}"
    );
    Ok(())
}

/// The payment intents of the refunds the simulator actually made (a replayed answer
/// makes none), one entry per refund.
fn refunds_made(stack: &Stack) -> anyhow::Result<Vec<String>> {
    Ok(stack
        .client
        .stripe_events()
        .context("the simulator's Stripe events")?
        .iter()
        .filter(|e| e["type"] == "charge.refunded")
        .map(|e| {
            e["data"]["object"]["payment_intent"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect())
}

/// Waits until the bookings list shows the client's row in `state`.
async fn wait_row(client: &Client, state: &str) -> anyhow::Result<()> {
    wait_for_texts(
        client,
        "[data-testid=booking-row]",
        SYNC_WAIT,
        &format!("show {CLIENT} as {state}"),
        |rows| rows.iter().any(|r| r.contains(CLIENT) && r.contains(state)),
    )
    .await
    .map(drop)
}

/// The app's process id, from the instance lock file in its data folder.
fn app_pid(db: &Path) -> anyhow::Result<u32> {
    let lock = db
        .parent()
        .context("the database's folder")?
        .join("coachdesk.lock");
    let text = std::fs::read_to_string(&lock)
        .with_context(|| format!("read the instance lock {}", lock.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("a process id in {}: {text:?}", lock.display()))
}

/// Waits until process `pid` is gone (reaped by its parent, tauri-driver).
fn wait_gone(pid: u32) -> anyhow::Result<()> {
    let proc_dir = format!("/proc/{pid}");
    let stopped = || {
        let status = std::fs::read_to_string(format!("{proc_dir}/stat")).unwrap_or_default();
        // A zombie ("Z") no longer runs; its parent reaps it when it gets to it.
        let zombie = status.split_whitespace().nth(2) == Some("Z");
        anyhow::Ok(if zombie || !Path::new(&proc_dir).exists() {
            Ok(())
        } else {
            Err(())
        })
    };
    coachdesk_waiting::until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        stopped,
        |()| anyhow!("process {pid} is still running 10 s after SIGKILL"),
    )
}
