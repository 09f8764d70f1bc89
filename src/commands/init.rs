//! `clnrm init`: scaffold `.clnrm/` and a first test. Never overwrites a file.

use std::path::Path;

use crate::cli::InitArgs;
use crate::exit;
use crate::report::Printer;

const CONFIG: &str = r#"# clnrm project settings. Command-line flags override every value here.

# Where `clnrm run` / `validate` look when no path is given.
paths = ["tests"]

# Scenarios running at once (default: number of cores).
# jobs = 4

# Backend: "auto" (Docker when a daemon answers), "docker" or "local".
# backend = "auto"

# Perf baseline compared by `clnrm run --gate`.
# baseline = ".clnrm/perf-baseline.toml"
"#;

const BASELINE: &str = r#"# clnrm performance baseline.
#
# Written by `clnrm baseline record` (and the nightly refresh); read by `clnrm run --gate`.
# Each scenario keeps a rolling history of run medians; the gate compares a run against the
# centre and spread of that history. Edit budgets by hand if you like; history is managed.
version = 1
"#;

const HELLO: &str = r#"# A first clnrm test. `clnrm run` runs it; `clnrm validate` checks it.
[meta]
name = "hello"
description = "A first test: one service, one scenario, two steps"
tags = ["smoke"]

# A service without `image` runs its steps on the host (local backend).
# Give it an image, e.g. image = "alpine:3.20", to run the steps in a container.
[service.app]

[[scenario]]
name = "greets"

[[scenario.steps]]
name = "say hello"
cmd = ["echo", "hello from clnrm"]
stdout_contains = "hello from clnrm"

[[scenario.steps]]
name = "exit codes are checked"
sh = "exit 3"
exit_code = 3
"#;

pub fn init(args: &InitArgs, printer: Printer) -> u8 {
    let files: [(&str, &str); 3] = [
        (".clnrm/config.toml", CONFIG),
        (".clnrm/perf-baseline.toml", BASELINE),
        ("tests/hello.clnrm.toml", HELLO),
    ];
    let mut failed = false;
    for (rel, content) in files {
        let path = args.dir.join(rel);
        match create_new(&path, content) {
            Ok(true) => printer.info(format!("created {}", path.display())),
            Ok(false) => printer.info(format!("skipped {} (already exists)", path.display())),
            Err(e) => {
                printer.error(format!("cannot create `{}`: {e}", path.display()), None);
                failed = true;
            }
        }
    }
    if failed {
        return exit::USAGE;
    }
    printer.info("\nnext: `clnrm validate` to check, `clnrm run` to run");
    exit::OK
}

/// Create `path` with `content` unless it exists; `Ok(false)` when it existed.
fn create_new(path: &Path, content: &str) -> std::io::Result<bool> {
    use std::io::Write;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // create_new makes "exists" and "create" one atomic step: no race overwrites a file.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => {
            f.write_all(content.as_bytes())?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}
