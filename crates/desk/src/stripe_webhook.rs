//! Stripe in one step: from the saved Stripe key, the app creates (or finds and updates)
//! its own webhook endpoint at Stripe, pointed at the relay's `/hooks/stripe`, selecting
//! exactly the events the app handles, pinned to the API version it parses; hands the
//! endpoint's signing secret to the relay (`PUT /v1/stripe-signing-secrets`, as Calendly's
//! key is handed over); and can rotate that secret.
//!
//! Finding: the endpoint carries `metadata[coachdesk]` ([`METADATA_KEY`]); one without it
//! but posting to our hook URL is ours too (made before, or by hand). Stripe shows an
//! endpoint's secret only when it is created, and the app keeps it in the keychain
//! ([`SecretName::StripeWebhookSecret`]) with the id of the endpoint it belongs to in the
//! settings. So a found endpoint whose secret the app does not hold, or whose API version
//! differs (Stripe cannot change it), is replaced: a new endpoint, its secret handed over
//! beside the old one, then the old endpoint deleted and the old secret dropped.
//!
//! Rotation is that replacement on purpose (Stripe rolls secrets only in its dashboard):
//! [`StripeWebhook::begin_rotation`] makes the new endpoint and has the relay accept both
//! secrets; [`StripeWebhook::finish_rotation`] deletes the old endpoint and has the relay
//! drop its secret. A rotation cut short is finished by the next connect.
//!
//! Twice at once makes one endpoint: connects and rotations in this process take turns,
//! and each create carries an `Idempotency-Key` derived from a generation counter kept in
//! the settings, so a retried or repeated create replays the first instead of adding one.
//!
//! Secrets are never logged and never stored in SQLite.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use coachdesk_domain::provider::{stripe_webhook_events, STRIPE_API_VERSION};
use coachdesk_protocol::ipc::CommandError;
use coachdesk_protocol::setup::StripeWebhookView;
use coachdesk_providers::{
    CreatedWebhookEndpoint, ProviderError, StripeApi, WebhookEndpoint, WebhookEndpointSpec,
};
use coachdesk_store::{Store, StoreError};
use coachdesk_sync::relay::{KeyHandover, RelayClient};
use coachdesk_sync::{Secret, SecretError, SecretName, SecretSource};
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The metadata key (and value) marking an endpoint as Coachdesk's.
pub const METADATA_KEY: &str = "coachdesk";
pub const METADATA_VALUE: &str = "relay-webhook";
/// Where the relay takes Stripe's webhooks.
pub const HOOK_PATH: &str = "/hooks/stripe";

/// The id of the endpoint whose secret is in the keychain.
const ENDPOINT_ID: &str = "stripe.webhook.endpoint_id";
/// During a rotation: the endpoint being retired.
const RETIRING_ID: &str = "stripe.webhook.retiring_endpoint_id";
/// The endpoint whose secret the relay last took.
const HANDED_OVER: &str = "stripe.webhook.handed_over";
/// Unix seconds of the last finished rotation.
const ROTATED_AT: &str = "stripe.webhook.rotated_at";
/// Counts endpoints created; part of the idempotency key.
const GENERATION: &str = "stripe.webhook.generation";

/// Connects and rotations in this process take turns.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether Stripe could reach a relay address, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayReach {
    /// A public https address.
    Public,
    /// This machine (`localhost`, 127.0.0.0/8, `::1`, 0.0.0.0).
    Loopback,
    /// A private network (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10).
    PrivateNetwork,
    /// A link-local address (169.254/16, fe80::/10).
    LinkLocal,
    /// A `.local` (mDNS) or single-label name only the local network resolves.
    LocalName,
    /// Plain http: Stripe sends live-mode events over https only.
    PlainHttp,
    /// Not an http(s) URL with a host.
    Invalid,
}

impl RelayReach {
    pub fn reachable(self) -> bool {
        self == RelayReach::Public
    }

