//! The email settings page's wire types: the SMTP server and the coach's identity, the
//! templates per kind of client email, their preview and the connection check.
//!
//! The SMTP password crosses this boundary only inbound (the coach typing it); what comes
//! back says whether one is saved, never the password itself.

use serde::{Deserialize, Serialize};

/// How the connection to the SMTP server is secured: `start_tls`, `tls`, or `plain`
/// (accepted only for a server on this computer).
pub type SecurityName = String;

/// The email settings as the page shows them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MailSettingsView {
    /// Whether email sending has been set up at all.
    pub configured: bool,
    pub host: String,
    pub port: u16,
    pub security: SecurityName,
    /// The SMTP login; empty when the server needs none.
    pub username: String,
    /// Whether an SMTP password is saved in the keychain.
    pub password_saved: bool,
    /// Shown as the sender and as `{coach_name}`.
    pub coach_name: String,
    pub from_address: String,
    /// Empty: answers go to the From address.
    pub reply_to: String,
    /// The relay's public address, for payment links; empty when not set.
    pub relay_url: String,
}

/// What the coach submits on the email settings form.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MailSettingsDraft {
    pub host: String,
    /// As typed, so "abc" gets a sentence rather than a decoding error.
    pub port: String,
    pub security: SecurityName,
    pub username: String,
    /// A new password to save in the keychain; `None` keeps the saved one.
    pub password: Option<String>,
    pub coach_name: String,
    pub from_address: String,
    pub reply_to: String,
    pub relay_url: String,
}

/// One kind of client email, with the coach's template (or the default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailTemplateView {
    /// `payment_request`, `payment_reminder`, `confirmation`, `cancellation`, `reschedule`.
    pub kind: String,
    /// What the page lists it as ("Payment request").
    pub label: String,
    pub subject: String,
    pub body: String,
    /// Whether the coach changed it (otherwise it is the default).
    pub customised: bool,
    /// The placeholders this email can use, written as `{client_name}`.
    pub placeholders: Vec<String>,
}

/// A template as edited (not saved yet).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MailTemplateDraft {
    pub subject: String,
    pub body: String,
}

/// A template rendered with sample data (or a real booking), with its problems.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MailPreview {
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part (everything escaped; only links are markup).
    pub html: String,
    /// Sentences about what is wrong (an unknown placeholder...); empty when it can be saved.
    pub problems: Vec<String>,
}

/// The result of the "Check" or "Send test email" button.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MailCheck {
    /// What happened, in a sentence.
    pub message: String,
}

/// The email page's command names.
pub mod command {
    pub const MAIL_SETTINGS: &str = "mail_settings";
    pub const SAVE_MAIL_SETTINGS: &str = "save_mail_settings";
    pub const CHECK_MAIL_SERVER: &str = "check_mail_server";
    pub const SEND_TEST_EMAIL: &str = "send_test_email";
    pub const LIST_MAIL_TEMPLATES: &str = "list_mail_templates";
    pub const PREVIEW_MAIL_TEMPLATE: &str = "preview_mail_template";
    pub const SAVE_MAIL_TEMPLATE: &str = "save_mail_template";
    pub const RESET_MAIL_TEMPLATE: &str = "reset_mail_template";
}
