//! Reading Stripe and Calendly webhook bodies into booking events.
//!
//! Parsing is pure and lenient: fields the product does not use are ignored, and an event
//! type it does not handle parses to `event: None` (it is still stored and shown, never
//! dropped). What a body must have to be routed at all (its id, its type) is checked, and
//! a body without it is a typed error that names the missing field.

use serde_json::Value;
use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::booking::{
    BookingEvent, Canceler, PaymentFact, PaymentStatus, RefundFact, RefundStatus, Schedule,
};
use crate::money::{Currency, Money};

/// Which provider sent an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// A Checkout Session nobody referenced: the payment is kept on a booking of its own.
    CheckoutSession(String),
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
}

/// Why a body could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("the body is not JSON: {0}")]
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

/// Reads a raw webhook body (or a Stripe event from `GET /v1/events`).
pub fn parse(provider: Provider, body: &[u8]) -> Result<ProviderEvent, ParseError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| ParseError::NotJson(err.to_string()))?;
    match provider {
        Provider::Stripe => parse_stripe(&value),
        Provider::Calendly => parse_calendly(&value),
    }
}

/// The UUID at the end of a Calendly resource URI.
pub fn uuid_of(uri: &str) -> &str {
    uri.trim_end_matches('/').rsplit('/').next().unwrap_or(uri)
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

fn time_at(value: &Value, path: &[&str]) -> Option<OffsetDateTime> {
    str_at(value, path).and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
}

fn parse_stripe(value: &Value) -> Result<ProviderEvent, ParseError> {
    const P: &str = "stripe";
    let key = str_at(value, &["id"]).ok_or(ParseError::Missing {
        provider: P,
        field: "id",
    })?;
    let kind = str_at(value, &["type"]).ok_or(ParseError::Missing {
        provider: P,
        field: "type",
    })?;
    let object = value.pointer("/data/object").ok_or(ParseError::Missing {
        provider: P,
        field: "data.object",
    })?;
    let created = value
        .get("created")
        .and_then(Value::as_i64)
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .ok_or(ParseError::Missing {
            provider: P,
            field: "created",
        })?;
    let money = |amount_field: &'static str| -> Result<Money, ParseError> {
        let code = str_at(object, &["currency"]).ok_or(ParseError::Missing {
            provider: P,
            field: "currency",
        })?;
        let currency = Currency::parse(code).map_err(|_| ParseError::Invalid {
            provider: P,
            field: "currency",
            value: code.to_owned(),
        })?;
        let minor =
            object
                .get(amount_field)
                .and_then(Value::as_i64)
                .ok_or(ParseError::Missing {
                    provider: P,
                    field: amount_field,
                })?;
        Ok(Money::new(minor, currency))
    };
    let payment_intent = str_at(object, &["payment_intent"]).map(str::to_owned);
    let booking_id = str_at(object, &["metadata", "booking_id"]).map(str::to_owned);

    let (target, event) = match kind {
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed"
        | "checkout.session.expired" => {
            let session = str_at(object, &["id"]).ok_or(ParseError::Missing {
                provider: P,
                field: "data.object.id",
            })?;
            let status = match kind {
                "checkout.session.completed" => match str_at(object, &["payment_status"]) {
                    Some("unpaid") => PaymentStatus::Pending,
                    _ => PaymentStatus::Succeeded,
                },
                "checkout.session.async_payment_succeeded" => PaymentStatus::Succeeded,
                "checkout.session.async_payment_failed" => PaymentStatus::Failed,
                _ => PaymentStatus::Expired,
            };
            let target = booking_id
                .clone()
                .map(Target::Booking)
                .or_else(|| {
                    str_at(object, &["client_reference_id"])
                        .filter(|r| !r.is_empty())
                        .map(|r| Target::InviteeUuid(r.to_owned()))
                })
                .unwrap_or_else(|| Target::CheckoutSession(session.to_owned()));
            let payment = PaymentFact {
                checkout_session: session.to_owned(),
                payment_intent,
                amount: money("amount_total")?,
                status,
                at: created,
            };
            (target, Some(BookingEvent::PaymentReported { payment }))
        }
        "charge.refunded" => {
            let pi = payment_intent.ok_or(ParseError::Missing {
                provider: P,
                field: "data.object.payment_intent",
            })?;
            let event = BookingEvent::ChargeRefunded {
                payment_intent: pi.clone(),
                amount_refunded: money("amount_refunded")?,
            };
            (Target::PaymentIntent(pi), Some(event))
        }
        "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
            let refund_id = str_at(object, &["id"]).ok_or(ParseError::Missing {
                provider: P,
                field: "data.object.id",
            })?;
            let status = match str_at(object, &["status"]) {
                Some("succeeded") => RefundStatus::Succeeded,
                Some("failed") => RefundStatus::Failed,
                Some("canceled") => RefundStatus::Canceled,
                _ if kind == "refund.failed" => RefundStatus::Failed,
                _ => RefundStatus::Pending,
            };
            let refund = RefundFact {
                refund_id: refund_id.to_owned(),
                payment_intent: payment_intent.clone(),
                amount: money("amount")?,
                status,
                cause: str_at(object, &["metadata", "cause"]).map(str::to_owned),
                failure_reason: str_at(object, &["failure_reason"]).map(str::to_owned),
            };
            let target = match (booking_id, payment_intent) {
                (Some(id), _) => Target::Booking(id),
                (None, Some(pi)) => Target::PaymentIntent(pi),
                (None, None) => Target::None,
            };
            (target, Some(BookingEvent::RefundReported { refund }))
        }
        "charge.dispute.created" => {
            let pi = payment_intent.ok_or(ParseError::Missing {
                provider: P,
                field: "data.object.payment_intent",
            })?;
            let event = BookingEvent::DisputeOpened {
                payment_intent: pi.clone(),
                amount: money("amount")?,
                reason: str_at(object, &["reason"]).unwrap_or("unknown").to_owned(),
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
        key: key.to_owned(),
        kind: kind.to_owned(),
        target,
        event,
    })
}

