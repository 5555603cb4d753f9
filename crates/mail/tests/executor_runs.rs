//! The app's own path for client emails: the sync crate's effect executor with the
//! `SmtpMailer`, against a real SMTP server on loopback.
//!
//! - killed between two emails (the process dies inside the executor's drain) and
//!   restarted on the same database file: each email arrives exactly once;
//! - the SMTP server down: the row is retried with backoff, and delivered once it is back;
//! - bad credentials: not retried, the booking is flagged with the server's answer.

mod common;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use coachdesk_desk::CoachActions;
use coachdesk_domain::booking::{BookingId, EmailKind};
use coachdesk_domain::provider::Provider;
use coachdesk_mail::SmtpMailer;
use coachdesk_providers::ProviderError;
use coachdesk_store::Store;
use coachdesk_sync::{
    Executor, LogNotifier, MailOutcome, Mailer, Mode, Outlets, Providers, SyncConfig,
};
use common::*;
use time::{Duration, OffsetDateTime};

/// The SMTP mailer in a process that is killed when it is about to send email number
/// `survives + 1`.
struct KilledAfter {
    inner: SmtpMailer,
    left: AtomicI32,
}

impl Mailer for KilledAfter {
    fn send(&self, booking_id: &BookingId, email: EmailKind) -> Result<MailOutcome, ProviderError> {
        self.send_for_row(booking_id, email, "")
    }

    fn send_for_row(
        &self,
        booking_id: &BookingId,
        email: EmailKind,
        key: &str,
    ) -> Result<MailOutcome, ProviderError> {
        if self.left.fetch_sub(1, Ordering::SeqCst) <= 0 {
            panic!("the process is killed between two emails");
        }
        self.inner.send_for_row(booking_id, email, key)
    }
}

fn executor(store: &Arc<Mutex<Store>>, mailer: Arc<dyn Mailer>) -> Executor {
    let config = SyncConfig::new(Mode::Test, "http://127.0.0.1:9");
    let providers = Arc::new(Providers::new(config.clone(), Arc::new(NoSecrets)));
    let outlets = Outlets {
        notifier: Arc::new(LogNotifier),
        mailer,
    };
    Executor::new(store.clone(), providers, outlets, &config)
}

fn smtp_mailer(store: &Arc<Mutex<Store>>, password: Option<&str>) -> Arc<dyn Mailer> {
    Arc::new(SmtpMailer::new(dispatcher(store, password)))
}

/// Client `id` (`<id in lower case>@example.com`) booked a minute before `now` for a
/// session a week later.
fn book_next_week(store: &Arc<Mutex<Store>>, id: &str, now: OffsetDateTime) {
    apply(
        store,
        Provider::Calendly,
        &booked(
            id,
            &format!("{}@example.com", id.to_lowercase()),
            now + Duration::days(7),
            now - Duration::minutes(1),
            None,
        ),
        now - Duration::minutes(1),
    );
}

