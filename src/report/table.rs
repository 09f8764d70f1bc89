//! Terminal summary: a comfy-table of every scenario and a totals line.

use comfy_table::{presets, Cell, CellAlignment, Color, Table};

use crate::results::{RunResults, Status};

use super::escape::clean_text;
use super::units::{counts, duration, verdict};

/// The summary printed at the end of a run. Status words are always present, so the
/// table reads the same without colour; `color` only adds ANSI colours by meaning.
pub fn table(results: &RunResults, color: bool) -> String {
    let show_attempts = results
        .tests
        .iter()
        .flat_map(|t| &t.scenarios)
        .any(|s| s.attempts > 1);
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    if color {
        // comfy-table drops styling when stdout is not a terminal; the caller already
        // decided (NO_COLOR, --color), so force it.
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    let mut header = vec!["test", "scenario", "status", "duration"];
    if show_attempts {
        header.push("attempts");
    }
    table.set_header(header);

    for e in &results.load_errors {
        let mut row = vec![
            Cell::new(one_line(&e.path)),
            Cell::new("-"),
            paint(Cell::new("load error"), Color::Red, color),
            Cell::new("-"),
        ];
        if show_attempts {
            row.push(Cell::new(""));
        }
        table.add_row(row);
    }
    for test in &results.tests {
        for sc in &test.scenarios {
            let mut row = vec![
                Cell::new(one_line(&test.name)),
                Cell::new(one_line(&sc.name)),
                paint(
                    Cell::new(sc.status.as_str()),
                    status_color(sc.status),
                    color,
                ),
                Cell::new(if sc.status == Status::Skipped {
                    "-".to_string()
                } else {
                    duration(sc.duration_ms)
                }),
            ];
            if show_attempts {
                let a = if sc.attempts > 1 {
                    sc.attempts.to_string()
                } else {
                    String::new()
                };
                row.push(Cell::new(a));
            }
            table.add_row(row);
        }
    }
    for i in 3..table.column_count() {
        if let Some(col) = table.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }

    let (word, ok) = verdict(results);
    let mut totals = format!(
        "{}: {} in {}",
        word.to_uppercase(),
        counts(&results.totals()),
        duration(results.duration_ms)
    );
    if color {
        let code = if ok { "32" } else { "31" };
        totals = format!("\u{1b}[1;{code}m{totals}\u{1b}[0m");
    }
    let mut out = format!("{table}\n{totals}\n");
    if let Some(perf) = &results.perf {
        // Why the gate decided as it did; the full table is in the markdown and JSON reports.
        for line in super::gate_explain::gate_lines(perf) {
            out.push_str(&one_line(&line));
            out.push('\n');
        }
    }
    if let Some(reason) = &results.aborted {
        out.push_str(&format!("run aborted: {}\n", one_line(reason)));
    }
    out
}

fn status_color(s: Status) -> Color {
    match s {
        Status::Passed => Color::Green,
        Status::Flaky => Color::Yellow,
        Status::Failed | Status::TimedOut | Status::Error => Color::Red,
        Status::Skipped => Color::DarkGrey,
    }
}

fn paint(cell: Cell, c: Color, color: bool) -> Cell {
    if color {
        cell.fg(c)
    } else {
        cell
    }
}

/// Test-provided names must not move the cursor or break the row.
fn one_line(s: &str) -> String {
    clean_text(s).replace(['\n', '\t'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn snapshot_without_colour() {
        insta::assert_snapshot!("table_mixed", table(&fixtures::with_perf(), false));
    }

    #[test]
    fn no_escape_codes_without_colour_and_some_with() {
        let plain = table(&fixtures::mixed(), false);
        assert!(!plain.contains('\u{1b}'));
        let coloured = table(&fixtures::mixed(), true);
        assert!(
            coloured.contains("\u{1b}[1;31mFAILED: 3 failed"),
            "{coloured}"
        );
        assert!(
            coloured.contains("\u{1b}[38;5;9m") || coloured.contains("\u{1b}[31m"),
            "{coloured}"
        );
    }

    #[test]
    fn attempts_column_only_when_retried() {
        let r = fixtures::results(vec![fixtures::test(
            "one",
            vec![fixtures::scenario(
                "only",
                1,
                Status::Passed,
                5.0,
                Vec::new(),
            )],
        )]);
        let out = table(&r, false);
        assert!(!out.contains("attempts"));
        assert!(out.ends_with("PASSED: 1 passed in 4.32 s\n"), "{out}");
    }

    #[test]
    fn hostile_names_cannot_inject_escapes() {
        let mut r = fixtures::hostile();
        r.tests[0].name = "a\u{1b}[2Jb\nc".to_string();
        let out = table(&r, false);
        assert!(out.contains("│ ab c "), "{out}");
    }
}
