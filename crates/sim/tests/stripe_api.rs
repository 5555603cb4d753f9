//! The fake Stripe API over loopback: auth, idempotency, errors, pagination, and fidelity
//! to the OpenAPI description for every request shape the product sends.

use coachdesk_sim::spec::stripe_spec;
use coachdesk_sim::{form, SimClient, SimConfig, Simulator};
use serde_json::{json, Value};

fn sim() -> (Simulator, SimClient) {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let client = sim.client();
    (sim, client)
}

/// The Checkout Session request the product sends for a booking.
fn checkout_params(reference: &str, now: i64) -> Value {
    json!({
        "mode": "payment",
        "line_items": [{"price_data": {"currency": "eur", "unit_amount": 15000, "product_data": {"name": "Coaching session (60 min)"}}, "quantity": 1}],
        "client_reference_id": reference,
        "customer_email": "dana.client@example.com",
        "metadata": {"booking_id": "bk_1"},
        "success_url": "https://relay.example.com/paid?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://relay.example.com/pay/coaching-60",
        "expires_at": now + 3600,
    })
}

fn now(client: &SimClient) -> i64 {
    client.advance_clock(0).unwrap()
}

fn assert_valid(method: &str, template: &str, body: &Value) {
    if let Err(problems) = stripe_spec()
        .unwrap()
        .check_response(method, template, body)
    {
        panic!("{method} {template} answer does not match the OpenAPI description: {problems:#?}\n{body:#}");
    }
}

