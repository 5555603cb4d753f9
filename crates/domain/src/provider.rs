//! Reading Stripe and Calendly webhook bodies into booking events.
//!
//! Parsing is pure and lenient: fields the product does not use are ignored, and an event
//! type it does not handle parses to `event: None` (it is still stored and shown, never
//! dropped). What a body must have to be routed at all (its id, its type) is checked, and
//! a body without it is a typed error that names the missing field.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::booking::{
    BookingEvent, Canceler, DisputeOutcome, PaymentFact, PaymentStatus, RefundCause, RefundFact,
    RefundStatus, Schedule,
};
use crate::money::{Currency, Money};

/// Which provider sent an event. Its lowercase name is also its name on the relay's wire
/// (`coachdesk_protocol::relay::Provider` is this type), in URLs (`/hooks/stripe`) and in
/// metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Stripe,
    Calendly,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::Calendly => "calendly",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "stripe" => Some(Self::Stripe),
            "calendly" => Some(Self::Calendly),
            _ => None,
        }
    }
}

/// Which booking an event is about, most specific first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Our own booking id (from Stripe metadata we set).
    Booking(String),
    /// A Calendly invitee URI.
    Invitee(String),
    /// A Calendly invitee's UUID (Stripe's `client_reference_id`).
    InviteeUuid(String),
    /// A payment intent (charge, refund and dispute events name only this).
    PaymentIntent(String),
    /// A Checkout Session with neither our booking id nor an invitee reference. It is
    /// Coachdesk's only if it was paid through one of Coachdesk's payment links
    /// (`payment_link`); then the payment is kept on a booking of its own. Any other is a
    /// sale of something else on the coach's Stripe account.
    CheckoutSession {
        session: String,
        payment_link: Option<String>,
    },
    /// Nothing to route by; the event is stored and shown.
    None,
}

/// A provider event, read.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    pub provider: Provider,
    /// The deduplication key: Stripe's event id; Calendly's `"{event}|{invitee uri}|{created_at}"` (as the relay).
    pub key: String,
    /// The provider's event type, such as `checkout.session.completed`.
    pub kind: String,
    pub target: Target,
    /// `None` for event types the product does not act on.
    pub event: Option<BookingEvent>,
    /// Stripe's `livemode` (test or live money); `None` for Calendly, which has no modes.
    pub livemode: Option<bool>,
}

/// Why a body could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("the body is not JSON the product can read: {0}")]
    NotJson(String),
    #[error("the {provider} event has no {field}")]
    Missing {
        provider: &'static str,
        field: &'static str,
    },
    #[error("the {provider} event's {field} is invalid: {value}")]
    Invalid {
        provider: &'static str,
        field: &'static str,
        value: String,
    },
}

/// The Stripe API version Coachdesk reads (what async-stripe 0.41 sends as
/// `Stripe-Version`); pinned on the webhook endpoint the app creates, since an endpoint's
/// events are rendered in its own version.
pub const STRIPE_API_VERSION: &str = "2023-10-16";

/// Every Stripe event type [`parse`] turns into a booking event. A test parses each.
pub const STRIPE_EVENTS_HANDLED: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refund.updated",
    "charge.dispute.created",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
];

/// Handled types Stripe only offers to endpoints of a later API version than
/// [`STRIPE_API_VERSION`] (an endpoint pinned to it cannot select them; a failed refund
/// arrives there as `refund.updated` / `charge.refund.updated` with `status: failed`).
const NEWER_THAN_PINNED: &[&str] = &["refund.failed"];

/// The events the app's Stripe webhook endpoint selects: exactly the handled ones its
/// pinned API version offers.
pub fn stripe_webhook_events() -> Vec<&'static str> {
    STRIPE_EVENTS_HANDLED
        .iter()
        .copied()
        .filter(|kind| !NEWER_THAN_PINNED.contains(kind))
        .collect()
}

/// Reads a raw webhook body (or a Stripe event from `GET /v1/events`).
pub fn parse(provider: Provider, body: &[u8]) -> Result<ProviderEvent, ParseError> {
    let not_json = |err: serde_json::Error| ParseError::NotJson(err.to_string());
    match provider {
        Provider::Stripe => parse_stripe(serde_json::from_slice(body).map_err(not_json)?),
        Provider::Calendly => parse_calendly(serde_json::from_slice(body).map_err(not_json)?),
    }
}

