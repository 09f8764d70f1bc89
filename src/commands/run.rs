//! `clnrm run`: load, plan, run on a backend, gate, report, exit code. Also `clnrm clean`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::session::{self, Live, Prepared, RunInputs};
use super::Printer;
use crate::backend::docker;
use crate::backend::Backend;
use crate::cli::{GateArgs, RunArgs};
use crate::perf::{self, Baseline, Budgets, GateConfig};
use crate::plan::Selection;
use crate::results::{display_path, PerfSummary, RunResults, Status};
use crate::runner::RunOptions;
use crate::settings::{self, ProjectConfig};
use crate::suite::TestSpec;
use crate::{exit, outcome};

pub fn run(args: RunArgs, printer: Printer) -> u8 {
    if args.watch {
        return super::watch::watch(args, printer);
    }
    let inputs = RunInputs {
        paths: &args.paths,
        load: &args.load,
        selection: Selection {
            filters: args.exec.filters.clone(),
            tags: args.exec.tags.clone(),
            shard: args.shard,
        },
    };
    let Prepared {
        config,
        tests,
        mut results,
        t0,
    } = match session::prepare(inputs, printer) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if !results.load_errors.is_empty() {
        results.duration_ms = session::ms_since(t0);
        return finish(&args, printer, results);
    }
    let rt = match session::runtime(printer) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let (mut opts, mut cfg) = session::options(args.exec.jobs, &config, &results.run_id, args.pull);
    cfg.step_transport = session::step_transport(args.exec.step_transport);
    opts.fail_fast = args.fail_fast;
    opts.retries = args.retries;
    let backend_arg = session::backend_arg(args.exec.backend, &config);
    let failed_to_start = rt.block_on(async {
        let backend = match session::choose_backend(
            backend_arg,
            session::needs_image(&tests),
            cfg,
            false,
            printer,
        )
        .await
        {
            Ok(b) => b,
            Err(code) => return Some(code),
        };
        results.backend = backend.name().to_string();
        results.fingerprint.docker_version = session::docker_version(&results.backend).await;
        let live = Live::start();
        let t_run = Instant::now();
        results.tests =
            session::execute(tests.clone(), backend.clone(), &opts, &live, printer).await;
        results
            .phases
            .insert("run".into(), session::ms_since(t_run));
        if args.gate.gate && !live.cancelled() {
            let t_gate = Instant::now();
            match gate_run(
                &args.gate, &config, &tests, &results, &backend, &opts, &live, printer,
            )
            .await
            {
                Ok(summary) => results.perf = Some(summary),
                Err(code) => {
                    shutdown(backend.as_ref(), printer).await;
                    live.stop();
                    return Some(code);
                }
            }
            results
                .phases
                .insert("gate".into(), session::ms_since(t_gate));
        }
        let t_clean = Instant::now();
        shutdown(backend.as_ref(), printer).await;
        results
            .phases
            .insert("cleanup".into(), session::ms_since(t_clean));
        live.stop();
        if let Some(sig) = session::interrupted_by() {
            results.aborted = Some(format!("interrupted by {sig}"));
        } else if args.fail_fast && results.totals().failed > 0 {
            results.aborted = Some("stopped by --fail-fast".into());
        }
        None
    });
    if let Some(code) = failed_to_start {
        return code;
    }
    results.duration_ms = session::ms_since(t0);
    finish(&args, printer, results)
}

async fn shutdown(backend: &dyn Backend, printer: Printer) {
    if let Err(e) = backend.shutdown().await {
        printer.warn(format!("cleanup: {e}"));
    }
}

/// The baseline path: flag, else config, else the default.
pub fn baseline_path(flag: &Option<PathBuf>, config: &ProjectConfig) -> PathBuf {
    flag.clone()
        .or_else(|| config.baseline.clone())
        .unwrap_or_else(|| PathBuf::from(settings::DEFAULT_BASELINE))
}

