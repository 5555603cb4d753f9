//! Keeps the window live without a restart. [`LiveProvider`] (around the whole window)
//! polls the shell's `live_status` once a second: it hands the store's data version to
//! every page through a context, and shows the notices sync raised as toasts.
//!
//! A page opts in with one line, adding the version to what its load effect depends on:
//!
//! ```ignore
//! let version = live::use_data_version();
//! use_effect_with((filter.clone(), version), move |(filter, _)| { /* load */ });
//! ```
//!
//! The page then reloads whenever sync applied an event or an effect finished. Reloads
//! replace the data in place (no "Loading…" flash), so keep the old value until the new
//! one arrives.

use std::time::Duration;

use coachdesk_protocol::live::{LiveStatus, Toast, ToastKind, LIVE_STATUS};
use serde::Serialize;
use wasm_bindgen_futures::spawn_local;
use yew::prelude::*;

/// How often the window asks.
const POLL: Duration = Duration::from_millis(1000);
/// How many toasts stay on screen (the newest).
const SHOWN: usize = 4;
/// How long a toast stays before it fades out on its own (ms).
const TOAST_LIFE_MS: f64 = 10_000.0;

/// How many times the window saw the store change since it opened (0 at first).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct DataVersion(pub u64);

/// The data version to put in a page's load-effect dependencies (0 outside the provider).
#[hook]
pub fn use_data_version() -> u64 {
    use_context::<DataVersion>().map_or(0, |v| v.0)
}

#[derive(Serialize)]
struct After {
    after_toast: u64,
}

#[derive(Properties, PartialEq)]
pub struct LiveProps {
    pub children: Html,
}

/// Polls the shell, provides [`DataVersion`] and shows toasts (bottom right, dismissible,
/// gone after ten seconds).
#[component]
pub fn LiveProvider(props: &LiveProps) -> Html {
    let version = use_state(DataVersion::default);
    let toasts = use_state(Vec::<Toast>::new);
    // The reducer-free way to read the latest list inside the loop: a shared cell.
    let latest = use_mut_ref(Vec::<(f64, Toast)>::new);
    {
        let (version, toasts, latest) = (version.clone(), toasts.clone(), latest.clone());
        use_effect_with((), move |_| {
            spawn_local(async move {
                let mut after = 0_u64;
                let mut seen = None::<u64>;
                let mut changes = 0_u64;
                loop {
                    let answer: Result<LiveStatus, _> =
                        crate::ipc::invoke(LIVE_STATUS, &After { after_toast: after }).await;
                    if let Ok(status) = answer {
                        // The first answer is the baseline the pages loaded against: only
                        // later changes count, so nothing reloads right after start-up.
                        if seen.is_some_and(|v| v != status.data_version) {
                            changes += 1;
                            version.set(DataVersion(changes));
                        }
                        seen = Some(status.data_version);
                        let now = js_sys::Date::now();
                        let mut list = latest.borrow_mut();
                        let before = list.len();
                        list.retain(|(at, _)| now - at < TOAST_LIFE_MS);
                        let mut changed = list.len() != before;
                        if let Some(last) = status.toasts.last() {
                            after = last.id;
                            list.extend(status.toasts.into_iter().map(|t| (now, t)));
                            let skip = list.len().saturating_sub(SHOWN);
                            list.drain(..skip);
                            changed = true;
                        }
                        if changed {
                            toasts.set(list.iter().map(|(_, t)| t.clone()).collect());
                        }
                    }
                    crate::progress::sleep(POLL).await;
                }
            });
        });
    }
    let dismiss = {
        let (toasts, latest) = (toasts.clone(), latest.clone());
        Callback::from(move |id: u64| {
            let mut list = latest.borrow_mut();
            list.retain(|(_, t)| t.id != id);
            toasts.set(list.iter().map(|(_, t)| t.clone()).collect());
        })
    };
    html! {
        <ContextProvider<DataVersion> context={*version}>
            { props.children.clone() }
            <div id="toasts" data-testid="toasts" class="toasts" role="status" aria-live="polite">
                { for toasts.iter().map(|t| toast(t, dismiss.clone())) }
            </div>
        </ContextProvider<DataVersion>>
    }
}

fn kind_class(kind: ToastKind) -> &'static str {
    match kind {
        ToastKind::NewBooking => "new-booking",
        ToastKind::Payment => "payment",
        ToastKind::Failure => "failure",
        ToastKind::Attention => "attention",
    }
}

fn toast(t: &Toast, dismiss: Callback<u64>) -> Html {
    let id = t.id;
    let kind = kind_class(t.kind);
    html! {
        <div class={classes!("toast", kind)} data-testid="toast" data-kind={kind} key={id}>
            <div class="toast-text">
                <strong class="toast-title">{ &t.title }</strong>
                <span class="toast-body">{ &t.body }</span>
            </div>
            <button class="toast-close" aria-label="Dismiss"
                onclick={Callback::from(move |_: MouseEvent| dismiss.emit(id))}>{"×"}</button>
        </div>
    }
}
