//! The `coachdesk-relay` command: `serve` and `token create`.
//!
//! Argument parsing and process concerns (signals, exit codes, stdout) live here; the
//! relay itself is the library. Operators script this interface, so it is kept fixed.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use coachdesk_relay::config::Settings;
use coachdesk_relay::{server, store, token, writer};

const USAGE: &str = "usage:
  coachdesk-relay serve [--config FILE]
  coachdesk-relay token create [--config FILE]

Settings come from the TOML file, each overridable by the environment:
  COACHDESK_RELAY_LISTEN (default 127.0.0.1:8787), COACHDESK_RELAY_DB,
  COACHDESK_RELAY_STRIPE_SECRETS, COACHDESK_RELAY_CALENDLY_KEYS (comma-separated),
  COACHDESK_RELAY_RETENTION_DAYS, COACHDESK_RELAY_DURABILITY (full|normal),
  COACHDESK_RELAY_WORKERS, COACHDESK_RELAY_READ_TIMEOUT_SECS. See docs/relay.md.";

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COACHDESK_RELAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.first().map(String::as_str) {
        Some("serve") => ("serve", &args[1..]),
        Some("token") if args.get(1).map(String::as_str) == Some("create") => {
            ("token create", &args[2..])
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            return Ok(());
        }
        _ => bail!("{USAGE}"),
    };
    let config = match rest {
        [] => None,
        [flag, file] if flag == "--config" => Some(PathBuf::from(file)),
        _ => bail!("{USAGE}"),
    };
    let settings = Settings::load(config.as_deref()).context("loading the relay settings")?;

    match command {
        "serve" => serve(settings),
        _ => create_token(&settings),
    }
}

fn serve(settings: Settings) -> Result<()> {
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, shutdown.clone())
            .context("installing the signal handler")?;
    }
    server::serve(settings, shutdown, |addr| {
        // Tests and scripts read the bound address from this line (port 0 is allowed).
        println!("listening on {addr}");
    })
    .context("running the relay")
}

fn create_token(settings: &Settings) -> Result<()> {
    // A new token is rare and must not vanish: always fsynced.
    let conn = store::open(&settings.db, coachdesk_relay::config::Durability::Full)
        .with_context(|| format!("opening the relay database {}", settings.db.display()))?;
    let token = token::generate();
    store::add_token(&conn, &token::hash(&token), writer::now_ms())
        .context("storing the token hash")?;
    println!("{token}");
    eprintln!("This token is shown once; only its hash is stored. Give it to the Coachdesk app.");
    Ok(())
}
