//! The Emails page: the coach's SMTP server and identity (with a check and a test email),
//! and the editor of the client emails' templates with a live preview.
//!
//! Everything is decided in the core: the form sends what was typed and shows the
//! sentences that come back (a refused password, an unreachable server, an unknown
//! placeholder). The password field is write-only: the page only learns whether one is
//! saved in the keychain.

use coachdesk_protocol::ipc::{CommandError, FieldError};
use coachdesk_protocol::mail::{
    command, MailCheck, MailPreview, MailSettingsDraft, MailSettingsView, MailTemplateDraft,
    MailTemplateView,
};
use serde::Serialize;
use wasm_bindgen_futures::spawn_local;
use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

use crate::ipc::invoke;

#[derive(Serialize)]
struct NoArgs {}

#[derive(Serialize)]
struct DraftArg<'a> {
    draft: &'a MailSettingsDraft,
}

#[derive(Serialize)]
struct To<'a> {
    to: Option<&'a str>,
}

#[derive(Serialize)]
struct Kind<'a> {
    kind: &'a str,
}

#[derive(Serialize)]
struct KindDraft<'a> {
    kind: &'a str,
    draft: &'a MailTemplateDraft,
}

async fn mail_settings() -> Result<MailSettingsView, CommandError> {
    invoke(command::MAIL_SETTINGS, &NoArgs {}).await
}

async fn save_mail_settings(draft: &MailSettingsDraft) -> Result<MailSettingsView, CommandError> {
    invoke(command::SAVE_MAIL_SETTINGS, &DraftArg { draft }).await
}

async fn check_mail_server() -> Result<MailCheck, CommandError> {
    invoke(command::CHECK_MAIL_SERVER, &NoArgs {}).await
}

async fn send_test_email(to: Option<&str>) -> Result<MailCheck, CommandError> {
    invoke(command::SEND_TEST_EMAIL, &To { to }).await
}

async fn list_mail_templates() -> Result<Vec<MailTemplateView>, CommandError> {
    invoke(command::LIST_MAIL_TEMPLATES, &NoArgs {}).await
}

async fn preview_mail_template(
    kind: &str,
    draft: &MailTemplateDraft,
) -> Result<MailPreview, CommandError> {
    invoke(command::PREVIEW_MAIL_TEMPLATE, &KindDraft { kind, draft }).await
}

async fn save_mail_template(
    kind: &str,
    draft: &MailTemplateDraft,
) -> Result<MailTemplateView, CommandError> {
    invoke(command::SAVE_MAIL_TEMPLATE, &KindDraft { kind, draft }).await
}

async fn reset_mail_template(kind: &str) -> Result<MailTemplateView, CommandError> {
    invoke(command::RESET_MAIL_TEMPLATE, &Kind { kind }).await
}

/// The Emails page: settings above, templates below.
#[component]
pub fn Emails() -> Html {
    html! {
        <section aria-labelledby="emails-title" class="emails-page">
            <div class="page-head">
                <h1 id="emails-title">{"Emails"}</h1>
            </div>
            <p class="hint">{"Coachdesk writes to your clients through your own email account: a payment request after each booking, a reminder before the payment deadline, a confirmation once paid, and notices of cancellations (with the refund) and reschedules. Each email is checked against the booking when it is sent, so a client is never asked to pay twice."}</p>
            <MailSettingsForm />
            <TemplateEditor />
        </section>
    }
}

fn draft_of(view: &MailSettingsView) -> MailSettingsDraft {
    MailSettingsDraft {
        host: view.host.clone(),
        port: view.port.to_string(),
        security: view.security.clone(),
        username: view.username.clone(),
        password: None,
        coach_name: view.coach_name.clone(),
        from_address: view.from_address.clone(),
        reply_to: view.reply_to.clone(),
        relay_url: view.relay_url.clone(),
    }
}

/// What the last button press said: a success sentence or the core's error.
#[derive(Clone, PartialEq)]
enum Outcome {
    Ok(String),
    Err(String),
}

fn outcome_html(outcome: &Option<Outcome>, busy: bool) -> Html {
    if busy {
        return html! { <p class="muted" id="mail-busy" data-testid="mail-busy">{"Talking to the server…"}</p> };
    }
    match outcome {
        None => html! {},
        Some(Outcome::Ok(message)) => html! {
            <div class="notice ok" role="status" id="mail-result" data-testid="mail-result">{message}</div>
        },
        Some(Outcome::Err(message)) => html! {
            <div class="alert" role="alert" id="mail-error" data-testid="mail-error">{message}</div>
        },
    }
}

