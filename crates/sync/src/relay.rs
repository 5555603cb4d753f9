//! The relay pull: long-poll `GET /v1/events`, apply the batch and store the cursor in one
//! transaction, then `POST /v1/ack`.
//!
//! A crash between the commit and the ack leaves the relay's events unacknowledged: the
//! next pull starts after the stored cursor and the next ack covers them; were they sent
//! again anyway (a restored database), the inbox's UNIQUE provider key absorbs them. While the relay is unreachable the loop backs off and the
//! status says so; the app keeps working on what it has.
//!
//! The cursor is a sequence of one relay: every page names the relay's identity, and the
//! app keeps the one its cursor belongs to ([`RELAY_ID`]). A page from another relay (one
//! replaced, restored or reset) is not applied: the cursor goes back to 0 with the new
//! identity ([`check_identity`]), the next pull starts from the beginning of what that relay
//! holds, and reconciliation recovers what it never had. An ack names the identity too, so
//! a relay swapped between a pull and its ack refuses it (409) instead of marking its own
//! events with a foreign cursor; so does a relay that never stored that sequence, and the
//! app then also starts over from 0.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coachdesk_domain::provider::Provider;
use coachdesk_domain::read_back::Contradiction;
use coachdesk_protocol::relay::{AckRequest, EventsPage};
use coachdesk_providers::ProviderError;
use coachdesk_store::{Source, Store};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{lock, SyncError};

pub mod sealing;

/// The setting holding the highest relay sequence applied.
pub const RELAY_CURSOR: &str = "sync.relay_cursor";
/// The setting holding the identity of the relay [`RELAY_CURSOR`] belongs to.
pub const RELAY_ID: &str = "sync.relay_id";

/// What the relay answered to an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    Acked,
    /// 409: the relay never stored that sequence, or is another relay than the one named;
    /// it marked nothing.
    Refused,
}

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
            .dns_resolver(coachdesk_providers::network::typed_resolver())
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
        expect_json(self.http.get(url).bearer_auth(token)).await
    }

    /// Acknowledges everything up to `through`, of the relay `relay_id` (the identity the
    /// page came with; `None` for a relay too old to have one).
    pub async fn ack(
        &self,
        token: &str,
        through: i64,
        relay_id: Option<&str>,
    ) -> Result<AckOutcome, ProviderError> {
        let response = self
            .http
            .post(format!("{}/v1/ack", self.base))
            .bearer_auth(token)
            .json(&AckRequest {
                through,
                relay_id: relay_id.map(str::to_owned),
            })
            .send()
            .await
            .map_err(unreachable)?;
        match response.status().as_u16() {
            200 => Ok(AckOutcome::Acked),
            409 => Ok(AckOutcome::Refused),
            status => {
                let text = response.text().await.unwrap_or_default();
                Err(ProviderError::from_relay_status(status, text))
            }
        }
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
    /// The visits of the relay's `/pay/{slug}` per slug (`GET /v1/redirects`): whether
    /// clients come through Calendly's redirect. A relay older than the count answers 404.
    pub async fn redirects(
        &self,
        token: &str,
    ) -> Result<coachdesk_protocol::relay::RedirectsPage, ProviderError> {
        expect_json(
            self.http
                .get(format!("{}/v1/redirects", self.base))
                .bearer_auth(token),
        )
        .await
    }
}

/// What the relay did with a Calendly signing key handed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHandover {
    /// Stored: the relay verifies Calendly's deliveries with it from now on.
    Accepted,
    /// 403 `handover_disabled`: the operator turned hand-over off, so the relay verifies
    /// Calendly only with the keys in its own configuration.
    Disabled,
}

impl RelayClient {
    /// Hands the relay the key the Calendly webhook subscription is signed with
    /// (`PUT /v1/calendly-signing-key`), so it accepts Calendly's deliveries.
    pub async fn put_calendly_signing_key(
        &self,
        token: &str,
        key: &str,
    ) -> Result<KeyHandover, ProviderError> {
        self.hand_over(
            token,
            "calendly-signing-key",
            &coachdesk_protocol::relay::CalendlyKeyRequest {
                key: key.to_owned(),
            },
        )
        .await
    }
}

impl RelayClient {
    /// Hands the relay the signing secrets of the Stripe webhook endpoint the app made
    /// (`PUT /v1/stripe-signing-secrets`): the current one, and during a rotation the
    /// retiring one too. The list replaces what this token handed over before.
    pub async fn put_stripe_signing_secrets(
        &self,
        token: &str,
        secrets: &[&str],
    ) -> Result<KeyHandover, ProviderError> {
        self.hand_over(
            token,
            "stripe-signing-secrets",
            &coachdesk_protocol::relay::StripeSecretsRequest {
                secrets: secrets.iter().map(|s| (*s).to_owned()).collect(),
            },
        )
        .await
    }

