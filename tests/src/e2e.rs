//! The end-to-end harness: the real `coachdesk` binary, driven through `tauri-driver`
//! (which starts `WebKitWebDriver`), on the display named by `DISPLAY` (Xvfb in CI).
//!
//! Environment variables set on `tauri-driver` reach the app, which is how each test gets
//! its own database (`COACHDESK_DB`) and its own HOME/XDG folders.

use std::ffi::OsStr;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use fantoccini_loopback::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

/// How long one WebDriver call may take before the test fails instead of hanging.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where screenshots and driver logs go: `COACHDESK_E2E_ARTIFACTS`, else `<root>/target/e2e-artifacts`.
pub fn artifacts_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("COACHDESK_E2E_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("e2e-artifacts"));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the artifacts folder {}", dir.display()))?;
    Ok(dir)
}

/// Cargo's target folder: `CARGO_TARGET_DIR`, else `<root>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The built app: `COACHDESK_APP_BIN`, else `<target dir>/debug/coachdesk`.
pub fn app_binary() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("COACHDESK_APP_BIN") {
        Some(path) => PathBuf::from(path),
        None => target_dir().join("debug").join("coachdesk"),
    };
    if !path.is_file() {
        bail!(
            "the app binary {} does not exist; build it with `./scripts/build-ui && cargo build -p coachdesk-app` \
             (or set COACHDESK_APP_BIN)",
            path.display()
        );
    }
    Ok(path)
}

/// Finds `name` on PATH (and in `~/.cargo/bin`, where `cargo install` puts tauri-driver).
pub fn require_tool(name: &str, how_to_get: &str) -> anyhow::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo").join("bin"));
    }
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!("`{name}` is not installed: {how_to_get} (./scripts/setup does it)")
        })
}

/// A port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// A running `tauri-driver`; killed when dropped so a failing test leaves no window behind.
pub struct TauriDriver {
    child: Child,
    port: u16,
}

impl TauriDriver {
    /// Starts `tauri-driver` with `envs` added to its environment (they reach the app) and
    /// waits until it accepts connections. Its output goes to `log`.
    pub fn start(envs: &[(&str, &OsStr)], log: &Path) -> anyhow::Result<TauriDriver> {
        let driver = require_tool(
            "tauri-driver",
            "run `cargo install tauri-driver --version ^2 --locked`",
        )?;
        let native = require_tool(
            "WebKitWebDriver",
            "install the Debian package webkit2gtk-driver",
        )?;
        if std::env::var_os("DISPLAY").is_none() {
            bail!(
                "DISPLAY is not set: run the e2e tests under `xvfb-run -a` (./scripts/test does)"
            );
        }
        let port = free_port()?;
        let native_port = free_port()?;
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("cannot create the driver log {}", log.display()))?;
        let mut command = Command::new(&driver);
        command
            .arg("--port")
            .arg(port.to_string())
            .arg("--native-port")
            .arg(native_port.to_string())
            .arg("--native-driver")
            .arg(&native)
            .env("NO_AT_BRIDGE", "1")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file);
        for (key, value) in envs {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", driver.display()))?;
        let mut running = TauriDriver { child, port };
        let listening = || {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Ok(()));
            }
            match running.child.try_wait()? {
                Some(status) => bail!(
                    "tauri-driver exited with {status} before listening; see {}",
                    log.display()
                ),
                None => Ok(Err(())),
            }
        };
        coachdesk_waiting::until(
            Duration::from_secs(20),
            Duration::from_millis(100),
            listening,
            |()| {
                anyhow!(
                    "tauri-driver did not listen on port {port} within 20 s; see {}",
                    log.display()
                )
            },
        )?;
        Ok(running)
    }

    /// Opens a WebDriver session, which launches a fresh instance of `app`.
    pub async fn launch(&self, app: &Path) -> anyhow::Result<Client> {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), "wry".into());
        capabilities.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app.display().to_string() }),
        );
        let url = format!("http://127.0.0.1:{}", self.port);
        // tauri-driver listens before WebKitWebDriver behind it does: a session asked for in
        // that gap fails at once ("did not respond"). Ask again for a few seconds.
        let mut attempt = 0;
        loop {
            let mut builder = ClientBuilder::new(HttpConnector::new());
            builder.capabilities(capabilities.clone());
            let started = Instant::now();
            // Starting WebKit the first time on a cold machine is slow: allow two steps.
            let result = step_within(
                STEP_TIMEOUT * 2,
                "start the app through tauri-driver",
                builder.connect(&url),
            )
            .await;
            attempt += 1;
            match result {
                Err(_) if attempt < 10 && started.elapsed() < Duration::from_secs(2) => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => return other,
            }
        }
    }
}

