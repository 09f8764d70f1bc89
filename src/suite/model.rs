//! The normalised test model: what every command (validate, run, list, lint, watch) works on.
//!
//! Both dialects (current and upstream) are parsed into these types by `suite::load`; nothing
//! downstream ever sees raw TOML. Every element keeps the 1-based source line where it was
//! declared so that reports and annotations can point at it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default timeout of one step when neither the step, the scenario nor the test sets one.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Default readiness-probe timeout.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default interval between readiness-probe attempts.
pub const DEFAULT_READY_INTERVAL: Duration = Duration::from_millis(100);

/// One loaded, validated test file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestSpec {
    /// Path as discovered (relative to the working directory when it was given relative).
    pub path: PathBuf,
    /// `[meta] name`: unique within a suite.
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// Whole-test timeout (`[meta] timeout`).
    #[serde(with = "opt_duration_ms")]
    pub timeout: Option<Duration>,
    /// Retries for every scenario of the test (`[meta] retries`), overridden per scenario.
    pub retries: Option<u32>,
    /// Services keyed by id, sorted.
    pub services: BTreeMap<String, ServiceSpec>,
    pub scenarios: Vec<ScenarioSpec>,
    pub perf: PerfSpec,
    pub determinism: Determinism,
    /// Telemetry expectations of every scenario (`[expect]` at top level).
    #[serde(skip_serializing_if = "crate::telemetry::Expectations::is_empty")]
    pub expect: crate::telemetry::Expectations,
    /// Which dialect the file was written in (upstream files are normalised, with a warning).
    pub dialect: Dialect,
    /// `[meta] skip = "why"`: every scenario is reported as skipped with this reason.
    pub skip: Option<String>,
    /// `[report]`: report paths used when the command line gives none.
    pub report: ReportSpec,
    /// sha256 (hex) of the rendered TOML: identifies exactly what runs.
    pub content_hash: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Current,
    Upstream,
}

/// A long-lived container (`[service.<id>]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ServiceSpec {
    pub id: String,
    /// Image reference. `None` marks a host service: its steps can only run on the local
    /// backend (processes on the host in a temp workdir).
    pub image: Option<String>,
    /// Main process argv; `None` keeps the image default. The backend keeps a container alive
    /// with `sleep infinity`-like behaviour when the image has no long-running command.
    pub cmd: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    pub limits: Limits,
    pub ready: Option<ReadyProbe>,
    /// Reuse a healthy container across scenarios and runs instead of a fresh one each time.
    pub reuse: bool,
    /// `reuse = "suite"`: the healthy environment may also serve other tests whose services
    /// are identical (faster, not hermetic between tests). `reuse = true` keeps it to the
    /// scenarios of this test.
    pub reuse_suite: bool,
    /// Host mounts, only when the file asks (`mounts = ["host:container[:ro]"]`).
    pub mounts: Vec<String>,
    /// Allow network access beyond the test network (default false: internal network only).
    pub network_access: bool,
    /// `ports = [8080]`: container TCP ports published to this machine on 127.0.0.1, each on
    /// an ephemeral port, for the life of the environment (steps get the mapping as
    /// [`port_vars`] variables).
    pub ports: Vec<u16>,
    pub line: u32,
    /// Services started (and ready) before this one.
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    /// CPUs in milli-cpus (1.5 cpus = 1500).
    pub cpus_milli: Option<u64>,
    pub pids: Option<i64>,
}

/// Readiness probe: exec `cmd` until it exits 0, every `interval`, for at most `timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ReadyProbe {
    pub cmd: Vec<String>,
    #[serde(with = "duration_ms")]
    pub interval: Duration,
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
}

/// `[[scenario]]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioSpec {
    pub name: String,
    pub description: Option<String>,
    /// Default service of the steps; steps may name another.
    pub service: Option<String>,
    #[serde(with = "opt_duration_ms")]
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub tags: Vec<String>,
    pub steps: Vec<StepSpec>,
    /// Telemetry expectations of this scenario (`expect` inside `[[scenario]]`).
    #[serde(skip_serializing_if = "crate::telemetry::Expectations::is_empty")]
    pub expect: crate::telemetry::Expectations,
    pub line: u32,
    /// `skip = "why"`: reported as skipped with this reason, never run.
    pub skip: Option<String>,
}

