//! clnrm: hermetic, container-based integration tests with a performance regression gate.

pub mod agent;
pub mod atomic;
pub mod backend;
pub mod cli;
pub mod exit;
pub mod fmt;
pub mod lint;
pub mod outcome;
pub mod perf;
pub mod plan;
pub mod profile;
pub mod report;
pub mod results;
pub mod runner;
pub mod secrets;
pub mod settings;
pub mod suite;
pub mod telemetry;
pub mod tempfiles;
pub mod watch;

mod commands;

pub use commands::main_with_args;
