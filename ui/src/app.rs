//! The window's frame: the mode banner, the navigation, and which page is showing.
//!
//! Pages are a plain enum rather than a router: a desktop window has no address bar, and
//! the e2e tests find pages by their stable ids.

use coachdesk_protocol::ipc::{AppInfo, SessionTypeView};
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

use crate::{admin, bookings, dashboard, emails, ipc, live, mapping, session_types, settings};

/// Which page fills the main area.
#[derive(Clone, PartialEq)]
pub enum Page {
    Dashboard,
    SessionTypes,
    NewSessionType,
    EditSessionType(SessionTypeView),
    Bookings,
    Booking(String),
    Admin,
    Emails,
    /// Calendly event types linked to session types, and the webhook subscription.
    Calendly,
    /// Keys, relay, mode and feature toggles.
    Settings,
}

#[component]
pub fn App() -> Html {
    let page = use_state(|| Page::Dashboard);
    let info = use_state(|| None::<Result<AppInfo, String>>);
    {
        let info = info.clone();
        use_effect_with((), move |_| {
            spawn_local(async move {
                info.set(Some(ipc::app_info().await.map_err(|e| e.message)));
            });
        });
    }
    let navigate = {
        let page = page.clone();
        Callback::from(move |next: Page| page.set(next))
    };
    let go = |target: Page| {
        let navigate = navigate.clone();
        Callback::from(move |_: MouseEvent| navigate.emit(target.clone()))
    };
    let on_session_types = matches!(
        *page,
        Page::SessionTypes | Page::NewSessionType | Page::EditSessionType(_)
    );
    let on_bookings = matches!(*page, Page::Bookings | Page::Booking(_));
    let on_dashboard = matches!(*page, Page::Dashboard);
    let on_admin = matches!(*page, Page::Admin);
    let on_calendly = matches!(*page, Page::Calendly);
    let on_emails = matches!(*page, Page::Emails);
    let on_settings = matches!(*page, Page::Settings);

    let body = match &*page {
        Page::SessionTypes => {
            html! { <session_types::SessionTypeList navigate={navigate.clone()} /> }
        }
        Page::NewSessionType => {
            html! { <session_types::SessionTypeForm navigate={navigate.clone()} editing={None::<SessionTypeView>} /> }
        }
        Page::EditSessionType(view) => {
            html! { <session_types::SessionTypeForm navigate={navigate.clone()} editing={Some(view.clone())} /> }
        }
        Page::Bookings => html! { <bookings::BookingList navigate={navigate.clone()} /> },
        Page::Booking(id) => {
            html! { <bookings::BookingDetailPage navigate={navigate.clone()} id={id.clone()} /> }
        }
        Page::Dashboard => html! { <dashboard::Dashboard navigate={navigate.clone()} /> },
        Page::Admin => html! { <admin::Admin navigate={navigate.clone()} /> },
        Page::Calendly => html! { <mapping::CalendlyPage /> },
        Page::Emails => html! { <emails::Emails /> },
        Page::Settings => html! { <settings::Settings navigate={navigate.clone()} /> },
    };

    html! {
        <div class="shell">
            { mode_banner(info.as_ref()) }
            <header class="topbar">
                <div class="brand">
                    <span class="brand-mark" aria-hidden="true">{"C"}</span>
                    <span class="brand-name">{"Coachdesk"}</span>
                </div>
                <nav class="tabs" aria-label="Sections">
                    <button id="nav-dashboard" data-testid="nav-dashboard"
                        class={classes!("tab", on_dashboard.then_some("active"))}
                        aria-current={on_dashboard.then_some("page")}
                        onclick={go(Page::Dashboard)}>{"Dashboard"}</button>
                    <button id="nav-session-types" data-testid="nav-session-types"
                        class={classes!("tab", on_session_types.then_some("active"))}
                        aria-current={on_session_types.then_some("page")}
                        onclick={go(Page::SessionTypes)}>{"Session types"}</button>
                    <button id="nav-calendly" data-testid="nav-calendly"
                        class={classes!("tab", on_calendly.then_some("active"))}
                        aria-current={on_calendly.then_some("page")}
                        onclick={go(Page::Calendly)}>{"Calendly"}</button>
                    <button id="nav-bookings" data-testid="nav-bookings"
                        class={classes!("tab", on_bookings.then_some("active"))}
                        aria-current={on_bookings.then_some("page")}
                        onclick={go(Page::Bookings)}>{"Bookings"}</button>
                    <button id="nav-admin" data-testid="nav-admin"
                        class={classes!("tab", on_admin.then_some("active"))}
                        aria-current={on_admin.then_some("page")}
                        onclick={go(Page::Admin)}>{"Webhook log"}</button>
                    <button id="nav-emails" data-testid="nav-emails"
                        class={classes!("tab", on_emails.then_some("active"))}
                        aria-current={on_emails.then_some("page")}
                        onclick={go(Page::Emails)}>{"Emails"}</button>
                    <button id="nav-settings" data-testid="nav-settings"
                        class={classes!("tab", on_settings.then_some("active"))}
                        aria-current={on_settings.then_some("page")}
                        onclick={go(Page::Settings)}>{"Settings"}</button>
                </nav>
                <div class="version">
                    { info.as_ref().and_then(|i| i.as_ref().ok()).map(|i| format!("v{}", i.version)).unwrap_or_default() }
                </div>
            </header>
            <settings::FirstRunNotice navigate={navigate.clone()} on_settings={on_settings}
                on_start_page={matches!(*page, Page::Dashboard)} />
            <live::LiveProvider>
                <main class="content" id="main">{ body }</main>
            </live::LiveProvider>
        </div>
    }
}

/// The strip at the very top that says which money is in play.
fn mode_banner(info: Option<&Result<AppInfo, String>>) -> Html {
    match info {
        None => {
            html! { <div id="mode-banner" data-testid="mode-banner" class="mode-banner loading">{"Starting…"}</div> }
        }
        Some(Err(message)) => html! {
            <div id="mode-banner" data-testid="mode-banner" class="mode-banner error" role="alert">
                {"Cannot reach the app core: "}{message}
            </div>
        },
        Some(Ok(info)) => {
            let (class, label, note) = match info.mode.as_str() {
                "demo" => (
                    "demo",
                    "DEMO MODE · TEST MODE",
                    "Sample data on the simulator. Nothing here touches a real Stripe or Calendly account.",
                ),
                "live" => ("live", "LIVE MODE", "Real payments and real clients."),
                _ => (
                    "test",
                    "TEST MODE",
                    "Stripe and Calendly test accounts: no real money moves.",
                ),
            };
            html! {
                <div id="mode-banner" data-testid="mode-banner" data-mode={info.mode.clone()}
                    class={classes!("mode-banner", class)} title={info.database_path.clone()}>
                    <strong>{label}</strong><span class="mode-note">{note}</span>
                </div>
            }
        }
    }
}
