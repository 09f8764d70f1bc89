//! `clnrm validate` (alias `dry-run`).

use super::load::load_suite;
use crate::cli::{OutputFormat, ValidateArgs};
use crate::exit;
use crate::report::count_of;
use crate::settings::Settings;
use crate::suite::Loader;

pub fn validate(settings: &Settings, args: &ValidateArgs) -> u8 {
    let printer = settings.printer;
    let loaded = match load_suite(settings, &Loader::new(settings.load.clone())) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let suite = &loaded.suite;
    let invalid_files = suite
        .errors
        .iter()
        .map(|d| &d.path)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if args.format == OutputFormat::Json {
        let doc = serde_json::json!({
            "files": loaded.files,
            "valid": loaded.files - invalid_files,
            "invalid": invalid_files,
            "errors": suite.errors.iter().map(|d| serde_json::json!({
                "path": d.path.display().to_string(),
                "line": d.line,
                "column": d.column,
                "message": d.message,
                "hint": d.hint,
            })).collect::<Vec<_>>(),
            "warnings": suite.warnings.len(),
            "duration_ms": loaded.validate_ms,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("json values always serialise")
        );
    }
    if settings.outputs.github.is_some() {
        // Workflow annotations put each error on its line of the pull request's diff.
        for d in &suite.errors {
            print!(
                "{}",
                crate::report::github_diagnostic(
                    &crate::results::display_path(&d.path),
                    d.line,
                    d.column,
                    &d.message,
                )
            );
        }
    }
    let scenarios: usize = suite.tests.iter().map(|t| t.scenarios.len()).sum();
    if invalid_files > 0 {
        printer.error(
            format!(
                "{invalid_files} of {} invalid ({})",
                count_of(loaded.files, "test file"),
                count_of(suite.errors.len(), "error")
            ),
            None,
        );
        return exit::USAGE;
    }
    printer.info(format!(
        "{} {} valid ({}, {}) in {:.1} ms",
        printer.paint("ok:", "1;32"),
        count_of(loaded.files, "test file"),
        count_of(suite.tests.len(), "test"),
        count_of(scenarios, "scenario"),
        loaded.validate_ms
    ));
    exit::OK
}
