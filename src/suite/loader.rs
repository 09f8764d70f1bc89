//! The one loading pipeline (read -> render -> parse -> normalise -> validate) with a
//! content-hash cache, parallel suite loading and cross-file checks.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use sha2::{Digest, Sha256};
use toml::de::DeTable;

use super::diagnostic::{Diagnostic, Severity};
use super::model::{Dialect, TestSpec};
use super::reader::Ctx;
use super::template::{self, Compiled, ResolvedVar};
use super::{render_guard, schema, trust, upstream};

/// Test files above this size are rejected before being read whole (a test file is a few KB;
/// anything this big is a mistake, e.g. a log saved under the wrong name).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Files kept in the cache before the least recently used quarter is dropped.
pub const CACHE_CAPACITY: usize = 4096;

/// Inputs that change what a file renders to.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--var k=v` (highest precedence).
    pub cli_vars: BTreeMap<String, String>,
    /// `CLNRM_VAR_<NAME>` values keyed by `<NAME>` as written in the environment.
    pub env_vars: BTreeMap<String, String>,
    /// `--freeze-clock` RFC 3339 instant (overrides `[determinism] freeze_clock`).
    pub freeze_clock: Option<String>,
    /// Highest directory searched for included templates (the discovery root); `None` stops at
    /// the first directory holding `.git` or `.clnrm`.
    pub include_root: Option<PathBuf>,
    /// Repository root: mounts and includes of a test file stay below it. `None`: the nearest
    /// folder above each file holding `.git` or `.clnrm` (else the file's own folder).
    pub repo_root: Option<PathBuf>,
    /// Host paths mounts may reach outside the repository (`allow_mounts` in
    /// `.clnrm/config.toml`, `--allow-mount`), absolute.
    pub allow_mounts: Vec<PathBuf>,
    /// Host mounts marked `:rw` are allowed (`allow_rw_mounts`, `--allow-rw-mounts`); else a
    /// test file's host mounts are all read-only and `:rw` is refused.
    pub allow_rw_mounts: bool,
    /// Image of the default service that runs steps naming no service (`--default-image`,
    /// else `default_image` in `.clnrm/config.toml`).
    pub default_image: Option<String>,
}

impl LoadOptions {
    /// Options with `CLNRM_VAR_*` read from the process environment.
    pub fn from_env(
        cli_vars: BTreeMap<String, String>,
        freeze_clock: Option<String>,
    ) -> LoadOptions {
        let env_vars = std::env::vars()
            .filter_map(|(k, v)| k.strip_prefix("CLNRM_VAR_").map(|n| (n.to_string(), v)))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        LoadOptions {
            cli_vars,
            env_vars,
            freeze_clock,
            ..LoadOptions::default()
        }
    }

    /// Check `freeze_clock` is an RFC 3339 instant (call before loading: a usage error).
    pub fn validate(&self) -> Result<(), String> {
        match &self.freeze_clock {
            Some(c) if chrono::DateTime::parse_from_rfc3339(c).is_err() => Err(format!(
                "`--freeze-clock {c}` is not an RFC 3339 instant (e.g. `2024-01-01T00:00:00Z`)"
            )),
            _ => Ok(()),
        }
    }
}

/// One loaded, valid file.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub spec: TestSpec,
    pub warnings: Vec<Diagnostic>,
    /// Templates the file includes (absolute paths), for watch mode.
    pub includes: Vec<PathBuf>,
    /// Line of the test name (`[meta] name`).
    pub name_line: u32,
}

/// Output of `clnrm render`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub vars: Vec<ResolvedVar>,
}

/// Every file of a suite: valid tests sorted by path, and all diagnostics.
#[derive(Debug, Clone, Default)]
pub struct Suite {
    pub tests: Vec<TestSpec>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    pub includes: BTreeMap<PathBuf, Vec<PathBuf>>,
}

type LoadResult = Result<Loaded, Vec<Diagnostic>>;

struct Entry {
    key: [u8; 32],
    includes: Vec<PathBuf>,
    /// Shared so a cache hit costs a reference count, not a deep copy, for `load_shared`.
    result: Arc<LoadResult>,
    /// The name diagnostic anchor (a diagnostic with message left empty) for cross-file checks.
    name_anchor: Option<Diagnostic>,
    compiled: Option<[u8; 32]>,
    last_used: u64,
}

