//! `clnrm run --watch` / `clnrm dev`: the local loop. Watch the suite (inotify), wait out the
//! adaptive debounce, reload only what changed (sha256), re-run the affected tests on warm
//! environments, print the result and one latency line per cycle.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use notify::event::{CreateKind, EventKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::pipeline::{self, Signals};
use crate::cli::RunArgs;
use crate::exit;
use crate::plan::{Plan, Selection};
use crate::report::{Outputs, Printer};
use crate::results::{BackendKind, TestResult};
use crate::runner::{Backend, Cancel, RunHeader, RunOptions};
use crate::settings::{BackendChoice, Settings};
use crate::suite::{discover, Loader};
use crate::telemetry::Telemetry;
use crate::watch::{
    describe, is_interesting, latency_line, Burst, Changes, Debounce, Timing, WatchSet,
};

/// One filesystem notification, stamped when it reached us.
type Msg = (Instant, SystemTime, notify::Result<notify::Event>);

pub fn watch(settings: &Settings, args: &RunArgs) -> u8 {
    let printer = settings.printer;
    if settings.selection.shard.is_some() {
        printer.warn("`--shard` is ignored in watch mode: every watched test can run");
    }
    let mut canonical = Vec::new();
    for r in &settings.paths {
        // Events carry absolute paths built from the watched path: compare like with like.
        match std::fs::canonicalize(r) {
            Ok(c) => canonical.push(c),
            Err(e) => {
                printer.error(format!("cannot watch `{}`: {e}", r.display()), None);
                return exit::USAGE;
            }
        }
    }
    let rt = match pipeline::runtime(printer) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let session = Session {
        loader: Loader::new(settings.load.clone()),
        set: WatchSet::new(canonical),
        debounce: Debounce::new(Duration::from_millis(args.debounce_ms)),
        backend: None,
        telemetry: None,
        header: pipeline::header(),
        cancel: Cancel::new(),
        extra_dirs: Vec::new(),
        args,
        settings,
        printer,
    };
    rt.block_on(session.run())
}

struct Session<'a> {
    args: &'a RunArgs,
    settings: &'a Settings,
    printer: Printer,
    loader: Loader,
    set: WatchSet,
    debounce: Debounce,
    /// Opened at the first cycle with something to run; kept for the whole session so that
    /// environments stay warm between cycles.
    backend: Option<Arc<dyn Backend>>,
    /// The session's OTLP receiver, started at the first cycle whose tests check spans (or
    /// with `--telemetry`) and kept, like the backend, for the rest of the session.
    telemetry: Option<Arc<Telemetry>>,
    header: RunHeader,
    cancel: Cancel,
    /// Folders outside the roots holding included templates (watched non-recursively).
    extra_dirs: Vec<PathBuf>,
}

