//! Bookings: the list with its state filter and search, and one booking with its audit
//! timeline (every transition, with what caused it).

use coachdesk_protocol::ipc::{BookingDetail, BookingFilter, BookingSummary, CommandError};
use wasm_bindgen_futures::spawn_local;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::app::Page;
use crate::format::{money, state_label, when};
use crate::{actions, ipc};

/// The states a booking can be in, in the order a coach thinks about them.
pub(crate) const STATES: &[&str] = &[
    "awaiting_payment",
    "confirmed",
    "payment_failed",
    "expired",
    "cancelled",
    "refund_pending",
    "refunded",
    "rescheduled",
    "no_show",
    "completed",
    "disputed",
];

#[derive(Properties, PartialEq)]
pub struct ListProps {
    pub navigate: Callback<Page>,
}

fn state_badge(state: &str) -> Html {
    html! { <span class={classes!("badge", format!("state-{state}"))} data-testid="booking-state">{state_label(state)}</span> }
}

#[component]
pub fn BookingList(props: &ListProps) -> Html {
    let state = use_state(String::new);
    let search = use_state(String::new);
    let items = use_state(|| None::<Result<Vec<BookingSummary>, CommandError>>);
    let version = crate::live::use_data_version();
    {
        let items = items.clone();
        use_effect_with(
            ((*state).clone(), (*search).clone(), version),
            move |(state, search, _)| {
                let filter = BookingFilter {
                    state: (!state.is_empty()).then(|| state.clone()),
                    search: (!search.trim().is_empty()).then(|| search.trim().to_owned()),
                    session_type_id: None,
                    limit: Some(500),
                };
                spawn_local(async move {
                    items.set(Some(ipc::list_bookings(&filter).await));
                });
            },
        );
    }
    let on_state = {
        let state = state.clone();
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            state.set(select.value());
        })
    };
    let on_search = {
        let search = search.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            search.set(input.value());
        })
    };

    let row = |b: &BookingSummary| {
        let open = {
            let navigate = props.navigate.clone();
            let id = b.id.clone();
            Callback::from(move |_: MouseEvent| navigate.emit(Page::Booking(id.clone())))
        };
        let currency = b.currency.clone().unwrap_or_default();
        html! {
            <tr data-testid="booking-row" data-id={b.id.clone()}>
                <td>
                    <button class="link" data-testid="open-booking" onclick={open}>
                        { b.client_name.clone().or_else(|| b.client_email.clone()).unwrap_or_else(|| "Unknown client".to_owned()) }
                    </button>
                    if let Some(email) = &b.client_email { <div class="muted small">{email}</div> }
                </td>
                <td>{ b.session_type_name.clone().unwrap_or_else(|| "—".to_owned()) }</td>
                <td>{ b.start_time.as_deref().map(when).unwrap_or_else(|| "—".to_owned()) }</td>
                <td>
                    { state_badge(&b.state) }
                    if let Some(reason) = &b.needs_attention {
                        <span class="badge attention" title={reason.clone()} data-testid="needs-attention">{"Needs attention"}</span>
                    }
                </td>
                <td class="num">
                    { if currency.is_empty() { "—".to_owned() } else { money(b.paid_minor, &currency) } }
                    if b.refunded_minor > 0 { <div class="muted small">{format!("refunded {}", money(b.refunded_minor, &currency))}</div> }
                </td>
            </tr>
        }
    };

    let table = match &*items {
        None => html! { <p class="muted">{"Loading…"}</p> },
        Some(Err(e)) => {
            html! { <div class="alert" role="alert" id="bookings-error">{&e.message}</div> }
        }
        Some(Ok(list)) if list.is_empty() => html! {
            <div class="empty" id="bookings-empty">
                <p>{"No bookings match."}</p>
                <p class="muted">{"Bookings appear here when clients book on Calendly."}</p>
            </div>
        },
        Some(Ok(list)) => html! {
            <table class="table" id="bookings" data-testid="bookings">
                <thead><tr><th>{"Client"}</th><th>{"Session"}</th><th>{"Starts"}</th><th>{"State"}</th><th class="num">{"Paid"}</th></tr></thead>
                <tbody>{ for list.iter().map(row) }</tbody>
            </table>
        },
    };

    html! {
        <section aria-labelledby="bookings-title">
            <div class="page-head">
                <h1 id="bookings-title">{"Bookings"}</h1>
                <div class="page-tools">
                    <label class="sr-only" for="booking-state-filter">{"State"}</label>
                    <select id="booking-state-filter" data-testid="booking-state-filter" onchange={on_state}>
                        <option value="" selected={state.is_empty()}>{"All states"}</option>
                        { for STATES.iter().map(|s| html! { <option value={*s} selected={*state == *s}>{state_label(s)}</option> }) }
                    </select>
                    <label class="sr-only" for="booking-search">{"Search"}</label>
                    <input id="booking-search" data-testid="booking-search" type="search" value={(*search).clone()}
                        placeholder="Email, invitee or payment id" oninput={on_search} />
                </div>
            </div>
            { table }
        </section>
    }
}

