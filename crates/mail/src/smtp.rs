//! Delivery through the coach's own SMTP server (lettre's blocking transport).
//!
//! STARTTLS (usually port 587) or implicit TLS (465) with the system-independent webpki
//! roots; unencrypted only to a loopback address (the tests' and the demo's local server).
//! The password comes from a [`PasswordSource`] (the OS keychain in the app) just before
//! the connection and is never stored or logged. Each message carries a Message-ID derived
//! from its outbox row's idempotency key, so a resend after a crash is the same message.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use coachdesk_sync::{Secret, SecretError, SecretName, SecretSource};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, SmtpTransport, Transport};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::decide::Message;
use crate::error::{MailError, SettingsField};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    StartTls,
    /// TLS from the first byte ("SMTPS").
    Tls,
    /// No encryption: accepted only for a loopback host.
    Plain,
}

/// The coach's SMTP server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// The login; `None` for a server that needs none (the local test server).
    pub username: Option<String>,
    /// Seconds to wait for the server before giving up (and retrying later).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    20
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl SmtpSettings {
    /// Checks the settings as entered.
    pub fn validate(&self) -> Result<(), MailError> {
        let host = self.host.trim();
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
            return Err(MailError::InvalidSettings {
                field: SettingsField::Host,
                message: format!(
                    "\"{}\" is not a server name; write it as smtp.example.com",
                    self.host
                ),
            });
        }
        if self.port == 0 {
            return Err(MailError::InvalidSettings {
                field: SettingsField::Port,
                message: "the port must be a number from 1 to 65535 (usually 587 or 465)".into(),
            });
        }
        if self.security == Security::Plain && !is_loopback(host) {
            return Err(MailError::InvalidSettings { field: SettingsField::Host, message: format!(
                "an unencrypted connection is only allowed to this computer (localhost), not to {host}; choose STARTTLS or TLS"
            ) });
        }
        if self
            .username
            .as_deref()
            .is_some_and(|u| u.trim().is_empty())
        {
            return Err(MailError::InvalidSettings {
                field: SettingsField::Username,
                message: "the user name is empty; leave it out if the server needs no login".into(),
            });
        }
        Ok(())
    }

    /// The keychain account this server's password is saved under.
    pub fn account(&self) -> String {
        format!(
            "smtp:{}@{}",
            self.username.as_deref().unwrap_or(""),
            self.host.trim()
        )
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Where the SMTP password comes from.
pub trait PasswordSource: Send + Sync + 'static {
    /// The password of the server's account, if one is saved.
    fn password(&self, smtp: &SmtpSettings) -> Result<Option<String>, MailError>;
}

/// The OS keychain (service `coachdesk`, account `smtp:{user}@{host}`).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeychainPasswords;

/// The keychain service Coachdesk's secrets live under.
pub const KEYCHAIN_SERVICE: &str = "coachdesk";

impl KeychainPasswords {
    /// Saves the password for the server's account.
    pub fn save(&self, smtp: &SmtpSettings, password: &str) -> Result<(), MailError> {
        coachdesk_sync::keychain_entry(KEYCHAIN_SERVICE, &smtp.account())
            .and_then(|entry| entry.set_password(password))
            .map_err(|e| MailError::Keychain(e.to_string()))
    }

    /// Forgets the password (the coach removed the account).
    pub fn delete(&self, smtp: &SmtpSettings) -> Result<(), MailError> {
        match coachdesk_sync::keychain_entry(KEYCHAIN_SERVICE, &smtp.account())
            .and_then(|entry| entry.delete_credential())
        {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(MailError::Keychain(e.to_string())),
        }
    }
}

impl PasswordSource for KeychainPasswords {
    fn password(&self, smtp: &SmtpSettings) -> Result<Option<String>, MailError> {
        match coachdesk_sync::keychain_entry(KEYCHAIN_SERVICE, &smtp.account())
            .and_then(|entry| entry.get_password())
        {
            Ok(password) => Ok(Some(password)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(MailError::Keychain(e.to_string())),
        }
    }
}

/// The password from Coachdesk's secret source under [`SecretName::SmtpPassword`]: the OS
/// keychain in the app (`AppState::secrets()`), memory in demo mode. One SMTP account per
/// app, so the entry does not depend on the server's name.
#[derive(Clone)]
pub struct SecretPasswords(pub Arc<dyn SecretSource>);

impl fmt::Debug for SecretPasswords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretPasswords(<secret source>)")
    }
}

