//! One file per command. Each receives settings and the printer and returns an exit code;
//! errors travel up as [`crate::error::Error`] and `main` prints them.

pub mod deploy;
pub mod ops;
pub mod render;
pub mod session;
pub mod validate;