impl Drop for TauriDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private world for one test: its own database path and HOME/XDG folders, deleted
/// when dropped, so tests never see each other's data or the developer's.
pub struct Sandbox {
    dir: tempfile::TempDir,
    /// Where the app keeps its database (`COACHDESK_DB`).
    pub db: PathBuf,
}

impl Sandbox {
    pub fn new() -> anyhow::Result<Sandbox> {
        let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
        for sub in ["home", "cache", "data", "config"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        let db = dir.path().join("coachdesk.sqlite");
        Ok(Sandbox { dir, db })
    }

    /// A folder inside the sandbox (`home`, `cache`, `data`, `config`).
    pub fn folder(&self, sub: &str) -> PathBuf {
        self.dir.path().join(sub)
    }

    /// Starts tauri-driver for an app that talks to `stack`'s simulator as Stripe and
    /// Calendly, with secrets in a keychain service of its own (`coachdesk-e2e-{name}-{pid}`):
    /// the app a coach connects by hand. The driver's log is `tauri-driver-{name}.log`.
    pub fn start_driver_on(
        &self,
        stack: &crate::stack::Stack,
        name: &str,
    ) -> anyhow::Result<TauriDriver> {
        let service = format!("coachdesk-e2e-{name}-{}", std::process::id());
        let stripe_base = format!("{}/", stack.sim_url);
        let env = [
            ("COACHDESK_STRIPE_API_BASE", stripe_base.as_str()),
            ("COACHDESK_CALENDLY_API_BASE", stack.sim_url.as_str()),
            ("COACHDESK_KEYCHAIN_SERVICE", service.as_str()),
        ];
        self.start_driver(&env, &format!("tauri-driver-{name}"))
    }

    /// Starts tauri-driver so every app it launches uses this sandbox, plus `extra` variables.
    /// The driver's log goes to `<artifacts>/<log_name>.log`.
    pub fn start_driver(
        &self,
        extra: &[(&str, &str)],
        log_name: &str,
    ) -> anyhow::Result<TauriDriver> {
        let path = |sub: &str| self.dir.path().join(sub).into_os_string();
        let mut envs = vec![
            ("COACHDESK_DB", self.db.clone().into_os_string()),
            ("HOME", path("home")),
            ("XDG_CACHE_HOME", path("cache")),
            ("XDG_DATA_HOME", path("data")),
            ("XDG_CONFIG_HOME", path("config")),
            ("MESA_SHADER_CACHE_DIR", path("cache")),
            // WebKit's threaded compositor on Mesa's software GL (all there is under Xvfb)
            // now and then dies in swrast_dri.so ("session deleted because of page crash
            // or hang"); without compositing the page is drawn without GL.
            ("WEBKIT_DISABLE_COMPOSITING_MODE", "1".into()),
        ];
        envs.extend(extra.iter().map(|(k, v)| (*k, v.into())));
        let envs: Vec<(&str, &OsStr)> = envs.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
        TauriDriver::start(&envs, &artifacts_dir()?.join(format!("{log_name}.log")))
    }
}

/// Runs one WebDriver step with [`STEP_TIMEOUT`], naming it in the error.
pub async fn step<T, E, F>(what: &str, future: F) -> anyhow::Result<T>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    step_within(STEP_TIMEOUT, what, future).await
}

/// Like [`step`], with its own limit.
pub async fn step_within<T, E, F>(limit: Duration, what: &str, future: F) -> anyhow::Result<T>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: Into<anyhow::Error>,
{
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result
            .map_err(Into::into)
            .with_context(|| format!("step failed: {what}")),
        Err(_) => bail!("step timed out after {} s: {what}", limit.as_secs()),
    }
}

/// Waits (bounded) for an element matching the CSS selector.
pub async fn wait_for(
    client: &Client,
    css: &str,
) -> anyhow::Result<fantoccini_loopback::elements::Element> {
    // WebDriver's own wait gives up first, with its clearer error; ours catches a hung call.
    step_within(
        STEP_TIMEOUT + Duration::from_secs(5),
        &format!("wait for `{css}` (up to {} s)", STEP_TIMEOUT.as_secs()),
        client
            .wait()
            .at_most(STEP_TIMEOUT)
            .every(Duration::from_millis(100))
            .for_element(Locator::Css(css)),
    )
    .await
}

