//! Client data sealed for each coach's apps, on the real `coachdesk-relay` binary and both
//! backends: once an app registered its key, the relay keeps no readable copy of a
//! webhook (its database files hold none of the clients' names, emails or amounts, nor
//! the providers' event ids), the
//! app opens every event it pulls, and a second device registered later opens what
//! arrives after it.

mod support;

use std::time::Duration;

use base64::Engine as _;
use coachdesk_seal::{open, AppIdentity, OpenError};
use coachdesk_signature::sign_header;
use support::http;
use support::*;

const NAME: &str = "Marguerite Oyelaran";
const EMAIL: &str = "marguerite.oyelaran@clients.example";
const AMOUNT: &str = "48213";
const SECOND_NAME: &str = "Tobiah Quennell";

fn api(relay: &Relay, method: &str, path: &str, token: &str, body: &str) -> http::Reply {
    relay.api(method, path, token, body.as_bytes())
}

fn ok(reply: http::Reply) -> serde_json::Value {
    assert_eq!(reply.status, 200, "{}", reply.text());
    serde_json::from_slice(&reply.body).expect("json")
}

/// `tenant create`'s base path and token.
fn tenant(relay: &Relay, name: &str) -> (String, String) {
    let made = relay.create_tenant(name);
    (made.base, made.token)
}

fn stripe_body(id: &str, name: &str) -> String {
    format!(
        r#"{{"id":"{id}","object":"event","livemode":false,"type":"checkout.session.completed","data":{{"object":{{"object":"checkout.session","amount_total":{AMOUNT},"currency":"eur","customer_details":{{"name":"{name}","email":"{EMAIL}"}}}}}}}}"#
    )
}

fn post(relay: &Relay, base: &str, provider: &str, header: &str, sig: &str, body: &str) {
    let r = http::request(
        relay.addr,
        "POST",
        &format!("{base}/hooks/{provider}"),
        &[("Content-Type", "application/json"), (header, sig)],
        body.as_bytes(),
    )
    .expect("post");
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A Stripe event for `name`, signed with `secret`, posted to the tenant at `base`.
fn post_stripe(relay: &Relay, base: &str, secret: &str, id: &str, name: &str) {
    let body = stripe_body(id, name);
    let sig = sign_header(secret.as_bytes(), now(), body.as_bytes());
    post(relay, base, "stripe", "Stripe-Signature", &sig, &body);
}

/// `PUT /v1/app-keys` with the public halves of `keys`: the relay's answer.
fn register(relay: &Relay, base: &str, token: &str, keys: &[&AppIdentity]) -> serde_json::Value {
    let keys: Vec<String> = keys.iter().map(|k| k.public().as_string()).collect();
    ok(api(
        relay,
        "PUT",
        &format!("{base}/v1/app-keys"),
        token,
        &serde_json::json!({ "keys": keys }).to_string(),
    ))
}

/// The events `token` pulls, each opened with `me`.
fn pull_opened(
    relay: &Relay,
    base: &str,
    token: &str,
    me: &AppIdentity,
) -> Vec<Result<String, OpenError>> {
    let page = ok(api(
        relay,
        "GET",
        &format!("{base}/v1/events?after=0"),
        token,
        "",
    ));
    page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            assert_eq!(e["body"], "", "a sealed event carries no readable body");
            let sealed = base64::engine::general_purpose::STANDARD
                .decode(e["sealed"].as_str().expect("sealed"))
                .expect("base64");
            open(&sealed, &[me]).map(|b| String::from_utf8(b).expect("utf8"))
        })
        .collect()
}

