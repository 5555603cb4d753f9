//! The coach's mail settings and template overrides, as JSON in the store's `settings`
//! table (`mail.settings`, `mail.template.{kind}`). Never the password: that is in the
//! keychain.

use coachdesk_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::decide::CoachIdentity;
use crate::error::{MailError, SettingsField};
use crate::kind::MailKind;
use crate::smtp::SmtpSettings;
use crate::template::{default_template, Template, TemplateProblem};

/// The key of the settings as a whole.
pub const SETTINGS_KEY: &str = "mail.settings";

/// The key of a kind's template override.
pub fn template_key(kind: MailKind) -> String {
    format!("mail.template.{}", kind.as_str())
}

/// Everything the settings screen's "Email" section holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailSettings {
    pub smtp: SmtpSettings,
    pub coach: CoachIdentity,
    /// The relay's public address; payment links go through its `/pay/` redirect.
    pub relay_url: Option<String>,
}

impl MailSettings {
    /// Checks the settings as entered.
    pub fn validate(&self) -> Result<(), MailError> {
        self.smtp.validate()?;
        if self.coach.name.trim().is_empty() {
            return Err(MailError::InvalidSettings {
                field: SettingsField::CoachName,
                message: "your name is empty; it is shown as the sender".into(),
            });
        }
        check_address(
            SettingsField::FromAddress,
            "the From address",
            &self.coach.from_address,
        )?;
        if let Some(reply_to) = &self.coach.reply_to {
            check_address(SettingsField::ReplyTo, "the reply-to address", reply_to)?;
        }
        if let Some(url) = &self.relay_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(MailError::InvalidSettings {
                    field: SettingsField::RelayUrl,
                    message: format!("the relay address \"{url}\" must start with https://"),
                });
            }
        }
        Ok(())
    }
}

fn check_address(field: SettingsField, what: &str, address: &str) -> Result<(), MailError> {
    address
        .trim()
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| MailError::InvalidSettings {
            field,
            message: format!("{what} \"{address}\" is not valid ({e})"),
        })
}

/// The saved settings, if email has been set up.
pub fn load_settings(store: &Store) -> Result<Option<MailSettings>, MailError> {
    store
        .mail_setting(SETTINGS_KEY)?
        .map(|json| {
            serde_json::from_str(&json)
                .map_err(|e| MailError::Store(StoreError::Corrupt(format!("{SETTINGS_KEY}: {e}"))))
        })
        .transpose()
}

/// Validates and saves the settings.
pub fn save_settings(store: &Store, settings: &MailSettings) -> Result<(), MailError> {
    settings.validate()?;
    let json = serde_json::to_string(settings).map_err(|e| MailError::Build(e.to_string()))?;
    store.set_mail_setting(SETTINGS_KEY, &json)?;
    Ok(())
}

/// The coach's template for `kind`, or the default one. An unreadable override falls back
/// to the default rather than stopping every email.
pub fn load_template(store: &Store, kind: MailKind) -> Result<Template, MailError> {
    Ok(store
        .mail_setting(&template_key(kind))?
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_else(|| default_template(kind)))
}

/// Whether the coach has changed the template of `kind`.
pub fn is_customised(store: &Store, kind: MailKind) -> Result<bool, MailError> {
    Ok(store.mail_setting(&template_key(kind))?.is_some())
}

/// What went wrong saving a template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateSaveError {
    #[error("the template has problems")]
    Invalid(Vec<TemplateProblem>),
    #[error(transparent)]
    Mail(#[from] MailError),
}

/// Saves the coach's template for `kind` if it has no problems.
pub fn save_template(
    store: &Store,
    kind: MailKind,
    template: &Template,
) -> Result<(), TemplateSaveError> {
    let problems = template.problems(kind);
    if !problems.is_empty() {
        return Err(TemplateSaveError::Invalid(problems));
    }
    let json = serde_json::to_string(template).map_err(|e| MailError::Build(e.to_string()))?;
    store
        .set_mail_setting(&template_key(kind), &json)
        .map_err(MailError::from)?;
    Ok(())
}

/// Goes back to the default template of `kind`.
pub fn reset_template(store: &Store, kind: MailKind) -> Result<Template, MailError> {
    store.clear_mail_setting(&template_key(kind))?;
    Ok(default_template(kind))
}
