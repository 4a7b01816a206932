//! The isolab page: a Yew app that creates containers and shows their terminals.
//!
//! Data flows one way. [`ws`] owns the WebSocket and turns frames into protocol messages;
//! [`app`] is the one socket owner: it feeds control messages to the state machine
//! ([`state`], a `Reducible`) and terminal bytes straight to xterm.js ([`screens`]), and gives
//! components a [`app::Session`] context to send requests with. Components render state and
//! send actions; all JavaScript interop is in [`bindings`].
//!
//! `state`, `form`, `view` (the live view's data and the network picture), `images` (images,
//! builds), `network` (ports, the move control), `presets`, `route` (which page the address
//! asks for), `lessons` (the lesson followed), `join` (an attendee's workshop), `trainer` (the
//! trainer's dashboard) and `spectate` (attendees' terminals watched read-only) are plain Rust,
//! unit-tested on the host; everything touching the DOM is compiled for wasm32 only.

pub mod form;
pub mod images;
pub mod join;
pub mod lessons;
pub mod network;
pub mod presets;
pub mod route;
pub mod spectate;
pub mod state;
pub mod trainer;
pub mod view;

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod browser;
#[cfg(target_arch = "wasm32")]
mod components;
#[cfg(target_arch = "wasm32")]
mod screens;
#[cfg(target_arch = "wasm32")]
mod ws;

/// Mounts the page on `<body>`.
#[cfg(target_arch = "wasm32")]
pub fn start() {
    yew::Renderer::<app::App>::new().render();
}
