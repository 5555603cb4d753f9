//! The coach's set-up, as use cases: a session type's Stripe product, price and payment
//! link; the link between Calendly event types and session types (and the relay's `/pay`
//! table that follows it); the relay's Calendly webhook subscription.
//!
//! The store decides what to make and keeps what was made, the providers crate talks to
//! Stripe and Calendly, and this module turns their failures into sentences a coach can
//! act on ("enter your Stripe key in Settings"). The shell's commands only build a
//! [`Setup`] from the app's state and call it.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use coachdesk_protocol::ipc::CommandError;
use coachdesk_protocol::relay::RedirectsPage;
use coachdesk_protocol::setup::{EventTypeLink, EventTypeRow, StripeSetup, SubscriptionView};
use coachdesk_providers::ProviderError;
use coachdesk_store::{Feature, ListedEventType, Store, StoreError, StripeObjects};
use coachdesk_sync::relay::{KeyHandover, RelayClient};
use coachdesk_sync::{
    subscription, Providers, Secret, SecretError, SecretName, SecretSource, SubscriptionHealth,
    SyncConfig, SyncError,
};
use serde_json::Value;

use crate::{capitalised, command_error, relay_links};

/// How long a call to the relay may take during set-up.
const RELAY_TIMEOUT: Duration = Duration::from_secs(5);

/// One Stripe set-up at a time: a double click waits for the first and then finds the
/// objects it made (Stripe answers a key still in flight with a conflict).
fn setup_lock() -> &'static tokio::sync::Mutex<()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

pub(crate) fn error(code: &str, message: String) -> CommandError {
    tracing::warn!(code, "{message}");
    CommandError {
        code: code.to_owned(),
        message,
        fields: Vec::new(),
    }
}

/// A provider failure in words: what is wrong and where to fix it.
fn provider_error(provider: &str, settings_hint: &str, err: &ProviderError) -> CommandError {
    if let Some(secret) = crate::settings::missing_secret(err) {
        return error("not_configured", format!("{settings_hint} ({secret})."));
    }
    match err {
        ProviderError::Transient { message, .. } => error(
            "unavailable",
            format!(
                "{provider} could not be reached or is busy ({message}). Nothing was made twice; try again in a moment."
            ),
        ),
        ProviderError::Permanent {
            status: 401,
            message,
            ..
        } => error(
            "refused",
            format!("{provider} did not accept the key ({message}). Check it in Settings."),
        ),
        ProviderError::Permanent {
            status, message, ..
        } => error(
            "refused",
            format!("{provider} refused the request ({status}): {message}"),
        ),
        ProviderError::BadBaseUrl { .. } => error("not_configured", capitalised(&err.to_string())),
    }
}

/// A Stripe failure in the coach's words.
pub fn stripe_error(err: &ProviderError) -> CommandError {
    provider_error("Stripe", "Enter your Stripe key in Settings first", err)
}

/// A Calendly failure in the coach's words.
pub fn calendly_error(err: &ProviderError) -> CommandError {
    provider_error(
        "Calendly",
        "Enter your Calendly access token in Settings first",
        err,
    )
}

fn store_error(use_case: &str, err: StoreError) -> CommandError {
    let err = command_error(err);
    tracing::warn!(use_case, code = %err.code, "{}", err.message);
    err
}

/// The set-up use cases over the app's store, settings and keychain.
pub struct Setup<'a> {
    pub store: &'a Mutex<Store>,
    /// The provider bases, relay URL and callback URL in force.
    pub config: &'a SyncConfig,
    pub secrets: Arc<dyn SecretSource>,
}

