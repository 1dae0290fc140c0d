//! cortado: deploy Amazon ECS services from files in a repository.
//!
//! The pipeline runs one way: `config` -> `render` -> `model` (validate) -> plan -> apply ->
//! watch -> verdict -> report. Each stage is a module with one job; `cli` and `main` only parse
//! flags and dispatch.

pub mod cli;
pub mod config;
pub mod error;
pub mod model;
pub mod render;
pub mod sandbox;
