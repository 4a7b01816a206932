//! isolab: a container playground for the browser.
//!
//! Data flows one way round: browser → WebSocket → session → [`runtime`] (init helper,
//! namespaces, cgroups, rootfs, pty) → events → browser. This crate holds the server, the
//! command line ([`cli`]) and the runtime.

pub mod build;
pub mod cli;
pub mod lessons;
pub mod metrics;
pub mod network;
pub mod observe;
pub mod pool;
pub mod runtime;
pub mod server;
pub mod session;
pub mod workshop;
