//! Each booking's own Stripe Checkout Session, made by the relay at the client's first
//! `/pay/{slug}` visit (issue 11): the session type's price from the table the app pushed,
//! the Calendly invitee as `client_reference_id` and in metadata, the client's email
//! prefilled, `expires_at` at the booking's payment deadline.
//!
//! The relay calls Stripe with the operator's restricted key, which needs one permission:
//! Checkout Sessions, Write (it includes reading a session back). Calls are blocking (the
//! relay's workers are threads) and short: the client is waiting, and any failure sends it
//! to the session type's payment link instead of a dead end.
//!
//! The pure parts (the deadline within Stripe's limits, the request's form, the pages) are
//! plain functions; [`StripeCheckout`] is the only I/O.

use std::time::Duration;

use coachdesk_protocol::relay::CheckoutTerms;

use crate::config::Secret;
use crate::token::TokenMode;

/// Stripe's shortest Checkout Session life is 30 minutes from its creation; a minute more
/// absorbs clock skew between the relay and Stripe.
pub const MIN_LIFETIME_SECS: i64 = 30 * 60 + 60;
/// Stripe's longest is 24 hours; a minute less for the same reason.
pub const MAX_LIFETIME_SECS: i64 = 24 * 3600 - 60;
/// Largest Stripe answer read.
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

/// The session's `expires_at` (unix seconds) at `now` for a booking made at `booked_at`
/// (the relay's first news of it when Calendly's delivery has not come yet): the payment
/// window after the booking, or the session's start if sooner (as the app's deadline),
/// moved into what Stripe accepts (31 minutes to 23 h 59 min from now). `None` once the
/// deadline has passed: the booking can no longer be paid.
pub fn expires_at(
    now: i64,
    booked_at: i64,
    window_minutes: u32,
    event_start: Option<i64>,
) -> Option<i64> {
    let window = booked_at.saturating_add(i64::from(window_minutes).saturating_mul(60));
    let deadline = event_start.map_or(window, |start| start.min(window));
    (deadline > now).then(|| deadline.clamp(now + MIN_LIFETIME_SECS, now + MAX_LIFETIME_SECS))
}

/// Calendly's `event_start_time` redirect parameter (RFC 3339), as unix seconds.
pub fn parse_event_start(value: &str) -> Option<i64> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp)
}

/// Whether Stripe can take `email` as `customer_email` (a loose check: Stripe refuses the
/// whole request for a malformed one, so a doubtful address is left out instead).
pub fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    email.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b','))
}

/// The Idempotency-Key of a booking's session: two visits of one booking, even at once,
/// make one session.
pub fn idempotency_key(invitee: &str) -> String {
    format!("coachdesk-relay-checkout-{invitee}")
}

/// What one booking's session is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest<'a> {
    pub invitee: &'a str,
    pub slug: &'a str,
    pub terms: &'a CheckoutTerms,
    pub email: Option<&'a str>,
    pub expires_at: i64,
    /// Where Stripe sends the client after paying.
    pub success_url: &'a str,
}

/// The form of `POST /v1/checkout/sessions` (names as in Stripe's API reference).
pub fn session_form(r: &SessionRequest<'_>) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("mode", "payment".to_owned()),
        ("client_reference_id", r.invitee.to_owned()),
        ("expires_at", r.expires_at.to_string()),
        ("success_url", r.success_url.to_owned()),
        (
            "line_items[0][price_data][currency]",
            r.terms.currency.to_ascii_lowercase(),
        ),
        (
            "line_items[0][price_data][unit_amount]",
            r.terms.amount_minor.to_string(),
        ),
        (
            "line_items[0][price_data][product_data][name]",
            r.terms.name.clone(),
        ),
        ("line_items[0][quantity]", "1".to_owned()),
        ("metadata[coachdesk_invitee]", r.invitee.to_owned()),
        ("metadata[coachdesk_session_type]", r.slug.to_owned()),
    ];
    if let Some(email) = r.email.filter(|e| plausible_email(e)) {
        form.push(("customer_email", email.to_owned()));
    }
    form
}

/// Where a Checkout Session stands, as Stripe says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// Still payable.
    Open,
    /// Paid (or, for a delayed method, payment under way).
    Complete,
    /// Past `expires_at`, or expired by the coach's app.
    Expired,
}

/// A Checkout Session as read from Stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSeen {
    pub id: String,
    pub status: SessionStatus,
    /// The page to pay on, while open.
    pub url: Option<String>,
    pub expires_at: Option<i64>,
}

