//! Tera rendering of `.tera` test files: the `[vars]`/`[determinism]` pre-pass over the raw
//! text, include resolution (same directory, then parents), compilation and error mapping.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use regex::Regex;
use tera::{Context, Tera};
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, Severity};
use super::functions::{self, FnState};

/// Name under which the embedded macro library is importable.
pub const MACROS_NAME: &str = "_macros.toml.tera";
/// The embedded macro library.
pub const MACROS: &str = include_str!("_macros.toml.tera");

/// Where a variable's value came from (lowest to highest precedence).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum VarSource {
    /// `[vars]` of the file.
    File,
    /// `CLNRM_VAR_<NAME>` (the variable's exact name).
    Env(String),
    /// `--var name=value`.
    Cli,
}

/// One resolved template variable, for `clnrm render --map`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ResolvedVar {
    pub name: String,
    pub value: String,
    pub source: VarSource,
}

/// `[vars]` and `[determinism]` of the raw (unrendered) text.
#[derive(Debug, Default)]
pub(crate) struct Prepass {
    pub vars: BTreeMap<String, tera::Value>,
    pub freeze_clock: Option<String>,
    pub seed: Option<u64>,
}

/// Read `[vars]` and `[determinism]` from the raw text before rendering: a template cannot
/// render itself to learn its own variables, so those two tables must be plain TOML.
pub(crate) fn prepass(path: &Path, src: &str) -> Result<Prepass, Vec<Diagnostic>> {
    let mut out = Prepass::default();
    let mut diags = Vec::new();
    if let Some(t) = table_text(src, "vars") {
        match DeTable::parse(&t) {
            Ok(doc) => {
                let empty = DeTable::default();
                let vars = doc
                    .get_ref()
                    .get("vars")
                    .and_then(|v| v.get_ref().as_table())
                    .unwrap_or(&empty);
                for (k, v) in vars.iter() {
                    let Some(val) = var_value(v.get_ref()) else {
                        diags.push(Diagnostic::at(
                            path,
                            &t,
                            v.span(),
                            Severity::Error,
                            format!(
                                "`vars.{}` must be a string, number, boolean, array or table, found {}",
                                k.get_ref(),
                                v.get_ref().type_str()
                            ),
                        ));
                        continue;
                    };
                    out.vars.insert(k.get_ref().to_string(), val);
                }
            }
            Err(e) => diags.push(
                Diagnostic::at(
                    path,
                    &t,
                    e.span().unwrap_or(0..0),
                    Severity::Error,
                    format!("invalid `[vars]` table: {}", e.message()),
                )
                .with_hint(
                    "`[vars]` is read before rendering: it must be plain TOML without `{{ }}`",
                ),
            ),
        }
    }
    if let Some(t) = table_text(src, "determinism") {
        let doc = DeTable::parse(&t).ok();
        if let Some(d) = doc
            .as_ref()
            .and_then(|d| d.get_ref().get("determinism"))
            .and_then(|d| d.get_ref().as_table())
        {
            out.freeze_clock = d
                .get("freeze_clock")
                .and_then(|v| v.get_ref().as_str())
                .map(str::to_string);
            out.seed = d
                .get("seed")
                .and_then(|v| super::reader::number(v.get_ref()))
                .map(|n| n as u64);
        }
        // Errors in `[determinism]` are reported by the schema check of the rendered file.
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// A `[vars]` value as a template value: scalars, and arrays and tables of them (so a template
/// can loop over a list or read `vars.db.port`). `None` for dates (no template form).
fn var_value(v: &DeValue<'_>) -> Option<tera::Value> {
    Some(match v {
        DeValue::String(s) => tera::Value::String(s.to_string()),
        DeValue::Boolean(b) => tera::Value::Bool(*b),
        DeValue::Integer(_) | DeValue::Float(_) => {
            let n = super::reader::number(v).unwrap_or(0.0);
            if n.fract() == 0.0 && n.abs() < 9e15 {
                tera::Value::from(n as i64)
            } else {
                tera::Value::from(n)
            }
        }
        DeValue::Array(a) => tera::Value::Array(
            a.iter()
                .map(|e| var_value(e.get_ref()))
                .collect::<Option<Vec<_>>>()?,
        ),
        DeValue::Table(t) => tera::Value::Object(
            t.iter()
                .map(|(k, e)| Some((k.get_ref().to_string(), var_value(e.get_ref())?)))
                .collect::<Option<serde_json::Map<_, _>>>()?,
        ),
        DeValue::Datetime(_) => return None,
    })
}

/// A plain `.clnrm.toml` holding Tera syntax (`{{ }}` or `{% %}`) is rendered like a
/// `.tera` file, as upstream does; `clnrm lint` suggests the rename.
pub(crate) fn looks_like_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The text of table `[name]` with every other line blanked, so spans and line numbers of a
/// parse of it are those of the original file.
fn table_text(src: &str, name: &str) -> Option<String> {
    let header = format!("[{name}]");
    let mut inside = false;
    let mut found = false;
    let mut out = String::with_capacity(src.len());
    for line in src.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with("{{") || t.starts_with("{%") || t.starts_with("{#") {
            // Template code ends the plain-TOML table.
            inside = false;
        } else if t.starts_with('[') {
            let head = t.split('#').next().unwrap_or("").trim();
            inside = head == header;
            found |= inside;
        }
        if inside {
            out.push_str(line);
        } else if line.ends_with('\n') {
            out.push('\n');
        }
    }
    found.then_some(out)
}

/// Merge file vars < env < cli, keeping the file var's type when an override parses as it.
pub(crate) fn resolve_vars(
    file: &BTreeMap<String, tera::Value>,
    env: &BTreeMap<String, String>,
    cli: &BTreeMap<String, String>,
) -> (BTreeMap<String, tera::Value>, Vec<ResolvedVar>) {
    let mut vals = file.clone();
    let mut src: BTreeMap<String, VarSource> =
        file.keys().map(|k| (k.clone(), VarSource::File)).collect();
    for (raw, v) in env {
        // CLNRM_VAR_DB_IMAGE sets `db_image`, or a file var spelled in another case.
        let name = file
            .keys()
            .find(|k| k.eq_ignore_ascii_case(raw))
            .cloned()
            .unwrap_or_else(|| raw.to_ascii_lowercase());
        vals.insert(name.clone(), typed(file.get(&name), v));
        src.insert(name, VarSource::Env(format!("CLNRM_VAR_{raw}")));
    }
    for (name, v) in cli {
        vals.insert(name.clone(), typed(file.get(name), v));
        src.insert(name.clone(), VarSource::Cli);
    }
    let resolved = vals
        .iter()
        .map(|(k, v)| ResolvedVar {
            name: k.clone(),
            value: match v {
                tera::Value::String(s) => s.clone(),
                other => other.to_string(),
            },
            source: src.get(k).cloned().unwrap_or(VarSource::File),
        })
        .collect();
    (vals, resolved)
}

fn typed(file: Option<&tera::Value>, v: &str) -> tera::Value {
    match file {
        Some(tera::Value::Number(_)) => v
            .parse::<i64>()
            .map(tera::Value::from)
            .or_else(|_| v.parse::<f64>().map(tera::Value::from))
            .unwrap_or_else(|_| tera::Value::String(v.into())),
        Some(tera::Value::Bool(_)) => v
            .parse::<bool>()
            .map(tera::Value::Bool)
            .unwrap_or_else(|_| tera::Value::String(v.into())),
        _ => tera::Value::String(v.into()),
    }
}

static INCLUDE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\{%-?\s*(?:include|import|extends)\s+["']([^"']+)["']"#)
        .expect("static regex is valid")
});

