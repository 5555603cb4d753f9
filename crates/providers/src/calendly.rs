//! Calendly API v2 through reqwest (there is no maintained Rust client).
//!
//! Query parameters take full URIs, path parameters UUIDs; lists page with `count` and an
//! opaque `page_token` (`pagination.next_page_token`), followed here until the end. A 429
//! carries `Retry-After` or `X-RateLimit-Reset` (seconds), both read.

use std::fmt;
use std::time::Duration;

use coachdesk_domain::read_back::InviteeSeen;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::parse_retry_after;
use crate::ProviderError;

const CALENDLY: &str = "Calendly";

/// A Calendly API client for one personal access token.
#[derive(Clone)]
pub struct CalendlyApi {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl fmt::Debug for CalendlyApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CalendlyApi")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The token's user (`GET /users/me`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendlyUser {
    pub uri: String,
    pub current_organization: String,
    #[serde(default)]
    pub scheduling_url: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
}

/// A webhook subscription as Calendly lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSubscription {
    pub uri: String,
    pub callback_url: String,
    /// `active` or `disabled`.
    pub state: String,
    #[serde(default)]
    pub events: Vec<String>,
}

impl CalendlyApi {
    /// A client for `base` (such as `https://api.calendly.com` or the simulator's URL).
    pub fn new(base: &str, token: &str, timeout: Duration) -> Result<CalendlyApi, ProviderError> {
        url::Url::parse(base).map_err(|_| ProviderError::BadBaseUrl {
            provider: CALENDLY,
            value: base.to_owned(),
        })?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .dns_resolver(crate::network::typed_resolver())
            .build()
            .map_err(|e| transient(e, "could not set up the HTTP client"))?;
        Ok(CalendlyApi {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, ProviderError> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| transient(e, "the request failed"))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = parse_retry_after(header("retry-after").as_deref())
            .or_else(|| parse_retry_after(header("x-ratelimit-reset").as_deref()));
        let text = response
            .text()
            .await
            .map_err(|e| transient(e, "the answer was cut off"))?;
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if (200..300).contains(&status) {
            return Ok(body);
        }
        // Calendly's errors: {"title": "...", "message": "...", "details": [...]}.
        let message = match (body["title"].as_str(), body["message"].as_str()) {
            (Some(title), Some(message)) => format!("{title}: {message}"),
            (None, Some(message)) | (Some(message), None) => message.to_owned(),
            _ => format!("HTTP {status}"),
        };
        Err(ProviderError::from_status(
            CALENDLY,
            status,
            message,
            retry_after,
        ))
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    /// Follows `next_page_token` until the end.
    async fn list_all(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Value>, ProviderError> {
        let mut items = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("count", "100".into()));
            if let Some(token) = &page_token {
                q.push(("page_token", token.clone()));
            }
            let page = self.send(self.get(path).query(&q)).await?;
            if let Some(collection) = page["collection"].as_array() {
                items.extend(collection.iter().cloned());
            }
            match page["pagination"]["next_page_token"].as_str() {
                Some(token) if !token.is_empty() => page_token = Some(token.to_owned()),
                _ => return Ok(items),
            }
        }
    }

    /// `GET /users/me`.
    pub async fn current_user(&self) -> Result<CalendlyUser, ProviderError> {
        let body = self.send(self.get("/users/me")).await?;
        serde_json::from_value(body["resource"].clone()).map_err(|e| unreadable(&e))
    }

    /// The user's event types.
    pub async fn event_types(&self, user_uri: &str) -> Result<Vec<Value>, ProviderError> {
        self.list_all("/event_types", &[("user", user_uri.to_owned())])
            .await
    }

    /// The user's scheduled events starting at or after `min_start_time` (RFC 3339), any
    /// status.
    pub async fn scheduled_events(
        &self,
        user_uri: &str,
        min_start_time: &str,
    ) -> Result<Vec<Value>, ProviderError> {
        self.list_all(
            "/scheduled_events",
            &[
                ("user", user_uri.to_owned()),
                ("min_start_time", min_start_time.to_owned()),
            ],
        )
        .await
    }

    /// A scheduled event's invitees (any status).
    pub async fn invitees(&self, event_uuid: &str) -> Result<Vec<Value>, ProviderError> {
        self.list_all(&format!("/scheduled_events/{event_uuid}/invitees"), &[])
            .await
    }

    /// One invitee, read back from Calendly (`status` is `active` or `canceled`): how a
    /// cancellation is confirmed before money moves on its word. `invitee_uri` is the
    /// invitee's full URI (`.../scheduled_events/{event}/invitees/{invitee}`).
    pub async fn invitee(&self, invitee_uri: &str) -> Result<InviteeSeen, ProviderError> {
        let mut parts = invitee_uri.trim_end_matches('/').rsplit('/');
        let (invitee, marker, event) = (parts.next(), parts.next(), parts.next());
        let safe = |id: &str| {
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        let (Some(invitee), Some("invitees"), Some(event)) = (invitee, marker, event) else {
            return Err(not_an_invitee(invitee_uri));
        };
        if !safe(invitee) || !safe(event) {
            return Err(not_an_invitee(invitee_uri));
        }
        let body = self
            .send(self.get(&format!("/scheduled_events/{event}/invitees/{invitee}")))
            .await?;
        let invitee = &body["resource"];
        let text = |value: &Value| value.as_str().map(str::to_owned);
        Ok(InviteeSeen {
            status: text(&invitee["status"]),
            canceler_type: text(&invitee["cancellation"]["canceler_type"]),
            rescheduled: invitee["rescheduled"].as_bool(),
            new_invitee: text(&invitee["new_invitee"]),
        })
    }

    /// Cancels a scheduled event (frees the slot); `reason` is shown to the invitee.
    pub async fn cancel_event(&self, event_uuid: &str, reason: &str) -> Result<(), ProviderError> {
        let url = format!("{}/scheduled_events/{event_uuid}/cancellation", self.base);
        match self
            .send(self.http.post(url).json(&json!({ "reason": reason })))
            .await
        {
            Ok(_) => Ok(()),
            // Calendly refuses (403) to cancel an event that is already canceled; whether that
            // is why is read back from the event's own `status`, not from the refusal's words.
            Err(refused @ ProviderError::Permanent { status: 403, .. }) => {
                let event = self
                    .send(self.get(&format!("/scheduled_events/{event_uuid}")))
                    .await?;
                if event["resource"]["status"].as_str() == Some("canceled") {
                    Ok(())
                } else {
                    Err(refused)
                }
            }
            Err(err) => Err(err),
        }
    }

    /// Creates a user-scoped webhook subscription signed with `signing_key`.
    pub async fn create_webhook_subscription(
        &self,
        callback_url: &str,
        events: &[&str],
        user: &CalendlyUser,
        signing_key: &str,
    ) -> Result<WebhookSubscription, ProviderError> {
        let url = format!("{}/webhook_subscriptions", self.base);
        let body = json!({
            "url": callback_url,
            "events": events,
            "organization": user.current_organization,
            "user": user.uri,
            "scope": "user",
            "signing_key": signing_key,
        });
        let answer = self.send(self.http.post(url).json(&body)).await?;
        serde_json::from_value(answer["resource"].clone()).map_err(|e| unreadable(&e))
    }

    /// The user's webhook subscriptions.
    pub async fn webhook_subscriptions(
        &self,
        user: &CalendlyUser,
    ) -> Result<Vec<WebhookSubscription>, ProviderError> {
        let items = self
            .list_all(
                "/webhook_subscriptions",
                &[
                    ("organization", user.current_organization.clone()),
                    ("user", user.uri.clone()),
                    ("scope", "user".into()),
                ],
            )
            .await?;
        items
            .into_iter()
            .map(|item| serde_json::from_value(item).map_err(|e| unreadable(&e)))
            .collect()
    }

    /// Deletes a webhook subscription by UUID.
    pub async fn delete_webhook_subscription(&self, uuid: &str) -> Result<(), ProviderError> {
        let url = format!("{}/webhook_subscriptions/{uuid}", self.base);
        self.send(self.http.delete(url)).await.map(|_| ())
    }
}

fn transient(err: reqwest::Error, what: &str) -> ProviderError {
    ProviderError::Transient {
        provider: CALENDLY,
        status: None,
        message: if err.is_timeout() {
            "the request timed out".to_owned()
        } else {
            what.to_owned()
        },
        retry_after: None,
        source: Some(Box::new(err)),
    }
}

fn unreadable(err: &serde_json::Error) -> ProviderError {
    ProviderError::Permanent {
        provider: CALENDLY,
        status: 200,
        message: format!("Calendly's answer could not be read: {err}"),
    }
}

fn not_an_invitee(uri: &str) -> ProviderError {
    ProviderError::Permanent {
        provider: "Calendly",
        status: 400,
        message: format!("{uri:?} is not a Calendly invitee URI"),
    }
}
