//! The email settings page's use cases: the coach's SMTP server and identity, the check
//! and test-email buttons, and the template editor with its preview.
//!
//! The mail crate validates, renders and talks SMTP; this module converts the page's
//! drafts and turns [`MailError`]s into sentences, each invalid field named by the error's
//! kind. The SMTP password goes to the app's secret source (the OS keychain) and nowhere
//! else: it is never written to SQLite, never returned, never logged. SMTP is blocking, so
//! the checks run it on tokio's blocking pool.

use std::sync::{Arc, Mutex, MutexGuard};

use coachdesk_mail::settings::is_customised;
use coachdesk_mail::smtp::{self, message_id};
use coachdesk_mail::{
    default_template, load_settings, load_template, preview_sample, reset_template, save_settings,
    save_template, test_connection, CoachIdentity, Dispatcher, MailError, MailKind, MailSettings,
    Message, PasswordSource, Placeholder, SecretPasswords, Security, SmtpMailer, SmtpSettings,
    Template, TemplateSaveError,
};
use coachdesk_protocol::ipc::{CommandError, FieldError};
use coachdesk_protocol::mail::{
    MailCheck, MailPreview, MailSettingsDraft, MailSettingsView, MailTemplateDraft,
    MailTemplateView,
};
use coachdesk_store::Store;
use coachdesk_sync::{Mailer, SecretSource};
use time::OffsetDateTime;

/// The mailer the app's sync plugs into `Outlets { mailer, .. }`: the saved mail settings
/// (read at each send, so a change applies at once) and the SMTP password from `secrets`.
pub fn mailer(store: Arc<Mutex<Store>>, secrets: Arc<dyn SecretSource>) -> Arc<dyn Mailer> {
    Arc::new(SmtpMailer::new(Dispatcher::new(
        store,
        Arc::new(SecretPasswords(secrets)),
    )))
}

/// Demo mode: points email at the loopback SMTP server `scripts/run-demo` started
/// (`COACHDESK_DEMO_SMTP=127.0.0.1:PORT`), sending as a demo coach, with payment links
/// through the demo relay (`COACHDESK_RELAY_URL`). Does nothing when the variable is unset.
pub fn configure_demo_mail(
    store: &Store,
    smtp_addr: Option<&str>,
    relay_url: Option<&str>,
) -> Result<Option<String>, MailError> {
    let Some(addr) = smtp_addr.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| MailError::InvalidSettings {
            field: coachdesk_mail::SettingsField::Host,
            message: format!("COACHDESK_DEMO_SMTP \"{addr}\" is not HOST:PORT"),
        })?;
    let port = port.parse().map_err(|_| MailError::InvalidSettings {
        field: coachdesk_mail::SettingsField::Port,
        message: format!("COACHDESK_DEMO_SMTP \"{addr}\" has no port number"),
    })?;
    // The server's port changes with every run; the coach's name and reply-to, once
    // edited on the demo's settings page, are kept.
    let coach = load_settings(store)?.map_or_else(
        || CoachIdentity {
            name: "Sam Demo Coach".into(),
            from_address: "sam@coachdesk-demo.test".into(),
            reply_to: Some("hello@coachdesk-demo.test".into()),
        },
        |saved| saved.coach,
    );
    let settings = MailSettings {
        smtp: SmtpSettings {
            host: host.to_owned(),
            port,
            security: Security::Plain,
            username: None,
            timeout_secs: 10,
        },
        coach,
        relay_url: relay_url
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
    };
    save_settings(store, &settings)?;
    Ok(Some(format!("{host}:{port}")))
}

fn security_name(security: Security) -> &'static str {
    match security {
        Security::StartTls => "start_tls",
        Security::Tls => "tls",
        Security::Plain => "plain",
    }
}

