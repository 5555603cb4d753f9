//! End to end: the Emails page of the real app against a real SMTP server on loopback
//! (`crates/mail/smtp_sink.py`, Python's aiosmtpd, with a required login).
//!
//! The coach enters the server with a wrong password: "Check connection" says in plain
//! words that the server refused the user name or password (with the server's 535). With
//! the right password the check passes and a test email arrives. In the template editor a
//! misspelt placeholder is reported next to the preview and the template cannot be saved.
//!
//! The password goes to the OS keychain: run under a session keyring (`scripts/test`
//! does). By hand: `keyctl session - xvfb-run -a cargo test -p coachdesk-tests --test
//! e2e_emails -- --ignored`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context as _};
use coachdesk_tests::e2e::{self, click, replace, step, type_into, wait_for, Sandbox};
use fantoccini_loopback::Client;

const RIGHT: &str = "right-e2e-password";

struct Sink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sink() -> anyhow::Result<Sink> {
    let dir = tempfile::tempdir()?;
    let port = e2e::free_port()?;
    let script = e2e::workspace_root().join("crates/mail/smtp_sink.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .args([
            "--port",
            &port.to_string(),
            "--user",
            "sam",
            "--password",
            RIGHT,
        ])
        .arg("--out")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context(
            "cannot run python3 for the SMTP server (python3 -m pip install aiosmtpd==1.4.6)",
        )?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    if !line.starts_with("READY") {
        let _ = child.kill();
        bail!("the SMTP server did not start (said {line:?}); it needs aiosmtpd: ./scripts/setup");
    }
    Ok(Sink { child, port, dir })
}

#[tokio::test]
#[ignore = "needs a display and the built app: run by ./scripts/test (xvfb-run ... -- --ignored)"]
async fn the_emails_page_reports_bad_credentials_and_broken_placeholders() -> anyhow::Result<()> {
    let sink = start_sink()?;
    let app = e2e::app_binary()?;
    let sandbox = Sandbox::new()?;
    let driver = sandbox.start_driver(&[], "tauri-driver-emails")?;
    let client = driver.launch(&app).await?;
    let outcome = run(&client, &sink).await;
    if outcome.is_err() {
        let _ = e2e::screenshot("e2e-emails-failure");
    }
    step("quit the app", client.close()).await?;
    outcome
}

async fn run(client: &Client, sink: &Sink) -> anyhow::Result<()> {
    wait_for(client, "#mode-banner[data-mode]").await?;
    click(client, "#nav-emails").await?;
    wait_for(client, "#mail-settings").await?;

    type_into(client, "#mail-host", "127.0.0.1").await?;
    replace(client, "#mail-port", &sink.port.to_string()).await?;
    click(client, "#mail-security option[value='plain']").await?;
    type_into(client, "#mail-username", "sam").await?;
    type_into(client, "#mail-password", "not-the-password").await?;
    type_into(client, "#mail-coach-name", "Sam Coach").await?;
    type_into(client, "#mail-from", "sam@coach.test").await?;
    click(client, "#save-mail-settings").await?;
    wait_text(client, "#mail-result", "Saved").await?;
    wait_text(client, "#mail-password-hint", "A password is saved").await?;

    click(client, "#check-mail-server").await?;
    let refused = wait_text(client, "#mail-error", "refused the user name or password").await?;
    ensure!(
        refused.contains("535"),
        "the server's answer is shown: {refused}"
    );
    ensure!(
        !refused.contains("not-the-password"),
        "the password is never shown: {refused}"
    );
    let shot = screenshot(client, "#mail-error", "e2e-emails-bad-credentials").await?;
    eprintln!(
        "e2e: bad credentials on the Emails page: {}",
        shot.display()
    );

    type_into(client, "#mail-password", RIGHT).await?;
    click(client, "#save-mail-settings").await?;
    wait_text(client, "#mail-result", "Saved").await?;
    click(client, "#check-mail-server").await?;
    wait_text(client, "#mail-result", "Email sending works").await?;
    click(client, "#send-test-email").await?;
    wait_text(
        client,
        "#mail-result",
        "A test email was sent to sam@coach.test",
    )
    .await?;
    let received = std::fs::read_dir(sink.dir.path())?
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .count();
    ensure!(
        received == 1,
        "the SMTP server received {received} emails, not 1"
    );

    // The template editor: a misspelt placeholder is reported, the template not saved.
    click(client, "#template-kind option[value='cancellation']").await?;
    wait_text(client, "#template-placeholders", "{refund_amount}").await?;
    wait_text(client, "#preview-text", "Refund: 75.00 EUR.").await?;
    replace(
        client,
        "#template-body",
        "Hello {client_nme}, {refund_amount} comes back.",
    )
    .await?;
    wait_text(
        client,
        "#template-problems",
        "{client_nme} is not a placeholder",
    )
    .await?;
    let disabled = e2e::attr_of(client, "#save-template", "disabled").await?;
    ensure!(disabled.is_some(), "a broken template cannot be saved");
    let shot = screenshot(client, "#template-problems", "e2e-emails-template-problem").await?;
    eprintln!(
        "e2e: template problem on the Emails page: {}",
        shot.display()
    );
    Ok(())
}

/// Scrolls `css` into the middle of the window and captures the screen once WebKit has
/// painted the current DOM (two animation frames, then a pause for the X display).
async fn screenshot(client: &Client, css: &str, name: &str) -> anyhow::Result<std::path::PathBuf> {
    let script = "const [css, done] = [arguments[0], arguments[arguments.length - 1]];
                  document.querySelector(css)?.scrollIntoView({ block: 'center' });
                  requestAnimationFrame(() => requestAnimationFrame(() => done(true)));";
    step(
        "wait for a painted frame",
        client.execute_async(script, vec![serde_json::json!(css)]),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    e2e::screenshot(name)
}

/// Waits until an element matching `css` contains `text`; returns its whole text.
async fn wait_text(client: &Client, css: &str, text: &str) -> anyhow::Result<String> {
    let what = format!("contain {text:?}");
    let texts = e2e::wait_for_texts(client, css, e2e::STEP_TIMEOUT, &what, |t| {
        t.iter().any(|found| found.contains(text))
    })
    .await?;
    Ok(texts
        .into_iter()
        .find(|found| found.contains(text))
        .unwrap_or_default())
}
