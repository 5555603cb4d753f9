//! Confirming a webhook with the provider's API before it moves money or confirms a
//! booking.
//!
//! A signed webhook proves only that someone holding the signing key sent it. Before a
//! payment counts ([`BookingEvent::PaymentReported`] with a succeeded payment) the app
//! reads the Checkout Session back from Stripe; before a cancellation is applied (it may
//! refund the client) it reads the invitee back from Calendly. This module says which
//! events need that ([`needed`]) and whether what the API answered agrees with the
//! webhook ([`judge`]); the reading itself is I/O and happens in the sync crate.

use thiserror::Error;

use crate::booking::{BookingEvent, Canceler, PaymentStatus};
use crate::provider::{ProviderEvent, Target};

/// What must be read back before an event may be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadBack {
    /// `GET /v1/checkout/sessions/{id}` at Stripe.
    CheckoutSession { id: String },
    /// `GET /scheduled_events/{event}/invitees/{invitee}` at Calendly (the invitee's URI).
    Invitee { uri: String },
}

/// A Checkout Session as Stripe's API reports it (only what is compared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSeen {
    pub id: String,
    /// `open`, `complete` or `expired`.
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: Option<String>,
    pub amount_total: Option<i64>,
    /// Lowercase ISO code, as Stripe writes it.
    pub currency: Option<String>,
    pub payment_intent: Option<String>,
    pub client_reference_id: Option<String>,
    /// `metadata[booking_id]`, when Coachdesk made the session for a booking.
    pub booking_id: Option<String>,
}

/// An invitee as Calendly's API reports it (only what is compared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InviteeSeen {
    /// `active` or `canceled`.
    pub status: Option<String>,
    /// `cancellation.canceler_type`: `host` or `invitee`.
    pub canceler_type: Option<String>,
    pub rescheduled: Option<bool>,
    pub new_invitee: Option<String>,
}

/// What the provider's API answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Session(SessionSeen),
    Invitee(InviteeSeen),
    /// The API has no such object (404).
    Missing,
}

/// Why an event is not taken as fact: the provider's own API says otherwise.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum Contradiction {
    #[error("{provider} has no such {what}")]
    Missing {
        provider: &'static str,
        what: &'static str,
    },
    #[error(
        "Stripe says the Checkout Session is not paid (status {status}, payment {payment_status})"
    )]
    NotPaid {
        status: String,
        payment_status: String,
    },
    #[error("Stripe says the Checkout Session's total is {seen}, the webhook said {claimed}")]
    Amount { claimed: String, seen: String },
    #[error("Stripe says the Checkout Session belongs to {seen}, the webhook said {claimed}")]
    Owner { claimed: String, seen: String },
    #[error("Stripe says the Checkout Session's payment is {seen}, the webhook said {claimed}")]
    PaymentIntent { claimed: String, seen: String },
    #[error("Calendly says the invitee is {status}, not canceled")]
    NotCanceled { status: String },
    #[error(
        "Calendly says the invitee was canceled by the {seen}, the webhook said the {claimed}"
    )]
    Canceler { claimed: String, seen: String },
    #[error(
        "Calendly says the cancellation {seen} part of a reschedule, the webhook said it {claimed}"
    )]
    Reschedule {
        claimed: &'static str,
        seen: &'static str,
    },
    #[error("the provider answered about another kind of object than the webhook names")]
    WrongObject,
}

/// What must be read back before `event` is applied, if anything: a succeeded payment
/// (it confirms a booking) and a Calendly cancellation (it may refund the client).
pub fn needed(event: &ProviderEvent) -> Option<ReadBack> {
    match &event.event {
        Some(BookingEvent::PaymentReported { payment })
            if payment.status == PaymentStatus::Succeeded =>
        {
            Some(ReadBack::CheckoutSession {
                id: payment.checkout_session.clone(),
            })
        }
        Some(BookingEvent::InviteeCanceled { schedule, .. }) => Some(ReadBack::Invitee {
            uri: schedule.invitee_uri.clone(),
        }),
        _ => None,
    }
}

