//! What every command that runs scenarios shares: loading and selecting tests, choosing and
//! connecting a backend, signal handling, progress output, and one execution of a plan.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use super::{load_suite, Printer};
use crate::backend::docker::DockerBackend;
use crate::backend::local::LocalBackend;
use crate::backend::{Backend, BackendConfig, StepTransport};
use crate::cli::StepTransportArg;
use crate::cli::{BackendArg, LoadArgs};
use crate::exit;
use crate::plan::{self, Selection};
use crate::results::{LoadError, RunResults, Shard, Status, TestResult, SCHEMA_VERSION};
use crate::runner::{self, RunEvent, RunOptions};
use crate::settings::{self, ProjectConfig};
use crate::suite::TestSpec;

/// Tests loaded, validated and selected, with the skeleton of their results.
pub struct Prepared {
    pub config: ProjectConfig,
    pub tests: Vec<Arc<TestSpec>>,
    /// Results with everything but the test outcomes filled in.
    pub results: RunResults,
    pub t0: Instant,
}

/// What selects and shapes a run, from the command line.
pub struct RunInputs<'a> {
    pub paths: &'a [PathBuf],
    pub load: &'a LoadArgs,
    pub selection: Selection,
}

/// Load and select. `Err(code)` ends the command; `Ok` with `load_errors` set means the files
/// are invalid and nothing may run (what validates is exactly what runs).
pub fn prepare(inputs: RunInputs<'_>, printer: Printer) -> Result<Prepared, u8> {
    let config = ProjectConfig::load(std::path::Path::new(".")).map_err(|e| {
        printer.error(e, None);
        exit::USAGE
    })?;
    let paths = if inputs.paths.is_empty() {
        config.paths.clone()
    } else {
        inputs.paths.to_vec()
    };
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let t0 = Instant::now();
    let (_loader, loaded) = load_suite(&paths, inputs.load, printer)?;
    let results = RunResults {
        schema_version: SCHEMA_VERSION,
        clnrm_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: new_run_id(),
        started_at,
        duration_ms: 0.0,
        backend: String::new(),
        fingerprint: crate::perf::fingerprint(),
        suite_id: suite_id(&loaded.suite.tests),
        shard: inputs.selection.shard.map(|s| Shard {
            index: s.index,
            count: s.count,
        }),
        phases: BTreeMap::from([
            ("discover".to_string(), loaded.discover_ms),
            ("validate".to_string(), loaded.validate_ms),
        ]),
        load_errors: loaded
            .suite
            .errors
            .iter()
            .map(|d| LoadError {
                path: d.path.display().to_string(),
                line: d.line,
                column: d.column,
                message: d.message.clone(),
            })
            .collect(),
        tests: Vec::new(),
        perf: None,
        aborted: None,
    };
    if !results.load_errors.is_empty() {
        printer.error(
            format!(
                "{} test file errors; nothing was run",
                results.load_errors.len()
            ),
            Some("`clnrm validate` shows every error; fix them and run again"),
        );
        return Ok(Prepared {
            config,
            tests: Vec::new(),
            results,
            t0,
        });
    }
    let durations = shard_durations(&config, &inputs.selection);
    let tests = plan::select(loaded.suite.tests, &inputs.selection, &durations);
    if tests.is_empty() {
        printer.error(
            "no tests selected",
            Some("check `--filter`, `--tag` and `--shard`; `clnrm list` shows what exists"),
        );
        return Err(exit::NO_TESTS);
    }
    Ok(Prepared {
        config,
        tests,
        results,
        t0,
    })
}

/// Expected duration per test name from the baseline, to balance shards.
fn shard_durations(config: &ProjectConfig, sel: &Selection) -> BTreeMap<String, f64> {
    if sel.shard.is_none() {
        return BTreeMap::new();
    }
    let path = config
        .baseline
        .clone()
        .unwrap_or_else(|| PathBuf::from(settings::DEFAULT_BASELINE));
    let Ok(Some(baseline)) = crate::perf::Baseline::load(&path) else {
        return BTreeMap::new();
    };
    // A test's expected duration: the sum of its scenarios' centres.
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for (key, stats) in baseline.key_stats() {
        if crate::perf::measure::is_phase(&key) {
            continue;
        }
        let (path, _) = crate::perf::split_key(&key);
        *out.entry(path).or_default() += stats.centre;
    }
    out
}

