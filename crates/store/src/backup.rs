//! Backups of the coach's database through SQLite's online backup API, and the checks a
//! file must pass before it may replace the database.
//!
//! A backup is taken through the store's own connection: while it runs nothing else writes
//! through that connection, so the copy is one consistent moment of the books, WAL
//! included. It is written beside its destination and renamed into place, so a backup cut
//! short by a crash or a full disk never leaves a half file under the chosen name.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, MAIN_DB};
use thiserror::Error;

use crate::migrate::MIGRATIONS;
use crate::Store;

/// Why a backup could not be made, read or restored.
#[derive(Debug, Error)]
pub enum BackupError {
    #[error("the file {path} does not exist")]
    Missing { path: PathBuf },
    #[error("{path} is not a Coachdesk database")]
    NotCoachdesk { path: PathBuf },
    #[error("{path} is damaged ({detail})")]
    Damaged { path: PathBuf, detail: String },
    #[error("{path} was written by a newer Coachdesk (schema {found}, this one knows {known}); update the app first")]
    TooNew {
        path: PathBuf,
        found: u32,
        known: u32,
    },
    #[error("could not write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database error while copying {path}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// What a backup file holds, as checked before a restore (and after a backup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    pub schema_version: u32,
    pub bookings: i64,
    pub session_types: i64,
    /// The newest audit entry's time (RFC 3339), if any: how recent the copy is.
    pub newest_entry: Option<String>,
}

impl Store {
    /// Writes a consistent copy of the whole database to `dest` (replacing a file there),
    /// and checks it.
    pub fn backup_to(&self, dest: &Path) -> Result<BackupSummary, BackupError> {
        let partial = partial_path(dest);
        let _ = std::fs::remove_file(&partial);
        let sqlite = |source| BackupError::Sqlite {
            path: dest.to_owned(),
            source,
        };
        self.conn.backup(MAIN_DB, &partial, None).map_err(sqlite)?;
        // The copy is a plain rollback-journal file: one file, nothing beside it.
        {
            let copy = Connection::open(&partial).map_err(sqlite)?;
            copy.pragma_update(None, "journal_mode", "DELETE")
                .map_err(sqlite)?;
        }
        let write = |source| BackupError::Write {
            path: dest.to_owned(),
            source,
        };
        std::fs::File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(write)?;
        std::fs::rename(&partial, dest).map_err(write)?;
        if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename itself survives a power cut only once its folder is synced.
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        inspect(dest)
    }
}

/// Checks that `path` is an intact Coachdesk database this version can open, and says what
/// it holds. Reads only; never creates or changes the file.
pub fn inspect(path: &Path) -> Result<BackupSummary, BackupError> {
    if !path.is_file() {
        return Err(BackupError::Missing {
            path: path.to_owned(),
        });
    }
    let not_ours = || BackupError::NotCoachdesk {
        path: path.to_owned(),
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|_| not_ours())?;
    // A file that is not SQLite fails here ("file is not a database").
    let found: u32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|_| not_ours())?;
    let check: String = conn
        .pragma_query_value(None, "quick_check", |r| r.get(0))
        .map_err(|e| BackupError::Damaged {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
    if check != "ok" {
        return Err(BackupError::Damaged {
            path: path.to_owned(),
            detail: check,
        });
    }
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if found > known {
        return Err(BackupError::TooNew {
            path: path.to_owned(),
            found,
            known,
        });
    }
    let count = |table: &str| -> Result<i64, BackupError> {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|_| not_ours())
    };
    if found == 0 {
        return Err(not_ours());
    }
    Ok(BackupSummary {
        schema_version: found,
        bookings: count("bookings")?,
        session_types: count("session_types")?,
        newest_entry: conn
            .query_row("SELECT MAX(at) FROM audit_log", [], |r| r.get(0))
            .map_err(|_| not_ours())?,
    })
}

/// Replaces the database file at `db` with the backup at `backup`, page by page through
/// the backup API (atomic for readers of `db`). Checks the backup first; the caller has
/// closed every connection to `db` and kept a copy of it aside.
pub fn restore_file(db: &Path, backup: &Path) -> Result<BackupSummary, BackupError> {
    let summary = inspect(backup)?;
    let sqlite = |source| BackupError::Sqlite {
        path: db.to_owned(),
        source,
    };
    let mut conn = Connection::open(db).map_err(sqlite)?;
    conn.restore(MAIN_DB, backup, None::<fn(rusqlite::backup::Progress)>)
        .map_err(sqlite)?;
    Ok(summary)
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    dest.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_one_file_that_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("coachdesk.db")).expect("store");
        store.set_setting("k", "v").expect("setting");
        let dest = dir.path().join("copy.db");
        let summary = store.backup_to(&dest).expect("backup");
        assert_eq!(summary.bookings, 0);
        assert_eq!(summary.schema_version, store.schema_version().expect("v"));
        assert!(!partial_path(&dest).exists());
        assert!(!dir.path().join("copy.db-wal").exists());
        let copy = Store::open(&dest).expect("open copy");
        assert_eq!(copy.setting("k").expect("read").as_deref(), Some("v"));
    }

    #[test]
    fn files_that_are_not_a_usable_backup_are_refused_with_their_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.db");
        assert!(matches!(
            inspect(&missing),
            Err(BackupError::Missing { .. })
        ));
        assert!(!missing.exists(), "inspect must not create a file");

        let text = dir.path().join("notes.db");
        std::fs::write(&text, b"not a database at all, just some text").expect("write");
        assert!(matches!(
            inspect(&text),
            Err(BackupError::NotCoachdesk { .. })
        ));

        let other = dir.path().join("other.db");
        Connection::open(&other)
            .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
            .expect("other db");
        assert!(matches!(
            inspect(&other),
            Err(BackupError::NotCoachdesk { .. })
        ));

        let newer = dir.path().join("newer.db");
        drop(Store::open(&newer).expect("store"));
        Connection::open(&newer)
            .and_then(|c| c.pragma_update(None, "user_version", 999))
            .expect("bump");
        assert!(matches!(
            inspect(&newer),
            Err(BackupError::TooNew { found: 999, .. })
        ));

        let damaged = dir.path().join("damaged.db");
        let store = Store::open(&dir.path().join("src.db")).expect("store");
        store.backup_to(&damaged).expect("backup");
        let mut bytes = std::fs::read(&damaged).expect("read");
        // Overwrite the second page onwards (the tables' b-trees) with noise.
        let page = 4096;
        for b in bytes.iter_mut().skip(page).take(page * 2) {
            *b = 0x5a;
        }
        std::fs::write(&damaged, bytes).expect("write");
        assert!(matches!(
            inspect(&damaged),
            Err(BackupError::Damaged { .. } | BackupError::NotCoachdesk { .. })
        ));
    }
}
