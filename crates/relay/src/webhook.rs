//! What the relay needs to know about a webhook body: its deduplication key.
//!
//! The relay stores raw bodies and leaves their meaning to the app, so it parses only the
//! fields the key needs. Unknown event types are stored all the same. This module is pure.

use coachdesk_protocol::relay::Provider;
use serde::Deserialize;

/// Why a body has no usable key; answered as a 400 with this short reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("body is not valid JSON")]
    MalformedJson,
    #[error("body lacks the field {0}")]
    MissingField(&'static str),
}

impl KeyError {
    /// A stable short code for metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            KeyError::MalformedJson => "malformed_json",
            KeyError::MissingField(_) => "missing_key_field",
        }
    }
}

#[derive(Deserialize)]
struct StripeEnvelope {
    id: Option<String>,
}

#[derive(Deserialize)]
struct CalendlyEnvelope {
    event: Option<String>,
    created_at: Option<String>,
    payload: Option<CalendlyPayload>,
}

#[derive(Deserialize)]
struct CalendlyPayload {
    uri: Option<String>,
}

fn non_empty(v: Option<String>, field: &'static str) -> Result<String, KeyError> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(KeyError::MissingField(field)),
    }
}

/// The deduplication key of a webhook body: Stripe's event `id`; for Calendly
/// `"{event}|{payload.uri}|{created_at}"` (Calendly sends no delivery id).
pub fn dedup_key(provider: Provider, body: &[u8]) -> Result<String, KeyError> {
    match provider {
        Provider::Stripe => {
            let e: StripeEnvelope =
                serde_json::from_slice(body).map_err(|_| KeyError::MalformedJson)?;
            non_empty(e.id, "id")
        }
        Provider::Calendly => {
            let e: CalendlyEnvelope =
                serde_json::from_slice(body).map_err(|_| KeyError::MalformedJson)?;
            let event = non_empty(e.event, "event")?;
            let uri = non_empty(e.payload.and_then(|p| p.uri), "payload.uri")?;
            let created_at = non_empty(e.created_at, "created_at")?;
            Ok(format!("{event}|{uri}|{created_at}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_key_is_the_event_id() {
        let body = br#"{"id":"evt_1","object":"event","type":"something.new","data":{}}"#;
        assert_eq!(dedup_key(Provider::Stripe, body), Ok("evt_1".to_owned()));
    }

    #[test]
    fn calendly_key_joins_event_uri_and_created_at() {
        let body = br#"{"event":"invitee.created","created_at":"2024-01-01T00:00:00.000000Z",
            "payload":{"uri":"https://api.calendly.com/scheduled_events/E/invitees/I","email":"a@b"}}"#;
        assert_eq!(
            dedup_key(Provider::Calendly, body),
            Ok("invitee.created|https://api.calendly.com/scheduled_events/E/invitees/I|2024-01-01T00:00:00.000000Z".to_owned())
        );
    }

    #[test]
    fn malformed_and_missing_fields_are_rejected() {
        assert_eq!(
            dedup_key(Provider::Stripe, b"{not json"),
            Err(KeyError::MalformedJson)
        );
        assert_eq!(
            dedup_key(Provider::Stripe, br#"{"object":"event"}"#),
            Err(KeyError::MissingField("id"))
        );
        assert_eq!(
            dedup_key(Provider::Stripe, br#"{"id":""}"#),
            Err(KeyError::MissingField("id"))
        );
        assert_eq!(
            dedup_key(Provider::Stripe, br#"{"id":5}"#),
            Err(KeyError::MalformedJson)
        );
        assert_eq!(
            dedup_key(
                Provider::Calendly,
                br#"{"event":"invitee.created","created_at":"x","payload":{}}"#
            ),
            Err(KeyError::MissingField("payload.uri"))
        );
    }
}