/// `[[scenario.steps]]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepSpec {
    /// Given name or `step N` (1-based).
    pub name: String,
    /// Resolved service id (step's own, else the scenario's, else the only service of the test).
    pub service: String,
    pub run: Command,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
    #[serde(with = "opt_duration_ms")]
    pub timeout: Option<Duration>,
    pub expect: Expect,
    pub continue_on_failure: bool,
    pub line: u32,
    pub description: Option<String>,
    /// Re-runs of this step when it fails its expectations (not on timeout), 0..=100.
    pub retries: u32,
}

/// What a step executes. Argv is never joined into a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Command {
    /// `cmd = ["prog", "arg with spaces"]`: passed to exec as is.
    Argv(Vec<String>),
    /// `sh = "..."`: run as `sh -c "..."`.
    Shell(String),
}

impl Command {
    /// The argv handed to the backend.
    pub fn to_argv(&self) -> Vec<String> {
        match self {
            Command::Argv(v) => v.clone(),
            Command::Shell(s) => vec!["sh".into(), "-c".into(), s.clone()],
        }
    }

    /// Short human form for reports (argv elements shell-quoted when needed).
    pub fn display(&self) -> String {
        match self {
            Command::Argv(v) => v
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
            Command::Shell(s) => format!("sh -c {}", shell_quote(s)),
        }
    }
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Expectations on one step's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Expect {
    /// Expected exit code (default 0, which `Default` gives).
    pub exit_code: i64,
    pub stdout: OutputExpect,
    pub stderr: OutputExpect,
}

/// Expectations on one output stream; all given conditions must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OutputExpect {
    pub contains: Vec<String>,
    pub not_contains: Vec<String>,
    /// Source text of regexes, validated to compile at load time.
    pub regex: Vec<String>,
    pub equals: Option<String>,
}

impl OutputExpect {
    pub fn is_empty(&self) -> bool {
        self.contains.is_empty()
            && self.not_contains.is_empty()
            && self.regex.is_empty()
            && self.equals.is_none()
    }
}

/// `[perf]`: hard budgets, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PerfSpec {
    /// Budget per scenario name (`[perf.scenario."name"] max_ms = ...` or `[perf] max_ms` for all).
    pub scenario_max_ms: BTreeMap<String, f64>,
    /// Budget per `scenario name/step name`.
    pub step_max_ms: BTreeMap<String, f64>,
    /// Per-scenario gate tolerance override (fraction, 0.10 = 10 %).
    pub tolerance: Option<f64>,
    /// What the gate does when a scenario's span tree drifts from the trace snapshot in the
    /// baseline (`[perf] trace_drift = "warn" | "fail"`).
    pub trace_drift: TraceDrift,
}

/// `[perf] trace_drift`: structural drift from the baseline's trace snapshot is a warning
/// (default) or fails the gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceDrift {
    #[default]
    Warn,
    Fail,
}

/// `[report]`: where reports go when the command line names none (paths relative to the
/// working directory).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReportSpec {
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
}

impl ReportSpec {
    pub fn is_empty(&self) -> bool {
        self.json.is_none() && self.junit.is_none() && self.markdown.is_none()
    }

