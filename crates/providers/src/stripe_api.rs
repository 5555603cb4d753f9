//! Stripe through async-stripe 0.41.
//!
//! Every POST carries the caller's `Idempotency-Key`: async-stripe sends one per request
//! when the client's strategy is `RequestStrategy::Idempotent(key)`, so each call clones
//! the (cheap) client with that strategy. The strategy also means "run once": retrying is
//! the executor's job, with backoff and the same key, so a crash between attempts repeats
//! nothing at Stripe.
//!
//! Where async-stripe 0.41 falls short, and what is done instead (all through the crate's
//! own client, no hand-rolled HTTP):
//! - `GET /v1/events` is read with `Client::get_query` into `serde_json::Value`, not the
//!   typed `Event`: the sync path feeds each event's raw JSON to the same parser as the
//!   webhooks, and re-serialising the typed `Event` would not give back Stripe's body.
//!   (Its `events` feature also does not build on its own in 0.41: it needs `chrono`.)
//! - It neither exposes response headers nor has a request timeout: `Retry-After` on a
//!   429 is not visible (the caller's backoff applies), and each call is wrapped in a
//!   tokio timeout that counts as a transient failure.
//! - Its `Currency` enum has no three-decimal currency (KWD, BHD, JOD, OMR, TND), which
//!   Stripe accepts: prices, payment links and Checkout Sessions are posted with
//!   `Client::post_form` and forms of our own carrying the code as text, and their answers
//!   read as `{id, url}` only (the typed objects would refuse the currency).
//! - An error body whose `code` its `ErrorCode` enum does not know fails to deserialise
//!   and loses the HTTP status. Such an error is classed permanent with the decoding
//!   error as message (a 4xx is by far the likelier source; Stripe's 5xx bodies carry
//!   `type: api_error` without a code and decode fine).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use coachdesk_domain::read_back::SessionSeen;
use coachdesk_domain::Money;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stripe::{
    CheckoutSessionMode, Client, CreateCheckoutSession, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionLineItemsPriceData, CreateCheckoutSessionLineItemsPriceDataProductData,
    CreateProduct, CreateRefund, Currency, ListRefunds, PaymentIntentId, Product, RefundId,
    RefundReasonFilter, RequestStrategy, StripeError,
};

use crate::network::{self, NetworkError, NetworkFailure};
use crate::ProviderError;

const STRIPE: &str = "Stripe";

/// A Stripe API client for one secret key.
#[derive(Clone)]
pub struct StripeApi {
    client: Client,
    timeout: Duration,
    /// Host and port of `base`, probed to type a transport failure async-stripe reports as text.
    endpoint: (String, u16),
}

impl fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeApi")
            .field("key", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A payment link made for a session type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentLinkCreated {
    pub product: String,
    pub price: String,
    pub payment_link: String,
    pub url: String,
}

/// What a per-booking Checkout Session is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub booking_id: String,
    /// Stripe's `client_reference_id`: the Calendly invitee UUID, or the booking id.
    pub client_reference_id: String,
    pub product_name: String,
    pub amount: Money,
    pub customer_email: Option<String>,
    pub success_url: String,
    pub cancel_url: Option<String>,
    /// Unix seconds; Stripe accepts 30 minutes to 24 hours from now.
    pub expires_at: i64,
}

/// A created Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckoutSessionCreated {
    pub id: String,
    pub url: Option<String>,
}

/// A refund to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub payment_intent: String,
    /// `None` refunds the whole remainder.
    pub amount: Option<Money>,
    pub booking_id: String,
    /// Why (the outbox effect's cause); written to the refund's metadata.
    pub cause: String,
}

/// A refund Stripe accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundCreated {
    pub id: String,
    /// `pending`, `succeeded`, `failed`, `requires_action` or `canceled`.
    pub status: String,
}

/// A refund as `GET /v1/refunds?payment_intent=...` lists it, with the metadata this app
/// wrote when it asked for it (absent on refunds made elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundSeen {
    pub id: String,
    pub amount_minor: i64,
    /// `pending`, `succeeded`, `failed`, `requires_action` or `canceled`.
    pub status: String,
    pub booking_id: Option<String>,
    pub cause: Option<String>,
}

impl RefundSeen {
    /// Whether the money is (or will be) out of the account: failed and canceled refunds
    /// gave it back.
    pub fn commits_money(&self) -> bool {
        !matches!(self.status.as_str(), "failed" | "canceled")
    }
}

