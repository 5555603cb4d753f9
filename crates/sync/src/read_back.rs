//! Nothing confirmed and no money moved on a webhook's word alone: before a relayed event
//! that would confirm a payment or cancel a booking is applied, its claim is read back
//! from the provider's API (the Checkout Session from Stripe, the invitee from Calendly)
//! and judged by `coachdesk_domain::read_back`. A contradicted event is stored as
//! `unconfirmed` and applied to nothing.
//!
//! Only relayed events are read back: reconciliation reads the providers' APIs itself.
//! A read that fails for a passing reason (network, 5xx, 429, no key in the keychain yet)
//! fails the whole page, so it is pulled again later rather than applied unchecked.

use std::sync::{Arc, Mutex};

use coachdesk_domain::provider::{self, Provider};
use coachdesk_domain::read_back::{judge, needed, Contradiction, ReadBack, Seen};
use coachdesk_providers::{CalendlyApi, ProviderError, StripeApi};
use coachdesk_store::Store;

use crate::{lock, Providers, SyncError};

/// What reading a batch back found.
#[derive(Debug, Default)]
pub struct Confirmations {
    /// Per body, in order: what the provider's API said against it, if anything.
    pub contradictions: Vec<Option<Contradiction>>,
    /// How many provider API calls the reading took.
    pub calls: usize,
}

/// Reads back every body in `bodies` that needs it and may act (see
/// `Store::may_act_on`).
pub async fn confirm(
    providers: &Providers,
    store: &Arc<Mutex<Store>>,
    bodies: &[(Provider, &[u8])],
) -> Result<Confirmations, SyncError> {
    let mut stripe: Option<StripeApi> = None;
    let mut calendly: Option<CalendlyApi> = None;
    let mut found = Confirmations::default();
    for (provider, body) in bodies {
        let Ok(event) = provider::parse(*provider, body) else {
            found.contradictions.push(None);
            continue;
        };
        let Some(read_back) = needed(&event) else {
            found.contradictions.push(None);
            continue;
        };
        // Redeliveries and events that would only be logged (another sale on the account,
        // the other mode) need no call.
        if !lock(store).may_act_on(*provider, body)? {
            found.contradictions.push(None);
            continue;
        }
        found.calls += 1;
        let answer = match &read_back {
            ReadBack::CheckoutSession { id } => {
                let api = match &stripe {
                    Some(api) => api,
                    None => stripe.insert(providers.stripe()?),
                };
                api.checkout_session(id).await.map(Seen::Session)
            }
            ReadBack::Invitee { uri } => {
                let api = match &calendly {
                    Some(api) => api,
                    None => calendly.insert(providers.calendly()?),
                };
                api.invitee(uri).await.map(Seen::Invitee)
            }
        };
        let seen = match answer {
            Ok(seen) => seen,
            // 404: the provider has no such object. 400: the webhook names something
            // that is not even an id of one (the clients refuse it before any request).
            Err(ProviderError::Permanent {
                status: 404 | 400, ..
            }) => Seen::Missing,
            Err(err) => return Err(err.into()),
        };
        let verdict = judge(&event, &seen).err();
        if let Some(contradiction) = &verdict {
            tracing::warn!(key = %event.key, kind = %event.kind, %contradiction, "a signed webhook was contradicted by its provider's API");
        }
        found.contradictions.push(verdict);
    }
    Ok(found)
}