/// Every request shape the product sends is valid against the description, and the
/// simulator's answers validate against the response schemas.
#[test]
fn product_requests_and_sim_answers_match_the_openapi_description() {
    let (_sim, c) = sim();
    let spec = stripe_spec().unwrap();
    let t = now(&c);
    let product =
        json!({"name": "Coaching session (60 min)", "metadata": {"session_type": "coaching-60"}});
    let check = |tpl: &str, p: &Value| {
        let parsed = form::parse(form::encode(p).as_bytes()).unwrap();
        spec.check_request("POST", tpl, &parsed)
            .unwrap_or_else(|v| panic!("{tpl}: {v}"));
    };
    check("/v1/products", &product);
    let r = c.stripe("POST", "/v1/products", &product, None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let prod = r.json().unwrap();
    assert_valid("POST", "/v1/products", &prod);

    let price = json!({"currency": "eur", "unit_amount": 15000, "product": prod["id"]});
    check("/v1/prices", &price);
    let r = c.stripe("POST", "/v1/prices", &price, None).unwrap();
    let price = r.json().unwrap();
    assert_valid("POST", "/v1/prices", &price);

    let link = json!({"line_items": [{"price": price["id"], "quantity": 1}], "metadata": {"session_type": "coaching-60"},
                      "after_completion": {"type": "redirect", "redirect": {"url": "https://relay.example.com/paid"}}});
    check("/v1/payment_links", &link);
    let r = c.stripe("POST", "/v1/payment_links", &link, None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_valid("POST", "/v1/payment_links", &r.json().unwrap());

    let params = checkout_params("INV1", t);
    check("/v1/checkout/sessions", &params);
    let r = c
        .stripe(
            "POST",
            "/v1/checkout/sessions",
            &params,
            Some("bk_1:checkout"),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let session = r.json().unwrap();
    assert_valid("POST", "/v1/checkout/sessions", &session);
    let id = session["id"].as_str().unwrap();

    c.pay("INV1").unwrap();
    let r = c
        .stripe(
            "GET",
            &format!("/v1/checkout/sessions/{id}"),
            &Value::Null,
            None,
        )
        .unwrap();
    let paid = r.json().unwrap();
    assert_eq!(paid["payment_status"], "paid");
    assert_valid("GET", "/v1/checkout/sessions/{session}", &paid);

    let refund = json!({"payment_intent": paid["payment_intent"], "amount": 7500, "reason": "requested_by_customer",
                        "metadata": {"booking_id": "bk_1", "cause": "client_cancel"}});
    check("/v1/refunds", &refund);
    let r = c
        .stripe(
            "POST",
            "/v1/refunds",
            &refund,
            Some("bk_1:refund:client_cancel"),
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let refund = r.json().unwrap();
    assert_valid("POST", "/v1/refunds", &refund);
    let r = c
        .stripe(
            "GET",
            &format!("/v1/refunds/{}", refund["id"].as_str().unwrap()),
            &Value::Null,
            None,
        )
        .unwrap();
    assert_valid("GET", "/v1/refunds/{refund}", &r.json().unwrap());

    let other = c
        .stripe(
            "POST",
            "/v1/checkout/sessions",
            &checkout_params("INV2", t),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    let r = c
        .stripe(
            "POST",
            &format!(
                "/v1/checkout/sessions/{}/expire",
                other["id"].as_str().unwrap()
            ),
            &Value::Null,
            None,
        )
        .unwrap();
    assert_valid(
        "POST",
        "/v1/checkout/sessions/{session}/expire",
        &r.json().unwrap(),
    );

    c.dispute(paid["payment_intent"].as_str().unwrap()).unwrap();
    let r = c
        .stripe("GET", "/v1/events", &json!({"limit": 100}), None)
        .unwrap();
    let events = r.json().unwrap();
    assert_valid("GET", "/v1/events", &events);
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "charge.dispute.created",
            "checkout.session.expired",
            "charge.refunded",
            "checkout.session.completed"
        ]
    );
}

#[test]
fn async_payments_and_refund_failures_produce_valid_events() {
    let (_sim, c) = sim();
    let t = now(&c);
    let s = c
        .stripe(
            "POST",
            "/v1/checkout/sessions",
            &checkout_params("INV9", t),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    let id = s["id"].as_str().unwrap();
    let pending = c.pay_session(id, true).unwrap();
    assert_eq!(pending["payment_status"], "unpaid");
    let r = c
        .stripe(
            "POST",
            "/v1/refunds",
            &json!({"payment_intent": pending["payment_intent"]}),
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400, "no charge to refund yet");
    c.settle_async(id, true).unwrap();
    c.set_refund_status(Some("pending")).unwrap();
    let refund = c
        .stripe(
            "POST",
            "/v1/refunds",
            &json!({"payment_intent": pending["payment_intent"]}),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(refund["status"], "pending");
    let failed = c
        .settle_refund(refund["id"].as_str().unwrap(), "failed")
        .unwrap();
    assert_eq!(failed["status"], "failed");
    let events = c.stripe_events().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
            "charge.refunded",
            "refund.updated"
        ]
    );
    assert_eq!(
        events[3]["data"]["previous_attributes"]["status"],
        "pending"
    );
    for e in &events {
        stripe_spec()
            .unwrap()
            .check_object(e)
            .unwrap_or_else(|p| panic!("{p:#?}"));
    }
    // The failed refund is refundable again.
    let again = c
        .stripe(
            "POST",
            "/v1/refunds",
            &json!({"payment_intent": pending["payment_intent"]}),
            None,
        )
        .unwrap();
    assert_eq!(again.status, 200, "{}", again.text());
}

#[test]
fn unknown_parameters_and_bad_enums_get_stripe_400s_and_are_not_saved_for_idempotency() {
    let (_sim, c) = sim();
    let t = now(&c);
    let mut params = checkout_params("INV1", t);
    params["line_items"][0]["price_data"]["colour"] = json!("blue");
    let r = c
        .stripe("POST", "/v1/checkout/sessions", &params, Some("k1"))
        .unwrap();
    assert_eq!(r.status, 400);
    let e = r.json().unwrap();
    assert_eq!(e["error"]["type"], "invalid_request_error");
    assert_eq!(e["error"]["code"], "parameter_unknown");
    assert_eq!(e["error"]["param"], "line_items[0][price_data][colour]");
    // Validation failures are not saved: the same key now works with good parameters.
    let ok = c
        .stripe(
            "POST",
            "/v1/checkout/sessions",
            &checkout_params("INV1", t),
            Some("k1"),
        )
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.text());

    let r = c
        .stripe(
            "POST",
            "/v1/refunds",
            &json!({"payment_intent": "pi_x", "reason": "changed_mind"}),
            None,
        )
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(r.json().unwrap()["error"]["param"], "reason");

    let r = c
        .stripe(
            "POST",
            "/v1/checkout/sessions",
            &json!({"mode": "payment", "line_items": [{"price": "price_x"}]}),
            None,
        )
        .unwrap();
    assert_eq!(
        r.json().unwrap()["error"]["message"],
        "Missing required param: success_url."
    );

    let mut late = checkout_params("INV1", t);
    late["expires_at"] = json!(t + 25 * 3600);
    let r = c
        .stripe("POST", "/v1/checkout/sessions", &late, None)
        .unwrap();
    assert_eq!(
        (r.status, r.json().unwrap()["error"]["param"].clone()),
        (400, json!("expires_at"))
    );
}

#[test]
fn idempotency_key_replays_the_first_answer_and_rejects_other_parameters() {
    let (_sim, c) = sim();
    let t = now(&c);
    c.stripe(
        "POST",
        "/v1/checkout/sessions",
        &checkout_params("INV1", t),
        None,
    )
    .unwrap();
    let paid = c.pay("INV1").unwrap();
    let pi = paid["payment_intent"].clone();
    let body = json!({"payment_intent": pi, "amount": 5000, "reason": "requested_by_customer"});
    let first = c
        .stripe("POST", "/v1/refunds", &body, Some("bk_1:refund:cancel"))
        .unwrap();
    let second = c
        .stripe("POST", "/v1/refunds", &body, Some("bk_1:refund:cancel"))
        .unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.json().unwrap(), second.json().unwrap());
    assert_eq!(second.header("Idempotent-Replayed"), Some("true"));
    let refunds = c.requests(Some("POST"), Some("/v1/refunds")).unwrap();
    assert_eq!(refunds.len(), 2);
    assert_eq!(
        refunds.iter().filter(|r| !r.replayed).count(),
        1,
        "exactly one refund executed"
    );
    assert_eq!(
        c.stripe_events()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "charge.refunded")
            .count(),
        1
    );

    let other = json!({"payment_intent": pi, "amount": 6000, "reason": "requested_by_customer"});
    let conflict = c
        .stripe("POST", "/v1/refunds", &other, Some("bk_1:refund:cancel"))
        .unwrap();
    assert_eq!(conflict.status, 400);
    assert_eq!(
        conflict.json().unwrap()["error"]["type"],
        "idempotency_error"
    );

    // An executed error is saved and replayed too.
    let too_much = json!({"payment_intent": pi, "amount": 999_999});
    let a = c
        .stripe("POST", "/v1/refunds", &too_much, Some("big"))
        .unwrap();
    assert_eq!(a.status, 400);
    assert_eq!(a.json().unwrap()["error"]["code"], "amount_too_large");
    let b = c
        .stripe("POST", "/v1/refunds", &too_much, Some("big"))
        .unwrap();
    assert_eq!(
        (b.status, b.header("Idempotent-Replayed")),
        (400, Some("true"))
    );

    // Keys are per API key.
    let mut other_account = c.clone();
    other_account.stripe_key = "sk_test_other".into();
    let r = other_account
        .stripe("POST", "/v1/refunds", &other, Some("bk_1:refund:cancel"))
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let rest = other_account
        .stripe("POST", "/v1/refunds", &json!({"payment_intent": pi}), None)
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(rest["amount"], 15000 - 5000 - 6000);
    let none_left = c
        .stripe("POST", "/v1/refunds", &json!({"payment_intent": pi}), None)
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(none_left["error"]["code"], "charge_already_refunded");
}

