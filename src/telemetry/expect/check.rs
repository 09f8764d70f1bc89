//! Checking the spans of a scenario against its expectations (pure). Every expectation that
//! does not hold yields one [`SpanFailure`] with its source line, what was expected, and what
//! was found (with the nearest spans when nothing matched).

use std::collections::{HashMap, HashSet};

use super::spec::*;
use crate::telemetry::model::{Span, SpanKind, SpanStatus};

/// One telemetry expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanFailure {
    /// `expect.span`, `expect.counts.spans_total`, ...
    pub expectation: String,
    /// 1-based line of the expectation in the test file.
    pub line: u32,
    pub expected: String,
    pub actual: String,
}

/// Hosts a span may talk to under `no_external_services` besides the test's services.
const LOCAL_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"];
/// Attributes naming the peer of a client span (old and current semantic conventions).
const PEER_KEYS: &[&str] = &[
    "server.address",
    "net.peer.name",
    "net.peer.ip",
    "peer.service",
    "url.full",
    "http.url",
];

/// What the checks know besides the spans.
#[derive(Debug, Clone, Default)]
pub struct CheckContext {
    /// Service ids of the test: peers allowed under `no_external_services`.
    pub services: Vec<String>,
}

/// Spans indexed once for all checks of a scenario.
struct Index<'a> {
    spans: &'a [Span],
    by_id: HashMap<(u128, u64), usize>,
}

impl<'a> Index<'a> {
    fn new(spans: &'a [Span]) -> Index<'a> {
        let by_id = spans
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.trace_id, s.span_id), i))
            .collect();
        Index { spans, by_id }
    }

    fn parent(&self, s: &Span) -> Option<&'a Span> {
        let p = s.parent_span_id?;
        self.by_id.get(&(s.trace_id, p)).map(|i| &self.spans[*i])
    }

    fn named(&self, p: &'a Pattern) -> impl Iterator<Item = &'a Span> + 'a {
        self.spans.iter().filter(move |s| p.matches(&s.name))
    }
}

/// Check every expectation level against `spans`.
pub fn check(levels: &[Expectations], spans: &[Span], cx: &CheckContext) -> Vec<SpanFailure> {
    let idx = Index::new(spans);
    let mut out = Vec::new();
    for e in levels {
        for s in &e.spans {
            check_span(&idx, s, &mut out);
        }
        if let Some(g) = &e.graph {
            check_graph(&idx, g, &mut out);
        }
        if let Some(c) = &e.counts {
            check_counts(&idx, c, &mut out);
        }
        for w in &e.windows {
            check_window(&idx, w, &mut out);
        }
        if let Some(o) = &e.order {
            check_order(&idx, o, &mut out);
        }
        if let Some(s) = &e.status {
            check_status(&idx, s, &mut out);
        }
        if let Some(h) = &e.hermeticity {
            check_hermeticity(&idx, h, cx, &mut out);
        }
    }
    out
}

fn fail(out: &mut Vec<SpanFailure>, what: String, line: u32, expected: String, actual: String) {
    out.push(SpanFailure {
        expectation: what,
        line,
        expected,
        actual,
    });
}

fn attr_is(s: &Span, k: &str, v: &str) -> bool {
    s.attrs.get(k).is_some_and(|a| a.to_string() == v)
}

/// Reasons a span does not meet `x` (empty when it does).
fn mismatches(idx: &Index<'_>, s: &Span, x: &SpanExpect) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(k) = x.kind {
        if s.kind != k {
            why.push(format!("kind {}", s.kind.as_str()));
        }
    }
    for (k, v) in &x.attrs_all {
        if !attr_is(s, k, v) {
            why.push(match s.attrs.get(k) {
                Some(a) => format!("{k}={a}"),
                None => format!("no {k}"),
            });
        }
    }
    if !x.attrs_any.is_empty() && !x.attrs_any.iter().any(|(k, v)| attr_is(s, k, v)) {
        why.push("none of attrs.any".into());
    }
    if !x.events_any.is_empty() && !s.events.iter().any(|e| x.events_any.contains(&e.name)) {
        why.push("none of events.any".into());
    }
    for name in &x.events_all {
        if !s.events.iter().any(|e| &e.name == name) {
            why.push(format!("no event {name}"));
        }
    }
    let d = s.duration_ms();
    if x.duration_min_ms.is_some_and(|m| d < m) || x.duration_max_ms.is_some_and(|m| d > m) {
        why.push(format!("duration {d:.1} ms"));
    }
    if let Some(p) = &x.parent {
        match idx.parent(s) {
            Some(ps) if p.matches(&ps.name) => {}
            Some(ps) => why.push(format!("parent {}", ps.name)),
            None => why.push("no parent".into()),
        }
    }
    why
}

