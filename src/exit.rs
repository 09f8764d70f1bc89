//! Documented process exit codes. README lists them all; each subcommand's `--help` lists the
//! ones it can exit with.

/// All tests passed (or the command succeeded).
pub const OK: u8 = 0;
/// At least one test failed (or `fmt --check` / `lint` found something).
pub const TESTS_FAILED: u8 = 1;
/// Usage, configuration or test-file error.
pub const USAGE: u8 = 2;
/// Performance regression (or broken hard budget) and nothing else failed.
pub const PERF_REGRESSION: u8 = 3;
/// No tests selected.
pub const NO_TESTS: u8 = 4;
/// Backend unavailable (no Docker daemon answers).
pub const BACKEND_UNAVAILABLE: u8 = 5;

/// The table printed at the end of `clnrm run --help` (and `dev`): every code.
pub const HELP_TABLE: &str = "\
Exit codes:
  0  all tests passed
  1  tests failed
  2  usage, configuration or test-file error
  3  performance regression only
  4  no tests selected
  5  backend unavailable
  130/143  interrupted by SIGINT/SIGTERM (containers were cleaned up)";

/// Where the top-level `--help` sends a reader for exit codes.
pub const HELP_MAIN: &str = "Each command's `--help` lists the exit codes it uses.";

pub const HELP_VALIDATE: &str = "\
Exit codes:
  0  every test file is valid
  2  usage or configuration error, or an invalid test file
  4  no test files found";

pub const HELP_RENDER: &str = "\
Exit codes:
  0  rendered
  2  usage error, or the file does not render";

pub const HELP_LIST: &str = "\
Exit codes:
  0  listed
  2  usage, configuration or test-file error
  4  no test files found";

pub const HELP_INIT: &str = "\
Exit codes:
  0  scaffolded (existing files are left alone)
  2  a file could not be written";

pub const HELP_CLEAN: &str = "\
Exit codes:
  0  everything labelled was removed
  5  backend unavailable";

pub const HELP_REPORT: &str = "\
Exit codes:
  0  the merged results passed
  1  tests failed
  2  usage error, unreadable results, a missing shard with `--require-all-shards`, or load errors
  3  performance regression only";

pub const HELP_GATE: &str = "\
Exit codes:
  0  no regression
  1  the results hold failed tests
  2  usage error, unreadable results or baseline
  3  performance regression";

pub const HELP_BASELINE_RECORD: &str = "\
Exit codes:
  0  recorded
  2  usage, configuration or test-file error
  4  no tests selected
  5  backend unavailable
  130/143  interrupted by SIGINT/SIGTERM";

pub const HELP_BASELINE_UPDATE: &str = "\
Exit codes:
  0  appended
  2  usage error, unreadable results or baseline
  3  refused: the results carry a confirmed regression (`--force` appends anyway)";

pub const HELP_BASELINE_FILE: &str = "\
Exit codes:
  0  done
  2  usage error, unreadable baseline";

pub const HELP_FMT: &str = "\
Exit codes:
  0  formatted (with `--check`: nothing would change)
  1  with `--check`: a file would change
  2  usage error, or a file that does not parse
  4  no test files found";

pub const HELP_LINT: &str = "\
Exit codes:
  0  no error (and, with `--deny-warnings`, no warning)
  1  findings
  2  usage, configuration or test-file error
  4  no test files found";

pub const HELP_SPANS: &str = "\
Exit codes:
  0  printed
  2  usage error, or an unreadable trace";

pub const HELP_ANALYZE: &str = "\
Exit codes:
  0  every expectation holds
  1  an expectation does not hold
  2  usage error, an invalid test file or an unreadable trace";

pub const HELP_DIFF: &str = "\
Exit codes:
  0  same structure
  1  the structure differs
  2  usage error, or an unreadable trace";
