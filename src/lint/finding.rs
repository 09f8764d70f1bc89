//! Findings, severities and the rule catalogue (docs/lint.md mirrors `RULES`).

use std::path::PathBuf;

use serde::Serialize;

use crate::exit;
use crate::suite::Location;

/// The loader's severity: one scale for every finding of the tool.
pub use crate::suite::Severity;

/// One problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub path: PathBuf,
    /// 1-based line in the rendered file (0 when unknown).
    pub line: u32,
    pub message: String,
    pub hint: Option<String>,
}

impl Finding {
    pub fn location(&self) -> Location {
        Location::new(&self.path, (self.line > 0).then_some(self.line), None)
    }
}

/// A rule's catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    pub id: &'static str,
    pub severity: Severity,
    pub rationale: &'static str,
}

pub(crate) const IMAGE_LATEST: &str = "image-latest";
pub(crate) const STEP_NO_OUTPUT_EXPECTATION: &str = "step-no-output-expectation";
pub(crate) const SCENARIO_NO_TIMEOUT: &str = "scenario-no-timeout";
pub(crate) const DUPLICATE_STEP_NAME: &str = "duplicate-step-name";
pub(crate) const UNUSED_SERVICE: &str = "unused-service";
pub(crate) const UNUSED_VAR: &str = "unused-var";
pub(crate) const SECRET_IN_ENV: &str = "secret-in-env";
pub(crate) const LONG_SHELL: &str = "long-shell";
pub(crate) const SPAN_EXPECT_MATCHES_ANY: &str = "span-expect-matches-any";
pub(crate) const TEMPLATE_BY_CONTENT: &str = "template-by-content";

const RULES: &[RuleInfo] = &[
    RuleInfo {
        id: IMAGE_LATEST,
        severity: Severity::Warning,
        rationale: "an image tagged `latest` or untagged is not reproducible: pin a tag or digest",
    },
    RuleInfo {
        id: STEP_NO_OUTPUT_EXPECTATION,
        severity: Severity::Warning,
        rationale: "a step whose command prints output but checks only the exit code can pass with wrong output",
    },
    RuleInfo {
        id: SCENARIO_NO_TIMEOUT,
        severity: Severity::Warning,
        rationale: "without a scenario or test timeout a hung step holds the CI job until the default step timeout of every step",
    },
    RuleInfo {
        id: DUPLICATE_STEP_NAME,
        severity: Severity::Error,
        rationale: "step names key reports, perf budgets and baselines: duplicates make results ambiguous",
    },
    RuleInfo {
        id: UNUSED_SERVICE,
        severity: Severity::Warning,
        rationale: "a service no step uses still costs a container start on every run",
    },
    RuleInfo {
        id: UNUSED_VAR,
        severity: Severity::Warning,
        rationale: "a `[vars]` entry the template never references is dead configuration or a typo",
    },
    RuleInfo {
        id: SECRET_IN_ENV,
        severity: Severity::Warning,
        rationale: "a literal secret-looking env value ends up in the repository: take it from the environment",
    },
    RuleInfo {
        id: LONG_SHELL,
        severity: Severity::Warning,
        rationale: "a very long `sh` string is hard to review and to debug: move it into a script file",
    },
    RuleInfo {
        id: SPAN_EXPECT_MATCHES_ANY,
        severity: Severity::Error,
        rationale: "an `[[expect.span]]` whose name pattern matches clnrm's own scenario and step spans, with no other condition, can never fail",
    },
    RuleInfo {
        id: TEMPLATE_BY_CONTENT,
        severity: Severity::Warning,
        rationale: "a `.clnrm.toml` holding Tera syntax is rendered as a template: name it `.clnrm.toml.tera` so readers and tools know",
    },
];

/// The rule catalogue, in documentation order.
pub fn rules() -> &'static [RuleInfo] {
    RULES
}

pub(crate) fn severity_of(rule: &str) -> Severity {
    RULES
        .iter()
        .find(|r| r.id == rule)
        .map(|r| r.severity)
        .expect("every emitted rule id is in RULES")
}

/// Exit code of `clnrm lint`: errors always fail, warnings only with `--deny-warnings`.
pub fn exit_code(findings: &[Finding], deny_warnings: bool) -> u8 {
    let fails = findings
        .iter()
        .any(|f| f.severity == Severity::Error || deny_warnings);
    if fails {
        exit::TESTS_FAILED
    } else {
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity) -> Finding {
        Finding {
            rule: LONG_SHELL,
            severity,
            path: "t.toml".into(),
            line: 1,
            message: "m".into(),
            hint: None,
        }
    }

    #[test]
    fn exit_code_follows_severity_and_deny_warnings() {
        assert_eq!(exit_code(&[], true), 0);
        assert_eq!(exit_code(&[finding(Severity::Warning)], false), 0);
        assert_eq!(exit_code(&[finding(Severity::Warning)], true), 1);
        assert_eq!(exit_code(&[finding(Severity::Error)], false), 1);
    }

    #[test]
    fn docs_list_every_rule_with_its_severity_and_rationale() {
        let doc = include_str!("../../docs/lint.md");
        for r in rules() {
            let heading = format!("## `{}` ({})", r.id, r.severity.as_str());
            assert!(doc.contains(&heading), "docs/lint.md lacks {heading}");
            assert!(
                doc.contains(r.rationale),
                "docs/lint.md lacks rationale of {}",
                r.id
            );
        }
    }
}