/// Stripe keeps an `Idempotency-Key` for 24 hours: a day later on the simulator's clock
/// the same key makes a second refund (what the product must guard against).
#[test]
fn idempotency_keys_are_forgotten_after_24_hours_of_the_simulators_clock() {
    let (_sim, c) = sim();
    let t = now(&c);
    c.stripe(
        "POST",
        "/v1/checkout/sessions",
        &checkout_params("INV1", t),
        None,
    )
    .unwrap();
    let pi = c.pay("INV1").unwrap()["payment_intent"].clone();
    let body = json!({"payment_intent": pi, "amount": 1000});
    let first = c
        .stripe("POST", "/v1/refunds", &body, Some("key-1"))
        .unwrap();
    c.advance_clock(23 * 3600).unwrap();
    let within = c
        .stripe("POST", "/v1/refunds", &body, Some("key-1"))
        .unwrap();
    assert_eq!(within.header("Idempotent-Replayed"), Some("true"));
    assert_eq!(first.json().unwrap()["id"], within.json().unwrap()["id"]);
    c.advance_clock(3600).unwrap();
    let after = c
        .stripe("POST", "/v1/refunds", &body, Some("key-1"))
        .unwrap();
    assert_eq!(after.status, 200, "{}", after.text());
    assert_eq!(after.header("Idempotent-Replayed"), None);
    assert_ne!(first.json().unwrap()["id"], after.json().unwrap()["id"]);
}