/// Every file under `dir`, read whole.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn a_sealed_tenant_keeps_no_client_data_and_its_apps_read_everything() {
    let relay = Relay::start();
    let (base, token) = tenant(&relay, "sealed-coach");
    let laptop = AppIdentity::generate();
    let stripe_secret = "whsec_sealed_coach_endpoint";
    let calendly_key = "calendly-key-of-the-sealed-coach";
    ok(api(
        &relay,
        "PUT",
        &format!("{base}/v1/stripe-signing-secrets"),
        &token,
        &format!("{{\"secrets\":[\"{stripe_secret}\"]}}"),
    ));
    ok(api(
        &relay,
        "PUT",
        &format!("{base}/v1/calendly-signing-key"),
        &token,
        &format!("{{\"key\":\"{calendly_key}\"}}"),
    ));
    // The coach's Stripe restricted key, which the relay must use itself, is kept
    // encrypted: the search below looks for it too.
    let restricted_key = "rk_test_sealed_coach_checkout_key";
    let handed = ok(api(
        &relay,
        "PUT",
        &format!("{base}/v1/stripe-checkout-key"),
        &token,
        &format!("{{\"key\":\"{restricted_key}\"}}"),
    ));
    assert_eq!(handed["checkout_sessions"], true);
    let registered = register(&relay, &base, &token, &[&laptop]);
    assert_eq!(registered["kept"], 1);
    assert_eq!(registered["sealed_before"], 0);
    let bad = api(
        &relay,
        "PUT",
        &format!("{base}/v1/app-keys"),
        &token,
        "{\"keys\":[\"age1x\"]}",
    );
    assert_eq!(bad.status, 400);

    for i in 0..3 {
        post_stripe(
            &relay,
            &base,
            stripe_secret,
            &format!("evt_sealed_{i}"),
            NAME,
        );
    }
    let calendly = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/invitee_created.json"
    ))
    .expect("fixture")
    .replace("Dana Client", NAME)
    .replace("dana.client@example.com", EMAIL);
    let sig = calendly_header(&calendly, calendly_key, now());
    post(
        &relay,
        &base,
        "calendly",
        "Calendly-Webhook-Signature",
        &sig,
        &calendly,
    );

    let opened = pull_opened(&relay, &base, &token, &laptop);
    assert_eq!(opened.len(), 4);
    for body in &opened {
        let body = body.as_ref().expect("the app opens every event");
        assert!(body.contains(NAME) && body.contains(EMAIL), "{body}");
    }

    // A second device, registered later, opens what arrives after it (and is told that
    // what waited for it was sealed before).
    let second = relay.command(&[
        "token",
        "create",
        "--tenant",
        "sealed-coach",
        "--name",
        "phone",
        "--mode",
        "test",
    ]);
    assert!(second.status.success(), "{second:?}");
    let phone_token = String::from_utf8(second.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    let phone = AppIdentity::generate();
    let registered = register(&relay, &base, &phone_token, &[&phone]);
    assert_eq!(registered["kept"], 2);
    assert_eq!(registered["sealed_before"], 4);
    post_stripe(&relay, &base, stripe_secret, "evt_after_phone", SECOND_NAME);
    let on_phone = pull_opened(&relay, &base, &phone_token, &phone);
    assert_eq!(on_phone.len(), 5);
    assert!(on_phone[..4]
        .iter()
        .all(|r| matches!(r, Err(OpenError::NotForUs))));
    assert!(on_phone[4].as_ref().expect("after").contains(SECOND_NAME));
    let on_laptop = pull_opened(&relay, &base, &token, &laptop);
    assert!(on_laptop[4]
        .as_ref()
        .expect("laptop too")
        .contains(SECOND_NAME));

    // The laptop rotates its key: the new one with the retiring one, then the new alone.
    let rotated = AppIdentity::generate();
    assert_eq!(
        register(&relay, &base, &token, &[&rotated, &laptop])["kept"],
        3
    );
    post_stripe(
        &relay,
        &base,
        stripe_secret,
        "evt_during_rotation",
        SECOND_NAME,
    );
    assert_eq!(register(&relay, &base, &token, &[&rotated])["kept"], 2);
    post_stripe(
        &relay,
        &base,
        stripe_secret,
        "evt_after_rotation",
        SECOND_NAME,
    );
    let with_old = pull_opened(&relay, &base, &token, &laptop);
    let with_new = pull_opened(&relay, &base, &token, &rotated);
    assert!(
        with_old[5].is_ok() && with_new[5].is_ok(),
        "during: both keys"
    );
    assert!(
        matches!(with_old[6], Err(OpenError::NotForUs)) && with_new[6].is_ok(),
        "after: the new key only"
    );

    // The relay's database, as a copy of its disk would show it.
    let dir = match relay
        .extra_env
        .iter()
        .find(|(k, _)| k == "COACHDESK_RELAY_DATABASE_URL")
    {
        Some(_) => postgres::server().expect("server").data_dir().to_owned(),
        None => relay.dir.path().to_owned(),
    };
    let files = files_under(&dir);
    assert!(!files.is_empty());
    for (path, bytes) in &files {
        // Nor the providers' event ids: events are deduplicated by a keyed hash of them.
        for needle in [
            NAME,
            SECOND_NAME,
            EMAIL,
            AMOUNT,
            "evt_sealed_1",
            "evt_after_phone",
            "evt_during_rotation",
            restricted_key,
        ] {
            assert!(
                !contains(bytes, needle),
                "{needle:?} found in {}",
                path.display()
            );
        }
    }
}

