//! The SMTP mailer inside the sync crate's real effect executor (`SyncEngine`), against a
//! real SMTP server on loopback: a payment request queued before the payment and run after
//! it is dropped (and the outbox row says why), the confirmation goes out once.

mod common;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use coachdesk_domain::provider::Provider;
use coachdesk_mail::SmtpMailer;
use coachdesk_sync::{LogNotifier, Mode, Outlets, SyncConfig, SyncEngine};
use common::*;
use time::{Duration, OffsetDateTime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executor_drops_a_paid_bookings_payment_request_and_sends_the_confirmation() {
    let env = Env::new();
    let sink = SmtpSink::start(&env.mail_dir(), None).unwrap();
    let store = env.open();
    setup(&store, sink.port, None);
    // The executor reads the real clock: times are relative to now.
    let now = OffsetDateTime::now_utc();
    let booked_at = now - Duration::minutes(10);
    let start = now + Duration::days(7);
    apply(
        &store,
        Provider::Calendly,
        &booked("EX1", "ex1@example.com", start, booked_at, None),
        booked_at,
    );
    apply(
        &store,
        Provider::Stripe,
        &paid("EX1", 15000, now - Duration::minutes(5)),
        now - Duration::minutes(5),
    );
    let booking = booking_of(&store, "EX1");

    let mut config = SyncConfig::new(Mode::Test, &format!("http://127.0.0.1:{}", free_port()));
    config.executor_poll = StdDuration::from_millis(200);
    config.reconcile_every = None;
    config.subscription_check_every = None;
    let outlets = Outlets {
        notifier: Arc::new(LogNotifier),
        mailer: Arc::new(SmtpMailer::new(dispatcher(&store, None))),
    };
    let engine = SyncEngine::start(config, store.clone(), Arc::new(NoSecrets), outlets).unwrap();

    coachdesk_waiting::eventually_async(
        "the executor settling the emails",
        StdDuration::from_secs(30),
        || async {
            let rows = email_rows(&store, &booking.id);
            if rows.len() == 2 && rows.iter().all(|(_, status, ..)| status != "pending") {
                Ok(())
            } else {
                Err(rows)
            }
        },
    )
    .await;
    engine.shutdown();

    let got = sink.messages();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert!(
        got[0].subject.starts_with("Confirmed:"),
        "{}",
        got[0].subject
    );
    assert!(got[0].text().contains("150.00 EUR"));
    assert_eq!(
        got[0].message_id,
        format!("<coachdesk-{}-email.confirmation@coach.test>", booking.id)
    );
    let (status, note, _) = payment_request_row(&store, &booking.id);
    assert_eq!(status, "done");
    assert!(note.contains("already paid"), "{note}");
    // And the booking's audit trail says so.
    let detail = store.lock().unwrap().booking_detail(&booking.id).unwrap();
    assert!(
        detail
            .audit
            .iter()
            .any(|a| a.summary.contains("email:payment-request was not sent")
                && a.summary.contains("already paid")),
        "{:#?}",
        detail.audit
    );
}
