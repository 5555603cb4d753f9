//! Fuzz targets, shared by the cargo-fuzz crate (`fuzz/`, libFuzzer) and by the test that
//! replays the saved corpus on the stable toolchain (`tests/fuzz_corpus.rs`).
//!
//! Each target takes arbitrary bytes and checks properties that must hold for every input;
//! a panic is a finding. None of them touches the network or the disk.

use coachdesk_protocol::relay::{
    AckRequest, CalendlyKeyRequest, PaymentLinkTable, Provider, StripeSecretsRequest,
};

use crate::guard::chunked::Chunked;
use crate::guard::head::{self, Framing};
use crate::{paylink, token, webhook};

/// A fuzz target: any bytes in, a panic on a finding.
pub type Target = fn(&[u8]);

/// The targets by name (the corpus directory names under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("signature_header", signature_header),
    ("webhook_key", webhook_key),
    ("api_request", api_request),
    ("request_head", request_head),
];

/// The signature header parser and verifier: the input is `header\nbody`.
pub fn signature_header(data: &[u8]) {
    let (header, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let header = String::from_utf8_lossy(header);
    if let Ok(parsed) = coachdesk_signature::parse_header(&header) {
        assert!(!parsed.v1.is_empty());
    }
    let key: &[u8] = b"whsec_fuzz";
    let _ = coachdesk_signature::verify(&header, body, &[key], 1_700_000_000, 300);
    // What the relay signs, it verifies.
    let signed = coachdesk_signature::sign_header(key, 1_700_000_000, body);
    assert!(coachdesk_signature::verify(&signed, body, &[key], 1_700_000_000, 300).is_ok());
}

/// The deduplication key of Stripe and Calendly bodies.
pub fn webhook_key(data: &[u8]) {
    for provider in [Provider::Stripe, Provider::Calendly] {
        if let Ok(key) = webhook::dedup_key(provider, data) {
            assert!(!key.is_empty());
        }
    }
}

/// What the app's API requests are parsed with: the pull query, the bearer token, and the
/// ack, payment-link and signing-key bodies.
pub fn api_request(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let pairs = paylink::parse_query(&text);
    for name in ["after", "limit", "wait", "invitee_uuid", "invitee_email"] {
        if let Some(v) = paylink::query_param(&pairs, name) {
            let _ = v.parse::<i64>();
        }
    }
    if let Some(t) = token::bearer(&text) {
        let _ = token::hash(t);
    }
    let _ = serde_json::from_slice::<AckRequest>(data);
    let _ = serde_json::from_slice::<CalendlyKeyRequest>(data);
    let _ = serde_json::from_slice::<StripeSecretsRequest>(data);
    if let Ok(table) = serde_json::from_slice::<PaymentLinkTable>(data) {
        for link in &table.links {
            let _ = paylink::valid_slug(&link.slug);
            if paylink::valid_link(&link.url) {
                let _ = paylink::redirect_url(&link.url, Some(&text), Some(&text));
            }
        }
    }
}

/// The guard's request head parser and chunked decoder, and the answer rewriting.
pub fn request_head(data: &[u8]) {
    const MAX_HEAD: usize = 4096;
    const MAX_BODY: usize = 64 * 1024;
    let _ = head::client_response(data, data.first().is_some_and(|b| b & 1 == 1));
    let Ok(Some(h)) = head::parse(data, MAX_HEAD, MAX_BODY) else {
        return;
    };
    assert!(h.len <= data.len() && h.len <= MAX_HEAD);
    let rest = &data[h.len..];
    let body = match h.framing {
        Framing::Empty => Vec::new(),
        Framing::Length(n) => {
            assert!(n <= MAX_BODY);
            rest[..n.min(rest.len())].to_vec()
        }
        Framing::Chunked => {
            // Decoding in two pieces gives what decoding at once gives.
            let mut whole = Vec::new();
            let at_once = Chunked::new(MAX_BODY).feed(rest, &mut whole);
            let split = rest.len() / 2;
            let mut d = Chunked::new(MAX_BODY);
            let mut pieces = Vec::new();
            let in_pieces = d.feed(&rest[..split], &mut pieces).and_then(|a| {
                if d.done() {
                    Ok(a)
                } else {
                    d.feed(&rest[split..], &mut pieces).map(|b| a + b)
                }
            });
            assert_eq!(at_once.is_ok(), in_pieces.is_ok());
            if let (Ok(a), Ok(b)) = (at_once, in_pieces) {
                assert_eq!(a, b);
                assert_eq!(whole, pieces);
                assert!(whole.len() <= MAX_BODY);
            }
            whole
        }
    };
    // What the guard hands tiny_http parses again to the same request.
    let up = head::upstream_request(&h, &body);
    let again = match head::parse(&up, usize::MAX, MAX_BODY) {
        Ok(Some(again)) => again,
        other => panic!(
            "the upstream request does not parse: {other:?}\n{}",
            String::from_utf8_lossy(&up)
        ),
    };
    assert_eq!(again.method, h.method);
    assert_eq!(again.target, h.target);
    assert_eq!(again.fields, h.fields);
    assert_eq!(
        again.framing,
        if body.is_empty() {
            Framing::Empty
        } else {
            Framing::Length(body.len())
        }
    );
}
