//! Client emails delivered to a real SMTP server on loopback (aiosmtpd, started here),
//! driven from the store's outbox on a real SQLite file.

mod common;

use coachdesk_domain::booking::{BookingState, RefundChoice};
use coachdesk_domain::provider::Provider;
use coachdesk_domain::{BookingEvent, Currency, Money};
use coachdesk_mail::{
    run_due_emails, test_connection, Delivery, EmailJob, FixedPassword, MailError, MailKind,
    RetryPolicy,
};
use common::*;
use time::Duration;

fn policy() -> RetryPolicy {
    RetryPolicy {
        initial: std::time::Duration::from_secs(60),
        max: std::time::Duration::from_secs(600),
        max_attempts: 5,
    }
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap())
}

#[test]
fn happy_path_sends_the_payment_request_then_the_confirmation() {
    let env = Env::new();
    let sink = SmtpSink::start(&env.mail_dir(), None).unwrap();
    let store = env.open();
    setup(&store, sink.port, None);
    let mailer = dispatcher(&store, None);

    apply(
        &store,
        Provider::Calendly,
        &booked("INV1", "dana@example.com", START, BOOKED, None),
        BOOKED,
    );
    let report = run_due_emails(
        &store,
        &mailer,
        BOOKED + Duration::minutes(1),
        &policy(),
        100,
    )
    .unwrap();
    assert_eq!(report.sent, 1, "{report:?}");

    let booking = booking_of(&store, "INV1");
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.rcpt_tos, ["dana@example.com"]);
    assert_eq!(request.mail_from, "sam@coach.test");
    assert!(request.from.contains("Sam Coach"), "{}", request.from);
    assert!(
        request.reply_to.contains("hello@coach.test"),
        "{}",
        request.reply_to
    );
    assert_eq!(
        request.message_id,
        format!(
            "<coachdesk-{}-email.payment-request@coach.test>",
            booking.id
        )
    );
    assert!(
        request.subject.contains(START_BERLIN),
        "{}",
        request.subject
    );
    assert!(
        request.text().contains("please pay 150.00 EUR"),
        "{}",
        request.text()
    );
    // The deadline is 24 hours after booking, in Berlin time.
    assert!(
        request
            .text()
            .contains("Saturday 21 November 2026, 10:00 (Europe/Berlin)"),
        "{}",
        request.text()
    );
    let link =
        "https://relay.test/pay/coaching-60?invitee_uuid=INV1&invitee_email=dana%40example.com";
    assert!(request.text().contains(link), "{}", request.text());
    assert!(
        request
            .html()
            .contains(&format!("<a href=\"{}\">", link.replace('&', "&amp;"))),
        "{}",
        request.html()
    );
    assert_eq!(request.content_type, "multipart/alternative");

    apply(
        &store,
        Provider::Stripe,
        &paid("INV1", 15000, BOOKED + Duration::hours(2)),
        BOOKED + Duration::hours(2),
    );
    let report =
        run_due_emails(&store, &mailer, BOOKED + Duration::hours(2), &policy(), 100).unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let got = sink.messages();
    assert_eq!(got.len(), 2);
    let confirmation = &got[1];
    assert!(
        confirmation
            .subject
            .starts_with("Confirmed: Coaching 60 on "),
        "{}",
        confirmation.subject
    );
    assert!(
        confirmation
            .text()
            .contains("your payment of 150.00 EUR has arrived"),
        "{}",
        confirmation.text()
    );
    assert!(confirmation.text().contains(START_BERLIN));
    assert!(
        !confirmation.text().contains("pay "),
        "no payment request after payment: {}",
        confirmation.text()
    );

    // Nothing left to send, and a second run sends nothing again.
    let again =
        run_due_emails(&store, &mailer, BOOKED + Duration::hours(3), &policy(), 100).unwrap();
    assert_eq!(again.sent + again.dropped + again.retried + again.failed, 0);
    assert_eq!(sink.messages().len(), 2);
    for (key, status, note, _) in email_rows(&store, &booking.id) {
        assert_eq!(status, "done", "{key}");
        assert!(note.unwrap_or_default().starts_with("sent as <"), "{key}");
    }
}

