//! The chaos harness: a seeded workload run twice — once without faults (the reference)
//! and once with the seed's faults (kill -9 of the relay and of the sync core, an empty
//! relay in place of the old one, webhooks dropped, duplicated and reordered, provider 500s,
//! 429s and lost answers, SMTP down, the clock jumping two days) — then the books of both
//! runs are read from the simulator's side and the app's, and must balance.
//!
//! [`run_seed`] is the whole thing for one seed; `coachdesk-chaos --seeds N` runs many.

pub mod ledger;
pub mod procs;
pub mod run;
pub mod workload;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use ledger::Books;
use run::RunOutput;
use workload::Workload;

/// Clients per seed.
pub const CLIENTS: usize = 12;

/// One seed's verdict and figures.
#[derive(Debug, Clone)]
pub struct SeedOutcome {
    pub seed: u64,
    /// Empty when the books balance.
    pub failure: Option<String>,
    pub faults: BTreeMap<String, u64>,
    pub captured: BTreeMap<String, i64>,
    pub refunded: BTreeMap<String, i64>,
    pub email_resends: usize,
    pub relay_2xx_stripe: usize,
    pub wall: Duration,
}

/// Runs the reference and the faulted run of `seed` and checks the books.
pub fn run_seed(seed: u64, clients: usize) -> anyhow::Result<SeedOutcome> {
    let workload = Workload::from_seed(seed, clients);
    let mut reference = run::execute(&workload, false)?;
    reference.procs.kill_core();
    let reference_books = ledger::read(&reference)?;
    let mut faulted = run::execute(&workload, true)?;
    faulted.procs.kill_core();
    let books = ledger::read(&faulted)?;
    let faults = run::fault_counts(&faulted)?;
    let failure = verdict(&workload, &reference, &reference_books, &faulted, &books);
    Ok(SeedOutcome {
        seed,
        failure,
        faults,
        captured: books.captured.clone(),
        refunded: books.refunded.clone(),
        email_resends: books.email_resends,
        relay_2xx_stripe: books.relay_2xx_stripe,
        wall: reference.wall + faulted.wall,
    })
}

/// `None` when the books balance; else the seed, the broken invariants and the first
/// divergent client with both timelines and the faults around it.
fn verdict(
    workload: &Workload,
    reference: &RunOutput,
    reference_books: &Books,
    faulted: &RunOutput,
    books: &Books,
) -> Option<String> {
    let divergence = ledger::first_divergence(reference_books, books);
    if books.violations.is_empty() && reference_books.violations.is_empty() && divergence.is_none()
    {
        return None;
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "seed {} does not balance (replay: coachdesk-chaos --seed {})",
        workload.seed, workload.seed
    );
    for v in &reference_books.violations {
        let _ = writeln!(text, "  reference run: {v}");
    }
    for v in &books.violations {
        let _ = writeln!(text, "  faulted run: {v}");
    }
    if let Some((n, what)) = divergence {
        let client = &workload.clients[n];
        let _ = writeln!(
            text,
            "  first divergent client: {} {client:?}",
            client.name()
        );
        let _ = writeln!(text, "  {what}");
        for (label, output, books) in [
            ("reference", reference, reference_books),
            ("faulted", faulted, books),
        ] {
            let _ = writeln!(text, "  {label} run, steps:");
            for step in &output.traces[n].steps {
                let _ = writeln!(text, "    {step}");
            }
            for (i, booking) in books.clients[n].bookings.iter().enumerate() {
                let _ = writeln!(text, "  {label} run, booking {i} timeline:");
                match booking {
                    Some(b) => {
                        for line in &b.timeline {
                            let _ = writeln!(text, "    {line}");
                        }
                    }
                    None => {
                        let _ = writeln!(text, "    (not in the app)");
                    }
                }
            }
        }
        let _ = writeln!(text, "  faults around it:");
        let near: Vec<_> = faulted
            .faults
            .iter()
            .filter(|f| f.client.is_none_or(|c| c.abs_diff(n) <= 1))
            .collect();
        for f in near {
            let _ = writeln!(
                text,
                "    step {} (client {:?}): {} {}",
                f.step, f.client, f.kind, f.detail
            );
        }
    }
    Some(text)
}
