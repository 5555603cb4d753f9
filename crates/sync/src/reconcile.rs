//! Reconciliation: recovers what the webhooks missed, from the providers' own APIs.
//!
//! - Stripe: `GET /v1/events` since the stored cursor (created time, with a margin) into
//!   the same inbox (`Source::Reconcile`). Ids are the webhooks' ids, so an event that did
//!   arrive is a duplicate and changes nothing.
//! - Calendly: scheduled events and their invitees are compared with local bookings
//!   ([`calendly_facts`], pure); each missing fact is fed as a Calendly-shaped webhook body
//!   (the same envelope, so the same parser and dedup key apply).
//!
//! The result is a [`ReconcileReport`] saying what was fixed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coachdesk_domain::provider::Provider;
use coachdesk_domain::Booking;
use coachdesk_providers::{CalendlyApi, ProviderError, StripeApi};
use coachdesk_store::{Source, Store};
use serde::Serialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::{lock, SyncError};

/// The setting holding the `created` time (unix seconds) of the newest Stripe event read.
pub const STRIPE_EVENTS_CURSOR: &str = "sync.stripe_events_cursor";
/// Stripe keeps events for 30 days.
const STRIPE_HORIZON: Duration = Duration::from_secs(30 * 24 * 3600);
/// Events created in the same second as the cursor may not all have been listed.
const CURSOR_MARGIN_SECS: i64 = 60;

/// What a reconciliation found and fixed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    pub stripe_events_read: usize,
    /// Stripe events the inbox did not have (missed webhooks).
    pub stripe_events_recovered: Vec<String>,
    pub calendly_invitees_checked: usize,
    /// Calendly facts fed because the local booking lacked them, as `kind invitee-uri`.
    pub calendly_facts_recovered: Vec<String>,
    /// Sources that could not be read (the other one still ran).
    pub errors: Vec<String>,
}

impl ReconcileReport {
    /// Whether anything was missing.
    pub fn fixed_anything(&self) -> bool {
        !self.stripe_events_recovered.is_empty() || !self.calendly_facts_recovered.is_empty()
    }
}

/// Reads Stripe's events since the cursor into the inbox.
pub async fn stripe_events(
    stripe: &StripeApi,
    store: &Arc<Mutex<Store>>,
    now: OffsetDateTime,
    report: &mut ReconcileReport,
) -> Result<(), SyncError> {
    let stored: Option<i64> = lock(store)
        .setting(STRIPE_EVENTS_CURSOR)?
        .and_then(|v| v.parse().ok());
    let horizon = (now - STRIPE_HORIZON).unix_timestamp();
    let since = stored.map_or(horizon, |c| (c - CURSOR_MARGIN_SECS).max(horizon));
    let mut events: Vec<Value> = Vec::new();
    let mut starting_after: Option<String> = None;
    loop {
        let page = stripe
            .list_events(Some(since), starting_after.as_deref(), 100)
            .await?;
        starting_after = page
            .events
            .last()
            .and_then(|e| e["id"].as_str())
            .map(str::to_owned);
        events.extend(page.events);
        if !page.has_more || starting_after.is_none() {
            break;
        }
    }
    // Stripe lists newest first; apply oldest first, as they happened.
    events.reverse();
    report.stripe_events_read += events.len();
    if events.is_empty() {
        return Ok(());
    }
    let newest = events.iter().filter_map(|e| e["created"].as_i64()).max();
    let bodies: Vec<Vec<u8>> = events
        .iter()
        .map(|e| serde_json::to_vec(e).unwrap_or_default())
        .collect();
    // The events and the cursor past them commit together.
    let cursor = newest.unwrap_or(0).max(stored.unwrap_or(0)).to_string();
    let results = lock(store).apply_provider_batch_with_cursor(
        bodies.iter().map(|b| (Provider::Stripe, b.as_slice())),
        Source::Reconcile,
        now,
        (STRIPE_EVENTS_CURSOR, &cursor),
    )?;
    for (event, applied) in events.iter().zip(&results) {
        if !applied.duplicate {
            report.stripe_events_recovered.push(format!(
                "{} {}",
                event["type"].as_str().unwrap_or("?"),
                event["id"].as_str().unwrap_or("?")
            ));
        }
    }
    Ok(())
}

/// A Calendly fact the local booking lacks, as a webhook body.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingFact {
    pub kind: &'static str,
    pub invitee_uri: String,
    pub body: Value,
}