/// Loads test files; cheap to share across threads (`&Loader` from rayon workers).
pub struct Loader {
    opts: LoadOptions,
    fingerprint: [u8; 32],
    files: Mutex<HashMap<PathBuf, Entry>>,
    compiled: Mutex<HashMap<[u8; 32], Arc<Compiled>>>,
    tick: AtomicU64,
    /// Repository root per folder: found once per folder, not once per file (the walk up is
    /// a few stat calls a level, which showed in the time to validate 1,000 files).
    roots: Mutex<HashMap<PathBuf, PathBuf>>,
}

impl Loader {
    pub fn new(opts: LoadOptions) -> Loader {
        let mut h = Sha256::new();
        for (k, v) in opts.cli_vars.iter().chain(&opts.env_vars) {
            h.update(format!("{}={}\0", k.len(), k));
            h.update(format!("{}={}\0", v.len(), v));
        }
        h.update(opts.freeze_clock.as_deref().unwrap_or("-"));
        for p in opts.repo_root.iter().chain(&opts.allow_mounts) {
            h.update(b"\0");
            h.update(p.as_os_str().as_encoded_bytes());
        }
        h.update(if opts.allow_rw_mounts { "\0rw" } else { "\0ro" });
        h.update(b"\0");
        h.update(opts.default_image.as_deref().unwrap_or("-"));
        Loader {
            fingerprint: h.finalize().into(),
            opts,
            files: Mutex::default(),
            roots: Mutex::default(),
            compiled: Mutex::default(),
            tick: AtomicU64::new(0),
        }
    }

    /// read -> render (when `.tera`) -> parse -> normalise -> validate one file. An unchanged
    /// file (same bytes, same included templates, same options) costs a read, a hash and a lookup.
    pub fn load(&self, path: &Path) -> LoadResult {
        (*self.entry(path).0).clone()
    }

    /// Like [`Loader::load`] without copying the result out of the cache: a cache hit costs a
    /// read, a hash and a reference count, whatever the size of the file (watch mode).
    pub fn load_shared(&self, path: &Path) -> Arc<LoadResult> {
        self.entry(path).0
    }

    /// The rendered TOML and the resolved variables with their sources (for `clnrm render`).
    pub fn render(&self, path: &Path) -> Result<Rendered, Vec<Diagnostic>> {
        let bytes = read_limited(path)?;
        let text = utf8(path, &bytes)?;
        let r = self.render_text(path, text)?;
        Ok(Rendered {
            text: r.text,
            vars: r.vars,
        })
    }

    /// Load many files on rayon; sorted by path; test names checked unique across files.
    pub fn load_suite(&self, paths: &[PathBuf]) -> Suite {
        // The copy out of the cache happens here, on the workers, not in the sequential merge.
        let loaded: Vec<_> = paths
            .par_iter()
            .map(|p| (p.clone(), owned(self.entry(p))))
            .collect();
        suite(loaded)
    }

    /// Same as [`Loader::load_suite`] on the calling thread only (benchmark baseline).
    pub fn load_suite_sequential(&self, paths: &[PathBuf]) -> Suite {
        suite(
            paths
                .iter()
                .map(|p| (p.clone(), owned(self.entry(p))))
                .collect(),
        )
    }

    /// Drop cache entries of files not in `keep` (watch mode bounds memory with this).
    pub fn retain(&self, keep: &[PathBuf]) {
        let mut files = self.lock_files();
        files.retain(|p, _| keep.contains(p));
        let live: Vec<[u8; 32]> = files.values().filter_map(|e| e.compiled).collect();
        drop(files);
        self.compiled
            .lock()
            .expect("cache lock is never poisoned by a panic in it")
            .retain(|k, _| live.contains(k));
    }

    /// Number of files currently cached.
    pub fn cached_files(&self) -> usize {
        self.lock_files().len()
    }

