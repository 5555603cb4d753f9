//! Wire types shared by the desktop shell, the Yew UI and the relay.
//!
//! This crate depends on serde only so that it builds for wasm32 (the UI) and native
//! (the shell, the relay, the simulator) alike. It holds data, never behaviour with I/O.

pub mod desk;
pub mod ipc;
pub mod live;
pub mod mail;
pub mod relay;
pub mod settings;
pub mod setup;

/// Every command the shell registers, in one list: `src-tauri/build.rs` declares these to
/// Tauri (so capabilities can grant them), and the shell's tests check that the main
/// window's capability grants exactly these and that each is registered.
pub const COMMANDS: &[&str] = &[
    ipc::command::APP_INFO,
    ipc::command::LIST_SESSION_TYPES,
    ipc::command::CREATE_SESSION_TYPE,
    ipc::command::UPDATE_SESSION_TYPE,
    ipc::command::ARCHIVE_SESSION_TYPE,
    ipc::command::LIST_BOOKINGS,
    ipc::command::BOOKING_DETAIL,
    ipc::command::COACH_ACTION,
    ipc::command::REFUND_PREVIEW,
    ipc::command::LIST_INBOX,
    ipc::command::INBOX_PAYLOAD,
    ipc::command::REPLAY_INBOX,
    ipc::command::ATTENTION_ITEMS,
    ipc::command::BUSINESS_METRICS,
    ipc::command::EXPORT_CSV,
    ipc::command::SYNC_STATUS,
    ipc::command::BOOKING_PAGE,
    ipc::command::DASHBOARD_ALERTS,
    ipc::command::SET_ALERT_THRESHOLDS,
    ipc::command::RUN_RECONCILIATION,
    ipc::command::LIST_BACKUPS,
    ipc::command::BACKUP_DATABASE,
    ipc::command::RESTORE_DATABASE,
    settings::command::SETTINGS,
    settings::command::SAVE_SECRET,
    settings::command::CLEAR_SECRET,
    settings::command::SAVE_RELAY_URL,
    settings::command::SAVE_API_BASE,
    settings::command::SET_FEATURE,
    settings::command::CHOOSE_MODE,
    settings::command::TEST_CONNECTION,
    settings::command::APPROVE_REFUND,
    settings::command::DIAGNOSTICS,
    live::LIVE_STATUS,
    setup::command::SETUP_STRIPE,
    setup::command::LIST_CALENDLY_EVENT_TYPES,
    setup::command::MAP_EVENT_TYPE,
    setup::command::CALENDLY_SUBSCRIPTION,
    setup::command::REGISTER_CALENDLY_WEBHOOK,
    setup::command::PREVIEW_REFUND_POLICY,
    setup::command::STRIPE_WEBHOOK,
    setup::command::CONNECT_STRIPE_WEBHOOK,
    setup::command::ROTATE_STRIPE_WEBHOOK_SECRET,
    setup::command::ROTATE_RELAY_SEALING_KEY,
    mail::command::MAIL_SETTINGS,
    mail::command::SAVE_MAIL_SETTINGS,
    mail::command::CHECK_MAIL_SERVER,
    mail::command::SEND_TEST_EMAIL,
    mail::command::LIST_MAIL_TEMPLATES,
    mail::command::PREVIEW_MAIL_TEMPLATE,
    mail::command::SAVE_MAIL_TEMPLATE,
    mail::command::RESET_MAIL_TEMPLATE,
];

#[cfg(test)]
mod tests {
    #[test]
    fn command_names_are_unique_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for name in super::COMMANDS {
            assert!(seen.insert(*name), "{name} listed twice");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
        }
    }
}