fn describe(x: &SpanExpect) -> String {
    let mut parts = vec![format!("a span named `{}`", x.name.0)];
    if let Some(k) = x.kind {
        parts.push(format!("kind {}", k.as_str()));
    }
    for (k, v) in &x.attrs_all {
        parts.push(format!("{k}={v}"));
    }
    if !x.attrs_any.is_empty() {
        let any: Vec<String> = x
            .attrs_any
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.push(format!("any of {}", any.join("|")));
    }
    if !x.events_any.is_empty() {
        parts.push(format!("an event of {}", x.events_any.join("|")));
    }
    for e in &x.events_all {
        parts.push(format!("event {e}"));
    }
    match (x.duration_min_ms, x.duration_max_ms) {
        (Some(lo), Some(hi)) => parts.push(format!("{lo}..{hi} ms")),
        (Some(lo), None) => parts.push(format!(">= {lo} ms")),
        (None, Some(hi)) => parts.push(format!("<= {hi} ms")),
        (None, None) => {}
    }
    if let Some(p) = &x.parent {
        parts.push(format!("parent `{}`", p.0));
    }
    parts.join(", ")
}

fn check_span(idx: &Index<'_>, x: &SpanExpect, out: &mut Vec<SpanFailure>) {
    let mut nearest: Vec<(usize, &Span, Vec<String>)> = Vec::new();
    for s in idx.named(&x.name) {
        let why = mismatches(idx, s, x);
        if why.is_empty() {
            return;
        }
        nearest.push((why.len(), s, why));
    }
    let actual = if nearest.is_empty() {
        nearest_names(idx.spans, &x.name)
    } else {
        nearest.sort_by_key(|n| n.0);
        let shown: Vec<String> = nearest
            .iter()
            .take(3)
            .map(|(_, s, why)| format!("`{}` ({})", s.name, why.join(", ")))
            .collect();
        format!(
            "{} named `{}` but none matches; nearest: {}",
            crate::report::count_of(nearest.len(), "span"),
            x.name.0,
            shown.join("; ")
        )
    };
    fail(out, "expect.span".into(), x.line, describe(x), actual);
}

/// "no span named `x` among N; nearest names: ..." by string similarity.
fn nearest_names(spans: &[Span], p: &Pattern) -> String {
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut scored: Vec<(f64, &str)> = names
        .iter()
        .map(|n| (strsim::jaro_winkler(&p.0, n), *n))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let near: Vec<String> = scored
        .iter()
        .take(3)
        .map(|(_, n)| format!("`{n}`"))
        .collect();
    if near.is_empty() {
        "no span at all (0 received for this scenario)".to_string()
    } else {
        format!(
            "no span named `{}` among {}; nearest names: {}",
            p.0,
            crate::report::count_of(spans.len(), "span"),
            near.join(", ")
        )
    }
}

fn check_graph(idx: &Index<'_>, g: &GraphExpect, out: &mut Vec<SpanFailure>) {
    let edge_exists = |a: &Pattern, b: &Pattern| {
        idx.named(b)
            .any(|c| idx.parent(c).is_some_and(|p| a.matches(&p.name)))
    };
    for (a, b) in &g.must_include {
        if !edge_exists(a, b) {
            fail(
                out,
                "expect.graph.must_include".into(),
                g.line,
                format!("an edge `{}` -> `{}` (parent -> child)", a.0, b.0),
                edge_context(idx, b),
            );
        }
    }
    for (a, b) in &g.must_not_cross {
        if edge_exists(a, b) {
            fail(
                out,
                "expect.graph.must_not_cross".into(),
                g.line,
                format!("no edge `{}` -> `{}`", a.0, b.0),
                "the edge is present".into(),
            );
        }
    }
    if g.acyclic {
        if let Some(s) = find_cycle(idx) {
            fail(
                out,
                "expect.graph.acyclic".into(),
                g.line,
                "an acyclic span graph".into(),
                format!("a parent cycle through `{}`", s.name),
            );
        }
    }
}

fn edge_context(idx: &Index<'_>, child: &Pattern) -> String {
    let parents: Vec<String> = idx
        .named(child)
        .take(3)
        .map(|c| match idx.parent(c) {
            Some(p) => format!("`{}` -> `{}`", p.name, c.name),
            None => format!("`{}` is a root", c.name),
        })
        .collect();
    if parents.is_empty() {
        format!("no span named `{}`", child.0)
    } else {
        parents.join("; ")
    }
}

