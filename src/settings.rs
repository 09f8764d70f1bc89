//! Arguments + environment + project config -> one validated [`Settings`], resolved once per
//! process. Every command takes it; nothing below re-reads the config or the environment.
//!
//! Precedence, lowest first: built-in defaults < `.clnrm/config.toml` < its
//! `[profile.default]` < the selected profile (`--profile`, else `ci` when `CI` is set) <
//! environment < flags. The config is found once, walking up from the current folder to the
//! repository root.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use clap::ValueEnum;

use crate::backend::StepTransport;
use crate::cli::{Cli, Command, ExecArgs, GateArgs, LoadArgs, StepTransportArg};
use crate::plan::Selection;
use crate::profile::{Profile, UnknownProfile};
use crate::report::{DisplayOptions, FailureOutput, GithubOutputs, Outputs, Printer};
use crate::results::BackendKind;
use crate::runner::RunOptions;
use crate::suite::LoadOptions;

pub const CONFIG_PATH: &str = ".clnrm/config.toml";
pub const DEFAULT_BASELINE: &str = ".clnrm/perf-baseline.toml";
/// A scenario still running after this long is reported `SLOW`, unless a profile or
/// `--slow-timeout` says otherwise.
pub const DEFAULT_SLOW_TIMEOUT: Duration = Duration::from_secs(60);

/// `.clnrm/config.toml` as written.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Default paths when none is given on the command line (relative to the config's project).
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    pub jobs: Option<usize>,
    pub backend: Option<BackendChoice>,
    /// Baseline file (relative to the config's project).
    pub baseline: Option<PathBuf>,
    /// Host paths test files may bind-mount outside the repository (relative to the project
    /// root); `--allow-mount` adds to them.
    #[serde(default)]
    pub allow_mounts: Vec<PathBuf>,
    /// Whether test files may write through a mount they mark `:rw` (every other host mount
    /// is read-only); `--allow-rw-mounts` sets it too.
    #[serde(default)]
    pub allow_rw_mounts: bool,
    /// Environment variables whose values are masked (`***`) in every report and log line;
    /// `--mask-env` adds to them.
    #[serde(default)]
    pub mask_env: Vec<String>,
    /// Default container memory limit of services that set none (`"1g"`, `"512m"`; `"none"`
    /// for no limit).
    pub container_memory: Option<String>,
    /// Default pids limit of services that set none (`0` for no limit).
    pub container_pids: Option<i64>,
    /// Image of the default service, which runs steps that name no service.
    pub default_image: Option<String>,
    /// Named sets of run settings (`[profile.default]`, `[profile.ci]`, ...).
    #[serde(default)]
    pub profile: BTreeMap<String, Profile>,
}

/// Where to run: asked for by `--backend` or the config's `backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// Docker when a daemon answers; local when none does and no service needs an image.
    #[default]
    Auto,
    Docker,
    Local,
}