/// A multi-threaded runtime for the async part of a command.
pub fn runtime(printer: Printer) -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            printer.error(format!("cannot start the async runtime: {e}"), None);
            exit::BACKEND_UNAVAILABLE
        })
}

/// Backend choice from the flag, then the config.
pub fn backend_arg(flag: BackendArg, config: &ProjectConfig) -> BackendArg {
    match config.backend.as_deref() {
        Some("docker") if flag == BackendArg::Auto => BackendArg::Docker,
        Some("local") if flag == BackendArg::Auto => BackendArg::Local,
        _ => flag,
    }
}

/// Runner options and backend settings for a prepared run.
pub fn options(
    jobs_flag: Option<usize>,
    config: &ProjectConfig,
    run_id: &str,
    pull: bool,
) -> (RunOptions, BackendConfig) {
    let jobs = settings::jobs(jobs_flag, config);
    (
        RunOptions {
            jobs,
            lookahead: 2,
            ..Default::default()
        },
        BackendConfig {
            run_id: run_id.to_string(),
            pull,
            pool_size: jobs + 2,
            step_transport: StepTransport::Auto,
        },
    )
}

/// The backend's step transport for `--step-transport`.
pub fn step_transport(arg: StepTransportArg) -> StepTransport {
    match arg {
        StepTransportArg::Auto => StepTransport::Auto,
        StepTransportArg::Agent => StepTransport::Agent,
        StepTransportArg::Exec => StepTransport::Exec,
    }
}

/// Handles a run needs while it executes: cancellation wired to SIGINT/SIGTERM.
pub struct Live {
    pub cancel: Arc<watch::Sender<bool>>,
    signals: tokio::task::JoinHandle<()>,
}

impl Live {
    pub fn start() -> Live {
        let cancel = Arc::new(watch::channel(false).0);
        let signals = tokio::spawn(watch_signals(cancel.clone(), "cleaning up containers"));
        Live { cancel, signals }
    }

    pub fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    pub fn stop(self) {
        self.signals.abort();
    }
}

/// One execution of `tests` with progress on stderr.
pub async fn execute(
    tests: Vec<Arc<TestSpec>>,
    backend: Arc<dyn Backend>,
    opts: &RunOptions,
    live: &Live,
    printer: Printer,
) -> Vec<TestResult> {
    let (tx, rx) = mpsc::unbounded_channel();
    let progress = tokio::spawn(print_progress(rx, printer));
    let out = runner::run(tests, backend, opts, Some(tx), live.cancel.clone()).await;
    let _ = progress.await;
    out
}

/// The signal that interrupted this process, if any.
pub fn interrupted_by() -> Option<&'static str> {
    SIGNAL.get().copied()
}

/// Exit code of an interrupted command: the shell convention, 128 + signal number, tells
/// callers the work was cut short.
pub fn interrupted_exit_code(signal: &str) -> u8 {
    if signal == "SIGTERM" {
        143
    } else {
        130
    }
}

/// Whether any service of `tests` names an image (and so needs Docker).
pub fn needs_image(tests: &[Arc<TestSpec>]) -> bool {
    tests
        .iter()
        .any(|t| t.services.values().any(|s| s.image.is_some()))
}

/// Docker when asked or available; local when asked, or in auto mode when nothing needs an
/// image. `reuse_all` (watch mode) keeps every healthy Docker environment warm for reuse.
pub async fn choose_backend(
    arg: BackendArg,
    needs_image: bool,
    cfg: BackendConfig,
    reuse_all: bool,
    printer: Printer,
) -> Result<Arc<dyn Backend>, u8> {
    let use_local = match arg {
        BackendArg::Local => {
            if needs_image {
                printer.warn("`--backend local` ignores service images: steps run on this host");
            }
            true
        }
        BackendArg::Docker => false,
        BackendArg::Auto => {
            if !needs_image {
                printer.info("note: no service needs an image; running on the local backend");
            }
            !needs_image
        }
    };
    if use_local {
        return Ok(Arc::new(LocalBackend::new(cfg)));
    }
    match DockerBackend::connect(cfg).await {
        Ok(b) => {
            b.set_reuse_all(reuse_all);
            Ok(Arc::new(b))
        }
        Err(e) => {
            // Whatever kept the daemon from answering, there is nothing to run on.
            printer.error(e.to_string(), e.hint());
            Err(exit::BACKEND_UNAVAILABLE)
        }
    }
}

