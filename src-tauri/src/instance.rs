//! One instance per data folder: two apps syncing into the same database would pull and
//! run the same effects twice. The first instance holds an exclusive lock (`flock` on
//! Unix) on `coachdesk.lock` in the folder; a second one finds it taken and exits with a
//! message. The OS drops the lock when the process ends, even on a crash, so a stale lock
//! file never blocks a later start.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data folder.
pub const LOCK_FILE: &str = "coachdesk.lock";

/// Held while the app runs; dropping it releases the folder.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why this instance may not run.
#[derive(Debug, thiserror::Error)]
pub enum InstanceError {
    #[error(
        "Coachdesk is already running on the data folder {folder}{pid}. Switch to its window, \
         or close it before starting another one."
    )]
    AlreadyRunning { folder: String, pid: String },
    #[error("cannot create the lock file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Takes the data folder's lock, waiting up to `grace` for an instance that is closing
/// (a window closed a moment ago may still be shutting down), or says which instance has it.
pub fn acquire_within(
    data_folder: &Path,
    grace: std::time::Duration,
) -> Result<InstanceLock, InstanceError> {
    let deadline = std::time::Instant::now() + grace;
    let mut told = false;
    loop {
        match acquire(data_folder) {
            Err(InstanceError::AlreadyRunning { .. }) if std::time::Instant::now() < deadline => {
                if !told {
                    tracing::info!("another Coachdesk holds this data folder; waiting briefly in case it is closing");
                    told = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Takes the data folder's lock, or says which instance has it.
pub fn acquire(data_folder: &Path) -> Result<InstanceLock, InstanceError> {
    let path = data_folder.join(LOCK_FILE);
    let io = |source| InstanceError::Io {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(data_folder).map_err(io)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            // Only the holder writes its pid, so the message can name the running one.
            file.set_len(0).map_err(io)?;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            write!(file, "{}", std::process::id()).map_err(io)?;
            file.flush().map_err(io)?;
            Ok(InstanceLock { _file: file, path })
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            Err(InstanceError::AlreadyRunning {
                folder: data_folder.display().to_string(),
                pid: if holder.is_empty() {
                    String::new()
                } else {
                    format!(" (process {holder})")
                },
            })
        }
        Err(TryLockError::Error(source)) => Err(io(source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_instance_on_the_same_folder_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).unwrap();
        let err = acquire(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("already running"), "{text}");
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        assert!(
            text.contains(&format!("process {}", std::process::id())),
            "{text}"
        );
        drop(first);
        // Released with the first instance: a new start works.
        let again = acquire(dir.path()).unwrap();
        assert_eq!(again.path(), dir.path().join(LOCK_FILE));
    }

    #[test]
    fn a_closing_instance_is_waited_for_a_running_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).unwrap();
        let started = std::time::Instant::now();
        let err = acquire_within(dir.path(), std::time::Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, InstanceError::AlreadyRunning { .. }));
        assert!(started.elapsed() >= std::time::Duration::from_millis(300));
        let closing = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(first);
        });
        assert!(acquire_within(dir.path(), std::time::Duration::from_secs(5)).is_ok());
        closing.join().unwrap();
    }

    #[test]
    fn other_folders_are_independent() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let _first = acquire(a.path()).unwrap();
        assert!(acquire(b.path()).is_ok());
    }

    #[test]
    fn a_lock_file_left_by_a_crash_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), "999999").unwrap();
        assert!(acquire(dir.path()).is_ok());
    }
}