#[test]
fn a_payment_request_queued_before_the_payment_and_run_after_it_is_not_sent() {
    let env = Env::new();
    let sink = SmtpSink::start(&env.mail_dir(), None).unwrap();
    let store = env.open();
    setup(&store, sink.port, None);
    let mailer = dispatcher(&store, None);

    apply(
        &store,
        Provider::Calendly,
        &booked("INV2", "dana@example.com", START, BOOKED, None),
        BOOKED,
    );
    // The executor was busy (or offline): the payment lands before the request goes out.
    apply(
        &store,
        Provider::Stripe,
        &paid("INV2", 15000, BOOKED + Duration::minutes(5)),
        BOOKED + Duration::minutes(5),
    );
    let booking = booking_of(&store, "INV2");
    assert_eq!(booking.state, BookingState::Confirmed);

    let report = run_due_emails(
        &store,
        &mailer,
        BOOKED + Duration::minutes(6),
        &policy(),
        100,
    )
    .unwrap();
    assert_eq!((report.sent, report.dropped), (1, 1), "{report:?}");
    let got = sink.messages();
    assert_eq!(got.len(), 1, "only the confirmation: {got:?}");
    assert!(
        got[0].subject.starts_with("Confirmed:"),
        "{}",
        got[0].subject
    );
    assert!(!got.iter().any(|m| m.text().contains("please pay")));

    // The drop is recorded on the outbox row with its reason.
    let (status, note, _) = payment_request_row(&store, &booking.id);
    assert_eq!(status, "done");
    assert!(
        note.contains("dropped") && note.contains("already paid"),
        "{note}"
    );
}

#[test]
fn a_cancellation_states_the_refund_amount() {
    let env = Env::new();
    let sink = SmtpSink::start(&env.mail_dir(), None).unwrap();
    let store = env.open();
    setup(&store, sink.port, None);
    let mailer = dispatcher(&store, None);

    apply(
        &store,
        Provider::Calendly,
        &booked("INV3", "dana@example.com", START, BOOKED, None),
        BOOKED,
    );
    apply(
        &store,
        Provider::Stripe,
        &paid("INV3", 15000, BOOKED + Duration::hours(1)),
        BOOKED + Duration::hours(1),
    );
    run_due_emails(&store, &mailer, BOOKED + Duration::hours(1), &policy(), 100).unwrap();
    assert_eq!(
        sink.messages().len(),
        1,
        "the confirmation (the request was paid before it went out)"
    );

    let booking = booking_of(&store, "INV3");
    let cancel_at = BOOKED + Duration::days(2);
    store
        .lock()
        .unwrap()
        .apply_coach_action(
            &booking.id,
            "cancel-1",
            &BookingEvent::CoachCancelled {
                refund: RefundChoice::Amount { amount: eur(7500) },
                reason: "I am ill".into(),
                at: cancel_at,
            },
            cancel_at,
        )
        .unwrap();
    let report = run_due_emails(&store, &mailer, cancel_at, &policy(), 100).unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let got = sink.messages();
    assert_eq!(got.len(), 2);
    let notice = &got[1];
    assert!(
        notice.subject.starts_with("Cancelled: Coaching 60 on "),
        "{}",
        notice.subject
    );
    assert!(notice.subject.contains(START_BERLIN), "{}", notice.subject);
    assert!(
        notice.text().contains("Refund: 75.00 EUR."),
        "{}",
        notice.text()
    );
    assert_eq!(
        notice.message_id,
        format!("<coachdesk-{}-email.cancellation@coach.test>", booking.id)
    );
}