    /// `PUT /v1/<what>` of a secret handover, and what the relay made of it: accepted,
    /// or refused because this relay takes no handovers (`403 handover_disabled`).
    async fn hand_over(
        &self,
        token: &str,
        what: &str,
        body: &impl serde::Serialize,
    ) -> Result<KeyHandover, ProviderError> {
        let (status, text) = self.put(token, what, body).await?;
        if status == 200 {
            return Ok(KeyHandover::Accepted);
        }
        let code = serde_json::from_str::<coachdesk_protocol::relay::ApiError>(&text)
            .map(|e| e.error)
            .unwrap_or_default();
        if status == 403 && code == coachdesk_protocol::relay::error_code::HANDOVER_DISABLED {
            return Ok(KeyHandover::Disabled);
        }
        Err(ProviderError::from_relay_status(status, text))
    }
}

/// What `/pay` does for the coach's bookings, as the relay last answered this install's
/// restricted key hand-over (see [`RelayClient::put_stripe_checkout_key`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub enum RelayCheckout {
    /// Not handed over yet in this run (the first pull does it).
    #[default]
    NotYet,
    /// The relay makes each booking its own Checkout Session.
    Sessions,
    /// No restricted key (neither this install's nor the operator's): the payment link.
    PaymentLink,
    /// The relay is older than restricted key hand-over: it uses the operator's key if any.
    RelayTooOld,
    /// The relay refused the key, in its words (a secret key, the other mode's key).
    Refused(String),
}

impl RelayCheckout {
    /// In words, for the diagnostics and Settings.
    pub fn words(&self) -> String {
        match self {
            RelayCheckout::NotYet => "not known yet (this install hands its key over at its first pull)".into(),
            RelayCheckout::Sessions => "each booking gets its own Stripe Checkout Session".into(),
            RelayCheckout::PaymentLink => "clients pay through the session type's payment link (no restricted key)".into(),
            RelayCheckout::RelayTooOld => "the relay is older than restricted key hand-over: it uses its operator's key, if any".into(),
            RelayCheckout::Refused(why) => format!("the relay refused the restricted key: {why}"),
        }
    }
}

impl RelayClient {
    /// Hands the relay the coach's Stripe restricted key (`PUT /v1/stripe-checkout-key`;
    /// `None` forgets the one this token handed over), so `/pay` makes each booking its own
    /// Checkout Session. A relay that refuses the key answers why; one older than the
    /// endpoint answers 404.
    pub async fn put_stripe_checkout_key(
        &self,
        token: &str,
        key: Option<&str>,
    ) -> Result<RelayCheckout, ProviderError> {
        use coachdesk_protocol::relay::{
            error_code, ApiError, CheckoutKeyAnswer, CheckoutKeyRequest,
        };
        let request = CheckoutKeyRequest {
            key: key.map(str::to_owned),
        };
        let (status, text) = self.put(token, "stripe-checkout-key", &request).await?;
        match status {
            200 => {
                let answer: CheckoutKeyAnswer = serde_json::from_str(&text).map_err(|e| {
                    ProviderError::from_relay_status(200, format!("unreadable answer: {e}"))
                })?;
                Ok(if answer.checkout_sessions {
                    RelayCheckout::Sessions
                } else {
                    RelayCheckout::PaymentLink
                })
            }
            404 => Ok(RelayCheckout::RelayTooOld),
            400 => match serde_json::from_str::<ApiError>(&text) {
                Ok(e)
                    if [error_code::SECRET_KEY_REFUSED, error_code::MODE_MISMATCH]
                        .contains(&e.error.as_str()) =>
                {
                    Ok(RelayCheckout::Refused(e.message))
                }
                _ => Ok(RelayCheckout::Refused(text.chars().take(200).collect())),
            },
            _ => Err(ProviderError::from_relay_status(status, text)),
        }
    }
}