/// A span whose parent chain comes back to itself (only possible with bad ids).
fn find_cycle<'a>(idx: &Index<'a>) -> Option<&'a Span> {
    let mut done: HashSet<(u128, u64)> = HashSet::new();
    for s in idx.spans {
        let mut path: HashSet<(u128, u64)> = HashSet::new();
        let mut cur = Some(s);
        while let Some(c) = cur {
            let key = (c.trace_id, c.span_id);
            if done.contains(&key) {
                break;
            }
            if !path.insert(key) {
                return Some(c);
            }
            cur = idx.parent(c);
        }
        done.extend(path);
    }
    None
}

fn check_counts(idx: &Index<'_>, c: &CountsExpect, out: &mut Vec<SpanFailure>) {
    let mut one = |what: &str, bound: &Option<Bound>, n: usize| {
        if let Some(b) = bound {
            if !b.holds(n as u64) {
                fail(
                    out,
                    format!("expect.counts.{what}"),
                    c.line,
                    b.to_string(),
                    n.to_string(),
                );
            }
        }
    };
    one("spans_total", &c.spans_total, idx.spans.len());
    one(
        "events_total",
        &c.events_total,
        idx.spans.iter().map(|s| s.events.len()).sum(),
    );
    one(
        "errors_total",
        &c.errors_total,
        idx.spans
            .iter()
            .filter(|s| s.status == SpanStatus::Error)
            .count(),
    );
    for (p, b) in &c.by_name {
        let n = idx.named(p).count();
        if !b.holds(n as u64) {
            fail(
                out,
                format!("expect.counts.by_name `{}`", p.0),
                c.line,
                b.to_string(),
                n.to_string(),
            );
        }
    }
}

fn check_window(idx: &Index<'_>, w: &WindowExpect, out: &mut Vec<SpanFailure>) {
    let outers: Vec<&Span> = idx.named(&w.outer).collect();
    if outers.is_empty() {
        fail(
            out,
            "expect.window".into(),
            w.line,
            format!("an outer span `{}`", w.outer.0),
            nearest_names(idx.spans, &w.outer),
        );
        return;
    }
    for inner in &w.contains {
        let inners: Vec<&Span> = idx.named(inner).collect();
        if inners.is_empty() {
            fail(
                out,
                "expect.window".into(),
                w.line,
                format!("`{}` inside `{}`", inner.0, w.outer.0),
                nearest_names(idx.spans, inner),
            );
            continue;
        }
        for s in inners {
            let inside = outers
                .iter()
                .any(|o| o.start_ns <= s.start_ns && s.end_ns <= o.end_ns);
            if !inside {
                fail(
                    out,
                    "expect.window".into(),
                    w.line,
                    format!("`{}` inside `{}` in time", s.name, w.outer.0),
                    format!(
                        "`{}` runs {}..{} ns, outside every `{}`",
                        s.name, s.start_ns, s.end_ns, w.outer.0
                    ),
                );
                break;
            }
        }
    }
}

fn check_order(idx: &Index<'_>, o: &OrderExpect, out: &mut Vec<SpanFailure>) {
    // `a` precedes `b`: some `a` ends no later than the first `b` starts.
    let precedes = |a: &Pattern, b: &Pattern| -> Result<(), String> {
        let a_end = idx.named(a).map(|s| s.end_ns).min();
        let b_start = idx.named(b).map(|s| s.start_ns).min();
        match (a_end, b_start) {
            (None, _) => Err(format!("no span named `{}`", a.0)),
            (_, None) => Err(format!("no span named `{}`", b.0)),
            (Some(e), Some(s)) if e <= s => Ok(()),
            (Some(e), Some(s)) => Err(format!(
                "`{}` ends {:.3} ms after `{}` starts",
                a.0,
                (e - s) as f64 / 1e6,
                b.0
            )),
        }
    };
    for (a, b) in &o.must_precede {
        if let Err(why) = precedes(a, b) {
            fail(
                out,
                "expect.order.must_precede".into(),
                o.line,
                format!("`{}` before `{}`", a.0, b.0),
                why,
            );
        }
    }
    for (a, b) in &o.must_follow {
        if let Err(why) = precedes(b, a) {
            fail(
                out,
                "expect.order.must_follow".into(),
                o.line,
                format!("`{}` after `{}`", a.0, b.0),
                why,
            );
        }
    }
}