    /// The machine-readable name the window matches on.
    pub fn code(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Loopback => "loopback",
            Self::PrivateNetwork => "private_network",
            Self::LinkLocal => "link_local",
            Self::LocalName => "local_name",
            Self::PlainHttp => "plain_http",
            Self::Invalid => "invalid",
        }
    }

    /// The reach named by [`RelayReach::code`] (`Invalid` for any other text).
    pub fn from_code(code: &str) -> RelayReach {
        [
            Self::Public,
            Self::Loopback,
            Self::PrivateNetwork,
            Self::LinkLocal,
            Self::LocalName,
            Self::PlainHttp,
        ]
        .into_iter()
        .find(|r| r.code() == code)
        .unwrap_or(Self::Invalid)
    }

    /// What the coach reads next to the relay's address.
    pub fn sentence(self) -> &'static str {
        match self {
            Self::Public => "Stripe can reach this address.",
            Self::Loopback => "This address is this computer itself: Stripe cannot reach it. Put the relay on a server with a public https address.",
            Self::PrivateNetwork => "This is a private network address: Stripe, on the internet, cannot reach it. Put the relay on a server with a public https address.",
            Self::LinkLocal => "This is a link-local address, reachable only on this network segment: Stripe cannot reach it. Use the relay's public https address.",
            Self::LocalName => "This name only resolves on the local network: Stripe cannot reach it. Use the relay's public https address.",
            Self::PlainHttp => "This address is plain http: Stripe sends live events only to https addresses. Put the relay behind https.",
            Self::Invalid => "This is not a web address (it must start with https:// and name a host).",
        }
    }
}

/// Whether Stripe could deliver to `url` (pure: no lookup is made).
pub fn classify_relay_url(url: &str) -> RelayReach {
    let Ok(parsed) = url::Url::parse(url.trim()) else {
        return RelayReach::Invalid;
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return RelayReach::Invalid;
    }
    let reach = match parsed.host() {
        None => RelayReach::Invalid,
        Some(url::Host::Ipv4(ip)) => classify_v4(ip),
        Some(url::Host::Ipv6(ip)) => match ip.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(ip),
        },
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                RelayReach::Loopback
            } else if name.ends_with(".local") || !name.contains('.') {
                RelayReach::LocalName
            } else {
                RelayReach::Public
            }
        }
    };
    if reach == RelayReach::Public && parsed.scheme() == "http" {
        RelayReach::PlainHttp
    } else {
        reach
    }
}

