//! Counters and a latency histogram for `GET /metrics`, in Prometheus text format.
//!
//! Everything is a relaxed atomic so that request handlers never contend on a lock for
//! bookkeeping. Queue depth and the oldest unacknowledged age are read from the database at
//! scrape time instead, so they survive restarts and cannot drift.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use coachdesk_protocol::relay::Provider;

/// Reasons a webhook is rejected, as metric labels.
pub const REJECT_REASONS: &[&str] = &[
    "missing_signature",
    "missing_timestamp",
    "no_v1_signature",
    "stale_timestamp",
    "future_timestamp",
    "mismatch",
    "malformed",
    "malformed_json",
    "missing_key_field",
    "too_large",
    "wrong_method",
    "unsupported_media_type",
    "tenant_rate_limited",
    "read_error",
    "unavailable",
];

/// What a `/pay` visit with a restricted key came to, as metric labels: the booking's own
/// session, its paid, expired, cancelled or moved page, or (the rest) why the client got
/// the payment link.
pub const CHECKOUT_OUTCOMES: &[&str] = &[
    "session",
    "paid",
    "expired",
    "cancelled",
    "moved",
    "unreachable",
    "server_error",
    "refused",
    "unreadable",
    "store",
];

/// Routes whose latency is recorded separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Hook = 0,
    Pull = 1,
    Other = 2,
}

const ROUTES: [&str; 3] = ["hooks", "pull", "other"];
/// Statuses the guard answers itself, before tiny_http sees a request.
pub const GUARD_STATUSES: [u16; 5] = [400, 408, 413, 429, 431];

/// Histogram bucket upper bounds, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// The relay's counters.
#[derive(Default)]
pub struct Metrics {
    received: [AtomicU64; 2],
    duplicate: [AtomicU64; 2],
    rejected: [[AtomicU64; REJECT_REASONS.len()]; 2],
    latency: [Histogram; 3],
    commits: AtomicU64,
    committed_jobs: AtomicU64,
    guard_answered: [AtomicU64; GUARD_STATUSES.len()],
    connections_refused: AtomicU64,
    idle_connections_cut: AtomicU64,
    checkout: [AtomicU64; CHECKOUT_OUTCOMES.len()],
    /// Open Checkout Sessions expired at Stripe because Calendly said the booking was
    /// cancelled: done, failed.
    cancel_expiries: [AtomicU64; 2],
    /// Per tenant (not the relay's own coach), by name: webhooks stored, duplicates,
    /// refused by the tenant's rate, rejected (signature, body). Bounded by the tenants
    /// that exist.
    tenants: std::sync::Mutex<std::collections::BTreeMap<String, [u64; 4]>>,
}

/// What happened to a tenant's webhook, for its counters.
#[derive(Debug, Clone, Copy)]
pub enum TenantOutcome {
    Stored,
    Duplicate,
    RateLimited,
    /// Refused as not the provider's (signature) or unreadable: a coach whose webhooks
    /// are all rejected has a wrong signing secret somewhere.
    Rejected,
}

const TENANT_OUTCOMES: [&str; 4] = ["stored", "duplicate", "rate_limited", "rejected"];

fn provider_index(p: Provider) -> usize {
    match p {
        Provider::Stripe => 0,
        Provider::Calendly => 1,
    }
}

impl Metrics {
    /// A verified webhook that was stored.
    pub fn received(&self, p: Provider) {
        self.received[provider_index(p)].fetch_add(1, Relaxed);
    }

    /// A verified webhook whose key was already stored.
    pub fn duplicate(&self, p: Provider) {
        self.duplicate[provider_index(p)].fetch_add(1, Relaxed);
    }

    /// A rejected webhook; `reason` should be one of [`REJECT_REASONS`].
    pub fn rejected(&self, p: Provider, reason: &str) {
        if let Some(i) = REJECT_REASONS.iter().position(|r| *r == reason) {
            self.rejected[provider_index(p)][i].fetch_add(1, Relaxed);
        }
    }

