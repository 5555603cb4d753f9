//! How errors read to the coach: every failure becomes a [`CommandError`] (`{code,
//! message, fields}`) that the window shows as it is.

use coachdesk_protocol::ipc::CommandError;
use coachdesk_store::StoreError;

/// What the window shows for a store error: a code the UI can branch on, a sentence for
/// the coach, and the fields to mark.
pub fn command_error(err: StoreError) -> CommandError {
    let (code, message, fields) = match err {
            StoreError::Invalid(fields) => (
                "invalid",
                "Some fields need fixing; see the notes next to them.".to_owned(),
                fields,
            ),
            StoreError::NotFound { what, id } => (
                "not_found",
                format!("No {what} \"{id}\" was found; it may have been removed. Reload the list."),
                vec![],
            ),
            StoreError::Conflict(message) => ("conflict", message, vec![]),
            StoreError::Rejected(rejection) => (
                "rejected",
                capitalised(&rejection.to_string()),
                vec![],
            ),
            StoreError::TooNew { .. } => ("storage", err.to_string(), vec![]),
            other => (
                "storage",
                format!(
                    "The local database failed ({}). Nothing was changed; try again, and restart the app if it persists.",
                    coachdesk_sync::error_chain(&other)
                ),
                vec![],
            ),
        };
    CommandError {
        code: code.to_owned(),
        message,
        fields,
    }
}

/// A sentence from an error's lower-case text: capital first letter, full stop.
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
    }
}
