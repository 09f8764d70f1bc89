//! `format_source`: text in, canonical text out, or a reason to leave the file alone.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table, Value};

use super::dialect;
use super::printer::Printer;
use super::template::{self, Masked, TagKind, PLACEHOLDER_PREFIX};

/// How the source is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// Plain TOML.
    Toml,
    /// A Tera template of a TOML file: Tera regions are protected (see `template`).
    TeraTemplate,
}

impl SourceKind {
    /// `.tera` files, and any file containing a Tera delimiter, are treated as templates: the
    /// loader renders such files, so protecting their regions is the only safe choice.
    pub fn detect(path: &Path, text: &str) -> SourceKind {
        let tera_ext = path.extension().is_some_and(|e| e == "tera");
        if tera_ext || template::has_tags(text) {
            SourceKind::TeraTemplate
        } else {
            SourceKind::Toml
        }
    }
}

/// Why a file could not be formatted. The file is never written in these cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FmtError {
    #[error("not valid TOML: {message}")]
    Parse { line: u32, message: String },
    #[error("template left unchanged: {reason}")]
    TemplateRefused { line: u32, reason: String },
    #[error("cannot rewrite the upstream dialect: {0}")]
    Dialect(String),
    /// The safety check found a meaning change; this is a bug in fmt, never user error.
    #[error("internal error, file left unchanged (please report): {0}")]
    Internal(String),
}

/// Formats one file's text. The result parses to the same TOML value as the input (checked,
/// not assumed) unless the upstream dialect was rewritten, in which case it is the rewrite's
/// value; templates keep every Tera region byte for byte.
impl FmtError {
    /// The line the problem is on, when it has one.
    pub fn line(&self) -> Option<u32> {
        match self {
            FmtError::Parse { line, .. } | FmtError::TemplateRefused { line, .. } => Some(*line),
            FmtError::Dialect(_) | FmtError::Internal(_) => None,
        }
    }
}

pub fn format_source(src: &str, kind: SourceKind) -> Result<String, FmtError> {
    match kind {
        SourceKind::Toml => format_toml(src),
        SourceKind::TeraTemplate if !template::has_tags(src) => format_toml(src),
        SourceKind::TeraTemplate => format_template(src),
    }
}

fn line_of(src: &str, offset: usize) -> u32 {
    let end = offset.min(src.len());
    src.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count() as u32
        + 1
}

fn parse(src: &str) -> Result<DocumentMut, (usize, String)> {
    src.parse::<DocumentMut>().map_err(|e| {
        let at = e.span().map(|s| s.start).unwrap_or(0);
        (at, e.message().trim().to_string())
    })
}

fn format_toml(src: &str) -> Result<String, FmtError> {
    format_text(src).map_err(|e| match e {
        TextError::Parse(at, message) => FmtError::Parse {
            line: line_of(src, at),
            message,
        },
        TextError::Fmt(e) => e,
    })
}

enum TextError {
    /// Byte offset in the input and the parser's message.
    Parse(usize, String),
    Fmt(FmtError),
}

/// Header, then the formatted document.
fn format_text(src: &str) -> Result<String, TextError> {
    let (header, body_start) = split_header(src);
    let mut doc = parse(&src[body_start..])
        .map_err(|(at, message)| TextError::Parse(body_start + at, message))?;
    let (body, _) = format_doc(&mut doc, &src[body_start..]).map_err(TextError::Fmt)?;
    if header.is_empty() {
        return Ok(body);
    }
    let mut out = header.join("\n");
    out.push('\n');
    if !body.is_empty() {
        out.push('\n');
        out.push_str(&body);
    }
    Ok(out)
}