impl Setup<'_> {
    fn store(&self) -> MutexGuard<'_, Store> {
        crate::lock(self.store)
    }

    fn providers(&self) -> Providers {
        Providers::new(self.config.clone(), self.secrets.clone())
    }

    fn relay_url(&self) -> &str {
        &self.config.relay_url
    }

    /// Creates the session type's Stripe product, price and payment link, once per
    /// version of its name and price: every POST carries an Idempotency-Key derived from
    /// the session type's id and version, so a double click or a retry after a failure
    /// half-way makes nothing twice.
    pub async fn setup_stripe(&self, id: &str) -> Result<StripeSetup, CommandError> {
        let _one_at_a_time = setup_lock().lock().await;
        let plan = self
            .store()
            .stripe_setup_plan(id)
            .map_err(|e| store_error("setup_stripe", e))?;
        if let Some(mut existing) = plan.existing {
            existing.relay_note = Some(self.publish_links(id).await);
            return Ok(existing);
        }
        if plan.archived {
            return Err(error(
                "conflict",
                "This session type is archived; it is no longer sold, so it needs no payment link."
                    .to_owned(),
            ));
        }
        // The Payments toggle in Settings: off means no calls that sell anything.
        let payments_on = self
            .store()
            .feature_enabled(Feature::Payments)
            .map_err(|e| store_error("setup_stripe", e))?;
        if !payments_on {
            return Err(error(
                "conflict",
                "Payments are off in Settings, so no payment link is created. Turn Payments on in Settings, then set up Stripe again."
                    .to_owned(),
            ));
        }
        let stripe = self.providers().stripe().map_err(|e| stripe_error(&e))?;
        let created = stripe
            .create_payment_link(&plan.name, plan.price, &plan.idempotency_prefix())
            .await
            .map_err(|e| stripe_error(&e))?;
        tracing::info!(session_type = %id, product = %created.product, link = %created.payment_link, "Stripe set up");
        let mut setup = self
            .store()
            .record_stripe_setup(
                id,
                plan.version,
                &StripeObjects {
                    product_id: created.product,
                    price_id: created.price,
                    payment_link_id: created.payment_link,
                    payment_link_url: created.url,
                },
            )
            .map_err(|e| store_error("setup_stripe", e))?;
        setup.relay_note = Some(self.publish_links(id).await);
        Ok(setup)
    }

    /// Sends the relay the table its `/pay/{slug}` redirect reads and says in a sentence
    /// what happened. The payment link exists either way; a failed send is repeated by
    /// the next set-up.
    async fn publish_links(&self, id: &str) -> String {
        let relay_url = self.relay_url();
        if relay_url.trim().is_empty() {
            return "No relay is configured yet: enter its address in Settings so booked clients are sent to this link.".to_owned();
        }
        let slug = match self.store().session_type(id) {
            Ok(view) => view.slug,
            Err(e) => return command_error(e).message,
        };
        match self.push_links().await {
            Ok(()) => format!(
                "Booked clients reach this payment link through {relay_url}/pay/{slug}: make that Calendly's redirect after booking."
            ),
            Err(e) => {
                tracing::warn!(error = %e, "payment links not sent to the relay");
                format!("The relay could not be told about the link ({e}); set it up again later to retry.")
            }
        }
    }

    /// Sends the relay's `/pay` table as the store has it now.
    async fn push_links(&self) -> Result<(), String> {
        let table = self
            .store()
            .list_session_types(true)
            .map(|types| relay_links::payment_link_table(&types))
            .map_err(|e| command_error(e).message)?;
        let token = self
            .secrets
            .get(SecretName::RelayToken)
            .map_err(|e| e.to_string())?;
        RelayClient::new(self.relay_url(), RELAY_TIMEOUT)
            .map_err(|e| e.to_string())?
            .put_payment_links(token.expose(), &table)
            .await
            .map_err(|e| e.to_string())
    }

    /// The coach's Calendly event types (every page), each with the session type it
    /// sells and, when linked, its redirect and whether clients come through it.
    pub async fn list_event_types(&self) -> Result<Vec<EventTypeRow>, CommandError> {
        let calendly = self
            .providers()
            .calendly()
            .map_err(|e| calendly_error(&e))?;
        let me = calendly
            .current_user()
            .await
            .map_err(|e| calendly_error(&e))?;
        let listed: Vec<ListedEventType> = calendly
            .event_types(&me.uri)
            .await
            .map_err(|e| calendly_error(&e))?
            .iter()
            .filter_map(listed_event_type)
            .collect();
        let (mut rows, types) = {
            let store = self.store();
            let rows = store
                .event_type_rows(&listed)
                .map_err(|e| store_error("list_calendly_event_types", e))?;
            let types = store
                .list_session_types(true)
                .map_err(|e| store_error("list_calendly_event_types", e))?;
            (rows, types)
        };
        let seen = self.redirects_seen().await;
        relay_links::redirect_checks(
            &mut rows,
            &types,
            self.relay_url(),
            seen.as_ref().map_err(Clone::clone),
        );
        Ok(rows)
    }

    /// The relay's redirect visit counts, or why they are not known.
    async fn redirects_seen(&self) -> Result<RedirectsPage, String> {
        if self.relay_url().trim().is_empty() {
            return Err("no relay is configured.".to_owned());
        }
        let token = self
            .secrets
            .get(SecretName::RelayToken)
            .map_err(|e| format!("{e}."))?;
        let relay = RelayClient::new(self.relay_url(), RELAY_TIMEOUT).map_err(|e| e.to_string())?;
        relay
            .redirects(token.expose())
            .await
            .map_err(|e| relay_links::relay_unanswered(&e))
    }

    /// Links a Calendly event type to a session type (or unlinks it): new bookings of
    /// that event type take the session type's price and refund policy. The relay's
    /// `/pay` table follows (its "book again" links come from the linked event types); if
    /// the relay cannot be told now, the next set-up tells it.
    pub async fn map_event_type(&self, link: &EventTypeLink) -> Result<(), CommandError> {
        self.store()
            .link_event_type(link)
            .map_err(|e| store_error("map_event_type", e))?;
        if !self.relay_url().trim().is_empty() {
            if let Err(e) = self.push_links().await {
                tracing::warn!(error = %e, "payment links not sent to the relay after a link change");
            }
        }
        Ok(())
    }

    /// Where Calendly should post: the relay's Calendly hook, or a sentence saying how to
    /// configure the relay.
    fn callback_url(&self) -> Result<String, CommandError> {
        if self.relay_url().trim().is_empty() {
            return Err(error(
                "not_configured",
                "Enter the relay's address in Settings first: Calendly posts bookings to the relay."
                    .to_owned(),
            ));
        }
        Ok(self.config.calendly_callback_url.clone())
    }

    /// The state of the Calendly subscription posting to the relay.
    pub async fn calendly_subscription(&self) -> Result<SubscriptionView, CommandError> {
        let callback = self.callback_url()?;
        let calendly = self
            .providers()
            .calendly()
            .map_err(|e| calendly_error(&e))?;
        let health = subscription::check(&calendly, &callback)
            .await
            .map_err(|e| calendly_error(&e))?;
        Ok(subscription_view(health, callback))
    }

    /// Registers (or renews a disabled) Calendly webhook subscription to the relay,
    /// signed with the key in the keychain; a key is made and stored there when none
    /// exists yet.
    pub async fn register_calendly_webhook(&self) -> Result<SubscriptionView, CommandError> {
        let callback = self.callback_url()?;
        let calendly = self
            .providers()
            .calendly()
            .map_err(|e| calendly_error(&e))?;
        let (key, made) = match self.secrets.get(SecretName::CalendlySigningKey) {
            Ok(key) => (key, false),
            Err(SecretError::Missing { .. }) => {
                let key = subscription::new_signing_key();
                self.secrets
                    .store(SecretName::CalendlySigningKey, &key)
                    .map_err(|e| error("keychain", capitalised(&e.to_string())))?;
                (key, true)
            }
            Err(e) => return Err(error("keychain", capitalised(&e.to_string()))),
        };
        // The relay learns the key before Calendly signs anything with it.
        self.hand_key_to_relay(&key).await?;
        let health = subscription::recreate(&calendly, &callback, key.expose())
            .await
            .map_err(|e| calendly_error(&e))?;
        let mut view = subscription_view(health, callback);
        view.message.push_str(if made {
            " A new signing key was made, stored in the keychain and handed to the relay."
        } else {
            " The relay has the subscription's signing key, so it accepts Calendly's deliveries."
        });
        Ok(view)
    }

    /// Gives the relay the key Calendly will sign its deliveries with; on failure nothing
    /// is registered with Calendly, so no delivery can be refused for a key the relay
    /// lacks.
    async fn hand_key_to_relay(&self, key: &Secret) -> Result<(), CommandError> {
        match subscription::hand_key_to_relay(self.relay_url(), self.secrets.as_ref(), key).await {
            Ok(KeyHandover::Accepted) => Ok(()),
            Ok(KeyHandover::Disabled) => Err(error(
                "relay",
                "The relay's operator turned Calendly key hand-over off, so the relay would refuse deliveries signed with a key made here; nothing was registered with Calendly. Ask the operator to turn it on (calendly_key_handover = true), or to register the subscription with a key in the relay's calendly_keys.".to_owned(),
            )),
            Err(SyncError::Secret(e @ SecretError::Missing { .. })) => Err(error(
                "not_configured",
                format!("The relay token is needed to give the relay Calendly's signing key ({e}). Enter it in Settings, then register again."),
            )),
            Err(e) => Err(error(
                "relay",
                format!("The relay could not take Calendly's signing key ({e}), so nothing was registered with Calendly. Check the relay in Settings and try again."),
            )),
        }
    }
}