#[component]
fn MailSettingsForm() -> Html {
    let loaded = use_state(|| None::<Result<MailSettingsView, String>>);
    let draft = use_state(MailSettingsDraft::default);
    let errors = use_state(Vec::<FieldError>::new);
    let outcome = use_state(|| None::<Outcome>);
    let busy = use_state(|| false);
    let test_to = use_state(String::new);
    {
        let (loaded, draft) = (loaded.clone(), draft.clone());
        use_effect_with((), move |_| {
            spawn_local(async move {
                match mail_settings().await {
                    Ok(view) => {
                        draft.set(draft_of(&view));
                        loaded.set(Some(Ok(view)));
                    }
                    Err(e) => loaded.set(Some(Err(e.message))),
                }
            });
        });
    }

    let set = |apply: fn(&mut MailSettingsDraft, String)| {
        let draft = draft.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            let mut next = (*draft).clone();
            apply(&mut next, input.value());
            draft.set(next);
        })
    };
    let on_security = {
        let draft = draft.clone();
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            let mut next = (*draft).clone();
            let was = next.security.clone();
            next.security = select.value();
            // Move the port along with the usual pairing, unless the coach typed another.
            match (was.as_str(), next.security.as_str(), next.port.trim()) {
                ("start_tls", "tls", "587") => next.port = "465".into(),
                ("tls", "start_tls", "465") => next.port = "587".into(),
                _ => {}
            }
            draft.set(next);
        })
    };
    let on_test_to = {
        let test_to = test_to.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            test_to.set(input.value());
        })
    };

    let submit = {
        let (loaded, draft, errors, outcome, busy) = (
            loaded.clone(),
            draft.clone(),
            errors.clone(),
            outcome.clone(),
            busy.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if *busy {
                return;
            }
            busy.set(true);
            let (loaded, draft, errors, outcome, busy) = (
                loaded.clone(),
                draft.clone(),
                errors.clone(),
                outcome.clone(),
                busy.clone(),
            );
            let sent = (*draft).clone();
            spawn_local(async move {
                let result = save_mail_settings(&sent).await;
                busy.set(false);
                match result {
                    Ok(view) => {
                        errors.set(Vec::new());
                        outcome.set(Some(Outcome::Ok(
                            "Saved. Use \u{201c}Check connection\u{201d} to try the server."
                                .to_owned(),
                        )));
                        draft.set(draft_of(&view));
                        loaded.set(Some(Ok(view)));
                    }
                    Err(e) => {
                        errors.set(e.fields);
                        outcome.set(Some(Outcome::Err(e.message)));
                    }
                }
            });
        })
    };
    let run = |test_email: bool| {
        let (outcome, busy, test_to) = (outcome.clone(), busy.clone(), test_to.clone());
        Callback::from(move |_: MouseEvent| {
            if *busy {
                return;
            }
            busy.set(true);
            let (outcome, busy) = (outcome.clone(), busy.clone());
            let to = (*test_to).trim().to_owned();
            spawn_local(async move {
                let result = if test_email {
                    send_test_email((!to.is_empty()).then_some(to.as_str())).await
                } else {
                    check_mail_server().await
                };
                busy.set(false);
                outcome.set(Some(match result {
                    Ok(check) => Outcome::Ok(check.message),
                    Err(e) => Outcome::Err(e.message),
                }));
            });
        })
    };

    let error_for = |field: &str| -> Html {
        let messages: Vec<&FieldError> = errors.iter().filter(|e| e.field == field).collect();
        if messages.is_empty() {
            return html! {};
        }
        html! {
            <p class="field-error" id={format!("error-mail-{field}")} data-testid={format!("error-mail-{field}")} role="alert">
                { for messages.iter().map(|e| html! { <span>{&e.message}</span> }) }
            </p>
        }
    };
    let invalid = |field: &str| errors.iter().any(|e| e.field == field).then_some("true");

    let view = match &*loaded {
        None => return html! { <p class="muted" id="mail-settings-loading">{"Loading…"}</p> },
        Some(Err(message)) => {
            return html! { <div class="alert" role="alert" id="mail-settings-error">{message}</div> }
        }
        Some(Ok(view)) => view,
    };
    let d = &*draft;
    let password_hint = if view.password_saved {
        "A password is saved in the system keychain. Type a new one only to replace it."
    } else {
        "Kept in the system keychain, never in Coachdesk's files."
    };
    html! {
        <form id="mail-settings" data-testid="mail-settings" class="card form" onsubmit={submit} novalidate=true>
            <h2>{"Sending"}</h2>
            if !view.configured {
                <p class="hint" id="mail-not-configured">{"Email is not set up yet: until it is, no email goes to clients."}</p>
            }
            <div class="field-row">
                <div class="field">
                    <label for="mail-host">{"SMTP server"}</label>
                    <input id="mail-host" type="text" value={d.host.clone()} placeholder="smtp.example.com"
                        aria-invalid={invalid("host")} oninput={set(|d, v| d.host = v)} />
                    { error_for("host") }
                </div>
                <div class="field">
                    <label for="mail-port">{"Port"}</label>
                    <input id="mail-port" type="text" inputmode="numeric" value={d.port.clone()}
                        aria-invalid={invalid("port")} oninput={set(|d, v| d.port = v)} />
                    { error_for("port") }
                </div>
                <div class="field">
                    <label for="mail-security">{"Security"}</label>
                    <select id="mail-security" aria-invalid={invalid("security")} onchange={on_security}>
                        <option value="start_tls" selected={d.security == "start_tls"}>{"STARTTLS (port 587)"}</option>
                        <option value="tls" selected={d.security == "tls"}>{"TLS (port 465)"}</option>
                        <option value="plain" selected={d.security == "plain"}>{"None (a server on this computer only)"}</option>
                    </select>
                    { error_for("security") }
                </div>
            </div>
            <div class="field-row">
                <div class="field">
                    <label for="mail-username">{"User name"}</label>
                    <input id="mail-username" type="text" autocomplete="off" value={d.username.clone()} placeholder="you@example.com"
                        aria-invalid={invalid("username")} oninput={set(|d, v| d.username = v)} />
                    { error_for("username") }
                </div>
                <div class="field">
                    <label for="mail-password">{"Password"}</label>
                    <input id="mail-password" type="password" autocomplete="new-password"
                        value={d.password.clone().unwrap_or_default()}
                        placeholder={if view.password_saved { "•••••••• (saved)" } else { "" }}
                        oninput={set(|d, v| d.password = (!v.is_empty()).then_some(v))} />
                    <p class="hint" id="mail-password-hint">{password_hint}</p>
                </div>
                <div class="field">
                    <label for="mail-relay-url">{"Relay address (for payment links)"}</label>
                    <input id="mail-relay-url" type="text" value={d.relay_url.clone()} placeholder="https://relay.example.com"
                        aria-invalid={invalid("relay_url")} oninput={set(|d, v| d.relay_url = v)} />
                    { error_for("relay_url") }
                </div>
            </div>
            <div class="field-row">
                <div class="field">
                    <label for="mail-coach-name">{"Your name (the sender)"}</label>
                    <input id="mail-coach-name" type="text" value={d.coach_name.clone()} placeholder="Sam Coach"
                        aria-invalid={invalid("coach_name")} oninput={set(|d, v| d.coach_name = v)} />
                    { error_for("coach_name") }
                </div>
                <div class="field">
                    <label for="mail-from">{"From address"}</label>
                    <input id="mail-from" type="email" value={d.from_address.clone()} placeholder="you@example.com"
                        aria-invalid={invalid("from_address")} oninput={set(|d, v| d.from_address = v)} />
                    { error_for("from_address") }
                </div>
                <div class="field">
                    <label for="mail-reply-to">{"Reply-to (optional)"}</label>
                    <input id="mail-reply-to" type="email" value={d.reply_to.clone()}
                        aria-invalid={invalid("reply_to")} oninput={set(|d, v| d.reply_to = v)} />
                    { error_for("reply_to") }
                </div>
            </div>
            { error_for("settings") }
            <div class="form-actions">
                <button type="submit" class="btn primary" id="save-mail-settings" data-testid="save-mail-settings" disabled={*busy}>{"Save"}</button>
                <button type="button" class="btn" id="check-mail-server" data-testid="check-mail-server"
                    disabled={*busy || !view.configured} onclick={run(false)}>{"Check connection"}</button>
                <input id="mail-test-to" type="email" class="inline" aria-label="Send the test email to"
                    placeholder={if view.reply_to.is_empty() { view.from_address.clone() } else { view.reply_to.clone() }}
                    value={(*test_to).clone()} oninput={on_test_to} />
                <button type="button" class="btn" id="send-test-email" data-testid="send-test-email"
                    disabled={*busy || !view.configured} onclick={run(true)}>{"Send test email"}</button>
            </div>
            { outcome_html(&outcome, *busy) }
        </form>
    }
}

