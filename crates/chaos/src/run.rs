//! One run of a workload: set-up, three rounds of client and coach actions with a two-day
//! sleep of the laptop between the second and the third, settling between rounds. A faulted
//! run draws, before each step, whether to inject a fault (from the seed's own stream).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use coachdesk_desk::{CoachActions as _, SessionTypeForms as _};
use coachdesk_domain::{Currency, Money};
use coachdesk_protocol::ipc::{CoachActionDto, RefundChoiceDto, RefundTierDto, SessionTypeDraft};
use coachdesk_providers::StripeApi;
use coachdesk_sim::{DeliveryKnobs, Fault, FaultKind};
use coachdesk_store::Store;
use rand::Rng as _;
use rand::SeedableRng as _;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::procs::{Procs, STRIPE_KEY};
use crate::workload::{CoachRefund, Pay, Then, Workload, KINDS};

/// Two days: the laptop's sleep, past Stripe's 24 hours of idempotency keys.
pub const SLEEP_SECS: i64 = 2 * 24 * 3600;
/// How long settling may take before the run is declared stuck.
const SETTLE_LIMIT: Duration = Duration::from_secs(60);

/// A fault injected, where.
#[derive(Debug, Clone)]
pub struct FaultRecord {
    pub step: usize,
    /// The client of the step it came before, if any.
    pub client: Option<usize>,
    pub kind: &'static str,
    pub detail: String,
}

/// What a client's run left behind: its Calendly invitees in order and its sessions.
#[derive(Debug, Clone, Default)]
pub struct ClientTrace {
    pub invitees: Vec<String>,
    pub invitee_uuids: Vec<String>,
    /// Payment intents of payments made through the simulator.
    pub payment_intents: Vec<String>,
    pub delayed_session: Option<String>,
    /// The client paid through a cheaper session type's link.
    pub paid_less: bool,
    /// Workload steps, as they were carried out (for the divergence report).
    pub steps: Vec<String>,
}

/// A run's outcome before checking: the processes (still up) and what happened.
pub struct RunOutput {
    pub procs: Procs,
    pub traces: Vec<ClientTrace>,
    pub faults: Vec<FaultRecord>,
    pub wall: Duration,
}

/// Runs `workload`; with `faults`, injects the seed's faults.
pub fn execute(workload: &Workload, faults: bool) -> anyhow::Result<RunOutput> {
    let started = Instant::now();
    let knobs = DeliveryKnobs {
        seed: Some(workload.seed),
        max_attempts: 3,
        retry_backoff_ms: 50,
        timeout_ms: 2_000,
        ..DeliveryKnobs::default()
    };
    let procs = Procs::start(knobs.clone())?;
    let mut run = Run {
        knobs,
        workload,
        procs,
        traces: vec![ClientTrace::default(); workload.clients.len()],
        faults: Vec::new(),
        rng: faults.then(|| ChaCha8Rng::seed_from_u64(workload.seed ^ 0x00fa_017f_a017)),
        step: 0,
        links: Vec::new(),
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
    };
    run.set_up()?;
    run.procs.start_core()?;
    run.chaotic_delivery()?;
    run.round_one()?;
    run.settle()?;
    run.chaotic_delivery()?;
    run.round_two()?;
    run.settle()?;
    run.chaotic_delivery()?;
    run.coach_actions_and_sleep()?;
    run.settle()?;
    run.chaotic_delivery()?;
    run.round_three()?;
    run.settle()?;
    Ok(RunOutput {
        procs: run.procs,
        traces: run.traces,
        faults: run.faults,
        wall: started.elapsed(),
    })
}

struct Run<'w> {
    workload: &'w Workload,
    procs: Procs,
    traces: Vec<ClientTrace>,
    faults: Vec<FaultRecord>,
    /// The fault stream; `None` in the reference run.
    rng: Option<ChaCha8Rng>,
    step: usize,
    /// Payment link per session kind.
    links: Vec<String>,
    runtime: tokio::runtime::Runtime,
    knobs: DeliveryKnobs,
}