/// The UUID at the end of a Calendly resource URI.
pub fn uuid_of(uri: &str) -> &str {
    uri.trim_end_matches('/').rsplit('/').next().unwrap_or(uri)
}

// Only the fields the product reads; serde skips the rest without building a tree.

#[derive(Deserialize)]
struct StripeEnvelope {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    created: Option<i64>,
    livemode: Option<bool>,
    data: Option<StripeData>,
}

#[derive(Deserialize)]
struct StripeData {
    object: Option<StripeObject>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StripeObject {
    id: Option<String>,
    currency: Option<String>,
    amount: Option<i64>,
    amount_total: Option<i64>,
    amount_refunded: Option<i64>,
    /// A string id, or an expanded object with one.
    payment_intent: Option<Value>,
    client_reference_id: Option<String>,
    payment_link: Option<String>,
    payment_status: Option<String>,
    status: Option<String>,
    reason: Option<String>,
    failure_reason: Option<String>,
    metadata: Option<BTreeMap<String, Value>>,
}

impl StripeObject {
    fn payment_intent(&self) -> Option<String> {
        match &self.payment_intent {
            Some(Value::String(id)) => Some(id.clone()),
            Some(Value::Object(object)) => {
                object.get("id").and_then(Value::as_str).map(str::to_owned)
            }
            _ => None,
        }
    }