/// The trimmed rendered text of every element matching `css`, read in one script so that
/// a live reload between finding and reading cannot leave a stale element behind.
pub async fn texts_of(client: &Client, css: &str) -> anyhow::Result<Vec<String>> {
    let script = "return Array.from(document.querySelectorAll(arguments[0]))
                      .map(e => (e.innerText || e.textContent || '').trim());";
    let found = step(
        &format!("read the texts of `{css}`"),
        client.execute(script, vec![serde_json::Value::from(css)]),
    )
    .await?;
    serde_json::from_value(found).with_context(|| format!("the texts of `{css}`"))
}

/// Waits up to `limit` until the texts of the elements matching `css` satisfy `done`;
/// returns them. The error names what was seen last.
pub async fn wait_for_texts(
    client: &Client,
    css: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&[String]) -> bool,
) -> anyhow::Result<Vec<String>> {
    let read = || async {
        let texts = texts_of(client, css).await?;
        anyhow::Ok(if done(&texts) { Ok(texts) } else { Err(texts) })
    };
    coachdesk_waiting::until_async(limit, Duration::from_millis(150), read, |texts| {
        anyhow!(
            "`{css}` did not come to {what} within {} s (it reads {texts:?})",
            limit.as_secs()
        )
    })
    .await
}

/// Waits (bounded) until some element matching `css` has exactly the text `text`.
pub async fn wait_for_text(client: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    wait_for_texts(client, css, STEP_TIMEOUT, &format!("read {text:?}"), |t| {
        t.iter().any(|found| found == text)
    })
    .await
    .map(drop)
}

/// Clicks the first element matching `css` whose trimmed text is `text`, found and
/// clicked in one script (no stale element between the two).
pub async fn click_where_text(client: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    let script = "const hit = Array.from(document.querySelectorAll(arguments[0]))
                      .find(e => (e.innerText || e.textContent || '').trim() === arguments[1]);
                  if (!hit) { return false; }
                  hit.scrollIntoView({block: 'center'});
                  hit.click();
                  return true;";
    let args = vec![serde_json::Value::from(css), serde_json::Value::from(text)];
    let clicked = step(
        &format!("click the `{css}` reading {text:?}"),
        client.execute(script, args),
    )
    .await?;
    if clicked != serde_json::Value::Bool(true) {
        bail!("no `{css}` reads {text:?}");
    }
    Ok(())
}