/// One page of `GET /v1/events`, each event as Stripe sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventsPage {
    pub events: Vec<Value>,
    pub has_more: bool,
}

/// A webhook endpoint as Stripe lists it (never with its secret: that comes only in the
/// answer to its creation, see [`CreatedWebhookEndpoint`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub enabled_events: Vec<String>,
    /// The API version its events are rendered in; `None`: the account's default.
    #[serde(default)]
    pub api_version: Option<String>,
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    #[serde(default)]
    pub created: i64,
}

impl WebhookEndpoint {
    pub fn enabled(&self) -> bool {
        self.status == "enabled"
    }
}

/// An endpoint's signing secret (`whsec_...`); `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct EndpointSecret(String);

impl EndpointSecret {
    /// The value, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EndpointSecret(<redacted>)")
    }
}

/// A created endpoint and the secret Stripe shows once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedWebhookEndpoint {
    pub endpoint: WebhookEndpoint,
    pub secret: EndpointSecret,
}

/// What a webhook endpoint is to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookEndpointSpec {
    pub url: String,
    pub enabled_events: Vec<String>,
    /// Pinned at creation; Stripe cannot change it later.
    pub api_version: String,
    pub description: String,
    pub metadata: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct CreatedRead {
    #[serde(flatten)]
    endpoint: WebhookEndpoint,
    #[serde(default)]
    secret: Option<EndpointSecret>,
}

#[derive(Deserialize)]
struct EndpointPage {
    data: Vec<WebhookEndpoint>,
    #[serde(default)]
    has_more: bool,
}

#[derive(Serialize)]
struct ListQuery<'a> {
    limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    starting_after: Option<&'a str>,
}

/// `POST /v1/webhook_endpoints/{id}`: what may change after creation.
#[derive(Serialize)]
struct EndpointUpdate<'a> {
    url: &'a str,
    enabled_events: &'a [String],
    disabled: bool,
}

#[derive(Serialize)]
struct ListEventsQuery<'a> {
    limit: u32,
    #[serde(rename = "created[gte]", skip_serializing_if = "Option::is_none")]
    created_gte: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    starting_after: Option<&'a str>,
}

impl StripeApi {
    /// A client for `base` (such as `https://api.stripe.com/` or the simulator's URL).
    pub fn new(base: &str, secret_key: &str) -> Result<StripeApi, ProviderError> {
        // `Client::from_url` panics on a bad URL; check first.
        let parsed = url::Url::parse(base).map_err(|_| ProviderError::BadBaseUrl {
            provider: STRIPE,
            value: base.to_owned(),
        })?;
        let endpoint = (
            parsed.host_str().unwrap_or_default().to_owned(),
            parsed.port_or_known_default().unwrap_or(443),
        );
        Ok(StripeApi {
            endpoint,
            client: Client::from_url(base, secret_key).with_app_info(
                "Coachdesk".into(),
                Some(env!("CARGO_PKG_VERSION").into()),
                None,
            ),
            timeout: Duration::from_secs(30),
        })
    }

