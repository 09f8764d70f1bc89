//! The event stream the runner emits; progress output and watch mode consume it.

use crate::results::{ScenarioResult, TestResult};

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
    /// One attempt failed and will be retried.
    Retrying {
        test: String,
        scenario: String,
        attempt: u32,
        message: String,
    },
    ScenarioFinished {
        test: String,
        path: String,
        result: ScenarioResult,
    },
    TestFinished(TestResult),
}
