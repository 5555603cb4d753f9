//! Signed webhook delivery with the faults real providers have: delay, duplicates,
//! reordering, drops, and retries on non-2xx.
//!
//! Events are queued by the simulator as they happen and sent by one background thread,
//! each POSTed with the provider's signature header made by
//! `coachdesk_signature::sign_header`. All randomness comes from one seeded RNG, so a test
//! that pauses the queue, triggers its events and then flushes sees the same deliveries
//! every run.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::http;

/// Which provider a delivery imitates (decides the header and user agent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Stripe,
    Calendly,
}

impl Provider {
    /// The signature header this provider sends.
    pub fn signature_header(self) -> &'static str {
        match self {
            Provider::Stripe => "Stripe-Signature",
            Provider::Calendly => "Calendly-Webhook-Signature",
        }
    }
}

/// Where a provider's webhooks go and the secret they are signed with.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Delivery knobs. Probabilities are in `0.0..=1.0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeliveryKnobs {
    /// Wait this long before each send.
    pub delay_ms: u64,
    /// Chance that an event is delivered twice.
    pub duplicate_probability: f64,
    /// Chance that an event is never delivered (it stays in Stripe's event list).
    pub drop_probability: f64,
    /// Pick the next delivery at random among the first N queued (1 = in order).
    pub reorder_window: usize,
    /// Seed of the RNG behind the three knobs above; `None` seeds from entropy.
    pub seed: Option<u64>,
    /// Hold every delivery until unpaused or flushed.
    pub paused: bool,
    /// Attempts per delivery (non-2xx or connection error is retried).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles after each.
    pub retry_backoff_ms: u64,
    /// Per-attempt timeout.
    pub timeout_ms: u64,
}

impl Default for DeliveryKnobs {
    fn default() -> Self {
        DeliveryKnobs {
            delay_ms: 0,
            duplicate_probability: 0.0,
            drop_probability: 0.0,
            reorder_window: 1,
            seed: None,
            paused: false,
            max_attempts: 3,
            retry_backoff_ms: 100,
            timeout_ms: 5_000,
        }
    }
}

/// One webhook to send.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub provider: Provider,
    pub target: WebhookTarget,
    /// Stripe event id, or Calendly `event` + invitee uri + `created_at`.
    pub key: String,
    pub body: Vec<u8>,
    /// The Calendly subscription this goes through, if any (disabled on final failure).
    pub subscription: Option<String>,
}

/// What happened to one delivery attempt (or a drop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub provider: Provider,
    pub url: String,
    pub key: String,
    pub attempt: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub dropped: bool,
    pub duplicate: bool,
}

type ExhaustedHook = Box<dyn Fn(&Delivery) + Send + Sync>;

struct Queue {
    pending: VecDeque<(Delivery, bool)>,
    knobs: DeliveryKnobs,
    rng: StdRng,
    log: Vec<DeliveryRecord>,
    in_flight: usize,
    shutdown: bool,
}

/// The delivery queue and its sender thread.
pub struct Outbox {
    queue: Mutex<Queue>,
    wake: Condvar,
    clock: Box<dyn Fn() -> i64 + Send + Sync>,
    on_exhausted: Mutex<Option<ExhaustedHook>>,
}

fn rng_for(seed: Option<u64>) -> StdRng {
    match seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_entropy(),
    }
}

