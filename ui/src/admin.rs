//! Support tools: the webhook log (filter by provider, event type, status and day, read
//! the raw payload, replay one event), a reconciliation run with its report, and CSV
//! exports for bookkeeping.
//!
//! Exports are written by the shell into `exports/` next to the database; the page shows
//! the file's path (WebKitGTK in Tauri has no download manager to hand a file to).

use coachdesk_protocol::desk::ReconcileSummary;
use coachdesk_protocol::ipc::{CommandError, CsvExport, InboxEntry, InboxFilter, InboxPayload};
use wasm_bindgen_futures::spawn_local;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::app::Page;
use crate::format::when;
use crate::{desk_ipc, ipc, progress};

const PROVIDERS: &[&str] = &["stripe", "calendly", "coach", "internal"];
/// `foreign`: an event about money Coachdesk did not ask for; `refused`: the other Stripe mode;
/// `unconfirmed`: a signed webhook its provider's API contradicted.
const STATUSES: &[&str] = &[
    "applied",
    "ignored",
    "parked",
    "failed",
    "unconfirmed",
    "foreign",
    "refused",
];
/// Event types to suggest in the type filter (any other text works too).
const KINDS: &[&str] = &[
    "checkout.session",
    "checkout.session.completed",
    "checkout.session.async_payment_failed",
    "charge.refunded",
    "refund.updated",
    "charge.dispute.created",
    "invitee.created",
    "invitee.canceled",
    "invitee_no_show.created",
];

#[derive(Properties, PartialEq)]
pub struct AdminProps {
    pub navigate: Callback<Page>,
}