    fn metadata(&self, key: &str) -> Option<String> {
        self.metadata
            .as_ref()
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

fn parse_stripe(envelope: StripeEnvelope) -> Result<ProviderEvent, ParseError> {
    const P: &str = "stripe";
    let missing = |field| ParseError::Missing { provider: P, field };
    let key = envelope.id.ok_or(missing("id"))?;
    let kind = envelope.kind.ok_or(missing("type"))?;
    let livemode = envelope.livemode;
    let object = envelope
        .data
        .and_then(|d| d.object)
        .ok_or(missing("data.object"))?;
    let created = envelope
        .created
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .ok_or(missing("created"))?;
    let money = |amount: Option<i64>, amount_field: &'static str| -> Result<Money, ParseError> {
        let code = object.currency.as_deref().ok_or(missing("currency"))?;
        let currency = Currency::parse(code).map_err(|_| ParseError::Invalid {
            provider: P,
            field: "currency",
            value: code.to_owned(),
        })?;
        Ok(Money::new(amount.ok_or(missing(amount_field))?, currency))
    };
    let payment_intent = object.payment_intent();
    let booking_id = object.metadata("booking_id");

    let (target, event) = match kind.as_str() {
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed"
        | "checkout.session.expired" => {
            let session = object.id.clone().ok_or(missing("data.object.id"))?;
            let status = match kind.as_str() {
                "checkout.session.completed" => match object.payment_status.as_deref() {
                    Some("unpaid") => PaymentStatus::Pending,
                    _ => PaymentStatus::Succeeded,
                },
                "checkout.session.async_payment_succeeded" => PaymentStatus::Succeeded,
                "checkout.session.async_payment_failed" => PaymentStatus::Failed,
                _ => PaymentStatus::Expired,
            };
            let target = booking_id
                .map(Target::Booking)
                .or_else(|| {
                    object
                        .client_reference_id
                        .clone()
                        .filter(|r| !r.is_empty())
                        .map(Target::InviteeUuid)
                })
                .unwrap_or_else(|| Target::CheckoutSession {
                    session: session.clone(),
                    payment_link: object.payment_link.clone(),
                });
            let payment = PaymentFact {
                checkout_session: session,
                payment_intent,
                amount: money(object.amount_total, "amount_total")?,
                status,
                at: created,
            };
            (target, Some(BookingEvent::PaymentReported { payment }))
        }
        "charge.refunded" => {
            let pi = payment_intent.ok_or(missing("data.object.payment_intent"))?;
            let event = BookingEvent::ChargeRefunded {
                payment_intent: pi.clone(),
                amount_refunded: money(object.amount_refunded, "amount_refunded")?,
            };
            (Target::PaymentIntent(pi), Some(event))
        }
        "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
            let refund_id = object.id.clone().ok_or(missing("data.object.id"))?;
            let status = match object.status.as_deref() {
                Some("succeeded") => RefundStatus::Succeeded,
                Some("failed") => RefundStatus::Failed,
                Some("canceled") => RefundStatus::Canceled,
                _ if kind == "refund.failed" => RefundStatus::Failed,
                _ => RefundStatus::Pending,
            };
            let refund = RefundFact {
                refund_id,
                payment_intent: payment_intent.clone(),
                amount: money(object.amount, "amount")?,
                status,
                cause: object.metadata("cause").map(RefundCause::from_stored),
                failure_reason: object.failure_reason.clone(),
            };
            let target = match (booking_id, payment_intent) {
                (Some(id), _) => Target::Booking(id),
                (None, Some(pi)) => Target::PaymentIntent(pi),
                (None, None) => Target::None,
            };
            (target, Some(BookingEvent::RefundReported { refund }))
        }
        "charge.dispute.created" => {
            let pi = payment_intent.ok_or(missing("data.object.payment_intent"))?;
            let event = BookingEvent::DisputeOpened {
                payment_intent: pi.clone(),
                amount: money(object.amount, "amount")?,
                reason: object.reason.clone().unwrap_or_else(|| "unknown".into()),
                at: created,
            };
            (Target::PaymentIntent(pi), Some(event))
        }
        "charge.dispute.closed" => {
            let pi = payment_intent.ok_or(missing("data.object.payment_intent"))?;
            let outcome = match object.status.as_deref() {
                Some("won") => Some(DisputeOutcome::Won),
                Some("lost") => Some(DisputeOutcome::Lost),
                Some("warning_closed") => Some(DisputeOutcome::WarningClosed),
                // Another closing status: kept and shown, not acted on.
                _ => None,
            };
            let amount = money(object.amount, "amount")?;
            let reason = object.reason.clone().unwrap_or_else(|| "unknown".into());
            let event = outcome.map(|outcome| BookingEvent::DisputeClosed {
                payment_intent: pi.clone(),
                amount,
                reason,
                outcome,
                at: created,
            });
            (Target::PaymentIntent(pi), event)
        }
        "charge.dispute.funds_withdrawn" | "charge.dispute.funds_reinstated" => {
            let pi = payment_intent.ok_or(missing("data.object.payment_intent"))?;
            let event = BookingEvent::DisputeFunds {
                payment_intent: pi.clone(),
                amount: money(object.amount, "amount")?,
                reason: object.reason.clone().unwrap_or_else(|| "unknown".into()),
                withdrawn: kind == "charge.dispute.funds_withdrawn",
                at: created,
            };
            (Target::PaymentIntent(pi), Some(event))
        }
        _ => (
            payment_intent.map_or(Target::None, Target::PaymentIntent),
            None,
        ),
    };
    Ok(ProviderEvent {
        provider: Provider::Stripe,
        key,
        kind,
        target,
        event,
        livemode,
    })
}

#[derive(Deserialize)]
struct CalendlyEnvelope {
    event: Option<String>,
    created_at: Option<String>,
    payload: Option<Invitee>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Invitee {
    uri: Option<String>,
    /// Set when the payload is a No Show object rather than the invitee (the shape of
    /// `invitee_no_show.*` is not confirmed): the invitee it is about.
    invitee: Option<String>,
    email: Option<String>,
    name: Option<String>,
    timezone: Option<String>,
    created_at: Option<String>,
    event: Option<String>,
    rescheduled: Option<bool>,
    old_invitee: Option<String>,
    new_invitee: Option<String>,
    cancellation: Option<CalendlyCancellation>,
    no_show: Option<CalendlyNoShow>,
    scheduled_event: Option<ScheduledEvent>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CalendlyCancellation {
    canceler_type: Option<String>,
    reason: Option<String>,
    created_at: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CalendlyNoShow {
    created_at: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ScheduledEvent {
    uri: Option<String>,
    name: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    event_type: Option<String>,
}

fn time_of(text: Option<&str>) -> Option<OffsetDateTime> {
    text.and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

fn parse_calendly(envelope: CalendlyEnvelope) -> Result<ProviderEvent, ParseError> {
    const P: &str = "calendly";
    let missing = |field| ParseError::Missing { provider: P, field };
    let kind = envelope.event.ok_or(missing("event"))?;
    let created_at = envelope.created_at.ok_or(missing("created_at"))?;
    let payload = envelope.payload.ok_or(missing("payload"))?;
    let uri = payload.uri.clone().ok_or(missing("payload.uri"))?;
    let key = format!("{kind}|{uri}|{created_at}");

    let event = match kind.as_str() {
        "invitee.created" | "invitee.canceled" => {
            let schedule = schedule_of(&payload).ok_or(missing("payload.scheduled_event"))?;
            if kind == "invitee.created" {
                Some(BookingEvent::InviteeCreated {
                    schedule,
                    terms: None,
                    rescheduled_from: payload.old_invitee.clone(),
                })
            } else {
                let cancellation = payload.cancellation.as_ref();
                let canceler = match cancellation.and_then(|c| c.canceler_type.as_deref()) {
                    Some("host") => Canceler::Host,
                    _ => Canceler::Client,
                };
                let at = time_of(cancellation.and_then(|c| c.created_at.as_deref()))
                    .or_else(|| time_of(Some(&created_at)))
                    .ok_or(missing("payload.cancellation.created_at"))?;
                Some(BookingEvent::InviteeCanceled {
                    schedule,
                    terms: None,
                    canceler,
                    reason: cancellation.and_then(|c| c.reason.clone()),
                    at,
                    rescheduled_to: if payload.rescheduled.unwrap_or(false) {
                        payload.new_invitee.clone()
                    } else {
                        None
                    },
                })
            }
        }
        "invitee_no_show.created" => {
            let at = time_of(
                payload
                    .no_show
                    .as_ref()
                    .and_then(|n| n.created_at.as_deref()),
            )
            .or_else(|| time_of(Some(&created_at)))
            .ok_or(missing("payload.no_show.created_at"))?;
            Some(BookingEvent::InviteeNoShow { at })
        }
        "invitee_no_show.deleted" => {
            let at = time_of(Some(&created_at)).ok_or(ParseError::Invalid {
                provider: P,
                field: "created_at",
                value: created_at.clone(),
            })?;
            Some(BookingEvent::InviteeNoShowRemoved { at })
        }
        _ => None,
    };
    let invitee = match &payload.invitee {
        Some(invitee) if kind.starts_with("invitee_no_show.") => invitee.clone(),
        _ => uri,
    };
    Ok(ProviderEvent {
        provider: Provider::Calendly,
        key,
        kind,
        target: Target::Invitee(invitee),
        event,
        livemode: None,
    })
}

fn schedule_of(payload: &Invitee) -> Option<Schedule> {
    let event = payload.scheduled_event.as_ref()?;
    Some(Schedule {
        invitee_uri: payload.uri.clone()?,
        event_uri: event.uri.clone().or_else(|| payload.event.clone())?,
        event_type_uri: event.event_type.clone(),
        event_name: event.name.clone(),
        start: time_of(event.start_time.as_deref())?,
        end: time_of(event.end_time.as_deref())?,
        client_name: payload.name.clone(),
        client_email: payload.email.clone(),
        timezone: payload.timezone.clone(),
        booked_at: time_of(payload.created_at.as_deref())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");

    #[test]
    fn a_provider_s_wire_name_is_its_name() {
        for p in [Provider::Stripe, Provider::Calendly] {
            let wire = serde_json::to_string(&p).expect("serialises");
            assert_eq!(wire, format!("\"{}\"", p.as_str()));
            assert_eq!(serde_json::from_str::<Provider>(&wire).ok(), Some(p));
            assert_eq!(Provider::parse(p.as_str()), Some(p));
        }
        assert!(serde_json::from_str::<Provider>("\"Stripe\"").is_err());
    }

    fn fixture(provider: &str, name: &str) -> Vec<u8> {
        let path = format!("{FIXTURES}/{provider}/{name}.json");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A Stripe event of `kind` with every field some handled type needs.
    fn stripe_event(kind: &str) -> Vec<u8> {
        serde_json::json!({
            "id": "evt_1", "object": "event", "type": kind, "created": 1_700_000_000,
            "livemode": false,
            "data": {"object": {
                "id": "obj_1", "object": "x", "payment_intent": "pi_1", "currency": "eur",
                "amount": 100, "amount_total": 100, "amount_refunded": 100,
                "payment_status": "paid", "status": "won", "reason": "fraudulent",
                "metadata": {"booking_id": "b1"},
            }},
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn every_handled_stripe_event_type_parses_to_a_booking_event_and_others_do_not() {
        for kind in STRIPE_EVENTS_HANDLED {
            let event = parse(Provider::Stripe, &stripe_event(kind)).unwrap();
            assert!(event.event.is_some(), "{kind} is listed but not handled");
        }
        for kind in [
            "payment_intent.succeeded",
            "customer.created",
            "charge.succeeded",
        ] {
            let event = parse(Provider::Stripe, &stripe_event(kind)).unwrap();
            assert!(event.event.is_none(), "{kind}");
        }
        let selected = stripe_webhook_events();
        assert!(!selected.contains(&"refund.failed"));
        assert_eq!(selected.len(), STRIPE_EVENTS_HANDLED.len() - 1);
    }

    #[test]
    fn every_calendly_fixture_parses() {
        for name in [
            "invitee.created",
            "invitee.canceled",
            "invitee_no_show.created",
            "reschedule.invitee.canceled",
            "reschedule.invitee.created",
        ] {
            let event = parse(Provider::Calendly, &fixture("calendly", name)).unwrap();
            assert!(event.event.is_some(), "{name}");
            assert!(matches!(event.target, Target::Invitee(_)), "{name}");
        }
    }

    #[test]
    fn reschedule_halves_link_to_each_other() {
        let old = parse(
            Provider::Calendly,
            &fixture("calendly", "reschedule.invitee.canceled"),
        )
        .unwrap();
        let new = parse(
            Provider::Calendly,
            &fixture("calendly", "reschedule.invitee.created"),
        )
        .unwrap();
        let Some(BookingEvent::InviteeCanceled { rescheduled_to, .. }) = &old.event else {
            panic!("not a cancel");
        };
        let Some(BookingEvent::InviteeCreated {
            rescheduled_from, ..
        }) = &new.event
        else {
            panic!("not a create");
        };
        assert_eq!(rescheduled_to.as_deref(), Some(new.target_uri()));
        assert_eq!(rescheduled_from.as_deref(), Some(old.target_uri()));
    }

    impl ProviderEvent {
        fn target_uri(&self) -> &str {
            match &self.target {
                Target::Invitee(uri) => uri,
                _ => "",
            }
        }
    }

    #[test]
    fn every_stripe_fixture_parses_to_its_event() {
        for (name, kind) in [
            ("checkout.session.completed", "payment_reported"),
            ("checkout.session.completed.unpaid", "payment_reported"),
            (
                "checkout.session.async_payment_succeeded",
                "payment_reported",
            ),
            ("checkout.session.async_payment_failed", "payment_reported"),
            ("checkout.session.expired", "payment_reported"),
            ("charge.refunded.partial", "charge_refunded"),
            ("refund.updated.failed", "refund_reported"),
            ("charge.dispute.created", "dispute_opened"),
        ] {
            let event = parse(Provider::Stripe, &fixture("stripe", name)).unwrap();
            assert_eq!(
                event.event.as_ref().map(BookingEvent::kind),
                Some(kind),
                "{name}"
            );
            assert!(event.key.starts_with("evt_"), "{name}");
        }
    }

    #[test]
    fn checkout_routes_by_our_booking_id_first() {
        let event = parse(
            Provider::Stripe,
            &fixture("stripe", "checkout.session.completed"),
        )
        .unwrap();
        assert_eq!(
            event.target,
            Target::Booking("bk_01JD0000000000000000000001".into())
        );
        let Some(BookingEvent::PaymentReported { payment }) = event.event else {
            panic!()
        };
        assert_eq!(payment.status, PaymentStatus::Succeeded);
        assert_eq!(payment.amount.to_string(), "150.00 EUR");
    }

    #[test]
    fn unknown_types_are_kept_and_bad_bodies_named() {
        let body = br#"{"id":"evt_1","type":"customer.created","created":1,"data":{"object":{}}}"#;
        let event = parse(Provider::Stripe, body).unwrap();
        assert_eq!(event.event, None);
        assert_eq!(event.kind, "customer.created");
        assert!(matches!(
            parse(Provider::Stripe, b"{"),
            Err(ParseError::NotJson(_))
        ));
        assert_eq!(
            parse(Provider::Stripe, br#"{"type":"x"}"#),
            Err(ParseError::Missing {
                provider: "stripe",
                field: "id"
            })
        );
        assert!(matches!(
            parse(
                Provider::Calendly,
                br#"{"event":"invitee.created","created_at":"x","payload":{}}"#
            ),
            Err(ParseError::Missing { .. })
        ));
    }

    #[test]
    fn dispute_outcomes_and_funds_movements_are_read() {
        let body = |kind: &str, status: &str| {
            format!(
                r#"{{"id":"evt_1","type":"{kind}","created":1700000000,"data":{{"object":{{"id":"dp_1","object":"dispute","amount":15000,"currency":"eur","payment_intent":"pi_1","reason":"fraudulent","status":"{status}"}}}}}}"#
            )
        };
        for (status, outcome) in [
            ("won", DisputeOutcome::Won),
            ("lost", DisputeOutcome::Lost),
            ("warning_closed", DisputeOutcome::WarningClosed),
        ] {
            let event = parse(
                Provider::Stripe,
                body("charge.dispute.closed", status).as_bytes(),
            )
            .unwrap();
            assert_eq!(event.target, Target::PaymentIntent("pi_1".into()));
            assert!(
                matches!(event.event, Some(BookingEvent::DisputeClosed { outcome: o, .. }) if o == outcome),
                "{status}: {:?}",
                event.event
            );
        }
        let other = parse(
            Provider::Stripe,
            body("charge.dispute.closed", "charge_refunded").as_bytes(),
        )
        .unwrap();
        assert_eq!(other.event, None, "kept, not acted on");
        for (kind, withdrawn) in [
            ("charge.dispute.funds_withdrawn", true),
            ("charge.dispute.funds_reinstated", false),
        ] {
            let event = parse(Provider::Stripe, body(kind, "needs_response").as_bytes()).unwrap();
            assert!(
                matches!(event.event, Some(BookingEvent::DisputeFunds { withdrawn: w, .. }) if w == withdrawn),
                "{kind}"
            );
        }
    }

    #[test]
    fn a_no_show_taken_back_is_read_from_either_payload_shape() {
        let invitee = "https://api.calendly.com/scheduled_events/E/invitees/INV1";
        // The invitee with its mark gone (what the simulator sends)...
        let as_invitee = format!(
            r#"{{"event":"invitee_no_show.deleted","created_at":"2026-11-28T10:00:00.000000Z","payload":{{"uri":"{invitee}","no_show":null}}}}"#
        );
        // ...or the No Show object naming its invitee.
        let as_no_show = format!(
            r#"{{"event":"invitee_no_show.deleted","created_at":"2026-11-28T10:00:00.000000Z","payload":{{"uri":"https://api.calendly.com/invitee_no_shows/NS1","invitee":"{invitee}"}}}}"#
        );
        for body in [as_invitee, as_no_show] {
            let event = parse(Provider::Calendly, body.as_bytes()).unwrap();
            assert_eq!(event.target, Target::Invitee(invitee.into()), "{body}");
            assert!(
                matches!(event.event, Some(BookingEvent::InviteeNoShowRemoved { .. })),
                "{body}"
            );
        }
    }

    #[test]
    fn uuid_is_the_last_segment() {
        assert_eq!(
            uuid_of("https://api.calendly.com/scheduled_events/E/invitees/INV1"),
            "INV1"
        );
    }
}
