//! The email settings page's commands: each builds the use case from the app's state and
//! calls it (`coachdesk_desk::mail`).

use coachdesk_desk::mail::{configure_demo_mail, MailDesk};
use coachdesk_protocol::ipc::CommandError;
use coachdesk_protocol::mail::{
    MailCheck, MailPreview, MailSettingsDraft, MailSettingsView, MailTemplateDraft,
    MailTemplateView,
};
use tauri::State;

use crate::AppState;

fn desk(state: &AppState) -> MailDesk<'_> {
    MailDesk {
        store: &state.store,
        secrets: state.secrets(),
    }
}

/// [`configure_demo_mail`] from `COACHDESK_DEMO_SMTP` and `COACHDESK_RELAY_URL`.
pub fn configure_demo_from_env(state: &AppState) -> anyhow::Result<()> {
    let smtp = std::env::var("COACHDESK_DEMO_SMTP").ok();
    let relay = std::env::var("COACHDESK_RELAY_URL").ok();
    match configure_demo_mail(&state.store(), smtp.as_deref(), relay.as_deref())? {
        Some(addr) => tracing::info!(smtp = %addr, "demo emails go to the loopback SMTP server"),
        None => tracing::info!("demo emails are not sent (COACHDESK_DEMO_SMTP is not set)"),
    }
    Ok(())
}

/// What the email settings page shows.
#[tauri::command(rename_all = "snake_case")]
pub async fn mail_settings(state: State<'_, AppState>) -> Result<MailSettingsView, CommandError> {
    desk(&state).settings()
}

/// Saves the email settings; a new password goes to the keychain only.
#[tauri::command(rename_all = "snake_case")]
pub async fn save_mail_settings(
    state: State<'_, AppState>,
    draft: MailSettingsDraft,
) -> Result<MailSettingsView, CommandError> {
    desk(&state).save_settings(&draft)
}

/// Connects to the saved SMTP server, secures the connection and logs in.
#[tauri::command(rename_all = "snake_case")]
pub async fn check_mail_server(state: State<'_, AppState>) -> Result<MailCheck, CommandError> {
    desk(&state).check_server().await
}

/// Sends a test email through the saved settings.
#[tauri::command(rename_all = "snake_case")]
pub async fn send_test_email(
    state: State<'_, AppState>,
    to: Option<String>,
) -> Result<MailCheck, CommandError> {
    desk(&state).send_test_email(to.as_deref()).await
}

/// Every kind of client email with its template.
#[tauri::command(rename_all = "snake_case")]
pub async fn list_mail_templates(
    state: State<'_, AppState>,
) -> Result<Vec<MailTemplateView>, CommandError> {
    desk(&state).templates()
}

/// The draft rendered with a sample booking, with its problems.
#[tauri::command(rename_all = "snake_case")]
pub async fn preview_mail_template(
    state: State<'_, AppState>,
    kind: String,
    draft: MailTemplateDraft,
) -> Result<MailPreview, CommandError> {
    desk(&state).preview_template(&kind, draft)
}

/// Saves the coach's template; one with problems is refused, each problem named.
#[tauri::command(rename_all = "snake_case")]
pub async fn save_mail_template(
    state: State<'_, AppState>,
    kind: String,
    draft: MailTemplateDraft,
) -> Result<MailTemplateView, CommandError> {
    desk(&state).save_template(&kind, draft)
}

/// Goes back to the default template.
#[tauri::command(rename_all = "snake_case")]
pub async fn reset_mail_template(
    state: State<'_, AppState>,
    kind: String,
) -> Result<MailTemplateView, CommandError> {
    desk(&state).reset_template(&kind)
}