impl Run<'_> {
    /// The coach's set-up, as in the app: a session type per kind on its Calendly event
    /// type, sold through a payment link.
    fn set_up(&mut self) -> anyhow::Result<()> {
        let mut store = Store::open(&self.procs.db)?;
        coachdesk_mail::save_settings(
            &store,
            &coachdesk_mail::MailSettings {
                smtp: coachdesk_mail::SmtpSettings {
                    host: "127.0.0.1".into(),
                    port: self.procs.smtp_port,
                    security: coachdesk_mail::Security::Plain,
                    username: None,
                    timeout_secs: 5,
                },
                coach: coachdesk_mail::CoachIdentity {
                    name: "Sam Coach".into(),
                    from_address: "coach@example.com".into(),
                    reply_to: None,
                },
                relay_url: Some(self.procs.relay_url()),
            },
        )?;
        let stripe = StripeApi::new(&format!("{}/", self.procs.sim_url()), STRIPE_KEY)?;
        for kind in crate::workload::KINDS {
            let st = store
                .create_session_type(&SessionTypeDraft {
                    name: kind.name.into(),
                    duration_minutes: kind.minutes,
                    price: kind.price.into(),
                    currency: kind.currency.into(),
                    refund_tiers: kind
                        .tiers
                        .iter()
                        .map(|&(min_hours_before, percent)| RefundTierDto {
                            min_hours_before,
                            percent,
                        })
                        .collect(),
                    calendly_event_type_uri: Some(
                        coachdesk_tests::stack::Stack::event_type_uri(kind.slug)?.to_owned(),
                    ),
                    payment_window_minutes: None,
                })
                .with_context(|| format!("session type {}", kind.name))?;
            let price = Money::new(
                kind.minor,
                Currency::parse(kind.currency).map_err(|e| anyhow::anyhow!("{e}"))?,
            );
            let link = self.runtime.block_on(stripe.create_payment_link(
                &st.name,
                price,
                &format!("coachdesk-{}", st.id),
            ))?;
            self.links.push(link.payment_link);
        }
        Ok(())
    }

    /// Webhooks dropped (20%), duplicated and reordered in a faulted run.
    fn chaotic_delivery(&mut self) -> anyhow::Result<()> {
        if self.rng.is_none() {
            return Ok(());
        }
        let mut knobs = self.knobs.clone();
        knobs.drop_probability = 0.2;
        knobs.duplicate_probability = 0.15;
        knobs.reorder_window = 3;
        self.procs.client.set_delivery(&knobs)?;
        Ok(())
    }

    fn calm_delivery(&mut self) -> anyhow::Result<()> {
        let mut knobs = self.knobs.clone();
        knobs.drop_probability = 0.0;
        knobs.duplicate_probability = 0.0;
        knobs.reorder_window = 1;
        self.procs.client.set_delivery(&knobs)?;
        Ok(())
    }

    fn record(&mut self, client: Option<usize>, kind: &'static str, detail: String) {
        self.faults.push(FaultRecord {
            step: self.step,
            client,
            kind,
            detail,
        });
    }

    /// Before a step: a killed relay comes back; then maybe a new fault.
    fn before_step(&mut self, client: Option<usize>) -> anyhow::Result<()> {
        self.step += 1;
        let Some(rng) = self.rng.as_mut() else {
            return Ok(());
        };
        let restart_relay = !self.procs.relay_running() && rng.gen_bool(0.6);
        let draw = rng.gen_bool(0.3).then(|| rng.gen_range(0..100usize));
        let fault_count = rng.gen_range(1..=2);
        let pause_ms = rng.gen_range(0..150);
        if restart_relay {
            self.procs.restart_relay()?;
        }
        let Some(draw) = draw else {
            return Ok(());
        };
        let provider = |kind: FaultKind, path: &str, method: &str| Fault {
            path_prefix: path.into(),
            method: Some(method.into()),
            kind,
            remaining: fault_count,
        };
        match draw {
            0..=11 => {
                self.procs.kill_relay();
                self.record(client, "kill -9 relay", String::new());
            }
            12..=15 => {
                self.procs.replace_relay()?;
                self.record(
                    client,
                    "relay replaced by an empty one",
                    format!("generation {}", self.procs.relay_generation),
                );
            }
            16..=31 => {
                // kill -9 at a random instant of whatever the core does now.
                std::thread::sleep(Duration::from_millis(pause_ms));
                self.procs.kill_core();
                self.procs.start_core()?;
                self.record(client, "kill -9 sync core", format!("after {pause_ms} ms"));
            }
            32..=81 => {
                let (path, method) = [
                    ("/v1/refunds", "POST"),
                    ("/v1/refunds", "GET"),
                    ("/scheduled_events/", "POST"),
                    ("/v1/checkout/sessions", "POST"),
                    ("/v1/events", "GET"),
                ][draw % 5];
                let (kind, name) = match draw % 3 {
                    0 => (FaultKind::ServerError, "provider 500"),
                    1 => (
                        FaultKind::RateLimit {
                            retry_after_secs: 1,
                        },
                        "provider 429 with Retry-After",
                    ),
                    _ => (
                        FaultKind::LoseAnswer { ms: Some(100) },
                        "answer lost after the provider acted",
                    ),
                };
                self.procs
                    .client
                    .inject_fault(&provider(kind, path, method))?;
                self.record(client, name, format!("{method} {path} x{fault_count}"));
            }
            82..=91 => {
                self.procs.kill_smtp();
                self.record(client, "SMTP down", "until the next settle".into());
            }
            _ => {
                std::thread::sleep(Duration::from_millis(pause_ms));
                self.procs.kill_core();
                self.procs.kill_relay();
                self.procs.start_core()?;
                self.record(
                    client,
                    "kill -9 relay and sync core",
                    format!("after {pause_ms} ms"),
                );
            }
        }
        Ok(())
    }

    fn trace(&mut self, n: usize, step: String) {
        self.traces[n].steps.push(step);
    }

    fn sim_now(&self) -> anyhow::Result<OffsetDateTime> {
        Ok(OffsetDateTime::now_utc() + time::Duration::seconds(self.procs.clock_offset))
    }

    fn pay(&mut self, n: usize, delayed: bool) -> anyhow::Result<Value> {
        let client = &self.workload.clients[n];
        let kind = client.paid_kind();
        let link = self.links[kind].clone();
        let uuid = self.traces[n]
            .invitee_uuids
            .last()
            .cloned()
            .context("pays before booking")?;
        let session = self
            .procs
            .client
            .pay_link(&link, &uuid, &client.email(), delayed)
            .with_context(|| format!("{} pays", client.name()))?;
        if let Some(pi) = session["payment_intent"].as_str() {
            self.traces[n].payment_intents.push(pi.to_owned());
        }
        self.traces[n].paid_less |= kind != client.kind;
        self.trace(
            n,
            format!(
                "pays {} ({})",
                if delayed {
                    "by a delayed method"
                } else if kind != client.kind {
                    "less, through another session type's link"
                } else {
                    "by card"
                },
                session["id"].as_str().unwrap_or("?")
            ),
        );
        Ok(session)
    }

    /// Books and pays.
    fn round_one(&mut self) -> anyhow::Result<()> {
        for n in 0..self.workload.clients.len() {
            self.before_step(Some(n))?;
            let client = self.workload.clients[n].clone();
            let kind = self.workload.kind(&client);
            let start = self.sim_now()?
                + time::Duration::minutes(client.start_hours * 60 + 30)
                + time::Duration::seconds(0);
            let start = start
                .replace_second(0)?
                .replace_nanosecond(0)?
                .format(&Rfc3339)?;
            let booking = self
                .procs
                .client
                .book_with(serde_json::json!({
                    "event_type": kind.slug,
                    "name": client.name(),
                    "email": client.email(),
                    "start_time": start,
                }))
                .with_context(|| format!("{} books", client.name()))?;
            self.traces[n].invitees.push(booking.invitee_uri.clone());
            self.traces[n]
                .invitee_uuids
                .push(booking.invitee_uuid.clone());
            self.trace(
                n,
                format!("books {} {}h ahead", kind.slug, client.start_hours),
            );
            match client.pay {
                Pay::Card | Pay::Less => {
                    self.before_step(Some(n))?;
                    self.pay(n, false)?;
                }
                Pay::Twice => {
                    self.before_step(Some(n))?;
                    self.pay(n, false)?;
                    self.before_step(Some(n))?;
                    self.pay(n, false)?;
                }
                Pay::Delayed { .. } => {
                    self.before_step(Some(n))?;
                    let session = self.pay(n, true)?;
                    self.traces[n].delayed_session = session["id"].as_str().map(str::to_owned);
                }
                Pay::Late | Pay::Never => {}
            }
        }
        Ok(())
    }

    /// Delayed payments settle, clients reschedule, cancel, dispute; dashboard refunds.
    fn round_two(&mut self) -> anyhow::Result<()> {
        for n in 0..self.workload.clients.len() {
            let client = self.workload.clients[n].clone();
            if let (Pay::Delayed { succeeds }, Some(session)) =
                (client.pay, self.traces[n].delayed_session.clone())
            {
                self.before_step(Some(n))?;
                self.procs.client.settle_async(&session, succeeds)?;
                self.trace(
                    n,
                    format!(
                        "delayed payment {}",
                        if succeeds { "succeeds" } else { "fails" }
                    ),
                );
            }
            for _ in 0..client.reschedules {
                self.before_step(Some(n))?;
                let from = self.traces[n].invitees.last().cloned().context("booked")?;
                let to = self.procs.client.reschedule(&from, false)?;
                self.traces[n].invitees.push(to.invitee_uri.clone());
                self.traces[n].invitee_uuids.push(to.invitee_uuid.clone());
                self.trace(n, "reschedules".into());
            }
            let paid = client.pays_early();
            let pi = self.traces[n].payment_intents.first().cloned();
            match (client.then, pi) {
                (Then::ClientCancels, _) => {
                    self.before_step(Some(n))?;
                    let invitee = self.traces[n].invitees.last().cloned().context("booked")?;
                    self.procs
                        .client
                        .cancel_as_invitee(&invitee, "cannot make it")?;
                    self.trace(n, "cancels in Calendly".into());
                }
                (Then::DashboardRefund { full }, Some(pi)) if paid => {
                    self.before_step(Some(n))?;
                    // Half of what the client paid (a client who paid less paid another price).
                    let amount = (!full).then(|| KINDS[client.paid_kind()].minor / 2);
                    self.procs.client.dashboard_refund(&pi, amount)?;
                    self.trace(
                        n,
                        format!("the coach refunds {amount:?} in Stripe's dashboard"),
                    );
                }
                (Then::Dispute { .. }, Some(pi)) if paid => {
                    self.before_step(Some(n))?;
                    self.procs.client.dispute(&pi)?;
                    self.trace(n, "disputes the payment".into());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The coach's actions from the app's commands (on the booking as the app holds it),
    /// then the laptop sleeps two days: kill -9 of the core, both clocks forward, restart.
    fn coach_actions_and_sleep(&mut self) -> anyhow::Result<()> {
        if let Some(rng) = self.rng.as_mut() {
            if rng.gen_bool(0.5) {
                // A refund made, its answer lost, the laptop asleep before the retry:
                // Stripe has forgotten the key by then.
                self.procs.client.inject_fault(&Fault {
                    path_prefix: "/v1/refunds".into(),
                    method: Some("POST".into()),
                    kind: FaultKind::LoseAnswer { ms: Some(1_500) },
                    remaining: 1,
                })?;
                self.record(
                    None,
                    "answer lost after the provider acted",
                    "POST /v1/refunds, then the laptop sleeps".into(),
                );
            }
        }
        for n in 0..self.workload.clients.len() {
            let client = self.workload.clients[n].clone();
            let dto = match client.then {
                Then::CoachCancels(refund) => CoachActionDto::Cancel {
                    refund: match refund {
                        CoachRefund::Policy => RefundChoiceDto::Policy,
                        CoachRefund::Full => RefundChoiceDto::Full,
                        CoachRefund::Nothing => RefundChoiceDto::None,
                        CoachRefund::Half => RefundChoiceDto::Amount {
                            amount_minor: self.workload.kind(&client).minor / 2,
                        },
                    },
                    reason: "The coach is ill".into(),
                },
                Then::CoachRefundsPart => CoachActionDto::Refund {
                    amount_minor: self.workload.kind(&client).minor / 3,
                    reason: "Goodwill".into(),
                },
                _ => continue,
            };
            self.before_step(Some(n))?;
            let invitee = self.traces[n].invitees.last().cloned().context("booked")?;
            let outcome = self.coach_action(n, &invitee, &dto)?;
            self.trace(n, format!("the coach: {dto:?} -> {outcome}"));
        }
        // Give the executor a moment to start the refunds, then the laptop sleeps.
        std::thread::sleep(Duration::from_millis(300));
        self.procs.kill_core();
        self.procs.advance_clock(SLEEP_SECS)?;
        self.procs.start_core()?;
        Ok(())
    }

    /// One coach action from the desk's command code, on the app's database. The harness
    /// is a second process on the file (the app has one): a write that meets the core's
    /// lock is clicked again, with the same action id (applied once however often).
    fn coach_action(
        &self,
        n: usize,
        invitee: &str,
        dto: &CoachActionDto,
    ) -> anyhow::Result<String> {
        let mut last = String::new();
        for _ in 0..20 {
            let now = self.sim_now()?;
            let mut store = Store::open(&self.procs.db)?;
            let Some(booking) = store.booking_by_invitee(invitee)? else {
                return Ok("no booking in the app".into());
            };
            match store.coach_action(&booking.id, &format!("chaos-{n}"), dto, now) {
                Ok(detail) => return Ok(detail.summary.state.to_string()),
                Err(coachdesk_store::StoreError::Sqlite(err)) => {
                    last = format!("{err:?}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(err) => return Ok(format!("refused: {err}")),
            }
        }
        Ok(format!("refused by SQLite 20 times: {last}"))
    }

    /// Late payments, dispute outcomes, no-shows.
    fn round_three(&mut self) -> anyhow::Result<()> {
        for n in 0..self.workload.clients.len() {
            let client = self.workload.clients[n].clone();
            if client.pay == Pay::Late {
                self.before_step(Some(n))?;
                self.pay(n, false)?;
            }
            let pi = self.traces[n].payment_intents.first().cloned();
            match (client.then, pi) {
                (Then::Dispute { won }, Some(pi)) if client.pays_early() => {
                    self.before_step(Some(n))?;
                    let status = if won { "won" } else { "lost" };
                    self.procs.client.close_dispute(&pi, status)?;
                    self.trace(n, format!("the dispute is {status}"));
                }
                (Then::NoShow, _) => {
                    self.before_step(Some(n))?;
                    let invitee = self.traces[n].invitees.last().cloned().context("booked")?;
                    self.procs.client.no_show(&invitee)?;
                    self.trace(n, "marked a no-show in Calendly".into());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Lets the system settle: faults healed, relay and core up, webhooks delivered, the
    /// relay's queue empty, no effect due, and a reconciliation that finds nothing missing.
    fn settle(&mut self) -> anyhow::Result<()> {
        self.step += 1;
        self.procs.client.clear_faults()?;
        self.calm_delivery()?;
        self.procs.start_smtp()?;
        self.procs.restart_relay()?;
        self.procs.start_core()?;
        self.procs.client.flush()?;
        let deadline = Instant::now() + SETTLE_LIMIT;
        loop {
            self.wait_quiet(deadline)?;
            let report = self.procs.reconcile(Duration::from_secs(30))?;
            if report.recovered == 0 && report.errors.is_empty() {
                self.wait_quiet(deadline)?;
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "reconciliation still fixes things after {SETTLE_LIMIT:?}: {report:?}"
            );
        }
    }

    /// Waits until the relay holds nothing unacknowledged and no effect is due soon.
    fn wait_quiet(&self, deadline: Instant) -> anyhow::Result<()> {
        loop {
            let depth = self.procs.relay_queue_depth()?;
            let soon = self.sim_now()? + time::Duration::seconds(3);
            let due = Store::open(&self.procs.db)?.due_effects(soon, 10)?.len();
            if depth == 0 && due == 0 {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "not settled: {depth} events at the relay, {due} effects due"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Faults of a run counted by kind, with the simulator's delivery faults.
pub fn fault_counts(output: &RunOutput) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut counts = BTreeMap::new();
    for fault in &output.faults {
        *counts.entry(fault.kind.to_owned()).or_default() += 1;
    }
    for record in output.procs.client.deliveries()? {
        if record.dropped {
            *counts.entry("webhook dropped".into()).or_default() += 1;
        } else if record.duplicate && record.attempt == 1 {
            *counts.entry("webhook duplicated".into()).or_default() += 1;
        }
    }
    counts.insert("sim clock jump (2 days)".into(), 1);
    Ok(counts)
}
