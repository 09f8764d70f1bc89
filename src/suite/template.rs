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

/// Include chains deeper than this are refused (a template library is a few levels deep).
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Templates one test file may pull in, transitively.
pub const MAX_INCLUDES: usize = 256;

/// One `include` / `import` / `extends` edge: who names what, and where.
struct Edge {
    from: PathBuf,
    to: PathBuf,
    name: String,
    span: std::ops::Range<usize>,
}

/// Find every template `main` includes, transitively. Names resolve against the including
/// file's directory, then its parents up to `search_root` (default: `repo_root`);
/// `_macros.toml.tera` falls back to the embedded library. Names that are absolute or hold
/// `..`, and files that resolve outside `repo_root`, are refused (located, the file is never
/// read); included files are size-capped like test files; cycles and chains deeper than
/// [`MAX_INCLUDE_DEPTH`] are refused before Tera sees them (they would overflow its stack).
pub(crate) fn collect_includes(
    path: &Path,
    main: &str,
    search_root: Option<&Path>,
    repo_root: &Path,
) -> Result<Vec<Source>, Vec<Diagnostic>> {
    let mut out: Vec<Source> = Vec::new();
    let main_abs = super::trust::canonical(path);
    let mut queue: Vec<(PathBuf, PathBuf, String)> =
        vec![(path.to_path_buf(), main_abs.clone(), main.to_string())];
    let mut edges: Vec<Edge> = Vec::new();
    let mut texts: Vec<(PathBuf, PathBuf, String)> = Vec::new();
    let mut diags = Vec::new();
    let search = search_root.map(super::trust::canonical);
    let root = search.as_deref().unwrap_or(repo_root);
    while let Some((from, from_abs, text)) = queue.pop() {
        for cap in INCLUDE_RE.captures_iter(&text) {
            let m = cap.get(1).expect("group 1 always participates");
            let name = m.as_str();
            let here = |msg: String, hint: String| {
                Diagnostic::at(&from, &text, m.start()..m.end(), Severity::Error, msg)
                    .with_hint(hint)
            };
            if let Err(r) = super::trust::check_include_name(name) {
                diags.push(here(r.message, r.hint));
                continue;
            }
            if let Some(s) = out.iter().find(|s| s.name == name) {
                if let Some(p) = &s.path {
                    edges.push(Edge {
                        from: from_abs.clone(),
                        to: super::trust::canonical(p),
                        name: name.into(),
                        span: m.start()..m.end(),
                    });
                }
                continue;
            }
            match find(&from, name, root) {
                Some(p) => {
                    if let Err(r) = super::trust::check_include_path(name, &p, repo_root) {
                        diags.push(here(r.message, r.hint));
                        continue;
                    }
                    if out.len() >= MAX_INCLUDES {
                        diags.push(here(
                            format!("more than {MAX_INCLUDES} templates included"),
                            "a test file and its templates form one unit; split the suite into several test files".into(),
                        ));
                        break;
                    }
                    let real = super::trust::canonical(&p);
                    edges.push(Edge {
                        from: from_abs.clone(),
                        to: real.clone(),
                        name: name.into(),
                        span: m.start()..m.end(),
                    });
                    if real == main_abs {
                        // The test file including itself: the cycle check reports it.
                        continue;
                    }
                    match read_template(&p) {
                        Ok(t) => {
                            queue.push((p.clone(), real, t.clone()));
                            out.push(Source {
                                name: name.into(),
                                path: Some(p),
                                text: t,
                            });
                        }
                        Err(msg) => diags.push(here(msg.0, msg.1)),
                    }
                }
                None if name == MACROS_NAME => out.push(Source {
                    name: name.into(),
                    path: None,
                    text: MACROS.into(),
                }),
                None => diags.push(here(
                    format!("included template `{name}` not found"),
                    "templates are looked up next to the including file, then in its parent directories up to the repository root".into(),
                )),
            }
        }
        texts.push((from, from_abs, text));
    }
    if diags.is_empty() {
        if let Some(d) = cycle_or_depth(&main_abs, &edges, &texts) {
            diags.push(d);
        }
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        Err(diags)
    }
}

