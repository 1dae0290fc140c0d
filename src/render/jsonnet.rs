//! Jsonnet evaluation (placeholder until the evaluator is wired in).

use std::path::Path;

use super::RenderContext;
use crate::error::{Diagnostic, Error, Result};

/// Evaluates a Jsonnet file to JSON text.
pub fn evaluate(ctx: &RenderContext, path: &Path, source: &str) -> Result<String> {
    let _ = (ctx, source);
    Err(Error::input(
        Diagnostic::error("Jsonnet is not supported yet").at_file(path),
    ))
}
