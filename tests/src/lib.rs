//! Shared support for Coachdesk's cross-crate and end-to-end tests.
//!
//! It exists so each test file states *what* it checks while the fiddly parts live once:
//! finding the built app and the tools, starting `tauri-driver` on free ports with a
//! private environment, WebDriver calls that cannot hang, and screenshots of the Xvfb
//! display. A missing tool is an error, never a skip: a suite that silently checks
//! nothing is worse than a red one.

pub mod e2e;
pub mod stack;
pub mod steps;