/// The page's view of the saved settings (pure).
pub fn view(settings: Option<&MailSettings>, password_saved: bool) -> MailSettingsView {
    match settings {
        None => MailSettingsView {
            configured: false,
            port: 587,
            security: security_name(Security::StartTls).to_owned(),
            password_saved,
            ..MailSettingsView::default()
        },
        Some(s) => MailSettingsView {
            configured: true,
            host: s.smtp.host.clone(),
            port: s.smtp.port,
            security: security_name(s.smtp.security).to_owned(),
            username: s.smtp.username.clone().unwrap_or_default(),
            password_saved,
            coach_name: s.coach.name.clone(),
            from_address: s.coach.from_address.clone(),
            reply_to: s.coach.reply_to.clone().unwrap_or_default(),
            relay_url: s.relay_url.clone().unwrap_or_default(),
        },
    }
}

fn field(field: &str, message: String) -> CommandError {
    CommandError {
        code: "invalid".to_owned(),
        message: message.clone(),
        fields: vec![FieldError {
            field: field.to_owned(),
            message,
        }],
    }
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// Turns the form into settings, naming the field at fault (pure). `timeout_secs` keeps
/// the saved value.
pub fn settings_from_draft(
    draft: &MailSettingsDraft,
    timeout_secs: u64,
) -> Result<MailSettings, CommandError> {
    let port: u16 = draft.port.trim().parse().map_err(|_| {
        field(
            "port",
            format!(
                "The port \"{}\" is not a number from 1 to 65535 (usually 587 for STARTTLS or 465 for TLS).",
                draft.port.trim()
            ),
        )
    })?;
    let security = match draft.security.as_str() {
        "start_tls" => Security::StartTls,
        "tls" => Security::Tls,
        "plain" => Security::Plain,
        other => {
            return Err(field(
                "security",
                format!("\"{other}\" is not a security choice; pick STARTTLS or TLS."),
            ))
        }
    };
    let settings = MailSettings {
        smtp: SmtpSettings {
            host: draft.host.trim().to_owned(),
            port,
            security,
            username: optional(&draft.username),
            timeout_secs,
        },
        coach: CoachIdentity {
            name: draft.coach_name.trim().to_owned(),
            from_address: draft.from_address.trim().to_owned(),
            reply_to: optional(&draft.reply_to),
        },
        relay_url: optional(&draft.relay_url).map(|u| u.trim_end_matches('/').to_owned()),
    };
    if let Err(err) = settings.validate() {
        // The field comes with the error, by kind: never read back from its words.
        let name = match &err {
            MailError::InvalidSettings { field, .. } => field.as_str(),
            _ => "settings",
        };
        return Err(field(name, err.coach_message()));
    }
    Ok(settings)
}

/// A mail failure for the page, with the words for a check (not an email to retry).
pub fn mail_error(err: MailError) -> CommandError {
    let err = match err {
        MailError::Store(store) => return crate::command_error(store),
        other => other,
    };
    let code = match &err {
        MailError::NotConfigured | MailError::MissingPassword { .. } | MailError::Keychain(_) => {
            "not_configured"
        }
        MailError::InvalidSettings { .. } | MailError::BadAddress { .. } => "invalid",
        MailError::Unreachable { .. } | MailError::Temporary { .. } => "unavailable",
        MailError::Tls { .. } | MailError::AuthRejected { .. } | MailError::Rejected { .. } => {
            "refused"
        }
        MailError::Build(_) | MailError::Store(_) => "internal",
    };
    let message = err.check_message();
    tracing::warn!(code, "{message}");
    CommandError {
        code: code.to_owned(),
        message,
        fields: Vec::new(),
    }
}

fn parse_kind(kind: &str) -> Result<MailKind, CommandError> {
    MailKind::parse(kind).ok_or_else(|| CommandError {
        code: "invalid".to_owned(),
        message: format!("\"{kind}\" is not a kind of client email."),
        fields: Vec::new(),
    })
}

fn template_view(store: &Store, kind: MailKind) -> Result<MailTemplateView, CommandError> {
    let template = load_template(store, kind).map_err(mail_error)?;
    Ok(MailTemplateView {
        kind: kind.as_str().to_owned(),
        label: coachdesk_mail::kind::label(kind).to_owned(),
        subject: template.subject,
        body: template.body,
        customised: is_customised(store, kind).map_err(mail_error)?,
        placeholders: Placeholder::for_kind(kind)
            .into_iter()
            .map(|p| format!("{{{}}}", p.name()))
            .collect(),
    })
}

/// The test email: the confirmation template with sample data, to `to` (default: the
/// reply-to address, else the From address).
pub fn test_message(settings: &MailSettings, to: &str, now: OffsetDateTime) -> Message {
    let kind = MailKind::Confirmation;
    let rendered = preview_sample(
        kind,
        &default_template(kind),
        &settings.coach,
        settings.relay_url.as_deref(),
        now,
    );
    Message {
        kind,
        to_name: Some(settings.coach.name.clone()),
        to_address: to.to_owned(),
        from_name: settings.coach.name.clone(),
        from_address: settings.coach.from_address.clone(),
        reply_to: settings.coach.reply_to.clone(),
        subject: format!("Coachdesk test email: {}", rendered.subject),
        text: format!(
            "This is a test email from Coachdesk: your email settings work.\n\
             Below is a sample booking confirmation as your clients receive it.\n\n{}",
            rendered.text
        ),
        html: rendered.html,
    }
}

/// The email page's use cases over the app's store and keychain.
pub struct MailDesk<'a> {
    pub store: &'a Mutex<Store>,
    pub secrets: Arc<dyn SecretSource>,
}

