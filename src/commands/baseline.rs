//! `clnrm baseline record|update|show|diff|drift|anchor`.

use std::path::{Path, PathBuf};

use super::run::baseline_path;
use super::session::{self, Live, Prepared, RunInputs};
use super::Printer;
use crate::cli::{BaselineCmd, BaselineFileArgs, BaselineRecordArgs, BaselineUpdateArgs};
use crate::exit;
use crate::perf::{self, Baseline};
use crate::plan::Selection;
use crate::report;
use crate::results::RunResults;
use crate::settings::ProjectConfig;

pub fn baseline(cmd: BaselineCmd, printer: Printer) -> u8 {
    let config = match ProjectConfig::load(Path::new(".")) {
        Ok(c) => c,
        Err(e) => {
            printer.error(e, None);
            return exit::USAGE;
        }
    };
    match cmd {
        BaselineCmd::Record(a) => record(a, printer),
        BaselineCmd::Update(a) => update(a, &config, printer),
        BaselineCmd::Show(f) => with_baseline(&f, &config, printer, |b| {
            print!("{}", perf::show(b));
            exit::OK
        }),
        BaselineCmd::Diff { old, new } => {
            let (Some(a), Some(b)) = (load_existing(&old, printer), load_existing(&new, printer))
            else {
                return exit::USAGE;
            };
            print!("{}", perf::diff(&a, &b));
            exit::OK
        }
        BaselineCmd::Drift { file, anchor } => with_baseline(&file, &config, printer, |b| {
            match perf::drift(b, anchor.as_deref()) {
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
            }
        }),
        BaselineCmd::Anchor { label, file } => {
            let path = baseline_path(&file.baseline, &config);
            let Some(mut b) = load_existing(&path, printer) else {
                return exit::USAGE;
            };
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            b.set_anchor(&label, &now);
            save(&b, &path, printer)
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

fn with_baseline(
    file: &BaselineFileArgs,
    config: &ProjectConfig,
    printer: Printer,
    f: impl FnOnce(&Baseline) -> u8,
) -> u8 {
    let path = baseline_path(&file.baseline, config);
    match load_existing(&path, printer) {
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

fn record(args: BaselineRecordArgs, printer: Printer) -> u8 {
    if args.runs == 0 {
        printer.error("`--runs` must be at least 1", None);
        return exit::USAGE;
    }
    let inputs = RunInputs {
        paths: &args.paths,
        load: &args.load,
        selection: Selection {
            filters: args.exec.filters.clone(),
            tags: args.exec.tags.clone(),
            shard: None,
        },
    };
    let Prepared {
        config,
        tests,
        results: template,
        ..
    } = match session::prepare(inputs, printer) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if !template.load_errors.is_empty() {
        return exit::USAGE;
    }
    let path = baseline_path(&args.file.baseline, &config);
    let Some(old) = load_or_new(&path, printer) else {
        return exit::USAGE;
    };
    let rt = match session::runtime(printer) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let (opts, mut cfg) = session::options(args.exec.jobs, &config, &template.run_id, false);
    cfg.step_transport = session::step_transport(args.exec.step_transport);
    let backend_arg = session::backend_arg(args.exec.backend, &config);
    let runs: Result<Vec<RunResults>, u8> = rt.block_on(async {
        let backend = session::choose_backend(
            backend_arg,
            session::needs_image(&tests),
            cfg,
            false,
            printer,
        )
        .await?;
        let docker_version = session::docker_version(backend.name()).await;
        let live = Live::start();
        let mut runs = Vec::new();
        for i in 0..args.runs {
            printer.info(format!("baseline: run {} of {}", i + 1, args.runs));
            let mut r = template.clone();
            r.started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            r.backend = backend.name().to_string();
            r.fingerprint.docker_version = docker_version.clone();
            let t = std::time::Instant::now();
            r.tests = session::execute(tests.clone(), backend.clone(), &opts, &live, printer).await;
            r.duration_ms = session::ms_since(t);
            r.phases.insert("run".into(), r.duration_ms);
            if live.cancelled() {
                break;
            }
            runs.push(r);
        }
        if let Err(e) = backend.shutdown().await {
            printer.warn(format!("cleanup: {e}"));
        }
        live.stop();
        Ok(runs)
    });
    let runs = match runs {
        Ok(r) => r,
        Err(code) => return code,
    };
    if let Some(sig) = session::interrupted_by() {
        printer.error(
            format!("interrupted by {sig}: the baseline was left unchanged"),
            None,
        );
        return session::interrupted_exit_code(sig);
    }
    let failed: usize = runs.iter().map(|r| r.totals().failed).sum();
    if failed > 0 {
        printer.warn(format!(
            "{failed} scenario runs failed; failed scenarios are not recorded"
        ));
    }
    let mut new = old.clone();
    new.record_runs(&runs);
    commit(&old, &new, &path, args.diff_out.as_ref(), printer)
}

fn update(args: BaselineUpdateArgs, config: &ProjectConfig, printer: Printer) -> u8 {
    let path = baseline_path(&args.file.baseline, config);
    let Some(old) = load_or_new(&path, printer) else {
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
    commit(&old, &new, &path, None, printer)
}
