//! Documented process exit codes (README and `--help` list the same table).

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

/// The table printed at the end of `--help`.
pub const HELP_TABLE: &str = "\
Exit codes:
  0  all tests passed
  1  tests failed
  2  usage, configuration or test-file error
  3  performance regression only
  4  no tests selected
  5  backend unavailable
  130/143  interrupted by SIGINT/SIGTERM (containers were cleaned up)";