/// Compares one invitee (with its scheduled event) with the local booking (pure).
pub fn calendly_facts(
    user_uri: &str,
    event: &Value,
    invitee: &Value,
    local: Option<&Booking>,
) -> Vec<MissingFact> {
    let Some(uri) = invitee["uri"].as_str() else {
        return vec![];
    };
    let mut payload = invitee.clone();
    payload["scheduled_event"] = event.clone();
    let envelope = |kind: &'static str, created_at: &Value| MissingFact {
        kind,
        invitee_uri: uri.to_owned(),
        body: json!({
            "event": kind,
            "created_at": created_at,
            "created_by": user_uri,
            "payload": payload,
        }),
    };
    let mut facts = Vec::new();
    if local.is_none() {
        facts.push(envelope("invitee.created", &invitee["created_at"]));
    }
    let canceled = invitee["status"] == "canceled";
    let known_cancel =
        local.is_some_and(|b| b.cancellation.is_some() || b.rescheduled_to.is_some());
    if canceled && !known_cancel {
        let at = if invitee["cancellation"]["created_at"].is_string() {
            &invitee["cancellation"]["created_at"]
        } else {
            &invitee["updated_at"]
        };
        facts.push(envelope("invitee.canceled", at));
    }
    let no_show = &invitee["no_show"];
    if no_show.is_object() && local.is_none_or(|b| !b.is_no_show()) {
        facts.push(envelope("invitee_no_show.created", &no_show["created_at"]));
    }
    facts
}

/// Compares Calendly's scheduled events starting after `since` with local bookings and
/// feeds what is missing.
pub async fn calendly_bookings(
    calendly: &CalendlyApi,
    store: &Arc<Mutex<Store>>,
    since: OffsetDateTime,
    now: OffsetDateTime,
    report: &mut ReconcileReport,
) -> Result<(), SyncError> {
    let user = calendly.current_user().await?;
    let min_start = since.format(&Rfc3339).unwrap_or_default();
    let events = calendly.scheduled_events(&user.uri, &min_start).await?;
    let mut facts = Vec::new();
    for event in &events {
        let Some(event_uri) = event["uri"].as_str() else {
            continue;
        };
        let invitees = calendly
            .invitees(coachdesk_domain::provider::uuid_of(event_uri))
            .await?;
        for invitee in &invitees {
            report.calendly_invitees_checked += 1;
            let local = match invitee["uri"].as_str() {
                Some(uri) => lock(store).booking_by_invitee(uri)?,
                None => None,
            };
            facts.extend(calendly_facts(&user.uri, event, invitee, local.as_ref()));
        }
    }
    if facts.is_empty() {
        return Ok(());
    }
    let bodies: Vec<Vec<u8>> = facts
        .iter()
        .map(|f| serde_json::to_vec(&f.body).unwrap_or_default())
        .collect();
    let results = lock(store).apply_provider_batch(
        bodies.iter().map(|b| (Provider::Calendly, b.as_slice())),
        Source::Reconcile,
        now,
    )?;
    for (fact, applied) in facts.iter().zip(&results) {
        if !applied.duplicate {
            report
                .calendly_facts_recovered
                .push(format!("{} {}", fact.kind, fact.invitee_uri));
        }
    }
    Ok(())
}

/// Both halves; a failing provider is reported and the other still runs.
pub async fn run(
    stripe: Result<StripeApi, ProviderError>,
    calendly: Result<CalendlyApi, ProviderError>,
    store: &Arc<Mutex<Store>>,
    calendly_since: OffsetDateTime,
    now: OffsetDateTime,
) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    match stripe {
        Ok(stripe) => {
            if let Err(err) = stripe_events(&stripe, store, now, &mut report).await {
                report.errors.push(format!("Stripe: {err}"));
            }
        }
        Err(err) => report.errors.push(format!("Stripe: {err}")),
    }
    match calendly {
        Ok(calendly) => {
            if let Err(err) =
                calendly_bookings(&calendly, store, calendly_since, now, &mut report).await
            {
                report.errors.push(format!("Calendly: {err}"));
            }
        }
        Err(err) => report.errors.push(format!("Calendly: {err}")),
    }
    // Refunds and disputes still waiting for a payment Coachdesk never saw belong to other
    // sales on the account: out of the coach's way.
    match lock(store).settle_stale_parked(now) {
        Ok(0) => {}
        Ok(settled) => tracing::info!(settled, "parked events taken as not Coachdesk's"),
        Err(err) => report.errors.push(format!("Coachdesk: {err}")),
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invitee(status: &str) -> Value {
        json!({
            "uri": "https://api.calendly.com/scheduled_events/EV/invitees/INV",
            "status": status,
            "created_at": "2025-01-01T10:00:00.000000Z",
            "updated_at": "2025-01-02T10:00:00.000000Z",
            "cancellation": if status == "canceled" { json!({"created_at": "2025-01-02T09:00:00.000000Z", "canceler_type": "invitee"}) } else { Value::Null },
            "no_show": null,
        })
    }

    #[test]
    fn an_unknown_canceled_invitee_yields_created_and_canceled() {
        let facts = calendly_facts("U", &json!({"uri": "E"}), &invitee("canceled"), None);
        let kinds: Vec<_> = facts.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, ["invitee.created", "invitee.canceled"]);
        assert_eq!(facts[1].body["created_at"], "2025-01-02T09:00:00.000000Z");
        assert_eq!(facts[0].body["payload"]["scheduled_event"]["uri"], "E");
    }

    #[test]
    fn a_known_active_invitee_yields_nothing() {
        let local = Booking::new(coachdesk_domain::BookingId::from_stored("bk_1"));
        assert!(calendly_facts("U", &json!({}), &invitee("active"), Some(&local)).is_empty());
    }
}
