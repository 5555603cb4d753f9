//! Test support: a real SMTP server on loopback (`smtp_sink.py`, aiosmtpd), a store on a
//! temporary SQLite file set up to send through it, and provider bodies to drive bookings.
//!
//! The server is required: without Python's aiosmtpd the tests fail, they do not skip.

#![allow(dead_code)]

use coachdesk_desk::SessionTypeForms;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use coachdesk_demo::calendly::{rfc3339, InviteeBody};
use coachdesk_domain::provider::Provider;
use coachdesk_domain::{Booking, BookingId};
use coachdesk_mail::{
    save_settings, CoachIdentity, Dispatcher, FixedPassword, MailSettings, Security, SmtpSettings,
};
use coachdesk_protocol::ipc::{RefundTierDto, SessionTypeDraft};
use coachdesk_store::{Source, Store};
use serde::Deserialize;
use serde_json::{json, Value};
use time::macros::datetime;
use time::{Duration as TimeDuration, OffsetDateTime};

pub const PIP_LINE: &str = "python3 -m pip install aiosmtpd==1.4.6";

/// When the client books.
pub const BOOKED: OffsetDateTime = datetime!(2026-11-20 09:00 UTC);
/// The session's start: 11:00 in Berlin.
pub const START: OffsetDateTime = datetime!(2026-12-01 10:00 UTC);
pub const START_BERLIN: &str = "Tuesday 1 December 2026, 11:00 (Europe/Berlin)";
pub const EVENT_TYPE: &str = "https://api.calendly.com/event_types/ET-MAIL-60";
pub const RELAY: &str = "https://relay.test";

fn python() -> String {
    std::env::var("COACHDESK_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn sink_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("smtp_sink.py")
}

/// A free loopback port (the sink needs a fixed one: it is restarted on the same port).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One message as the server received it (decoded by Python's `email` package).
#[derive(Debug, Clone, Deserialize)]
pub struct Received {
    pub file: String,
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub message_id: String,
    pub from: String,
    pub to: String,
    pub reply_to: String,
    pub subject: String,
    pub content_type: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl Received {
    pub fn text(&self) -> &str {
        self.text.as_deref().unwrap_or("")
    }
    pub fn html(&self) -> &str {
        self.html.as_deref().unwrap_or("")
    }
}

/// The aiosmtpd server, as a child process writing to a directory.
pub struct SmtpSink {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    auth: Option<(String, String)>,
}

impl SmtpSink {
    /// Starts a server on a free port.
    pub fn start(dir: &Path, auth: Option<(&str, &str)>) -> Result<Self> {
        let mut sink = Self {
            child: None,
            port: free_port(),
            dir: dir.to_owned(),
            auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
        };
        sink.restart()?;
        Ok(sink)
    }

    /// A server that is down: a port reserved for it, nothing listening yet.
    pub fn down(dir: &Path) -> Self {
        Self {
            child: None,
            port: free_port(),
            dir: dir.to_owned(),
            auth: None,
        }
    }

    /// (Re)starts the server on its port.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        let mut cmd = Command::new(python());
        cmd.arg(sink_script())
            .args(["--port", &self.port.to_string()])
            .arg("--out")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some((user, password)) = &self.auth {
            cmd.args(["--user", user, "--password", password]);
        }
        let mut child = cmd.spawn().with_context(|| {
            format!("could not start {} for the SMTP test server; install Python 3 and run `{PIP_LINE}`", python())
        })?;
        let line = coachdesk_waiting::first_line(&mut child, Duration::from_secs(30));
        if !line.starts_with("READY") {
            let status = child.try_wait().ok().flatten();
            let _ = child.kill();
            let _ = child.wait();
            if status.and_then(|s| s.code()) == Some(3) {
                bail!("aiosmtpd is missing, so the SMTP test server cannot run: `{PIP_LINE}`");
            }
            bail!("the SMTP test server did not start (status {status:?}, said {line:?})");
        }
        self.child = Some(child);
        Ok(())
    }

    /// Stops the server (the port is kept for a restart).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Received> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.retain(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        });
        files.sort();
        files
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).expect("a received message");
                serde_json::from_str(&text).expect("the sink's JSON")
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Fails (never skips) when the SMTP server cannot be run.
pub fn require_aiosmtpd() {
    let ok = Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "these tests need a real SMTP server on loopback: Python 3 with aiosmtpd. Run `{PIP_LINE}`."
    );
}