/// One template source: the file (or embedded library) and its text.
pub(crate) struct Source {
    pub name: String,
    pub path: Option<PathBuf>,
    pub text: String,
}

/// Find every template `main` includes, transitively. Names resolve against the including
/// file's directory, then its parents up to `root` or the first directory holding `.git` or
/// `.clnrm`; `_macros.toml.tera` falls back to the embedded library.
pub(crate) fn collect_includes(
    path: &Path,
    main: &str,
    root: Option<&Path>,
) -> Result<Vec<Source>, Vec<Diagnostic>> {
    let mut out: Vec<Source> = Vec::new();
    let mut queue: Vec<(PathBuf, String)> = vec![(path.to_path_buf(), main.to_string())];
    let mut diags = Vec::new();
    while let Some((from, text)) = queue.pop() {
        for cap in INCLUDE_RE.captures_iter(&text) {
            let m = cap.get(1).expect("group 1 always participates");
            let name = m.as_str();
            if out.iter().any(|s| s.name == name) {
                continue;
            }
            match find(&from, name, root) {
                Some(p) => match std::fs::read_to_string(&p) {
                    Ok(t) => {
                        queue.push((p.clone(), t.clone()));
                        out.push(Source {
                            name: name.into(),
                            path: Some(p),
                            text: t,
                        });
                    }
                    Err(e) => diags.push(Diagnostic::file(
                        &p,
                        Severity::Error,
                        format!("cannot read included template: {e}"),
                    )),
                },
                None if name == MACROS_NAME => out.push(Source {
                    name: name.into(),
                    path: None,
                    text: MACROS.into(),
                }),
                None => {
                    let src = if from == path { main } else { text.as_str() };
                    diags.push(
                        Diagnostic::at(&from, src, m.start()..m.end(), Severity::Error, format!(
                            "included template `{name}` not found"
                        ))
                        .with_hint("templates are looked up next to the including file, then in its parent directories"),
                    );
                }
            }
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

fn find(from: &Path, name: &str, root: Option<&Path>) -> Option<PathBuf> {
    let abs = std::path::absolute(from).ok()?;
    let mut dir = abs.parent();
    while let Some(d) = dir {
        let candidate = d.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
        let at_root = root.is_some_and(|r| std::path::absolute(r).is_ok_and(|r| r == d))
            || d.join(".git").exists()
            || d.join(".clnrm").exists();
        if at_root {
            return None;
        }
        dir = d.parent();
    }
    None
}

/// A Tera instance holding only the parsed embedded macro library.
static MACROS_BASE: LazyLock<Tera> = LazyLock::new(|| {
    let mut t = Tera::default();
    t.add_raw_template(MACROS_NAME, MACROS)
        .expect("the embedded macro library compiles (tested)");
    t
});

/// A compiled template with its includes, ready to render with any variables.
pub(crate) struct Compiled {
    tera: Tera,
    main: String,
    used_real_clock: Arc<AtomicBool>,
}

impl Compiled {
    pub fn new(
        path: &Path,
        main_text: &str,
        includes: &[Source],
        freeze_clock: Option<String>,
        seed: u64,
    ) -> Result<Compiled, Vec<Diagnostic>> {
        let main = path
            .file_name()
            .map_or_else(|| "main".into(), |n| n.to_string_lossy().into_owned());
        // Parsing the embedded macro library dominates a cold render; start from a copy of an
        // instance that already holds it parsed.
        let embedded = includes.iter().any(|s| s.path.is_none());
        let mut tera = if embedded {
            MACROS_BASE.clone()
        } else {
            Tera::default()
        };
        let mut all: Vec<(&str, &str)> = vec![(main.as_str(), main_text)];
        all.extend(
            includes
                .iter()
                .filter(|s| s.path.is_some())
                .map(|s| (s.name.as_str(), s.text.as_str())),
        );
        if let Err(e) = tera.add_raw_templates(all) {
            return Err(vec![compile_error(path, main_text, &main, includes, &e)]);
        }
        let used_real_clock = Arc::new(AtomicBool::new(false));
        functions::register(
            &mut tera,
            FnState {
                freeze_clock,
                seed,
                used_real_clock: used_real_clock.clone(),
            },
        );
        Ok(Compiled {
            tera,
            main,
            used_real_clock,
        })
    }

    /// Render with `vars`, available both as `{{ vars.x }}` and `{{ x }}`.
    pub fn render(
        &self,
        path: &Path,
        src: &str,
        vars: &BTreeMap<String, tera::Value>,
    ) -> Result<String, Vec<Diagnostic>> {
        let mut ctx = Context::new();
        for (k, v) in vars {
            ctx.insert(k.as_str(), v);
        }
        ctx.insert("vars", vars);
        self.tera
            .render(&self.main, &ctx)
            .map_err(|e| vec![render_error(path, src, &e)])
    }

    /// Whether some render read the real clock (the result then must not be cached).
    pub fn used_real_clock(&self) -> bool {
        self.used_real_clock.load(Ordering::Relaxed)
    }
}

fn chain(e: &tera::Error) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        out.push(s.to_string());
        cur = s.source();
    }
    out
}

static LOC_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"--> (\d+):(\d+)").expect("static regex is valid"));
static NAME_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"'([^']+)'").expect("static regex is valid"));