/// Read an included template, refusing files above the test-file size limit without reading
/// them whole. The error never quotes the file's content.
fn read_template(p: &Path) -> Result<String, (String, String)> {
    use std::io::Read;
    let limit = super::loader::MAX_FILE_BYTES;
    let f = std::fs::File::open(p).map_err(|e| {
        (
            format!("cannot read included template `{}`: {e}", p.display()),
            "check the file's permissions".to_string(),
        )
    })?;
    let mut buf = Vec::new();
    f.take(limit + 1).read_to_end(&mut buf).map_err(|e| {
        (
            format!("cannot read included template `{}`: {e}", p.display()),
            "check the file's permissions".to_string(),
        )
    })?;
    if buf.len() as u64 > limit {
        return Err((
            format!(
                "included template `{}` is above the {} MiB limit of test files",
                p.display(),
                limit / (1024 * 1024)
            ),
            "include only templates; keep data out of them".into(),
        ));
    }
    String::from_utf8(buf).map_err(|_| {
        (
            format!("included template `{}` is not valid UTF-8", p.display()),
            "save it as UTF-8".into(),
        )
    })
}

/// A cycle among includes (the test file or a template reaching itself), or a chain deeper
/// than [`MAX_INCLUDE_DEPTH`]: Tera would recurse until the stack overflows.
fn cycle_or_depth(
    main: &Path,
    edges: &[Edge],
    texts: &[(PathBuf, PathBuf, String)],
) -> Option<Diagnostic> {
    // Iterative DFS with an explicit stack: the graph itself may be hostile.
    let mut on_path: Vec<&Path> = vec![main];
    let mut iters: Vec<usize> = vec![0];
    let mut done: std::collections::HashSet<&Path> = std::collections::HashSet::new();
    let at = |e: &Edge, msg: String, hint: &str| {
        let (shown, text) = texts
            .iter()
            .find(|t| t.1 == e.from)
            .map(|t| (t.0.clone(), t.2.as_str()))
            .unwrap_or((e.from.clone(), ""));
        Diagnostic::at(&shown, text, e.span.clone(), Severity::Error, msg).with_hint(hint)
    };
    while let Some(node) = on_path.last().copied() {
        let i = iters.last_mut().expect("same length as on_path");
        let next = edges.iter().filter(|e| e.from == node).nth(*i);
        *i += 1;
        match next {
            Some(e) => {
                if on_path.contains(&e.to.as_path()) {
                    return Some(at(
                        e,
                        format!(
                            "template `{}` includes itself (through a cycle of includes)",
                            e.name
                        ),
                        "an include cycle never ends: break it",
                    ));
                }
                if done.contains(e.to.as_path()) {
                    continue;
                }
                if on_path.len() >= MAX_INCLUDE_DEPTH {
                    return Some(at(
                        e,
                        format!("includes nested deeper than {MAX_INCLUDE_DEPTH} levels"),
                        "flatten the template library",
                    ));
                }
                on_path.push(e.to.as_path());
                iters.push(0);
            }
            None => {
                done.insert(node);
                on_path.pop();
                iters.pop();
            }
        }
    }
    None
}

fn find(from: &Path, name: &str, root: &Path) -> Option<PathBuf> {
    let abs = super::trust::canonical(from);
    let mut dir = abs.parent();
    while let Some(d) = dir {
        let candidate = d.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
        if d == root || !d.starts_with(root) {
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
        tera.register_function("range", super::render_guard::range);
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
        let mut out = super::render_guard::CappedWriter { buf: Vec::new() };
        super::generators::reset_seq();
        self.tera
            .render_to(&self.main, &ctx, &mut out)
            .map_err(|e| vec![render_error(path, src, &e)])?;
        String::from_utf8(out.buf).map_err(|_| {
            vec![Diagnostic::file(
                path,
                Severity::Error,
                "template output is not valid UTF-8",
            )]
        })
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
            // The first quoted name that is not a template (`Function call 'f' failed`).
            let needle = msgs.iter().find_map(|s| {
                NAME_RE
                    .captures_iter(s)
                    .map(|c| c[1].to_string())
                    .find(|n| !n.ends_with(".tera") && !n.ends_with(".toml"))
            });
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
