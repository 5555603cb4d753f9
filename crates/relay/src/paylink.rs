//! The post-booking redirect: from Calendly's query parameters to a Stripe payment link.
//!
//! Calendly appends unsigned hints (`invitee_uuid`, `invitee_email`) to the redirect URL;
//! the relay forwards them to the payment link as `client_reference_id` and
//! `prefilled_email`, so that the payment's webhook can be tied back to the booking.
//! Stripe silently drops a `client_reference_id` that is not `[A-Za-z0-9_-]{1,200}`, so
//! the relay drops it first rather than pretending. Pure string handling, no I/O.
//!
//! A payment link pushed by an app must point at Stripe's own hosts ([`STRIPE_HOSTS`],
//! https) or at a host the operator allowed ([`AllowedHost`]): a stolen token then cannot
//! turn the relay's `/pay/...` redirect into a redirect to a phishing page.

/// Whether `slug` may name a session type in `/pay/{slug}`.
pub fn valid_slug(slug: &str) -> bool {
    (1..=100).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether Stripe will keep `id` as a `client_reference_id`.
pub fn valid_client_reference_id(id: &str) -> bool {
    (1..=200).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `url` is acceptable as a payment link target: absolute http(s), no whitespace
/// or control characters (it goes into a `Location` header).
pub fn valid_link(url: &str) -> bool {
    (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2048
        && !url
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
}

/// The hosts Stripe serves payment links and Checkout from.
pub const STRIPE_HOSTS: [&str; 2] = ["buy.stripe.com", "checkout.stripe.com"];

/// A host the operator allows payment links to point at (`payment_link_hosts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    host: String,
    /// `None`: any port.
    port: Option<u16>,
    /// Plain http is allowed too (written `http://host`).
    http: bool,
}

impl AllowedHost {
    /// `host`, `host:port`, `https://host[:port]` or `http://host[:port]`.
    pub fn parse(entry: &str) -> Option<AllowedHost> {
        let entry = entry.trim();
        let (http, rest) = if let Some(rest) = entry.strip_prefix("http://") {
            (true, rest)
        } else if let Some(rest) = entry.strip_prefix("https://") {
            (false, rest)
        } else if entry.contains("://") {
            return None;
        } else {
            (false, entry)
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return None;
        }
        let parsed = url::Url::parse(&format!("https://{rest}/")).ok()?;
        Some(AllowedHost {
            host: parsed.host_str()?.to_ascii_lowercase(),
            port: parsed.port(),
            http,
        })
    }

    fn allows(&self, url: &url::Url, host: &str) -> bool {
        self.host == host
            && (url.scheme() == "https" || self.http)
            && self
                .port
                .is_none_or(|p| url.port_or_known_default() == Some(p))
    }
}

/// Why a payment link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefused {
    #[error("the link is not an absolute http(s) URL without credentials")]
    NotAUrl,
    #[error(
        "the link points at {host}, which is not Stripe (https://buy.stripe.com or \
         https://checkout.stripe.com) nor a host the relay's operator allowed \
         (payment_link_hosts)"
    )]
    Host { host: String },
}

