//! Calendly webhook subscription health. Calendly disables a subscription after 24 hours
//! of failed deliveries and never says so except through the subscription's `state`; the
//! app checks it at start-up and periodically, reports `disabled` or `missing`, and
//! recreates it with the stored signing key when the coach asks.

use coachdesk_providers::{CalendlyApi, ProviderError};
use serde::Serialize;

/// The events the relay's Calendly hook wants.
pub const CALENDLY_EVENTS: [&str; 3] = [
    "invitee.created",
    "invitee.canceled",
    "invitee_no_show.created",
];

/// Hands the relay at `relay_url` the Calendly signing key `key` (authorised by the relay
/// token kept in `secrets`), so the relay verifies Calendly's deliveries with it. Sent
/// before a subscription is registered, and again by every check of an active one, so a
/// relay that was replaced or lost its database learns it back.
pub async fn hand_key_to_relay(
    relay_url: &str,
    secrets: &dyn crate::SecretSource,
    key: &crate::Secret,
) -> Result<crate::relay::KeyHandover, crate::SyncError> {
    let token = secrets.get(crate::SecretName::RelayToken)?;
    let relay = crate::relay::RelayClient::new(relay_url, std::time::Duration::from_secs(10))?;
    Ok(relay
        .put_calendly_signing_key(token.expose(), key.expose())
        .await?)
}

/// A fresh signing key for a new subscription: 32 random bytes as hex.
pub fn new_signing_key() -> crate::Secret {
    let bytes: [u8; 32] = rand::random();
    crate::Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The state of the subscription that posts to our callback URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SubscriptionHealth {
    Active {
        uri: String,
    },
    /// Calendly stopped delivering; recreate it.
    Disabled {
        uri: String,
    },
    /// No subscription posts to the relay.
    Missing,
}

/// Looks up the subscription posting to `callback_url`.
pub async fn check(
    calendly: &CalendlyApi,
    callback_url: &str,
) -> Result<SubscriptionHealth, ProviderError> {
    let user = calendly.current_user().await?;
    let subs = calendly.webhook_subscriptions(&user).await?;
    let mine: Vec<_> = subs
        .into_iter()
        .filter(|s| s.callback_url == callback_url)
        .collect();
    Ok(
        if let Some(active) = mine.iter().find(|s| s.state == "active") {
            SubscriptionHealth::Active {
                uri: active.uri.clone(),
            }
        } else if let Some(disabled) = mine.first() {
            SubscriptionHealth::Disabled {
                uri: disabled.uri.clone(),
            }
        } else {
            SubscriptionHealth::Missing
        },
    )
}

/// Makes sure an active subscription posts to `callback_url`: deletes disabled ones and
/// creates a new one signed with `signing_key`.
pub async fn recreate(
    calendly: &CalendlyApi,
    callback_url: &str,
    signing_key: &str,
) -> Result<SubscriptionHealth, ProviderError> {
    let user = calendly.current_user().await?;
    let subs = calendly.webhook_subscriptions(&user).await?;
    let mut have_active = None;
    for sub in subs.iter().filter(|s| s.callback_url == callback_url) {
        if sub.state == "active" {
            have_active = Some(sub.uri.clone());
        } else {
            calendly
                .delete_webhook_subscription(coachdesk_domain::provider::uuid_of(&sub.uri))
                .await?;
        }
    }
    if let Some(uri) = have_active {
        return Ok(SubscriptionHealth::Active { uri });
    }
    let created = calendly
        .create_webhook_subscription(callback_url, &CALENDLY_EVENTS, &user, signing_key)
        .await?;
    Ok(SubscriptionHealth::Active { uri: created.uri })
}
