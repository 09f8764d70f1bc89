//! `fmt_paths`: format files on disk (atomic temp + rename) or check them and collect diffs.
//!
//! A failure on one file never stops the others; it is reported and sets the exit code.

use std::path::{Path, PathBuf};

use super::diff::unified_diff;
use super::format::{format_source, FmtError, SourceKind};
use crate::exit;
use crate::suite::Location;

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileStatus {
    /// Already canonical.
    Unchanged,
    /// Rewritten on disk (not in check mode).
    Formatted,
    /// Check mode: the file would change; the unified diff.
    WouldChange { diff: String },
    /// Left alone: it could not be formatted safely (parse error, template refused, ...).
    Refused(FmtError),
    /// A template whose tags sit where TOML expects structure: left as written. Not a failure:
    /// such a template is valid, fmt just cannot lay it out safely.
    Skipped(FmtError),
    /// Reading or writing failed.
    Io(String),
}

/// Report for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FmtFileReport {
    pub path: PathBuf,
    pub status: FileStatus,
}

/// Result of `fmt_paths`, one entry per file in a stable (sorted) order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FmtOutcome {
    pub files: Vec<FmtFileReport>,
}

impl FmtOutcome {
    /// 2 when any file could not be read, parsed or written; 1 when `--check` found changes;
    /// else 0.
    pub fn exit_code(&self) -> u8 {
        let failed = self
            .files
            .iter()
            .any(|f| matches!(f.status, FileStatus::Refused(_) | FileStatus::Io(_)));
        let would = self
            .files
            .iter()
            .any(|f| matches!(f.status, FileStatus::WouldChange { .. }));
        if failed {
            exit::USAGE
        } else if would {
            exit::TESTS_FAILED
        } else {
            exit::OK
        }
    }

    /// Diffs (check mode), for stdout.
    pub fn diffs(&self) -> String {
        self.files
            .iter()
            .filter_map(|f| match &f.status {
                FileStatus::WouldChange { diff } => Some(diff.as_str()),
                _ => None,
            })
            .collect()
    }

    /// One line per file that needs attention, then a summary line, for stderr.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let (mut changed, mut would, mut failed, mut skipped) = (0, 0, 0, 0);
        for f in &self.files {
            let p = f.path.display();
            match &f.status {
                FileStatus::Unchanged => {}
                FileStatus::Formatted => {
                    changed += 1;
                    out.push_str(&format!("formatted {p}\n"));
                }
                FileStatus::WouldChange { .. } => {
                    would += 1;
                    out.push_str(&format!("would reformat {p}\n"));
                }
                FileStatus::Refused(e) => {
                    failed += 1;
                    let at = Location::new(&f.path, e.line(), None);
                    out.push_str(&format!("error: {at}: {e}\n"));
                }
                FileStatus::Io(e) => {
                    failed += 1;
                    out.push_str(&format!("error: {p}: {e}\n"));
                }
                FileStatus::Skipped(e) => {
                    skipped += 1;
                    let at = Location::new(&f.path, e.line(), None);
                    out.push_str(&format!("note: {at}: {e}\n"));
                }
            }
        }
        out.push_str(&format!(
            "{}: {changed} formatted, {would} would change, {skipped} left as written, {failed} failed\n",
            crate::report::count_of(self.files.len(), "file")
        ));
        out
    }
}

/// True for names fmt picks up when walking a directory. Explicitly named files are always
/// formatted; walking stays conservative so a directory walk never rewrites `Cargo.toml`.
pub fn is_test_file_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".clnrm.toml") || name.ends_with(".clnrm.toml.tera")
}

fn expand(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            for entry in ignore::WalkBuilder::new(p).build().flatten() {
                let ep = entry.path();
                if entry.file_type().is_some_and(|t| t.is_file()) && is_test_file_name(ep) {
                    files.push(ep.to_path_buf());
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    files.dedup();
    files
}

/// Formats (or, with `check`, diffs) every file named or found under a named directory.
pub fn fmt_paths(paths: &[PathBuf], check: bool) -> FmtOutcome {
    use rayon::prelude::*;
    let files = expand(paths);
    let reports = files
        .par_iter()
        .map(|path| FmtFileReport {
            path: path.clone(),
            status: fmt_file(path, check),
        })
        .collect();
    FmtOutcome { files: reports }
}

fn fmt_file(path: &Path, check: bool) -> FileStatus {
    let src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => return FileStatus::Io(format!("cannot read: {e}")),
    };
    let kind = SourceKind::detect(path, &src);
    let formatted = match format_source(&src, kind) {
        Ok(f) => f,
        Err(e @ FmtError::TemplateRefused { .. }) => return FileStatus::Skipped(e),
        Err(e) => return FileStatus::Refused(e),
    };
    if formatted == src {
        return FileStatus::Unchanged;
    }
    if check {
        let shown = path.to_string_lossy().replace('\\', "/");
        return FileStatus::WouldChange {
            diff: unified_diff(&shown, &src, &formatted),
        };
    }
    match write_atomic(path, &formatted) {
        Ok(()) => FileStatus::Formatted,
        Err(e) => FileStatus::Io(format!("cannot write: {e}")),
    }
}

/// Writes through the one atomic writer: a crash leaves either the old or the new file, and
/// the file's permissions are kept.
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    crate::atomic::write_atomic(path, text.as_bytes()).map_err(|e| e.source)
}
