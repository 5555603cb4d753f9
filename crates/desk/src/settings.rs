//! The Settings page: "test connection" per service ([`ConnectionChecks`]) and what a
//! failure reads as ([`explain`], pure, so every wording is unit-tested), the secrets the
//! coach pastes (checked before they reach the keychain), and the feature toggles' words.

use std::time::Duration;

use coachdesk_protocol::ipc::{CommandError, FieldError};
use coachdesk_protocol::settings::{secret, service};
use coachdesk_providers::{network_failure, NetworkFailure, ProviderError};
use std::sync::{Arc, Mutex, MutexGuard};

use coachdesk_protocol::settings::ConnectionCheck;
use coachdesk_store::{Feature, Store};
use coachdesk_sync::relay::RelayClient;
use coachdesk_sync::{Providers, SecretError, SecretName, SecretSource, SyncConfig};

/// How long "test connection" waits for an answer.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// A service "test connection" can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Stripe,
    Calendly,
    Relay,
}

impl Service {
    pub fn from_name(name: &str) -> Option<Service> {
        match name {
            service::STRIPE => Some(Service::Stripe),
            service::CALENDLY => Some(Service::Calendly),
            service::RELAY => Some(Service::Relay),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::Stripe => service::STRIPE,
            Service::Calendly => service::CALENDLY,
            Service::Relay => service::RELAY,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Service::Stripe => "Stripe",
            Service::Calendly => "Calendly",
            Service::Relay => "The relay",
        }
    }

    pub fn credential(self) -> &'static str {
        match self {
            Service::Stripe => "secret key",
            Service::Calendly => "access token",
            Service::Relay => "relay token",
        }
    }

    pub fn fix_credential(self) -> &'static str {
        match self {
            Service::Stripe => {
                "Copy the secret key again from the Stripe dashboard (Developers, API keys) and save it."
            }
            Service::Calendly => {
                "Create a new personal access token in Calendly (Integrations, API and webhooks) and save it."
            }
            Service::Relay => {
                "Create a new token on the relay's server with `coachdesk-relay token create` and save it."
            }
        }
    }

    /// What is safe whatever failed: the test changes nothing.
    pub fn reassurance(self) -> &'static str {
        match self {
            Service::Relay => {
                "Nothing is lost: webhooks wait at the relay and are applied once the connection works."
            }
            Service::Stripe | Service::Calendly => {
                "Nothing was changed: the test only reads, and your saved settings stay as they are."
            }
        }
    }
}

/// What kind of failure a provider error is, for the coach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// 401/403: the key or token is wrong.
    WrongCredential,
    /// 404: something answered, but not the service's API.
    WrongAddress,
    /// The host name does not resolve.
    HostNotFound,
    /// Nothing listens at the address.
    Refused,
    /// No answer in time.
    Timeout,
    /// The network failed some other way.
    Unreachable,
    /// 429.
    Busy,
    /// 5xx.
    ServerTrouble(u16),
    /// The address is not a URL.
    BadAddress(String),
    /// An answer that is not the service's (an HTML page, say).
    NotTheService,
    /// The key or token is not saved.
    NotSaved,
    /// Another refusal, with the service's own words.
    Refused4xx(u16, String),
}

/// The keychain's refusal behind a provider error, if a secret could not be read: found by
/// its type in the error's sources, never by the provider's name or the message.
pub fn missing_secret(err: &ProviderError) -> Option<&SecretError> {
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        if let Some(secret) = inner.downcast_ref::<SecretError>() {
            return Some(secret);
        }
        source = inner.source();
    }
    None
}

