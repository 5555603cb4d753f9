//! The HTTP front: one tiny_http server on loopback that routes `/v1/...` to the Stripe fake,
//! `/_sim/...` to the control API and everything else to the Calendly fake; plus the pages
//! a client's browser sees in demo mode (`/c/pay/{session}`, `/b/{payment link}`).
//!
//! Each request gets its own thread, so an injected timeout holds only its own request.
//! State changes happen under the world lock; webhooks they produce are handed to the
//! [`Outbox`] after the lock is released.

use std::io::Read;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};

use crate::calendly;
use crate::stripe::{self, no_request};
use crate::webhook::{DeliveryKnobs, Outbox, WebhookTarget};
use crate::world::{Fault, FaultKind, Incoming, Reply, RequestRecord, World};
use crate::{SimConfig, SimError};

const BODY_LIMIT: u64 = 1 << 20;

struct Shared {
    world: Mutex<World>,
    outbox: Arc<Outbox>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on the world, then queue the webhooks it produced.
    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        let (out, deliveries) = {
            let mut w = self.lock();
            let out = f(&mut w);
            (out, std::mem::take(&mut w.outgoing))
        };
        for d in deliveries {
            self.outbox.push(d);
        }
        out
    }
}

/// A running simulator. Dropping it stops the server.
pub struct Simulator {
    base_url: String,
    server: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    sender: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Bind `config.listen` (port 0 picks a free port) and serve in background threads.
    pub fn start(config: SimConfig) -> Result<Simulator, SimError> {
        let server = tiny_http::Server::http(&config.listen).map_err(|e| SimError::Bind {
            addr: config.listen.clone(),
            message: e.to_string(),
        })?;
        let addr = server.server_addr().to_ip().ok_or_else(|| SimError::Bind {
            addr: config.listen.clone(),
            message: "not an IP socket".into(),
        })?;
        let base_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let salt: String = {
            let mut rng = rand::thread_rng();
            (0..6)
                .map(|_| char::from(b"abcdef0123456789"[rng.gen_range(0..16)]))
                .collect()
        };
        let salt = config.id_salt.clone().unwrap_or(salt);
        let knobs = config.delivery.clone();
        let world = World::new(config, base_url.clone(), salt);
        let offset = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let clock_offset = Arc::clone(&offset);
        let (outbox, sender) = Outbox::start(
            knobs,
            Box::new(move || {
                crate::world::unix_now() + clock_offset.load(std::sync::atomic::Ordering::Relaxed)
            }),
        );
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            outbox: Arc::clone(&outbox),
        });
        let weak = Arc::downgrade(&shared);
        outbox.set_on_exhausted(Box::new(move |d| {
            if let (Some(shared), Some(sub)) = (weak.upgrade(), d.subscription.as_deref()) {
                if shared.lock().config.disable_failed_subscriptions {
                    let _ = shared.lock().disable_subscription(sub);
                }
            }
        }));
        let server = Arc::new(server);
        let accept = {
            let server = Arc::clone(&server);
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let shared = Arc::clone(&shared);
                    let offset = Arc::clone(&offset);
                    std::thread::spawn(move || {
                        handle(&shared, request);
                        offset.store(
                            shared.lock().clock_offset,
                            std::sync::atomic::Ordering::Relaxed,
                        );
                    });
                }
            })
        };
        Ok(Simulator {
            base_url,
            server,
            shared,
            accept: Some(accept),
            sender: Some(sender),
        })
    }

    /// `http://127.0.0.1:PORT` (or the configured public URL).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The Calendly token the fake accepts.
    pub fn calendly_token(&self) -> String {
        self.shared.lock().config.calendly_token.clone()
    }

    /// A scripted client for this simulator.
    pub fn client(&self) -> crate::SimClient {
        crate::SimClient::new(&self.base_url)
    }

    /// Block until the server stops (for the binary).
    pub fn wait(mut self) {
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.server.unblock();
        self.shared.outbox.shutdown();
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        if let Some(s) = self.sender.take() {
            let _ = s.join();
        }
    }
}

