//! Telemetry: the embedded OTLP receiver, the trace model, span expectations, trace diff.
//!
//! The runner holds one [`Telemetry`] per run; reporters only read the plain summary it leaves
//! in the results.

pub mod collector;
pub mod diff;
pub mod expect;
pub mod export;
pub mod grpc;
pub mod handle;
pub mod model;
pub mod receiver;
pub mod tree;

pub use collector::{Collector, Limits};
pub use expect::Expectations;
pub use handle::{Endpoints, Protocol, ScenarioOutcome, ScenarioTrace, Telemetry};
pub use model::Span;
