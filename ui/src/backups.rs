//! The Settings page's Backups card: back up now to a file the coach picks, the daily
//! backups kept for two weeks, and restore (from one of them or from any file), each
//! restore confirmed first and answered with where the previous database was kept.

use coachdesk_protocol::ipc::{command, BackupDone, BackupPath, BackupsView, CommandError};
use serde::Serialize;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::ipc::invoke;

#[derive(Serialize)]
struct NoArgs {}

#[derive(Serialize)]
struct Request<'a> {
    request: &'a BackupPath,
}

async fn list() -> Result<BackupsView, CommandError> {
    invoke(command::LIST_BACKUPS, &NoArgs {}).await
}

async fn run(cmd: &str, path: Option<String>) -> Result<Option<BackupDone>, CommandError> {
    invoke(
        cmd,
        &Request {
            request: &BackupPath { path },
        },
    )
    .await
}

/// What the card last said.
#[derive(Clone, PartialEq)]
enum Said {
    Nothing,
    Done(String),
    Failed(String),
}

/// The words for a finished backup or restore.
pub fn done_sentence(done: &BackupDone) -> String {
    let bookings = match done.bookings {
        1 => "1 booking".to_owned(),
        n => format!("{n} bookings"),
    };
    match &done.kept_aside {
        None => format!("Backed up {bookings} to {}.", done.path),
        Some(aside) => format!(
            "Restored {bookings} from {}. The database as it was is kept at {aside}. Sync is fetching what happened since the backup.",
            done.path
        ),
    }
}

#[component]
pub fn BackupsCard() -> Html {
    let view = use_state(|| None::<Result<BackupsView, CommandError>>);
    let said = use_state(|| Said::Nothing);
    let busy = use_state(|| false);
    // The backup the coach clicked "Restore" on, waiting for the confirmation.
    let confirming = use_state(|| None::<String>);
    let reload = use_state(|| 0u32);
    {
        let view = view.clone();
        use_effect_with(*reload, move |_| {
            spawn_local(async move { view.set(Some(list().await)) });
        });
    }
    let act = {
        let (said, busy, reload, confirming) = (
            said.clone(),
            busy.clone(),
            reload.clone(),
            confirming.clone(),
        );
        Callback::from(move |(cmd, path): (&'static str, Option<String>)| {
            let (said, busy, reload, confirming) = (
                said.clone(),
                busy.clone(),
                reload.clone(),
                confirming.clone(),
            );
            busy.set(true);
            confirming.set(None);
            spawn_local(async move {
                match run(cmd, path).await {
                    Ok(Some(done)) => said.set(Said::Done(done_sentence(&done))),
                    Ok(None) => {}
                    Err(e) => said.set(Said::Failed(e.message)),
                }
                busy.set(false);
                reload.set(*reload + 1);
            });
        })
    };
    let back_up = {
        let act = act.clone();
        Callback::from(move |_: MouseEvent| act.emit((command::BACKUP_DATABASE, None)))
    };
    let restore_file = {
        let act = act.clone();
        Callback::from(move |_: MouseEvent| act.emit((command::RESTORE_DATABASE, None)))
    };
    let list_html = match &*view {
        None => html! { <p class="muted small">{"Looking for backups…"}</p> },
        Some(Err(e)) => html! { <p class="alert small">{&e.message}</p> },
        Some(Ok(v)) if v.automatic.is_empty() => html! {
            <p class="muted small" id="backups-none">{format!("No daily backup yet; the first is written into {} within the hour.", v.folder)}</p>
        },
        Some(Ok(v)) => html! {
            <>
            <p class="muted small">{format!("A backup a day is kept for {} days in {}.", v.keep_days, v.folder)}</p>
            <ul class="backups" id="backups-list">
                { for v.automatic.iter().map(|b| {
                    let path = b.path.clone();
                    let ask = {
                        let confirming = confirming.clone();
                        Callback::from(move |_: MouseEvent| confirming.set(Some(path.clone())))
                    };
                    let kib = b.bytes.div_ceil(1024);
                    html! {
                        <li data-testid="backup-row">
                            <span>{&b.name}</span>{" "}<span class="muted small">{format!("{kib} KiB")}</span>{" "}
                            <button class="btn ghost small" type="button" onclick={ask} disabled={*busy}>{"Restore…"}</button>
                        </li>
                    }
                }) }
            </ul>
            </>
        },
    };
    let confirm_html = match &*confirming {
        None => html! {},
        Some(path) => {
            let go = {
                let (act, path) = (act.clone(), path.clone());
                Callback::from(move |_: MouseEvent| {
                    act.emit((command::RESTORE_DATABASE, Some(path.clone())))
                })
            };
            let cancel = {
                let confirming = confirming.clone();
                Callback::from(move |_: MouseEvent| confirming.set(None))
            };
            html! {
                <div class="confirm" role="alertdialog" id="backup-confirm">
                    <p>{format!("Replace the bookings you have now with the backup {path}? The database as it is now is kept aside, and sync then fetches from Stripe and Calendly what happened since the backup.")}</p>
                    <button class="btn primary small" type="button" id="backup-confirm-restore" onclick={go}>{"Restore this backup"}</button>{" "}
                    <button class="btn ghost small" type="button" onclick={cancel}>{"Cancel"}</button>
                </div>
            }
        }
    };
    let said_html = match &*said {
        Said::Nothing => html! {},
        Said::Done(text) => html! { <p class="ok small" role="status" id="backup-said">{text}</p> },
        Said::Failed(text) => {
            html! { <p class="alert small" role="alert" id="backup-said">{text}</p> }
        }
    };
    html! {
        <div class="card" id="settings-backups">
            <h2>{"Backups"}</h2>
            <p class="muted small">{"Your bookings, payments and timeline live in one file on this computer. Keep a copy somewhere else too (a USB stick, your cloud folder)."}</p>
            <button class="btn small" type="button" id="backup-now" onclick={back_up} disabled={*busy}>{"Back up now…"}</button>{" "}
            <button class="btn ghost small" type="button" id="backup-restore-file" onclick={restore_file} disabled={*busy}>{"Restore from a file…"}</button>
            { said_html }
            { confirm_html }
            { list_html }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_and_restores_say_what_they_did_and_where() {
        let mut done = BackupDone {
            path: "/home/c/coachdesk.db".into(),
            bookings: 1,
            newest_entry: None,
            kept_aside: None,
        };
        assert_eq!(
            done_sentence(&done),
            "Backed up 1 booking to /home/c/coachdesk.db."
        );
        done.bookings = 12;
        done.kept_aside = Some("/data/coachdesk.before-restore-20261205-120000.db".into());
        let text = done_sentence(&done);
        assert!(
            text.starts_with("Restored 12 bookings from /home/c/coachdesk.db."),
            "{text}"
        );
        assert!(
            text.contains("kept at /data/coachdesk.before-restore-20261205-120000.db"),
            "{text}"
        );
    }
}
