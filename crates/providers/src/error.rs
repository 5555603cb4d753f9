//! How a provider call failed, classed by what the caller should do next.

use std::time::Duration;

use thiserror::Error;

/// A failed provider call.
#[derive(Debug, Error)]
pub enum ProviderError {
    /// Worth trying again: the network failed, the call timed out, the provider was rate
    /// limiting (429) or failing (5xx). `retry_after` is the provider's own hint.
    #[error("{provider} could not be reached or is busy ({message}); Coachdesk will try again")]
    Transient {
        provider: &'static str,
        status: Option<u16>,
        message: String,
        retry_after: Option<Duration>,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Trying again will not help: the provider refused the request (4xx), with its message.
    #[error("{provider} refused the request ({status}): {message}")]
    Permanent {
        provider: &'static str,
        status: u16,
        message: String,
    },
    /// The client could not be set up (a malformed base URL).
    #[error("the {provider} API address {value:?} is not a valid URL; fix it in the settings")]
    BadBaseUrl {
        provider: &'static str,
        value: String,
    },
}

impl ProviderError {
    /// Whether a retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// The provider's `Retry-After`, if it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The provider's own words (for a permanent failure, what the coach is shown).
    pub fn provider_message(&self) -> String {
        match self {
            Self::Transient { message, .. } | Self::Permanent { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// Classes an HTTP status with the provider's message and `Retry-After`.
    pub(crate) fn from_status(
        provider: &'static str,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    ) -> Self {
        if status == 429 || status == 408 || status >= 500 {
            Self::Transient {
                provider,
                status: Some(status),
                message,
                retry_after,
                source: None,
            }
        } else {
            Self::Permanent {
                provider,
                status,
                message,
            }
        }
    }
}

/// Reads a `Retry-After` header given in seconds (the HTTP-date form is not used by either
/// provider; it is ignored, and the caller's backoff applies).
pub(crate) fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classed_transient_or_permanent() {
        for (status, transient) in [
            (429, true),
            (500, true),
            (503, true),
            (400, false),
            (404, false),
            (401, false),
        ] {
            let err = ProviderError::from_status("Stripe", status, "m".into(), None);
            assert_eq!(err.is_transient(), transient, "status {status}");
        }
    }

    #[test]
    fn retry_after_in_seconds_is_read() {
        assert_eq!(parse_retry_after(Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(Some("0.5")),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            None
        );
        assert_eq!(parse_retry_after(None), None);
    }
}
