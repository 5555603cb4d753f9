//! The email settings page's commands through Tauri's real IPC path (mock runtime), against
//! a real SMTP server on loopback (`crates/mail/smtp_sink.py`, Python's aiosmtpd) and the
//! real keychain (run under `keyctl session -`): the password goes to the keychain and never
//! into SQLite, bad credentials and an unreachable server come back as plain sentences, a
//! test email arrives, and templates are previewed, refused when broken, saved and reset.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coachdesk_app::Mode;
use serde_json::{json, Value};

const PIP_LINE: &str = "python3 -m pip install aiosmtpd==1.4.6";

use common::Harness;

fn harness() -> Harness {
    common::harness("mail.sqlite", Mode::Test)
}

impl Harness {
    /// Every byte of the database files (main file and write-ahead log).
    fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for name in ["mail.sqlite", "mail.sqlite-wal"] {
            if let Ok(b) = std::fs::read(self.dir.path().join(name)) {
                bytes.extend(b);
            }
        }
        assert!(!bytes.is_empty(), "the database exists");
        bytes
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The loopback SMTP server the mail crate's tests use, with a required login.
struct Sink {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sink {
    fn start(dir: &Path, user: &str, password: &str) -> Sink {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/mail/smtp_sink.py");
        let port = free_port();
        let python = std::env::var("COACHDESK_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--port", &port.to_string(), "--user", user])
            .args(["--password", password])
            .arg("--out")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {python} for the SMTP server ({e}); `{PIP_LINE}`")
            });
        let line = coachdesk_waiting::first_line(&mut child, Duration::from_secs(30));
        assert!(
            line.starts_with("READY"),
            "the SMTP server did not start (said {line:?}); it needs aiosmtpd: `{PIP_LINE}`"
        );
        Sink {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    fn subjects(&self) -> Vec<String> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir).expect("mail dir").flatten() {
            let path = entry.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if path.extension().is_some_and(|e| e == "json")
                && !name.is_some_and(|n| n.starts_with('.'))
            {
                let record: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).expect("message"))
                        .expect("json");
                out.push(record["subject"].as_str().unwrap_or_default().to_owned());
            }
        }
        out
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn settings(port: u16, username: &str, password: Option<&str>) -> Value {
    json!({
        "host": "127.0.0.1",
        "port": port.to_string(),
        "security": "plain",
        "username": username,
        "password": password,
        "coach_name": "Sam Coach",
        "from_address": "sam@coach.test",
        "reply_to": "hello@coach.test",
        "relay_url": "https://relay.coach.test"
    })
}

#[test]
fn the_password_goes_to_the_keychain_and_bad_credentials_are_told_in_words() {
    let h = harness();
    let mail_dir = h.dir.path().join("received");
    let sink = Sink::start(&mail_dir, "sam", "right-password-5f2c");

    let empty = h.invoke("mail_settings", json!({})).expect("mail_settings");
    assert_eq!(empty["configured"], false);
    let not_yet = h.invoke("check_mail_server", json!({})).unwrap_err();
    assert_eq!(not_yet["code"], "not_configured", "{not_yet}");

    // Saved with a wrong password: kept in the keychain, not in the database.
    let wrong = "wrong-password-9d41";
    let saved = h
        .invoke(
            "save_mail_settings",
            json!({ "draft": settings(sink.port, "sam", Some(wrong)) }),
        )
        .expect("save");
    assert_eq!(
        (&saved["configured"], &saved["password_saved"]),
        (&json!(true), &json!(true)),
        "{saved}"
    );
    assert!(saved.get("password").is_none(), "{saved}");
    let db = h.database_bytes();
    assert!(
        !db.windows(wrong.len()).any(|w| w == wrong.as_bytes()),
        "the SMTP password was written to SQLite"
    );

    let refused = h.invoke("check_mail_server", json!({})).unwrap_err();
    assert_eq!(refused["code"], "refused", "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("The SMTP server refused the user name or password")
            && message.contains("535")
            && message.contains("Emails page"),
        "{message}"
    );
    assert!(!message.contains(wrong), "{message}");

    // A new password replaces it; leaving the field empty keeps the saved one.
    h.invoke(
        "save_mail_settings",
        json!({ "draft": settings(sink.port, "sam", Some("right-password-5f2c")) }),
    )
    .expect("save the right password");
    let kept = h
        .invoke(
            "save_mail_settings",
            json!({ "draft": settings(sink.port, "sam", None) }),
        )
        .expect("save without a password");
    assert_eq!(kept["password_saved"], true);
    let ok = h.invoke("check_mail_server", json!({})).expect("check");
    assert_eq!(
        ok["message"],
        format!(
            "Connected to 127.0.0.1:{} and logged in as sam. Email sending works.",
            sink.port
        )
    );

    let sent = h
        .invoke("send_test_email", json!({ "to": null }))
        .expect("test email");
    assert!(
        sent["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("A test email was sent to hello@coach.test")),
        "{sent}"
    );
    let subjects = sink.subjects();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(
        subjects[0].starts_with("Coachdesk test email: Confirmed:"),
        "{subjects:?}"
    );
}

#[test]
fn an_unreachable_server_and_a_bad_field_are_named() {
    let h = harness();
    let closed = free_port();
    let mut draft = settings_map(closed);
    draft.insert("port".into(), json!("five hundred"));
    let bad_port = h
        .invoke("save_mail_settings", json!({ "draft": draft }))
        .unwrap_err();
    assert_eq!(bad_port["code"], "invalid");
    assert_eq!(bad_port["fields"][0]["field"], "port", "{bad_port}");

    h.invoke(
        "save_mail_settings",
        json!({ "draft": settings(closed, "", None) }),
    )
    .expect("save");
    let down = h.invoke("check_mail_server", json!({})).unwrap_err();
    assert_eq!(down["code"], "unavailable", "{down}");
    let message = down["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "Could not reach the SMTP server 127.0.0.1:{closed}"
        )) && message.contains("Check the server name and the port"),
        "{message}"
    );
}

