//! The .deb built by `scripts/package`: unpacked into a throwaway root (`dpkg -x`), its
//! control file declares the runtime libraries, its desktop entry names the installed
//! binary, and that binary starts under Xvfb to its window.
//!
//! Run by `scripts/test` (phase "package") under `xvfb-run` with `COACHDESK_DEB` set to the
//! package's path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn deb() -> PathBuf {
    PathBuf::from(std::env::var("COACHDESK_DEB").expect("COACHDESK_DEB names the .deb to test"))
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The desktop entry's `key=value`.
fn entry_value<'a>(entry: &'a str, key: &str) -> Option<&'a str> {
    entry
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

/// Whether a top-level window titled `title` is mapped on the X display.
fn window_shown(title: &str) -> bool {
    Command::new("xwininfo")
        .args(["-root", "-tree"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(&format!("\"{title}\"")))
}

#[test]
#[ignore = "needs the .deb from scripts/package and an X display: scripts/test runs it"]
fn the_deb_installs_into_a_fresh_root_and_its_binary_opens_the_window() {
    let deb = deb();
    let depends = run("dpkg-deb", &["-f", &deb.display().to_string(), "Depends"]);
    for lib in ["libwebkit2gtk-4.1-0", "libgtk-3-0", "libdbus-1-3"] {
        assert!(depends.contains(lib), "{lib} in Depends: {depends}");
    }
    let root = tempfile::tempdir().expect("a throwaway root");
    run(
        "dpkg",
        &[
            "-x",
            &deb.display().to_string(),
            &root.path().display().to_string(),
        ],
    );
    let entry =
        std::fs::read_to_string(root.path().join("usr/share/applications/Coachdesk.desktop"))
            .expect("the desktop entry is installed");
    assert_eq!(entry_value(&entry, "Name"), Some("Coachdesk"), "{entry}");
    let exec = entry_value(&entry, "Exec").expect("Exec in the entry");
    let icon = entry_value(&entry, "Icon").expect("Icon in the entry");
    assert!(
        root.path()
            .join(format!("usr/share/icons/hicolor/256x256/apps/{icon}.png"))
            .is_file(),
        "the entry's icon {icon} is installed"
    );
    let binary = root.path().join("usr/bin").join(exec);
    assert!(binary.is_file(), "Exec={exec} is installed in usr/bin");

    let data = tempfile::tempdir().expect("a data folder");
    let mut app = Command::new(&binary)
        .env("COACHDESK_DB", data.path().join("test.sqlite"))
        .env("COACHDESK_KEYCHAIN_SERVICE", "coachdesk-package-test")
        .env("HOME", data.path())
        .env("XDG_DATA_HOME", data.path().join("data"))
        .env("XDG_CACHE_HOME", data.path().join("cache"))
        .env("MESA_SHADER_CACHE_DIR", data.path().join("mesa"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the installed binary starts");
    let shown = coachdesk_waiting::until(
        Duration::from_secs(60),
        Duration::from_millis(50),
        || match app.try_wait() {
            Ok(Some(status)) => Err(format!(
                "the installed app exited before its window opened: {status}"
            )),
            _ => Ok(if window_shown("Coachdesk") {
                Ok(())
            } else {
                Err(())
            }),
        },
        |()| "the window titled Coachdesk did not appear within 60 s".to_owned(),
    );
    let _ = app.kill();
    let _ = app.wait();
    if let Err(why) = shown {
        panic!("{why}");
    }
    assert!(Path::new(&binary).is_file());
}