/// `GET /v1/refunds?payment_intent=`: the payment's refunds, newest first, with their
/// metadata, paged like Stripe's lists, valid against the description.
#[test]
fn refunds_are_listed_by_payment_intent_with_their_metadata() {
    let (_sim, c) = sim();
    let t = now(&c);
    for reference in ["INV1", "INV2"] {
        c.stripe(
            "POST",
            "/v1/checkout/sessions",
            &checkout_params(reference, t),
            None,
        )
        .unwrap();
    }
    let pi1 = c.pay("INV1").unwrap()["payment_intent"].clone();
    let pi2 = c.pay("INV2").unwrap()["payment_intent"].clone();
    let mut made = Vec::new();
    for (i, cause) in ["cancellation", "coach:a1", "coach:a2"].iter().enumerate() {
        let body = json!({"payment_intent": pi1, "amount": 1000 + i, "metadata": {"booking_id": "bk_1", "cause": cause}});
        let r = c.stripe("POST", "/v1/refunds", &body, None).unwrap();
        made.push(r.json().unwrap()["id"].clone());
    }
    c.stripe(
        "POST",
        "/v1/refunds",
        &json!({"payment_intent": pi2, "amount": 500}),
        None,
    )
    .unwrap();
    let r = c
        .stripe(
            "GET",
            "/v1/refunds",
            &json!({"payment_intent": pi1, "limit": 2}),
            None,
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let page = r.json().unwrap();
    assert_valid("GET", "/v1/refunds", &page);
    let ids: Vec<_> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [made[2].clone(), made[1].clone()]);
    assert_eq!(page["has_more"], true);
    assert_eq!(page["data"][0]["metadata"]["cause"], "coach:a2");
    let rest = c
        .stripe(
            "GET",
            "/v1/refunds",
            &json!({"payment_intent": pi1, "limit": 2, "starting_after": made[1]}),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["data"][0]["id"], made[0]);
    assert_eq!(rest["has_more"], false);
    let log = c.requests(Some("GET"), Some("/v1/refunds")).unwrap();
    assert!(
        log.iter()
            .all(|r| r.invalid_request.is_none() && r.invalid_response.is_empty()),
        "{log:#?}"
    );
    let unknown = c
        .stripe(
            "GET",
            "/v1/refunds",
            &json!({"payment_intent": "pi_nope"}),
            None,
        )
        .unwrap();
    assert_eq!(unknown.status, 404);
}