/// Three clients who just booked (the executor's mailer reads the real clock, so the
/// times are relative to now).
fn book_three(store: &Arc<Mutex<Store>>, now: OffsetDateTime) -> Vec<BookingId> {
    ["X1", "X2", "X3"]
        .iter()
        .map(|id| {
            book_next_week(store, id, now);
            booking_of(store, id).id
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_killed_between_emails_and_restarted_sends_each_email_once() {
    let env = Env::new();
    let sink = SmtpSink::start(&env.mail_dir(), None).unwrap();
    let now = OffsetDateTime::now_utc();
    let bookings = {
        let store = env.open();
        setup(&store, sink.port, None);
        book_three(&store, now)
    };

    // The first process sends one email, then dies inside the drain.
    {
        let store = env.open();
        let mailer = Arc::new(KilledAfter {
            inner: SmtpMailer::new(dispatcher(&store, None)),
            left: AtomicI32::new(1),
        });
        let run = executor(&store, mailer);
        let died = tokio::spawn(async move { run.run_once(now).await }).await;
        assert!(died.is_err_and(|e| e.is_panic()), "the process was killed");
    }
    assert_eq!(sink.messages().len(), 1);

    // A fresh process on the same file picks up where it stopped; a third one finds
    // nothing left to send.
    for round in 1..=2 {
        let store = env.open();
        let report = executor(&store, smtp_mailer(&store, None))
            .run_once(now + Duration::minutes(round))
            .await
            .expect("the executor runs");
        assert_eq!(report.failed, 0, "{report:?}");
        for id in &bookings {
            let (status, note, _) = payment_request_row(&store, id);
            assert_eq!(status, "done", "{note}");
        }
    }

    let got = sink.messages();
    assert_one_message_each(
        &got,
        &["x1@example.com", "x2@example.com", "x3@example.com"],
    );
    for m in &got {
        assert!(
            m.subject.starts_with("Please complete your booking"),
            "{}",
            m.subject
        );
        assert!(m.text().contains("150.00 EUR"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executor_retries_while_the_smtp_server_is_down_and_delivers_once_it_is_back() {
    let env = Env::new();
    let mut sink = SmtpSink::down(&env.mail_dir());
    let store = env.open();
    setup(&store, sink.port, None);
    let now = OffsetDateTime::now_utc();
    book_next_week(&store, "DN1", now);
    let booking = booking_of(&store, "DN1");
    let run = executor(&store, smtp_mailer(&store, None));

    let report = run.run_once(now).await.expect("run");
    assert!(report.retried >= 1, "{report:?}");
    let (status, note, attempts) = payment_request_row(&store, &booking.id);
    assert_eq!((status.as_str(), attempts), ("pending", 1), "{note}");
    assert!(note.contains("could not be reached"), "{note}");

    // Not due again right away: backed off.
    run.run_once(now).await.expect("run");
    assert_eq!(
        email_rows(&store, &booking.id)[0].3,
        1,
        "no retry before the backoff"
    );

    sink.restart().unwrap();
    run.run_once(now + Duration::hours(2)).await.expect("run");
    run.run_once(now + Duration::hours(4)).await.expect("run");
    let got = sink.messages();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].rcpt_tos, ["dn1@example.com"]);
    let rows = email_rows(&store, &booking.id);
    assert_eq!(rows[0].1, "done", "{rows:?}");
    assert!(booking_of(&store, "DN1").attention.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_in_the_executor_flag_the_booking_with_the_servers_answer() {
    let env = Env::new();
    let sink = SmtpSink::start(&env.mail_dir(), Some(("sam", "right-password"))).unwrap();
    let store = env.open();
    setup(&store, sink.port, Some("sam"));
    let now = OffsetDateTime::now_utc();
    book_next_week(&store, "BC1", now);
    let report = executor(&store, smtp_mailer(&store, Some("wrong")))
        .run_once(now)
        .await
        .expect("run");
    assert!(report.failed >= 1, "{report:?}");
    assert!(sink.messages().is_empty());
    let flagged = attention_of(&store, "BC1");
    assert!(
        flagged.contains("refused the user name or password") && flagged.contains("535"),
        "{flagged}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_link_sent_again_by_the_coach_is_a_message_of_its_own() {
    let env = Env::new();
    let sink = SmtpSink::start(&env.mail_dir(), None).unwrap();
    let store = env.open();
    setup(&store, sink.port, None);
    let now = OffsetDateTime::now_utc();
    book_next_week(&store, "RS1", now);
    let booking = booking_of(&store, "RS1");
    let run = executor(&store, smtp_mailer(&store, None));
    run.run_once(now).await.expect("run");
    store
        .lock()
        .unwrap()
        .coach_action(
            &booking.id,
            "act-resend-1",
            &coachdesk_protocol::ipc::CoachActionDto::ResendPaymentLink,
            now,
        )
        .expect("the coach asks to send the link again");
    run.run_once(now + Duration::seconds(1)).await.expect("run");
    run.run_once(now + Duration::seconds(2)).await.expect("run");

    let got = sink.messages();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(
        got[0].message_id,
        format!(
            "<coachdesk-{}-email.payment-request@coach.test>",
            booking.id
        )
    );
    assert_ne!(
        got[0].message_id, got[1].message_id,
        "a resend is a new message"
    );
    assert!(
        got[1].message_id.contains("act-resend-1"),
        "{}",
        got[1].message_id
    );
    assert!(got[1].subject.starts_with("Please complete your booking"));
}
