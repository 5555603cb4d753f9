//! The single database writer, which commits in groups.
//!
//! Every change (new events, acks, the payment link table, purges) goes through one thread
//! that owns the storage's write handle ([`WriteStore`]). It takes whatever jobs are waiting, applies them all in
//! one transaction, commits (one fsync for the whole group with `durability = "full"`), and
//! only then hands each job its outcome. A 2xx is built from that outcome, so it always
//! means the event is committed, while many concurrent webhooks share the cost of one commit.
//!
//! Jobs carry a completion callback rather than a thread waiting for the answer: the HTTP
//! side parks a webhook's request in its callback and goes on reading the next one, so the
//! number of events that share an fsync is bounded by the queue, not by the worker pool.
//! Callbacks run on the writer thread and must be quick (a channel send).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use coachdesk_protocol::relay::{PaymentLinkRoute, Provider};

use crate::index::EventKey;
use crate::metrics::Metrics;
use crate::store::{
    self, Acked, CheckoutClaim, ConsumerId, Inserted, NewEvent, WriteStore, WriteTx,
};
use crate::tenant::TenantId;

/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 2048;
/// How often events past retention are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// What the writer calls, after the commit (or its failure), with a job's outcome.
pub type Done<T> = Box<dyn FnOnce(Result<T, WriteFailed>) + Send>;

/// A verified webhook for the queue.
pub struct Incoming {
    pub tenant: TenantId,
    pub provider: Provider,
    pub key: EventKey,
    /// The body as received; empty when it is kept only `sealed`.
    pub body: String,
    /// The body sealed for the tenant's app keys.
    pub sealed: Option<Vec<u8>>,
    /// Which consumers the event is for (see [`crate::token::event_livemode`]).
    pub livemode: Option<bool>,
    pub received_at_ms: i64,
}

impl Incoming {
    fn event(&self) -> NewEvent<'_> {
        NewEvent {
            tenant: self.tenant,
            provider: self.provider,
            key: self.key.as_str(),
            body: &self.body,
            sealed: self.sealed.as_deref(),
            livemode: self.livemode,
            received_at_ms: self.received_at_ms,
        }
    }
}

/// A change for the writer, with what to do with its outcome.
pub enum Job {
    Insert {
        event: Incoming,
        done: Done<Inserted>,
    },
    Ack {
        consumer: ConsumerId,
        through: i64,
        done: Done<Acked>,
    },
    ReplaceLinks {
        tenant: TenantId,
        links: Vec<PaymentLinkRoute>,
        done: Done<()>,
    },
    AddCalendlyKey {
        consumer: ConsumerId,
        key: String,
        done: Done<()>,
    },
    ReplaceStripeSecrets {
        consumer: ConsumerId,
        secrets: Vec<String>,
        done: Done<()>,
    },
    ReplaceAppKeys {
        consumer: ConsumerId,
        keys: Vec<String>,
        done: Done<()>,
    },
    /// A consumer's Stripe restricted key, encrypted (`None`: forget it).
    ReplaceCheckoutKey {
        consumer: ConsumerId,
        sealed: Option<String>,
        done: Done<()>,
    },
    /// Records a consumer's use of the API (`token list`'s last use); nobody waits on it.
    Touch { consumer: ConsumerId },
    /// Claims a booking's Checkout Session; the claim kept (an earlier one wins).
    ClaimCheckout {
        tenant: TenantId,
        claim: CheckoutClaim,
        done: Done<CheckoutClaim>,
    },
    /// Records the session Stripe made for a claim.
    RecordCheckout {
        tenant: TenantId,
        invitee: String,
        session_id: String,
        done: Done<()>,
    },
    /// Counts a post-booking redirect visit; nobody waits on it.
    CountRedirect {
        tenant: TenantId,
        slug: String,
        at_ms: i64,
    },
    /// Merges what a verified Calendly delivery says about its invitee. Queued just before
    /// the delivery's insert, so it commits in the same group or an earlier one: a
    /// delivery answered 2xx has its note kept. Nobody waits on it.
    NoteInvitee {
        tenant: TenantId,
        note: store::InviteeNote,
    },
}

impl Job {
    /// Report failure without running the job (it was never committed).
    pub fn fail(self) {
        match self {
            Job::Insert { done, .. } => done(Err(WriteFailed)),
            Job::Ack { done, .. } => done(Err(WriteFailed)),
            Job::ReplaceLinks { done, .. } => done(Err(WriteFailed)),
            Job::AddCalendlyKey { done, .. } => done(Err(WriteFailed)),
            Job::ReplaceStripeSecrets { done, .. } => done(Err(WriteFailed)),
            Job::ReplaceAppKeys { done, .. } => done(Err(WriteFailed)),
            Job::ReplaceCheckoutKey { done, .. } => done(Err(WriteFailed)),
            Job::ClaimCheckout { done, .. } => done(Err(WriteFailed)),
            Job::RecordCheckout { done, .. } => done(Err(WriteFailed)),
            Job::Touch { .. } | Job::CountRedirect { .. } | Job::NoteInvitee { .. } => {}
        }
    }
}

