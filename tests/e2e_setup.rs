//! End to end: the coach's set-up, in the real app (demo mode) on the live stack (the real
//! relay and the provider simulator, `coachdesk_tests::stack`), under Xvfb through
//! tauri-driver.
//!
//! 1. A session type with a two-tier refund policy; the form previews "Cancelled 30 h
//!    before: 50% back, 75.00 EUR." while it is typed.
//! 2. "Set up in Stripe", clicked twice at once: the simulator's Stripe made exactly one
//!    product, one price and one payment link for it (Idempotency-Keys from its id and
//!    version), the list shows the link, and the relay was handed it for `/pay/{slug}`.
//! 3. The Calendly page lists the simulator's event types; one is linked to the new
//!    session type, and a client booking it at the simulator arrives as a booking of
//!    that session type.
//! 4. "Register webhook": the simulator's Calendly holds an active subscription posting
//!    to `{relay}/hooks/calendly`, and the page says so.
//!
//! Screenshots: `target/e2e-artifacts/e2e-setup-*.png`. Run by `./scripts/test`; by hand:
//! build the UI, the app, the relay and the simulator, then
//! `xvfb-run -a cargo test -p coachdesk-tests --test e2e_setup -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use coachdesk_tests::e2e::{
    self, capture, click, replace, step, text_of, texts_of, type_into, wait_for, wait_for_text,
    Sandbox,
};
use coachdesk_tests::stack::Stack;
use fantoccini_loopback::Client;
use serde_json::Value;

const NAME: &str = "E2E Setup Call";
/// The demo event type the new session type is sold through.
const SLUG: &str = "deep-dive-90";
const SYNC_WAIT: Duration = Duration::from_secs(45);

#[tokio::test]
#[ignore = "needs a display, the built app, relay and simulator: run by ./scripts/test"]
async fn a_session_type_is_priced_set_up_in_stripe_mapped_and_its_webhook_registered(
) -> anyhow::Result<()> {
    let app = e2e::app_binary()?;
    let artifacts = e2e::artifacts_dir()?;
    let stack = Stack::start(Some(&artifacts.join("e2e-setup-stack")))?;
    let sandbox = Sandbox::new()?;
    let driver = stack.start_driver(&sandbox, "tauri-driver-setup")?;
    let client = driver.launch(&app).await?;
    let outcome = async {
        wait_for(&client, "#mode-banner[data-mode=demo]").await?;
        let id = create_with_policy(&client).await?;
        set_up_in_stripe(&client, &stack, &id).await?;
        map_event_type(&client, &stack, &id).await?;
        register_webhook(&client, &stack).await
    }
    .await;
    if outcome.is_err() {
        let _ = capture(&client, "e2e-setup-failure").await;
    }
    step("quit the app", client.close()).await?;
    outcome
}

/// (1) The form with a two-tier policy and its live preview; returns the new id.
async fn create_with_policy(client: &Client) -> anyhow::Result<String> {
    click(client, "#nav-session-types").await?;
    click(client, "#new-session-type").await?;
    wait_for(client, "#session-type-form").await?;
    type_into(client, "#field-name", NAME).await?;
    type_into(client, "#field-price", "150.00").await?;
    // The new form starts with one tier (24 h, 100%): make it 48 h, add 24 h at 50%.
    replace(client, "#tier-0-hours", "48").await?;
    click(client, "#add-refund-tier").await?;
    type_into(client, "#tier-1-hours", "24").await?;
    type_into(client, "#tier-1-percent", "50").await?;
    wait_for_text(
        client,
        "#refund-preview-sentence",
        "Cancelled 30 h before: 50% back, 75.00 EUR.",
    )
    .await?;
    capture(client, "e2e-setup-policy-preview").await?;
    // The preview follows the notice typed in.
    replace(client, "#preview-hours", "50").await?;
    wait_for_text(
        client,
        "#refund-preview-sentence",
        "Cancelled 50 h before: 100% back, 150.00 EUR.",
    )
    .await?;
    click(client, "#save-session-type").await?;
    wait_for_text(client, "[data-testid=session-type-name]", NAME).await?;
    let id = row_attr(client, "data-id").await?;
    Ok(id)
}

