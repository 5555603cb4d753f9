//! The single database writer, which commits in groups.
//!
//! Every change (new events, acks, the payment link table, purges) goes through one thread
//! that owns the write connection. It takes whatever jobs are waiting, applies them all in
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
use rusqlite::Connection;

use crate::config::Durability;
use crate::metrics::Metrics;
use crate::store::{self, Inserted};

/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 2048;
/// How often acknowledged events past retention are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);
/// How often the checkpointer copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// What the writer calls, after the commit (or its failure), with a job's outcome.
pub type Done<T> = Box<dyn FnOnce(Result<T, WriteFailed>) + Send>;

/// A change for the writer, with what to do with its outcome.
pub enum Job {
    Insert {
        provider: Provider,
        key: String,
        body: String,
        received_at_ms: i64,
        done: Done<Inserted>,
    },
    Ack {
        through: i64,
        done: Done<i64>,
    },
    ReplaceLinks {
        links: Vec<PaymentLinkRoute>,
        done: Done<()>,
    },
    AddCalendlyKey {
        key: String,
        done: Done<()>,
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

    fn advance(&self, seq: i64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if seq > s.seq {
            s.seq = seq;
            self.changed.notify_all();
        }
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

/// Start the writer thread. It stops once every sender is dropped and the queue is drained.
pub fn spawn(
    conn: Connection,
    durability: Durability,
    tip: Arc<Tip>,
    metrics: Arc<Metrics>,
    retention: Duration,
    queue: usize,
) -> std::io::Result<(SyncSender<Job>, JoinHandle<()>)> {
    let (tx, rx) = mpsc::sync_channel(queue);
    // Checkpoints copy the WAL into the database and fsync it; done on the writer they
    // would stall every answer waiting on that commit, so a second connection does them.
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .map_err(std::io::Error::other)?;
    let path = conn.path().map(std::path::PathBuf::from);
    let handle = std::thread::Builder::new()
        .name("relay-writer".to_owned())
        .spawn(move || {
            let (stop, stopped) = mpsc::channel::<()>();
            let checkpointer = path.and_then(|p| {
                std::thread::Builder::new()
                    .name("relay-checkpoint".to_owned())
                    .spawn(move || checkpoint_loop(&p, durability, &stopped))
                    .ok()
            });
            run(conn, rx, &tip, &metrics, retention);
            drop(stop);
            if let Some(h) = checkpointer {
                let _ = h.join();
            }
        })?;
    Ok((tx, handle))
}

fn checkpoint_loop(path: &std::path::Path, durability: Durability, stop: &Receiver<()>) {
    let conn = match store::open(path, durability) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "checkpointer cannot open the database");
            return;
        }
    };
    // PASSIVE never blocks the writer; it copies what it can while readers allow.
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn run(mut conn: Connection, rx: Receiver<Job>, tip: &Tip, metrics: &Metrics, retention: Duration) {
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
            metrics.committed(batch.len());
            commit(&mut conn, &mut batch, tip);
        }
        if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            last_purge = Some(Instant::now());
            let cutoff = now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
            match store::purge(&conn, cutoff) {
                Ok(0) => {}
                Ok(n) => tracing::info!(purged = n, "purged acknowledged events past retention"),
                Err(e) => tracing::error!(error = %e, "purge failed"),
            }
        }
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!(error = %e, "final checkpoint failed");
    }
}

enum Outcome {
    Insert(Inserted),
    Ack(i64),
    Links,
    CalendlyKey,
}

fn apply(conn: &Connection, job: &Job, now: i64) -> Result<Outcome, store::StoreError> {
    match job {
        Job::Insert {
            provider,
            key,
            body,
            received_at_ms,
            ..
        } => store::insert_event(conn, *provider, key, body, *received_at_ms).map(Outcome::Insert),
        Job::Ack { through, .. } => store::ack(conn, *through, now).map(Outcome::Ack),
        Job::ReplaceLinks { links, .. } => {
            store::replace_links(conn, links).map(|()| Outcome::Links)
        }
        Job::AddCalendlyKey { key, .. } => {
            store::add_calendly_key(conn, key, now).map(|()| Outcome::CalendlyKey)
        }
    }
}

fn commit(conn: &mut Connection, batch: &mut Vec<Job>, tip: &Tip) {
    let now = now_ms();
    let result = (|| -> Result<Vec<Outcome>, store::StoreError> {
        let tx = conn.transaction().map_err(|source| store::StoreError {
            what: "begin",
            source,
        })?;
        let outcomes = batch
            .iter()
            .map(|job| apply(&tx, job, now))
            .collect::<Result<Vec<_>, _>>()?;
        tx.commit().map_err(|source| store::StoreError {
            what: "commit",
            source,
        })?;
        Ok(outcomes)
    })();
    match result {
        Ok(outcomes) => {
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
                    (Job::Ack { done, .. }, Outcome::Ack(t)) => done(Ok(t)),
                    (Job::ReplaceLinks { done, .. }, Outcome::Links) => done(Ok(())),
                    (Job::AddCalendlyKey { done, .. }, Outcome::CalendlyKey) => done(Ok(())),
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