/// Classes a provider error (pure).
pub fn classify(err: &ProviderError) -> Problem {
    match err {
        ProviderError::BadBaseUrl { value, .. } => Problem::BadAddress(value.clone()),
        _ if missing_secret(err).is_some() => Problem::NotSaved,
        ProviderError::Transient {
            status: Some(status),
            ..
        }
        | ProviderError::Permanent { status, .. }
            if matches!(status, 401 | 403) =>
        {
            Problem::WrongCredential
        }
        ProviderError::Transient {
            status: Some(404), ..
        }
        | ProviderError::Permanent { status: 404, .. } => Problem::WrongAddress,
        ProviderError::Transient {
            status: Some(429), ..
        } => Problem::Busy,
        ProviderError::Transient {
            status: Some(status),
            ..
        } if *status >= 500 => Problem::ServerTrouble(*status),
        ProviderError::Transient {
            status: Some(status),
            message,
            ..
        } => Problem::Refused4xx(*status, message.clone()),
        ProviderError::Transient { status: None, .. } => match network_failure(err) {
            Some(NetworkFailure::HostNotFound) => Problem::HostNotFound,
            Some(NetworkFailure::Refused) => Problem::Refused,
            Some(NetworkFailure::Timeout) => Problem::Timeout,
            Some(NetworkFailure::Other) | None => Problem::Unreachable,
        },
        ProviderError::Permanent {
            status, message, ..
        } if *status == 0 || (200..300).contains(status) => {
            let _ = message;
            Problem::NotTheService
        }
        ProviderError::Permanent {
            status, message, ..
        } => Problem::Refused4xx(*status, message.clone()),
    }
}

/// The sentence the coach reads when `service` failed with `err` (pure).
pub fn explain(service: Service, err: &ProviderError) -> String {
    let title = service.title();
    let what = match classify(err) {
        Problem::WrongCredential => format!(
            "{title} refused the {} (HTTP 401): it is wrong, was revoked, or belongs to another account or mode. {}",
            service.credential(),
            service.fix_credential()
        ),
        Problem::WrongAddress => match service {
            Service::Relay => "Something answered at the relay URL, but it is not a Coachdesk relay (HTTP 404). Check the relay URL: it is the relay's base address, such as https://relay.example.com.".to_owned(),
            _ => format!("Something answered at {title}'s API address, but not {title}'s API (HTTP 404). Check the API address."),
        },
        Problem::HostNotFound => format!(
            "{title}'s host name cannot be found (DNS lookup failed). Check the address for typos, and that this computer is online."
        ),
        Problem::Refused => format!(
            "Nothing answers at {} address (connection refused): the server is down, or the address or port is wrong.",
            match service {
                Service::Relay => "the relay's",
                Service::Stripe => "Stripe's",
                Service::Calendly => "Calendly's",
            }
        ),
        Problem::Timeout => format!(
            "{title} did not answer in time: the server is down or cannot be reached from this network. Try again in a minute."
        ),
        Problem::Unreachable => format!(
            "{title} cannot be reached: check the address and this computer's internet connection."
        ),
        Problem::Busy => format!(
            "{title} is limiting requests right now (HTTP 429). Wait a minute and test again; your settings look fine."
        ),
        Problem::ServerTrouble(status) => format!(
            "{title} is having trouble (HTTP {status}). Try again later; this is not caused by your settings."
        ),
        Problem::BadAddress(value) => format!(
            "{title}'s address {value:?} is not a valid URL. Enter it as https://host."
        ),
        Problem::NotTheService => format!(
            "Something answered at {title}'s address, but the answer was not from {title}. Check the address."
        ),
        Problem::NotSaved => format!(
            "No {} is saved yet: paste it above and press Save.",
            service.credential()
        ),
        Problem::Refused4xx(status, message) => format!(
            "{title} refused the check (HTTP {status}): {message}"
        ),
    };
    format!("{what} {}", service.reassurance())
}

/// The keychain entry behind a wire name.
pub fn secret_name(name: &str) -> Option<SecretName> {
    match name {
        secret::STRIPE_TEST_KEY => Some(SecretName::StripeTestKey),
        secret::STRIPE_LIVE_KEY => Some(SecretName::StripeLiveKey),
        secret::CALENDLY_TOKEN => Some(SecretName::CalendlyToken),
        secret::RELAY_TOKEN => Some(SecretName::RelayToken),
        secret::STRIPE_CHECKOUT_KEY => Some(SecretName::StripeCheckoutKey),
        _ => None,
    }
}

