//! Session types: the list (with archive) and the create/edit form.
//!
//! The form sends what the coach typed; the core validates it and answers with one
//! message per field, which appears right under that field. Only what the browser cannot
//! even encode (minutes that are not a number) is checked here.

use coachdesk_protocol::ipc::{
    CommandError, FieldError, RefundTierDto, SessionTypeDraft, SessionTypeView,
};
use coachdesk_protocol::setup::{PolicyPreview, PolicyPreviewRequest, StripeStatus};
use wasm_bindgen_futures::spawn_local;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::app::Page;
use crate::{ipc, setup_ipc};

const CURRENCIES: &[&str] = &["EUR", "USD", "GBP", "CHF", "CAD", "AUD", "SEK", "JPY"];

#[derive(Properties, PartialEq)]
pub struct ListProps {
    pub navigate: Callback<Page>,
}

#[component]
pub fn SessionTypeList(props: &ListProps) -> Html {
    let show_archived = use_state(|| false);
    let reload = use_state(|| 0u32);
    let items = use_state(|| None::<Result<Vec<SessionTypeView>, CommandError>>);
    let confirming = use_state(|| None::<String>);
    let action_error = use_state(|| None::<String>);
    {
        let items = items.clone();
        use_effect_with((*show_archived, *reload), move |(archived, _)| {
            let archived = *archived;
            spawn_local(async move {
                items.set(Some(ipc::list_session_types(archived).await));
            });
        });
    }

    let toggle_archived = {
        let show_archived = show_archived.clone();
        Callback::from(move |e: Event| {
            let input: HtmlInputElement = e.target_unchecked_into();
            show_archived.set(input.checked());
        })
    };
    let new_type = {
        let navigate = props.navigate.clone();
        Callback::from(move |_: MouseEvent| navigate.emit(Page::NewSessionType))
    };

    let notice = use_state(|| None::<String>);
    let reload_cb = {
        let (reload, notice) = (reload.clone(), notice.clone());
        Callback::from(move |note: Option<String>| {
            notice.set(note);
            reload.set(*reload + 1);
        })
    };
    let row = |view: &SessionTypeView| {
        let edit = {
            let navigate = props.navigate.clone();
            let view = view.clone();
            Callback::from(move |_: MouseEvent| navigate.emit(Page::EditSessionType(view.clone())))
        };
        let is_confirming = confirming.as_deref() == Some(view.id.as_str());
        let archive = {
            let confirming = confirming.clone();
            let reload = reload.clone();
            let action_error = action_error.clone();
            let id = view.id.clone();
            Callback::from(move |_: MouseEvent| {
                if confirming.as_deref() != Some(id.as_str()) {
                    confirming.set(Some(id.clone()));
                    return;
                }
                let (confirming, reload, action_error, id) = (
                    confirming.clone(),
                    reload.clone(),
                    action_error.clone(),
                    id.clone(),
                );
                spawn_local(async move {
                    match ipc::archive_session_type(&id).await {
                        Ok(_) => action_error.set(None),
                        Err(e) => action_error.set(Some(e.message)),
                    }
                    confirming.set(None);
                    reload.set(*reload + 1);
                });
            })
        };
        let tiers = if view.refund_tiers.is_empty() {
            "No refunds".to_owned()
        } else {
            view.refund_tiers
                .iter()
                .map(|t| format!("{}% ≥ {} h", t.percent, t.min_hours_before))
                .collect::<Vec<_>>()
                .join(", ")
        };
        html! {
            <tr data-testid="session-type-row" data-id={view.id.clone()} class={classes!(view.archived.then_some("archived"))}>
                <td data-testid="session-type-name" class="strong">
                    {&view.name}
                    if view.archived { <span class="badge muted">{"Archived"}</span> }
                </td>
                <td>{format!("{} min", view.duration_minutes)}</td>
                <td class="num" data-testid="session-type-price">{&view.price_display}</td>
                <td class="muted">{tiers}</td>
                <td>
                    if !view.archived {
                        <StripeSetupCell view={view.clone()} on_done={reload_cb.clone()} />
                    }
                </td>
                <td class="actions">
                    if !view.archived {
                        <button class="btn small" data-testid="edit-session-type" onclick={edit}>{"Edit"}</button>
                        <button class={classes!("btn", "small", if is_confirming { "danger" } else { "ghost" })}
                            data-testid="archive-session-type" onclick={archive}>
                            { if is_confirming { "Confirm archive" } else { "Archive" } }
                        </button>
                    }
                </td>
            </tr>
        }
    };

    let table = match &*items {
        None => html! { <p class="muted" id="session-types-loading">{"Loading…"}</p> },
        Some(Err(e)) => {
            html! { <div class="alert" role="alert" id="session-types-error">{&e.message}</div> }
        }
        Some(Ok(list)) if list.is_empty() => html! {
            <div class="empty" id="session-types-empty">
                <p>{"No session types yet."}</p>
                <p class="muted">{"A session type is what clients book and pay for: a name, a length, a price and a refund policy."}</p>
            </div>
        },
        Some(Ok(list)) => html! {
            <table class="table" id="session-types" data-testid="session-types">
                <thead><tr><th>{"Name"}</th><th>{"Length"}</th><th class="num">{"Price"}</th><th>{"Refunds"}</th><th>{"Stripe"}</th><th></th></tr></thead>
                <tbody>{ for list.iter().map(row) }</tbody>
            </table>
        },
    };

    html! {
        <section aria-labelledby="session-types-title">
            <div class="page-head">
                <h1 id="session-types-title">{"Session types"}</h1>
                <div class="page-tools">
                    <label class="check">
                        <input type="checkbox" id="show-archived" checked={*show_archived} onchange={toggle_archived} />
                        {"Show archived"}
                    </label>
                    <button class="btn primary" id="new-session-type" data-testid="new-session-type" onclick={new_type}>{"New session type"}</button>
                </div>
            </div>
            if let Some(message) = &*action_error {
                <div class="alert" role="alert" id="session-type-action-error">{message}</div>
            }
            if let Some(message) = &*notice {
                <p class="hint" role="status" id="stripe-notice" data-testid="stripe-notice">{message}</p>
            }
            { table }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct StripeCellProps {
    view: SessionTypeView,
    /// Called after a set-up succeeded (with what the relay was told), to reload the list.
    on_done: Callback<Option<String>>,
}

/// The session type's Stripe state and the one button that creates its product, price
/// and payment link (a second click while it runs does nothing; a retry makes nothing
/// twice, the core's Idempotency-Keys see to that).
#[component]
fn StripeSetupCell(props: &StripeCellProps) -> Html {
    let busy = use_state(|| false);
    let error = use_state(|| None::<String>);
    let view = &props.view;
    let setup = {
        let (busy, error) = (busy.clone(), error.clone());
        let (id, on_done) = (view.id.clone(), props.on_done.clone());
        Callback::from(move |_: MouseEvent| {
            if *busy {
                return;
            }
            busy.set(true);
            error.set(None);
            let (busy, error, id, on_done) =
                (busy.clone(), error.clone(), id.clone(), on_done.clone());
            spawn_local(async move {
                let result = setup_ipc::setup_stripe(&id).await;
                busy.set(false);
                match result {
                    Ok(setup) => on_done.emit(setup.relay_note),
                    Err(e) => error.set(Some(e.message)),
                }
            });
        })
    };
    let (status, label) = match view.stripe_status {
        StripeStatus::Ready => ("ready", "Payment link ready"),
        StripeStatus::Outdated => ("outdated", "Price changed: set up again"),
        StripeStatus::NotSetUp => ("not_set_up", "Not set up"),
    };
    html! {
        <div class="stripe-cell">
            <span class={classes!("badge", (status != "ready").then_some("muted"))}
                data-testid="stripe-status" data-status={status}>{label}</span>
            if let (StripeStatus::Ready, Some(url)) = (view.stripe_status, &view.payment_link_url) {
                <div class="mono small" data-testid="payment-link-url">{url}</div>
            }
            if view.stripe_status != StripeStatus::Ready {
                <button class="btn small" data-testid="setup-stripe" onclick={setup}
                    disabled={*busy} aria-busy={busy.then_some("true")}>
                    { if *busy { "Creating product, price and link…" } else { "Set up in Stripe" } }
                </button>
            }
            if let Some(message) = &*error {
                <p class="field-error" role="alert" data-testid="stripe-error">{message}</p>
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
pub struct FormProps {
    pub navigate: Callback<Page>,
    /// `None` creates a new session type; `Some` edits that one.
    pub editing: Option<SessionTypeView>,
}

/// What the inputs hold, as text, so nothing the coach typed is lost on a failed save.
#[derive(Clone, PartialEq, Default)]
struct FormFields {
    name: String,
    duration: String,
    price: String,
    currency: String,
    tiers: Vec<(String, String)>,
    /// Minutes the client has to pay after booking.
    window: String,
}

impl FormFields {
    fn from_view(view: Option<&SessionTypeView>) -> FormFields {
        match view {
            None => FormFields {
                duration: "60".to_owned(),
                currency: "EUR".to_owned(),
                window: "1440".to_owned(),
                tiers: vec![("24".to_owned(), "100".to_owned())],
                ..FormFields::default()
            },
            Some(v) => FormFields {
                name: v.name.clone(),
                duration: v.duration_minutes.to_string(),
                window: v.payment_window_minutes.to_string(),
                price: editable_price(v),
                currency: v.currency.clone(),
                tiers: v
                    .refund_tiers
                    .iter()
                    .map(|t| (t.min_hours_before.to_string(), t.percent.to_string()))
                    .collect(),
            },
        }
    }

    /// The draft to send, or the errors that stop us from even encoding one.
    fn draft(&self) -> Result<SessionTypeDraft, Vec<FieldError>> {
        let mut errors = Vec::new();
        let whole = |text: &str, field: &str, what: &str, errors: &mut Vec<FieldError>| -> u32 {
            text.trim().parse::<u32>().unwrap_or_else(|_| {
                errors.push(FieldError {
                    field: field.to_owned(),
                    message: format!(
                        "Enter {what} as a whole number, such as 60; \"{}\" is not one.",
                        text.trim()
                    ),
                });
                0
            })
        };
        let duration_minutes = whole(
            &self.duration,
            "duration_minutes",
            "the length in minutes",
            &mut errors,
        );
        let payment_window_minutes = whole(
            &self.window,
            "payment_window_minutes",
            "the time to pay in minutes",
            &mut errors,
        );
        let mut refund_tiers = Vec::new();
        for (hours, percent) in &self.tiers {
            let min_hours_before = whole(
                hours,
                "refund_tiers",
                "the hours before the start",
                &mut errors,
            );
            let percent = whole(
                percent,
                "refund_tiers",
                "the refund percentage",
                &mut errors,
            );
            refund_tiers.push(RefundTierDto {
                min_hours_before,
                percent: u8::try_from(percent).unwrap_or(u8::MAX),
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        // Calendly event types are linked on the Calendly page; `None` keeps the links.
        Ok(SessionTypeDraft {
            name: self.name.clone(),
            duration_minutes,
            price: self.price.clone(),
            currency: self.currency.clone(),
            refund_tiers,
            calendly_event_type_uri: None,
            payment_window_minutes: Some(payment_window_minutes),
        })
    }

    /// The preview request, or why none can be made (tiers that are not numbers yet).
    fn preview_request(&self, hours: &str) -> Result<PolicyPreviewRequest, String> {
        let number = |text: &str| text.trim().parse::<u32>().ok();
        let mut refund_tiers = Vec::new();
        for (hours, percent) in &self.tiers {
            match (
                number(hours),
                number(percent).and_then(|p| u8::try_from(p).ok()),
            ) {
                (Some(min_hours_before), Some(percent)) => refund_tiers.push(RefundTierDto {
                    min_hours_before,
                    percent,
                }),
                _ => return Err(
                    "Enter each tier's hours and percentage as whole numbers to see the preview."
                        .to_owned(),
                ),
            }
        }
        let hours_before = number(hours)
            .ok_or_else(|| "Enter the hours before the start as a whole number.".to_owned())?;
        Ok(PolicyPreviewRequest {
            price: self.price.clone(),
            currency: self.currency.clone(),
            refund_tiers,
            hours_before,
        })
    }
}

/// The stored price written back the way a coach would type it (`150.00`, `15000` for JPY).
fn editable_price(view: &SessionTypeView) -> String {
    let shown = view.price_display.trim();
    shown
        .strip_suffix(view.currency.as_str())
        .map(|p| p.trim().to_owned())
        .unwrap_or_else(|| view.price_minor.to_string())
}

#[component]
pub fn SessionTypeForm(props: &FormProps) -> Html {
    let fields = use_state(|| FormFields::from_view(props.editing.as_ref()));
    let errors = use_state(Vec::<FieldError>::new);
    let form_error = use_state(|| None::<String>);
    let saving = use_state(|| false);
    let preview_hours = use_state(|| "30".to_owned());
    let preview = use_state(|| None::<Result<PolicyPreview, String>>);
    let preview_seq = use_mut_ref(|| 0u32);
    {
        let preview = preview.clone();
        let preview_seq = preview_seq.clone();
        use_effect_with(
            ((*fields).clone(), (*preview_hours).clone()),
            move |(fields, hours)| {
                *preview_seq.borrow_mut() += 1;
                let seq = *preview_seq.borrow();
                match fields.preview_request(hours) {
                    Err(problem) => preview.set(Some(Err(problem))),
                    Ok(request) => spawn_local(async move {
                        let answer = setup_ipc::preview_refund_policy(&request)
                            .await
                            .map_err(|e| e.message);
                        // Only the answer to the latest edit is shown.
                        if *preview_seq.borrow() == seq {
                            preview.set(Some(answer));
                        }
                    }),
                }
            },
        );
    }
    let on_preview_hours = {
        let preview_hours = preview_hours.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            preview_hours.set(input.value());
        })
    };

    let set = |apply: fn(&mut FormFields, String)| {
        let fields = fields.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let mut next = (*fields).clone();
            apply(&mut next, input.value());
            fields.set(next);
        })
    };
    let on_currency = {
        let fields = fields.clone();
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            let mut next = (*fields).clone();
            next.currency = select.value();
            fields.set(next);
        })
    };
    let set_tier = |index: usize, percent: bool| {
        let fields = fields.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let mut next = (*fields).clone();
            if let Some(tier) = next.tiers.get_mut(index) {
                if percent {
                    tier.1 = input.value()
                } else {
                    tier.0 = input.value()
                }
            }
            fields.set(next);
        })
    };
    let add_tier = {
        let fields = fields.clone();
        Callback::from(move |_: MouseEvent| {
            let mut next = (*fields).clone();
            next.tiers.push((String::new(), String::new()));
            fields.set(next);
        })
    };
    let remove_tier = |index: usize| {
        let fields = fields.clone();
        Callback::from(move |_: MouseEvent| {
            let mut next = (*fields).clone();
            if index < next.tiers.len() {
                next.tiers.remove(index);
            }
            fields.set(next);
        })
    };
    let cancel = {
        let navigate = props.navigate.clone();
        Callback::from(move |_: MouseEvent| navigate.emit(Page::SessionTypes))
    };
    let submit = {
        let (fields, errors, form_error, saving) = (
            fields.clone(),
            errors.clone(),
            form_error.clone(),
            saving.clone(),
        );
        let navigate = props.navigate.clone();
        let editing_id = props.editing.as_ref().map(|v| v.id.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if *saving {
                return;
            }
            let draft = match fields.draft() {
                Ok(draft) => draft,
                Err(local) => {
                    errors.set(local);
                    form_error.set(Some("Some fields need attention.".to_owned()));
                    return;
                }
            };
            saving.set(true);
            let (errors, form_error, saving, navigate, editing_id) = (
                errors.clone(),
                form_error.clone(),
                saving.clone(),
                navigate.clone(),
                editing_id.clone(),
            );
            spawn_local(async move {
                let result = match &editing_id {
                    Some(id) => ipc::update_session_type(id, &draft).await,
                    None => ipc::create_session_type(&draft).await,
                };
                saving.set(false);
                match result {
                    Ok(_) => navigate.emit(Page::SessionTypes),
                    Err(e) => {
                        form_error.set(Some(e.message));
                        errors.set(e.fields);
                    }
                }
            });
        })
    };

    let error_for = |field: &str| -> Html {
        let messages: Vec<&FieldError> = errors
            .iter()
            .filter(|e| {
                e.field == field
                    || e.field.starts_with(&format!("{field}["))
                    || e.field.starts_with(&format!("{field}."))
            })
            .collect();
        if messages.is_empty() {
            return html! {};
        }
        html! {
            <p class="field-error" id={format!("error-{field}")} data-testid={format!("error-{field}")} role="alert">
                { for messages.iter().map(|e| html! { <span>{&e.message}</span> }) }
            </p>
        }
    };
    let known = [
        "name",
        "duration_minutes",
        "price",
        "currency",
        "refund_tiers",
        "calendly_event_type_uri",
        "payment_window_minutes",
    ];
    let other_errors: Vec<&FieldError> = errors
        .iter()
        .filter(|e| {
            !known.iter().any(|k| {
                e.field == *k
                    || e.field.starts_with(&format!("{k}["))
                    || e.field.starts_with(&format!("{k}."))
            })
        })
        .collect();
    let invalid = |field: &str| {
        errors
            .iter()
            .any(|e| e.field.starts_with(field))
            .then_some("true")
    };

    let title = if props.editing.is_some() {
        "Edit session type"
    } else {
        "New session type"
    };
    let f = &*fields;
    html! {
        <section aria-labelledby="session-type-form-title" class="form-page">
            <div class="page-head">
                <h1 id="session-type-form-title">{title}</h1>
            </div>
            <form id="session-type-form" data-testid="session-type-form" class="card form" onsubmit={submit} novalidate=true>
                if let Some(message) = &*form_error {
                    <div class="alert" role="alert" id="form-error" data-testid="form-error">
                        {message}
                        { for other_errors.iter().map(|e| html! { <div>{format!("{}: {}", e.field, e.message)}</div> }) }
                    </div>
                }
                <div class="field">
                    <label for="field-name">{"Name"}</label>
                    <input id="field-name" name="name" type="text" value={f.name.clone()} placeholder="Discovery call"
                        aria-invalid={invalid("name")} oninput={set(|f, v| f.name = v)} />
                    { error_for("name") }
                </div>
                <div class="field-row">
                    <div class="field">
                        <label for="field-duration">{"Length (minutes)"}</label>
                        <input id="field-duration" name="duration_minutes" type="text" inputmode="numeric" value={f.duration.clone()}
                            aria-invalid={invalid("duration_minutes")} oninput={set(|f, v| f.duration = v)} />
                        { error_for("duration_minutes") }
                    </div>
                    <div class="field">
                        <label for="field-payment-window">{"Time to pay (minutes after booking)"}</label>
                        <input id="field-payment-window" name="payment_window_minutes" type="text" inputmode="numeric" value={f.window.clone()}
                            aria-invalid={invalid("payment_window_minutes")} oninput={set(|f, v| f.window = v)} />
                        { error_for("payment_window_minutes") }
                    </div>
                    <div class="field">
                        <label for="field-price">{"Price"}</label>
                        <input id="field-price" name="price" type="text" inputmode="decimal" value={f.price.clone()} placeholder="150.00"
                            aria-invalid={invalid("price")} oninput={set(|f, v| f.price = v)} />
                        { error_for("price") }
                    </div>
                    <div class="field">
                        <label for="field-currency">{"Currency"}</label>
                        <select id="field-currency" name="currency" aria-invalid={invalid("currency")} onchange={on_currency}>
                            { for CURRENCIES.iter().map(|c| html! { <option value={*c} selected={f.currency == *c}>{*c}</option> }) }
                            if !f.currency.is_empty() && !CURRENCIES.contains(&f.currency.as_str()) {
                                <option value={f.currency.clone()} selected=true>{&f.currency}</option>
                            }
                        </select>
                        { error_for("currency") }
                    </div>
                </div>
                <fieldset class="field tiers">
                    <legend>{"Refund policy"}</legend>
                    <p class="hint">{"A client who cancels at least this many hours before the start gets this share back. No tier: no refunds."}</p>
                    { for f.tiers.iter().enumerate().map(|(i, (hours, percent))| html! {
                        <div class="tier" data-testid="refund-tier">
                            <label for={format!("tier-{i}-hours")}>{"At least"}</label>
                            <input id={format!("tier-{i}-hours")} type="text" inputmode="numeric" class="short" value={hours.clone()} oninput={set_tier(i, false)} />
                            <span>{"hours before:"}</span>
                            <input id={format!("tier-{i}-percent")} type="text" inputmode="numeric" class="short" aria-label="Percent refunded" value={percent.clone()} oninput={set_tier(i, true)} />
                            <span>{"% back"}</span>
                            <button type="button" class="btn small ghost" aria-label={format!("Remove tier {}", i + 1)} onclick={remove_tier(i)}>{"Remove"}</button>
                        </div>
                    }) }
                    <button type="button" class="btn small" id="add-refund-tier" onclick={add_tier}>{"Add tier"}</button>
                    { error_for("refund_tiers") }
                    <div class="policy-preview" id="refund-preview" data-testid="refund-preview" aria-live="polite">
                        <label for="preview-hours">{"Preview: a client cancels"}</label>
                        <input id="preview-hours" type="text" inputmode="numeric" class="short"
                            value={(*preview_hours).clone()} oninput={on_preview_hours} />
                        <span>{"hours before the start"}</span>
                        { match &*preview {
                            None => html! {},
                            Some(Err(problem)) => html! { <p class="hint" id="refund-preview-problem">{problem}</p> },
                            Some(Ok(p)) => html! {
                                <>
                                    if let Some(sentence) = &p.sentence {
                                        <p class="preview-sentence" id="refund-preview-sentence" data-testid="refund-preview-sentence">{sentence}</p>
                                    }
                                    if let Some(problem) = &p.problem {
                                        <p class="hint" id="refund-preview-problem">{problem}</p>
                                    }
                                    if !p.tiers.is_empty() {
                                        <ul class="plain-list small muted" id="refund-preview-tiers">
                                            { for p.tiers.iter().map(|t| html! { <li>{t}</li> }) }
                                        </ul>
                                    }
                                </>
                            },
                        } }
                    </div>
                </fieldset>
                <p class="hint" id="calendly-note">
                    { match props.editing.as_ref().map(|v| v.event_type_uris.len()).unwrap_or(0) {
                        0 => "Not sold through any Calendly event type yet: link one on the Calendly page.".to_owned(),
                        1 => "Sold through 1 Calendly event type (change it on the Calendly page).".to_owned(),
                        n => format!("Sold through {n} Calendly event types (change them on the Calendly page)."),
                    } }
                </p>
                <div class="form-actions">
                    <button type="submit" class="btn primary" id="save-session-type" data-testid="save-session-type" disabled={*saving}>
                        { if *saving { "Saving…" } else { "Save" } }
                    </button>
                    <button type="button" class="btn ghost" id="cancel-session-type" onclick={cancel}>{"Cancel"}</button>
                </div>
            </form>
        </section>
    }
}
