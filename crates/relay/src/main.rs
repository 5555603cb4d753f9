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
use coachdesk_relay::tenant::{TenantId, TenantName};
use coachdesk_relay::token::{self, TokenMode, TokenName};
use coachdesk_relay::{server, writer};

const USAGE: &str = "usage:
  coachdesk-relay serve [--config FILE]
  coachdesk-relay token create --name NAME --mode test|live [--tenant TENANT] [--config FILE]
  coachdesk-relay token list [--tenant TENANT] [--config FILE]
  coachdesk-relay token revoke NAME [--tenant TENANT] [--config FILE]
  coachdesk-relay tenant create TENANT --mode test|live [--name NAME] [--config FILE]
  coachdesk-relay tenant list [--config FILE]
  coachdesk-relay tenant remove TENANT [--config FILE]

Each app install gets its own token: `token create` prints it once (only its hash is
stored); the app's mode decides which Stripe events it is served. `token revoke` takes
effect at once, without a restart. NAME is 1 to 64 of A-Z a-z 0-9 . _ -

A relay serves its own coach at /hooks/..., /v1/... and /pay/...; a hosted relay adds a
tenant per coach (`tenant create`, which prints the tenant's URLs and its first token,
named NAME, default \"app\"), served under /t/TENANT/ with the same paths. Without
--tenant, the token commands are the relay's own coach's. TENANT is 1 to 63 of a-z 0-9 -
(not first or last). `tenant remove` deletes the tenant with all it owns.

Settings come from the TOML file, each overridable by the environment:
  COACHDESK_RELAY_LISTEN (default 127.0.0.1:8787), COACHDESK_RELAY_DB (SQLite file),
  COACHDESK_RELAY_DATABASE_URL (PostgreSQL instead of the file),
  COACHDESK_RELAY_INDEX_KEY (event keys are stored hashed with it; required with
  PostgreSQL; on SQLite a key file beside the database when unset),
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
    TokenCreate {
        tenant: Option<TenantName>,
        name: TokenName,
        mode: TokenMode,
    },
    TokenList {
        tenant: Option<TenantName>,
    },
    TokenRevoke {
        tenant: Option<TenantName>,
        name: String,
    },
    TenantCreate {
        tenant: TenantName,
        name: TokenName,
        mode: TokenMode,
    },
    TenantList,
    TenantRemove {
        tenant: TenantName,
    },
}

fn tenant_name(name: &str) -> Result<TenantName> {
    TenantName::parse(name).with_context(|| {
        format!("the tenant name {name:?} must be 1 to 63 of a-z 0-9 - (not first or last)")
    })
}

fn token_name(name: &str) -> Result<TokenName> {
    TokenName::parse(name)
        .with_context(|| format!("the token name {name:?} must be 1 to 64 of A-Z a-z 0-9 . _ -"))
}

fn token_mode(mode: Option<String>, command: &str) -> Result<TokenMode> {
    let mode = mode.with_context(|| {
        format!("`{command}` needs --mode test or --mode live (the app's Stripe mode)\n\n{USAGE}")
    })?;
    TokenMode::from_cli(&mode).with_context(|| format!("--mode must be test or live, not {mode:?}"))
}

