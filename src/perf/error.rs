//! Errors of the perf module (baseline file I/O and syntax, budgets, anchors).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    #[error("cannot {action} `{path}`: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Bad TOML or wrong shape; `line`/`column` are 1-based when the parser located it.
    #[error("{}: {message}", location(path, *line, *column))]
    Parse {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
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

fn location(path: &std::path::Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}", path.display()),
        (Some(l), None) => format!("{}:{l}", path.display()),
        _ => path.display().to_string(),
    }
}

fn did_you_mean(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("\nhint: did you mean `{s}`?"),
        None => String::new(),
    }
}