/// A temporary directory with the SQLite file and the server's mail folder.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        require_aiosmtpd();
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("coachdesk.sqlite")
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("received")
    }

    /// Opens the store file (a fresh process's view after a "crash").
    pub fn open(&self) -> Arc<Mutex<Store>> {
        Arc::new(Mutex::new(Store::open(&self.db()).expect("the store")))
    }
}

/// Sets up a session type (150.00 EUR, mapped to [`EVENT_TYPE`]) and the mail settings for
/// a loopback server on `port`.
pub fn setup(store: &Arc<Mutex<Store>>, port: u16, username: Option<&str>) {
    let mut store = store.lock().unwrap();
    store
        .create_session_type(&SessionTypeDraft {
            name: "Coaching 60".into(),
            duration_minutes: 60,
            price: "150.00".into(),
            currency: "EUR".into(),
            refund_tiers: vec![RefundTierDto {
                min_hours_before: 48,
                percent: 100,
            }],
            calendly_event_type_uri: Some(EVENT_TYPE.into()),
            payment_window_minutes: None,
        })
        .expect("a session type");
    save_settings(&store, &settings(port, username)).expect("mail settings");
}

pub fn settings(port: u16, username: Option<&str>) -> MailSettings {
    MailSettings {
        smtp: SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            security: Security::Plain,
            username: username.map(str::to_owned),
            timeout_secs: 5,
        },
        coach: CoachIdentity {
            name: "Sam Coach".into(),
            from_address: "sam@coach.test".into(),
            reply_to: Some("hello@coach.test".into()),
        },
        relay_url: Some(RELAY.into()),
    }
}

pub fn dispatcher(store: &Arc<Mutex<Store>>, password: Option<&str>) -> Dispatcher {
    Dispatcher::new(
        store.clone(),
        Arc::new(FixedPassword(password.map(str::to_owned))),
    )
}

pub fn invitee_uri(id: &str) -> String {
    format!("https://api.calendly.com/scheduled_events/EV-{id}/invitees/{id}")
}

fn invitee_payload(id: &str, email: &str, start: OffsetDateTime, booked: OffsetDateTime) -> Value {
    let event_uri = format!("https://api.calendly.com/scheduled_events/EV-{id}");
    InviteeBody {
        uri: &invitee_uri(id),
        event_uri: &event_uri,
        name: "Dana Client",
        email,
        event_name: "Coaching",
        event_type: EVENT_TYPE,
        start,
        end: start + TimeDuration::hours(1),
        booked,
    }
    .payload()
}

fn envelope(event: &str, at: OffsetDateTime, payload: Value) -> Vec<u8> {
    json!({
        "event": event,
        "created_at": rfc3339(at),
        "created_by": "https://api.calendly.com/users/MAILTEST",
        "payload": payload,
    })
    .to_string()
    .into_bytes()
}

/// Calendly's `invitee.created` (with `old_invitee` for the new half of a reschedule).
pub fn booked(
    id: &str,
    email: &str,
    start: OffsetDateTime,
    at: OffsetDateTime,
    old: Option<&str>,
) -> Vec<u8> {
    let mut payload = invitee_payload(id, email, start, at);
    if let Some(old) = old {
        payload["old_invitee"] = json!(invitee_uri(old));
    }
    envelope("invitee.created", at, payload)
}

