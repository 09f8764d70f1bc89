//! Human-readable durations, sizes and perf figures shared by the reporters.

use crate::results::{PerfRow, RunResults, Totals};

/// The run's overall verdict word, in the order of precedence the exit code uses.
pub fn verdict(results: &RunResults) -> (&'static str, bool) {
    let t = results.totals();
    if results.aborted.is_some() {
        ("aborted", false)
    } else if t.failed > 0 || t.load_errors > 0 {
        ("failed", false)
    } else if results.perf.as_ref().is_some_and(|p| p.failed) {
        ("failed (perf regression)", false)
    } else if t.scenarios == 0 {
        ("selected no tests", false)
    } else {
        ("passed", true)
    }
}

/// `3 failed, 2 passed, 1 flaky, 1 skipped, 1 load error`: zero counts left out.
pub fn counts(t: &Totals) -> String {
    let parts: Vec<String> = [
        (t.failed, "failed", "failed"),
        (t.passed, "passed", "passed"),
        (t.flaky, "flaky", "flaky"),
        (t.skipped, "skipped", "skipped"),
        (t.load_errors, "load error", "load errors"),
    ]
    .iter()
    .filter(|(n, _, _)| *n > 0)
    .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
    .collect();
    if parts.is_empty() {
        "no scenarios".to_string()
    } else {
        parts.join(", ")
    }
}

/// A duration given in ms, in the unit a reader expects: `0.4 ms`, `85 ms`, `1.25 s`, `2m 05s`.
pub fn duration(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "-".to_string();
    }
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        let total_s = (ms / 1000.0).round() as u64;
        format!("{}m {:02}s", total_s / 60, total_s % 60)
    }
}

/// A duration for perf comparisons, where a millisecond matters: `71.5 ms`, `1.402 s`.
pub fn duration_precise(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        "-".to_string()
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.3} s", ms / 1000.0)
    }
}

/// A byte count: `512 B`, `64.0 KiB`, `9.5 MiB`.
pub fn bytes_human(n: usize) -> String {
    const KIB: f64 = 1024.0;
    let f = n as f64;
    if f < KIB {
        format!("{n} B")
    } else if f < KIB * KIB {
        format!("{:.1} KiB", f / KIB)
    } else {
        format!("{:.1} MiB", f / (KIB * KIB))
    }
}

/// One perf row on one line, for JUnit properties and annotations:
/// `regressed: 71.5 ms vs baseline 50.0 ms, ratio 1.430, normalised 1.362, MDE 8.0 %`.
pub fn perf_row_summary(row: &PerfRow) -> String {
    let mut s = format!("{}: {:.1} ms", row.verdict, row.current_ms);
    if let Some(b) = row.baseline_ms {
        s.push_str(&format!(" vs baseline {b:.1} ms"));
    }
    if let Some(r) = row.ratio {
        s.push_str(&format!(", ratio {r:.3}"));
    }
    if let Some(r) = row.normalised_ratio {
        s.push_str(&format!(", normalised {r:.3}"));
    }
    if let Some(m) = row.mde {
        s.push_str(&format!(", MDE {:.1} %", m * 100.0));
    }
    if let Some(b) = row.budget_ms {
        s.push_str(&format!(", budget {b:.1} ms"));
    }
    if !row.fingerprint_match {
        s.push_str(", runner fingerprint differs");
    }
    if row.low_resolution {
        s.push_str(", below timer resolution");
    }
    if let Some(n) = &row.note {
        s.push_str(&format!(", {n}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_units() {
        assert_eq!(duration(0.42), "0.4 ms");
        assert_eq!(duration(85.4), "85 ms");
        assert_eq!(duration(1250.0), "1.25 s");
        assert_eq!(duration(125_000.0), "2m 05s");
        assert_eq!(duration(f64::NAN), "-");
        assert_eq!(duration_precise(71.54), "71.5 ms");
        assert_eq!(duration_precise(1402.0), "1.402 s");
    }

    #[test]
    fn sizes_pick_units() {
        assert_eq!(bytes_human(512), "512 B");
        assert_eq!(bytes_human(65536), "64.0 KiB");
        assert_eq!(bytes_human(10 * 1024 * 1024), "10.0 MiB");
    }
}
