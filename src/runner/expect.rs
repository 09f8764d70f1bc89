//! Checking one step's output against its expectations (pure).

use regex::Regex;

use crate::backend::ExecOutput;
use crate::results::Failure;
use crate::suite::{Expect, OutputExpect};

/// How much of an actual value a failure message quotes.
const QUOTE_LIMIT: usize = 200;

/// Every expectation of `expect` that `out` does not meet, in a stable order: exit code,
/// then stdout, then stderr. A timed-out exec yields only a `timeout` failure: its exit code
/// and partial output say nothing reliable.
pub fn check(expect: &Expect, out: &ExecOutput, timeout_ms: u64) -> Vec<Failure> {
    if out.timed_out {
        return vec![Failure {
            expectation: "timeout".into(),
            expected: format!("finish within {timeout_ms} ms"),
            actual: "killed after timeout".into(),
        }];
    }
    let mut failures = Vec::new();
    match out.exit_code {
        Some(code) if code == expect.exit_code => {}
        Some(code) => failures.push(Failure {
            expectation: "exit_code".into(),
            expected: expect.exit_code.to_string(),
            actual: code.to_string(),
        }),
        None => failures.push(Failure {
            expectation: "exit_code".into(),
            expected: expect.exit_code.to_string(),
            actual: "unknown (process vanished)".into(),
        }),
    }
    check_stream("stdout", &expect.stdout, &out.stdout, &mut failures);
    check_stream("stderr", &expect.stderr, &out.stderr, &mut failures);
    failures
}

fn check_stream(stream: &str, expect: &OutputExpect, bytes: &[u8], failures: &mut Vec<Failure>) {
    if expect.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(bytes);
    // One trailing newline is not part of the value: `echo` adds it, and `^...$` or `equals`
    // written in TOML should not have to spell it.
    let trimmed = text.strip_suffix('\n').unwrap_or(&text);
    for needle in &expect.contains {
        if !text.contains(needle.as_str()) {
            failures.push(Failure {
                expectation: format!("{stream}.contains"),
                expected: quote(needle),
                actual: quote(&text),
            });
        }
    }
    for needle in &expect.not_contains {
        if text.contains(needle.as_str()) {
            failures.push(Failure {
                expectation: format!("{stream}.not_contains"),
                expected: format!("no {}", quote(needle)),
                actual: quote(&text),
            });
        }
    }
    for pattern in &expect.regex {
        // Patterns were compiled once at load time; a failure here would be a loader bug,
        // reported as a failed expectation rather than a panic.
        let matched = Regex::new(pattern).map(|re| re.is_match(trimmed));
        match matched {
            Ok(true) => {}
            Ok(false) => failures.push(Failure {
                expectation: format!("{stream}.regex"),
                expected: format!("match /{pattern}/"),
                actual: quote(&text),
            }),
            Err(e) => failures.push(Failure {
                expectation: format!("{stream}.regex"),
                expected: format!("valid regex /{pattern}/"),
                actual: e.to_string(),
            }),
        }
    }
    if let Some(equals) = &expect.equals {
        if text.strip_suffix('\n').unwrap_or(&text) != equals.strip_suffix('\n').unwrap_or(equals) {
            failures.push(Failure {
                expectation: format!("{stream}.equals"),
                expected: quote(equals),
                actual: quote(&text),
            });
        }
    }
}

fn quote(s: &str) -> String {
    if s.len() <= QUOTE_LIMIT {
        return format!("{s:?}");
    }
    let mut end = QUOTE_LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}… ({} bytes)", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i64, stdout: &str, stderr: &str) -> ExecOutput {
        ExecOutput {
            exit_code: Some(code),
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn default_expects_exit_zero() {
        let e = Expect::default();
        assert!(check(&e, &out(0, "", ""), 1).is_empty());
        let f = check(&e, &out(3, "", ""), 1);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].to_string(), "exit_code: expected 0, got 3");
    }

    #[test]
    fn streams_are_checked_separately() {
        let mut e = Expect::default();
        e.stderr.contains = vec!["boom".into()];
        assert!(check(&e, &out(0, "", "a boom here"), 1).is_empty());
        let f = check(&e, &out(0, "boom", ""), 1);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].expectation, "stderr.contains");
        assert_eq!(f[0].actual, "\"\"");
    }

    #[test]
    fn regex_equals_and_not_contains() {
        let mut e = Expect::default();
        e.stdout.regex = vec![r"^v\d+\.\d+$".into()];
        e.stdout.equals = Some("v1.2".into());
        e.stdout.not_contains = vec!["error".into()];
        assert!(check(&e, &out(0, "v1.2\n", ""), 1).is_empty());
        let f = check(&e, &out(0, "x v1.2 error", ""), 1);
        let kinds: Vec<_> = f.iter().map(|f| f.expectation.as_str()).collect();
        assert_eq!(
            kinds,
            ["stdout.not_contains", "stdout.regex", "stdout.equals"]
        );
    }

    #[test]
    fn timeout_is_the_only_failure() {
        let mut o = out(137, "", "");
        o.timed_out = true;
        let f = check(&Expect::default(), &o, 500);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].expectation, "timeout");
        assert_eq!(f[0].expected, "finish within 500 ms");
    }

    #[test]
    fn long_output_is_quoted_briefly() {
        let mut e = Expect::default();
        e.stdout.contains = vec!["needle".into()];
        let big = "x".repeat(10_000);
        let f = check(&e, &out(0, &big, ""), 1);
        assert!(f[0].actual.ends_with("(10000 bytes)"), "{}", f[0].actual);
        assert!(f[0].actual.len() < 300);
    }
}
