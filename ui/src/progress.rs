//! Progress for anything slower than half a second: [`use_slow`] turns true once a task
//! has been busy for [`SLOW`], so quick answers never flash a spinner and slow ones always
//! say that something is happening.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use wasm_bindgen_futures::{spawn_local, JsFuture};
use yew::prelude::*;

/// How long a task may take before progress is shown.
pub const SLOW: Duration = Duration::from_millis(500);

/// Waits `d` on the browser's timer.
pub async fn sleep(d: Duration) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(
                &resolve,
                i32::try_from(d.as_millis()).unwrap_or(i32::MAX),
            );
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// True while `busy` has been true for longer than [`SLOW`].
#[hook]
pub fn use_slow(busy: bool) -> bool {
    let slow = use_state(|| false);
    {
        let slow = slow.clone();
        use_effect_with(busy, move |busy| {
            let current = Rc::new(Cell::new(*busy));
            if *busy {
                let current = current.clone();
                spawn_local(async move {
                    sleep(SLOW).await;
                    if current.get() {
                        slow.set(true);
                    }
                });
            } else {
                slow.set(false);
            }
            move || current.set(false)
        });
    }
    *slow
}

/// The line shown while a slow task runs.
pub fn working(what: &str) -> Html {
    html! {
        <p class="progress" role="status" aria-live="polite" data-testid="progress">
            <span class="spinner" aria-hidden="true"></span>{ format!("{what}…") }
        </p>
    }
}

/// The clock in milliseconds (for the timings the list shows).
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}
