//! Backups: one taken now to a file the coach picks, one a day kept for two weeks in the
//! data folder, and a restore that checks the file, keeps the current database aside and
//! has sync fetch what the restored copy does not know.

use std::path::{Path, PathBuf};

use coachdesk_store::{restore_file, BackupError, BackupSummary, Store, StoreError};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};

/// Days an automatic daily backup is kept.
pub const KEEP_DAILY_DAYS: i64 = 14;

const DAILY_PREFIX: &str = "coachdesk-";
const DAILY_SUFFIX: &str = ".db";

/// Why a restore did not happen (the database is then as it was).
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("the restored database could not be opened")]
    Store(#[from] StoreError),
    #[error("the restored database could not be marked for a fresh sync")]
    Sync(#[from] coachdesk_sync::SyncError),
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// What the restored copy holds.
    pub summary: BackupSummary,
    /// Where the database as it was before the restore was kept.
    pub kept_aside: PathBuf,
}

/// The file name of the automatic backup of `day`.
pub fn daily_name(day: Date) -> String {
    let date = day
        .format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default();
    format!("{DAILY_PREFIX}{date}{DAILY_SUFFIX}")
}

/// The day an automatic backup's file name stands for; `None` for any other file.
fn daily_day(name: &str) -> Option<Date> {
    let date = name
        .strip_prefix(DAILY_PREFIX)?
        .strip_suffix(DAILY_SUFFIX)?;
    Date::parse(date, format_description!("[year]-[month]-[day]")).ok()
}

/// Whether `name` is an automatic daily backup's file name.
pub fn is_daily(name: &str) -> bool {
    daily_day(name).is_some()
}

/// Of the file names in the backups folder, the automatic backups older than
/// [`KEEP_DAILY_DAYS`] on `today` (pure; other files are never touched).
pub fn expired<'a>(names: impl IntoIterator<Item = &'a str>, today: Date) -> Vec<&'a str> {
    let oldest_kept = today - Duration::days(KEEP_DAILY_DAYS - 1);
    names
        .into_iter()
        .filter(|n| daily_day(n).is_some_and(|d| d < oldest_kept))
        .collect()
}

/// Takes today's automatic backup into `dir` unless it exists, then removes the expired
/// ones. Returns the new backup's path, or `None` when today's was already there.
pub fn daily_backup(
    store: &Store,
    dir: &Path,
    today: Date,
) -> Result<Option<PathBuf>, BackupError> {
    let write = |source| BackupError::Write {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write)?;
    let path = dir.join(daily_name(today));
    let made = if path.exists() {
        None
    } else {
        store.backup_to(&path)?;
        Some(path)
    };
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(write)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    for old in expired(names.iter().map(String::as_str), today) {
        if let Err(error) = std::fs::remove_file(dir.join(old)) {
            tracing::warn!(%error, file = old, "could not remove an expired backup");
        }
    }
    Ok(made)
}

/// Replaces the open database at `db` (whose store is `store`; the caller holds it, so
/// nothing else writes meanwhile) with the backup at `backup`.
///
/// The backup is checked first; the current database is copied aside
/// (`<name>.before-restore-<time>.db` beside it) before anything is replaced; on any
/// failure the current database is opened again as it was. Afterwards sync pulls the
/// relay from its beginning and reconciles Stripe and Calendly since the backup's newest
/// entry, so bookings made after the backup come back.
pub fn restore(
    store: &mut Store,
    db: &Path,
    backup: &Path,
    now: OffsetDateTime,
) -> Result<Restored, RestoreError> {
    let summary = coachdesk_store::inspect_backup(backup)?;
    let stamp = now
        .format(format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap_or_default();
    let name = db
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "coachdesk".to_owned());
    let kept_aside = db.with_file_name(format!("{name}.before-restore-{stamp}.db"));
    store.backup_to(&kept_aside)?;

    // Close the file (the last connection's close folds the WAL in), replace it, reopen.
    drop(std::mem::replace(store, Store::open_in_memory()?));
    let replaced = restore_file(db, backup);
    *store = Store::open(db)?;
    replaced?;

    let since = summary
        .newest_entry
        .clone()
        .or_else(|| modified(backup))
        .unwrap_or_else(|| now.format(&Rfc3339).unwrap_or_default());
    coachdesk_sync::relay::start_over_after_restore(store, &since)?;
    Ok(Restored {
        summary,
        kept_aside,
    })
}

fn modified(path: &Path) -> Option<String> {
    let at = std::fs::metadata(path).ok()?.modified().ok()?;
    OffsetDateTime::from(at).format(&Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn daily_names_read_back_and_only_those_past_two_weeks_expire() {
        let today = date!(2026 - 12 - 05);
        assert_eq!(daily_name(today), "coachdesk-2026-12-05.db");
        assert_eq!(daily_day(&daily_name(today)), Some(today));
        let names = [
            "coachdesk-2026-12-05.db",
            "coachdesk-2026-11-22.db", // the 14th day back: kept
            "coachdesk-2026-11-21.db", // the 15th: expired
            "coachdesk-2025-01-01.db",
            "coachdesk-2026-13-01.db", // not a date: someone else's file
            "my-copy.db",
            "coachdesk-2026-11-01.db.partial",
        ];
        assert_eq!(
            expired(names, today),
            vec!["coachdesk-2026-11-21.db", "coachdesk-2025-01-01.db"]
        );
    }
}
