//! The webhook signature scheme that Stripe and Calendly share.
//!
//! Both providers sign a webhook with a header `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`
//! where each `v1` is HMAC-SHA256, keyed by the endpoint secret, over `"{t}.{raw body}"`.
//! This crate signs (for the simulator and tests) and verifies (for the relay) that header.
//!
//! It is pure: it never reads the clock (callers pass `now`), does no I/O and does not log.
//! It must not depend on anything beyond the hashing, hex and error crates, so that both the
//! relay and the simulator can use it without pulling in each other's dependencies.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The tolerance Stripe's libraries use by default, in seconds, applied both ways.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a signature header was rejected. The messages are short and safe to send back to
/// the sender: they never quote a secret or an expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header has no `t=` element.
    #[error("signature header has no timestamp")]
    MissingTimestamp,
    /// The header has no `v1=` element (a `v0` alone does not count).
    #[error("signature header has no v1 signature")]
    NoV1Signature,
    /// The timestamp is older than the tolerance allows.
    #[error("signature timestamp is too old")]
    StaleTimestamp,
    /// The timestamp is further in the future than the tolerance allows.
    #[error("signature timestamp is in the future")]
    FutureTimestamp,
    /// No `v1` matched any configured secret.
    #[error("no signature matches the payload")]
    Mismatch,
    /// The header could not be parsed (an element without `=`, a non-numeric timestamp,
    /// two timestamps...).
    #[error("signature header is malformed: {0}")]
    Malformed(&'static str),
}

impl SignatureError {
    /// A stable short code for metrics labels and logs.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::MissingTimestamp => "missing_timestamp",
            SignatureError::NoV1Signature => "no_v1_signature",
            SignatureError::StaleTimestamp => "stale_timestamp",
            SignatureError::FutureTimestamp => "future_timestamp",
            SignatureError::Mismatch => "mismatch",
            SignatureError::Malformed(_) => "malformed",
        }
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The lowercase hex HMAC-SHA256 of `"{timestamp}.{body}"` keyed by `secret`.
pub fn compute_signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// A header value `t=<timestamp>,v1=<signature>` as a provider would send it.
pub fn sign_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        compute_signature(secret, timestamp, body)
    )
}

/// The parts of a signature header that matter: the timestamp and every `v1` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedHeader<'a> {
    pub timestamp: i64,
    pub v1: Vec<&'a str>,
}

/// Parse a header value, ignoring `v0` and unknown schemes.
pub fn parse_header(header: &str) -> Result<ParsedHeader<'_>, SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for element in header.split(',') {
        let element = element.trim();
        if element.is_empty() {
            continue;
        }
        let (name, value) = element
            .split_once('=')
            .ok_or(SignatureError::Malformed("element without '='"))?;
        match name.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed("more than one timestamp"));
                }
                let t = value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("timestamp is not an integer"))?;
                timestamp = Some(t);
            }
            "v1" => v1.push(value.trim()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(ParsedHeader { timestamp, v1 })
}

/// Verify a signature header against the raw body.
///
/// Accepts if any `v1` in the header matches the HMAC under any of `secrets` (several
/// secrets allow rotation), compared in constant time, and the timestamp is within
/// `tolerance_secs` of `now` in either direction. The timestamp is checked after the
/// signature, so that an unsigned header never learns more than "mismatch".
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[&[u8]],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let parsed = parse_header(header)?;
    // Decode each candidate once; a value that is not 32 bytes of hex cannot match.
    let candidates: Vec<[u8; 32]> = parsed
        .v1
        .iter()
        .filter_map(|v| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(v, &mut out).ok().map(|()| out)
        })
        .collect();
    let mut matched = subtle::Choice::from(0u8);
    for secret in secrets {
        let expected = mac(secret, parsed.timestamp, body).finalize().into_bytes();
        for candidate in &candidates {
            matched |= expected.as_slice().ct_eq(candidate.as_slice());
        }
    }
    if !bool::from(matched) {
        return Err(SignatureError::Mismatch);
    }
    let age = now.saturating_sub(parsed.timestamp);
    if age > tolerance_secs {
        return Err(SignatureError::StaleTimestamp);
    }
    if age < -tolerance_secs {
        return Err(SignatureError::FutureTimestamp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
    const SECRET: &[u8] = b"whsec_test_secret";
    const T: i64 = 1492774577;
    const EXPECTED: &str = "88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a";

    #[test]
    fn providers_md_vector_signs() {
        assert_eq!(sign_header(SECRET, T, BODY), format!("t={T},v1={EXPECTED}"));
    }

    #[test]
    fn providers_md_vector_verifies() {
        let header = format!("t={T},v1={EXPECTED}");
        assert_eq!(verify(&header, BODY, &[SECRET], T, 300), Ok(()));
    }

    #[test]
    fn any_v1_against_any_secret_matches() {
        let good = compute_signature(b"new", T, BODY);
        let header = format!("t={T},v0=abc,v1={},v1={good},x9=whatever", "00".repeat(32));
        assert_eq!(
            verify(&header, BODY, &[b"old".as_slice(), b"new"], T, 300),
            Ok(())
        );
    }

    #[test]
    fn one_changed_byte_is_a_mismatch() {
        let header = sign_header(SECRET, T, BODY);
        let mut body = BODY.to_vec();
        body[5] ^= 1;
        assert_eq!(
            verify(&header, &body, &[SECRET], T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn wrong_secret_is_a_mismatch() {
        let header = sign_header(b"other", T, BODY);
        assert_eq!(
            verify(&header, BODY, &[SECRET], T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn no_secrets_is_a_mismatch() {
        let header = sign_header(SECRET, T, BODY);
        assert_eq!(
            verify(&header, BODY, &[], T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tolerance_applies_both_ways() {
        let header = sign_header(SECRET, T, BODY);
        assert_eq!(verify(&header, BODY, &[SECRET], T + 300, 300), Ok(()));
        assert_eq!(verify(&header, BODY, &[SECRET], T - 300, 300), Ok(()));
        assert_eq!(
            verify(&header, BODY, &[SECRET], T + 301, 300),
            Err(SignatureError::StaleTimestamp)
        );
        assert_eq!(
            verify(&header, BODY, &[SECRET], T - 301, 300),
            Err(SignatureError::FutureTimestamp)
        );
    }

    #[test]
    fn header_shapes() {
        assert_eq!(
            verify("v1=00", BODY, &[SECRET], T, 300),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(&format!("t={T},v0=00"), BODY, &[SECRET], T, 300),
            Err(SignatureError::NoV1Signature)
        );
        assert!(matches!(
            verify("t=abc,v1=00", BODY, &[SECRET], T, 300),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify("garbage", BODY, &[SECRET], T, 300),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify(&format!("t={T},t={T},v1=00"), BODY, &[SECRET], T, 300),
            Err(SignatureError::Malformed(_))
        ));
        assert_eq!(
            verify(&format!("t={T},v1=zz"), BODY, &[SECRET], T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn extreme_timestamps_do_not_overflow() {
        let header = sign_header(SECRET, i64::MIN, BODY);
        assert_eq!(
            verify(&header, BODY, &[SECRET], i64::MAX, 300),
            Err(SignatureError::StaleTimestamp)
        );
    }
}
