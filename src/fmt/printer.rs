//! Writes a parsed document back in the canonical layout.
//!
//! The printer walks the toml_edit tree itself instead of reordering toml_edit's internal
//! positions: table order, key order, spacing and blank lines are decided here, while every
//! value is written with toml_edit's own repr so string contents stay byte-identical.

use toml_edit::{Array, DocumentMut, InlineTable, Item, Key, RawString, Table, Value};

/// Canonical key order of the table at `path` (array-of-tables elements are addressed by the
/// array's name, `*` matches any id). Unknown keys follow the known ones in source order.
fn canonical_keys(path: &[&str]) -> &'static [&'static str] {
    // The loader's schema lists each table's keys in canonical order: one list serves both,
    // so a key the schema gains is laid out by fmt at once.
    use crate::suite::{schema, sections};
    use crate::telemetry::expect::schema as ex;
    match path {
        ["expect"] | ["scenario", "expect"] => ex::EXPECT,
        ["expect", "span"] | ["scenario", "expect", "span"] => ex::SPAN,
        ["expect", "graph"] | ["scenario", "expect", "graph"] => ex::GRAPH,
        ["expect", "counts"] | ["scenario", "expect", "counts"] => ex::COUNTS,
        ["expect", "window"] | ["scenario", "expect", "window"] => ex::WINDOW,
        ["expect", "order"] | ["scenario", "expect", "order"] => ex::ORDER,
        ["expect", "status"] | ["scenario", "expect", "status"] => ex::STATUS,
        ["expect", "hermeticity"] | ["scenario", "expect", "hermeticity"] => ex::HERMETICITY,
        [] => schema::TOP,
        ["meta"] => schema::META,
        ["service", _] => schema::SERVICE,
        ["service", _, "ready"] => schema::READY,
        ["scenario"] => schema::SCENARIO,
        ["scenario", "steps"] => schema::STEP,
        ["perf"] => sections::PERF,
        ["perf", "scenario" | "step", _] => &["max_ms"],
        ["determinism"] => sections::DETERMINISM,
        _ => &[],
    }
}

/// Keys of `table` in canonical order.
fn ordered_keys<'t>(table: &'t Table, path: &[&str]) -> Vec<&'t str> {
    let mut keys: Vec<(usize, usize, &str)> = Vec::with_capacity(table.len());
    let canon = canonical_keys(path);
    // Services are a map keyed by id: sorted so the layout does not depend on edit history.
    let sort_by_name = path == ["service"];
    for (i, (k, item)) in table.iter().enumerate() {
        if item.is_none() {
            continue;
        }
        let rank = canon.iter().position(|c| *c == k).unwrap_or(usize::MAX);
        keys.push((rank, i, k));
    }
    if sort_by_name {
        keys.sort_by(|a, b| a.2.cmp(b.2));
    } else {
        keys.sort_by_key(|&(rank, i, _)| (rank, i));
    }
    keys.into_iter().map(|(_, _, k)| k).collect()
}

/// Comment lines (trimmed) held in a piece of decor; blank lines and indentation are dropped.
fn comment_lines(raw: Option<&RawString>) -> Vec<&str> {
    raw.and_then(RawString::as_str)
        .map(|s| {
            s.lines()
                .map(str::trim)
                .filter(|l| l.starts_with('#'))
                .collect()
        })
        .unwrap_or_default()
}

/// Output under construction.
#[derive(Default)]
pub(crate) struct Printer {
    out: String,
}

impl Printer {
    pub fn print(doc: &DocumentMut) -> String {
        let mut p = Printer::default();
        let root = doc.as_table();
        let mut path: Vec<&Key> = Vec::new();
        p.table_body(root, &mut path, &mut Vec::new());
        let trailing = comment_lines(Some(doc.trailing()));
        if !trailing.is_empty() {
            p.blank_line();
            for c in trailing {
                p.out.push_str(c);
                p.out.push('\n');
            }
        }
        if p.out.is_empty() {
            return String::new();
        }
        p.out
    }

    fn blank_line(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    /// Values of `table` (as `key = value` lines), then its sub-tables as sections.
    fn table_body<'t>(
        &mut self,
        table: &'t Table,
        path: &mut Vec<&'t Key>,
        names: &mut Vec<&'t str>,
    ) {
        let keys = ordered_keys(table, names);
        for k in &keys {
            let (key, item) = table.get_key_value(k).expect("key listed from this table");
            match item {
                Item::Value(v) => self.key_value(&[key], v),
                Item::Table(t) if t.is_dotted() => self.dotted(&mut vec![key], t),
                _ => {}
            }
        }
        for k in &keys {
            let (key, item) = table.get_key_value(k).expect("key listed from this table");
            match item {
                Item::Table(t) if !t.is_dotted() => {
                    path.push(key);
                    names.push(key.get());
                    self.section(t, path, names, false);
                    path.pop();
                    names.pop();
                }
                Item::ArrayOfTables(arr) => {
                    path.push(key);
                    names.push(key.get());
                    for t in arr.iter() {
                        self.section(t, path, names, true);
                    }
                    path.pop();
                    names.pop();
                }
                _ => {}
            }
        }
    }

