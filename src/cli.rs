//! Command-line arguments (clap derive only; resolution happens in `settings`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit;
use crate::exit::HELP_TABLE;
use crate::report::{ColorChoice, FailureOutput};
use crate::settings::BackendChoice;

/// Help headings: options grouped by what they are about.
const SELECTION: &str = "Selection";
const EXECUTION: &str = "Execution";
const TERMINAL: &str = "Terminal output";
const REPORTS: &str = "Reports";
const GATE: &str = "Perf gate";
const TEST_FILES: &str = "Test files";
const WATCH: &str = "Watch mode";
const GLOBAL: &str = "Global options";

#[derive(Debug, Parser)]
#[command(
    name = "clnrm",
    version,
    about = "Hermetic, container-based integration tests with a performance regression gate",
    after_help = exit::HELP_MAIN,
    propagate_version = true
)]
pub struct Cli {
    /// When to use colours on stderr/stdout (NO_COLOR is honoured in `auto`).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, help_heading = GLOBAL)]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render, parse and check every test file without running anything.
    #[command(visible_alias = "dry-run", after_help = exit::HELP_VALIDATE)]
    Validate(ValidateArgs),
    /// Print the rendered TOML of one test file (templates expanded) on stdout.
    #[command(after_help = exit::HELP_RENDER)]
    Render(RenderArgs),
    /// List the tests and scenarios found.
    #[command(after_help = exit::HELP_LIST)]
    List(ListArgs),
    /// Scaffold `.clnrm/` and a first test; never overwrites a file.
    #[command(after_help = exit::HELP_INIT)]
    Init(InitArgs),
    /// Run the scenarios (in Docker by default).
    #[command(after_help = HELP_TABLE)]
    Run(RunArgs),
    /// Watch mode: `run --watch`.
    #[command(after_help = HELP_TABLE)]
    Dev(RunArgs),
    /// Remove every container and network clnrm created (any run), by label.
    #[command(after_help = exit::HELP_CLEAN)]
    Clean,
    /// Re-render reports from saved JSON results; merges shards of one run.
    #[command(after_help = exit::HELP_REPORT)]
    Report(ReportArgs),
    /// Gate saved JSON results against the baseline (no re-measurement possible: a flagged
    /// scenario counts as regressed).
    #[command(after_help = exit::HELP_GATE)]
    Gate(GateCmdArgs),
    /// Record, update and inspect the perf baseline.
    #[command(subcommand)]
    Baseline(BaselineCmd),
    /// Rewrite test files into the canonical layout (comments and string contents kept).
    #[command(after_help = exit::HELP_FMT)]
    Fmt(FmtArgs),
    /// Check test files for reproducibility and clarity problems.
    #[command(after_help = exit::HELP_LINT)]
    Lint(LintArgs),
    /// Print the span tree of a saved trace (OTLP JSON lines).
    #[command(after_help = exit::HELP_SPANS)]
    Spans(SpansArgs),
    /// Check a test's telemetry expectations against a saved trace, without running anything.
    #[command(after_help = exit::HELP_ANALYZE)]
    Analyze(AnalyzeArgs),
    /// Compare two saved traces as trees: spans added, removed, moved, attribute, status and
    /// duration changes. Exits 1 when the structure differs.
    #[command(after_help = exit::HELP_DIFF)]
    Diff(DiffArgs),
    /// Print a shell completion script on stdout (e.g. `clnrm completions bash >
    /// ~/.local/share/bash-completion/completions/clnrm`).
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout (e.g. `clnrm man > ~/.local/share/man/man1/clnrm.1`).
    Man,
    /// The step agent inside a service container (started by the Docker backend).
    #[command(name = "__agent", hide = true)]
    Agent(AgentArgs),
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Unix socket to serve steps on.
    #[arg(long, value_name = "PATH", help_heading = EXECUTION)]
    pub socket: PathBuf,
    /// The service's own process (entrypoint and command), run as a child.
    #[arg(last = true)]
    pub service: Vec<std::ffi::OsString>,
}

/// How steps reach a Docker service container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum StepTransportArg {
    /// The agent where it can run, else one exec per step (the reason is recorded).
    #[default]
    Auto,
    /// Always the agent; an environment where it cannot run fails.
    Agent,
    /// One `docker exec` per step.
    Exec,
}