#[test]
fn a_reschedule_sends_the_new_time_and_no_new_payment_request() {
    let env = Env::new();
    let sink = SmtpSink::start(&env.mail_dir(), None).unwrap();
    let store = env.open();
    setup(&store, sink.port, None);
    let mailer = dispatcher(&store, None);

    apply(
        &store,
        Provider::Calendly,
        &booked("OLD", "dana@example.com", START, BOOKED, None),
        BOOKED,
    );
    apply(
        &store,
        Provider::Stripe,
        &paid("OLD", 15000, BOOKED + Duration::hours(1)),
        BOOKED + Duration::hours(1),
    );
    run_due_emails(&store, &mailer, BOOKED + Duration::hours(1), &policy(), 100).unwrap();
    assert_eq!(sink.messages().len(), 1);

    let moved_at = BOOKED + Duration::days(3);
    let new_start = START + Duration::days(1);
    apply(
        &store,
        Provider::Calendly,
        &canceled(
            "OLD",
            "dana@example.com",
            START,
            BOOKED,
            moved_at,
            Some("NEW"),
        ),
        moved_at,
    );
    apply(
        &store,
        Provider::Calendly,
        &booked("NEW", "dana@example.com", new_start, moved_at, Some("OLD")),
        moved_at,
    );
    let report = run_due_emails(
        &store,
        &mailer,
        moved_at + Duration::minutes(1),
        &policy(),
        100,
    )
    .unwrap();

    let got = sink.messages();
    let after: Vec<_> = got.iter().skip(1).collect();
    assert_eq!(
        after.len(),
        1,
        "only the reschedule notice: {after:#?} ({report:?})"
    );
    let notice = after[0];
    assert!(
        notice.subject.starts_with("Rescheduled:"),
        "{}",
        notice.subject
    );
    assert!(
        notice
            .subject
            .contains("Wednesday 2 December 2026, 11:00 (Europe/Berlin)"),
        "{}",
        notice.subject
    );
    assert!(!notice.text().contains("please pay"));
    let new_booking = booking_of(&store, "NEW");
    assert_eq!(
        new_booking.state,
        BookingState::Confirmed,
        "the payment carried over"
    );
    assert_eq!(
        notice.message_id,
        format!("<coachdesk-{}-email.reschedule@coach.test>", new_booking.id)
    );
}

#[test]
fn a_runner_killed_between_emails_and_restarted_sends_each_email_once() {
    let env = Env::new();
    let sink = SmtpSink::start(&env.mail_dir(), None).unwrap();
    {
        let store = env.open();
        setup(&store, sink.port, None);
        for id in ["K1", "K2", "K3"] {
            apply(
                &store,
                Provider::Calendly,
                &booked(
                    id,
                    &format!("{}@example.com", id.to_lowercase()),
                    START,
                    BOOKED,
                    None,
                ),
                BOOKED,
            );
        }
        // The first process sends one email and dies.
        let report =
            run_due_emails(&store, &dispatcher(&store, None), BOOKED, &policy(), 1).unwrap();
        assert_eq!(report.sent, 1);
    }
    {
        // A second process, on the same file, picks up where it stopped.
        let store = env.open();
        let report = run_due_emails(
            &store,
            &dispatcher(&store, None),
            BOOKED + Duration::minutes(1),
            &policy(),
            100,
        )
        .unwrap();
        assert_eq!(report.sent, 2, "{report:?}");
    }
    {
        let store = env.open();
        let report = run_due_emails(
            &store,
            &dispatcher(&store, None),
            BOOKED + Duration::minutes(2),
            &policy(),
            100,
        )
        .unwrap();
        assert_eq!(report.sent, 0, "{report:?}");
    }
    let got = sink.messages();
    assert_one_message_each(
        &got,
        &["k1@example.com", "k2@example.com", "k3@example.com"],
    );
}

