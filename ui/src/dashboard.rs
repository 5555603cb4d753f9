//! The first thing the coach sees: alerts (with thresholds the coach sets), today's and
//! upcoming sessions, what needs them with the action that resolves each, how the business
//! went over the last 30 days, and whether sync is running.

use coachdesk_protocol::desk::{AlertLevel, AlertReport, AlertThresholds};
use coachdesk_protocol::ipc::{
    AttentionItem, BookingFilter, BookingSummary, BusinessMetrics, CommandError, FieldError,
    SyncHealth,
};
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::app::Page;
use crate::format::{money, state_label, when};
use crate::{desk_ipc, ipc, progress};

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
                // The next sessions from the start of today (UTC), soonest first: one
                // small indexed query however many bookings there are.
                let today: String = String::from(js_sys::Date::new_0().to_iso_string())
                    .chars()
                    .take(10)
                    .collect();
                let filter = BookingFilter {
                    from: Some(today),
                    soonest_first: Some(true),
                    limit: Some(100),
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
            <AlertBanner navigate={props.navigate.clone()} {version} />
            <div class="dash-grid">
                { sessions(&bookings, &open) }
                <AttentionList items={(*attention).clone()} navigate={props.navigate.clone()} />
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
            <p class="muted" data-testid="sync-state">{"Sync not configured: enter the relay URL and token in Settings to pull bookings and payments."}</p>
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

/// Where the action that resolves a needs-attention code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// On the booking's page (its action dialogs).
    Booking,
    /// A reconciliation run fetches what Calendly has not reported yet.
    Reconcile,
    /// Link the event type to a session type.
    SessionTypes,
    /// Send a refund held while automatic refunds are off (the coach approves it).
    ApproveRefund,
}

/// The action that resolves a needs-attention code, as the button says it (pure).
pub fn resolution(code: &str) -> (&'static str, Resolve) {
    match code {
        "payment_for_unknown_booking" => ("Fetch the booking from Calendly", Resolve::Reconcile),
        "unmapped_event_type" => (
            "Link the event type to a session type",
            Resolve::SessionTypes,
        ),
        "amount_mismatch" => ("Refund the difference or dismiss", Resolve::Booking),
        "paid_twice" => ("Refund the second payment", Resolve::Booking),
        "paid_after_cancellation" | "paid_after_expiry" => {
            ("Refund the late payment", Resolve::Booking)
        }
        "refund_failed" => ("Refund again or correct by hand", Resolve::Booking),
        "disputed" => ("Review the dispute", Resolve::Booking),
        "effect_failed" => ("See what failed and retry", Resolve::Booking),
        "refund_awaiting_approval" => ("Approve the refund", Resolve::ApproveRefund),
        _ => ("Open the booking", Resolve::Booking),
    }
}

#[derive(Properties, PartialEq)]
struct AttentionProps {
    items: Loaded<Vec<AttentionItem>>,
    navigate: Callback<Page>,
}

