//! `coachdesk-sim serve`: run the provider simulator as a process (demo mode, tests in
//! other languages, manual poking). Prints `listening on 127.0.0.1:PORT` once ready.

use anyhow::{bail, Context, Result};
use coachdesk_sim::{SimConfig, Simulator, WebhookTarget};

const USAGE: &str =
    "usage: coachdesk-sim serve [--listen ADDR] [--public-url URL] [--stripe-key KEY]
    [--calendly-token TOKEN] [--stripe-webhook URL --stripe-secret WHSEC]
    [--calendly-webhook URL --calendly-secret KEY] [--seed N] [--config FILE.json]";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("serve") => {}
        Some("--help" | "-h") | None => {
            println!("{USAGE}");
            return Ok(());
        }
        Some(other) => bail!("unknown command {other:?}\n{USAGE}"),
    }
    let mut config = SimConfig::default();
    let mut stripe_hook = (None, None);
    let mut calendly_hook = (None, None);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--config" => {
                let path = value()?;
                let text =
                    std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
                config = serde_json::from_str(&text)
                    .with_context(|| format!("{path} is not a valid simulator config"))?;
            }
            "--listen" => config.listen = value()?,
            "--public-url" => config.public_url = Some(value()?),
            "--stripe-key" => config.stripe_api_key = Some(value()?),
            "--calendly-token" => config.calendly_token = value()?,
            "--stripe-webhook" => stripe_hook.0 = Some(value()?),
            "--stripe-secret" => stripe_hook.1 = Some(value()?),
            "--calendly-webhook" => calendly_hook.0 = Some(value()?),
            "--calendly-secret" => calendly_hook.1 = Some(value()?),
            "--seed" => {
                config.delivery.seed = Some(value()?.parse().context("--seed takes an integer")?)
            }
            other => bail!("unknown flag {other:?}\n{USAGE}"),
        }
    }
    for (slot, (url, secret), name) in [
        (&mut config.stripe_webhook, stripe_hook, "stripe"),
        (&mut config.calendly_webhook, calendly_hook, "calendly"),
    ] {
        match (url, secret) {
            (Some(url), Some(secret)) => *slot = Some(WebhookTarget { url, secret }),
            (None, None) => {}
            _ => bail!("--{name}-webhook and --{name}-secret go together"),
        }
    }
    let sim = Simulator::start(config).context("starting the simulator")?;
    let addr = sim.base_url().trim_start_matches("http://").to_string();
    println!("listening on {addr}");
    sim.wait();
    Ok(())
}