#[test]
fn missing_or_wrong_keys_get_401_with_stripe_error_json() {
    let (sim, c) = sim();
    let r = coachdesk_sim::http::request(
        "GET",
        &format!("{}/v1/events", sim.base_url()),
        &[],
        b"",
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json().unwrap()["error"]["type"], "invalid_request_error");
    let mut live = c.clone();
    live.stripe_key = "sk_live_abc".into();
    let r = live
        .stripe("GET", "/v1/events", &Value::Null, None)
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json().unwrap()["error"]["type"], "invalid_request_error");
    assert_eq!(
        r.json().unwrap()["error"]["code"],
        Value::Null,
        "as Stripe: no code"
    );
    assert!(
        !r.text().contains("sk_live_abc"),
        "the key is not echoed whole"
    );
}

#[test]
fn events_list_newest_first_with_filters_and_pagination() {
    let (_sim, c) = sim();
    let t = now(&c);
    for i in 0..5 {
        c.stripe(
            "POST",
            "/v1/checkout/sessions",
            &checkout_params(&format!("INV{i}"), t),
            None,
        )
        .unwrap();
        c.pay(&format!("INV{i}")).unwrap();
    }
    let all: Vec<String> = c
        .stripe_events()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut q = json!({"limit": 2, "types": ["checkout.session.completed"], "created": {"gte": t - 60}});
        if let Some(a) = &after {
            q["starting_after"] = json!(a);
        }
        let page = c
            .stripe("GET", "/v1/events", &q, None)
            .unwrap()
            .json()
            .unwrap();
        let ids: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        seen.extend(ids.clone());
        if page["has_more"] != true {
            break;
        }
        after = ids.last().cloned();
    }
    assert_eq!(seen, all);
    let r = c
        .stripe("GET", "/v1/events", &json!({"limit": 101}), None)
        .unwrap();
    assert_eq!(
        (r.status, r.json().unwrap()["error"]["param"].clone()),
        (400, json!("limit"))
    );
    let none = c
        .stripe(
            "GET",
            "/v1/events",
            &json!({"created": {"gte": t + 3600}}),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(none["data"], json!([]));
}

