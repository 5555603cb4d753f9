//! The fake Stripe API: the endpoints Coachdesk calls, with Stripe's form encoding,
//! bearer secret key, `Idempotency-Key` semantics, error JSON and status codes, list
//! pagination, and an Event (same id as the webhook) for every state change.
//!
//! Objects are kept as JSON in the shapes of Stripe's API version 2023-08-16 (what the
//! bundled OpenAPI description says); the fidelity tests check every answer against it.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Map, Value};

use crate::form;
use crate::spec;
use crate::webhook::{Delivery, Provider, WebhookTarget};
use crate::world::{Incoming, Reply, World};

/// A saved idempotent result.
#[derive(Debug, Clone)]
struct Saved {
    fingerprint: String,
    reply: Reply,
    /// When it was saved (the simulator's clock): Stripe keeps a key for 24 hours, then
    /// may prune it, and so does the simulator.
    saved_at: i64,
}

/// How long an `Idempotency-Key` is remembered, in seconds of the simulator's clock.
pub const IDEMPOTENCY_KEY_LIFETIME: i64 = 24 * 3600;

/// Most webhook endpoints one Stripe account may have.
pub const MAX_WEBHOOK_ENDPOINTS: usize = 16;

/// An endpoint URL must be an absolute http(s) URL. Stripe also refuses addresses it cannot
/// reach; the simulator delivers on loopback, so it takes them.
fn check_endpoint_url(url: &str) -> Result<(), Reply> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        _ => Err(invalid(
            "url_invalid",
            &format!(
                "Invalid URL: {url}. URLs must begin with http:// or https:// and name a host."
            ),
            Some("url"),
        )),
    }
}

/// `n` random letters and digits (a signing secret's tail).
fn random_token(n: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

/// Stripe's objects and events.
#[derive(Debug, Default)]
pub struct StripeState {
    pub products: BTreeMap<String, Value>,
    pub prices: BTreeMap<String, Value>,
    pub payment_links: BTreeMap<String, Value>,
    pub sessions: BTreeMap<String, Value>,
    pub payment_intents: BTreeMap<String, Value>,
    pub charges: BTreeMap<String, Value>,
    pub refunds: BTreeMap<String, Value>,
    pub disputes: BTreeMap<String, Value>,
    /// Webhook endpoints made through the API, without their secrets.
    pub webhook_endpoints: BTreeMap<String, Value>,
    /// Each endpoint's signing secret (`whsec_...`): shown once, at creation, as Stripe does.
    endpoint_secrets: BTreeMap<String, String>,
    /// Oldest first.
    pub events: Vec<Value>,
    idempotency: HashMap<(String, String), Saved>,
    /// Status new refunds get (`succeeded` unless a test asks for `pending`).
    pub refund_status: Option<String>,
}

/// Stripe's error body.
pub fn error(
    status: u16,
    kind: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> Reply {
    let mut e = Map::new();
    e.insert("type".into(), json!(kind));
    e.insert("message".into(), json!(message));
    if let Some(code) = code {
        e.insert("code".into(), json!(code));
        e.insert(
            "doc_url".into(),
            json!(format!(
                "https://stripe.com/docs/error-codes/{}",
                code.replace('_', "-")
            )),
        );
    }
    if let Some(param) = param {
        e.insert("param".into(), json!(param));
    }
    Reply::json(status, json!({ "error": e }))
}

fn invalid(code: &str, message: &str, param: Option<&str>) -> Reply {
    error(400, "invalid_request_error", Some(code), message, param)
}

fn missing(kind: &str, id: &str, param: &str) -> Reply {
    error(
        404,
        "invalid_request_error",
        Some("resource_missing"),
        &format!("No such {kind}: '{id}'"),
        Some(param),
    )
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|x| x.parse().ok())
}

fn metadata(params: &Value) -> Value {
    match params.get("metadata") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => json!({}),
    }
}

/// Route template for a Stripe path, with the path id if any.
pub fn template(method: &str, segments: &[&str]) -> Option<(&'static str, Option<String>)> {
    let t = match (method, segments) {
        ("POST", ["v1", "products"]) => ("/v1/products", None),
        ("POST", ["v1", "prices"]) => ("/v1/prices", None),
        ("POST", ["v1", "payment_links"]) => ("/v1/payment_links", None),
        ("POST", ["v1", "checkout", "sessions"]) => ("/v1/checkout/sessions", None),
        ("GET", ["v1", "checkout", "sessions", id]) => {
            ("/v1/checkout/sessions/{session}", Some(id.to_string()))
        }
        ("POST", ["v1", "checkout", "sessions", id, "expire"]) => (
            "/v1/checkout/sessions/{session}/expire",
            Some(id.to_string()),
        ),
        ("POST", ["v1", "refunds"]) | ("GET", ["v1", "refunds"]) => ("/v1/refunds", None),
        ("GET", ["v1", "refunds", id]) => ("/v1/refunds/{refund}", Some(id.to_string())),
        ("GET", ["v1", "events"]) => ("/v1/events", None),
        ("POST", ["v1", "webhook_endpoints"]) | ("GET", ["v1", "webhook_endpoints"]) => {
            ("/v1/webhook_endpoints", None)
        }
        ("GET" | "POST" | "DELETE", ["v1", "webhook_endpoints", id]) => (
            "/v1/webhook_endpoints/{webhook_endpoint}",
            Some(id.to_string()),
        ),
        _ => return None,
    };
    Some(t)
}