#[test]
fn a_crash_between_the_servers_ok_and_the_outbox_write_resends_the_same_message_id() {
    let env = Env::new();
    let sink = SmtpSink::start(&env.mail_dir(), None).unwrap();
    let booking_id = {
        let store = env.open();
        setup(&store, sink.port, None);
        apply(
            &store,
            Provider::Calendly,
            &booked("W1", "w1@example.com", START, BOOKED, None),
            BOOKED,
        );
        let booking = booking_of(&store, "W1");
        let row = store.lock().unwrap().due_effects(BOOKED, 100).unwrap();
        let row = row
            .into_iter()
            .find(|r| r.effect_key.as_str() == "email:payment-request")
            .expect("the payment request row");
        // The process sends, and dies before it can mark the row done.
        let job = EmailJob {
            booking_id: booking.id.clone(),
            kind: MailKind::PaymentRequest,
            idempotency_key: row.idempotency_key.clone(),
            now: BOOKED,
        };
        assert!(matches!(
            dispatcher(&store, None).deliver(&job).unwrap(),
            Delivery::Sent { .. }
        ));
        booking.id
    };
    let store = env.open();
    let report = run_due_emails(
        &store,
        &dispatcher(&store, None),
        BOOKED + Duration::minutes(1),
        &policy(),
        100,
    )
    .unwrap();
    assert_eq!(
        report.sent, 1,
        "the documented at-least-once window: {report:?}"
    );
    let got = sink.messages();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].message_id, got[1].message_id,
        "a resend is recognisably the same email"
    );
    assert_eq!(
        got[0].message_id,
        format!("<coachdesk-{booking_id}-email.payment-request@coach.test>")
    );
    assert_eq!(
        (&got[0].subject, got[0].text()),
        (&got[1].subject, got[1].text())
    );
    let again = run_due_emails(
        &store,
        &dispatcher(&store, None),
        BOOKED + Duration::minutes(2),
        &policy(),
        100,
    )
    .unwrap();
    assert_eq!(again.sent, 0);
}

#[test]
fn an_smtp_server_that_is_down_is_retried_and_the_email_delivered_once_it_is_back() {
    let env = Env::new();
    let mut sink = SmtpSink::down(&env.mail_dir());
    let store = env.open();
    setup(&store, sink.port, None);
    let mailer = dispatcher(&store, None);
    apply(
        &store,
        Provider::Calendly,
        &booked("D1", "d1@example.com", START, BOOKED, None),
        BOOKED,
    );
    let booking = booking_of(&store, "D1");

    let report = run_due_emails(&store, &mailer, BOOKED, &policy(), 100).unwrap();
    assert_eq!(report.retried, 1, "{report:?}");
    let rows = email_rows(&store, &booking.id);
    let (_, status, note, attempts) = &rows[0];
    assert_eq!((status.as_str(), *attempts), ("pending", 1));
    let note = note.as_deref().unwrap_or_default();
    assert!(
        note.contains("could not be reached") && note.contains("will try again"),
        "{note}"
    );

    // Not due again before the backoff has passed.
    let early = run_due_emails(
        &store,
        &mailer,
        BOOKED + Duration::seconds(30),
        &policy(),
        100,
    )
    .unwrap();
    assert_eq!(early.sent + early.retried, 0, "{early:?}");

    // Still down at the first retry: backed off further.
    let report = run_due_emails(
        &store,
        &mailer,
        BOOKED + Duration::seconds(61),
        &policy(),
        100,
    )
    .unwrap();
    assert_eq!(report.retried, 1, "{report:?}");

    sink.restart().unwrap();
    let report = run_due_emails(
        &store,
        &mailer,
        BOOKED + Duration::minutes(5),
        &policy(),
        100,
    )
    .unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert!(got[0].text().contains("150.00 EUR"));
    assert_eq!(email_rows(&store, &booking.id)[0].1, "done");
    assert!(booking_of(&store, "D1").attention.is_empty());
}

