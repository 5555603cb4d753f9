//! Fixtures shared by the store's integration tests.

use std::path::PathBuf;

use coachdesk_store::Store;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");

/// A provider sample body from `tests/fixtures/`.
pub fn fixture(provider: &str, name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{provider}/{name}.json")).expect("fixture")
}

/// Stripe's `checkout.session.completed` sample as a payment link makes it: no booking id in
/// the metadata, so it is routed by `client_reference_id` (the invitee UUID).
pub fn paid_through_link() -> Vec<u8> {
    let mut paid: serde_json::Value =
        serde_json::from_slice(&fixture("stripe", "checkout.session.completed")).unwrap();
    paid["data"]["object"]["metadata"] = serde_json::json!({});
    paid.to_string().into_bytes()
}

/// A store on a fresh file with the fixtures' event type mapped at 150.00 EUR
/// (100% back up to 48 h before, 50% up to 24 h).
pub fn store() -> (tempfile::TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coachdesk.sqlite");
    let mut store = Store::open(&path).unwrap();
    store.insert_session_type(&coaching()).unwrap();
    (dir, path, store)
}

/// The fixtures' session type as the desk validates it: 150.00 EUR, 100% back up to 48 h
/// before, 50% up to 24 h.
pub fn coaching() -> coachdesk_domain::session_type::SessionTypeSpec {
    use coachdesk_domain::session_type::SessionTypeInput;
    SessionTypeInput {
        name: "Coaching",
        duration_minutes: 60,
        price: "150",
        currency: "EUR",
        // 100% up to 48 h before, 50% up to 24 h before.
        refund_tiers: coachdesk_domain::RefundPolicy::default().tiers().to_vec(),
        calendly_event_type_uri: Some("https://api.calendly.com/event_types/ETY0000000000060"),
        payment_window_minutes: None,
    }
    .validate()
    .unwrap()
}

/// Applies the fixtures' `invitee.created` (the booking, not paid yet) at `now`.
pub fn book(store: &mut Store, now: time::OffsetDateTime) -> coachdesk_store::Applied {
    use coachdesk_domain::provider::Provider;
    use coachdesk_store::Source;
    store
        .apply_provider_event(
            Provider::Calendly,
            &fixture("calendly", "invitee.created"),
            Source::Relay,
            now,
        )
        .unwrap()
}

/// Applies the fixtures' `invitee.created` then its payment through the link, at `now`;
/// answers the booking's id.
pub fn book_and_pay(store: &mut Store, now: time::OffsetDateTime) -> coachdesk_domain::BookingId {
    use coachdesk_domain::provider::Provider;
    use coachdesk_store::Source;
    book(store, now);
    store
        .apply_provider_event(Provider::Stripe, &paid_through_link(), Source::Relay, now)
        .unwrap()
        .booking_id
        .expect("the payment is applied to a booking")
}
