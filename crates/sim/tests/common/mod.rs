//! Helpers shared by the simulator's tests.
#![allow(dead_code)]

use coachdesk_sim::SimClient;
use serde_json::{json, Value};

/// A 150.00 EUR Checkout Session for client `reference`, open for an hour of the
/// simulator's clock.
pub fn checkout(c: &SimClient, reference: &str) -> Value {
    let t = c.advance_clock(0).unwrap();
    let p = json!({"mode": "payment", "success_url": "https://x/ok", "client_reference_id": reference, "expires_at": t + 3600,
        "line_items": [{"price_data": {"currency": "eur", "unit_amount": 15000, "product_data": {"name": "C"}}, "quantity": 1}]});
    c.stripe("POST", "/v1/checkout/sessions", &p, None)
        .unwrap()
        .json()
        .unwrap()
}

/// The last segment of a Calendly URI (a subscription's UUID).
pub fn uuid_of(uri: &Value) -> String {
    uri.as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

/// A Stripe `GET` or `DELETE` of `path` with no parameters, answered as JSON.
pub fn stripe_json(c: &SimClient, method: &str, path: &str) -> Value {
    c.stripe(method, path, &Value::Null, None)
        .unwrap()
        .json()
        .unwrap()
}

/// The Calendly user the token belongs to (`/users/me`'s resource).
pub fn calendly_me(c: &SimClient) -> Value {
    c.calendly("GET", "/users/me", &Value::Null)
        .unwrap()
        .json()
        .unwrap()["resource"]
        .clone()
}
