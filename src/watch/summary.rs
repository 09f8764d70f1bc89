//! The per-cycle summary of watch mode: what changed, and the latency line with the phases of
//! one cycle (pure formatting, so it is tested without a session).

use std::path::PathBuf;

use super::Changes;
use crate::results::{Phase, ScenarioResult, TestResult};

/// What one cycle measured, for the latency line.
#[derive(Default)]
pub struct Timing {
    /// File mtime to the first event (none for cycle 0 or a deletion).
    pub detect_ms: Option<f64>,
    /// First event to the end of the debounce window.
    pub debounce_ms: Option<f64>,
    /// Render, parse and validate of the affected files.
    pub load_ms: f64,
}

/// `cycle 3: 1 test, passed · detect 2 ms · debounce 51 ms · load 0.4 ms · env reused 0 ms ·
/// exec 31 ms · total 88 ms`
pub fn latency_line(
    n: u64,
    results: &[TestResult],
    errors: usize,
    t: &Timing,
    total: f64,
) -> String {
    let scenarios: Vec<_> = results.iter().flat_map(|t| &t.scenarios).collect();
    let failed = scenarios.iter().filter(|s| s.status.is_failure()).count();
    let tests = results.len();
    let mut verdict = format!("{tests} test{}", if tests == 1 { "" } else { "s" });
    if !results.is_empty() {
        if failed == 0 {
            verdict.push_str(", passed");
        } else {
            verdict.push_str(&format!(
                ", failed ({failed} of {})",
                crate::report::count_of(scenarios.len(), "scenario")
            ));
        }
    }
    if errors > 0 {
        verdict.push_str(&format!(
            ", {errors} error{}",
            if errors == 1 { "" } else { "s" }
        ));
    }
    let mut parts = vec![verdict];
    if let Some(d) = t.detect_ms {
        parts.push(format!("detect {}", fmt_ms(d)));
    }
    if let Some(d) = t.debounce_ms {
        parts.push(format!("debounce {}", fmt_ms(d)));
    }
    parts.push(format!("load {}", fmt_ms(t.load_ms)));
    if !scenarios.is_empty() {
        let phase = |s: &ScenarioResult, k: Phase| s.phases.get(&k).copied().unwrap_or(0.0);
        let mut reused = true;
        let mut env = 0.0;
        for s in &scenarios {
            let built = phase(s, Phase::Create) + phase(s, Phase::Start) + phase(s, Phase::Ready);
            reused &= built == 0.0;
            let wait = phase(s, Phase::EnvWait);
            // Docker reports the wait for a (pre-)started environment; the local backend
            // builds inline and reports the build phases only.
            env += if wait > 0.0 || built == 0.0 {
                wait
            } else {
                built
            };
        }
        let word = if reused { "reused" } else { "started" };
        parts.push(format!("env {word} {}", fmt_ms(env)));
        let exec: f64 = scenarios.iter().map(|s| s.step_ms).sum();
        parts.push(format!("exec {}", fmt_ms(exec)));
    }
    parts.push(format!("total {}", fmt_ms(total)));
    format!("cycle {n}: {}", parts.join(" · "))
}

/// `published: orders/web:8080 at 127.0.0.1:41234`: the published ports of the environments
/// watch mode keeps warm (those of passed scenarios; a failed one's environment is removed),
/// so a developer can reach a service between cycles. `None` when there are none.
pub fn published_line(results: &[TestResult]) -> Option<String> {
    let mut seen: Vec<String> = results
        .iter()
        .flat_map(|t| {
            t.scenarios
                .iter()
                .filter(|s| s.status == crate::results::Status::Passed)
                .flat_map(move |s| {
                    s.published.iter().map(move |p| {
                        format!(
                            "{}/{}:{} at 127.0.0.1:{}",
                            t.name, p.service, p.container_port, p.host_port
                        )
                    })
                })
        })
        .collect();
    seen.sort();
    seen.dedup();
    (!seen.is_empty()).then(|| format!("published: {}", seen.join(", ")))
}

/// `changed _macros.tera; removed old.clnrm.toml; 2 test files affected`.
pub fn describe(c: &Changes) -> String {
    let name = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    let mut words = Vec::new();
    let changed: Vec<String> = c.changed.iter().take(3).map(name).collect();
    if !changed.is_empty() {
        let more = c.changed.len().saturating_sub(3);
        let extra = if more > 0 {
            format!(" (+{more} more)")
        } else {
            String::new()
        };
        words.push(format!("changed {}{extra}", changed.join(", ")));
    }
    if !c.removed.is_empty() {
        let removed: Vec<String> = c.removed.iter().map(name).collect();
        words.push(format!("removed {}", removed.join(", ")));
    }
    words.push(format!(
        "{} test file{} affected",
        c.reload.len(),
        if c.reload.len() == 1 { "" } else { "s" }
    ));
    words.join("; ")
}

