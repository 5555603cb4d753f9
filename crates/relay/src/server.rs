//! The HTTP side of the relay: routes, a bounded worker pool, timeouts and shutdown.
//!
//! The public socket belongs to the guard (`guard`), which caps connections, reads each
//! request under a deadline and within size limits, applies rate limits, and only then
//! passes the whole request to tiny_http over an internal socket. tiny_http parses it and
//! queues it; a fixed pool of workers takes requests from the queue, so the work done at
//! once is bounded by the pool. A worker survives a panic in a handler.
//!
//! A webhook is not answered by the worker that verified it: the worker hands the event and
//! the request to the writer and takes the next request. After the group commit, the writer
//! passes the request and its outcome to a small pool of responder threads, which send the
//! answer. So the events sharing one fsync are bounded by the writer queue (backpressure:
//! workers block when it is full), not by the worker count, and no answer precedes its
//! commit. Everything else (pulls, acks, the link table) is answered by its worker.
//!
//! Shutdown (SIGTERM): the guard stops accepting and waits for the requests it passed on,
//! long-polls are woken, workers finish the request in hand and what is already queued, the writer commits what it holds, the responders send the last
//! answers, and only then does `serve` return. Nothing that was answered 2xx is lost, and
//! nothing unanswered was acknowledged.

use std::io::{Cursor, Read};
use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use coachdesk_protocol::relay::{
    error_code, AckRequest, AckResponse, ApiError, AppKeysRequest, CalendlyKeyRequest,
    CheckoutKeyAnswer, CheckoutKeyRequest, EventsPage, KeptSecrets, PaymentLinkTable, Provider,
    RedirectSeen, RedirectsPage, StripeSecretsRequest,
};
use tiny_http::{Header, Method, Request, Response};

use crate::at_rest::AtRest;
use crate::checkout::{self, SessionStatus, StripeCheckout};
use crate::config::Settings;
use crate::handover::{HandedOver, TenantKeys};
use crate::index::{EventKey, IndexKey};
use crate::metrics::{Metrics, Route};
use crate::store::{self, Acked, Consumer, Inserted, ReadStore};
use crate::tenant::{TenantId, TenantName};
use crate::writer::{self, Job, Tip};
use crate::{guard, paylink, token, webhook};

/// Why the relay could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the HTTP server: {0}")]
    Http(String),
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error(transparent)]
    IndexKey(#[from] crate::index::IndexKeyError),
}

/// Largest body accepted on the pull API (acks, the payment link table).
const MAX_API_BODY: usize = 1024 * 1024;
/// Largest total of bodies in one page of events.
const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;
/// Jobs that may wait for the writer before handlers block (backpressure).
const WRITER_QUEUE: usize = 8192;
/// Committed webhooks that may wait for a responder before the writer blocks.
const RESPONDER_QUEUE: usize = 8192;
/// Threads sending the answers to committed webhooks. An answer is a few hundred bytes that
/// fits the socket buffer, so a write only blocks (up to the write timeout) for a client that
/// pipelines without reading; several responders keep one such client from stalling others.
const RESPONDERS: usize = 4;
/// Most answers a responder takes from the queue at once.
const RESPONDER_BATCH: usize = 16;

type Resp = Response<Cursor<Vec<u8>>>;

/// A committed (or failed) webhook waiting for its answer.
struct Answer {
    rq: Request,
    provider: Provider,
    /// The tenant's name, for its counters; `None` for the relay's own coach.
    tenant: Option<TenantName>,
    started: Instant,
    outcome: Result<Inserted, writer::WriteFailed>,
}

struct Ctx {
    settings: Arc<Settings>,
    /// Signing keys and secrets the apps handed over (`PUT /v1/calendly-signing-key`,
    /// `PUT /v1/stripe-signing-secrets`), per tenant, accepted beside the configured ones
    /// (which are the relay's own coach's).
    handed_over: Arc<HandedOver>,
    jobs: SyncSender<Job>,
    answers: SyncSender<Answer>,
    tip: Arc<Tip>,
    metrics: Arc<Metrics>,
    long_polls: Arc<AtomicUsize>,
    max_long_polls: usize,
    shutdown: Arc<AtomicBool>,
    /// Other relay processes write to the same database (PostgreSQL).
    shared_database: bool,
    /// Stripe with the operator's restricted key: `/pay` makes Checkout Sessions for the
    /// relay's own coach (never for a tenant: the key is of the operator's account).
    stripe: Option<Arc<StripeCheckout>>,
    tenant_rates: Arc<guard::limits::TenantRates>,
    tenants: Arc<crate::tenant::Resolved>,
    /// Event keys are stored hashed with it (see `index`).
    index: Arc<IndexKey>,
}

/// Whose request this is.
struct Scope {
    tenant: TenantId,
    /// `None` for the relay's own coach.
    name: Option<TenantName>,
}

impl Scope {
    /// The prefix of its public paths: `""` for the relay's own coach, `/t/{name}`.
    fn prefix(&self) -> String {
        self.name
            .as_ref()
            .map_or_else(String::new, |n| format!("/t/{}", n.as_str()))
    }
}

