//! The fake Calendly API over loopback, and the shapes of its webhook payloads against the
//! fixture samples.

use std::collections::BTreeSet;

use coachdesk_sim::{SimClient, SimConfig, Simulator};
use serde_json::{json, Value};

mod common;

fn sim() -> (Simulator, SimClient) {
    let sim = Simulator::start(SimConfig::default()).unwrap();
    let client = sim.client();
    (sim, client)
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// Every key path in `want` (objects only; arrays by their first item) exists in `got`.
fn missing_keys(want: &Value, got: &Value, path: &str, out: &mut BTreeSet<String>) {
    match (want, got) {
        // Metadata keys are the product's data, not the provider's shape.
        (Value::Object(_), _) if path.ends_with(".metadata") => {}
        (Value::Object(w), Value::Object(g)) => {
            for (k, v) in w {
                match g.get(k) {
                    Some(gv) => missing_keys(v, gv, &format!("{path}.{k}"), out),
                    None => {
                        out.insert(format!("{path}.{k}"));
                    }
                }
            }
        }
        (Value::Array(w), Value::Array(g)) if !w.is_empty() && !g.is_empty() => {
            missing_keys(&w[0], &g[0], path, out)
        }
        _ => {}
    }
}

fn assert_shape(fixture_name: &str, got: &Value) {
    let want = fixture(fixture_name);
    assert_eq!(want["event"], got["event"], "{fixture_name}");
    let mut missing = BTreeSet::new();
    missing_keys(&want, got, "$", &mut missing);
    assert!(
        missing.is_empty(),
        "{fixture_name}: the sim's payload lacks {missing:?}"
    );
}

#[test]
fn fixture_payloads_parse_and_the_sims_payloads_have_their_shape() {
    for name in [
        "invitee.created",
        "invitee.canceled",
        "invitee_no_show.created",
        "reschedule.invitee.canceled",
        "reschedule.invitee.created",
    ] {
        let v = fixture(&format!("calendly/{name}.json"));
        assert!(
            v["payload"]["uri"].as_str().unwrap().contains("/invitees/"),
            "{name}"
        );
    }
    let (_sim, c) = sim();
    let a = c.book_with(json!({"event_type": "coaching-60", "name": "Dana Client", "email": "dana@example.com",
        "questions_and_answers": [{"question": "What would you like to work on?", "answer": "Career change", "position": 0}]})).unwrap();
    let b = c
        .book("coaching-60", "Eli Client", "eli@example.com")
        .unwrap();
    c.no_show(&a.invitee_uri).unwrap();
    c.cancel_as_invitee(&a.invitee_uuid, "Something came up")
        .unwrap();
    let new = c.reschedule(&b.invitee_uuid, false).unwrap();
    let hooks = c.calendly_webhooks().unwrap();
    let kinds: Vec<&str> = hooks.iter().map(|h| h["event"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "invitee.created",
            "invitee.created",
            "invitee_no_show.created",
            "invitee.canceled",
            "invitee.canceled",
            "invitee.created"
        ]
    );
    assert_shape("calendly/invitee.created.json", &hooks[0]);
    assert_shape("calendly/invitee_no_show.created.json", &hooks[2]);
    assert_shape("calendly/invitee.canceled.json", &hooks[3]);
    assert_shape("calendly/reschedule.invitee.canceled.json", &hooks[4]);
    assert_shape("calendly/reschedule.invitee.created.json", &hooks[5]);
    assert_eq!(
        hooks[3]["payload"]["cancellation"]["canceler_type"],
        "invitee"
    );
    assert_eq!(hooks[4]["payload"]["rescheduled"], true);
    assert_eq!(hooks[4]["payload"]["new_invitee"], json!(new.invitee_uri));
    assert_eq!(hooks[5]["payload"]["old_invitee"], json!(b.invitee_uri));
    assert_eq!(
        hooks[5]["payload"]["scheduled_event"]["uri"],
        json!(new.event_uri)
    );
}

#[test]
fn the_sims_stripe_events_have_the_fixture_shapes() {
    let (_sim, c) = sim();
    let t = c.advance_clock(0).unwrap();
    let params = |r: &str| {
        json!({"mode": "payment", "success_url": "https://x/ok",
        "line_items": [{"price_data": {"currency": "eur", "unit_amount": 15000, "product_data": {"name": "C"}}, "quantity": 1}],
        "client_reference_id": r, "customer_email": "d@example.com", "metadata": {"booking_id": "bk"}, "expires_at": t + 3600})
    };
    let s1 = c
        .stripe("POST", "/v1/checkout/sessions", &params("A"), None)
        .unwrap()
        .json()
        .unwrap();
    let paid = c.pay_session(s1["id"].as_str().unwrap(), false).unwrap();
    let s2 = c
        .stripe("POST", "/v1/checkout/sessions", &params("B"), None)
        .unwrap()
        .json()
        .unwrap();
    c.pay_session(s2["id"].as_str().unwrap(), true).unwrap();
    c.settle_async(s2["id"].as_str().unwrap(), false).unwrap();
    let s3 = c
        .stripe("POST", "/v1/checkout/sessions", &params("C"), None)
        .unwrap()
        .json()
        .unwrap();
    c.expire_session(s3["id"].as_str().unwrap()).unwrap();
    c.set_refund_status(Some("pending")).unwrap();
    let refund = c
        .dashboard_refund(paid["payment_intent"].as_str().unwrap(), Some(7500))
        .unwrap();
    c.settle_refund(refund["id"].as_str().unwrap(), "failed")
        .unwrap();
    c.dispute(paid["payment_intent"].as_str().unwrap()).unwrap();
    let events = c.stripe_events().unwrap();
    let by_type = |t: &str| {
        events
            .iter()
            .find(|e| e["type"] == t)
            .unwrap_or_else(|| panic!("no {t}"))
    };
    for (file, kind) in [
        ("checkout.session.completed", "checkout.session.completed"),
        (
            "checkout.session.async_payment_failed",
            "checkout.session.async_payment_failed",
        ),
        ("checkout.session.expired", "checkout.session.expired"),
        ("charge.refunded.partial", "charge.refunded"),
        ("refund.updated.failed", "refund.updated"),
        ("charge.dispute.created", "charge.dispute.created"),
    ] {
        let want = fixture(&format!("stripe/{file}.json"));
        let mut missing = BTreeSet::new();
        missing_keys(&want, by_type(kind), "$", &mut missing);
        assert!(
            missing.is_empty(),
            "{file}: the sim's event lacks {missing:?}"
        );
    }
}

#[test]
fn auth_is_required() {
    let (_sim, c) = sim();
    let mut bad = c.clone();
    bad.calendly_token = "nope".into();
    let r = bad.calendly("GET", "/users/me", &Value::Null).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json().unwrap()["title"], "Unauthenticated");
    let me = c
        .calendly("GET", "/users/me", &Value::Null)
        .unwrap()
        .json()
        .unwrap();
    assert!(me["resource"]["uri"]
        .as_str()
        .unwrap()
        .starts_with("https://api.calendly.com/users/"));
}