pub const SECRETS: [(&str, &str, SecretName); 5] = [
    (
        secret::STRIPE_TEST_KEY,
        "Stripe secret key (test mode)",
        SecretName::StripeTestKey,
    ),
    (
        secret::STRIPE_LIVE_KEY,
        "Stripe secret key (live mode)",
        SecretName::StripeLiveKey,
    ),
    (
        secret::CALENDLY_TOKEN,
        "Calendly personal access token",
        SecretName::CalendlyToken,
    ),
    (secret::RELAY_TOKEN, "Relay token", SecretName::RelayToken),
    (
        secret::STRIPE_CHECKOUT_KEY,
        "Stripe restricted key for Checkout (optional)",
        SecretName::StripeCheckoutKey,
    ),
];

/// Checks what the coach pasted (pure): trimmed, not empty, no spaces inside, and a Stripe
/// key of the right mode. Answers the value to store.
pub fn check_secret(name: SecretName, value: &str) -> Result<String, CommandError> {
    let value = value.trim();
    let refuse = |message: &str| CommandError {
        code: "invalid".into(),
        message: "The value was not saved; see the note next to the field.".into(),
        fields: vec![FieldError {
            field: "value".into(),
            message: message.into(),
        }],
    };
    if value.is_empty() {
        return Err(refuse("Paste the value first."));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(refuse(
            "The value contains spaces or line breaks; copy it again without them.",
        ));
    }
    let stripe_prefix = |prefixes: [&str; 2], other: [&str; 2], mode: &str, other_mode: &str| {
        if other.iter().any(|p| value.starts_with(p)) {
            Err(refuse(&format!(
                "This is a {other_mode}-mode key; the {mode}-mode key starts with {}.",
                prefixes[0]
            )))
        } else if prefixes.iter().any(|p| value.starts_with(p)) {
            Ok(())
        } else {
            Err(refuse(&format!(
                "A Stripe {mode}-mode secret key starts with {} (or {} for a restricted key).",
                prefixes[0], prefixes[1]
            )))
        }
    };
    match name {
        SecretName::StripeTestKey => stripe_prefix(
            ["sk_test_", "rk_test_"],
            ["sk_live_", "rk_live_"],
            "test",
            "live",
        )?,
        SecretName::StripeLiveKey => stripe_prefix(
            ["sk_live_", "rk_live_"],
            ["sk_test_", "rk_test_"],
            "live",
            "test",
        )?,
        SecretName::StripeCheckoutKey if value.starts_with("sk_") => {
            return Err(refuse(
                "This is a secret key, which can do anything with your Stripe account. Create a \
                 restricted key with one permission, Checkout Sessions: Write, and paste that.",
            ))
        }
        SecretName::StripeCheckoutKey
            if !(value.starts_with("rk_live_") || value.starts_with("rk_test_")) =>
        {
            return Err(refuse(
                "A Stripe restricted key starts with rk_live_ (or rk_test_ in test mode).",
            ))
        }
        _ => {}
    }
    Ok(value.to_owned())
}

/// The last four characters of a secret (to tell keys apart), or none when it is too
/// short to show any without giving most of it away.
pub fn last4(value: &str) -> Option<String> {
    let count = value.chars().count();
    (count >= 12).then(|| value.chars().skip(count - 4).collect())
}