fn handle(shared: &Shared, mut request: tiny_http::Request) {
    let method = request.method().as_str().to_ascii_uppercase();
    let (path, query) = match request.url().split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (request.url().to_string(), String::new()),
    };
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_string(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let mut body = Vec::new();
    let too_big = request.body_length().is_some_and(|l| l as u64 > BODY_LIMIT)
        || request
            .as_reader()
            .take(BODY_LIMIT + 1)
            .read_to_end(&mut body)
            .is_err()
        || body.len() as u64 > BODY_LIMIT;
    let incoming = Incoming {
        method,
        path,
        query,
        headers,
        body,
    };
    let (reply, replayed, html) = if too_big {
        (
            Reply::json(
                413,
                json!({"error": {"type": "invalid_request_error", "message": "Request body too large."}}),
            ),
            false,
            None,
        )
    } else {
        route(shared, &incoming)
    };
    if !incoming.path.starts_with("/_sim") {
        let (invalid_request, invalid_response) = if incoming.path.starts_with("/v1/") && !too_big {
            stripe::fidelity(&incoming, &reply)
        } else {
            (None, Vec::new())
        };
        shared.lock().requests.push(RequestRecord {
            seq: 0,
            method: incoming.method.clone(),
            path: incoming.path.clone(),
            query: incoming.query.clone(),
            body: String::from_utf8_lossy(&incoming.body).into_owned(),
            idempotency_key: incoming.header("Idempotency-Key").map(str::to_string),
            status: reply.status,
            replayed,
            invalid_request,
            invalid_response,
            key_last4: incoming
                .header("Authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(|k| k.trim())
                .filter(|k| k.chars().count() >= 8)
                .map(|k| {
                    let tail: Vec<char> = k.chars().rev().take(4).collect();
                    tail.into_iter().rev().collect()
                }),
        });
        let mut w = shared.lock();
        let n = w.requests.len() as u64;
        if let Some(last) = w.requests.last_mut() {
            last.seq = n;
        }
    }
    let (data, content_type) = match (html, &reply.body) {
        (Some(page), _) => (page.into_bytes(), "text/html; charset=utf-8"),
        (None, Some(b)) => (
            serde_json::to_vec_pretty(b).unwrap_or_default(),
            "application/json",
        ),
        (None, None) => (Vec::new(), "application/json"),
    };
    let mut response = tiny_http::Response::from_data(data).with_status_code(reply.status);
    let all = std::iter::once(("Content-Type".to_string(), content_type.to_string()))
        .chain(reply.headers);
    for (k, v) in all {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            response.add_header(h);
        }
    }
    let _ = request.respond(response);
}

fn route(shared: &Shared, req: &Incoming) -> (Reply, bool, Option<String>) {
    if let Some(rest) = req.path.strip_prefix("/_sim") {
        return (control(shared, req, rest), false, None);
    }
    if req.path.starts_with("/c/pay/") || req.path.starts_with("/b/") {
        return checkout_page(shared, req);
    }
    let stripe = req.path.starts_with("/v1/");
    let fault = shared.lock().take_fault(&req.method, &req.path);
    match fault {
        Some(FaultKind::LoseAnswer { ms }) => {
            let (_, replayed, _) = serve(shared, req, stripe);
            let ms = ms.unwrap_or_else(|| shared.lock().config.hang_ms);
            std::thread::sleep(Duration::from_millis(ms));
            return (gateway_timeout("the answer was lost"), replayed, None);
        }
        Some(kind) => return (fault_reply(shared, kind, stripe), false, None),
        None => {}
    }
    serve(shared, req, stripe)
}

/// The fake API proper, without faults.
fn serve(shared: &Shared, req: &Incoming, stripe: bool) -> (Reply, bool, Option<String>) {
    if stripe {
        let (reply, replayed) = shared.with(|w| w.stripe(req));
        (reply, replayed, None)
    } else {
        (shared.with(|w| w.calendly(req)), false, None)
    }
}

fn fault_reply(shared: &Shared, kind: FaultKind, stripe: bool) -> Reply {
    match kind {
        FaultKind::RateLimit { retry_after_secs } => {
            let reply = if stripe {
                stripe::error(429, "invalid_request_error", Some("rate_limit"), "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.", None)
            } else {
                calendly::error(
                    429,
                    "Too Many Requests",
                    "You have exceeded the rate limit. Please try again later.",
                )
                .with_header("X-RateLimit-Limit", "500")
                .with_header("X-RateLimit-Remaining", "0")
                .with_header("X-RateLimit-Reset", retry_after_secs.to_string())
            };
            reply.with_header("Retry-After", retry_after_secs.to_string())
        }
        FaultKind::ServerError => {
            if stripe {
                stripe::error(
                    500,
                    "api_error",
                    None,
                    "An unknown error occurred (injected by the simulator).",
                    None,
                )
            } else {
                calendly::error(
                    500,
                    "Internal Server Error",
                    "An unexpected error occurred (injected by the simulator).",
                )
            }
        }
        FaultKind::Timeout { ms } => {
            let ms = ms.unwrap_or_else(|| shared.lock().config.hang_ms);
            std::thread::sleep(Duration::from_millis(ms));
            gateway_timeout("Gateway timeout")
        }
        FaultKind::LoseAnswer { .. } => gateway_timeout("the answer was lost"),
    }
}

