//! The gate's verdict in the terminal, explained: which key regressed and by how much beyond
//! the runner's speed, or that the runner as a whole was slower (its speed factor against the
//! thresholds), that nothing was compared (missing or empty baseline), or that too few
//! scenarios were compared to tell the two apart. The markdown and JSON carry the full table.

use crate::perf::MIN_SEPARABLE;
use crate::results::{PerfRow, PerfSummary, SpeedVerdict, Verdict};

use super::live::plural;
use super::units::duration;

/// The lines the summary prints about the gate: a verdict line, then what it rests on.
pub fn gate_lines(perf: &PerfSummary) -> Vec<String> {
    let count = |v: Verdict| perf.rows.iter().filter(|r| r.verdict == v).count();
    let mut reasons = Vec::new();
    let regressed = count(Verdict::Regressed);
    if regressed > 0 {
        reasons.push(format!("{regressed} regression{}", plural(regressed)));
    }
    let budgets = count(Verdict::BudgetExceeded);
    if budgets > 0 {
        reasons.push(format!("{budgets} budget{} exceeded", plural(budgets)));
    }
    if perf.speed_verdict == SpeedVerdict::Fail {
        reasons.push("the runner as a whole was slower".to_string());
    }
    let word = if perf.failed {
        "gate failed"
    } else {
        "gate passed"
    };
    let mut head = format!("perf: {word} against `{}`", perf.baseline_path);
    if !reasons.is_empty() {
        head.push_str(&format!(": {}", reasons.join(", ")));
    } else if perf.compared > 0 {
        head.push_str(&format!(
            " ({} scenario{} compared)",
            perf.compared,
            plural(perf.compared)
        ));
    }
    let mut lines = vec![head];

    // Keys that are slower in some way, failing ones first (rows are in verdict order).
    for row in perf.rows.iter().filter(|r| r.verdict.is_slower()) {
        lines.push(format!("  {}", row_line(row, perf.speed_factor)));
    }
    if let Some(f) = perf.speed_factor {
        let thresholds = match (perf.speed_warn_above, perf.speed_fail_above) {
            (Some(w), Some(x)) => format!("warn above {w:.2}, fail above {x:.2}"),
            _ => String::new(),
        };
        let sample = format!(
            "median current/baseline over {} scenario{}",
            perf.speed_sample,
            plural(perf.speed_sample)
        );
        match perf.speed_verdict {
            SpeedVerdict::Fail => lines.push(format!(
                "  the runner as a whole was slower: speed factor {f:.2} ({sample}; {thresholds}); no single scenario needs to stand out"
            )),
            SpeedVerdict::Warn => lines.push(format!(
                "  the runner was slower than when the baseline was recorded: speed factor {f:.2} ({sample}; {thresholds})"
            )),
            SpeedVerdict::Ok => {}
        }
    }
    if perf.compared == 0 {
        lines.push(format!(
            "  notice: nothing was compared: `{}` holds no timing of any scenario in this run (missing or empty baseline)",
            perf.baseline_path
        ));
        lines.push(
            "  hint: record one on the main branch with `clnrm baseline record`, and keep it in the repository"
                .to_string(),
        );
    } else if perf.speed_sample < MIN_SEPARABLE {
        lines.push(format!(
            "  notice: the runner's speed rests on {} scenario{}: too few to tell a slower runner from a regression; a slowdown they share counts as runner speed{}",
            perf.speed_sample,
            plural(perf.speed_sample),
            perf.speed_factor
                .map_or_else(String::new, |f| format!(" (factor {f:.2})"))
        ));
    }
    lines
}

/// `REGRESSED path#scenario: 50 ms -> 72 ms, +43 % (+36 % beyond the runner speed; tolerance
/// 10 %); confirmed: ...`
fn row_line(row: &PerfRow, speed: Option<f64>) -> String {
    let base = row.baseline_ms.map_or_else(|| "-".to_string(), duration);
    let mut s = format!(
        "{} {}: {base} -> {}",
        row.verdict.as_str().to_uppercase(),
        row.key,
        duration(row.current_ms)
    );
    if let Some(r) = row.ratio {
        s.push_str(&format!(", {}", percent(r)));
        let mut why = Vec::new();
        if let (Some(n), Some(f)) = (row.normalised_ratio, speed) {
            why.push(format!(
                "{} beyond the runner speed factor {f:.2}",
                percent(n)
            ));
        }
        if let Some(t) = row.tolerance {
            why.push(format!("tolerance {:.0} %", t * 100.0));
        }
        if !why.is_empty() {
            s.push_str(&format!(" ({})", why.join("; ")));
        }
    }
    if let Some(b) = row.budget_ms {
        if row.verdict == Verdict::BudgetExceeded {
            s.push_str(&format!(", budget {}", duration(b)));
        }
    }
    if let Some(n) = &row.note {
        s.push_str(&format!("; {n}"));
    }
    s
}

