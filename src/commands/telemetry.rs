//! `clnrm spans`, `clnrm analyze`, `clnrm diff`: offline work on saved traces; and the
//! telemetry handle a run starts.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::{AnalyzeArgs, DiffArgs, DiffFormatArg, SpansArgs};
use crate::exit;
use crate::report::Printer;
use crate::settings::Settings;
use crate::suite::{Loader, TestSpec};
use crate::telemetry::diff::{self, DiffOptions};
use crate::telemetry::expect::{self, CheckContext, Expectations};
use crate::telemetry::model::{read_jsonl, Span};
use crate::telemetry::{tree, Limits, Telemetry};

fn read(path: &std::path::Path, printer: Printer) -> Result<Vec<Span>, u8> {
    read_jsonl(path).map_err(|e| {
        printer.error(
            e.to_string(),
            Some("a trace file holds OTLP JSON export requests, one per line"),
        );
        exit::USAGE
    })
}

pub fn spans(settings: &Settings, args: &SpansArgs) -> u8 {
    let printer = settings.printer;
    match read(&args.file, printer) {
        Ok(spans) => {
            print!("{}", tree::render(&spans, args.attrs));
            exit::OK
        }
        Err(code) => code,
    }
}

pub fn analyze(settings: &Settings, args: &AnalyzeArgs) -> u8 {
    let printer = settings.printer;
    let loader = Loader::new(settings.load.clone());
    let test = match loader.load(&args.test) {
        Ok(l) => l.spec,
        Err(diags) => {
            for d in &diags {
                eprintln!("{d}");
            }
            printer.error(format!("cannot load `{}`", args.test.display()), None);
            return exit::USAGE;
        }
    };
    let scenario = match &args.scenario {
        Some(name) => match test.scenarios.iter().find(|s| &s.name == name) {
            Some(s) => Some(s),
            None => {
                let names: Vec<&str> = test.scenarios.iter().map(|s| s.name.as_str()).collect();
                printer.error(
                    format!("no scenario `{name}` in `{}`", args.test.display()),
                    Some(&format!("scenarios: {}", names.join(", "))),
                );
                return exit::USAGE;
            }
        },
        None if test.scenarios.len() == 1 => test.scenarios.first(),
        None => None,
    };
    let levels = match scenario {
        Some(sc) => Expectations::merged(&test.expect, &sc.expect),
        None => Expectations::merged(&test.expect, &Expectations::default()),
    };
    if levels.is_empty() {
        printer.error(
            format!(
                "`{}` declares no telemetry expectations",
                args.test.display()
            ),
            Some("add `[[expect.span]]` (or another `[expect.*]` table) to the test"),
        );
        return exit::USAGE;
    }
    let spans = match read(&args.file, printer) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let cx = CheckContext {
        services: test.services.keys().cloned().collect(),
    };
    let failures = expect::check(&levels, &spans, &cx);
    let path = args.test.display();
    for f in &failures {
        println!(
            "{path}:{}: {}: expected {}, got {}",
            f.line, f.expectation, f.expected, f.actual
        );
    }
    if failures.is_empty() {
        printer.info(format!(
            "{}: every telemetry expectation of `{}` holds",
            crate::report::count_of(spans.len(), "span"),
            test.name
        ));
        exit::OK
    } else {
        printer.info(format!(
            "{}: {} failed",
            crate::report::count_of(spans.len(), "span"),
            crate::report::count_of(failures.len(), "telemetry expectation")
        ));
        exit::TESTS_FAILED
    }
}

pub fn diff(settings: &Settings, args: &DiffArgs) -> u8 {
    let printer = settings.printer;
    if !(args.duration_ratio.is_finite() && args.duration_ratio >= 0.0) {
        printer.error("`--duration-ratio` must be a number >= 0", None);
        return exit::USAGE;
    }
    let (old, new) = match (read(&args.old, printer), read(&args.new, printer)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    let d = diff::diff(
        &old,
        &new,
        DiffOptions {
            duration_ratio: args.duration_ratio,
            ..Default::default()
        },
    );
    match args.format {
        DiffFormatArg::Text => print!("{}", diff::render_text(&d)),
        DiffFormatArg::Markdown => print!("{}", diff::render_markdown(&d)),
        DiffFormatArg::Json => match serde_json::to_string_pretty(&d) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                printer.error(format!("cannot serialise the diff: {e}"), None);
                return exit::USAGE;
            }
        },
    }
    if d.structurally_equal() {
        exit::OK
    } else {
        exit::TESTS_FAILED
    }
}

/// Whether a run collects spans: asked for, or some test declares expectations.
pub fn wanted(flag: bool, tests: &[Arc<TestSpec>]) -> bool {
    flag || tests
        .iter()
        .any(|t| !t.expect.is_empty() || t.scenarios.iter().any(|s| !s.expect.is_empty()))
}

/// Where spans are saved: the flag, else `spans/` beside the JSON results (unless they go to
/// stdout), else nowhere.
pub fn spans_dir(flag: &Option<PathBuf>, json: &Option<PathBuf>) -> Option<PathBuf> {
    if flag.is_some() {
        return flag.clone();
    }
    let json = json.as_ref().filter(|p| p.as_os_str() != "-")?;
    Some(
        json.parent()
            .map_or_else(|| PathBuf::from("spans"), |p| p.join("spans")),
    )
}

/// Start the receiver for a run: on loopback for the local backend; for Docker on the
/// gateway of a network of the run's own (see `backend::docker::telemetry_network`). Without
/// a receiver the expectations could not be checked: the run does not start (exit 5) rather
/// than pass them unchecked.
pub async fn start(
    local: bool,
    run_id: &str,
    dir: Option<PathBuf>,
    printer: Printer,
) -> Result<Arc<Telemetry>, u8> {
    let (ip, network) = if local {
        (IpAddr::V4(Ipv4Addr::LOCALHOST), None)
    } else {
        match crate::backend::docker::telemetry_network(run_id).await {
            Ok((ip, id)) => (ip, Some(id)),
            Err(e) => {
                printer.error(
                    format!("telemetry: no network for the receiver: {e}"),
                    e.hint().or(Some("or run with `--backend local`")),
                );
                return Err(exit::BACKEND_UNAVAILABLE);
            }
        }
    };
    match Telemetry::start(ip, network.clone(), run_id, dir, Limits::default()).await {
        Ok(t) => {
            printer.info(format!(
                "telemetry: OTLP receiver on {} (HTTP) and {} (gRPC)",
                t.endpoints().http,
                t.endpoints().grpc
            ));
            Ok(t)
        }
        Err(e) => {
            if let Some(id) = network {
                crate::backend::docker::remove_network(&id).await;
            }
            printer.error(
                format!("telemetry: cannot start the OTLP receiver on {ip}: {e}"),
                None,
            );
            Err(exit::BACKEND_UNAVAILABLE)
        }
    }
}
