//! The live display of a run: a progress bar on an interactive terminal, otherwise one plain,
//! greppable line per event (`PASS  test / scenario (12 ms)`), for `run`, `baseline record`
//! and every watch cycle, in nextest's words: `TRY 1 FAIL` for an attempt that is retried,
//! `FLAKY 2/3` for a pass on a retry, `SLOW [> 60s]` for a scenario still running after the
//! slow timeout, and the tail of a failed step's output (`--failure-output`). Writes to any
//! `io::Write`, so it is tested on a buffer.

use std::io::Write;
use std::time::Duration;

use super::failure_output::{failed_steps_output, FailureOutput};
use super::units::duration;
use super::Printer;
use crate::results::{ScenarioResult, Status, StepResult};
use crate::runner::RunEvent;

/// Indent of the lines under a scenario's line (message, output).
const INDENT: &str = "      ";

/// How a run is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DisplayOptions {
    pub printer: Printer,
    /// Print `running N scenarios of M tests` when the plan starts (not in watch cycles).
    pub announce: bool,
    /// When the output of a failed step is shown.
    pub failure_output: FailureOutput,
}

impl DisplayOptions {
    /// Plain output, announced, failure output as it happens.
    pub fn plain() -> DisplayOptions {
        DisplayOptions {
            printer: Printer::plain(),
            announce: true,
            failure_output: FailureOutput::default(),
        }
    }
}

/// Consumes run events and shows them.
pub struct LiveDisplay<W: Write> {
    out: W,
    printer: Printer,
    announce: bool,
    failure_output: FailureOutput,
    /// Failures kept for the end of the run (`--failure-output final`): their lines.
    at_end: Vec<Vec<String>>,
    bar: Option<indicatif::ProgressBar>,
}

impl LiveDisplay<std::io::Stderr> {
    /// The display on stderr; a progress bar when the printer is interactive.
    pub fn stderr(opts: DisplayOptions) -> Self {
        let printer = opts.printer;
        let bar = printer.interactive.then(|| {
            let pb = indicatif::ProgressBar::new(0);
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{pos}/{len}] {elapsed} {wide_msg}",
                )
                .expect("static template is valid"),
            );
            pb.enable_steady_tick(std::time::Duration::from_millis(120));
            pb
        });
        let mut display = LiveDisplay::plain(std::io::stderr(), opts);
        display.bar = bar;
        display
    }
}

impl<W: Write> LiveDisplay<W> {
    /// Plain lines to `out`, never a progress bar.
    pub fn plain(out: W, opts: DisplayOptions) -> Self {
        LiveDisplay {
            out,
            printer: opts.printer,
            announce: opts.announce,
            failure_output: opts.failure_output,
            at_end: Vec::new(),
            bar: None,
        }
    }

    pub fn on_event(&mut self, ev: &RunEvent) {
        match ev {
            RunEvent::Started { tests, scenarios } => match &self.bar {
                Some(pb) => pb.set_length(*scenarios as u64),
                None if self.announce => self.line(format!(
                    "running {scenarios} scenario{} of {tests} test{}",
                    plural(*scenarios),
                    plural(*tests)
                )),
                None => {}
            },
            RunEvent::ScenarioStarted { test, scenario, .. } => {
                if let Some(pb) = &self.bar {
                    pb.set_message(format!("{test} / {scenario}"));
                }
            }
            RunEvent::Retrying {
                test,
                scenario,
                failed,
                ..
            } => {
                let word = self
                    .printer
                    .paint(&format!("TRY {} FAIL ", failed.attempt), "31");
                let mut lines = vec![format!(
                    "{word} {test} / {scenario} ({})",
                    duration(failed.duration_ms)
                )];
                lines.extend(self.details(failed.message.as_deref(), &failed.steps, true));
                self.line(lines.join("\n"));
            }
            RunEvent::Slow {
                test,
                scenario,
                attempt,
                elapsed,
            } => {
                let retry = if *attempt > 1 {
                    format!("TRY {attempt} ")
                } else {
                    String::new()
                };
                let word = self
                    .printer
                    .paint(&format!("{retry}SLOW [> {}]", seconds(*elapsed)), "33");
                self.line(format!("{word} {test} / {scenario}"));
            }
            RunEvent::ScenarioFinished {
                test,
                result,
                max_attempts,
                ..
            } => {
                let word = self.status_word(result, *max_attempts);
                let head = format!(
                    "{word} {test} / {} ({})",
                    result.name,
                    duration(result.duration_ms)
                );
                let mut lines = vec![head.clone()];
                if result.status.is_failure() {
                    lines.extend(self.details(result.message.as_deref(), &result.steps, true));
                    if self.failure_output.at_end() {
                        let mut kept = vec![head];
                        kept.extend(self.details(result.message.as_deref(), &result.steps, false));
                        self.at_end.push(kept);
                    }
                }
                if let Some(pb) = &self.bar {
                    pb.inc(1);
                }
                self.line(lines.join("\n"));
            }
            RunEvent::TestFinished(_) => {}
        }
    }