impl Outbox {
    /// Start the sender thread. `clock` gives the signature timestamp (the simulator's now).
    pub fn start(
        knobs: DeliveryKnobs,
        clock: Box<dyn Fn() -> i64 + Send + Sync>,
    ) -> (Arc<Outbox>, JoinHandle<()>) {
        let outbox = Arc::new(Outbox {
            queue: Mutex::new(Queue {
                pending: VecDeque::new(),
                rng: rng_for(knobs.seed),
                knobs,
                log: Vec::new(),
                in_flight: 0,
                shutdown: false,
            }),
            wake: Condvar::new(),
            clock,
            on_exhausted: Mutex::new(None),
        });
        let worker = Arc::clone(&outbox);
        let handle = std::thread::spawn(move || worker.run());
        (outbox, handle)
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called when a delivery has used all its attempts.
    pub fn set_on_exhausted(&self, hook: ExhaustedHook) {
        *self.on_exhausted.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    /// Queue a delivery.
    pub fn push(&self, delivery: Delivery) {
        self.lock().pending.push_back((delivery, false));
        self.wake.notify_all();
    }

    /// Replace the knobs; a new seed restarts the RNG.
    pub fn set_knobs(&self, knobs: DeliveryKnobs) {
        let mut q = self.lock();
        if knobs.seed != q.knobs.seed || knobs.seed.is_some() {
            q.rng = rng_for(knobs.seed);
        }
        q.knobs = knobs;
        drop(q);
        self.wake.notify_all();
    }

    pub fn knobs(&self) -> DeliveryKnobs {
        self.lock().knobs.clone()
    }

    pub fn log(&self) -> Vec<DeliveryRecord> {
        self.lock().log.clone()
    }

    /// Unpause and wait until nothing is queued or in flight; false on timeout.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut q = self.lock();
        q.knobs.paused = false;
        self.wake.notify_all();
        while !(q.pending.is_empty() && q.in_flight == 0) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            q = self
                .wake
                .wait_timeout(q, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        true
    }

    /// Stop the sender thread after its current delivery.
    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.wake.notify_all();
    }

    fn run(&self) {
        loop {
            let mut q = self.lock();
            // Wait for work; with a reorder window, give the window a moment to fill.
            loop {
                if q.shutdown {
                    return;
                }
                if !q.knobs.paused && !q.pending.is_empty() {
                    let window = q.knobs.reorder_window.max(1);
                    if q.pending.len() >= window {
                        break;
                    }
                    let before = q.pending.len();
                    q = self.wait(q, Duration::from_millis(50));
                    if q.pending.len() == before {
                        break;
                    }
                    continue;
                }
                q = self.wait(q, Duration::from_millis(200));
            }
            let window = q.knobs.reorder_window.max(1).min(q.pending.len());
            let index = if window > 1 {
                q.rng.gen_range(0..window)
            } else {
                0
            };
            let Some((delivery, duplicate)) = q.pending.remove(index) else {
                continue;
            };
            let knobs = q.knobs.clone();
            if !duplicate && q.rng.gen_bool(knobs.drop_probability.clamp(0.0, 1.0)) {
                q.log.push(record(&delivery, 0, None, None, true, false));
                drop(q);
                self.wake.notify_all();
                continue;
            }
            if !duplicate && q.rng.gen_bool(knobs.duplicate_probability.clamp(0.0, 1.0)) {
                q.pending.push_back((delivery.clone(), true));
            }
            q.in_flight += 1;
            drop(q);
            if knobs.delay_ms > 0 {
                std::thread::sleep(Duration::from_millis(knobs.delay_ms));
            }
            let records = self.send(&delivery, duplicate, &knobs);
            let exhausted = records
                .last()
                .is_some_and(|r| !r.status.is_some_and(|s| (200..300).contains(&s)));
            let mut q = self.lock();
            q.log.extend(records);
            q.in_flight -= 1;
            drop(q);
            if exhausted {
                if let Some(hook) = self
                    .on_exhausted
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                {
                    hook(&delivery);
                }
            }
            self.wake.notify_all();
        }
    }

    fn wait<'a>(&self, q: MutexGuard<'a, Queue>, d: Duration) -> MutexGuard<'a, Queue> {
        self.wake
            .wait_timeout(q, d)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0)
    }

    fn send(&self, d: &Delivery, duplicate: bool, knobs: &DeliveryKnobs) -> Vec<DeliveryRecord> {
        let mut records = Vec::new();
        let mut backoff = knobs.retry_backoff_ms;
        for attempt in 1..=knobs.max_attempts.max(1) {
            let signature = coachdesk_signature::sign_header(
                d.target.secret.as_bytes(),
                (self.clock)(),
                &d.body,
            );
            let agent = match d.provider {
                Provider::Stripe => "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                Provider::Calendly => "Calendly-Webhooks (coachdesk-sim)",
            };
            let headers = [
                ("Content-Type", "application/json; charset=utf-8"),
                ("User-Agent", agent),
                (d.provider.signature_header(), signature.as_str()),
            ];
            let result = http::request(
                "POST",
                &d.target.url,
                &headers,
                &d.body,
                Duration::from_millis(knobs.timeout_ms.max(1)),
            );
            let (status, error) = match result {
                Ok(r) => (Some(r.status), None),
                Err(e) => (None, Some(e.to_string())),
            };
            records.push(record(d, attempt, status, error, false, duplicate));
            if status.is_some_and(|s| (200..300).contains(&s)) {
                break;
            }
            if attempt < knobs.max_attempts {
                std::thread::sleep(Duration::from_millis(backoff));
                backoff = backoff.saturating_mul(2);
            }
        }
        records
    }
}

fn record(
    d: &Delivery,
    attempt: u32,
    status: Option<u16>,
    error: Option<String>,
    dropped: bool,
    duplicate: bool,
) -> DeliveryRecord {
    DeliveryRecord {
        provider: d.provider,
        url: d.target.url.clone(),
        key: d.key.clone(),
        attempt,
        status,
        error,
        dropped,
        duplicate,
    }
}
