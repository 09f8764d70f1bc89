//! The one writer of a run's reports: every report a command was asked for (file or `-` for
//! stdout), the terminal table on stderr, and under GitHub Actions the annotations and the job
//! summary. Reporters serialise; only this file and [`super::write`] touch the filesystem.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::github::{github_step_annotations, STEP_ANNOTATION_LIMIT};
use super::{json, junit, markdown, table, MarkdownOptions, Printer};
use crate::results::RunResults;

/// GitHub Actions extras, present when `GITHUB_ACTIONS=true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubOutputs {
    /// `$GITHUB_STEP_SUMMARY`: the markdown report is appended there.
    pub step_summary: Option<PathBuf>,
    /// The working directory relative to `$GITHUB_WORKSPACE` (`""` or e.g. `services/api/`):
    /// annotation paths start with it, so GitHub finds the files in the repository.
    pub path_prefix: String,
}

/// The reports a command writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub json: Option<PathBuf>,
    /// The summary table on stderr.
    pub table: bool,
    pub github: Option<GithubOutputs>,
}

/// Where one rendered report goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file (replaced atomically) or `-` (stdout).
    File(PathBuf),
    /// Appended to a file shared with other steps (the job summary).
    Append(PathBuf),
    Stdout,
    Stderr,
    /// stderr, unfiltered: workflow commands clnrm built itself, whose text from tests is
    /// already escaped (`gh_data`); the terminal filter would defuse them.
    WorkflowCommands,
}

/// One rendered report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub what: &'static str,
    pub target: Target,
    pub bytes: Vec<u8>,
}

impl Outputs {
    /// Whether any report file (or stdout report) was asked for.
    pub fn writes_files(&self) -> bool {
        self.junit.is_some() || self.markdown.is_some() || self.json.is_some()
    }

    /// Render every report (pure): what goes where, in writing order.
    pub fn render(&self, results: &RunResults, color: bool) -> Result<Vec<Rendered>, String> {
        let mut out = Vec::new();
        if self.table && !results.tests.is_empty() {
            out.push(Rendered {
                what: "summary table",
                target: Target::Stderr,
                bytes: format!("{}\n", table(results, color)).into_bytes(),
            });
        }
        let file = |p: &PathBuf| {
            if p == Path::new("-") {
                Target::Stdout
            } else {
                Target::File(p.clone())
            }
        };
        if let Some(p) = &self.json {
            out.push(Rendered {
                what: "JSON results",
                target: file(p),
                bytes: json(results),
            });
        }
        if let Some(p) = &self.junit {
            let bytes = junit(results).map_err(|e| format!("cannot build JUnit XML: {e}"))?;
            out.push(Rendered {
                what: "JUnit XML",
                target: file(p),
                bytes,
            });
        }
        let md_opts = MarkdownOptions::default();
        if let Some(p) = &self.markdown {
            out.push(Rendered {
                what: "markdown",
                target: file(p),
                bytes: markdown(results, &md_opts).into_bytes(),
            });
        }
        if let Some(gh) = &self.github {
            out.push(Rendered {
                // Workflow commands are read from stderr too: stdout stays data only, so
                // `--junit -` and `--json -` are never corrupted under GitHub Actions.
                what: "workflow annotations",
                target: Target::WorkflowCommands,
                bytes: github_step_annotations(results, &gh.path_prefix, STEP_ANNOTATION_LIMIT)
                    .into_bytes(),
            });
            if let Some(summary) = &gh.step_summary {
                out.push(Rendered {
                    what: "job summary",
                    target: Target::Append(summary.clone()),
                    bytes: markdown(results, &md_opts).into_bytes(),
                });
            }
        }
        Ok(out)
    }

    /// Render and write every report. Each failure is printed; the others are still written
    /// (partial results survive). Returns false when anything could not be written.
    pub fn write(&self, results: &RunResults, printer: Printer) -> bool {
        // Every report is serialised from these: secrets are masked once, here (files are
        // masked again byte-wise by the writer, as a last line of defence).
        let results = &crate::secrets::mask_results(results.clone());
        let rendered = match self.render(results, printer.color) {
            Ok(r) => r,
            Err(e) => {
                printer.error(e, None);
                return false;
            }
        };
        let mut ok = true;
        for r in rendered {
            let res = match &r.target {
                Target::File(p) => super::write_atomic(p, &r.bytes).map_err(|e| e.to_string()),
                Target::Append(p) => super::append(p, &r.bytes).map_err(|e| e.to_string()),
                Target::Stdout => {
                    let mut o = std::io::stdout().lock();
                    o.write_all(&crate::secrets::mask_bytes(&r.bytes))
                        .and_then(|_| o.flush())
                        .map_err(|e| e.to_string())
                }
                Target::WorkflowCommands => {
                    let mut e = std::io::stderr().lock();
                    e.write_all(&r.bytes)
                        .and_then(|_| e.flush())
                        .map_err(|e| e.to_string())
                }
                Target::Stderr => std::io::stderr()
                    .lock()
                    .write_all(
                        crate::secrets::terminal(&String::from_utf8_lossy(&r.bytes), printer.color)
                            .as_bytes(),
                    )
                    .map_err(|e| e.to_string()),
            };
            if let Err(e) = res {
                if let Target::Append(_) = r.target {
                    // The job summary is a convenience; the run's verdict does not depend on it.
                    printer.warn(format!("cannot append the {}: {e}", r.what));
                } else {
                    printer.error(format!("cannot write {}: {e}", r.what), None);
                    ok = false;
                }
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn renders_what_was_asked_where_it_was_asked() {
        let results = fixtures::mixed();
        let outputs = Outputs {
            junit: Some(PathBuf::from("out/junit.xml")),
            json: Some(PathBuf::from("-")),
            table: true,
            github: Some(GithubOutputs {
                step_summary: Some(PathBuf::from("summary.md")),
                path_prefix: String::new(),
            }),
            ..Default::default()
        };
        let r = outputs.render(&results, false).unwrap();
        let targets: Vec<(&str, &Target)> = r.iter().map(|r| (r.what, &r.target)).collect();
        assert_eq!(
            targets,
            vec![
                ("summary table", &Target::Stderr),
                ("JSON results", &Target::Stdout),
                ("JUnit XML", &Target::File(PathBuf::from("out/junit.xml"))),
                ("workflow annotations", &Target::WorkflowCommands),
                ("job summary", &Target::Append(PathBuf::from("summary.md"))),
            ]
        );
        assert_eq!(r[1].bytes, json(&results));
    }

    #[test]
    fn writes_files_atomically_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        let results = fixtures::mixed();
        let good = dir.path().join("r/results.json");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let outputs = Outputs {
            json: Some(good.clone()),
            markdown: Some(blocker.join("report.md")),
            ..Default::default()
        };
        assert!(!outputs.write(&results, Printer::plain()));
        // The report that could be written was written.
        assert_eq!(std::fs::read(&good).unwrap(), json(&results));
    }
}
