//! What the coach can do to one booking: cancel (with the refund stated in money before
//! confirming), refund part, mark a no-show, correct the state by hand, dismiss a
//! needs-attention flag, send the payment (or recovery) link again.
//!
//! Every rule lives in the core: the dialogs only collect the coach's choice, send it with
//! an `action_id` made when the dialog opened (so a double click is one action), and show
//! the core's answer or its `CommandError.message` inside the dialog.

use coachdesk_protocol::ipc::{
    BookingDetail, CoachActionDto, CommandError, RefundChoiceDto, RefundPreview,
};
use wasm_bindgen_futures::spawn_local;
use web_sys::{HtmlElement, HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::bookings::STATES;
use crate::format::{money, parse_amount, state_label};
use crate::{ipc, progress};

/// Which dialog is open.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Cancel,
    Refund,
    NoShow,
    Correct,
}

#[derive(Properties, PartialEq)]
pub struct ActionsProps {
    pub detail: BookingDetail,
    /// Receives the booking as the core answers it after an action.
    pub on_change: Callback<BookingDetail>,
}

#[component]
pub fn BookingActions(props: &ActionsProps) -> Html {
    let open = use_state(|| None::<Kind>);
    let codes = use_state(Vec::<String>::new);
    let dismiss_id = use_state(ipc::new_action_id);
    let dismiss_busy = use_state(|| false);
    let dismiss_error = use_state(|| None::<String>);
    let booking_id = props.detail.summary.id.clone();
    {
        let codes = codes.clone();
        let id = booking_id.clone();
        use_effect_with(props.detail.summary.needs_attention.clone(), move |flag| {
            if flag.is_none() {
                codes.set(Vec::new());
            } else {
                spawn_local(async move {
                    if let Ok(items) = ipc::attention_items().await {
                        codes.set(
                            items
                                .into_iter()
                                .filter(|item| item.booking_id == id)
                                .flat_map(|item| item.codes)
                                .collect(),
                        );
                    }
                });
            }
        });
    }
    // The buttons that open each dialog: focus goes back to the one used when it closes.
    let buttons = [
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
    ];
    let back_to_button = {
        let buttons = buttons.clone();
        let opened = *open;
        move || {
            // The action's own button, or "Correct state" (always there) when the action
            // is no longer offered, so keyboard focus never falls back to the page's top.
            let button = opened
                .and_then(|k| buttons[k as usize].cast::<HtmlElement>())
                .or_else(|| buttons[3].cast::<HtmlElement>());
            if let Some(button) = button {
                let _ = button.focus();
            }
        }
    };
    let show = |kind: Kind| {
        let open = open.clone();
        Callback::from(move |_: MouseEvent| open.set(Some(kind)))
    };
    let close = {
        let open = open.clone();
        let back_to_button = back_to_button.clone();
        Callback::from(move |()| {
            open.set(None);
            back_to_button();
        })
    };
    let done = {
        let open = open.clone();
        let on_change = props.on_change.clone();
        Callback::from(move |detail: BookingDetail| {
            open.set(None);
            on_change.emit(detail);
            back_to_button();
        })
    };
    let dismiss = |code: String| {
        let (dismiss_id, busy, error) = (
            dismiss_id.clone(),
            dismiss_busy.clone(),
            dismiss_error.clone(),
        );
        let on_change = props.on_change.clone();
        let booking_id = booking_id.clone();
        Callback::from(move |_: MouseEvent| {
            busy.set(true);
            error.set(None);
            let action_id = (*dismiss_id).clone();
            let action = CoachActionDto::Dismiss { code: code.clone() };
            let (dismiss_id, busy, error, on_change, booking_id) = (
                dismiss_id.clone(),
                busy.clone(),
                error.clone(),
                on_change.clone(),
                booking_id.clone(),
            );
            spawn_local(async move {
                let result = ipc::coach_action(&booking_id, &action_id, &action).await;
                busy.set(false);
                match result {
                    Ok(detail) => {
                        dismiss_id.set(ipc::new_action_id());
                        on_change.emit(detail);
                    }
                    Err(e) => error.set(Some(with_way_out(&e))),
                }
            });
        })
    };

    let resend_id = use_state(ipc::new_action_id);
    let resend_busy = use_state(|| false);
    let resend_slow = progress::use_slow(*resend_busy);
    let resend_note = use_state(|| None::<Result<String, String>>);
    let resend = {
        let (resend_id, busy, note) = (resend_id.clone(), resend_busy.clone(), resend_note.clone());
        let on_change = props.on_change.clone();
        let booking_id = booking_id.clone();
        Callback::from(move |_: MouseEvent| {
            if *busy {
                return;
            }
            busy.set(true);
            note.set(None);
            let action_id = (*resend_id).clone();
            let (resend_id, busy, note, on_change, booking_id) = (
                resend_id.clone(),
                busy.clone(),
                note.clone(),
                on_change.clone(),
                booking_id.clone(),
            );
            spawn_local(async move {
                let result =
                    ipc::coach_action(&booking_id, &action_id, &CoachActionDto::ResendPaymentLink)
                        .await;
                busy.set(false);
                match result {
                    Ok(detail) => {
                        // The next click is another email; a retry of this one is not.
                        resend_id.set(ipc::new_action_id());
                        note.set(Some(Ok(
                            "The payment link is on its way to the client; the timeline records it."
                                .to_owned(),
                        )));
                        on_change.emit(detail);
                    }
                    Err(e) => note.set(Some(Err(with_way_out(&e)))),
                }
            });
        })
    };
    let s = &props.detail.summary;
    // Only what the state machine would accept now (it answers with the detail).
    let offered = props.detail.actions;
    html! {
        <div class="card" id="booking-actions" data-testid="booking-actions">
            <h2>{"Actions"}</h2>
            <div class="action-row">
                if offered.cancel {
                    <button class="btn danger" id="action-cancel" ref={buttons[0].clone()} onclick={show(Kind::Cancel)}>{"Cancel booking…"}</button>
                }
                if offered.refund {
                    <button class="btn" id="action-refund" ref={buttons[1].clone()} onclick={show(Kind::Refund)}>{"Refund part…"}</button>
                }
                if offered.no_show {
                    <button class="btn" id="action-no-show" ref={buttons[2].clone()} onclick={show(Kind::NoShow)}>{"Mark no-show…"}</button>
                }
                <button class="btn" id="action-correct" ref={buttons[3].clone()} onclick={show(Kind::Correct)}>{"Correct state…"}</button>
                if offered.resend_link {
                    <button class="btn" id="action-resend-link" data-testid="action-resend-link"
                        disabled={*resend_busy} onclick={resend}>
                        { if *resend_busy { "Sending…" } else if s.state == "payment_failed" { "Send the recovery link again" } else { "Send the payment link again" } }
                    </button>
                }
            </div>
            if resend_slow { { progress::working("Queueing the email") } }
            { match &*resend_note {
                Some(Ok(text)) => html! { <p role="status" id="resend-result" data-testid="resend-result">{text}</p> },
                Some(Err(text)) => html! { <div class="alert" role="alert" id="resend-error" data-testid="resend-error">{text}</div> },
                None => html! {},
            } }
            if !codes.is_empty() {
                <div class="action-row" aria-label="Needs-attention flags">
                    { for codes.iter().map(|code| html! {
                        <button class="btn small" data-testid="dismiss-flag" data-code={code.clone()}
                            disabled={*dismiss_busy} onclick={dismiss(code.clone())}>
                            { if *dismiss_busy { "Dismissing…".to_owned() } else { format!("Dismiss “{}”", state_label(code)) } }
                        </button>
                    }) }
                </div>
            }
            if let Some(message) = &*dismiss_error {
                <div class="alert" role="alert" id="dismiss-error">{message}</div>
            }
            if let Some(kind) = *open {
                <ActionDialog {kind} booking_id={s.id.clone()}
                    currency={s.currency.clone().unwrap_or_default()}
                    on_close={close} on_done={done} />
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct DialogProps {
    kind: Kind,
    booking_id: String,
    currency: String,
    on_close: Callback<()>,
    on_done: Callback<BookingDetail>,
}

/// The form's fields, as typed.
#[derive(Clone, PartialEq)]
struct Fields {
    choice: String,
    amount: String,
    reason: String,
    state: String,
}

#[component]
fn ActionDialog(props: &DialogProps) -> Html {
    let kind = props.kind;
    // Made once per opening: a second click on Confirm repeats the same action.
    let action_id = use_state(ipc::new_action_id);
    let busy = use_state(|| false);
    let error = use_state(|| None::<CommandError>);
    let preview = use_state(|| None::<Result<RefundPreview, CommandError>>);
    let fields = use_state(|| Fields {
        choice: "policy".to_owned(),
        amount: String::new(),
        reason: String::new(),
        state: "confirmed".to_owned(),
    });
    let first = use_node_ref();
    {
        let preview = preview.clone();
        let id = props.booking_id.clone();
        let first = first.clone();
        use_effect_with((), move |_| {
            if let Some(element) = first.cast::<HtmlElement>() {
                let _ = element.focus();
            }
            if kind == Kind::Cancel {
                spawn_local(async move {
                    preview.set(Some(ipc::refund_preview(&id).await));
                });
            }
        });
    }
    let currency = props.currency.clone();
    let set_text = |apply: fn(&mut Fields, String)| {
        let fields = fields.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let mut next = (*fields).clone();
            apply(&mut next, input.value());
            fields.set(next);
        })
    };
    let set_choice = |value: &'static str| {
        let fields = fields.clone();
        Callback::from(move |_: Event| {
            let mut next = (*fields).clone();
            next.choice = value.to_owned();
            fields.set(next);
        })
    };
    let on_state = {
        let fields = fields.clone();
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            let mut next = (*fields).clone();
            next.state = select.value();
            fields.set(next);
        })
    };
    let close = {
        let on_close = props.on_close.clone();
        Callback::from(move |_: MouseEvent| on_close.emit(()))
    };
    let on_key = {
        let on_close = props.on_close.clone();
        let busy = busy.clone();
        let modal = first.clone();
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Escape" && !*busy {
                on_close.emit(());
            } else if e.key() == "Tab" {
                keep_focus_inside(&modal, &e);
            }
        })
    };

    // The money this dialog is about to move, stated before the coach confirms.
    let amount = parse_amount(&fields.amount, &currency);
    let loaded = match &*preview {
        Some(Ok(p)) => Some(p),
        _ => None,
    };
    let cancel_refund: Result<(RefundChoiceDto, i64), String> = match fields.choice.as_str() {
        "full" => Ok((
            RefundChoiceDto::Full,
            loaded.map_or(0, |p| p.refundable_minor),
        )),
        "none" => Ok((RefundChoiceDto::None, 0)),
        "amount" => amount
            .clone()
            .map(|amount_minor| (RefundChoiceDto::Amount { amount_minor }, amount_minor)),
        _ => Ok((
            RefundChoiceDto::Policy,
            loaded.map_or(0, |p| p.policy_refund_minor),
        )),
    };
    let show_money = |minor: i64| {
        if currency.is_empty() {
            minor.to_string()
        } else {
            money(minor, &currency)
        }
    };
    let action: Result<CoachActionDto, String> = match kind {
        Kind::Cancel => cancel_refund
            .clone()
            .map(|(refund, _)| CoachActionDto::Cancel {
                refund,
                reason: fields.reason.clone(),
            }),
        Kind::Refund => amount.clone().map(|amount_minor| CoachActionDto::Refund {
            amount_minor,
            reason: fields.reason.clone(),
        }),
        Kind::NoShow => Ok(CoachActionDto::MarkNoShow),
        Kind::Correct => Ok(CoachActionDto::Correct {
            state: fields.state.clone(),
            reason: fields.reason.clone(),
        }),
    };
    let confirm_label = match (kind, &cancel_refund, &amount) {
        (Kind::Cancel, Ok((_, 0)), _) => "Cancel booking, no refund".to_owned(),
        (Kind::Cancel, Ok((_, minor)), _) => {
            format!("Cancel booking and refund {}", show_money(*minor))
        }
        (Kind::Cancel, Err(_), _) => "Cancel booking".to_owned(),
        (Kind::Refund, _, Ok(minor)) => format!("Refund {}", show_money(*minor)),
        (Kind::Refund, _, Err(_)) => "Refund".to_owned(),
        (Kind::NoShow, _, _) => "Mark as no-show".to_owned(),
        (Kind::Correct, _, _) => format!("Set to {}", state_label(&fields.state)),
    };
    let waiting_for_preview = kind == Kind::Cancel && preview.is_none();

    let submit = {
        let (busy, error, action_id) = (busy.clone(), error.clone(), action_id.clone());
        let on_done = props.on_done.clone();
        let booking_id = props.booking_id.clone();
        let action = action.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let action = match &action {
                Ok(action) => action.clone(),
                Err(message) => {
                    error.set(Some(CommandError {
                        code: "invalid".to_owned(),
                        message: message.clone(),
                        fields: vec![coachdesk_protocol::ipc::FieldError {
                            field: "amount".to_owned(),
                            message: message.clone(),
                        }],
                    }));
                    return;
                }
            };
            busy.set(true);
            error.set(None);
            let (busy, error, on_done, booking_id, action_id) = (
                busy.clone(),
                error.clone(),
                on_done.clone(),
                booking_id.clone(),
                (*action_id).clone(),
            );
            spawn_local(async move {
                let result = ipc::coach_action(&booking_id, &action_id, &action).await;
                busy.set(false);
                match result {
                    Ok(detail) => on_done.emit(detail),
                    Err(e) => error.set(Some(e)),
                }
            });
        })
    };

    let title = match kind {
        Kind::Cancel => "Cancel this booking",
        Kind::Refund => "Refund part of the payment",
        Kind::NoShow => "Mark as no-show",
        Kind::Correct => "Correct the state by hand",
    };
    let statement = match kind {
        Kind::Cancel => match (&*preview, &cancel_refund) {
            (None, _) => html! { <p class="muted" role="status">{"Working out the refund…"}</p> },
            (Some(Err(e)), _) => html! { <div class="alert" role="alert">{&e.message}</div> },
            (Some(Ok(p)), refund) => html! {
                <>
                <p class="preview-sentence" id="refund-preview" data-testid="refund-preview">{&p.sentence}</p>
                <p class="money-statement" id="refund-statement" data-testid="refund-statement" role="status">
                    { match refund {
                        Ok((_, 0)) => "The client gets nothing back.".to_owned(),
                        Ok((_, minor)) => format!("The client gets back {}.", show_money(*minor)),
                        Err(message) => message.clone(),
                    } }
                </p>
                </>
            },
        },
        Kind::Refund => html! {
            <p class="money-statement" id="refund-statement" role="status">
                { match &amount {
                    Ok(minor) => format!("The client gets back {}.", show_money(*minor)),
                    Err(_) if fields.amount.trim().is_empty() => "Enter the amount to give back.".to_owned(),
                    Err(message) => message.clone(),
                } }
            </p>
        },
        Kind::NoShow => html! {
            <p>{"The client did not come. No money moves; the timeline records it."}</p>
        },
        Kind::Correct => html! {
            <p>{"Use this when the booking's state is wrong. The reason is required and goes into the timeline."}</p>
        },
    };
    let radio = |value: &'static str, label: String| {
        html! {
            <label class="choice">
                <input type="radio" name="refund-choice" id={format!("refund-choice-{value}")} value={value}
                    checked={fields.choice == value} onchange={set_choice(value)} />
                {label}
            </label>
        }
    };
    let policy_label = loaded.map_or_else(
        || "As the policy says".to_owned(),
        |p| {
            format!(
                "As the policy says ({}%): {}",
                p.policy_percent,
                show_money(p.policy_refund_minor)
            )
        },
    );
    let full_label = loaded.map_or_else(
        || "Everything paid".to_owned(),
        |p| {
            format!(
                "Everything still refundable: {}",
                show_money(p.refundable_minor)
            )
        },
    );

    html! {
        <div class="modal-backdrop">
            <div class="modal card" role="dialog" aria-modal="true" aria-labelledby="action-dialog-title"
                ref={first} tabindex="-1" id="action-dialog" data-testid="action-dialog" onkeydown={on_key}>
                <h2 id="action-dialog-title">{title}</h2>
                { statement }
                <form class="form" id="action-form" onsubmit={submit} novalidate=true>
                    if kind == Kind::Cancel {
                        <fieldset class="field choices">
                            <legend>{"Refund"}</legend>
                            { radio("policy", policy_label) }
                            { radio("full", full_label) }
                            { radio("none", "Nothing".to_owned()) }
                            { radio("amount", "Another amount".to_owned()) }
                        </fieldset>
                    }
                    if kind == Kind::Refund || (kind == Kind::Cancel && fields.choice == "amount") {
                        <div class="field">
                            <label for="action-amount">{ format!("Amount ({currency})") }</label>
                            <input id="action-amount" type="text" inputmode="decimal" placeholder="40.00"
                                value={fields.amount.clone()} oninput={set_text(|f, v| f.amount = v)} />
                        </div>
                    }
                    if kind == Kind::Correct {
                        <div class="field">
                            <label for="action-state">{"New state"}</label>
                            <select id="action-state" onchange={on_state}>
                                { for STATES.iter().map(|s| html! { <option value={*s} selected={fields.state == *s}>{state_label(s)}</option> }) }
                            </select>
                        </div>
                    }
                    if kind != Kind::NoShow {
                        <div class="field">
                            <label for="action-reason">{ if kind == Kind::Correct { "Reason (required)" } else { "Reason (optional, for the timeline)" } }</label>
                            <input id="action-reason" type="text" value={fields.reason.clone()}
                                oninput={set_text(|f, v| f.reason = v)} />
                        </div>
                    }
                    if let Some(e) = &*error {
                        <div class="alert" role="alert" id="action-error" data-testid="action-error">{with_way_out(e)}</div>
                    }
                    <div class="form-actions">
                        <button type="submit" id="action-confirm" data-testid="action-confirm"
                            class={classes!("btn", if kind == Kind::Cancel { "danger" } else { "primary" })}
                            disabled={*busy || waiting_for_preview}>
                            { if *busy { "Working…".to_owned() } else { confirm_label } }
                        </button>
                        <button type="button" class="btn ghost" id="action-close" onclick={close} disabled={*busy}>
                            { if kind == Kind::Cancel { "Keep the booking" } else { "Close" } }
                        </button>
                    </div>
                </form>
            </div>
        </div>
    }
}

