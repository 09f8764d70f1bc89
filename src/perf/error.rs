//! Errors of the perf module (baseline file I/O and syntax, budgets, anchors).

use std::path::PathBuf;

use crate::suite::Location;

#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Bad TOML or wrong shape, located when the parser could.
    #[error("{location}: {message}")]
    Parse { location: Location, message: String },
    #[error("`{path}`: unsupported baseline format version {found} (this clnrm reads version {supported})\nhint: upgrade clnrm or re-record the baseline")]
    Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "`{path}`: unknown metric `{metric}` in `[{table}]`{}",
        did_you_mean(suggestion)
    )]
    UnknownMetric {
        path: PathBuf,
        table: &'static str,
        metric: String,
        suggestion: Option<String>,
    },
    #[error("no anchor `{0}` in the baseline\nhint: set one with an anchor label (e.g. the last release) or pass a timestamp")]
    UnknownAnchor(String),
}

fn did_you_mean(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("\nhint: did you mean `{s}`?"),
        None => String::new(),
    }
}