/// An event type from Calendly's list; `None` when the entry lacks a URI or a name.
fn listed_event_type(value: &Value) -> Option<ListedEventType> {
    Some(ListedEventType {
        uri: value["uri"].as_str()?.to_owned(),
        name: value["name"].as_str()?.to_owned(),
        slug: value["slug"].as_str().map(str::to_owned),
        duration_minutes: value["duration"]
            .as_u64()
            .and_then(|d| u32::try_from(d).ok()),
        scheduling_url: value["scheduling_url"].as_str().map(str::to_owned),
        active: value["active"].as_bool().unwrap_or(true),
    })
}

fn subscription_view(health: SubscriptionHealth, callback_url: String) -> SubscriptionView {
    let (state, uri, message) = match health {
        SubscriptionHealth::Active { uri } => (
            "active",
            Some(uri),
            "Calendly sends new bookings, cancellations and no-shows to the relay.".to_owned(),
        ),
        SubscriptionHealth::Disabled { uri } => (
            "disabled",
            Some(uri),
            "Calendly stopped sending events (deliveries failed for a day). Register the webhook again.".to_owned(),
        ),
        SubscriptionHealth::Missing => (
            "missing",
            None,
            "Calendly does not send events to the relay yet. Register the webhook.".to_owned(),
        ),
    };
    SubscriptionView {
        state: state.to_owned(),
        uri,
        callback_url,
        message,
    }
}