/// The command and the config file, from the arguments after the program name.
fn parse(args: &[String]) -> Result<(Command, Option<PathBuf>)> {
    let mut config = None;
    let mut name = None;
    let mut mode = None;
    let mut tenant = None;
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
            "--tenant" => tenant = Some(value("--tenant")?),
            flag if flag.starts_with("--") => bail!("unknown option {flag}\n\n{USAGE}"),
            word => words.push(word),
        }
    }
    let flags_only_for_create = |command| {
        if name.is_some() || mode.is_some() {
            bail!("--name and --mode belong to `token create` and `tenant create`\n\n{USAGE}");
        }
        Ok(command)
    };
    let tenant = tenant.as_deref().map(tenant_name).transpose()?;
    let no_tenant = |command| {
        if tenant.is_some() {
            bail!("--tenant belongs to the token commands\n\n{USAGE}");
        }
        Ok(command)
    };
    let command = match words.as_slice() {
        ["serve"] => no_tenant(flags_only_for_create(Command::Serve)?)?,
        ["token", "list"] => flags_only_for_create(Command::TokenList {
            tenant: tenant.clone(),
        })?,
        ["token", "revoke", n] => flags_only_for_create(Command::TokenRevoke {
            tenant: tenant.clone(),
            name: (*n).to_owned(),
        })?,
        ["token", "create"] => {
            let name = name.with_context(|| {
                format!("`token create` needs --name NAME (one token per app install)\n\n{USAGE}")
            })?;
            Command::TokenCreate {
                tenant: tenant.clone(),
                name: token_name(&name)?,
                mode: token_mode(mode, "token create")?,
            }
        }
        ["tenant", "create", t] => no_tenant(Command::TenantCreate {
            tenant: tenant_name(t)?,
            name: token_name(name.as_deref().unwrap_or("app"))?,
            mode: token_mode(mode, "tenant create")?,
        })?,
        ["tenant", "list"] => no_tenant(flags_only_for_create(Command::TenantList)?)?,
        ["tenant", "remove", t] => no_tenant(flags_only_for_create(Command::TenantRemove {
            tenant: tenant_name(t)?,
        })?)?,
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
        Command::TokenCreate { tenant, name, mode } => {
            let backend = backend(&settings)?;
            let tenant = find_tenant(&*backend, tenant.as_ref())?;
            create_token(&*backend, tenant, &name, mode)
        }
        Command::TokenList { tenant } => {
            let backend = backend(&settings)?;
            let tenant = find_tenant(&*backend, tenant.as_ref())?;
            list_tokens(&*backend, tenant)
        }
        Command::TokenRevoke { tenant, name } => {
            let backend = backend(&settings)?;
            let tenant = find_tenant(&*backend, tenant.as_ref())?;
            revoke_token(&*backend, tenant, &name)
        }
        Command::TenantCreate { tenant, name, mode } => {
            create_tenant(&settings, &tenant, &name, mode)
        }
        Command::TenantList => list_tenants(&settings),
        Command::TenantRemove { tenant } => remove_tenant(&settings, &tenant),
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

/// The tenant `--tenant` names (the relay's own coach without it).
fn find_tenant(backend: &dyn Backend, name: Option<&TenantName>) -> Result<TenantId> {
    let Some(name) = name else {
        return Ok(TenantId::HOME);
    };
    backend
        .reader()
        .and_then(|r| r.tenant(name))
        .context("looking up the tenant")?
        .with_context(|| {
            format!(
                "no tenant is named {:?} (see `coachdesk-relay tenant list`)",
                name.as_str()
            )
        })
}

fn create_token(
    backend: &dyn Backend,
    tenant: TenantId,
    name: &TokenName,
    mode: TokenMode,
) -> Result<()> {
    let token = token::generate();
    backend
        .create_consumer(tenant, name, mode, &token::hash(&token), writer::now_ms())
        .context("storing the token")?;
    println!("{token}");
    eprintln!(
        "Token {:?} ({} mode) is shown once; only its hash is stored. Give it to that Coachdesk app.",
        name.as_str(),
        mode.as_str()
    );
    Ok(())
}

fn list_tokens(backend: &dyn Backend, tenant: TenantId) -> Result<()> {
    let consumers = backend
        .reader()
        .and_then(|r| r.consumers(tenant))
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

fn revoke_token(backend: &dyn Backend, tenant: TenantId, name: &str) -> Result<()> {
    if backend
        .revoke_consumer(tenant, name, writer::now_ms())
        .context("revoking the token")?
    {
        eprintln!("Token {name:?} is revoked: the relay refuses it from now on.");
        Ok(())
    } else {
        bail!("no token is named {name:?} (see `coachdesk-relay token list`)")
    }
}

/// The tenant's base URL: under `public_url` when the operator set it.
fn tenant_base(settings: &Settings, tenant: &TenantName) -> String {
    let base = settings
        .public_url
        .as_deref()
        .map_or("https://RELAY-HOST", |u| u.trim_end_matches('/'));
    format!("{base}/t/{}", tenant.as_str())
}

/// `tenant create`: the tenant and its first token, then what the coach's app needs.
fn create_tenant(
    settings: &Settings,
    tenant: &TenantName,
    name: &TokenName,
    mode: TokenMode,
) -> Result<()> {
    let backend = backend(settings)?;
    let made = backend
        .create_tenant(tenant, writer::now_ms())
        .context("storing the tenant")?;
    let token = token::generate();
    backend
        .create_consumer(made.id, name, mode, &token::hash(&token), writer::now_ms())
        .context("storing the tenant's first token")?;
    let base = tenant_base(settings, tenant);
    println!("relay URL       {base}");
    println!("token           {token}");
    println!("Stripe webhook  {base}/hooks/stripe");
    println!("Calendly hook   {base}/hooks/calendly");
    println!("payment page    {base}/pay/SLUG");
    eprintln!(
        "Tenant {:?} is ready. In its Coachdesk app, enter the relay URL and the token \
         ({} mode, {:?}, shown once); the app registers the webhooks and hands over their \
         signing secrets itself.",
        tenant.as_str(),
        mode.as_str(),
        name.as_str()
    );
    Ok(())
}

fn list_tenants(settings: &Settings) -> Result<()> {
    let tenants = backend(settings)?
        .reader()
        .and_then(|r| r.tenants())
        .context("listing the tenants")?;
    println!("{:<32} {:<24} URL", "TENANT", "CREATED");
    for t in tenants {
        println!(
            "{:<32} {:<24} {}",
            t.name.as_str(),
            store::rfc3339_ms(t.created_at_ms),
            tenant_base(settings, &t.name)
        );
    }
    Ok(())
}

fn remove_tenant(settings: &Settings, tenant: &TenantName) -> Result<()> {
    if backend(settings)?
        .remove_tenant(tenant)
        .context("removing the tenant")?
    {
        eprintln!(
            "Tenant {:?} is removed with its events, tokens, keys and payment links.",
            tenant.as_str()
        );
        Ok(())
    } else {
        bail!(
            "no tenant is named {:?} (see `coachdesk-relay tenant list`)",
            tenant.as_str()
        )
    }
}
