//! The tests' one way to wait for what another thread or process does: poll a check the
//! code under test exposes (a counter, a state, a row) until it holds, and fail with what
//! was last seen once a deadline passes. Never sleep-then-assert: a wait that can only
//! end by its check passing cannot pass while the code is broken.

use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The first line a started child writes to its piped stdout (its "ready" banner), or ""
/// if none comes within `within` (it failed, or hangs). Takes the child's stdout; the rest
/// of what it writes is not read.
pub fn first_line(child: &mut std::process::Child, within: Duration) -> String {
    use std::io::BufRead as _;
    let Some(stdout) = child.stdout.take() else {
        return String::new();
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(within).unwrap_or_default()
}

/// Starts `command` with its stdout piped and waits (up to `within`) for its
/// `listening on ADDR` banner, as the relay, the simulator and the chaos core print it;
/// returns the child and `ADDR`. Fails the test, with what came instead, when the banner
/// does not come. The child's stderr is left as the command set it.
pub fn spawn_listening(
    command: &mut std::process::Command,
    within: Duration,
) -> (std::process::Child, String) {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {:?}: {e}", command.get_program()));
    let line = first_line(&mut child, within);
    match line.trim().strip_prefix("listening on ") {
        Some(addr) => (child, addr.to_owned()),
        None => {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "{:?} did not say where it listens within {within:?}: first line {line:?}, {status:?}",
                command.get_program()
            )
        }
    }
}

/// A binary of this workspace that a test runs: `$<env_var>` if set, else the one beside the
/// test's target directory (`<target>/<profile>/deps/<test>` → `<target>/<profile>/<name>`),
/// where a workspace `cargo test` builds it. Fails the test, saying how to build it, when
/// it is missing.
pub fn workspace_binary(name: &str, env_var: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join(name))
        .expect("the test runs inside a target directory");
    assert!(
        bin.exists(),
        "the {name} binary is missing at {}: build it (a workspace `cargo test` does), or set {env_var}",
        bin.display()
    );
    bin
}

/// How often a check is repeated.
const POLL: Duration = Duration::from_millis(20);

/// Polls `check` every `every` until it gives `Ok(Ok(value))`, for a harness that must
/// not panic (it collects evidence before it fails). `Ok(Err(state))` keeps waiting;
/// `Err(e)`, the check's own failure, stops at once. After `within`, the error
/// `timed_out` makes of the last state.
pub fn until<T, S, E>(
    within: Duration,
    every: Duration,
    mut check: impl FnMut() -> Result<Result<T, S>, E>,
    timed_out: impl FnOnce(S) -> E,
) -> Result<T, E> {
    let deadline = Instant::now() + within;
    loop {
        match check()? {
            Ok(value) => return Ok(value),
            Err(state) if Instant::now() >= deadline => return Err(timed_out(state)),
            Err(_) => std::thread::sleep(every),
        }
    }
}

/// [`until`] for async checks, on a tokio runtime.
pub async fn until_async<T, S, E, F, Fut>(
    within: Duration,
    every: Duration,
    mut check: F,
    timed_out: impl FnOnce(S) -> E,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Result<T, S>, E>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await? {
            Ok(value) => return Ok(value),
            Err(state) if Instant::now() >= deadline => return Err(timed_out(state)),
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// Polls `check` until it gives `Ok`, failing the test with `what` and the last state it
/// reported (`Err`) after `within`, at the caller's line.
#[track_caller]
pub fn eventually<T, S: Debug>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> Result<T, S>,
) -> T {
    let waited = until(
        within,
        POLL,
        || Ok(check()),
        |state| format!("{what}: still {state:?} after {within:?}"),
    );
    match waited {
        Ok(value) => value,
        Err(message) => panic!("{message}"),
    }
}

/// [`eventually`] for async checks, on a tokio runtime.
pub async fn eventually_async<T, S, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    S: Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, S>>,
{
    let waited = until_async(
        within,
        POLL,
        || {
            let pending = check();
            async move { Ok(pending.await) }
        },
        |state| format!("{what}: still {state:?} after {within:?}"),
    );
    waited.await.unwrap_or_else(|message| panic!("{message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_the_check_holds() {
        let mut calls = 0;
        let got = eventually("three calls", Duration::from_secs(5), || {
            calls += 1;
            if calls == 3 {
                Ok(calls)
            } else {
                Err(calls)
            }
        });
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "never: still \"no\" after")]
    fn fails_with_the_last_state_after_the_deadline() {
        eventually::<(), _>("never", Duration::from_millis(50), || Err("no"));
    }

    #[test]
    fn until_gives_the_value_the_check_s_error_or_the_timeout_s() {
        let mut calls = 0;
        let got: Result<u32, String> = until(
            Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                calls += 1;
                Ok(if calls == 2 { Ok(calls) } else { Err(calls) })
            },
            |last| format!("timed out at {last}"),
        );
        assert_eq!(got, Ok(2));
        let failed: Result<(), &str> = until(
            Duration::from_secs(5),
            Duration::from_millis(1),
            || Err("broken"),
            |()| "timed out",
        );
        assert_eq!(
            failed,
            Err("broken"),
            "a failing check stops the wait at once"
        );
        let mut seen = 0;
        let late: Result<(), String> = until(
            Duration::from_millis(30),
            Duration::from_millis(5),
            || {
                seen += 1;
                Ok(Err(seen))
            },
            |last| format!("still waiting after check {last}"),
        );
        assert_eq!(late, Err(format!("still waiting after check {seen}")));
    }

    #[tokio::test]
    async fn until_async_waits_for_an_async_check() {
        let calls = std::sync::atomic::AtomicU32::new(0);
        let got = until_async(
            Duration::from_secs(5),
            Duration::from_millis(1),
            || async {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                Ok::<_, String>(if n == 3 { Ok(n) } else { Err(n) })
            },
            |last| format!("timed out at {last}"),
        )
        .await;
        assert_eq!(got, Ok(3));
    }
}
