//! `clnrm diff OLD NEW`: two traces compared as trees. Spans are matched by their name path
//! (root .. span, with the occurrence index among same-named siblings), hashed, so the diff
//! is O(N + M); path strings are built only for the spans that are reported.

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::Serialize;

use super::model::Span;
use super::tree::Tree;

/// Hash of a name path, and where each span sits.
struct Keyed<'a> {
    spans: &'a [Span],
    parent: Vec<Option<usize>>,
    key: Vec<u64>,
    by_key: HashMap<u64, usize>,
}

fn keyed(spans: &[Span]) -> Keyed<'_> {
    let tree = Tree::new(spans);
    let mut parent = vec![None; spans.len()];
    let mut key = vec![0u64; spans.len()];
    let mut by_key = HashMap::with_capacity(spans.len());
    // Roots and each children list get occurrence indexes per name, in start order.
    let assign = |list: &[usize],
                  pkey: u64,
                  p: Option<usize>,
                  key: &mut Vec<u64>,
                  parent: &mut Vec<Option<usize>>,
                  by_key: &mut HashMap<u64, usize>| {
        let mut seen: HashMap<&str, u32> = HashMap::new();
        for &i in list {
            let n = seen.entry(spans[i].name.as_str()).or_insert(0);
            let mut h = DefaultHasher::new();
            (pkey, spans[i].name.as_str(), *n).hash(&mut h);
            *n += 1;
            key[i] = h.finish();
            parent[i] = p;
            by_key.insert(key[i], i);
        }
    };
    assign(&tree.roots, 0, None, &mut key, &mut parent, &mut by_key);
    let mut order = Vec::with_capacity(spans.len());
    tree.walk(|i, _| order.push(i));
    for i in order {
        let k = key[i];
        assign(
            &tree.children[i],
            k,
            Some(i),
            &mut key,
            &mut parent,
            &mut by_key,
        );
    }
    Keyed {
        spans,
        parent,
        key,
        by_key,
    }
}