/// Run the relay until `shutdown` is set. `on_ready` gets the bound address once the relay
/// accepts requests.
pub fn serve(
    settings: Settings,
    shutdown: Arc<AtomicBool>,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let settings = Arc::new(settings);
    let backend = store::open(&settings, settings.durability)?;
    let index = Arc::new(IndexKey::for_settings(&settings)?);
    let rekeyed =
        backend.adopt_index_key(&index.check(), &|provider, key| index.rehash(provider, key))?;
    if rekeyed > 0 {
        tracing::info!(events = rekeyed, "stored event keys are now kept hashed");
    }
    let tip = Arc::new(Tip::new(0));
    // Other relay processes on the same database wake this one's long-polls. Started
    // before the tip is read, so nothing committed in between is missed.
    let watch_stop = Arc::new(AtomicBool::new(false));
    let handed_over = Arc::new(HandedOver::new(AtRest::new(&index)));
    let tenants = Arc::new(crate::tenant::Resolved::new(match &settings.database_url {
        // Other processes announce removals and key changes (see `Backend::watch`).
        Some(_) => None,
        None => Some(crate::tenant::RESOLVED_FOR),
    }));
    let (announce, announced) = mpsc::channel::<Option<TenantId>>();
    let watcher = {
        let tip = tip.clone();
        let (handed_over, tenants) = (handed_over.clone(), tenants.clone());
        backend.watch(
            Box::new(move |seq| tip.advance(seq)),
            Box::new(move |tenant| {
                handed_over.forget(tenant);
                if tenant.is_none() {
                    tenants.forget_all();
                }
                // Read again ahead of the tenant's next webhook (ends with the warmer).
                let _ = announce.send(tenant);
            }),
            watch_stop.clone(),
        )?
    };
    let first = backend.reader()?;
    tip.advance(first.newest_seq()?);
    let home_keys = handed_over.get(&settings, &*first, TenantId::HOME)?;
    drop(first);
    let warmer = {
        let reader = backend.reader()?;
        let (settings, handed_over, tenants) =
            (settings.clone(), handed_over.clone(), tenants.clone());
        let stop = watch_stop.clone();
        std::thread::Builder::new()
            .name("relay-keys".to_owned())
            .spawn(move || {
                warm_keys(
                    &settings,
                    &*reader,
                    &handed_over,
                    &tenants,
                    &announced,
                    &stop,
                )
            })
            .map_err(ServeError::Thread)?
    };
    let calendly_key_count = settings.calendly_keys.len() + home_keys.calendly.len();

    let listener = bind(&settings.listen).map_err(|source| ServeError::Bind {
        addr: settings.listen.clone(),
        source,
    })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: settings.listen.clone(),
        source,
    })?;
    // tiny_http listens on an internal socket only the guard connects to; the guard owns
    // the public one (see `guard`).
    let internal = Arc::new(guard::Internal::start().map_err(|source| ServeError::Bind {
        addr: "internal socket".to_owned(),
        source,
    })?);

    let days = |d: u32| Duration::from_secs(u64::from(d) * 86_400);
    let retention = writer::Retention {
        acked: days(settings.retention_days),
        unacked: (settings.unacked_retention_days > 0)
            .then(|| days(settings.unacked_retention_days)),
    };
    let metrics = Arc::new(Metrics::default());
    let (jobs, writer_handle) = writer::spawn(
        backend.writer()?,
        tip.clone(),
        metrics.clone(),
        retention,
        WRITER_QUEUE,
    )
    .map_err(ServeError::Thread)?;
    let (answers, answer_queue) = mpsc::sync_channel::<Answer>(RESPONDER_QUEUE);
    let answer_queue = Arc::new(Mutex::new(answer_queue));
    let mut responders = Vec::with_capacity(RESPONDERS);
    for i in 0..RESPONDERS {
        let (queue, metrics) = (answer_queue.clone(), metrics.clone());
        let handle = std::thread::Builder::new()
            .name(format!("relay-responder-{i}"))
            .spawn(move || respond_loop(&queue, &metrics))
            .map_err(ServeError::Thread)?;
        responders.push(handle);
    }

    // Workers run until the guard has passed on every request it took: set after it stops.
    let workers_stop = Arc::new(AtomicBool::new(false));

    let long_polls = Arc::new(AtomicUsize::new(0));
    let stripe = settings.stripe_restricted_key.clone().map(|key| {
        Arc::new(StripeCheckout::new(
            &settings.stripe_api_base,
            key,
            Duration::from_millis(settings.stripe_timeout_ms),
        ))
    });
    let tenant_rates = Arc::new(guard::limits::TenantRates::new(tenant_rate(&settings)));
    let mut workers = Vec::with_capacity(settings.workers);
    for i in 0..settings.workers {
        let reader = backend.reader()?;
        let ctx = Ctx {
            settings: settings.clone(),
            handed_over: handed_over.clone(),
            jobs: jobs.clone(),
            answers: answers.clone(),
            tip: tip.clone(),
            metrics: metrics.clone(),
            long_polls: long_polls.clone(),
            max_long_polls: (settings.workers / 2).max(1),
            shutdown: shutdown.clone(),
            shared_database: watcher.is_some(),
            stripe: stripe.clone(),
            tenant_rates: tenant_rates.clone(),
            tenants: tenants.clone(),
            index: index.clone(),
        };
        let internal = internal.clone();
        let stop = workers_stop.clone();
        let handle = std::thread::Builder::new()
            .name(format!("relay-worker-{i}"))
            .spawn(move || work(&internal, &ctx, &*reader, &stop))
            .map_err(ServeError::Thread)?;
        workers.push(handle);
    }
    drop(jobs);
    drop(answers);
    let refused_metrics = metrics.clone();
    let on_refused: guard::OnRefused = Box::new(move |refusal| match refusal {
        guard::Refusal::Request { path, status } => {
            refused_metrics.guard_answered(status);
            let provider = match crate::tenant::split_path(path).map(|(_, rest)| rest) {
                Some("/hooks/stripe") => Provider::Stripe,
                Some("/hooks/calendly") => Provider::Calendly,
                _ => return,
            };
            if status == 413 {
                refused_metrics.rejected(provider, "too_large");
            }
        }
        guard::Refusal::Connection => refused_metrics.connection_refused(),
        guard::Refusal::IdleCut => refused_metrics.idle_connection_cut(),
    });
    let front = guard::Guard::spawn(listener, internal, guard_config(&settings), on_refused)
        .map_err(ServeError::Thread)?;

    tracing::info!(
        addr = %local,
        relay_id = backend.relay_id().as_str(),
        workers = settings.workers,
        durability = settings.durability.as_str(),
        stripe_secrets = settings.stripe_secrets.len(),
        calendly_keys = calendly_key_count,
        checkout_sessions = stripe.is_some(),
        "relay ready"
    );
    if settings.stripe_secrets.is_empty() && home_keys.stripe.is_empty() {
        tracing::warn!(
            "no Stripe secret configured yet: Stripe webhooks are rejected until one is configured or the app hands over its endpoint's secret"
        );
    }
    if calendly_key_count == 0 {
        tracing::warn!(
            "no Calendly signing key configured yet: Calendly webhooks are rejected until one is configured or the app registers its subscription"
        );
    }
    on_ready(local);

    while !shutdown.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!("shutting down: finishing in-flight requests");
    tip.close();
    // Long-polls are woken and answer at once; a grace longer than any other request.
    front.stop(settings.request_deadline() + Duration::from_secs(10));
    workers_stop.store(true, Ordering::SeqCst);
    join_all(workers);
    // Every worker (and so every job sender) is gone: the writer drains, commits and stops.
    if writer_handle.join().is_err() {
        tracing::error!("the writer thread panicked");
    }
    // The writer ran every callback, so every answer sender is gone: responders drain and stop.
    join_all(responders);
    watch_stop.store(true, Ordering::SeqCst);
    join_all(watcher.into_iter().chain([warmer]).collect());
    tracing::info!("relay stopped");
    Ok(())
}

/// Reads every tenant's keys, and keeps its name, ahead of its webhooks: at start, and a
/// tenant's again when a change to its keys was announced (`None`: every tenant's). A
/// coach's first webhook after a start or a change then finds them in memory, where it
/// would read them itself (five queries): a hosted relay restarted under load would answer
/// its first second of webhooks late. A failure is logged; a request reads what is missing.
fn warm_keys(
    settings: &Settings,
    reader: &dyn ReadStore,
    handed_over: &HandedOver,
    tenants: &crate::tenant::Resolved,
    announced: &Receiver<Option<TenantId>>,
    stop: &AtomicBool,
) {
    let read_ahead = |tenant: TenantId| {
        if let Err(e) = handed_over.read_ahead(settings, reader, tenant) {
            tracing::warn!(%tenant, error = %e, "a tenant's keys could not be read ahead");
        }
    };
    let mut every_tenant = true;
    loop {
        if every_tenant {
            every_tenant = false;
            match tenants.read_all(reader) {
                Ok(all) => {
                    for t in all {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        read_ahead(t.id);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the tenants could not be listed to read their keys ahead")
                }
            }
        }
        match announced.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(tenant)) => read_ahead(tenant),
            Ok(None) => every_tenant = true,
            Err(mpsc::RecvTimeoutError::Timeout) if !stop.load(Ordering::SeqCst) => {}
            // Stopping, or no process announces changes (a file of its own): done.
            Err(_) => return,
        }
    }
}

fn join_all(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        if h.join().is_err() {
            tracing::error!("a worker thread panicked");
        }
    }
}

