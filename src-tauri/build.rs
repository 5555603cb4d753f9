//! Generates the Tauri context from the top-level `tauri.conf.json` and declares the app's
//! own commands, so capabilities can grant exactly these and nothing else.

fn main() {
    let attributes = tauri_build::Attributes::new()
        .config_path("../tauri.conf.json")
        .app_manifest(tauri_build::AppManifest::new().commands(&[
            "app_info",
            "list_backups",
            "backup_database",
            "restore_database",
            "list_session_types",
            "create_session_type",
            "update_session_type",
            "archive_session_type",
            "list_bookings",
            "booking_detail",
            "coach_action",
            "refund_preview",
            "list_inbox",
            "inbox_payload",
            "replay_inbox",
            "attention_items",
            "business_metrics",
            "export_csv",
            "sync_status",
            "settings",
            "save_secret",
            "clear_secret",
            "save_relay_url",
            "save_api_base",
            "set_feature",
            "choose_mode",
            "test_connection",
            "approve_refund",
            "booking_page",
            "dashboard_alerts",
            "set_alert_thresholds",
            "run_reconciliation",
            "live_status",
            "setup_stripe",
            "list_calendly_event_types",
            "map_event_type",
            "calendly_subscription",
            "register_calendly_webhook",
            "preview_refund_policy",
            "mail_settings",
            "save_mail_settings",
            "check_mail_server",
            "send_test_email",
            "list_mail_templates",
            "preview_mail_template",
            "save_mail_template",
            "reset_mail_template",
        ]));
    if let Err(error) = tauri_build::try_build(attributes) {
        // build scripts report through panics; this message names the file to fix.
        panic!("tauri build step failed (check ../tauri.conf.json and capabilities/): {error:#}");
    }
}
