//! The store's errors, and how they read to the coach.

use coachdesk_domain::Rejection;
use coachdesk_protocol::ipc::{CommandError, FieldError};
use thiserror::Error;

/// What can go wrong in the store.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("could not open the database at {path}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("migration {version} failed")]
    Migration {
        version: u32,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the database was written by a newer Coachdesk (schema {found}, this one knows {known}); update the app")]
    TooNew { found: u32, known: u32 },
    #[error("some fields are not valid")]
    Invalid(Vec<FieldError>),
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Rejected(#[from] Rejection),
}

impl From<StoreError> for CommandError {
    fn from(err: StoreError) -> Self {
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
                capitalise(&rejection.to_string()),
                vec![],
            ),
            StoreError::TooNew { .. } => ("storage", err.to_string(), vec![]),
            other => (
                "storage",
                format!(
                    "The local database failed ({}). Nothing was changed; try again, and restart the app if it persists.",
                    error_chain(&other)
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
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>() + ".",
        None => String::new(),
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
