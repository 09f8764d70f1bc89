//! Strict, span-aware reading of a parsed TOML document: typed getters that report wrong types,
//! missing keys and unknown keys (with "did you mean") as located diagnostics instead of failing.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diagnostic::{Diagnostic, LineIndex, Severity};

pub(crate) type Span = Range<usize>;
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// Collects the diagnostics of one file while its document is walked.
pub(crate) struct Ctx<'a> {
    pub path: &'a Path,
    pub src: &'a str,
    pub diags: Vec<Diagnostic>,
    /// Added to the hint of every diagnostic of a rendered template, whose line numbers refer
    /// to the rendered text rather than the template source.
    pub rendered_note: Option<String>,
    /// Repository root of the file (the trust boundary of mounts); found from the path when
    /// `None`.
    pub repo_root: Option<std::path::PathBuf>,
    /// Host paths mounts may reach outside the repository (`allow_mounts`, `--allow-mount`).
    pub allow_mounts: Vec<std::path::PathBuf>,
    /// Host mounts may be `:rw` (`allow_rw_mounts`, `--allow-rw-mounts`).
    pub allow_rw_mounts: bool,
    /// Line starts of `src`, built on first use.
    index: std::sync::OnceLock<LineIndex>,
    /// Image of the default service that runs steps naming no service (`default_image` in
    /// `.clnrm/config.toml` or `--default-image`).
    pub default_image: Option<String>,
    /// The document was written in the upstream dialect (normalised before validation).
    pub upstream: bool,
}

impl<'a> Ctx<'a> {
    pub fn new(path: &'a Path, src: &'a str) -> Ctx<'a> {
        Ctx {
            path,
            src,
            diags: Vec::new(),
            rendered_note: None,
            repo_root: None,
            allow_mounts: Vec::new(),
            allow_rw_mounts: false,
            index: std::sync::OnceLock::new(),
            default_image: None,
            upstream: false,
        }
    }

    fn index(&self) -> &LineIndex {
        self.index.get_or_init(|| LineIndex::new(self.src))
    }

    pub fn error(&mut self, span: Span, msg: impl Into<String>, hint: Option<String>) {
        self.push(span, Severity::Error, msg.into(), hint);
    }

    pub fn warn(&mut self, span: Span, msg: impl Into<String>, hint: Option<String>) {
        self.push(span, Severity::Warning, msg.into(), hint);
    }

    fn push(&mut self, span: Span, sev: Severity, msg: String, hint: Option<String>) {
        let mut d = Diagnostic::at_indexed(self.path, self.src, self.index(), span, sev, msg);
        d.hint = match (hint, &self.rendered_note) {
            (Some(h), Some(n)) => Some(format!("{h}; {n}")),
            (h, n) => h.or_else(|| n.clone()),
        };
        self.diags.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }

    /// Byte span of 1-based `line` (without its line break).
    pub fn line_span(&self, line: u32) -> Span {
        let start = self.index().start_of(line).min(self.src.len());
        let end = self.src[start..]
            .find('\n')
            .map_or(self.src.len(), |i| start + i);
        start..end
    }

    /// 1-based line of a byte offset (for the `line` fields of the model).
    pub fn line_of(&self, span: &Span) -> u32 {
        self.index().line(span.start.min(self.src.len()))
    }
}

/// Closest allowed key, when close enough to be a plausible typo.
pub(crate) fn did_you_mean<'k>(key: &str, allowed: &[&'k str]) -> Option<&'k str> {
    allowed
        .iter()
        .map(|a| (strsim::jaro_winkler(key, a), *a))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, a)| a)
}

/// A table being read, with its display name for messages (`[service.db]`).
pub(crate) struct Tbl<'t, 'i> {
    pub t: &'t DeTable<'i>,
    pub name: String,
    pub span: Span,
}

impl<'t, 'i> Tbl<'t, 'i> {
    pub fn new(t: &'t DeTable<'i>, name: impl Into<String>, span: Span) -> Tbl<'t, 'i> {
        Tbl {
            t,
            name: name.into(),
            span,
        }
    }

