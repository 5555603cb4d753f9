//! The `coachdesk-relay` command: `serve` and the `token` commands.
//!
//! Argument parsing and process concerns (signals, exit codes, stdout) live here; the
//! relay itself is the library. Operators script this interface, so it is kept stable.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use coachdesk_relay::config::Settings;
use coachdesk_relay::store::{self, Backend};
use coachdesk_relay::token::{self, TokenMode, TokenName};
use coachdesk_relay::{server, writer};

const USAGE: &str = "usage:
  coachdesk-relay serve [--config FILE]
  coachdesk-relay token create --name NAME --mode test|live [--config FILE]
  coachdesk-relay token list [--config FILE]
  coachdesk-relay token revoke NAME [--config FILE]

Each app install gets its own token: `token create` prints it once (only its hash is
stored); the app's mode decides which Stripe events it is served. `token revoke` takes
effect at once, without a restart. NAME is 1 to 64 of A-Z a-z 0-9 . _ -

Settings come from the TOML file, each overridable by the environment:
  COACHDESK_RELAY_LISTEN (default 127.0.0.1:8787), COACHDESK_RELAY_DB (SQLite file),
  COACHDESK_RELAY_DATABASE_URL (PostgreSQL instead of the file),
  COACHDESK_RELAY_DATABASE_CONNECTIONS,
  COACHDESK_RELAY_STRIPE_SECRETS, COACHDESK_RELAY_CALENDLY_KEYS (comma-separated),
  COACHDESK_RELAY_RETENTION_DAYS, COACHDESK_RELAY_DURABILITY (full|normal),
  COACHDESK_RELAY_WORKERS, COACHDESK_RELAY_READ_TIMEOUT_SECS,
  COACHDESK_RELAY_PAYMENT_LINK_HOSTS (comma-separated),
  COACHDESK_RELAY_CALENDLY_KEY_HANDOVER (true|false),
  COACHDESK_RELAY_STRIPE_SECRET_HANDOVER (true|false),
  COACHDESK_RELAY_UNACKED_RETENTION_DAYS. See docs/relay.md.";

/// A parsed command line.
enum Command {
    Serve,
    TokenCreate { name: TokenName, mode: TokenMode },
    TokenList,
    TokenRevoke { name: String },
}

/// The command and the config file, from the arguments after the program name.
fn parse(args: &[String]) -> Result<(Command, Option<PathBuf>)> {
    let mut config = None;
    let mut name = None;
    let mut mode = None;
    let mut words = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let mut value = |flag: &str| {
            rest.next()
                .cloned()
                .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))
        };
        match arg.as_str() {
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            "--name" => name = Some(value("--name")?),
            "--mode" => mode = Some(value("--mode")?),
            flag if flag.starts_with("--") => bail!("unknown option {flag}\n\n{USAGE}"),
            word => words.push(word),
        }
    }
    let flags_only_for_create = |command| {
        if name.is_some() || mode.is_some() {
            bail!("--name and --mode belong to `token create`\n\n{USAGE}");
        }
        Ok(command)
    };
    let command = match words.as_slice() {
        ["serve"] => flags_only_for_create(Command::Serve)?,
        ["token", "list"] => flags_only_for_create(Command::TokenList)?,
        ["token", "revoke", n] => flags_only_for_create(Command::TokenRevoke {
            name: (*n).to_owned(),
        })?,
        ["token", "create"] => {
            let name = name.with_context(|| {
                format!("`token create` needs --name NAME (one token per app install)\n\n{USAGE}")
            })?;
            let name = TokenName::parse(&name).with_context(|| {
                format!("the token name {name:?} must be 1 to 64 of A-Z a-z 0-9 . _ -")
            })?;
            let mode = mode.with_context(|| {
                format!("`token create` needs --mode test or --mode live (the app's Stripe mode)\n\n{USAGE}")
            })?;
            let mode = TokenMode::from_cli(&mode)
                .with_context(|| format!("--mode must be test or live, not {mode:?}"))?;
            Command::TokenCreate { name, mode }
        }
        _ => bail!("{USAGE}"),
    };
    Ok((command, config))
}

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
    if matches!(
        args.first().map(String::as_str),
        Some("-h" | "--help" | "help")
    ) {
        println!("{USAGE}");
        return Ok(());
    }
    let (command, config) = parse(&args)?;
    let settings = Settings::load(config.as_deref()).context("loading the relay settings")?;

    match command {
        Command::Serve => serve(settings),
        Command::TokenCreate { name, mode } => create_token(&settings, &name, mode),
        Command::TokenList => list_tokens(&settings),
        Command::TokenRevoke { name } => revoke_token(&settings, &name),
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

fn backend(settings: &Settings) -> Result<Arc<dyn Backend>> {
    // Token changes are rare and must not vanish: always fsynced.
    store::open(settings, coachdesk_relay::config::Durability::Full).with_context(|| {
        if settings.database_url.is_some() {
            "opening the relay's PostgreSQL database (database_url)".to_owned()
        } else {
            format!("opening the relay database {}", settings.db.display())
        }
    })
}

fn create_token(settings: &Settings, name: &TokenName, mode: TokenMode) -> Result<()> {
    let token = token::generate();
    backend(settings)?
        .create_consumer(name, mode, &token::hash(&token), writer::now_ms())
        .context("storing the token")?;
    println!("{token}");
    eprintln!(
        "Token {:?} ({} mode) is shown once; only its hash is stored. Give it to that Coachdesk app.",
        name.as_str(),
        mode.as_str()
    );
    Ok(())
}

fn list_tokens(settings: &Settings) -> Result<()> {
    let consumers = backend(settings)?
        .reader()
        .and_then(|r| r.consumers())
        .context("listing the tokens")?;
    println!(
        "{:<24} {:<5} {:<24} {:<24} CURSOR",
        "NAME", "MODE", "CREATED", "LAST USED"
    );
    for c in consumers {
        println!(
            "{:<24} {:<5} {:<24} {:<24} {}",
            c.name,
            c.mode.as_str(),
            store::rfc3339_ms(c.created_at_ms),
            c.last_used_at_ms
                .map_or_else(|| "never".to_owned(), store::rfc3339_ms),
            c.acked_through
        );
    }
    Ok(())
}

fn revoke_token(settings: &Settings, name: &str) -> Result<()> {
    if backend(settings)?
        .revoke_consumer(name, writer::now_ms())
        .context("revoking the token")?
    {
        eprintln!("Token {name:?} is revoked: the relay refuses it from now on.");
        Ok(())
    } else {
        bail!("no token is named {name:?} (see `coachdesk-relay token list`)")
    }
}
