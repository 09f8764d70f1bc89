//! Spans as trees: parent/child structure shared by `clnrm spans` (printing) and the diff.

use std::collections::HashMap;
use std::fmt::Write;

use super::model::{Span, SpanStatus};

/// Children lists and roots of a set of spans. Children are ordered by start time, then name;
/// a span whose parent is missing (not received) is a root. Spans caught in a parent cycle
/// (bad ids) are appended as roots so nothing is lost.
pub struct Tree<'a> {
    pub spans: &'a [Span],
    pub roots: Vec<usize>,
    pub children: Vec<Vec<usize>>,
}

impl<'a> Tree<'a> {
    pub fn new(spans: &'a [Span]) -> Tree<'a> {
        let by_id: HashMap<(u128, u64), usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.trace_id, s.span_id), i))
            .collect();
        let mut children = vec![Vec::new(); spans.len()];
        let mut roots = Vec::new();
        for (i, s) in spans.iter().enumerate() {
            match s
                .parent_span_id
                .and_then(|p| by_id.get(&(s.trace_id, p)))
                .filter(|p| **p != i)
            {
                Some(&p) => children[p].push(i),
                None => roots.push(i),
            }
        }
        let order = |v: &mut Vec<usize>| {
            v.sort_by(|a, b| {
                let (x, y) = (&spans[*a], &spans[*b]);
                x.start_ns
                    .cmp(&y.start_ns)
                    .then_with(|| x.name.cmp(&y.name))
            })
        };
        order(&mut roots);
        for c in &mut children {
            order(c);
        }
        let mut t = Tree {
            spans,
            roots,
            children,
        };
        // Spans not reachable from a root sit in a cycle: adopt them as roots.
        let mut seen = vec![false; spans.len()];
        t.walk(|i, _| seen[i] = true);
        let orphans: Vec<usize> = (0..spans.len()).filter(|i| !seen[*i]).collect();
        for o in orphans {
            if !seen[o] {
                t.roots.push(o);
                let mut stack = vec![o];
                while let Some(i) = stack.pop() {
                    if std::mem::replace(&mut seen[i], true) {
                        continue;
                    }
                    stack.extend(t.children[i].iter().copied());
                }
            }
        }
        t
    }

    /// Depth-first, pre-order, with depth; iterative (deep trees do not blow the stack), and
    /// each span visited once even with cycles.
    pub fn walk(&self, mut f: impl FnMut(usize, usize)) {
        let mut visited = vec![false; self.spans.len()];
        let mut stack: Vec<(usize, usize)> = self.roots.iter().rev().map(|r| (*r, 0)).collect();
        while let Some((i, depth)) = stack.pop() {
            if std::mem::replace(&mut visited[i], true) {
                continue;
            }
            f(i, depth);
            for c in self.children[i].iter().rev() {
                stack.push((*c, depth + 1));
            }
        }
    }
}

/// A printable tree: name, duration, service, status, kind, and optionally attributes.
pub fn render(spans: &[Span], with_attrs: bool) -> String {
    let tree = Tree::new(spans);
    let mut out = String::new();
    let errors = spans
        .iter()
        .filter(|s| s.status == SpanStatus::Error)
        .count();
    let traces: std::collections::HashSet<u128> = spans.iter().map(|s| s.trace_id).collect();
    let _ = writeln!(
        out,
        "{} in {}, {}",
        crate::report::count_of(spans.len(), "span"),
        crate::report::count_of(traces.len(), "trace"),
        crate::report::count_of(errors, "error")
    );
    tree.walk(|i, depth| {
        let s = &spans[i];
        let status = match s.status {
            SpanStatus::Error if s.status_message.is_empty() => " ERROR".to_string(),
            SpanStatus::Error => format!(" ERROR: {}", s.status_message),
            SpanStatus::Ok => " ok".to_string(),
            SpanStatus::Unset => String::new(),
        };
        let _ = writeln!(
            out,
            "{}{} [{}] {:.2} ms ({}){}",
            "  ".repeat(depth),
            s.name,
            s.kind.as_str(),
            s.duration_ms(),
            s.service(),
            status
        );
        if with_attrs {
            for (k, v) in &s.attrs {
                let _ = writeln!(out, "{}  {k} = {v}", "  ".repeat(depth));
            }
            for e in &s.events {
                let _ = writeln!(out, "{}  event {}", "  ".repeat(depth), e.name);
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::model::tests::span;

    #[test]
    fn tree_prints_children_under_parents_in_start_order() {
        let spans = vec![
            span(3, Some(1), "second", 20, 30),
            span(1, None, "root", 0, 100),
            span(2, Some(1), "first", 10, 15),
            span(4, Some(2), "leaf", 11, 12),
            span(5, Some(99), "orphan", 50, 60),
        ];
        let text = render(&spans, false);
        let names: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split(" [").next().unwrap_or(""))
            .collect();
        assert_eq!(names, ["root", "  first", "    leaf", "  second", "orphan"]);
    }

    #[test]
    fn cycles_do_not_hang_or_lose_spans() {
        let spans = vec![span(1, Some(2), "a", 0, 1), span(2, Some(1), "b", 0, 1)];
        let mut n = 0;
        Tree::new(&spans).walk(|_, _| n += 1);
        assert_eq!(n, 2);
    }
}
