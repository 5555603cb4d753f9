//! The first thing the coach sees: today's and upcoming sessions, what needs them, how the
//! business went over the last 30 days, and whether sync is running.

use coachdesk_protocol::ipc::{
    AttentionItem, BookingFilter, BookingSummary, BusinessMetrics, CommandError, SyncHealth,
};
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::app::Page;
use crate::format::{money, state_label, when};
use crate::ipc;

/// How many days the metrics cover.
const METRIC_DAYS: u32 = 30;

type Loaded<T> = Option<Result<T, CommandError>>;

#[derive(Properties, PartialEq)]
pub struct DashboardProps {
    pub navigate: Callback<Page>,
}

#[component]
pub fn Dashboard(props: &DashboardProps) -> Html {
    let bookings = use_state(|| None::<Result<Vec<BookingSummary>, CommandError>>);
    let attention = use_state(|| None::<Result<Vec<AttentionItem>, CommandError>>);
    let metrics = use_state(|| None::<Result<Vec<BusinessMetrics>, CommandError>>);
    let sync = use_state(|| None::<Result<Option<SyncHealth>, CommandError>>);
    let sync_round = use_state(|| 0_u32);
    let version = crate::live::use_data_version();
    {
        let sync = sync.clone();
        use_effect_with((*sync_round, version), move |_| {
            spawn_local(async move {
                sync.set(Some(ipc::sync_status().await));
            });
        });
    }
    let refresh_sync = {
        let (sync, sync_round) = (sync.clone(), sync_round.clone());
        Callback::from(move |_: MouseEvent| {
            sync.set(None);
            sync_round.set(*sync_round + 1);
        })
    };
    {
        let (bookings, attention, metrics) = (bookings.clone(), attention.clone(), metrics.clone());
        use_effect_with(version, move |_| {
            spawn_local(async move {
                let filter = BookingFilter {
                    limit: Some(500),
                    ..BookingFilter::default()
                };
                bookings.set(Some(ipc::list_bookings(&filter).await));
                attention.set(Some(ipc::attention_items().await));
                metrics.set(Some(ipc::business_metrics(METRIC_DAYS).await));
            });
        });
    }
    let open = |id: String| {
        let navigate = props.navigate.clone();
        Callback::from(move |_: MouseEvent| navigate.emit(Page::Booking(id.clone())))
    };

    html! {
        <section aria-labelledby="dashboard-title" id="dashboard" data-testid="dashboard">
            <div class="page-head"><h1 id="dashboard-title">{"Dashboard"}</h1></div>
            <div class="dash-grid">
                { sessions(&bookings, &open) }
                { attention_list(&attention, &open) }
            </div>
            { metrics_card(&metrics) }
            { sync_card(&sync, refresh_sync) }
        </section>
    }
}

fn sync_card(sync: &Loaded<Option<SyncHealth>>, refresh: Callback<MouseEvent>) -> Html {
    let body = loading_or_error(sync, "sync status").unwrap_or_else(|| match sync {
        Some(Ok(Some(h))) => html! {
            <>
            <p>
                if h.connected {
                    <span class="badge state-confirmed" data-testid="sync-state">{"Connected"}</span>
                } else {
                    <span class="badge state-payment_failed" data-testid="sync-state">{"Not connected"}</span>
                }
                <span class="muted small">{" relay "}</span><span class="mono">{&h.relay_url}</span>
            </p>
            <dl class="facts">
                <dt>{"Last sync"}</dt><dd>{ h.last_sync.as_deref().map(when).unwrap_or_else(|| "not yet".to_owned()) }</dd>
                <dt>{"Events applied"}</dt><dd>{h.events_applied}</dd>
                <dt>{"Waiting to run"}</dt><dd>{h.queue_depth}</dd>
                <dt>{"Failed effects"}</dt><dd>{h.effects_failed}</dd>
                <dt>{"Last check"}</dt><dd>{ h.last_reconcile_at.as_deref().map(when).unwrap_or_else(|| "not yet".to_owned()) }</dd>
            </dl>
            if let Some(error) = &h.last_error {
                <div class="alert" role="status">{"Last problem: "}{error}</div>
            }
            </>
        },
        _ => html! {
            <p class="muted" data-testid="sync-state">{"Sync not configured: start the app with COACHDESK_RELAY_URL set to your relay to pull bookings and payments."}</p>
        },
    });
    html! {
        <div class="card" id="sync-health" data-testid="sync-health">
            <div class="detail-head">
                <h2>{"Sync"}</h2>
                <button class="btn small ghost" id="refresh-sync" onclick={refresh}>{"Refresh"}</button>
            </div>
            { body }
        </div>
    }
}