/// Durations under 10 ms keep one decimal; above, whole milliseconds.
pub fn fmt_ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Status;

    fn scenario(phases: &[(&str, f64)], step_ms: f64, status: Status) -> ScenarioResult {
        ScenarioResult {
            duration_ms: step_ms,
            step_ms,
            phases: phases
                .iter()
                .map(|(k, v)| (Phase::parse(k).expect("a phase name"), *v))
                .collect(),
            ..ScenarioResult::new("s", 1, status)
        }
    }

    fn test(scenarios: Vec<ScenarioResult>) -> TestResult {
        let status = if scenarios.iter().any(|s| s.status.is_failure()) {
            Status::Failed
        } else {
            Status::Passed
        };
        TestResult {
            name: "t".into(),
            path: "t.clnrm.toml".into(),
            tags: Vec::new(),
            status,
            duration_ms: 0.0,
            scenarios,
        }
    }

    #[test]
    fn published_line_lists_the_ports_of_kept_environments() {
        let port = |host_port| crate::suite::PublishedPort {
            service: "web".into(),
            container_port: 8080,
            host_port,
            in_network: "web:8080".into(),
        };
        let mut a = scenario(&[], 1.0, Status::Passed);
        a.published = vec![port(41000)];
        let mut b = scenario(&[], 1.0, Status::Passed);
        b.published = vec![port(41000)];
        let mut failed = scenario(&[], 1.0, Status::Failed);
        failed.published = vec![port(42000)];
        assert_eq!(
            published_line(&[test(vec![a, b, failed])]).as_deref(),
            Some("published: t/web:8080 at 127.0.0.1:41000")
        );
        assert_eq!(
            published_line(&[test(vec![scenario(&[], 1.0, Status::Passed)])]),
            None
        );
    }

    #[test]
    fn latency_line_for_a_reused_environment() {
        let reused = scenario(
            &[
                ("create", 0.0),
                ("start", 0.0),
                ("ready", 0.0),
                ("env_wait", 0.04),
            ],
            31.2,
            Status::Passed,
        );
        let t = Timing {
            detect_ms: Some(2.0),
            debounce_ms: Some(51.0),
            load_ms: 0.42,
        };
        assert_eq!(
            latency_line(3, &[test(vec![reused])], 0, &t, 88.0),
            "cycle 3: 1 test, passed · detect 2.0 ms · debounce 51 ms · load 0.4 ms · env reused 0.0 ms · exec 31 ms · total 88 ms"
        );
    }

    #[test]
    fn latency_line_for_a_started_environment_and_a_failure() {
        let started = scenario(
            &[
                ("create", 12.0),
                ("start", 160.0),
                ("ready", 1.0),
                ("env_wait", 180.0),
            ],
            30.0,
            Status::Failed,
        );
        let local = scenario(
            &[
                ("create", 1.0),
                ("start", 2.0),
                ("ready", 0.5),
                ("env_wait", 0.0),
            ],
            5.0,
            Status::Passed,
        );
        let t = Timing::default();
        assert_eq!(
            latency_line(0, &[test(vec![started, local])], 0, &t, 400.0),
            "cycle 0: 1 test, failed (1 of 2 scenarios) · load 0.0 ms · env started 184 ms · exec 35 ms · total 400 ms"
        );
    }

    #[test]
    fn latency_line_for_an_invalid_file() {
        let t = Timing {
            detect_ms: None,
            debounce_ms: Some(50.0),
            load_ms: 0.3,
        };
        assert_eq!(
            latency_line(2, &[], 1, &t, 60.0),
            "cycle 2: 0 tests, 1 error · debounce 50 ms · load 0.3 ms · total 60 ms"
        );
    }

    #[test]
    fn changes_are_described_by_file_name() {
        let c = Changes {
            reload: [
                PathBuf::from("/s/a.clnrm.toml.tera"),
                PathBuf::from("/s/b.clnrm.toml.tera"),
            ]
            .into(),
            removed: vec![PathBuf::from("/s/c.clnrm.toml")],
            changed: vec![PathBuf::from("/s/_m.tera")],
        };
        assert_eq!(
            describe(&c),
            "changed _m.tera; removed c.clnrm.toml; 2 test files affected"
        );
    }
}
