//! The Settings page: Stripe keys, the Calendly token, the relay URL and token (secrets are
//! sent once to the keychain and never shown again: only "saved, ends in …"), a "Test
//! connection" button per service, test or live mode for the next start, the feature
//! toggles, and (advanced) the providers' API addresses. Also the first-run strip that
//! leads here while something is not configured.

use coachdesk_protocol::ipc::CommandError;
use coachdesk_protocol::settings::{
    command, service, ApiBase, ConnectionCheck, FeatureToggle, SecretStatus, SettingsView,
};
use serde::Serialize;
use wasm_bindgen_futures::spawn_local;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::app::Page;
use crate::ipc::invoke;

#[derive(Serialize)]
struct NoArgs {}

#[derive(Serialize)]
struct SecretArgs<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct Name<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Url<'a> {
    url: &'a str,
}

#[derive(Serialize)]
struct ApiBaseArgs<'a> {
    service: &'a str,
    url: &'a str,
}

#[derive(Serialize)]
struct FeatureArgs<'a> {
    name: &'a str,
    enabled: bool,
}

#[derive(Serialize)]
struct ModeArgs<'a> {
    mode: &'a str,
}

#[derive(Serialize)]
struct ServiceArgs<'a> {
    service: &'a str,
}

#[derive(Serialize)]
struct BookingId<'a> {
    booking_id: &'a str,
}

pub async fn settings() -> Result<SettingsView, CommandError> {
    invoke(command::SETTINGS, &NoArgs {}).await
}

pub async fn save_secret(name: &str, value: &str) -> Result<SettingsView, CommandError> {
    invoke(command::SAVE_SECRET, &SecretArgs { name, value }).await
}

pub async fn clear_secret(name: &str) -> Result<SettingsView, CommandError> {
    invoke(command::CLEAR_SECRET, &Name { name }).await
}

pub async fn save_relay_url(url: &str) -> Result<SettingsView, CommandError> {
    invoke(command::SAVE_RELAY_URL, &Url { url }).await
}

pub async fn save_api_base(service: &str, url: &str) -> Result<SettingsView, CommandError> {
    invoke(command::SAVE_API_BASE, &ApiBaseArgs { service, url }).await
}

pub async fn set_feature(name: &str, enabled: bool) -> Result<SettingsView, CommandError> {
    invoke(command::SET_FEATURE, &FeatureArgs { name, enabled }).await
}

pub async fn choose_mode(mode: &str) -> Result<SettingsView, CommandError> {
    invoke(command::CHOOSE_MODE, &ModeArgs { mode }).await
}

pub async fn test_connection(service: &str) -> Result<ConnectionCheck, CommandError> {
    invoke(command::TEST_CONNECTION, &ServiceArgs { service }).await
}

/// Approves the refunds held for a booking (automatic refunds off).
pub async fn approve_refund(booking_id: &str) -> Result<u32, CommandError> {
    invoke(command::APPROVE_REFUND, &BookingId { booking_id }).await
}

#[derive(Properties, PartialEq)]
pub struct FirstRunProps {
    pub navigate: Callback<Page>,
    /// Whether the Settings page is showing (the strip re-reads the settings when it changes).
    pub on_settings: bool,
    /// Whether the window still shows the page it opened on: Settings is opened by itself
    /// only then, never over a page the coach went to before the settings were read.
    pub on_start_page: bool,
}