/// Whether the API's answer `seen` agrees with `event` (one [`needed`] asked about).
pub fn judge(event: &ProviderEvent, seen: &Seen) -> Result<(), Contradiction> {
    match (&event.event, seen) {
        (Some(BookingEvent::PaymentReported { .. }), Seen::Missing) => {
            Err(Contradiction::Missing {
                provider: "Stripe",
                what: "Checkout Session",
            })
        }
        (Some(BookingEvent::InviteeCanceled { .. }), Seen::Missing) => {
            Err(Contradiction::Missing {
                provider: "Calendly",
                what: "invitee",
            })
        }
        (Some(BookingEvent::PaymentReported { payment }), Seen::Session(session)) => {
            let paid = session.status.as_deref() == Some("complete")
                && session.payment_status.as_deref() == Some("paid");
            if !paid {
                return Err(Contradiction::NotPaid {
                    status: shown(session.status.as_deref()),
                    payment_status: shown(session.payment_status.as_deref()),
                });
            }
            let same_money = session.amount_total == Some(payment.amount.minor)
                && session
                    .currency
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case(payment.amount.currency.code()));
            if !same_money {
                return Err(Contradiction::Amount {
                    claimed: payment.amount.to_string(),
                    seen: format!(
                        "{} {}",
                        session
                            .amount_total
                            .map_or_else(|| "none".to_owned(), |a| a.to_string()),
                        shown(session.currency.as_deref()).to_uppercase()
                    ),
                });
            }
            if let Some(claimed) = &payment.payment_intent {
                if session.payment_intent.as_ref() != Some(claimed) {
                    return Err(Contradiction::PaymentIntent {
                        claimed: claimed.clone(),
                        seen: shown(session.payment_intent.as_deref()),
                    });
                }
            }
            let owner = |target: &Target| match target {
                Target::Booking(id) => Some(format!("booking {id}")),
                Target::InviteeUuid(uuid) => Some(format!("invitee {uuid}")),
                _ => None,
            };
            let seen_owner = session
                .booking_id
                .as_ref()
                .map(|id| format!("booking {id}"))
                .or_else(|| {
                    session
                        .client_reference_id
                        .as_ref()
                        .filter(|r| !r.is_empty())
                        .map(|r| format!("invitee {r}"))
                });
            let claimed_owner = owner(&event.target);
            if claimed_owner != seen_owner {
                return Err(Contradiction::Owner {
                    claimed: claimed_owner.unwrap_or_else(|| "no booking".into()),
                    seen: seen_owner.unwrap_or_else(|| "no booking".into()),
                });
            }
            Ok(())
        }
        (
            Some(BookingEvent::InviteeCanceled {
                canceler,
                rescheduled_to,
                ..
            }),
            Seen::Invitee(invitee),
        ) => {
            if invitee.status.as_deref() != Some("canceled") {
                return Err(Contradiction::NotCanceled {
                    status: shown(invitee.status.as_deref()),
                });
            }
            let seen_host = invitee.canceler_type.as_deref() == Some("host");
            let claimed_host = *canceler == Canceler::Host;
            if seen_host != claimed_host {
                let who = |host: bool| if host { "host" } else { "invitee" };
                return Err(Contradiction::Canceler {
                    claimed: who(claimed_host).into(),
                    seen: who(seen_host).into(),
                });
            }
            let seen_reschedule = invitee.rescheduled.unwrap_or(false);
            if seen_reschedule != rescheduled_to.is_some() {
                let was = |r: bool| if r { "was" } else { "was not" };
                return Err(Contradiction::Reschedule {
                    claimed: was(rescheduled_to.is_some()),
                    seen: was(seen_reschedule),
                });
            }
            Ok(())
        }
        _ => Err(Contradiction::WrongObject),
    }
}

