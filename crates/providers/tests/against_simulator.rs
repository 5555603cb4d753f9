//! Every call of the two clients against the simulator: the typed answers, the error
//! classes, and (the simulator checks each Stripe request and 200 answer against Stripe's
//! OpenAPI description) that nothing the clients send or read departs from it.

use std::time::Duration;

use coachdesk_domain::{Currency, Money};
use coachdesk_providers::{CalendlyApi, CheckoutRequest, ProviderError, RefundRequest, StripeApi};
use coachdesk_sim::{SimClient, SimConfig, Simulator};

const KEY: &str = "sk_test_providers_suite";
const TOKEN: &str = "calendly-token-providers-suite";

fn start() -> (Simulator, SimClient, StripeApi, CalendlyApi) {
    let sim = Simulator::start(SimConfig {
        stripe_api_key: Some(KEY.into()),
        calendly_token: TOKEN.into(),
        ..SimConfig::default()
    })
    .expect("simulator");
    let client = sim.client();
    let stripe = StripeApi::new(&format!("{}/", sim.base_url()), KEY).expect("stripe");
    let calendly = CalendlyApi::new(sim.base_url(), TOKEN, Duration::from_secs(5)).expect("cal");
    (sim, client, stripe, calendly)
}

fn money(minor: i64, code: &str) -> Money {
    Money::new(minor, Currency::parse(code).expect("currency"))
}

/// No Stripe request or 200 answer outside the description, and every POST keyed.
fn assert_faithful(client: &SimClient) {
    let log = client.requests(None, Some("/v1/")).expect("log");
    assert!(!log.is_empty());
    for r in &log {
        assert!(
            r.invalid_request.is_none() && r.invalid_response.is_empty(),
            "{} {} departs from the description: {r:#?}",
            r.method,
            r.path
        );
        assert!(
            r.method != "POST" || r.idempotency_key.is_some(),
            "{} without an Idempotency-Key",
            r.path
        );
    }
}

