//! A private PostgreSQL server for the relay's tests and bench: started once per test
//! binary in a temporary directory (port on loopback, unix socket in the directory), one
//! fresh database per test.
//!
//! PostgreSQL refuses to run as root, so under root the server runs as the `postgres`
//! user. It is stopped, and its directory removed, when the test binary exits: a small
//! shell holds the server and waits on a pipe from this process, which the kernel closes
//! at exit whatever way the binary ends.
//!
//! If the server cannot be started, the PostgreSQL variants fail with the reason, unless
//! `COACHDESK_TEST_POSTGRES=skip` (and `scripts/test` sets `required`, so a run of the
//! suite never leaves them out).
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// A running private server.
pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    /// Holds the pipe the server's keeper waits on; never waited for.
    _keeper: Mutex<Child>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT_DB: AtomicU64 = AtomicU64::new(0);

/// The directory holding `initdb` and `postgres`: `COACHDESK_TEST_PG_BIN`, else Debian's
/// newest `/usr/lib/postgresql/*/bin`, else `PATH`.
fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("COACHDESK_TEST_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    debian.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(newest) = debian.pop() {
        return Ok(newest);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
        .ok_or_else(|| {
            "no PostgreSQL binaries (initdb, postgres) in /usr/lib/postgresql/*/bin or PATH"
                .to_owned()
        })
}

/// The `postgres` user's uid and gid when running as root (PostgreSQL refuses root).
fn run_as() -> Result<Option<(u32, u32)>, String> {
    let id = |flag: &str, user: Option<&str>| -> Result<u32, String> {
        let out = Command::new("id")
            .arg(flag)
            .args(user)
            .output()
            .map_err(|e| format!("cannot run id: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| format!("id {flag} {user:?} failed: {out:?}"))
    };
    if id("-u", None)? != 0 {
        return Ok(None);
    }
    Ok(Some((
        id("-u", Some("postgres"))
            .map_err(|e| format!("running as root needs a postgres user: {e}"))?,
        id("-g", Some("postgres"))?,
    )))
}

fn as_user(mut cmd: Command, user: Option<(u32, u32)>) -> Command {
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Settings for a throwaway server; `durable` keeps fsync on (for the bench).
fn start(durable: bool) -> Result<Server, String> {
    let bin = bin_dir()?;
    let user = run_as()?;
    // Under root the server runs as `postgres`, which must reach the directory: /tmp,
    // not a TMPDIR that may be private to root.
    let parent = match user {
        Some(_) => PathBuf::from("/tmp"),
        None => std::env::temp_dir(),
    };
    // Removed on the way out of a failed start; once the server runs, its keeper removes it.
    let temp = tempfile::Builder::new()
        .prefix("coachdesk-pg-")
        .tempdir_in(parent)
        .map_err(|e| format!("temp dir: {e}"))?;
    let dir = temp.path().to_owned();
    if let Some((uid, gid)) = user {
        let ok = Command::new("chown")
            .arg(format!("{uid}:{gid}"))
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("cannot chown {} to postgres", dir.display()));
        }
    }
    let data = dir.join("data");
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
        .stdin(Stdio::null());
    let out = as_user(initdb, user)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.join("initdb").display()))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = free_port()?;
    let mut settings = vec![
        "listen_addresses=127.0.0.1".to_owned(),
        "max_connections=400".to_owned(),
        "shared_buffers=64MB".to_owned(),
    ];
    if !durable {
        // Tests kill relays, never the server: its own crash safety is not under test.
        settings.extend(["fsync=off".to_owned(), "full_page_writes=off".to_owned()]);
    }
    let mut postgres = format!(
        "'{}' -D '{}' -p {port} -k '{}'",
        bin.join("postgres").display(),
        data.display(),
        dir.display()
    );
    for s in &settings {
        postgres.push_str(&format!(" -c {s}"));
    }
    // The keeper: runs the server, waits for the pipe from this process to close (at our
    // exit), then stops the server (fast shutdown) and removes the directory.
    let script = format!(
        "{postgres} 2>'{log}' & pid=$!; cat >/dev/null; kill -INT $pid; wait $pid; rm -rf '{dir}'",
        log = dir.join("log").display(),
        dir = dir.display()
    );
    let mut sh = Command::new("sh");
    sh.args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let keeper = as_user(sh, user)
        .spawn()
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    let _ = temp.keep();
    let server = Server {
        port,
        dir: dir.clone(),
        _keeper: Mutex::new(keeper),
    };
    let answers = || {
        Ok(postgres::Client::connect(
            &server.admin_url(),
            postgres::NoTls,
        ))
    };
    coachdesk_waiting::until(
        Duration::from_secs(60),
        Duration::from_millis(50),
        answers,
        |e| {
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            format!("the server did not answer: {e}\n{log}")
        },
    )?;
    Ok(server)
}

impl Server {
    /// A new server of its own (the bench's, with fsync on).
    pub fn start_durable() -> Result<Server, String> {
        start(true)
    }

    fn admin_url(&self) -> String {
        self.url("postgres")
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// A new empty database; its URL.
    pub fn create_database(&self) -> String {
        let name = format!(
            "relay_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin =
            postgres::Client::connect(&self.admin_url(), postgres::NoTls).expect("admin connect");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        self.url(&name)
    }

    /// Where the server's files are.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }
}

/// Whether PostgreSQL variants may be left out when no server can be started.
fn may_skip() -> bool {
    std::env::var("COACHDESK_TEST_POSTGRES").is_ok_and(|v| v == "skip")
}

/// This test binary's server, started on first use. Fails the test if it cannot start,
/// unless `COACHDESK_TEST_POSTGRES=skip` (then `None`, said on stderr).
pub fn server() -> Option<&'static Server> {
    match SERVER.get_or_init(|| start(false)) {
        Ok(s) => Some(s),
        Err(why) if may_skip() => {
            eprintln!("PostgreSQL variant skipped (COACHDESK_TEST_POSTGRES=skip): {why}");
            None
        }
        Err(why) => panic!(
            "the PostgreSQL variant of this test needs a private PostgreSQL server, which could \
             not be started: {why}\nInstall PostgreSQL with scripts/setup (Debian package \
             postgresql), or set COACHDESK_TEST_POSTGRES=skip to leave these variants out \
             of a local run."
        ),
    }
}

/// A fresh database on this binary's server: its URL (`None` only when skipping).
pub fn fresh_database() -> Option<String> {
    server().map(Server::create_database)
}