    fn entry(&self, path: &Path) -> SharedOut {
        let bytes = match read_limited(path) {
            Ok(b) => b,
            Err(d) => return (Arc::new(Err(d)), Vec::new(), None),
        };
        let tick = self.tick.fetch_add(1, Ordering::Relaxed);
        // Hash outside the lock so parallel loads of cached files do not serialise on it.
        let known = self
            .lock_files()
            .get(path)
            .map(|e| (e.key, e.includes.clone()));
        if let Some((stored, includes)) = known {
            if stored == self.key(&bytes, &includes) {
                if let Some(e) = self.lock_files().get_mut(path).filter(|e| e.key == stored) {
                    e.last_used = tick;
                    return (e.result.clone(), e.includes.clone(), e.name_anchor.clone());
                }
            }
        }
        let work = self.load_uncached(path, &bytes);
        let result = Arc::new(work.result);
        let out = (
            result.clone(),
            work.includes.clone(),
            work.name_anchor.clone(),
        );
        if work.cacheable {
            let entry = Entry {
                key: self.key(&bytes, &work.includes),
                includes: work.includes,
                result,
                name_anchor: work.name_anchor,
                compiled: work.compiled,
                last_used: tick,
            };
            let mut files = self.lock_files();
            files.insert(path.to_path_buf(), entry);
            if files.len() > CACHE_CAPACITY {
                let mut ages: Vec<u64> = files.values().map(|e| e.last_used).collect();
                ages.sort_unstable();
                let cutoff = ages[ages.len() / 4];
                files.retain(|_, e| e.last_used > cutoff);
            }
        }
        out
    }

    fn lock_files(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Entry>> {
        self.files
            .lock()
            .expect("cache lock is never poisoned by a panic in it")
    }

    fn key(&self, bytes: &[u8], includes: &[PathBuf]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.fingerprint);
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
        for inc in includes {
            h.update(inc.as_os_str().as_encoded_bytes());
            match std::fs::read(inc) {
                Ok(b) => h.update(Sha256::digest(&b)),
                Err(_) => h.update(b"missing"),
            }
        }
        h.finalize().into()
    }

    fn render_text(&self, path: &Path, text: &str) -> Result<RenderOut, Vec<Diagnostic>> {
        let pre = template::prepass(path, text)?;
        let (vars, resolved) =
            template::resolve_vars(&pre.vars, &self.opts.env_vars, &self.opts.cli_vars);
        if !is_template(path) && !template::looks_like_template(text) {
            return Ok(RenderOut {
                text: text.to_string(),
                vars: resolved,
                includes: Vec::new(),
                compiled: None,
                cacheable: true,
            });
        }
        let root = self.repo_root(path);
        let sources =
            template::collect_includes(path, text, self.opts.include_root.as_deref(), &root)?;
        let freeze = self.opts.freeze_clock.clone().or(pre.freeze_clock);
        let seed = pre.seed.unwrap_or(0);
        let mut h = Sha256::new();
        h.update(text);
        for s in &sources {
            h.update(format!("\0{}\0{}\0", s.name, s.text.len()));
            h.update(&s.text);
        }
        h.update(format!("\0{}\0{seed}", freeze.as_deref().unwrap_or("-")));
        let ckey: [u8; 32] = h.finalize().into();
        let cached = self
            .compiled
            .lock()
            .expect("cache lock is never poisoned by a panic in it")
            .get(&ckey)
            .cloned();
        let was_cached = cached.is_some();
        let includes: Vec<PathBuf> = sources.iter().filter_map(|s| s.path.clone()).collect();
        let (job_path, job_text) = (path.to_path_buf(), text.to_string());
        // Compile and render on a worker with its own stack, a deadline and budgets: a hostile
        // template is a located error, never an abort of the whole process.
        let (compiled, rendered) = render_guard::bounded(path, text, move || {
            let c = match cached {
                Some(c) => c,
                None => {
                    let mut texts = vec![render_guard::Text {
                        name: job_path
                            .file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or("main"),
                        path: job_path.clone(),
                        text: &job_text,
                    }];
                    texts.extend(sources.iter().map(|s| render_guard::Text {
                        name: &s.name,
                        path: s.path.clone().unwrap_or_else(|| PathBuf::from(&s.name)),
                        text: &s.text,
                    }));
                    render_guard::check_shapes(&texts)?;
                    Arc::new(Compiled::new(&job_path, &job_text, &sources, freeze, seed)?)
                }
            };
            let r = c.render(&job_path, &job_text, &vars)?;
            Ok((c, r))
        })?;
        if !was_cached {
            let mut map = self
                .compiled
                .lock()
                .expect("cache lock is never poisoned by a panic in it");
            if map.len() >= CACHE_CAPACITY {
                map.clear();
            }
            map.insert(ckey, compiled.clone());
        }
        Ok(RenderOut {
            text: rendered,
            vars: resolved,
            includes,
            compiled: Some(ckey),
            cacheable: !compiled.used_real_clock(),
        })
    }

