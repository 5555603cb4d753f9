//! The scripted client: a typed wrapper over the control API (`/_sim/...`) and the fake
//! provider APIs, so integration tests read as a story ("book, pay, cancel, expect exactly
//! one refund") instead of HTTP plumbing.

use std::time::Duration;

use serde_json::{json, Value};

use crate::form;
use crate::http::{self, HttpError, HttpResponse};
use crate::webhook::{DeliveryKnobs, DeliveryRecord, WebhookTarget};
use crate::world::{Fault, RequestRecord};

/// A control call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("simulator answered {status} to {what}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    #[error("unexpected answer to {0}")]
    Shape(String),
}

/// A booking as the scripted client sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Booking {
    pub event_uuid: String,
    pub event_uri: String,
    pub invitee_uuid: String,
    pub invitee_uri: String,
    pub email: String,
    pub start_time: String,
}

impl Booking {
    fn from_answer(v: &Value) -> Option<Booking> {
        let uri = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let event_uri = uri("/event/uri")?;
        let invitee_uri = uri("/invitee/uri")?;
        Some(Booking {
            event_uuid: crate::calendly::uuid_of(&event_uri).to_string(),
            invitee_uuid: crate::calendly::uuid_of(&invitee_uri).to_string(),
            event_uri,
            invitee_uri,
            email: uri("/invitee/email")?,
            start_time: uri("/event/start_time")?,
        })
    }
}

/// Talks to one simulator.
#[derive(Debug, Clone)]
pub struct SimClient {
    base: String,
    /// Stripe key used by [`SimClient::stripe`].
    pub stripe_key: String,
    /// Calendly token used by [`SimClient::calendly`].
    pub calendly_token: String,
    pub timeout: Duration,
}