/// A strip under the banner while something is not configured; on the very first load it
/// opens Settings by itself.
#[component]
pub fn FirstRunNotice(props: &FirstRunProps) -> Html {
    let view = use_state(|| None::<SettingsView>);
    let opened = use_mut_ref(|| false);
    // Read when the settings arrive, not when the read started.
    let still_on_start = use_mut_ref(|| true);
    *still_on_start.borrow_mut() = props.on_start_page;
    // Bumped on every page change: a read loop of an older round stops.
    let round = use_mut_ref(|| 0_u32);
    {
        let (view, navigate, opened, round, still_on_start) = (
            view.clone(),
            props.navigate.clone(),
            opened.clone(),
            round.clone(),
            still_on_start.clone(),
        );
        use_effect_with(props.on_settings, move |on_settings| {
            let on_settings = *on_settings;
            *round.borrow_mut() += 1;
            let mine = *round.borrow();
            spawn_local(async move {
                loop {
                    if let Ok(loaded) = settings().await {
                        let first = !*opened.borrow();
                        *opened.borrow_mut() = true;
                        if first && loaded.first_run() && !on_settings && *still_on_start.borrow() {
                            navigate.emit(Page::Settings);
                        }
                        let done = !loaded.first_run();
                        view.set(Some(loaded));
                        if done {
                            return;
                        }
                    }
                    // While Settings is open the strip follows what is saved there.
                    if !on_settings || *round.borrow() != mine {
                        return;
                    }
                    crate::progress::sleep(std::time::Duration::from_secs(2)).await;
                    if *round.borrow() != mine {
                        return;
                    }
                }
            });
        });
    }
    match &*view {
        Some(v) if v.first_run() => {
            let go = {
                let navigate = props.navigate.clone();
                Callback::from(move |_: MouseEvent| navigate.emit(Page::Settings))
            };
            html! {
                <div class="alert attention first-run" id="first-run" data-testid="first-run" role="status">
                    <strong>{"Coachdesk is not connected yet. "}</strong>
                    {format!("Still needed: {}. ", v.missing.join(", "))}
                    if !props.on_settings {
                        <button class="btn small" id="first-run-open" onclick={go}>{"Open Settings"}</button>
                    }
                </div>
            }
        }
        _ => html! {},
    }
}

#[derive(Properties, PartialEq)]
pub struct SettingsProps {
    pub navigate: Callback<Page>,
}

/// The Settings page.
#[component]
pub fn Settings(_props: &SettingsProps) -> Html {
    let view = use_state(|| None::<Result<SettingsView, CommandError>>);
    let error = use_state(|| None::<String>);
    {
        let view = view.clone();
        use_effect_with((), move |_| {
            spawn_local(async move { view.set(Some(settings().await)) });
        });
    }
    let on_view = {
        let (view, error) = (view.clone(), error.clone());
        Callback::from(
            move |result: Result<SettingsView, CommandError>| match result {
                Ok(v) => {
                    error.set(None);
                    view.set(Some(Ok(v)));
                }
                Err(e) => error.set(Some(e.message)),
            },
        )
    };
    let body = match &*view {
        None => html! { <p class="muted">{"Loading the settings…"}</p> },
        Some(Err(e)) => {
            html! { <div class="alert" role="alert" id="settings-error">{&e.message}</div> }
        }
        Some(Ok(v)) => settings_body(v, &on_view),
    };
    html! {
        <section class="page settings" id="settings" data-testid="settings">
            <h1>{"Settings"}</h1>
            if let Some(message) = &*error {
                <div class="alert" role="alert" id="settings-error" data-testid="settings-error">{message}</div>
            }
            { body }
        </section>
    }
}

fn secret<'a>(v: &'a SettingsView, name: &str) -> Option<&'a SecretStatus> {
    v.secrets.iter().find(|s| s.name == name)
}

fn settings_body(v: &SettingsView, on_view: &Callback<Result<SettingsView, CommandError>>) -> Html {
    let row = |name: &str| match secret(v, name) {
        Some(status) => html! { <SecretRow status={status.clone()} on_view={on_view.clone()} /> },
        None => html! {},
    };
    let mode_note = match v.mode.as_str() {
        "demo" => {
            "Demo mode: everything is preset to the simulator; nothing touches a real account."
        }
        "live" => "Live mode: real payments and real clients.",
        _ => "Test mode: Stripe and Calendly test accounts, no real money moves.",
    };
    html! {
        <>
            <p class="muted" id="settings-mode">{mode_note}{" Database: "}<code>{&v.database_path}</code></p>
            if let Some(warning) = &v.secret_store.warning {
                <div class="alert attention" role="alert" id="secret-store-warning" data-testid="secret-store-warning">
                    <strong>{"Secrets will not survive a restart. "}</strong>{warning}
                </div>
            }
            <div class="card" id="settings-stripe">
                <h2>{"Stripe"}</h2>
                { row(coachdesk_protocol::settings::secret::STRIPE_TEST_KEY) }
                { row(coachdesk_protocol::settings::secret::STRIPE_LIVE_KEY) }
                <ConnectionTest service={service::STRIPE} label="Stripe" />
            </div>
            <div class="card" id="settings-calendly">
                <h2>{"Calendly"}</h2>
                { row(coachdesk_protocol::settings::secret::CALENDLY_TOKEN) }
                <ConnectionTest service={service::CALENDLY} label="Calendly" />
            </div>
            <div class="card" id="settings-relay">
                <h2>{"Relay"}</h2>
                <p class="muted small">{"The always-on server that receives Stripe's and Calendly's webhooks while this computer sleeps."}</p>
                <AddressField target={AddressTarget::Relay} url={v.relay_url.clone()} on_view={on_view.clone()} />
                { row(coachdesk_protocol::settings::secret::RELAY_TOKEN) }
                <ConnectionTest service={service::RELAY} label="the relay" />
                <p class="muted small" id="checkout-key-note">{"Optional: a Stripe restricted key with one permission, Checkout Sessions: Write (Stripe dashboard, Developers, API keys, Create restricted key). The relay then gives each booking its own Checkout Session at the exact price; without it, clients pay through the session type's payment link. Diagnostics shows what the relay made of it."}</p>
                { row(coachdesk_protocol::settings::secret::STRIPE_CHECKOUT_KEY) }
                <SealingKeyButton />
            </div>
            <StripeWebhookCard secrets={v.secrets.clone()} relay_url={v.relay_url.clone()} />
            { mode_card(v, on_view) }
            { features_card(&v.features, on_view) }
            <crate::backups::BackupsCard />
            <crate::diagnostics::DiagnosticsCard />
            { api_bases_card(v, on_view) }
        </>
    }
}