    /// Report every key not in `allowed`, suggesting the nearest allowed key.
    pub fn check_keys(&self, ctx: &mut Ctx<'_>, allowed: &[&str]) {
        for (k, _) in self.t.iter() {
            let key = k.get_ref().as_ref();
            if allowed.contains(&key) {
                continue;
            }
            let hint = match did_you_mean(key, allowed) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("allowed keys: {}", quote_list(allowed)),
            };
            ctx.error(
                k.span(),
                format!("unknown key `{key}` in `{}`", self.name),
                Some(hint),
            );
        }
    }

    pub fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.t.get(key)
    }

    /// Span of the key itself (better caret position than the value for some messages).
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.t.get_key_value(key).map(|(k, _)| k.span())
    }

    fn type_error(&self, ctx: &mut Ctx<'_>, key: &str, v: &Value<'_>, want: &str) {
        ctx.error(
            v.span(),
            format!(
                "`{key}` in `{}` must be {want}, found {}",
                self.name,
                v.get_ref().type_str()
            ),
            None,
        );
    }

    pub fn missing(&self, ctx: &mut Ctx<'_>, key: &str, example: &str) {
        ctx.error(
            self.span.clone(),
            format!("missing required key `{key}` in `{}`", self.name),
            Some(format!("add `{key} = {example}`")),
        );
    }

    pub fn str(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<(String, Span)> {
        let v = self.get(key)?;
        match v.get_ref().as_str() {
            Some(s) => Some((s.to_string(), v.span())),
            None => {
                self.type_error(ctx, key, v, "a string");
                None
            }
        }
    }

    pub fn req_str(&self, ctx: &mut Ctx<'_>, key: &str, example: &str) -> Option<(String, Span)> {
        if self.get(key).is_none() {
            self.missing(ctx, key, example);
            return None;
        }
        let (s, span) = self.str(ctx, key)?;
        if s.trim().is_empty() {
            ctx.error(
                span,
                format!("`{key}` in `{}` must not be empty", self.name),
                None,
            );
            return None;
        }
        Some((s, span))
    }

    pub fn bool(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<bool> {
        let v = self.get(key)?;
        let b = v.get_ref().as_bool();
        if b.is_none() {
            self.type_error(ctx, key, v, "a boolean (`true` or `false`)");
        }
        b
    }

    /// An integer within `lo..=hi`.
    pub fn int(&self, ctx: &mut Ctx<'_>, key: &str, lo: i64, hi: i64) -> Option<(i64, Span)> {
        let v = self.get(key)?;
        let n = v
            .get_ref()
            .as_integer()
            .and_then(|i| i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok());
        match n {
            Some(n) if (lo..=hi).contains(&n) => Some((n, v.span())),
            Some(n) => {
                ctx.error(
                    v.span(),
                    format!(
                        "`{key}` in `{}` must be between {lo} and {hi}, found {n}",
                        self.name
                    ),
                    None,
                );
                None
            }
            None => {
                self.type_error(ctx, key, v, "an integer");
                None
            }
        }
    }

    /// A number (integer or float) that must be greater than zero.
    pub fn positive(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<f64> {
        let v = self.get(key)?;
        match number(v.get_ref()) {
            Some(n) if n > 0.0 && n.is_finite() => Some(n),
            Some(n) => {
                ctx.error(
                    v.span(),
                    format!(
                        "`{key}` in `{}` must be greater than 0, found {n}",
                        self.name
                    ),
                    None,
                );
                None
            }
            None => {
                self.type_error(ctx, key, v, "a number");
                None
            }
        }
    }

    /// A humantime duration string ("30s", "500ms", "1m 30s") greater than zero.
    pub fn duration(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Duration> {
        let v = self.get(key)?;
        let Some(s) = v.get_ref().as_str() else {
            ctx.error(
                v.span(),
                format!(
                    "`{key}` in `{}` must be a duration string, found {}",
                    self.name,
                    v.get_ref().type_str()
                ),
                Some(format!("write it with a unit, e.g. `{key} = \"30s\"`")),
            );
            return None;
        };
        match humantime::parse_duration(s) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                ctx.error(
                    v.span(),
                    format!("`{key}` in `{}` must be greater than zero", self.name),
                    None,
                );
                None
            }
            Err(e) => {
                ctx.error(
                    v.span(),
                    format!("invalid duration `{s}` for `{key}` in `{}`: {e}", self.name),
                    Some("use a number with a unit: `500ms`, `30s`, `2m`".into()),
                );
                None
            }
        }
    }

    /// An array of strings (`["a", "b"]`).
    pub fn str_list(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Vec<String>> {
        let v = self.get(key)?;
        let Some(arr) = v.get_ref().as_array() else {
            self.type_error(ctx, key, v, "an array of strings");
            return None;
        };
        let mut out = Vec::with_capacity(arr.len());
        let mut ok = true;
        for e in arr.iter() {
            match e.get_ref().as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    ctx.error(
                        e.span(),
                        format!(
                            "elements of `{key}` in `{}` must be strings, found {}",
                            self.name,
                            e.get_ref().type_str()
                        ),
                        None,
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A string or an array of strings, normalised to a list.
    pub fn str_or_list(&self, ctx: &mut Ctx<'_>, key: &str) -> Vec<(String, Span)> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        if let Some(s) = v.get_ref().as_str() {
            return vec![(s.to_string(), v.span())];
        }
        if let Some(arr) = v.get_ref().as_array() {
            if arr.iter().all(|e| e.get_ref().is_str()) {
                return arr
                    .iter()
                    .filter_map(|e| e.get_ref().as_str().map(|s| (s.to_string(), e.span())))
                    .collect();
            }
        }
        self.type_error(ctx, key, v, "a string or an array of strings");
        Vec::new()
    }

    /// A non-empty argv array.
    pub fn argv(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<Vec<String>> {
        let list = self.str_list(ctx, key)?;
        if list.is_empty() {
            let span = self.get(key).map_or(self.span.clone(), |v| v.span());
            ctx.error(
                span,
                format!("`{key}` in `{}` must not be empty", self.name),
                Some("give the program and its arguments, e.g. `[\"echo\", \"hi\"]`".into()),
            );
            return None;
        }
        Some(list)
    }

    /// A table whose values are all strings (`env = { A = "1" }`).
    pub fn str_map(&self, ctx: &mut Ctx<'_>, key: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(v) = self.get(key) else {
            return out;
        };
        let Some(t) = v.get_ref().as_table() else {
            self.type_error(ctx, key, v, "a table of strings");
            return out;
        };
        for (k, val) in t.iter() {
            match val.get_ref().as_str() {
                Some(s) => {
                    out.insert(k.get_ref().to_string(), s.to_string());
                }
                None => ctx.error(
                    val.span(),
                    format!(
                        "`{key}.{}` in `{}` must be a string, found {}",
                        k.get_ref(),
                        self.name,
                        val.get_ref().type_str()
                    ),
                    Some("quote the value: environment values are strings".into()),
                ),
            }
        }
        out
    }

    /// A sub-table, or `None` (with an error) when the key holds something else.
    pub fn table(&self, ctx: &mut Ctx<'_>, key: &str) -> Option<(&'t DeTable<'i>, Span)> {
        let v = self.get(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some((t, v.span())),
            _ => {
                self.type_error(ctx, key, v, "a table");
                None
            }
        }
    }

    /// An array of tables (`[[scenario]]`).
    pub fn tables(&self, ctx: &mut Ctx<'_>, key: &str) -> Vec<(&'t DeTable<'i>, Span)> {
        let Some(v) = self.get(key) else {
            return Vec::new();
        };
        let Some(arr) = v.get_ref().as_array() else {
            self.type_error(ctx, key, v, "an array of tables (`[[...]]`)");
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in arr.iter() {
            match e.get_ref() {
                DeValue::Table(t) => out.push((t, e.span())),
                other => ctx.error(
                    e.span(),
                    format!(
                        "elements of `{key}` must be tables, found {}",
                        other.type_str()
                    ),
                    None,
                ),
            }
        }
        out
    }
}

/// An integer or float as f64.
pub(crate) fn number(v: &DeValue<'_>) -> Option<f64> {
    if let Some(i) = v.as_integer() {
        return i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .ok()
            .map(|n| n as f64);
    }
    v.as_float()
        .and_then(|f| f.as_str().replace('_', "").parse::<f64>().ok())
}

pub(crate) fn quote_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_suggested_and_far_ones_are_not() {
        assert_eq!(did_you_mean("imagee", &["image", "cmd"]), Some("image"));
        assert_eq!(
            did_you_mean("stdout_contain", &["stdout_contains", "stderr_contains"]),
            Some("stdout_contains")
        );
        assert_eq!(did_you_mean("zzz", &["image", "cmd"]), None);
    }

    #[test]
    fn integers_in_other_radixes_and_with_underscores_parse() {
        let doc = DeTable::parse("a = 0xff\nb = 1_000\nc = 2.5\n").expect("valid");
        let t = doc.get_ref();
        assert_eq!(number(t.get("a").expect("a").get_ref()), Some(255.0));
        assert_eq!(number(t.get("b").expect("b").get_ref()), Some(1000.0));
        assert_eq!(number(t.get("c").expect("c").get_ref()), Some(2.5));
    }
}