    /// A tenant's webhook, by the tenant's name.
    pub fn tenant(&self, name: &str, outcome: TenantOutcome) {
        let mut tenants = self
            .tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let counts = match tenants.get_mut(name) {
            Some(counts) => counts,
            None => tenants.entry(name.to_owned()).or_default(),
        };
        counts[outcome as usize] += 1;
    }

    /// Appends the per-tenant counters, and each tenant's queue depth as the database
    /// counts it (`depths`, by tenant name; the relay's own coach's is the global gauge).
    pub fn render_tenants(&self, out: &mut String, depths: &[(String, i64)]) {
        let _ = writeln!(
            out,
            "# HELP coachdesk_relay_tenant_webhooks_total Webhooks per tenant: stored, duplicate, refused by the tenant's rate, rejected (signature or body)."
        );
        let _ = writeln!(out, "# TYPE coachdesk_relay_tenant_webhooks_total counter");
        let tenants = self
            .tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (name, counts) in tenants.iter() {
            for (outcome, n) in TENANT_OUTCOMES.iter().zip(counts) {
                let _ = writeln!(
                    out,
                    "coachdesk_relay_tenant_webhooks_total{{tenant=\"{name}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP coachdesk_relay_tenant_queue_depth Events per tenant not yet acknowledged by every consumer they are for."
        );
        let _ = writeln!(out, "# TYPE coachdesk_relay_tenant_queue_depth gauge");
        for (name, depth) in depths.iter().filter(|(name, _)| !name.is_empty()) {
            let _ = writeln!(
                out,
                "coachdesk_relay_tenant_queue_depth{{tenant=\"{name}\"}} {depth}"
            );
        }
    }

    /// Appends when each tenant's apps last used the API (`last_use`: tenant name, unix
    /// ms), so an operator sees whose app stopped pulling.
    pub fn render_tenant_last_use(out: &mut String, last_use: &[(String, i64)]) {
        let _ = writeln!(
            out,
            "# HELP coachdesk_relay_tenant_last_api_use_seconds When the tenant's apps last used the pull API (unix time, minute resolution)."
        );
        let _ = writeln!(
            out,
            "# TYPE coachdesk_relay_tenant_last_api_use_seconds gauge"
        );
        for (name, ms) in last_use {
            let _ = writeln!(
                out,
                "coachdesk_relay_tenant_last_api_use_seconds{{tenant=\"{name}\"}} {}",
                ms / 1000
            );
        }
    }

    /// A group commit of `jobs` changes (events, acks, link tables).
    pub fn committed(&self, jobs: usize) {
        self.commits.fetch_add(1, Relaxed);
        self.committed_jobs
            .fetch_add(u64::try_from(jobs).unwrap_or(u64::MAX), Relaxed);
    }

    /// A request the guard answered itself with `status` (one of [`GUARD_STATUSES`]).
    pub fn guard_answered(&self, status: u16) {
        if let Some(i) = GUARD_STATUSES.iter().position(|s| *s == status) {
            self.guard_answered[i].fetch_add(1, Relaxed);
        }
    }

    /// A new connection refused at the connection cap.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Relaxed);
    }

    /// An idle connection cut to make room for a new one.
    pub fn idle_connection_cut(&self) {
        self.idle_connections_cut.fetch_add(1, Relaxed);
    }

    /// A `/pay` visit's outcome with a restricted key (one of [`CHECKOUT_OUTCOMES`]).
    pub fn checkout(&self, outcome: &str) {
        if let Some(i) = CHECKOUT_OUTCOMES.iter().position(|o| *o == outcome) {
            self.checkout[i].fetch_add(1, Relaxed);
        }
    }

    /// An open Checkout Session expired (or not, `ok == false`) after its booking was
    /// cancelled.
    pub fn expired_on_cancel(&self, ok: bool) {
        self.cancel_expiries[usize::from(!ok)].fetch_add(1, Relaxed);
    }

    /// Record how long a request took.
    pub fn observe(&self, route: Route, elapsed: Duration) {
        let h = &self.latency[route as usize];
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                h.buckets[i].fetch_add(1, Relaxed);
            }
        }
        h.count.fetch_add(1, Relaxed);
        h.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Relaxed,
        );
    }

    /// The Prometheus text exposition, with the queue figures read by the caller.
    pub fn render(
        &self,
        queue_depth: i64,
        oldest_unacked_age_secs: f64,
        long_polls_waiting: usize,
    ) -> String {
        let mut out = String::with_capacity(4096);
        let providers = [Provider::Stripe, Provider::Calendly];
        let _ = writeln!(
            out,
            "# HELP coachdesk_relay_webhooks_received_total Verified webhooks stored."
        );
        let _ = writeln!(
            out,
            "# TYPE coachdesk_relay_webhooks_received_total counter"
        );
        for p in providers {
            let _ = writeln!(
                out,
                "coachdesk_relay_webhooks_received_total{{provider=\"{}\"}} {}",
                p.as_str(),
                self.received[provider_index(p)].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP coachdesk_relay_webhooks_duplicate_total Verified webhooks already stored."
        );
        let _ = writeln!(
            out,
            "# TYPE coachdesk_relay_webhooks_duplicate_total counter"
        );
        for p in providers {
            let _ = writeln!(
                out,
                "coachdesk_relay_webhooks_duplicate_total{{provider=\"{}\"}} {}",
                p.as_str(),
                self.duplicate[provider_index(p)].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP coachdesk_relay_webhooks_rejected_total Webhooks refused, by reason."
        );
        let _ = writeln!(
            out,
            "# TYPE coachdesk_relay_webhooks_rejected_total counter"
        );
        for p in providers {
            for (i, reason) in REJECT_REASONS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "coachdesk_relay_webhooks_rejected_total{{provider=\"{}\",reason=\"{reason}\"}} {}",
                    p.as_str(),
                    self.rejected[provider_index(p)][i].load(Relaxed)
                );
            }
        }
        scalar(
            &mut out,
            "coachdesk_relay_queue_depth",
            "gauge",
            "Events stored and not yet acknowledged.",
            queue_depth,
        );
        scalar(
            &mut out,
            "coachdesk_relay_oldest_unacked_age_seconds",
            "gauge",
            "Age of the oldest unacknowledged event (0 if none).",
            format_args!("{oldest_unacked_age_secs:.3}"),
        );
        scalar(
            &mut out,
            "coachdesk_relay_long_polls_waiting",
            "gauge",
            "Pulls waiting for events now (each holds a worker; at most half the pool).",
            long_polls_waiting,
        );
        scalar(
            &mut out,
            "coachdesk_relay_commits_total",
            "counter",
            "Group commits (transactions) of the writer.",
            self.commits.load(Relaxed),
        );
        scalar(
            &mut out,
            "coachdesk_relay_committed_jobs_total",
            "counter",
            "Changes committed; divided by commits, the mean group size.",
            self.committed_jobs.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP coachdesk_relay_guard_answered_total Requests the guard answered itself (oversize, slow, rate-limited, malformed), by status."
        );
        let _ = writeln!(out, "# TYPE coachdesk_relay_guard_answered_total counter");
        for (i, status) in GUARD_STATUSES.iter().enumerate() {
            let _ = writeln!(
                out,
                "coachdesk_relay_guard_answered_total{{status=\"{status}\"}} {}",
                self.guard_answered[i].load(Relaxed)
            );
        }
        scalar(
            &mut out,
            "coachdesk_relay_connections_refused_total",
            "counter",
            "New connections refused at the connection caps.",
            self.connections_refused.load(Relaxed),
        );
        scalar(
            &mut out,
            "coachdesk_relay_idle_connections_cut_total",
            "counter",
            "Idle connections cut to admit new ones.",
            self.idle_connections_cut.load(Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP coachdesk_relay_checkout_expired_on_cancel_total Open Checkout Sessions the relay expired at Stripe because their booking was cancelled, by result."
        );
        let _ = writeln!(
            out,
            "# TYPE coachdesk_relay_checkout_expired_on_cancel_total counter"
        );
        for (i, result) in ["expired", "failed"].iter().enumerate() {
            let _ = writeln!(
                out,
                "coachdesk_relay_checkout_expired_on_cancel_total{{result=\"{result}\"}} {}",
                self.cancel_expiries[i].load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP coachdesk_relay_request_duration_seconds Time to answer a request."
        );
        let _ = writeln!(
            out,
            "# TYPE coachdesk_relay_request_duration_seconds histogram"
        );
        for (r, name) in ROUTES.iter().enumerate() {
            let h = &self.latency[r];
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "coachdesk_relay_request_duration_seconds_bucket{{route=\"{name}\",le=\"{bound}\"}} {}",
                    h.buckets[i].load(Relaxed)
                );
            }
            let count = h.count.load(Relaxed);
            let _ = writeln!(
                out,
                "coachdesk_relay_request_duration_seconds_bucket{{route=\"{name}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "coachdesk_relay_request_duration_seconds_sum{{route=\"{name}\"}} {:.6}",
                h.sum_micros.load(Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "coachdesk_relay_request_duration_seconds_count{{route=\"{name}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP coachdesk_relay_pay_checkout_total Payment redirects with a restricted key, by outcome (anything but session, paid, expired, cancelled and moved sent the client to the payment link)."
        );
        let _ = writeln!(out, "# TYPE coachdesk_relay_pay_checkout_total counter");
        for (i, outcome) in CHECKOUT_OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "coachdesk_relay_pay_checkout_total{{outcome=\"{outcome}\"}} {}",
                self.checkout[i].load(Relaxed)
            );
        }
        out
    }
}

/// Appends the post-booking redirect visits per slug, as counted in the database (so they
/// survive restarts and add up across relay processes). Slugs are `[A-Za-z0-9_-]`, safe
/// as label values, and only slugs of the pushed table are counted.
pub fn render_redirects(out: &mut String, counts: &[crate::store::RedirectCount]) {
    let _ = writeln!(
        out,
        "# HELP coachdesk_relay_pay_redirects_total Visits of /pay/{{slug}} (Calendly's redirect after booking)."
    );
    let _ = writeln!(out, "# TYPE coachdesk_relay_pay_redirects_total counter");
    for c in counts {
        let _ = writeln!(
            out,
            "coachdesk_relay_pay_redirects_total{{slug=\"{}\"}} {}",
            c.slug, c.visits
        );
    }
}

/// Reads of tenants' keys from the database: ahead of their requests (at start and after an
/// announced change), and by a request that found them missing (a new tenant; many of
/// these after the start say the keys are not kept warm).
pub fn render_key_reads(out: &mut String, ahead: u64, on_request: u64) {
    let name = "coachdesk_relay_tenant_key_reads_total";
    let _ = writeln!(
        out,
        "# HELP {name} Reads of a tenant's keys from the database: ahead of its requests, or by a request that found them missing."
    );
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name}{{when=\"ahead\"}} {ahead}");
    let _ = writeln!(out, "{name}{{when=\"on_request\"}} {on_request}");
}

/// One sample of a metric without labels, with its HELP and TYPE lines.
fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.received(Provider::Stripe);
        m.rejected(Provider::Calendly, "mismatch");
        m.observe(Route::Hook, Duration::from_micros(1500));
        m.committed(40);
        m.committed(2);
        let text = m.render(3, 1.5, 0);
        assert!(text.contains("coachdesk_relay_commits_total 2\n"));
        assert!(text.contains("coachdesk_relay_committed_jobs_total 42\n"));
        assert!(text.contains("coachdesk_relay_webhooks_received_total{provider=\"stripe\"} 1"));
        assert!(text.contains(
            "coachdesk_relay_webhooks_rejected_total{provider=\"calendly\",reason=\"mismatch\"} 1"
        ));
        assert!(text.contains("coachdesk_relay_queue_depth 3"));
        assert!(text.contains(
            "coachdesk_relay_request_duration_seconds_bucket{route=\"hooks\",le=\"0.001\"} 0"
        ));
        assert!(text.contains(
            "coachdesk_relay_request_duration_seconds_bucket{route=\"hooks\",le=\"0.002\"} 1"
        ));
        assert!(text.contains(
            "coachdesk_relay_request_duration_seconds_bucket{route=\"hooks\",le=\"+Inf\"} 1"
        ));
    }
}