/// Why a call to Stripe gave no session. The caller sends the client to the payment link
/// in every case; the kinds are for logs and metrics.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// No answer in time, or no connection.
    #[error("Stripe could not be reached: {0}")]
    Unreachable(#[source] Box<ureq::Error>),
    /// Stripe refused the call (4xx: the key's permission, a parameter) or failed (5xx).
    #[error("Stripe answered {status}: {message}")]
    Refused { status: u16, message: String },
    /// A 2xx answer that is not a Checkout Session.
    #[error("Stripe's answer is not a Checkout Session: {0}")]
    Unreadable(String),
    /// A session id the relay will not put in a URL.
    #[error("{0:?} is not a Checkout Session id")]
    BadId(String),
}

impl StripeError {
    /// A short label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StripeError::Unreachable(_) => "unreachable",
            StripeError::Refused { status, .. } if *status >= 500 => "server_error",
            StripeError::Refused { .. } => "refused",
            StripeError::Unreadable(_) | StripeError::BadId(_) => "unreadable",
        }
    }
}

/// Why a handed-over Stripe key is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    #[error("a Stripe restricted key is rk_live_ or rk_test_ and 16 to 256 letters, digits or underscores")]
    Format,
    /// A secret key can do anything with the account; the relay needs one permission.
    #[error("that is a Stripe secret key, which can do anything with the account: create a restricted key with one permission, Checkout Sessions: Write, and hand that over")]
    SecretKey,
    #[error("the key's mode (live or test) is not the token's")]
    Mode,
}

/// Whether `key` is a restricted key the relay takes from an app whose token is of `mode`.
pub fn check_restricted_key(key: &str, mode: TokenMode) -> Result<(), KeyRefusal> {
    if key.starts_with("sk_") {
        return Err(KeyRefusal::SecretKey);
    }
    let (live, rest) = if let Some(rest) = key.strip_prefix("rk_live_") {
        (true, rest)
    } else if let Some(rest) = key.strip_prefix("rk_test_") {
        (false, rest)
    } else {
        return Err(KeyRefusal::Format);
    };
    let plausible = (16..=256).contains(&key.len())
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !plausible {
        return Err(KeyRefusal::Format);
    }
    match (mode, live) {
        (TokenMode::Live, false) | (TokenMode::Test, true) => Err(KeyRefusal::Mode),
        _ => Ok(()),
    }
}

/// The relay's Stripe client: Checkout Sessions only, with the restricted key.
pub struct StripeCheckout {
    agent: ureq::Agent,
    base: String,
    key: Secret,
}

impl std::fmt::Debug for StripeCheckout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeCheckout")
            .field("base", &self.base)
            .field("key", &self.key)
            .finish()
    }
}

impl StripeCheckout {
    /// A client of `base` (`https://api.stripe.com`) whose every call, connection
    /// included, ends within `timeout`.
    pub fn new(base: &str, key: Secret, timeout: Duration) -> StripeCheckout {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .user_agent("coachdesk-relay")
            .build()
            .new_agent();
        StripeCheckout {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            key,
        }
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.key.expose_str())
    }

    /// `POST /v1/checkout/sessions` under `idempotency_key`.
    pub fn create(
        &self,
        form: &[(&'static str, String)],
        idempotency_key: &str,
    ) -> Result<SessionSeen, StripeError> {
        let answer = self
            .agent
            .post(format!("{}/v1/checkout/sessions", self.base))
            .header("Authorization", self.auth())
            .header("Idempotency-Key", idempotency_key)
            .send_form(form.iter().map(|(k, v)| (*k, v.as_str())));
        read_session(answer)
    }

    /// `GET /v1/checkout/sessions/{id}`.
    pub fn get(&self, id: &str) -> Result<SessionSeen, StripeError> {
        let answer = self
            .agent
            .get(format!(
                "{}/v1/checkout/sessions/{}",
                self.base,
                session_id(id)?
            ))
            .header("Authorization", self.auth())
            .call();
        read_session(answer)
    }

    /// `POST /v1/checkout/sessions/{id}/expire`: the session's page stops taking payment.
    /// Stripe refuses (400) a session that is no longer open; the caller reads it back.
    pub fn expire(&self, id: &str) -> Result<SessionSeen, StripeError> {
        let answer = self
            .agent
            .post(format!(
                "{}/v1/checkout/sessions/{}/expire",
                self.base,
                session_id(id)?
            ))
            .header("Authorization", self.auth())
            .send_empty();
        read_session(answer)
    }
}

/// `id` if it can go into a URL path as a session id.
fn session_id(id: &str) -> Result<&str, StripeError> {
    if id.is_empty()
        || id.len() > 255
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(StripeError::BadId(id.to_owned()));
    }
    Ok(id)
}