#[test]
fn scheduled_events_paginate_with_next_page_token_and_filter() {
    let (_sim, c) = sim();
    let me = c
        .calendly("GET", "/users/me", &Value::Null)
        .unwrap()
        .json()
        .unwrap();
    let user = me["resource"]["uri"].as_str().unwrap().to_string();
    let mut booked = Vec::new();
    for i in 0..5 {
        booked.push(
            c.book(
                "intro-30",
                &format!("Client {i}"),
                &format!("c{i}@example.com"),
            )
            .unwrap(),
        );
    }
    c.cancel_as_host(&booked[1].invitee_uuid, "Sick").unwrap();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("user", &user).append_pair("count", "2");
        if let Some(t) = &token {
            q.append_pair("page_token", t);
        }
        let page = c
            .calendly(
                "GET",
                &format!("/scheduled_events?{}", q.finish()),
                &Value::Null,
            )
            .unwrap()
            .json()
            .unwrap();
        seen.extend(
            page["collection"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["uri"].as_str().unwrap().to_string()),
        );
        match page["pagination"]["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        booked
            .iter()
            .map(|b| b.event_uri.clone())
            .collect::<Vec<_>>()
    );
    let q = format!("/scheduled_events?user={}&status=canceled", user);
    let canceled = c.calendly("GET", &q, &Value::Null).unwrap().json().unwrap();
    assert_eq!(
        canceled["collection"][0]["cancellation"]["canceler_type"],
        "host"
    );
    let q = format!(
        "/scheduled_events?user={user}&min_start_time={}",
        booked[3].start_time
    );
    let later = c.calendly("GET", &q, &Value::Null).unwrap().json().unwrap();
    assert_eq!(later["collection"].as_array().unwrap().len(), 2);
    let r = c
        .calendly("GET", "/scheduled_events?count=5", &Value::Null)
        .unwrap();
    assert_eq!(
        (r.status, r.json().unwrap()["title"].clone()),
        (400, json!("Invalid Argument"))
    );
    let invitees = c
        .calendly(
            "GET",
            &format!("/scheduled_events/{}/invitees", booked[0].event_uuid),
            &Value::Null,
        )
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        invitees["collection"][0]["uri"],
        json!(booked[0].invitee_uri)
    );
}

