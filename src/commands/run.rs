//! `clnrm run`: load, plan, run on a backend, gate, report, exit code. Also `clnrm clean`.

use std::time::Instant;

use super::pipeline::{self, Signals};
use crate::cli::RunArgs;
use crate::exit;
use crate::results::BackendKind;
use crate::results::Phase;
use crate::runner::{clean_all, ms_since, results_without_run, Cancel};
use crate::settings::Settings;
use crate::suite::Loader;

pub fn run(settings: &Settings, args: &RunArgs) -> u8 {
    if args.watch {
        return super::watch::watch(settings, args);
    }
    let printer = settings.printer;
    let loader = Loader::new(settings.load.clone());
    let plan = match pipeline::load_plan(settings, &loader) {
        Ok(p) => p,
        Err(code) => return code,
    };
    // `[report]` of the test files: report paths used when the command line names none.
    let settings = &with_declared_reports(settings, &plan);
    let header = pipeline::header();
    // Invalid files, or an empty shard: results without a run (an empty shard's say so).
    if !plan.load_errors.is_empty() || plan.empty_shard {
        return pipeline::finish(settings, &results_without_run(&plan, &header));
    }
    let rt = match pipeline::runtime(printer) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    // A baseline with trace snapshots: the gate compares spans, so collect and keep them (in a
    // scratch folder when no spans folder is asked for).
    let drift = settings.gate.enabled
        && matches!(crate::perf::Baseline::load(&settings.baseline), Ok(Some(b)) if !b.traces.is_empty());
    let mut dir = super::telemetry::spans_dir(&args.spans_dir, &settings.outputs.json);
    let scratch = if drift && dir.is_none() {
        match tempfile::tempdir() {
            Ok(d) => {
                dir = Some(d.path().to_path_buf());
                Some(d)
            }
            Err(e) => {
                printer.error(format!("cannot create a folder for the spans: {e}"), None);
                return exit::USAGE;
            }
        }
    } else {
        None
    };
    let results = rt.block_on(async {
        let run_start_ns = crate::telemetry::handle::now_ns();
        let telemetry = if drift
            || settings.otel_export.is_some()
            || super::telemetry::wanted(args.telemetry, &plan.tests)
        {
            let local = settings.backend.resolve(plan.needs_image()) == BackendKind::Local;
            let t = super::telemetry::start(local, &header.run_id, dir, printer).await?;
            Some((t, local))
        } else {
            None
        };
        let endpoint = telemetry
            .as_ref()
            .filter(|(_, local)| !local)
            .map(|(t, _)| t.endpoints().clone());
        let telemetry = telemetry.map(|(t, _)| t);
        let opened = pipeline::open_with(
            settings,
            plan.needs_image(),
            &header.run_id,
            false,
            endpoint,
        )
        .await;
        let backend = match opened {
            Ok(b) => b,
            Err(code) => {
                if let Some(t) = &telemetry {
                    t.finish().await;
                }
                return Err(code);
            }
        };
        let cancel = Cancel::new();
        let signals = Signals::watch(cancel.clone(), "cleaning up containers");
        let mut opts = settings.run_options();
        opts.telemetry = telemetry.clone();
        let mut results = pipeline::execute(
            &plan,
            &backend,
            &opts,
            &header,
            &cancel,
            settings.display(true),
        )
        .await;
        if let Some(t) = &telemetry {
            for w in t.take_warnings() {
                printer.warn(w);
            }
        }
        if let (Some(t), Some(url)) = (&telemetry, &settings.otel_export) {
            let ok = results.totals().failed == 0;
            match t.export_run(url, run_start_ns, ok).await {
                Ok(n) => printer.info(format!("telemetry: sent {n} clnrm span(s) to {url}")),
                Err(e) => printer.warn(format!("telemetry: `--otel-endpoint`: {e}")),
            }
        }
        let mut gate_failed = None;
        if settings.gate.enabled && !cancel.is_cancelled() {
            let t = Instant::now();
            match pipeline::gate(settings, &plan, &results, &backend, &header, &cancel).await {
                Ok(summary) => results.perf = Some(summary),
                Err(code) => gate_failed = Some(code),
            }
            results.add_phase(Phase::Gate, ms_since(t));
        }
        let t = Instant::now();
        pipeline::shutdown(backend.as_ref(), printer).await;
        if let Some(t) = &telemetry {
            t.finish().await;
        }
        results.add_phase(Phase::Cleanup, ms_since(t));
        signals.stop();
        match gate_failed {
            Some(code) => Err(code),
            None => Ok(results),
        }
    });
    let code = match results {
        Ok(results) => pipeline::finish(settings, &results),
        Err(code) => code,
    };
    drop(scratch);
    code
}

/// The settings with the files' `[report]` paths filling the outputs the command line left
/// unset (files that disagree on a path are reported, and that report is not written).
fn with_declared_reports(settings: &Settings, plan: &crate::plan::Plan) -> Settings {
    let (declared, notes) = crate::suite::ReportSpec::merged(plan.tests.iter().map(|t| t.as_ref()));
    for n in notes {
        settings.printer.warn(n);
    }
    let mut s = settings.clone();
    let o = &mut s.outputs;
    o.json = o.json.take().or(declared.json);
    o.junit = o.junit.take().or(declared.junit);
    o.markdown = o.markdown.take().or(declared.markdown);
    s
}

pub fn clean(settings: &Settings) -> u8 {
    let printer = settings.printer;
    let rt = match pipeline::runtime(printer) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match rt.block_on(clean_all()) {
        Ok(report) => {
            printer.info(format!(
                "removed {} and {}",
                crate::report::count_of(report.containers, "container"),
                crate::report::count_of(report.networks, "network")
            ));
            exit::OK
        }
        Err(e) => {
            printer.error(e.to_string(), e.hint());
            exit::BACKEND_UNAVAILABLE
        }
    }
}
