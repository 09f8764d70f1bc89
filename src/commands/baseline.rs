//! `clnrm baseline record|update|show|diff|drift|anchor`.

use std::path::{Path, PathBuf};

use super::pipeline::{self, Signals};
use crate::cli::{BaselineCmd, BaselineRecordArgs, BaselineUpdateArgs};
use crate::exit;
use crate::perf::{self, Baseline};
use crate::report::{self, Printer};
use crate::results::RunResults;
use crate::runner::Cancel;
use crate::settings::Settings;
use crate::suite::Loader;

pub fn baseline(settings: &Settings, cmd: &BaselineCmd) -> u8 {
    let printer = settings.printer;
    match cmd {
        BaselineCmd::Record(a) => record(settings, a),
        BaselineCmd::Update(a) => update(settings, a),
        BaselineCmd::Show(_) => with_baseline(settings, |b| {
            print!("{}", perf::show(b));
            exit::OK
        }),
        BaselineCmd::Diff { old, new } => {
            let (Some(a), Some(b)) = (load_existing(old, printer), load_existing(new, printer))
            else {
                return exit::USAGE;
            };
            print!("{}", perf::diff(&a, &b));
            exit::OK
        }
        BaselineCmd::Drift { anchor, .. } => {
            with_baseline(settings, |b| match perf::drift(b, anchor.as_deref()) {
                Ok(text) => {
                    print!("{text}");
                    exit::OK
                }
                Err(e) => {
                    printer.error(
                        e.to_string(),
                        Some("set one with `clnrm baseline anchor LABEL`"),
                    );
                    exit::USAGE
                }
            })
        }
        BaselineCmd::Anchor { label, .. } => {
            let path = &settings.baseline;
            let Some(mut b) = load_existing(path, printer) else {
                return exit::USAGE;
            };
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            b.set_anchor(label, &now);
            save(&b, path, printer)
        }
    }
}

fn load_existing(path: &Path, printer: Printer) -> Option<Baseline> {
    match Baseline::load(path) {
        Ok(Some(b)) => Some(b),
        Ok(None) => {
            printer.error(
                format!("no baseline at `{}`", path.display()),
                Some("record one with `clnrm baseline record`"),
            );
            None
        }
        Err(e) => {
            printer.error(e.to_string(), None);
            None
        }
    }
}

fn with_baseline(settings: &Settings, f: impl FnOnce(&Baseline) -> u8) -> u8 {
    match load_existing(&settings.baseline, settings.printer) {
        Some(b) => f(&b),
        None => exit::USAGE,
    }
}

fn save(b: &Baseline, path: &Path, printer: Printer) -> u8 {
    match b.save_atomic(path) {
        Ok(()) => {
            printer.info(format!("wrote {}", path.display()));
            exit::OK
        }
        Err(e) => {
            printer.error(e.to_string(), None);
            exit::USAGE
        }
    }
}

/// Load the baseline to extend; a missing file starts a new one.
fn load_or_new(path: &Path, printer: Printer) -> Option<Baseline> {
    match Baseline::load(path) {
        Ok(b) => Some(b.unwrap_or_default()),
        Err(e) => {
            printer.error(e.to_string(), None);
            None
        }
    }
}

/// Write the new baseline and show what moved against the old one.
fn commit(
    old: &Baseline,
    new: &Baseline,
    path: &Path,
    diff_out: Option<&PathBuf>,
    printer: Printer,
) -> u8 {
    let diff = perf::diff(old, new);
    eprint!("{diff}");
    if let Some(p) = diff_out {
        if let Err(e) = report::write_atomic(p, diff.as_bytes()) {
            printer.error(format!("cannot write `{}`: {e}", p.display()), None);
            return exit::USAGE;
        }
    }
    save(new, path, printer)
}