/// Checks one Stripe request and its answer against the OpenAPI description: the first
/// problem of the request (if it breaks the description) and every problem of a 200 answer.
/// Routes the simulator does not serve give no verdict (they are 404s already).
pub fn fidelity(req: &Incoming, reply: &Reply) -> (Option<String>, Vec<String>) {
    let segments = req.segments();
    let Some((tpl, _)) = template(&req.method, &segments) else {
        return (None, Vec::new());
    };
    let spec = match spec::stripe_spec() {
        Ok(spec) => spec,
        Err(e) => return (Some(e.clone()), vec![e]),
    };
    let raw = if req.method == "POST" {
        req.body.as_slice()
    } else {
        req.query.as_bytes()
    };
    let request = match form::parse(raw) {
        Ok(params) => spec
            .check_request(&req.method, tpl, &params)
            .err()
            .map(|v| format!("{v} ({})", v.param())),
        Err(e) => Some(e.to_string()),
    };
    let response = match (&reply.body, reply.status) {
        (Some(body), 200) => spec
            .check_response(&req.method, tpl, body)
            .err()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    (request, response)
}

/// A restricted key (`rk_test_...`) as the relay holds one: Checkout Sessions Write (which
/// includes read) and nothing else. Stripe answers any other endpoint 403 so.
fn restricted_refusal(key: &str, tpl: &str) -> Option<Reply> {
    if !key.starts_with("rk_") || tpl.starts_with("/v1/checkout/sessions") {
        return None;
    }
    let shown: String = key.chars().take(8).collect();
    let msg = format!("The provided key '{shown}****' does not have the required permissions for this endpoint on account 'acct_sim'. Having the 'rak_checkout_session_write' permission would allow this request to continue.");
    Some(error(403, "invalid_request_error", None, &msg, None))
}

impl World {
    /// Handle a request under `/v1/`.
    pub fn stripe(&mut self, req: &Incoming) -> (Reply, bool) {
        let key = match self.stripe_auth(req) {
            Ok(key) => key,
            Err(reply) => return (reply, false),
        };
        let segments = req.segments();
        let Some((tpl, id)) = template(&req.method, &segments) else {
            let msg = format!("Unrecognized request URL ({} {}). The simulator serves only the endpoints Coachdesk uses.", req.method, req.path);
            return (invalid("url_invalid", &msg, None).tap_status(404), false);
        };
        if let Some(reply) = restricted_refusal(&key, tpl) {
            return (reply, false);
        }
        let raw = if req.method == "POST" {
            req.body.as_slice()
        } else {
            req.query.as_bytes()
        };
        let params = match form::parse(raw) {
            Ok(p) => p,
            Err(e) => {
                return (
                    invalid("parameter_invalid_string", &e.to_string(), None),
                    false,
                )
            }
        };
        if self.config.validate_requests {
            match spec::stripe_spec() {
                Ok(spec) => {
                    if let Err(v) = spec.check_request(&req.method, tpl, &params) {
                        return (invalid(v.code(), &v.to_string(), Some(v.param())), false);
                    }
                }
                Err(e) => return (error(500, "api_error", None, &e, None), false),
            }
        }
        let idem = if req.method == "POST" {
            req.header("Idempotency-Key").map(str::to_string)
        } else {
            None
        };
        if let Some(k) = &idem {
            if k.len() > 255 {
                return (
                    invalid(
                        "idempotency_key_too_long",
                        "Idempotency-Key must be at most 255 characters.",
                        None,
                    ),
                    false,
                );
            }
            let fingerprint = format!("{} {} {}", req.method, req.path, params);
            let now = self.now();
            let slot = (key.clone(), k.clone());
            if self
                .stripe
                .idempotency
                .get(&slot)
                .is_some_and(|saved| now - saved.saved_at >= IDEMPOTENCY_KEY_LIFETIME)
            {
                // Forgotten: the same key now makes a new request.
                self.stripe.idempotency.remove(&slot);
            }
            if let Some(saved) = self.stripe.idempotency.get(&slot) {
                if saved.fingerprint == fingerprint {
                    return (
                        saved
                            .reply
                            .clone()
                            .with_header("Idempotent-Replayed", "true"),
                        true,
                    );
                }
                let msg = format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{k}' if you meant to execute a different request.");
                return (error(400, "idempotency_error", None, &msg, None), false);
            }
            let request_id = self.stripe_id("req");
            let reply = self.stripe_execute(
                &req.method,
                tpl,
                id.as_deref(),
                &params,
                Some(k),
                &request_id,
            );
            let reply = reply.with_header("Request-Id", request_id);
            self.stripe.idempotency.insert(
                slot,
                Saved {
                    fingerprint,
                    reply: reply.clone(),
                    saved_at: now,
                },
            );
            return (reply.with_header("Idempotency-Key", k.clone()), false);
        }
        let request_id = self.stripe_id("req");
        (
            self.stripe_execute(&req.method, tpl, id.as_deref(), &params, None, &request_id)
                .with_header("Request-Id", request_id),
            false,
        )
    }

    fn stripe_auth(&self, req: &Incoming) -> Result<String, Reply> {
        let no_key = "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').";
        let header = req
            .header("Authorization")
            .ok_or_else(|| error(401, "invalid_request_error", None, no_key, None))?;
        let key = header.strip_prefix("Bearer ").map(str::trim).unwrap_or("");
        if key.is_empty() {
            return Err(error(401, "invalid_request_error", None, no_key, None));
        }
        let accepted = match &self.config.stripe_api_key {
            Some(expected) => key == expected,
            None => ["sk_test_", "rk_test_"]
                .iter()
                .any(|p| key.starts_with(p) && key.len() > p.len()),
        };
        if !accepted {
            let shown: String = key.chars().take(8).collect();
            let msg = format!("Invalid API Key provided: {shown}****");
            // Stripe sends no `code` for an unknown key (clients such as async-stripe
            // refuse codes they do not know).
            return Err(error(401, "invalid_request_error", None, &msg, None));
        }
        Ok(key.to_string())
    }

    fn stripe_execute(
        &mut self,
        method: &str,
        tpl: &str,
        id: Option<&str>,
        p: &Value,
        idem: Option<&str>,
        request_id: &str,
    ) -> Reply {
        let request = json!({"id": request_id, "idempotency_key": idem});
        match (tpl, id) {
            ("/v1/products", _) => self.create_product(p),
            ("/v1/prices", _) => self.create_price(p),
            ("/v1/payment_links", _) => self.create_payment_link(p),
            ("/v1/checkout/sessions", _) => self.create_session(p),
            ("/v1/checkout/sessions/{session}", Some(id)) => match self.stripe.sessions.get(id) {
                Some(s) => Reply::json(200, s.clone()),
                None => missing("checkout.session", id, "session"),
            },
            ("/v1/checkout/sessions/{session}/expire", Some(id)) => {
                match self.expire_session(id, request) {
                    Ok(s) => Reply::json(200, s),
                    Err(r) => r,
                }
            }
            ("/v1/refunds", _) if method == "GET" => self.list_refunds(p),
            ("/v1/refunds", _) => self.create_refund(p, request),
            ("/v1/refunds/{refund}", Some(id)) => match self.stripe.refunds.get(id) {
                Some(r) => Reply::json(200, r.clone()),
                None => missing("refund", id, "refund"),
            },
            ("/v1/events", _) => self.list_events(p),
            ("/v1/webhook_endpoints", _) if method == "GET" => self.list_webhook_endpoints(p),
            ("/v1/webhook_endpoints", _) => self.create_webhook_endpoint(p),
            ("/v1/webhook_endpoints/{webhook_endpoint}", Some(id)) => match method {
                "GET" => match self.stripe.webhook_endpoints.get(id) {
                    Some(e) => Reply::json(200, e.clone()),
                    None => missing("webhook_endpoint", id, "webhook_endpoint"),
                },
                "POST" => self.update_webhook_endpoint(id, p),
                _ => self.delete_webhook_endpoint(id),
            },
            _ => invalid("url_invalid", "Unrecognized request URL.", None),
        }
    }

    fn create_product(&mut self, p: &Value) -> Reply {
        let id = self.stripe_id("prod");
        let now = self.now();
        let product = json!({
            "id": id, "object": "product", "active": p.get("active").and_then(Value::as_str) != Some("false"),
            "created": now, "updated": now, "default_price": null,
            "description": s(p, "description"), "features": [], "images": [], "livemode": false,
            "metadata": metadata(p), "name": s(p, "name").unwrap_or_default(), "package_dimensions": null,
            "shippable": null, "statement_descriptor": null, "tax_code": null, "type": "service",
            "unit_label": null, "url": null,
        });
        self.stripe.products.insert(id, product.clone());
        Reply::json(200, product)
    }

    fn create_price(&mut self, p: &Value) -> Reply {
        let product = match (s(p, "product"), p.get("product_data")) {
            (Some(prod), _) if self.stripe.products.contains_key(&prod) => prod,
            (Some(prod), _) => {
                return invalid(
                    "resource_missing",
                    &format!("No such product: '{prod}'"),
                    Some("product"),
                )
            }
            (None, Some(data)) => {
                let reply = self.create_product(data);
                match reply.body.as_ref().and_then(|b| s(b, "id")) {
                    Some(id) => id,
                    None => return reply,
                }
            }
            (None, None) => {
                return invalid(
                    "parameter_missing",
                    "Missing required param: product.",
                    Some("product"),
                )
            }
        };
        let Some(amount) = int(p, "unit_amount") else {
            return invalid(
                "parameter_missing",
                "Missing required param: unit_amount.",
                Some("unit_amount"),
            );
        };
        if amount < 0 {
            return invalid(
                "parameter_invalid_integer",
                "Invalid non-negative integer",
                Some("unit_amount"),
            );
        }
        let id = self.stripe_id("price");
        let recurring = p.get("recurring").map(|r| {
            json!({"interval": s(r, "interval"), "interval_count": int(r, "interval_count").unwrap_or(1),
                   "aggregate_usage": null, "trial_period_days": null, "usage_type": "licensed"})
        });
        let price = json!({
            "id": id, "object": "price", "active": true, "billing_scheme": "per_unit", "created": self.now(),
            "currency": s(p, "currency").unwrap_or_default().to_lowercase(), "custom_unit_amount": null,
            "livemode": false, "lookup_key": s(p, "lookup_key"), "metadata": metadata(p), "nickname": s(p, "nickname"),
            "product": product, "tax_behavior": "unspecified", "tiers_mode": null, "transform_quantity": null,
            "type": if recurring.is_some() { "recurring" } else { "one_time" }, "recurring": recurring,
            "unit_amount": amount, "unit_amount_decimal": amount.to_string(),
        });
        self.stripe.prices.insert(id, price.clone());
        Reply::json(200, price)
    }

    /// Sum line items `[{price}|{price_data}, quantity]` into (amount, currency).
    fn price_line_items(&self, items: &Value) -> Result<(i64, String), Reply> {
        let Some(items) = items.as_array().filter(|i| !i.is_empty()) else {
            return Err(invalid(
                "parameter_missing",
                "Missing required param: line_items.",
                Some("line_items"),
            ));
        };
        let mut total = 0i64;
        let mut currency: Option<String> = None;
        for (i, item) in items.iter().enumerate() {
            let quantity = int(item, "quantity").unwrap_or(1);
            if quantity < 1 {
                return Err(invalid(
                    "parameter_invalid_integer",
                    "Invalid positive integer",
                    Some(&format!("line_items[{i}][quantity]")),
                ));
            }
            let (unit, cur) = if let Some(price_id) = s(item, "price") {
                let Some(price) = self.stripe.prices.get(&price_id) else {
                    return Err(invalid(
                        "resource_missing",
                        &format!("No such price: '{price_id}'"),
                        Some(&format!("line_items[{i}][price]")),
                    ));
                };
                (
                    price["unit_amount"].as_i64().unwrap_or(0),
                    s(price, "currency").unwrap_or_default(),
                )
            } else if let Some(data) = item.get("price_data") {
                if data.get("product").is_none() && data.get("product_data").is_none() {
                    return Err(invalid(
                        "parameter_missing",
                        &format!(
                            "Missing required param: line_items[{i}][price_data][product_data]."
                        ),
                        Some(&format!("line_items[{i}][price_data][product_data]")),
                    ));
                }
                let Some(unit) = int(data, "unit_amount") else {
                    return Err(invalid(
                        "parameter_missing",
                        &format!(
                            "Missing required param: line_items[{i}][price_data][unit_amount]."
                        ),
                        Some(&format!("line_items[{i}][price_data][unit_amount]")),
                    ));
                };
                (unit, s(data, "currency").unwrap_or_default().to_lowercase())
            } else {
                return Err(invalid(
                    "parameter_missing",
                    &format!("Missing required param: line_items[{i}][price]."),
                    Some(&format!("line_items[{i}][price]")),
                ));
            };
            if currency.as_ref().is_some_and(|c| *c != cur) {
                return Err(invalid(
                    "parameter_invalid_string",
                    "All line items must use the same currency.",
                    Some("line_items"),
                ));
            }
            currency = Some(cur);
            total = total.saturating_add(unit.saturating_mul(quantity));
        }
        Ok((total, currency.unwrap_or_default()))
    }

    fn create_payment_link(&mut self, p: &Value) -> Reply {
        let (amount, currency) = match self.price_line_items(&p["line_items"]) {
            Ok(x) => x,
            Err(r) => return r,
        };
        let id = self.stripe_id("plink");
        let url = format!("{}/b/{id}", self.base_url);
        let after = match p.get("after_completion") {
            Some(a) if s(a, "type").as_deref() == Some("redirect") => {
                json!({"type": "redirect", "redirect": {"url": a.pointer("/redirect/url")}})
            }
            _ => {
                json!({"type": "hosted_confirmation", "hosted_confirmation": {"custom_message": null}})
            }
        };
        let link = json!({
            "id": id, "object": "payment_link", "active": true, "after_completion": after,
            "allow_promotion_codes": false, "application_fee_amount": null, "application_fee_percent": null,
            "automatic_tax": {"enabled": false}, "billing_address_collection": "auto", "consent_collection": null,
            "currency": currency, "custom_fields": [], "custom_text": {"shipping_address": null, "submit": null},
            "customer_creation": "if_required", "inactive_message": null, "invoice_creation": null, "livemode": false,
            "metadata": metadata(p), "on_behalf_of": null, "payment_intent_data": null,
            "payment_method_collection": "always", "payment_method_types": null,
            "phone_number_collection": {"enabled": false}, "restrictions": null, "shipping_address_collection": null,
            "shipping_options": [], "submit_type": "auto", "subscription_data": null,
            "tax_id_collection": {"enabled": false}, "transfer_data": null, "url": url,
        });
        let mut internal = link.clone();
        internal["_sim"] = json!({"amount": amount, "line_items": p["line_items"].clone()});
        self.stripe.payment_links.insert(id, internal);
        Reply::json(200, link)
    }

    fn create_session(&mut self, p: &Value) -> Reply {
        if s(p, "mode").is_none() {
            return invalid(
                "parameter_missing",
                "Missing required param: mode.",
                Some("mode"),
            );
        }
        if s(p, "mode").as_deref() != Some("payment") {
            return invalid(
                "parameter_invalid_string",
                "The simulator serves only mode=payment Checkout Sessions.",
                Some("mode"),
            );
        }
        let (amount, currency) = match self.price_line_items(&p["line_items"]) {
            Ok(x) => x,
            Err(r) => return r,
        };
        let now = self.now();
        let expires_at = match int(p, "expires_at") {
            None => now + 24 * 3600,
            Some(t) if t > now + 24 * 3600 => {
                return invalid("parameter_invalid_integer", "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.", Some("expires_at"))
            }
            // A minute of slack for the time between the caller reading its clock and ours.
            Some(t) if t < now + 30 * 60 - 60 => {
                return invalid("parameter_invalid_integer", "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.", Some("expires_at"))
            }
            Some(t) => t,
        };
        if s(p, "client_reference_id").is_some_and(|c| c.chars().count() > 200) {
            return invalid(
                "parameter_invalid_string",
                "Invalid client_reference_id: must be at most 200 characters",
                Some("client_reference_id"),
            );
        }
        let session = self.new_session(p, amount, &currency, expires_at, None);
        Reply::json(200, session)
    }

    /// Create and store an open session (from the API, or from a payment link visit).
    pub fn new_session(
        &mut self,
        p: &Value,
        amount: i64,
        currency: &str,
        expires_at: i64,
        link: Option<&str>,
    ) -> Value {
        let id = format!(
            "cs_test_{}",
            self.stripe_id("sim").trim_start_matches("sim_")
        );
        let session = json!({
            "id": id, "object": "checkout.session", "after_expiration": null, "allow_promotion_codes": null,
            "amount_subtotal": amount, "amount_total": amount, "automatic_tax": {"enabled": false, "status": null},
            "billing_address_collection": null, "cancel_url": s(p, "cancel_url"),
            "client_reference_id": s(p, "client_reference_id"), "consent": null, "consent_collection": null,
            "created": self.now(), "currency": currency, "currency_conversion": null, "custom_fields": [],
            "custom_text": {"shipping_address": null, "submit": null}, "customer": null,
            "customer_creation": "if_required", "customer_details": null, "customer_email": s(p, "customer_email"),
            "expires_at": expires_at, "invoice": null, "invoice_creation": null, "livemode": false, "locale": null,
            "metadata": metadata(p), "mode": "payment", "payment_intent": null, "payment_link": link,
            "payment_method_collection": "always", "payment_method_options": null,
            "payment_method_types": ["card"], "payment_status": "unpaid", "phone_number_collection": {"enabled": false},
            "recovered_from": null, "setup_intent": null, "shipping_address_collection": null,
            "shipping_cost": null, "shipping_details": null, "shipping_options": [], "status": "open",
            "submit_type": null, "subscription": null, "success_url": s(p, "success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "url": format!("{}/c/pay/{id}", self.base_url),
        });
        self.stripe.sessions.insert(id, session.clone());
        session
    }

    /// Expire an open session (API call, clock passing `expires_at`, or control).
    pub fn expire_session(&mut self, id: &str, request: Value) -> Result<Value, Reply> {
        let Some(session) = self.stripe.sessions.get_mut(id) else {
            return Err(missing("checkout.session", id, "session"));
        };
        if session["status"] != "open" {
            return Err(invalid(
                "checkout_session_not_open",
                "Only Checkout Sessions with a status in [\"open\"] can be expired.",
                None,
            ));
        }
        session["status"] = json!("expired");
        session["url"] = Value::Null;
        let snapshot = session.clone();
        self.emit_stripe("checkout.session.expired", snapshot.clone(), None, request);
        Ok(snapshot)
    }

    /// Expire every open session whose `expires_at` has passed (after a clock advance).
    pub fn expire_due_sessions(&mut self) {
        let now = self.now();
        let due: Vec<String> = self
            .stripe
            .sessions
            .values()
            .filter(|s| s["status"] == "open" && s["expires_at"].as_i64().is_some_and(|t| t <= now))
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
        for id in due {
            let _ = self.expire_session(&id, no_request());
        }
    }

    /// The client completes Checkout. `delayed`: an async method (payment_status unpaid
    /// until [`World::settle_async_payment`]).
    pub fn pay_session(
        &mut self,
        id: &str,
        email: Option<&str>,
        name: Option<&str>,
        delayed: bool,
    ) -> Result<Value, String> {
        let now = self.now();
        let session = self
            .stripe
            .sessions
            .get(id)
            .ok_or_else(|| format!("no checkout session {id}"))?
            .clone();
        if session["status"] != "open" {
            return Err(format!(
                "checkout session {id} is {}, not open",
                session["status"]
            ));
        }
        if session["expires_at"].as_i64().is_some_and(|t| t <= now) {
            self.expire_due_sessions();
            return Err(format!("checkout session {id} has expired"));
        }
        let amount = session["amount_total"].as_i64().unwrap_or(0);
        let currency = s(&session, "currency").unwrap_or_default();
        let email = email
            .map(str::to_string)
            .or_else(|| s(&session, "customer_email"))
            .unwrap_or_else(|| "client@example.com".into());
        let name = name.unwrap_or("Sim Client").to_string();
        let pi = self.stripe_id("pi");
        self.stripe.payment_intents.insert(
            pi.clone(),
            json!({"id": pi, "amount": amount, "currency": currency, "charge": null, "session": id,
                   "status": if delayed { "processing" } else { "succeeded" }}),
        );
        if !delayed {
            self.new_charge(&pi, amount, &currency, &email, &name);
        }
        let session = self.stripe.sessions.get_mut(id).ok_or("session vanished")?;
        session["status"] = json!("complete");
        session["url"] = Value::Null;
        session["payment_intent"] = json!(pi);
        session["payment_status"] = json!(if delayed { "unpaid" } else { "paid" });
        session["customer_details"] = json!({"address": null, "email": email, "name": name, "phone": null, "tax_exempt": "none", "tax_ids": []});
        let snapshot = session.clone();
        Ok(self.emit_unrequested("checkout.session.completed", snapshot, None))
    }

    /// A delayed payment resolves.
    pub fn settle_async_payment(&mut self, id: &str, succeeded: bool) -> Result<Value, String> {
        let session = self
            .stripe
            .sessions
            .get(id)
            .ok_or_else(|| format!("no checkout session {id}"))?
            .clone();
        let pi = s(&session, "payment_intent")
            .ok_or_else(|| format!("checkout session {id} has no payment yet"))?;
        if session["payment_status"] != "unpaid" || session["status"] != "complete" {
            return Err(format!(
                "checkout session {id} is not awaiting a delayed payment"
            ));
        }
        if succeeded {
            let details = &session["customer_details"];
            let email = s(details, "email").unwrap_or_default();
            let name = s(details, "name").unwrap_or_default();
            let amount = session["amount_total"].as_i64().unwrap_or(0);
            let currency = s(&session, "currency").unwrap_or_default();
            self.new_charge(&pi, amount, &currency, &email, &name);
        }
        if let Some(intent) = self.stripe.payment_intents.get_mut(&pi) {
            intent["status"] = json!(if succeeded {
                "succeeded"
            } else {
                "requires_payment_method"
            });
        }
        let session = self.stripe.sessions.get_mut(id).ok_or("session vanished")?;
        if succeeded {
            session["payment_status"] = json!("paid");
        }
        let snapshot = session.clone();
        let kind = if succeeded {
            "checkout.session.async_payment_succeeded"
        } else {
            "checkout.session.async_payment_failed"
        };
        Ok(self.emit_unrequested(kind, snapshot, None))
    }

    fn new_charge(
        &mut self,
        pi: &str,
        amount: i64,
        currency: &str,
        email: &str,
        name: &str,
    ) -> String {
        let id = self.stripe_id("ch");
        let charge = json!({
            "id": id, "object": "charge", "amount": amount, "amount_captured": amount, "amount_refunded": 0,
            "application": null, "application_fee": null, "application_fee_amount": null, "balance_transaction": null,
            "billing_details": {"address": null, "email": email, "name": name, "phone": null},
            "calculated_statement_descriptor": null, "captured": true, "created": self.now(), "currency": currency,
            "customer": null, "description": null, "disputed": false, "failure_balance_transaction": null,
            "failure_code": null, "failure_message": null, "fraud_details": {}, "invoice": null, "livemode": false,
            "metadata": {}, "on_behalf_of": null, "outcome": null, "paid": true, "payment_intent": pi,
            "payment_method": null, "payment_method_details": null, "receipt_email": email, "receipt_number": null,
            "receipt_url": null, "refunded": false, "review": null, "shipping": null, "source_transfer": null,
            "statement_descriptor": null, "statement_descriptor_suffix": null, "status": "succeeded",
            "transfer_data": null, "transfer_group": null,
        });
        self.stripe.charges.insert(id.clone(), charge);
        if let Some(intent) = self.stripe.payment_intents.get_mut(pi) {
            intent["charge"] = json!(id);
        }
        id
    }

    /// Find the charge for `payment_intent` or `charge` params; the Err is the API error.
    fn find_charge(&self, p: &Value) -> Result<String, Reply> {
        if let Some(pi) = s(p, "payment_intent") {
            let intent = self
                .stripe
                .payment_intents
                .get(&pi)
                .ok_or_else(|| missing("payment_intent", &pi, "payment_intent"))?;
            return s(intent, "charge").ok_or_else(|| {
                invalid(
                    "payment_intent_unexpected_state",
                    &format!(
                        "This PaymentIntent ({pi}) does not have a successful charge to refund."
                    ),
                    Some("payment_intent"),
                )
            });
        }
        if let Some(ch) = s(p, "charge") {
            return if self.stripe.charges.contains_key(&ch) {
                Ok(ch)
            } else {
                Err(missing("charge", &ch, "charge"))
            };
        }
        Err(invalid("parameter_missing", "One of the following params should be provided for this request: payment_intent or charge.", None))
    }

    /// `POST /v1/refunds`, also used for refunds made in the dashboard.
    pub fn create_refund(&mut self, p: &Value, request: Value) -> Reply {
        let charge_id = match self.find_charge(p) {
            Ok(c) => c,
            Err(r) => return r,
        };
        let Some(charge) = self.stripe.charges.get(&charge_id).cloned() else {
            return missing("charge", &charge_id, "charge");
        };
        let captured = charge["amount"].as_i64().unwrap_or(0);
        let refunded = charge["amount_refunded"].as_i64().unwrap_or(0);
        let remaining = captured - refunded;
        if charge["disputed"] == true {
            return invalid(
                "charge_disputed",
                &format!("Charge {charge_id} has been charged back; cannot issue a refund."),
                None,
            );
        }
        if remaining <= 0 {
            return invalid(
                "charge_already_refunded",
                &format!("Charge {charge_id} has already been refunded."),
                None,
            );
        }
        let amount = match p.get("amount") {
            None => remaining,
            Some(_) => match int(p, "amount") {
                Some(a) if a > 0 && a <= remaining => a,
                Some(a) if a > remaining => {
                    let msg = format!("Refund amount ({a}) is greater than unrefunded amount on charge ({remaining})");
                    return invalid("amount_too_large", &msg, Some("amount"));
                }
                _ => {
                    return invalid(
                        "parameter_invalid_integer",
                        "Invalid positive integer",
                        Some("amount"),
                    )
                }
            },
        };
        let status = self
            .stripe
            .refund_status
            .clone()
            .unwrap_or_else(|| "succeeded".into());
        let id = self.stripe_id("re");
        let refund = json!({
            "id": id, "object": "refund", "amount": amount, "balance_transaction": null, "charge": charge_id,
            "created": self.now(), "currency": charge["currency"], "metadata": metadata(p),
            "payment_intent": charge["payment_intent"], "reason": s(p, "reason"), "receipt_number": null,
            "source_transfer_reversal": null, "status": status, "transfer_reversal": null,
        });
        self.stripe.refunds.insert(id, refund.clone());
        let charge = self.adjust_refunded(&charge_id, amount);
        self.emit_stripe(
            "charge.refunded",
            charge,
            Some(json!({"amount_refunded": refunded})),
            request.clone(),
        );
        if self.refund_events_for_every_refund() {
            self.emit_stripe("refund.created", refund.clone(), None, request);
        }
        Reply::json(200, refund)
    }

    /// Since API version 2024-10-28 Stripe sends `refund.created` (and `refund.updated`,
    /// `refund.failed`) for every refund, dashboard refunds included; older versions do
    /// not. The simulator follows its configured version.
    fn refund_events_for_every_refund(&self) -> bool {
        self.config.stripe_api_version.as_str() >= "2024-10-28"
    }

    fn adjust_refunded(&mut self, charge_id: &str, delta: i64) -> Value {
        let Some(charge) = self.stripe.charges.get_mut(charge_id) else {
            return Value::Null;
        };
        let total = charge["amount_refunded"].as_i64().unwrap_or(0) + delta;
        charge["amount_refunded"] = json!(total);
        charge["refunded"] = json!(total >= charge["amount"].as_i64().unwrap_or(0));
        charge.clone()
    }

    /// A pending refund settles, or any refund fails later (`refund.updated`).
    pub fn settle_refund(
        &mut self,
        id: &str,
        status: &str,
        failure_reason: Option<&str>,
    ) -> Result<Value, String> {
        let refund = self
            .stripe
            .refunds
            .get(id)
            .ok_or_else(|| format!("no refund {id}"))?
            .clone();
        let old = s(&refund, "status").unwrap_or_default();
        if old == status {
            return Err(format!("refund {id} is already {status}"));
        }
        if ![
            "succeeded",
            "failed",
            "pending",
            "canceled",
            "requires_action",
        ]
        .contains(&status)
        {
            return Err(format!("unknown refund status {status:?}"));
        }
        let amount = refund["amount"].as_i64().unwrap_or(0);
        let charge = s(&refund, "charge").unwrap_or_default();
        let returned = |s: &str| s == "failed" || s == "canceled";
        if returned(status) && !returned(&old) {
            self.adjust_refunded(&charge, -amount);
        } else if !returned(status) && returned(&old) {
            self.adjust_refunded(&charge, amount);
        }
        let refund = self.stripe.refunds.get_mut(id).ok_or("refund vanished")?;
        refund["status"] = json!(status);
        if status == "failed" {
            refund["failure_reason"] = json!(failure_reason.unwrap_or("expired_or_canceled_card"));
        }
        let snapshot = refund.clone();
        Ok(self.emit_unrequested("refund.updated", snapshot, Some(json!({"status": old}))))
    }

    /// The client disputes a charge with their bank.
    /// `withdraw`: the money leaves the balance at once (`charge.dispute.funds_withdrawn`), as
    /// it does for most disputes.
    pub fn dispute(&mut self, p: &Value, reason: &str, withdraw: bool) -> Result<Value, String> {
        let charge_id = self.find_charge(p).map_err(|r| {
            r.body
                .map(|b| b["error"]["message"].to_string())
                .unwrap_or_default()
        })?;
        let charge = self
            .stripe
            .charges
            .get_mut(&charge_id)
            .ok_or("charge vanished")?;
        charge["disputed"] = json!(true);
        let (amount, currency, pi) = (
            charge["amount"].clone(),
            charge["currency"].clone(),
            charge["payment_intent"].clone(),
        );
        let id = self.stripe_id("dp");
        let now = self.now();
        let dispute = json!({
            "id": id, "object": "dispute", "amount": amount, "balance_transactions": [], "charge": charge_id,
            "created": now, "currency": currency,
            "evidence": {"access_activity_log": null, "billing_address": null, "cancellation_policy": null,
                "cancellation_policy_disclosure": null, "cancellation_rebuttal": null, "customer_communication": null,
                "customer_email_address": null, "customer_name": null, "customer_purchase_ip": null,
                "customer_signature": null, "duplicate_charge_documentation": null, "duplicate_charge_explanation": null,
                "duplicate_charge_id": null, "product_description": null, "receipt": null, "refund_policy": null,
                "refund_policy_disclosure": null, "refund_refusal_explanation": null, "service_date": null,
                "service_documentation": null, "shipping_address": null, "shipping_carrier": null,
                "shipping_date": null, "shipping_documentation": null, "shipping_tracking_number": null,
                "uncategorized_file": null, "uncategorized_text": null},
            "evidence_details": {"due_by": now + 7 * 86400, "has_evidence": false, "past_due": false, "submission_count": 0},
            "is_charge_refundable": false, "livemode": false, "metadata": {}, "payment_intent": pi,
            "reason": reason, "status": "needs_response",
        });
        self.stripe.disputes.insert(id.clone(), dispute.clone());
        self.emit_unrequested("charge.dispute.created", dispute.clone(), None);
        if withdraw {
            return self.dispute_funds(&id, true);
        }
        Ok(dispute)
    }

    /// The disputed money leaves the balance (`charge.dispute.funds_withdrawn`) or comes
    /// back (`charge.dispute.funds_reinstated`).
    fn dispute_funds(&mut self, id: &str, withdrawn: bool) -> Result<Value, String> {
        let dispute = self
            .stripe
            .disputes
            .get_mut(id)
            .ok_or_else(|| format!("no dispute {id}"))?;
        dispute["is_charge_refundable"] = json!(false);
        let snapshot = dispute.clone();
        let kind = if withdrawn {
            "charge.dispute.funds_withdrawn"
        } else {
            "charge.dispute.funds_reinstated"
        };
        Ok(self.emit_unrequested(kind, snapshot, None))
    }

    /// The bank decides a dispute of `payment_intent`: `won` (funds reinstated if they
    /// were withdrawn, then `charge.dispute.closed`), `lost` or `warning_closed`.
    pub fn close_dispute(&mut self, payment_intent: &str, status: &str) -> Result<Value, String> {
        if !["won", "lost", "warning_closed"].contains(&status) {
            return Err(format!(
                "a dispute closes won, lost or warning_closed, not {status:?}"
            ));
        }
        let id = self
            .stripe
            .disputes
            .values()
            .find(|d| d["payment_intent"] == payment_intent)
            .and_then(|d| d["id"].as_str().map(str::to_string))
            .ok_or_else(|| format!("no dispute for {payment_intent}"))?;
        let open = |d: &Value| {
            matches!(
                d["status"].as_str(),
                Some(
                    "needs_response"
                        | "under_review"
                        | "warning_needs_response"
                        | "warning_under_review"
                )
            )
        };
        if !self.stripe.disputes.get(&id).is_some_and(open) {
            return Err(format!("dispute {id} is closed already"));
        }
        let withdrawn = self.stripe.events.iter().any(|e| {
            e["type"] == "charge.dispute.funds_withdrawn"
                && e["data"]["object"]["id"] == id.as_str()
        });
        if status == "won" && withdrawn {
            self.dispute_funds(&id, false)?;
        }
        let dispute = self
            .stripe
            .disputes
            .get_mut(&id)
            .ok_or("dispute vanished")?;
        let old = dispute["status"].clone();
        dispute["status"] = json!(status);
        let snapshot = dispute.clone();
        if status == "won" {
            if let Some(charge) =
                s(&snapshot, "charge").and_then(|c| self.stripe.charges.get_mut(&c))
            {
                charge["disputed"] = json!(false);
            }
        }
        Ok(self.emit_unrequested(
            "charge.dispute.closed",
            snapshot,
            Some(json!({"status": old})),
        ))
    }

    /// `GET /v1/refunds`: newest first, filtered by `payment_intent` or `charge`, paged
    /// with `limit` and `starting_after` like Stripe's lists.
    fn list_refunds(&self, p: &Value) -> Reply {
        let limit = match p.get("limit") {
            None => 10,
            Some(_) => match int(p, "limit") {
                Some(l) if (1..=100).contains(&l) => l as usize,
                _ => {
                    return invalid(
                        "parameter_invalid_integer",
                        "Invalid limit: must be between 1 and 100",
                        Some("limit"),
                    )
                }
            },
        };
        let pi = s(p, "payment_intent");
        if let Some(pi) = &pi {
            if !self.stripe.payment_intents.contains_key(pi) {
                return missing("payment_intent", pi, "payment_intent");
            }
        }
        let charge = s(p, "charge");
        let mut all: Vec<&Value> = self
            .stripe
            .refunds
            .values()
            .filter(|r| pi.as_deref().is_none_or(|pi| r["payment_intent"] == pi))
            .filter(|r| charge.as_deref().is_none_or(|c| r["charge"] == c))
            .collect();
        // Newest first; ids carry a counter, so they break ties within one second.
        all.sort_by(|a, b| {
            (b["created"].as_i64(), b["id"].as_str())
                .cmp(&(a["created"].as_i64(), a["id"].as_str()))
        });
        let start = match s(p, "starting_after") {
            Some(after) => match all.iter().position(|r| r["id"] == after.as_str()) {
                Some(i) => i + 1,
                None => {
                    return invalid(
                        "resource_missing",
                        &format!("No such refund: '{after}'"),
                        Some("starting_after"),
                    )
                }
            },
            None => 0,
        };
        let end = (start + limit).min(all.len());
        let page: Vec<Value> = all[start.min(end)..end]
            .iter()
            .map(|r| (*r).clone())
            .collect();
        Reply::json(
            200,
            json!({"object": "list", "url": "/v1/refunds", "has_more": end < all.len(), "data": page}),
        )
    }

    fn list_events(&self, p: &Value) -> Reply {
        let limit = match p.get("limit") {
            None => 10,
            Some(_) => match int(p, "limit") {
                Some(l) if (1..=100).contains(&l) => l as usize,
                _ => {
                    return invalid(
                        "parameter_invalid_integer",
                        "Invalid limit: must be between 1 and 100",
                        Some("limit"),
                    )
                }
            },
        };
        let (gt, gte, lt, lte) = match p.get("created") {
            Some(Value::String(x)) => {
                let v = x.parse::<i64>().ok();
                (None, v, None, v)
            }
            Some(c @ Value::Object(_)) => {
                (int(c, "gt"), int(c, "gte"), int(c, "lt"), int(c, "lte"))
            }
            _ => (None, None, None, None),
        };
        let types: Vec<String> = match p.get("types") {
            Some(Value::Array(t)) => t
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => s(p, "type").into_iter().collect(),
        };
        let matches_type = |t: &str| {
            types.is_empty()
                || types.iter().any(|want| match want.strip_suffix('*') {
                    Some(prefix) => t.starts_with(prefix),
                    None => want == t,
                })
        };
        let newest_first: Vec<&Value> = self
            .stripe
            .events
            .iter()
            .rev()
            .filter(|e| {
                let c = e["created"].as_i64().unwrap_or(0);
                gt.is_none_or(|g| c > g)
                    && gte.is_none_or(|g| c >= g)
                    && lt.is_none_or(|l| c < l)
                    && lte.is_none_or(|l| c <= l)
                    && e["type"].as_str().is_some_and(matches_type)
            })
            .collect();
        let start = match (s(p, "starting_after"), s(p, "ending_before")) {
            (Some(after), _) => match newest_first.iter().position(|e| e["id"] == after.as_str()) {
                Some(i) => i + 1,
                None if self.stripe.events.iter().any(|e| e["id"] == after.as_str()) => {
                    newest_first.len()
                }
                None => {
                    return invalid(
                        "resource_missing",
                        &format!("No such event: '{after}'"),
                        Some("starting_after"),
                    )
                }
            },
            (None, Some(before)) => {
                match newest_first.iter().position(|e| e["id"] == before.as_str()) {
                    Some(i) => i.saturating_sub(limit),
                    None => {
                        return invalid(
                            "resource_missing",
                            &format!("No such event: '{before}'"),
                            Some("ending_before"),
                        )
                    }
                }
            }
            _ => 0,
        };
        let end = match s(p, "ending_before") {
            Some(before) if s(p, "starting_after").is_none() => newest_first
                .iter()
                .position(|e| e["id"] == before.as_str())
                .unwrap_or(0),
            _ => (start + limit).min(newest_first.len()),
        };
        let page: Vec<Value> = newest_first[start.min(end)..end]
            .iter()
            .map(|e| (*e).clone())
            .collect();
        let has_more = if s(p, "ending_before").is_some() && s(p, "starting_after").is_none() {
            start > 0
        } else {
            end < newest_first.len()
        };
        Reply::json(
            200,
            json!({"object": "list", "url": "/v1/events", "has_more": has_more, "data": page}),
        )
    }

    /// `POST /v1/webhook_endpoints`: a new endpoint and its signing secret, which only this
    /// answer (and a replay of it under the same `Idempotency-Key`) carries.
    fn create_webhook_endpoint(&mut self, p: &Value) -> Reply {
        if self.stripe.webhook_endpoints.len() >= MAX_WEBHOOK_ENDPOINTS {
            return invalid(
                "webhook_endpoint_limit_reached",
                &format!("You have reached the maximum of {MAX_WEBHOOK_ENDPOINTS} test webhook endpoints."),
                None,
            );
        }
        let url = s(p, "url").unwrap_or_default();
        if let Err(reply) = check_endpoint_url(&url) {
            return reply;
        }
        let id = self.stripe_id("we");
        let secret = format!("whsec_{}", random_token(32));
        let endpoint = json!({
            "id": id, "object": "webhook_endpoint", "api_version": s(p, "api_version"),
            "application": null, "created": self.now(), "description": s(p, "description").filter(|d| !d.is_empty()),
            "enabled_events": p.get("enabled_events").cloned().unwrap_or_else(|| json!([])),
            "livemode": false, "metadata": metadata(p), "status": "enabled", "url": url,
        });
        self.stripe
            .webhook_endpoints
            .insert(id.clone(), endpoint.clone());
        self.stripe.endpoint_secrets.insert(id, secret.clone());
        let mut answer = endpoint;
        answer["secret"] = json!(secret);
        Reply::json(200, answer)
    }

    /// `GET /v1/webhook_endpoints`: newest first, paged like Stripe's lists.
    fn list_webhook_endpoints(&self, p: &Value) -> Reply {
        let limit = match p.get("limit") {
            None => 10,
            Some(_) => match int(p, "limit") {
                Some(l) if (1..=100).contains(&l) => l as usize,
                _ => {
                    return invalid(
                        "parameter_invalid_integer",
                        "Invalid limit: must be between 1 and 100",
                        Some("limit"),
                    )
                }
            },
        };
        let mut all: Vec<&Value> = self.stripe.webhook_endpoints.values().collect();
        all.sort_by(|a, b| {
            (b["created"].as_i64(), b["id"].as_str())
                .cmp(&(a["created"].as_i64(), a["id"].as_str()))
        });
        let start = match s(p, "starting_after") {
            Some(after) => match all.iter().position(|e| e["id"] == after.as_str()) {
                Some(i) => i + 1,
                None => return missing("webhook_endpoint", &after, "starting_after"),
            },
            None => 0,
        };
        let end = (start + limit).min(all.len());
        let page: Vec<Value> = all[start.min(end)..end]
            .iter()
            .map(|e| (*e).clone())
            .collect();
        Reply::json(
            200,
            json!({"object": "list", "url": "/v1/webhook_endpoints", "has_more": end < all.len(), "data": page}),
        )
    }

    /// `POST /v1/webhook_endpoints/{id}`: url, events, description, metadata, `disabled`.
    /// The API version cannot be changed (Stripe's update takes no `api_version`).
    fn update_webhook_endpoint(&mut self, id: &str, p: &Value) -> Reply {
        if let Some(url) = s(p, "url") {
            if let Err(reply) = check_endpoint_url(&url) {
                return reply;
            }
        }
        let Some(endpoint) = self.stripe.webhook_endpoints.get_mut(id) else {
            return missing("webhook_endpoint", id, "webhook_endpoint");
        };
        if let Some(url) = s(p, "url") {
            endpoint["url"] = json!(url);
        }
        if let Some(events) = p.get("enabled_events") {
            endpoint["enabled_events"] = events.clone();
        }
        if let Some(description) = s(p, "description") {
            endpoint["description"] = json!((!description.is_empty()).then_some(description));
        }
        match p.get("metadata") {
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    match v.as_str() {
                        Some("") => {
                            endpoint["metadata"].as_object_mut().map(|o| o.remove(k));
                        }
                        _ => endpoint["metadata"][k] = v.clone(),
                    }
                }
            }
            Some(Value::String(x)) if x.is_empty() => endpoint["metadata"] = json!({}),
            _ => {}
        }
        if let Some(disabled) = s(p, "disabled") {
            endpoint["status"] = json!(if disabled == "true" {
                "disabled"
            } else {
                "enabled"
            });
        }
        Reply::json(200, endpoint.clone())
    }

    /// `DELETE /v1/webhook_endpoints/{id}`: nothing is sent to it any more.
    fn delete_webhook_endpoint(&mut self, id: &str) -> Reply {
        if self.stripe.webhook_endpoints.remove(id).is_none() {
            return missing("webhook_endpoint", id, "webhook_endpoint");
        }
        self.stripe.endpoint_secrets.remove(id);
        Reply::json(
            200,
            json!({"id": id, "object": "webhook_endpoint", "deleted": true}),
        )
    }

    /// Where an event of `kind` goes: the configured target, then every enabled API-made
    /// endpoint that selected it (or `*`), each with its own secret and API version.
    fn stripe_targets(&self, kind: &str) -> Vec<(WebhookTarget, Option<String>)> {
        let mut targets: Vec<(WebhookTarget, Option<String>)> = self
            .stripe_target
            .clone()
            .map(|t| (t, None))
            .into_iter()
            .collect();
        for (id, endpoint) in &self.stripe.webhook_endpoints {
            let wants = endpoint["enabled_events"]
                .as_array()
                .is_some_and(|events| events.iter().any(|e| e == kind || e == "*"));
            let (Some(url), Some(secret)) = (
                endpoint["url"].as_str(),
                self.stripe.endpoint_secrets.get(id),
            ) else {
                continue;
            };
            if wants && endpoint["status"] == "enabled" {
                targets.push((
                    WebhookTarget {
                        url: url.to_string(),
                        secret: secret.clone(),
                    },
                    s(endpoint, "api_version"),
                ));
            }
        }
        targets
    }

    /// Emits `kind` about `object` as Stripe does for what no API request caused (a payment
    /// that settled, an expiry, a bank's decision); returns `object`.
    fn emit_unrequested(&mut self, kind: &str, object: Value, previous: Option<Value>) -> Value {
        self.emit_stripe(kind, object.clone(), previous, no_request());
        object
    }

    /// Record an Event and queue its webhook.
    pub fn emit_stripe(
        &mut self,
        kind: &str,
        object: Value,
        previous: Option<Value>,
        request: Value,
    ) -> Value {
        let id = self.stripe_id("evt");
        let mut data = json!({"object": object});
        if let Some(prev) = previous {
            data["previous_attributes"] = prev;
        }
        let event = json!({
            "id": id, "object": "event", "api_version": self.config.stripe_api_version, "created": self.now(),
            "data": data, "livemode": false, "pending_webhooks": 0,
            "request": request, "type": kind,
        });
        let targets = self.stripe_targets(kind);
        let mut event = event;
        event["pending_webhooks"] = json!(targets.len());
        self.stripe.events.push(event.clone());
        for (target, api_version) in targets {
            // An endpoint's events are rendered in its own API version.
            let mut sent = event.clone();
            if let Some(version) = api_version {
                sent["api_version"] = json!(version);
            }
            let body = serde_json::to_vec(&sent).unwrap_or_default();
            self.outgoing.push(Delivery {
                provider: Provider::Stripe,
                target,
                key: id.clone(),
                body,
                subscription: None,
            });
        }
        event
    }
}

trait TapStatus {
    fn tap_status(self, status: u16) -> Self;
}

impl TapStatus for Reply {
    fn tap_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

/// An event's `request` when no API request caused it.
pub(crate) fn no_request() -> Value {
    json!({"id": null, "idempotency_key": null})
}
