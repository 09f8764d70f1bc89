//! Serialises findings: human lines, JSON, or GitHub workflow annotations (serialise only).

use serde::Serialize;

use super::finding::{Finding, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LintFormat {
    Human,
    Json,
    Github,
}

/// JSON document shape; `version` lets consumers detect format changes.
#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    errors: usize,
    warnings: usize,
    findings: &'a [Finding],
}

/// Renders every finding in the given format (stdout data). Human output ends with a count.
pub fn render_findings(findings: &[Finding], format: LintFormat) -> String {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    match format {
        LintFormat::Human => {
            let mut out = String::new();
            for f in findings {
                out.push_str(&format!(
                    "{}: {}[{}]: {}\n",
                    f.location(),
                    f.severity.as_str(),
                    f.rule,
                    f.message
                ));
                if let Some(h) = &f.hint {
                    out.push_str(&format!("  hint: {h}\n"));
                }
            }
            out.push_str(&format!(
                "{}, {}\n",
                crate::report::count_of(errors, "error"),
                crate::report::count_of(warnings, "warning")
            ));
            out
        }
        LintFormat::Json => {
            let report = JsonReport {
                version: 1,
                errors,
                warnings,
                findings,
            };
            let mut s = serde_json::to_string_pretty(&report).expect("findings serialise");
            s.push('\n');
            s
        }
        LintFormat::Github => findings
            .iter()
            .map(|f| {
                let mut message = f.message.clone();
                if let Some(h) = &f.hint {
                    message.push_str("\nhint: ");
                    message.push_str(h);
                }
                format!(
                    "::{} file={},line={},title={}::{}\n",
                    f.severity.as_str(),
                    escape_property(&f.path.to_string_lossy()),
                    f.line.max(1),
                    escape_property(f.rule),
                    escape_data(&message)
                )
            })
            .collect(),
    }
}

/// Workflow-command escaping of the message part (GitHub's `escapeData`).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command escaping of a property value (GitHub's `escapeProperty`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings() -> Vec<Finding> {
        vec![
            Finding {
                rule: "image-latest",
                severity: Severity::Warning,
                path: "suite/a,b.clnrm.toml".into(),
                line: 4,
                message: "service `db` uses image `postgres` without a fixed tag".into(),
                hint: Some("pin 100%".into()),
            },
            Finding {
                rule: "duplicate-step-name",
                severity: Severity::Error,
                path: "t.toml".into(),
                line: 9,
                message: "dup".into(),
                hint: None,
            },
        ]
    }

    #[test]
    fn human_lists_each_finding_with_hint_and_counts() {
        assert_eq!(
            render_findings(&findings(), LintFormat::Human),
            "suite/a,b.clnrm.toml:4: warning[image-latest]: service `db` uses image `postgres` without a fixed tag\n  hint: pin 100%\nt.toml:9: error[duplicate-step-name]: dup\n1 error, 1 warning\n"
        );
    }

    #[test]
    fn github_annotations_are_escaped() {
        assert_eq!(
            render_findings(&findings(), LintFormat::Github),
            "::warning file=suite/a%2Cb.clnrm.toml,line=4,title=image-latest::service `db` uses image `postgres` without a fixed tag%0Ahint: pin 100%25\n::error file=t.toml,line=9,title=duplicate-step-name::dup\n"
        );
    }

    #[test]
    fn json_lists_every_finding() {
        let v: serde_json::Value =
            serde_json::from_str(&render_findings(&findings(), LintFormat::Json)).expect("json");
        assert_eq!(v["version"], 1);
        assert_eq!(v["errors"], 1);
        assert_eq!(v["warnings"], 1);
        assert_eq!(v["findings"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["findings"][1]["rule"], "duplicate-step-name");
        assert_eq!(v["findings"][1]["severity"], "error");
        assert_eq!(v["findings"][0]["line"], 4);
    }
}
