//! What can go wrong sending an email, classed as worth retrying or not, in words a coach
//! can act on. The SMTP server's own answer is always kept in the message.

use coachdesk_store::StoreError;
use coachdesk_sync::error_chain;
use thiserror::Error;

/// A field of the email settings form, as the form names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsField {
    Host,
    Port,
    Username,
    CoachName,
    FromAddress,
    ReplyTo,
    RelayUrl,
}

impl SettingsField {
    /// The form's name for the field (stable: the window marks the field by it).
    pub fn as_str(self) -> &'static str {
        match self {
            SettingsField::Host => "host",
            SettingsField::Port => "port",
            SettingsField::Username => "username",
            SettingsField::CoachName => "coach_name",
            SettingsField::FromAddress => "from_address",
            SettingsField::ReplyTo => "reply_to",
            SettingsField::RelayUrl => "relay_url",
        }
    }
}

/// A mail failure.
#[derive(Debug, Error)]
pub enum MailError {
    /// No SMTP server has been set up.
    #[error("email sending is not set up: enter your SMTP server on the Emails page")]
    NotConfigured,
    /// The settings as entered cannot work.
    #[error("the email settings are not valid: {message}")]
    InvalidSettings {
        /// The form field the problem is about.
        field: SettingsField,
        message: String,
    },
    /// The keychain holds no password for the SMTP account.
    #[error("no SMTP password is saved for {account}; enter it on the Emails page")]
    MissingPassword { account: String },
    /// The OS keychain could not be read or written.
    #[error("the system keychain failed ({0}); unlock it or restart the app, then try again")]
    Keychain(String),
    /// The server could not be reached (refused, unreachable, timed out). Retried.
    #[error("the SMTP server {server} could not be reached ({message}); Coachdesk will try again")]
    Unreachable { server: String, message: String },
    /// TLS failed: a wrong port for the chosen security, or a certificate the system does
    /// not trust.
    #[error("a secure connection to {server} failed ({message}); check the port and the security setting (STARTTLS is usually port 587, TLS port 465)")]
    Tls { server: String, message: String },
    /// The server refused the user name or password.
    #[error("the SMTP server refused the user name or password (server said: \"{answer}\"); check them on the Emails page")]
    AuthRejected { answer: String },
    /// A 4xx answer: the server asks to try later. Retried.
    #[error("the SMTP server asked to try again later (server said: \"{answer}\"); Coachdesk will try again")]
    Temporary { answer: String },
    /// A 5xx answer: the server refused the message for good.
    #[error("the SMTP server refused the email (server said: \"{answer}\")")]
    Rejected { answer: String },
    /// An address could not be used in an email.
    #[error("\"{address}\" is not a usable email address ({message})")]
    BadAddress { address: String, message: String },
    /// The message could not be built.
    #[error("the email could not be built: {0}")]
    Build(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MailError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::Temporary { .. }
                | Self::MissingPassword { .. }
                | Self::Keychain(_)
                | Self::Store(_)
        )
    }

    /// The sentence for the coach, starting with a capital and ending with a full stop.
    pub fn coach_message(&self) -> String {
        let text = self.to_string();
        let mut chars = text.chars();
        let mut out: String = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        };
        if !out.ends_with('.') {
            out.push('.');
        }
        out
    }

    /// The sentence for the settings screen's check button: like
    /// [`MailError::coach_message`], but about the settings being checked rather than an
    /// email waiting to be retried.
    pub fn check_message(&self) -> String {
        match self {
            Self::Unreachable { server, message } => format!(
                "Could not reach the SMTP server {server} ({message}). Check the server name and the port, and that this computer is online."
            ),
            Self::Temporary { answer } => format!(
                "The SMTP server is busy and asked to try again later (server said: \"{answer}\"). Try the check again in a few minutes."
            ),
            other => other.coach_message(),
        }
    }

    /// Classes a lettre SMTP error, keeping the server's answer.
    pub(crate) fn from_smtp(server: &str, err: &lettre::transport::smtp::Error) -> Self {
        classify(
            server,
            &SmtpFailure {
                code: err.status().map(|code| code.to_string()),
                detail: std::error::Error::source(err)
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                tls: err.is_tls(),
                client: err.is_client(),
                transient: err.is_transient(),
                chain: error_chain(err),
            },
        )
    }
}

/// What a lettre SMTP error says about itself, as plain data (lettre's errors cannot be
/// built outside lettre, so the classing below is tested on this).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmtpFailure {
    /// The server's three-digit reply code, if the server answered.
    pub code: Option<String>,
    /// The server's words (or the cause of a local failure).
    pub detail: String,
    /// A TLS handshake or certificate failure.
    pub tls: bool,
    /// lettre refused on the client side (no usable login mechanism...).
    pub client: bool,
    /// A 4xx answer.
    pub transient: bool,
    /// The error and its sources, for a connection failure.
    pub chain: String,
}