    /// The report paths a run of `tests` uses when the command line gives none: each kind
    /// whose declaring tests all agree on one path. Disagreements come back as messages
    /// (that kind is then not written unless the command line names a path).
    pub fn merged<'a>(tests: impl IntoIterator<Item = &'a TestSpec>) -> (ReportSpec, Vec<String>) {
        let mut kinds: [(&str, BTreeMap<PathBuf, String>); 3] = Default::default();
        kinds[0].0 = "json";
        kinds[1].0 = "junit";
        kinds[2].0 = "markdown";
        for t in tests {
            let r = &t.report;
            for (i, p) in [&r.json, &r.junit, &r.markdown].into_iter().enumerate() {
                if let Some(p) = p {
                    kinds[i]
                        .1
                        .entry(p.clone())
                        .or_insert_with(|| t.name.clone());
                }
            }
        }
        let mut out = ReportSpec::default();
        let mut notes = Vec::new();
        for (i, (kind, paths)) in kinds.iter().enumerate() {
            match paths.len() {
                0 => {}
                1 => {
                    let p = paths.keys().next().cloned();
                    match i {
                        0 => out.json = p,
                        1 => out.junit = p,
                        _ => out.markdown = p,
                    }
                }
                _ => notes.push(format!(
                    "tests declare different `[report] {kind}` paths ({}); none is written: pass `--{kind} PATH`",
                    paths
                        .iter()
                        .map(|(p, t)| format!("`{}` in `{t}`", p.display()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        (out, notes)
    }
}

/// `[determinism]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Determinism {
    /// RFC 3339 instant that `now_rfc3339()` returns.
    pub freeze_clock: Option<String>,
    /// Seed for fake-data functions without an explicit seed.
    pub seed: Option<u64>,
}

/// The part of a step variable naming service `id`: upper case, every character other than
/// a letter or digit replaced by `_` (`my-db` -> `MY_DB`).
pub fn service_var_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// One published port of an environment's service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub service: String,
    pub container_port: u16,
    /// The port on 127.0.0.1 of the machine running clnrm.
    pub host_port: u16,
    /// Address a step of the environment uses to reach the container port (`app:8080` on
    /// the Docker network; `127.0.0.1:8080` on the local backend).
    pub in_network: String,
}

/// The variables every step of a scenario gets for the published ports of its environment
/// (`S` is [`service_var_name`] of the service, `N` the container port):
/// `CLNRM_S_ADDR_N` (in-network `host:port`, what a step uses), `CLNRM_S_PORT_N` (the host
/// port) and `CLNRM_S_PUBLISHED_N` (`127.0.0.1:<host port>`).
pub fn port_vars(ports: &[PublishedPort]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for p in ports {
        let pre = format!("CLNRM_{}_", service_var_name(&p.service));
        let n = p.container_port;
        out.insert(format!("{pre}ADDR_{n}"), p.in_network.clone());
        out.insert(format!("{pre}PORT_{n}"), p.host_port.to_string());
        out.insert(
            format!("{pre}PUBLISHED_{n}"),
            format!("127.0.0.1:{}", p.host_port),
        );
    }
    out
}

/// Serde helpers: durations as integer milliseconds in JSON.
pub mod duration_ms {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

pub mod opt_duration_ms {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_command_keeps_string_whole() {
        let c = Command::Shell("echo 'a b' && exit 3".into());
        assert_eq!(c.to_argv(), vec!["sh", "-c", "echo 'a b' && exit 3"]);
    }

    #[test]
    fn port_variables_name_the_service_and_the_container_port() {
        let p = PublishedPort {
            service: "my-db.1".into(),
            container_port: 5432,
            host_port: 40001,
            in_network: "my-db.1:5432".into(),
        };
        let v = port_vars(&[p]);
        assert_eq!(
            v.into_iter().collect::<Vec<_>>(),
            [
                (
                    "CLNRM_MY_DB_1_ADDR_5432".to_string(),
                    "my-db.1:5432".to_string()
                ),
                ("CLNRM_MY_DB_1_PORT_5432".to_string(), "40001".to_string()),
                (
                    "CLNRM_MY_DB_1_PUBLISHED_5432".to_string(),
                    "127.0.0.1:40001".to_string()
                ),
            ]
        );
    }

    #[test]
    fn display_quotes_only_when_needed() {
        let c = Command::Argv(vec!["echo".into(), "a b".into(), "it's".into()]);
        assert_eq!(c.display(), r"echo 'a b' 'it'\''s'");
    }
}
