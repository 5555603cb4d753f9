//! `coachdesk-demo-stack ENV_FILE [LOG_DIR]`: the demo's world for `scripts/run-demo`.
//! Starts the relay and the simulator (see `coachdesk_tests::stack`), writes the app's
//! environment to ENV_FILE (`KEY=VALUE` lines, written last so it appears complete), then
//! plays clients: every ~20 s someone books a session and pays a few seconds later; now and
//! then a client reschedules or cancels. Stop it by killing its process group.

use std::time::Duration;

use anyhow::Context as _;
use coachdesk_tests::stack::Stack;

const NAMES: [&str; 8] = [
    "Avery Brooks",
    "Noor Haddad",
    "Luca Romano",
    "Mia Tanaka",
    "Jonas Berg",
    "Ines Duarte",
    "Theo Martin",
    "Zoe Kim",
];

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let env_file = args
        .next()
        .context("usage: coachdesk-demo-stack ENV_FILE [LOG_DIR]")?;
    let logs = args.next().map(std::path::PathBuf::from);
    let stack = Stack::start(logs.as_deref())?;
    let env: String = stack
        .app_env()
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    let partial = format!("{env_file}.partial");
    std::fs::write(&partial, env).with_context(|| format!("cannot write {partial}"))?;
    std::fs::rename(&partial, &env_file).with_context(|| format!("cannot write {env_file}"))?;
    println!(
        "demo stack: relay {} simulator {}",
        stack.relay_url, stack.sim_url
    );

    // Give the app a moment to open before the first client arrives.
    std::thread::sleep(Duration::from_secs(8));
    let mut round = 0_usize;
    let mut paid = Vec::new();
    loop {
        let name = NAMES[round % NAMES.len()];
        let email = format!(
            "{}.{round}@example.com",
            name.split(' ').next().unwrap_or("client").to_lowercase()
        );
        let slug = if round % 3 == 2 {
            "intro-30"
        } else {
            "coaching-60"
        };
        match play(&stack, slug, name, &email) {
            Ok(booking) => paid.push((slug, booking)),
            Err(err) => eprintln!("demo client {name}: {err:#}"),
        }
        // Every fourth round an earlier client moves or cancels their session.
        if round % 4 == 3 {
            if let Some((_, earlier)) = paid.first().cloned() {
                paid.remove(0);
                let result = if round % 8 == 3 {
                    stack
                        .client
                        .reschedule(&earlier.invitee_uri, false)
                        .map(drop)
                } else {
                    stack
                        .client
                        .cancel_as_invitee(&earlier.invitee_uri, "Something came up")
                        .map(drop)
                };
                if let Err(err) = result {
                    eprintln!("demo client change: {err}");
                }
            }
        }
        round += 1;
        std::thread::sleep(Duration::from_secs(20));
    }
}

/// One client books, then pays a few seconds later.
fn play(
    stack: &Stack,
    slug: &str,
    name: &str,
    email: &str,
) -> anyhow::Result<coachdesk_tests::stack::SimBooking> {
    let booking = stack.book(slug, name, email, None)?;
    std::thread::sleep(Duration::from_secs(5));
    stack.pay(slug, &booking)?;
    Ok(booking)
}