/// Gate settings for a set of tests: defaults, the tests' `[perf]` budgets, acknowledgements.
pub fn gate_config(
    gate: &GateArgs,
    path: &std::path::Path,
    tests: &[Arc<TestSpec>],
    results: &RunResults,
) -> GateConfig {
    let mut budgets = Budgets::default();
    for t in tests {
        budgets.add_test(&display_path(&t.path), &t.perf);
    }
    let mut acks: BTreeSet<String> = gate.acks.iter().cloned().collect();
    if acks.remove("all") {
        acks.extend(perf::measurements(results).into_keys());
    }
    GateConfig {
        acks,
        budgets,
        baseline_path: path.display().to_string(),
        ..Default::default()
    }
}

/// Screen against the baseline, re-run flagged scenarios `confirm_runs` times on the same
/// backend, and confirm. Returns `Err(2)` for an unreadable baseline.
#[allow(clippy::too_many_arguments)]
async fn gate_run(
    gate: &GateArgs,
    config: &ProjectConfig,
    tests: &[Arc<TestSpec>],
    results: &RunResults,
    backend: &Arc<dyn Backend>,
    opts: &RunOptions,
    live: &Live,
    printer: Printer,
) -> Result<PerfSummary, u8> {
    let path = baseline_path(&gate.baseline, config);
    let baseline = match Baseline::load(&path) {
        Ok(Some(b)) => b,
        Ok(None) => {
            printer.warn(format!(
                "no baseline at `{}`: every scenario is new (record one with `clnrm baseline record`)",
                path.display()
            ));
            Baseline::default()
        }
        Err(e) => {
            printer.error(e.to_string(), None);
            return Err(exit::USAGE);
        }
    };
    let cfg = gate_config(gate, &path, tests, results);
    let screening = perf::screen(results, &baseline, &cfg);
    let flagged = screening.flagged();
    let mut remeasured: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    if !flagged.is_empty() && gate.confirm_runs > 0 {
        printer.info(format!(
            "gate: {} scenario(s) above tolerance; re-measuring {} time(s) to confirm",
            flagged.len(),
            gate.confirm_runs
        ));
        let subset = only_scenarios(tests, &flagged);
        let confirm_opts = RunOptions {
            retries: Some(0),
            fail_fast: false,
            ..opts.clone()
        };
        for _ in 0..gate.confirm_runs {
            if live.cancelled() {
                break;
            }
            let rerun = session::execute(
                subset.clone(),
                backend.clone(),
                &confirm_opts,
                live,
                printer,
            )
            .await;
            for t in &rerun {
                for sc in &t.scenarios {
                    if sc.status == Status::Passed {
                        remeasured
                            .entry(perf::measure::scenario_key(&t.path, &sc.name))
                            .or_default()
                            .push(sc.step_ms);
                    }
                }
            }
        }
    }
    Ok(perf::confirm(screening, &remeasured, &cfg))
}

/// The tests reduced to the scenarios named by `keys` (`path#scenario`).
fn only_scenarios(tests: &[Arc<TestSpec>], keys: &[String]) -> Vec<Arc<TestSpec>> {
    tests
        .iter()
        .filter_map(|t| {
            let path = display_path(&t.path);
            let mut t2 = (**t).clone();
            t2.scenarios
                .retain(|s| keys.contains(&perf::measure::scenario_key(&path, &s.name)));
            (!t2.scenarios.is_empty()).then(|| Arc::new(t2))
        })
        .collect()
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
    match session::interrupted_by() {
        Some(sig) => {
            printer.warn(format!("interrupted by {sig}: results are partial"));
            session::interrupted_exit_code(sig)
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
            if let Err(e) = report::append(std::path::Path::new(&summary), md.as_bytes()) {
                printer.warn(format!("cannot append to GITHUB_STEP_SUMMARY: {e}"));
            }
        }
    }
    ok
}

pub fn clean(printer: Printer) -> u8 {
    let rt = match session::runtime(printer) {
        Ok(rt) => rt,
        Err(code) => return code,
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
