//! Settings' "Copy diagnostics": asks the shell for the scrubbed support report, copies
//! its text with the web clipboard API and shows it, so the coach can also select and
//! copy it by hand when the clipboard refuses.

use coachdesk_protocol::ipc::CommandError;
use coachdesk_protocol::settings::{command, Diagnostics};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::ipc::invoke;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_namespace = ["navigator", "clipboard"], js_name = writeText)]
    async fn clipboard_write_text(text: &str) -> Result<JsValue, JsValue>;
}

#[derive(Serialize)]
struct NoArgs {}

/// What the card shows after a click.
#[derive(Clone, PartialEq)]
enum Outcome {
    Copied(Diagnostics),
    NotCopied(Diagnostics),
    Failed(CommandError),
}

/// The card with the button and the report.
#[component]
pub fn DiagnosticsCard() -> Html {
    let outcome = use_state(|| None::<Outcome>);
    let busy = use_state(|| false);
    let run = {
        let (outcome, busy) = (outcome.clone(), busy.clone());
        Callback::from(move |_: MouseEvent| {
            let (outcome, busy) = (outcome.clone(), busy.clone());
            busy.set(true);
            spawn_local(async move {
                let answer = invoke::<_, Diagnostics>(command::DIAGNOSTICS, &NoArgs {}).await;
                let shown = match answer {
                    Ok(report) => match clipboard_write_text(&report.text).await {
                        Ok(_) => Outcome::Copied(report),
                        Err(_) => Outcome::NotCopied(report),
                    },
                    Err(e) => Outcome::Failed(e),
                };
                outcome.set(Some(shown));
                busy.set(false);
            });
        })
    };
    let body = match &*outcome {
        None => html! {},
        Some(Outcome::Copied(report)) => html! {
            <>
                <p class="notice ok" role="status" id="diagnostics-state" data-copied="true">{"Copied to the clipboard: paste it into your message to support."}</p>
                <pre id="diagnostics-text" class="small">{&report.text}</pre>
            </>
        },
        Some(Outcome::NotCopied(report)) => html! {
            <>
                <p class="notice" role="status" id="diagnostics-state" data-copied="false">{"The clipboard could not be used: select the text below and copy it."}</p>
                <pre id="diagnostics-text" class="small">{&report.text}</pre>
            </>
        },
        Some(Outcome::Failed(e)) => html! {
            <p class="alert" role="alert" id="diagnostics-state">{&e.message}</p>
        },
    };
    html! {
        <div class="card" id="settings-diagnostics">
            <h2>{"Diagnostics"}</h2>
            <p class="muted small">{"Versions, folders, how sync is doing and its last errors, for a support request. Never a secret, nor a client's name, email or an amount."}</p>
            <button class="btn small" id="copy-diagnostics" onclick={run} disabled={*busy}>{"Copy diagnostics"}</button>
            { body }
        </div>
    }
}