#[tokio::test]
async fn every_stripe_call_matches_the_description_and_reads_back() {
    let (_sim, client, stripe, _) = start();
    let now = client.advance_clock(0).expect("clock");
    let eur = stripe
        .create_payment_link("Coaching", money(15000, "EUR"), "st-1")
        .await
        .expect("EUR link");
    let yen = stripe
        .create_payment_link("Intro", money(5000, "JPY"), "st-2")
        .await
        .expect("JPY link");
    assert!(eur.url.starts_with("http"), "{eur:?}");
    let prices = client
        .requests(Some("POST"), Some("/v1/prices"))
        .expect("log");
    assert!(prices[1].body.contains("unit_amount=5000") && prices[1].body.contains("currency=jpy"));
    assert_ne!(eur.payment_link, yen.payment_link);

    // A per-booking Checkout Session (recovery link), paid, then refunded in two parts.
    let request = CheckoutRequest {
        booking_id: "bk_1".into(),
        client_reference_id: "invitee-uuid-1".into(),
        product_name: "Coaching".into(),
        amount: money(15000, "EUR"),
        customer_email: Some("dana@example.com".into()),
        success_url: "https://relay.example.com/paid?session_id={CHECKOUT_SESSION_ID}".into(),
        cancel_url: None,
        expires_at: now + 3600,
    };
    let session = stripe
        .create_checkout_session(&request, "bk_1-checkout")
        .await
        .expect("session");
    assert!(
        session.id.starts_with("cs_") && session.url.is_some(),
        "{session:?}"
    );
    let again = stripe
        .create_checkout_session(&request, "bk_1-checkout")
        .await
        .expect("same key");
    assert_eq!(again, session, "the same key gives the same session");
    let paid = client.pay_session(&session.id, false).expect("pay");
    let pi = paid["payment_intent"].as_str().expect("pi").to_owned();
    // Read back as Stripe reports it: what a webhook about it is checked against.
    let seen = stripe
        .checkout_session(&session.id)
        .await
        .expect("read back");
    assert_eq!(
        (
            seen.status.as_deref(),
            seen.payment_status.as_deref(),
            seen.amount_total,
            seen.currency.as_deref(),
            seen.payment_intent.as_deref(),
            seen.client_reference_id.as_deref(),
            seen.booking_id.as_deref(),
        ),
        (
            Some("complete"),
            Some("paid"),
            Some(15000),
            Some("eur"),
            Some(pi.as_str()),
            Some("invitee-uuid-1"),
            Some("bk_1"),
        )
    );
    let unknown = stripe
        .checkout_session("cs_test_forged")
        .await
        .expect_err("no such session");
    assert!(
        matches!(unknown, ProviderError::Permanent { status: 404, .. }),
        "{unknown:?}"
    );
    let part = RefundRequest {
        payment_intent: pi.clone(),
        amount: Some(money(5000, "EUR")),
        booking_id: "bk_1".into(),
        cause: "coach:1".into(),
    };
    let first = stripe
        .refund(&part, "bk_1-refund:coach:1")
        .await
        .expect("refund");
    assert_eq!(first.status, "succeeded");
    let rest = RefundRequest {
        amount: None,
        cause: "cancellation".into(),
        ..part.clone()
    };
    stripe
        .refund(&rest, "bk_1-refund:cancellation")
        .await
        .expect("the remainder");
    let refused = stripe
        .refund(&rest, "bk_1-refund:other")
        .await
        .expect_err("nothing left");
    assert!(!refused.is_transient(), "{refused}");
    assert!(
        refused.provider_message().contains("already been refunded"),
        "{refused}"
    );

    // A request the description allows but Stripe refuses: a permanent 400, with its words.
    let late = CheckoutRequest {
        expires_at: now + 25 * 3600,
        ..request.clone()
    };
    let err = stripe
        .create_checkout_session(&late, "bk_2-checkout")
        .await
        .expect_err("too late");
    assert!(
        matches!(err, ProviderError::Permanent { status: 400, .. }),
        "{err:?}"
    );

    // Events, newest first, paged with starting_after: all of them, each once.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = stripe
            .list_events(Some(now - 60), after.as_deref(), 2)
            .await
            .expect("events");
        after = page
            .events
            .last()
            .and_then(|e| e["id"].as_str())
            .map(str::to_owned);
        seen.extend(page.events);
        if !page.has_more {
            break;
        }
    }
    let mut ids: Vec<_> = seen.iter().filter_map(|e| e["id"].as_str()).collect();
    ids.reverse();
    let all: Vec<_> = client.stripe_events().expect("events");
    let expected: Vec<_> = all.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids, expected);
    assert!(expected.len() >= 3, "{expected:?}");
    assert_faithful(&client);
}

#[tokio::test]
async fn every_calendly_call_reads_the_simulators_answers() {
    let (_sim, client, _, calendly) = start();
    let me = calendly.current_user().await.expect("me");
    let types = calendly.event_types(&me.uri).await.expect("types");
    assert!(
        types.iter().any(|t| t["slug"] == "coaching-60"),
        "{types:?}"
    );
    let start = client.advance_clock(0).expect("clock");
    // More than one page (the client follows next_page_token).
    let mut booked = Vec::new();
    for i in 0..23 {
        booked.push(
            client
                .book(
                    "coaching-60",
                    &format!("C{i}"),
                    &format!("c{i}@example.com"),
                )
                .expect("book"),
        );
    }
    let since = time::OffsetDateTime::from_unix_timestamp(start - 60)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("rfc3339");
    let events = calendly
        .scheduled_events(&me.uri, &since)
        .await
        .expect("events");
    assert_eq!(events.len(), booked.len());
    let invitees = calendly
        .invitees(&booked[0].event_uuid)
        .await
        .expect("invitees");
    assert_eq!(invitees[0]["uri"], booked[0].invitee_uri.as_str());
    let active = calendly
        .invitee(&booked[0].invitee_uri)
        .await
        .expect("one invitee");
    assert_eq!(active.status.as_deref(), Some("active"));
    calendly
        .cancel_event(&booked[0].event_uuid, "Coach is ill")
        .await
        .expect("cancel");
    calendly
        .cancel_event(&booked[0].event_uuid, "Coach is ill")
        .await
        .expect("a second cancel reaches the same goal");
    let invitees = calendly
        .invitees(&booked[0].event_uuid)
        .await
        .expect("invitees");
    assert_eq!(invitees[0]["status"], "canceled");
    let canceled = calendly
        .invitee(&booked[0].invitee_uri)
        .await
        .expect("one invitee");
    assert_eq!(
        (
            canceled.status.as_deref(),
            canceled.canceler_type.as_deref(),
            canceled.rescheduled
        ),
        (Some("canceled"), Some("host"), Some(false))
    );
    let forged = format!(
        "{}/scheduled_events/{}/invitees/no-such-invitee",
        client.base_url(),
        booked[0].event_uuid
    );
    let missing = calendly.invitee(&forged).await.expect_err("404");
    assert!(
        matches!(missing, ProviderError::Permanent { status: 404, .. }),
        "{missing:?}"
    );
    let not_a_uri = calendly
        .invitee("../../users/me")
        .await
        .expect_err("refused");
    assert!(matches!(
        not_a_uri,
        ProviderError::Permanent { status: 400, .. }
    ));

    let sub = calendly
        .create_webhook_subscription(
            "https://relay.example.com/hooks/calendly",
            &["invitee.created", "invitee.canceled"],
            &me,
            "signing-key",
        )
        .await
        .expect("subscription");
    assert_eq!(sub.state, "active");
    let listed = calendly.webhook_subscriptions(&me).await.expect("list");
    assert_eq!(listed, std::slice::from_ref(&sub));
    calendly
        .delete_webhook_subscription(coachdesk_domain::provider::uuid_of(&sub.uri))
        .await
        .expect("delete");
    assert!(calendly
        .webhook_subscriptions(&me)
        .await
        .expect("list")
        .is_empty());

    let wrong = CalendlyApi::new(client.base_url(), "nope", Duration::from_secs(5)).expect("c");
    let err = wrong.current_user().await.expect_err("401");
    assert!(!err.is_transient(), "{err}");
}