fn read_session(
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<SessionSeen, StripeError> {
    let mut answer = answer.map_err(|e| StripeError::Unreachable(Box::new(e)))?;
    let status = answer.status().as_u16();
    let body = answer
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| StripeError::Unreachable(Box::new(e)))?;
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "no error message".to_owned());
        return Err(StripeError::Refused { status, message });
    }
    parse_session(&body)
}

/// A Checkout Session from Stripe's JSON.
pub fn parse_session(body: &str) -> Result<SessionSeen, StripeError> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| StripeError::Unreadable(e.to_string()))?;
    let id = v["id"]
        .as_str()
        .ok_or_else(|| StripeError::Unreadable("no id".to_owned()))?;
    let status = match v["status"].as_str() {
        Some("open") => SessionStatus::Open,
        Some("complete") => SessionStatus::Complete,
        Some("expired") => SessionStatus::Expired,
        other => return Err(StripeError::Unreadable(format!("unknown status {other:?}"))),
    };
    Ok(SessionSeen {
        id: id.to_owned(),
        status,
        url: v["url"].as_str().map(str::to_owned),
        expires_at: v["expires_at"].as_i64(),
    })
}

/// `s` with HTML's special characters escaped, for element content and quoted attributes.
pub fn escape_html(s: &str) -> String {
    html_escape::encode_quoted_attribute(s).into_owned()
}

/// The page for a booking that is paid already.
pub fn paid_page() -> String {
    "<!doctype html><meta charset=\"utf-8\"><title>Already paid</title>\
     <h1>Already paid</h1><p>This booking is already paid. Thank you! There is nothing more to do here.</p>\n"
        .to_owned()
}

/// A "book again" paragraph: a link to the event type's scheduling page if the app pushed
/// one (https only), else a plain sentence.
fn book_again(booking_url: Option<&str>) -> String {
    match booking_url.filter(|u| u.starts_with("https://") && crate::paylink::valid_link(u)) {
        Some(url) => format!(
            "<p><a href=\"{}\">Book a new time</a>.</p>",
            escape_html(url)
        ),
        None => "<p>To book again, use your coach's booking page.</p>".to_owned(),
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width\"><title>{title}</title><h1>{title}</h1>{body}\n"
    )
}

/// The page for a booking whose payment time has passed.
pub fn expired_page(booking_url: Option<&str>) -> String {
    page(
        "Payment time has passed",
        &format!(
            "<p>This booking was not paid in time, so it can no longer be paid.</p>{}",
            book_again(booking_url)
        ),
    )
}