fn check_status(idx: &Index<'_>, st: &StatusExpect, out: &mut Vec<SpanFailure>) {
    let mut one = |what: String, p: Option<&Pattern>, want: SpanStatus| {
        let bad: Vec<&Span> = idx
            .spans
            .iter()
            .filter(|s| p.is_none_or(|p| p.matches(&s.name)))
            .filter(|s| s.status != want)
            .collect();
        if let Some(first) = bad.first() {
            let msg = if first.status_message.is_empty() {
                String::new()
            } else {
                format!(": {}", first.status_message)
            };
            fail(
                out,
                what,
                st.line,
                format!("status {}", want.as_str()),
                format!(
                    "{} differ, first `{}` is {}{msg}",
                    crate::report::count_of(bad.len(), "span"),
                    first.name,
                    first.status.as_str()
                ),
            );
        }
    };
    if let Some(all) = st.all {
        one("expect.status.all".into(), None, all);
    }
    for (p, want) in &st.by_name {
        one(format!("expect.status.by_name `{}`", p.0), Some(p), *want);
    }
}

/// A span clnrm made itself (scenario or step span).
fn is_own(s: &Span) -> bool {
    s.scope == "clnrm" && s.resource.contains_key("clnrm.run")
}

/// The host part of a peer attribute value (`http://db:5432/x` -> `db`).
fn host_of(v: &str) -> &str {
    let rest = v.split_once("://").map_or(v, |(_, r)| r);
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    if host_port.starts_with('[') {
        return host_port.split(']').next().map_or(host_port, |h| &h[1..]);
    }
    host_port.split(':').next().unwrap_or(host_port)
}