    fn repo_root(&self, path: &Path) -> PathBuf {
        let folder = path.parent().unwrap_or(Path::new("")).to_path_buf();
        if let Some(root) = self.roots.lock().expect("roots lock").get(&folder) {
            return root.clone();
        }
        let root = trust::repo_root(path, self.opts.repo_root.as_deref());
        self.roots
            .lock()
            .expect("roots lock")
            .insert(folder, root.clone());
        root
    }

    fn load_uncached(&self, path: &Path, bytes: &[u8]) -> Work {
        let mut w = Work {
            result: Err(Vec::new()),
            includes: Vec::new(),
            name_anchor: None,
            compiled: None,
            cacheable: true,
        };
        let text = match utf8(path, bytes) {
            Ok(t) => t,
            Err(d) => {
                w.result = Err(d);
                return w;
            }
        };
        if text.trim().is_empty() {
            w.result = Err(vec![Diagnostic::file(
                path,
                Severity::Error,
                "empty test file",
            )
            .with_hint(
                "a test needs `[meta]` with `name` and at least one `[[scenario]]`",
            )]);
            return w;
        }
        let r = match self.render_text(path, text) {
            Ok(r) => r,
            Err(d) => {
                // A template that failed to render does not know its includes, so its
                // cache key would miss a fix made in one of them: do not cache it.
                w.cacheable = !is_template(path) && !template::looks_like_template(text);
                w.result = Err(d);
                return w;
            }
        };
        w.includes = r.includes;
        w.compiled = r.compiled;
        w.cacheable = r.cacheable;
        let rendered = r.text;
        let mut ctx = Ctx::new(path, &rendered);
        ctx.repo_root = Some(self.repo_root(path));
        ctx.allow_mounts = self
            .opts
            .allow_mounts
            .iter()
            .map(|p| trust::canonical(p))
            .collect();
        ctx.allow_rw_mounts = self.opts.allow_rw_mounts;
        ctx.default_image = self.opts.default_image.clone();
        if is_template(path) || rendered != text {
            ctx.rendered_note = Some(format!(
                "line numbers refer to the rendered TOML: see `clnrm render {}`",
                path.display()
            ));
        }
        let (mut doc, errors) = DeTable::parse_recoverable(&rendered);
        if !errors.is_empty() {
            let mut dup_headers = Vec::new();
            for e in errors {
                toml_error(&mut ctx, &e, &mut dup_headers);
            }
            w.result = Err(ctx.diags);
            return w;
        }
        let normalised = upstream::normalise(&mut ctx, doc.get_mut());
        ctx.upstream = normalised.upstream;
        let built = schema::build_current(&mut ctx, doc.get_ref(), doc.span());
        if let Some(b) = &built {
            super::names::check(&mut ctx, &b.spec, &b.name_span);
        }
        match built {
            Some(mut b) if !ctx.has_errors() => {
                if normalised.upstream {
                    b.spec.dialect = Dialect::Upstream;
                    upstream::apply_limits(&mut b.spec.services, &normalised.limits);
                }
                b.spec.content_hash = hex::encode(Sha256::digest(rendered.as_bytes()));
                if let Some(c) = &self.opts.freeze_clock {
                    b.spec.determinism.freeze_clock = Some(c.clone());
                }
                w.name_anchor = Some(Diagnostic::at(
                    path,
                    &rendered,
                    b.name_span.clone(),
                    Severity::Error,
                    "",
                ));
                ctx.diags.sort_by_key(|d| (d.line, d.column));
                w.result = Ok(Loaded {
                    spec: b.spec,
                    warnings: ctx.diags,
                    includes: w.includes.clone(),
                    name_line: b.name_line,
                });
            }
            _ => {
                ctx.diags.retain(Diagnostic::is_error);
                // Builders report per table; users read top to bottom.
                ctx.diags.sort_by_key(|d| (d.line, d.column));
                w.result = Err(ctx.diags);
            }
        }
        w
    }
}

struct RenderOut {
    text: String,
    vars: Vec<ResolvedVar>,
    includes: Vec<PathBuf>,
    compiled: Option<[u8; 32]>,
    cacheable: bool,
}

struct Work {
    result: LoadResult,
    includes: Vec<PathBuf>,
    name_anchor: Option<Diagnostic>,
    compiled: Option<[u8; 32]>,
    cacheable: bool,
}

fn is_template(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "tera")
}

/// A file's outcome as `entry` returns it: result, includes, and the test-name anchor.
type SharedOut = (Arc<LoadResult>, Vec<PathBuf>, Option<Diagnostic>);
type EntryOut = (LoadResult, Vec<PathBuf>, Option<Diagnostic>);