fn shown(value: Option<&str>) -> String {
    value.unwrap_or("none").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{parse, Provider};
    use serde_json::json;

    fn completed(amount: i64, reference: &str) -> ProviderEvent {
        let body = json!({
            "id": "evt_1", "type": "checkout.session.completed", "created": 1_700_000_000,
            "livemode": false,
            "data": {"object": {"id": "cs_test_1", "amount_total": amount, "currency": "eur",
                "payment_intent": "pi_1", "payment_status": "paid", "status": "complete",
                "client_reference_id": reference, "metadata": {}}}
        });
        parse(Provider::Stripe, body.to_string().as_bytes()).expect("parse")
    }

    fn session(amount: i64, reference: &str) -> SessionSeen {
        SessionSeen {
            id: "cs_test_1".into(),
            status: Some("complete".into()),
            payment_status: Some("paid".into()),
            amount_total: Some(amount),
            currency: Some("eur".into()),
            payment_intent: Some("pi_1".into()),
            client_reference_id: Some(reference.into()),
            booking_id: None,
        }
    }

    fn canceled(canceler: &str, rescheduled: bool) -> ProviderEvent {
        let body = json!({
            "event": "invitee.canceled", "created_at": "2026-01-01T10:00:00Z",
            "payload": {"uri": "https://api.calendly.com/scheduled_events/E1/invitees/I1",
                "email": "a@example.com", "name": "A", "rescheduled": rescheduled,
                "created_at": "2025-12-30T10:00:00Z",
                "new_invitee": if rescheduled { json!("https://api.calendly.com/scheduled_events/E2/invitees/I2") } else { json!(null) },
                "cancellation": {"canceler_type": canceler, "reason": "x", "created_at": "2026-01-01T10:00:00Z"},
                "scheduled_event": {"uri": "https://api.calendly.com/scheduled_events/E1",
                    "start_time": "2026-01-05T10:00:00Z", "end_time": "2026-01-05T11:00:00Z"}}
        });
        parse(Provider::Calendly, body.to_string().as_bytes()).expect("parse")
    }

    fn invitee(status: &str, canceler: Option<&str>, rescheduled: bool) -> Seen {
        Seen::Invitee(InviteeSeen {
            status: Some(status.into()),
            canceler_type: canceler.map(str::to_owned),
            rescheduled: Some(rescheduled),
            new_invitee: None,
        })
    }

    #[test]
    fn a_paid_session_is_read_back_and_agreeing_answers_pass() {
        let event = completed(15000, "inv-1");
        assert_eq!(
            needed(&event),
            Some(ReadBack::CheckoutSession {
                id: "cs_test_1".into()
            })
        );
        assert_eq!(
            judge(&event, &Seen::Session(session(15000, "inv-1"))),
            Ok(())
        );
    }

    #[test]
    fn a_session_stripe_does_not_know_or_did_not_charge_is_a_contradiction() {
        let event = completed(15000, "inv-1");
        assert!(matches!(
            judge(&event, &Seen::Missing),
            Err(Contradiction::Missing { .. })
        ));
        let mut open = session(15000, "inv-1");
        open.status = Some("open".into());
        open.payment_status = Some("unpaid".into());
        assert!(matches!(
            judge(&event, &Seen::Session(open)),
            Err(Contradiction::NotPaid { .. })
        ));
    }

    #[test]
    fn another_amount_payment_or_owner_than_the_webhooks_is_a_contradiction() {
        let event = completed(15000, "inv-1");
        assert!(matches!(
            judge(&event, &Seen::Session(session(5000, "inv-1"))),
            Err(Contradiction::Amount { .. })
        ));
        assert!(matches!(
            judge(&event, &Seen::Session(session(15000, "inv-2"))),
            Err(Contradiction::Owner { .. })
        ));
        let mut other_pi = session(15000, "inv-1");
        other_pi.payment_intent = Some("pi_2".into());
        assert!(matches!(
            judge(&event, &Seen::Session(other_pi)),
            Err(Contradiction::PaymentIntent { .. })
        ));
    }

    #[test]
    fn a_cancellation_needs_calendly_to_say_canceled_by_the_same_side() {
        let event = canceled("host", false);
        assert_eq!(
            needed(&event),
            Some(ReadBack::Invitee {
                uri: "https://api.calendly.com/scheduled_events/E1/invitees/I1".into()
            })
        );
        assert_eq!(
            judge(&event, &invitee("canceled", Some("host"), false)),
            Ok(())
        );
        assert!(matches!(
            judge(&event, &invitee("active", None, false)),
            Err(Contradiction::NotCanceled { .. })
        ));
        assert!(matches!(
            judge(&event, &invitee("canceled", Some("invitee"), false)),
            Err(Contradiction::Canceler { .. })
        ));
        assert!(matches!(
            judge(&event, &invitee("canceled", Some("host"), true)),
            Err(Contradiction::Reschedule { .. })
        ));
        assert!(matches!(
            judge(&event, &Seen::Missing),
            Err(Contradiction::Missing { .. })
        ));
        let reschedule = canceled("invitee", true);
        assert_eq!(
            judge(&reschedule, &invitee("canceled", Some("invitee"), true)),
            Ok(())
        );
    }

    #[test]
    fn pending_payments_and_other_events_are_not_read_back() {
        let body = json!({
            "id": "evt_2", "type": "checkout.session.completed", "created": 1_700_000_000,
            "data": {"object": {"id": "cs_test_2", "amount_total": 100, "currency": "eur",
                "payment_status": "unpaid", "client_reference_id": "inv-1"}}
        });
        let pending = parse(Provider::Stripe, body.to_string().as_bytes()).expect("parse");
        assert_eq!(needed(&pending), None);
    }
}