fn gateway_timeout(what: &str) -> Reply {
    Reply::json(
        504,
        json!({"error": {"type": "api_error", "message": format!("{what} (injected by the simulator).")}}),
    )
}

fn body_json(req: &Incoming) -> Result<Value, Reply> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&req.body).map_err(|e| bad(&format!("body is not JSON: {e}")))
}

fn bad(message: &str) -> Reply {
    Reply::json(400, json!({"error": message}))
}

fn ok_or_bad(r: Result<Value, String>) -> Reply {
    match r {
        Ok(v) => Reply::json(200, v),
        Err(e) => bad(&e),
    }
}

/// The control API. Everything is JSON; errors are `{"error": "..."}` with 400/404.
fn control(shared: &Shared, req: &Incoming, rest: &str) -> Reply {
    let body = match body_json(req) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let str_arg = |k: &str| body[k].as_str().map(str::to_string);
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["health"]) => Reply::json(200, json!({"ok": true})),
        ("POST", ["calendly", "book"]) => ok_or_bad(shared.with(|w| w.book(&body))),
        ("POST", ["calendly", "cancel"]) => ok_or_bad(shared.with(|w| w.cancel(&body))),
        ("POST", ["calendly", "reschedule"]) => ok_or_bad(shared.with(|w| w.reschedule(&body))),
        ("POST", ["calendly", "no_show"]) => {
            let Some(invitee) = str_arg("invitee") else {
                return bad("invitee is required");
            };
            shared.with(|w| match w.mark_no_show(calendly::uuid_of(&invitee)) {
                Ok(v) => Reply::json(200, v),
                Err(r) => r,
            })
        }
        ("POST", ["calendly", "webhook_subscriptions", uuid, "disable"]) => {
            ok_or_bad(shared.with(|w| w.disable_subscription(uuid)))
        }
        ("POST", ["calendly", "free_plan"]) => {
            shared.with(|w| w.calendly.free_plan = body["enabled"] != false);
            Reply::json(200, json!({"ok": true}))
        }
        ("GET", ["calendly", "webhooks"]) => {
            Reply::json(200, json!(shared.lock().calendly.webhooks))
        }
        ("GET", ["calendly", "user"]) => Reply::json(200, shared.lock().calendly.user.clone()),
        ("GET", ["calendly", "event_types"]) => {
            Reply::json(200, json!(shared.lock().calendly.event_types))
        }
        ("POST", ["stripe", "pay"]) => ok_or_bad(shared.with(|w| pay(w, &body))),
        ("POST", ["stripe", "open"]) => {
            // The client opens a payment link's Checkout page and leaves without paying.
            let Some(link) = str_arg("payment_link") else {
                return bad("payment_link is required");
            };
            let params = json!({"client_reference_id": body["client_reference_id"], "customer_email": body["email"]});
            ok_or_bad(shared.with(|w| {
                let id = session_for_link(w, &link, &params)?;
                w.stripe
                    .sessions
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| format!("session {id} vanished"))
            }))
        }
        ("POST", ["stripe", "async_result"]) => {
            let Some(session) = str_arg("session") else {
                return bad("session is required");
            };
            let ok = body["succeeded"] != false;
            ok_or_bad(shared.with(|w| w.settle_async_payment(&session, ok)))
        }
        ("POST", ["stripe", "expire"]) => {
            let Some(session) = str_arg("session") else {
                return bad("session is required");
            };
            shared.with(|w| match w.expire_session(&session, no_request()) {
                Ok(v) => Reply::json(200, v),
                Err(r) => r,
            })
        }
        ("POST", ["stripe", "dashboard_refund"]) => {
            let params = form_params(&body);
            shared.with(|w| w.create_refund(&params, no_request()))
        }
        ("POST", ["stripe", "refund_settle"]) => {
            let (Some(refund), Some(status)) = (str_arg("refund"), str_arg("status")) else {
                return bad("refund and status are required");
            };
            let reason = str_arg("failure_reason");
            ok_or_bad(shared.with(|w| w.settle_refund(&refund, &status, reason.as_deref())))
        }
        ("POST", ["stripe", "dispute"]) => {
            let reason = str_arg("reason").unwrap_or_else(|| "fraudulent".into());
            let withdraw = body["withdraw_funds"] == true;
            let mut params = body.clone();
            if let Some(m) = params.as_object_mut() {
                m.remove("withdraw_funds");
            }
            ok_or_bad(shared.with(|w| w.dispute(&form_params(&params), &reason, withdraw)))
        }
        ("POST", ["stripe", "dispute_close"]) => {
            let (Some(pi), Some(status)) = (str_arg("payment_intent"), str_arg("status")) else {
                return bad("payment_intent and status are required");
            };
            ok_or_bad(shared.with(|w| w.close_dispute(&pi, &status)))
        }
        ("POST", ["stripe", "refund_status"]) => {
            let status = str_arg("status");
            shared.with(|w| w.stripe.refund_status = status);
            Reply::json(200, json!({"ok": true}))
        }
        ("GET", ["stripe", "events"]) => Reply::json(200, json!(shared.lock().stripe.events)),
        ("GET", ["stripe", "checkout_sessions"]) => {
            let q = req.query_pairs();
            let w = shared.lock();
            let list: Vec<&Value> = w
                .stripe
                .sessions
                .values()
                .filter(|s| {
                    q.get("client_reference_id")
                        .is_none_or(|c| s["client_reference_id"] == c.as_str())
                })
                .collect();
            Reply::json(200, json!(list))
        }
        ("GET", ["requests"]) => {
            let q = req.query_pairs();
            let w = shared.lock();
            let list: Vec<&RequestRecord> = w
                .requests
                .iter()
                .filter(|r| {
                    q.get("method")
                        .is_none_or(|m| r.method.eq_ignore_ascii_case(m))
                })
                .filter(|r| {
                    q.get("path_prefix")
                        .is_none_or(|p| r.path.starts_with(p.as_str()))
                })
                .collect();
            Reply::json(200, json!(list))
        }
        ("DELETE", ["requests"]) => {
            shared.lock().requests.clear();
            Reply::json(200, json!({"ok": true}))
        }
        ("POST", ["faults"]) => match serde_json::from_value::<Fault>(body) {
            Ok(f) => {
                shared.lock().faults.push(f);
                Reply::json(200, json!({"ok": true}))
            }
            Err(e) => bad(&format!("invalid fault: {e}")),
        },
        ("DELETE", ["faults"]) => {
            shared.lock().faults.clear();
            Reply::json(200, json!({"ok": true}))
        }
        ("GET", ["webhooks", "knobs"]) => Reply::json(200, json!(shared.outbox.knobs())),
        ("POST", ["webhooks", "knobs"]) => match serde_json::from_value::<DeliveryKnobs>(body) {
            Ok(k) => {
                shared.outbox.set_knobs(k.clone());
                Reply::json(200, json!(k))
            }
            Err(e) => bad(&format!("invalid knobs: {e}")),
        },
        ("POST", ["webhooks", "targets"]) => {
            let parse = |k: &str| serde_json::from_value::<Option<WebhookTarget>>(body[k].clone());
            match (parse("stripe"), parse("calendly")) {
                (Ok(s), Ok(c)) => {
                    let mut w = shared.lock();
                    if body.get("stripe").is_some() {
                        w.stripe_target = s;
                    }
                    if body.get("calendly").is_some() {
                        w.calendly_target = c;
                    }
                    Reply::json(200, json!({"ok": true}))
                }
                _ => {
                    bad("targets are {\"stripe\": {\"url\", \"secret\"} | null, \"calendly\": ...}")
                }
            }
        }
        ("POST", ["webhooks", "flush"]) => {
            let ms = body["timeout_ms"].as_u64().unwrap_or(10_000);
            let done = shared.outbox.flush(Duration::from_millis(ms));
            Reply::json(if done { 200 } else { 504 }, json!({"flushed": done}))
        }
        ("GET", ["webhooks", "deliveries"]) => Reply::json(200, json!(shared.outbox.log())),
        ("POST", ["clock", "advance"]) => {
            let secs = body["seconds"].as_i64().unwrap_or(0);
            let now = shared.with(|w| {
                w.clock_offset += secs;
                w.expire_due_sessions();
                w.now()
            });
            Reply::json(200, json!({"now": now}))
        }
        ("GET", ["clock"]) => Reply::json(200, json!({"now": shared.lock().now()})),
        _ => Reply::json(
            404,
            json!({"error": format!("no control endpoint {} /_sim{rest}", req.method)}),
        ),
    }
}

