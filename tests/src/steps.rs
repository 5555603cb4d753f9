//! What a coach does in the window, as steps the end-to-end tests share: saving keys and
//! the relay's address in Settings, creating a session type with a refund policy, setting
//! it up in Stripe, linking a Calendly event type, registering Calendly's webhook, and
//! reading the bookings table. One copy, so a change of the UI is followed in one place.
//!
//! Steps that show something worth seeing capture it as `<shots>-<what>.png`.

use std::time::Duration;

use anyhow::{anyhow, ensure, Context as _};
use fantoccini_loopback::Client;
use serde_json::Value;

use crate::e2e::{
    self, capture, click, replace, step, text_of, texts_of, type_into, wait_for, wait_for_text,
};
use crate::stack::{Stack, DEMO_CALENDLY_TOKEN, DEMO_STRIPE_KEY};

/// How long sync may take to bring a change into the window (relay long-poll, effects).
pub const SYNC_WAIT: Duration = Duration::from_secs(45);

/// The secrets Settings keeps in the keychain, by their field names.
pub const SECRET_NAMES: [&str; 3] = ["stripe_test_key", "calendly_token", "relay_token"];

/// Saves the secret `name` through its Settings field and waits until the keychain has it
/// (the row says set and the field is emptied).
pub async fn save_secret(client: &Client, name: &str, value: &str) -> anyhow::Result<()> {
    click(client, "#nav-settings").await?;
    let input = format!("#secret-{name}-input");
    replace(client, &input, value).await?;
    click(client, &format!("#secret-{name}-save")).await?;
    wait_for(client, &format!("#secret-{name}-status[data-set=true]")).await?;
    let emptied = || async {
        let left = e2e::prop_of(client, &input, "value").await?;
        anyhow::Ok(if left.unwrap_or_default().is_empty() {
            Ok(())
        } else {
            Err(())
        })
    };
    let every = Duration::from_millis(100);
    coachdesk_waiting::until_async(Duration::from_secs(10), every, emptied, |()| {
        anyhow!("{name} was not saved")
    })
    .await
}

/// Saves the relay's address in Settings (which must be open).
pub async fn save_relay_url(client: &Client, url: &str) -> anyhow::Result<()> {
    replace(client, "#relay-url-input", url).await?;
    click(client, "#relay-url-save").await?;
    wait_for(client, "#relay-url-saved").await?;
    Ok(())
}

/// Clicks "Test connection" of `service` (`stripe`, `calendly`, `relay`) in Settings and
/// Saves the simulator's Stripe test key and Calendly token in Settings, and checks that
/// "Test connection" says each works.
pub async fn connect_stripe_and_calendly(client: &Client) -> anyhow::Result<()> {
    save_secret(client, "stripe_test_key", DEMO_STRIPE_KEY).await?;
    let answer = test_connection(client, "stripe").await?;
    ensure!(
        answer
            == (
                true,
                "Connected to Stripe: the test-mode secret key works.".to_owned()
            ),
        "{answer:?}"
    );
    save_secret(client, "calendly_token", DEMO_CALENDLY_TOKEN).await?;
    let answer = test_connection(client, "calendly").await?;
    ensure!(answer.0, "Calendly with the simulator's token: {answer:?}");
    Ok(())
}

/// returns (ok, the sentence shown).
pub async fn test_connection(client: &Client, service: &str) -> anyhow::Result<(bool, String)> {
    click(client, &format!("#test-{service}")).await?;
    let done = format!("#check-{service}[data-state=done]");
    let ok = e2e::attr_of(client, &done, "data-ok")
        .await?
        .unwrap_or_default();
    let text = text_of(client, &done).await?;
    Ok((ok == "true", text))
}

/// Removes the saved secrets through Settings, so the session keyring is left empty for
/// the next test.
pub async fn remove_secrets(client: &Client) -> anyhow::Result<()> {
    click(client, "#nav-settings").await?;
    for name in SECRET_NAMES {
        let css = format!("#secret-{name}-remove");
        if is_present(client, &css).await? {
            click(client, &css).await?;
        }
    }
    Ok(())
}

/// Whether some element matches `css` now (no waiting).
pub async fn is_present(client: &Client, css: &str) -> anyhow::Result<bool> {
    Ok(!texts_of(client, css).await?.is_empty())
}

/// Waits (up to `limit`) until nothing matches `css`.
pub async fn wait_gone(client: &Client, css: &str, limit: Duration) -> anyhow::Result<()> {
    let gone = || async {
        anyhow::Ok(if is_present(client, css).await? {
            Err(())
        } else {
            Ok(())
        })
    };
    coachdesk_waiting::until_async(limit, Duration::from_millis(250), gone, |()| {
        anyhow!("`{css}` was still shown after {} s", limit.as_secs())
    })
    .await
}

/// The text of the page's main area.
pub async fn page_text(client: &Client) -> anyhow::Result<String> {
    text_of(client, "#main").await
}

/// Scrolls the element `css` names to the top of the window (for a screenshot of it).
pub async fn scroll_to(client: &Client, css: &str) -> anyhow::Result<()> {
    wait_for(client, css).await?;
    let script = "const e = document.querySelector(arguments[0]);
                  if (e) { e.scrollIntoView({block: 'start'}); }
                  return e !== null;";
    step(
        &format!("scroll to `{css}`"),
        client.execute(script, vec![Value::from(css)]),
    )
    .await?;
    Ok(())
}