/// The page for a booking that was cancelled (by the client or the coach).
pub fn cancelled_page(booking_url: Option<&str>) -> String {
    page(
        "This booking was cancelled",
        &format!(
            "<p>This booking was cancelled, so there is nothing to pay. If you had paid \
             already, your coach's refund is on its way.</p>{}",
            book_again(booking_url)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_restricted_key_of_the_token_s_mode_is_taken() {
        let ok = "rk_test_51Habc_DEF123";
        assert_eq!(check_restricted_key(ok, TokenMode::Test), Ok(()));
        assert_eq!(check_restricted_key(ok, TokenMode::Any), Ok(()));
        assert_eq!(
            check_restricted_key(ok, TokenMode::Live),
            Err(KeyRefusal::Mode)
        );
        assert_eq!(
            check_restricted_key("rk_live_51Habc_DEF123", TokenMode::Test),
            Err(KeyRefusal::Mode)
        );
        assert_eq!(
            check_restricted_key("sk_live_51Habc_DEF123", TokenMode::Live),
            Err(KeyRefusal::SecretKey)
        );
        let long = format!("rk_test_{}", "a".repeat(250));
        for bad in [
            "",
            "rk_test_",
            "rk_test_short",
            "pk_test_51Habc_DEF123",
            "rk_test_51Habc DEF123",
            "rk_test_51Habc\r\nX: y",
            long.as_str(),
        ] {
            assert_eq!(
                check_restricted_key(bad, TokenMode::Any),
                Err(KeyRefusal::Format),
                "{bad:?}"
            );
        }
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn the_deadline_is_the_window_or_the_start_within_stripes_limits() {
        assert_eq!(expires_at(NOW, NOW, 120, None), Some(NOW + 7200));
        assert_eq!(
            expires_at(NOW, NOW, 120, Some(NOW + 3600)),
            Some(NOW + 3600)
        );
        assert_eq!(
            expires_at(NOW, NOW, 120, Some(NOW + 9000)),
            Some(NOW + 7200)
        );
        // The window counts from the booking, not from the first visit.
        assert_eq!(expires_at(NOW, NOW - 3600, 120, None), Some(NOW + 3600));
        assert_eq!(expires_at(NOW, NOW - 7200, 120, None), None);
        assert_eq!(expires_at(NOW, NOW, 120, Some(NOW - 50)), None);
        // Stripe's limits: at least 30 minutes, less than 24 hours.
        assert_eq!(
            expires_at(NOW, NOW, 24 * 60, None),
            Some(NOW + MAX_LIFETIME_SECS)
        );
        assert_eq!(
            expires_at(NOW, NOW, 10, None),
            Some(NOW + MIN_LIFETIME_SECS)
        );
        assert_eq!(
            expires_at(NOW, NOW, u32::MAX, None),
            Some(NOW + MAX_LIFETIME_SECS)
        );
    }

    #[test]
    fn calendly_start_times_parse() {
        assert_eq!(
            parse_event_start("2027-01-15T09:30:00Z"),
            Some(1_800_005_400)
        );
        assert_eq!(
            parse_event_start("2027-01-15T10:30:00+01:00"),
            Some(1_800_005_400)
        );
        assert_eq!(parse_event_start("tomorrow"), None);
    }

    #[test]
    fn the_form_ties_the_session_to_the_invitee() {
        let terms = CheckoutTerms {
            name: "Coaching".into(),
            amount_minor: 9000,
            currency: "EUR".into(),
            payment_window_minutes: 60,
        };
        let r = SessionRequest {
            invitee: "AB12-cd",
            slug: "coaching",
            terms: &terms,
            email: Some("ann+x@example.com"),
            expires_at: NOW + 3600,
            success_url: "https://relay.example/pay/coaching?invitee_uuid=AB12-cd",
        };
        let form = session_form(&r);
        let get = |k: &str| form.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("client_reference_id"), Some("AB12-cd"));
        assert_eq!(get("metadata[coachdesk_invitee]"), Some("AB12-cd"));
        assert_eq!(get("line_items[0][price_data][currency]"), Some("eur"));
        assert_eq!(get("line_items[0][price_data][unit_amount]"), Some("9000"));
        assert_eq!(get("customer_email"), Some("ann+x@example.com"));
        assert_eq!(get("expires_at"), Some("1800003600"));
        let doubtful = SessionRequest {
            email: Some("not an email"),
            ..r
        };
        assert!(!session_form(&doubtful)
            .iter()
            .any(|(n, _)| *n == "customer_email"));
    }

    #[test]
    fn sessions_parse_and_pages_escape() {
        let s = parse_session(
            r#"{"id":"cs_1","status":"open","url":"https://checkout.stripe.com/c/pay/cs_1","expires_at":5}"#,
        )
        .expect("session");
        assert_eq!(s.status, SessionStatus::Open);
        assert_eq!(s.expires_at, Some(5));
        assert!(parse_session(r#"{"id":"cs_1","status":"weird"}"#).is_err());
        assert!(parse_session("not json").is_err());
        let page = expired_page(Some("https://calendly.com/coach/intro?a=1&b=\"x\""));
        assert!(page.contains("href=\"https://calendly.com/coach/intro?a=1&amp;b=&quot;x&quot;\""));
        assert!(!expired_page(Some("javascript:alert(1)")).contains("href"));
        assert!(!expired_page(Some("http://calendly.com/x")).contains("href"));
        assert!(expired_page(None).contains("booking page"));
        assert!(cancelled_page(None).contains("cancelled"));
        assert!(cancelled_page(Some("https://calendly.com/coach/intro")).contains("href"));
    }

    #[test]
    fn emails() {
        assert!(plausible_email("ann+x@example.com"));
        for bad in ["", "a@", "@b.c", "a b@c.d", "a@b", "a@.b", "<a@b.c>"] {
            assert!(!plausible_email(bad), "{bad:?}");
        }
    }
}
