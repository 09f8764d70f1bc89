//! The front of every command that reads test files: discover, then load through the one
//! pipeline, with the time each phase took.

use std::path::PathBuf;
use std::time::Instant;

use crate::exit;
use crate::report::Printer;
use crate::results::LoadError;
use crate::settings::Settings;
use crate::suite::{discover, Loader, Suite};

/// A loaded suite with the time each phase took (ms).
pub struct LoadedSuite {
    pub suite: Suite,
    pub discover_ms: f64,
    pub validate_ms: f64,
    pub files: usize,
}

impl LoadedSuite {
    /// The errors in the form results carry them (hints kept).
    pub fn load_errors(&self) -> Vec<LoadError> {
        self.suite
            .errors
            .iter()
            .map(|d| LoadError {
                path: d.path.display().to_string(),
                line: d.line,
                column: d.column,
                message: d.message.clone(),
                hint: d.hint.clone(),
            })
            .collect()
    }
}

/// Discover and load every test file under the settings' paths; print warnings and errors on
/// stderr. `Err(code)` when nothing can go on: discovery failed (2) or no test file was found
/// (4). Invalid files are left in `suite.errors` for the caller to decide.
pub fn load_suite(settings: &Settings, loader: &Loader) -> Result<LoadedSuite, u8> {
    let printer = settings.printer;
    let t0 = Instant::now();
    let files = discover_files(&settings.paths, printer)?;
    let discover_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let t1 = Instant::now();
    let suite = loader.load_suite(&files);
    let validate_ms = t1.elapsed().as_secs_f64() * 1000.0;
    for w in &suite.warnings {
        eprintln!("{}", crate::secrets::terminal(&w.to_string(), false));
    }
    for e in &suite.errors {
        eprintln!("{}", crate::secrets::terminal(&e.to_string(), false));
    }
    Ok(LoadedSuite {
        suite,
        discover_ms,
        validate_ms,
        files: files.len(),
    })
}

/// The test files under `roots`; none is "no tests" (exit 4).
pub fn discover_files(roots: &[PathBuf], printer: Printer) -> Result<Vec<PathBuf>, u8> {
    let files = match discover(roots) {
        Ok(f) => f,
        Err(e) => {
            printer.error(e.to_string(), None);
            return Err(exit::USAGE);
        }
    };
    if files.is_empty() {
        let shown: Vec<String> = roots.iter().map(|r| format!("`{}`", r.display())).collect();
        printer.error(
            format!("no test files found under {}", shown.join(", ")),
            Some(
                "test files end in `.clnrm.toml` or `.clnrm.toml.tera`; `clnrm init` scaffolds one",
            ),
        );
        return Err(exit::NO_TESTS);
    }
    Ok(files)
}
