//! The event stream the runner emits; progress output and watch mode consume it.

use std::time::Duration;

use crate::results::{AttemptResult, ScenarioResult, TestResult};

#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The plan is fixed: this many scenarios will run.
    Started {
        tests: usize,
        scenarios: usize,
    },
    ScenarioStarted {
        test: String,
        scenario: String,
        attempt: u32,
    },
    /// One attempt failed and will be retried; `failed` is its record (number, duration,
    /// steps with their output, message).
    Retrying {
        test: String,
        scenario: String,
        failed: AttemptResult,
        /// Attempts the scenario may take in all (its retries + 1).
        max_attempts: u32,
    },
    /// An attempt of a scenario has been running for `elapsed` (a multiple of the run's slow
    /// timeout) and is still running.
    Slow {
        test: String,
        scenario: String,
        /// 1-based; the timer starts again with each attempt.
        attempt: u32,
        elapsed: Duration,
    },
    ScenarioFinished {
        test: String,
        path: String,
        result: ScenarioResult,
        /// Attempts the scenario could have taken (its retries + 1).
        max_attempts: u32,
    },
    TestFinished(TestResult),
}
