//! Wire types shared by the desktop shell, the Yew UI and the relay.
//!
//! This crate depends on serde only so that it builds for wasm32 (the UI) and native
//! (the shell, the relay, the simulator) alike. It holds data, never behaviour with I/O.

pub mod desk;
pub mod ipc;
pub mod live;
pub mod mail;
pub mod relay;
pub mod settings;
pub mod setup;