/// Creates the session type `name` at 150.00 with a two-tier refund policy (100% from 48 h,
/// 50% from 24 h), checking the form's live preview on the way; returns its id.
pub async fn create_session_type_with_policy(
    client: &Client,
    name: &str,
    shots: &str,
) -> anyhow::Result<String> {
    click(client, "#nav-session-types").await?;
    click(client, "#new-session-type").await?;
    wait_for(client, "#session-type-form").await?;
    type_into(client, "#field-name", name).await?;
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
    capture(client, &format!("{shots}-policy-preview")).await?;
    // The preview follows the notice typed in.
    replace(client, "#preview-hours", "50").await?;
    wait_for_text(
        client,
        "#refund-preview-sentence",
        "Cancelled 50 h before: 100% back, 150.00 EUR.",
    )
    .await?;
    click(client, "#save-session-type").await?;
    wait_for_text(client, "[data-testid=session-type-name]", name).await?;
    session_type_attr(client, name, "data-id").await
}

/// "Set up in Stripe" for the session type `id` (clicked twice at once): one product, one
/// price and one payment link at the simulator, and the relay named as the place clients
/// pay (`{relay}/pay/{pay_slug}`). Returns the payment link's URL.
pub async fn set_up_in_stripe(
    client: &Client,
    stack: &Stack,
    id: &str,
    pay_slug: &str,
    shots: &str,
) -> anyhow::Result<String> {
    click(client, "#nav-session-types").await?;
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
        notice.contains(&format!("{}/pay/{pay_slug}", stack.relay_url)),
        "the notice should name the relay's pay route: {notice:?}"
    );
    capture(client, &format!("{shots}-stripe")).await?;

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
    Ok(url)
}

/// On the Calendly page, links the simulator's event type `slug` to the session type `id`
/// and checks the link was stored (it is still chosen after a reload from Calendly).
pub async fn link_event_type(
    client: &Client,
    id: &str,
    slug: &str,
    shots: &str,
) -> anyhow::Result<()> {
    click(client, "#nav-calendly").await?;
    let uri = Stack::event_type_uri(slug)?;
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
    capture(client, &format!("{shots}-mapping")).await?;

    // Reload from Calendly: the link was stored.
    click(client, "#refresh-event-types").await?;
    wait_for(
        client,
        &format!("{row} select option[value='{id}']:checked"),
    )
    .await?;
    Ok(())
}

/// "Register webhook" on the Calendly page: the simulator's Calendly then holds exactly
/// one subscription, posting the booking events to `{relay}/hooks/calendly`.
pub async fn register_calendly_webhook(
    client: &Client,
    stack: &Stack,
    shots: &str,
) -> anyhow::Result<()> {
    click(client, "#nav-calendly").await?;
    wait_for(client, "#subscription-state[data-state=missing]").await?;
    click(client, "#register-webhook").await?;
    wait_for(client, "#subscription-state[data-state=active]").await?;
    let callback = format!("{}/hooks/calendly", stack.relay_url);
    wait_for_text(client, "#subscription-callback", &callback).await?;
    capture(client, &format!("{shots}-webhook")).await?;

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

/// An attribute of the session type row named `name`.
pub async fn session_type_attr(client: &Client, name: &str, attr: &str) -> anyhow::Result<String> {
    let script =
        "const row = Array.from(document.querySelectorAll('tr[data-testid=session-type-row]'))
                      .find(r => r.querySelector('[data-testid=session-type-name]')
                          ?.innerText.trim() === arguments[0]);
                  return row ? row.getAttribute(arguments[1]) : null;";
    let found = step(
        "read the session type row",
        client.execute(script, vec![Value::from(name), Value::from(attr)]),
    )
    .await?;
    found
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no session type row named {name:?} with {attr}"))
}

/// Waits on the bookings page until a row of `client_name` appears; returns its text.
pub async fn wait_booking_row(client: &Client, client_name: &str) -> anyhow::Result<String> {
    let row = || async {
        let texts = texts_of(client, "tr[data-testid=booking-row]").await?;
        anyhow::Ok(
            texts
                .into_iter()
                .find(|text| text.contains(client_name))
                .ok_or(()),
        )
    };
    coachdesk_waiting::until_async(SYNC_WAIT, Duration::from_millis(300), row, |()| {
        anyhow!(
            "no booking of {client_name} arrived within {} s",
            SYNC_WAIT.as_secs()
        )
    })
    .await
}

/// The rows of the bookings table as (client, state) pairs.
pub async fn booking_rows(client: &Client) -> anyhow::Result<Vec<(String, String)>> {
    let script =
        "return Array.from(document.querySelectorAll('tr[data-testid=booking-row]')).map(r => [
        (r.querySelector('[data-testid=open-booking]') || {}).textContent || '',
        (r.querySelector('[data-testid=booking-state]') || {}).textContent || '']);";
    let value = step(
        "read the bookings table",
        client.execute(script, Vec::new()),
    )
    .await?;
    let list = value.as_array().cloned().unwrap_or_default();
    Ok(list
        .iter()
        .map(|pair| {
            let text = |i: usize| pair[i].as_str().unwrap_or("").trim().to_owned();
            (text(0), text(1))
        })
        .collect())
}

/// Waits until the table has a row of `name` in `state` (sync brings it, nobody clicks).
pub async fn wait_row_state(client: &Client, name: &str, state: &str) -> anyhow::Result<()> {
    let rows = || async {
        let rows = booking_rows(client).await?;
        let there = rows.iter().any(|(n, s)| n == name && s == state);
        anyhow::Ok(if there { Ok(()) } else { Err(rows) })
    };
    coachdesk_waiting::until_async(SYNC_WAIT, Duration::from_millis(250), rows, |rows| {
        anyhow!(
            "no row of {name} in state {state:?} within {} s; rows: {rows:?}",
            SYNC_WAIT.as_secs()
        )
    })
    .await
}