impl RelayClient {
    /// `PUT /v1/<what>` with a JSON body: the status and the answer's text.
    pub(crate) async fn put(
        &self,
        token: &str,
        what: &str,
        body: &impl serde::Serialize,
    ) -> Result<(u16, String), ProviderError> {
        let response = self
            .http
            .put(format!("{}/v1/{what}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.unwrap_or_default()))
    }
}

trait RelayStatus {
    fn from_relay_status(status: u16, text: String) -> Self;
}

impl RelayStatus for ProviderError {
    fn from_relay_status(status: u16, text: String) -> Self {
        let message = match status {
            401 => "the relay refused the token; create a new one with `coachdesk-relay token create --name NAME --mode test|live` and enter it in Settings".to_owned(),
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

/// One relayed event: its sequence, provider and body.
type Relayed<'p> = (i64, Provider, &'p [u8]);

/// The page's events not applied yet (after the stored cursor).
fn fresh_events<'p>(
    store: &Arc<Mutex<Store>>,
    page: &'p EventsPage,
) -> Result<Vec<Relayed<'p>>, SyncError> {
    let previous = cursor(&lock(store))?;
    Ok(page
        .events
        .iter()
        .filter(|e| e.seq > previous)
        .map(|e| (e.seq, e.provider, e.body.as_bytes()))
        .collect())
}

/// Reads back the page's fresh events that need it ([`crate::read_back`]): what their
/// providers' APIs said against them, by relay sequence, and how many calls it took.
pub async fn read_back_page(
    providers: &crate::Providers,
    store: &Arc<Mutex<Store>>,
    page: &EventsPage,
) -> Result<(Contradictions, usize), SyncError> {
    let fresh = fresh_events(store, page)?;
    let bodies: Vec<_> = fresh.iter().map(|(_, p, b)| (*p, *b)).collect();
    let found = crate::read_back::confirm(providers, store, &bodies).await?;
    let contradictions = fresh
        .iter()
        .zip(found.contradictions)
        .filter_map(|((seq, _, _), c)| c.map(|c| (*seq, c)))
        .collect();
    Ok((contradictions, found.calls))
}

/// What the providers' APIs said against a page's events, by relay sequence.
pub type Contradictions = BTreeMap<i64, Contradiction>;

/// Applies one page and its cursor in one transaction. Returns the new cursor. Events in
/// `contradictions` are kept as `unconfirmed` and change nothing.
pub fn apply_page(
    store: &Arc<Mutex<Store>>,
    page: &EventsPage,
    contradictions: &Contradictions,
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
    let results = store.apply_checked_batch_with_cursor(
        fresh
            .iter()
            .map(|e| (e.provider, e.body.as_bytes(), contradictions.get(&e.seq))),
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

/// Whether a page came from the relay the cursor belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// The same relay, or one that does not say (older than identities).
    Same,
    /// The first identity seen: kept from now on, the cursor with it.
    Adopted,
    /// Another relay than the cursor's: the cursor is back at 0 with the new identity,
    /// and the page must not be applied (it was pulled after the old cursor).
    Changed { previous: String, current: String },
}

/// Compares the identity a page came with to the stored one, and records a new one (with
/// the cursor reset to 0 when it replaces another) in one transaction.
pub fn check_identity(
    store: &Arc<Mutex<Store>>,
    relay_id: Option<&str>,
) -> Result<Identity, SyncError> {
    let Some(current) = relay_id else {
        return Ok(Identity::Same);
    };
    let mut store = lock(store);
    match store.setting(RELAY_ID)? {
        Some(previous) if previous == current => Ok(Identity::Same),
        Some(previous) => {
            store.set_settings(&[(RELAY_CURSOR, "0"), (RELAY_ID, current)])?;
            Ok(Identity::Changed {
                previous,
                current: current.to_owned(),
            })
        }
        None => {
            store.set_setting(RELAY_ID, current)?;
            Ok(Identity::Adopted)
        }
    }
}

/// Starts over from the beginning of what the relay holds (it refused an ack: it does not
/// hold what the cursor says). Events pulled again are absorbed by the inbox's unique keys.
pub fn rewind(store: &Arc<Mutex<Store>>) -> Result<(), SyncError> {
    lock(store).set_setting(RELAY_CURSOR, "0")?;
    Ok(())
}

/// Set when the database was restored from a backup: reconcile everything since this time
/// (RFC 3339, the backup's newest entry) at the next start, then forget it.
pub const RECONCILE_SINCE: &str = "sync.reconcile_since";

/// After a restore: the relay is pulled again from its beginning (the restored cursor may
/// be ahead of what this copy holds, or behind what the relay still keeps; the inbox's
/// unique keys absorb events applied twice), and the providers are reconciled since
/// `since`, the backup's newest entry, for what the relay no longer holds.
pub fn start_over_after_restore(store: &mut Store, since: &str) -> Result<(), SyncError> {
    store.set_settings(&[(RELAY_CURSOR, "0"), (RECONCILE_SINCE, since)])?;
    Ok(())
}

/// The highest relay sequence applied so far.
pub fn cursor(store: &Store) -> Result<i64, SyncError> {
    Ok(store
        .setting(RELAY_CURSOR)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

/// Sends a relay API request whose only good answer is 200 with a JSON body, and reads it.
async fn expect_json<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<T, ProviderError> {
    let response = request.send().await.map_err(unreachable)?;
    let status = response.status().as_u16();
    if status != 200 {
        let text = response.text().await.unwrap_or_default();
        return Err(ProviderError::from_relay_status(status, text));
    }
    response.json().await.map_err(unreachable)
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
