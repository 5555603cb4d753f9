//! `coachdesk-chaos --seeds N [--from S] [--clients C]` or `--seed S`: runs seeds, prints a
//! line per seed and a total; exits non-zero if any seed's books do not balance.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context as _};

fn main() -> anyhow::Result<()> {
    let mut seeds = 1u64;
    let mut from = 1u64;
    let mut clients = coachdesk_chaos::CLIENTS;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || -> anyhow::Result<u64> {
            args.next()
                .with_context(|| format!("{flag} needs a number"))?
                .parse()
                .with_context(|| format!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--seeds" => seeds = value()?,
            "--from" => from = value()?,
            "--seed" => {
                from = value()?;
                seeds = 1;
            }
            "--clients" => clients = usize::try_from(value()?)?,
            "--help" | "-h" => {
                println!("usage: coachdesk-chaos [--seeds N] [--from S] [--seed S] [--clients C]");
                return Ok(());
            }
            other => bail!("unknown flag {other:?}"),
        }
    }
    let started = Instant::now();
    let mut failed = Vec::new();
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    let mut captured: BTreeMap<String, i64> = BTreeMap::new();
    let mut refunded: BTreeMap<String, i64> = BTreeMap::new();
    let mut resends = 0;
    for seed in from..from + seeds {
        let outcome = match coachdesk_chaos::run_seed(seed, clients) {
            Ok(outcome) => outcome,
            Err(err) => {
                println!("seed {seed}: ERROR {err:#}");
                failed.push(seed);
                continue;
            }
        };
        let injected: u64 = outcome.faults.values().sum();
        println!(
            "seed {seed}: {} in {:.1}s, {injected} faults, {} Stripe events 2xx'd by the relay, captured {:?}, refunded {:?}",
            if outcome.failure.is_some() {
                "FAIL"
            } else {
                "ok"
            },
            outcome.wall.as_secs_f64(),
            outcome.relay_2xx_stripe,
            outcome.captured,
            outcome.refunded,
        );
        if let Some(text) = &outcome.failure {
            print!("{text}");
            failed.push(seed);
        }
        for (kind, n) in outcome.faults {
            *faults.entry(kind).or_default() += n;
        }
        for (c, m) in outcome.captured {
            *captured.entry(c).or_default() += m;
        }
        for (c, m) in outcome.refunded {
            *refunded.entry(c).or_default() += m;
        }
        resends += outcome.email_resends;
    }
    println!(
        "total: {} seeds, {} failed {:?}, {:.0}s",
        seeds,
        failed.len(),
        failed,
        started.elapsed().as_secs_f64()
    );
    println!("faults: {faults:?}");
    println!("captured (minor units): {captured:?}; refunded: {refunded:?}");
    println!("emails sent again by the same outbox row after a kill: {resends}");
    if !failed.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
