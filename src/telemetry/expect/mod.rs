//! Telemetry expectations: the model, the strict reader of the test file tables, the checks.

pub mod check;
pub(crate) mod schema;
pub mod spec;

pub use check::{check, CheckContext, SpanFailure};
pub use spec::{Expectations, Pattern, DEFAULT_FLUSH_MS};
