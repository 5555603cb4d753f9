//! The relay pull: long-poll `GET /v1/events`, apply the batch and store the cursor in one
//! transaction, then `POST /v1/ack`.
//!
//! A crash between the commit and the ack leaves the relay's events unacknowledged: the
//! next pull starts after the stored cursor and the next ack covers them; were they sent
//! again anyway (a restored database), the inbox's UNIQUE provider key absorbs them. While the relay is unreachable the loop backs off and the
//! status says so; the app keeps working on what it has.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use coachdesk_domain::provider::Provider;
use coachdesk_protocol::relay::{AckRequest, EventsPage, Provider as WireProvider};
use coachdesk_providers::ProviderError;
use coachdesk_store::{Source, Store};
use time::OffsetDateTime;

use crate::{lock, SyncError};

/// The setting holding the highest relay sequence applied.
pub const RELAY_CURSOR: &str = "sync.relay_cursor";

/// The relay's pull API.
#[derive(Clone)]
pub struct RelayClient {
    http: reqwest::Client,
    base: String,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClient")
            .field("base", &self.base)
            .finish()
    }
}

impl RelayClient {
    pub fn new(base: &str, long_poll: Duration) -> Result<Self, SyncError> {
        let http = reqwest::Client::builder()
            .timeout(long_poll + Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| SyncError::Setup(format!("the HTTP client could not be set up: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// One long-poll: events after `after`, waiting up to `wait` for the first.
    pub async fn pull(
        &self,
        token: &str,
        after: i64,
        limit: u32,
        wait: Duration,
    ) -> Result<EventsPage, ProviderError> {
        let url = format!(
            "{}/v1/events?after={after}&limit={limit}&wait={}",
            self.base,
            wait.as_secs()
        );
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        if status != 200 {
            let text = response.text().await.unwrap_or_default();
            return Err(ProviderError::from_relay_status(status, text));
        }
        response.json().await.map_err(unreachable)
    }

    /// Acknowledges everything up to `through`.
    pub async fn ack(&self, token: &str, through: i64) -> Result<(), ProviderError> {
        let request = self
            .http
            .post(format!("{}/v1/ack", self.base))
            .bearer_auth(token)
            .json(&AckRequest {
                through,
                relay_id: None,
            });
        expect_ok(request).await
    }
}

impl RelayClient {
    /// Replaces the relay's slug-to-payment-link table (`PUT /v1/payment-links`), which
    /// its `/pay/{slug}` redirect reads.
    pub async fn put_payment_links(
        &self,
        token: &str,
        table: &coachdesk_protocol::relay::PaymentLinkTable,
    ) -> Result<(), ProviderError> {
        let request = self
            .http
            .put(format!("{}/v1/payment-links", self.base))
            .bearer_auth(token)
            .json(table);
        expect_ok(request).await
    }
}

impl RelayClient {
    /// Hands the relay the key the Calendly webhook subscription is signed with
    /// (`PUT /v1/calendly-signing-key`), so it accepts Calendly's deliveries.
    pub async fn put_calendly_signing_key(
        &self,
        token: &str,
        key: &str,
    ) -> Result<(), ProviderError> {
        let request = self
            .http
            .put(format!("{}/v1/calendly-signing-key", self.base))
            .bearer_auth(token)
            .json(&coachdesk_protocol::relay::CalendlyKeyRequest {
                key: key.to_owned(),
            });
        expect_ok(request).await
    }
}

trait RelayStatus {
    fn from_relay_status(status: u16, text: String) -> Self;
}

impl RelayStatus for ProviderError {
    fn from_relay_status(status: u16, text: String) -> Self {
        let message = match status {
            401 | 403 => "the relay refused the token; create a new one with `coachdesk-relay token create` and enter it in Settings".to_owned(),
            _ => format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()),
        };
        ProviderError::Transient {
            provider: "the relay",
            status: Some(status),
            message,
            retry_after: None,
            source: None,
        }
    }
}

fn unreachable(err: reqwest::Error) -> ProviderError {
    ProviderError::Transient {
        provider: "the relay",
        status: None,
        message: if err.is_timeout() {
            "no answer in time".into()
        } else {
            "it could not be reached".into()
        },
        retry_after: None,
        source: Some(Box::new(err)),
    }
}

/// What one pull did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullReport {
    pub received: usize,
    /// Events new to the inbox (not duplicates).
    pub applied: usize,
    pub cursor: i64,
}

/// Applies one page and its cursor in one transaction. Returns the new cursor.
pub fn apply_page(
    store: &Arc<Mutex<Store>>,
    page: &EventsPage,
    now: OffsetDateTime,
) -> Result<PullReport, SyncError> {
    let mut store = lock(store);
    let previous = cursor(&store)?;
    let fresh: Vec<_> = page.events.iter().filter(|e| e.seq > previous).collect();
    let Some(last) = fresh.last().map(|e| e.seq) else {
        return Ok(PullReport {
            received: page.events.len(),
            applied: 0,
            cursor: previous,
        });
    };
    // The page and the cursor commit together: a crash leaves both or neither.
    let results = store.apply_provider_batch_with_cursor(
        fresh
            .iter()
            .map(|e| (provider(e.provider), e.body.as_bytes())),
        Source::Relay,
        now,
        (RELAY_CURSOR, &last.to_string()),
    )?;
    Ok(PullReport {
        received: page.events.len(),
        applied: results.iter().filter(|a| !a.duplicate).count(),
        cursor: last,
    })
}

/// The highest relay sequence applied so far.
pub fn cursor(store: &Store) -> Result<i64, SyncError> {
    Ok(store
        .setting(RELAY_CURSOR)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

fn provider(p: WireProvider) -> Provider {
    match p {
        WireProvider::Stripe => Provider::Stripe,
        WireProvider::Calendly => Provider::Calendly,
    }
}

/// Sends a relay API request whose only good answer is 200 with nothing to read.
async fn expect_ok(request: reqwest::RequestBuilder) -> Result<(), ProviderError> {
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status().as_u16();
    if status == 200 {
        Ok(())
    } else {
        let text = response.text().await.unwrap_or_default();
        Err(ProviderError::from_relay_status(status, text))
    }
}