/// Splits off the file's header: the leading comment lines up to the last blank line before
/// the first key or table. Without this, a file-level comment would travel with whatever
/// table happened to come first and end up in the middle of the file after reordering.
fn split_header(src: &str) -> (Vec<&str>, usize) {
    let mut header_end = 0; // byte offset just after the last blank line of the leading block
    let mut at = 0;
    for line in src.split_inclusive('\n') {
        let t = line.trim();
        if t.is_empty() {
            header_end = at + line.len();
        } else if !t.starts_with('#') {
            break;
        }
        at += line.len();
    }
    let mut lines: Vec<&str> = Vec::new();
    for line in src[..header_end].lines().map(str::trim) {
        // Blank lines inside the header collapse to one; leading ones are dropped.
        if !(line.is_empty() && lines.last().is_none_or(|l| l.is_empty())) {
            lines.push(line);
        }
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    (lines, header_end)
}

/// Formats a parsed document; returns the text and whether the dialect was rewritten.
/// `src` is the text `doc` was parsed from.
fn format_doc(doc: &mut DocumentMut, src: &str) -> Result<(String, bool), FmtError> {
    let rewritten = dialect::rewrite(doc)?;
    let out = Printer::print(doc);
    if out == src {
        // Already canonical (the common case in `--check`): nothing to prove.
        return Ok((out, rewritten));
    }
    // Prove the output means the same as the input (or as the rewrite, for upstream files).
    // The input is parsed again rather than cloned up front so canonical files pay nothing.
    let before = if rewritten {
        None
    } else {
        Some(parse(src).map_err(|(_, m)| FmtError::Internal(m))?)
    };
    let reparsed = parse(&out).map_err(|(at, m)| {
        FmtError::Internal(format!(
            "output does not parse at line {}: {m}",
            line_of(&out, at)
        ))
    })?;
    let expected = before
        .as_ref()
        .map_or(doc.as_table(), DocumentMut::as_table);
    if !same_value_table(expected, reparsed.as_table()) {
        return Err(FmtError::Internal(
            "formatted text would change the file's meaning".into(),
        ));
    }
    Ok((out, rewritten))
}

/// Structural equality of two tables, ignoring layout (decor, repr, table kinds).
fn same_value_table(a: &Table, b: &Table) -> bool {
    let live = |t: &Table| t.iter().filter(|(_, i)| !i.is_none()).count();
    live(a) == live(b)
        && a.iter()
            .filter(|(_, i)| !i.is_none())
            .all(|(k, ia)| b.get(k).is_some_and(|ib| same_item(ia, ib)))
}

fn same_item(a: &Item, b: &Item) -> bool {
    match (a, b) {
        (Item::Value(va), Item::Value(vb)) => same_value(va, vb),
        (Item::Table(ta), Item::Table(tb)) => same_value_table(ta, tb),
        (Item::ArrayOfTables(xa), Item::ArrayOfTables(xb)) => {
            xa.len() == xb.len()
                && xa
                    .iter()
                    .zip(xb.iter())
                    .all(|(p, q)| same_value_table(p, q))
        }
        (Item::Table(t), Item::Value(Value::InlineTable(it)))
        | (Item::Value(Value::InlineTable(it)), Item::Table(t)) => {
            same_value_table(t, &it.clone().into_table())
        }
        _ => false,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.value() == y.value(),
        (Value::Integer(x), Value::Integer(y)) => x.value() == y.value(),
        (Value::Float(x), Value::Float(y)) => {
            x.value() == y.value() || (x.value().is_nan() && y.value().is_nan())
        }
        (Value::Boolean(x), Value::Boolean(y)) => x.value() == y.value(),
        (Value::Datetime(x), Value::Datetime(y)) => x.value() == y.value(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| same_value(p, q))
        }
        (Value::InlineTable(x), Value::InlineTable(y)) => {
            same_value_table(&x.clone().into_table(), &y.clone().into_table())
        }
        _ => false,
    }
}

/// Formats a template through placeholders (rules in `template`'s module docs).
fn format_template(src: &str) -> Result<String, FmtError> {
    let refuse = |offset: usize, reason: String| FmtError::TemplateRefused {
        line: line_of(src, offset),
        reason,
    };
    if src.contains(PLACEHOLDER_PREFIX) {
        return Err(refuse(
            src.find(PLACEHOLDER_PREFIX).unwrap_or(0),
            format!("the text `{PLACEHOLDER_PREFIX}` is reserved by fmt"),
        ));
    }
    let tags = template::scan_tags(src).map_err(|e| refuse(e.offset, e.reason))?;
    let masked = template::mask(src, &tags);
    let doc = parse(&masked.text).map_err(|(at, message)| {
        refuse(
            masked.original_offset(at),
            format!(
                "a Tera tag sits where TOML expects structure ({message}); fmt formats \
                 templates only when every tag is inside a string, key or comment"
            ),
        )
    })?;
    check_statements(&doc, &masked).map_err(|reason| {
        let first_stmt = tags
            .iter()
            .find(|t| t.kind == TagKind::Stmt)
            .map(|t| t.start)
            .unwrap_or(0);
        refuse(first_stmt, reason)
    })?;
    let out = format_text(&masked.text).map_err(|e| match e {
        TextError::Parse(at, message) => refuse(masked.original_offset(at), message),
        TextError::Fmt(e) => e,
    })?;
    Ok(masked.unmask(&out))
}

/// `{% %}` regions must each sit in a string value, balanced within that string.
fn check_statements(doc: &DocumentMut, masked: &Masked) -> Result<(), String> {
    let total = masked
        .regions
        .values()
        .filter(|(_, k, _)| *k == TagKind::Stmt)
        .count();
    if total == 0 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    let mut strings = Vec::new();
    collect_string_reprs(doc.as_item(), &mut strings);
    for repr in &strings {
        let stmts: Vec<(&str, &str)> = masked
            .placeholders_in(repr)
            .into_iter()
            .filter(|(_, k, _)| *k == TagKind::Stmt)
            .map(|(name, _, kw)| (name, kw))
            .collect();
        template::check_string_statements(&stmts.iter().map(|(_, kw)| *kw).collect::<Vec<_>>())?;
        seen.extend(stmts.into_iter().map(|(name, _)| name));
    }
    if seen.len() < total {
        return Err(
            "a `{% %}` statement sits outside a string value (in a key, header or \
                    comment, or around whole lines); reordering could change what renders"
                .into(),
        );
    }
    Ok(())
}

fn collect_string_reprs(item: &Item, out: &mut Vec<String>) {
    match item {
        Item::Value(v) => collect_value_reprs(v, out),
        Item::Table(t) => t.iter().for_each(|(_, i)| collect_string_reprs(i, out)),
        Item::ArrayOfTables(a) => a
            .iter()
            .for_each(|t| t.iter().for_each(|(_, i)| collect_string_reprs(i, out))),
        Item::None => {}
    }
}

fn collect_value_reprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.display_repr().into_owned()),
        Value::Array(a) => a.iter().for_each(|e| collect_value_reprs(e, out)),
        Value::InlineTable(t) => t.iter().for_each(|(_, e)| collect_value_reprs(e, out)),
        _ => {}
    }
}

#[cfg(test)]
#[path = "format_tests.rs"]
mod tests;
