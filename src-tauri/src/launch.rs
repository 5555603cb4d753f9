//! Launch settings: which database to open and in which mode, read once from the
//! environment at start so every later step works from one validated value.
//!
//! `COACHDESK_DB` names the SQLite file (default `<data dir>/coachdesk/test.sqlite`);
//! `COACHDESK_DEMO=1` seeds sample data and shows the DEMO banner. Test mode and live mode
//! never share a database: the live file will get its own name when live mode exists.

use std::path::PathBuf;

/// Which money the app is handling; shown in the header so nobody confuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sample data on a throwaway database.
    Demo,
    /// Stripe and Calendly test accounts.
    Test,
}

impl Mode {
    /// The name the UI receives in `AppInfo::mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Demo => "demo",
            Mode::Test => "test",
        }
    }
}

/// The validated launch settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub database_path: PathBuf,
    pub mode: Mode,
}

/// Why the environment could not be turned into [`Launch`] settings.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(
        "COACHDESK_DEMO is {0:?}; set it to 1 for demo mode or 0 (or leave it unset) for test mode"
    )]
    InvalidDemoFlag(String),
    #[error("COACHDESK_DB is empty; set it to the path of a SQLite file or unset it")]
    EmptyDatabasePath,
    #[error("cannot find the user's data folder; set COACHDESK_DB to the path of a SQLite file")]
    NoDataDir,
}

impl Launch {
    /// Reads `COACHDESK_DB` and `COACHDESK_DEMO` from the process environment.
    pub fn from_env() -> Result<Launch, LaunchError> {
        Launch::from_vars(
            std::env::var_os("COACHDESK_DB").map(PathBuf::from),
            std::env::var("COACHDESK_DEMO").ok(),
            default_data_dir(),
        )
    }

    /// The pure part of [`Launch::from_env`], so it can be tested without touching the environment.
    pub fn from_vars(
        db: Option<PathBuf>,
        demo: Option<String>,
        data_dir: Option<PathBuf>,
    ) -> Result<Launch, LaunchError> {
        let mode = match demo.as_deref().map(str::trim) {
            None | Some("") | Some("0") | Some("false") => Mode::Test,
            Some("1") | Some("true") => Mode::Demo,
            Some(other) => return Err(LaunchError::InvalidDemoFlag(other.to_owned())),
        };
        let database_path = match db {
            Some(path) if path.as_os_str().is_empty() => {
                return Err(LaunchError::EmptyDatabasePath)
            }
            Some(path) => path,
            None => data_dir
                .ok_or(LaunchError::NoDataDir)?
                .join("coachdesk")
                .join("test.sqlite"),
        };
        Ok(Launch {
            database_path,
            mode,
        })
    }
}

/// The XDG data folder (`$XDG_DATA_HOME`, else `~/.local/share`), as Tauri's own
/// `data_dir` resolves it on Linux; the other platforms use their usual places.
fn default_data_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if cfg!(target_os = "macos") {
        return non_empty("HOME").map(|home| home.join("Library").join("Application Support"));
    }
    if cfg!(windows) {
        return non_empty("APPDATA");
    }
    non_empty("XDG_DATA_HOME")
        .or_else(|| non_empty("HOME").map(|home| home.join(".local").join("share")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_test_mode_in_the_data_dir() {
        let launch = Launch::from_vars(None, None, Some("/home/c/.local/share".into())).unwrap();
        assert_eq!(launch.mode, Mode::Test);
        assert_eq!(
            launch.database_path,
            PathBuf::from("/home/c/.local/share/coachdesk/test.sqlite")
        );
    }

    #[test]
    fn explicit_database_and_demo_flag_win() {
        let launch =
            Launch::from_vars(Some("/tmp/x.sqlite".into()), Some("1".into()), None).unwrap();
        assert_eq!(launch.mode, Mode::Demo);
        assert_eq!(launch.database_path, PathBuf::from("/tmp/x.sqlite"));
    }

    #[test]
    fn rejects_an_unclear_demo_flag_instead_of_guessing() {
        let err =
            Launch::from_vars(None, Some("yes please".into()), Some("/d".into())).unwrap_err();
        assert!(err.to_string().contains("\"yes please\""), "{err}");
    }

    #[test]
    fn without_any_data_dir_asks_for_coachdesk_db() {
        let err = Launch::from_vars(None, None, None).unwrap_err();
        assert!(err.to_string().contains("COACHDESK_DB"), "{err}");
    }
}
