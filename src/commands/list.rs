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
    match args.format {
        OutputFormat::Json => {
            let tests: Vec<_> = suite
                .tests
                .iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name,
                        "path": t.path.display().to_string(),
                        "tags": t.tags,
                        "services": t.services.keys().collect::<Vec<_>>(),
                        "scenarios": t.scenarios.iter().map(|s| serde_json::json!({
                            "name": s.name,
                            "line": s.line,
                            "tags": s.tags,
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
            for t in &suite.tests {
                let tags = if t.tags.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", t.tags.join(", "))
                };
                println!("{}  ({}){tags}", t.name, t.path.display());
                for s in &t.scenarios {
                    let tags = if s.tags.is_empty() {
                        String::new()
                    } else {
                        format!("  [{}]", s.tags.join(", "))
                    };
                    println!("  {}  ({} steps){tags}", s.name, s.steps.len());
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
