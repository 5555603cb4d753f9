//! Coachdesk's client emails: decided from the booking's state when they are sent, so a
//! client is never told something the books contradict.
//!
//! Emails are effects in the store's outbox (`SendEmail`). When one is run:
//! 1. [`Dispatcher::deliver`] reads the booking as it is *now* and [`decide`]s: a payment
//!    request for a booking paid in the meantime is dropped (the outbox row keeps the
//!    reason), a cancellation states the refund the books hold at that moment;
//! 2. the coach's [`Template`] (or the default) is rendered with the client's name, the
//!    session, the time in the client's zone, amounts and links, as plain text and HTML;
//! 3. the message goes through the coach's own SMTP server ([`smtp`]), with a Message-ID
//!    made from the outbox row's idempotency key, so a resend after a crash is the same
//!    message; failures are classed transient (retried) or permanent (the booking is
//!    flagged with the server's answer).
//!
//! The pure part ([`template`], [`decide`], [`preview`]) has no I/O and takes `now`. The
//! I/O part ([`smtp`], [`dispatch`], [`settings`]) talks to SQLite, the keychain and the
//! SMTP server. [`SmtpMailer`] plugs it into the sync crate's effect executor. Depends on
//! domain, store and sync (for the `Mailer` trait); not on Tauri.

pub mod decide;
pub mod dispatch;
pub mod error;
pub mod kind;
pub mod preview;
pub mod settings;
pub mod smtp;
pub mod sync_mailer;
pub mod template;

pub use decide::{decide, CoachIdentity, Decision, DropReason, MailContext, Message, SessionInfo};
pub use dispatch::{
    preview_booking, run_due_emails, Delivery, Dispatcher, EmailJob, EmailRunReport, RetryPolicy,
};
pub use error::{classify, MailError, SettingsField, SmtpFailure};
pub use kind::MailKind;
pub use preview::{preview_sample, sample_booking};
pub use settings::{
    load_settings, load_template, reset_template, save_settings, save_template, MailSettings,
    TemplateSaveError,
};
pub use smtp::{
    test_connection, FixedPassword, KeychainPasswords, PasswordSource, SecretPasswords, Security,
    SmtpSettings,
};
pub use sync_mailer::SmtpMailer;
pub use template::{default_template, Placeholder, Rendered, Template, TemplateProblem};
