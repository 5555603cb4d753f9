//! The keychain backend a process picks, and that a secret saved by one process is read by
//! the next: each step runs in a child process (this test binary started again on one test
//! with `COACHDESK_KEYCHAIN_STEP` set), since the backend is chosen once per process.
//!
//! - The Secret Service test starts private D-Bus sessions with a real, unlocked
//!   `gnome-keyring-daemon` (`dbus-run-session`, both installed by `scripts/setup`).
//! - The fallback test needs a kernel session keyring (`keyctl session - cargo test`).

use std::process::Command;

use coachdesk_sync::{Keychain, KeychainBackend, Secret, SecretName, SecretSource, SecretStorage};

const STEP: &str = "COACHDESK_KEYCHAIN_STEP";
const SERVICE: &str = "COACHDESK_KEYCHAIN_TEST_SERVICE";
const VALUE: &str = "sk_test_survives_the_process";

/// Runs `test` of this binary again in a child with `step`, and returns what it printed.
fn child(test: &str, step: &str, service: &str, configure: impl FnOnce(&mut Command)) -> String {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut command = Command::new(exe);
    command
        .args([
            test,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(STEP, step)
        .env(SERVICE, service);
    configure(&mut command);
    let out = command.output().expect("the child test process starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "step {step} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// One step inside a child: prints `backend=<name>` and what it read.
fn run_step(step: &str) {
    let service = std::env::var(SERVICE).expect("the parent names the service");
    let keychain = Keychain::new(&service);
    let SecretStorage::Keychain(backend) = keychain.storage() else {
        panic!("a Keychain reports a keychain");
    };
    println!("backend={backend:?}");
    match step {
        "save" => keychain
            .store(SecretName::StripeTestKey, &Secret::new(VALUE))
            .expect("saved"),
        "read" => {
            let value = keychain.get(SecretName::StripeTestKey).expect("read back");
            println!("value={}", value.expose());
        }
        "remove" => {
            keychain.remove(SecretName::StripeTestKey).expect("removed");
            assert!(keychain.get(SecretName::StripeTestKey).is_err());
        }
        other => panic!("unknown step {other}"),
    }
}

fn unique_service(tag: &str) -> String {
    format!("coachdesk-test-{tag}-{}", std::process::id())
}

/// Runs `test`'s `step` in a D-Bus session of its own with a real `gnome-keyring-daemon`
/// keeping its files under `home`: a new session is what the machine looks like after a
/// restart (a new daemon that only has what it wrote to disk).
fn in_keyring_session(test: &str, step: &str, service: &str, home: &std::path::Path) -> String {
    let exe = std::env::current_exe().expect("the test binary's path");
    let script = format!(
        "echo coachdesk-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null && \
         exec '{}' '{test}' --exact --include-ignored --nocapture --test-threads=1",
        exe.display()
    );
    let out = Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &script])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_RUNTIME_DIR", home)
        .env(STEP, step)
        .env(SERVICE, service)
        .output()
        .expect("dbus-run-session and gnome-keyring-daemon are installed (scripts/setup)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "step {step} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn a_secret_saved_by_one_process_is_read_by_the_next_after_the_secret_service_restarted() {
    if let Ok(step) = std::env::var(STEP) {
        return run_step(&step);
    }
    let me = "a_secret_saved_by_one_process_is_read_by_the_next_after_the_secret_service_restarted";
    let service = unique_service("ss");
    let home = tempfile::tempdir().expect("a home folder");
    let saved = in_keyring_session(me, "save", &service, home.path());
    assert!(
        saved.contains("backend=SecretService"),
        "a running Secret Service is used: {saved}"
    );
    assert!(
        home.path().join("data/keyrings/login.keyring").is_file(),
        "the secret is in the login keyring's file"
    );
    // A new bus and a new daemon: only what the keyring kept on disk is there.
    let read = in_keyring_session(me, "read", &service, home.path());
    assert!(read.contains("backend=SecretService"), "{read}");
    assert!(read.contains(&format!("value={VALUE}")), "{read}");
    in_keyring_session(me, "remove", &service, home.path());
}

#[test]
fn without_a_secret_service_the_kernel_keyring_is_the_fallback_and_forgets_at_restart() {
    if let Ok(step) = std::env::var(STEP) {
        return run_step(&step);
    }
    let me = "without_a_secret_service_the_kernel_keyring_is_the_fallback_and_forgets_at_restart";
    let service = unique_service("kernel");
    let runtime = tempfile::tempdir().expect("a runtime folder");
    let no_bus = |command: &mut Command| {
        command
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("DISPLAY")
            .env("XDG_RUNTIME_DIR", runtime.path());
    };
    let saved = child(me, "save", &service, no_bus);
    assert!(saved.contains("backend=KernelSession"), "{saved}");
    assert!(!KeychainBackend::KernelSession.survives_restart());
    let read = child(me, "read", &service, no_bus);
    assert!(read.contains(&format!("value={VALUE}")), "{read}");
    child(me, "remove", &service, no_bus);
}