/// Tera parse errors carry a pest report (` --> L:C`, the line, `= expected ...`) in the
/// source chain; keep the location and the reason, drop the rest.
fn compile_error(
    path: &Path,
    main_text: &str,
    main: &str,
    includes: &[Source],
    e: &tera::Error,
) -> Diagnostic {
    let msgs = chain(e);
    let which = NAME_RE
        .captures(&msgs[0])
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| main.into());
    let (file, text) = match includes.iter().find(|s| s.name == which) {
        Some(s) => (
            s.path.clone().unwrap_or_else(|| PathBuf::from(&s.name)),
            s.text.as_str(),
        ),
        None => (path.to_path_buf(), main_text),
    };
    let root = msgs.last().expect("chain has at least one message");
    let reason = root
        .lines()
        .find_map(|l| l.trim().strip_prefix("= "))
        .unwrap_or(root)
        .to_string();
    let message = format!("template syntax error: {reason}");
    match LOC_RE.captures(root) {
        Some(c) => {
            let line = c[1].parse().unwrap_or(1);
            let col = c[2].parse().unwrap_or(1);
            Diagnostic::at_line_col(&file, text, line, col, Severity::Error, message)
        }
        None => Diagnostic::file(&file, Severity::Error, message),
    }
}

static VAR_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Variable `([^`]+)` not found in context").expect("static regex is valid")
});
static TAG_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)\{\{.*?\}\}|\{%.*?%\}").expect("static regex is valid"));
static WHILE_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r" while rendering '[^']*'").expect("static regex is valid"));

/// Tera's top-level render error is "Failed to render 'x'"; the real cause sits at the end of
/// the source chain. Tera gives no location for render errors, so point at the first tag that
/// mentions the culprit.
fn render_error(path: &Path, src: &str, e: &tera::Error) -> Diagnostic {
    let msgs = chain(e);
    let root = msgs.last().expect("chain has at least one message").clone();
    let (message, needle, hint) = match VAR_RE.captures(&root) {
        Some(c) => {
            let var = c[1].to_string();
            let base = var
                .trim_start_matches("vars.")
                .split('.')
                .next()
                .unwrap_or("")
                .to_string();
            (
                format!("undefined template variable `{var}`"),
                Some(var),
                Some(format!(
                    "define it in `[vars]`, set `CLNRM_VAR_{}` or pass `--var {base}=...`",
                    base.to_ascii_uppercase()
                )),
            )
        }
        None => {
            let m = WHILE_RE.replace_all(&root, "").into_owned();
            let needle = msgs
                .iter()
                .find_map(|s| NAME_RE.captures(s).map(|c| c[1].to_string()))
                .filter(|n| !n.ends_with(".tera"));
            (format!("template error: {m}"), needle, None)
        }
    };
    let span = needle.and_then(|n| {
        TAG_RE.find_iter(src).find_map(|t| {
            t.as_str()
                .find(&n)
                .map(|i| t.start() + i..t.start() + i + n.len())
        })
    });
    let mut d = match span {
        Some(s) => Diagnostic::at(path, src, s, Severity::Error, message),
        None => Diagnostic::file(path, Severity::Error, message),
    };
    d.hint = hint;
    d
}