/// Whether `link` may be stored as a payment link, given the operator's extra hosts.
pub fn check_link(link: &str, allowed: &[AllowedHost]) -> Result<(), LinkRefused> {
    if !valid_link(link) {
        return Err(LinkRefused::NotAUrl);
    }
    let url = url::Url::parse(link).map_err(|_| LinkRefused::NotAUrl)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(LinkRefused::NotAUrl);
    }
    let host = url
        .host_str()
        .ok_or(LinkRefused::NotAUrl)?
        .to_ascii_lowercase();
    let stripe =
        url.scheme() == "https" && url.port().is_none() && STRIPE_HOSTS.contains(&host.as_str());
    if stripe || allowed.iter().any(|a| a.allows(&url, &host)) {
        return Ok(());
    }
    Err(LinkRefused::Host {
        host: match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        },
    })
}

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`) is escaped.
const NOT_UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn percent_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

/// Split a query string into decoded `(name, value)` pairs (`application/x-www-form-urlencoded`:
/// `+` is a space, invalid escapes are kept literally, invalid UTF-8 is replaced).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The first value of `name` in decoded query pairs.
pub fn query_param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The URL to redirect to: `link` with `client_reference_id` (if valid) and
/// `prefilled_email` (if given) appended.
pub fn redirect_url(link: &str, invitee_uuid: Option<&str>, invitee_email: Option<&str>) -> String {
    let mut url = link.to_owned();
    let mut sep = if link.contains('?') { '&' } else { '?' };
    if let Some(id) = invitee_uuid.filter(|id| valid_client_reference_id(id)) {
        url.push(sep);
        url.push_str("client_reference_id=");
        url.push_str(id);
        sep = '&';
    }
    if let Some(email) = invitee_email.filter(|e| !e.is_empty()) {
        url.push(sep);
        url.push_str("prefilled_email=");
        url.push_str(&percent_encode(email));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_sets_reference_and_encoded_email() {
        assert_eq!(
            redirect_url(
                "https://buy.stripe.com/test_abc",
                Some("4f1e-AB_9"),
                Some("ann+coach@example.com")
            ),
            "https://buy.stripe.com/test_abc?client_reference_id=4f1e-AB_9&prefilled_email=ann%2Bcoach%40example.com"
        );
    }

    #[test]
    fn invalid_reference_is_dropped() {
        assert_eq!(
            redirect_url("https://x/l?a=1", Some("bad id!"), Some("a@b.c")),
            "https://x/l?a=1&prefilled_email=a%40b.c"
        );
        let long = "a".repeat(201);
        assert_eq!(
            redirect_url("https://x/l", Some(&long), None),
            "https://x/l"
        );
    }

    #[test]
    fn query_decoding() {
        let q =
            parse_query("invitee_uuid=abc&invitee_email=ann%2Bx%40ex.com&name=A+B&bad=%zz&t=%4");
        assert_eq!(query_param(&q, "invitee_uuid"), Some("abc"));
        assert_eq!(query_param(&q, "invitee_email"), Some("ann+x@ex.com"));
        assert_eq!(query_param(&q, "name"), Some("A B"));
        assert_eq!(query_param(&q, "bad"), Some("%zz"));
        assert_eq!(query_param(&q, "t"), Some("%4"));
        assert_eq!(query_param(&q, "missing"), None);
    }

    #[test]
    fn links_must_point_at_stripe_or_an_allowed_host() {
        let none: [AllowedHost; 0] = [];
        assert_eq!(check_link("https://buy.stripe.com/test_abc", &none), Ok(()));
        assert_eq!(
            check_link("https://checkout.stripe.com/c/pay/cs_1", &none),
            Ok(())
        );
        let refused = |link: &str, allowed: &[AllowedHost]| match check_link(link, allowed) {
            Err(LinkRefused::Host { host }) => host,
            other => panic!("{link}: {other:?}"),
        };
        assert_eq!(
            refused("http://buy.stripe.com/x", &none),
            "http://buy.stripe.com"
        );
        assert_eq!(
            refused("https://evil.example/buy.stripe.com", &none),
            "https://evil.example"
        );
        assert_eq!(
            refused("https://buy.stripe.com.evil.example/x", &none),
            "https://buy.stripe.com.evil.example"
        );
        assert_eq!(
            refused("https://buy.stripe.com:8443/x", &none),
            "https://buy.stripe.com:8443"
        );
        assert_eq!(
            check_link("https://buy.stripe.com@evil.example/x", &none),
            Err(LinkRefused::NotAUrl)
        );
        assert_eq!(
            check_link("javascript:alert(1)", &none),
            Err(LinkRefused::NotAUrl)
        );

        let sim = AllowedHost::parse("http://127.0.0.1").expect("entry");
        assert_eq!(
            check_link(
                "http://127.0.0.1:4567/b/plink_1",
                std::slice::from_ref(&sim)
            ),
            Ok(())
        );
        assert_eq!(
            refused("http://127.0.0.2:4567/b/x", &[sim]),
            "http://127.0.0.2:4567"
        );
        let https_only = AllowedHost::parse("Pay.Example.com:8443").expect("entry");
        assert_eq!(
            check_link(
                "https://pay.example.com:8443/x",
                std::slice::from_ref(&https_only)
            ),
            Ok(())
        );
        assert!(check_link(
            "http://pay.example.com:8443/x",
            std::slice::from_ref(&https_only)
        )
        .is_err());
        assert!(check_link("https://pay.example.com/x", &[https_only]).is_err());
        for bad in ["ftp://x", "", "https://", "a/b", "user@host", "http://h?x"] {
            assert_eq!(AllowedHost::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn slugs_and_links() {
        assert!(valid_slug("intro-call_30"));
        assert!(!valid_slug(""));
        assert!(!valid_slug("a/b"));
        assert!(valid_link("https://buy.stripe.com/x"));
        assert!(!valid_link("javascript:alert(1)"));
        assert!(!valid_link("https://x/\r\nSet-Cookie: a"));
    }
}
