//! A handful of fixed seeds through the whole harness (reference run, faulted run, books):
//! the suite's share of the chaos runs. `coachdesk-chaos --seeds N` runs many more.
//!
//! Needs the relay binary in the same target folder (a workspace `cargo test` or
//! `cargo build -p coachdesk-relay` builds it) and aiosmtpd for the SMTP sink
//! (`scripts/setup` installs it).

/// Seeds that between them kill the relay and the core, replace the relay, drop and
/// duplicate webhooks, lose answers and take SMTP down; seed 9 has a client who pays less.
const SEEDS: [u64; 4] = [1, 2, 4, 9];

#[test]
fn fixed_seeds_balance_their_books() {
    let mut failures = Vec::new();
    let mut injected = 0;
    for seed in SEEDS {
        let outcome = coachdesk_chaos::run_seed(seed, coachdesk_chaos::CLIENTS)
            .unwrap_or_else(|e| panic!("seed {seed} could not run: {e:#}"));
        injected += outcome.faults.values().sum::<u64>();
        assert!(
            outcome.relay_2xx_stripe > 0,
            "seed {seed}: no Stripe webhook reached the relay"
        );
        assert!(
            outcome.captured.values().sum::<i64>() > 0,
            "seed {seed}: no money moved"
        );
        if let Some(text) = outcome.failure {
            failures.push(text);
        }
    }
    assert!(injected >= 30, "only {injected} faults injected");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