#[test]
fn host_cancellation_no_shows_and_webhook_subscriptions() {
    let (_sim, c) = sim();
    let me = common::calendly_me(&c);
    let b = c.book("coaching-60", "Dana", "dana@example.com").unwrap();
    let path = format!("/scheduled_events/{}/cancellation", b.event_uuid);
    let r = c
        .calendly("POST", &path, &json!({"reason": "Payment not received"}))
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json().unwrap()["resource"]["canceler_type"], "host");
    assert_eq!(c.calendly("POST", &path, &json!({})).unwrap().status, 403);
    let event = c
        .calendly(
            "GET",
            &format!("/scheduled_events/{}", b.event_uuid),
            &Value::Null,
        )
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(event["resource"]["status"], "canceled");

    let b2 = c.book("coaching-60", "Eli", "eli@example.com").unwrap();
    let r = c
        .calendly(
            "POST",
            "/invitee_no_shows",
            &json!({"invitee": b2.invitee_uri}),
        )
        .unwrap();
    assert_eq!(r.status, 201);
    let hooks = c.calendly_webhooks().unwrap();
    assert_eq!(hooks.last().unwrap()["event"], "invitee_no_show.created");

    let sub = json!({"url": "http://127.0.0.1:9/hooks/calendly", "events": ["invitee.created", "invitee.canceled"],
                     "organization": me["current_organization"], "user": me["uri"], "scope": "user", "signing_key": "k"});
    let r = c.calendly("POST", "/webhook_subscriptions", &sub).unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json().unwrap()["resource"].clone();
    assert_eq!(created["state"], "active");
    assert_eq!(
        c.calendly("POST", "/webhook_subscriptions", &sub)
            .unwrap()
            .status,
        409
    );
    let uuid = common::uuid_of(&created["uri"]);
    c.disable_subscription(&uuid).unwrap();
    let q = format!(
        "/webhook_subscriptions?organization={}&scope=user",
        me["current_organization"].as_str().unwrap()
    );
    let list = c.calendly("GET", &q, &Value::Null).unwrap().json().unwrap();
    assert_eq!(list["collection"][0]["state"], "disabled");
    assert_eq!(
        c.calendly(
            "DELETE",
            &format!("/webhook_subscriptions/{uuid}"),
            &Value::Null
        )
        .unwrap()
        .status,
        204
    );
    let mut bad = sub.clone();
    bad["events"] = json!(["invitee.exploded"]);
    assert_eq!(
        c.calendly("POST", "/webhook_subscriptions", &bad)
            .unwrap()
            .status,
        400
    );
}