impl MailDesk<'_> {
    fn store(&self) -> MutexGuard<'_, Store> {
        crate::lock(self.store)
    }

    fn passwords(&self) -> SecretPasswords {
        SecretPasswords(self.secrets.clone())
    }

    fn password_saved(&self, smtp: Option<&SmtpSettings>) -> bool {
        let probe = smtp.cloned().unwrap_or(SmtpSettings {
            host: String::new(),
            port: 0,
            security: Security::StartTls,
            username: None,
            timeout_secs: 0,
        });
        matches!(self.passwords().password(&probe), Ok(Some(_)))
    }

    fn saved_settings(&self) -> Result<MailSettings, CommandError> {
        load_settings(&self.store())
            .map_err(mail_error)?
            .ok_or_else(|| mail_error(MailError::NotConfigured))
    }

    /// What the email settings page shows.
    pub fn settings(&self) -> Result<MailSettingsView, CommandError> {
        let settings = load_settings(&self.store()).map_err(mail_error)?;
        let saved = self.password_saved(settings.as_ref().map(|s| &s.smtp));
        Ok(view(settings.as_ref(), saved))
    }

    /// Saves the email settings; a new password goes to the keychain only.
    pub fn save_settings(
        &self,
        draft: &MailSettingsDraft,
    ) -> Result<MailSettingsView, CommandError> {
        let timeout = load_settings(&self.store())
            .map_err(mail_error)?
            .map_or(20, |s| s.smtp.timeout_secs);
        let settings = settings_from_draft(draft, timeout)?;
        if let Some(password) = draft.password.as_deref().filter(|p| !p.is_empty()) {
            self.passwords().save(password).map_err(mail_error)?;
        }
        save_settings(&self.store(), &settings).map_err(mail_error)?;
        tracing::info!(host = %settings.smtp.host, port = settings.smtp.port, "email settings saved");
        let saved = self.password_saved(Some(&settings.smtp));
        Ok(view(Some(&settings), saved))
    }

    /// Connects to the saved SMTP server, secures the connection and logs in.
    pub async fn check_server(&self) -> Result<MailCheck, CommandError> {
        let settings = self.saved_settings()?;
        let passwords = self.passwords();
        let smtp = settings.smtp.clone();
        blocking(move || test_connection(&smtp, &passwords)).await?;
        let login = match &settings.smtp.username {
            Some(user) => format!(" and logged in as {user}"),
            None => String::new(),
        };
        Ok(MailCheck {
            message: format!(
                "Connected to {}:{}{login}. Email sending works.",
                settings.smtp.host, settings.smtp.port
            ),
        })
    }

    /// Sends a test email through the saved settings, to `to` (default: the reply-to
    /// address, else the From address).
    pub async fn send_test_email(&self, to: Option<&str>) -> Result<MailCheck, CommandError> {
        let settings = self.saved_settings()?;
        let to = to
            .and_then(optional)
            .or_else(|| settings.coach.reply_to.clone())
            .unwrap_or_else(|| settings.coach.from_address.clone());
        let now = OffsetDateTime::now_utc();
        let message = test_message(&settings, &to, now);
        let id = message_id(
            &format!("coachdesk-test-{}", now.unix_timestamp_nanos()),
            &settings.coach.from_address,
        );
        let passwords = self.passwords();
        let smtp = settings.smtp.clone();
        let receipt = blocking(move || smtp::send(&smtp, &passwords, &message, &id, now)).await?;
        tracing::info!(message_id = %receipt.message_id, "test email sent");
        Ok(MailCheck {
            message: format!(
                "A test email was sent to {to}. The server answered \"{}\".",
                receipt.server_answer
            ),
        })
    }

    /// Every kind of client email with its template.
    pub fn templates(&self) -> Result<Vec<MailTemplateView>, CommandError> {
        let store = self.store();
        MailKind::ALL
            .into_iter()
            .map(|kind| template_view(&store, kind))
            .collect()
    }

    /// The draft rendered with a sample booking (Dana, 150.00 EUR, Berlin time), as plain
    /// text and HTML, with its problems.
    pub fn preview_template(
        &self,
        kind: &str,
        draft: MailTemplateDraft,
    ) -> Result<MailPreview, CommandError> {
        let kind = parse_kind(kind)?;
        let settings = load_settings(&self.store()).map_err(mail_error)?;
        let coach = settings.as_ref().map_or_else(
            || CoachIdentity {
                name: "Your name".into(),
                from_address: "you@example.com".into(),
                reply_to: None,
            },
            |s| s.coach.clone(),
        );
        let template = Template {
            subject: draft.subject,
            body: draft.body,
        };
        let rendered = preview_sample(
            kind,
            &template,
            &coach,
            settings.as_ref().and_then(|s| s.relay_url.as_deref()),
            OffsetDateTime::now_utc(),
        );
        Ok(MailPreview {
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            problems: template
                .problems(kind)
                .iter()
                .map(|p| p.describe(kind))
                .collect(),
        })
    }

    /// Saves the coach's template; one with problems is refused, each problem named.
    pub fn save_template(
        &self,
        kind: &str,
        draft: MailTemplateDraft,
    ) -> Result<MailTemplateView, CommandError> {
        let kind = parse_kind(kind)?;
        let template = Template {
            subject: draft.subject,
            body: draft.body,
        };
        let store = self.store();
        match save_template(&store, kind, &template) {
            Ok(()) => template_view(&store, kind),
            Err(TemplateSaveError::Invalid(problems)) => Err(CommandError {
                code: "invalid".to_owned(),
                message: format!(
                    "The {} template was not saved: {}",
                    coachdesk_mail::kind::label(kind).to_lowercase(),
                    problems
                        .iter()
                        .map(|p| p.describe(kind))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                fields: problems
                    .iter()
                    .map(|p| FieldError {
                        field: match p {
                            coachdesk_mail::TemplateProblem::EmptySubject => "subject",
                            _ => "body",
                        }
                        .to_owned(),
                        message: p.describe(kind),
                    })
                    .collect(),
            }),
            Err(TemplateSaveError::Mail(err)) => Err(mail_error(err)),
        }
    }

    /// Goes back to the default template.
    pub fn reset_template(&self, kind: &str) -> Result<MailTemplateView, CommandError> {
        let kind = parse_kind(kind)?;
        let store = self.store();
        reset_template(&store, kind).map_err(mail_error)?;
        template_view(&store, kind)
    }
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, MailError> + Send + 'static,
) -> Result<T, CommandError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| CommandError {
            code: "internal".to_owned(),
            message: format!("The email check stopped unexpectedly ({e})."),
            fields: Vec::new(),
        })?
        .map_err(mail_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> MailSettingsDraft {
        MailSettingsDraft {
            host: " smtp.example.com ".into(),
            port: "587".into(),
            security: "start_tls".into(),
            username: "sam@example.com".into(),
            password: Some("secret".into()),
            coach_name: "Sam Coach".into(),
            from_address: "sam@example.com".into(),
            reply_to: String::new(),
            relay_url: "https://relay.example.com/".into(),
        }
    }

    #[test]
    fn a_draft_becomes_settings_without_the_password() {
        let settings = settings_from_draft(&draft(), 20).unwrap();
        assert_eq!(settings.smtp.host, "smtp.example.com");
        assert_eq!(settings.smtp.security, Security::StartTls);
        assert_eq!(settings.coach.reply_to, None);
        assert_eq!(
            settings.relay_url.as_deref(),
            Some("https://relay.example.com")
        );
        let json = serde_json::to_string(&settings).unwrap();
        assert!(!json.contains("secret"), "{json}");
        let back = view(Some(&settings), true);
        assert_eq!(
            (back.port, back.security.as_str(), back.password_saved),
            (587, "start_tls", true)
        );
    }

    #[test]
    fn a_bad_field_is_named() {
        let port = settings_from_draft(
            &MailSettingsDraft {
                port: "five".into(),
                ..draft()
            },
            20,
        )
        .unwrap_err();
        assert_eq!(port.fields[0].field, "port");
        let plain = settings_from_draft(
            &MailSettingsDraft {
                security: "plain".into(),
                ..draft()
            },
            20,
        )
        .unwrap_err();
        assert_eq!(plain.fields[0].field, "host");
        assert!(
            plain.message.contains("choose STARTTLS or TLS"),
            "{plain:?}"
        );
        let from = settings_from_draft(
            &MailSettingsDraft {
                from_address: "not an address".into(),
                ..draft()
            },
            20,
        )
        .unwrap_err();
        assert_eq!(from.fields[0].field, "from_address");
    }

    #[test]
    fn failures_get_a_code_and_the_check_sentence() {
        let auth = mail_error(MailError::AuthRejected {
            answer: "535 5.7.8 Authentication credentials invalid".into(),
        });
        assert_eq!(auth.code, "refused");
        assert!(auth.message.contains("user name or password"));
        let down = mail_error(MailError::Unreachable {
            server: "127.0.0.1:1".into(),
            message: "Connection refused".into(),
        });
        assert_eq!(down.code, "unavailable");
        assert!(down.message.starts_with("Could not reach"), "{down:?}");
        assert_eq!(mail_error(MailError::NotConfigured).code, "not_configured");
    }

    #[test]
    fn demo_mail_points_at_the_loopback_server() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(configure_demo_mail(&store, None, None).unwrap(), None);
        let addr = configure_demo_mail(&store, Some("127.0.0.1:2525"), Some("http://127.0.0.1:9"))
            .unwrap();
        assert_eq!(addr.as_deref(), Some("127.0.0.1:2525"));
        let saved = load_settings(&store).unwrap().unwrap();
        assert_eq!(
            (saved.smtp.port, saved.smtp.security),
            (2525, Security::Plain)
        );
        assert!(configure_demo_mail(&store, Some("nowhere"), None).is_err());
    }
}