impl SimClient {
    pub fn new(base_url: &str) -> Self {
        SimClient {
            base: base_url.trim_end_matches('/').to_string(),
            stripe_key: "sk_test_sim".into(),
            calendly_token: crate::SimConfig::default().calendly_token,
            timeout: Duration::from_secs(15),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn control(&self, method: &str, path: &str, body: Value) -> Result<Value, ClientError> {
        let url = format!("{}/_sim{path}", self.base);
        let data = serde_json::to_vec(&body).map_err(HttpError::from)?;
        let r = http::request(
            method,
            &url,
            &[("Content-Type", "application/json")],
            &data,
            self.timeout,
        )?;
        if !(200..300).contains(&r.status) {
            return Err(ClientError::Status {
                what: format!("{method} /_sim{path}"),
                status: r.status,
                body: r.text(),
            });
        }
        Ok(r.json()?)
    }

    /// A client books `event_type` (slug, uuid or uri): `invitee.created`.
    pub fn book(&self, event_type: &str, name: &str, email: &str) -> Result<Booking, ClientError> {
        self.book_with(json!({"event_type": event_type, "name": name, "email": email}))
    }

    /// Book with any control fields (`start_time`, `timezone`, `questions_and_answers`).
    pub fn book_with(&self, args: Value) -> Result<Booking, ClientError> {
        let v = self.control("POST", "/calendly/book", args)?;
        Booking::from_answer(&v).ok_or_else(|| ClientError::Shape("book".into()))
    }

    /// Pay the newest open Checkout Session whose `client_reference_id` is `reference`.
    pub fn pay(&self, reference: &str) -> Result<Value, ClientError> {
        self.control(
            "POST",
            "/stripe/pay",
            json!({"client_reference_id": reference}),
        )
    }

    /// Pay a specific session; `delayed` = an async method (settle with [`Self::settle_async`]).
    pub fn pay_session(&self, session: &str, delayed: bool) -> Result<Value, ClientError> {
        let method = if delayed { "async" } else { "card" };
        self.control(
            "POST",
            "/stripe/pay",
            json!({"session": session, "method": method}),
        )
    }

    /// Pay through a payment link with `client_reference_id`, as the relay's redirect does.
    pub fn pay_link(
        &self,
        link: &str,
        reference: &str,
        email: &str,
        delayed: bool,
    ) -> Result<Value, ClientError> {
        let method = if delayed { "async" } else { "card" };
        self.control("POST", "/stripe/pay", json!({"payment_link": link, "client_reference_id": reference, "email": email, "method": method}))
    }

    /// The client opens a payment link's Checkout page (a new open session with
    /// `client_reference_id`) and leaves without paying. Returns the session.
    pub fn open_link(
        &self,
        link: &str,
        reference: &str,
        email: &str,
    ) -> Result<Value, ClientError> {
        self.control(
            "POST",
            "/stripe/open",
            json!({"payment_link": link, "client_reference_id": reference, "email": email}),
        )
    }

    /// A delayed payment succeeds or fails.
    pub fn settle_async(&self, session: &str, succeeded: bool) -> Result<Value, ClientError> {
        self.control(
            "POST",
            "/stripe/async_result",
            json!({"session": session, "succeeded": succeeded}),
        )
    }

    /// Stripe expires a session (as at `expires_at`).
    pub fn expire_session(&self, session: &str) -> Result<Value, ClientError> {
        self.control("POST", "/stripe/expire", json!({"session": session}))
    }

    pub fn cancel_as_invitee(&self, invitee: &str, reason: &str) -> Result<Value, ClientError> {
        self.control(
            "POST",
            "/calendly/cancel",
            json!({"invitee": invitee, "by": "invitee", "reason": reason}),
        )
    }

    pub fn cancel_as_host(&self, invitee: &str, reason: &str) -> Result<Value, ClientError> {
        self.control(
            "POST",
            "/calendly/cancel",
            json!({"invitee": invitee, "by": "host", "reason": reason}),
        )
    }

    /// Reschedule: old invitee canceled (`rescheduled`), new one created. `created_first`
    /// sends the new invitee's webhook first.
    pub fn reschedule(&self, invitee: &str, created_first: bool) -> Result<Booking, ClientError> {
        let order = if created_first {
            "created_first"
        } else {
            "canceled_first"
        };
        let v = self.control(
            "POST",
            "/calendly/reschedule",
            json!({"invitee": invitee, "order": order}),
        )?;
        Booking::from_answer(&v).ok_or_else(|| ClientError::Shape("reschedule".into()))
    }

    pub fn no_show(&self, invitee: &str) -> Result<Value, ClientError> {
        self.control("POST", "/calendly/no_show", json!({"invitee": invitee}))
    }

    pub fn dispute(&self, payment_intent: &str) -> Result<Value, ClientError> {
        self.control(
            "POST",
            "/stripe/dispute",
            json!({"payment_intent": payment_intent}),
        )
    }

    /// The client disputes the charge and Stripe withdraws the money from the balance.
    pub fn dispute_withdrawing_funds(&self, payment_intent: &str) -> Result<Value, ClientError> {
        self.control(
            "POST",
            "/stripe/dispute",
            json!({"payment_intent": payment_intent, "withdraw_funds": true}),
        )
    }

    /// The bank closes the dispute of `payment_intent`: `won`, `lost` or `warning_closed`.
    pub fn close_dispute(&self, payment_intent: &str, status: &str) -> Result<Value, ClientError> {
        self.control(
            "POST",
            "/stripe/dispute_close",
            json!({"payment_intent": payment_intent, "status": status}),
        )
    }

    /// A refund made in Stripe's dashboard, outside the app.
    pub fn dashboard_refund(
        &self,
        payment_intent: &str,
        amount: Option<i64>,
    ) -> Result<Value, ClientError> {
        let mut body = json!({"payment_intent": payment_intent});
        if let Some(a) = amount {
            body["amount"] = json!(a);
        }
        self.control("POST", "/stripe/dashboard_refund", body)
    }

    /// New refunds start in this status (`pending`), or `None` for `succeeded`.
    pub fn set_refund_status(&self, status: Option<&str>) -> Result<(), ClientError> {
        self.control("POST", "/stripe/refund_status", json!({"status": status}))
            .map(drop)
    }

    /// A refund settles (`succeeded`) or fails later (`failed`): `refund.updated`.
    pub fn settle_refund(&self, refund: &str, status: &str) -> Result<Value, ClientError> {
        self.control(
            "POST",
            "/stripe/refund_settle",
            json!({"refund": refund, "status": status}),
        )
    }

    pub fn disable_subscription(&self, uuid: &str) -> Result<Value, ClientError> {
        self.control(
            "POST",
            &format!("/calendly/webhook_subscriptions/{uuid}/disable"),
            json!({}),
        )
    }

    /// Requests the fake APIs received, optionally filtered (`method`, `path_prefix`).
    pub fn requests(
        &self,
        method: Option<&str>,
        path_prefix: Option<&str>,
    ) -> Result<Vec<RequestRecord>, ClientError> {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(m) = method {
            q.append_pair("method", m);
        }
        if let Some(p) = path_prefix {
            q.append_pair("path_prefix", p);
        }
        let v = self.control("GET", &format!("/requests?{}", q.finish()), Value::Null)?;
        serde_json::from_value(v).map_err(|_| ClientError::Shape("requests".into()))
    }

    pub fn clear_requests(&self) -> Result<(), ClientError> {
        self.control("DELETE", "/requests", Value::Null).map(drop)
    }

    pub fn inject_fault(&self, fault: &Fault) -> Result<(), ClientError> {
        let body = serde_json::to_value(fault).map_err(HttpError::from)?;
        self.control("POST", "/faults", body).map(drop)
    }

    /// Removes every injected fault not yet used up.
    pub fn clear_faults(&self) -> Result<(), ClientError> {
        self.control("DELETE", "/faults", Value::Null).map(drop)
    }

    pub fn set_delivery(&self, knobs: &DeliveryKnobs) -> Result<(), ClientError> {
        let body = serde_json::to_value(knobs).map_err(HttpError::from)?;
        self.control("POST", "/webhooks/knobs", body).map(drop)
    }

    pub fn set_targets(
        &self,
        stripe: Option<&WebhookTarget>,
        calendly: Option<&WebhookTarget>,
    ) -> Result<(), ClientError> {
        self.control(
            "POST",
            "/webhooks/targets",
            json!({"stripe": stripe, "calendly": calendly}),
        )
        .map(drop)
    }

    /// Unpause delivery and wait until the queue is empty.
    pub fn flush(&self) -> Result<(), ClientError> {
        self.control("POST", "/webhooks/flush", json!({"timeout_ms": 10_000}))
            .map(drop)
    }

    pub fn deliveries(&self) -> Result<Vec<DeliveryRecord>, ClientError> {
        let v = self.control("GET", "/webhooks/deliveries", Value::Null)?;
        serde_json::from_value(v).map_err(|_| ClientError::Shape("deliveries".into()))
    }

    /// All Stripe events, oldest first.
    pub fn stripe_events(&self) -> Result<Vec<Value>, ClientError> {
        let v = self.control("GET", "/stripe/events", Value::Null)?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// All Calendly webhook payloads, oldest first.
    pub fn calendly_webhooks(&self) -> Result<Vec<Value>, ClientError> {
        let v = self.control("GET", "/calendly/webhooks", Value::Null)?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Move the simulator's clock; open sessions past `expires_at` expire.
    pub fn advance_clock(&self, seconds: i64) -> Result<i64, ClientError> {
        let v = self.control("POST", "/clock/advance", json!({"seconds": seconds}))?;
        v["now"]
            .as_i64()
            .ok_or_else(|| ClientError::Shape("clock".into()))
    }

    /// Call the fake Stripe API as the product would: form-encoded `params`.
    pub fn stripe(
        &self,
        method: &str,
        path: &str,
        params: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<HttpResponse, HttpError> {
        let auth = format!("Bearer {}", self.stripe_key);
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        if let Some(k) = idempotency_key {
            headers.push(("Idempotency-Key", k));
        }
        let encoded = if params.is_null() {
            String::new()
        } else {
            form::encode(params)
        };
        let (url, body) = if method == "GET" && !encoded.is_empty() {
            (format!("{}{path}?{encoded}", self.base), Vec::new())
        } else {
            (format!("{}{path}", self.base), encoded.into_bytes())
        };
        http::request(method, &url, &headers, &body, self.timeout)
    }

    /// Call the fake Calendly API with the token; `body` is sent as JSON when not null.
    pub fn calendly(
        &self,
        method: &str,
        path_and_query: &str,
        body: &Value,
    ) -> Result<HttpResponse, HttpError> {
        let auth = format!("Bearer {}", self.calendly_token);
        let data = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body)?
        };
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        http::request(
            method,
            &format!("{}{path_and_query}", self.base),
            &headers,
            &data,
            self.timeout,
        )
    }
}
