//! The store's errors (how they read to the coach is the desk's business).

use coachdesk_domain::Rejection;
use coachdesk_views::FieldError;
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