impl Keyed<'_> {
    /// `root > child > span`, built on demand.
    fn path(&self, mut i: usize) -> String {
        let mut names = vec![self.spans[i].name.as_str()];
        let mut guard = 0;
        while let Some(p) = self.parent[i] {
            names.push(self.spans[p].name.as_str());
            i = p;
            guard += 1;
            if guard > self.spans.len() {
                break;
            }
        }
        names.reverse();
        names.join(" > ")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Moved {
    pub name: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttrChange {
    pub path: String,
    pub key: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusChange {
    pub path: String,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DurationChange {
    pub path: String,
    pub old_ms: f64,
    pub new_ms: f64,
}

/// Differences between two traces.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TraceDiff {
    pub old_spans: usize,
    pub new_spans: usize,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub moved: Vec<Moved>,
    pub attrs: Vec<AttrChange>,
    pub status: Vec<StatusChange>,
    /// Matched spans whose duration moved by more than the threshold.
    pub durations: Vec<DurationChange>,
}

impl TraceDiff {
    /// True when the structure (spans, parents, attributes, status) is the same.
    pub fn structurally_equal(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.moved.is_empty()
            && self.attrs.is_empty()
            && self.status.is_empty()
    }
}

/// Options of the duration comparison.
#[derive(Debug, Clone, Copy)]
pub struct DiffOptions {
    /// Report a duration change above this fraction (0.2 = 20 %)...
    pub duration_ratio: f64,
    /// ...and above this many milliseconds.
    pub duration_min_ms: f64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            duration_ratio: 0.2,
            duration_min_ms: 1.0,
        }
    }
}

/// Attributes that differ between any two runs (ids, times, pids): never reported.
fn volatile(key: &str) -> bool {
    matches!(key, "clnrm.attempt" | "process.pid" | "thread.id")
}

pub fn diff(old: &[Span], new: &[Span], opts: DiffOptions) -> TraceDiff {
    let a = keyed(old);
    let b = keyed(new);
    let mut d = TraceDiff {
        old_spans: old.len(),
        new_spans: new.len(),
        ..Default::default()
    };
    let mut removed: Vec<usize> = Vec::new();
    for (i, k) in a.key.iter().enumerate() {
        match b.by_key.get(k) {
            Some(&j) => compare(&a, i, &b, j, opts, &mut d),
            None => removed.push(i),
        }
    }
    let added: Vec<usize> = (0..new.len())
        .filter(|j| !a.by_key.contains_key(&b.key[*j]))
        .collect();
    // A removed and an added span with the same name: moved (its parent path changed).
    // Paired in order of appearance; children of a moved span are reported with it.
    let mut added_by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for &j in added.iter().rev() {
        added_by_name
            .entry(new[j].name.as_str())
            .or_default()
            .push(j);
    }
    let mut paired_new = vec![false; new.len()];
    for i in removed {
        match added_by_name
            .get_mut(old[i].name.as_str())
            .and_then(|v| v.pop())
        {
            Some(j) => {
                paired_new[j] = true;
                let (from, to) = (a.path(i), b.path(j));
                if parent_path(&from) != parent_path(&to) {
                    d.moved.push(Moved {
                        name: old[i].name.clone(),
                        from,
                        to,
                    });
                }
                compare(&a, i, &b, j, opts, &mut d);
            }
            None => d.removed.push(a.path(i)),
        }
    }
    for j in added {
        if !paired_new[j] {
            d.added.push(b.path(j));
        }
    }
    d.added.sort();
    d.removed.sort();
    d
}

fn parent_path(p: &str) -> &str {
    p.rsplit_once(" > ").map_or("", |x| x.0)
}

fn compare(a: &Keyed<'_>, i: usize, b: &Keyed<'_>, j: usize, o: DiffOptions, d: &mut TraceDiff) {
    let (x, y) = (&a.spans[i], &b.spans[j]);
    let mut path: Option<String> = None;
    let mut path = || path.get_or_insert_with(|| b.path(j)).clone();
    for (k, v) in &x.attrs {
        if volatile(k) {
            continue;
        }
        match y.attrs.get(k) {
            Some(w) if w == v => {}
            other => d.attrs.push(AttrChange {
                path: path(),
                key: k.clone(),
                old: Some(v.to_string()),
                new: other.map(|w| w.to_string()),
            }),
        }
    }
    for (k, w) in &y.attrs {
        if !volatile(k) && !x.attrs.contains_key(k) {
            d.attrs.push(AttrChange {
                path: path(),
                key: k.clone(),
                old: None,
                new: Some(w.to_string()),
            });
        }
    }
    if x.status != y.status {
        d.status.push(StatusChange {
            path: path(),
            old: x.status.as_str().into(),
            new: y.status.as_str().into(),
        });
    }
    let (om, nm) = (x.duration_ms(), y.duration_ms());
    let delta = (nm - om).abs();
    if delta > o.duration_min_ms && delta > o.duration_ratio * om.max(f64::MIN_POSITIVE) {
        d.durations.push(DurationChange {
            path: path(),
            old_ms: om,
            new_ms: nm,
        });
    }
}

/// Plain text, one line per difference.
pub fn render_text(d: &TraceDiff) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} -> {} spans: {} added, {} removed, {} moved, {} attribute, {} status, {} duration change{}",
        d.old_spans,
        d.new_spans,
        d.added.len(),
        d.removed.len(),
        d.moved.len(),
        d.attrs.len(),
        d.status.len(),
        d.durations.len(),
        crate::report::plural(d.durations.len())
    );
    for p in &d.added {
        let _ = writeln!(s, "+ {p}");
    }
    for p in &d.removed {
        let _ = writeln!(s, "- {p}");
    }
    for m in &d.moved {
        let _ = writeln!(s, "~ moved {}: {} => {}", m.name, m.from, m.to);
    }
    for c in &d.attrs {
        let _ = writeln!(
            s,
            "~ {} [{}]: {} => {}",
            c.path,
            c.key,
            c.old.as_deref().unwrap_or("(absent)"),
            c.new.as_deref().unwrap_or("(absent)")
        );
    }
    for c in &d.status {
        let _ = writeln!(s, "~ {} status: {} => {}", c.path, c.old, c.new);
    }
    for c in &d.durations {
        let _ = writeln!(
            s,
            "~ {} duration: {:.2} ms => {:.2} ms",
            c.path, c.old_ms, c.new_ms
        );
    }
    s
}