#[component]
pub fn Admin(props: &AdminProps) -> Html {
    let provider = use_state(String::new);
    let status = use_state(String::new);
    let kind = use_state(String::new);
    let from = use_state(String::new);
    let to = use_state(String::new);
    let loading = use_state(|| false);
    let slow = progress::use_slow(*loading);
    let reload = use_state(|| 0_u32);
    let entries = use_state(|| None::<Result<Vec<InboxEntry>, CommandError>>);
    let selected = use_state(|| None::<Result<InboxPayload, CommandError>>);
    let replaying = use_state(|| false);
    let replay_note = use_state(|| None::<Result<String, String>>);
    {
        let (entries, loading) = (entries.clone(), loading.clone());
        let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        let filter = InboxFilter {
            provider: some(&provider),
            status: some(&status),
            kind: some(&kind),
            from: some(&from),
            to: some(&to),
            search: None,
            limit: Some(300),
        };
        use_effect_with((filter, *reload), move |(filter, _)| {
            let filter = filter.clone();
            loading.set(true);
            spawn_local(async move {
                let answer = ipc::list_inbox(&filter).await;
                loading.set(false);
                entries.set(Some(answer));
            });
        });
    }
    let pick = |target: UseStateHandle<String>| {
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            target.set(select.value());
        })
    };
    let typed = |target: UseStateHandle<String>| {
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            target.set(input.value());
        })
    };
    let show = |id: i64| {
        let (selected, replay_note) = (selected.clone(), replay_note.clone());
        Callback::from(move |_: MouseEvent| {
            let (selected, replay_note) = (selected.clone(), replay_note.clone());
            replay_note.set(None);
            spawn_local(async move {
                selected.set(Some(ipc::inbox_payload(id).await));
            });
        })
    };
    let replay = |id: i64| {
        let (replaying, replay_note, reload) =
            (replaying.clone(), replay_note.clone(), reload.clone());
        Callback::from(move |_: MouseEvent| {
            if *replaying {
                return;
            }
            replaying.set(true);
            let (replaying, replay_note, reload) =
                (replaying.clone(), replay_note.clone(), reload.clone());
            spawn_local(async move {
                let result = ipc::replay_inbox(id).await;
                replaying.set(false);
                replay_note.set(Some(match result {
                    Ok(entry) => Ok(format!(
                        "Replayed: the event is now {}{}.",
                        entry.status,
                        entry.note.map(|n| format!(" ({n})")).unwrap_or_default()
                    )),
                    Err(e) => Err(e.message),
                }));
                reload.set(*reload + 1);
            });
        })
    };
    let open_booking = |id: String| {
        let navigate = props.navigate.clone();
        Callback::from(move |_: MouseEvent| navigate.emit(Page::Booking(id.clone())))
    };

    let table = match &*entries {
        None => html! { <p class="muted" role="status">{"Loading the webhook log…"}</p> },
        Some(Err(e)) => {
            html! { <div class="alert" role="alert" id="inbox-error">{&e.message}</div> }
        }
        Some(Ok(list)) if list.is_empty() => {
            html! { <div class="empty" id="inbox-empty"><p>{"No events match."}</p></div> }
        }
        Some(Ok(list)) => html! {
            <table class="table" id="inbox" data-testid="inbox">
                <thead><tr><th>{"Received"}</th><th>{"Provider"}</th><th>{"Event"}</th><th>{"Status"}</th><th>{"Booking"}</th><th></th></tr></thead>
                <tbody>
                    { for list.iter().map(|e| html! {
                        <tr data-testid="inbox-row" data-id={e.id.to_string()}>
                            <td class="small">{ when(&e.received_at) }</td>
                            <td>{&e.provider}</td>
                            <td>
                                <div>{&e.kind}</div>
                                <div class="muted small mono">{&e.key}</div>
                                if let Some(note) = &e.note { <div class="small">{note}</div> }
                            </td>
                            <td><span class={classes!("badge", format!("inbox-{}", e.status))} data-testid="inbox-status">{&e.status}</span></td>
                            <td>
                                if let Some(id) = &e.booking_id {
                                    <button class="link small" onclick={open_booking(id.clone())}>{"Open"}</button>
                                }
                            </td>
                            <td class="actions">
                                <button class="btn small" data-testid="show-payload" onclick={show(e.id)}>{"Payload"}</button>
                            </td>
                        </tr>
                    }) }
                </tbody>
            </table>
        },
    };

    let payload = match &*selected {
        None => html! {},
        Some(Err(e)) => {
            html! { <div class="alert" role="alert" id="payload-error">{&e.message}</div> }
        }
        Some(Ok(p)) => html! {
            <div class="card" id="payload" data-testid="payload">
                <div class="detail-head">
                    <h2>{format!("{} · {}", p.entry.provider, p.entry.kind)}</h2>
                    <button class="btn small" id="replay-event" data-testid="replay-event"
                        disabled={*replaying} onclick={replay(p.entry.id)}>
                        { if *replaying { "Replaying…" } else { "Replay" } }
                    </button>
                    <button class="btn small ghost" id="close-payload" onclick={{
                        let selected = selected.clone();
                        Callback::from(move |_: MouseEvent| selected.set(None))
                    }}>{"Close"}</button>
                </div>
                <p class="muted small">{"Replaying runs the stored event again; it can only fill in what was missed, never repeat a refund or an email."}</p>
                if let Some(note) = &*replay_note {
                    { match note {
                        Ok(text) => html! { <p role="status" id="replay-result">{text}</p> },
                        Err(text) => html! { <div class="alert" role="alert" id="replay-error">{text}</div> },
                    } }
                }
                <pre class="payload" tabindex="0" aria-label="Raw payload">{ pretty(&p.body) }</pre>
            </div>
        },
    };

    html! {
        <section aria-labelledby="admin-title" id="admin" data-testid="admin">
            <div class="page-head">
                <h1 id="admin-title">{"Webhook log"}</h1>
                <div class="page-tools">
                    <label class="sr-only" for="inbox-provider">{"Provider"}</label>
                    <select id="inbox-provider" data-testid="inbox-provider" onchange={pick(provider.clone())}>
                        <option value="" selected={provider.is_empty()}>{"All providers"}</option>
                        { for PROVIDERS.iter().map(|p| html! { <option value={*p} selected={*provider == *p}>{*p}</option> }) }
                    </select>
                    <label class="sr-only" for="inbox-status">{"Status"}</label>
                    <select id="inbox-status" data-testid="inbox-status-filter" onchange={pick(status.clone())}>
                        <option value="" selected={status.is_empty()}>{"All statuses"}</option>
                        { for STATUSES.iter().map(|s| html! { <option value={*s} selected={*status == *s}>{*s}</option> }) }
                    </select>
                    <label class="sr-only" for="inbox-kind">{"Event type"}</label>
                    <input id="inbox-kind" data-testid="inbox-kind-filter" type="search" list="inbox-kinds"
                        placeholder="Event type, e.g. checkout.session" value={(*kind).clone()} onchange={typed(kind.clone())} />
                    <datalist id="inbox-kinds">
                        { for KINDS.iter().map(|k| html! { <option value={*k} /> }) }
                    </datalist>
                    <label for="inbox-from" class="small">{"From"}</label>
                    <input id="inbox-from" type="date" value={(*from).clone()} onchange={typed(from.clone())} />
                    <label for="inbox-to" class="small">{"to"}</label>
                    <input id="inbox-to" type="date" value={(*to).clone()} onchange={typed(to.clone())} />
                </div>
            </div>
            <Reconciliation />
            { payload }
            if slow { { progress::working("Loading the webhook log") } }
            { table }
            <Exports />
        </section>
    }
}

/// The raw body, indented when it is JSON.
fn pretty(body: &str) -> String {
    js_sys::JSON::parse(body)
        .ok()
        .and_then(|value| {
            js_sys::JSON::stringify_with_replacer_and_space(
                &value,
                &wasm_bindgen::JsValue::NULL,
                &2.into(),
            )
            .ok()
        })
        .and_then(|text| text.as_string())
        .unwrap_or_else(|| body.to_owned())
}

