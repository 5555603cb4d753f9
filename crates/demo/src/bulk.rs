//! Many realistic bookings at once, for the list's benchmark and the 10,000-booking
//! end-to-end test. Every booking goes through the real apply path (provider-shaped
//! Calendly and Stripe bodies), so rows, payments, refunds and audit trails are the ones
//! the app would have made.

use coachdesk_domain::provider::Provider;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use coachdesk_domain::session_type::SessionTypeSpec;
use coachdesk_store::{Source, Store, StoreError};

use crate::calendly::{rfc3339, InviteeBody};

/// The Calendly event types the bulk bookings are made through.
const EVENT_TYPES: [(&str, &str, u32, &str, &str); 3] = [
    (
        "https://api.calendly.com/event_types/BULK-ET-60",
        "Bulk coaching (60 min)",
        60,
        "150.00",
        "EUR",
    ),
    (
        "https://api.calendly.com/event_types/BULK-ET-30",
        "Bulk intro (30 min)",
        30,
        "60.00",
        "EUR",
    ),
    (
        "https://api.calendly.com/event_types/BULK-ET-90",
        "Bulk deep dive (90 min)",
        90,
        "200.00",
        "USD",
    ),
];

/// How booking number `i` of a bulk seed ends up, and how to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkBooking {
    pub invitee_uuid: String,
    pub invitee_uri: String,
    pub email: String,
    /// `cs_bulk_…` when the client paid (or tried to).
    pub checkout_session: Option<String>,
    /// `pi_bulk_…` when the client paid.
    pub payment_intent: Option<String>,
    /// The state the seed leads to.
    pub state: &'static str,
}

/// Booking `i` of a bulk seed (pure: the seed and the tests agree on it).
///
/// Of every 20: 13 paid (confirmed), 3 unpaid (awaiting payment), 2 whose payment failed,
/// 2 paid then cancelled by the client more than 48 h ahead (refund pending).
pub fn bulk_booking(i: usize) -> BulkBooking {
    let invitee_uuid = format!("BULK{i:06}");
    let event_uri = format!("https://api.calendly.com/scheduled_events/BULK-EV-{i:06}");
    let invitee_uri = format!("{event_uri}/invitees/{invitee_uuid}");
    let (paid, failed, cancelled) = match i % 20 {
        0..=12 => (true, false, false),
        13..=15 => (false, false, false),
        16 | 17 => (false, true, false),
        _ => (true, false, true),
    };
    let state = if cancelled {
        "refund_pending"
    } else if failed {
        "payment_failed"
    } else if paid {
        "confirmed"
    } else {
        "awaiting_payment"
    };
    BulkBooking {
        email: format!("client{i:06}@example.com"),
        checkout_session: (paid || failed).then(|| format!("cs_bulk_{i:06}")),
        payment_intent: (paid || failed).then(|| format!("pi_bulk_{i:06}")),
        invitee_uuid,
        invitee_uri,
        state,
    }
}

/// Creates the bulk session types (once) and `count` bookings spread over the year
/// around `now`, in batches of one transaction each. Answers the session type ids.
pub fn seed_bulk(
    store: &mut Store,
    count: usize,
    now: OffsetDateTime,
) -> Result<Vec<String>, StoreError> {
    let existing = store.list_session_types(true)?;
    let mut type_ids = Vec::new();
    for spec in bulk_session_types().map_err(StoreError::Corrupt)? {
        let found = existing
            .iter()
            .find(|t| t.calendly_event_type_uri == spec.calendly_event_type_uri);
        type_ids.push(match found {
            Some(t) => t.id.clone(),
            None => store.insert_session_type(&spec)?.id,
        });
    }
    for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
        let bodies = bulk_events(chunk.iter().copied(), now);
        store.apply_provider_batch(
            bodies.iter().map(|(p, b)| (*p, b.as_slice())),
            Source::App,
            now,
        )?;
    }
    Ok(type_ids)
}