/// Control JSON with numbers turned into the strings the Stripe handlers expect.
fn form_params(body: &Value) -> Value {
    match body {
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), form_params(v))).collect())
        }
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other.clone(),
    }
}

/// Pay: a given session, the newest open session for a `client_reference_id`, or a new
/// session through a payment link.
fn pay(w: &mut World, body: &Value) -> Result<Value, String> {
    let delayed = body["method"] == "async";
    let email = body["email"].as_str();
    let name = body["name"].as_str();
    let session = if let Some(id) = body["session"].as_str() {
        id.to_string()
    } else if let Some(link) = body["payment_link"].as_str() {
        let params =
            json!({"client_reference_id": body["client_reference_id"], "customer_email": email});
        session_for_link(w, link, &params)?
    } else if let Some(reference) = body["client_reference_id"].as_str() {
        w.stripe
            .sessions
            .values()
            .filter(|s| s["client_reference_id"] == reference && s["status"] == "open")
            .max_by_key(|s| s["created"].as_i64())
            .and_then(|s| s["id"].as_str().map(str::to_string))
            .ok_or_else(|| format!("no open checkout session with client_reference_id {reference}; pass payment_link to pay through a link"))?
    } else {
        return Err("give session, payment_link or client_reference_id".into());
    };
    w.pay_session(&session, email, name, delayed)
}