impl Session<'_> {
    async fn run(mut self) -> u8 {
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let watcher = notify::recommended_watcher(move |res| {
            // The receiver is gone only when the session ends.
            let _ = tx.send((Instant::now(), SystemTime::now(), res));
        });
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                self.printer
                    .error(format!("cannot start the file watcher: {e}"), None);
                return exit::USAGE;
            }
        };
        for root in self.set.roots().to_vec() {
            let (path, mode) = if root.is_dir() {
                (root.clone(), RecursiveMode::Recursive)
            } else {
                // A single file is watched through its folder: editors replace files on save.
                let parent = root.parent().unwrap_or(Path::new("/")).to_path_buf();
                (parent, RecursiveMode::NonRecursive)
            };
            if let Err(e) = watcher.watch(&path, mode) {
                self.printer.error(
                    format!("cannot watch `{}`: {e}", path.display()),
                    Some("on Linux, raise fs.inotify.max_user_watches if the limit is reached"),
                );
                return exit::USAGE;
            }
        }
        let signals = Signals::watch(
            self.cancel.clone(),
            "ending the watch session, removing its containers",
        );

        let files = match discover(self.set.roots()) {
            Ok(f) => f,
            Err(e) => {
                self.printer.error(e.to_string(), None);
                return exit::USAGE;
            }
        };
        let shown: Vec<String> = self
            .set
            .roots()
            .iter()
            .map(|r| format!("`{}`", r.display()))
            .collect();
        self.printer.info(format!(
            "watching {} test file{} under {} (debounce {} ms); Ctrl-C to stop",
            files.len(),
            if files.len() == 1 { "" } else { "s" },
            shown.join(", "),
            self.args.debounce_ms
        ));

        let changes = self.set.detect(&files);
        let mut code = match self.cycle(0, changes, Timing::default(), None).await {
            Ok(c) => c,
            Err(c) => return self.finish(c, signals).await,
        };
        self.watch_include_dirs(&mut watcher);
        let mut n = 0;
        while self.args.max_cycles.is_none_or(|max| n < max) {
            let Some(burst) = self.next_burst(&mut rx).await else {
                break;
            };
            let debounce_end = Instant::now();
            let changes = self.set.detect(&burst.paths);
            if changes.is_empty() {
                // Same bytes (a touch, an editor's no-op save): nothing to do.
                continue;
            }
            n += 1;
            let timing = Timing {
                detect_ms: detect_ms(&burst, &changes),
                debounce_ms: Some(ms(debounce_end - burst.first)),
                load_ms: 0.0,
            };
            let start = burst.first;
            code = match self.cycle(n, changes, timing, Some(start)).await {
                Ok(c) => c,
                Err(c) => return self.finish(c, signals).await,
            };
            self.watch_include_dirs(&mut watcher);
        }
        drop(watcher);
        self.finish(code, signals).await
    }

    /// Wait for the first relevant event, then gather the burst until the debounce deadline.
    /// `None` when the session is cancelled.
    async fn next_burst(&self, rx: &mut mpsc::UnboundedReceiver<Msg>) -> Option<Burst> {
        let mut cancelled = self.cancel.subscribe();
        let mut burst: Option<Burst> = None;
        loop {
            let deadline = burst.as_ref().map(|b| self.debounce.deadline(b));
            let msg = tokio::select! {
                m = rx.recv() => m?,
                _ = cancelled.wait_for(|c| *c) => return None,
                _ = sleep_until(deadline) => return burst,
            };
            let (at, wall, res) = msg;
            let Ok(event) = res else {
                continue;
            };
            let paths = self.relevant_paths(&event);
            if paths.is_empty() {
                continue;
            }
            burst
                .get_or_insert_with(|| Burst::new(at, wall))
                .add(at, paths);
        }
    }

    /// Paths of `event` that may matter; a new folder is searched for test files (its files
    /// may have been written before the watch on it was in place).
    fn relevant_paths(&self, event: &notify::Event) -> Vec<PathBuf> {
        if event.need_rescan() {
            // The kernel queue overflowed and events were lost: compare every file by hash.
            let mut all = discover(self.set.roots()).unwrap_or_default();
            all.extend(self.set.test_files());
            all.extend(self.set.includes());
            return all;
        }
        if !is_interesting(&event.kind) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for p in &event.paths {
            let new_dir = matches!(event.kind, EventKind::Create(CreateKind::Folder))
                || (matches!(event.kind, EventKind::Create(_)) && p.is_dir());
            if new_dir && !crate::watch::is_ignored(p) {
                out.extend(discover(std::slice::from_ref(p)).unwrap_or_default());
            } else if self.set.is_relevant(p) {
                out.push(p.clone());
            }
        }
        out
    }

    /// Templates included from outside the watched roots: watch their folders too.
    fn watch_include_dirs(&mut self, watcher: &mut RecommendedWatcher) {
        let roots = self.set.roots().to_vec();
        for inc in self.set.includes() {
            if roots.iter().any(|r| r.is_dir() && inc.starts_with(r)) {
                continue;
            }
            let Some(dir) = inc.parent().map(Path::to_path_buf) else {
                continue;
            };
            if self.extra_dirs.contains(&dir) {
                continue;
            }
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => self.extra_dirs.push(dir),
                Err(e) => self
                    .printer
                    .warn(format!("cannot watch `{}`: {e}", dir.display())),
            }
        }
    }

    /// Reload what changed, run the valid affected tests, print. `Ok(code)` is this cycle's
    /// verdict; `Err(code)` ends the session (backend unavailable).
    async fn cycle(
        &mut self,
        n: u64,
        changes: Changes,
        mut timing: Timing,
        started: Option<Instant>,
    ) -> Result<u8, u8> {
        let t0 = Instant::now();
        if self.args.clear && n > 0 {
            eprint!("\x1b[2J\x1b[H");
        }
        if n > 0 {
            self.printer
                .info(format!("cycle {n}: {}", describe(&changes)));
        }
        let t_load = Instant::now();
        let reloaded = self.set.reload(&self.loader, &changes.reload);
        timing.load_ms = ms(t_load.elapsed());
        for w in &reloaded.warnings {
            eprintln!("{}", crate::secrets::terminal(&w.to_string(), false));
        }
        for e in &reloaded.errors {
            eprintln!("{}", crate::secrets::terminal(&e.to_string(), false));
        }
        let selection = Selection {
            shard: None,
            ..self.settings.selection.clone()
        };
        let plan = Plan::new(reloaded.tests, &selection, &BTreeMap::new());
        let results = if plan.tests.is_empty() {
            Vec::new()
        } else {
            let backend = self.backend(&plan).await?;
            self.run_plan(&plan, &backend).await
        };
        let code = if !reloaded.errors.is_empty() {
            exit::USAGE
        } else if results.iter().any(|t| t.status.is_failure()) {
            exit::TESTS_FAILED
        } else {
            exit::OK
        };
        // Total runs from the save (first event minus the detection delay) to now.
        let total = match started {
            Some(s) => ms(s.elapsed()) + timing.detect_ms.unwrap_or(0.0),
            None => ms(t0.elapsed()),
        };
        let line = latency_line(n, &results, reloaded.errors.len(), &timing, total);
        self.printer.info(line);
        if let Some(line) = crate::watch::published_line(&results) {
            self.printer.info(line);
        }
        let status = match code {
            exit::OK if results.is_empty() => "none",
            exit::OK => "passed",
            exit::TESTS_FAILED => "failed",
            _ => "invalid",
        };
        // One write call, so a script polling the output never reads half of this line.
        let done = format!("cycle {n} done at_ms={} status={status}\n", unix_ms());
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), done.as_bytes());
        Ok(code)
    }

    /// One cycle's run through the pipeline; the reports asked for are rewritten after it.
    async fn run_plan(&self, plan: &Plan, backend: &Arc<dyn Backend>) -> Vec<TestResult> {
        let opts = RunOptions {
            // Announcing environments ahead only helps a long queue; in a cycle of a few
            // tests it would start containers that the reused ones make unnecessary.
            lookahead: 0,
            telemetry: self.telemetry.clone(),
            ..self.settings.run_options()
        };
        let start_ns = crate::telemetry::handle::now_ns();
        let results = pipeline::execute(
            plan,
            backend,
            &opts,
            &self.header,
            &self.cancel,
            crate::report::DisplayOptions {
                printer: self.printer,
                ..self.settings.display(false)
            },
        )
        .await;
        if let Some(t) = &self.telemetry {
            for w in t.take_warnings() {
                self.printer.warn(w);
            }
            // `--otel-endpoint`: each cycle is a run of its own in the user's collector.
            if let Some(url) = &self.settings.otel_export {
                let ok = results.totals().failed == 0;
                if let Err(e) = t.export_run(url, start_ns, ok).await {
                    self.printer
                        .warn(format!("telemetry: `--otel-endpoint`: {e}"));
                }
            }
        }
        // Files only: the table and the GitHub extras belong to batch runs.
        let files = Outputs {
            table: false,
            github: None,
            ..self.settings.outputs.clone()
        };
        if files.writes_files() {
            files.write(&results, self.printer);
        }
        results.tests
    }

    /// The session's backend, opened on first use: Docker environments are kept warm and
    /// reused across cycles while the services' configuration hash is unchanged. The first
    /// cycle whose tests check spans also starts the session's receiver (Docker environments
    /// opened before it cannot reach it: the backend is then opened again).
    async fn backend(&mut self, plan: &Plan) -> Result<Arc<dyn Backend>, u8> {
        let needs_image = self.set.needs_image();
        let local = self.settings.backend.resolve(needs_image) == BackendKind::Local;
        if let Some(b) = &self.backend {
            // Auto picked local for a suite without images; a test with an image appeared.
            let outgrown =
                self.settings.backend == BackendChoice::Auto && b.kind() == BackendKind::Local;
            if outgrown && needs_image {
                pipeline::shutdown(b.as_ref(), self.printer).await;
                self.backend = None;
                // A receiver on loopback is out of the containers' reach.
                if let Some(t) = self.telemetry.take() {
                    t.finish().await;
                }
            }
        }
        let wanted = self.settings.otel_export.is_some()
            || super::telemetry::wanted(self.args.telemetry, &plan.tests);
        if self.telemetry.is_none() && wanted {
            let dir =
                super::telemetry::spans_dir(&self.args.spans_dir, &self.settings.outputs.json);
            let t = super::telemetry::start(local, &self.header.run_id, dir, self.printer).await?;
            self.telemetry = Some(t);
            if let Some(b) = self
                .backend
                .take()
                .filter(|b| b.kind() != BackendKind::Local)
            {
                pipeline::shutdown(b.as_ref(), self.printer).await;
            }
        }
        if let Some(b) = &self.backend {
            return Ok(b.clone());
        }
        let endpoints = self
            .telemetry
            .as_ref()
            .filter(|_| !local)
            .map(|t| t.endpoints().clone());
        let backend = pipeline::open_with(
            self.settings,
            needs_image,
            &self.header.run_id,
            true,
            endpoints,
        )
        .await?;
        let how = if backend.kind() == BackendKind::Local {
            "steps run on this host, in a fresh temp folder per scenario"
        } else {
            "environments stay warm between cycles"
        };
        self.printer.info(format!(
            "backend {} (run {}): {how}",
            backend.kind(),
            self.header.run_id
        ));
        self.backend = Some(backend.clone());
        Ok(backend)
    }

    /// Remove every environment, stop listening for signals, and pick the exit code.
    async fn finish(self, code: u8, signals: Signals) -> u8 {
        if let Some(b) = &self.backend {
            pipeline::shutdown(b.as_ref(), self.printer).await;
        }
        if let Some(t) = &self.telemetry {
            t.finish().await;
        }
        signals.stop();
        pipeline::interrupted_by().map_or(code, pipeline::interrupted_exit_code)
    }
}

/// Save-to-event delay: the first event's arrival minus the changed file's mtime. The kernel
/// stamps mtime with a coarse clock (one tick), so this can read a few ms high.
fn detect_ms(burst: &Burst, changes: &Changes) -> Option<f64> {
    let first = changes.changed.first()?;
    let mtime = std::fs::metadata(first).ok()?.modified().ok()?;
    let d = burst
        .first_wall
        .duration_since(mtime)
        .unwrap_or(Duration::ZERO);
    Some(ms(d))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}