/// The body of the rendered HTML part (the part between `<body>` and `</body>`).
fn html_body(html: &str) -> &str {
    let start = html
        .find("<body")
        .and_then(|at| html[at..].find('>').map(|end| at + end + 1))
        .unwrap_or(0);
    let end = html.rfind("</body>").unwrap_or(html.len()).max(start);
    &html[start..end]
}

#[component]
fn TemplateEditor() -> Html {
    let templates = use_state(|| None::<Result<Vec<MailTemplateView>, String>>);
    let selected = use_state(|| "payment_request".to_owned());
    let draft = use_state(MailTemplateDraft::default);
    let preview = use_state(|| None::<Result<MailPreview, String>>);
    let outcome = use_state(|| None::<Outcome>);
    {
        let (templates, draft) = (templates.clone(), draft.clone());
        let kind = (*selected).clone();
        use_effect_with((), move |_| {
            spawn_local(async move {
                match list_mail_templates().await {
                    Ok(list) => {
                        if let Some(t) = list.iter().find(|t| t.kind == kind) {
                            draft.set(MailTemplateDraft {
                                subject: t.subject.clone(),
                                body: t.body.clone(),
                            });
                        }
                        templates.set(Some(Ok(list)));
                    }
                    Err(e) => templates.set(Some(Err(e.message))),
                }
            });
        });
    }
    {
        // The preview follows every edit.
        let preview = preview.clone();
        use_effect_with(
            ((*selected).clone(), (*draft).clone()),
            move |(kind, draft)| {
                let (kind, draft) = (kind.clone(), draft.clone());
                spawn_local(async move {
                    preview.set(Some(
                        preview_mail_template(&kind, &draft)
                            .await
                            .map_err(|e| e.message),
                    ));
                });
            },
        );
    }

    let list = match &*templates {
        None => return html! { <p class="muted" id="mail-templates-loading">{"Loading…"}</p> },
        Some(Err(message)) => {
            return html! { <div class="alert" role="alert" id="mail-templates-error">{message}</div> }
        }
        Some(Ok(list)) => list.clone(),
    };
    let current = list.iter().find(|t| t.kind == *selected).cloned();

    let choose = {
        let (selected, draft, outcome, list) = (
            selected.clone(),
            draft.clone(),
            outcome.clone(),
            list.clone(),
        );
        Callback::from(move |e: Event| {
            let select: HtmlSelectElement = e.target_unchecked_into();
            let kind = select.value();
            if let Some(t) = list.iter().find(|t| t.kind == kind) {
                draft.set(MailTemplateDraft {
                    subject: t.subject.clone(),
                    body: t.body.clone(),
                });
            }
            outcome.set(None);
            selected.set(kind);
        })
    };
    let on_subject = {
        let draft = draft.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            draft.set(MailTemplateDraft {
                subject: input.value(),
                ..(*draft).clone()
            });
        })
    };
    let on_body = {
        let draft = draft.clone();
        Callback::from(move |e: InputEvent| {
            let input: HtmlTextAreaElement = e.target_unchecked_into();
            draft.set(MailTemplateDraft {
                body: input.value(),
                ..(*draft).clone()
            });
        })
    };
    let replace_in_list = {
        let (templates, list) = (templates.clone(), list.clone());
        move |saved: MailTemplateView| {
            let mut next = list.clone();
            if let Some(slot) = next.iter_mut().find(|t| t.kind == saved.kind) {
                *slot = saved;
            }
            templates.set(Some(Ok(next)));
        }
    };
    let save = {
        let (selected, draft, outcome) = (selected.clone(), draft.clone(), outcome.clone());
        let replace_in_list = replace_in_list.clone();
        Callback::from(move |_: MouseEvent| {
            let (kind, sent, outcome) = ((*selected).clone(), (*draft).clone(), outcome.clone());
            let replace_in_list = replace_in_list.clone();
            spawn_local(async move {
                match save_mail_template(&kind, &sent).await {
                    Ok(view) => {
                        outcome.set(Some(Outcome::Ok(format!(
                            "The {} template is saved.",
                            view.label.to_lowercase()
                        ))));
                        replace_in_list(view);
                    }
                    Err(e) => outcome.set(Some(Outcome::Err(e.message))),
                }
            });
        })
    };
    let reset = {
        let (selected, draft, outcome) = (selected.clone(), draft.clone(), outcome.clone());
        Callback::from(move |_: MouseEvent| {
            let (kind, draft, outcome) = ((*selected).clone(), draft.clone(), outcome.clone());
            let replace_in_list = replace_in_list.clone();
            spawn_local(async move {
                match reset_mail_template(&kind).await {
                    Ok(view) => {
                        draft.set(MailTemplateDraft {
                            subject: view.subject.clone(),
                            body: view.body.clone(),
                        });
                        outcome.set(Some(Outcome::Ok(format!(
                            "The {} template is back to the default.",
                            view.label.to_lowercase()
                        ))));
                        replace_in_list(view);
                    }
                    Err(e) => outcome.set(Some(Outcome::Err(e.message))),
                }
            });
        })
    };

    let problems = match &*preview {
        Some(Ok(p)) if !p.problems.is_empty() => html! {
            <div class="alert attention" role="alert" id="template-problems" data-testid="template-problems">
                <strong>{"This template cannot be saved yet:"}</strong>
                <ul>{ for p.problems.iter().map(|m| html! { <li>{m}</li> }) }</ul>
            </div>
        },
        _ => html! {},
    };
    let has_problems = matches!(&*preview, Some(Ok(p)) if !p.problems.is_empty());
    let preview_html = match &*preview {
        None => html! { <p class="muted">{"Rendering…"}</p> },
        Some(Err(message)) => html! { <div class="alert" role="alert">{message}</div> },
        Some(Ok(p)) => html! {
            <div class="mail-preview" id="template-preview" data-testid="template-preview">
                <p class="mail-preview-subject"><span class="muted">{"Subject: "}</span>
                    <strong id="preview-subject">{&p.subject}</strong></p>
                <div class="mail-preview-parts">
                    <div>
                        <h3>{"Plain text"}</h3>
                        <pre class="mail-text" id="preview-text" data-testid="preview-text">{&p.text}</pre>
                    </div>
                    <div>
                        <h3>{"HTML"}</h3>
                        // The core's renderer escapes every value and the coach's text;
                        // only http(s) links become anchors.
                        <div class="mail-html" id="preview-html" data-testid="preview-html">
                            { Html::from_html_unchecked(AttrValue::from(html_body(&p.html).to_owned())) }
                        </div>
                    </div>
                </div>
            </div>
        },
    };
    let d = &*draft;
    html! {
        <div class="card" id="mail-templates" data-testid="mail-templates">
            <h2>{"Templates"}</h2>
            <div class="field">
                <label for="template-kind">{"Email"}</label>
                <select id="template-kind" data-testid="template-kind" onchange={choose}>
                    { for list.iter().map(|t| html! {
                        <option value={t.kind.clone()} selected={t.kind == *selected}>
                            { if t.customised { format!("{} (edited)", t.label) } else { t.label.clone() } }
                        </option>
                    }) }
                </select>
            </div>
            if let Some(t) = &current {
                <p class="hint" id="template-placeholders">
                    {"Placeholders this email can use: "}
                    { for t.placeholders.iter().map(|p| html! { <code class="placeholder">{p}</code> }) }
                    {" Write {{ and }} for literal braces. Times are shown in the client's own time zone."}
                </p>
            }
            <div class="field">
                <label for="template-subject">{"Subject"}</label>
                <input id="template-subject" data-testid="template-subject" type="text" value={d.subject.clone()} oninput={on_subject} />
            </div>
            <div class="field">
                <label for="template-body">{"Message"}</label>
                <textarea id="template-body" data-testid="template-body" rows="12" value={d.body.clone()} oninput={on_body} />
            </div>
            { problems }
            <div class="form-actions">
                <button type="button" class="btn primary" id="save-template" data-testid="save-template"
                    disabled={has_problems} onclick={save}>{"Save template"}</button>
                <button type="button" class="btn ghost" id="reset-template" data-testid="reset-template"
                    disabled={!current.as_ref().is_some_and(|t| t.customised)} onclick={reset}>{"Back to the default"}</button>
            </div>
            { outcome_html(&outcome, false) }
            <h3>{"Preview, with a sample booking"}</h3>
            { preview_html }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_html_preview_keeps_only_the_body() {
        let html = "<!doctype html>\n<html><head><title>x</title></head>\n<body style=\"a\">\n<p>Hi</p>\n</body></html>\n";
        assert_eq!(html_body(html).trim(), "<p>Hi</p>");
        assert_eq!(html_body("<p>no body</p>"), "<p>no body</p>");
    }
}