fn parse_calendly(value: &Value) -> Result<ProviderEvent, ParseError> {
    const P: &str = "calendly";
    let missing = |field| ParseError::Missing { provider: P, field };
    let kind = str_at(value, &["event"]).ok_or(missing("event"))?;
    let created_at = str_at(value, &["created_at"]).ok_or(missing("created_at"))?;
    let payload = value.get("payload").ok_or(missing("payload"))?;
    let uri = str_at(payload, &["uri"]).ok_or(missing("payload.uri"))?;
    let key = format!("{kind}|{uri}|{created_at}");

    let event = match kind {
        "invitee.created" | "invitee.canceled" => {
            let schedule = schedule_of(payload).ok_or(missing("payload.scheduled_event"))?;
            if kind == "invitee.created" {
                Some(BookingEvent::InviteeCreated {
                    schedule,
                    terms: None,
                    rescheduled_from: str_at(payload, &["old_invitee"]).map(str::to_owned),
                })
            } else {
                let rescheduled = payload
                    .get("rescheduled")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let canceler = match str_at(payload, &["cancellation", "canceler_type"]) {
                    Some("host") => Canceler::Host,
                    _ => Canceler::Client,
                };
                let at = time_at(payload, &["cancellation", "created_at"])
                    .or_else(|| time_at(value, &["created_at"]))
                    .ok_or(missing("payload.cancellation.created_at"))?;
                Some(BookingEvent::InviteeCanceled {
                    schedule,
                    terms: None,
                    canceler,
                    reason: str_at(payload, &["cancellation", "reason"]).map(str::to_owned),
                    at,
                    rescheduled_to: if rescheduled {
                        str_at(payload, &["new_invitee"]).map(str::to_owned)
                    } else {
                        None
                    },
                })
            }
        }
        "invitee_no_show.created" => {
            let at = time_at(payload, &["no_show", "created_at"])
                .or_else(|| time_at(value, &["created_at"]))
                .ok_or(missing("payload.no_show.created_at"))?;
            Some(BookingEvent::InviteeNoShow { at })
        }
        _ => None,
    };
    Ok(ProviderEvent {
        provider: Provider::Calendly,
        key,
        kind: kind.to_owned(),
        target: Target::Invitee(uri.to_owned()),
        event,
    })
}

fn schedule_of(payload: &Value) -> Option<Schedule> {
    let event = payload.get("scheduled_event")?;
    Some(Schedule {
        invitee_uri: str_at(payload, &["uri"])?.to_owned(),
        event_uri: str_at(event, &["uri"])
            .or_else(|| str_at(payload, &["event"]))?
            .to_owned(),
        event_type_uri: str_at(event, &["event_type"]).map(str::to_owned),
        event_name: str_at(event, &["name"]).map(str::to_owned),
        start: time_at(event, &["start_time"])?,
        end: time_at(event, &["end_time"])?,
        client_name: str_at(payload, &["name"]).map(str::to_owned),
        client_email: str_at(payload, &["email"]).map(str::to_owned),
        timezone: str_at(payload, &["timezone"]).map(str::to_owned),
        booked_at: time_at(payload, &["created_at"])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");

    fn fixture(provider: &str, name: &str) -> Vec<u8> {
        let path = format!("{FIXTURES}/{provider}/{name}.json");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
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
    fn uuid_is_the_last_segment() {
        assert_eq!(
            uuid_of("https://api.calendly.com/scheduled_events/E/invitees/INV1"),
            "INV1"
        );
    }
}