fn session_for_link(w: &mut World, link: &str, params: &Value) -> Result<String, String> {
    let plink = w
        .stripe
        .payment_links
        .get(link)
        .cloned()
        .ok_or_else(|| format!("no payment link {link}"))?;
    let amount = plink["_sim"]["amount"].as_i64().unwrap_or(0);
    let currency = plink["currency"].as_str().unwrap_or("").to_string();
    // Like Stripe, a client_reference_id with other characters is silently dropped.
    let mut params = params.clone();
    let valid = params["client_reference_id"].as_str().is_some_and(|c| {
        c.len() <= 200
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    });
    if !valid {
        params["client_reference_id"] = Value::Null;
    }
    params["metadata"] = plink["metadata"].clone();
    let expires = w.now() + 24 * 3600;
    let session = w.new_session(&params, amount, &currency, expires, Some(link));
    Ok(session["id"].as_str().unwrap_or_default().to_string())
}

/// Demo mode's stand-in for Stripe's hosted pages.
fn checkout_page(shared: &Shared, req: &Incoming) -> (Reply, bool, Option<String>) {
    let segments = req.segments();
    match (req.method.as_str(), segments.as_slice()) {
        ("GET", ["b", link]) => {
            let q = req.query_pairs();
            let params = json!({"client_reference_id": q.get("client_reference_id"), "customer_email": q.get("prefilled_email")});
            match shared.with(|w| session_for_link(w, link, &params)) {
                Ok(id) => (
                    Reply::empty(303).with_header("Location", format!("/c/pay/{id}")),
                    false,
                    None,
                ),
                Err(e) => (
                    Reply::empty(404),
                    false,
                    Some(page("Payment link not found", &e, None)),
                ),
            }
        }
        ("GET", ["c", "pay", id]) => {
            let session = shared.lock().stripe.sessions.get(*id).cloned();
            match session {
                Some(s) if s["status"] == "open" => {
                    let text = format!(
                        "{} {} for {}",
                        s["amount_total"],
                        s["currency"].as_str().unwrap_or(""),
                        s["client_reference_id"]
                    );
                    (
                        Reply::empty(200),
                        false,
                        Some(page("Simulated Stripe Checkout", &text, Some(id))),
                    )
                }
                Some(s) => (
                    Reply::empty(200),
                    false,
                    Some(page(
                        "Checkout",
                        &format!("This session is {}.", s["status"]),
                        None,
                    )),
                ),
                None => (
                    Reply::empty(404),
                    false,
                    Some(page("Checkout", "No such session.", None)),
                ),
            }
        }
        ("POST", ["c", "pay", id]) => match shared.with(|w| w.pay_session(id, None, None, false)) {
            Ok(s) => {
                let to = s["success_url"]
                    .as_str()
                    .unwrap_or("/")
                    .replace("{CHECKOUT_SESSION_ID}", id);
                (Reply::empty(303).with_header("Location", to), false, None)
            }
            Err(e) => (Reply::empty(409), false, Some(page("Checkout", &e, None))),
        },
        _ => (Reply::empty(404), false, Some(page("Not found", "", None))),
    }
}

fn page(title: &str, text: &str, pay: Option<&str>) -> String {
    let esc = |s: &str| html_escape::encode_quoted_attribute(s).into_owned();
    let form = pay
        .map(|id| {
            format!(
                "<form method=\"post\" action=\"/c/pay/{}\"><button>Pay</button></form>",
                esc(id)
            )
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><title>{0}</title><h1>{0}</h1><p>{1}</p>{form}",
        esc(title),
        esc(text)
    )
}