/// Run the suite `args.runs` times through the pipeline (each run loads afresh, so discover
/// and validate are measured every time) and append each run's medians to the history.
fn record(settings: &Settings, args: &BaselineRecordArgs) -> u8 {
    let printer = settings.printer;
    let path = &settings.baseline;
    let Some(old) = load_or_new(path, printer) else {
        return exit::USAGE;
    };
    // The first load decides what runs and which backend; a file that turns invalid during
    // the recording ends it.
    let plan = match pipeline::load_plan(settings, &Loader::new(settings.load.clone())) {
        Ok(p) if p.load_errors.is_empty() => p,
        Ok(_) => return exit::USAGE,
        Err(code) => return code,
    };
    let rt = match pipeline::runtime(printer) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let header = pipeline::header();
    // Spans of the recording runs go to a scratch folder; the snapshots are copied from it.
    let scratch = match args.traces.then(tempfile::tempdir).transpose() {
        Ok(d) => d,
        Err(e) => {
            printer.error(format!("cannot create a folder for the spans: {e}"), None);
            return exit::USAGE;
        }
    };
    let runs: Result<Vec<RunResults>, u8> = rt.block_on(async {
        let telemetry = match &scratch {
            Some(dir) => {
                let local = settings.backend.resolve(plan.needs_image())
                    == crate::results::BackendKind::Local;
                let t = super::telemetry::start(
                    local,
                    &header.run_id,
                    Some(dir.path().to_path_buf()),
                    printer,
                )
                .await?;
                Some((t, local))
            }
            None => None,
        };
        let endpoints = telemetry
            .as_ref()
            .filter(|(_, local)| !local)
            .map(|(t, _)| t.endpoints().clone());
        let telemetry = telemetry.map(|(t, _)| t);
        let backend = match pipeline::open_with(
            settings,
            plan.needs_image(),
            &header.run_id,
            false,
            endpoints,
        )
        .await
        {
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
        let mut runs = Vec::new();
        let mut plan = Some(plan);
        for i in 0..args.runs {
            printer.info(format!("baseline: run {} of {}", i + 1, args.runs));
            let this = match plan.take() {
                Some(p) => p,
                None => match pipeline::load_plan(settings, &Loader::new(settings.load.clone())) {
                    Ok(p) if p.load_errors.is_empty() => p,
                    Ok(_) => {
                        signals.stop();
                        pipeline::shutdown(backend.as_ref(), printer).await;
                        return Err(exit::USAGE);
                    }
                    Err(code) => {
                        signals.stop();
                        pipeline::shutdown(backend.as_ref(), printer).await;
                        return Err(code);
                    }
                },
            };
            let r = pipeline::execute(
                &this,
                &backend,
                &opts,
                &header,
                &cancel,
                settings.display(true),
            )
            .await;
            if cancel.is_cancelled() {
                break;
            }
            runs.push(r);
        }
        pipeline::shutdown(backend.as_ref(), printer).await;
        if let Some(t) = &telemetry {
            for w in t.take_warnings() {
                printer.warn(w);
            }
            t.finish().await;
        }
        signals.stop();
        Ok(runs)
    });
    let runs = match runs {
        Ok(r) => r,
        Err(code) => return code,
    };
    if let Some(sig) = pipeline::interrupted_by() {
        printer.error(
            format!("interrupted by {sig}: the baseline was left unchanged"),
            None,
        );
        return pipeline::interrupted_exit_code(sig);
    }
    let failed: usize = runs.iter().map(|r| r.totals().failed).sum();
    if failed > 0 {
        printer.warn(format!(
            "{failed} scenario run{} failed; failed scenarios are not recorded",
            crate::report::plural(failed)
        ));
    }
    let mut new = old.clone();
    new.record_runs(&runs);
    if args.traces {
        if let Some(last) = runs.last() {
            if let Err(code) = record_traces(&mut new, path, last, printer) {
                return code;
            }
        }
    }
    commit(&old, &new, path, args.diff_out.as_ref(), printer)
}

/// Copy the span tree of every passing scenario of `run` into the baseline's trace folder
/// (`<baseline file name>.traces/`, each file written atomically) and reference it from the
/// baseline. Snapshots of scenarios that did not pass this time are kept as they were.
fn record_traces(
    baseline: &mut Baseline,
    path: &Path,
    run: &RunResults,
    printer: Printer,
) -> Result<(), u8> {
    let dir = path.parent().unwrap_or(Path::new(""));
    let folder = traces_folder(path);
    let mut recorded = 0;
    for t in &run.tests {
        for sc in &t.scenarios {
            let Some(file) = sc
                .telemetry
                .as_ref()
                .filter(|_| sc.status == crate::results::Status::Passed)
                .and_then(|tel| tel.file.as_ref())
            else {
                continue;
            };
            let bytes = std::fs::read(file).map_err(|e| {
                printer.error(format!("cannot read the spans of `{file}`: {e}"), None);
                exit::USAGE
            })?;
            let target = crate::telemetry::handle::artifact_path(
                &dir.join(&folder),
                Path::new(&t.path),
                &sc.name,
            );
            crate::atomic::write_atomic(&target, &bytes).map_err(|e| {
                printer.error(e.to_string(), None);
                exit::USAGE
            })?;
            let rel = target.strip_prefix(dir).unwrap_or(&target);
            baseline.traces.insert(
                perf::measure::scenario_key(&t.path, &sc.name),
                rel.to_string_lossy().replace('\\', "/"),
            );
            recorded += 1;
        }
    }
    printer.info(format!(
        "baseline: recorded {recorded} trace snapshot{} under `{}`",
        crate::report::plural(recorded),
        dir.join(&folder).display()
    ));
    Ok(())
}

/// `perf-baseline.traces` for `perf-baseline.toml`.
fn traces_folder(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map_or_else(|| "baseline".into(), |s| s.to_string_lossy());
    format!("{stem}.traces")
}

fn update(settings: &Settings, args: &BaselineUpdateArgs) -> u8 {
    let printer = settings.printer;
    let path = &settings.baseline;
    let Some(old) = load_or_new(path, printer) else {
        return exit::USAGE;
    };
    let mut runs = Vec::new();
    for p in &args.results {
        match report::read_json(p) {
            Ok(r) => {
                if r.perf.as_ref().is_some_and(|s| s.failed) && !args.force {
                    printer.error(
                        format!("`{}` carries a confirmed perf regression", p.display()),
                        Some("absorbing it would hide it; fix it, or pass `--force` if it is intended"),
                    );
                    return exit::PERF_REGRESSION;
                }
                runs.push(r);
            }
            Err(e) => {
                printer.error(e.to_string(), None);
                return exit::USAGE;
            }
        }
    }
    let mut new = old.clone();
    new.record_runs(&runs);
    commit(&old, &new, path, None, printer)
}
