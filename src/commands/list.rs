//! `clnrm list`: tests and scenarios found, with tags.

use super::load::load_suite;
use crate::cli::{ListArgs, OutputFormat};
use crate::exit;
use crate::settings::Settings;
use crate::suite::Loader;

pub fn list(settings: &Settings, args: &ListArgs) -> u8 {
    let printer = settings.printer;
    let loaded = match load_suite(settings, &Loader::new(settings.load.clone())) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let suite = &loaded.suite;
    // The same selection (and shard split) as `run`, so `list` shows what a job would run.
    let durations = super::pipeline::shard_durations(settings);
    let selected = crate::plan::select(suite.tests.clone(), &settings.selection, &durations);
    match args.format {
        OutputFormat::Json => {
            let tests: Vec<_> = selected
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name,
                        "path": t.path.display().to_string(),
                        "tags": t.tags,
                        "skip": t.skip,
                        "services": t.services.keys().collect::<Vec<_>>(),
                        "scenarios": t.scenarios.iter().map(|s| serde_json::json!({
                            "name": s.name,
                            "line": s.line,
                            "tags": s.tags,
                            "skip": s.skip,
                            "steps": s.steps.len(),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "tests": tests }))
                    .expect("json values always serialise")
            );
        }
        OutputFormat::Human => {
            for t in &selected {
                let tags = if t.tags.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", t.tags.join(", "))
                };
                let skip = t
                    .skip
                    .as_ref()
                    .map_or(String::new(), |w| format!("  (skipped: {w})"));
                println!("{}  ({}){tags}{skip}", t.name, t.path.display());
                for s in &t.scenarios {
                    let tags = if s.tags.is_empty() {
                        String::new()
                    } else {
                        format!("  [{}]", s.tags.join(", "))
                    };
                    let skip = s
                        .skip
                        .as_ref()
                        .map_or(String::new(), |w| format!("  (skipped: {w})"));
                    println!(
                        "  {}  ({}){tags}{skip}",
                        s.name,
                        crate::report::count_of(s.steps.len(), "step")
                    );
                }
            }
        }
    }
    if suite.errors.is_empty() {
        exit::OK
    } else {
        printer.error("some test files are invalid; they are not listed", None);
        exit::USAGE
    }
}
