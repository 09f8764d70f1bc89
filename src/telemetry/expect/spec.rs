//! What a test file expects of the spans of a scenario (`[[expect.span]]`, `[expect.graph]`,
//! `[expect.counts]`, `[[expect.window]]`, `[expect.order]`, `[expect.status]`,
//! `[expect.hermeticity]`), as read by `telemetry::expect::schema`.

use serde::Serialize;

use crate::telemetry::model::{SpanKind, SpanStatus};

/// Default grace period for late span batches, ms.
pub const DEFAULT_FLUSH_MS: u64 = 200;

/// A span name or glob (`*` any run of characters, `?` one character).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Pattern(pub String);

impl Pattern {
    pub fn is_glob(&self) -> bool {
        self.0.contains(['*', '?'])
    }

    pub fn matches(&self, name: &str) -> bool {
        if !self.is_glob() {
            return self.0 == name;
        }
        glob(self.0.as_bytes(), name.as_bytes())
    }
}

/// Iterative glob match with backtracking on the last `*` (linear for typical patterns).
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// `eq` / `gte` / `lte` on a count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Bound {
    pub eq: Option<u64>,
    pub gte: Option<u64>,
    pub lte: Option<u64>,
}

impl Bound {
    pub fn holds(&self, n: u64) -> bool {
        self.eq.is_none_or(|e| n == e)
            && self.gte.is_none_or(|g| n >= g)
            && self.lte.is_none_or(|l| n <= l)
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(e) = self.eq {
            parts.push(format!("= {e}"));
        }
        if let Some(g) = self.gte {
            parts.push(format!(">= {g}"));
        }
        if let Some(l) = self.lte {
            parts.push(format!("<= {l}"));
        }
        f.write_str(&parts.join(" and "))
    }
}

/// `[[expect.span]]`: at least one span matches every given condition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanExpect {
    pub name: Pattern,
    pub kind: Option<SpanKind>,
    /// Every pair must be present (values compare by their text form).
    pub attrs_all: Vec<(String, String)>,
    /// At least one pair must be present.
    pub attrs_any: Vec<(String, String)>,
    /// At least one event with one of these names.
    pub events_any: Vec<String>,
    /// Every one of these event names.
    pub events_all: Vec<String>,
    pub duration_min_ms: Option<f64>,
    pub duration_max_ms: Option<f64>,
    /// The span's parent has a name matching this.
    pub parent: Option<Pattern>,
    pub line: u32,
}

/// `[expect.graph]`: parent -> child edges by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GraphExpect {
    pub must_include: Vec<(Pattern, Pattern)>,
    pub must_not_cross: Vec<(Pattern, Pattern)>,
    pub acyclic: bool,
    pub line: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CountsExpect {
    pub spans_total: Option<Bound>,
    pub events_total: Option<Bound>,
    pub errors_total: Option<Bound>,
    pub by_name: Vec<(Pattern, Bound)>,
    pub line: u32,
}

/// `[[expect.window]]`: each span named in `contains` lies inside an `outer` span in time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowExpect {
    pub outer: Pattern,
    pub contains: Vec<Pattern>,
    pub line: u32,
}

/// `[expect.order]`: `must_precede = [["a", "b"]]` (a starts... ends before b starts),
/// `must_follow = [["a", "b"]]` (a starts after b ends).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OrderExpect {
    pub must_precede: Vec<(Pattern, Pattern)>,
    pub must_follow: Vec<(Pattern, Pattern)>,
    pub line: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusExpect {
    pub all: Option<SpanStatus>,
    pub by_name: Vec<(Pattern, SpanStatus)>,
    pub line: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HermeticityExpect {
    pub no_external_services: bool,
    pub resource_attrs_must_match: Vec<(String, String)>,
    pub span_attrs_forbid_keys: Vec<String>,
    pub line: u32,
}

/// Every telemetry expectation of one level (test or scenario).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Expectations {
    pub spans: Vec<SpanExpect>,
    pub graph: Option<GraphExpect>,
    pub counts: Option<CountsExpect>,
    pub windows: Vec<WindowExpect>,
    pub order: Option<OrderExpect>,
    pub status: Option<StatusExpect>,
    pub hermeticity: Option<HermeticityExpect>,
    /// `[expect] flush_ms`: grace for late batches.
    pub flush_ms: Option<u64>,
}

impl Expectations {
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
            && self.graph.is_none()
            && self.counts.is_none()
            && self.windows.is_empty()
            && self.order.is_none()
            && self.status.is_none()
            && self.hermeticity.is_none()
    }

    /// Test-level expectations followed by the scenario's own.
    pub fn merged(test: &Expectations, scenario: &Expectations) -> Vec<Expectations> {
        [test, scenario]
            .into_iter()
            .filter(|e| !e.is_empty())
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shell_patterns() {
        let p = |s: &str| Pattern(s.into());
        assert!(p("clnrm.step:*").matches("clnrm.step:build"));
        assert!(p("*.query").matches("db.query"));
        assert!(p("a?c").matches("abc"));
        assert!(!p("a?c").matches("ac"));
        assert!(p("a*b*c").matches("a-b-b-c"));
        assert!(!p("a*b*c").matches("a-b-b-d"));
        assert!(p("exact").matches("exact"));
        assert!(!p("exact").matches("exactly"));
    }

    #[test]
    fn bounds_combine() {
        let b = Bound {
            gte: Some(2),
            lte: Some(3),
            eq: None,
        };
        assert!(b.holds(2) && b.holds(3) && !b.holds(1) && !b.holds(4));
        assert_eq!(b.to_string(), ">= 2 and <= 3");
    }
}
