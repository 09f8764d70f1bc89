//! `clnrm fmt` and `clnrm lint`.

use super::load::discover_files;
use crate::cli::{FmtArgs, LintArgs, LintFormatArg};
use crate::exit;
use crate::lint::{self, LintFormat};
use crate::settings::Settings;
use crate::suite::Loader;

pub fn fmt(settings: &Settings, args: &FmtArgs) -> u8 {
    let printer = settings.printer;
    let roots = &settings.paths;
    if let Some(missing) = roots.iter().find(|p| !p.exists()) {
        printer.error(format!("`{}` does not exist", missing.display()), None);
        return exit::USAGE;
    }
    let outcome = crate::fmt::fmt_paths(roots, args.check);
    if outcome.files.is_empty() {
        printer.error(
            "no test files found",
            Some("test files end in `.clnrm.toml` or `.clnrm.toml.tera`"),
        );
        return exit::NO_TESTS;
    }
    print!("{}", outcome.diffs());
    eprint!("{}", outcome.summary());
    outcome.exit_code()
}

pub fn lint(settings: &Settings, args: &LintArgs) -> u8 {
    let printer = settings.printer;
    let files = match discover_files(&settings.paths, printer) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let loader = Loader::new(settings.load.clone());
    let mut findings = Vec::new();
    let mut invalid = 0;
    for path in &files {
        // Lint looks at what runs (the loaded model and its rendered TOML) and, for unused
        // variables, at what the user wrote.
        let loaded = loader.load(path);
        let rendered = loader.render(path);
        match (loaded, rendered) {
            (Ok(l), Ok(r)) => {
                let raw = std::fs::read_to_string(path).ok();
                findings.extend(lint::lint(&l.spec, &r.text, raw.as_deref()));
            }
            (Err(diags), _) | (_, Err(diags)) => {
                invalid += 1;
                for d in diags {
                    eprintln!("{d}");
                }
            }
        }
    }
    let format = match args.format {
        LintFormatArg::Human => LintFormat::Human,
        LintFormatArg::Json => LintFormat::Json,
        LintFormatArg::Github => LintFormat::Github,
    };
    print!("{}", lint::render_findings(&findings, format));
    if invalid > 0 {
        printer.error(
            format!("{invalid} test files are invalid and were not linted"),
            None,
        );
        return exit::USAGE;
    }
    lint::exit_code(&findings, args.deny_warnings)
}
