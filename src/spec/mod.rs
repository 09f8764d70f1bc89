//! Test files: discovery, Tera rendering, parsing, normalisation, validation, diagnostics.

pub mod model;

pub use model::*;