fn classify_v4(ip: Ipv4Addr) -> RelayReach {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() || ip.is_unspecified() {
        RelayReach::Loopback
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        RelayReach::PrivateNetwork
    } else if ip.is_link_local() {
        RelayReach::LinkLocal
    } else {
        RelayReach::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> RelayReach {
    let first = ip.segments()[0];
    if ip.is_loopback() || ip.is_unspecified() {
        RelayReach::Loopback
    } else if first & 0xfe00 == 0xfc00 {
        RelayReach::PrivateNetwork
    } else if first & 0xffc0 == 0xfe80 {
        RelayReach::LinkLocal
    } else {
        RelayReach::Public
    }
}

/// Why setting up the Stripe webhook failed; [`StripeWebhookError::kind`] is what the
/// window matches on.
#[derive(Debug, Error)]
pub enum StripeWebhookError {
    #[error("the relay's address is not set")]
    NoRelayUrl,
    #[error("the relay's address {0:?} is not an http(s) URL")]
    BadRelayUrl(String),
    #[error("Stripe: {0}")]
    Stripe(#[source] ProviderError),
    #[error("the relay: {0}")]
    Relay(#[source] ProviderError),
    #[error("the relay's operator turned Stripe secret hand-over off")]
    HandoverDisabled,
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StripeWebhookError {
    /// A stable name per kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoRelayUrl => "not_configured",
            Self::BadRelayUrl(_) => "invalid",
            Self::Stripe(e) if e.is_transient() => "stripe_unreachable",
            Self::Stripe(_) => "stripe",
            Self::Relay(_) => "relay",
            Self::HandoverDisabled => "handover_disabled",
            Self::Secret(SecretError::Missing { .. }) => "not_configured",
            Self::Secret(_) => "keychain",
            Self::Store(_) => "storage",
        }
    }

    /// What the window shows.
    pub fn command_error(&self) -> CommandError {
        let message = match self {
            Self::NoRelayUrl => "Enter the relay's address in Settings first: Stripe sends payments to the relay.".to_owned(),
            Self::BadRelayUrl(url) => format!("The relay's address {url:?} is not a web address; fix it in Settings."),
            Self::Stripe(e) if e.is_transient() => format!("Stripe could not be reached ({}). Nothing was lost; try again in a moment.", e.provider_message()),
            Self::Stripe(e) => format!("Stripe refused to set up the webhook: {}", e.provider_message()),
            Self::Relay(e) => format!("The relay could not take the webhook's signing secret ({e}). Check the relay in Settings and try again."),
            Self::HandoverDisabled => "The relay's operator turned Stripe secret hand-over off, so the relay would refuse the endpoint's webhooks; nothing was left at Stripe. Ask the operator to turn it on (stripe_secret_handover = true).".to_owned(),
            Self::Secret(e) => crate::capitalised(&e.to_string()),
            Self::Store(e) => crate::capitalised(&e.to_string()),
        };
        CommandError {
            code: self.kind().to_owned(),
            message,
            fields: vec![],
        }
    }
}

/// What a connect did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ConnectAction {
    Created,
    /// URL or events (or a disabled endpoint) corrected in place.
    Updated,
    Unchanged,
    /// A new endpoint replaced the old one, which was deleted.
    Replaced {
        old: String,
        reason: ReplaceReason,
    },
}

/// Why an endpoint was replaced instead of updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplaceReason {
    /// Its API version is not the one the app parses (Stripe cannot change it).
    ApiVersion,
    /// The app does not hold its secret (Stripe shows it only at creation).
    SecretUnknown,
    /// The coach asked for a new secret.
    Rotation,
}

/// The outcome of a connect or rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectReport {
    pub endpoint_id: String,
    pub action: ConnectAction,
    pub reach: RelayReach,
}

impl ConnectReport {
    /// A sentence for the coach.
    pub fn message(&self) -> String {
        let done = match &self.action {
            ConnectAction::Created => "Stripe's webhook endpoint was created and its signing secret handed to the relay.",
            ConnectAction::Updated => "Stripe's webhook endpoint was corrected (address or events) and the relay has its signing secret.",
            ConnectAction::Unchanged => "Stripe's webhook endpoint was already set up; the relay has its signing secret.",
            ConnectAction::Replaced { reason: ReplaceReason::ApiVersion, .. } => "The old webhook endpoint used another Stripe API version, which Stripe cannot change: a new endpoint replaced it and the old one was deleted.",
            ConnectAction::Replaced { reason: ReplaceReason::SecretUnknown, .. } => "The webhook endpoint's signing secret was not on this computer (Stripe shows it only once): a new endpoint replaced it and the old one was deleted.",
            ConnectAction::Replaced { reason: ReplaceReason::Rotation, .. } => "A new signing secret is in use: a new endpoint replaced the old one, which was deleted; the relay accepted both during the switch.",
        };
        if self.reach.reachable() {
            done.to_owned()
        } else {
            format!("{done} {}", self.reach.sentence())
        }
    }
}

/// A rotation half done: both endpoints exist and the relay accepts both secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationStarted {
    pub new_endpoint: String,
    pub old_endpoint: String,
}

/// The Stripe webhook set-up, on the app's Stripe client, relay and keychain.
pub struct StripeWebhook<'a> {
    pub stripe: &'a StripeApi,
    pub relay: &'a RelayClient,
    pub secrets: &'a dyn SecretSource,
    pub store: &'a Mutex<Store>,
    /// The relay's public base URL (what Stripe posts to, plus [`HOOK_PATH`]).
    pub relay_url: &'a str,
}

