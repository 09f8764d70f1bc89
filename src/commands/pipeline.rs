//! The one pipeline of every command that runs scenarios (`run`, `baseline record`, watch
//! cycles, the gate's confirmation runs): settings -> load -> plan -> `run_plan` (events to
//! the live display) -> results -> gate -> outputs -> exit code. Each stage is one function
//! here; the commands only put them in order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::load::load_suite;
use crate::exit;
use crate::outcome;
use crate::perf::{self, Baseline, Budgets, GateConfig};
use crate::plan::Plan;
use crate::report::{DisplayOptions, LiveDisplay, Printer};
use crate::results::{display_path, BackendKind, PerfSummary, Phase, RunResults, Status};
use crate::runner::{
    ms_since, open_backend, run_plan, Backend, BackendConfig, Cancel, RunHeader, RunOptions,
};
use crate::settings::{BackendChoice, Settings};
use crate::suite::{Loader, TestSpec};

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

/// What identifies this process's run: a fresh id and the machine's fingerprint.
pub fn header() -> RunHeader {
    RunHeader {
        run_id: new_run_id(),
        fingerprint: perf::fingerprint(),
    }
}

/// Discover, load and select. `Err(code)` ends the command (no files, nothing selected); a
/// plan with `load_errors` means the files are invalid and nothing may run.
pub fn load_plan(settings: &Settings, loader: &Loader) -> Result<Plan, u8> {
    let loaded = load_suite(settings, loader)?;
    let load_errors = loaded.load_errors();
    let t = Instant::now();
    let durations = if load_errors.is_empty() {
        shard_durations(settings)
    } else {
        BTreeMap::new()
    };
    let mut plan = Plan::new(loaded.suite.tests, &settings.selection, &durations);
    let plan_ms = ms_since(t);
    plan.phases = BTreeMap::from([
        (Phase::Discover, loaded.discover_ms),
        (Phase::Validate, loaded.validate_ms),
        (Phase::Plan, plan_ms),
    ]);
    if !load_errors.is_empty() {
        settings.printer.error(
            format!(
                "{} test file error{}; nothing was run",
                load_errors.len(),
                crate::report::plural(load_errors.len())
            ),
            Some("`clnrm validate` shows every error; fix them and run again"),
        );
        plan.tests.clear();
        plan.load_errors = load_errors;
        return Ok(plan);
    }
    if plan.empty_shard {
        if let Some(shard) = plan.shard {
            settings.printer.warn(format!(
                "shard {}/{} was given none of the selected tests; its results say so",
                shard.index, shard.count
            ));
        }
        return Ok(plan);
    }
    if plan.tests.is_empty() {
        settings.printer.error(
            "no tests selected",
            Some("check `--filter`, `--tag` and `--shard`; `clnrm list` shows what exists"),
        );
        return Err(exit::NO_TESTS);
    }
    Ok(plan)
}

/// Expected duration per test path from the settings' baseline (the file the gate reads
/// too), to balance shards.
pub(crate) fn shard_durations(settings: &Settings) -> BTreeMap<String, f64> {
    if settings.selection.shard.is_none() {
        return BTreeMap::new();
    }
    let Ok(Some(baseline)) = Baseline::load(&settings.baseline) else {
        return BTreeMap::new();
    };
    // A test's expected duration: the sum of its scenarios' centres.
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for (key, stats) in baseline.key_stats() {
        if perf::measure::is_phase(&key) {
            continue;
        }
        let (path, _) = perf::split_key(&key);
        *out.entry(path).or_default() += stats.centre;
    }
    out
}

/// Open the backend the settings ask for: auto picks local when no service needs an image.
/// `reuse_all` keeps every healthy environment warm (watch mode); `otel_endpoint` is the
/// telemetry receiver as the service containers reach it, when spans are collected.
pub async fn open_with(
    settings: &Settings,
    needs_image: bool,
    run_id: &str,
    reuse_all: bool,
    otel_endpoint: Option<crate::telemetry::Endpoints>,
) -> Result<Arc<dyn Backend>, u8> {
    let printer = settings.printer;
    let kind = settings.backend.resolve(needs_image);
    match (settings.backend, kind) {
        (BackendChoice::Local, _) if needs_image => {
            printer.warn("`--backend local` ignores service images: steps run on this host")
        }
        (BackendChoice::Auto, BackendKind::Local) => {
            printer.info("note: no service needs an image; running on the local backend")
        }
        _ => {}
    }
    let cfg = BackendConfig {
        run_id: run_id.to_string(),
        pull: settings.pull,
        pool_size: settings.pool_size,
        container_defaults: settings.container_defaults,
        reuse_all,
        step_transport: settings.step_transport,
        otel_endpoint,
    };
    open_backend(kind, cfg).await.map_err(|e| {
        // Whatever kept the daemon from answering, there is nothing to run on.
        printer.error(e.to_string(), e.hint());
        exit::BACKEND_UNAVAILABLE
    })
}

