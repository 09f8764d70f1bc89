//! `clnrm report` (re-render and merge saved results) and `clnrm gate` (gate saved results).

use std::path::PathBuf;
use std::sync::Arc;

use super::run::{baseline_path, gate_config};
use super::Printer;
use crate::cli::{GateArgs, GateCmdArgs, ReportArgs, ReportFormat};
use crate::perf::{self, Baseline};
use crate::report;
use crate::results::RunResults;
use crate::settings::ProjectConfig;
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
        return Ok(named.pop().expect("one element").1);
    }
    report::merge_named(named).map_err(|e| {
        printer.error(
            e.to_string(),
            Some("only shards of one run of one suite merge"),
        );
        exit::USAGE
    })
}

fn write(path: &std::path::Path, bytes: &[u8], what: &str, printer: Printer) -> bool {
    match report::write_atomic(path, bytes) {
        Ok(()) => true,
        Err(e) => {
            printer.error(
                format!("cannot write {what} to `{}`: {e}", path.display()),
                None,
            );
            false
        }
    }
}

pub fn report(args: ReportArgs, printer: Printer) -> u8 {
    let results = match read_all(&args.results, printer) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if args.format == ReportFormat::Table {
        eprintln!("{}", report::table(&results, printer.color));
    }
    let mut ok = true;
    if let Some(p) = &args.json {
        ok &= write(p, &report::json(&results), "JSON results", printer);
    }
    if let Some(p) = &args.junit {
        match report::junit(&results) {
            Ok(bytes) => ok &= write(p, &bytes, "JUnit XML", printer),
            Err(e) => {
                printer.error(format!("cannot build JUnit XML: {e}"), None);
                ok = false;
            }
        }
    }
    if let Some(p) = &args.markdown {
        let md = report::markdown(&results, &report::MarkdownOptions::default());
        ok &= write(p, md.as_bytes(), "markdown", printer);
    }
    if !ok {
        return exit::USAGE;
    }
    // The merged verdict: the same function `run` uses.
    outcome::exit_code(&results, args.flaky_fail)
}

pub fn gate(args: GateCmdArgs, printer: Printer) -> u8 {
    let config = match ProjectConfig::load(std::path::Path::new(".")) {
        Ok(c) => c,
        Err(e) => {
            printer.error(e, None);
            return exit::USAGE;
        }
    };
    let mut results = match read_all(&args.results, printer) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let path = baseline_path(&args.baseline, &config);
    let baseline = match Baseline::load(&path) {
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
    let gate_args = GateArgs {
        gate: true,
        baseline: Some(path.clone()),
        acks: args.acks.clone(),
        confirm_runs: 0,
    };
    // Saved results carry no test files: budgets come from the baseline file only.
    let mut cfg = gate_config(
        &gate_args,
        &path,
        &[] as &[Arc<crate::suite::TestSpec>],
        &results,
    );
    cfg.unconfirmed_fails = true;
    let screening = perf::screen(&results, &baseline, &cfg);
    let summary = perf::confirm(screening, &Default::default(), &cfg);
    results.perf = Some(summary);
    eprintln!("{}", report::table(&results, printer.color));
    let mut ok = true;
    if let Some(p) = &args.json {
        ok &= write(p, &report::json(&results), "JSON results", printer);
    }
    if let Some(p) = &args.markdown {
        let md = report::markdown(&results, &report::MarkdownOptions::default());
        ok &= write(p, md.as_bytes(), "markdown", printer);
    }
    if !ok {
        return exit::USAGE;
    }
    outcome::exit_code(&results, false)
}
