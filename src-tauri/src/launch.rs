//! Launch settings: which database to open and in which mode, read once from the
//! environment at start so every later step works from one validated value.
//!
//! Test mode and live mode never share a database: each has its own file in the data
//! folder (`<data dir>/coachdesk/test.sqlite`, `live.sqlite`; demo data goes to
//! `demo.sqlite`). The mode is chosen in Settings, which writes it to the `mode` file in the
//! same folder; it takes effect at the next start. `COACHDESK_DEMO=1` starts the demo
//! whatever the file says; `COACHDESK_DB` names the database file explicitly (tests), and
//! the store then refuses a file that belongs to another mode.

use std::path::{Path, PathBuf};

/// Which money the app is handling; shown in the header so nobody confuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sample data on a throwaway database.
    Demo,
    /// Stripe and Calendly test accounts.
    Test,
    /// Real payments and real clients.
    Live,
}

impl Mode {
    /// The name the UI receives in `AppInfo::mode` (and the `mode` file holds).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Demo => "demo",
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }

    /// The database file's name in the data folder.
    pub fn database_file(self) -> &'static str {
        match self {
            Mode::Demo => "demo.sqlite",
            Mode::Test => "test.sqlite",
            Mode::Live => "live.sqlite",
        }
    }
}

/// The file in the data folder that holds the mode chosen in Settings.
pub const MODE_FILE: &str = "mode";

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
    #[error("the mode file {path} holds {found:?}; it should say \"test\" or \"live\" (choose the mode again in Settings, or delete the file for test mode)")]
    InvalidModeFile { path: String, found: String },
    #[error("cannot write the mode file {path}")]
    WriteModeFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Reads the mode chosen in Settings from `folder` (test mode when there is no file).
pub fn chosen_mode(folder: &Path) -> Result<Mode, LaunchError> {
    let path = folder.join(MODE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_mode(&text).ok_or_else(|| LaunchError::InvalidModeFile {
            path: path.display().to_string(),
            found: text.trim().to_owned(),
        }),
        Err(_) => Ok(Mode::Test),
    }
}

/// Writes the mode for the next start into `folder` (only test or live can be chosen).
pub fn choose_mode(folder: &Path, mode: Mode) -> Result<(), LaunchError> {
    let path = folder.join(MODE_FILE);
    let write = || {
        std::fs::create_dir_all(folder)?;
        std::fs::write(&path, format!("{}\n", mode.as_str()))
    };
    write().map_err(|source| LaunchError::WriteModeFile {
        path: path.display().to_string(),
        source,
    })
}

fn parse_mode(text: &str) -> Option<Mode> {
    match text.trim() {
        "" | "test" => Some(Mode::Test),
        "live" => Some(Mode::Live),
        _ => None,
    }
}

impl Launch {
    /// Reads `COACHDESK_DB`, `COACHDESK_DEMO` and the mode file from the environment.
    pub fn from_env() -> Result<Launch, LaunchError> {
        let db = std::env::var_os("COACHDESK_DB").map(PathBuf::from);
        let data_dir = default_data_dir();
        let folder = match &db {
            Some(path) => path.parent().map(Path::to_path_buf),
            None => data_dir.as_ref().map(|dir| dir.join("coachdesk")),
        };
        let chosen = match folder {
            Some(folder) => Some(chosen_mode(&folder)?),
            None => None,
        };
        Launch::from_vars(db, std::env::var("COACHDESK_DEMO").ok(), data_dir, chosen)
    }

    /// The pure part of [`Launch::from_env`], so it can be tested without touching the
    /// environment. `chosen` is the mode from the mode file (test when `None`).
    pub fn from_vars(
        db: Option<PathBuf>,
        demo: Option<String>,
        data_dir: Option<PathBuf>,
        chosen: Option<Mode>,
    ) -> Result<Launch, LaunchError> {
        let mode = match demo.as_deref().map(str::trim) {
            None | Some("") | Some("0") | Some("false") => chosen.unwrap_or(Mode::Test),
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
                .join(mode.database_file()),
        };
        Ok(Launch {
            database_path,
            mode,
        })
    }

    /// The folder that holds the database and the mode file.
    pub fn folder(&self) -> PathBuf {
        self.database_path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
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
        let launch =
            Launch::from_vars(None, None, Some("/home/c/.local/share".into()), None).unwrap();
        assert_eq!(launch.mode, Mode::Test);
        assert_eq!(
            launch.database_path,
            PathBuf::from("/home/c/.local/share/coachdesk/test.sqlite")
        );
    }

    #[test]
    fn each_mode_has_its_own_database_file() {
        let data = Some(PathBuf::from("/d"));
        let live = Launch::from_vars(None, None, data.clone(), Some(Mode::Live)).unwrap();
        assert_eq!(live.mode, Mode::Live);
        assert_eq!(
            live.database_path,
            PathBuf::from("/d/coachdesk/live.sqlite")
        );
        let test = Launch::from_vars(None, None, data.clone(), Some(Mode::Test)).unwrap();
        assert_eq!(
            test.database_path,
            PathBuf::from("/d/coachdesk/test.sqlite")
        );
        let demo = Launch::from_vars(None, Some("1".into()), data, Some(Mode::Live)).unwrap();
        assert_eq!(
            demo.mode,
            Mode::Demo,
            "the demo flag wins over the chosen mode"
        );
        assert_eq!(
            demo.database_path,
            PathBuf::from("/d/coachdesk/demo.sqlite")
        );
        let paths = [live.database_path, test.database_path, demo.database_path];
        assert!(paths[0] != paths[1] && paths[1] != paths[2] && paths[0] != paths[2]);
    }

    #[test]
    fn explicit_database_and_demo_flag_win() {
        let launch =
            Launch::from_vars(Some("/tmp/x.sqlite".into()), Some("1".into()), None, None).unwrap();
        assert_eq!(launch.mode, Mode::Demo);
        assert_eq!(launch.database_path, PathBuf::from("/tmp/x.sqlite"));
        assert_eq!(launch.folder(), PathBuf::from("/tmp"));
    }

    #[test]
    fn rejects_an_unclear_demo_flag_instead_of_guessing() {
        let err = Launch::from_vars(None, Some("yes please".into()), Some("/d".into()), None)
            .unwrap_err();
        assert!(err.to_string().contains("\"yes please\""), "{err}");
    }

    #[test]
    fn without_any_data_dir_asks_for_coachdesk_db() {
        let err = Launch::from_vars(None, None, None, None).unwrap_err();
        assert!(err.to_string().contains("COACHDESK_DB"), "{err}");
    }

    #[test]
    fn the_mode_file_round_trips_and_a_garbled_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            chosen_mode(dir.path()).unwrap(),
            Mode::Test,
            "no file: test"
        );
        choose_mode(&dir.path().join("sub"), Mode::Live).unwrap();
        assert_eq!(chosen_mode(&dir.path().join("sub")).unwrap(), Mode::Live);
        choose_mode(&dir.path().join("sub"), Mode::Test).unwrap();
        assert_eq!(chosen_mode(&dir.path().join("sub")).unwrap(), Mode::Test);
        std::fs::write(dir.path().join(MODE_FILE), "production").unwrap();
        let err = chosen_mode(dir.path()).unwrap_err();
        assert!(err.to_string().contains("\"production\""), "{err}");
    }
}