/// Markdown: a summary line and one table of differences, cells escaped.
pub fn render_markdown(d: &TraceDiff) -> String {
    let cell = |t: &str| crate::report::md_inline(t);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "**Trace diff**: {} → {} spans, {} added, {} removed, {} moved, {} attribute, {} status, {} duration change{}\n",
        d.old_spans,
        d.new_spans,
        d.added.len(),
        d.removed.len(),
        d.moved.len(),
        d.attrs.len(),
        d.status.len(),
        d.durations.len(),
        crate::report::plural(d.durations.len())
    );
    if d.structurally_equal() && d.durations.is_empty() {
        return s;
    }
    s.push_str("| change | span | detail |\n|---|---|---|\n");
    for p in &d.added {
        let _ = writeln!(s, "| added | {} | |", cell(p));
    }
    for p in &d.removed {
        let _ = writeln!(s, "| removed | {} | |", cell(p));
    }
    for m in &d.moved {
        let _ = writeln!(s, "| moved | {} | from {} |", cell(&m.to), cell(&m.from));
    }
    for c in &d.attrs {
        let _ = writeln!(
            s,
            "| attribute | {} | `{}`: {} → {} |",
            cell(&c.path),
            cell(&c.key),
            cell(c.old.as_deref().unwrap_or("(absent)")),
            cell(c.new.as_deref().unwrap_or("(absent)"))
        );
    }
    for c in &d.status {
        let _ = writeln!(s, "| status | {} | {} → {} |", cell(&c.path), c.old, c.new);
    }
    for c in &d.durations {
        let _ = writeln!(
            s,
            "| duration | {} | {:.2} ms → {:.2} ms |",
            cell(&c.path),
            c.old_ms,
            c.new_ms
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::model::tests::span;
    use crate::telemetry::model::{AttrValue, SpanStatus};

    fn base() -> Vec<Span> {
        vec![
            span(1, None, "root", 0, 100_000_000),
            span(2, Some(1), "a", 0, 10_000_000),
            span(3, Some(1), "b", 20_000_000, 30_000_000),
            span(4, Some(3), "leaf", 21_000_000, 22_000_000),
        ]
    }

    #[test]
    fn identical_traces_with_other_ids_do_not_differ() {
        let mut other = base();
        for s in &mut other {
            s.trace_id = 77;
        }
        let d = diff(&base(), &other, DiffOptions::default());
        assert!(d.structurally_equal() && d.durations.is_empty(), "{d:?}");
    }

    #[test]
    fn added_removed_moved_attr_status_duration() {
        let mut new = base();
        new[3].parent_span_id = Some(2); // leaf moves from b to a
        new[2].name = "b2".into(); // b removed, b2 added
        new[1].attrs.insert("k".into(), AttrValue::Str("v".into()));
        new[1].status = SpanStatus::Error;
        new[1].end_ns = 30_000_000; // 10 ms -> 30 ms
        let d = diff(&base(), &new, DiffOptions::default());
        assert_eq!(d.added, ["root > b2"]);
        assert_eq!(d.removed, ["root > b"]);
        assert_eq!(
            d.moved,
            [Moved {
                name: "leaf".into(),
                from: "root > b > leaf".into(),
                to: "root > a > leaf".into()
            }]
        );
        assert_eq!(d.attrs.len(), 1);
        assert_eq!(d.status[0].new, "error");
        assert_eq!(d.durations[0].path, "root > a");
        let text = render_text(&d);
        assert!(
            text.contains("+ root > b2") && text.contains("- root > b"),
            "{text}"
        );
        let md = render_markdown(&d);
        assert!(
            md.contains("| moved | root &gt; a &gt; leaf | from root &gt; b &gt; leaf |"),
            "{md}"
        );
    }
}