fn loading_or_error<T>(value: &Loaded<T>, what: &str) -> Option<Html> {
    match value {
        None => Some(html! { <p class="muted" role="status">{format!("Loading {what}…")}</p> }),
        Some(Err(e)) => Some(html! { <div class="alert" role="alert">{&e.message}</div> }),
        Some(Ok(_)) => None,
    }
}

/// Sessions still to happen (confirmed or awaiting payment), from the start of today.
fn sessions(
    bookings: &Loaded<Vec<BookingSummary>>,
    open: &dyn Fn(String) -> Callback<MouseEvent>,
) -> Html {
    let body = loading_or_error(bookings, "sessions").unwrap_or_else(|| {
        let today = js_sys::Date::new_0();
        today.set_hours(0);
        today.set_minutes(0);
        today.set_seconds(0);
        let start_of_today = today.get_time();
        let end_of_today = start_of_today + 86_400_000.0;
        let mut coming: Vec<(f64, &BookingSummary)> = match bookings {
            Some(Ok(list)) => list
                .iter()
                .filter(|b| matches!(b.state.as_str(), "confirmed" | "awaiting_payment"))
                .filter_map(|b| {
                    let at = js_sys::Date::parse(b.start_time.as_deref()?);
                    (at >= start_of_today).then_some((at, b))
                })
                .collect(),
            _ => Vec::new(),
        };
        coming.sort_by(|a, b| a.0.total_cmp(&b.0));
        if coming.is_empty() {
            return html! { <p class="muted">{"No sessions coming up."}</p> };
        }
        let row = |(at, b): &(f64, &BookingSummary)| {
            let name = b
                .client_name
                .clone()
                .or_else(|| b.client_email.clone())
                .unwrap_or_else(|| "Unknown client".to_owned());
            html! {
                <li data-testid="upcoming-session">
                    if *at < end_of_today { <span class="badge today">{"Today"}</span> }
                    <button class="link" onclick={open(b.id.clone())}>{name}</button>
                    <span class="muted small">{ b.start_time.as_deref().map(when).unwrap_or_default() }</span>
                    <span class={classes!("badge", format!("state-{}", b.state))}>{state_label(&b.state)}</span>
                </li>
            }
        };
        html! { <ul class="plain-list">{ for coming.iter().take(12).map(row) }</ul> }
    });
    html! {
        <div class="card" id="upcoming" data-testid="upcoming">
            <h2>{"Today and upcoming"}</h2>
            { body }
        </div>
    }
}

fn attention_list(
    items: &Loaded<Vec<AttentionItem>>,
    open: &dyn Fn(String) -> Callback<MouseEvent>,
) -> Html {
    let body = loading_or_error(items, "what needs you").unwrap_or_else(|| match items {
        Some(Ok(list)) if !list.is_empty() => html! {
            <ul class="plain-list">
                { for list.iter().map(|item| html! {
                    <li data-testid="attention-item">
                        <button class="link" onclick={open(item.booking_id.clone())}>
                            { item.client_name.clone().unwrap_or_else(|| "Unknown client".to_owned()) }
                        </button>
                        <span class={classes!("badge", format!("state-{}", item.state))}>{state_label(&item.state)}</span>
                        <div class="small">{&item.message}</div>
                    </li>
                }) }
            </ul>
        },
        _ => html! { <p class="muted">{"Nothing needs you right now."}</p> },
    });
    html! {
        <div class="card" id="attention" data-testid="attention">
            <h2>{"Needs attention"}</h2>
            { body }
        </div>
    }
}

fn percent(rate: f64) -> String {
    format!("{:.0}%", rate * 100.0)
}

fn metrics_card(metrics: &Loaded<Vec<BusinessMetrics>>) -> Html {
    let body = loading_or_error(metrics, "metrics").unwrap_or_else(|| match metrics {
        Some(Ok(list)) if !list.is_empty() => {
            html! { <>{ for list.iter().map(currency_metrics) }</> }
        }
        _ => html! { <p class="muted">{"No bookings in the last 30 days."}</p> },
    });
    html! {
        <div class="card" id="metrics" data-testid="metrics">
            <h2>{format!("Last {METRIC_DAYS} days")}</h2>
            { body }
        </div>
    }
}

