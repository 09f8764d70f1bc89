//! `clnrm list`: tests and scenarios found, with tags.

use super::{load_suite, Printer};
use crate::cli::{ListArgs, OutputFormat};
use crate::exit;
use crate::plan::{self, Selection};
use crate::settings::ProjectConfig;

pub fn list(args: ListArgs, printer: Printer) -> u8 {
    let (_, loaded) = match load_suite(&args.paths, &args.load, printer) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let suite = &loaded.suite;
    // The same selection (and shard split) as `run`, so `list` shows what a job would run.
    let selection = Selection {
        filters: args.filters.clone(),
        tags: args.tags.clone(),
        shard: args.shard,
    };
    let config = match ProjectConfig::load(std::path::Path::new(".")) {
        Ok(c) => c,
        Err(e) => {
            printer.error(e, None);
            return exit::USAGE;
        }
    };
    let durations = super::session::shard_durations(&config, &selection);
    let selected = plan::select(suite.tests.clone(), &selection, &durations);
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
                    println!("  {}  ({} steps){tags}{skip}", s.name, s.steps.len());
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
