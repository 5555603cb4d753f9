//! The coach's set-up both test harnesses (`support`, `desk`) start from: a session type
//! mapped to one of the simulator's Calendly event types, sold through a Stripe payment
//! link.

use std::sync::Mutex;
use std::time::Duration;

use coachdesk_desk::SessionTypeForms;
use coachdesk_protocol::ipc::{RefundTierDto, SessionTypeDraft};
use coachdesk_providers::{CalendlyApi, PaymentLinkCreated, StripeApi};
use coachdesk_store::Store;
use coachdesk_sync::SyncConfig;

/// A session type to sell.
pub struct Offer<'a> {
    pub name: &'a str,
    pub duration_minutes: u32,
    /// In major units ("150.00").
    pub price: &'a str,
    pub minor: i64,
    pub currency: &'a str,
    /// (minimum hours before, percent refunded).
    pub tiers: &'a [(u32, u8)],
    /// The Calendly event type's slug (`coaching-60`, `intro-30`).
    pub event_type: &'a str,
}

/// The simulator's `coaching-60` event type sold at 150.00 EUR with refund `tiers`.
pub fn coaching(tiers: &[(u32, u8)]) -> Offer<'_> {
    Offer {
        name: "Coaching",
        duration_minutes: 60,
        price: "150.00",
        minor: 15000,
        currency: "EUR",
        tiers,
        event_type: "coaching-60",
    }
}

/// Creates `offer`'s session type in `store`, mapped to its Calendly event type, and
/// its payment link at Stripe.
pub async fn sell(
    config: &SyncConfig,
    calendly_token: &str,
    stripe_key: &str,
    store: &Mutex<Store>,
    offer: &Offer<'_>,
) -> PaymentLinkCreated {
    let calendly = CalendlyApi::new(
        &config.calendly_base,
        calendly_token,
        Duration::from_secs(5),
    )
    .expect("calendly");
    let me = calendly.current_user().await.expect("users/me");
    let event_type = calendly
        .event_types(&me.uri)
        .await
        .expect("event types")
        .iter()
        .find(|t| t["slug"] == offer.event_type)
        .and_then(|t| t["uri"].as_str())
        .unwrap_or_else(|| panic!("the simulator has the {} event type", offer.event_type))
        .to_owned();
    let st = store
        .lock()
        .unwrap()
        .create_session_type(&SessionTypeDraft {
            name: offer.name.into(),
            duration_minutes: offer.duration_minutes,
            price: offer.price.into(),
            currency: offer.currency.into(),
            refund_tiers: offer
                .tiers
                .iter()
                .map(|&(min_hours_before, percent)| RefundTierDto {
                    min_hours_before,
                    percent,
                })
                .collect(),
            calendly_event_type_uri: Some(event_type),
            payment_window_minutes: None,
        })
        .expect("session type");
    let money = coachdesk_domain::Money::new(
        offer.minor,
        coachdesk_domain::Currency::parse(offer.currency).expect("currency"),
    );
    StripeApi::new(&config.stripe_base, stripe_key)
        .expect("stripe")
        .create_payment_link(&st.name, money, &format!("coachdesk-{}", st.id))
        .await
        .expect("payment link")
}