/// Binds the public socket with a long accept queue: a burst of connections (a flood, or
/// many honest clients at once) waits there for the guard instead of having its SYNs
/// dropped, which would cost an honest client a one-second retransmission.
fn bind(listen: &str) -> std::io::Result<TcpListener> {
    use std::net::ToSocketAddrs;
    let mut last = std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address");
    for addr in listen.to_socket_addrs()? {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )?;
        sock.set_reuse_address(true)?;
        match sock.bind(&addr.into()).and_then(|()| sock.listen(4096)) {
            Ok(()) => return Ok(sock.into()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn rate(per_sec: u32, burst: u32) -> guard::limits::Rate {
    let nz = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    guard::limits::Rate {
        per_sec: nz(per_sec),
        burst: nz(burst),
    }
}

fn tenant_rate(settings: &Settings) -> guard::limits::Rate {
    rate(
        settings.rate_tenant_hooks_per_sec,
        settings.rate_tenant_hooks_burst,
    )
}

/// The guard's limits from the settings (public for the benchmark's guard-only server).
pub fn guard_config(settings: &Settings) -> guard::GuardConfig {
    let nz = |n: u32| NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    guard::GuardConfig {
        max_connections: settings.max_connections,
        max_connections_per_ip: settings.max_connections_per_ip,
        request_deadline: settings.request_deadline(),
        read_timeout: settings.read_timeout(),
        max_header_bytes: settings.max_header_bytes,
        max_body_bytes: settings.max_body_bytes.max(MAX_API_BODY),
        // A long-poll waits up to max_wait_secs before tiny_http answers.
        upstream_timeout: Duration::from_secs(settings.max_wait_secs.saturating_add(60)),
        trusted_proxies: settings.trusted_proxies.clone(),
        quotas: guard::limits::Quotas {
            hooks: rate(settings.rate_hooks_per_sec, settings.rate_hooks_burst),
            api: rate(settings.rate_api_per_sec, settings.rate_api_burst),
            pay: rate(settings.rate_pay_per_sec, settings.rate_pay_burst),
            auth_failures_burst: nz(settings.auth_failures_burst),
            auth_failures_per_min: nz(settings.auth_failures_per_min),
        },
    }
}

/// A worker: answers requests from tiny_http's queue until `stop`, then drains the queue.
/// A panic while handling a request ends that request only (tiny_http answers it 500 when
/// it is dropped); the worker goes on with the next. Should tiny_http's acceptor stop, the
/// worker told so starts a new one (`guard::Internal::replace`).
fn work(internal: &guard::Internal, ctx: &Ctx, reader: &dyn ReadStore, stop: &AtomicBool) {
    loop {
        let server = internal.server();
        let rq = if stop.load(Ordering::SeqCst) {
            // Drain what tiny_http has already queued, then stop.
            match server.try_recv() {
                Ok(Some(rq)) => rq,
                _ => return,
            }
        } else {
            match server.recv_timeout(Duration::from_millis(100)) {
                Ok(Some(rq)) => rq,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "the internal HTTP acceptor stopped; starting a new one");
                    if let Err(e) = internal.replace(server) {
                        tracing::error!(error = %e, "cannot start a new internal HTTP server yet");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    continue;
                }
            }
        };
        let run = std::panic::AssertUnwindSafe(|| handle(ctx, reader, rq));
        if std::panic::catch_unwind(run).is_err() {
            tracing::error!("a request handler panicked; the worker goes on");
        }
    }
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn with_header(resp: Resp, name: &str, value: &str) -> Resp {
    match header(name, value) {
        Some(h) => resp.with_header(h),
        None => resp,
    }
}

fn text(status: u16, body: &str) -> Resp {
    with_header(
        Response::from_string(format!("{body}\n")).with_status_code(status),
        "Content-Type",
        "text/plain; charset=utf-8",
    )
}

fn json(status: u16, value: &impl serde::Serialize) -> Resp {
    match serde_json::to_vec(value) {
        Ok(body) => json_raw(status, body),
        Err(_) => text(500, "internal error"),
    }
}

fn json_raw(status: u16, body: impl Into<Vec<u8>>) -> Resp {
    // A known length (never chunked) keeps clients simple; pages are bounded anyway.
    with_header(
        Response::from_data(body)
            .with_status_code(status)
            .with_chunked_threshold(usize::MAX),
        "Content-Type",
        "application/json",
    )
}

fn request_header<'a>(rq: &'a Request, name: &'static str) -> Option<&'a str> {
    rq.headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// The scope a path's `/t/{name}/` prefix names, and the rest of the path; otherwise the
/// answer to send (an unknown tenant is not found, like any unknown path).
fn scope<'p>(ctx: &Ctx, reader: &dyn ReadStore, path: &'p str) -> Result<(Scope, &'p str), Resp> {
    let Some((name, rest)) = crate::tenant::split_path(path) else {
        return Err(text(404, "not found"));
    };
    let Some(name) = name else {
        return Ok((
            Scope {
                tenant: TenantId::HOME,
                name: None,
            },
            rest,
        ));
    };
    match ctx.tenants.resolve(reader, &name) {
        Ok(Some(tenant)) => Ok((
            Scope {
                tenant,
                name: Some(name),
            },
            rest,
        )),
        Ok(None) => Err(text(404, "not found")),
        Err(e) => {
            tracing::error!(error = %e, "tenant lookup failed");
            Err(text(503, "unavailable"))
        }
    }
}

fn handle(ctx: &Ctx, reader: &dyn ReadStore, mut rq: Request) {
    let started = Instant::now();
    let url = rq.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let (scope, path) = match scope(ctx, reader, path) {
        Ok(found) => found,
        Err(resp) => return send(&ctx.metrics, rq, Route::Other, started, resp),
    };
    let sc = &scope;
    let (route, resp) = match path {
        "/hooks/stripe" => return hook(ctx, reader, sc, rq, Provider::Stripe, started),
        "/hooks/calendly" => return hook(ctx, reader, sc, rq, Provider::Calendly, started),
        "/v1/events" => (
            Route::Pull,
            only(&rq, Method::Get).unwrap_or_else(|| pull(ctx, reader, sc, &rq, query)),
        ),
        "/v1/ack" => (
            Route::Other,
            only(&rq, Method::Post).unwrap_or_else(|| ack(ctx, reader, sc, &mut rq)),
        ),
        "/v1/payment-links" => (
            Route::Other,
            only(&rq, Method::Put).unwrap_or_else(|| put_links(ctx, reader, sc, &mut rq)),
        ),
        "/v1/redirects" => (
            Route::Other,
            only(&rq, Method::Get).unwrap_or_else(|| redirects(ctx, reader, sc, &rq)),
        ),
        "/v1/calendly-signing-key" => (
            Route::Other,
            only(&rq, Method::Put).unwrap_or_else(|| put_calendly_key(ctx, reader, sc, &mut rq)),
        ),
        "/v1/stripe-signing-secrets" => (
            Route::Other,
            only(&rq, Method::Put).unwrap_or_else(|| put_stripe_secrets(ctx, reader, sc, &mut rq)),
        ),
        "/v1/app-keys" => (
            Route::Other,
            only(&rq, Method::Put).unwrap_or_else(|| put_app_keys(ctx, reader, sc, &mut rq)),
        ),
        "/v1/stripe-checkout-key" => (
            Route::Other,
            only(&rq, Method::Put).unwrap_or_else(|| put_checkout_key(ctx, reader, sc, &mut rq)),
        ),
        // The operator's: not under a tenant.
        "/healthz" if sc.tenant == TenantId::HOME => (
            Route::Other,
            only(&rq, Method::Get).unwrap_or_else(|| healthz(ctx, reader)),
        ),
        "/metrics" if sc.tenant == TenantId::HOME => (
            Route::Other,
            only(&rq, Method::Get).unwrap_or_else(|| metrics(ctx, reader)),
        ),
        p if p.starts_with("/pay/") => (
            Route::Other,
            only(&rq, Method::Get)
                .unwrap_or_else(|| pay(ctx, reader, sc, &rq, &p["/pay/".len()..], query)),
        ),
        _ => (Route::Other, text(404, "not found")),
    };
    send(&ctx.metrics, rq, route, started, resp);
}

fn send(metrics: &Metrics, rq: Request, route: Route, started: Instant, resp: Resp) {
    if let Err(e) = rq.respond(resp) {
        tracing::debug!(error = %e, "client went away before the answer");
    }
    metrics.observe(route, started.elapsed());
}

/// A responder: answers committed webhooks until the writer and every worker are gone.
/// It takes what is waiting (up to a small batch) at once, which saves a wake-up per answer.
fn respond_loop(queue: &Mutex<Receiver<Answer>>, metrics: &Metrics) {
    let mut batch = Vec::with_capacity(RESPONDER_BATCH);
    loop {
        {
            let queue = queue.lock().unwrap_or_else(|p| p.into_inner());
            let Ok(first) = queue.recv() else { return };
            batch.push(first);
            while batch.len() < RESPONDER_BATCH {
                match queue.try_recv() {
                    Ok(a) => batch.push(a),
                    Err(_) => break,
                }
            }
        }
        for a in batch.drain(..) {
            answer(metrics, a);
        }
    }
}

fn answer(metrics: &Metrics, a: Answer) {
    let count = |outcome| {
        if let Some(name) = &a.tenant {
            metrics.tenant(name.as_str(), outcome);
        }
    };
    let resp = match a.outcome {
        Ok(Inserted::New(seq)) => {
            metrics.received(a.provider);
            count(crate::metrics::TenantOutcome::Stored);
            json_raw(200, format!("{{\"status\":\"stored\",\"seq\":{seq}}}"))
        }
        Ok(Inserted::Duplicate) => {
            metrics.duplicate(a.provider);
            count(crate::metrics::TenantOutcome::Duplicate);
            json_raw(200, "{\"status\":\"duplicate\"}".to_owned())
        }
        Err(writer::WriteFailed) => {
            metrics.rejected(a.provider, "unavailable");
            text(503, "could not store the event, retry later")
        }
    };
    send(metrics, a.rq, Route::Hook, a.started, resp);
}

/// `Some(405)` unless the request uses `method` (HEAD is allowed where GET is).
fn only(rq: &Request, method: Method) -> Option<Resp> {
    let m = rq.method();
    if *m == method || (method == Method::Get && *m == Method::Head) {
        None
    } else {
        Some(with_header(
            text(405, "method not allowed"),
            "Allow",
            method.as_str(),
        ))
    }
}

enum BodyError {
    TooLarge,
    Read,
}

/// Reads an API request's JSON body; the error is the answer to send (413, 408, or 400
/// with `expected` saying what the body should look like).
fn read_api_json<T: serde::de::DeserializeOwned>(
    rq: &mut Request,
    expected: &str,
) -> Result<T, Resp> {
    let body = match read_body(rq, MAX_API_BODY) {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return Err(text(413, "body too large")),
        Err(BodyError::Read) => return Err(text(408, "body not received in time")),
    };
    serde_json::from_slice(&body).map_err(|_| text(400, expected))
}

fn read_body(rq: &mut Request, max: usize) -> Result<Vec<u8>, BodyError> {
    if rq.body_length().is_some_and(|n| n > max) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::with_capacity(rq.body_length().unwrap_or(0).min(max));
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    rq.as_reader()
        .take(limit)
        .read_to_end(&mut body)
        .map_err(|_| BodyError::Read)?;
    if body.len() > max {
        return Err(BodyError::TooLarge);
    }
    Ok(body)
}

fn now_secs() -> i64 {
    writer::now_ms().div_euclid(1000)
}

/// A webhook: verified here, then handed with its request to the writer, which passes it
/// to a responder once committed. Rejections are answered at once.
fn hook(
    ctx: &Ctx,
    reader: &dyn ReadStore,
    scope: &Scope,
    mut rq: Request,
    provider: Provider,
    started: Instant,
) {
    let tenant = scope.tenant;
    if !ctx.tenant_rates.admit(tenant) {
        ctx.metrics.rejected(provider, "tenant_rate_limited");
        if let Some(name) = &scope.name {
            ctx.metrics
                .tenant(name.as_str(), crate::metrics::TenantOutcome::RateLimited);
        }
        let resp = with_header(
            text(429, "too many webhooks for this tenant"),
            "Retry-After",
            "1",
        );
        return send(&ctx.metrics, rq, Route::Hook, started, resp);
    }
    let (key, body, app_keys) = match verify_hook(ctx, reader, scope, &mut rq, provider) {
        Ok(verified) => verified,
        Err(resp) => return send(&ctx.metrics, rq, Route::Hook, started, resp),
    };
    let note = match provider {
        Provider::Calendly => webhook::invitee_note(body.as_bytes()),
        Provider::Stripe => None,
    };
    let livemode = token::event_livemode(provider, body.as_bytes());
    // What routing needs is read above; with app keys registered, only the sealed body is
    // stored (and the readable one dropped here).
    let (body, sealed) = match &app_keys.sealer {
        None => (body, None),
        Some(sealer) => match sealer.seal(body.as_bytes()) {
            Ok(sealed) => (String::new(), Some(sealed)),
            Err(e) => {
                tracing::error!(error = %e, "a webhook could not be sealed; answering 503");
                let resp = text(503, "could not store the event, retry later");
                return send(&ctx.metrics, rq, Route::Hook, started, resp);
            }
        },
    };
    if let Some(note) = &note {
        // Before the insert: see `Job::NoteInvitee`.
        let _ = ctx.jobs.send(Job::NoteInvitee {
            tenant,
            note: note.clone(),
        });
    }
    let answers = ctx.answers.clone();
    let tenant_name = scope.name.clone();
    let done: writer::Done<Inserted> = Box::new(move |outcome| {
        // Never an answer before the commit: the request only leaves here with its outcome.
        // Should the responders be gone, dropping the request makes tiny_http answer 500.
        let _ = answers.send(Answer {
            rq,
            provider,
            tenant: tenant_name,
            started,
            outcome,
        });
    });
    let job = Job::Insert {
        event: writer::Incoming {
            tenant,
            provider,
            livemode,
            key,
            body,
            sealed,
            received_at_ms: writer::now_ms(),
        },
        done,
    };
    if let Err(mpsc::SendError(job)) = ctx.jobs.send(job) {
        job.fail();
    }
    if let Some(note) = note.filter(|n| n.canceled_at.is_some()) {
        expire_on_cancel(ctx, reader, tenant, &note.invitee);
    }
}

/// A cancelled booking's open Checkout Session stops taking payment, so a client with
/// Stripe's page still open cannot pay for a freed slot (the app refunds whatever slips
/// through). Best effort, after the delivery was queued: its answer does not wait on it.
fn expire_on_cancel(ctx: &Ctx, reader: &dyn ReadStore, tenant: TenantId, invitee: &str) {
    let session = match reader.checkout_for(tenant, invitee) {
        Ok(Some(claim)) => claim.session_id,
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "checkout lookup failed; a cancelled booking's session stays open");
            None
        }
    };
    let Some(id) = session else {
        return;
    };
    let Some(stripe) = checkout_client(ctx, reader, tenant) else {
        return;
    };
    let failed = match stripe.expire(&id) {
        Ok(_) => {
            ctx.metrics.expired_on_cancel(true);
            tracing::info!(session = %id, "a cancelled booking's Checkout Session was expired");
            return;
        }
        // Stripe refuses to expire a session that is not open: read which it is.
        Err(e) => match stripe.get(&id) {
            Ok(seen) if seen.status != SessionStatus::Open => return,
            Ok(_) => e,
            Err(again) => again,
        },
    };
    ctx.metrics.expired_on_cancel(false);
    tracing::warn!(session = %id, error = %failed, "a cancelled booking's Checkout Session could not be expired");
}

/// The event's key and body, with the tenant's keys, if the webhook is acceptable; else
/// the answer to send.
fn verify_hook(
    ctx: &Ctx,
    reader: &dyn ReadStore,
    scope: &Scope,
    rq: &mut Request,
    provider: Provider,
) -> Result<(EventKey, String, Arc<TenantKeys>), Resp> {
    let tenant = scope.tenant;
    let reject = |reason: &str, resp: Resp| {
        ctx.metrics.rejected(provider, reason);
        if let Some(name) = &scope.name {
            ctx.metrics
                .tenant(name.as_str(), crate::metrics::TenantOutcome::Rejected);
        }
        tracing::debug!(provider = provider.as_str(), reason, "webhook rejected");
        Err(resp)
    };
    if *rq.method() != Method::Post {
        return reject(
            "wrong_method",
            with_header(text(405, "method not allowed"), "Allow", "POST"),
        );
    }
    let json_type = request_header(rq, "Content-Type").is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json_type {
        return reject(
            "unsupported_media_type",
            text(415, "content type must be application/json"),
        );
    }
    let body = match read_body(rq, ctx.settings.max_body_bytes) {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return reject("too_large", text(413, "body too large")),
        Err(BodyError::Read) => {
            return reject("read_error", text(408, "body not received in time"))
        }
    };
    // The configured secrets are the relay's own coach's; a tenant has only its own.
    let header_name = provider_header(provider);
    let secrets: &[crate::config::Secret] = match provider {
        _ if tenant != TenantId::HOME => &[],
        Provider::Stripe => &ctx.settings.stripe_secrets,
        Provider::Calendly => &ctx.settings.calendly_keys,
    };
    let Some(sig) = request_header(rq, header_name) else {
        return reject(
            "missing_signature",
            text(400, &format!("missing {header_name} header")),
        );
    };
    let verify = |handed: &TenantKeys| {
        let app_keys = match provider {
            Provider::Calendly => &handed.calendly,
            Provider::Stripe => &handed.stripe,
        };
        let keys: Vec<&[u8]> = secrets
            .iter()
            .map(|s| s.expose())
            .chain(app_keys.iter().map(String::as_bytes))
            .collect();
        coachdesk_signature::verify(sig, &body, &keys, now_secs(), ctx.settings.tolerance_secs)
    };
    let handed = match ctx.handed_over.get(&ctx.settings, reader, tenant) {
        Ok(keys) => keys,
        Err(e) => {
            tracing::error!(error = %e, "handed-over keys could not be read");
            // Unverified is not refused: the provider retries later.
            return Err(text(503, "unavailable"));
        }
    };
    let mut handed = handed;
    let mut verified = verify(&handed);
    if ctx.shared_database && matches!(verified, Err(coachdesk_signature::SignatureError::Mismatch))
    {
        // Another relay process may have been handed the key (or secret) since this one last
        // reloaded them (on its pulls): reload and try once more.
        if let Ok(fresh) = ctx.handed_over.reload(&ctx.settings, reader, tenant) {
            verified = verify(&fresh);
            handed = fresh;
        }
    }
    if let Err(e) = verified {
        return reject(e.code(), text(400, &e.to_string()));
    }
    let key = match webhook::dedup_key(provider, &body) {
        Ok(k) => ctx.index.event_key(provider, &k),
        Err(e) => return reject(e.code(), text(400, &e.to_string())),
    };
    let Ok(body) = String::from_utf8(body) else {
        return reject("malformed_json", text(400, "body is not UTF-8"));
    };
    Ok((key, body, handed))
}

/// How stale a consumer's recorded last use may get before a request refreshes it.
const LAST_USE_EVERY_MS: i64 = 60_000;

/// The consumer the bearer token belongs to, if it is of the scope's tenant; otherwise the
/// answer to send (another tenant's token is refused as an unknown one). Tokens are looked
/// up on every request, so a revoked one is refused (401) at once.
fn authorize(
    ctx: &Ctx,
    rq: &Request,
    reader: &dyn ReadStore,
    scope: &Scope,
) -> Result<Consumer, Resp> {
    let unauthorized = || with_header(text(401, "unauthorized"), "WWW-Authenticate", "Bearer");
    let Some(token) = request_header(rq, "Authorization").and_then(token::bearer) else {
        return Err(unauthorized());
    };
    match reader.consumer_by_hash(&token::hash(token)) {
        Ok(Some(consumer)) if consumer.tenant != scope.tenant => Err(unauthorized()),
        Ok(Some(consumer)) => {
            let now = writer::now_ms();
            if consumer
                .last_used_at_ms
                .is_none_or(|t| now.saturating_sub(t) >= LAST_USE_EVERY_MS)
            {
                // Best effort, never waited on: with the writer's queue full a later
                // request records it.
                let _ = ctx.jobs.try_send(Job::Touch {
                    consumer: consumer.id,
                });
            }
            Ok(consumer)
        }
        Ok(None) => Err(unauthorized()),
        Err(e) => {
            tracing::error!(error = %e, "token lookup failed");
            Err(text(503, "unavailable"))
        }
    }
}

/// A JSON refusal with a stable code (see [`error_code`]).
fn refusal(code: &str, message: String) -> ApiError {
    ApiError {
        error: code.to_owned(),
        message,
        relay_id: None,
        newest: None,
        host: None,
    }
}

fn number<T: std::str::FromStr>(
    pairs: &[(String, String)],
    name: &str,
    default: T,
) -> Result<T, Resp> {
    match paylink::query_param(pairs, name) {
        None | Some("") => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            text(
                400,
                &format!("query parameter {name} must be a whole number"),
            )
        }),
    }
}

