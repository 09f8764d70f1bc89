//! The live display of a run: a progress bar on an interactive terminal, otherwise one plain,
//! greppable line per event (`PASS  test / scenario (12 ms)`), for `run`, `baseline record`
//! and every watch cycle. Writes to any `io::Write`, so it is tested on a buffer.

use std::io::Write;

use super::units::duration;
use super::Printer;
use crate::results::Status;
use crate::runner::RunEvent;

/// Consumes run events and shows them.
pub struct LiveDisplay<W: Write> {
    out: W,
    printer: Printer,
    /// Print `running N scenarios of M tests` when the plan starts (not in watch cycles).
    announce: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl LiveDisplay<std::io::Stderr> {
    /// The display on stderr; a progress bar when the printer is interactive.
    pub fn stderr(printer: Printer, announce: bool) -> Self {
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
        LiveDisplay {
            out: std::io::stderr(),
            printer,
            announce,
            bar,
        }
    }
}

impl<W: Write> LiveDisplay<W> {
    /// Plain lines to `out`, never a progress bar.
    pub fn plain(out: W, printer: Printer, announce: bool) -> Self {
        LiveDisplay {
            out,
            printer,
            announce,
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
                attempt,
                message,
            } => self.line(format!(
                "RETRY {test} / {scenario} (attempt {attempt} failed: {message})"
            )),
            RunEvent::ScenarioFinished { test, result, .. } => {
                let word = match result.status {
                    Status::Passed => self.printer.paint("PASS ", "32"),
                    Status::Flaky => self.printer.paint("FLAKY", "33"),
                    Status::Skipped => self.printer.paint("SKIP ", "2"),
                    Status::Failed => self.printer.paint("FAIL ", "31"),
                    Status::TimedOut => self.printer.paint("TIME ", "31"),
                    Status::Error => self.printer.paint("ERROR", "31"),
                };
                let mut line = format!(
                    "{word} {test} / {} ({})",
                    result.name,
                    duration(result.duration_ms)
                );
                if result.status.is_failure() {
                    if let Some(m) = &result.message {
                        line.push_str(&format!("\n      {}", m.replace('\n', "\n      ")));
                    }
                }
                if let Some(pb) = &self.bar {
                    pb.inc(1);
                }
                self.line(line);
            }
            RunEvent::TestFinished(_) => {}
        }
    }

    /// Clear the progress bar.
    pub fn finish(&mut self) {
        if let Some(pb) = self.bar.take() {
            pb.finish_and_clear();
        }
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

    #[test]
    fn plain_lines_for_every_outcome() {
        let mut d = LiveDisplay::plain(Vec::new(), Printer::plain(), true);
        d.on_event(&RunEvent::Started {
            tests: 1,
            scenarios: 2,
        });
        let mut ok = fixtures::scenario("boots", 3, Status::Passed, 12.4, vec![]);
        ok.duration_ms = 12.4;
        d.on_event(&RunEvent::ScenarioFinished {
            test: "api".into(),
            path: "api.clnrm.toml".into(),
            result: ok,
        });
        d.on_event(&RunEvent::Retrying {
            test: "api".into(),
            scenario: "flaky".into(),
            attempt: 1,
            message: "exit 1".into(),
        });
        let mut bad = fixtures::scenario("flaky", 9, Status::Failed, 1500.0, vec![]);
        bad.duration_ms = 1500.0;
        bad.message = Some("step `a`: exit 1\nsecond line".into());
        d.on_event(&RunEvent::ScenarioFinished {
            test: "api".into(),
            path: "api.clnrm.toml".into(),
            result: bad,
        });
        let text = String::from_utf8(d.into_inner()).unwrap();
        assert_eq!(
            text,
            "running 2 scenarios of 1 test\n\
             PASS  api / boots (12 ms)\n\
             RETRY api / flaky (attempt 1 failed: exit 1)\n\
             FAIL  api / flaky (1.50 s)\n      step `a`: exit 1\n      second line\n"
        );
    }

    #[test]
    fn watch_cycles_do_not_announce() {
        let mut d = LiveDisplay::plain(Vec::new(), Printer::plain(), false);
        d.on_event(&RunEvent::Started {
            tests: 1,
            scenarios: 1,
        });
        assert!(d.into_inner().is_empty());
    }
}
