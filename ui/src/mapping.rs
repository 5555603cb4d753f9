//! The Calendly page: which Calendly event type sells which session type, and the webhook
//! subscription that brings Calendly's bookings to the relay.
//!
//! The event types are read live from Calendly (every page); each row's choice is saved
//! as soon as it changes, with the outcome shown on that row. New bookings of an event
//! type take the price and refund policy of the session type linked at that moment.

use coachdesk_protocol::ipc::{CommandError, SessionTypeView};
use coachdesk_protocol::setup::{EventTypeLink, EventTypeRow, RedirectCheck, SubscriptionView};
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlSelectElement;
use yew::prelude::*;

use crate::{ipc, setup_ipc};

/// What happened to one row's last change.
#[derive(Clone, PartialEq)]
enum RowNote {
    Saving,
    Saved,
    Failed(String),
}

#[component]
pub fn CalendlyPage() -> Html {
    let reload = use_state(|| 0u32);
    let rows = use_state(|| None::<Result<Vec<EventTypeRow>, CommandError>>);
    let types = use_state(Vec::<SessionTypeView>::new);
    let notes = use_state(Vec::<(String, RowNote)>::new);
    {
        let (rows, types) = (rows.clone(), types.clone());
        use_effect_with(*reload, move |_| {
            rows.set(None);
            spawn_local(async move {
                if let Ok(list) = ipc::list_session_types(false).await {
                    types.set(list);
                }
                rows.set(Some(setup_ipc::list_calendly_event_types().await));
            });
        });
    }

    let on_choose = {
        let (rows, notes) = (rows.clone(), notes.clone());
        let types = types.clone();
        move |row: EventTypeRow| {
            let (rows, notes, types) = (rows.clone(), notes.clone(), types.clone());
            Callback::from(move |e: Event| {
                let select: HtmlSelectElement = e.target_unchecked_into();
                let chosen = Some(select.value()).filter(|v| !v.is_empty());
                let link = EventTypeLink {
                    event_type_uri: row.uri.clone(),
                    event_type_name: Some(row.name.clone()),
                    scheduling_url: row.scheduling_url.clone(),
                    session_type_id: chosen.clone(),
                };
                let set_note = {
                    let notes = notes.clone();
                    let uri = row.uri.clone();
                    move |note: RowNote| {
                        let mut next: Vec<(String, RowNote)> = (*notes)
                            .iter()
                            .filter(|(u, _)| *u != uri)
                            .cloned()
                            .collect();
                        next.push((uri.clone(), note));
                        notes.set(next);
                    }
                };
                set_note(RowNote::Saving);
                let (rows, types) = (rows.clone(), types.clone());
                spawn_local(async move {
                    match setup_ipc::map_event_type(&link).await {
                        Ok(()) => {
                            if let Some(Ok(list)) = &*rows {
                                let name = chosen.as_ref().and_then(|id| {
                                    types.iter().find(|t| &t.id == id).map(|t| t.name.clone())
                                });
                                let next = list
                                    .iter()
                                    .cloned()
                                    .map(|mut r| {
                                        if r.uri == link.event_type_uri {
                                            r.session_type_id = chosen.clone();
                                            r.session_type_name = name.clone();
                                        }
                                        r
                                    })
                                    .collect();
                                rows.set(Some(Ok(next)));
                            }
                            set_note(RowNote::Saved);
                        }
                        Err(e) => set_note(RowNote::Failed(e.message)),
                    }
                });
            })
        }
    };

    let refresh = {
        let reload = reload.clone();
        Callback::from(move |_: MouseEvent| reload.set(*reload + 1))
    };

    let row_html = |(index, row): (usize, &EventTypeRow)| {
        let note = notes
            .iter()
            .find(|(uri, _)| *uri == row.uri)
            .map(|(_, n)| n.clone());
        let status = if !row.at_calendly {
            html! { <span class="badge attention">{"No longer at Calendly"}</span> }
        } else if row.active {
            html! { <span class="badge">{"Bookable"}</span> }
        } else {
            html! { <span class="badge muted">{"Turned off at Calendly"}</span> }
        };
        let select_id = format!("event-type-{index}");
        html! {
            <tr data-testid="event-type-row" data-uri={row.uri.clone()}>
                <td class="strong" data-testid="event-type-name">
                    <label for={select_id.clone()}>{&row.name}</label>
                </td>
                <td>{ row.duration_minutes.map(|m| format!("{m} min")).unwrap_or_default() }</td>
                <td>{status}</td>
                <td>
                    <select id={select_id} data-testid="event-type-session-type"
                        aria-label={format!("Session type sold as {}", row.name)}
                        onchange={on_choose(row.clone())}>
                        <option value="" selected={row.session_type_id.is_none()}>{"Not linked"}</option>
                        { for types.iter().map(|t| html! {
                            <option value={t.id.clone()} selected={row.session_type_id.as_deref() == Some(t.id.as_str())}>
                                {format!("{} ({})", t.name, t.price_display)}
                            </option>
                        }) }
                        // A link to an archived type stays visible (its bookings still come in).
                        if let (Some(id), Some(name)) = (&row.session_type_id, &row.session_type_name) {
                            if !types.iter().any(|t| &t.id == id) {
                                <option value={id.clone()} selected=true>{format!("{name} (archived)")}</option>
                            }
                        }
                    </select>
                </td>
                <td data-testid="event-type-redirect">
                    if let Some(check) = &row.redirect {
                        <Redirect check={check.clone()} />
                    }
                </td>
                <td data-testid="event-type-note" aria-live="polite">
                    { match note {
                        Some(RowNote::Saving) => html! { <span class="muted">{"Saving…"}</span> },
                        Some(RowNote::Saved) => html! { <span class="muted">{"Saved"}</span> },
                        Some(RowNote::Failed(message)) => html! { <span class="field-error" role="alert">{message}</span> },
                        None => html! {},
                    } }
                </td>
            </tr>
        }
    };

    let table = match &*rows {
        None => html! {
            <p class="muted" id="event-types-loading" role="status">{"Reading your event types from Calendly…"}</p>
        },
        Some(Err(e)) => html! {
            <div class="alert" role="alert" id="event-types-error" data-testid="event-types-error">
                {&e.message}
                {" "}<button class="btn small" onclick={refresh.clone()}>{"Try again"}</button>
            </div>
        },
        Some(Ok(list)) if list.is_empty() => html! {
            <div class="empty" id="event-types-empty">
                <p>{"Your Calendly account has no event types yet."}</p>
                <p class="muted">{"Create one at Calendly, then refresh this list."}</p>
            </div>
        },
        Some(Ok(list)) => html! {
            <table class="table" id="event-types" data-testid="event-types">
                <thead><tr>
                    <th>{"Calendly event type"}</th><th>{"Length"}</th><th>{"At Calendly"}</th>
                    <th>{"Sells session type"}</th><th>{"Redirect after booking"}</th><th></th>
                </tr></thead>
                <tbody>{ for list.iter().enumerate().map(row_html) }</tbody>
            </table>
        },
    };

    html! {
        <section aria-labelledby="calendly-title">
            <div class="page-head">
                <h1 id="calendly-title">{"Calendly"}</h1>
                <div class="page-tools">
                    <button class="btn" id="refresh-event-types" onclick={refresh}>{"Refresh"}</button>
                </div>
            </div>
            <p class="hint">{"Link each Calendly event type to the session type it sells. New bookings take that session type's price and refund policy; bookings already made keep theirs."}</p>
            { table }
            <Subscription />
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct RedirectProps {
    check: RedirectCheck,
}

/// A linked event type's redirect: the address to paste at Calendly, a copy button, where
/// it goes at Calendly, and whether the relay has seen clients come through it.
#[component]
fn Redirect(props: &RedirectProps) -> Html {
    let copied = use_state(|| false);
    let check = &props.check;
    let copy = {
        let (url, copied) = (check.url.clone(), copied.clone());
        Callback::from(move |_: MouseEvent| {
            let Some(window) = web_sys::window() else {
                return;
            };
            let promise = window.navigator().clipboard().write_text(&url);
            let copied = copied.clone();
            spawn_local(async move {
                if wasm_bindgen_futures::JsFuture::from(promise).await.is_ok() {
                    copied.set(true);
                }
            });
        })
    };
    let badge = match check.state.as_str() {
        "seen" => classes!("badge"),
        "not_seen" => classes!("badge", "muted"),
        _ => classes!("badge", "attention"),
    };
    html! {
        <div class="redirect" data-state={check.state.clone()}>
            if !check.url.is_empty() {
                <span class="mono" data-testid="redirect-url">{&check.url}</span>
                {" "}
                <button class="btn small" data-testid="copy-redirect" onclick={copy}>
                    { if *copied { "Copied" } else { "Copy" } }
                </button>
                <p class="muted small">{coachdesk_protocol::setup::WHERE_AT_CALENDLY}</p>
            }
            <span class={badge} data-testid="redirect-state" role="status">{&check.message}</span>
        </div>
    }
}

/// The webhook subscription's state and the button that registers it.
#[component]
fn Subscription() -> Html {
    let view = use_state(|| None::<Result<SubscriptionView, CommandError>>);
    let busy = use_state(|| false);
    {
        let view = view.clone();
        use_effect_with((), move |_| {
            spawn_local(async move {
                view.set(Some(setup_ipc::calendly_subscription().await));
            });
        });
    }
    let register = {
        let (view, busy) = (view.clone(), busy.clone());
        Callback::from(move |_: MouseEvent| {
            if *busy {
                return;
            }
            busy.set(true);
            let (view, busy) = (view.clone(), busy.clone());
            spawn_local(async move {
                view.set(Some(setup_ipc::register_calendly_webhook().await));
                busy.set(false);
            });
        })
    };
    let (state, body) = match &*view {
        None => (
            "checking",
            html! { <p class="muted" role="status">{"Asking Calendly…"}</p> },
        ),
        Some(Err(e)) => (
            "error",
            html! { <div class="alert" role="alert" id="subscription-error" data-testid="subscription-error">{&e.message}</div> },
        ),
        Some(Ok(v)) => (
            v.state.as_str(),
            html! {
                <>
                    <p id="subscription-message">{&v.message}</p>
                    <p class="muted small">{"Calendly posts to "}<span class="mono" id="subscription-callback">{&v.callback_url}</span></p>
                </>
            },
        ),
    };
    let label = match state {
        "active" => "Active",
        "disabled" => "Disabled",
        "missing" => "Not registered",
        "checking" => "Checking…",
        _ => "Unknown",
    };
    html! {
        <section class="card" aria-labelledby="webhook-title" id="calendly-webhook">
            <h2 id="webhook-title">{"Webhook to the relay "}
                <span class={classes!("badge", (state != "active").then_some("attention"))}
                    id="subscription-state" data-testid="subscription-state" data-state={state.to_owned()}>{label}</span>
            </h2>
            { body }
            <button class="btn primary" id="register-webhook" data-testid="register-webhook"
                onclick={register} disabled={*busy} aria-busy={busy.then_some("true")}>
                { if *busy { "Registering with Calendly…" } else if state == "active" { "Check and renew" } else { "Register webhook" } }
            </button>
        </section>
    }
}