pub async fn docker_version(backend: &str) -> Option<String> {
    if backend != "docker" {
        return None;
    }
    let client = bollard::Docker::connect_with_defaults().ok()?;
    client.version().await.ok()?.version
}

/// First Ctrl-C / SIGTERM: stop starting work, abandon in-flight steps, clean up (`what`
/// says what is being ended). Second one: exit at once (the next run reaps what is left, by
/// label). The signal is remembered for [`interrupted_by`].
pub async fn watch_signals(cancel: Arc<watch::Sender<bool>>, what: &'static str) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let name = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    SIGNAL.get_or_init(|| name);
    eprintln!("\ninterrupted by {name}: {what} (send again to force exit)");
    cancel.send_replace(true);
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    eprintln!("forced exit: leftovers are removed by the next `clnrm run` or `clnrm clean`");
    std::process::exit(130);
}

static SIGNAL: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

async fn print_progress(mut rx: mpsc::UnboundedReceiver<RunEvent>, printer: Printer) {
    let bar = if printer.interactive {
        let pb = indicatif::ProgressBar::new(0);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed} {wide_msg}")
                .expect("static template is valid"),
        );
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(pb)
    } else {
        None
    };
    while let Some(ev) = rx.recv().await {
        match ev {
            RunEvent::Started { tests, scenarios } => {
                if let Some(pb) = &bar {
                    pb.set_length(scenarios as u64);
                } else {
                    eprintln!("running {scenarios} scenarios of {tests} tests");
                }
            }
            RunEvent::ScenarioStarted { test, scenario, .. } => {
                if let Some(pb) = &bar {
                    pb.set_message(format!("{test} / {scenario}"));
                }
            }
            RunEvent::Retrying {
                test,
                scenario,
                attempt,
                message,
            } => {
                let line =
                    format!("RETRY {test} / {scenario} (attempt {attempt} failed: {message})");
                match &bar {
                    Some(pb) => pb.println(line),
                    None => eprintln!("{line}"),
                }
            }
            RunEvent::ScenarioFinished { test, result, .. } => {
                let word = match result.status {
                    Status::Passed => printer.paint("PASS ", "32"),
                    Status::Flaky => printer.paint("FLAKY", "33"),
                    Status::Skipped => printer.paint("SKIP ", "2"),
                    Status::Failed => printer.paint("FAIL ", "31"),
                    Status::TimedOut => printer.paint("TIME ", "31"),
                    Status::Error => printer.paint("ERROR", "31"),
                };
                let mut line = format!(
                    "{word} {test} / {} ({:.0} ms)",
                    result.name, result.duration_ms
                );
                if result.status.is_failure() {
                    if let Some(m) = &result.message {
                        line.push_str(&format!("\n      {}", m.replace('\n', "\n      ")));
                    }
                }
                match &bar {
                    Some(pb) => {
                        pb.inc(1);
                        pb.println(line);
                    }
                    None => eprintln!("{line}"),
                }
            }
            RunEvent::TestFinished(_) => {}
        }
    }
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
}

pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let digest = Sha256::digest(format!("{now}-{}", std::process::id()).as_bytes());
    hex::encode(&digest[..6])
}

/// sha256 over the sorted test names: shards of one suite share it, `report` checks it.
fn suite_id(tests: &[TestSpec]) -> String {
    let mut names: Vec<&str> = tests.iter().map(|t| t.name.as_str()).collect();
    names.sort_unstable();
    hex::encode(&Sha256::digest(names.join("\n").as_bytes())[..8])
}

pub fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