/// The bulk bookings' session types, one per event type they are booked through.
pub fn bulk_session_types() -> Result<Vec<SessionTypeSpec>, String> {
    EVENT_TYPES
        .iter()
        .map(|(uri, name, minutes, price, currency)| {
            crate::demo::sample_session_type(name, *minutes, price, currency, uri)
        })
        .collect()
}

/// The provider bodies that make bookings `range` of a bulk seed.
pub fn bulk_events(
    range: impl IntoIterator<Item = usize>,
    now: OffsetDateTime,
) -> Vec<(Provider, Vec<u8>)> {
    range
        .into_iter()
        .flat_map(|i| booking_events(i, now))
        .map(|(p, v)| (p, v.to_string().into_bytes()))
        .collect()
}

/// The provider bodies that make booking `i`.
fn booking_events(i: usize, now: OffsetDateTime) -> Vec<(Provider, Value)> {
    let b = bulk_booking(i);
    let (uri, name, minutes, price, currency) = EVENT_TYPES[i % EVENT_TYPES.len()];
    // Sessions from 200 days ago to 165 days ahead, a few hours apart.
    let offset_hours = i64::try_from(i % 8760).unwrap_or(0) - 4800;
    let start = now + Duration::hours(offset_hours) + Duration::days(3);
    let booked = start - Duration::days(10);
    let event_uri = b.invitee_uri.split("/invitees/").next().unwrap_or_default();
    let invitee = InviteeBody {
        uri: &b.invitee_uri,
        event_uri,
        name: &format!("Client {i:06}"),
        email: &b.email,
        event_name: name,
        event_type: uri,
        start,
        end: start + Duration::minutes(i64::from(minutes)),
        booked,
    }
    .payload();
    let envelope = |event: &str, at: OffsetDateTime, payload: &Value| {
        json!({"event": event, "created_at": rfc3339(at),
               "created_by": "https://api.calendly.com/users/BULKUSER", "payload": payload})
    };
    let mut events = vec![(
        Provider::Calendly,
        envelope("invitee.created", booked, &invitee),
    )];
    let amount: i64 = price.replace('.', "").parse().unwrap_or(0);
    if let (Some(session), Some(intent)) = (&b.checkout_session, &b.payment_intent) {
        let paid_at = booked + Duration::hours(1);
        let (event_type, payment_status) = if b.state == "payment_failed" {
            ("checkout.session.async_payment_failed", "unpaid")
        } else {
            ("checkout.session.completed", "paid")
        };
        events.push((
            Provider::Stripe,
            json!({
                "id": format!("evt_bulk_{i:06}"),
                "object": "event",
                "type": event_type,
                "created": paid_at.unix_timestamp(),
                "livemode": false,
                "data": {"object": {
                    "id": session,
                    "object": "checkout.session",
                    "amount_total": amount,
                    "currency": currency.to_lowercase(),
                    "client_reference_id": b.invitee_uuid,
                    "payment_intent": intent,
                    "payment_status": payment_status,
                    "status": "complete",
                    "mode": "payment",
                    "metadata": {},
                }},
            }),
        ));
    }
    if b.state == "refund_pending" {
        let at = start - Duration::days(4);
        let mut canceled = invitee.clone();
        canceled["status"] = json!("canceled");
        canceled["cancellation"] = json!({
            "canceled_by": format!("Client {i:06}"), "reason": "Plans changed",
            "canceler_type": "invitee", "created_at": rfc3339(at)
        });
        events.push((
            Provider::Calendly,
            envelope("invitee.canceled", at, &canceled),
        ));
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_bookings_cover_the_states_in_fixed_shares() {
        let states: Vec<&str> = (0..20).map(|i| bulk_booking(i).state).collect();
        let count = |s: &str| states.iter().filter(|x| **x == s).count();
        assert_eq!(count("confirmed"), 13);
        assert_eq!(count("awaiting_payment"), 3);
        assert_eq!(count("payment_failed"), 2);
        assert_eq!(count("refund_pending"), 2);
        assert!(bulk_booking(13).payment_intent.is_none());
    }
}