/// Classes an SMTP failure: bad login, try later (4xx), refused (5xx), TLS, unreachable.
/// Pure.
pub fn classify(server: &str, failure: &SmtpFailure) -> MailError {
    let detail = failure.detail.trim();
    if let Some(code) = &failure.code {
        let answer = format!("{code} {detail}").trim().to_owned();
        if is_auth_reply(code, enhanced_status(detail)) {
            return MailError::AuthRejected { answer };
        }
        return if failure.transient || code.starts_with('4') {
            MailError::Temporary { answer }
        } else {
            MailError::Rejected { answer }
        };
    }
    if failure.tls {
        return MailError::Tls {
            server: server.to_owned(),
            message: failure.chain.clone(),
        };
    }
    // lettre's client-side errors all come from its login step (no usable mechanism, an
    // unexpected challenge), except certificate reads Coachdesk never makes.
    if failure.client {
        return MailError::AuthRejected {
            answer: format!("{detail} (the server offers no login method Coachdesk can use)"),
        };
    }
    MailError::Unreachable {
        server: server.to_owned(),
        message: failure.chain.clone(),
    }
}

/// The RFC 3463 enhanced status code (`class.subject.detail`) that opens a reply's text, if any.
fn enhanced_status(detail: &str) -> Option<(u16, u16, u16)> {
    let first = detail.split_whitespace().next()?;
    let mut parts = first.split('.').map(|part| part.parse::<u16>().ok());
    let code = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(code)
}

/// Whether a reply refuses the login, by its code and enhanced code as RFC 4954 defines them:
/// 535 (credentials invalid) always; 530 5.7.0 (authentication required), 534 5.7.9
/// (mechanism too weak), 538 5.7.11 (encryption required for it), 454 4.7.0 (temporary
/// authentication failure).
fn is_auth_reply(code: &str, enhanced: Option<(u16, u16, u16)>) -> bool {
    matches!(
        (code, enhanced),
        ("535", _)
            | ("530", Some((5, 7, 0)))
            | ("534", Some((5, 7, 9)))
            | ("538", Some((5, 7, 11)))
            | ("454", Some((4, 7, 0)))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_and_permanent_failures_are_told_apart() {
        assert!(MailError::Unreachable {
            server: "x".into(),
            message: "refused".into()
        }
        .is_transient());
        assert!(MailError::Temporary {
            answer: "451".into()
        }
        .is_transient());
        assert!(!MailError::Rejected {
            answer: "550".into()
        }
        .is_transient());
        assert!(!MailError::AuthRejected {
            answer: "535".into()
        }
        .is_transient());
    }

    fn answered(code: &str, detail: &str) -> SmtpFailure {
        SmtpFailure {
            code: Some(code.into()),
            detail: detail.into(),
            transient: code.starts_with('4'),
            ..SmtpFailure::default()
        }
    }

    #[test]
    fn server_answers_are_classed_by_code_and_words() {
        let server = "smtp.example.com:587";
        let bad_login = classify(
            server,
            &answered("535", "5.7.8 Authentication credentials invalid"),
        );
        assert!(
            matches!(&bad_login, MailError::AuthRejected { answer } if answer == "535 5.7.8 Authentication credentials invalid"),
            "{bad_login:?}"
        );
        assert!(matches!(
            classify(server, &answered("530", "5.7.0 Authentication required")),
            MailError::AuthRejected { .. }
        ));
        assert!(matches!(
            classify(
                server,
                &answered("454", "4.7.0 Temporary authentication failure")
            ),
            MailError::AuthRejected { .. }
        ));
        let busy = classify(server, &answered("421", "4.3.2 Service not available"));
        assert!(matches!(busy, MailError::Temporary { .. }) && busy.is_transient());
        let refused = classify(server, &answered("550", "5.7.1 Relaying denied"));
        assert!(matches!(refused, MailError::Rejected { .. }) && !refused.is_transient());
    }

    #[test]
    fn local_failures_are_tls_or_unreachable() {
        let server = "smtp.example.com:465";
        let tls = classify(
            server,
            &SmtpFailure {
                tls: true,
                chain: "invalid peer certificate: UnknownIssuer".into(),
                ..SmtpFailure::default()
            },
        );
        assert!(matches!(tls, MailError::Tls { .. }));
        assert!(tls.coach_message().contains("STARTTLS is usually port 587"));
        let no_mechanism = classify(
            server,
            &SmtpFailure {
                client: true,
                detail: "No compatible authentication mechanism was found".into(),
                ..SmtpFailure::default()
            },
        );
        assert!(matches!(no_mechanism, MailError::AuthRejected { .. }));
        let down = classify(
            server,
            &SmtpFailure {
                chain: "Connection error: Connection refused (os error 111)".into(),
                ..SmtpFailure::default()
            },
        );
        assert!(down.is_transient());
        let check = down.check_message();
        assert!(
            check.starts_with("Could not reach the SMTP server smtp.example.com:465")
                && check.contains("Connection refused")
                && check.contains("Check the server name and the port"),
            "{check}"
        );
        assert!(!check.contains("try again"), "{check}");
    }

    #[test]
    fn messages_for_the_coach_are_sentences_with_the_servers_words() {
        let text = MailError::AuthRejected {
            answer: "535 5.7.8 Authentication credentials invalid".into(),
        }
        .coach_message();
        assert!(
            text.starts_with("The SMTP server refused the user name or password"),
            "{text}"
        );
        assert!(text.contains("535 5.7.8 Authentication credentials invalid"));
        assert!(text.ends_with('.'));
    }
}
