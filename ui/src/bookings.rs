//! Bookings: the list (filters by state, session type and session dates, search by email,
//! invitee URI or Stripe id, one page at a time: the shell pages and counts in SQL, so the
//! window never holds more than a page), and one booking with its audit timeline.

use coachdesk_protocol::desk::BookingPage;
use coachdesk_protocol::ipc::{
    BookingDetail, BookingFilter, BookingSummary, CommandError, SessionTypeView,
};
use wasm_bindgen_futures::spawn_local;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::app::Page;
use crate::format::{money, state_label, when};
use crate::{actions, desk_ipc, ipc, progress};

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

/// How many bookings one page shows.
pub const PAGE_SIZE: u32 = 50;

/// What the coach filters the list by, as typed.
#[derive(Clone, PartialEq, Default)]
pub struct ListQuery {
    pub state: String,
    pub session_type_id: String,
    pub from: String,
    pub to: String,
    pub search: String,
    pub offset: u32,
}

impl ListQuery {
    /// The filter the shell answers (empty fields are no filter).
    pub fn filter(&self) -> BookingFilter {
        let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        BookingFilter {
            state: some(&self.state),
            session_type_id: some(&self.session_type_id),
            search: some(&self.search),
            from: some(&self.from),
            to: some(&self.to),
            limit: Some(PAGE_SIZE),
            offset: Some(self.offset),
            soonest_first: None,
        }
    }

    /// Whether anything narrows the list.
    pub fn narrowed(&self) -> bool {
        let f = self.filter();
        f.state.is_some()
            || f.session_type_id.is_some()
            || f.search.is_some()
            || f.from.is_some()
            || f.to.is_some()
    }
}

/// "Showing 51–100 of 10,000" (pure).
pub fn range_text(offset: u32, shown: usize, total: u64) -> String {
    if total == 0 || shown == 0 {
        return "No bookings".to_owned();
    }
    let first = u64::from(offset) + 1;
    let last = u64::from(offset) + shown as u64;
    format!(
        "Showing {}–{} of {}",
        thousands(first),
        thousands(last),
        thousands(total)
    )
}

/// 10000 → "10,000".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An answer with the query it belongs to and how long it took.
#[derive(Clone, PartialEq)]
struct Answer {
    query: ListQuery,
    page: Result<BookingPage, CommandError>,
    millis: f64,
}