#[derive(Debug, Args)]
pub struct SpansArgs {
    /// A trace file: OTLP JSON lines (`clnrm run` saves one per scenario).
    pub file: PathBuf,
    /// Print attributes and events under each span.
    #[arg(long, help_heading = TERMINAL)]
    pub attrs: bool,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// The test file whose expectations are checked.
    pub test: PathBuf,
    /// The saved trace (OTLP JSON lines).
    pub file: PathBuf,
    /// Scenario whose own expectations apply too (default: the only scenario, else test level
    /// only).
    #[arg(long, value_name = "NAME", help_heading = SELECTION)]
    pub scenario: Option<String>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DiffFormatArg {
    #[default]
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier trace (OTLP JSON lines).
    pub old: PathBuf,
    /// The later trace, compared with the earlier one.
    pub new: PathBuf,
    /// How the differences are printed on stdout.
    #[arg(long, value_enum, default_value_t, help_heading = TERMINAL)]
    pub format: DiffFormatArg,
    /// Report a duration change only above this fraction of the old duration.
    #[arg(long, value_name = "RATIO", default_value_t = 0.2, help_heading = TERMINAL)]
    pub duration_ratio: f64,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct FmtArgs {
    /// Files or folders (default: the current folder).
    pub paths: Vec<PathBuf>,
    /// Change nothing: print a unified diff per file and exit 1 when anything would change.
    #[arg(long, help_heading = EXECUTION)]
    pub check: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LintFormatArg {
    #[default]
    Human,
    Json,
    Github,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files or folders (default: the current folder).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// How findings are printed: for people, as JSON on stdout, or as workflow annotations.
    #[arg(long, value_enum, default_value_t, help_heading = TERMINAL)]
    pub format: LintFormatArg,
    /// Exit 1 on warnings too.
    #[arg(long, help_heading = EXECUTION)]
    pub deny_warnings: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// JSON results files (`clnrm run --json`); several are merged (shards of one run).
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Write JUnit XML here (`-` for stdout).
    #[arg(long, value_name = "PATH", help_heading = REPORTS)]
    pub junit: Option<PathBuf>,
    /// Write the markdown report here (`-` for stdout).
    #[arg(long, value_name = "PATH", help_heading = REPORTS)]
    pub markdown: Option<PathBuf>,
    /// Write the merged JSON results here (`-` for stdout).
    #[arg(long, value_name = "PATH", help_heading = REPORTS)]
    pub json: Option<PathBuf>,
    /// Print the summary table on stderr (`table`) or nothing (`none`).
    #[arg(long, value_enum, default_value_t = ReportFormat::Table, help_heading = TERMINAL)]
    pub format: ReportFormat,
    /// Count flaky scenarios (failed, then passed on a retry) as failed.
    #[arg(long, help_heading = EXECUTION)]
    pub flaky_fail: bool,
    /// Settings profile whose `flaky_fail` applies, as for the run that wrote the results
    /// (default: `ci` when the `CI` variable is set).
    #[arg(long, value_name = "NAME", help_heading = EXECUTION)]
    pub profile: Option<String>,
    /// Fail (exit 2) when results of a shard of the run are missing, instead of warning.
    #[arg(long, help_heading = EXECUTION)]
    pub require_all_shards: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    None,
}

#[derive(Debug, Args)]
pub struct GateCmdArgs {
    /// JSON results of a run (several are merged first).
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Baseline file (default: `.clnrm/perf-baseline.toml` or the config's `baseline`).
    #[arg(long, value_name = "PATH", help_heading = GATE)]
    pub baseline: Option<PathBuf>,
    /// Acknowledge a known regression of this scenario (`path#scenario`, a scenario name, or
    /// `all`): it is reported as a warning.
    #[arg(long = "ack", value_name = "SCENARIO", help_heading = GATE)]
    pub acks: Vec<String>,
    /// Write the JSON results with the gate verdicts here.
    #[arg(long, value_name = "PATH", help_heading = REPORTS)]
    pub json: Option<PathBuf>,
    /// Write the markdown report with the gate verdicts here.
    #[arg(long, value_name = "PATH", help_heading = REPORTS)]
    pub markdown: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum BaselineCmd {
    /// Run the suite N times and append each run's medians to the baseline history.
    #[command(after_help = exit::HELP_BASELINE_RECORD)]
    Record(BaselineRecordArgs),
    /// Append saved JSON results (e.g. of several nightly runners) to the history.
    #[command(after_help = exit::HELP_BASELINE_UPDATE)]
    Update(BaselineUpdateArgs),
    /// Every key with its centre, spread, minimum detectable effect, budget and history size.
    #[command(after_help = exit::HELP_BASELINE_FILE)]
    Show(BaselineFileArgs),
    /// What moved between two baseline files.
    #[command(after_help = exit::HELP_BASELINE_FILE)]
    Diff {
        /// The earlier baseline file.
        old: PathBuf,
        /// The later baseline file.
        new: PathBuf,
    },
    /// Drift of every key since the anchor (e.g. the last release).
    #[command(after_help = exit::HELP_BASELINE_FILE)]
    Drift {
        #[command(flatten)]
        file: BaselineFileArgs,
        /// Anchor label to compare with (default: the stored anchor).
        #[arg(long, help_heading = GATE)]
        anchor: Option<String>,
    },
    /// Mark the current centres as the anchor that drift is measured against.
    #[command(after_help = exit::HELP_BASELINE_FILE)]
    Anchor {
        /// Name of the anchor (e.g. the release, `v1.4.0`).
        label: String,
        #[command(flatten)]
        file: BaselineFileArgs,
    },
}

#[derive(Debug, Args)]
pub struct BaselineFileArgs {
    /// Baseline file (default: `.clnrm/perf-baseline.toml` or the config's `baseline`).
    #[arg(long, value_name = "PATH", help_heading = GATE)]
    pub baseline: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BaselineRecordArgs {
    /// Files or folders (default: the current folder).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Runs to record.
    #[arg(long, default_value_t = 5, help_heading = EXECUTION)]
    pub runs: u32,
    #[command(flatten)]
    pub exec: ExecArgs,
    #[command(flatten)]
    pub file: BaselineFileArgs,
    /// Also write what moved (markdown) to this file.
    #[arg(long, value_name = "PATH", help_heading = REPORTS)]
    pub diff_out: Option<PathBuf>,
    /// Also collect spans and record each passing scenario's span tree (of the last run) as a
    /// trace snapshot beside the baseline (`<baseline>.traces/`): the gate then reports
    /// structural drift from it (a warning, or a failure under `[perf] trace_drift = "fail"`).
    #[arg(long)]
    pub traces: bool,
}

#[derive(Debug, Args)]
pub struct BaselineUpdateArgs {
    /// JSON results files (`clnrm run --json`) to append.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    #[command(flatten)]
    pub file: BaselineFileArgs,
    /// Append even when the results carry a confirmed regression.
    #[arg(long, help_heading = GATE)]
    pub force: bool,
}

/// Options of the loading pipeline shared by every command that reads test files.
#[derive(Debug, Clone, Args, Default)]
#[command(next_help_heading = TEST_FILES)]
pub struct LoadArgs {
    /// Template variable, highest precedence (file [vars] < env CLNRM_VAR_<NAME> < --var).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Freeze `now_rfc3339()` at this RFC 3339 instant.
    #[arg(long, value_name = "RFC3339")]
    pub freeze_clock: Option<String>,
    /// Let test files bind-mount this host path (and below) even outside the repository
    /// (added to `allow_mounts` of `.clnrm/config.toml`); repeatable.
    #[arg(long = "allow-mount", value_name = "PATH")]
    pub allow_mounts: Vec<std::path::PathBuf>,
    /// Let test files write through host mounts they mark `:rw` (as `allow_rw_mounts = true`
    /// in `.clnrm/config.toml`); without it every host mount is read-only.
    #[arg(long)]
    pub allow_rw_mounts: bool,
    /// Mask the value of this environment variable as `***` in every report and log line
    /// (added to `mask_env` of `.clnrm/config.toml`); repeatable.
    #[arg(long = "mask-env", value_name = "NAME")]
    pub mask_env: Vec<String>,
    /// Image of the default service, which runs steps that name no service (overrides
    /// `default_image` in `.clnrm/config.toml`).
    #[arg(long, value_name = "IMAGE")]
    pub default_image: Option<String>,
}

pub fn parse_var(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=VALUE"))?;
    let k = k.trim();
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "variable name `{k}` must be letters, digits and `_`"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

/// A duration as `--slow-timeout` takes it: `60s`, `2m`, `1m 30s`; `0` turns it off.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    if s.trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); e.g. `60s`, `2m`"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files or folders (default: the current folder).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Output format of the result.
    #[arg(long, value_enum, default_value_t, help_heading = TERMINAL)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The test file or template to render.
    pub file: PathBuf,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Print the resolved variable map (and where each value came from) instead of the TOML.
    #[arg(long, help_heading = TERMINAL)]
    pub map: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Files or folders (default: the current folder).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Same selection as `run --filter` (`!slow`, `name~^api`, `tag:smoke`, globs).
    #[arg(long = "filter", value_name = "EXPR", value_parser = crate::plan::check_filter, help_heading = SELECTION)]
    pub filters: Vec<String>,
    /// Select tests or scenarios carrying this tag.
    #[arg(long = "tag", value_name = "TAG", help_heading = SELECTION)]
    pub tags: Vec<String>,
    /// List only shard K of N (e.g. `2/4`), split as `run --shard` splits it.
    #[arg(long, value_name = "K/N", help_heading = SELECTION)]
    pub shard: Option<crate::plan::ShardSpec>,
    /// Output format: a list for people, or JSON on stdout.
    #[arg(long, value_enum, default_value_t, help_heading = TERMINAL)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to scaffold (default: the current folder).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// Where and what to run: shared by `run` and `baseline record`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Scenarios running at once (default: the profile's or config's `jobs`, else the number
    /// of cores).
    #[arg(short, long, value_name = "N", help_heading = EXECUTION)]
    pub jobs: Option<usize>,
    /// Where to run (default: the config's `backend`, else `auto`).
    #[arg(long, value_enum, help_heading = EXECUTION)]
    pub backend: Option<BackendChoice>,
    /// Select scenarios: `TEXT` (in `test/scenario` or the path), a glob (`api-*`),
    /// `name~REGEX`, `tag:TAG`, `path:GLOB`; `!` negates (`!slow`). Repeatable: any positive
    /// filter selects, any negated one excludes.
    #[arg(long = "filter", value_name = "EXPR", value_parser = crate::plan::check_filter, help_heading = SELECTION)]
    pub filters: Vec<String>,
    /// Select tests or scenarios carrying this tag.
    #[arg(long = "tag", value_name = "TAG", help_heading = SELECTION)]
    pub tags: Vec<String>,
    /// How steps reach Docker containers: an agent in the container, or one exec per step
    /// [env: CLNRM_STEP_TRANSPORT] [default: auto].
    #[arg(long, value_enum, help_heading = EXECUTION)]
    pub step_transport: Option<StepTransportArg>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Files or folders (default: the config's `paths`, else the current folder).
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Settings profile of `.clnrm/config.toml` (`[profile.NAME]`, on top of
    /// `[profile.default]`; default: `ci` when the `CI` variable is set).
    #[arg(long, value_name = "NAME", help_heading = EXECUTION)]
    pub profile: Option<String>,
    /// Stop starting scenarios after the first failure.
    #[arg(long, help_heading = EXECUTION, overrides_with = "no_fail_fast")]
    pub fail_fast: bool,
    /// Run every scenario even when the profile sets `fail_fast = true`.
    #[arg(long, help_heading = EXECUTION, overrides_with = "fail_fast")]
    pub no_fail_fast: bool,
    /// Retry a failing scenario up to N times (overrides the files' `retries`).
    #[arg(long, value_name = "N", help_heading = EXECUTION)]
    pub retries: Option<u32>,
    /// Count flaky scenarios (failed, then passed on a retry) as failed.
    #[arg(long, help_heading = EXECUTION)]
    pub flaky_fail: bool,
    /// Pull images that are missing locally (never done implicitly).
    #[arg(long, help_heading = EXECUTION)]
    pub pull: bool,
    /// Run only shard K of N (e.g. `2/4`), balanced by the baseline's durations.
    #[arg(long, value_name = "K/N", help_heading = SELECTION)]
    pub shard: Option<crate::plan::ShardSpec>,
    /// When to show the tail of a failed step's stdout and stderr: under its `FAIL` line,
    /// after the last scenario, both, or never [default: the profile's, else immediate].
    #[arg(long, value_enum, value_name = "WHEN", help_heading = TERMINAL)]
    pub failure_output: Option<FailureOutput>,
    /// Print `SLOW` for a scenario still running after this long, and again after each
    /// multiple (`60s`, `2m`; `0` turns it off) [default: the profile's, else 60s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = TERMINAL)]
    pub slow_timeout: Option<std::time::Duration>,
    /// Write JUnit XML here (`-` for stdout).
    #[arg(long, value_name = "PATH", help_heading = REPORTS)]
    pub junit: Option<PathBuf>,
    /// Write the markdown report here (`-` for stdout). Automatic under GitHub Actions.
    #[arg(long, value_name = "PATH", help_heading = REPORTS)]
    pub markdown: Option<PathBuf>,
    /// Write the JSON results here (`-` for stdout).
    #[arg(long, value_name = "PATH", help_heading = REPORTS)]
    pub json: Option<PathBuf>,
    /// Collect OpenTelemetry spans even when no test declares telemetry expectations.
    #[arg(long, help_heading = REPORTS)]
    pub telemetry: bool,
    /// Also send clnrm's own spans (a `clnrm.run` root, a child per scenario and per step) to
    /// this collector over OTLP/HTTP protobuf at the end of the run (`http://host:4318`).
    #[arg(long, value_name = "URL", help_heading = REPORTS)]
    pub otel_endpoint: Option<String>,
    /// Save each scenario's spans (OTLP JSON lines) here (default: `spans/` beside `--json`).
    #[arg(long, value_name = "DIR", help_heading = REPORTS)]
    pub spans_dir: Option<PathBuf>,
    #[command(flatten)]
    pub gate: GateArgs,
    /// Re-run on every save of a test file (local loop).
    #[arg(long, help_heading = WATCH)]
    pub watch: bool,
    /// Watch mode: quiet time after a save before reacting; bursts widen it (up to 4x).
    #[arg(long, value_name = "MS", default_value_t = 50, help_heading = WATCH)]
    pub debounce_ms: u64,
    /// Watch mode: clear the screen before each cycle.
    #[arg(long, help_heading = WATCH)]
    pub clear: bool,
    /// Watch mode: stop after N change cycles (the initial run is cycle 0; for tests and
    /// benchmarks).
    #[arg(long, value_name = "N", hide = true)]
    pub max_cycles: Option<u64>,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Perf gate options.
#[derive(Debug, Clone, Args, Default)]
#[command(next_help_heading = GATE)]
pub struct GateArgs {
    /// Compare step timings with the baseline; a confirmed regression exits 3.
    #[arg(long)]
    pub gate: bool,
    /// Baseline file (default: `.clnrm/perf-baseline.toml` or the config's `baseline`).
    #[arg(long, value_name = "PATH")]
    pub baseline: Option<PathBuf>,
    /// Acknowledge a known regression of this scenario (`path#scenario`, a scenario name, or
    /// `all`): it is reported as a warning.
    #[arg(long = "ack", value_name = "SCENARIO")]
    pub acks: Vec<String>,
    /// Re-runs of each flagged scenario before a regression is confirmed.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub confirm_runs: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every subcommand, depth first, with its path (`baseline record`).
    fn all(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name()).trim().to_string();
            out.push((p.clone(), sub.clone()));
            all(sub, p, out);
        }
    }

    #[test]
    fn every_option_has_help_text_and_a_heading() {
        let mut cmds = Vec::new();
        all(&Cli::command(), String::new(), &mut cmds);
        let mut missing = Vec::new();
        for (path, cmd) in &cmds {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() {
                    missing.push(format!("{path}: `{id}` has no help text"));
                }
                if !arg.is_positional() && arg.get_help_heading().is_none() {
                    missing.push(format!("{path}: `--{id}` has no heading"));
                }
            }
        }
        assert!(missing.is_empty(), "{missing:#?}");
    }

    #[test]
    fn exit_codes_are_listed_where_they_apply() {
        let mut cmds = Vec::new();
        all(&Cli::command(), String::new(), &mut cmds);
        let after = |name: &str| {
            cmds.iter()
                .find(|(p, _)| p == name)
                .and_then(|(_, c)| c.get_after_help().map(|h| h.to_string()))
        };
        assert_eq!(after("run").as_deref(), Some(HELP_TABLE));
        assert!(after("fmt").unwrap().contains("1  with `--check`"));
        assert!(!after("fmt").unwrap().contains("backend"));
        assert!(after("gate").unwrap().contains("3  performance regression"));
        // Printing a script or a page has no outcome to document.
        assert_eq!(after("completions"), None);
        assert_eq!(after("man"), None);
        for (path, cmd) in &cmds {
            if path != "run" && path != "dev" {
                let h = cmd
                    .get_after_help()
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                assert!(
                    !h.contains("4  no tests selected") || path.contains("record"),
                    "{path}"
                );
            }
        }
    }

    #[test]
    fn slow_timeout_takes_durations_and_zero() {
        assert_eq!(parse_duration("0"), Ok(std::time::Duration::ZERO));
        assert_eq!(
            parse_duration("1m 30s"),
            Ok(std::time::Duration::from_secs(90))
        );
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("`soon` is not a duration"));
    }
}