    fn section<'t>(
        &mut self,
        table: &'t Table,
        path: &mut Vec<&'t Key>,
        names: &mut Vec<&'t str>,
        array: bool,
    ) {
        let has_values = table
            .iter()
            .any(|(_, i)| i.is_value() || i.as_table().is_some_and(Table::is_dotted));
        // An implicit table (only created by `[a.b]`) gets no header of its own.
        if array || has_values || !table.is_implicit() {
            self.blank_line();
            for c in comment_lines(table.decor().prefix()) {
                self.out.push_str(c);
                self.out.push('\n');
            }
            let header = path
                .iter()
                .map(|k| k.display_repr().into_owned())
                .collect::<Vec<_>>()
                .join(".");
            let (open, close) = if array { ("[[", "]]") } else { ("[", "]") };
            self.out.push_str(open);
            self.out.push_str(&header);
            self.out.push_str(close);
            self.trailing_comment(table.decor().suffix());
            self.out.push('\n');
        }
        self.table_body(table, path, names);
    }

    fn trailing_comment(&mut self, raw: Option<&RawString>) {
        if let Some(c) = comment_lines(raw).first() {
            self.out.push(' ');
            self.out.push_str(c);
        }
    }

    fn dotted<'t>(&mut self, prefix: &mut Vec<&'t Key>, table: &'t Table) {
        for (k, item) in table.iter() {
            let (key, _) = table.get_key_value(k).expect("key from this table");
            prefix.push(key);
            match item {
                Item::Value(v) => self.key_value(prefix, v),
                Item::Table(t) => self.dotted(prefix, t),
                _ => {}
            }
            prefix.pop();
        }
    }

    fn key_value(&mut self, keys: &[&Key], value: &Value) {
        for key in keys {
            for c in comment_lines(key.leaf_decor().prefix())
                .into_iter()
                .chain(comment_lines(key.dotted_decor().prefix()))
            {
                self.out.push_str(c);
                self.out.push('\n');
            }
        }
        let name = keys
            .iter()
            .map(|k| k.display_repr().into_owned())
            .collect::<Vec<_>>()
            .join(".");
        self.out.push_str(&name);
        self.out.push_str(" = ");
        let mut v = value.clone();
        v.decor_mut().clear();
        normalise_value(&mut v);
        self.out.push_str(&v.to_string());
        self.trailing_comment(value.decor().suffix());
        self.out.push('\n');
    }
}

fn raw_has(raw: Option<&RawString>, needle: char) -> bool {
    raw.and_then(RawString::as_str)
        .is_some_and(|s| s.contains(needle))
}

/// Normalises spacing inside arrays and inline tables without touching any scalar repr.
/// Single-line arrays become `[a, b]`; arrays laid out over several lines keep one element per
/// line, indented four spaces, with their comments.
fn normalise_value(v: &mut Value) {
    match v {
        Value::Array(a) => normalise_array(a),
        Value::InlineTable(t) => normalise_inline(t),
        _ => {}
    }
}

fn normalise_array(a: &mut Array) {
    let multi = raw_has(Some(a.trailing()), '\n')
        || a.iter()
            .any(|e| raw_has(e.decor().prefix(), '\n') || raw_has(e.decor().suffix(), '\n'));
    let empty_without_comments = a.is_empty() && comment_lines(Some(a.trailing())).is_empty();
    if !multi || empty_without_comments {
        a.fmt();
        for e in a.iter_mut() {
            normalise_value(e);
        }
        return;
    }
    for e in a.iter_mut() {
        let mut prefix = String::from("\n");
        for c in comment_lines(e.decor().prefix())
            .into_iter()
            .chain(comment_lines(e.decor().suffix()))
        {
            prefix.push_str("    ");
            prefix.push_str(c);
            prefix.push('\n');
        }
        prefix.push_str("    ");
        e.decor_mut().set_prefix(prefix);
        e.decor_mut().set_suffix("");
        normalise_value(e);
    }
    let mut trailing = String::from("\n");
    for c in comment_lines(Some(a.trailing())) {
        trailing.push_str("    ");
        trailing.push_str(c);
        trailing.push('\n');
    }
    a.set_trailing(trailing);
    a.set_trailing_comma(!a.is_empty());
}

fn normalise_inline(t: &mut InlineTable) {
    // TOML 1.1 allows comments and newlines in inline tables: leave those exactly as written.
    let has_layout = raw_has(Some(t.trailing()), '\n')
        || raw_has(Some(t.trailing()), '#')
        || t.iter().any(|(k, v)| {
            let key = t.key(k).expect("key from this table");
            ['\n', '#'].iter().any(|c| {
                raw_has(key.leaf_decor().prefix(), *c)
                    || raw_has(v.decor().prefix(), *c)
                    || raw_has(v.decor().suffix(), *c)
            })
        });
    if has_layout {
        return;
    }
    t.fmt();
    t.set_trailing("");
    t.set_trailing_comma(false);
    for (_, v) in t.iter_mut() {
        normalise_value(v);
    }
}
