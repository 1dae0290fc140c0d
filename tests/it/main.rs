//! The integration tests, one binary: each module was a test target of its own, and each of
//! those linked cortado, the sandbox and the AWS SDKs again. As modules of one binary they
//! link once (ripgrep's `tests/tests.rs`: "tests should probably go in here").
//!
//! ```text
//! cargo test --locked --test it                 # all of them
//! cargo test --locked --test it deploy::        # one module (was `--test deploy`)
//! cargo test --locked --test it s01_            # tests whose name contains s01_
//! ```
//!
//! The fault and incident matrices print tables with a driver of their own (`harness =
//! false`) and stay binaries apart (`tests/fault_matrix.rs`, `tests/incident_matrix.rs`); all
//! three share the scenario harness in `tests/common/`.

#[path = "../common/mod.rs"]
mod common;

mod affected;
mod aws_moto;
mod cli;
mod codedeploy;
mod deploy;
mod docs;
mod environments;
mod exec;
mod explain;
mod express;
mod fuzz;
mod github;
mod hostile;
mod lookups;
mod mermaid;
mod notify;
mod operations;
mod parity;
mod promote;
mod release;
mod robustness;
mod run;
