//! Sample data for demo mode: session types and bookings in every interesting state,
//! made by feeding provider-shaped events through the real apply path, so the demo's
//! audit timelines are real ones.

use coachdesk_domain::provider::Provider;
use coachdesk_domain::session_type::{SessionTypeInput, SessionTypeSpec};
use coachdesk_domain::RefundTier;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use coachdesk_store::{Source, Store, StoreError};

use crate::calendly::{rfc3339, InviteeBody};

const SEEDED: &str = "demo.seeded";
const USER: &str = "https://api.calendly.com/users/DEMOUSER";

/// Calendly event types of the demo (the simulator serves the same URIs).
pub const DEMO_EVENT_TYPES: [(&str, &str); 3] = [
    (
        "https://api.calendly.com/event_types/DEMO-ET-60",
        "Coaching call (60 min)",
    ),
    (
        "https://api.calendly.com/event_types/DEMO-ET-30",
        "Intro call (30 min)",
    ),
    (
        "https://api.calendly.com/event_types/DEMO-ET-90",
        "Deep dive (90 min)",
    ),
];

/// Duration (minutes), price and currency of the demo's session types, in the order of
/// [`DEMO_EVENT_TYPES`] (the demo's scripted client pays these amounts at the simulator).
pub const DEMO_TERMS: [(u32, &str, &str); 3] = [
    (60, "150.00", "EUR"),
    (30, "60.00", "EUR"),
    (90, "25000", "JPY"),
];

/// Seeds the demo once per database; later calls do nothing.
pub fn seed_demo(store: &mut Store, now: OffsetDateTime) -> Result<(), StoreError> {
    if store.setting(SEEDED)?.is_some() {
        return Ok(());
    }
    for spec in demo_session_types().map_err(StoreError::Corrupt)? {
        store.insert_session_type(&spec)?;
    }
    let bodies = demo_events(now);
    store.apply_provider_batch(
        bodies.iter().map(|(p, b)| (*p, b.as_slice())),
        Source::App,
        now,
    )?;
    // The samples' notices and money movements are history, not work: the invented
    // payment ids exist at no Stripe (nor the simulator), and only what happens after
    // the seed is news for the coach.
    store.settle_pending_as_history("demo sample data", now)?;
    store.set_setting(SEEDED, &rfc3339(now))
}

/// The demo's session types, one per [`DEMO_EVENT_TYPES`] entry.
pub fn demo_session_types() -> Result<Vec<SessionTypeSpec>, String> {
    DEMO_EVENT_TYPES
        .iter()
        .zip(DEMO_TERMS)
        .map(|((uri, name), (minutes, price, currency))| {
            sample_session_type(name, minutes, price, currency, uri)
        })
        .collect()
}

/// The provider bodies (Calendly and Stripe, as they send them) of the demo's bookings,
/// timed around `now`.
pub fn demo_events(now: OffsetDateTime) -> Vec<(Provider, Vec<u8>)> {
    let et60 = DEMO_EVENT_TYPES[0].0;
    let et90 = DEMO_EVENT_TYPES[2].0;
    let hours = |h: i64| now + Duration::hours(h);
    let mut events: Vec<(Provider, Value)> = Vec::new();

    // Dana: booked and paid, session in two days.
    let dana = Invitee::new(
        "DANA",
        "Dana Client",
        "dana@example.com",
        et60,
        hours(48),
        60,
        hours(-20),
    );
    events.push((Provider::Calendly, dana.created()));
    events.push((
        Provider::Stripe,
        checkout(
            "evt_demo_dana",
            "cs_demo_dana",
            "pi_demo_dana",
            "DANA",
            15000,
            "eur",
            "paid",
            hours(-19),
        ),
    ));

    // Alex: booked, not paid yet.
    let alex = Invitee::new(
        "ALEX",
        "Alex Rivera",
        "alex@example.com",
        et60,
        hours(72),
        60,
        hours(-2),
    );
    events.push((Provider::Calendly, alex.created()));

    // Sam: paid, then cancelled four days ahead: a full refund on its way.
    let sam = Invitee::new(
        "SAM",
        "Sam Okafor",
        "sam@example.com",
        et60,
        hours(120),
        60,
        hours(-48),
    );
    events.push((Provider::Calendly, sam.created()));
    events.push((
        Provider::Stripe,
        checkout(
            "evt_demo_sam",
            "cs_demo_sam",
            "pi_demo_sam",
            "SAM",
            15000,
            "eur",
            "paid",
            hours(-47),
        ),
    ));
    events.push((
        Provider::Calendly,
        sam.canceled(hours(-3), "invitee", "Travelling that week", None),
    ));

    // Kim: paid, then moved to another day; the payment goes with the booking.
    let kim_old = Invitee::new(
        "KIM1",
        "Kim Lee",
        "kim@example.com",
        et90,
        hours(30),
        90,
        hours(-70),
    );
    let kim_new = Invitee::new(
        "KIM2",
        "Kim Lee",
        "kim@example.com",
        et90,
        hours(150),
        90,
        hours(-5),
    );
    events.push((Provider::Calendly, kim_old.created()));
    events.push((
        Provider::Stripe,
        checkout(
            "evt_demo_kim",
            "cs_demo_kim",
            "pi_demo_kim",
            "KIM1",
            25000,
            "jpy",
            "paid",
            hours(-69),
        ),
    ));
    events.push((
        Provider::Calendly,
        kim_old.canceled(hours(-5), "invitee", "Rescheduled", Some(&kim_new.uri)),
    ));
    events.push((Provider::Calendly, kim_new.created_from(&kim_old.uri)));

    // Jo: paid twice for one session: flagged for the coach.
    let jo = Invitee::new(
        "JO",
        "Jo Martin",
        "jo@example.com",
        et60,
        hours(26),
        60,
        hours(-30),
    );
    events.push((Provider::Calendly, jo.created()));
    events.push((
        Provider::Stripe,
        checkout(
            "evt_demo_jo1",
            "cs_demo_jo1",
            "pi_demo_jo1",
            "JO",
            15000,
            "eur",
            "paid",
            hours(-29),
        ),
    ));
    events.push((
        Provider::Stripe,
        checkout(
            "evt_demo_jo2",
            "cs_demo_jo2",
            "pi_demo_jo2",
            "JO",
            15000,
            "eur",
            "paid",
            hours(-28),
        ),
    ));

    // Ray: a session last week that took place.
    let ray = Invitee::new(
        "RAY",
        "Ray Chen",
        "ray@example.com",
        et60,
        hours(-100),
        60,
        hours(-300),
    );
    events.push((Provider::Calendly, ray.created()));
    events.push((
        Provider::Stripe,
        checkout(
            "evt_demo_ray",
            "cs_demo_ray",
            "pi_demo_ray",
            "RAY",
            15000,
            "eur",
            "paid",
            hours(-290),
        ),
    ));

    events
        .into_iter()
        .map(|(provider, body)| (provider, body.to_string().into_bytes()))
        .collect()
}