fn owned((r, i, a): SharedOut) -> EntryOut {
    ((*r).clone(), i, a)
}

fn suite(mut loaded: Vec<(PathBuf, EntryOut)>) -> Suite {
    loaded.sort_by(|a, b| a.0.cmp(&b.0));
    let mut s = Suite::default();
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (path, (result, includes, anchor)) in loaded {
        s.includes.insert(path.clone(), includes);
        match result {
            Ok(l) => {
                s.warnings.extend(l.warnings);
                if let Some(first) = names.get(&l.spec.name) {
                    let mut d =
                        anchor.unwrap_or_else(|| Diagnostic::file(&path, Severity::Error, ""));
                    d.message = format!(
                        "test name `{}` is also used by `{}`",
                        l.spec.name,
                        first.display()
                    );
                    d.hint = Some(format!(
                        "names must be unique in the suite: rename the test in `{}` or `{}`",
                        first.display(),
                        path.display()
                    ));
                    s.errors.push(d);
                } else {
                    names.insert(l.spec.name.clone(), path);
                    s.tests.push(l.spec);
                }
            }
            Err(d) => s.errors.extend(d),
        }
    }
    s
}

/// Read at most `MAX_FILE_BYTES + 1` bytes, so a huge file is rejected without being loaded.
fn read_limited(path: &Path) -> Result<Vec<u8>, Vec<Diagnostic>> {
    let err = |m: String| vec![Diagnostic::file(path, Severity::Error, m)];
    let f = std::fs::File::open(path).map_err(|e| err(format!("cannot read test file: {e}")))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let too_big = |n: u64| {
        vec![Diagnostic::file(
            path,
            Severity::Error,
            format!(
                "test file is {:.1} MiB, above the {} MiB limit",
                n as f64 / (1024.0 * 1024.0),
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        )
        .with_hint("split it into several test files, or move large data out of it")]
    };
    if len > MAX_FILE_BYTES {
        return Err(too_big(len));
    }
    let mut buf = Vec::with_capacity(len as usize);
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(format!("cannot read test file: {e}")))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(buf.len() as u64));
    }
    Ok(buf)
}

fn utf8<'b>(path: &Path, bytes: &'b [u8]) -> Result<&'b str, Vec<Diagnostic>> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        // The valid prefix is identical in the lossy copy, so the offset still points right.
        let lossy = String::from_utf8_lossy(bytes);
        vec![Diagnostic::at(
            path,
            &lossy,
            at..at + 1,
            Severity::Error,
            format!(
                "test file is not valid UTF-8 (byte 0x{:02X} at offset {at})",
                bytes[at]
            ),
        )
        .with_hint("save the file as UTF-8")]
    })
}

/// TOML syntax errors, with the duplicate-table case spelled out.
/// `dup_headers` holds the start of each table already reported as declared twice: the keys
/// repeated inside it are consequences, not separate mistakes.
fn toml_error(ctx: &mut Ctx<'_>, e: &toml::de::Error, dup_headers: &mut Vec<usize>) {
    let span = e.span().unwrap_or(0..0);
    if e.message() == "duplicate key" {
        let header_start = ctx.src[..span.start.min(ctx.src.len())]
            .rfind("\n[")
            .map_or(0, |i| i + 1);
        let start = ctx.src[..span.start.min(ctx.src.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line = ctx.src[start..].lines().next().unwrap_or("").trim();
        let key = ctx.src.get(span.clone()).unwrap_or("?").to_string();
        if line.starts_with('[') {
            let header = line.split('#').next().unwrap_or(line).trim().to_string();
            let is_service = header.starts_with("[service.") || header.starts_with("[services.");
            let (msg, hint) = if is_service {
                (
                    format!("duplicate service id `{key}`: `{header}` is declared twice"),
                    "service ids must be unique within a test: rename one or merge the two tables",
                )
            } else {
                (
                    format!("table `{header}` is declared twice"),
                    "merge the two tables into one",
                )
            };
            dup_headers.push(header_start);
            ctx.error(span, msg, Some(hint.into()));
        } else if dup_headers.contains(&header_start) {
            // Already explained by the duplicate table.
        } else {
            ctx.error(
                span,
                format!("duplicate key `{key}`"),
                Some("a key may be set only once per table".into()),
            );
        }
        return;
    }
    ctx.error(span, format!("invalid TOML: {}", e.message()), None);
}
