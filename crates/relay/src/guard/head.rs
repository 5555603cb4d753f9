//! Request heads as the guard reads them: parsed with `httparse` from a buffer the guard
//! caps, checked for everything that would make tiny_http read without bound (a declared
//! length over the limit, an unknown transfer coding, a length and a coding at once), and
//! turned into a plain request with a known length for tiny_http.
//!
//! Pure: no I/O, so the fuzz targets and unit tests drive it with bytes alone.

use std::net::IpAddr;

/// Most header fields a request may carry; more is answered 431.
pub const MAX_HEADERS: usize = 64;

/// How the request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (no `Content-Length`, or zero).
    Empty,
    /// `Content-Length: n`, already checked against the limit.
    Length(usize),
    /// `Transfer-Encoding: chunked`; the decoded size is checked as it streams.
    Chunked,
}

/// Why a head is refused; each kind has its status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("malformed request")]
    Malformed,
    #[error("request header too large")]
    HeadTooLarge,
    #[error("body too large")]
    BodyTooLarge,
    #[error("transfer coding not supported")]
    UnsupportedCoding,
    #[error("HTTP version not supported")]
    Version,
    #[error("expectation not supported")]
    Expectation,
}

impl HeadError {
    /// The status code to answer with (the connection is closed after it).
    pub fn status(self) -> u16 {
        match self {
            HeadError::Malformed => 400,
            HeadError::HeadTooLarge => 431,
            HeadError::BodyTooLarge => 413,
            HeadError::UnsupportedCoding => 501,
            HeadError::Version => 505,
            HeadError::Expectation => 417,
        }
    }
}

/// A request head that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// End-to-end fields, in order (hop-by-hop and framing fields are left out).
    pub fields: Vec<(String, Vec<u8>)>,
    /// Bytes of the head, blank line included.
    pub len: usize,
    pub framing: Framing,
    /// Whether the client keeps the connection open after the answer.
    pub keep_alive: bool,
    /// Whether the client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
    /// The last address in `X-Forwarded-For` (the one the nearest proxy added), if valid.
    pub forwarded_for: Option<IpAddr>,
}

impl Head {
    /// The path without its query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

/// Fields the guard owns on each hop: never passed to tiny_http as the client sent them.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "content-length",
    "expect",
    "te",
    "upgrade",
];

/// Parses the head at the start of `buf`. `Ok(None)` while it is incomplete and shorter
/// than `max_head`; a head that cannot fit `max_head` bytes is refused at once, so a
/// header line without end never grows the buffer past the cap.
pub fn parse(buf: &[u8], max_head: usize, max_body: usize) -> Result<Option<Head>, HeadError> {
    let window = &buf[..buf.len().min(max_head)];
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut storage);
    let len = match req.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= max_head => {
            return Err(HeadError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::HeadTooLarge),
        Err(httparse::Error::Version) => return Err(HeadError::Version),
        Err(_) => return Err(HeadError::Malformed),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed);
    };
    if minor > 1 {
        return Err(HeadError::Version);
    }
    if !target.starts_with('/') || target.len() > 8192 {
        return Err(HeadError::Malformed);
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = minor == 0;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    let mut forwarded_for = None;
    let mut fields = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        match name.as_str() {
            "content-length" => {
                let n = content_length(h.value)?;
                if length.is_some_and(|l| l != n) {
                    return Err(HeadError::Malformed);
                }
                length = Some(n);
            }
            "transfer-encoding" => {
                if chunked || minor == 0 {
                    return Err(HeadError::Malformed);
                }
                let v = std::str::from_utf8(h.value).map_err(|_| HeadError::Malformed)?;
                if !v.trim().eq_ignore_ascii_case("chunked") {
                    return Err(HeadError::UnsupportedCoding);
                }
                chunked = true;
            }
            "connection" => {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        keep_alive_token = true;
                    }
                }
            }
            "expect" => {
                if h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                    expect_continue = true;
                } else {
                    return Err(HeadError::Expectation);
                }
            }
            "x-forwarded-for" => {
                forwarded_for = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.rsplit(',').next())
                    .and_then(|last| last.trim().parse().ok());
            }
            _ => {}
        }
        if !HOP_BY_HOP.contains(&name.as_str()) {
            fields.push((h.name.to_owned(), h.value.to_vec()));
        }
    }
    // Room for the two framing fields the guard adds for tiny_http.
    if fields.len() + 2 > MAX_HEADERS {
        return Err(HeadError::HeadTooLarge);
    }
    if chunked && length.is_some() {
        // Both framings at once is how requests are smuggled past proxies.
        return Err(HeadError::Malformed);
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, None | Some(0)) => Framing::Empty,
        (false, Some(n)) => {
            let n = usize::try_from(n).map_err(|_| HeadError::BodyTooLarge)?;
            if n > max_body {
                return Err(HeadError::BodyTooLarge);
            }
            Framing::Length(n)
        }
    };
    Ok(Some(Head {
        method: method.to_owned(),
        target: target.to_owned(),
        minor,
        fields,
        len,
        framing,
        keep_alive: !close && (minor == 1 || keep_alive_token),
        expect_continue: expect_continue && minor == 1,
        forwarded_for,
    }))
}

/// A `Content-Length` value: decimal digits only; a value past `u64` is too large, not
/// malformed.
fn content_length(value: &[u8]) -> Result<u64, HeadError> {
    let v = value.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::Malformed);
    }
    let mut n: u64 = 0;
    for d in v {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(HeadError::BodyTooLarge)?;
    }
    Ok(n)
}

