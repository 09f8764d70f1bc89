//! `clnrm fmt`: canonical layout for test files, upstream dialect rewrite, `--check` diffs.

mod dialect;
mod diff;
mod files;
mod format;
mod printer;
pub(crate) mod template;

pub use diff::unified_diff;
pub use files::{fmt_paths, is_test_file_name, FileStatus, FmtFileReport, FmtOutcome};
pub use format::{format_source, FmtError, SourceKind};
