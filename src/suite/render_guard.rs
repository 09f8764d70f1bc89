//! Bounds on Tera rendering, so a hostile template is a located error, never an abort.
//!
//! Tera has no limits of its own: `range(end=100000000)` allocates gigabytes, a self-including
//! template or a self-recursive macro recurses until the stack overflows, nested loops run on.
//! Here rendering runs on a worker thread (kept between renders) with its own large stack and
//! a deadline; `range` draws from a per-render item budget; output goes through a capped
//! writer; and the shapes that recurse without bound (include cycles, recursive macros, deeply
//! nested tags) are refused before Tera parses anything.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, LazyLock};
use std::time::{Duration, Instant};

use regex::Regex;
use tera::{Error, Value};

use super::diagnostic::{Diagnostic, Severity};

/// Rendered output above this is refused (the test-file limit: the output is a test file).
pub const MAX_RENDER_BYTES: usize = super::loader::MAX_FILE_BYTES as usize;
/// Items all `range()` calls of one render may produce together.
pub const MAX_RANGE_ITEMS: u64 = 1_000_000;
/// Wall-clock limit of one render (compile included).
pub const RENDER_DEADLINE: Duration = Duration::from_secs(10);
/// Stack of the render worker: deep but legitimate nesting fits; the memory is only reserved.
pub const RENDER_STACK_BYTES: usize = 256 * 1024 * 1024;
/// Nesting of `{% if/for/macro/... %}` blocks and of brackets inside one tag.
pub const MAX_NESTING: usize = 64;

/// Which limit stopped a render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tripped {
    Output,
    Range,
    Deadline,
}

impl Tripped {
    fn diagnostic(self, path: &Path, src: &str) -> Diagnostic {
        let (msg, hint) = match self {
            Tripped::Output => (
                format!(
                    "template output is above the {} MiB limit of test files",
                    MAX_RENDER_BYTES / (1024 * 1024)
                ),
                "a loop or an include produces far more text than a test file needs",
            ),
            Tripped::Range => (
                format!(
                    "`range()` calls of this template produce more than {MAX_RANGE_ITEMS} items"
                ),
                "loops over ranges are bounded; generate fewer steps or split the test",
            ),
            Tripped::Deadline => (
                format!(
                    "template rendering took longer than {} s and was stopped",
                    RENDER_DEADLINE.as_secs()
                ),
                "look for nested loops over large ranges",
            ),
        };
        // Tera does not say where it was; point at the first construct that can run away.
        let needle = match self {
            Tripped::Range => "range(",
            Tripped::Output | Tripped::Deadline => "{% for",
        };
        let d = match src.find(needle).or_else(|| src.find("{%")) {
            Some(i) => Diagnostic::at(path, src, i..i + needle.len(), Severity::Error, msg),
            None => Diagnostic::file(path, Severity::Error, msg),
        };
        d.with_hint(hint)
    }
}

/// Limits of the render running on this thread.
struct Budget {
    deadline: Instant,
    range_left: u64,
    cancelled: Arc<AtomicBool>,
    tripped: Option<Tripped>,
}

thread_local! {
    static BUDGET: RefCell<Option<Budget>> = const { RefCell::new(None) };
}

/// Record a tripped limit; the returned error makes Tera unwind.
fn trip(t: Tripped) -> Error {
    BUDGET.with(|b| {
        if let Some(b) = b.borrow_mut().as_mut() {
            b.tripped.get_or_insert(t);
        }
    });
    Error::msg("render limit reached")
}

fn over_time() -> Option<Tripped> {
    BUDGET.with(|b| {
        b.borrow().as_ref().and_then(|b| {
            (b.cancelled.load(Ordering::Relaxed) || Instant::now() >= b.deadline)
                .then_some(Tripped::Deadline)
        })
    })
}

/// An error once the render is past its deadline (or cancelled): for loops inside template
/// functions, so a worker told to stop does stop.
pub(crate) fn check_deadline() -> tera::Result<()> {
    match over_time() {
        Some(t) => Err(trip(t)),
        None => Ok(()),
    }
}