/// One execution of `plan`, shown live on stderr as `display` says.
pub async fn execute(
    plan: &Plan,
    backend: &Arc<dyn Backend>,
    opts: &RunOptions,
    header: &RunHeader,
    cancel: &Cancel,
    display: DisplayOptions,
) -> RunResults {
    let mut display = LiveDisplay::stderr(display);
    let results = run_plan(plan, backend, opts, header, cancel, |ev| {
        display.on_event(ev)
    })
    .await;
    display.finish();
    results
}

/// Remove everything the backend still holds; a failure is a warning (the next run reaps).
pub async fn shutdown(backend: &dyn Backend, printer: Printer) {
    if let Err(e) = backend.shutdown().await {
        printer.warn(format!("cleanup: {e}"));
    }
}

/// Gate settings for a set of tests: defaults, the tests' `[perf]` budgets, acknowledgements.
pub fn gate_config(
    settings: &Settings,
    tests: &[Arc<TestSpec>],
    results: &RunResults,
) -> GateConfig {
    let mut budgets = Budgets::default();
    for t in tests {
        budgets.add_test(&display_path(&t.path), &t.perf);
    }
    let mut acks: BTreeSet<String> = settings.gate.acks.clone();
    if acks.remove("all") {
        acks.extend(perf::measurements(results).into_keys());
    }
    GateConfig {
        acks,
        budgets,
        baseline_path: settings.baseline.display().to_string(),
        ..Default::default()
    }
}

/// Screen against the baseline, re-run flagged scenarios `confirm_runs` times through the
/// same pipeline on the same backend, and confirm. `Err(2)` for an unreadable baseline.
pub async fn gate(
    settings: &Settings,
    plan: &Plan,
    results: &RunResults,
    backend: &Arc<dyn Backend>,
    header: &RunHeader,
    cancel: &Cancel,
) -> Result<PerfSummary, u8> {
    let printer = settings.printer;
    let path = &settings.baseline;
    // A run without a baseline to compare with passes the gate, visibly: here, and in the
    // summary's gate lines.
    let baseline = match Baseline::load(path) {
        Ok(Some(b)) if b.key_stats().is_empty() => {
            printer.warn(format!(
                "the baseline `{}` holds no timings yet: every scenario is new and nothing is compared",
                path.display()
            ));
            b
        }
        Ok(Some(b)) => b,
        Ok(None) => {
            printer.warn(format!(
                "no baseline at `{}`: every scenario is new and nothing is compared (record one with `clnrm baseline record`)",
                path.display()
            ));
            Baseline::default()
        }
        Err(e) => {
            printer.error(e.to_string(), None);
            return Err(exit::USAGE);
        }
    };
    let cfg = gate_config(settings, &plan.tests, results);
    let screening = perf::screen(results, &baseline, &cfg);
    let flagged = screening.flagged();
    let mut remeasured: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let runs = settings.gate.confirm_runs;
    if !flagged.is_empty() && runs > 0 {
        printer.info(format!(
            "gate: {} scenario{} above tolerance; re-measuring {runs} time{} to confirm",
            flagged.len(),
            crate::report::plural(flagged.len()),
            crate::report::plural(runs as usize),
        ));
        let subset = plan.only_scenarios(&flagged);
        let opts = RunOptions {
            retries: Some(0),
            fail_fast: false,
            ..settings.run_options()
        };
        for _ in 0..runs {
            if cancel.is_cancelled() {
                break;
            }
            let rerun = execute(
                &subset,
                backend,
                &opts,
                header,
                cancel,
                settings.display(false),
            )
            .await;
            for t in &rerun.tests {
                for sc in t.scenarios.iter().filter(|s| s.status == Status::Passed) {
                    remeasured
                        .entry(perf::measure::scenario_key(&t.path, &sc.name))
                        .or_default()
                        .push(sc.step_ms);
                }
            }
        }
    }
    let mut summary = perf::confirm(screening, &remeasured, &cfg);
    trace_drift(settings, &plan.tests, results, &baseline, &mut summary);
    Ok(summary)
}