impl SecretPasswords {
    /// Saves (or replaces) the SMTP password.
    pub fn save(&self, password: &str) -> Result<(), MailError> {
        self.0
            .store(SecretName::SmtpPassword, &Secret::new(password))
            .map_err(|e| MailError::Keychain(e.to_string()))
    }
}

impl PasswordSource for SecretPasswords {
    fn password(&self, _smtp: &SmtpSettings) -> Result<Option<String>, MailError> {
        match self.0.get(SecretName::SmtpPassword) {
            Ok(secret) => Ok(Some(secret.expose().to_owned())),
            Err(SecretError::Missing { .. }) => Ok(None),
            Err(e) => Err(MailError::Keychain(e.to_string())),
        }
    }
}

/// A password given directly (tests, the demo's local server).
#[derive(Clone, Default)]
pub struct FixedPassword(pub Option<String>);

impl fmt::Debug for FixedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FixedPassword(<redacted>)")
    }
}

impl PasswordSource for FixedPassword {
    fn password(&self, _smtp: &SmtpSettings) -> Result<Option<String>, MailError> {
        Ok(self.0.clone())
    }
}

/// What the server said when it took a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub message_id: String,
    /// Such as `250 OK queued as 1234`.
    pub server_answer: String,
}

/// The Message-ID of the email of an outbox row: the row's idempotency key, made a valid
/// `id-left` (characters outside RFC 5322 `atext` become `.`), at the sender's domain.
/// The same row always gives the same id, so a resend after a crash is recognisably the
/// same message (and mail clients that deduplicate by Message-ID show it once).
pub fn message_id(idempotency_key: &str, from_address: &str) -> String {
    let left: String = idempotency_key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) {
                c
            } else {
                '.'
            }
        })
        .collect();
    let left = left.trim_matches('.');
    let domain = from_address
        .rsplit_once('@')
        .map(|(_, d)| d.trim().trim_end_matches('>'))
        .filter(|d| {
            !d.is_empty()
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
        })
        .unwrap_or("coachdesk.invalid");
    format!("<{left}@{domain}>")
}

fn mailbox(name: Option<&str>, address: &str) -> Result<Mailbox, MailError> {
    let parsed: Address = address
        .trim()
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::BadAddress {
            address: address.to_owned(),
            message: e.to_string(),
        })?;
    Ok(Mailbox::new(
        name.map(|n| n.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|n| !n.is_empty()),
        parsed,
    ))
}

/// Builds the MIME message: plain text and HTML alternatives.
pub fn build(
    message: &Message,
    message_id: &str,
    date: OffsetDateTime,
) -> Result<lettre::Message, MailError> {
    let mut builder = lettre::Message::builder()
        .message_id(Some(message_id.to_owned()))
        .date(SystemTime::from(date))
        .from(mailbox(Some(&message.from_name), &message.from_address)?)
        .to(mailbox(message.to_name.as_deref(), &message.to_address)?)
        .subject(message.subject.clone());
    if let Some(reply_to) = message.reply_to.as_deref().filter(|r| !r.trim().is_empty()) {
        builder = builder.reply_to(mailbox(Some(&message.from_name), reply_to)?);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            message.text.clone(),
            message.html.clone(),
        ))
        .map_err(|e| MailError::Build(e.to_string()))
}

fn transport(smtp: &SmtpSettings, password: Option<String>) -> Result<SmtpTransport, MailError> {
    smtp.validate()?;
    let host = smtp.host.trim();
    let tls_params = || {
        TlsParameters::new(host.to_owned()).map_err(|e| MailError::Tls {
            server: host.to_owned(),
            message: e.to_string(),
        })
    };
    let tls = match smtp.security {
        Security::StartTls => Tls::Required(tls_params()?),
        Security::Tls => Tls::Wrapper(tls_params()?),
        Security::Plain => Tls::None,
    };
    let mut builder = SmtpTransport::builder_dangerous(host)
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(smtp.timeout_secs.max(1))));
    if let Some(user) = &smtp.username {
        let password = password.ok_or_else(|| MailError::MissingPassword {
            account: format!("{user} at {host}"),
        })?;
        builder = builder.credentials(Credentials::new(user.trim().to_owned(), password));
    }
    Ok(builder.build())
}

