//! End to end: a new coach's first run, from an empty app to the first paid booking, in
//! one window of one app process (test mode, nothing configured), on the real relay and
//! the provider simulator (`coachdesk_tests::stack`), under Xvfb through tauri-driver.
//!
//! 1. The first start opens Settings with the first-run strip listing what is missing.
//! 2. The coach saves the Stripe key, the Calendly token, the relay's URL and token in
//!    Settings; each "Test connection" says connected and the strip goes.
//! 3. Settings' Stripe webhook card: "Connect Stripe to the relay" makes the endpoint at
//!    the simulator's Stripe; the card shows it enabled, posting to `{relay}/hooks/stripe`,
//!    events and API version right, its secret handed to the relay, and names the
//!    loopback relay as one real Stripe could not reach. The simulator holds exactly one
//!    endpoint, as specified.
//! 4. A session type with a refund policy, set up in Stripe, linked to a Calendly event
//!    type, Calendly's webhook registered.
//! 5. A client books at the simulator, follows the relay's `/pay/{slug}` redirect with the
//!    invitee's UUID (as Calendly's redirect sends them) to Checkout and pays; the booking
//!    turns Confirmed in the open window.
//!
//! The simulator's preconfigured webhook targets are switched off first: every webhook
//! that reaches the relay goes to the endpoint and subscription the coach made in the
//! window, with the secrets the app handed over, so the paid booking proves the set-up.
//!
//! Screenshots (`target/e2e-artifacts/e2e-first-run-*.png`) feed the coach's guide
//! (`./scripts/guide-screenshots`). Secrets go to a keychain service of this test's own in
//! the session keyring (scripts/test runs the e2e tests under `keyctl session -`).
//!
//! Run by hand: `./scripts/build-ui && cargo build -p coachdesk-app -p coachdesk-relay
//! -p coachdesk-sim`, then `keyctl session - xvfb-run -a -s "-screen 0 1280x800x24" cargo
//! test -p coachdesk-tests --test e2e_first_run -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use coachdesk_domain::provider::{stripe_webhook_events, STRIPE_API_VERSION};
use coachdesk_sim::http::{request, HttpResponse};
use coachdesk_tests::e2e::{
    self, capture, click, open_booking, step, text_of, wait_for, wait_for_text, Sandbox,
};
use coachdesk_tests::stack::{SimBooking, Stack};
use coachdesk_tests::steps::{
    connect_stripe_and_calendly, create_session_type_with_policy, link_event_type,
    register_calendly_webhook, remove_secrets, save_relay_url, save_secret, scroll_to,
    set_up_in_stripe, test_connection, wait_booking_row, wait_gone, wait_row_state,
};
use fantoccini_loopback::Client;
use serde_json::{json, Value};

/// The session type the coach creates, and its slug at the relay's `/pay/{slug}`.
const NAME: &str = "First Run Coaching";
const PAY_SLUG: &str = "first-run-coaching";
/// The simulator's Calendly event type it is sold through.
const EVENT_TYPE: &str = "coaching-60";
/// Screenshot names: `e2e-first-run-*.png`.
const SHOTS: &str = "e2e-first-run";

