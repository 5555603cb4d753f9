//! What can go wrong sending an email, classed as worth retrying or not, in words a coach
//! can act on. The SMTP server's own answer is always kept in the message.

use coachdesk_store::StoreError;
use thiserror::Error;

/// A mail failure.
#[derive(Debug, Error)]
pub enum MailError {
    /// No SMTP server has been set up.
    #[error("email sending is not set up: enter your SMTP server in Settings → Email")]
    NotConfigured,
    /// The settings as entered cannot work.
    #[error("the email settings are not valid: {0}")]
    InvalidSettings(String),
    /// The keychain holds no password for the SMTP account.
    #[error("no SMTP password is saved for {account}; enter it in Settings → Email")]
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
    #[error("the SMTP server refused the user name or password (server said: \"{answer}\"); check them in Settings → Email")]
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

    /// Classes a lettre SMTP error, keeping the server's answer.
    pub(crate) fn from_smtp(server: &str, err: &lettre::transport::smtp::Error) -> Self {
        let detail = std::error::Error::source(err)
            .map(|s| s.to_string())
            .unwrap_or_default();
        if let Some(code) = err.status() {
            let answer = format!("{code} {detail}").trim().to_owned();
            let code_text = code.to_string();
            if matches!(code_text.as_str(), "530" | "534" | "535" | "538" | "454")
                && (detail.to_lowercase().contains("auth") || code_text == "535")
            {
                return Self::AuthRejected { answer };
            }
            return if err.is_transient() {
                Self::Temporary { answer }
            } else {
                Self::Rejected { answer }
            };
        }
        if err.is_tls() {
            return Self::Tls {
                server: server.to_owned(),
                message: err.to_string(),
            };
        }
        if err.is_client() && detail.to_lowercase().contains("authentication") {
            return Self::AuthRejected {
                answer: format!("{detail} (the server offers no login method Coachdesk can use)"),
            };
        }
        Self::Unreachable {
            server: server.to_owned(),
            message: error_chain(err),
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let next = inner.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = inner.source();
    }
    text
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
