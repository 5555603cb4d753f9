//! The coach's set-up commands: a session type's Stripe product, price and payment link;
//! the link between Calendly event types and session types; the relay's Calendly webhook
//! subscription; the Stripe webhook endpoint. Each builds the use case from the app's
//! state and calls it (`coachdesk_desk::setup`, `coachdesk_desk::stripe_webhook`).

use std::time::Duration;

use coachdesk_desk::setup::{stripe_error, Setup};
use coachdesk_desk::stripe_webhook;
use coachdesk_protocol::ipc::CommandError;
use coachdesk_protocol::setup::{
    EventTypeLink, EventTypeRow, PolicyPreview, PolicyPreviewRequest, StripeSetup,
    StripeWebhookView, SubscriptionView,
};
use coachdesk_sync::relay::RelayClient;
use tauri::State;

use crate::AppState;

/// Runs `use_case` on the set-up over the app's store, settings and keychain.
async fn with_setup<T, F>(state: &AppState, use_case: F) -> Result<T, CommandError>
where
    F: AsyncFnOnce(&Setup<'_>) -> Result<T, CommandError>,
{
    let config = state.sync_config();
    let setup = Setup {
        store: &state.store,
        config: &config,
        secrets: state.secrets(),
    };
    use_case(&setup).await
}

/// Creates the session type's Stripe product, price and payment link (once per version
/// of its name and price) and tells the relay.
#[tauri::command(rename_all = "snake_case")]
pub async fn setup_stripe(
    state: State<'_, AppState>,
    id: String,
) -> Result<StripeSetup, CommandError> {
    with_setup(&state, async |s: &Setup<'_>| s.setup_stripe(&id).await).await
}

/// The coach's Calendly event types (every page), each with the session type it sells.
#[tauri::command(rename_all = "snake_case")]
pub async fn list_calendly_event_types(
    state: State<'_, AppState>,
) -> Result<Vec<EventTypeRow>, CommandError> {
    with_setup(&state, async |s: &Setup<'_>| s.list_event_types().await).await
}

/// Links a Calendly event type to a session type (or unlinks it).
#[tauri::command(rename_all = "snake_case")]
pub async fn map_event_type(
    state: State<'_, AppState>,
    link: EventTypeLink,
) -> Result<(), CommandError> {
    with_setup(&state, async |s: &Setup<'_>| s.map_event_type(&link).await).await
}

/// The state of the Calendly subscription posting to the relay.
#[tauri::command(rename_all = "snake_case")]
pub async fn calendly_subscription(
    state: State<'_, AppState>,
) -> Result<SubscriptionView, CommandError> {
    with_setup(&state, async |s: &Setup<'_>| {
        s.calendly_subscription().await
    })
    .await
}

/// Registers (or renews a disabled) Calendly webhook subscription to the relay.
#[tauri::command(rename_all = "snake_case")]
pub async fn register_calendly_webhook(
    state: State<'_, AppState>,
) -> Result<SubscriptionView, CommandError> {
    with_setup(&state, async |s: &Setup<'_>| {
        s.register_calendly_webhook().await
    })
    .await
}

/// The live preview under the refund-policy editor ("Cancelled 30 h before: 50% back,
/// 75.00 EUR."), computed by the domain's policy from the form as typed.
#[tauri::command(rename_all = "snake_case")]
pub async fn preview_refund_policy(
    request: PolicyPreviewRequest,
) -> Result<PolicyPreview, CommandError> {
    Ok(coachdesk_desk::refund_policy_preview(&request))
}

/// Runs `step` on the app's Stripe webhook set-up (the use case is
/// `coachdesk_desk::stripe_webhook`), then reads the endpoint's state for Settings; a
/// failure reads as the use case words it, plus why Stripe could not reach the relay if so.
async fn with_stripe_webhook(
    state: &AppState,
    step: Option<StripeWebhookStep>,
) -> Result<StripeWebhookView, CommandError> {
    let relay_url = state.sync_config().relay_url;
    let reach = stripe_webhook::classify_relay_url(&relay_url);
    let failed = |e: stripe_webhook::StripeWebhookError| {
        let mut err = e.command_error();
        if !reach.reachable() && !relay_url.trim().is_empty() {
            err.message = format!("{} {}", err.message, reach.sentence());
        }
        tracing::warn!(code = %err.code, "Stripe webhook set-up failed");
        err
    };
    let stripe = state.providers().stripe().map_err(|e| stripe_error(&e))?;
    let relay = RelayClient::new(&relay_url, Duration::from_secs(5)).map_err(|e| CommandError {
        code: "relay".to_owned(),
        message: format!("The relay client could not be set up ({e})."),
        fields: Vec::new(),
    })?;
    let secrets = state.secrets();
    let desk = stripe_webhook::StripeWebhook {
        stripe: &stripe,
        relay: &relay,
        secrets: secrets.as_ref(),
        store: &state.store,
        relay_url: &relay_url,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let report = match step {
        None => None,
        Some(StripeWebhookStep::Connect) => Some(desk.connect(now).await.map_err(failed)?),
        Some(StripeWebhookStep::Rotate) => Some(desk.rotate(now).await.map_err(failed)?),
    };
    let mut view = desk.status().await.map_err(failed)?;
    if let Some(report) = report {
        tracing::info!(endpoint = %report.endpoint_id, "Stripe webhook set up");
        view.message = report.message();
    }
    Ok(view)
}

#[derive(Clone, Copy)]
enum StripeWebhookStep {
    Connect,
    Rotate,
}

/// A new sealing key for this install, registered with the relay (Settings, "Relay").
#[tauri::command(rename_all = "snake_case")]
pub async fn rotate_relay_sealing_key(state: State<'_, AppState>) -> Result<String, CommandError> {
    coachdesk_desk::sealing::rotate_sealing_key(state.sync_handle().as_deref()).await
}

/// The state of the Stripe webhook endpoint posting to the relay.
#[tauri::command(rename_all = "snake_case")]
pub async fn stripe_webhook(state: State<'_, AppState>) -> Result<StripeWebhookView, CommandError> {
    with_stripe_webhook(&state, None).await
}

/// Creates (or finds and updates) the Stripe webhook endpoint and hands its signing
/// secret to the relay.
#[tauri::command(rename_all = "snake_case")]
pub async fn connect_stripe_webhook(
    state: State<'_, AppState>,
) -> Result<StripeWebhookView, CommandError> {
    with_stripe_webhook(&state, Some(StripeWebhookStep::Connect)).await
}

/// Replaces the endpoint with a new one (a new signing secret); the relay accepts both
/// secrets during the switch and only the new one after.
#[tauri::command(rename_all = "snake_case")]
pub async fn rotate_stripe_webhook_secret(
    state: State<'_, AppState>,
) -> Result<StripeWebhookView, CommandError> {
    with_stripe_webhook(&state, Some(StripeWebhookStep::Rotate)).await
}