impl BackendChoice {
    /// The backend to open for a plan; `needs_image` is whether any service names an image.
    pub fn resolve(self, needs_image: bool) -> BackendKind {
        match self {
            BackendChoice::Docker => BackendKind::Docker,
            BackendChoice::Local => BackendKind::Local,
            BackendChoice::Auto if needs_image => BackendKind::Docker,
            BackendChoice::Auto => BackendKind::Local,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("cannot read `{path}`: {message}")]
    ReadConfig { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    BadConfig { path: PathBuf, message: String },
    #[error("`--freeze-clock {0}` is not an RFC 3339 instant (e.g. `2024-01-01T00:00:00Z`)")]
    FreezeClock(String),
    #[error("`--runs` must be at least 1")]
    ZeroRuns,
    #[error("{0}")]
    OtelEndpoint(String),
    #[error("CLNRM_STEP_TRANSPORT={0:?} is not one of `auto`, `agent`, `exec`")]
    StepTransport(String),
    #[error(transparent)]
    UnknownProfile(#[from] UnknownProfile),
}

impl SettingsError {
    pub fn hint(&self) -> Option<String> {
        match self {
            SettingsError::UnknownProfile(e) => Some(e.hint()),
            _ => None,
        }
    }
}

/// The process environment, read once (so settings resolve the same way in tests).
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub vars: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub stderr_is_tty: bool,
}

impl Environment {
    pub fn capture() -> Environment {
        use std::io::IsTerminal;
        Environment {
            vars: std::env::vars().collect(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            stderr_is_tty: std::io::stderr().is_terminal(),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// `CI` set to anything but empty or `false`.
    pub fn is_ci(&self) -> bool {
        self.get("CI")
            .is_some_and(|v| !v.is_empty() && v != "false")
    }

    pub fn github_actions(&self) -> bool {
        self.get("GITHUB_ACTIONS") == Some("true")
    }
}

/// Perf gate settings of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateSettings {
    /// Compare with the baseline after the run.
    pub enabled: bool,
    /// Acknowledged keys (`path#scenario`, a scenario name, or `all`).
    pub acks: BTreeSet<String>,
    /// Re-runs of each flagged scenario before a regression is confirmed.
    pub confirm_runs: u32,
}

/// Everything a command needs to know, resolved once.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The project: the folder holding `.clnrm/config.toml`, else the current folder.
    pub root: PathBuf,
    /// The config file that was read, if any.
    pub config_path: Option<PathBuf>,
    /// Discovery roots: the command's paths, else the config's, else the current folder.
    pub paths: Vec<PathBuf>,
    /// Template variables, environment `CLNRM_VAR_*`, frozen clock.
    pub load: LoadOptions,
    pub selection: Selection,
    /// Scenarios running at once.
    pub jobs: usize,
    /// Environments kept warm or being warmed at once: the running ones plus two ahead.
    pub pool_size: usize,
    pub backend: BackendChoice,
    /// Pull missing images (never implicit).
    pub pull: bool,
    pub fail_fast: bool,
    /// Overrides the files' `retries` when set.
    pub retries: Option<u32>,
    /// Flaky scenarios count as failed.
    pub flaky_fail: bool,
    /// The perf baseline file (flag, else config, else the default).
    pub baseline: PathBuf,
    pub gate: GateSettings,
    /// Reports to write.
    pub outputs: Outputs,
    /// The profile of `.clnrm/config.toml` applied on top of `[profile.default]` (`--profile`,
    /// else `ci` when the `CI` variable is set; `ci` need not be defined).
    pub profile: Option<String>,
    /// When the output of a failed step is shown in the terminal.
    pub failure_output: FailureOutput,
    /// A scenario still running after each multiple of this is reported `SLOW` (`None`: off).
    pub slow_timeout: Option<Duration>,
    pub printer: Printer,
    /// Memory and pids limits of containers whose service sets none.
    pub container_defaults: crate::backend::ContainerDefaults,
    /// Environment variables whose values are masked everywhere (`mask_env`, `--mask-env`).
    pub mask_env: Vec<String>,
    /// `--otel-endpoint`: the collector that gets clnrm's own run, scenario and step spans.
    pub otel_export: Option<hyper::Uri>,
    /// How steps reach Docker containers: `--step-transport`, else `CLNRM_STEP_TRANSPORT`,
    /// else `auto`.
    pub step_transport: StepTransport,
}

impl Settings {
    /// Resolve the settings of `cli` against `env`.
    pub fn resolve(cli: &Cli, env: &Environment) -> Result<Settings, SettingsError> {
        let (root, config_path, config) = find_config(&env.cwd)?;
        let printer = Printer::new(
            cli.color,
            env.stderr_is_tty,
            env.is_ci(),
            env.vars.get("NO_COLOR").map(String::as_str),
            env.vars.get("TERM").map(String::as_str),
        );
        let in_project = |p: &PathBuf| -> PathBuf {
            if p.is_absolute() || root == Path::new(".") {
                p.clone()
            } else {
                root.join(p)
            }
        };
        let default_paths: Vec<PathBuf> = config.paths.iter().map(in_project).collect();
        let config_baseline = config.baseline.as_ref().map(in_project);
        let mut s = Settings {
            root: root.clone(),
            config_path,
            paths: Vec::new(),
            load: LoadOptions::default(),
            selection: Selection::default(),
            jobs: 0,
            pool_size: 0,
            backend: config.backend.unwrap_or_default(),
            pull: false,
            fail_fast: false,
            retries: None,
            flaky_fail: false,
            baseline: config_baseline
                .clone()
                .unwrap_or_else(|| in_project(&PathBuf::from(DEFAULT_BASELINE))),
            gate: GateSettings::default(),
            outputs: Outputs::default(),
            profile: None,
            failure_output: FailureOutput::default(),
            slow_timeout: Some(DEFAULT_SLOW_TIMEOUT),
            printer,
            container_defaults: crate::backend::ContainerDefaults::from_config(
                config.container_memory.as_deref(),
                config.container_pids,
            ),
            mask_env: config.mask_env.clone(),
            otel_export: None,
            step_transport: StepTransport::Auto,
        };
        // Host paths test files may mount outside their repository: the config's (relative
        // to the project), then `--allow-mount` (relative to the current folder).
        let config_allow: Vec<PathBuf> = config
            .allow_mounts
            .iter()
            .map(|p| env.cwd.join(in_project(p)))
            .collect();
        let mut jobs_flag = None;
        let paths_or_default = |paths: &[PathBuf]| -> Vec<PathBuf> {
            if !paths.is_empty() {
                paths.to_vec()
            } else if !default_paths.is_empty() {
                default_paths.clone()
            } else {
                vec![PathBuf::from(".")]
            }
        };
        match &cli.command {
            Command::Validate(a) => {
                s.paths = paths_or_default(&a.paths);
                s.load = load_options(&a.load, env)?;
                // Invalid files are annotated on the pull request.
                s.outputs = outputs(None, None, None, false, env);
            }
            Command::List(a) => {
                s.paths = paths_or_default(&a.paths);
                s.load = load_options(&a.load, env)?;
                // `list` selects and shards exactly as `run` does.
                s.selection.filters = a.filters.clone();
                s.selection.tags = a.tags.clone();
                s.selection.shard = a.shard;
            }
            Command::Render(a) => s.load = load_options(&a.load, env)?,
            Command::Lint(a) => {
                s.paths = paths_or_default(&a.paths);
                s.load = load_options(&a.load, env)?;
            }
            Command::Fmt(a) => s.paths = paths_or_default(&a.paths),
            Command::Run(a) | Command::Dev(a) => {
                let (name, p) =
                    crate::profile::select(a.profile.as_deref(), env.is_ci(), &config.profile)?;
                s.profile = name;
                s.paths = paths_or_default(&a.paths);
                s.load = load_options(&a.load, env)?;
                jobs_flag = exec(&mut s, &a.exec, env)?.or(p.jobs);
                s.selection.shard = a.shard;
                s.pull = a.pull;
                s.fail_fast = if a.fail_fast || a.no_fail_fast {
                    a.fail_fast
                } else {
                    p.fail_fast.unwrap_or(false)
                };
                s.retries = a.retries.or(p.retries);
                s.flaky_fail = a.flaky_fail || p.flaky_fail.unwrap_or(false);
                s.failure_output = a.failure_output.or(p.failure_output).unwrap_or_default();
                let slow = a
                    .slow_timeout
                    .or(p.slow_timeout)
                    .unwrap_or(DEFAULT_SLOW_TIMEOUT);
                s.slow_timeout = (!slow.is_zero()).then_some(slow);
                if let Some(url) = &a.otel_endpoint {
                    s.otel_export = Some(
                        crate::telemetry::export::check_endpoint(url)
                            .map_err(SettingsError::OtelEndpoint)?,
                    );
                }
                gate(&mut s, &a.gate);
                // Report paths of the profile are relative to the project, like the config's;
                // `-` stays stdout.
                let report_path = |p: &PathBuf| {
                    if p.as_os_str() == "-" {
                        p.clone()
                    } else {
                        in_project(p)
                    }
                };
                s.outputs = outputs(
                    a.junit
                        .clone()
                        .or_else(|| p.junit.as_ref().map(report_path)),
                    a.markdown
                        .clone()
                        .or_else(|| p.markdown.as_ref().map(report_path)),
                    a.json.clone().or_else(|| p.json.as_ref().map(report_path)),
                    true,
                    env,
                );
            }
            Command::Report(a) => {
                // The profile's `flaky_fail` decides the merged exit code as it decided each
                // shard's.
                let (name, p) =
                    crate::profile::select(a.profile.as_deref(), env.is_ci(), &config.profile)?;
                s.profile = name;
                s.flaky_fail = a.flaky_fail || p.flaky_fail.unwrap_or(false);
                s.outputs = outputs(
                    a.junit.clone(),
                    a.markdown.clone(),
                    a.json.clone(),
                    a.format == crate::cli::ReportFormat::Table,
                    env,
                );
                // Re-rendering saved results is not a run: no annotations, no job summary.
                s.outputs.github = None;
            }
            Command::Gate(a) => {
                if let Some(b) = &a.baseline {
                    s.baseline = b.clone();
                }
                s.gate.enabled = true;
                s.gate.acks = a.acks.iter().cloned().collect();
                s.outputs = outputs(None, a.markdown.clone(), a.json.clone(), true, env);
                s.outputs.github = None;
            }
            Command::Baseline(cmd) => {
                use crate::cli::BaselineCmd;
                let file = match cmd {
                    BaselineCmd::Record(a) => {
                        if a.runs == 0 {
                            return Err(SettingsError::ZeroRuns);
                        }
                        s.paths = paths_or_default(&a.paths);
                        s.load = load_options(&a.load, env)?;
                        jobs_flag = exec(&mut s, &a.exec, env)?;
                        Some(&a.file)
                    }
                    BaselineCmd::Update(a) => Some(&a.file),
                    BaselineCmd::Show(f) => Some(f),
                    BaselineCmd::Drift { file, .. } | BaselineCmd::Anchor { file, .. } => {
                        Some(file)
                    }
                    BaselineCmd::Diff { .. } => None,
                };
                if let Some(b) = file.and_then(|f| f.baseline.clone()) {
                    s.baseline = b;
                }
            }
            Command::Analyze(a) => s.load = load_options(&a.load, env)?,
            Command::Init(_)
            | Command::Clean
            | Command::Agent(_)
            | Command::Spans(_)
            | Command::Diff(_)
            | Command::Completions(_)
            | Command::Man => {}
        }
        // `--default-image` wins over the config's `default_image`.
        if s.load.default_image.is_none() {
            s.load.default_image = config.default_image.clone();
        }
        s.jobs = jobs_flag
            .or(config.jobs)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        s.pool_size = s.jobs + 2;
        let cli_load = match &cli.command {
            Command::Validate(a) => Some(&a.load),
            Command::List(a) => Some(&a.load),
            Command::Render(a) => Some(&a.load),
            Command::Lint(a) => Some(&a.load),
            Command::Run(a) | Command::Dev(a) => Some(&a.load),
            Command::Baseline(crate::cli::BaselineCmd::Record(a)) => Some(&a.load),
            _ => None,
        };
        s.load.allow_mounts = config_allow;
        s.load.allow_rw_mounts = config.allow_rw_mounts;
        if let Some(l) = cli_load {
            s.load.allow_rw_mounts |= l.allow_rw_mounts;
            s.load
                .allow_mounts
                .extend(l.allow_mounts.iter().map(|p| env.cwd.join(p)));
            s.mask_env.extend(l.mask_env.iter().cloned());
        }
        Ok(s)
    }

    /// Runner options for a run of these settings.
    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            jobs: self.jobs,
            fail_fast: self.fail_fast,
            retries: self.retries,
            lookahead: 2,
            telemetry: None,
            slow_timeout: self.slow_timeout,
        }
    }

    /// How runs of these settings are shown; `announce` prints the plan's size first.
    pub fn display(&self, announce: bool) -> DisplayOptions {
        DisplayOptions {
            printer: self.printer,
            announce,
            failure_output: self.failure_output,
        }
    }
}

fn exec(s: &mut Settings, a: &ExecArgs, env: &Environment) -> Result<Option<usize>, SettingsError> {
    if let Some(b) = a.backend {
        s.backend = b;
    }
    s.selection.filters = a.filters.clone();
    s.selection.tags = a.tags.clone();
    s.step_transport = step_transport(a.step_transport, env)?;
    Ok(a.jobs)
}

/// The flag, else `CLNRM_STEP_TRANSPORT` (empty means unset), else `auto`.
fn step_transport(
    flag: Option<StepTransportArg>,
    env: &Environment,
) -> Result<StepTransport, SettingsError> {
    let arg = match flag {
        Some(a) => a,
        None => match env.get("CLNRM_STEP_TRANSPORT").map(str::trim) {
            None | Some("") => StepTransportArg::Auto,
            Some(v) => StepTransportArg::from_str(v, true)
                .map_err(|_| SettingsError::StepTransport(v.to_string()))?,
        },
    };
    Ok(match arg {
        StepTransportArg::Auto => StepTransport::Auto,
        StepTransportArg::Agent => StepTransport::Agent,
        StepTransportArg::Exec => StepTransport::Exec,
    })
}

fn gate(s: &mut Settings, a: &GateArgs) {
    s.gate = GateSettings {
        enabled: a.gate,
        acks: a.acks.iter().cloned().collect(),
        confirm_runs: a.confirm_runs,
    };
    if let Some(b) = &a.baseline {
        s.baseline = b.clone();
    }
}

fn outputs(
    junit: Option<PathBuf>,
    markdown: Option<PathBuf>,
    json: Option<PathBuf>,
    table: bool,
    env: &Environment,
) -> Outputs {
    Outputs {
        junit,
        markdown,
        json,
        table,
        github: env.github_actions().then(|| GithubOutputs {
            step_summary: env.vars.get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            path_prefix: workspace_prefix(env),
        }),
    }
}

/// The working directory relative to `$GITHUB_WORKSPACE`, with a trailing `/` (`""` at the
/// workspace root, or outside it).
fn workspace_prefix(env: &Environment) -> String {
    let Some(ws) = env.vars.get("GITHUB_WORKSPACE") else {
        return String::new();
    };
    match env.cwd.strip_prefix(ws) {
        Ok(rel) if !rel.as_os_str().is_empty() => format!("{}/", rel.display()),
        _ => String::new(),
    }
}

fn load_options(a: &LoadArgs, env: &Environment) -> Result<LoadOptions, SettingsError> {
    if let Some(c) = &a.freeze_clock {
        if chrono::DateTime::parse_from_rfc3339(c).is_err() {
            return Err(SettingsError::FreezeClock(c.clone()));
        }
    }
    Ok(LoadOptions {
        cli_vars: a.vars.iter().cloned().collect(),
        env_vars: env
            .vars
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("CLNRM_VAR_")
                    .map(|n| (n.to_string(), v.clone()))
            })
            .filter(|(k, _)| !k.is_empty())
            .collect(),
        freeze_clock: a.freeze_clock.clone(),
        default_image: a.default_image.clone(),
        ..LoadOptions::default()
    })
}