#[tokio::test]
#[ignore = "needs a display, the built app, relay and simulator: run by ./scripts/test"]
async fn a_new_coach_goes_from_nothing_configured_to_the_first_paid_booking() -> anyhow::Result<()>
{
    let started = Instant::now();
    let app = e2e::app_binary()?;
    let artifacts = e2e::artifacts_dir()?;
    let stack = Stack::start(Some(&artifacts.join("e2e-first-run-stack")))?;
    // Only what the coach connects delivers webhooks.
    stack
        .client
        .set_targets(None, None)
        .context("switch off the simulator's preconfigured webhook targets")?;
    let sandbox = Sandbox::new()?;
    let driver = sandbox.start_driver_on(&stack, "first-run")?;
    let client = driver.launch(&app).await?;
    let outcome = async {
        first_start(&client).await?;
        connect_services(&client, &stack).await?;
        connect_stripe_webhook(&client, &stack).await?;
        let id = create_session_type_with_policy(&client, NAME, SHOTS).await?;
        set_up_in_stripe(&client, &stack, &id, PAY_SLUG, SHOTS).await?;
        link_event_type(&client, &id, EVENT_TYPE, SHOTS).await?;
        register_calendly_webhook(&client, &stack, SHOTS).await?;
        first_paid_booking(&client, &stack).await
    }
    .await;
    if outcome.is_err() {
        let _ = capture(&client, "e2e-first-run-failure").await;
    }
    // Leave nothing in the session keyring for the next test.
    let _ = remove_secrets(&client).await;
    step("quit the app", client.close()).await?;
    println!(
        "first run to the first paid booking: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    outcome
}

/// (1) Nothing configured: Settings opens by itself and says what is missing.
async fn first_start(client: &Client) -> anyhow::Result<()> {
    wait_for(client, "#mode-banner[data-mode=test]").await?;
    wait_for(client, "#settings").await?;
    let strip = text_of(client, "#first-run").await?;
    for missing in ["Stripe secret key", "Calendly", "relay URL", "relay token"] {
        ensure!(
            strip.contains(missing),
            "the first-run strip should list {missing:?}, it says {strip:?}"
        );
    }
    capture(client, &format!("{SHOTS}-settings")).await?;
    Ok(())
}

/// (2) The keys, the token and the relay, each saved and tested as a coach would.
async fn connect_services(client: &Client, stack: &Stack) -> anyhow::Result<()> {
    connect_stripe_and_calendly(client).await?;
    save_relay_url(client, &stack.relay_url).await?;
    save_secret(client, "relay_token", &stack.relay_token).await?;
    let answer = test_connection(client, "relay").await?;
    ensure!(
        answer.0 && answer.1.starts_with("Connected to the relay"),
        "{answer:?}"
    );
    wait_gone(client, "#first-run", Duration::from_secs(10))
        .await
        .context("the first-run strip should go once everything is set")?;
    // Calendly's and the relay's answers on screen (Stripe's is just above).
    scroll_to(client, "#settings-calendly").await?;
    capture(client, &format!("{SHOTS}-connected")).await?;
    Ok(())
}

/// (3) The Stripe webhook card: one endpoint at Stripe, as specified, its secret at the relay.
async fn connect_stripe_webhook(client: &Client, stack: &Stack) -> anyhow::Result<()> {
    let card = "#settings-stripe-webhook";
    scroll_to(client, card).await?;
    // The card asked Stripe again once the key was saved: no endpoint yet, no stale
    // "enter your Stripe key first".
    wait_for(client, "#stripe-webhook-exists[data-state=missing]").await?;
    click(client, "#connect-stripe-webhook").await?;
    wait_for(client, "#stripe-webhook-exists[data-state=enabled]").await?;
    let hook = format!("{}/hooks/stripe", stack.relay_url);
    wait_for_text(client, "#stripe-webhook-url", &hook).await?;
    wait_for_text(client, "#stripe-webhook-events", "yes").await?;
    wait_for_text(client, "#stripe-webhook-handed-over", "yes").await?;
    let version = text_of(client, "#stripe-webhook-version").await?;
    ensure!(
        version.starts_with(STRIPE_API_VERSION)
            && version.ends_with(&format!("(Coachdesk reads {STRIPE_API_VERSION})")),
        "the card should show the endpoint's API version as the one read: {version:?}"
    );
    // The loopback relay works with the simulator and is named as out of real Stripe's reach.
    wait_for(client, "#stripe-webhook-reach[data-reach=loopback]").await?;
    scroll_to(client, card).await?;
    capture(client, &format!("{SHOTS}-stripe-webhook")).await?;

    let list = stack
        .client
        .stripe(
            "GET",
            "/v1/webhook_endpoints",
            &json!({"limit": "100"}),
            None,
        )
        .context("list the simulator's webhook endpoints")?;
    ensure!(list.status == 200, "listing endpoints: {}", list.text());
    let endpoints = list.json()?["data"].as_array().cloned().unwrap_or_default();
    ensure!(
        endpoints.len() == 1,
        "exactly one endpoint expected at Stripe, the simulator has {endpoints:#?}"
    );
    let endpoint = &endpoints[0];
    ensure!(endpoint["url"] == hook.as_str(), "{endpoint:#}");
    ensure!(endpoint["status"] == "enabled", "{endpoint:#}");
    ensure!(
        endpoint["api_version"] == STRIPE_API_VERSION,
        "{endpoint:#}"
    );
    let mut events: Vec<&str> = endpoint["enabled_events"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    events.sort_unstable();
    let mut wanted = stripe_webhook_events();
    wanted.sort_unstable();
    ensure!(
        events == wanted,
        "the endpoint should select exactly the handled events {wanted:?}, it has {events:?}"
    );
    let creates = stack
        .requests(Some("POST"), "/v1/webhook_endpoints")?
        .into_iter()
        .filter(|r| !r.replayed)
        .count();
    ensure!(
        creates == 1,
        "one endpoint created, the simulator saw {creates}"
    );
    Ok(())
}

/// (5) A client books, goes through the relay's `/pay/{slug}` to Checkout and pays; the
/// open window shows the booking, then shows it paid.
async fn first_paid_booking(client: &Client, stack: &Stack) -> anyhow::Result<()> {
    click(client, "#nav-bookings").await?;
    let booking = stack.book(EVENT_TYPE, "Alex First", "alex.first@example.com", None)?;
    let row = wait_booking_row(client, "Alex First").await?;
    ensure!(
        row.contains(NAME),
        "the booking should be of {NAME:?}: {row:?}"
    );
    wait_row_state(client, "Alex First", "Awaiting payment").await?;

    pay_through_the_relay(stack, &booking)?;
    wait_row_state(client, "Alex First", "Confirmed").await?;
    wait_for(client, "[data-testid=toast][data-kind=payment]").await?;
    capture(client, &format!("{SHOTS}-paid")).await?;

    open_booking(client, "Alex First", "Confirmed").await?;
    let facts = text_of(client, "#booking-detail .facts").await?;
    ensure!(
        facts.contains(NAME) && facts.contains("150.00 EUR"),
        "the booking should be a paid {NAME} of 150.00 EUR: {facts:?}"
    );
    capture(client, &format!("{SHOTS}-booking")).await?;
    Ok(())
}

/// The client's browser after booking: Calendly's redirect to `{relay}/pay/{slug}` with
/// the invitee's details, the relay's redirect to the payment link with the invitee's
/// UUID as `client_reference_id`, the simulator's Checkout page, and "Pay".
fn pay_through_the_relay(stack: &Stack, booking: &SimBooking) -> anyhow::Result<()> {
    let pay = format!(
        "{}/pay/{PAY_SLUG}?invitee_uuid={}&invitee_email={}",
        stack.relay_url,
        booking.invitee_uuid,
        booking.email.replace('@', "%40")
    );
    let to_link = browse("GET", &pay)?;
    ensure!(
        to_link.status == 302,
        "the relay's /pay should redirect to the payment link: {} {}",
        to_link.status,
        to_link.text()
    );
    let link = location(&pay, &to_link)?;
    ensure!(
        link.starts_with(&stack.sim_url)
            && link.contains(&format!("client_reference_id={}", booking.invitee_uuid)),
        "the relay should send the client to the payment link with their invitee UUID: {link}"
    );
    let to_checkout = browse("GET", &link)?;
    ensure!(
        to_checkout.status == 303,
        "the payment link should open Checkout: {} {}",
        to_checkout.status,
        to_checkout.text()
    );
    let checkout = location(&link, &to_checkout)?;
    let page = browse("GET", &checkout)?;
    ensure!(
        page.status == 200 && page.text().contains(&booking.invitee_uuid),
        "Checkout should show the booking's payment: {} {}",
        page.status,
        page.text()
    );
    let paid = browse("POST", &checkout)?;
    if paid.status != 303 {
        bail!("paying failed: {} {}", paid.status, paid.text());
    }
    Ok(())
}

fn browse(method: &str, url: &str) -> anyhow::Result<HttpResponse> {
    request(method, url, &[], b"", Duration::from_secs(10))
        .with_context(|| format!("{method} {url}"))
}

/// The redirect's target, resolved against the page that answered it.
fn location(from: &str, answer: &HttpResponse) -> anyhow::Result<String> {
    let to = answer
        .header("Location")
        .with_context(|| format!("{from} answered {} without a Location", answer.status))?;
    if to.starts_with("http://") || to.starts_with("https://") || !to.starts_with('/') {
        return Ok(to.to_owned());
    }
    let origin_end = from
        .find("://")
        .and_then(|scheme| from[scheme + 3..].find('/').map(|p| p + scheme + 3))
        .unwrap_or(from.len());
    Ok(format!("{}{to}", &from[..origin_end]))
}