/// `+43 %`, `-5 %` from a ratio.
fn percent(ratio: f64) -> String {
    format!("{:+.0} %", (ratio - 1.0) * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    /// The fixture's summary, with the notes the gate writes on its failing rows.
    fn summary() -> PerfSummary {
        let mut p = fixtures::with_perf().perf.expect("fixture has perf");
        p.rows[0].note = Some("confirmed: median of 3 re-runs 70.9 ms".to_string());
        p.rows[1].note = Some("1400 ms > max_ms 1000 ms".to_string());
        p
    }

    #[test]
    fn a_regression_names_its_key_and_how_much() {
        let lines = gate_lines(&summary());
        assert_eq!(
            lines[0],
            "perf: gate failed against `.clnrm/perf-baseline.toml`: 1 regression, 1 budget exceeded"
        );
        assert_eq!(
            lines[1],
            "  REGRESSED tests/api.clnrm.toml#create user: 50 ms -> 72 ms, +43 % (+36 % beyond the runner speed factor 1.05; tolerance 10 %); confirmed: median of 3 re-runs 70.9 ms"
        );
        assert!(
            lines[2].starts_with("  BUDGET-EXCEEDED tests/db.clnrm.toml#migrate: 1.30 s -> 1.40 s"),
            "{lines:#?}"
        );
        assert!(lines[2].ends_with(", budget 1.00 s; 1400 ms > max_ms 1000 ms"));
        assert_eq!(lines.len(), 3, "{lines:#?}");
    }

    #[test]
    fn a_slower_runner_is_named_with_its_factor_and_thresholds() {
        let mut p = summary();
        p.rows.retain(|r| !r.verdict.fails());
        p.speed_factor = Some(1.52);
        p.speed_verdict = SpeedVerdict::Fail;
        p.failed = true;
        let lines = gate_lines(&p);
        assert_eq!(
            lines[0],
            "perf: gate failed against `.clnrm/perf-baseline.toml`: the runner as a whole was slower"
        );
        assert_eq!(
            lines[1],
            "  the runner as a whole was slower: speed factor 1.52 (median current/baseline over 4 scenarios; warn above 1.20, fail above 1.35); no single scenario needs to stand out"
        );
        p.speed_verdict = SpeedVerdict::Warn;
        p.failed = false;
        let lines = gate_lines(&p);
        assert_eq!(
            lines[0],
            "perf: gate passed against `.clnrm/perf-baseline.toml` (4 scenarios compared)"
        );
        assert!(lines[1].starts_with(
            "  the runner was slower than when the baseline was recorded: speed factor 1.52"
        ));
    }

    #[test]
    fn nothing_compared_and_too_few_compared_are_notices() {
        let mut p = summary();
        p.rows.clear();
        p.failed = false;
        p.compared = 0;
        p.speed_factor = None;
        let lines = gate_lines(&p);
        assert_eq!(
            lines,
            vec![
                "perf: gate passed against `.clnrm/perf-baseline.toml`".to_string(),
                "  notice: nothing was compared: `.clnrm/perf-baseline.toml` holds no timing of any scenario in this run (missing or empty baseline)".to_string(),
                "  hint: record one on the main branch with `clnrm baseline record`, and keep it in the repository".to_string(),
            ]
        );
        p.compared = 1;
        p.speed_sample = 1;
        p.speed_factor = Some(1.3);
        let lines = gate_lines(&p);
        assert_eq!(
            lines[1],
            "  notice: the runner's speed rests on 1 scenario: too few to tell a slower runner from a regression; a slowdown they share counts as runner speed (factor 1.30)"
        );
        p.compared = MIN_SEPARABLE;
        p.speed_sample = MIN_SEPARABLE;
        assert_eq!(gate_lines(&p).len(), 1);
        // Many compared, but the speed factor rests on the one with a full history.
        p.compared = 5;
        p.speed_sample = 1;
        assert!(gate_lines(&p)[1].starts_with("  notice: the runner's speed rests on 1 scenario"));
    }
}