/// Walk up from `cwd` to the first folder holding `.clnrm/config.toml`, stopping at the
/// repository root (a folder holding `.git`). Returns the project root (`.` when it is the
/// current folder, so paths and baseline keys read as before), the config path and the config.
fn find_config(cwd: &Path) -> Result<(PathBuf, Option<PathBuf>, ProjectConfig), SettingsError> {
    let mut dir = cwd.to_path_buf();
    let mut up = PathBuf::from(".");
    loop {
        let path = dir.join(CONFIG_PATH);
        if path.is_file() {
            let shown = up.join(CONFIG_PATH);
            let config = read_config(&path, &shown)?;
            return Ok((up, Some(shown), config));
        }
        if dir.join(".git").exists() || !dir.pop() {
            return Ok((PathBuf::from("."), None, ProjectConfig::default()));
        }
        up = if up == Path::new(".") {
            PathBuf::from("..")
        } else {
            up.join("..")
        };
    }
}

fn read_config(path: &Path, shown: &Path) -> Result<ProjectConfig, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|e| SettingsError::ReadConfig {
        path: shown.to_path_buf(),
        message: e.to_string(),
    })?;
    let config: ProjectConfig = toml::from_str(&text).map_err(|e| SettingsError::BadConfig {
        path: shown.to_path_buf(),
        message: e.to_string(),
    })?;
    if let Some(m) = &config.container_memory {
        if m != "none" && crate::suite::parse_memory(m).is_none() {
            return Err(SettingsError::BadConfig {
                path: shown.to_path_buf(),
                message: format!(
                    "`container_memory = \"{m}\"` is not a size (`\"1g\"`, `\"512m\"`) or `\"none\"`"
                ),
            });
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ShardSpec;
    use clap::Parser;

    fn settings(
        dir: &Path,
        args: &[&str],
        vars: &[(&str, &str)],
    ) -> Result<Settings, SettingsError> {
        let cli = Cli::try_parse_from(std::iter::once("clnrm").chain(args.iter().copied()))
            .expect("valid args");
        let env = Environment {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: dir.to_path_buf(),
            stderr_is_tty: false,
        };
        Settings::resolve(&cli, &env)
    }

    fn write_config(dir: &Path, text: &str) {
        std::fs::create_dir_all(dir.join(".clnrm")).unwrap();
        std::fs::write(dir.join(CONFIG_PATH), text).unwrap();
    }

    #[test]
    fn step_transport_is_the_flag_else_the_environment_else_auto() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        let t = |args: &[&str], vars: &[(&str, &str)]| {
            settings(dir.path(), args, vars).map(|s| s.step_transport)
        };
        assert_eq!(t(&["run"], &[]), Ok(StepTransport::Auto));
        let env = [("CLNRM_STEP_TRANSPORT", "exec")];
        assert_eq!(t(&["run"], &env), Ok(StepTransport::Exec));
        assert_eq!(
            t(&["run", "--step-transport", "agent"], &env),
            Ok(StepTransport::Agent)
        );
        assert_eq!(
            t(
                &["baseline", "record"],
                &[("CLNRM_STEP_TRANSPORT", "Agent")]
            ),
            Ok(StepTransport::Agent)
        );
        assert_eq!(
            t(&["run"], &[("CLNRM_STEP_TRANSPORT", "")]),
            Ok(StepTransport::Auto)
        );
        let bad = [("CLNRM_STEP_TRANSPORT", "ssh")];
        assert_eq!(
            t(&["run"], &bad),
            Err(SettingsError::StepTransport("ssh".into()))
        );
        // Commands that run nothing do not read it.
        assert!(t(&["validate"], &bad).is_ok());
    }

    #[test]
    fn missing_config_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        let s = settings(dir.path(), &["run", "-j", "3"], &[]).unwrap();
        assert_eq!(s.config_path, None);
        assert_eq!(s.paths, vec![PathBuf::from(".")]);
        assert_eq!((s.jobs, s.pool_size), (3, 5));
        assert_eq!(s.backend, BackendChoice::Auto);
        assert_eq!(s.baseline, PathBuf::from(DEFAULT_BASELINE));
        assert_eq!(s.profile, None);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), "jobs = 3\npathz = []\n");
        let err = settings(dir.path(), &["validate"], &[]).unwrap_err();
        assert!(err.to_string().contains("unknown field `pathz`"), "{err}");
        write_config(dir.path(), "backend = \"podman\"\n");
        let err = settings(dir.path(), &["validate"], &[]).unwrap_err();
        assert!(
            err.to_string().contains("unknown variant `podman`"),
            "{err}"
        );
    }

    #[test]
    fn config_is_found_walking_up_and_its_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        write_config(
            dir.path(),
            "paths = [\"tests\"]\njobs = 7\nbackend = \"local\"\nbaseline = \"perf.toml\"\n",
        );
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let s = settings(&sub, &["run"], &[]).unwrap();
        assert_eq!(s.root, PathBuf::from("../.."));
        assert_eq!(
            s.config_path,
            Some(PathBuf::from("../../.clnrm/config.toml"))
        );
        assert_eq!(s.paths, vec![PathBuf::from("../../tests")]);
        assert_eq!(s.baseline, PathBuf::from("../../perf.toml"));
        assert_eq!((s.jobs, s.backend), (7, BackendChoice::Local));
        // At the project root, paths read exactly as written.
        let s = settings(dir.path(), &["run"], &[]).unwrap();
        assert_eq!(s.paths, vec![PathBuf::from("tests")]);
        assert_eq!(s.baseline, PathBuf::from("perf.toml"));
    }

    #[test]
    fn read_write_mounts_need_the_config_or_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        let rw = |args: &[&str]| {
            settings(dir.path(), args, &[])
                .unwrap()
                .load
                .allow_rw_mounts
        };
        assert!(!rw(&["validate"]));
        assert!(rw(&["validate", "--allow-rw-mounts"]));
        assert!(rw(&["run", "--allow-rw-mounts"]));
        write_config(dir.path(), "allow_rw_mounts = true\n");
        assert!(rw(&["validate"]));
        assert!(rw(&["run"]));
        write_config(dir.path(), "allow_rw_mounts = false\n");
        assert!(!rw(&["run"]));
    }

    #[test]
    fn the_walk_stops_at_the_repository_root() {
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path(), "jobs = 7\n");
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        let s = settings(&repo, &["run"], &[]).unwrap();
        assert_eq!(s.config_path, None);
    }

    #[test]
    fn flags_win_over_config_and_one_baseline_serves_the_whole_run() {
        let dir = tempfile::tempdir().unwrap();
        write_config(
            dir.path(),
            "jobs = 7\nbackend = \"local\"\nbaseline = \"perf.toml\"\n",
        );
        let s = settings(
            dir.path(),
            &[
                "run",
                "--backend",
                "docker",
                "-j",
                "1",
                "--baseline",
                "x.toml",
                "--gate",
                "--shard",
                "1/2",
                "--ack",
                "a#b",
            ],
            &[("CI", "true"), ("CLNRM_VAR_who", "env")],
        )
        .unwrap();
        assert_eq!((s.jobs, s.backend), (1, BackendChoice::Docker));
        // The shard balance and the gate read the same file.
        assert_eq!(s.baseline, PathBuf::from("x.toml"));
        assert!(s.gate.enabled);
        assert_eq!(s.gate.acks, BTreeSet::from(["a#b".to_string()]));
        assert_eq!(s.selection.shard, Some(ShardSpec { index: 1, count: 2 }));
        assert_eq!(s.profile.as_deref(), Some("ci"));
        assert_eq!(s.load.env_vars.get("who").map(String::as_str), Some("env"));
    }

    #[test]
    fn bad_freeze_clock_and_zero_runs_are_usage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = settings(
            dir.path(),
            &["validate", "--freeze-clock", "yesterday"],
            &[],
        );
        assert_eq!(
            err.unwrap_err(),
            SettingsError::FreezeClock("yesterday".into())
        );
        let err = settings(dir.path(), &["baseline", "record", "--runs", "0"], &[]);
        assert_eq!(err.unwrap_err(), SettingsError::ZeroRuns);
    }

    #[test]
    fn github_outputs_follow_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), &["run"], &[]).unwrap();
        assert_eq!(s.outputs.github, None);
        let s = settings(
            dir.path(),
            &["run"],
            &[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_STEP_SUMMARY", "/tmp/sum.md"),
            ],
        )
        .unwrap();
        assert_eq!(
            s.outputs.github,
            Some(GithubOutputs {
                step_summary: Some(PathBuf::from("/tmp/sum.md")),
                path_prefix: String::new(),
            })
        );
        // Annotation paths start from the repository root: the working directory's place in
        // $GITHUB_WORKSPACE.
        let sub = dir.path().join("services/api");
        std::fs::create_dir_all(&sub).unwrap();
        let ws = dir.path().to_str().unwrap();
        let s = settings(
            &sub,
            &["run"],
            &[("GITHUB_ACTIONS", "true"), ("GITHUB_WORKSPACE", ws)],
        )
        .unwrap();
        assert_eq!(s.outputs.github.unwrap().path_prefix, "services/api/");
        let s = settings(
            dir.path(),
            &["run"],
            &[("GITHUB_ACTIONS", "true"), ("GITHUB_WORKSPACE", ws)],
        )
        .unwrap();
        assert_eq!(s.outputs.github.unwrap().path_prefix, "");
    }

    const PROFILES: &str = r#"