#[test]
fn clock_advance_expires_open_sessions() {
    let (_sim, c) = sim();
    let t = now(&c);
    let s = c
        .stripe(
            "POST",
            "/v1/checkout/sessions",
            &checkout_params("INV1", t),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    c.advance_clock(3601).unwrap();
    let got = c
        .stripe(
            "GET",
            &format!("/v1/checkout/sessions/{}", s["id"].as_str().unwrap()),
            &Value::Null,
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(got["status"], "expired");
    assert!(c.pay("INV1").is_err());
    let expired = c.stripe_events().unwrap();
    assert_eq!(expired[0]["type"], "checkout.session.expired");
}

#[test]
fn payment_link_pay_carries_client_reference_id_and_drops_invalid_ones() {
    let (_sim, c) = sim();
    let price = c
        .stripe(
            "POST",
            "/v1/prices",
            &json!({"currency": "jpy", "unit_amount": 5000, "product_data": {"name": "Intro"}}),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    let link = c
        .stripe(
            "POST",
            "/v1/payment_links",
            &json!({"line_items": [{"price": price["id"], "quantity": 1}]}),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    let plink = link["id"].as_str().unwrap();
    let s = c
        .pay_link(plink, "INV-abc_1", "dana@example.com", false)
        .unwrap();
    assert_eq!(
        (
            s["client_reference_id"].as_str(),
            s["payment_link"].as_str(),
            s["amount_total"].as_i64()
        ),
        (Some("INV-abc_1"), Some(plink), Some(5000))
    );
    let s = c
        .pay_link(plink, "bad id!", "dana@example.com", false)
        .unwrap();
    assert!(s["client_reference_id"].is_null());
}

#[test]
fn the_response_check_catches_missing_fields_and_bad_enums() {
    let (_sim, c) = sim();
    let t = now(&c);
    let mut s = c
        .stripe(
            "POST",
            "/v1/checkout/sessions",
            &checkout_params("INV1", t),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    s["payment_status"] = json!("sort_of_paid");
    s.as_object_mut().unwrap().remove("expires_at");
    let problems = stripe_spec()
        .unwrap()
        .check_response("POST", "/v1/checkout/sessions", &s)
        .unwrap_err();
    assert!(
        problems.iter().any(|p| p.contains("$.expires_at")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("sort_of_paid")),
        "{problems:?}"
    );
}

/// The sample webhook bodies shipped with the fixtures validate too (the sim's events are
/// the same shapes with more fields).
#[test]
fn fixture_events_validate_against_the_description() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/stripe");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("openapi")
        {
            continue;
        }
        let event: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(event["object"], "event", "{path:?}");
        n += 1;
    }
    assert!(n >= 8);
}

#[test]
fn an_opened_but_unpaid_link_checkout_expires_with_a_valid_event() {
    let (_sim, c) = sim();
    let price = c
        .stripe(
            "POST",
            "/v1/prices",
            &json!({"currency": "eur", "unit_amount": 15000, "product_data": {"name": "Coaching"}}),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    let link = c
        .stripe(
            "POST",
            "/v1/payment_links",
            &json!({"line_items": [{"price": price["id"], "quantity": 1}]}),
            None,
        )
        .unwrap()
        .json()
        .unwrap();
    let plink = link["id"].as_str().unwrap();
    let opened = c.open_link(plink, "INV-open", "eve@example.com").unwrap();
    assert_eq!(opened["status"], "open");
    assert_eq!(opened["payment_status"], "unpaid");
    assert_eq!(opened["client_reference_id"], "INV-open");
    assert_eq!(opened["payment_link"], plink);
    assert!(
        c.stripe_events().unwrap().is_empty(),
        "opening emits nothing"
    );
    let id = opened["id"].as_str().unwrap();
    c.expire_session(id).unwrap();
    let events = c.stripe_events().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["type"], "checkout.session.expired");
    assert_eq!(
        events[0]["data"]["object"]["client_reference_id"],
        "INV-open"
    );
    stripe_spec()
        .unwrap()
        .check_object(&events[0])
        .unwrap_or_else(|p| panic!("{p:#?}"));
    assert!(
        c.pay_session(id, false).is_err(),
        "an expired session cannot be paid"
    );
    assert!(c.open_link("plink_missing", "INV-open", "e@x").is_err());
}

/// The request log says, per Stripe request, whether the request and the 200 answer
/// match the description: what the product's end-to-end tests assert on.
#[test]
fn the_request_log_records_spec_verdicts_for_requests_and_answers() {
    let (_sim, c) = sim();
    let t = now(&c);
    let ok = c
        .stripe(
            "POST",
            "/v1/checkout/sessions",
            &checkout_params("INV1", t),
            Some("k-ok"),
        )
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.text());
    let bad = c
        .stripe(
            "POST",
            "/v1/refunds",
            &json!({"payment_intent": "pi_x", "reason": "changed_mind"}),
            None,
        )
        .unwrap();
    assert_eq!(bad.status, 400);
    let list = c
        .stripe("GET", "/v1/events", &json!({"limit": "5"}), None)
        .unwrap();
    assert_eq!(list.status, 200);
    let log = c.requests(None, Some("/v1/")).unwrap();
    assert_eq!(log.len(), 3, "{log:#?}");
    assert_eq!(
        (
            log[0].invalid_request.as_deref(),
            log[0].invalid_response.len()
        ),
        (None, 0),
        "{log:#?}"
    );
    let why = log[1].invalid_request.as_deref().expect("a verdict");
    assert!(why.contains("reason"), "{why}");
    assert_eq!(
        (
            log[2].invalid_request.as_deref(),
            log[2].invalid_response.len()
        ),
        (None, 0)
    );

    // An answer missing a required field, or with a value outside an enum, is reported.
    let req = coachdesk_sim::world::Incoming {
        method: "GET".into(),
        path: "/v1/refunds/re_1".into(),
        query: String::new(),
        headers: vec![],
        body: vec![],
    };
    let mut refund = json!({"id": "re_1", "object": "refund", "amount": 100, "balance_transaction": null,
        "charge": "ch_1", "created": 1, "currency": "eur", "metadata": {}, "payment_intent": "pi_1",
        "reason": null, "receipt_number": null, "source_transfer_reversal": null, "status": "succeeded",
        "transfer_reversal": null});
    let good = coachdesk_sim::world::Reply::json(200, refund.clone());
    assert_eq!(coachdesk_sim::stripe::fidelity(&req, &good), (None, vec![]));
    refund.as_object_mut().unwrap().remove("amount");
    refund["reason"] = json!("changed_mind");
    let (_, problems) =
        coachdesk_sim::stripe::fidelity(&req, &coachdesk_sim::world::Reply::json(200, refund));
    assert!(
        problems.iter().any(|p| p.contains("amount"))
            && problems.iter().any(|p| p.contains("reason")),
        "{problems:#?}"
    );
}

/// For every operation the simulator serves, what the description rejects (an unknown
/// parameter, a missing required one) the simulator rejects with Stripe's 400 shape.
#[test]
fn every_served_operation_rejects_unknown_and_missing_parameters() {
    let (_sim, c) = sim();
    let cases: [(&str, &str, Value, &str); 9] = [
        (
            "POST",
            "/v1/products",
            json!({"name": "x", "colour": "red"}),
            "parameter_unknown",
        ),
        (
            "POST",
            "/v1/products",
            json!({"description": "no name"}),
            "parameter_missing",
        ),
        (
            "POST",
            "/v1/prices",
            json!({"currency": "eur", "unit_amount": "1", "product_data": {"name": "x"}, "bogus": "1"}),
            "parameter_unknown",
        ),
        (
            "POST",
            "/v1/prices",
            json!({"unit_amount": "1", "product_data": {"name": "x"}}),
            "parameter_missing",
        ),
        (
            "POST",
            "/v1/payment_links",
            json!({"line_items": [{"price": "price_1", "quantity": "1", "colour": "x"}]}),
            "parameter_unknown",
        ),
        (
            "POST",
            "/v1/checkout/sessions",
            json!({"mode": "refund", "success_url": "https://x"}),
            "parameter_invalid_string",
        ),
        (
            "POST",
            "/v1/refunds",
            json!({"payment_intent": "pi_1", "amount": "ten"}),
            "parameter_invalid_string",
        ),
        (
            "POST",
            "/v1/checkout/sessions/cs_1/expire",
            json!({"bogus": "1"}),
            "parameter_unknown",
        ),
        (
            "GET",
            "/v1/events",
            json!({"created": {"since": "5"}}),
            "parameter_unknown",
        ),
    ];
    for (method, path, params, code) in cases {
        let r = c.stripe(method, path, &params, None).unwrap();
        let body = r.json().unwrap();
        assert_eq!(
            (
                r.status,
                body["error"]["type"].as_str(),
                body["error"]["code"].as_str()
            ),
            (400, Some("invalid_request_error"), Some(code)),
            "{method} {path} {params}: {body:#}"
        );
    }
    for path in ["/v1/checkout/sessions/cs_1", "/v1/refunds/re_1"] {
        let r = c.stripe("GET", path, &json!({"bogus": "1"}), None).unwrap();
        assert_eq!(r.status, 400, "GET {path}?bogus=1: {}", r.text());
    }
}