/// The hook URL for a relay base URL.
pub fn hook_url(relay_url: &str) -> Result<String, StripeWebhookError> {
    let base = relay_url.trim().trim_end_matches('/');
    if base.is_empty() {
        return Err(StripeWebhookError::NoRelayUrl);
    }
    if classify_relay_url(base) == RelayReach::Invalid {
        return Err(StripeWebhookError::BadRelayUrl(base.to_owned()));
    }
    Ok(format!("{base}{HOOK_PATH}"))
}

fn wanted_events() -> Vec<String> {
    let mut events: Vec<String> = stripe_webhook_events()
        .into_iter()
        .map(str::to_owned)
        .collect();
    events.sort();
    events
}

fn same_events(endpoint: &WebhookEndpoint, wanted: &[String]) -> bool {
    let mut have = endpoint.enabled_events.clone();
    have.sort();
    have.dedup();
    have == wanted
}

impl StripeWebhook<'_> {
    fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        crate::lock(self.store).setting(key)
    }

    fn set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        crate::lock(self.store).set_setting(key, value)
    }

    fn unset(&self, key: &str) -> Result<(), StoreError> {
        crate::lock(self.store).delete_setting(key)
    }

    fn spec(&self, hook: &str) -> WebhookEndpointSpec {
        WebhookEndpointSpec {
            url: hook.to_owned(),
            enabled_events: wanted_events(),
            api_version: STRIPE_API_VERSION.to_owned(),
            description: "Coachdesk: bookings and payments, through its relay".to_owned(),
            metadata: BTreeMap::from([(METADATA_KEY.to_owned(), METADATA_VALUE.to_owned())]),
        }
    }

    /// Coachdesk's endpoints at Stripe: marked by metadata or posting to `hook`; the one
    /// whose secret the app holds first, then newest first.
    async fn ours(&self, hook: &str) -> Result<Vec<WebhookEndpoint>, StripeWebhookError> {
        let stored = self.setting(ENDPOINT_ID)?;
        let mut ours: Vec<WebhookEndpoint> = self
            .stripe
            .list_webhook_endpoints()
            .await
            .map_err(StripeWebhookError::Stripe)?
            .into_iter()
            .filter(|e| {
                e.metadata.get(METADATA_KEY).map(String::as_str) == Some(METADATA_VALUE)
                    || e.url == hook
            })
            .collect();
        ours.sort_by_key(|e| (Some(&e.id) != stored.as_ref(), -e.created));
        Ok(ours)
    }

    /// Creates an endpoint; the key repeats only for a repeat of this very create.
    async fn create(
        &self,
        spec: &WebhookEndpointSpec,
    ) -> Result<CreatedWebhookEndpoint, StripeWebhookError> {
        let generation: u64 = self
            .setting(GENERATION)?
            .and_then(|g| g.parse().ok())
            .unwrap_or(0);
        let mut digest = Sha256::new();
        digest.update(spec.url.as_bytes());
        digest.update(b"|");
        digest.update(spec.enabled_events.join(",").as_bytes());
        digest.update(b"|");
        digest.update(spec.api_version.as_bytes());
        let digest: String = digest.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let key = format!("coachdesk-webhook-endpoint-{generation}-{digest}");
        let created = self
            .stripe
            .create_webhook_endpoint(spec, &key)
            .await
            .map_err(StripeWebhookError::Stripe)?;
        self.set(GENERATION, &(generation + 1).to_string())?;
        tracing::info!(endpoint = %created.endpoint.id, "Stripe webhook endpoint created");
        Ok(created)
    }

    async fn hand_over(&self, secrets: &[&Secret]) -> Result<(), StripeWebhookError> {
        let token = self.secrets.get(SecretName::RelayToken)?;
        let values: Vec<&str> = secrets.iter().map(|s| s.expose()).collect();
        match self
            .relay
            .put_stripe_signing_secrets(token.expose(), &values)
            .await
        {
            Ok(KeyHandover::Accepted) => Ok(()),
            Ok(KeyHandover::Disabled) => Err(StripeWebhookError::HandoverDisabled),
            Err(e) => Err(StripeWebhookError::Relay(e)),
        }
    }

    /// Creates or finds-and-updates the endpoint and hands its secret to the relay.
    pub async fn connect(&self, now: i64) -> Result<ConnectReport, StripeWebhookError> {
        let hook = hook_url(self.relay_url)?;
        let reach = classify_relay_url(self.relay_url);
        let _turn = TURN.lock().await;
        if self.setting(RETIRING_ID)?.is_some() {
            self.finish(now).await?;
        }
        let ours = self.ours(&hook).await?;
        let stored = self.setting(ENDPOINT_ID)?;
        let report = |endpoint_id: String, action| ConnectReport {
            endpoint_id,
            action,
            reach,
        };
        let Some(found) = ours.into_iter().next() else {
            let id = self.create_and_hand_over(&hook).await?;
            return Ok(report(id, ConnectAction::Created));
        };
        let secret = match self.secrets.get(SecretName::StripeWebhookSecret) {
            Ok(s) if stored.as_deref() == Some(found.id.as_str()) => Some(s),
            Ok(_) | Err(SecretError::Missing { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let pinned = found.api_version.as_deref() == Some(STRIPE_API_VERSION);
        let secret = match (pinned, secret) {
            (true, Some(secret)) => secret,
            (pinned, _) => {
                let reason = if pinned {
                    ReplaceReason::SecretUnknown
                } else {
                    ReplaceReason::ApiVersion
                };
                let started = self.begin(&hook, &found.id).await?;
                if started.new_endpoint == found.id {
                    return Ok(report(found.id, ConnectAction::Created));
                }
                self.finish(now).await?;
                return Ok(report(
                    started.new_endpoint,
                    ConnectAction::Replaced {
                        old: found.id,
                        reason,
                    },
                ));
            }
        };
        let wanted = wanted_events();
        let action = if found.url != hook || !same_events(&found, &wanted) || !found.enabled() {
            self.stripe
                .update_webhook_endpoint(&found.id, &hook, &wanted)
                .await
                .map_err(StripeWebhookError::Stripe)?;
            tracing::info!(endpoint = %found.id, "Stripe webhook endpoint updated");
            ConnectAction::Updated
        } else {
            ConnectAction::Unchanged
        };
        self.hand_over(&[&secret]).await?;
        self.set(HANDED_OVER, &found.id)?;
        Ok(report(found.id, action))
    }

    async fn create_and_hand_over(&self, hook: &str) -> Result<String, StripeWebhookError> {
        let created = self.create(&self.spec(hook)).await?;
        let id = created.endpoint.id.clone();
        let secret = Secret::new(created.secret.expose());
        self.secrets
            .store(SecretName::StripeWebhookSecret, &secret)?;
        self.set(ENDPOINT_ID, &id)?;
        if let Err(e) = self.hand_over(&[&secret]).await {
            if matches!(e, StripeWebhookError::HandoverDisabled) {
                // An endpoint whose every delivery the relay would refuse helps no one.
                let _ = self.stripe.delete_webhook_endpoint(&id).await;
                self.unset(ENDPOINT_ID)?;
            }
            return Err(e);
        }
        self.set(HANDED_OVER, &id)?;
        Ok(id)
    }

    /// A new endpoint beside `old`, with the relay accepting both secrets (the old one
    /// only if the app holds it).
    async fn begin(&self, hook: &str, old: &str) -> Result<RotationStarted, StripeWebhookError> {
        let old_secret = match self.secrets.get(SecretName::StripeWebhookSecret) {
            Ok(s) if self.setting(ENDPOINT_ID)?.as_deref() == Some(old) => Some(s),
            Ok(_) | Err(SecretError::Missing { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        let created = self.create(&self.spec(hook)).await?;
        let new_id = created.endpoint.id.clone();
        let secret = Secret::new(created.secret.expose());
        if new_id == old {
            // The create whose answer was lost, replayed under its key: nothing to retire.
            self.secrets
                .store(SecretName::StripeWebhookSecret, &secret)?;
            self.set(ENDPOINT_ID, &new_id)?;
            self.hand_over(&[&secret]).await?;
            self.set(HANDED_OVER, &new_id)?;
            return Ok(RotationStarted {
                new_endpoint: new_id.clone(),
                old_endpoint: new_id,
            });
        }
        // The old secret is kept until the old endpoint is gone; then the new one is current.
        if let Some(old_secret) = &old_secret {
            self.secrets
                .store(SecretName::StripeWebhookPreviousSecret, old_secret)?;
        }
        self.secrets
            .store(SecretName::StripeWebhookSecret, &secret)?;
        self.set(ENDPOINT_ID, &new_id)?;
        self.set(RETIRING_ID, old)?;
        let both: Vec<&Secret> = std::iter::once(&secret)
            .chain(old_secret.as_ref())
            .collect();
        self.hand_over(&both).await?;
        self.set(HANDED_OVER, &new_id)?;
        Ok(RotationStarted {
            new_endpoint: new_id,
            old_endpoint: old.to_owned(),
        })
    }

    /// Deletes the retiring endpoint and has the relay keep only the current secret.
    async fn finish(&self, now: i64) -> Result<(), StripeWebhookError> {
        let Some(old) = self.setting(RETIRING_ID)? else {
            return Ok(());
        };
        self.stripe
            .delete_webhook_endpoint(&old)
            .await
            .map_err(StripeWebhookError::Stripe)?;
        let current = self.secrets.get(SecretName::StripeWebhookSecret)?;
        self.hand_over(&[&current]).await?;
        self.secrets
            .remove(SecretName::StripeWebhookPreviousSecret)?;
        self.unset(RETIRING_ID)?;
        self.set(ROTATED_AT, &now.to_string())?;
        tracing::info!(endpoint = %old, "retired Stripe webhook endpoint deleted");
        Ok(())
    }

    /// First half of a rotation: a new endpoint (a new secret), the relay accepting the
    /// old and the new secret. Connects first if there is no endpoint yet.
    pub async fn begin_rotation(&self, now: i64) -> Result<RotationStarted, StripeWebhookError> {
        let hook = hook_url(self.relay_url)?;
        let _turn = TURN.lock().await;
        if self.setting(RETIRING_ID)?.is_some() {
            self.finish(now).await?;
        }
        let current = match self.ours(&hook).await?.into_iter().next() {
            Some(found) => found.id,
            None => self.create_and_hand_over(&hook).await?,
        };
        self.begin(&hook, &current).await
    }

    /// Second half: the old endpoint is deleted and the relay drops its secret.
    pub async fn finish_rotation(&self, now: i64) -> Result<(), StripeWebhookError> {
        let _turn = TURN.lock().await;
        self.finish(now).await
    }

    /// "Rotate signing secret": both halves.
    pub async fn rotate(&self, now: i64) -> Result<ConnectReport, StripeWebhookError> {
        let started = self.begin_rotation(now).await?;
        self.finish_rotation(now).await?;
        Ok(ConnectReport {
            endpoint_id: started.new_endpoint,
            action: ConnectAction::Replaced {
                old: started.old_endpoint,
                reason: ReplaceReason::Rotation,
            },
            reach: classify_relay_url(self.relay_url),
        })
    }

    /// What Settings shows: the endpoint at Stripe as it is now, and what the app knows.
    pub async fn status(&self) -> Result<StripeWebhookView, StripeWebhookError> {
        let reach = classify_relay_url(self.relay_url);
        let hook = hook_url(self.relay_url)?;
        let found = self.ours(&hook).await?.into_iter().next();
        let handed = self.setting(HANDED_OVER)?;
        let last_rotated_at = self
            .setting(ROTATED_AT)?
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            });
        let wanted = wanted_events();
        let mut view = StripeWebhookView {
            relay_reach: reach.code().to_owned(),
            relay_reach_message: reach.sentence().to_owned(),
            hook_url: hook.clone(),
            exists: found.is_some(),
            endpoint_id: found.as_ref().map(|e| e.id.clone()),
            enabled: found.as_ref().is_some_and(WebhookEndpoint::enabled),
            url: found.as_ref().map(|e| e.url.clone()),
            url_matches: found.as_ref().is_some_and(|e| e.url == hook),
            events_match: found.as_ref().is_some_and(|e| same_events(e, &wanted)),
            api_version: found.as_ref().and_then(|e| e.api_version.clone()),
            api_version_wanted: STRIPE_API_VERSION.to_owned(),
            secret_handed_over: found
                .as_ref()
                .is_some_and(|e| handed.as_deref() == Some(e.id.as_str())),
            last_rotated_at,
            rotation_in_progress: self.setting(RETIRING_ID)?.is_some(),
            message: String::new(),
        };
        view.message = status_message(&view);
        Ok(view)
    }
}

/// What Settings says about the endpoint: fine, or the first thing to fix.
pub fn status_message(v: &StripeWebhookView) -> String {
    let problem = if !v.exists {
        Some("Stripe does not send payments to the relay yet. Connect Stripe's webhook.".to_owned())
    } else if !v.enabled {
        Some("The webhook endpoint is disabled at Stripe. Connect again to enable it.".to_owned())
    } else if !v.url_matches {
        Some(format!(
            "The webhook endpoint posts to another address than the relay's ({}). Connect again to correct it.",
            v.hook_url
        ))
    } else if !v.events_match {
        Some("The webhook endpoint does not select exactly the events Coachdesk handles. Connect again to correct it.".to_owned())
    } else if v.api_version.as_deref() != Some(v.api_version_wanted.as_str()) {
        Some(format!(
            "The webhook endpoint sends events in API version {}, not {} which Coachdesk reads. Connect again: a new endpoint will replace it.",
            v.api_version.as_deref().unwrap_or("(the account's default)"),
            v.api_version_wanted
        ))
    } else if !v.secret_handed_over {
        Some("The relay does not have this endpoint's signing secret. Connect again: the endpoint will be replaced by one whose secret the relay gets.".to_owned())
    } else if v.rotation_in_progress {
        Some("A secret rotation was interrupted. Connect again to finish it.".to_owned())
    } else {
        None
    };
    let reach = RelayReach::from_code(&v.relay_reach);
    match (problem, reach.reachable()) {
        (Some(p), true) => p,
        (Some(p), false) => format!("{p} {}", reach.sentence()),
        (None, true) => {
            "Stripe sends payments to the relay, signed with a secret the relay has.".to_owned()
        }
        (None, false) => format!("The webhook endpoint is set up, but: {}", reach.sentence()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stripe_cannot_reach_are_named() {
        for (url, reach) in [
            ("https://relay.example.com", RelayReach::Public),
            ("https://relay.example.com:8443/base/", RelayReach::Public),
            ("https://93.184.216.34", RelayReach::Public),
            ("https://[2001:db8::1]", RelayReach::Public),
            ("http://relay.example.com", RelayReach::PlainHttp),
            ("http://localhost:8787", RelayReach::Loopback),
            ("https://LOCALHOST.", RelayReach::Loopback),
            ("https://app.localhost", RelayReach::Loopback),
            ("http://127.0.0.1:8787", RelayReach::Loopback),
            ("http://127.8.9.10", RelayReach::Loopback),
            ("http://0.0.0.0:8787", RelayReach::Loopback),
            ("http://[::1]:8787", RelayReach::Loopback),
            ("http://[::ffff:127.0.0.1]", RelayReach::Loopback),
            ("https://10.1.2.3", RelayReach::PrivateNetwork),
            ("https://172.16.0.1", RelayReach::PrivateNetwork),
            ("https://172.31.255.255", RelayReach::PrivateNetwork),
            ("https://172.32.0.1", RelayReach::Public),
            ("https://192.168.1.20", RelayReach::PrivateNetwork),
            ("https://100.64.0.1", RelayReach::PrivateNetwork),
            ("https://[fd12:3456::1]", RelayReach::PrivateNetwork),
            ("https://[fc00::1]", RelayReach::PrivateNetwork),
            ("https://169.254.10.10", RelayReach::LinkLocal),
            ("https://[fe80::1]", RelayReach::LinkLocal),
            ("https://relay.local", RelayReach::LocalName),
            ("https://nas", RelayReach::LocalName),
            ("ftp://relay.example.com", RelayReach::Invalid),
            ("relay.example.com", RelayReach::Invalid),
            ("", RelayReach::Invalid),
        ] {
            assert_eq!(classify_relay_url(url), reach, "{url}");
            assert_eq!(reach.reachable(), reach == RelayReach::Public);
        }
    }

    #[test]
    fn the_hook_url_is_the_relay_base_plus_the_stripe_hook() {
        assert_eq!(
            hook_url("https://relay.example.com/").unwrap(),
            "https://relay.example.com/hooks/stripe"
        );
        assert!(matches!(
            hook_url("  "),
            Err(StripeWebhookError::NoRelayUrl)
        ));
        assert!(matches!(
            hook_url("relay"),
            Err(StripeWebhookError::BadRelayUrl(_))
        ));
    }

    #[test]
    fn errors_have_kinds_the_window_matches_on() {
        let refused = ProviderError::Permanent {
            provider: "Stripe",
            status: 400,
            message: "Invalid URL".into(),
        };
        let e = StripeWebhookError::Stripe(refused);
        assert_eq!(e.kind(), "stripe");
        assert!(e.command_error().message.contains("Invalid URL"));
        assert_eq!(
            StripeWebhookError::HandoverDisabled.kind(),
            "handover_disabled"
        );
        assert_eq!(
            StripeWebhookError::NoRelayUrl.command_error().code,
            "not_configured"
        );
    }

    fn view(reach: RelayReach) -> StripeWebhookView {
        StripeWebhookView {
            relay_reach: reach.code().to_owned(),
            relay_reach_message: reach.sentence().to_owned(),
            hook_url: "https://relay.example.com/hooks/stripe".into(),
            exists: true,
            endpoint_id: Some("we_1".into()),
            enabled: true,
            url: Some("https://relay.example.com/hooks/stripe".into()),
            url_matches: true,
            events_match: true,
            api_version: Some(STRIPE_API_VERSION.into()),
            api_version_wanted: STRIPE_API_VERSION.into(),
            secret_handed_over: true,
            last_rotated_at: None,
            rotation_in_progress: false,
            message: String::new(),
        }
    }

    #[test]
    fn settings_names_the_first_thing_to_fix_and_an_unreachable_relay() {
        let fine = view(RelayReach::Public);
        assert!(status_message(&fine).starts_with("Stripe sends payments to the relay"));
        let old_version = StripeWebhookView {
            api_version: Some("2023-08-16".into()),
            ..fine.clone()
        };
        assert!(status_message(&old_version).contains("API version 2023-08-16"));
        let not_handed = StripeWebhookView {
            secret_handed_over: false,
            ..fine.clone()
        };
        assert!(
            status_message(&not_handed).contains("does not have this endpoint's signing secret")
        );
        let missing = StripeWebhookView {
            exists: false,
            ..view(RelayReach::PrivateNetwork)
        };
        let text = status_message(&missing);
        assert!(text.contains("Connect Stripe's webhook"), "{text}");
        assert!(text.contains("private network address"), "{text}");
        for reach in [
            RelayReach::Public,
            RelayReach::Loopback,
            RelayReach::PrivateNetwork,
            RelayReach::LinkLocal,
            RelayReach::LocalName,
            RelayReach::PlainHttp,
            RelayReach::Invalid,
        ] {
            assert_eq!(RelayReach::from_code(reach.code()), reach);
        }
    }

    #[test]
    fn the_selected_events_are_the_handled_ones_sorted() {
        let events = wanted_events();
        assert!(events.windows(2).all(|w| w[0] < w[1]));
        assert!(events.contains(&"checkout.session.completed".to_owned()));
        assert!(!events.contains(&"refund.failed".to_owned()));
    }
}