fn check_hermeticity(
    idx: &Index<'_>,
    h: &HermeticityExpect,
    cx: &CheckContext,
    out: &mut Vec<SpanFailure>,
) {
    if h.no_external_services {
        let external = idx.spans.iter().find_map(|s| {
            if !matches!(s.kind, SpanKind::Client | SpanKind::Producer) {
                return None;
            }
            PEER_KEYS.iter().find_map(|k| {
                let v = s.attrs.get(*k)?.to_string();
                let host = host_of(&v).to_string();
                let local = LOCAL_HOSTS.contains(&host.as_str())
                    || host.starts_with("127.")
                    || cx.services.contains(&host);
                (!local).then(|| format!("`{}` calls `{host}` ({k})", s.name))
            })
        });
        if let Some(what) = external {
            fail(
                out,
                "expect.hermeticity.no_external_services".into(),
                h.line,
                "no calls beyond the test's services and loopback".into(),
                what,
            );
        }
    }
    for (k, v) in &h.resource_attrs_must_match {
        // clnrm's own scenario and step spans describe clnrm, not the code under test.
        let bad = idx
            .spans
            .iter()
            .filter(|s| !is_own(s))
            .find(|s| s.resource.get(k).is_none_or(|a| a.to_string() != *v));
        if let Some(s) = bad {
            let got = s
                .resource
                .get(k)
                .map_or_else(|| "absent".to_string(), |a| a.to_string());
            fail(
                out,
                format!("expect.hermeticity.resource_attrs `{k}`"),
                h.line,
                format!("{k}={v} on every span's resource"),
                format!("`{}` has {k}={got}", s.name),
            );
        }
    }
    for k in &h.span_attrs_forbid_keys {
        if let Some(s) = idx.spans.iter().find(|s| s.attrs.contains_key(k)) {
            fail(
                out,
                format!("expect.hermeticity.span_attrs `{k}`"),
                h.line,
                format!("no span attribute `{k}`"),
                format!("`{}` carries it", s.name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::model::tests::span;
    use crate::telemetry::model::AttrValue;

    fn p(s: &str) -> Pattern {
        Pattern(s.into())
    }

    fn span_x(name: &str) -> SpanExpect {
        SpanExpect {
            name: p(name),
            kind: None,
            attrs_all: Vec::new(),
            attrs_any: Vec::new(),
            events_any: Vec::new(),
            events_all: Vec::new(),
            duration_min_ms: None,
            duration_max_ms: None,
            parent: None,
            line: 7,
        }
    }

    fn trace() -> Vec<Span> {
        let mut q = span(3, Some(2), "db.query", 3_000_000, 5_000_000);
        q.kind = SpanKind::Client;
        q.attrs
            .insert("db.system".into(), AttrValue::Str("postgres".into()));
        q.attrs
            .insert("server.address".into(), AttrValue::Str("db".into()));
        vec![
            span(1, None, "clnrm.scenario", 0, 10_000_000),
            span(2, Some(1), "clnrm.step:migrate", 1_000_000, 6_000_000),
            q,
            span(4, Some(1), "clnrm.step:check", 7_000_000, 9_000_000),
        ]
    }

    fn levels(e: Expectations) -> Vec<Expectations> {
        vec![e]
    }

    #[test]
    fn a_missing_span_fails_with_the_nearest_names() {
        let e = Expectations {
            spans: vec![span_x("db.querry")],
            ..Default::default()
        };
        let f = check(&levels(e), &trace(), &CheckContext::default());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].expectation, "expect.span");
        assert_eq!(f[0].line, 7);
        assert!(f[0].actual.contains("nearest names: `db.query`"), "{f:?}");
    }

    #[test]
    fn span_conditions_all_apply_and_mismatches_are_named() {
        let mut x = span_x("db.query");
        x.kind = Some(SpanKind::Client);
        x.attrs_all = vec![("db.system".into(), "postgres".into())];
        x.parent = Some(p("clnrm.step:*"));
        x.duration_max_ms = Some(5.0);
        let ok = Expectations {
            spans: vec![x.clone()],
            ..Default::default()
        };
        assert!(check(&levels(ok), &trace(), &CheckContext::default()).is_empty());
        x.attrs_all = vec![("db.system".into(), "mysql".into())];
        x.duration_max_ms = Some(1.0);
        let bad = Expectations {
            spans: vec![x],
            ..Default::default()
        };
        let f = check(&levels(bad), &trace(), &CheckContext::default());
        assert!(
            f[0].actual.contains("db.system=postgres") && f[0].actual.contains("duration 2.0 ms"),
            "{f:?}"
        );
    }

    #[test]
    fn graph_counts_window_order_status_and_hermeticity() {
        let e = Expectations {
            graph: Some(GraphExpect {
                must_include: vec![(p("clnrm.step:migrate"), p("db.query"))],
                must_not_cross: vec![(p("clnrm.step:check"), p("db.query"))],
                acyclic: true,
                line: 1,
            }),
            counts: Some(CountsExpect {
                spans_total: Some(Bound {
                    eq: Some(4),
                    ..Default::default()
                }),
                errors_total: Some(Bound {
                    eq: Some(0),
                    ..Default::default()
                }),
                by_name: vec![(
                    p("clnrm.step:*"),
                    Bound {
                        eq: Some(2),
                        ..Default::default()
                    },
                )],
                ..Default::default()
            }),
            windows: vec![WindowExpect {
                outer: p("clnrm.scenario"),
                contains: vec![p("db.query"), p("clnrm.step:*")],
                line: 2,
            }],
            order: Some(OrderExpect {
                must_precede: vec![(p("clnrm.step:migrate"), p("clnrm.step:check"))],
                must_follow: vec![(p("clnrm.step:check"), p("db.query"))],
                line: 3,
            }),
            status: Some(StatusExpect {
                all: Some(SpanStatus::Unset),
                ..Default::default()
            }),
            hermeticity: Some(HermeticityExpect {
                no_external_services: true,
                span_attrs_forbid_keys: vec!["password".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let cx = CheckContext {
            services: vec!["db".into()],
        };
        let f = check(&levels(e.clone()), &trace(), &cx);
        assert!(f.is_empty(), "{f:?}");

        // Now break each one.
        let mut t = trace();
        t[2].attrs.insert(
            "server.address".into(),
            AttrValue::Str("api.example.com".into()),
        );
        t[2].attrs
            .insert("password".into(), AttrValue::Str("x".into()));
        t[2].status = SpanStatus::Error;
        t[2].parent_span_id = Some(4);
        t[3].start_ns = 2_000_000;
        t[3].end_ns = 11_000_000;
        let f = check(&levels(e), &t, &CheckContext::default());
        let names: Vec<&str> = f.iter().map(|f| f.expectation.as_str()).collect();
        assert_eq!(
            names,
            [
                "expect.graph.must_include",
                "expect.graph.must_not_cross",
                "expect.counts.errors_total",
                "expect.window",
                "expect.order.must_precede",
                "expect.order.must_follow",
                "expect.status.all",
                "expect.hermeticity.no_external_services",
                "expect.hermeticity.span_attrs `password`",
            ],
            "{f:#?}"
        );
    }

    #[test]
    fn a_parent_cycle_is_found() {
        let t = vec![span(1, Some(2), "a", 0, 1), span(2, Some(1), "b", 0, 1)];
        let e = Expectations {
            graph: Some(GraphExpect {
                acyclic: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        let f = check(&levels(e), &t, &CheckContext::default());
        assert_eq!(f.len(), 1, "{f:?}");
    }

    #[test]
    fn hosts_are_cut_out_of_urls() {
        assert_eq!(host_of("http://user@db:5432/x?y"), "db");
        assert_eq!(host_of("db"), "db");
        assert_eq!(host_of("https://[::1]:8080/"), "::1");
    }
}