    /// Sets the per-call timeout (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn idempotent(&self, key: &str) -> Client {
        self.client
            .clone()
            .with_strategy(RequestStrategy::Idempotent(key.to_owned()))
    }

    async fn call<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, StripeError>>,
    ) -> Result<T, ProviderError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Err(StripeError::ClientError(message))) => {
                let (host, port) = &self.endpoint;
                let kind = network::probe(host, *port, self.timeout).await;
                Err(ProviderError::Transient {
                    provider: STRIPE,
                    status: None,
                    message,
                    retry_after: None,
                    source: Some(Box::new(NetworkError::new(kind))),
                })
            }
            Ok(result) => result.map_err(classify),
            Err(elapsed) => Err(ProviderError::Transient {
                provider: STRIPE,
                status: None,
                message: format!("no answer within {:?}", self.timeout),
                retry_after: None,
                source: Some(Box::new(NetworkError {
                    kind: NetworkFailure::Timeout,
                    source: Some(Box::new(elapsed)),
                })),
            }),
        }
    }

    /// Creates the product, price and payment link for a session type. Each POST gets
    /// its own key derived from `idempotency_prefix` (`-product`, `-price`, `-link`).
    pub async fn create_payment_link(
        &self,
        name: &str,
        price: Money,
        idempotency_prefix: &str,
    ) -> Result<PaymentLinkCreated, ProviderError> {
        let product_key = format!("{idempotency_prefix}-product");
        let product: Product = self
            .call(Product::create(
                &self.idempotent(&product_key),
                CreateProduct::new(name),
            ))
            .await?;
        let product_id = product.id.to_string();
        let price_key = format!("{idempotency_prefix}-price");
        // Posted as a form of our own: the currency goes as its code (see `currency_code`).
        let price_obj: Created = self
            .call(self.idempotent(&price_key).post_form(
                "/prices",
                PriceForm {
                    currency: currency_code(price),
                    unit_amount: price.minor,
                    product: &product_id,
                },
            ))
            .await?;
        let link_key = format!("{idempotency_prefix}-link");
        let link: Created = self
            .call(self.idempotent(&link_key).post_form(
                "/payment_links",
                LinkForm {
                    line_items: vec![LinkItem {
                        price: &price_obj.id,
                        quantity: 1,
                    }],
                },
            ))
            .await?;
        Ok(PaymentLinkCreated {
            product: product_id,
            price: price_obj.id,
            url: link.url.ok_or_else(|| ProviderError::Permanent {
                provider: STRIPE,
                status: 0,
                message: format!("the payment link {} came without its URL", link.id),
            })?,
            payment_link: link.id,
        })
    }

    /// Creates a per-booking Checkout Session (a recovery link).
    pub async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutSessionCreated, ProviderError> {
        let mut params = CreateCheckoutSession::new();
        params.mode = Some(CheckoutSessionMode::Payment);
        params.client_reference_id = Some(&request.client_reference_id);
        params.customer_email = request.customer_email.as_deref();
        params.success_url = Some(&request.success_url);
        params.cancel_url = request.cancel_url.as_deref();
        params.expires_at = Some(request.expires_at);
        params.metadata = Some(HashMap::from([(
            "booking_id".to_owned(),
            request.booking_id.clone(),
        )]));
        params.line_items = Some(vec![CreateCheckoutSessionLineItems {
            price_data: Some(CreateCheckoutSessionLineItemsPriceData {
                // Replaced by the amount's own code below (see `currency_code`).
                currency: Currency::USD,
                unit_amount: Some(request.amount.minor),
                product_data: Some(CreateCheckoutSessionLineItemsPriceDataProductData {
                    name: request.product_name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            quantity: Some(1),
            ..Default::default()
        }]);
        let mut form = serde_json::to_value(&params).map_err(|e| ProviderError::Permanent {
            provider: STRIPE,
            status: 0,
            message: format!("the Checkout Session request could not be built: {e}"),
        })?;
        form["line_items"][0]["price_data"]["currency"] =
            Value::String(currency_code(request.amount));
        let session: Created = self
            .call(
                self.idempotent(idempotency_key)
                    .post_form("/checkout/sessions", form),
            )
            .await?;
        Ok(CheckoutSessionCreated {
            id: session.id,
            url: session.url,
        })
    }

    /// Refunds all or part of a payment, once per `idempotency_key`.
    pub async fn refund(
        &self,
        request: &RefundRequest,
        idempotency_key: &str,
    ) -> Result<RefundCreated, ProviderError> {
        let payment_intent =
            request
                .payment_intent
                .parse()
                .map_err(|_| ProviderError::Permanent {
                    provider: STRIPE,
                    status: 400,
                    message: format!("{:?} is not a payment intent id", request.payment_intent),
                })?;
        let mut params = CreateRefund::new();
        params.payment_intent = Some(payment_intent);
        params.amount = request.amount.map(|m| m.minor);
        params.reason = Some(RefundReasonFilter::RequestedByCustomer);
        params.metadata = Some(HashMap::from([
            ("cause".to_owned(), request.cause.clone()),
            ("booking_id".to_owned(), request.booking_id.clone()),
        ]));
        // Read without the typed `Refund` (its `Currency` refuses three-decimal ones): a
        // refund made but unreadable would look failed.
        let refund: RefundRead = self
            .call(
                self.idempotent(idempotency_key)
                    .post_form("/refunds", params),
            )
            .await?;
        Ok(RefundCreated {
            id: refund.id,
            status: refund.status.unwrap_or_else(|| "pending".into()),
        })
    }

    /// `GET /v1/checkout/sessions/{id}`: what Stripe itself says about a payment a webhook
    /// reported. A 404 (no such session) comes back as a permanent error with status 404.
    pub async fn checkout_session(&self, id: &str) -> Result<SessionSeen, ProviderError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ProviderError::Permanent {
                provider: STRIPE,
                status: 400,
                message: format!("{id:?} is not a Checkout Session id"),
            });
        }
        let session: Value = self
            .call(
                self.client
                    .get::<Value>(&format!("/checkout/sessions/{id}")),
            )
            .await?;
        let text = |key: &str| session[key].as_str().map(str::to_owned);
        let payment_intent = match &session["payment_intent"] {
            Value::String(pi) => Some(pi.clone()),
            Value::Object(pi) => pi.get("id").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        };
        Ok(SessionSeen {
            id: text("id").unwrap_or_else(|| id.to_owned()),
            status: text("status"),
            payment_status: text("payment_status"),
            amount_total: session["amount_total"].as_i64(),
            currency: text("currency"),
            payment_intent,
            client_reference_id: text("client_reference_id"),
            booking_id: session["metadata"]["booking_id"]
                .as_str()
                .map(str::to_owned),
        })
    }

    /// Every refund of `payment_intent` (all pages), newest first: how the executor finds
    /// out whether a refund it asked for exists before asking again, since Stripe keeps an
    /// `Idempotency-Key` for 24 hours only.
    pub async fn list_refunds(
        &self,
        payment_intent: &str,
    ) -> Result<Vec<RefundSeen>, ProviderError> {
        let intent: PaymentIntentId =
            payment_intent
                .parse()
                .map_err(|_| ProviderError::Permanent {
                    provider: STRIPE,
                    status: 400,
                    message: format!("{payment_intent:?} is not a payment intent id"),
                })?;
        let mut seen = Vec::new();
        let mut after: Option<RefundId> = None;
        loop {
            let mut params = ListRefunds::new();
            params.payment_intent = Some(intent.clone());
            params.limit = Some(100);
            params.starting_after = after.take();
            let page: RefundPage = self
                .call(self.client.get_query("/refunds", &params))
                .await?;
            let last = match page.data.last() {
                Some(r) => {
                    Some(
                        r.id.parse::<RefundId>()
                            .map_err(|_| ProviderError::Permanent {
                                provider: STRIPE,
                                status: 0,
                                message: format!("{:?} is not a refund id", r.id),
                            })?,
                    )
                }
                None => None,
            };
            seen.extend(page.data.into_iter().map(|refund| {
                let meta = |key: &str| refund.metadata.as_ref().and_then(|m| m.get(key)).cloned();
                RefundSeen {
                    id: refund.id.clone(),
                    amount_minor: refund.amount,
                    status: refund.status.clone().unwrap_or_else(|| "pending".into()),
                    booking_id: meta("booking_id"),
                    cause: meta("cause"),
                }
            }));
            match (page.has_more, last) {
                (true, Some(last)) => after = Some(last),
                _ => return Ok(seen),
            }
        }
    }

    /// One page of events created at or after `created_gte` (unix seconds), oldest page
    /// first when paging with `starting_after` (Stripe lists newest first).
    pub async fn list_events(
        &self,
        created_gte: Option<i64>,
        starting_after: Option<&str>,
        limit: u32,
    ) -> Result<EventsPage, ProviderError> {
        let query = ListEventsQuery {
            limit: limit.clamp(1, 100),
            created_gte,
            starting_after,
        };
        let page: Value = self
            .call(self.client.get_query::<Value, _>("/events", &query))
            .await?;
        let events = page["data"].as_array().cloned().unwrap_or_default();
        Ok(EventsPage {
            has_more: page["has_more"].as_bool().unwrap_or(false),
            events,
        })
    }
}