on_both_backends!(a_sealed_tenant_keeps_no_client_data_and_its_apps_read_everything);

/// A body without the needles of the test above: this test stores some unsealed, and the
/// two tests share the binary's PostgreSQL server (and its files).
fn other_body(id: &str) -> String {
    format!(
        r#"{{"id":"{id}","object":"event","livemode":false,"type":"checkout.session.completed","data":{{"object":{{"object":"checkout.session","amount_total":700,"customer_details":{{"name":"Pat Elsewhere"}}}}}}}}"#
    )
}

/// Two relay processes on one PostgreSQL database: an app key registered through one is
/// used by the other as soon as the database tells it (it had the tenant's keys cached
/// from an earlier webhook), and a removed tenant is gone on the other at once.
fn a_key_registered_through_one_process_seals_on_another() {
    let a = Relay::start();
    let b = a.another_process();
    let (base, token) = tenant(&a, "two-process-coach");
    let secret = "whsec_two_process_coach_secret";
    ok(api(
        &a,
        "PUT",
        &format!("{base}/v1/stripe-signing-secrets"),
        &token,
        &format!("{{\"secrets\":[\"{secret}\"]}}"),
    ));
    let post_to_b = |id: &str| {
        let body = other_body(id);
        let sig = sign_header(secret.as_bytes(), now(), body.as_bytes());
        post(&b, &base, "stripe", "Stripe-Signature", &sig, &body);
    };
    // B reads and caches the tenant's keys (none to seal for yet).
    eventually(
        "B to verify with the secret handed to A",
        Duration::from_secs(5),
        || {
            let body = other_body("evt_plain");
            let sig = sign_header(secret.as_bytes(), now(), body.as_bytes());
            let r = http::request(
                b.addr,
                "POST",
                &format!("{base}/hooks/stripe"),
                &[
                    ("Content-Type", "application/json"),
                    ("Stripe-Signature", &sig),
                ],
                body.as_bytes(),
            )
            .expect("post");
            if r.status == 200 {
                Ok(())
            } else {
                Err(r.status)
            }
        },
    );
    let me = AppIdentity::generate();
    ok(api(
        &a,
        "PUT",
        &format!("{base}/v1/app-keys"),
        &token,
        &format!("{{\"keys\":[\"{}\"]}}", me.public().as_string()),
    ));
    let mut n = 0;
    eventually(
        "B to seal with the key registered on A",
        Duration::from_secs(5),
        || {
            n += 1;
            post_to_b(&format!("evt_after_{n}"));
            // Read through A: a pull makes the pulling process re-read the keys; B must
            // learn of the change from the database.
            let page = ok(api(
                &a,
                "GET",
                &format!("{base}/v1/events?after=0&limit=1000"),
                &token,
                "",
            ));
            let last = page["events"].as_array().and_then(|e| e.last()).cloned();
            match last {
                Some(e) if e["sealed"].is_string() => Ok(()),
                other => Err(other.map(|e| e["key"].clone())),
            }
        },
    );
    let removed = a.command(&["tenant", "remove", "two-process-coach"]);
    assert!(removed.status.success(), "{removed:?}");
    eventually("the tenant to be gone on B", Duration::from_secs(5), || {
        let r = api(&b, "GET", &format!("{base}/v1/events"), &token, "");
        if r.status == 404 {
            Ok(())
        } else {
            Err(r.status)
        }
    });
}

#[test]
fn a_key_registered_through_one_process_seals_on_another_on_postgres() {
    on_db(
        Db::Postgres,
        a_key_registered_through_one_process_seals_on_another,
    );
}