#[derive(Properties, PartialEq)]
pub struct DetailProps {
    pub navigate: Callback<Page>,
    pub id: String,
}

#[component]
pub fn BookingDetailPage(props: &DetailProps) -> Html {
    let detail = use_state(|| None::<Result<BookingDetail, CommandError>>);
    let version = crate::live::use_data_version();
    {
        let detail = detail.clone();
        use_effect_with((props.id.clone(), version), move |(id, _)| {
            let id = id.clone();
            spawn_local(async move {
                detail.set(Some(ipc::booking_detail(&id).await));
            });
        });
    }
    let back = {
        let navigate = props.navigate.clone();
        Callback::from(move |_: MouseEvent| navigate.emit(Page::Bookings))
    };
    let on_change = {
        let detail = detail.clone();
        Callback::from(move |next: BookingDetail| detail.set(Some(Ok(next))))
    };
    let body = match &*detail {
        None => html! { <p class="muted">{"Loading…"}</p> },
        Some(Err(e)) => {
            html! { <div class="alert" role="alert" id="booking-error">{&e.message}</div> }
        }
        Some(Ok(d)) => {
            let s = &d.summary;
            let currency = s.currency.clone().unwrap_or_default();
            let amount = |minor: i64| {
                if currency.is_empty() {
                    "—".to_owned()
                } else {
                    money(minor, &currency)
                }
            };
            html! {
                <>
                <div class="card" id="booking-detail" data-testid="booking-detail">
                    <div class="detail-head">
                        <h2>{ s.client_name.clone().or_else(|| s.client_email.clone()).unwrap_or_else(|| "Unknown client".to_owned()) }</h2>
                        { state_badge(&s.state) }
                    </div>
                    if let Some(reason) = &s.needs_attention {
                        <div class="alert attention" role="status" data-testid="needs-attention">{"Needs attention: "}{reason}</div>
                    }
                    <dl class="facts">
                        <dt>{"Email"}</dt><dd>{ s.client_email.clone().unwrap_or_else(|| "—".to_owned()) }</dd>
                        <dt>{"Session"}</dt><dd>{ s.session_type_name.clone().unwrap_or_else(|| "—".to_owned()) }</dd>
                        <dt>{"Starts"}</dt><dd>{ s.start_time.as_deref().map(when).unwrap_or_else(|| "—".to_owned()) }</dd>
                        <dt>{"Paid"}</dt><dd>{ amount(s.paid_minor) }</dd>
                        <dt>{"Refunded"}</dt><dd id="booking-refunded" data-testid="booking-refunded">{ amount(s.refunded_minor) }</dd>
                        <dt>{"Invitee"}</dt><dd class="mono">{ d.invitee_uri.clone().unwrap_or_else(|| "—".to_owned()) }</dd>
                        <dt>{"Payment"}</dt><dd class="mono">{ d.payment_intent.clone().unwrap_or_else(|| "—".to_owned()) }</dd>
                    </dl>
                </div>
                <actions::BookingActions detail={d.clone()} on_change={on_change.clone()} />
                <div class="card">
                    <h2>{"Timeline"}</h2>
                    if d.audit.is_empty() {
                        <p class="muted">{"No transitions recorded yet."}</p>
                    } else {
                        <ol class="timeline" id="audit-timeline" data-testid="audit-timeline">
                            { for d.audit.iter().map(|a| html! {
                                <li data-testid="audit-entry">
                                    <div class="when">{ when(&a.at) }</div>
                                    <div class="what">
                                        <div>
                                            { a.from_state.as_deref().map(|f| html! { <>{ state_badge(f) }<span class="arrow" aria-label="to">{"→"}</span></> }).unwrap_or_default() }
                                            { state_badge(&a.to_state) }
                                        </div>
                                        <div>{ &a.summary }</div>
                                        <div class="muted small mono">{ &a.cause }</div>
                                    </div>
                                </li>
                            }) }
                        </ol>
                    }
                </div>
                </>
            }
        }
    };
    html! {
        <section aria-label="Booking">
            <div class="page-head">
                <button class="btn ghost" id="back-to-bookings" onclick={back}>{"← Bookings"}</button>
            </div>
            { body }
        </section>
    }
}
