//! App access tokens: made at random, shown once, stored only as a SHA-256 hash.
//!
//! A token has 256 random bits, so a plain (unsalted) SHA-256 is enough to make a stolen
//! database useless for calling the API, and a lookup by hash leaks nothing useful.
//!
//! Each token belongs to one app install (a consumer): it has a name the operator chose,
//! a mode (Stripe test or live events) and its own acknowledgement cursor.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// The prefix that makes a relay token recognisable in a config file or a leak scanner.
pub const PREFIX: &str = "cdr_";

/// A new random token, to print once.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex::encode(bytes))
}

/// The hash stored for `token`.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The bearer token of an `Authorization` header value, if it has one.
pub fn bearer(header_value: &str) -> Option<&str> {
    let (scheme, rest) = header_value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

/// Which Stripe events a token is served (Calendly events go to every token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    /// Stripe events with `livemode: false`.
    Test,
    /// Stripe events with `livemode: true`.
    Live,
    /// Every event: only tokens made before modes existed, so that they keep working.
    Any,
}

impl TokenMode {
    /// The mode as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenMode::Test => "test",
            TokenMode::Live => "live",
            TokenMode::Any => "any",
        }
    }

    /// The mode a stored value names; `None` for anything else.
    pub fn from_stored(s: &str) -> Option<TokenMode> {
        match s {
            "test" => Some(TokenMode::Test),
            "live" => Some(TokenMode::Live),
            "any" => Some(TokenMode::Any),
            _ => None,
        }
    }

    /// The mode an operator may give to `token create --mode` (`test` or `live`).
    pub fn from_cli(s: &str) -> Option<TokenMode> {
        match s {
            "test" => Some(TokenMode::Test),
            "live" => Some(TokenMode::Live),
            _ => None,
        }
    }

    /// Whether an event for `livemode` (`None`: for every token) is served to this mode.
    pub fn serves(self, livemode: Option<bool>) -> bool {
        match (self, livemode) {
            (_, None) | (TokenMode::Any, _) => true,
            (TokenMode::Test, Some(live)) => !live,
            (TokenMode::Live, Some(live)) => live,
        }
    }
}

/// A token's name as the operator gave it: 1 to 64 of `[A-Za-z0-9._-]`, so it can be
/// logged and typed on a command line as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenName(String);

impl TokenName {
    pub fn parse(name: &str) -> Option<TokenName> {
        let ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| TokenName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which events a webhook body is for: a Stripe event's `livemode`, `None` (every token)
/// for Calendly or a Stripe body that does not say.
pub fn event_livemode(provider: coachdesk_protocol::relay::Provider, body: &[u8]) -> Option<bool> {
    #[derive(serde::Deserialize)]
    struct Mode {
        livemode: Option<bool>,
    }
    match provider {
        coachdesk_protocol::relay::Provider::Calendly => None,
        coachdesk_protocol::relay::Provider::Stripe => serde_json::from_slice::<Mode>(body)
            .ok()
            .and_then(|m| m.livemode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_names() {
        assert!(TokenMode::Test.serves(Some(false)) && !TokenMode::Test.serves(Some(true)));
        assert!(TokenMode::Live.serves(Some(true)) && !TokenMode::Live.serves(Some(false)));
        assert!(TokenMode::Any.serves(Some(true)) && TokenMode::Any.serves(Some(false)));
        assert!(TokenMode::Test.serves(None) && TokenMode::Live.serves(None));
        assert_eq!(TokenMode::from_cli("any"), None);
        assert!(TokenName::parse("laptop-1.home_office").is_some());
        assert!(TokenName::parse("").is_none());
        assert!(TokenName::parse("a b").is_none());
        assert!(TokenName::parse(&"x".repeat(65)).is_none());
        use coachdesk_protocol::relay::Provider;
        assert_eq!(
            event_livemode(Provider::Stripe, br#"{"id":"e","livemode":true}"#),
            Some(true)
        );
        assert_eq!(event_livemode(Provider::Stripe, br#"{"id":"e"}"#), None);
        assert_eq!(event_livemode(Provider::Stripe, b"not json"), None);
        assert_eq!(
            event_livemode(Provider::Calendly, br#"{"livemode":true}"#),
            None
        );
    }

    #[test]
    fn tokens_are_random_and_prefixed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX));
        assert_eq!(a.len(), PREFIX.len() + 64);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), a);
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