#[component]
pub fn BookingList(props: &ListProps) -> Html {
    let query = use_state(ListQuery::default);
    let answer = use_state(|| None::<Answer>);
    let loading = use_state(|| false);
    let slow = progress::use_slow(*loading);
    let latest = use_mut_ref(|| 0_u64);
    let types = use_state(Vec::<SessionTypeView>::new);
    let version = crate::live::use_data_version();
    {
        let types = types.clone();
        use_effect_with((), move |_| {
            spawn_local(async move {
                if let Ok(list) = ipc::list_session_types(true).await {
                    types.set(list);
                }
            });
        });
    }
    {
        let (answer, loading, latest) = (answer.clone(), loading.clone(), latest.clone());
        use_effect_with(((*query).clone(), version), move |(query, _)| {
            let query = query.clone();
            // Only the newest request may answer: a slow reply to an older filter is dropped.
            *latest.borrow_mut() += 1;
            let ticket = *latest.borrow();
            loading.set(true);
            spawn_local(async move {
                let started = progress::now_ms();
                let page = desk_ipc::booking_page(&query.filter()).await;
                if *latest.borrow() != ticket {
                    return;
                }
                loading.set(false);
                answer.set(Some(Answer {
                    query,
                    page,
                    millis: progress::now_ms() - started,
                }));
            });
        });
    }
    let set = |apply: fn(&mut ListQuery, String)| {
        let query = query.clone();
        move |value: String| {
            let mut next = (*query).clone();
            apply(&mut next, value);
            next.offset = 0;
            query.set(next);
        }
    };
    let on_select = |apply: fn(&mut ListQuery, String)| {
        let set = set(apply);
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            set(select.value());
        })
    };
    let on_input = |apply: fn(&mut ListQuery, String)| {
        let set = set(apply);
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            set(input.value());
        })
    };
    let on_date = |apply: fn(&mut ListQuery, String)| {
        let set = set(apply);
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            set(input.value());
        })
    };
    let clear = {
        let query = query.clone();
        Callback::from(move |_: MouseEvent| query.set(ListQuery::default()))
    };
    let page_to = |offset: u32| {
        let query = query.clone();
        Callback::from(move |_: MouseEvent| {
            let mut next = (*query).clone();
            next.offset = offset;
            query.set(next);
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

    let field_error = |field: &str| -> Html {
        match answer.as_ref().map(|a| &a.page) {
            Some(Err(e)) => e
                .fields
                .iter()
                .find(|f| f.field == field)
                .map(|f| html! { <div class="field-error" role="alert" id={format!("booking-{field}-error")}>{&f.message}</div> })
                .unwrap_or_default(),
            _ => html! {},
        }
    };

    let table = match &*answer {
        None => progress::working("Loading bookings"),
        Some(Answer { page: Err(e), .. }) => html! {
            <div class="alert" role="alert" id="bookings-error">
                {&e.message}
                if query.narrowed() { {" "}<button class="link" onclick={clear.clone()}>{"Clear the filters"}</button> }
            </div>
        },
        Some(Answer { page: Ok(page), .. }) if page.items.is_empty() => html! {
            <div class="empty" id="bookings-empty">
                <p>{"No bookings match."}</p>
                if query.narrowed() {
                    <p><button class="link" id="clear-booking-filters" onclick={clear.clone()}>{"Clear the filters"}</button></p>
                } else {
                    <p class="muted">{"Bookings appear here when clients book on Calendly."}</p>
                }
            </div>
        },
        Some(Answer {
            page: Ok(page),
            query: answered,
            millis,
        }) => {
            let has_prev = page.offset > 0;
            let next_offset = page.offset + page.limit;
            let has_next = u64::from(next_offset) < page.total;
            html! {
                <>
                <div class="list-meta" id="bookings-meta" data-testid="bookings-meta"
                    data-total={page.total.to_string()} data-load-ms={format!("{millis:.1}")}
                    data-search={answered.search.clone()} data-state={answered.state.clone()}>
                    <span id="bookings-range">{ range_text(page.offset, page.items.len(), page.total) }</span>
                    <span class="muted small">{ format!(" · {millis:.0} ms") }</span>
                </div>
                <table class="table" id="bookings" data-testid="bookings">
                    <thead><tr><th>{"Client"}</th><th>{"Session"}</th><th>{"Starts"}</th><th>{"State"}</th><th class="num">{"Paid"}</th></tr></thead>
                    <tbody>{ for page.items.iter().map(row) }</tbody>
                </table>
                <nav class="pager" aria-label="Pages">
                    <button class="btn small" id="bookings-prev" disabled={!has_prev}
                        onclick={page_to(page.offset.saturating_sub(page.limit))}>{"← Newer"}</button>
                    <button class="btn small" id="bookings-next" disabled={!has_next}
                        onclick={page_to(next_offset)}>{"Older →"}</button>
                </nav>
                </>
            }
        }
    };

    html! {
        <section aria-labelledby="bookings-title">
            <div class="page-head">
                <h1 id="bookings-title">{"Bookings"}</h1>
            </div>
            <form class="filters" id="booking-filters" onsubmit={Callback::from(|e: SubmitEvent| e.prevent_default())}>
                <div class="field">
                    <label for="booking-search">{"Search"}</label>
                    <input id="booking-search" data-testid="booking-search" type="search" value={query.search.clone()}
                        placeholder="Email, invitee URI, pi_… or cs_…" oninput={on_input(|q, v| q.search = v)} />
                </div>
                <div class="field">
                    <label for="booking-state-filter">{"State"}</label>
                    <select id="booking-state-filter" data-testid="booking-state-filter" onchange={on_select(|q, v| q.state = v)}>
                        <option value="" selected={query.state.is_empty()}>{"All states"}</option>
                        { for STATES.iter().map(|s| html! { <option value={*s} selected={query.state == *s}>{state_label(s)}</option> }) }
                    </select>
                </div>
                <div class="field">
                    <label for="booking-type-filter">{"Session type"}</label>
                    <select id="booking-type-filter" data-testid="booking-type-filter" onchange={on_select(|q, v| q.session_type_id = v)}>
                        <option value="" selected={query.session_type_id.is_empty()}>{"All session types"}</option>
                        { for types.iter().map(|t| html! {
                            <option value={t.id.clone()} selected={query.session_type_id == t.id}>
                                { if t.archived { format!("{} (archived)", t.name) } else { t.name.clone() } }
                            </option>
                        }) }
                    </select>
                </div>
                <div class="field">
                    <label for="booking-from">{"Sessions from"}</label>
                    <input id="booking-from" type="date" value={query.from.clone()} onchange={on_date(|q, v| q.from = v)} />
                    { field_error("from") }
                </div>
                <div class="field">
                    <label for="booking-to">{"to"}</label>
                    <input id="booking-to" type="date" value={query.to.clone()} onchange={on_date(|q, v| q.to = v)} />
                    { field_error("to") }
                </div>
                if query.narrowed() {
                    <button type="button" class="btn ghost small" id="reset-booking-filters" onclick={clear.clone()}>{"Clear"}</button>
                }
            </form>
            if slow { { progress::working("Loading bookings") } }
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
                            { for d.audit.iter().map(|a| audit_entry(&when(&a.at), a)) }
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

/// One timeline entry: what happened in a sentence; the raw cause key (for support) one
/// click away under "Technical detail". `at` is the entry's time as the coach reads it.
fn audit_entry(at: &str, a: &coachdesk_protocol::ipc::AuditEntry) -> Html {
    html! {
        <li data-testid="audit-entry">
            <div class="when">{ at }</div>
            <div class="what">
                <div>
                    { a.from_state.as_deref().map(|f| html! { <>{ state_badge(f) }<span class="arrow" aria-label="to">{"→"}</span></> }).unwrap_or_default() }
                    { state_badge(&a.to_state) }
                </div>
                <div class="audit-summary" data-testid="audit-summary">{ &a.summary }</div>
                <details class="muted small" data-testid="audit-cause">
                    <summary>{"Technical detail"}</summary>
                    <code class="mono">{ &a.cause }</code>
                </details>
            </div>
        </li>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::html_of;
    use coachdesk_protocol::ipc::AuditEntry;

    #[derive(Properties, PartialEq)]
    struct EntryProps {
        entry: AuditEntry,
    }

    #[component]
    fn EntryUnderTest(props: &EntryProps) -> Html {
        audit_entry("2 Mar, 10:00", &props.entry)
    }

    #[test]
    fn a_timeline_entry_leads_with_its_sentence_and_folds_the_raw_key_away() {
        let cause = "calendly:invitee.created|https://api.calendly.com/invitees/AAA";
        let html = html_of::<EntryUnderTest>(move || EntryProps {
            entry: AuditEntry {
                at: "2026-03-02T10:00:00Z".into(),
                from_state: None,
                to_state: "awaiting_payment".into(),
                cause: cause.into(),
                summary: "Ana booked a session on Calendly.".into(),
            },
        });
        let sentence = html.find("Ana booked a session on Calendly.").expect(&html);
        let details = html.find("<details").expect(&html);
        let key = html.find(cause).expect(&html);
        assert!(sentence < details && details < key, "{html}");
        assert!(
            !html[details..key].contains(" open"),
            "folded by default: {html}"
        );
    }

    #[test]
    fn the_range_line_counts_in_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(range_text(0, 50, 10_000), "Showing 1–50 of 10,000");
        assert_eq!(
            range_text(9_950, 50, 10_000),
            "Showing 9,951–10,000 of 10,000"
        );
        assert_eq!(range_text(0, 0, 0), "No bookings");
    }

    #[test]
    fn empty_fields_are_no_filter_and_the_page_size_is_fixed() {
        let query = ListQuery {
            state: "confirmed".into(),
            search: "  pi_123 ".into(),
            from: " ".into(),
            offset: 100,
            ..ListQuery::default()
        };
        let filter = query.filter();
        assert_eq!(filter.state.as_deref(), Some("confirmed"));
        assert_eq!(filter.search.as_deref(), Some("pi_123"));
        assert_eq!(filter.from, None);
        assert_eq!(filter.session_type_id, None);
        assert_eq!(filter.limit, Some(PAGE_SIZE));
        assert_eq!(filter.offset, Some(100));
        assert!(query.narrowed());
        assert!(!ListQuery::default().narrowed());
    }
}
