//! Located diagnostics (file:line:col, source line, caret, hint) and the byte-offset index behind them.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Where a problem is: a file, and the 1-based line and column when known. Every located
/// error (test files, baselines, `fmt`, `lint`) names its place through this type, so they all
/// read `path:line:col`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub path: PathBuf,
    pub line: Option<u32>,
    /// In characters.
    pub column: Option<u32>,
}

impl Location {
    pub fn new(path: &Path, line: Option<u32>, column: Option<u32>) -> Location {
        Location {
            path: path.to_path_buf(),
            line,
            column: line.and(column),
        }
    }

    /// The line and column of byte `offset` in `text`.
    pub fn at_offset(path: &Path, text: &str, offset: usize) -> Location {
        let spot = locate(text, &LineIndex::new(text), offset..offset);
        Location::new(path, Some(spot.line), Some(spot.column))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        Ok(())
    }
}

/// How bad a diagnostic is: errors make the file invalid (exit 2), warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem in one file, printable rustc/just style without colour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub path: PathBuf,
    /// 1-based line, when the problem has a location.
    pub line: Option<u32>,
    /// 1-based column in characters.
    pub column: Option<u32>,
    pub severity: Severity,
    pub message: String,
    pub hint: Option<String>,
    /// The offending source line (without its line break).
    pub source_line: Option<String>,
    /// Width of the caret under `source_line`, in characters (at least 1 when shown).
    pub caret_len: Option<u32>,
}

impl Diagnostic {
    /// A diagnostic about the file as a whole (no location).
    pub fn file(path: &Path, severity: Severity, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            path: path.to_path_buf(),
            line: None,
            column: None,
            severity,
            message: message.into(),
            hint: None,
            source_line: None,
            caret_len: None,
        }
    }

    /// A diagnostic pointing at byte range `span` of `src`.
    pub fn at(
        path: &Path,
        src: &str,
        span: Range<usize>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic::at_indexed(path, src, &LineIndex::new(src), span, severity, message)
    }

    /// [`Diagnostic::at`] with a prebuilt line index of `src`: many diagnostics of one big file
    /// then cost a binary search each, not a scan from the start of the file.
    pub(crate) fn at_indexed(
        path: &Path,
        src: &str,
        index: &LineIndex,
        span: Range<usize>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Diagnostic {
        let loc = locate(src, index, span);
        Diagnostic {
            path: path.to_path_buf(),
            line: Some(loc.line),
            column: Some(loc.column),
            severity,
            message: message.into(),
            hint: None,
            source_line: Some(loc.text),
            caret_len: Some(loc.width),
        }
    }

    /// A diagnostic at a 1-based line and column of `src` (used for Tera, which reports those).
    pub fn at_line_col(
        path: &Path,
        src: &str,
        line: u32,
        column: u32,
        severity: Severity,
        message: impl Into<String>,
    ) -> Diagnostic {
        let text = src
            .lines()
            .nth(line.saturating_sub(1) as usize)
            .map(|l| l.trim_end_matches('\r').to_string());
        Diagnostic {
            path: path.to_path_buf(),
            line: Some(line),
            column: Some(column),
            severity,
            message: message.into(),
            hint: None,
            caret_len: text.as_ref().map(|_| 1),
            source_line: text,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Byte offsets of the line starts of one text: offset -> line by binary search, so locating
/// every item of a 20,000-step file stays linear in the file size overall.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(src: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            src.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// Byte offset where 1-based `line` starts (the end of the text past the last line).
    pub fn start_of(&self, line: u32) -> usize {
        self.starts
            .get(line.saturating_sub(1) as usize)
            .copied()
            .unwrap_or(usize::MAX)
    }

    /// 1-based line holding byte `offset` (offsets past the end are on the last line).
    pub fn line(&self, offset: usize) -> u32 {
        self.starts.partition_point(|s| *s <= offset) as u32
    }
}

/// Where a byte span starts, in human terms.
struct Spot {
    line: u32,
    column: u32,
    text: String,
    width: u32,
}

/// Turn a byte span into line, column (characters), the line text and a caret width clipped to
/// that line. Spans from the TOML parser can be empty (e.g. "expected a value" at end of line).
fn locate(src: &str, index: &LineIndex, span: Range<usize>) -> Spot {
    let start = floor_char_boundary(src, span.start.min(src.len()));
    let end = floor_char_boundary(src, span.end.clamp(start, src.len()));
    let line = index.line(start);
    let line_start = index.starts[line as usize - 1];
    let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
    let column = src[line_start..start].chars().count() as u32 + 1;
    let text = src[line_start..line_end].trim_end_matches('\r').to_string();
    let width = src[start..end.min(line_end)].chars().count().max(1) as u32;
    Spot {
        line,
        column,
        text,
        width,
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Diagnostic {
    pub fn location(&self) -> Location {
        Location::new(&self.path, self.line, self.column)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)?;
        let digits = self.line.map_or(1, |l| l.to_string().len());
        let pad = " ".repeat(digits + 1);
        write!(f, "\n{pad}--> {}", self.location())?;
        if let (Some(line), Some(text)) = (self.line, &self.source_line) {
            write!(f, "\n{pad} |\n {line:>digits$} | {text}")?;
            let col = self.column.unwrap_or(1).max(1) as usize;
            // Keep tabs so the caret lines up with the source line in any terminal.
            let lead: String = text
                .chars()
                .take(col - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let carets = "^".repeat(self.caret_len.unwrap_or(1).max(1) as usize);
            write!(f, "\n{pad} | {lead}{carets}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n{pad} = hint: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_rustc_style() {
        let src = "[meta]\nname = \"a\"\n\nimagee = \"postgres\"\n";
        let start = src.find("imagee").expect("present");
        let d = Diagnostic::at(
            Path::new("tests/a.clnrm.toml"),
            src,
            start..start + 6,
            Severity::Error,
            "unknown key `imagee` in `[service.db]`",
        )
        .with_hint("did you mean `image`?");
        assert_eq!(
            d.to_string(),
            "error: unknown key `imagee` in `[service.db]`\n  --> tests/a.clnrm.toml:4:1\n   |\n 4 | imagee = \"postgres\"\n   | ^^^^^^\n   = hint: did you mean `image`?"
        );
    }

    #[test]
    fn wide_line_numbers_widen_the_gutter_and_columns_count_chars() {
        let mut src = "x\n".repeat(11);
        src.push_str("é = 1\n");
        let start = src.rfind('=').expect("present");
        let d = Diagnostic::at(
            Path::new("f"),
            &src,
            start..start + 1,
            Severity::Warning,
            "m",
        );
        assert_eq!(d.column, Some(3));
        assert_eq!(
            d.to_string(),
            "warning: m\n   --> f:12:3\n    |\n 12 | é = 1\n    |   ^"
        );
    }

    #[test]
    fn file_level_diagnostic_has_no_source_block() {
        let d = Diagnostic::file(Path::new("a"), Severity::Error, "empty test file")
            .with_hint("declare `[meta]`");
        assert_eq!(
            d.to_string(),
            "error: empty test file\n  --> a\n   = hint: declare `[meta]`"
        );
    }

    #[test]
    fn empty_span_at_end_of_input_still_points_somewhere() {
        let d = Diagnostic::at(Path::new("f"), "a = ", 4..4, Severity::Error, "m");
        assert_eq!((d.line, d.column, d.caret_len), (Some(1), Some(5), Some(1)));
    }
}
