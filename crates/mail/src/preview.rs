//! The template editor's preview: a template rendered against a sample booking (or a real
//! one), with the coach's own name and links, before it is saved.

use coachdesk_domain::booking::{BookingState, RefundCause, Schedule, Terms};
use coachdesk_domain::{Booking, Currency, Money, RefundPolicy};
use time::{Duration, OffsetDateTime};

use crate::decide::{preview as render_preview, CoachIdentity, MailContext, SessionInfo};
use crate::kind::MailKind;
use crate::template::{Rendered, Template};

/// A booking to preview templates with: Dana, a 60-minute session three days from `now`,
/// 150.00 EUR, in Berlin time; cancelled with a 75.00 EUR refund for the cancellation
/// notice, moved for the reschedule notice.
pub fn sample_booking(kind: MailKind, now: OffsetDateTime) -> Booking {
    let eur = Currency::parse("EUR").unwrap_or_else(|_| unreachable!("EUR is a currency code"));
    let start = now + Duration::days(3);
    let mut b = Booking::new(coachdesk_domain::BookingId::from_stored("bk_preview"));
    b.schedule = Some(Schedule {
        invitee_uri: "https://api.calendly.com/scheduled_events/PREVIEW/invitees/PREVIEW".into(),
        event_uri: "https://api.calendly.com/scheduled_events/PREVIEW".into(),
        event_type_uri: None,
        event_name: Some("Coaching session".into()),
        start,
        end: start + Duration::hours(1),
        client_name: Some("Dana Client".into()),
        client_email: Some("dana@example.com".into()),
        timezone: Some("Europe/Berlin".into()),
        booked_at: now,
    });
    b.terms = Some(Terms {
        session_type_id: "st_preview".into(),
        price: Money::new(15000, eur),
        policy: RefundPolicy::default(),
        payment_window_minutes: 24 * 60,
    });
    match kind {
        MailKind::Cancellation => {
            b.state = BookingState::RefundPending;
            b.cancellation = Some(coachdesk_domain::booking::CancellationFact {
                canceler: coachdesk_domain::booking::Canceler::CoachInApp,
                at: now,
                reason: None,
                refund: coachdesk_domain::booking::RefundChoice::Amount {
                    amount: Money::new(7500, eur),
                },
            });
            b.refunds.insert(
                RefundCause::cancellation().to_string(),
                coachdesk_domain::booking::RefundRecord {
                    cause: Some(RefundCause::cancellation()),
                    refund_id: None,
                    payment_intent: Some("pi_preview".into()),
                    amount: Money::new(7500, eur),
                    status: coachdesk_domain::booking::RefundStatus::Requested,
                    failure_reason: None,
                },
            );
            paid_in_full(&mut b, Money::new(15000, eur), now);
        }
        MailKind::LatePaymentRefund => {
            b.state = BookingState::Refunded;
            paid_in_full(&mut b, Money::new(15000, eur), now);
            b.refunds.insert(
                RefundCause::late_payment("cs_preview").to_string(),
                coachdesk_domain::booking::RefundRecord {
                    cause: Some(RefundCause::late_payment("cs_preview")),
                    refund_id: Some("re_preview".into()),
                    payment_intent: Some("pi_preview".into()),
                    amount: Money::new(15000, eur),
                    status: coachdesk_domain::booking::RefundStatus::Succeeded,
                    failure_reason: None,
                },
            );
        }
        MailKind::Reschedule => {
            b.state = BookingState::Confirmed;
            b.rescheduled_from =
                Some("https://api.calendly.com/scheduled_events/OLD/invitees/OLD".into());
        }
        MailKind::Confirmation => b.state = BookingState::Confirmed,
        MailKind::PaymentRequest | MailKind::PaymentReminder => {}
    }
    b
}

/// The sample booking's payment of `price`, by card.
fn paid_in_full(b: &mut Booking, price: Money, now: OffsetDateTime) {
    b.payments.insert(
        "cs_preview".into(),
        coachdesk_domain::booking::PaymentRecord {
            fact: coachdesk_domain::booking::PaymentFact {
                checkout_session: "cs_preview".into(),
                payment_intent: Some("pi_preview".into()),
                amount: price,
                status: coachdesk_domain::booking::PaymentStatus::Succeeded,
                at: now,
            },
            carried_from: None,
        },
    );
}

/// Renders `template` for the sample booking of its kind, as the client would read it.
/// `relay_url` fills the payment links (a placeholder address if it is not set yet).
pub fn preview_sample(
    kind: MailKind,
    template: &Template,
    coach: &CoachIdentity,
    relay_url: Option<&str>,
    now: OffsetDateTime,
) -> Rendered {
    let booking = sample_booking(kind, now);
    let ctx = MailContext {
        coach: coach.clone(),
        template: template.clone(),
        relay_url: Some(relay_url.unwrap_or("https://relay.example.com").to_owned()),
        session: Some(SessionInfo {
            name: "Coaching session".into(),
            slug: "coaching-session".into(),
        }),
    };
    render_preview(kind, template, &booking, &ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::default_template;
    use time::macros::datetime;

    #[test]
    fn every_default_template_previews_with_every_value_filled() {
        let coach = CoachIdentity {
            name: "Sam Coach".into(),
            from_address: "sam@coach.example".into(),
            reply_to: None,
        };
        let now = datetime!(2026-06-01 08:00 UTC);
        for kind in MailKind::ALL {
            let r = preview_sample(kind, &default_template(kind), &coach, None, now);
            assert!(r.text.contains("Dana Client"), "{kind:?}: {}", r.text);
            assert!(
                r.text
                    .contains("Thursday 4 June 2026, 10:00 (Europe/Berlin)"),
                "{kind:?}: {}",
                r.text
            );
            assert!(r.text.contains("Sam Coach"));
            assert!(
                !r.text.contains("{"),
                "{kind:?} left a placeholder: {}",
                r.text
            );
            assert!(
                !r.text.contains(" ."),
                "{kind:?} has an empty value: {}",
                r.text
            );
        }
        let cancel = preview_sample(
            MailKind::Cancellation,
            &default_template(MailKind::Cancellation),
            &coach,
            None,
            now,
        );
        assert!(
            cancel.text.contains("Refund: 75.00 EUR."),
            "{}",
            cancel.text
        );
    }
}