jobs = 4

[profile.default]
retries = 1
slow_timeout = "30s"

[profile.ci]
retries = 2
jobs = 8
fail_fast = true
junit = "target/junit.xml"
failure_output = "immediate-final"
slow_timeout = "0s"
"#;

    #[test]
    fn profiles_go_between_the_config_and_the_flags() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        write_config(dir.path(), PROFILES);
        // Outside CI: `[profile.default]` on top of the config.
        let s = settings(dir.path(), &["run"], &[]).unwrap();
        assert_eq!(s.profile, None);
        assert_eq!((s.retries, s.jobs, s.fail_fast), (Some(1), 4, false));
        assert_eq!(s.slow_timeout, Some(Duration::from_secs(30)));
        assert_eq!(s.failure_output, FailureOutput::Immediate);
        assert_eq!(s.outputs.junit, None);
        // `CI` selects `[profile.ci]`; its paths are relative to the project.
        let sub = dir.path().join("svc");
        std::fs::create_dir_all(&sub).unwrap();
        let s = settings(&sub, &["run"], &[("CI", "true")]).unwrap();
        assert_eq!(s.profile.as_deref(), Some("ci"));
        assert_eq!((s.retries, s.jobs, s.fail_fast), (Some(2), 8, true));
        assert_eq!(s.slow_timeout, None, "`0s` turns the notice off");
        assert_eq!(s.failure_output, FailureOutput::ImmediateFinal);
        assert_eq!(s.outputs.junit, Some(PathBuf::from("../target/junit.xml")));
        assert_eq!(s.run_options().slow_timeout, None);
        // Flags win over the profile; `--profile` wins over `CI`.
        let s = settings(
            dir.path(),
            &[
                "run",
                "--profile",
                "default",
                "--retries",
                "0",
                "-j",
                "1",
                "--junit",
                "j.xml",
                "--failure-output",
                "never",
                "--slow-timeout",
                "5s",
            ],
            &[("CI", "true")],
        )
        .unwrap();
        assert_eq!(s.profile.as_deref(), Some("default"));
        assert_eq!((s.retries, s.jobs), (Some(0), 1));
        assert_eq!(s.outputs.junit, Some(PathBuf::from("j.xml")));
        assert_eq!(s.failure_output, FailureOutput::Never);
        assert_eq!(s.slow_timeout, Some(Duration::from_secs(5)));
        assert_eq!(s.display(true).failure_output, FailureOutput::Never);
        // `--no-fail-fast` undoes the profile's `fail_fast = true`; the last flag wins.
        let s = settings(dir.path(), &["run", "--no-fail-fast"], &[("CI", "1")]).unwrap();
        assert!(!s.fail_fast);
        let s = settings(
            dir.path(),
            &["run", "--no-fail-fast", "--fail-fast"],
            &[("CI", "1")],
        )
        .unwrap();
        assert!(s.fail_fast);
    }

    #[test]
    fn profile_stdout_paths_stay_stdout_and_report_follows_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        write_config(
            dir.path(),
            "[profile.ci]\nflaky_fail = true\njson = \"-\"\njunit = \"out/j.xml\"\n",
        );
        let sub = dir.path().join("svc");
        std::fs::create_dir_all(&sub).unwrap();
        let s = settings(&sub, &["run"], &[("CI", "true")]).unwrap();
        assert_eq!(s.outputs.json, Some(PathBuf::from("-")));
        assert_eq!(s.outputs.junit, Some(PathBuf::from("../out/j.xml")));
        // `report` over the shards of that run decides its exit code the same way.
        let s = settings(&sub, &["report", "r.json"], &[("CI", "true")]).unwrap();
        assert!(s.flaky_fail);
        let s = settings(&sub, &["report", "r.json"], &[]).unwrap();
        assert!(!s.flaky_fail);
        let s = settings(&sub, &["report", "--profile", "ci", "r.json"], &[]).unwrap();
        assert!(s.flaky_fail);
    }

    #[test]
    fn without_profiles_runs_get_the_built_in_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        let s = settings(dir.path(), &["run"], &[("CI", "1")]).unwrap();
        assert_eq!(s.profile.as_deref(), Some("ci"));
        assert_eq!(s.retries, None);
        assert_eq!(s.slow_timeout, Some(DEFAULT_SLOW_TIMEOUT));
        assert_eq!(s.failure_output, FailureOutput::Immediate);
    }

    #[test]
    fn an_unknown_profile_is_a_usage_error_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        write_config(dir.path(), PROFILES);
        let err = settings(dir.path(), &["run", "--profile", "cii"], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown profile `cii`; defined: `ci`, `default`"
        );
        assert_eq!(err.hint().as_deref(), Some("did you mean `ci`?"));
        write_config(dir.path(), "[profile.ci]\nretires = 2\n");
        let err = settings(dir.path(), &["run"], &[]).unwrap_err();
        assert!(err.to_string().contains("unknown field `retires`"), "{err}");
    }
}
