//! `clnrm run`: load, plan, run on a backend, report, gate, exit code. Also `clnrm clean`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use super::{load_suite, Printer};
use crate::backend::docker::{self, DockerBackend};
use crate::backend::local::LocalBackend;
use crate::backend::{Backend, BackendConfig, BackendError};
use crate::cli::{BackendArg, RunArgs};
use crate::plan::{self, Selection};
use crate::results::{LoadError, RunResults, Shard, Status, SCHEMA_VERSION};
use crate::runner::{self, RunEvent, RunOptions};
use crate::settings::{self, ProjectConfig};
use crate::spec::TestSpec;
use crate::{exit, outcome};

pub fn run(args: RunArgs, printer: Printer) -> u8 {
    if args.watch {
        return super::watch::watch(args, printer);
    }
    let config = match ProjectConfig::load(std::path::Path::new(".")) {
        Ok(c) => c,
        Err(e) => {
            printer.error(e, None);
            return exit::USAGE;
        }
    };
    let paths = if args.paths.is_empty() {
        config.paths.clone()
    } else {
        args.paths.clone()
    };
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let t0 = Instant::now();
    let (_loader, loaded) = match load_suite(&paths, &args.load, printer) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let run_id = new_run_id();
    let mut results = RunResults {
        schema_version: SCHEMA_VERSION,
        clnrm_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: run_id.clone(),
        started_at,
        duration_ms: 0.0,
        backend: String::new(),
        fingerprint: crate::perf::fingerprint(),
        suite_id: suite_id(&loaded.suite.tests),
        shard: args.shard.map(|s| Shard {
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
        // What validates is exactly what runs: an invalid file stops the whole run.
        printer.error(
            format!(
                "{} test file errors; nothing was run",
                results.load_errors.len()
            ),
            Some("`clnrm validate` shows every error; fix them and run again"),
        );
        results.duration_ms = ms_since(t0);
        return finish(&args, printer, results);
    }

    let selection = Selection {
        filters: args.filters.clone(),
        tags: args.tags.clone(),
        shard: args.shard,
    };
    let tests = plan::select(loaded.suite.tests, &selection, &BTreeMap::new());
    if tests.is_empty() {
        printer.error(
            "no tests selected",
            Some("check `--filter`, `--tag` and `--shard`; `clnrm list` shows what exists"),
        );
        return exit::NO_TESTS;
    }

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(format!("cannot start the async runtime: {e}"), None);
            return exit::BACKEND_UNAVAILABLE;
        }
    };
    let jobs = settings::jobs(args.jobs, &config);
    let backend_arg = match config.backend.as_deref() {
        Some("docker") if args.backend == BackendArg::Auto => BackendArg::Docker,
        Some("local") if args.backend == BackendArg::Auto => BackendArg::Local,
        _ => args.backend,
    };
    let cfg = BackendConfig {
        run_id: run_id.clone(),
        pull: args.pull,
        pool_size: jobs + 2,
    };
    let code = rt.block_on(async {
        let backend = match choose_backend(backend_arg, &tests, cfg, printer).await {
            Ok(b) => b,
            Err(code) => return Some(code),
        };
        results.backend = backend.name().to_string();
        if let Some(v) = docker_version(&results.backend).await {
            results.fingerprint.docker_version = Some(v);
        }
        let opts = RunOptions {
            jobs,
            fail_fast: args.fail_fast,
            retries: args.retries,
            lookahead: 2,
        };
        let cancel = Arc::new(watch::channel(false).0);
        let signals = tokio::spawn(watch_signals(cancel.clone()));
        let (tx, rx) = mpsc::unbounded_channel();
        let progress = tokio::spawn(print_progress(rx, printer));
        let t_run = Instant::now();
        results.tests = runner::run(tests, backend.clone(), &opts, Some(tx), cancel.clone()).await;
        results.phases.insert("run".into(), ms_since(t_run));
        let t_clean = Instant::now();
        if let Err(e) = backend.shutdown().await {
            printer.warn(format!("cleanup: {e}"));
        }
        results.phases.insert("cleanup".into(), ms_since(t_clean));
        let _ = progress.await;
        signals.abort();
        if let Some(sig) = signals_seen(&cancel, &results) {
            results.aborted = Some(sig);
        } else if args.fail_fast && results.totals().failed > 0 {
            results.aborted = Some("stopped by --fail-fast".into());
        }
        None
    });
    if let Some(code) = code {
        return code;
    }
    results.duration_ms = ms_since(t0);
    finish(&args, printer, results)
}