/// The request as tiny_http receives it: the client's line and end-to-end fields, the
/// body with its exact length, and `Connection: close` (one request per internal
/// connection, so tiny_http never waits on a client for a second one).
pub fn upstream_request(head: &Head, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.target.as_bytes());
    out.extend_from_slice(if head.minor == 0 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    for (name, value) in &head.fields {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// Why tiny_http's answer could not be passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed answer from the HTTP layer")]
pub struct BadResponse;

/// tiny_http's whole answer (it closes the internal connection after it) rewritten for
/// the client: the same status, fields and body, with the guard's `Connection` field.
/// Returns the status code and the bytes to send.
pub fn client_response(raw: &[u8], keep_alive: bool) -> Result<(u16, Vec<u8>), BadResponse> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut storage);
    let len = match resp.parse(raw) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return Err(BadResponse),
    };
    let code = resp.code.ok_or(BadResponse)?;
    let mut out = Vec::with_capacity(raw.len() + 32);
    out.extend_from_slice(format!("HTTP/1.1 {code} {}\r\n", resp.reason.unwrap_or("")).as_bytes());
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") || h.name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&raw[len..]);
    Ok((code, out))
}

/// A short answer of the guard's own, after which it closes the connection.
pub fn error_response(status: u16, extra: &[(&str, String)]) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        417 => "Expectation Failed",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    };
    let body = format!("{}\n", reason.to_ascii_lowercase());
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in extra {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_HEAD: usize = 16 * 1024;
    const MAX_BODY: usize = 1024 * 1024;

    fn head(text: &str) -> Result<Option<Head>, HeadError> {
        parse(text.as_bytes(), MAX_HEAD, MAX_BODY)
    }

    #[test]
    fn a_plain_post_keeps_its_fields_and_length() {
        let h = head("POST /hooks/stripe?x=1 HTTP/1.1\r\nHost: r\r\nContent-Length: 12\r\nStripe-Signature: t=1\r\n\r\n{}")
            .expect("ok")
            .expect("complete");
        assert_eq!(h.path(), "/hooks/stripe");
        assert_eq!(h.framing, Framing::Length(12));
        assert!(h.keep_alive);
        assert_eq!(
            h.fields.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["Host", "Stripe-Signature"]
        );
        let up = String::from_utf8(upstream_request(&h, b"{}")).expect("ascii");
        assert!(up.starts_with("POST /hooks/stripe?x=1 HTTP/1.1\r\nHost: r\r\nStripe-Signature: t=1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"), "{up}");
    }

    #[test]
    fn declared_lengths_over_the_limit_are_refused_before_any_body() {
        for len in [
            "1000000000000000",
            "18446744073709551615",
            "99999999999999999999999",
        ] {
            let r = head(&format!("POST / HTTP/1.1\r\nContent-Length: {len}\r\n\r\n"));
            assert_eq!(r, Err(HeadError::BodyTooLarge), "{len}");
        }
        let r = head(&format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        ));
        assert_eq!(r, Err(HeadError::BodyTooLarge));
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        for text in [
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert_eq!(head(text), Err(HeadError::Malformed), "{text:?}");
        }
        assert_eq!(
            head("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            Err(HeadError::UnsupportedCoding)
        );
    }

    #[test]
    fn an_endless_header_line_is_refused_at_the_cap() {
        let mut text = b"GET / HTTP/1.1\r\nX: ".to_vec();
        text.resize(MAX_HEAD - 1, b'a');
        assert_eq!(parse(&text, MAX_HEAD, MAX_BODY), Ok(None));
        text.push(b'a');
        assert_eq!(
            parse(&text, MAX_HEAD, MAX_BODY),
            Err(HeadError::HeadTooLarge)
        );
        text.resize(MAX_HEAD * 4, b'a');
        assert_eq!(
            parse(&text, MAX_HEAD, MAX_BODY),
            Err(HeadError::HeadTooLarge)
        );
    }

    #[test]
    fn connection_and_forwarded_for() {
        let h = head("GET / HTTP/1.0\r\nX-Forwarded-For: 10.0.0.1, 203.0.113.7\r\n\r\n")
            .expect("ok")
            .expect("complete");
        assert!(!h.keep_alive);
        assert_eq!(h.forwarded_for, Some("203.0.113.7".parse().expect("ip")));
        let h =
            head("GET / HTTP/1.1\r\nConnection: keep-alive, close\r\nExpect: 100-continue\r\n\r\n")
                .expect("ok")
                .expect("complete");
        assert!(!h.keep_alive);
        assert!(h.expect_continue);
        assert_eq!(
            head("GET / HTTP/1.1\r\nExpect: something\r\n\r\n"),
            Err(HeadError::Expectation)
        );
    }

    #[test]
    fn the_answer_gets_the_guards_connection_field() {
        let raw =
            b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 3\r\n\r\nno\n";
        let (code, out) = client_response(raw, true).expect("ok");
        assert_eq!(code, 401);
        assert_eq!(
            out,
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\n\r\nno\n".to_vec()
        );
        let (_, out) = client_response(raw, false).expect("ok");
        assert!(out.windows(19).any(|w| w == b"Connection: close\r\n"));
        assert_eq!(client_response(b"HTTP/1.1 200", true), Err(BadResponse));
    }
}