#[derive(Properties, PartialEq)]
struct StripeWebhookCardProps {
    /// The saved secrets and the relay's address: the card asks Stripe again when they
    /// change, so a key saved on the first run clears "enter your Stripe key first".
    secrets: Vec<SecretStatus>,
    relay_url: Option<String>,
}

/// "New sealing key": the relay keeps the coach's client data sealed for this computer's
/// key; a new one is made and registered at a click.
#[component]
fn SealingKeyButton() -> Html {
    use crate::setup_ipc;
    let answer = use_state(|| None::<Result<String, CommandError>>);
    let busy = use_state(|| false);
    let onclick = {
        let (answer, busy) = (answer.clone(), busy.clone());
        Callback::from(move |_: MouseEvent| {
            if *busy {
                return;
            }
            busy.set(true);
            let (answer, busy) = (answer.clone(), busy.clone());
            spawn_local(async move {
                answer.set(Some(setup_ipc::rotate_relay_sealing_key().await));
                busy.set(false);
            });
        })
    };
    html! {
        <div id="relay-sealing">
            <p class="muted small">{"Your clients' details wait at the relay sealed for this computer's key. Make a new key if this computer was out of your hands."}</p>
            <button class="btn" id="rotate-sealing-key" data-testid="rotate-sealing-key"
                {onclick} disabled={*busy} aria-busy={busy.then_some("true")}>
                { if *busy { "Making a new key…" } else { "New sealing key" } }
            </button>
            { match &*answer {
                Some(Ok(words)) => html! { <p class="small" role="status" id="sealing-key-answer">{words}</p> },
                Some(Err(e)) => html! { <div class="alert attention" role="alert" id="sealing-key-answer">{&e.message}</div> },
                None => html! {},
            } }
        </div>
    }
}

