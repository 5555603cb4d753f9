//! The Coachdesk window, written in Yew and compiled to wasm32.
//!
//! It exists to show the coach their session types and bookings and to send their edits
//! to the desktop shell. It holds no business rules: every check (price format, refund
//! tiers, state names) happens in the core and comes back as a `CommandError` whose
//! `fields` are shown next to the inputs. It talks to the shell only through [`ipc`].
//! It must not depend on anything that does not build for wasm32 (no store, no tauri).

pub mod actions;
pub mod admin;
pub mod app;
pub mod backups;
pub mod bookings;
pub mod dashboard;
pub mod desk_ipc;
pub mod diagnostics;
pub mod emails;
pub mod format;
pub mod ipc;
pub mod live;
pub mod mapping;
pub mod progress;
pub mod session_types;
pub mod settings;
pub mod setup_ipc;

use wasm_bindgen::prelude::wasm_bindgen;

/// Runs when the page's `init()` has loaded the module: mounts the app on `<body>`.
#[wasm_bindgen(start)]
pub fn start() {
    yew::Renderer::<app::App>::new().render();
}

/// Renders components to HTML on the host (Yew's server renderer), for tests of what a
/// page shows for given data; effects and IPC do not run there.
#[cfg(test)]
pub(crate) mod render {
    use yew::{BaseComponent, ServerRenderer};

    /// The HTML `C` renders for the props `props` builds.
    pub fn html_of<C>(props: impl FnOnce() -> C::Properties + Send + 'static) -> String
    where
        C: BaseComponent,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime to wait on the renderer");
        runtime.block_on(
            ServerRenderer::<C>::with_props(props)
                .hydratable(false)
                .render(),
        )
    }
}
