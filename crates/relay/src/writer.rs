//! The single database writer, which commits in groups.
//!
//! Every change (new events, acks, the payment link table, purges) goes through one thread
//! that owns the write connection. It takes whatever jobs are waiting, applies them all in
//! one transaction, commits (one fsync for the whole group), and only then replies to each
//! job. A request handler answers 2xx only after that reply, so a 2xx always means the event
//! is on disk, while many concurrent webhooks share the cost of one commit.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use coachdesk_protocol::relay::{PaymentLinkRoute, Provider};
use rusqlite::Connection;

use crate::store::{self, Inserted};

/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 1024;
/// How often acknowledged events past retention are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// A change for the writer, with where to send its outcome.
pub enum Job {
    Insert {
        provider: Provider,
        key: String,
        body: String,
        received_at_ms: i64,
        reply: SyncSender<Result<Inserted, WriteFailed>>,
    },
    Ack {
        through: i64,
        reply: SyncSender<Result<i64, WriteFailed>>,
    },
    ReplaceLinks {
        links: Vec<PaymentLinkRoute>,
        reply: SyncSender<Result<(), WriteFailed>>,
    },
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
    tip: Arc<Tip>,
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
                    .spawn(move || checkpoint_loop(&p, &stopped))
                    .ok()
            });
            run(conn, rx, &tip, retention);
            drop(stop);
            if let Some(h) = checkpointer {
                let _ = h.join();
            }
        })?;
    Ok((tx, handle))
}

fn checkpoint_loop(path: &std::path::Path, stop: &Receiver<()>) {
    let conn = match store::open(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "checkpointer cannot open the database");
            return;
        }
    };
    // PASSIVE never blocks the writer; it copies what it can while readers allow.
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(Duration::from_millis(250)) {
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

fn run(mut conn: Connection, rx: Receiver<Job>, tip: &Tip, retention: Duration) {
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
                // A handler that gave up (its client left) has dropped its receiver; that is fine.
                match (job, outcome) {
                    (Job::Insert { reply, .. }, Outcome::Insert(i)) => {
                        let _ = reply.try_send(Ok(i));
                    }
                    (Job::Ack { reply, .. }, Outcome::Ack(t)) => {
                        let _ = reply.try_send(Ok(t));
                    }
                    (Job::ReplaceLinks { reply, .. }, Outcome::Links) => {
                        let _ = reply.try_send(Ok(()));
                    }
                    _ => {}
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, jobs = batch.len(), "group commit failed; answering 503");
            for job in batch.drain(..) {
                match job {
                    Job::Insert { reply, .. } => {
                        let _ = reply.try_send(Err(WriteFailed));
                    }
                    Job::Ack { reply, .. } => {
                        let _ = reply.try_send(Err(WriteFailed));
                    }
                    Job::ReplaceLinks { reply, .. } => {
                        let _ = reply.try_send(Err(WriteFailed));
                    }
                }
            }
        }
    }
}