impl StripeApi {
    /// Every webhook endpoint of the account (Stripe allows 16), newest first.
    pub async fn list_webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, ProviderError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let query = ListQuery {
                limit: 100,
                starting_after: after.as_deref(),
            };
            let page: EndpointPage = self
                .call(
                    self.client
                        .get_query::<EndpointPage, _>("/webhook_endpoints", &query),
                )
                .await?;
            let last = page.data.last().map(|e| e.id.clone());
            all.extend(page.data);
            match (page.has_more, last) {
                (true, Some(last)) => after = Some(last),
                _ => return Ok(all),
            }
        }
    }

    /// Creates a webhook endpoint under `idempotency_key`: a repeat with the same key (a
    /// double click, a retry) gets the same endpoint and secret back, not a second one.
    pub async fn create_webhook_endpoint(
        &self,
        spec: &WebhookEndpointSpec,
        idempotency_key: &str,
    ) -> Result<CreatedWebhookEndpoint, ProviderError> {
        let read: CreatedRead = self
            .call(
                self.idempotent(idempotency_key)
                    .post_form::<CreatedRead, _>("/webhook_endpoints", spec),
            )
            .await?;
        let secret = read.secret.ok_or_else(|| ProviderError::Permanent {
            provider: STRIPE,
            status: 0,
            message: "Stripe created the webhook endpoint but its answer has no secret".into(),
        })?;
        Ok(CreatedWebhookEndpoint {
            endpoint: read.endpoint,
            secret,
        })
    }

    /// Points an endpoint at `url` with `enabled_events`, and enables it.
    pub async fn update_webhook_endpoint(
        &self,
        id: &str,
        url: &str,
        enabled_events: &[String],
    ) -> Result<WebhookEndpoint, ProviderError> {
        let path = endpoint_path(id)?;
        let form = EndpointUpdate {
            url,
            enabled_events,
            disabled: false,
        };
        self.call(self.client.post_form::<WebhookEndpoint, _>(&path, &form))
            .await
    }

    /// Deletes an endpoint; `false` if Stripe no longer had it.
    pub async fn delete_webhook_endpoint(&self, id: &str) -> Result<bool, ProviderError> {
        let path = endpoint_path(id)?;
        match self.call(self.client.delete::<Value>(&path)).await {
            Ok(_) => Ok(true),
            Err(ProviderError::Permanent { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The path of an endpoint; its id goes into a URL, so only Stripe's id characters pass.
fn endpoint_path(id: &str) -> Result<String, ProviderError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ProviderError::Permanent {
            provider: STRIPE,
            status: 0,
            message: format!("{id:?} is not a webhook endpoint id"),
        });
    }
    Ok(format!("/webhook_endpoints/{id}"))
}

/// Stripe's lowercase currency code. async-stripe 0.41's `Currency` enum lacks the
/// three-decimal currencies Stripe takes (KWD, BHD, JOD, OMR, TND), so prices and Checkout
/// line items carry the code as text rather than the enum; Stripe itself answers a currency
/// it does not know with a 400 (a permanent error with its words).
fn currency_code(money: Money) -> String {
    money.currency.code().to_ascii_lowercase()
}

/// The id (and URL) of an object created with a form of our own, read without the typed
/// object (whose `Currency` field would refuse a three-decimal currency).
#[derive(Deserialize)]
struct Created {
    id: String,
    #[serde(default)]
    url: Option<String>,
}

/// A refund as read back (id, amount, status, our metadata), without its currency.
#[derive(Deserialize)]
struct RefundRead {
    id: String,
    amount: i64,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    metadata: Option<HashMap<String, String>>,
}

/// One page of `GET /v1/refunds`.
#[derive(Deserialize)]
struct RefundPage {
    data: Vec<RefundRead>,
    #[serde(default)]
    has_more: bool,
}

/// `POST /v1/payment_links` for one price.
#[derive(Serialize)]
struct LinkForm<'a> {
    line_items: Vec<LinkItem<'a>>,
}

#[derive(Serialize)]
struct LinkItem<'a> {
    price: &'a str,
    quantity: u64,
}

/// `POST /v1/prices` for a product, with the currency as its code.
#[derive(Serialize)]
struct PriceForm<'a> {
    currency: String,
    unit_amount: i64,
    product: &'a str,
}

fn classify(err: StripeError) -> ProviderError {
    match err {
        StripeError::Stripe(e) => {
            let message = e
                .message
                .clone()
                .unwrap_or_else(|| e.error_type.to_string());
            ProviderError::from_status(STRIPE, e.http_status, message, None)
        }
        StripeError::Timeout => ProviderError::Transient {
            provider: STRIPE,
            status: None,
            message: "the request timed out".into(),
            retry_after: None,
            source: Some(Box::new(NetworkError {
                kind: NetworkFailure::Timeout,
                source: Some(Box::new(err)),
            })),
        },
        StripeError::ClientError(message) => ProviderError::Transient {
            provider: STRIPE,
            status: None,
            message,
            retry_after: None,
            source: None,
        },
        other => ProviderError::Permanent {
            provider: STRIPE,
            status: 0,
            message: format!("Stripe's answer could not be read: {other}"),
        },
    }
}