/// `GET /v1/events`: the events for the token's mode after `max(after, its own cursor)`.
fn pull(ctx: &Ctx, reader: &dyn ReadStore, scope: &Scope, rq: &Request, query: &str) -> Resp {
    let consumer = match authorize(ctx, rq, reader, scope) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let pairs = paylink::parse_query(query);
    let parsed = (|| {
        let after: i64 = number(&pairs, "after", 0)?;
        let limit: usize = number(&pairs, "limit", 100)?;
        let wait: u64 = number(&pairs, "wait", 0)?;
        Ok::<_, Resp>((
            after.max(0),
            limit.clamp(1, 1000),
            wait.min(ctx.settings.max_wait_secs),
        ))
    })();
    let (after, limit, wait) = match parsed {
        Ok(p) => p,
        Err(resp) => return resp,
    };
    // Nothing this token acknowledged comes again; other tokens' acks do not matter.
    let from = after.max(consumer.acked_through);
    let fetch = || reader.pull(consumer.tenant, consumer.mode, from, limit, MAX_PAGE_BYTES);
    // Read before the fetch: an event committed in between is waited past at most once.
    let mut seen = ctx.tip.current();
    let mut events = match fetch() {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "pull failed");
            return text(503, "unavailable");
        }
    };
    if events.is_empty() && wait > 0 && !ctx.shutdown.load(Ordering::SeqCst) {
        // Long-polls hold a worker, so only half the pool may wait at once.
        if ctx.long_polls.fetch_add(1, Ordering::SeqCst) < ctx.max_long_polls {
            let deadline = Instant::now() + Duration::from_secs(wait);
            // Events of the other mode wake the poll too: wait on past them until one for
            // this token is committed or the time is up.
            loop {
                let now = Instant::now();
                if now >= deadline || ctx.shutdown.load(Ordering::SeqCst) {
                    break;
                }
                ctx.tip.wait_beyond(seen.max(from), deadline - now);
                seen = ctx.tip.current();
                match fetch() {
                    Ok(e) if !e.is_empty() => {
                        events = e;
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        ctx.long_polls.fetch_sub(1, Ordering::SeqCst);
    }
    // Apps pull all the time: a key of a token the `token` command revoked meanwhile stops
    // verifying here. A database that announces key changes (PostgreSQL) has done so.
    if !ctx.shared_database {
        if let Err(e) = ctx
            .handed_over
            .reload(&ctx.settings, reader, consumer.tenant)
        {
            tracing::warn!(error = %e, "handed-over keys could not be reloaded");
        }
    }
    json(
        200,
        &EventsPage {
            events,
            relay_id: Some(reader.relay_id().as_str().to_owned()),
        },
    )
}

/// `POST /v1/ack`: moves this token's cursor. Refused (409, nothing marked) beyond the
/// newest sequence stored, or when the app names another relay's identity.
fn ack(ctx: &Ctx, reader: &dyn ReadStore, scope: &Scope, rq: &mut Request) -> Resp {
    let consumer = match authorize(ctx, rq, reader, scope) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let req: AckRequest = match read_api_json(rq, "expected {\"through\": SEQ}") {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if req.through < 0 {
        return text(400, "through must not be negative");
    }
    let relay_id = reader.relay_id().as_str().to_owned();
    if let Some(theirs) = req.relay_id.as_deref().filter(|t| *t != relay_id) {
        let mut e = refusal(
            error_code::RELAY_CHANGED,
            format!(
                "the ack is for relay {theirs}, but this is relay {relay_id}: pull again from the start; nothing was marked"
            ),
        );
        e.relay_id = Some(relay_id);
        return json(409, &e);
    }
    let (through, id) = (req.through, consumer.id);
    match committed(
        ctx,
        |done| Job::Ack {
            consumer: id,
            through,
            done,
        },
        "could not record the ack, retry later",
    ) {
        Ok(Acked::Through(acked_through)) => json(
            200,
            &AckResponse {
                acked_through,
                relay_id: Some(relay_id),
            },
        ),
        Ok(Acked::BeyondNewest { newest }) => {
            tracing::warn!(token = %consumer.name, through, newest, "ack beyond the newest sequence refused");
            let mut e = refusal(
                error_code::ACK_BEYOND_NEWEST,
                format!(
                    "sequence {through} was never stored by relay {relay_id} (the newest is {newest}); nothing was marked"
                ),
            );
            e.relay_id = Some(relay_id);
            e.newest = Some(newest);
            json(409, &e)
        }
        Ok(Acked::Revoked) => with_header(text(401, "unauthorized"), "WWW-Authenticate", "Bearer"),
        Err(resp) => resp,
    }
}

/// Hands the job `make` builds around its completion to the writer and waits for the
/// commit; the 503 to send when the relay is shutting down or the commit failed.
fn committed<T: Send + 'static>(
    ctx: &Ctx,
    make: impl FnOnce(writer::Done<T>) -> Job,
    failed: &str,
) -> Result<T, Resp> {
    let (done, answer) = writer::waiter();
    if ctx.jobs.send(make(done)).is_err() {
        return Err(text(503, "relay is shutting down"));
    }
    match answer.recv() {
        Ok(Ok(value)) => Ok(value),
        _ => Err(text(503, failed)),
    }
}

/// Commits what a consumer handed over (`what`: "key", "secrets", ...), then reads its
/// tenant's keys again, so the next webhook or visit uses them.
fn keep_handed_over(
    ctx: &Ctx,
    reader: &dyn ReadStore,
    tenant: TenantId,
    make: impl FnOnce(writer::Done<()>) -> Job,
    what: &str,
) -> Result<Arc<TenantKeys>, Resp> {
    committed(
        ctx,
        make,
        &format!("could not store the {what}, retry later"),
    )?;
    ctx.handed_over
        .reload(&ctx.settings, reader, tenant)
        .map_err(|e| {
            tracing::error!(error = %e, what, "what was handed over could not be read back");
            text(
                503,
                &format!("the {what} could not be loaded after it was stored; retry"),
            )
        })
}

/// `PUT /v1/payment-links`: every link must point at Stripe or a host the operator
/// allowed, or the whole table is refused.
fn put_links(ctx: &Ctx, reader: &dyn ReadStore, scope: &Scope, rq: &mut Request) -> Resp {
    let consumer = match authorize(ctx, rq, reader, scope) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let table: PaymentLinkTable =
        match read_api_json(rq, "expected {\"links\": [{\"slug\": ..., \"url\": ...}]}") {
            Ok(t) => t,
            Err(resp) => return resp,
        };
    if let Some(bad) = table.links.iter().find(|l| !paylink::valid_slug(&l.slug)) {
        return text(
            400,
            &format!("slug {:?} must match [A-Za-z0-9_-]{{1,100}}", bad.slug),
        );
    }
    let allowed: Vec<paylink::AllowedHost> = ctx
        .settings
        .payment_link_hosts
        .iter()
        .filter_map(|h| paylink::AllowedHost::parse(h))
        .collect();
    for link in &table.links {
        let Err(e) = paylink::check_link(&link.url, &allowed) else {
            continue;
        };
        let paylink::LinkRefused::Host { host } = &e else {
            return text(
                400,
                &format!(
                    "link for {:?} must be an absolute http(s) URL without credentials",
                    link.slug
                ),
            );
        };
        tracing::warn!(token = %consumer.name, %host, "payment link to a foreign host refused");
        let mut refused = refusal(
            error_code::PAYMENT_LINK_HOST,
            format!("link for {:?}: {e}", link.slug),
        );
        refused.host = Some(host.clone());
        return json(422, &refused);
    }
    let count = table.links.len();
    let links = table.links;
    match committed(
        ctx,
        |done| Job::ReplaceLinks {
            tenant: consumer.tenant,
            links,
            done,
        },
        "could not store the table, retry later",
    ) {
        Ok(()) => {
            tracing::info!(token = %consumer.name, links = count, "payment link table replaced");
            json(200, &serde_json::json!({"links": count}))
        }
        Err(resp) => resp,
    }
}

/// The signature header a provider's webhooks carry.
fn provider_header(provider: Provider) -> &'static str {
    match provider {
        Provider::Stripe => "Stripe-Signature",
        Provider::Calendly => "Calendly-Webhook-Signature",
    }
}

/// Whether `key` can be a webhook signing key: 16 to 256 visible ASCII characters.
fn valid_signing_key(key: &str) -> bool {
    (16..=256).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// `PUT /v1/calendly-signing-key`: the app registered (or renewed) its Calendly webhook
/// subscription with this key; Calendly's deliveries signed with it are accepted from now
/// on, beside the configured keys (which it never replaces). Logged with the token's name.
fn put_calendly_key(ctx: &Ctx, reader: &dyn ReadStore, scope: &Scope, rq: &mut Request) -> Resp {
    let consumer = match authorize(ctx, rq, reader, scope) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    if !ctx.settings.calendly_key_handover {
        tracing::warn!(token = %consumer.name, "Calendly key hand-over refused: turned off");
        return json(
            403,
            &refusal(
                error_code::HANDOVER_DISABLED,
                "the relay's operator turned Calendly key hand-over off: the key must be in the relay's calendly_keys".to_owned(),
            ),
        );
    }
    let request: CalendlyKeyRequest = match read_api_json(rq, "expected {\"key\": \"...\"}") {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if !valid_signing_key(&request.key) {
        return text(400, "the key must be 16 to 256 visible ASCII characters");
    }
    let (key, id) = (request.key, consumer.id);
    let make = |done| Job::AddCalendlyKey {
        consumer: id,
        key,
        done,
    };
    match keep_handed_over(ctx, reader, consumer.tenant, make, "key") {
        Ok(keys) => {
            let count = keys.calendly.len();
            tracing::info!(token = %consumer.name, kept = count, "Calendly signing key handed over");
            json(200, &serde_json::json!({"kept": count}))
        }
        Err(resp) => resp,
    }
}

/// `PUT /v1/stripe-signing-secrets`: the app made (or replaced) its Stripe webhook endpoint
/// and hands over its signing secret, with the retiring endpoint's during a rotation.
/// The list replaces what this token handed over before, so a rotation ends with a PUT
/// of the new secret alone and the old one is refused from then on. The configured
/// `stripe_secrets` are never touched. Logged with the token's name and a count, never a
/// secret.
fn put_stripe_secrets(ctx: &Ctx, reader: &dyn ReadStore, scope: &Scope, rq: &mut Request) -> Resp {
    let consumer = match authorize(ctx, rq, reader, scope) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    if !ctx.settings.stripe_secret_handover {
        tracing::warn!(token = %consumer.name, "Stripe secret hand-over refused: turned off");
        return json(
            403,
            &refusal(
                error_code::HANDOVER_DISABLED,
                "the relay's operator turned Stripe secret hand-over off: the endpoint's secret must be in the relay's stripe_secrets".to_owned(),
            ),
        );
    }
    let request: StripeSecretsRequest =
        match read_api_json(rq, "expected {\"secrets\": [\"whsec_...\"]}") {
            Ok(r) => r,
            Err(resp) => return resp,
        };
    if request.secrets.len() > store::MAX_STRIPE_SECRETS
        || !request.secrets.iter().all(|s| valid_signing_key(s))
    {
        return text(
            400,
            &format!(
                "at most {} secrets, each 16 to 256 visible ASCII characters",
                store::MAX_STRIPE_SECRETS
            ),
        );
    }
    let (secrets, id) = (request.secrets, consumer.id);
    let handed = secrets.len();
    let make = |done| Job::ReplaceStripeSecrets {
        consumer: id,
        secrets,
        done,
    };
    match keep_handed_over(ctx, reader, consumer.tenant, make, "secrets") {
        Ok(all) => {
            let kept = all.stripe.len();
            tracing::info!(token = %consumer.name, handed, kept, "Stripe signing secrets handed over");
            json(200, &KeptSecrets { kept })
        }
        Err(resp) => resp,
    }
}

/// `PUT /v1/stripe-checkout-key`: the coach's Stripe restricted key (Checkout Sessions:
/// Write), so `/pay` makes each booking its own Checkout Session for a coach who cannot set
/// the relay's `stripe_restricted_key` (every hosted coach). Only a restricted key of the
/// token's mode is taken: a secret key (`sk_`) can do anything with the coach's account
/// and is refused. It is stored encrypted (see `at_rest`); `{"key": null}` forgets it.
fn put_checkout_key(ctx: &Ctx, reader: &dyn ReadStore, scope: &Scope, rq: &mut Request) -> Resp {
    let consumer = match authorize(ctx, rq, reader, scope) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let request: CheckoutKeyRequest =
        match read_api_json(rq, "expected {\"key\": \"rk_live_...\"} or {\"key\": null}") {
            Ok(r) => r,
            Err(resp) => return resp,
        };
    if let Some(key) = &request.key {
        if let Err(refused) = checkout::check_restricted_key(key, consumer.mode) {
            return match refused {
                checkout::KeyRefusal::Format => text(400, &refused.to_string()),
                checkout::KeyRefusal::SecretKey => json(
                    400,
                    &refusal(error_code::SECRET_KEY_REFUSED, refused.to_string()),
                ),
                checkout::KeyRefusal::Mode => json(
                    400,
                    &refusal(error_code::MODE_MISMATCH, refused.to_string()),
                ),
            };
        }
    }
    let sealed = request
        .key
        .as_deref()
        .map(|key| ctx.handed_over.seal_checkout_key(consumer.id, key));
    let (id, handed) = (consumer.id, sealed.is_some());
    let make = |done| Job::ReplaceCheckoutKey {
        consumer: id,
        sealed,
        done,
    };
    match keep_handed_over(ctx, reader, consumer.tenant, make, "key") {
        Ok(_) => {
            let checkout_sessions = checkout_client(ctx, reader, consumer.tenant).is_some();
            tracing::info!(token = %consumer.name, handed, checkout_sessions, "Stripe restricted key handed over");
            json(200, &CheckoutKeyAnswer { checkout_sessions })
        }
        Err(resp) => resp,
    }
}

/// `PUT /v1/app-keys`: the app install's public keys (its own, and during a rotation the
/// retiring one), replacing those it registered before. From the commit on, every event of
/// the tenant is stored only sealed for the keys of all its apps. The answer says how many
/// events waiting for this app were sealed before (for keys it may no longer have: it
/// recovers those through reconciliation with the providers).
fn put_app_keys(ctx: &Ctx, reader: &dyn ReadStore, scope: &Scope, rq: &mut Request) -> Resp {
    let consumer = match authorize(ctx, rq, reader, scope) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let request: AppKeysRequest = match read_api_json(rq, "expected {\"keys\": [\"age1...\"]}") {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let parsed: Result<Vec<coachdesk_seal::AppKey>, _> =
        request.keys.iter().map(|k| k.parse()).collect();
    let keys = match parsed {
        Ok(keys) if keys.len() <= store::MAX_APP_KEYS => keys,
        _ => {
            return text(
                400,
                &format!(
                    "at most {} keys, each an age X25519 public key (age1...)",
                    store::MAX_APP_KEYS
                ),
            )
        }
    };
    let keys: Vec<String> = keys.iter().map(coachdesk_seal::AppKey::as_string).collect();
    let id = consumer.id;
    let make = |done| Job::ReplaceAppKeys {
        consumer: id,
        keys,
        done,
    };
    let all = match keep_handed_over(ctx, reader, consumer.tenant, make, "keys") {
        Ok(all) => all,
        Err(resp) => return resp,
    };
    match reader.sealed_waiting(consumer.tenant, consumer.mode, consumer.acked_through) {
        Ok(sealed_before) => {
            tracing::info!(token = %consumer.name, kept = all.app_keys(), "app keys registered");
            json(
                200,
                &serde_json::json!({"kept": all.app_keys(), "sealed_before": sealed_before}),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "the events sealed before could not be counted");
            text(503, "the keys were stored but could not be loaded; retry")
        }
    }
}

fn html(status: u16, body: String) -> Resp {
    let resp = with_header(
        Response::from_string(body).with_status_code(status),
        "Content-Type",
        "text/html; charset=utf-8",
    );
    with_header(resp, "Cache-Control", "no-store")
}

fn redirect(target: &str) -> Resp {
    let resp = with_header(text(302, "redirecting to payment"), "Location", target);
    with_header(resp, "Cache-Control", "no-store")
}

/// `GET /pay/{slug}`: Calendly's post-booking redirect. With a restricted key and the
/// session type's terms, the booking's own Checkout Session (made once, then reused while
/// open; a paid or expired one gets its page); otherwise, or when Stripe fails, the
/// session type's payment link as before.
fn pay(
    ctx: &Ctx,
    reader: &dyn ReadStore,
    scope: &Scope,
    rq: &Request,
    slug: &str,
    query: &str,
) -> Resp {
    let tenant = scope.tenant;
    let not_found = || {
        html(
            404,
            "<!doctype html><title>Not found</title><p>This booking link is not known. Please contact your coach.</p>\n".to_owned(),
        )
    };
    if !paylink::valid_slug(slug) {
        return not_found();
    }
    let route = match reader.pay_route(tenant, slug) {
        Ok(Some(route)) => route,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "payment link lookup failed");
            return text(503, "unavailable");
        }
    };
    // Best effort and never waited on: a full writer queue costs a count, not the client.
    let _ = ctx.jobs.try_send(Job::CountRedirect {
        tenant,
        slug: slug.to_owned(),
        at_ms: writer::now_ms(),
    });
    let pairs = paylink::parse_query(query);
    let invitee = paylink::query_param(&pairs, "invitee_uuid")
        .filter(|i| paylink::valid_client_reference_id(i));
    let email = paylink::query_param(&pairs, "invitee_email");
    let link = || redirect(&paylink::redirect_url(&route.link, invitee, email));
    // What Calendly's verified deliveries said: a cancelled booking is sold by no link,
    // a moved one is paid through its new booking.
    let note = match invitee.map(|i| reader.invitee(tenant, i)).transpose() {
        Ok(note) => note.flatten(),
        Err(e) => {
            tracing::warn!(error = %e, "invitee lookup failed; treating the booking as new");
            None
        }
    };
    if let Some(note) = note.as_ref().filter(|n| n.canceled_at.is_some()) {
        if let Some(new) = &note.moved_to {
            ctx.metrics.checkout("moved");
            return redirect(&format!(
                "{}{}/pay/{slug}?invitee_uuid={}",
                public_base(ctx, rq),
                scope.prefix(),
                paylink::percent_encode(new)
            ));
        }
        ctx.metrics.checkout("cancelled");
        expire_on_cancel(ctx, reader, tenant, &note.invitee);
        return html(410, checkout::cancelled_page(route.booking_url.as_deref()));
    }
    let (Some(invitee), Some(terms)) = (invitee, route.checkout.as_ref()) else {
        return link();
    };
    let Some(stripe) = checkout_client(ctx, reader, tenant) else {
        return link();
    };
    let booked_at = note.and_then(|n| n.booked_at);
    match own_session(
        ctx, reader, &stripe, rq, slug, &route, terms, invitee, booked_at, &pairs,
    ) {
        Ok(Visit::Pay(url)) => {
            ctx.metrics.checkout("session");
            redirect(&url)
        }
        Ok(Visit::Paid) => {
            ctx.metrics.checkout("paid");
            html(200, checkout::paid_page())
        }
        Ok(Visit::Expired(booking_url)) => {
            ctx.metrics.checkout("expired");
            html(410, checkout::expired_page(booking_url.as_deref()))
        }
        Err(e) => {
            ctx.metrics.checkout(e.kind());
            tracing::warn!(slug, error = %e, "no Checkout Session; sending the client to the payment link");
            link()
        }
    }
}

/// Stripe for a tenant's Checkout Sessions: for the relay's own coach the operator's
/// restricted key, else (and for every hosted coach) the newest one the coach's apps handed
/// over; `None` sends clients to the payment link.
fn checkout_client(
    ctx: &Ctx,
    reader: &dyn ReadStore,
    tenant: TenantId,
) -> Option<Arc<StripeCheckout>> {
    if let Some(own) = ctx.stripe.as_ref().filter(|_| tenant == TenantId::HOME) {
        return Some(own.clone());
    }
    match ctx.handed_over.get(&ctx.settings, reader, tenant) {
        Ok(keys) => keys.checkout.clone(),
        Err(e) => {
            tracing::warn!(error = %e, "handed-over keys could not be read; using the payment link");
            None
        }
    }
}

/// Where a booking's visit of `/pay` leads.
enum Visit {
    /// Its open Checkout Session's page.
    Pay(String),
    Paid,
    /// Its time to pay has passed; the scheduling page to book again, if known.
    Expired(Option<String>),
}

/// Why a visit could not use the booking's own session (the client gets the link).
#[derive(Debug, thiserror::Error)]
enum OwnSessionError {
    #[error(transparent)]
    Stripe(#[from] checkout::StripeError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("the relay could not record the session")]
    Unrecorded,
    #[error("Stripe made the session without its page's URL")]
    NoUrl,
}

impl OwnSessionError {
    fn kind(&self) -> &'static str {
        match self {
            OwnSessionError::Stripe(e) => e.kind(),
            OwnSessionError::Store(_) | OwnSessionError::Unrecorded => "store",
            OwnSessionError::NoUrl => "unreadable",
        }
    }
}

fn waited<T: Send + 'static>(
    ctx: &Ctx,
    make: impl FnOnce(writer::Done<T>) -> Job,
) -> Result<T, OwnSessionError> {
    let (done, answer) = writer::waiter();
    ctx.jobs
        .send(make(done))
        .map_err(|_| OwnSessionError::Unrecorded)?;
    match answer.recv() {
        Ok(Ok(value)) => Ok(value),
        _ => Err(OwnSessionError::Unrecorded),
    }
}

#[allow(clippy::too_many_arguments)]
fn own_session(
    ctx: &Ctx,
    reader: &dyn ReadStore,
    stripe: &StripeCheckout,
    rq: &Request,
    slug: &str,
    route: &store::PayRoute,
    terms: &coachdesk_protocol::relay::CheckoutTerms,
    invitee: &str,
    booked_at: Option<i64>,
    pairs: &[(String, String)],
) -> Result<Visit, OwnSessionError> {
    let seen = |session: checkout::SessionSeen, booking_url: Option<String>| match session.status {
        SessionStatus::Complete => Ok(Visit::Paid),
        SessionStatus::Expired => Ok(Visit::Expired(booking_url)),
        SessionStatus::Open => session.url.map(Visit::Pay).ok_or(OwnSessionError::NoUrl),
    };
    let tenant = TenantId::HOME;
    let claim = match reader.checkout_for(tenant, invitee)? {
        Some(claim) => claim,
        None => {
            let now_ms = writer::now_ms();
            let now = now_ms.div_euclid(1000);
            let start = paylink::query_param(pairs, "event_start_time")
                .and_then(checkout::parse_event_start);
            // Counted from the booking; from now if Calendly's delivery is still to come.
            let Some(expires_at) = checkout::expires_at(
                now,
                booked_at.unwrap_or(now),
                terms.payment_window_minutes,
                start,
            ) else {
                return Ok(Visit::Expired(route.booking_url.clone()));
            };
            // A coach whose apps registered keys keeps no client's email at the relay:
            // Stripe's page then asks for it.
            let sealed = ctx
                .handed_over
                .get(&ctx.settings, reader, tenant)
                .map_or(true, |keys| keys.sealer.is_some());
            let claim = store::CheckoutClaim {
                invitee: invitee.to_owned(),
                slug: slug.to_owned(),
                email: paylink::query_param(pairs, "invitee_email")
                    .filter(|e| !sealed && checkout::plausible_email(e))
                    .map(str::to_owned),
                expires_at,
                session_id: None,
                created_at_ms: now_ms,
            };
            // Concurrent first visits: the claim committed first is everyone's.
            waited(ctx, |done| Job::ClaimCheckout {
                tenant,
                claim,
                done,
            })?
        }
    };
    // The session belongs to the slug of the first visit: a swapped slug changes nothing.
    let first = if claim.slug == slug {
        route.clone()
    } else {
        match reader.pay_route(tenant, &claim.slug)? {
            Some(r) => r,
            None => route.clone(),
        }
    };
    if let Some(id) = &claim.session_id {
        return seen(stripe.get(id)?, first.booking_url);
    }
    let terms = first.checkout.as_ref().unwrap_or(terms);
    let success_url = format!(
        "{}/pay/{}?invitee_uuid={}",
        public_base(ctx, rq),
        claim.slug,
        paylink::percent_encode(invitee)
    );
    let form = checkout::session_form(&checkout::SessionRequest {
        invitee,
        slug: &claim.slug,
        terms,
        email: claim.email.as_deref(),
        expires_at: claim.expires_at,
        success_url: &success_url,
    });
    let session = stripe.create(&form, &checkout::idempotency_key(invitee))?;
    let (invitee, session_id) = (invitee.to_owned(), session.id.clone());
    waited(ctx, |done| Job::RecordCheckout {
        tenant,
        invitee,
        session_id,
        done,
    })?;
    tracing::info!(slug = %claim.slug, session = %session.id, expires_at = claim.expires_at, "Checkout Session made for a booking");
    seen(session, first.booking_url)
}

/// The relay's public address: `public_url`, else https and the request's `Host`.
fn public_base(ctx: &Ctx, rq: &Request) -> String {
    if let Some(url) = &ctx.settings.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = request_header(rq, "Host")
        .filter(|h| {
            !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
        .unwrap_or("localhost");
    format!("https://{host}")
}

/// `GET /v1/redirects`: the post-booking redirect visits per slug.
fn redirects(ctx: &Ctx, reader: &dyn ReadStore, scope: &Scope, rq: &Request) -> Resp {
    if let Err(resp) = authorize(ctx, rq, reader, scope) {
        return resp;
    }
    match reader.redirects(scope.tenant) {
        Ok(counts) => json(
            200,
            &RedirectsPage {
                redirects: counts
                    .into_iter()
                    .map(|c| RedirectSeen {
                        slug: c.slug,
                        visits: u64::try_from(c.visits).unwrap_or(0),
                        last_at: store::rfc3339_ms(c.last_at_ms),
                    })
                    .collect(),
            },
        ),
        Err(e) => {
            tracing::error!(error = %e, "redirect counts failed");
            text(503, "unavailable")
        }
    }
}

fn healthz(ctx: &Ctx, reader: &dyn ReadStore) -> Resp {
    if ctx.shutdown.load(Ordering::SeqCst) {
        return text(503, "shutting down");
    }
    match reader.ping() {
        Ok(()) => text(200, "ok"),
        Err(_) => text(503, "database unavailable"),
    }
}

fn metrics(ctx: &Ctx, reader: &dyn ReadStore) -> Resp {
    let (depth, oldest) = match reader.queue_stats() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "queue stats failed");
            return text(503, "unavailable");
        }
    };
    let age = oldest.map_or(0.0, |ms| ((writer::now_ms() - ms).max(0)) as f64 / 1000.0);
    let mut body = ctx
        .metrics
        .render(depth, age, ctx.long_polls.load(Ordering::SeqCst));
    match reader.redirects(TenantId::HOME) {
        Ok(counts) => crate::metrics::render_redirects(&mut body, &counts),
        Err(e) => tracing::warn!(error = %e, "redirect counts left out of the metrics"),
    }
    let (ahead, on_request) = ctx.handed_over.reads();
    crate::metrics::render_key_reads(&mut body, ahead, on_request);
    match reader.queue_by_tenant() {
        Ok(depths) => ctx.metrics.render_tenants(&mut body, &depths),
        Err(e) => tracing::warn!(error = %e, "queue depths per tenant left out of the metrics"),
    }
    match reader.last_use_by_tenant() {
        Ok(last_use) => Metrics::render_tenant_last_use(&mut body, &last_use),
        Err(e) => tracing::warn!(error = %e, "last API use per tenant left out of the metrics"),
    }
    // A known length, never chunked: a hosted relay's page (a few lines per tenant) passes
    // tiny_http's chunking threshold, and simple scrapers read Content-Length.
    with_header(
        Response::from_string(body).with_chunked_threshold(usize::MAX),
        "Content-Type",
        "text/plain; version=0.0.4",
    )
}
