//! The output of a failed step in the terminal: when it is shown (`--failure-output`, as in
//! nextest) and what of it: the tail of its stdout and stderr, since the error is usually at
//! the end. The reports keep more (head and tail of every stream).

use serde::Deserialize;

use crate::results::StepResult;

/// Lines of each stream shown in the terminal.
pub const TAIL_LINES: usize = 20;
/// Bytes of each stream shown in the terminal (a few very long lines stay readable).
pub const TAIL_BYTES: usize = 4096;

/// When the output of a failed step is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum FailureOutput {
    /// Under the scenario's `FAIL` line, as it fails.
    #[default]
    Immediate,
    /// After the last scenario, all failures together.
    Final,
    /// Both: as it fails and again at the end (long CI logs).
    ImmediateFinal,
    /// Never; the reports still hold it.
    Never,
}

impl FailureOutput {
    pub fn immediate(self) -> bool {
        matches!(
            self,
            FailureOutput::Immediate | FailureOutput::ImmediateFinal
        )
    }

    pub fn at_end(self) -> bool {
        matches!(self, FailureOutput::Final | FailureOutput::ImmediateFinal)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FailureOutput::Immediate => "immediate",
            FailureOutput::Final => "final",
            FailureOutput::ImmediateFinal => "immediate-final",
            FailureOutput::Never => "never",
        }
    }
}

/// The tail of stdout and stderr of every step that did not pass (failed, timed out, error),
/// indented under the scenario line; empty streams are left out.
pub fn failed_steps_output(steps: &[StepResult], indent: &str) -> Vec<String> {
    let mut out = Vec::new();
    for step in steps.iter().filter(|s| s.status.is_failure()) {
        for (name, text) in [("stdout", &step.stdout), ("stderr", &step.stderr)] {
            if text.trim().is_empty() {
                continue;
            }
            // Masked before the cut, so the cut can never leave part of a secret.
            let text = crate::secrets::mask(text);
            let (tail, cut_lines) = tail(&text, TAIL_LINES, TAIL_BYTES);
            let cut = match cut_lines {
                0 => String::new(),
                1 => ", last lines; 1 earlier line not shown".to_string(),
                n => format!(", last lines; {n} earlier lines not shown"),
            };
            out.push(format!(
                "{indent}--- {name} of step `{}`{cut} ---",
                step.name
            ));
            // A `\r` inside a line (progress output) would move the cursor back over the indent:
            // keep what a terminal would have shown last.
            out.extend(tail.lines().map(|l| {
                let shown = l.rsplit('\r').find(|p| !p.is_empty()).unwrap_or("");
                format!("{indent}{shown}")
            }));
        }
    }
    out
}

/// The last `max_lines` lines of `text`, at most `max_bytes` of them (cut at a line, or at a
/// character when a single line is longer), and how many lines were left out before them.
pub fn tail(text: &str, max_lines: usize, max_bytes: usize) -> (&str, usize) {
    let text = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return ("", 0);
    }
    let total = text.split('\n').count();
    let mut start = text.len();
    let mut kept = 0;
    let mut search_end = text.len();
    while kept < max_lines {
        let line_start = text[..search_end].rfind('\n').map_or(0, |i| i + 1);
        if text.len() - line_start > max_bytes {
            break;
        }
        start = line_start;
        kept += 1;
        if line_start == 0 {
            break;
        }
        search_end = line_start - 1;
    }
    if kept == 0 {
        // The last line alone is longer than the budget: keep its end.
        let mut s = text.len() - max_bytes;
        while !text.is_char_boundary(s) {
            s += 1;
        }
        return (&text[s..], total - 1);
    }
    (&text[start..], total - kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Status;

    fn step(status: Status, stdout: &str, stderr: &str) -> StepResult {
        StepResult {
            name: "build".into(),
            line: 7,
            service: "app".into(),
            command: "make".into(),
            status,
            exit_code: Some(2),
            duration_ms: 1.0,
            stdout: stdout.into(),
            stderr: stderr.into(),
            stdout_truncated: false,
            stderr_truncated: false,
            failures: Vec::new(),
        }
    }

    #[test]
    fn tail_keeps_the_last_lines_and_counts_the_rest() {
        let text: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        let (t, cut) = tail(&text, 3, 1000);
        assert_eq!((t, cut), ("line 28\nline 29\nline 30", 27));
        assert_eq!(tail("a\nb\n", 3, 1000), ("a\nb", 0));
        assert_eq!(tail("only", 3, 1000), ("only", 0));
        assert_eq!(tail("", 3, 1000), ("", 0));
        // The byte budget wins over the line count.
        assert_eq!(tail("aaaa\nbbbb\ncccc", 10, 9), ("bbbb\ncccc", 1));
        // A single line longer than the budget keeps its end, never splitting a character.
        let (t, cut) = tail("xxxxxxxxxé", 10, 3);
        assert_eq!((t, cut), ("xé", 0));
    }

    #[test]
    fn carriage_returns_do_not_reach_the_terminal() {
        let out = failed_steps_output(
            &[step(Status::Failed, "10%\r50%\r100%\r\ndone\r\n", "")],
            "  ",
        );
        assert_eq!(out[1..], ["  100%".to_string(), "  done".to_string()]);
    }

    #[test]
    fn only_failed_steps_and_non_empty_streams_are_shown() {
        let steps = vec![
            step(Status::Passed, "fine\n", ""),
            step(Status::Failed, "", "error: no rule to make target\n"),
            step(Status::Skipped, "never", "never"),
        ];
        assert_eq!(
            failed_steps_output(&steps, "  "),
            vec![
                "  --- stderr of step `build` ---".to_string(),
                "  error: no rule to make target".to_string(),
            ]
        );
        let long: String = (1..=25).map(|i| format!("{i}\n")).collect();
        let out = failed_steps_output(&[step(Status::TimedOut, &long, "")], "");
        assert_eq!(
            out[0],
            "--- stdout of step `build`, last lines; 5 earlier lines not shown ---"
        );
        assert_eq!(out.len(), 1 + TAIL_LINES);
        assert_eq!(out.last().map(String::as_str), Some("25"));
    }

    #[test]
    fn names_parse_as_on_the_command_line_and_in_the_config() {
        #[derive(Deserialize)]
        struct C {
            f: FailureOutput,
        }
        let c: C = toml::from_str("f = \"immediate-final\"").unwrap();
        assert_eq!(c.f, FailureOutput::ImmediateFinal);
        assert!(c.f.immediate() && c.f.at_end());
        assert!(!FailureOutput::Never.immediate() && !FailureOutput::Never.at_end());
        use clap::ValueEnum;
        for f in FailureOutput::value_variants() {
            assert_eq!(FailureOutput::from_str(f.as_str(), false), Ok(*f));
        }
    }
}
