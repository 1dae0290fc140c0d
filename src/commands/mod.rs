//! One file per command. Each turns settings into an engine call (or a read-only query) and
//! a result into an exit code; errors travel up as [`crate::error::Error`] and `main` prints
//! them. What they share (loading configs, connecting, sinks, signals) is in `session`.

pub mod appspec;
pub mod cost;
pub mod deploy;
pub mod deregister;
pub mod diff;
pub mod exec;
pub mod history;
pub mod init;
pub mod register;
pub mod render;
pub mod revisions;
pub mod rollback;
pub mod run;
pub mod sandbox;
pub mod scale;
pub mod session;
pub mod status;
pub mod tasks;
pub mod validate;
pub mod verify;
pub mod wait;