/// Tab from the dialog's last control goes to its first (and Shift+Tab the other way), so
/// keyboard focus never wanders behind the dialog.
fn keep_focus_inside(modal: &NodeRef, e: &KeyboardEvent) {
    let Some(modal) = modal.cast::<HtmlElement>() else {
        return;
    };
    let Ok(list) = modal.query_selector_all(
        "button:not([disabled]), input:not([disabled]):not([type='radio']), \
         input[type='radio']:checked, select:not([disabled]), [tabindex='0']",
    ) else {
        return;
    };
    let focusable: Vec<HtmlElement> = (0..list.length())
        .filter_map(|i| list.get(i))
        .filter_map(|node| wasm_bindgen::JsCast::dyn_into::<HtmlElement>(node).ok())
        .collect();
    let (Some(first), Some(last)) = (focusable.first(), focusable.last()) else {
        return;
    };
    let active = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.active_element());
    let is = |element: &HtmlElement| {
        active
            .as_ref()
            .is_some_and(|a| a == AsRef::<web_sys::Element>::as_ref(element))
    };
    let target = if e.shift_key()
        && (is(first)
            || active
                .as_ref()
                .is_some_and(|a| a == AsRef::<web_sys::Element>::as_ref(&modal)))
    {
        last
    } else if !e.shift_key() && is(last) {
        first
    } else {
        return;
    };
    e.prevent_default();
    let _ = target.focus();
}

/// The core's message, with the way out added where the message has none (pure).
pub fn with_way_out(e: &CommandError) -> String {
    let message = e.message.trim();
    let hint = match e.code.as_str() {
        "rejected" if !message.contains(';') => {
            " The timeline below shows what happened; if the state is wrong, use “Correct state…”."
        }
        "internal" => " Nothing was changed; close this and try again, or restart the app.",
        _ => "",
    };
    format!("{message}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str, message: &str) -> CommandError {
        CommandError {
            code: code.to_owned(),
            message: message.to_owned(),
            fields: Vec::new(),
        }
    }

    #[test]
    fn a_refusal_without_a_way_out_gets_one() {
        let bare = with_way_out(&error(
            "rejected",
            "This cannot be done while the booking is confirmed.",
        ));
        assert!(bare.ends_with("use “Correct state…”."), "{bare}");
        // A message that already says what to do is left as it is.
        let told = "The payment deadline has passed, so the link no longer works; cancel the booking or correct its state first.";
        assert_eq!(with_way_out(&error("rejected", told)), told);
        assert!(with_way_out(&error("internal", "the app could not run x")).contains("try again"));
    }
}