/// Stripe's webhook endpoint to the relay: its state, "Connect" (create or correct it and
/// hand its secret to the relay) and "Rotate signing secret".
#[component]
fn StripeWebhookCard(props: &StripeWebhookCardProps) -> Html {
    use crate::setup_ipc;
    use coachdesk_protocol::setup::StripeWebhookView;
    let view = use_state(|| None::<Result<StripeWebhookView, CommandError>>);
    let busy = use_state(|| None::<&'static str>);
    {
        let view = view.clone();
        let inputs = (props.secrets.clone(), props.relay_url.clone());
        use_effect_with(inputs, move |_| {
            spawn_local(async move { view.set(Some(setup_ipc::stripe_webhook().await)) });
        });
    }
    let act = |rotate: bool| {
        let (view, busy) = (view.clone(), busy.clone());
        Callback::from(move |_: MouseEvent| {
            if busy.is_some() {
                return;
            }
            busy.set(Some(if rotate { "rotate" } else { "connect" }));
            let (view, busy) = (view.clone(), busy.clone());
            spawn_local(async move {
                let result = if rotate {
                    setup_ipc::rotate_stripe_webhook_secret().await
                } else {
                    setup_ipc::connect_stripe_webhook().await
                };
                view.set(Some(result));
                busy.set(None);
            });
        })
    };
    html! {
        <div class="card" id="settings-stripe-webhook" data-testid="stripe-webhook">
            <h2>{"Stripe webhook"}</h2>
            { stripe_webhook_body(view.as_ref()) }
            <div class="row">
                <button class="btn primary" id="connect-stripe-webhook" data-testid="connect-stripe-webhook"
                    onclick={act(false)} disabled={busy.is_some()} aria-busy={(*busy == Some("connect")).then_some("true")}>
                    { if *busy == Some("connect") { "Connecting Stripe…" } else { "Connect Stripe to the relay" } }
                </button>
                if matches!(&*view, Some(Ok(v)) if v.exists) {
                    <button class="btn" id="rotate-stripe-webhook" data-testid="rotate-stripe-webhook"
                        onclick={act(true)} disabled={busy.is_some()} aria-busy={(*busy == Some("rotate")).then_some("true")}>
                        { if *busy == Some("rotate") { "Rotating…" } else { "Rotate signing secret" } }
                    </button>
                }
            </div>
        </div>
    }
}

/// The endpoint's state as rows (pure, so the server renderer tests it).
fn stripe_webhook_body(
    view: Option<&Result<coachdesk_protocol::setup::StripeWebhookView, CommandError>>,
) -> Html {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    match view {
        None => html! { <p class="muted" role="status">{"Asking Stripe…"}</p> },
        Some(Err(e)) => html! {
            <div class="alert" role="alert" id="stripe-webhook-error" data-code={e.code.clone()}>{&e.message}</div>
        },
        Some(Ok(v)) => html! {
            <>
                if v.relay_reach != "public" {
                    <div class="alert attention" role="alert" id="stripe-webhook-reach" data-reach={v.relay_reach.clone()}>
                        {&v.relay_reach_message}
                    </div>
                }
                <p id="stripe-webhook-message">{&v.message}</p>
                <dl class="small" id="stripe-webhook-state">
                    <dt>{"Endpoint"}</dt>
                    <dd id="stripe-webhook-exists" data-state={if !v.exists { "missing" } else if v.enabled { "enabled" } else { "disabled" }}>
                        { if !v.exists { "not created" } else if v.enabled { "enabled" } else { "disabled" } }
                    </dd>
                    <dt>{"Posts to"}</dt>
                    <dd class="mono" id="stripe-webhook-url">{ v.url.clone().unwrap_or_else(|| v.hook_url.clone()) }</dd>
                    <dt>{"Events as Coachdesk needs"}</dt>
                    <dd id="stripe-webhook-events">{ yes_no(v.events_match) }</dd>
                    <dt>{"API version"}</dt>
                    <dd id="stripe-webhook-version">{ v.api_version.clone().unwrap_or_else(|| "-".to_owned()) }{" (Coachdesk reads "}{&v.api_version_wanted}{")"}</dd>
                    <dt>{"Signing secret handed to the relay"}</dt>
                    <dd id="stripe-webhook-handed-over">{ yes_no(v.secret_handed_over) }</dd>
                    <dt>{"Last rotated"}</dt>
                    <dd id="stripe-webhook-rotated">{ v.last_rotated_at.as_deref().map_or_else(|| "never".to_owned(), crate::format::when) }</dd>
                </dl>
            </>
        },
    }
}

#[derive(Properties, PartialEq)]
struct SecretRowProps {
    status: SecretStatus,
    on_view: Callback<Result<SettingsView, CommandError>>,
}

/// One secret: whether it is saved, a password field to replace it, Save and Remove.
#[component]
fn SecretRow(props: &SecretRowProps) -> Html {
    let input = use_node_ref();
    let field_error = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let name = props.status.name.clone();
    let save = {
        let (input, field_error, busy, on_view, name) = (
            input.clone(),
            field_error.clone(),
            busy.clone(),
            props.on_view.clone(),
            name.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(el) = input.cast::<HtmlInputElement>() else {
                return;
            };
            let value = el.value();
            let (field_error, busy, on_view, name) = (
                field_error.clone(),
                busy.clone(),
                on_view.clone(),
                name.clone(),
            );
            busy.set(true);
            spawn_local(async move {
                match save_secret(&name, &value).await {
                    Ok(v) => {
                        el.set_value("");
                        field_error.set(None);
                        on_view.emit(Ok(v));
                    }
                    Err(e) => match e.fields.first() {
                        Some(f) => field_error.set(Some(f.message.clone())),
                        None => on_view.emit(Err(e)),
                    },
                }
                busy.set(false);
            });
        })
    };
    let remove = {
        let (on_view, name) = (props.on_view.clone(), name.clone());
        Callback::from(move |_: MouseEvent| {
            let (on_view, name) = (on_view.clone(), name.clone());
            spawn_local(async move { on_view.emit(clear_secret(&name).await) });
        })
    };
    let status = &props.status;
    let state_text = match (&status.problem, status.set, &status.last4) {
        (Some(problem), _, _) => problem.clone(),
        (None, true, Some(last4)) => format!("Saved in the keychain, ends in …{last4}"),
        (None, true, None) => "Saved in the keychain".to_owned(),
        (None, false, _) => "Not set".to_owned(),
    };
    let id = |suffix: &str| format!("secret-{name}-{suffix}");
    html! {
        <form class="field secret-row" id={id("form")} onsubmit={save}>
            <label for={id("input")}>{&status.label}</label>
            <span id={id("status")} data-testid="secret-status" data-set={status.set.to_string()}
                class={classes!("small", if status.set { "ok-text" } else { "muted" })}>{state_text}</span>
            <div class="inline">
                <input id={id("input")} type="password" autocomplete="off" spellcheck="false"
                    ref={input} placeholder={if status.set { "Paste a new value to replace it" } else { "Paste it here" }} />
                <button class="btn primary small" type="submit" id={id("save")} disabled={*busy}>{"Save"}</button>
                if status.set {
                    <button class="btn ghost small" type="button" id={id("remove")} onclick={remove}>{"Remove"}</button>
                }
            </div>
            if let Some(message) = &*field_error {
                <p class="field-error" id={id("error")} role="alert">{message}</p>
            }
        </form>
    }
}