    /// Clear the progress bar; with `--failure-output final`, show the failures again.
    pub fn finish(&mut self) {
        if let Some(pb) = self.bar.take() {
            pb.finish_and_clear();
        }
        if self.at_end.is_empty() {
            return;
        }
        let kept = std::mem::take(&mut self.at_end);
        let n = kept.len();
        let title = format!("--- output of {n} failed scenario{} ---", plural(n));
        self.line(self.printer.paint(&title, "1"));
        for lines in kept {
            self.line(lines.join("\n"));
        }
    }

    /// `PASS `, `FLAKY 2/3`, `FAIL `, `TRY 3 FAIL `, ...: the word of a finished scenario.
    fn status_word(&self, result: &ScenarioResult, max_attempts: u32) -> String {
        let retried = result.attempts > 1;
        let (word, colour) = match result.status {
            Status::Passed => ("PASS ".to_string(), "32"),
            Status::Flaky => (format!("FLAKY {}/{max_attempts}", result.attempts), "33"),
            Status::Skipped => ("SKIP ".to_string(), "2"),
            Status::Failed if retried => (format!("TRY {} FAIL ", result.attempts), "31"),
            Status::Failed => ("FAIL ".to_string(), "31"),
            Status::TimedOut if retried => (format!("TRY {} TIME ", result.attempts), "31"),
            Status::TimedOut => ("TIME ".to_string(), "31"),
            Status::Error if retried => (format!("TRY {} ERROR", result.attempts), "31"),
            Status::Error => ("ERROR".to_string(), "31"),
        };
        self.printer.paint(&word, colour)
    }

    /// The message and, when wanted now (`live`) or at the end, the failed steps' output.
    fn details(&self, message: Option<&str>, steps: &[StepResult], live: bool) -> Vec<String> {
        let mut lines: Vec<String> = message
            .into_iter()
            .flat_map(str::lines)
            .map(|l| format!("{INDENT}{l}"))
            .collect();
        let wanted = if live {
            self.failure_output.immediate()
        } else {
            self.failure_output.at_end()
        };
        if wanted {
            lines.extend(failed_steps_output(steps, INDENT));
        }
        lines
    }

    pub fn into_inner(mut self) -> W {
        self.finish();
        let LiveDisplay { out, .. } = self;
        out
    }

    fn line(&mut self, line: String) {
        let line = crate::secrets::terminal(&line, self.printer.color).into_owned();
        match &self.bar {
            Some(pb) => pb.println(line),
            // One write per line: a script polling the output never reads half of one.
            None => {
                let _ = self.out.write_all(format!("{line}\n").as_bytes());
            }
        }
    }
}

/// A slow timeout as the `SLOW` line shows it: `60s`, `0.5s`.
fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// `1 scenario`, `2 scenarios`: a count with its noun, plural unless there is exactly one.
pub fn count_of(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", plural(n))
}

