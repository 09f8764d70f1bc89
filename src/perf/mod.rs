//! Perf gate: baseline file, robust statistics, screening/confirmation verdicts (pure).
//!
//! Data flow: `RunResults` -> [`measure::measurements`] (keys and values) -> [`screen`]
//! against a [`Baseline`] -> re-measure [`Screening::flagged`] keys -> [`confirm`] ->
//! `PerfSummary`. Only [`Baseline::load`] / [`Baseline::save_atomic`] and [`fingerprint()`]
//! touch the OS.

pub mod baseline;
pub mod budget;
pub mod error;
pub mod fingerprint;
pub mod gate;
pub mod measure;
pub mod report;
pub mod sim;
pub mod stats;

pub use baseline::{Anchor, Baseline, Entry, KeyStats, Series, DEFAULT_WINDOW};
pub use budget::{hard_budgets, BudgetBreach, Budgets};
pub use error::PerfError;
pub use fingerprint::{fingerprint, fingerprint_hash, fingerprint_label};
pub use gate::{confirm, screen, GateConfig, Screening, MIN_SEPARABLE};
pub use measure::{measurements, split_key, LOW_RESOLUTION_MS};
pub use report::{diff, drift, show};

/// Re-exported so callers name one type for the machine description.
pub use crate::results::Fingerprint;