fn currency_metrics(m: &BusinessMetrics) -> Html {
    let median = m.median_minutes_to_payment.map_or_else(
        || "—".to_owned(),
        |minutes| {
            if minutes >= 120 {
                format!("{} h", minutes / 60)
            } else {
                format!("{minutes} min")
            }
        },
    );
    let tile = |label: &str, value: String, id: &str| {
        html! {
            <div class="tile" data-testid={id.to_owned()}>
                <div class="tile-value">{value}</div>
                <div class="tile-label muted small">{label.to_owned()}</div>
            </div>
        }
    };
    html! {
        <div class="currency-metrics" data-currency={m.currency.clone()}>
            <div class="tiles">
                { tile("Bookings", m.bookings.to_string(), "metric-bookings") }
                { tile("Conversion (paid / booked)", percent(m.conversion_rate), "metric-conversion") }
                { tile("Payment success", percent(m.payment_success_rate), "metric-payment-success") }
                { tile("Cancellation rate", percent(m.cancellation_rate), "metric-cancellation") }
                { tile("Median time to payment", median, "metric-median") }
                { tile("Revenue", money(m.revenue_minor, &m.currency), "metric-revenue") }
                { tile("Refunds", money(m.refunds_minor, &m.currency), "metric-refunds") }
            </div>
            { revenue_chart(m) }
        </div>
    }
}

/// The last [`METRIC_DAYS`] UTC days as `YYYY-MM-DD`, oldest first.
fn window_days() -> Vec<String> {
    let now = js_sys::Date::now();
    (0..METRIC_DAYS)
        .rev()
        .map(|back| {
            let date = js_sys::Date::new(&(now - f64::from(back) * 86_400_000.0).into());
            String::from(date.to_iso_string())
                .chars()
                .take(10)
                .collect()
        })
        .collect()
}

/// Revenue per day as bars, refunds as a thinner bar beside it, over the whole window.
fn revenue_chart(m: &BusinessMetrics) -> Html {
    const W: f64 = 900.0;
    const H: f64 = 140.0;
    let window = window_days();
    let day = |label: &str| m.days.iter().find(|d| d.day == label);
    let n = window.len().max(1) as f64;
    let top = m
        .days
        .iter()
        .map(|d| d.revenue_minor.max(d.refunds_minor))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = W / n;
    let bar = |i: usize,
               value: i64,
               offset: f64,
               width: f64,
               class: &'static str,
               label: String| {
        let h = (value.max(0) as f64 / top) * (H - 20.0);
        html! {
            <rect class={class} x={format!("{:.1}", i as f64 * slot + offset)} y={format!("{:.1}", H - 16.0 - h)}
                width={format!("{width:.1}")} height={format!("{h:.1}")}>
                <title>{label}</title>
            </rect>
        }
    };
    html! {
        <figure class="chart">
            <svg viewBox={format!("0 0 {W} {H}")} role="img" preserveAspectRatio="none"
                aria-label={format!("Revenue per day in {}, last {} days", m.currency, window.len())}>
                <line x1="0" y1={format!("{}", H - 16.0)} x2={format!("{W}")} y2={format!("{}", H - 16.0)} class="axis" />
                { for window.iter().enumerate().filter_map(|(i, label)| day(label).map(|d| html! {
                    <g>
                        { bar(i, d.revenue_minor, slot * 0.15, slot * 0.5, "bar-revenue",
                            format!("{}: revenue {}, {} paid", d.day, money(d.revenue_minor, &m.currency), d.paid)) }
                        { bar(i, d.refunds_minor, slot * 0.65, slot * 0.2, "bar-refund",
                            format!("{}: refunds {}", d.day, money(d.refunds_minor, &m.currency))) }
                    </g>
                })) }
                if let (Some(first), Some(last)) = (window.first(), window.last()) {
                    <text x="0" y={format!("{}", H - 2.0)} class="chart-label">{first}</text>
                    <text x={format!("{W}")} y={format!("{}", H - 2.0)} text-anchor="end" class="chart-label">{last}</text>
                }
            </svg>
            <figcaption class="muted small">
                <span class="key key-revenue"></span>{"Revenue"}<span class="key key-refund"></span>{"Refunds"}
            </figcaption>
        </figure>
    }
}