/// What an [`AddressField`] saves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AddressTarget {
    Relay,
    /// A provider's API address (`stripe` or `calendly`).
    Api(&'static str),
}

impl AddressTarget {
    /// The element id prefix (`relay-url`, `stripe-api-base`, `calendly-api-base`).
    fn id(self) -> String {
        match self {
            AddressTarget::Relay => "relay-url".to_owned(),
            AddressTarget::Api(service) => format!("{service}-api-base"),
        }
    }

    fn label(self) -> &'static str {
        match self {
            AddressTarget::Relay => "Relay URL",
            AddressTarget::Api(service::STRIPE) => "Stripe API address",
            AddressTarget::Api(_) => "Calendly API address",
        }
    }

    fn saved_note(self) -> &'static str {
        match self {
            AddressTarget::Relay => "Saved; sync restarted with this address.",
            AddressTarget::Api(_) => "Saved; the next call uses this address.",
        }
    }

    async fn save(self, url: &str) -> Result<SettingsView, CommandError> {
        match self {
            AddressTarget::Relay => save_relay_url(url).await,
            AddressTarget::Api(service) => save_api_base(service, url).await,
        }
    }
}

#[derive(Properties, PartialEq)]
struct AddressFieldProps {
    target: AddressTarget,
    url: Option<String>,
    /// Shown while the field is empty (what is used then).
    #[prop_or("https://relay.example.com".into())]
    placeholder: AttrValue,
    on_view: Callback<Result<SettingsView, CommandError>>,
}

/// One address with its Save button and the field error next to it.
#[component]
fn AddressField(props: &AddressFieldProps) -> Html {
    let input = use_node_ref();
    let field_error = use_state(|| None::<String>);
    let saved = use_state(|| false);
    let target = props.target;
    let save = {
        let (input, field_error, saved, on_view) = (
            input.clone(),
            field_error.clone(),
            saved.clone(),
            props.on_view.clone(),
        );
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(el) = input.cast::<HtmlInputElement>() else {
                return;
            };
            let value = el.value();
            let (field_error, saved, on_view) =
                (field_error.clone(), saved.clone(), on_view.clone());
            spawn_local(async move {
                match target.save(&value).await {
                    Ok(v) => {
                        field_error.set(None);
                        saved.set(true);
                        on_view.emit(Ok(v));
                    }
                    Err(e) => {
                        saved.set(false);
                        match e.fields.first() {
                            Some(f) => field_error.set(Some(f.message.clone())),
                            None => field_error.set(Some(e.message)),
                        }
                    }
                }
            });
        })
    };
    let id = target.id();
    html! {
        <form class="field" id={format!("{id}-form")} onsubmit={save}>
            <label for={format!("{id}-input")}>{target.label()}</label>
            <div class="inline">
                <input id={format!("{id}-input")} type="url" spellcheck="false" ref={input}
                    value={props.url.clone().unwrap_or_default()} placeholder={props.placeholder.clone()} />
                <button class="btn primary small" type="submit" id={format!("{id}-save")}>{"Save"}</button>
            </div>
            if *saved {
                <p class="small ok-text" id={format!("{id}-saved")}>{target.saved_note()}</p>
            }
            if let Some(message) = &*field_error {
                <p class="field-error" id={format!("{id}-error")} role="alert">{message}</p>
            }
        </form>
    }
}