/// Saves the whole X display (`import -window root`): WebDriver's own screenshots come
/// back blank under Xvfb with WebKitGTK. WebKit may not have painted the latest DOM yet
/// (the first frames wait for Mesa's shader compiles), so a capture with only a couple
/// of colours is retaken for a few seconds before it is kept as it is.
pub fn screenshot(name: &str) -> anyhow::Result<PathBuf> {
    let import = require_tool("import", "install the Debian package imagemagick")?;
    let identify = require_tool("identify", "install the Debian package imagemagick")?;
    let path = artifacts_dir()?.join(format!("{name}.png"));
    // The X display lags the DOM by a frame or two; let the last change reach it.
    std::thread::sleep(Duration::from_millis(800));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = Command::new(&import)
            .args(["-window", "root"])
            .arg(&path)
            .status()
            .context("cannot run imagemagick's import")?;
        if !status.success() {
            bail!(
                "import -window root {} failed with {status}",
                path.display()
            );
        }
        let colours = Command::new(&identify)
            .args(["-format", "%k"])
            .arg(&path)
            .output()
            .context("cannot run imagemagick's identify")?;
        let colours: u64 = String::from_utf8_lossy(&colours.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        if colours > 16 || Instant::now() > deadline {
            return Ok(path);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The trimmed text of the element `css` names, once it exists.
pub async fn text_of(client: &Client, css: &str) -> anyhow::Result<String> {
    let texts = wait_for_texts(client, css, STEP_TIMEOUT, "exist", |t| !t.is_empty()).await?;
    Ok(texts.into_iter().next().unwrap_or_default())
}

/// Opens the booking of `client_name` from the bookings list and waits until its page
/// shows it in `state` (as the badge reads, such as "Confirmed").
pub async fn open_booking(client: &Client, client_name: &str, state: &str) -> anyhow::Result<()> {
    click_where_text(client, "[data-testid=open-booking]", client_name).await?;
    wait_for_text(client, "#booking-detail [data-testid=booking-state]", state).await
}

/// The attribute `attribute` of the element `css` names (None when it has none), once
/// the element exists, read in one script.
pub async fn attr_of(
    client: &Client,
    css: &str,
    attribute: &str,
) -> anyhow::Result<Option<String>> {
    read_of(client, css, attribute, "e.getAttribute(arguments[1])").await
}

/// The DOM property `property` of the element `css` names (a field's `value`, say), once
/// the element exists, read in one script.
pub async fn prop_of(client: &Client, css: &str, property: &str) -> anyhow::Result<Option<String>> {
    read_of(client, css, property, "e[arguments[1]]").await
}

async fn read_of(
    client: &Client,
    css: &str,
    name: &str,
    expression: &str,
) -> anyhow::Result<Option<String>> {
    let script = format!(
        "const e = document.querySelector(arguments[0]);
         if (!e) {{ return null; }}
         const v = {expression};
         return [v === null || v === undefined ? null : String(v)];"
    );
    let read = || async {
        let args = vec![serde_json::Value::from(css), serde_json::Value::from(name)];
        let found = step(
            &format!("read `{name}` of `{css}`"),
            client.execute(&script, args),
        )
        .await?;
        anyhow::Ok(match found {
            serde_json::Value::Array(mut values) => {
                Ok(values.pop().and_then(|v| v.as_str().map(str::to_owned)))
            }
            _ => Err(()),
        })
    };
    coachdesk_waiting::until_async(STEP_TIMEOUT, Duration::from_millis(100), read, |()| {
        anyhow!("no `{css}` appeared within {} s", STEP_TIMEOUT.as_secs())
    })
    .await
}

/// Runs `act` on the element `css` names, finding it again when the window re-rendered
/// it between the find and the act (WebKit: "Node with identifier ... was not found").
async fn on_element<F, Fut>(client: &Client, css: &str, what: &str, act: F) -> anyhow::Result<()>
where
    F: Fn(fantoccini_loopback::elements::Element) -> Fut,
    Fut: std::future::Future<Output = Result<(), fantoccini_loopback::error::CmdError>>,
{
    let mut attempts = 0;
    loop {
        let element = wait_for(client, css).await?;
        match step(&format!("{what} `{css}`"), act(element)).await {
            Err(error) if attempts < 5 && is_stale(&error) => attempts += 1,
            other => return other,
        }
    }
}

/// Whether a WebDriver error says the element left the page after it was found.
fn is_stale(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}").to_lowercase();
    text.contains("stale element")
        || (text.contains("node with identifier") && text.contains("not found"))
}

/// Clicks the element `css` names, once it exists.
pub async fn click(client: &Client, css: &str) -> anyhow::Result<()> {
    on_element(client, css, "click", |e| async move {
        e.click().await.map(drop)
    })
    .await
}

/// Types `text` into the element `css` names, after what it holds.
pub async fn type_into(client: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    on_element(client, css, "type into", |e| async move {
        e.send_keys(text).await
    })
    .await
}

/// Replaces what the field `css` holds with `text`.
pub async fn replace(client: &Client, css: &str, text: &str) -> anyhow::Result<()> {
    on_element(client, css, "replace the text of", |e| async move {
        e.clear().await?;
        e.send_keys(text).await
    })
    .await
}

/// Captures the screen as `name` once WebKit has painted the current DOM (two animation
/// frames, then a pause for the X display to catch up): without the wait the capture shows
/// the page one step behind.
pub async fn capture(client: &Client, name: &str) -> anyhow::Result<PathBuf> {
    let script = "const done = arguments[arguments.length - 1];
                  requestAnimationFrame(() => requestAnimationFrame(() => done(true)));";
    step(
        "wait for a painted frame",
        client.execute_async(script, Vec::new()),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    screenshot(name)
}

/// A private D-Bus session bus (no service activation, so nothing else starts on it),
/// stopped when dropped.
pub struct PrivateBus {
    child: Child,
    _dir: tempfile::TempDir,
    /// Its address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub address: String,
}

impl PrivateBus {
    pub fn start() -> anyhow::Result<PrivateBus> {
        use std::io::BufRead as _;
        let daemon = require_tool("dbus-daemon", "install the Debian package dbus")?;
        let dir = tempfile::tempdir().context("cannot create the bus folder")?;
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>session</type><listen>unix:dir={}</listen><auth>EXTERNAL</auth>\
                 <policy context=\"default\"><allow send_destination=\"*\" eavesdrop=\"true\"/>\
                 <allow eavesdrop=\"true\"/><allow own=\"*\"/></policy></busconfig>\n",
                dir.path().display()
            ),
        )?;
        let mut child = Command::new(daemon)
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start dbus-daemon")?;
        let stdout = child.stdout.take().context("dbus-daemon: no stdout")?;
        let mut address = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut address)
            .context("dbus-daemon printed no address")?;
        let address = address.trim().to_owned();
        if address.is_empty() {
            let _ = child.kill();
            bail!("dbus-daemon printed no address");
        }
        Ok(PrivateBus {
            child,
            _dir: dir,
            address,
        })
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