/// [`settings`] as a map, for a draft with one field changed.
fn settings_map(port: u16) -> serde_json::Map<String, Value> {
    settings(port, "", None)
        .as_object()
        .cloned()
        .expect("an object")
}

#[test]
fn templates_are_previewed_refused_when_broken_saved_and_reset() {
    let h = harness();
    let list = h
        .invoke("list_mail_templates", json!({}))
        .expect("templates");
    let kinds: Vec<&str> = list
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|t| t["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "payment_request",
            "payment_reminder",
            "confirmation",
            "cancellation",
            "reschedule",
            "late_payment_refund"
        ]
    );
    let cancellation = &list[3];
    assert!(cancellation["placeholders"]
        .as_array()
        .expect("placeholders")
        .contains(&json!("{refund_amount}")));

    let broken =
        json!({ "subject": "Cancelled", "body": "Hi {client_nme}, refund {refund_amount}" });
    let preview = h
        .invoke(
            "preview_mail_template",
            json!({ "kind": "cancellation", "draft": broken }),
        )
        .expect("preview");
    let problems = preview["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 1, "{preview}");
    assert!(problems[0]
        .as_str()
        .is_some_and(|p| p.contains("{client_nme} is not a placeholder")));
    let refused = h
        .invoke(
            "save_mail_template",
            json!({ "kind": "cancellation", "draft": broken }),
        )
        .unwrap_err();
    assert_eq!(refused["code"], "invalid");
    assert_eq!(refused["fields"][0]["field"], "body", "{refused}");

    let good = json!({
        "subject": "Cancelled: {session}",
        "body": "Hi {client_name},\n\n{refund_amount} goes back to you.\n\n{coach_name}"
    });
    let preview = h
        .invoke(
            "preview_mail_template",
            json!({ "kind": "cancellation", "draft": good }),
        )
        .expect("preview");
    assert_eq!(preview["problems"], json!([]));
    assert_eq!(
        preview["text"],
        "Hi Dana Client,\n\n75.00 EUR goes back to you.\n\nYour name"
    );
    assert!(preview["html"]
        .as_str()
        .is_some_and(|h| h.contains("<p>75.00 EUR goes back to you.</p>")));

    let saved = h
        .invoke(
            "save_mail_template",
            json!({ "kind": "cancellation", "draft": good }),
        )
        .expect("save");
    assert_eq!(saved["customised"], true);
    let listed = h.invoke("list_mail_templates", json!({})).expect("list");
    assert_eq!(listed[3]["body"], good["body"]);
    let reset = h
        .invoke("reset_mail_template", json!({ "kind": "cancellation" }))
        .expect("reset");
    assert_eq!(reset["customised"], false);
    assert_ne!(reset["body"], good["body"]);
    let unknown = h
        .invoke("reset_mail_template", json!({ "kind": "newsletter" }))
        .unwrap_err();
    assert_eq!(unknown["code"], "invalid");
}