#[component]
fn AttentionList(props: &AttentionProps) -> Html {
    let reconciling = use_state(|| false);
    let slow = progress::use_slow(*reconciling);
    let outcome = use_state(|| None::<Result<String, CommandError>>);
    let act = |booking_id: String, how: Resolve| {
        let navigate = props.navigate.clone();
        let (reconciling, outcome) = (reconciling.clone(), outcome.clone());
        Callback::from(move |_: MouseEvent| match how {
            Resolve::Booking => navigate.emit(Page::Booking(booking_id.clone())),
            Resolve::SessionTypes => navigate.emit(Page::SessionTypes),
            Resolve::ApproveRefund => {
                let (booking_id, outcome) = (booking_id.clone(), outcome.clone());
                spawn_local(async move {
                    // The list reloads by itself once the store changes.
                    let answer = crate::settings::approve_refund(&booking_id).await;
                    outcome.set(Some(
                        answer.map(|_| "Refund approved: it is being sent to Stripe.".to_owned()),
                    ));
                });
            }
            Resolve::Reconcile => {
                if *reconciling {
                    return;
                }
                reconciling.set(true);
                outcome.set(None);
                let (reconciling, outcome) = (reconciling.clone(), outcome.clone());
                spawn_local(async move {
                    let answer = desk_ipc::run_reconciliation().await;
                    reconciling.set(false);
                    outcome.set(Some(answer.map(|r| {
                        let found = r.stripe_events_recovered.len() + r.calendly_facts_recovered.len();
                        if found == 0 {
                            "Reconciliation found nothing missing yet; Calendly may not have the booking. Try again later or dismiss the flag on the booking.".to_owned()
                        } else {
                            format!("Reconciliation applied {found} missed event(s).")
                        }
                    })));
                });
            }
        })
    };
    let body = loading_or_error(&props.items, "what needs you").unwrap_or_else(|| match &props.items {
        Some(Ok(list)) if !list.is_empty() => html! {
            <ul class="plain-list">
                { for list.iter().map(|item| {
                    let open = {
                        let navigate = props.navigate.clone();
                        let id = item.booking_id.clone();
                        Callback::from(move |_: MouseEvent| navigate.emit(Page::Booking(id.clone())))
                    };
                    html! {
                        <li data-testid="attention-item" data-codes={item.codes.join(" ")}>
                            <button class="link" onclick={open}>
                                { item.client_name.clone().unwrap_or_else(|| "Unknown client".to_owned()) }
                            </button>
                            <span class={classes!("badge", format!("state-{}", item.state))}>{state_label(&item.state)}</span>
                            <div class="small">{&item.message}</div>
                            <div class="action-row">
                                { for item.codes.iter().map(|code| {
                                    let (label, how) = resolution(code);
                                    html! {
                                        <button class="btn small" data-testid="resolve-attention" data-code={code.clone()}
                                            disabled={how == Resolve::Reconcile && *reconciling}
                                            onclick={act(item.booking_id.clone(), how)}>{label}</button>
                                    }
                                }) }
                            </div>
                        </li>
                    }
                }) }
            </ul>
        },
        _ => html! { <p class="muted">{"Nothing needs you right now."}</p> },
    });
    html! {
        <div class="card" id="attention" data-testid="attention">
            <h2>{"Needs attention"}</h2>
            if slow { { progress::working("Reconciling with Stripe and Calendly") } }
            { match &*outcome {
                Some(Ok(text)) => html! { <p role="status" id="attention-reconcile-result">{text}</p> },
                Some(Err(e)) => html! { <div class="alert" role="alert" id="attention-reconcile-error">{&e.message}</div> },
                None => html! {},
            } }
            { body }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct AlertsProps {
    navigate: Callback<Page>,
    version: u64,
}

/// The banner of alerts (webhook and payment failure rates, state-machine errors) and the
/// form for their thresholds.
#[component]
fn AlertBanner(props: &AlertsProps) -> Html {
    let report = use_state(|| None::<Result<AlertReport, CommandError>>);
    let round = use_state(|| 0_u32);
    {
        let report = report.clone();
        use_effect_with((props.version, *round), move |_| {
            spawn_local(async move {
                report.set(Some(desk_ipc::dashboard_alerts(METRIC_DAYS).await));
            });
        });
    }
    let go = |page: Page| {
        let navigate = props.navigate.clone();
        Callback::from(move |_: MouseEvent| navigate.emit(page.clone()))
    };
    let reload = {
        let round = round.clone();
        Callback::from(move |()| round.set(*round + 1))
    };
    let alerts = match &*report {
        Some(Ok(r)) if !r.alerts.is_empty() => {
            let worst = r
                .alerts
                .iter()
                .map(|a| a.level)
                .max()
                .unwrap_or(AlertLevel::Warning);
            let class = if worst == AlertLevel::Critical {
                "critical"
            } else {
                "warning"
            };
            html! {
                <div class={classes!("alert-banner", class)} id="alert-banner" data-testid="alert-banner"
                    role={if worst == AlertLevel::Critical { "alert" } else { "status" }}>
                    { for r.alerts.iter().map(|a| {
                        let (label, page) = if a.code == "payment_failures" {
                            ("Show failed payments", Page::Bookings)
                        } else {
                            ("Open the webhook log", Page::Admin)
                        };
                        html! {
                            <div class="banner-alert" data-testid="alert" data-code={a.code.clone()}
                                data-level={if a.level == AlertLevel::Critical { "critical" } else { "warning" }}>
                                <strong>{ if a.level == AlertLevel::Critical { "Critical: " } else { "Warning: " } }</strong>
                                { &a.message }
                                <div class="small">{ &a.way_out }</div>
                                <button class="btn small" onclick={go(page)}>{label}</button>
                            </div>
                        }
                    }) }
                </div>
            }
        }
        Some(Err(e)) => {
            html! { <div class="alert" role="alert" id="alerts-error">{&e.message}</div> }
        }
        _ => html! {},
    };
    let thresholds = match &*report {
        Some(Ok(r)) => {
            html! { <ThresholdsForm current={r.thresholds.clone()} on_saved={reload} /> }
        }
        _ => html! {},
    };
    html! { <>{ alerts }{ thresholds }</> }
}

#[derive(Properties, PartialEq)]
struct ThresholdsProps {
    current: AlertThresholds,
    on_saved: Callback<()>,
}

/// The four thresholds as the coach types them.
#[derive(Clone, PartialEq)]
struct ThresholdText([String; 4]);

/// The typed thresholds, or the fields that are not numbers (pure).
pub fn parse_thresholds(text: &[String; 4]) -> Result<AlertThresholds, Vec<FieldError>> {
    let names = THRESHOLD_FIELDS.map(|(name, _)| name);
    let mut values = [0.0_f64; 4];
    let mut errors = Vec::new();
    for (i, t) in text.iter().enumerate() {
        match t
            .trim()
            .trim_end_matches('%')
            .trim()
            .replace(',', ".")
            .parse::<f64>()
        {
            Ok(v) => values[i] = v,
            Err(_) => errors.push(FieldError {
                field: names[i].to_owned(),
                message: "Enter a percentage such as 5 or 7.5.".to_owned(),
            }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(AlertThresholds {
        webhook_failure_warn: values[0],
        webhook_failure_critical: values[1],
        payment_failure_warn: values[2],
        payment_failure_critical: values[3],
    })
}

const THRESHOLD_FIELDS: [(&str, &str); 4] = [
    ("webhook_failure_warn", "Webhook failures: warn at (%)"),
    (
        "webhook_failure_critical",
        "Webhook failures: critical at (%)",
    ),
    ("payment_failure_warn", "Payment failures: warn at (%)"),
    (
        "payment_failure_critical",
        "Payment failures: critical at (%)",
    ),
];

fn as_text(t: &AlertThresholds) -> [String; 4] {
    [
        t.webhook_failure_warn,
        t.webhook_failure_critical,
        t.payment_failure_warn,
        t.payment_failure_critical,
    ]
    .map(|v| format!("{v}"))
}

#[component]
fn ThresholdsForm(props: &ThresholdsProps) -> Html {
    let text = use_state(|| ThresholdText(as_text(&props.current)));
    let busy = use_state(|| false);
    let slow = progress::use_slow(*busy);
    let errors = use_state(Vec::<FieldError>::new);
    let saved = use_state(|| None::<Result<(), String>>);
    let submit = {
        let (text, busy, errors, saved) =
            (text.clone(), busy.clone(), errors.clone(), saved.clone());
        let on_saved = props.on_saved.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            saved.set(None);
            let thresholds = match parse_thresholds(&text.0) {
                Ok(t) => t,
                Err(fields) => {
                    errors.set(fields);
                    return;
                }
            };
            busy.set(true);
            let (busy, errors, saved, on_saved) = (
                busy.clone(),
                errors.clone(),
                saved.clone(),
                on_saved.clone(),
            );
            spawn_local(async move {
                let answer = desk_ipc::set_alert_thresholds(&thresholds).await;
                busy.set(false);
                match answer {
                    Ok(_) => {
                        errors.set(Vec::new());
                        saved.set(Some(Ok(())));
                        on_saved.emit(());
                    }
                    Err(e) => {
                        errors.set(e.fields.clone());
                        saved.set(Some(Err(e.message)));
                    }
                }
            });
        })
    };
    html! {
        <details class="card thresholds" id="alert-thresholds">
            <summary>{"Alert thresholds"}</summary>
            <p class="muted small">{ format!("Rates over the last {METRIC_DAYS} days. Any event the state machine cannot place always raises an alert.") }</p>
            <form class="form" id="thresholds-form" onsubmit={submit} novalidate=true>
                { for THRESHOLD_FIELDS.iter().enumerate().map(|(i, (name, label))| {
                    let oninput = {
                        let text = text.clone();
                        Callback::from(move |e: InputEvent| {
                            let input: HtmlInputElement = e.target_unchecked_into();
                            let mut next = text.0.clone();
                            next[i] = input.value();
                            text.set(ThresholdText(next));
                        })
                    };
                    let error = errors.iter().find(|f| f.field == *name);
                    html! {
                        <div class="field">
                            <label for={format!("threshold-{name}")}>{*label}</label>
                            <input id={format!("threshold-{name}")} type="text" inputmode="decimal"
                                value={text.0[i].clone()} {oninput}
                                aria-invalid={error.is_some().then_some("true")} />
                            if let Some(f) = error { <div class="field-error" role="alert">{&f.message}</div> }
                        </div>
                    }
                }) }
                <div class="form-actions">
                    <button type="submit" class="btn primary" id="save-thresholds" disabled={*busy}>
                        { if slow { "Saving…" } else { "Save thresholds" } }
                    </button>
                </div>
                { match &*saved {
                    Some(Ok(())) => html! { <p role="status" id="thresholds-saved">{"Saved: the banner uses the new thresholds."}</p> },
                    Some(Err(m)) => html! { <div class="alert" role="alert" id="thresholds-error">{m}</div> },
                    None => html! {},
                } }
            </form>
        </details>
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::html_of;

    #[derive(Properties, PartialEq)]
    struct SyncProps {
        health: Option<SyncHealth>,
    }

    /// The sync card as the dashboard shows it once the status has loaded.
    #[component]
    fn SyncUnderTest(props: &SyncProps) -> Html {
        sync_card(&Some(Ok(props.health.clone())), Callback::from(|_| ()))
    }

    fn health(connected: bool, last_error: Option<&str>) -> SyncHealth {
        SyncHealth {
            relay_url: "https://relay.example.com".into(),
            connected,
            last_sync: None,
            events_applied: 1234,
            queue_depth: 3,
            effects_failed: 1,
            last_error: last_error.map(str::to_owned),
            last_reconcile_at: None,
        }
    }

    #[test]
    fn the_sync_card_says_connected_with_its_figures() {
        let html = html_of::<SyncUnderTest>(|| SyncProps {
            health: Some(health(true, None)),
        });
        assert!(
            html.contains(r#"state-confirmed">Connected</span>"#),
            "{html}"
        );
        for figure in [
            "<dd>1234</dd>",
            "<dd>3</dd>",
            "<dd>not yet</dd>",
            "https://relay.example.com",
        ] {
            assert!(html.contains(figure), "{figure} in {html}");
        }
        assert!(!html.contains("Last problem"), "no problem to show: {html}");
    }

    #[test]
    fn the_sync_card_names_the_last_problem_when_not_connected() {
        let html = html_of::<SyncUnderTest>(|| SyncProps {
            health: Some(health(
                false,
                Some("The relay refused the token (HTTP 401)."),
            )),
        });
        assert!(html.contains(">Not connected<"), "{html}");
        assert!(
            html.contains("Last problem: The relay refused the token (HTTP 401)."),
            "{html}"
        );
    }

    #[test]
    fn without_sync_the_card_leads_to_settings() {
        let html = html_of::<SyncUnderTest>(|| SyncProps { health: None });
        assert!(
            html.contains("Sync not configured: enter the relay URL and token in Settings"),
            "{html}"
        );
        assert!(!html.contains("Connected"), "{html}");
    }

    #[test]
    fn every_attention_code_has_an_action_that_resolves_it() {
        for code in [
            "payment_for_unknown_booking",
            "unmapped_event_type",
            "amount_mismatch",
            "paid_twice",
            "paid_after_cancellation",
            "paid_after_expiry",
            "refund_failed",
            "disputed",
            "effect_failed",
            "refund_awaiting_approval",
        ] {
            let (label, _) = resolution(code);
            assert_ne!(label, "Open the booking", "{code} has its own action");
        }
        assert_eq!(
            resolution("payment_for_unknown_booking").1,
            Resolve::Reconcile
        );
        assert_eq!(resolution("unmapped_event_type").1, Resolve::SessionTypes);
        assert_eq!(resolution("paid_twice").1, Resolve::Booking);
        assert_eq!(
            resolution("refund_awaiting_approval").1,
            Resolve::ApproveRefund
        );
    }

    #[test]
    fn thresholds_are_read_as_typed() {
        let text = |a: &str, b: &str, c: &str, d: &str| [a, b, c, d].map(str::to_owned);
        let t = parse_thresholds(&text("5", "10 %", "7,5", " 15 ")).expect("numbers");
        assert_eq!(t.webhook_failure_warn, 5.0);
        assert_eq!(t.webhook_failure_critical, 10.0);
        assert_eq!(t.payment_failure_warn, 7.5);
        assert_eq!(t.payment_failure_critical, 15.0);
        let bad = parse_thresholds(&text("five", "10", "", "15")).unwrap_err();
        let fields: Vec<_> = bad.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["webhook_failure_warn", "payment_failure_warn"]);
    }
}