/// Compare each scenario's spans with the trace snapshot the baseline holds for it (the
/// telemetry diff engine: spans added, removed, moved, attribute and status changes; durations
/// are not structure). Drift is a warning and a gate note, and fails the gate only for tests
/// (of `tests`; none when gating saved results) that say `[perf] trace_drift = "fail"`.
pub fn trace_drift(
    settings: &Settings,
    tests: &[Arc<TestSpec>],
    results: &RunResults,
    baseline: &Baseline,
    summary: &mut PerfSummary,
) {
    use crate::telemetry::{diff, model::read_jsonl};
    if baseline.traces.is_empty() {
        return;
    }
    let printer = settings.printer;
    let dir = settings
        .baseline
        .parent()
        .unwrap_or(std::path::Path::new(""));
    for t in &results.tests {
        let fail = tests
            .iter()
            .find(|s| display_path(&s.path) == t.path)
            .is_some_and(|s| s.perf.trace_drift == crate::suite::TraceDrift::Fail);
        for sc in t.scenarios.iter().filter(|s| s.status == Status::Passed) {
            let key = perf::measure::scenario_key(&t.path, &sc.name);
            let Some(snapshot) = baseline.traces.get(&key) else {
                continue;
            };
            let Some(file) = sc.telemetry.as_ref().and_then(|tel| tel.file.as_ref()) else {
                continue;
            };
            let old_path = dir.join(snapshot);
            let (old, new) = match (
                read_jsonl(&old_path),
                read_jsonl(std::path::Path::new(file)),
            ) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(e), _) | (_, Err(e)) => {
                    let note = format!("trace drift of `{key}` not checked: {e}");
                    printer.warn(note.clone());
                    summary.notes.push(note);
                    continue;
                }
            };
            let d = diff::diff(&old, &new, diff::DiffOptions::default());
            if d.structurally_equal() {
                continue;
            }
            let what = format!(
                "{} added, {} removed, {} moved, {} attribute and {} status change(s)",
                d.added.len(),
                d.removed.len(),
                d.moved.len(),
                d.attrs.len(),
                d.status.len()
            );
            let note = if fail {
                summary.failed = true;
                format!(
                    "trace drift in `{key}` fails the gate (`[perf] trace_drift = \"fail\"`): {what}; `clnrm diff {} {file}` shows it",
                    old_path.display()
                )
            } else {
                format!(
                    "trace drift in `{key}` (warning): {what}; `clnrm diff {} {file}` shows it",
                    old_path.display()
                )
            };
            printer.warn(note.clone());
            summary.notes.push(note);
        }
    }
}

/// Reports, then the exit code of a finished (or refused) run.
pub fn finish(settings: &Settings, results: &RunResults) -> u8 {
    if !settings.outputs.write(results, settings.printer) {
        return exit::USAGE;
    }
    if crate::runner::backend_was_lost(results) {
        settings.printer.error(
            "the backend was lost during the run: unfinished scenarios are marked `error`",
            Some("an infrastructure failure, not a test failure: check the Docker daemon, then run again"),
        );
        return exit::BACKEND_UNAVAILABLE;
    }
    let code = outcome::exit_code(results, settings.flaky_fail);
    match interrupted_by() {
        Some(sig) => {
            settings
                .printer
                .warn(format!("interrupted by {sig}: results are partial"));
            interrupted_exit_code(sig)
        }
        None => code,
    }
}

/// SIGINT / SIGTERM handling for the length of a command.
pub struct Signals(tokio::task::JoinHandle<()>);

impl Signals {
    /// First Ctrl-C / SIGTERM: cancel (`what` says what is being ended); the second one exits
    /// at once with the first signal's code (the next run reaps what is left, by label).
    pub fn watch(cancel: Cancel, what: &'static str) -> Signals {
        Signals(tokio::spawn(watch_signals(cancel, what)))
    }

    pub fn stop(self) {
        self.0.abort();
    }
}

async fn watch_signals(cancel: Cancel, what: &'static str) {
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
    cancel.cancel(format!("interrupted by {name}"));
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    eprintln!("forced exit: leftovers are removed by the next `clnrm run` or `clnrm clean`");
    std::process::exit(i32::from(interrupted_exit_code(name)));
}

static SIGNAL: OnceLock<&'static str> = OnceLock::new();

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

pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let digest = Sha256::digest(format!("{now}-{}", std::process::id()).as_bytes());
    hex::encode(&digest[..6])
}