/// Reports, summary and the exit code of a finished (or refused) run.
fn finish(args: &RunArgs, printer: Printer, results: RunResults) -> u8 {
    if !results.tests.is_empty() {
        eprintln!("{}", crate::report::table(&results, printer.color));
    }
    if !write_reports(args, printer, &results) {
        return exit::USAGE;
    }
    let code = outcome::exit_code(&results, args.flaky_fail);
    match SIGNAL.get() {
        // The shell convention (128 + signal number) tells callers the run was cut short.
        Some(sig) => {
            printer.warn(format!("interrupted by {sig}: results are partial"));
            if *sig == "SIGTERM" {
                143
            } else {
                130
            }
        }
        None => code,
    }
}

fn write_reports(args: &RunArgs, printer: Printer, results: &RunResults) -> bool {
    use crate::report;
    let mut ok = true;
    let write = |path: &PathBuf, bytes: Vec<u8>, what: &str| -> bool {
        if let Err(e) = report::write_atomic(path, &bytes) {
            printer.error(
                format!("cannot write {what} to `{}`: {e}", path.display()),
                None,
            );
            return false;
        }
        true
    };
    if let Some(p) = &args.json {
        ok &= write(p, report::json(results), "JSON results");
    }
    if let Some(p) = &args.junit {
        match report::junit(results) {
            Ok(bytes) => ok &= write(p, bytes, "JUnit XML"),
            Err(e) => {
                printer.error(format!("cannot build JUnit XML: {e}"), None);
                ok = false;
            }
        }
    }
    let md_opts = report::MarkdownOptions::default();
    if let Some(p) = &args.markdown {
        ok &= write(
            p,
            report::markdown(results, &md_opts).into_bytes(),
            "markdown",
        );
    }
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        print!("{}", report::github_annotations(results));
        if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY") {
            // The job summary is shared by all steps of the job: append, never replace.
            let md = report::markdown(results, &md_opts);
            if let Err(e) = append(&PathBuf::from(summary), md.as_bytes()) {
                printer.warn(format!("cannot append to GITHUB_STEP_SUMMARY: {e}"));
            }
        }
    }
    ok
}

fn append(path: &PathBuf, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(bytes)
}

/// Docker when asked or available; local when asked, or in auto mode when no selected test
/// needs an image.
async fn choose_backend(
    arg: BackendArg,
    tests: &[Arc<TestSpec>],
    cfg: BackendConfig,
    printer: Printer,
) -> Result<Arc<dyn Backend>, u8> {
    let needs_image = tests
        .iter()
        .any(|t| t.services.values().any(|s| s.image.is_some()));
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
        Ok(b) => Ok(Arc::new(b)),
        Err(e) => {
            let hint = e.hint();
            printer.error(e.to_string(), hint);
            Err(match e {
                BackendError::Unavailable(_) => exit::BACKEND_UNAVAILABLE,
                _ => exit::BACKEND_UNAVAILABLE,
            })
        }
    }
}

async fn docker_version(backend: &str) -> Option<String> {
    if backend != "docker" {
        return None;
    }
    let client = bollard::Docker::connect_with_defaults().ok()?;
    client.version().await.ok()?.version
}

/// First Ctrl-C / SIGTERM: stop starting work, abandon in-flight steps, clean up. Second one:
/// exit at once (the next run reaps what is left, by label).
async fn watch_signals(cancel: Arc<watch::Sender<bool>>) {
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
    eprintln!("\ninterrupted by {name}: cleaning up containers (send again to force exit)");
    cancel.send_replace(true);
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    eprintln!("forced exit: leftovers are removed by the next `clnrm run` or `clnrm clean`");
    std::process::exit(130);
}

static SIGNAL: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

fn signals_seen(_cancel: &watch::Sender<bool>, _results: &RunResults) -> Option<String> {
    SIGNAL.get().map(|s| format!("interrupted by {s}"))
}

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

pub fn clean(printer: Printer) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            printer.error(format!("cannot start the async runtime: {e}"), None);
            return exit::BACKEND_UNAVAILABLE;
        }
    };
    match rt.block_on(docker::clean_all()) {
        Ok(report) => {
            printer.info(format!(
                "removed {} containers and {} networks",
                report.containers, report.networks
            ));
            exit::OK
        }
        Err(e) => {
            let hint = e.hint();
            printer.error(e.to_string(), hint);
            exit::BACKEND_UNAVAILABLE
        }
    }
}

pub(super) fn new_run_id() -> String {
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

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
