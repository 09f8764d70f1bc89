//! The front of every command: discover, then load through the one pipeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::Printer;
use crate::cli::LoadArgs;
use crate::exit;
use crate::settings::ProjectConfig;
use crate::suite::{discover, LoadOptions, Loader, Suite};

/// Build the loader for the command-line options (env `CLNRM_VAR_*` included). A bad
/// `--freeze-clock` is a usage error (exit 2).
pub fn loader(args: &LoadArgs, printer: Printer) -> Result<Loader, u8> {
    let cli_vars: BTreeMap<String, String> = args.vars.iter().cloned().collect();
    let mut opts = LoadOptions::from_env(cli_vars, args.freeze_clock.clone());
    let config = match ProjectConfig::load(Path::new(".")) {
        Ok(c) => c,
        Err(e) => {
            printer.error(e, None);
            return Err(exit::USAGE);
        }
    };
    // The trust boundary: what test files may reach beyond their repository, and which
    // values never reach a report. Masks are registered before anything is loaded or printed.
    opts.allow_mounts = config.allow_mounts_in(Path::new("."));
    opts.allow_mounts.extend(args.allow_mounts.iter().cloned());
    crate::secrets::register_env(&config.mask_env);
    crate::secrets::register_env(&args.mask_env);
    if let Err(e) = opts.validate() {
        printer.error(e, None);
        return Err(exit::USAGE);
    }
    Ok(Loader::new(opts))
}

/// Paths given, or the current folder.
pub fn roots(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        paths.to_vec()
    }
}

/// A loaded suite with the time each phase took (ms).
pub struct LoadedSuite {
    pub suite: Suite,
    pub discover_ms: f64,
    pub validate_ms: f64,
    pub files: usize,
}

/// Discover and load every test file; print warnings and errors on stderr. `Err(code)` when
/// nothing can go on: discovery failed (2) or no test file was found (4). Invalid files are
/// left in `suite.errors` for the caller to decide.
pub fn load_suite(
    paths: &[PathBuf],
    args: &LoadArgs,
    printer: Printer,
) -> Result<(Loader, LoadedSuite), u8> {
    let roots = roots(paths);
    let t0 = Instant::now();
    let files = match discover(&roots) {
        Ok(f) => f,
        Err(e) => {
            printer.error(e.to_string(), None);
            return Err(exit::USAGE);
        }
    };
    let discover_ms = t0.elapsed().as_secs_f64() * 1000.0;
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
    let loader = loader(args, printer)?;
    let t1 = Instant::now();
    let suite = loader.load_suite(&files);
    let validate_ms = t1.elapsed().as_secs_f64() * 1000.0;
    for d in suite.warnings.iter().chain(&suite.errors) {
        eprintln!(
            "{}",
            crate::secrets::terminal(&d.to_string(), printer.color)
        );
    }
    Ok((
        loader,
        LoadedSuite {
            suite,
            discover_ms,
            validate_ms,
            files: files.len(),
        },
    ))
}