/// Advanced: Stripe's and Calendly's API addresses (a compatible server or a simulator).
fn api_bases_card(
    v: &SettingsView,
    on_view: &Callback<Result<SettingsView, CommandError>>,
) -> Html {
    if v.mode == "demo" {
        return html! {};
    }
    let field = |base: &ApiBase| {
        let target = match base.service.as_str() {
            service::STRIPE => AddressTarget::Api(service::STRIPE),
            service::CALENDLY => AddressTarget::Api(service::CALENDLY),
            _ => return html! {},
        };
        html! {
            <>
                <AddressField target={target} url={base.saved.clone()}
                    placeholder={AttrValue::from(base.default.clone())} on_view={on_view.clone()} />
                <p class="muted small" id={format!("{}-in-force", target.id())}>
                    {"In use: "}<code>{&base.in_force}</code>
                </p>
            </>
        }
    };
    html! {
        <details class="card thresholds" id="settings-api-bases">
            <summary>{"Provider API addresses (advanced)"}</summary>
            <p class="muted small">{"Leave blank to use Stripe's and Calendly's own. Set only to reach a compatible server, such as a company proxy or the bundled simulator; plain http:// is accepted only on this computer."}</p>
            { for v.api_bases.iter().map(field) }
        </details>
    }
}

#[derive(Properties, PartialEq)]
struct ConnectionTestProps {
    service: &'static str,
    label: &'static str,
}

/// "Test connection" and its answer in words.
#[component]
fn ConnectionTest(props: &ConnectionTestProps) -> Html {
    let result = use_state(|| None::<Result<ConnectionCheck, CommandError>>);
    let busy = use_state(|| false);
    let run = {
        let (result, busy, service) = (result.clone(), busy.clone(), props.service);
        Callback::from(move |_: MouseEvent| {
            let (result, busy) = (result.clone(), busy.clone());
            busy.set(true);
            result.set(None);
            spawn_local(async move {
                result.set(Some(test_connection(service).await));
                busy.set(false);
            });
        })
    };
    let answer = match &*result {
        None if *busy => {
            html! { <p class="small muted" id={format!("check-{}", props.service)} data-state="running">{format!("Testing {}…", props.label)}</p> }
        }
        None => html! {},
        Some(Ok(check)) => html! {
            <p id={format!("check-{}", props.service)} data-testid="connection-check"
                data-ok={check.ok.to_string()} data-state="done"
                role={if check.ok { "status" } else { "alert" }}
                class={if check.ok { "notice ok" } else { "alert" }}
                title={check.detail.clone().unwrap_or_default()}>{&check.message}</p>
        },
        Some(Err(e)) => html! {
            <p id={format!("check-{}", props.service)} data-ok="false" data-state="done" class="alert" role="alert">{&e.message}</p>
        },
    };
    html! {
        <div class="connection-test">
            <button class="btn small" id={format!("test-{}", props.service)} onclick={run} disabled={*busy}>
                {format!("Test connection to {}", props.label)}
            </button>
            { answer }
        </div>
    }
}

fn mode_card(v: &SettingsView, on_view: &Callback<Result<SettingsView, CommandError>>) -> Html {
    if v.mode == "demo" {
        return html! {};
    }
    let choose = |mode: &'static str| {
        let on_view = on_view.clone();
        Callback::from(move |_: Event| {
            let on_view = on_view.clone();
            spawn_local(async move { on_view.emit(choose_mode(mode).await) });
        })
    };
    let pending = v.next_mode != v.mode;
    html! {
        <div class="card" id="settings-mode-card">
            <h2>{"Test or live"}</h2>
            <p class="muted small">{"Each mode has its own database and its own Stripe key; test data and live data never mix."}</p>
            <label class="check">
                <input type="radio" name="mode" id="mode-test" checked={v.next_mode == "test"} onchange={choose("test")} />
                {" Test mode (Stripe test keys, no real money)"}
            </label>
            <label class="check">
                <input type="radio" name="mode" id="mode-live" checked={v.next_mode == "live"} onchange={choose("live")} />
                {" Live mode (real payments)"}
            </label>
            if pending {
                <p class="alert attention" id="mode-restart" role="status">
                    {format!("Coachdesk switches to {} mode when you restart it; until then it stays in {} mode.", v.next_mode, v.mode)}
                </p>
            }
        </div>
    }
}