#[test]
fn bad_credentials_give_a_clear_message_and_flag_the_booking() {
    let env = Env::new();
    let sink = SmtpSink::start(&env.mail_dir(), Some(("sam", "right-password"))).unwrap();
    let store = env.open();
    setup(&store, sink.port, Some("sam"));
    let smtp = settings(sink.port, Some("sam")).smtp;

    // The settings screen's "Test connection".
    let err = test_connection(&smtp, &FixedPassword(Some("wrong".into()))).unwrap_err();
    assert!(matches!(err, MailError::AuthRejected { .. }), "{err:?}");
    let message = err.coach_message();
    assert!(
        message.starts_with("The SMTP server refused the user name or password"),
        "{message}"
    );
    assert!(message.contains("535"), "the server's answer: {message}");
    assert!(message.contains("Emails page"), "{message}");
    test_connection(&smtp, &FixedPassword(Some("right-password".into()))).unwrap();
    let missing = test_connection(&smtp, &FixedPassword(None)).unwrap_err();
    assert!(
        matches!(missing, MailError::MissingPassword { .. }),
        "{missing:?}"
    );

    // An email with the wrong password: permanent, the booking needs attention.
    apply(
        &store,
        Provider::Calendly,
        &booked("B1", "b1@example.com", START, BOOKED, None),
        BOOKED,
    );
    let report = run_due_emails(
        &store,
        &dispatcher(&store, Some("wrong")),
        BOOKED,
        &policy(),
        100,
    )
    .unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    assert!(sink.messages().is_empty());
    let flagged = attention_of(&store, "B1");
    assert!(
        flagged.contains("refused the user name or password"),
        "{flagged}"
    );
    let (_, status, note, _) = &email_rows(&store, &booking_of(&store, "B1").id)[0];
    assert_eq!(status, "failed");
    assert!(note.as_deref().unwrap_or_default().contains("535"));

    // With the right password the next email goes through.
    let other = dispatcher(&store, Some("right-password"));
    apply(
        &store,
        Provider::Calendly,
        &booked("B2", "b2@example.com", START, BOOKED, None),
        BOOKED,
    );
    let report = run_due_emails(&store, &other, BOOKED, &policy(), 100).unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    assert_eq!(sink.messages().len(), 1);
}

#[test]
fn the_coachs_template_is_previewed_and_then_sent() {
    use coachdesk_mail::{
        preview_booking, reset_template, save_template, Template, TemplateSaveError,
    };
    let env = Env::new();
    let sink = SmtpSink::start(&env.mail_dir(), None).unwrap();
    let store = env.open();
    setup(&store, sink.port, None);
    apply(
        &store,
        Provider::Calendly,
        &booked("T1", "t1@example.com", START, BOOKED, None),
        BOOKED,
    );
    let booking = booking_of(&store, "T1");

    let mine = Template {
        subject: "{client_name}, your place for {session} <b>".into(),
        body: "Pay {amount} here: {payment_link}\n\n{coach_name}".into(),
    };
    {
        let store = store.lock().unwrap();
        let bad = Template {
            subject: "x".into(),
            body: "{refund_amount}".into(),
        };
        assert!(matches!(
            save_template(&store, MailKind::PaymentRequest, &bad),
            Err(TemplateSaveError::Invalid(_))
        ));
        save_template(&store, MailKind::PaymentRequest, &mine).unwrap();
        let shown = preview_booking(&store, MailKind::PaymentRequest, &mine, &booking.id).unwrap();
        assert_eq!(shown.subject, "Dana Client, your place for Coaching 60 <b>");
        assert!(
            shown.text.starts_with(
                "Pay 150.00 EUR here: https://relay.test/pay/coaching-60?invitee_uuid=T1"
            ),
            "{}",
            shown.text
        );
        assert!(
            shown.html.contains("Coaching 60 &lt;b&gt;"),
            "{}",
            shown.html
        );
    }
    run_due_emails(&store, &dispatcher(&store, None), BOOKED, &policy(), 100).unwrap();
    let got = sink.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].subject,
        "Dana Client, your place for Coaching 60 <b>"
    );
    assert!(got[0].text().contains("Sam Coach"));

    let default = reset_template(&store.lock().unwrap(), MailKind::PaymentRequest).unwrap();
    assert_eq!(
        default,
        coachdesk_mail::default_template(MailKind::PaymentRequest)
    );
}
