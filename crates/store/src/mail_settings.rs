//! The mail crate's settings: the coach's template overrides and SMTP server settings,
//! kept as JSON under `mail.*` keys of the `settings` table.
//!
//! Only what the mail crate reads and writes lives here; the SMTP password is never stored
//! in SQLite (it lives in the OS keychain). Values are opaque JSON text to this crate: the
//! mail crate owns their shape and validates them.

use crate::{Store, StoreError};

/// The prefix every mail setting's key starts with.
pub const MAIL_SETTING_PREFIX: &str = "mail.";

impl Store {
    /// A mail setting's JSON text (`mail.template.payment_request`, `mail.smtp`, ...).
    pub fn mail_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        check_key(key)?;
        self.setting(key)
    }

    /// Writes a mail setting's JSON text.
    pub fn set_mail_setting(&self, key: &str, json: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.set_setting(key, json)
    }

    /// Removes a mail setting (a template reset to its default). Removing a missing key is
    /// not an error.
    pub fn clear_mail_setting(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.conn
            .execute("DELETE FROM settings WHERE key = ?1", [key])?;
        Ok(())
    }
}

fn check_key(key: &str) -> Result<(), StoreError> {
    if key.starts_with(MAIL_SETTING_PREFIX) && key.len() > MAIL_SETTING_PREFIX.len() {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "\"{key}\" is not a mail setting (mail settings start with \"{MAIL_SETTING_PREFIX}\")"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_settings_round_trip_and_clear() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.mail_setting("mail.smtp").unwrap(), None);
        store
            .set_mail_setting("mail.smtp", "{\"host\":\"x\"}")
            .unwrap();
        assert_eq!(
            store.mail_setting("mail.smtp").unwrap().as_deref(),
            Some("{\"host\":\"x\"}")
        );
        store.clear_mail_setting("mail.smtp").unwrap();
        store.clear_mail_setting("mail.smtp").unwrap();
        assert_eq!(store.mail_setting("mail.smtp").unwrap(), None);
    }

    #[test]
    fn keys_outside_the_mail_prefix_are_refused() {
        let store = Store::open_in_memory().unwrap();
        assert!(store.set_mail_setting("relay.cursor", "1").is_err());
        assert!(store.clear_mail_setting("mail.").is_err());
    }
}