/// Tera's `range` (same arguments) drawing from the render's item budget.
pub(crate) fn range(args: &HashMap<String, Value>) -> tera::Result<Value> {
    let num = |k: &str, default: Option<u64>| -> tera::Result<u64> {
        match args.get(k) {
            Some(v) => v.as_u64().ok_or_else(|| {
                Error::msg(format!(
                    "Function `range` received {k}={v} but `{k}` can only be a non-negative integer"
                ))
            }),
            None => default.ok_or_else(|| {
                Error::msg(format!(
                    "Function `range` was called without a `{k}` argument"
                ))
            }),
        }
    };
    let start = num("start", Some(0))?;
    let end = num("end", None)?;
    let step = num("step_by", Some(1))?;
    if step == 0 {
        return Err(Error::msg("Function `range` received step_by=0"));
    }
    if start > end {
        return Err(Error::msg(
            "Function `range` was called with a `start` argument greater than the `end` one",
        ));
    }
    let n = (end - start).div_ceil(step);
    if let Some(t) = over_time() {
        return Err(trip(t));
    }
    let ok = BUDGET.with(|b| match b.borrow_mut().as_mut() {
        Some(b) if b.range_left >= n => {
            b.range_left -= n;
            true
        }
        Some(_) => false,
        None => n <= MAX_RANGE_ITEMS,
    });
    if !ok {
        return Err(trip(Tripped::Range));
    }
    Ok(Value::Array(
        (0..n).map(|i| Value::from(start + i * step)).collect(),
    ))
}

/// The render's output, refused past [`MAX_RENDER_BYTES`] and past the deadline.
pub(crate) struct CappedWriter {
    pub buf: Vec<u8>,
}

impl std::io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > MAX_RENDER_BYTES {
            trip(Tripped::Output);
            return Err(std::io::Error::other("render output limit"));
        }
        if let Some(t) = over_time() {
            trip(t);
            return Err(std::io::Error::other("render deadline"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Run `f` (a compile and render) on a worker thread with a large stack, a deadline and a
/// fresh budget. A tripped limit, a missed deadline or a panic becomes a diagnostic about
/// `path`; on a missed deadline the worker is told to stop at its next `range` call or write.
pub(crate) fn bounded<T, F>(path: &Path, src: &str, f: F) -> Result<T, Vec<Diagnostic>>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Vec<Diagnostic>> + Send + 'static,
{
    let cancelled = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let flag = cancelled.clone();
    let deadline = Instant::now() + RENDER_DEADLINE;
    let job: Job = Box::new(move || {
        BUDGET.with(|b| {
            *b.borrow_mut() = Some(Budget {
                deadline,
                range_left: MAX_RANGE_ITEMS,
                cancelled: flag,
                tripped: None,
            })
        });
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let tripped = BUDGET.with(|b| b.borrow_mut().take().and_then(|b| b.tripped));
        // The receiver may have given up (deadline): nothing to do then.
        let _ = tx.send((out, tripped));
    });
    if let Err(e) = workers::submit(job) {
        return Err(vec![Diagnostic::file(
            path,
            Severity::Error,
            format!("cannot start the template renderer: {e}"),
        )]);
    }
    match rx.recv_timeout(RENDER_DEADLINE + Duration::from_millis(100)) {
        Ok((_, Some(t))) => Err(vec![t.diagnostic(path, src)]),
        Ok((Ok(r), None)) => r,
        Ok((Err(_), None)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(vec![Diagnostic::file(
                path,
                Severity::Error,
                "template rendering failed unexpectedly",
            )
            .with_hint(
                "please report this template to the clnrm maintainers",
            )])
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            cancelled.store(true, Ordering::Relaxed);
            Err(vec![Tripped::Deadline.diagnostic(path, src)])
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Render workers: threads with the large render stack, kept between renders. Starting one
/// costs about as much as a small render (a 256 MiB stack mapping, thread setup), which showed
/// as a third more time to validate 1,000 files, one in ten a template. A worker that missed
/// its deadline finishes at its next budget check and comes back; past [`MAX_IDLE`] idle
/// workers, one that comes back ends instead.
mod workers {
    use std::sync::{mpsc, Mutex};

    use super::{Job, RENDER_STACK_BYTES};

    const MAX_IDLE: usize = 16;

    static IDLE: Mutex<Vec<mpsc::Sender<Job>>> = Mutex::new(Vec::new());

    fn idle() -> std::sync::MutexGuard<'static, Vec<mpsc::Sender<Job>>> {
        IDLE.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `job` on an idle worker, or on a new one.
    pub(super) fn submit(mut job: Job) -> std::io::Result<()> {
        loop {
            let Some(worker) = idle().pop() else { break };
            match worker.send(job) {
                Ok(()) => return Ok(()),
                // That worker ended (it cannot, short of a panic outside a job): next one.
                Err(mpsc::SendError(back)) => job = back,
            }
        }
        let (tx, rx) = mpsc::channel::<Job>();
        let me = tx.clone();
        std::thread::Builder::new()
            .name("clnrm-render".into())
            .stack_size(RENDER_STACK_BYTES)
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                    let mut idle = idle();
                    if idle.len() >= MAX_IDLE {
                        return;
                    }
                    idle.push(me.clone());
                }
            })?;
        tx.send(job)
            .map_err(|_| std::io::Error::other("render worker ended at start"))
    }
}

static BLOCK_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{%-?\s*(end)?(if|for|macro|block|filter|raw)\b").expect("static regex is valid")
});
static TAG_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)\{\{.*?\}\}|\{%.*?%\}").expect("static regex is valid"));
static MACRO_DEF_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{%-?\s*macro\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(").expect("static regex is valid")
});
static MACRO_END_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{%-?\s*endmacro\b").expect("static regex is valid"));
static IMPORT_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"\{%-?\s*import\s+["']([^"']+)["']\s+as\s+([A-Za-z_][A-Za-z0-9_]*)"#)
        .expect("static regex is valid")
});
static CALL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z_][A-Za-z0-9_]*)::([A-Za-z_][A-Za-z0-9_]*)\s*\(")
        .expect("static regex is valid")
});