pub fn feature_text(feature: Feature) -> (&'static str, &'static str) {
    match feature {
        Feature::Payments => (
            "Payments",
            "Off: Coachdesk creates no Stripe checkout sessions or payment links.",
        ),
        Feature::WebhookProcessing => (
            "Webhook processing",
            "Off: nothing is pulled from the relay; webhooks wait there and nothing is lost.",
        ),
        Feature::AutomaticRefunds => (
            "Automatic refunds",
            "Off: a refund after a client's cancellation waits in Needs attention for your approval.",
        ),
        Feature::LatePaymentRefunds => (
            "Refund late payments",
            "Off: a payment for a booking that had expired or was cancelled is not refunded by itself; its refund waits in Needs attention for your approval.",
        ),
        Feature::TestModeCalendlyCancels => (
            "Cancel in Calendly in test mode",
            "Off (the default): in test mode Coachdesk does not cancel Calendly events, since Calendly has no test mode; the timeline says what it would have cancelled.",
        ),
    }
}

/// "Test connection" for each service, with the saved settings.
pub struct ConnectionChecks<'a> {
    pub store: &'a Mutex<Store>,
    /// The provider bases and mode in force.
    pub config: &'a SyncConfig,
    pub secrets: Arc<dyn SecretSource>,
    /// The relay URL in force (saved, or the demo's), if any.
    pub relay_url: Option<String>,
}

