//! The mailqueue server: the only crate that knows every adapter. It turns
//! a [`Config`] into a running [`Application`] (API and workers in one
//! process) and holds the command-line commands.

pub mod app;
pub mod commands;
pub mod config;
mod http_server;
pub mod settings;
mod smtp_listeners;
mod wiring;

pub use app::Application;
pub use config::Config;