/// Found by the chaos harness: async-stripe 0.41's `Currency` enum has no KWD (nor any
/// three-decimal currency), so a KWD session type could get neither a payment link nor a
/// recovery Checkout Session ("Stripe does not know the currency"), and a KWD refund was
/// made at Stripe but its answer could not be read: the booking was flagged "refund failed".
#[tokio::test]
async fn three_decimal_currencies_get_links_and_checkout_sessions() {
    let (_sim, client, stripe, _) = start();
    let now = client.advance_clock(0).expect("clock");
    let link = stripe
        .create_payment_link("Deep dive", money(45500, "KWD"), "st-kwd")
        .await
        .expect("KWD link");
    assert!(link.payment_link.starts_with("plink_"), "{link:?}");
    let prices = client
        .requests(Some("POST"), Some("/v1/prices"))
        .expect("log");
    assert_eq!(prices.len(), 1, "{prices:#?}");
    assert!(
        prices[0].body.contains("unit_amount=45500") && prices[0].body.contains("currency=kwd"),
        "{}",
        prices[0].body
    );
    let session = stripe
        .create_checkout_session(
            &CheckoutRequest {
                booking_id: "bk_kwd".into(),
                client_reference_id: "invitee-uuid-kwd".into(),
                product_name: "Deep dive".into(),
                amount: money(45500, "KWD"),
                customer_email: None,
                success_url: "https://relay.example.com/paid".into(),
                cancel_url: None,
                expires_at: now + 3600,
            },
            "bk_kwd-checkout",
        )
        .await
        .expect("KWD checkout session");
    let paid = client.pay_session(&session.id, false).expect("pay");
    assert_eq!(paid["amount_total"], 45500, "{paid}");
    assert_eq!(paid["currency"], "kwd", "{paid}");
    // A refund of a KWD payment is made and read back, not taken for a failure.
    let pi = paid["payment_intent"].as_str().expect("pi").to_owned();
    let refund = stripe
        .refund(
            &RefundRequest {
                payment_intent: pi.clone(),
                amount: Some(money(15166, "KWD")),
                booking_id: "bk_kwd".into(),
                cause: "coach:1".into(),
            },
            "bk_kwd-refund:coach:1",
        )
        .await
        .expect("KWD refund");
    assert_eq!(refund.status, "succeeded");
    let seen = stripe.list_refunds(&pi).await.expect("KWD refunds listed");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].id, refund.id);
    assert_eq!(seen[0].amount_minor, 15166);
    assert_eq!(seen[0].cause.as_deref(), Some("coach:1"));
    assert_eq!(seen[0].booking_id.as_deref(), Some("bk_kwd"));
    assert_faithful(&client);
}