impl ConnectionChecks<'_> {
    fn store(&self) -> MutexGuard<'_, Store> {
        crate::lock(self.store)
    }

    fn providers(&self) -> Providers {
        Providers::new(self.config.clone(), self.secrets.clone())
    }

    /// Runs "test connection" for `service` and says, in words, what is wrong.
    pub async fn check(&self, service: Service) -> ConnectionCheck {
        let result = match service {
            Service::Stripe => self.check_stripe().await,
            Service::Calendly => self.check_calendly().await,
            Service::Relay => self.check_relay().await,
        };
        match result {
            Ok(message) => ConnectionCheck {
                service: service.name().to_owned(),
                ok: true,
                message,
                detail: None,
            },
            Err(err) => {
                let detail = coachdesk_sync::error_chain(&err);
                tracing::info!(service = service.name(), error = %detail, "connection test failed");
                ConnectionCheck {
                    service: service.name().to_owned(),
                    ok: false,
                    message: explain(service, &err),
                    detail: Some(detail),
                }
            }
        }
    }

    async fn check_stripe(&self) -> Result<String, ProviderError> {
        let stripe = self.providers().stripe()?.with_timeout(CHECK_TIMEOUT);
        stripe.list_events(None, None, 1).await?;
        let mode = if self.config.mode == coachdesk_sync::Mode::Live {
            "live"
        } else {
            "test"
        };
        Ok(format!(
            "Connected to Stripe: the {mode}-mode secret key works."
        ))
    }

    async fn check_calendly(&self) -> Result<String, ProviderError> {
        let calendly = self.providers().calendly()?;
        let me = calendly.current_user().await?;
        Ok(format!(
            "Connected to Calendly: the access token works ({}).",
            me.scheduling_url.unwrap_or(me.uri)
        ))
    }

    async fn check_relay(&self) -> Result<String, ProviderError> {
        let Some(url) = self.relay_url.clone() else {
            return Err(ProviderError::BadBaseUrl {
                provider: "the relay",
                value: String::new(),
            });
        };
        let token =
            self.secrets
                .get(SecretName::RelayToken)
                .map_err(|err| ProviderError::Transient {
                    provider: "the keychain",
                    status: None,
                    message: err.to_string(),
                    retry_after: None,
                    source: Some(Box::new(err)),
                })?;
        let client =
            RelayClient::new(&url, Duration::ZERO).map_err(|err| ProviderError::Transient {
                provider: "the relay",
                status: None,
                message: err.to_string(),
                retry_after: None,
                source: None,
            })?;
        let after = coachdesk_sync::relay::cursor(&self.store()).unwrap_or(0);
        // A pull without an ack reads and changes nothing at the relay. The client's own
        // timeouts bound it (10 s to connect, 15 s in all).
        let page = client
            .pull(token.expose(), after, 1, Duration::ZERO)
            .await?;
        Ok(format!(
            "Connected to the relay at {url}: the token works{}.",
            if page.events.is_empty() {
                String::new()
            } else {
                " and events are waiting to be applied".to_owned()
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient(status: Option<u16>, message: &str) -> ProviderError {
        ProviderError::Transient {
            provider: "Stripe",
            status,
            message: message.into(),
            retry_after: None,
            source: None,
        }
    }

    #[test]
    fn a_refused_key_says_wrong_key_and_how_to_fix_it() {
        let err = ProviderError::Permanent {
            provider: "Stripe",
            status: 401,
            message: "Invalid API Key provided: sk_test_****1234".into(),
        };
        assert_eq!(classify(&err), Problem::WrongCredential);
        let text = explain(Service::Stripe, &err);
        assert!(
            text.starts_with("Stripe refused the secret key (HTTP 401)"),
            "{text}"
        );
        assert!(text.contains("Developers, API keys"), "{text}");
        assert!(text.contains("Nothing was changed"), "{text}");
        // The relay's 401 comes back transient; it reads the same.
        let relay = ProviderError::Transient {
            provider: "the relay",
            status: Some(401),
            message: "refused".into(),
            retry_after: None,
            source: None,
        };
        let text = explain(Service::Relay, &relay);
        assert!(text.contains("refused the relay token"), "{text}");
        assert!(text.contains("coachdesk-relay token create"), "{text}");
        assert!(text.contains("Nothing is lost"), "{text}");
    }

    #[test]
    fn a_404_says_wrong_address() {
        let err = transient(Some(404), "HTTP 404: not found");
        assert_eq!(classify(&err), Problem::WrongAddress);
        assert!(explain(Service::Relay, &err).contains("not a Coachdesk relay (HTTP 404)"));
        let err = ProviderError::Permanent {
            provider: "Calendly",
            status: 404,
            message: "Resource Not Found".into(),
        };
        assert!(explain(Service::Calendly, &err).contains("not Calendly's API (HTTP 404)"));
    }

    /// A failure before any answer, of a typed kind (its words play no part).
    fn unanswered(message: &str, kind: NetworkFailure) -> ProviderError {
        ProviderError::Transient {
            provider: "Stripe",
            status: None,
            message: message.into(),
            retry_after: None,
            source: Some(Box::new(coachdesk_providers::NetworkError::new(kind))),
        }
    }

    #[test]
    fn network_failures_are_told_apart_by_their_cause() {
        let cases = [
            (
                "error trying to connect",
                NetworkFailure::Refused,
                Problem::Refused,
            ),
            (
                "error trying to connect",
                NetworkFailure::HostNotFound,
                Problem::HostNotFound,
            ),
            (
                "no answer within 10s",
                NetworkFailure::Timeout,
                Problem::Timeout,
            ),
            (
                "operation timed out",
                NetworkFailure::Timeout,
                Problem::Timeout,
            ),
            (
                "connection reset by peer",
                NetworkFailure::Other,
                Problem::Unreachable,
            ),
        ];
        for (message, kind, problem) in cases {
            assert_eq!(classify(&unanswered(message, kind)), problem, "{message}");
        }
        // Words alone classify nothing.
        assert_eq!(
            classify(&transient(None, "Connection refused")),
            Problem::Unreachable
        );
        let refused = explain(
            Service::Relay,
            &unanswered("could not connect", NetworkFailure::Refused),
        );
        assert!(
            refused.starts_with("Nothing answers at the relay's address (connection refused)"),
            "{refused}"
        );
        let dns = explain(
            Service::Calendly,
            &unanswered("could not connect", NetworkFailure::HostNotFound),
        );
        assert!(dns.contains("host name cannot be found"), "{dns}");
        let slow = explain(
            Service::Stripe,
            &unanswered("no answer within 10s", NetworkFailure::Timeout),
        );
        assert!(slow.contains("did not answer in time"), "{slow}");
    }

    #[test]
    fn the_cause_is_found_in_the_source_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("tcp connect error")]
        struct Connect(#[source] std::io::Error);
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = ProviderError::Transient {
            provider: "the relay",
            status: None,
            message: "it could not be reached".into(),
            retry_after: None,
            source: Some(Box::new(Connect(io))),
        };
        assert_eq!(classify(&err), Problem::Refused);
    }

    #[test]
    fn busy_broken_unset_and_odd_answers_each_have_their_words() {
        assert!(explain(Service::Stripe, &transient(Some(429), "slow")).contains("HTTP 429"));
        let broken = explain(Service::Calendly, &transient(Some(503), "down"));
        assert!(broken.contains("having trouble (HTTP 503)"), "{broken}");
        assert!(broken.contains("not caused by your settings"), "{broken}");
        let unset = ProviderError::Transient {
            provider: "the keychain",
            status: None,
            message: "the Calendly access token is not in the keychain".into(),
            retry_after: None,
            source: Some(Box::new(SecretError::Missing {
                label: "Calendly access token",
            })),
        };
        assert_eq!(
            explain(Service::Calendly, &unset),
            "No access token is saved yet: paste it above and press Save. Nothing was changed: the test only reads, and your saved settings stay as they are."
        );
        let html = ProviderError::Permanent {
            provider: "Stripe",
            status: 0,
            message: "Stripe's answer could not be read: expected value".into(),
        };
        assert_eq!(classify(&html), Problem::NotTheService);
        let bad = ProviderError::BadBaseUrl {
            provider: "Stripe",
            value: "api stripe".into(),
        };
        assert!(explain(Service::Stripe, &bad).contains("\"api stripe\" is not a valid URL"));
        let other = ProviderError::Permanent {
            provider: "Stripe",
            status: 400,
            message: "Invalid limit".into(),
        };
        assert!(explain(Service::Stripe, &other)
            .contains("refused the check (HTTP 400): Invalid limit"));
    }

    #[test]
    fn pasted_secrets_are_checked_before_they_are_saved() {
        assert_eq!(
            check_secret(SecretName::StripeTestKey, "  sk_test_abc123 \n").unwrap(),
            "sk_test_abc123"
        );
        assert!(check_secret(SecretName::StripeTestKey, "rk_test_abc").is_ok());
        let live_in_test = check_secret(SecretName::StripeTestKey, "sk_live_abc").unwrap_err();
        assert!(
            live_in_test.fields[0].message.contains("live-mode key"),
            "{live_in_test:?}"
        );
        assert!(check_secret(SecretName::StripeLiveKey, "sk_test_abc").is_err());
        assert!(check_secret(SecretName::StripeLiveKey, "pk_live_abc").is_err());
        assert!(check_secret(SecretName::CalendlyToken, "").is_err());
        assert_eq!(
            check_secret(SecretName::StripeCheckoutKey, " rk_live_abc ").unwrap(),
            "rk_live_abc"
        );
        let secret_key = check_secret(SecretName::StripeCheckoutKey, "sk_live_abc").unwrap_err();
        assert!(secret_key.fields[0]
            .message
            .contains("Checkout Sessions: Write"));
        assert!(check_secret(SecretName::StripeCheckoutKey, "pk_live_abc").is_err());
        assert!(check_secret(SecretName::CalendlyToken, "eyJ abc").is_err());
        assert_eq!(
            check_secret(SecretName::RelayToken, "tok_123").unwrap(),
            "tok_123"
        );
    }

    #[test]
    fn only_the_last_four_of_a_long_secret_are_shown() {
        assert_eq!(last4("sk_test_51abcdWXYZ").as_deref(), Some("WXYZ"));
        assert_eq!(last4("short"), None);
        assert!(secret_name("stripe_test_key").is_some());
        assert!(secret_name("smtp_password").is_none());
    }
}