/// A sample session type sold by `uri`: 100% back up to 48 h before, 50% up to 24 h.
pub fn sample_session_type(
    name: &str,
    duration_minutes: u32,
    price: &str,
    currency: &str,
    uri: &str,
) -> Result<SessionTypeSpec, String> {
    let tier = |min_hours_before, percent| RefundTier {
        min_hours_before,
        percent,
    };
    SessionTypeInput {
        name,
        duration_minutes,
        price,
        currency,
        refund_tiers: vec![tier(48, 100), tier(24, 50)],
        calendly_event_type_uri: Some(uri),
        payment_window_minutes: None,
    }
    .validate()
    .map_err(|problems| format!("sample session type {name}: {problems:?}"))
}

struct Invitee {
    uri: String,
    event_uri: String,
    name: &'static str,
    email: &'static str,
    event_type: &'static str,
    start: OffsetDateTime,
    minutes: i64,
    booked: OffsetDateTime,
}

impl Invitee {
    fn new(
        id: &str,
        name: &'static str,
        email: &'static str,
        event_type: &'static str,
        start: OffsetDateTime,
        minutes: i64,
        booked: OffsetDateTime,
    ) -> Self {
        let event_uri = format!("https://api.calendly.com/scheduled_events/DEMO-EV-{id}");
        Self {
            uri: format!("{event_uri}/invitees/{id}"),
            event_uri,
            name,
            email,
            event_type,
            start,
            minutes,
            booked,
        }
    }

    fn payload(&self) -> Value {
        InviteeBody {
            uri: &self.uri,
            event_uri: &self.event_uri,
            name: self.name,
            email: self.email,
            event_name: "Coaching",
            event_type: self.event_type,
            start: self.start,
            end: self.start + Duration::minutes(self.minutes),
            booked: self.booked,
        }
        .payload()
    }

    fn envelope(&self, event: &str, at: OffsetDateTime, payload: Value) -> Value {
        json!({"event": event, "created_at": rfc3339(at), "created_by": USER, "payload": payload})
    }

    fn created(&self) -> Value {
        self.envelope("invitee.created", self.booked, self.payload())
    }

    fn created_from(&self, old: &str) -> Value {
        let mut payload = self.payload();
        payload["old_invitee"] = json!(old);
        self.envelope("invitee.created", self.booked, payload)
    }

    fn canceled(
        &self,
        at: OffsetDateTime,
        by: &str,
        reason: &str,
        new_invitee: Option<&str>,
    ) -> Value {
        let mut payload = self.payload();
        payload["status"] = json!("canceled");
        payload["rescheduled"] = json!(new_invitee.is_some());
        payload["new_invitee"] = json!(new_invitee);
        payload["cancellation"] = json!({
            "canceled_by": self.name, "reason": reason, "canceler_type": by, "created_at": rfc3339(at)
        });
        self.envelope("invitee.canceled", at, payload)
    }
}

#[allow(clippy::too_many_arguments)]
fn checkout(
    event_id: &str,
    session: &str,
    payment_intent: &str,
    reference: &str,
    amount: i64,
    currency: &str,
    payment_status: &str,
    at: OffsetDateTime,
) -> Value {
    json!({
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "created": at.unix_timestamp(),
        "livemode": false,
        "data": {"object": {
            "id": session,
            "object": "checkout.session",
            "amount_total": amount,
            "currency": currency,
            "client_reference_id": reference,
            "payment_intent": payment_intent,
            "payment_status": payment_status,
            "status": "complete",
            "mode": "payment",
            "metadata": {},
        }},
    })
}