/// (2) One click on "Set up in Stripe" (twice at once): one product, price and link.
async fn set_up_in_stripe(client: &Client, stack: &Stack, id: &str) -> anyhow::Result<()> {
    let row = format!("tr[data-id='{id}']");
    wait_for(
        client,
        &format!("{row} [data-testid=stripe-status][data-status=not_set_up]"),
    )
    .await?;
    let script = format!(
        "const b = document.querySelector(\"{row} [data-testid=setup-stripe]\"); b.click(); b.click(); return true;"
    );
    step(
        "double-click Set up in Stripe",
        client.execute(&script, Vec::new()),
    )
    .await?;
    wait_for(
        client,
        &format!("{row} [data-testid=stripe-status][data-status=ready]"),
    )
    .await?;
    let url = text_of(client, &format!("{row} [data-testid=payment-link-url]")).await?;
    ensure!(
        url.starts_with(&stack.sim_url),
        "the payment link {url:?} is not the simulator's"
    );
    // The relay was handed the link for its `/pay/{slug}` redirect.
    let notice = text_of(client, "#stripe-notice").await?;
    ensure!(
        notice.contains(&format!("{}/pay/e2e-setup-call", stack.relay_url)),
        "the notice should name the relay's pay route: {notice:?}"
    );
    capture(client, "e2e-setup-stripe").await?;

    let prefix = format!("coachdesk-{id}-v1-");
    let posts = stack.requests(Some("POST"), "/v1/")?;
    let made: Vec<&str> = posts
        .iter()
        .filter(|r| {
            r.idempotency_key
                .as_deref()
                .is_some_and(|k| k.starts_with(&prefix))
                && !r.replayed
        })
        .map(|r| r.path.as_str())
        .collect();
    ensure!(
        made == ["/v1/products", "/v1/prices", "/v1/payment_links"],
        "expected one product, price and link for {id}, the simulator made {made:?}"
    );
    Ok(())
}

/// (3) The Calendly page: link the demo event type to the new session type; a booking of
/// it arrives as a booking of that session type.
async fn map_event_type(client: &Client, stack: &Stack, id: &str) -> anyhow::Result<()> {
    click(client, "#nav-calendly").await?;
    let uri = Stack::event_type_uri(SLUG)?;
    let row = format!("tr[data-testid=event-type-row][data-uri='{uri}']");
    wait_for(client, &row).await?;
    let count = texts_of(client, "tr[data-testid=event-type-row]")
        .await?
        .len();
    ensure!(count >= 3, "the simulator's three event types, got {count}");
    click(client, &format!("{row} select option[value='{id}']")).await?;
    wait_for_text(
        client,
        &format!("{row} [data-testid=event-type-note]"),
        "Saved",
    )
    .await?;
    capture(client, "e2e-setup-mapping").await?;

    // Reload from Calendly: the link was stored.
    click(client, "#refresh-event-types").await?;
    wait_for(
        client,
        &format!("{row} select option[value='{id}']:checked"),
    )
    .await?;

    stack.book(SLUG, "Mia Mapped", "mia.mapped@example.com", None)?;
    click(client, "#nav-bookings").await?;
    let deadline = Instant::now() + SYNC_WAIT;
    loop {
        for text in texts_of(client, "tr[data-testid=booking-row]").await? {
            if text.contains("Mia Mapped") {
                ensure!(
                    text.contains(NAME),
                    "the booking should be of {NAME:?}: {text:?}"
                );
                capture(client, "e2e-setup-mapped-booking").await?;
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the booking of the linked event type did not arrive within {} s",
                SYNC_WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// (4) Register the relay's webhook subscription with Calendly.
async fn register_webhook(client: &Client, stack: &Stack) -> anyhow::Result<()> {
    click(client, "#nav-calendly").await?;
    wait_for(client, "#subscription-state[data-state=missing]").await?;
    click(client, "#register-webhook").await?;
    wait_for(client, "#subscription-state[data-state=active]").await?;
    let callback = format!("{}/hooks/calendly", stack.relay_url);
    wait_for_text(client, "#subscription-callback", &callback).await?;
    capture(client, "e2e-setup-webhook").await?;

    let posted: Vec<Value> = stack
        .requests(Some("POST"), "/webhook_subscriptions")?
        .iter()
        .filter_map(|r| serde_json::from_str(&r.body).ok())
        .collect();
    ensure!(
        posted.len() == 1 && posted[0]["url"] == callback.as_str(),
        "one subscription to {callback} expected, the simulator got {posted:?}"
    );
    let events = posted[0]["events"].to_string();
    for event in [
        "invitee.created",
        "invitee.canceled",
        "invitee_no_show.created",
    ] {
        ensure!(events.contains(event), "{event} missing from {events}");
    }
    Ok(())
}

/// An attribute of the session type row named [`NAME`].
async fn row_attr(client: &Client, attr: &str) -> anyhow::Result<String> {
    let script =
        "const row = Array.from(document.querySelectorAll('tr[data-testid=session-type-row]'))
                      .find(r => r.querySelector('[data-testid=session-type-name]')
                          ?.innerText.trim() === arguments[0]);
                  return row ? row.getAttribute(arguments[1]) : null;";
    let found = step(
        "read the session type row",
        client.execute(script, vec![Value::from(NAME), Value::from(attr)]),
    )
    .await?;
    found
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no session type row named {NAME:?} with {attr}"))
}