fn features_card(
    features: &[FeatureToggle],
    on_view: &Callback<Result<SettingsView, CommandError>>,
) -> Html {
    html! {
        <div class="card" id="settings-features">
            <h2>{"Features"}</h2>
            { for features.iter().map(|f| {
                let (on_view, name, enabled) = (on_view.clone(), f.name.clone(), f.enabled);
                let toggle = Callback::from(move |_: Event| {
                    let (on_view, name) = (on_view.clone(), name.clone());
                    spawn_local(async move { on_view.emit(set_feature(&name, !enabled).await) });
                });
                html! {
                    <div class="field">
                        <label class="check">
                            <input type="checkbox" id={format!("feature-{}", f.name)} checked={f.enabled} onchange={toggle} />
                            {" "}{&f.label}
                        </label>
                        <span class="small muted">{&f.description}</span>
                    </div>
                }
            }) }
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::html_of;
    use coachdesk_protocol::settings::{secret, SecretStoreStatus};

    #[derive(Properties, PartialEq)]
    struct BodyProps {
        view: SettingsView,
    }

    /// The Settings page's body for a loaded view.
    #[component]
    fn BodyUnderTest(props: &BodyProps) -> Html {
        settings_body(&props.view, &Callback::from(|_| ()))
    }

    fn view(mode: &str) -> SettingsView {
        let secret = |name: &str, label: &str, last4: Option<&str>| SecretStatus {
            name: name.into(),
            label: label.into(),
            set: last4.is_some(),
            last4: last4.map(str::to_owned),
            problem: None,
        };
        let base = |service: &str, saved: Option<&str>, default: &str| ApiBase {
            service: service.into(),
            in_force: saved.unwrap_or(default).into(),
            saved: saved.map(str::to_owned),
            default: default.into(),
        };
        SettingsView {
            mode: mode.into(),
            next_mode: "test".into(),
            database_path: "/data/coachdesk/test.sqlite".into(),
            secrets: vec![
                secret(
                    secret::STRIPE_TEST_KEY,
                    "Stripe secret key (test mode)",
                    Some("4242"),
                ),
                secret(secret::CALENDLY_TOKEN, "Calendly access token", None),
            ],
            relay_url: Some("https://relay.example.com".into()),
            features: Vec::new(),
            api_bases: vec![
                base(
                    service::STRIPE,
                    Some("http://127.0.0.1:4010"),
                    "https://api.stripe.com",
                ),
                base(service::CALENDLY, None, "https://api.calendly.com"),
            ],
            sync_running: true,
            missing: Vec::new(),
            secret_store: SecretStoreStatus {
                name: "Secret Service (GNOME Keyring, KWallet)".into(),
                survives_restart: true,
                warning: None,
            },
        }
    }

    /// The opening tag of the element whose id is `id`.
    fn tag<'a>(html: &'a str, id: &str) -> &'a str {
        let at = html
            .find(&format!(r#"id="{id}""#))
            .unwrap_or_else(|| panic!("no #{id} in {html}"));
        let start = html[..at].rfind('<').unwrap_or(0);
        let end = at + html[at..].find('>').unwrap_or(html.len() - at);
        &html[start..=end]
    }

    #[derive(Properties, PartialEq)]
    struct WebhookProps {
        view: Result<coachdesk_protocol::setup::StripeWebhookView, CommandError>,
    }

    #[component]
    fn WebhookUnderTest(props: &WebhookProps) -> Html {
        stripe_webhook_body(Some(&props.view))
    }

    fn webhook(reach: &str, exists: bool) -> coachdesk_protocol::setup::StripeWebhookView {
        coachdesk_protocol::setup::StripeWebhookView {
            relay_reach: reach.into(),
            relay_reach_message: "This address is this computer itself: Stripe cannot reach it."
                .into(),
            hook_url: "http://127.0.0.1:8787/hooks/stripe".into(),
            exists,
            endpoint_id: exists.then(|| "we_1".to_owned()),
            enabled: exists,
            url: exists.then(|| "http://127.0.0.1:8787/hooks/stripe".to_owned()),
            url_matches: exists,
            events_match: exists,
            api_version: exists.then(|| "2023-10-16".to_owned()),
            api_version_wanted: "2023-10-16".into(),
            secret_handed_over: exists,
            last_rotated_at: None,
            rotation_in_progress: false,
            message: "Stripe sends payments to the relay.".into(),
        }
    }

    #[test]
    fn the_stripe_webhook_shows_its_state_and_names_an_unreachable_relay() {
        let html = html_of::<WebhookUnderTest>(|| WebhookProps {
            view: Ok(webhook("loopback", true)),
        });
        assert!(tag(&html, "stripe-webhook-reach").contains(r#"data-reach="loopback""#));
        assert!(html.contains("Stripe cannot reach it"), "{html}");
        assert!(tag(&html, "stripe-webhook-exists").contains(r#"data-state="enabled""#));
        assert!(
            html.contains(r#"id="stripe-webhook-handed-over">yes<"#),
            "{html}"
        );
        assert!(
            html.contains(r#"id="stripe-webhook-rotated">never<"#),
            "{html}"
        );
        let html = html_of::<WebhookUnderTest>(|| WebhookProps {
            view: Ok(webhook("public", false)),
        });
        assert!(!html.contains("stripe-webhook-reach"), "{html}");
        assert!(tag(&html, "stripe-webhook-exists").contains(r#"data-state="missing""#));
        let html = html_of::<WebhookUnderTest>(|| WebhookProps {
            view: Err(CommandError {
                code: "handover_disabled".into(),
                message: "The relay's operator turned Stripe secret hand-over off.".into(),
                fields: vec![],
            }),
        });
        assert!(tag(&html, "stripe-webhook-error").contains(r#"data-code="handover_disabled""#));
    }

    #[test]
    fn a_saved_secret_shows_only_its_last_four_characters_and_an_unset_one_says_so() {
        let html = html_of::<BodyUnderTest>(|| BodyProps { view: view("test") });
        assert!(
            html.contains("Saved in the keychain, ends in …4242"),
            "{html}"
        );
        let input = tag(&html, "secret-stripe_test_key-input");
        assert!(input.contains(r#"type="password""#), "{input}");
        assert!(
            !input.contains("value="),
            "a secret is never sent back: {input}"
        );
        assert!(html.contains(r#"id="secret-stripe_test_key-remove""#));
        assert!(tag(&html, "secret-calendly_token-status").contains(r#"data-set="false""#));
        assert!(
            !html.contains(r#"id="secret-calendly_token-remove""#),
            "nothing to remove"
        );
        assert!(tag(&html, "relay-url-input").contains(r#"value="https://relay.example.com""#));
    }

    #[test]
    fn the_api_addresses_show_the_saved_one_or_the_default_and_what_is_in_use() {
        let html = html_of::<BodyUnderTest>(|| BodyProps { view: view("test") });
        let stripe = tag(&html, "stripe-api-base-input");
        assert!(
            stripe.contains(r#"value="http://127.0.0.1:4010""#),
            "{stripe}"
        );
        let calendly = tag(&html, "calendly-api-base-input");
        assert!(
            calendly.contains(r#"placeholder="https://api.calendly.com""#),
            "{calendly}"
        );
        assert!(
            !calendly.contains("value=\"http"),
            "nothing saved: {calendly}"
        );
        assert!(
            html.contains("In use: <code>https://api.calendly.com</code>"),
            "{html}"
        );
        assert!(
            html.contains(r#"id="settings-mode-card""#),
            "test mode can switch to live"
        );
    }

    #[test]
    fn the_kernel_keyring_fallback_is_named_in_a_warning_and_a_lasting_keychain_is_not() {
        let html = html_of::<BodyUnderTest>(|| BodyProps { view: view("test") });
        assert!(!html.contains("secret-store-warning"), "{html}");
        let mut fallback = view("test");
        fallback.secret_store = SecretStoreStatus {
            name: "kernel session keyring".into(),
            survives_restart: false,
            warning: Some("They will be gone after a restart.".into()),
        };
        let html = html_of::<BodyUnderTest>(move || BodyProps {
            view: fallback.clone(),
        });
        let at = html.find(r#"id="secret-store-warning""#).expect(&html);
        assert!(
            html[at..].contains(
                "Secrets will not survive a restart. </strong>They will be gone after a restart."
            ),
            "{html}"
        );
    }

    #[test]
    fn demo_mode_shows_neither_api_addresses_nor_the_mode_switch() {
        let html = html_of::<BodyUnderTest>(|| BodyProps { view: view("demo") });
        assert!(
            html.contains("Demo mode: everything is preset to the simulator"),
            "{html}"
        );
        assert!(!html.contains("settings-api-bases"), "{html}");
        assert!(!html.contains("settings-mode-card"), "{html}");
    }
}