/// One template text to check: its Tera name, the file to point at, and the text.
pub(crate) struct Text<'a> {
    pub name: &'a str,
    pub path: PathBuf,
    pub text: &'a str,
}

/// Refuse what Tera would recurse on without bound: `{% %}` blocks or brackets nested deeper
/// than [`MAX_NESTING`] (its parser recurses per level), and macros that call themselves,
/// directly or through other macros (its renderer has no depth limit).
pub(crate) fn check_shapes(texts: &[Text<'_>]) -> Result<(), Vec<Diagnostic>> {
    let mut diags = Vec::new();
    for t in texts {
        if let Some(d) = nesting(t) {
            diags.push(d);
        }
    }
    if diags.is_empty() {
        if let Some(d) = macro_cycle(texts) {
            diags.push(d);
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(diags)
    }
}

fn nesting(t: &Text<'_>) -> Option<Diagnostic> {
    let too_deep = |span: Range<usize>, what: &str| {
        Diagnostic::at(
            &t.path,
            t.text,
            span,
            Severity::Error,
            format!("template {what} nested deeper than {MAX_NESTING} levels"),
        )
        .with_hint("flatten the template")
    };
    let mut depth = 0usize;
    for c in BLOCK_RE.captures_iter(t.text) {
        let m = c.get(0).expect("group 0 always participates");
        if c.get(1).is_some() {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
            if depth > MAX_NESTING {
                return Some(too_deep(m.range(), "blocks"));
            }
        }
    }
    for tag in TAG_RE.find_iter(t.text) {
        let mut d = 0usize;
        for (i, b) in tag.as_str().bytes().enumerate() {
            match b {
                b'(' | b'[' | b'{' => {
                    d += 1;
                    if d > MAX_NESTING + 2 {
                        let at = tag.start() + i;
                        return Some(too_deep(at..at + 1, "brackets"));
                    }
                }
                b')' | b']' | b'}' => d = d.saturating_sub(1),
                _ => {}
            }
        }
    }
    None
}

/// Node of the macro call graph: (template name, macro name).
type MacroId = (String, String);

fn macro_cycle(texts: &[Text<'_>]) -> Option<Diagnostic> {
    // Edges with the call site (text index and span) for the diagnostic.
    let mut edges: BTreeMap<MacroId, Vec<(MacroId, usize, Range<usize>)>> = BTreeMap::new();
    for (ti, t) in texts.iter().enumerate() {
        let imports: HashMap<&str, &str> = IMPORT_RE
            .captures_iter(t.text)
            .map(|c| {
                (
                    c.get(2).map_or("", |m| m.as_str()),
                    c.get(1).map_or("", |m| m.as_str()),
                )
            })
            .collect();
        for def in MACRO_DEF_RE.captures_iter(t.text) {
            let whole = def.get(0).expect("group 0 always participates");
            let body_end = MACRO_END_RE
                .find_at(t.text, whole.end())
                .map_or(t.text.len(), |m| m.start());
            let body = &t.text[whole.end()..body_end];
            let me = (t.name.to_string(), def[1].to_string());
            let list = edges.entry(me).or_default();
            for call in CALL_RE.captures_iter(body) {
                let ns = &call[1];
                let file = if ns == "self" {
                    Some(t.name)
                } else {
                    imports.get(ns).copied()
                };
                if let Some(file) = file {
                    let m = call.get(0).expect("group 0 always participates");
                    let at = whole.end() + m.start();
                    list.push((
                        (file.to_string(), call[2].to_string()),
                        ti,
                        at..at + m.len(),
                    ));
                }
            }
        }
    }
    // Iterative DFS (the graph comes from the file).
    let mut done: std::collections::BTreeSet<&MacroId> = Default::default();
    for start in edges.keys() {
        if done.contains(start) {
            continue;
        }
        let mut path: Vec<&MacroId> = vec![start];
        let mut next: Vec<usize> = vec![0];
        while let Some(node) = path.last().copied() {
            let i = next.last_mut().expect("same length as path");
            let e = edges.get(node).and_then(|l| l.get(*i));
            *i += 1;
            match e {
                Some((to, ti, span)) => {
                    if path.contains(&to) {
                        let t = &texts[*ti];
                        return Some(
                            Diagnostic::at(
                                &t.path,
                                t.text,
                                span.clone(),
                                Severity::Error,
                                format!(
                                    "macro `{}` calls itself (directly or through other macros)",
                                    to.1
                                ),
                            )
                            .with_hint(
                                "recursive macros are refused: Tera has no depth limit, so a recursion that does not stop would crash; unroll it",
                            ),
                        );
                    }
                    if !done.contains(to) && edges.contains_key(to) {
                        let key = edges.get_key_value(to).map(|(k, _)| k).expect("checked");
                        path.push(key);
                        next.push(0);
                    }
                }
                None => {
                    done.insert(node);
                    path.pop();
                    next.pop();
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text<'a>(name: &'a str, t: &'a str) -> Text<'a> {
        Text {
            name,
            path: PathBuf::from(name),
            text: t,
        }
    }

    #[test]
    fn recursive_macros_are_found_directly_and_through_imports() {
        let a = "{% macro m(n) %}{{ self::m(n=n) }}{% endmacro m %}";
        let e = check_shapes(&[text("a", a)]).expect_err("recursive");
        assert_eq!(
            e[0].message,
            "macro `m` calls itself (directly or through other macros)"
        );
        let b = "{% import \"c\" as c %}{% macro x() %}{{ c::y() }}{% endmacro %}";
        let c = "{% import \"b\" as b %}{% macro y() %}{{ b::x() }}{% endmacro %}";
        assert!(check_shapes(&[text("b", b), text("c", c)]).is_err());
        let ok = "{% macro x() %}{{ self::y() }}{% endmacro %}{% macro y() %}y{% endmacro %}";
        assert!(check_shapes(&[text("ok", ok)]).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = "{% if true %}".repeat(MAX_NESTING + 1);
        let e = check_shapes(&[text("d", &deep)]).expect_err("deep");
        assert!(e[0].message.contains("blocks nested deeper"), "{}", e[0]);
        let parens = format!("{{{{ {}1{} }}}}", "(".repeat(100), ")".repeat(100));
        assert!(check_shapes(&[text("p", &parens)]).is_err());
        let fine = "{% for i in range(end=3) %}{% if i %}{{ (i + 1) }}{% endif %}{% endfor %}";
        assert!(check_shapes(&[text("f", fine)]).is_ok());
    }

    #[test]
    fn range_keeps_tera_semantics_within_the_budget() {
        let args = |v: &[(&str, u64)]| -> HashMap<String, Value> {
            v.iter()
                .map(|(k, n)| (k.to_string(), Value::from(*n)))
                .collect()
        };
        assert_eq!(
            range(&args(&[("end", 5)])).expect("ok"),
            Value::from(vec![0, 1, 2, 3, 4])
        );
        assert_eq!(
            range(&args(&[("start", 1), ("end", 10), ("step_by", 3)])).expect("ok"),
            Value::from(vec![1, 4, 7])
        );
        assert!(range(&args(&[("end", MAX_RANGE_ITEMS + 1)])).is_err());
        assert!(range(&args(&[("end", 3), ("step_by", 0)])).is_err());
    }
}
