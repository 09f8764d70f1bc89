//! Reporters: JUnit, markdown job summary, JSON results, terminal table and GitHub
//! annotations, all pure functions over [`crate::results::RunResults`]; the live display of
//! run events; the [`Printer`] for human output; [`Outputs`], the one writer of report files;
//! and the shard merger behind `clnrm report`.

mod color;
mod error;
mod escape;
mod failure_output;
mod gate_explain;
mod github;
mod json;
mod junit;
mod live;
mod markdown;
mod merge;
mod outputs;
mod printer;
mod table;
mod units;
mod write;

#[cfg(test)]
pub(crate) mod fixtures;

pub use color::{resolve_color, use_color, ColorChoice};
pub use error::ReportError;
pub use escape::md_inline;
pub use failure_output::FailureOutput;
pub use gate_explain::gate_lines;
pub use github::{github_annotations, github_diagnostic};
pub use json::{json, parse_json, read_json};
pub use junit::{junit, JUNIT_OUTPUT_LIMIT, LOAD_SUITE, PERF_SUITE, RUN_SUITE};
pub use live::{count_of, plural, DisplayOptions, LiveDisplay};
pub use markdown::{markdown, MarkdownOptions, GITHUB_SUMMARY_LIMIT};
pub use merge::{merge, merge_named};
pub use outputs::{GithubOutputs, Outputs, Rendered, Target};
pub use printer::Printer;
pub use table::table;
pub use units::duration as format_duration;
pub use write::{append, write_atomic};