/// A `Done` that sends the outcome to a thread waiting on the returned receiver.
pub fn waiter<T: Send + 'static>() -> (Done<T>, Receiver<Result<T, WriteFailed>>) {
    let (tx, rx) = mpsc::sync_channel(1);
    (
        Box::new(move |r| {
            // A waiter that gave up has dropped its receiver; that is fine.
            let _ = tx.try_send(r);
        }),
        rx,
    )
}

/// The group this job was in could not be committed; nothing of it was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the relay could not commit to its database")]
pub struct WriteFailed;

/// The newest committed sequence, for long-polls to wait on.
#[derive(Default)]
pub struct Tip {
    state: Mutex<TipState>,
    changed: Condvar,
}

#[derive(Default)]
struct TipState {
    seq: i64,
    closing: bool,
}

impl Tip {
    pub fn new(seq: i64) -> Self {
        Tip {
            state: Mutex::new(TipState {
                seq,
                closing: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Records that `seq` is committed (by this process or, through
    /// [`crate::store::Backend::watch`], another one); wakes the long-polls.
    pub fn advance(&self, seq: i64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if seq > s.seq {
            s.seq = seq;
            self.changed.notify_all();
        }
    }

    /// The newest committed sequence.
    pub fn current(&self) -> i64 {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).seq
    }

    /// Wake every waiter for shutdown; later waits return at once.
    pub fn close(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.closing = true;
        self.changed.notify_all();
    }

    /// Wait until a sequence above `after` is committed, the tip closes, or `timeout` passes.
    pub fn wait_beyond(&self, after: i64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while s.seq <= after && !s.closing {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            s = match self.changed.wait_timeout(s, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// How long events are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// After every consumer an event is for acknowledged it.
    pub acked: Duration,
    /// After its receipt, acknowledged or not (`None`: until acknowledged).
    pub unacked: Option<Duration>,
}

/// Start the writer thread. It stops once every sender is dropped and the queue is drained.
pub fn spawn(
    store: Box<dyn WriteStore>,
    tip: Arc<Tip>,
    metrics: Arc<Metrics>,
    retention: Retention,
    queue: usize,
) -> std::io::Result<(SyncSender<Job>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel(queue);
    let handle = std::thread::Builder::new()
        .name("relay-writer".to_owned())
        .spawn(move || run(store, rx, &tip, &metrics, retention))?;
    Ok((tx, handle))
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn run(
    mut store: Box<dyn WriteStore>,
    rx: Receiver<Job>,
    tip: &Tip,
    metrics: &Metrics,
    retention: Retention,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut last_purge: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(job) => batch.push(job),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            // Last-use records, visit counts and invitee notes are bookkeeping, not
            // requests: not counted as jobs.
            metrics.committed(
                batch
                    .iter()
                    .filter(|j| {
                        !matches!(
                            j,
                            Job::Touch { .. } | Job::CountRedirect { .. } | Job::NoteInvitee { .. }
                        )
                    })
                    .count(),
            );
            commit(&mut *store, &mut batch, tip);
        }
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            last_purge = Some(Instant::now());
            let now = now_ms();
            let acked = now.saturating_sub(ms(retention.acked));
            let unacked = retention.unacked.map(|d| now.saturating_sub(ms(d)));
            match store.purge(acked, unacked) {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "purged events past retention"),
                Err(e) => tracing::error!(error = %e, "purge failed"),
            }
        }
    }
    // Dropping the store finishes its housekeeping (SQLite: the last checkpoint).
    drop(store);
}

enum Outcome {
    Insert(Inserted),
    Ack(Acked),
    Links,
    CalendlyKey,
    StripeSecrets,
    AppKeys,
    CheckoutKey,
    Touch,
    Claimed(CheckoutClaim),
    Recorded,
    Counted,
    Noted,
}

/// The event an insert job stores.
fn new_event(job: &Job) -> Option<NewEvent<'_>> {
    match job {
        Job::Insert { event, .. } => Some(event.event()),
        _ => None,
    }
}

fn apply(tx: &mut dyn WriteTx, job: &Job, now: i64) -> Result<Outcome, store::StoreError> {
    match job {
        Job::Insert { event, .. } => tx.insert_event(&event.event()).map(Outcome::Insert),
        Job::Ack {
            consumer, through, ..
        } => tx.ack(*consumer, *through, now).map(Outcome::Ack),
        Job::ReplaceLinks { tenant, links, .. } => {
            tx.replace_links(*tenant, links).map(|()| Outcome::Links)
        }
        Job::AddCalendlyKey { consumer, key, .. } => tx
            .add_calendly_key(*consumer, key, now)
            .map(|()| Outcome::CalendlyKey),
        Job::ReplaceStripeSecrets {
            consumer, secrets, ..
        } => tx
            .replace_stripe_secrets(*consumer, secrets, now)
            .map(|()| Outcome::StripeSecrets),
        Job::ReplaceAppKeys { consumer, keys, .. } => tx
            .replace_app_keys(*consumer, keys, now)
            .map(|()| Outcome::AppKeys),
        Job::ReplaceCheckoutKey {
            consumer, sealed, ..
        } => tx
            .replace_checkout_key(*consumer, sealed.as_deref(), now)
            .map(|()| Outcome::CheckoutKey),
        Job::Touch { consumer } => tx.touch_consumer(*consumer, now).map(|()| Outcome::Touch),
        Job::ClaimCheckout { tenant, claim, .. } => {
            tx.claim_checkout(*tenant, claim).map(Outcome::Claimed)
        }
        Job::RecordCheckout {
            tenant,
            invitee,
            session_id,
            ..
        } => tx
            .record_checkout_session(*tenant, invitee, session_id)
            .map(|()| Outcome::Recorded),
        Job::CountRedirect {
            tenant,
            slug,
            at_ms,
        } => tx
            .count_redirect(*tenant, slug, *at_ms)
            .map(|()| Outcome::Counted),
        Job::NoteInvitee { tenant, note } => {
            tx.note_invitee(*tenant, note, now).map(|()| Outcome::Noted)
        }
    }
}

fn commit(store: &mut dyn WriteStore, batch: &mut Vec<Job>, tip: &Tip) {
    let now = now_ms();
    let mut outcomes = Vec::with_capacity(batch.len());
    let result = store.group(&mut |tx| {
        outcomes.clear();
        let mut rest = &batch[..];
        while let Some(job) = rest.first() {
            // Consecutive inserts go to the store together (acks between them keep their
            // place: an ack checks the newest sequence stored before it).
            let run = rest
                .iter()
                .take_while(|j| matches!(j, Job::Insert { .. }))
                .count();
            if run > 1 {
                let events: Vec<NewEvent<'_>> = rest[..run].iter().filter_map(new_event).collect();
                let inserted = tx.insert_events(&events)?;
                if inserted.len() != events.len() {
                    return Err(store::StoreError::Database {
                        what: "insert events",
                        source: "the store answered for another number of events".into(),
                    });
                }
                outcomes.extend(inserted.into_iter().map(Outcome::Insert));
                rest = &rest[run..];
            } else {
                outcomes.push(apply(tx, job, now)?);
                rest = &rest[1..];
            }
        }
        Ok(())
    });
    match result {
        Ok(()) => {
            let newest = outcomes
                .iter()
                .filter_map(|o| match o {
                    Outcome::Insert(Inserted::New(seq)) => Some(*seq),
                    _ => None,
                })
                .max();
            if let Some(seq) = newest {
                tip.advance(seq);
            }
            for (job, outcome) in batch.drain(..).zip(outcomes) {
                match (job, outcome) {
                    (Job::Insert { done, .. }, Outcome::Insert(i)) => done(Ok(i)),
                    (Job::Ack { done, .. }, Outcome::Ack(a)) => done(Ok(a)),
                    (Job::ReplaceLinks { done, .. }, Outcome::Links) => done(Ok(())),
                    (Job::AddCalendlyKey { done, .. }, Outcome::CalendlyKey) => done(Ok(())),
                    (Job::ReplaceStripeSecrets { done, .. }, Outcome::StripeSecrets)
                    | (Job::ReplaceAppKeys { done, .. }, Outcome::AppKeys)
                    | (Job::ReplaceCheckoutKey { done, .. }, Outcome::CheckoutKey) => done(Ok(())),
                    (Job::Touch { .. }, Outcome::Touch) => {}
                    (Job::ClaimCheckout { done, .. }, Outcome::Claimed(c)) => done(Ok(c)),
                    (Job::RecordCheckout { done, .. }, Outcome::Recorded) => done(Ok(())),
                    (Job::CountRedirect { .. }, Outcome::Counted)
                    | (Job::NoteInvitee { .. }, Outcome::Noted) => {}
                    (job, _) => job.fail(),
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, jobs = batch.len(), "group commit failed; answering 503");
            for job in batch.drain(..) {
                job.fail();
            }
        }
    }
}