/// Calendly's `invitee.canceled`, moved to `new` for a reschedule.
pub fn canceled(
    id: &str,
    email: &str,
    start: OffsetDateTime,
    booked_at: OffsetDateTime,
    at: OffsetDateTime,
    new: Option<&str>,
) -> Vec<u8> {
    let mut payload = invitee_payload(id, email, start, booked_at);
    payload["status"] = json!("canceled");
    payload["rescheduled"] = json!(new.is_some());
    payload["new_invitee"] = json!(new.map(invitee_uri));
    payload["cancellation"] = json!({
        "canceled_by": "Dana Client", "reason": "moving", "canceler_type": "invitee", "created_at": rfc3339(at)
    });
    envelope("invitee.canceled", at, payload)
}

/// Stripe's `checkout.session.completed`, paid, for invitee `id`.
pub fn paid(id: &str, minor: i64, at: OffsetDateTime) -> Vec<u8> {
    json!({
        "id": format!("evt_paid_{id}"),
        "object": "event",
        "type": "checkout.session.completed",
        "created": at.unix_timestamp(),
        "livemode": false,
        "data": {"object": {
            "id": format!("cs_{id}"),
            "object": "checkout.session",
            "amount_total": minor,
            "currency": "eur",
            "client_reference_id": id,
            "payment_intent": format!("pi_{id}"),
            "payment_status": "paid",
            "status": "complete",
            "mode": "payment",
            "metadata": {},
        }},
    })
    .to_string()
    .into_bytes()
}

pub fn apply(store: &Arc<Mutex<Store>>, provider: Provider, body: &[u8], now: OffsetDateTime) {
    let applied = store
        .lock()
        .unwrap()
        .apply_provider_event(provider, body, Source::Relay, now)
        .expect("the event applies");
    assert_eq!(applied.status, "applied", "{applied:?}");
}

pub fn booking_of(store: &Arc<Mutex<Store>>, id: &str) -> Booking {
    store
        .lock()
        .unwrap()
        .booking_by_invitee(&invitee_uri(id))
        .expect("the store")
        .expect("the booking")
}

/// The email rows of the outbox: (effect key, status, note).
pub fn email_rows(
    store: &Arc<Mutex<Store>>,
    booking_id: &BookingId,
) -> Vec<(String, String, Option<String>, u32)> {
    store
        .lock()
        .unwrap()
        .outbox_entries(Some(booking_id))
        .expect("the outbox")
        .into_iter()
        .filter(|e| e.kind == "send_email")
        .map(|e| (e.effect_key, e.status, e.last_error, e.attempts))
        .collect()
}

/// The outbox row of a booking's payment request: its status, its note (empty when none)
/// and its attempts.
pub fn payment_request_row(
    store: &Arc<Mutex<Store>>,
    booking_id: &BookingId,
) -> (String, String, u32) {
    let rows = email_rows(store, booking_id);
    let (_, status, note, attempts) = rows
        .into_iter()
        .find(|(key, ..)| key == "email:payment-request")
        .expect("the payment request row");
    (status, note.unwrap_or_default(), attempts)
}

/// What the booking of invitee `id` is flagged for, its reasons joined by " | ".
pub fn attention_of(store: &Arc<Mutex<Store>>, id: &str) -> String {
    booking_of(store, id)
        .attention
        .iter()
        .map(|a| a.describe())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// No provider secrets: only the mail path is exercised.
pub struct NoSecrets;

impl coachdesk_sync::SecretSource for NoSecrets {
    fn get(
        &self,
        _name: coachdesk_sync::SecretName,
    ) -> Result<coachdesk_sync::Secret, coachdesk_sync::SecretError> {
        Err(coachdesk_sync::SecretError::Missing {
            label: "test secret",
        })
    }
}

/// `got` is one message to each of `to` (sorted), each with a Message-ID of its own.
pub fn assert_one_message_each(got: &[Received], to: &[&str]) {
    let mut ids: Vec<_> = got.iter().map(|m| m.message_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((got.len(), ids.len()), (to.len(), to.len()), "{got:#?}");
    let mut rcpt: Vec<_> = got.iter().flat_map(|m| m.rcpt_tos.clone()).collect();
    rcpt.sort();
    assert_eq!(rcpt, to);
}
