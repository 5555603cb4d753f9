//! What the relay needs to know about a webhook body: its deduplication key, and for a
//! Calendly booking what its `/pay` page needs (when it was booked, whether it was
//! cancelled or moved).
//!
//! The relay stores raw bodies and leaves their meaning to the app, so it parses only the
//! fields these need. Unknown event types are stored all the same. This module is pure.

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

/// What a verified Calendly delivery says about one invitee (a booking), for `/pay`: the
/// payment deadline counts from `booked_at`, and a cancelled booking is not sold. Times
/// are unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteeNote {
    /// The invitee's UUID, as Calendly's redirect passes it (`invitee_uuid`).
    pub invitee: String,
    pub booked_at: Option<i64>,
    pub canceled_at: Option<i64>,
    /// For a reschedule: the UUID of the invitee that replaced this one.
    pub moved_to: Option<String>,
}

#[derive(Deserialize)]
struct InviteeEnvelope {
    event: String,
    created_at: Option<String>,
    payload: InviteePayload,
}

#[derive(Deserialize)]
struct InviteePayload {
    uri: String,
    created_at: Option<String>,
    #[serde(default)]
    rescheduled: bool,
    new_invitee: Option<String>,
    cancellation: Option<Cancellation>,
}

#[derive(Deserialize)]
struct Cancellation {
    created_at: Option<String>,
}

/// The last path segment of a Calendly resource URI (its UUID).
fn uuid_of(uri: &str) -> Option<&str> {
    uri.trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|u| crate::paylink::valid_client_reference_id(u))
}

fn unix(rfc3339: Option<&str>) -> Option<i64> {
    crate::checkout::parse_event_start(rfc3339?)
}

/// The note of a Calendly `invitee.created` or `invitee.canceled` body; `None` for any
/// other body (other events, fields missing or malformed: the event is stored anyway).
pub fn invitee_note(body: &[u8]) -> Option<InviteeNote> {
    let e: InviteeEnvelope = serde_json::from_slice(body).ok()?;
    let invitee = uuid_of(&e.payload.uri)?.to_owned();
    match e.event.as_str() {
        "invitee.created" => Some(InviteeNote {
            invitee,
            booked_at: unix(e.payload.created_at.as_deref()),
            canceled_at: None,
            moved_to: None,
        }),
        "invitee.canceled" => {
            let at = e
                .payload
                .cancellation
                .as_ref()
                .and_then(|c| unix(c.created_at.as_deref()))
                .or_else(|| unix(e.created_at.as_deref()))?;
            let moved_to = e
                .payload
                .new_invitee
                .as_deref()
                .filter(|_| e.payload.rescheduled)
                .and_then(uuid_of)
                .map(str::to_owned);
            Some(InviteeNote {
                invitee,
                booked_at: unix(e.payload.created_at.as_deref()),
                canceled_at: Some(at),
                moved_to,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invitee_notes_read_bookings_cancellations_and_moves() {
        let created = br#"{"event":"invitee.created","created_at":"2027-01-15T09:30:05.000000Z",
            "payload":{"uri":"https://api.calendly.com/scheduled_events/E/invitees/INV-1",
            "created_at":"2027-01-15T09:30:00.000000Z","rescheduled":false,"new_invitee":null}}"#;
        assert_eq!(
            invitee_note(created),
            Some(InviteeNote {
                invitee: "INV-1".into(),
                booked_at: Some(1_800_005_400),
                canceled_at: None,
                moved_to: None,
            })
        );
        let canceled = br#"{"event":"invitee.canceled","created_at":"2027-01-15T10:00:00Z",
            "payload":{"uri":"https://api.calendly.com/scheduled_events/E/invitees/INV-1",
            "created_at":"2027-01-15T09:30:00Z","rescheduled":true,
            "new_invitee":"https://api.calendly.com/scheduled_events/F/invitees/INV-2",
            "cancellation":{"created_at":"2027-01-15T09:59:00Z"}}}"#;
        let note = invitee_note(canceled).expect("note");
        assert_eq!(note.canceled_at, Some(1_800_007_140));
        assert_eq!(note.moved_to.as_deref(), Some("INV-2"));
        // A plain cancellation moves nowhere, even with a stray new_invitee.
        let plain = String::from_utf8_lossy(canceled)
            .replace("\"rescheduled\":true", "\"rescheduled\":false");
        assert_eq!(
            invitee_note(plain.as_bytes()).and_then(|n| n.moved_to),
            None
        );
        // Other events, bad URIs and malformed bodies give no note.
        assert_eq!(
            invitee_note(
                br#"{"event":"invitee_no_show.created","payload":{"uri":"https://x/invitees/A"}}"#
            ),
            None
        );
        assert_eq!(
            invitee_note(
                br#"{"event":"invitee.created","payload":{"uri":"https://x/invitees/a b"}}"#
            ),
            None
        );
        assert_eq!(invitee_note(b"{"), None);
    }

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
