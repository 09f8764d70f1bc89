//! The loading pipeline: discovery, Tera rendering, parsing, dialect normalisation, validation
//! and located diagnostics. Every command that reads test files goes through it.

mod build;
mod diagnostic;
mod discover;
mod fake;
mod functions;
mod generators;
mod loader;
pub mod model;
mod names;
mod not_evaluated;
pub(crate) mod reader;
mod render_guard;
pub(crate) mod schema;
pub(crate) mod sections;
mod template;
pub(crate) mod trust;
pub(crate) mod upstream;

pub use diagnostic::{Diagnostic, Location, Severity};
pub use discover::{discover, is_test_file, DiscoverError};
pub use loader::{LoadOptions, Loaded, Loader, Rendered, Suite, CACHE_CAPACITY, MAX_FILE_BYTES};
pub use model::*;
pub use schema::{parse_memory, start_waves, DEFAULT_SERVICE};
pub use template::{ResolvedVar, VarSource, MACROS, MACROS_NAME};
#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod robustness_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod upstream_tests;