#[component]
fn Exports() -> Html {
    let busy = use_state(|| None::<&'static str>);
    let result = use_state(|| None::<Result<CsvExport, CommandError>>);
    let export = |what: &'static str| {
        let (busy, result) = (busy.clone(), result.clone());
        Callback::from(move |_: MouseEvent| {
            if busy.is_some() {
                return;
            }
            busy.set(Some(what));
            let (busy, result) = (busy.clone(), result.clone());
            spawn_local(async move {
                let answer = ipc::export_csv(what).await;
                busy.set(None);
                result.set(Some(answer));
            });
        })
    };
    let button = |what: &'static str, label: &str| {
        html! {
            <button class="btn" id={format!("export-{what}")} data-testid={format!("export-{what}")}
                disabled={busy.is_some()} onclick={export(what)}>
                { if *busy == Some(what) { "Exporting…".to_owned() } else { label.to_owned() } }
            </button>
        }
    };
    html! {
        <div class="card" id="exports" data-testid="exports">
            <h2>{"CSV exports"}</h2>
            <p class="muted small">{"For your bookkeeping: the file is saved in the app's data folder, shown below."}</p>
            <div class="action-row">
                { button("bookings", "Export bookings") }
                { button("payments", "Export payments") }
                { button("refunds", "Export refunds") }
            </div>
            { match &*result {
                None => html! {},
                Some(Ok(done)) => html! {
                    <p role="status" id="export-result" data-testid="export-result">
                        {format!("Saved {} ({} bytes) to ", done.what, done.bytes)}
                        <span class="mono">{&done.path}</span>
                    </p>
                },
                Some(Err(e)) => html! { <div class="alert" role="alert" id="export-error">{&e.message}</div> },
            } }
        </div>
    }
}

/// "Run reconciliation": asks Stripe and Calendly for what the app may have missed and
/// shows the report (or, in words, why it could not run).
#[component]
fn Reconciliation() -> Html {
    let busy = use_state(|| false);
    let slow = progress::use_slow(*busy);
    let result = use_state(|| None::<Result<ReconcileSummary, CommandError>>);
    let run = {
        let (busy, result) = (busy.clone(), result.clone());
        Callback::from(move |_: MouseEvent| {
            if *busy {
                return;
            }
            busy.set(true);
            let (busy, result) = (busy.clone(), result.clone());
            spawn_local(async move {
                let answer = desk_ipc::run_reconciliation().await;
                busy.set(false);
                result.set(Some(answer));
            });
        })
    };
    let list = |items: &[String], empty: &str| {
        if items.is_empty() {
            html! { <span class="muted">{empty.to_owned()}</span> }
        } else {
            html! { <ul class="plain-list mono small">{ for items.iter().map(|i| html! { <li>{i}</li> }) }</ul> }
        }
    };
    html! {
        <div class="card" id="reconciliation" data-testid="reconciliation">
            <div class="detail-head">
                <h2>{"Reconciliation"}</h2>
                <button class="btn" id="run-reconciliation" data-testid="run-reconciliation"
                    disabled={*busy} onclick={run}>
                    { if *busy { "Reconciling…" } else { "Run reconciliation" } }
                </button>
            </div>
            <p class="muted small">{"Reads Stripe's recent events and Calendly's bookings and applies anything the webhooks missed. Safe to run at any time: nothing is applied twice."}</p>
            if slow { { progress::working("Asking Stripe and Calendly") } }
            { match &*result {
                None => html! {},
                Some(Err(e)) => html! { <div class="alert" role="alert" id="reconcile-error">{&e.message}</div> },
                Some(Ok(r)) => html! {
                    <div id="reconcile-report" data-testid="reconcile-report" role="status">
                        <p>{ if r.stripe_events_recovered.is_empty() && r.calendly_facts_recovered.is_empty() {
                            "Nothing was missing.".to_owned()
                        } else {
                            format!("Applied {} missed event(s).", r.stripe_events_recovered.len() + r.calendly_facts_recovered.len())
                        } }</p>
                        <dl class="facts">
                            <dt>{"Stripe events read"}</dt><dd>{r.stripe_events_read}</dd>
                            <dt>{"Stripe events recovered"}</dt><dd>{ list(&r.stripe_events_recovered, "none") }</dd>
                            <dt>{"Calendly invitees checked"}</dt><dd>{r.calendly_invitees_checked}</dd>
                            <dt>{"Calendly facts recovered"}</dt><dd>{ list(&r.calendly_facts_recovered, "none") }</dd>
                            <dt>{"Finished"}</dt><dd>{ when(&r.finished_at) }</dd>
                        </dl>
                        if !r.errors.is_empty() {
                            <div class="alert" role="alert" id="reconcile-problems">
                                {"Could not read everything: "}{ r.errors.join("; ") }
                                {" Check the connection settings and run it again."}
                            </div>
                        }
                    </div>
                },
            } }
        </div>
    }
}
