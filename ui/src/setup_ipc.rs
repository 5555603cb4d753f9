//! Bindings of the set-up commands (Stripe set-up, Calendly mapping and webhook, the
//! refund-policy preview); see `coachdesk_protocol::setup`.

use coachdesk_protocol::ipc::CommandError;
use coachdesk_protocol::setup::{
    command, EventTypeLink, EventTypeRow, PolicyPreview, PolicyPreviewRequest, StripeSetup,
    StripeWebhookView, SubscriptionView,
};
use serde::Serialize;

use crate::ipc::invoke;

#[derive(Serialize)]
struct NoArgs {}

#[derive(Serialize)]
struct Id<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct Link<'a> {
    link: &'a EventTypeLink,
}

#[derive(Serialize)]
struct Request<'a> {
    request: &'a PolicyPreviewRequest,
}

pub async fn setup_stripe(id: &str) -> Result<StripeSetup, CommandError> {
    invoke(command::SETUP_STRIPE, &Id { id }).await
}

pub async fn list_calendly_event_types() -> Result<Vec<EventTypeRow>, CommandError> {
    invoke(command::LIST_CALENDLY_EVENT_TYPES, &NoArgs {}).await
}

pub async fn map_event_type(link: &EventTypeLink) -> Result<(), CommandError> {
    invoke(command::MAP_EVENT_TYPE, &Link { link }).await
}

pub async fn calendly_subscription() -> Result<SubscriptionView, CommandError> {
    invoke(command::CALENDLY_SUBSCRIPTION, &NoArgs {}).await
}

pub async fn register_calendly_webhook() -> Result<SubscriptionView, CommandError> {
    invoke(command::REGISTER_CALENDLY_WEBHOOK, &NoArgs {}).await
}

pub async fn stripe_webhook() -> Result<StripeWebhookView, CommandError> {
    invoke(command::STRIPE_WEBHOOK, &NoArgs {}).await
}

pub async fn connect_stripe_webhook() -> Result<StripeWebhookView, CommandError> {
    invoke(command::CONNECT_STRIPE_WEBHOOK, &NoArgs {}).await
}

pub async fn rotate_stripe_webhook_secret() -> Result<StripeWebhookView, CommandError> {
    invoke(command::ROTATE_STRIPE_WEBHOOK_SECRET, &NoArgs {}).await
}

pub async fn rotate_relay_sealing_key() -> Result<String, CommandError> {
    invoke(command::ROTATE_RELAY_SEALING_KEY, &NoArgs {}).await
}

pub async fn preview_refund_policy(
    request: &PolicyPreviewRequest,
) -> Result<PolicyPreview, CommandError> {
    invoke(command::PREVIEW_REFUND_POLICY, &Request { request }).await
}