/// `s` unless there is exactly one.
pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;
    use crate::results::AttemptResult;

    fn opts(failure_output: FailureOutput) -> DisplayOptions {
        DisplayOptions {
            failure_output,
            ..DisplayOptions::plain()
        }
    }

    fn finished(result: ScenarioResult, max_attempts: u32) -> RunEvent {
        RunEvent::ScenarioFinished {
            test: "api".into(),
            path: "api.clnrm.toml".into(),
            result,
            max_attempts,
        }
    }

    /// A failed scenario whose step `a` printed `out` on stdout and `err` on stderr.
    fn failed(name: &str, attempts: u32, out: &str, err: &str) -> ScenarioResult {
        let mut r = fixtures::scenario(name, 9, Status::Failed, 1500.0, vec![]);
        r.duration_ms = 1500.0;
        r.attempts = attempts;
        r.message = Some("step `a`: exit 1\nsecond line".into());
        r.steps = vec![StepResult {
            name: "a".into(),
            line: 10,
            service: "app".into(),
            command: "make".into(),
            status: Status::Failed,
            exit_code: Some(1),
            duration_ms: 1.0,
            stdout: out.into(),
            stderr: err.into(),
            stdout_truncated: false,
            stderr_truncated: false,
            failures: Vec::new(),
        }];
        r
    }

    fn text(d: LiveDisplay<Vec<u8>>) -> String {
        String::from_utf8(d.into_inner()).unwrap()
    }

    #[test]
    fn plain_lines_for_every_outcome() {
        let mut d = LiveDisplay::plain(Vec::new(), opts(FailureOutput::Immediate));
        d.on_event(&RunEvent::Started {
            tests: 1,
            scenarios: 2,
        });
        let mut ok = fixtures::scenario("boots", 3, Status::Passed, 12.4, vec![]);
        ok.duration_ms = 12.4;
        d.on_event(&finished(ok, 1));
        d.on_event(&finished(failed("broken", 1, "", "boom\n"), 1));
        let text = text(d);
        assert_eq!(
            text,
            "running 2 scenarios of 1 test\n\
             PASS  api / boots (12 ms)\n\
             FAIL  api / broken (1.50 s)\n      step `a`: exit 1\n      second line\n\
             \x20     --- stderr of step `a` ---\n      boom\n"
        );
    }

    #[test]
    fn retries_print_try_and_flaky_lines() {
        let mut d = LiveDisplay::plain(Vec::new(), opts(FailureOutput::Never));
        let first = failed("flaky", 1, "", "boom\n");
        d.on_event(&RunEvent::Retrying {
            test: "api".into(),
            scenario: "flaky".into(),
            failed: AttemptResult::of(&first),
            max_attempts: 3,
        });
        let mut passed = fixtures::scenario("flaky", 9, Status::Flaky, 20.0, vec![]);
        passed.duration_ms = 20.0;
        passed.attempts = 2;
        d.on_event(&finished(passed, 3));
        d.on_event(&finished(failed("never", 3, "", "boom\n"), 3));
        assert_eq!(
            text(d),
            "TRY 1 FAIL  api / flaky (1.50 s)\n      step `a`: exit 1\n      second line\n\
             FLAKY 2/3 api / flaky (20 ms)\n\
             TRY 3 FAIL  api / never (1.50 s)\n      step `a`: exit 1\n      second line\n"
        );
    }

    #[test]
    fn slow_scenarios_get_a_line_per_period() {
        let mut d = LiveDisplay::plain(Vec::new(), opts(FailureOutput::Immediate));
        for s in [60, 120] {
            d.on_event(&RunEvent::Slow {
                test: "api".into(),
                scenario: "boots".into(),
                attempt: 1,
                elapsed: Duration::from_secs(s),
            });
        }
        d.on_event(&RunEvent::Slow {
            test: "api".into(),
            scenario: "quick".into(),
            attempt: 2,
            elapsed: Duration::from_millis(500),
        });
        assert_eq!(
            text(d),
            "SLOW [> 60s] api / boots\nSLOW [> 120s] api / boots\nTRY 2 SLOW [> 0.5s] api / quick\n"
        );
    }

    #[test]
    fn failure_output_final_comes_after_the_last_scenario() {
        let run = |mode| {
            let mut d = LiveDisplay::plain(Vec::new(), opts(mode));
            d.on_event(&finished(failed("one", 1, "out\n", ""), 1));
            d.on_event(&finished(failed("two", 1, "", "err\n"), 1));
            text(d)
        };
        let one = "FAIL  api / one (1.50 s)\n      step `a`: exit 1\n      second line\n";
        let out_one = "      --- stdout of step `a` ---\n      out\n";
        let two = "FAIL  api / two (1.50 s)\n      step `a`: exit 1\n      second line\n";
        let out_two = "      --- stderr of step `a` ---\n      err\n";
        let end = "--- output of 2 failed scenarios ---\n";
        assert_eq!(run(FailureOutput::Never), format!("{one}{two}"));
        assert_eq!(
            run(FailureOutput::Immediate),
            format!("{one}{out_one}{two}{out_two}")
        );
        assert_eq!(
            run(FailureOutput::Final),
            format!("{one}{two}{end}{one}{out_one}{two}{out_two}")
        );
        assert_eq!(
            run(FailureOutput::ImmediateFinal),
            format!("{one}{out_one}{two}{out_two}{end}{one}{out_one}{two}{out_two}")
        );
    }

    #[test]
    fn watch_cycles_do_not_announce() {
        let o = DisplayOptions {
            announce: false,
            ..DisplayOptions::plain()
        };
        let mut d = LiveDisplay::plain(Vec::new(), o);
        d.on_event(&RunEvent::Started {
            tests: 1,
            scenarios: 1,
        });
        assert!(d.into_inner().is_empty());
    }
}
