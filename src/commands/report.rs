//! `clnrm report` (re-render and merge saved results) and `clnrm gate` (gate saved results).

use std::path::PathBuf;

use super::pipeline;
use crate::cli::{GateCmdArgs, ReportArgs};
use crate::perf::{self, Baseline};
use crate::report::{self, Printer};
use crate::results::RunResults;
use crate::settings::Settings;
use crate::{exit, outcome};

/// Read and merge results files; `Err(2)` with the reason printed.
fn read_all(paths: &[PathBuf], printer: Printer) -> Result<RunResults, u8> {
    let mut named = Vec::with_capacity(paths.len());
    for p in paths {
        match report::read_json(p) {
            Ok(r) => named.push((p.display().to_string(), r)),
            Err(e) => {
                printer.error(e.to_string(), None);
                return Err(exit::USAGE);
            }
        }
    }
    if named.len() == 1 {
        let mut one = named.pop().expect("one element").1;
        // One shard alone: the others are missing from this report.
        one.missing_shards = crate::results::missing_shards([&one]);
        return Ok(one);
    }
    report::merge_named(named).map_err(|e| {
        printer.error(
            e.to_string(),
            Some("only shards of one run of one suite merge"),
        );
        exit::USAGE
    })
}

pub fn report(settings: &Settings, args: &ReportArgs) -> u8 {
    let results = match read_all(&args.results, settings.printer) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if let Some(msg) = missing_shards_message(&results, &args.results) {
        if args.require_all_shards {
            settings.printer.error(
                msg,
                Some("every shard job uploads its results, an empty shard too: check the failed or cancelled shard jobs and the downloaded artifacts"),
            );
            return exit::USAGE;
        }
        settings.printer.warn(format!(
            "{msg}; the report covers the shards given (`--require-all-shards` makes this an error)"
        ));
    }
    if !settings.outputs.write(&results, settings.printer) {
        return exit::USAGE;
    }
    // The merged verdict: the same function `run` uses.
    outcome::exit_code(&results, settings.flaky_fail)
}

pub fn gate(settings: &Settings, args: &GateCmdArgs) -> u8 {
    let printer = settings.printer;
    let mut results = match read_all(&args.results, printer) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let path = &settings.baseline;
    let baseline = match Baseline::load(path) {
        Ok(Some(b)) => b,
        Ok(None) => {
            printer.error(
                format!("no baseline at `{}`", path.display()),
                Some("record one with `clnrm baseline record` or pass `--baseline`"),
            );
            return exit::USAGE;
        }
        Err(e) => {
            printer.error(e.to_string(), None);
            return exit::USAGE;
        }
    };
    // Saved results carry no test files: budgets come from the baseline file only, and
    // nothing can be re-measured, so a flagged scenario counts as regressed.
    let mut cfg = pipeline::gate_config(settings, &[], &results);
    cfg.unconfirmed_fails = true;
    let screening = perf::screen(&results, &baseline, &cfg);
    let mut summary = perf::confirm(screening, &Default::default(), &cfg);
    // Without the test files, trace drift can only warn (`[perf] trace_drift` is unknown).
    pipeline::trace_drift(settings, &[], &results, &baseline, &mut summary);
    results.perf = Some(summary);
    if !settings.outputs.write(&results, printer) {
        return exit::USAGE;
    }
    outcome::exit_code(&results, false)
}

/// "results of shard 2/4 are missing" (or "shards 2 and 4 of 4"), when any are.
fn missing_shards_message(results: &RunResults, inputs: &[PathBuf]) -> Option<String> {
    let missing = &results.missing_shards;
    let count = inputs.len() + missing.len();
    match missing.as_slice() {
        [] => None,
        [one] => Some(format!("results of shard {one}/{count} are missing")),
        many => {
            let (last, rest) = many.split_last().expect("two or more");
            let rest: Vec<String> = rest.iter().map(u32::to_string).collect();
            Some(format!(
                "results of shards {} and {last} of {count} are missing",
                rest.join(", ")
            ))
        }
    }
}
