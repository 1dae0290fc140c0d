//! cortado: deploy Amazon ECS services from files in a repository.
//!
//! The pipeline runs one way: `config` -> `render` -> `model` (validate) -> plan -> apply ->
//! watch -> verdict -> report. Each stage is a module with one job; `cli` and `main` only parse
//! flags and dispatch.

// Errors carry located diagnostics with snippets and hints; they are built on the cold path
// only, so their size does not matter.
#![allow(clippy::result_large_err)]
// `pub` only for what the binary and the integration tests use; the rest is `pub(crate)`, so
// the compiler reports what nothing uses.
#![warn(unreachable_pub)]

pub(crate) mod affected;
pub mod aws;
pub mod cli;
pub mod commands;
pub mod config;
pub(crate) mod cost;
pub mod deploy;
pub mod diff;
pub mod error;
pub mod github;
pub mod history;
pub mod model;
pub(crate) mod notify;
pub(crate) mod pathglob;
pub(crate) mod plan;
pub mod reference;
pub(crate) mod release;
pub mod render;
pub mod report;
pub(crate) mod required_version;
pub(crate) mod settings;
pub(crate) mod untrusted;