fn server_name(smtp: &SmtpSettings) -> String {
    format!("{}:{}", smtp.host.trim(), smtp.port)
}

/// Sends one message. Blocking: call it off the async runtime's worker threads.
pub fn send(
    smtp: &SmtpSettings,
    passwords: &dyn PasswordSource,
    message: &Message,
    message_id: &str,
    date: OffsetDateTime,
) -> Result<Receipt, MailError> {
    let email = build(message, message_id, date)?;
    let transport = transport(smtp, passwords.password(smtp)?)?;
    let response = transport
        .send(&email)
        .map_err(|e| MailError::from_smtp(&server_name(smtp), &e))?;
    Ok(Receipt {
        message_id: message_id.to_owned(),
        server_answer: format!(
            "{} {}",
            response.code(),
            response.message().collect::<Vec<_>>().join(" ")
        )
        .trim()
        .to_owned(),
    })
}

/// Connects, secures the connection and logs in, then says goodbye: the settings
/// screen's "Test connection" button. The error's [`MailError::coach_message`] says what
/// to fix.
pub fn test_connection(
    smtp: &SmtpSettings,
    passwords: &dyn PasswordSource,
) -> Result<(), MailError> {
    let transport = transport(smtp, passwords.password(smtp)?)?;
    match transport.test_connection() {
        Ok(true) => Ok(()),
        Ok(false) => Err(MailError::Unreachable {
            server: server_name(smtp),
            message: "the server did not answer NOOP".into(),
        }),
        Err(e) => Err(MailError::from_smtp(&server_name(smtp), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(security: Security, host: &str) -> SmtpSettings {
        SmtpSettings {
            host: host.into(),
            port: 587,
            security,
            username: Some("sam".into()),
            timeout_secs: 5,
        }
    }

    #[test]
    fn plain_connections_only_to_loopback() {
        assert!(settings(Security::Plain, "127.0.0.1").validate().is_ok());
        assert!(settings(Security::Plain, "localhost").validate().is_ok());
        assert!(settings(Security::Plain, "[::1]").validate().is_ok());
        let err = settings(Security::Plain, "smtp.example.com")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("choose STARTTLS or TLS"), "{err}");
        assert!(settings(Security::StartTls, "smtp.example.com")
            .validate()
            .is_ok());
        assert!(settings(Security::Tls, "smtp example").validate().is_err());
    }

    #[test]
    fn message_ids_follow_the_outbox_key() {
        let id = message_id(
            "coachdesk-bk_3f9a-email:payment-request",
            "Sam <sam@coach.example>",
        );
        assert_eq!(
            id,
            "<coachdesk-bk_3f9a-email.payment-request@coach.example>"
        );
        assert_eq!(
            message_id("coachdesk-bk_1-email:confirmation", "nobody"),
            "<coachdesk-bk_1-email.confirmation@coachdesk.invalid>"
        );
    }

    #[test]
    fn a_missing_password_is_a_clear_error() {
        let err = transport(&settings(Security::StartTls, "smtp.example.com"), None).unwrap_err();
        assert!(matches!(err, MailError::MissingPassword { .. }));
        assert!(
            err.coach_message().contains("Emails page"),
            "{}",
            err.coach_message()
        );
    }

    #[test]
    fn the_secret_source_holds_the_password_and_missing_is_none() {
        let secrets = Arc::new(coachdesk_sync::MemorySecrets::default());
        let source = SecretPasswords(secrets);
        let smtp = settings(Security::StartTls, "smtp.example.com");
        assert_eq!(source.password(&smtp).unwrap(), None);
        source.save("s3cret").unwrap();
        assert_eq!(source.password(&smtp).unwrap().as_deref(), Some("s3cret"));
        assert!(!format!("{source:?}").contains("s3cret"));
    }

    #[test]
    fn debug_output_leaves_out_nothing_secret() {
        let text = format!("{:?}", FixedPassword(Some("hunter2".into())));
        assert!(!text.contains("hunter2"));
    }
}
