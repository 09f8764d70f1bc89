//! Reading the `expect` table of a test file (test level or inside a `[[scenario]]`) strictly:
//! unknown keys with "did you mean", wrong types and bad values as located errors.

use toml::de::{DeTable, DeValue};

use super::spec::*;
use crate::suite::reader::{number, Ctx, Span, Tbl};
use crate::telemetry::model::{SpanKind, SpanStatus};

/// Keys of `[expect]`, in the order `clnrm fmt` writes them.
pub(crate) const EXPECT: &[&str] = &[
    "flush_ms",
    "span",
    "graph",
    "counts",
    "window",
    "order",
    "status",
    "hermeticity",
];
pub(crate) const SPAN: &[&str] = &["name", "kind", "parent", "attrs", "events", "duration_ms"];
const ATTRS: &[&str] = &["all", "any"];
const EVENTS: &[&str] = &["any", "all"];
const DURATION: &[&str] = &["min", "max"];
pub(crate) const GRAPH: &[&str] = &["must_include", "must_not_cross", "acyclic"];
pub(crate) const COUNTS: &[&str] = &["spans_total", "events_total", "errors_total", "by_name"];
const BOUND: &[&str] = &["eq", "gte", "lte"];
pub(crate) const WINDOW: &[&str] = &["outer", "contains"];
pub(crate) const ORDER: &[&str] = &["must_precede", "must_follow"];
pub(crate) const STATUS: &[&str] = &["all", "by_name"];
pub(crate) const HERMETICITY: &[&str] = &["no_external_services", "resource_attrs", "span_attrs"];
const RESOURCE_ATTRS: &[&str] = &["must_match"];
const SPAN_ATTRS: &[&str] = &["forbid_keys"];

const KINDS: &str = "`internal`, `server`, `client`, `producer` or `consumer`";

/// Read `expect` of `parent` (the root table or a scenario table). `where_` names the level in
/// messages (`[expect]` or `[[scenario]] #2 expect`).
pub(crate) fn read_expect(ctx: &mut Ctx<'_>, parent: &Tbl<'_, '_>, where_: &str) -> Expectations {
    let mut out = Expectations::default();
    let Some((t, span)) = parent.table(ctx, "expect") else {
        return out;
    };
    let e = Tbl::new(t, where_, span);
    e.check_keys(ctx, EXPECT);
    out.flush_ms = e.int(ctx, "flush_ms", 0, 60_000).map(|v| v.0 as u64);
    for (i, (st, span)) in e.tables(ctx, "span").into_iter().enumerate() {
        let s = Tbl::new(st, format!("[[expect.span]] #{}", i + 1), span);
        if let Some(x) = read_span(ctx, &s) {
            out.spans.push(x);
        }
    }
    if let Some((gt, span)) = e.table(ctx, "graph") {
        let g = Tbl::new(gt, "[expect.graph]", span.clone());
        g.check_keys(ctx, GRAPH);
        out.graph = Some(GraphExpect {
            must_include: pairs(ctx, &g, "must_include"),
            must_not_cross: pairs(ctx, &g, "must_not_cross"),
            acyclic: g.bool(ctx, "acyclic").unwrap_or(false),
            line: ctx.line_of(&span),
        });
    }
    if let Some((ct, span)) = e.table(ctx, "counts") {
        let c = Tbl::new(ct, "[expect.counts]", span.clone());
        c.check_keys(ctx, COUNTS);
        let mut by_name = Vec::new();
        if let Some((bt, bspan)) = c.table(ctx, "by_name") {
            let b = Tbl::new(bt, "[expect.counts] by_name", bspan);
            for (k, _) in bt.iter() {
                if let Some(bound) = bound(ctx, &b, k.get_ref()) {
                    by_name.push((Pattern(k.get_ref().to_string()), bound));
                }
            }
        }
        out.counts = Some(CountsExpect {
            spans_total: bound(ctx, &c, "spans_total"),
            events_total: bound(ctx, &c, "events_total"),
            errors_total: bound(ctx, &c, "errors_total"),
            by_name,
            line: ctx.line_of(&span),
        });
    }
    for (i, (wt, span)) in e.tables(ctx, "window").into_iter().enumerate() {
        let w = Tbl::new(wt, format!("[[expect.window]] #{}", i + 1), span.clone());
        w.check_keys(ctx, WINDOW);
        let outer = w.req_str(ctx, "outer", "\"clnrm.scenario\"");
        if w.get("contains").is_none() {
            w.missing(ctx, "contains", "[\"child.span\"]");
        }
        let contains = w.str_list(ctx, "contains").unwrap_or_default();
        if let Some((outer, _)) = outer {
            out.windows.push(WindowExpect {
                outer: Pattern(outer),
                contains: contains.into_iter().map(Pattern).collect(),
                line: ctx.line_of(&span),
            });
        }
    }
    if let Some((ot, span)) = e.table(ctx, "order") {
        let o = Tbl::new(ot, "[expect.order]", span.clone());
        o.check_keys(ctx, ORDER);
        out.order = Some(OrderExpect {
            must_precede: pairs(ctx, &o, "must_precede"),
            must_follow: pairs(ctx, &o, "must_follow"),
            line: ctx.line_of(&span),
        });
    }
    if let Some((stt, span)) = e.table(ctx, "status") {
        let s = Tbl::new(stt, "[expect.status]", span.clone());
        s.check_keys(ctx, STATUS);
        let all = s
            .str(ctx, "all")
            .and_then(|(v, sp)| status(ctx, &v, sp, "all"));
        let mut by_name = Vec::new();
        if let Some((bt, _)) = s.table(ctx, "by_name") {
            for (k, v) in bt.iter() {
                let key = format!("by_name.{}", k.get_ref());
                match v.get_ref().as_str() {
                    Some(text) => {
                        if let Some(st) = status(ctx, text, v.span(), &key) {
                            by_name.push((Pattern(k.get_ref().to_string()), st));
                        }
                    }
                    None => ctx.error(
                        v.span(),
                        format!("`{key}` in `[expect.status]` must be a string"),
                        Some("write `\"ok\"`, `\"error\"` or `\"unset\"`".into()),
                    ),
                }
            }
        }
        out.status = Some(StatusExpect {
            all,
            by_name,
            line: ctx.line_of(&span),
        });
    }
    if let Some((ht, span)) = e.table(ctx, "hermeticity") {
        let h = Tbl::new(ht, "[expect.hermeticity]", span.clone());
        h.check_keys(ctx, HERMETICITY);
        let mut x = HermeticityExpect {
            no_external_services: h.bool(ctx, "no_external_services").unwrap_or(false),
            line: ctx.line_of(&span),
            ..Default::default()
        };
        if let Some((rt, rspan)) = h.table(ctx, "resource_attrs") {
            let r = Tbl::new(rt, "[expect.hermeticity] resource_attrs", rspan);
            r.check_keys(ctx, RESOURCE_ATTRS);
            x.resource_attrs_must_match = scalar_map(ctx, &r, "must_match");
        }
        if let Some((st, sspan)) = h.table(ctx, "span_attrs") {
            let s = Tbl::new(st, "[expect.hermeticity] span_attrs", sspan);
            s.check_keys(ctx, SPAN_ATTRS);
            x.span_attrs_forbid_keys = s.str_list(ctx, "forbid_keys").unwrap_or_default();
        }
        out.hermeticity = Some(x);
    }
    out
}

fn read_span(ctx: &mut Ctx<'_>, s: &Tbl<'_, '_>) -> Option<SpanExpect> {
    s.check_keys(ctx, SPAN);
    let name = s.req_str(ctx, "name", "\"db.query\"");
    let kind = s.str(ctx, "kind").and_then(|(k, span)| {
        let parsed = SpanKind::parse(&k).filter(|k| *k != SpanKind::Unspecified);
        if parsed.is_none() {
            ctx.error(
                span,
                format!("unknown span kind `{k}` in `{}`", s.name),
                Some(format!("write one of {KINDS}")),
            );
        }
        parsed
    });
    let mut x = SpanExpect {
        name: Pattern(String::new()),
        kind,
        attrs_all: Vec::new(),
        attrs_any: Vec::new(),
        events_any: Vec::new(),
        events_all: Vec::new(),
        duration_min_ms: None,
        duration_max_ms: None,
        parent: s.str(ctx, "parent").map(|p| Pattern(p.0)),
        line: ctx.line_of(&s.span),
    };
    if let Some((at, span)) = s.table(ctx, "attrs") {
        let a = Tbl::new(at, format!("{} attrs", s.name), span);
        a.check_keys(ctx, ATTRS);
        x.attrs_all = scalar_map(ctx, &a, "all");
        x.attrs_any = scalar_map(ctx, &a, "any");
    }
    if let Some((et, span)) = s.table(ctx, "events") {
        let e = Tbl::new(et, format!("{} events", s.name), span);
        e.check_keys(ctx, EVENTS);
        x.events_any = e.str_list(ctx, "any").unwrap_or_default();
        x.events_all = e.str_list(ctx, "all").unwrap_or_default();
    }
    if let Some((dt, span)) = s.table(ctx, "duration_ms") {
        let d = Tbl::new(dt, format!("{} duration_ms", s.name), span.clone());
        d.check_keys(ctx, DURATION);
        x.duration_min_ms = non_negative(ctx, &d, "min");
        x.duration_max_ms = non_negative(ctx, &d, "max");
        if let (Some(lo), Some(hi)) = (x.duration_min_ms, x.duration_max_ms) {
            if lo > hi {
                ctx.error(
                    span,
                    format!(
                        "`duration_ms` in `{}`: `min` ({lo}) is above `max` ({hi})",
                        s.name
                    ),
                    None,
                );
            }
        }
    }
    x.name = Pattern(name?.0);
    Some(x)
}

fn non_negative(ctx: &mut Ctx<'_>, t: &Tbl<'_, '_>, key: &str) -> Option<f64> {
    let v = t.get(key)?;
    match number(v.get_ref()) {
        Some(n) if n >= 0.0 && n.is_finite() => Some(n),
        _ => {
            ctx.error(
                v.span(),
                format!(
                    "`{key}` in `{}` must be a number of milliseconds >= 0",
                    t.name
                ),
                None,
            );
            None
        }
    }
}

fn status(ctx: &mut Ctx<'_>, text: &str, span: Span, key: &str) -> Option<SpanStatus> {
    let s = SpanStatus::parse(text);
    if s.is_none() {
        ctx.error(
            span,
            format!("unknown span status `{text}` for `{key}` in `[expect.status]`"),
            Some("write `\"ok\"`, `\"error\"` or `\"unset\"`".into()),
        );
    }
    s
}

/// `{ eq = 1 }`, `{ gte = 2, lte = 5 }`.
fn bound(ctx: &mut Ctx<'_>, parent: &Tbl<'_, '_>, key: &str) -> Option<Bound> {
    let (t, span) = parent.table(ctx, key)?;
    let b = Tbl::new(t, format!("{} {key}", parent.name), span.clone());
    b.check_keys(ctx, BOUND);
    let get = |ctx: &mut Ctx<'_>, k: &str| b.int(ctx, k, 0, i64::MAX).map(|v| v.0 as u64);
    let out = Bound {
        eq: get(ctx, "eq"),
        gte: get(ctx, "gte"),
        lte: get(ctx, "lte"),
    };
    if out == Bound::default() {
        ctx.error(
            span,
            format!("`{key}` in `{}` sets no bound", parent.name),
            Some(format!(
                "write `{key} = {{ eq = 1 }}` or `{{ gte = 1, lte = 10 }}`"
            )),
        );
        return None;
    }
    Some(out)
}

/// `[["parent", "child"], ...]`.
fn pairs(ctx: &mut Ctx<'_>, t: &Tbl<'_, '_>, key: &str) -> Vec<(Pattern, Pattern)> {
    let Some(v) = t.get(key) else {
        return Vec::new();
    };
    let bad = |ctx: &mut Ctx<'_>, span: Span| {
        ctx.error(
            span,
            format!("`{key}` in `{}` must be a list of name pairs", t.name),
            Some(format!("write `{key} = [[\"a\", \"b\"]]`")),
        );
    };
    let Some(arr) = v.get_ref().as_array() else {
        bad(ctx, v.span());
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in arr.iter() {
        let pair: Option<Vec<String>> = e.get_ref().as_array().and_then(|p| {
            p.iter()
                .map(|x| x.get_ref().as_str().map(str::to_string))
                .collect()
        });
        match pair.as_deref() {
            Some([a, b]) => out.push((Pattern(a.clone()), Pattern(b.clone()))),
            _ => bad(ctx, e.span()),
        }
    }
    out
}

/// `{ "key" = "value" | 1 | true }`: values kept in their text form.
fn scalar_map(ctx: &mut Ctx<'_>, t: &Tbl<'_, '_>, key: &str) -> Vec<(String, String)> {
    let Some((m, _)) = t.table(ctx, key) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    collect_scalars(ctx, m, "", &t.name, key, &mut out);
    out
}

/// Dotted keys (`attrs.all = { http.method = "GET" }`) arrive as nested tables: flatten them
/// back to the attribute names they spell.
fn collect_scalars(
    ctx: &mut Ctx<'_>,
    m: &DeTable<'_>,
    prefix: &str,
    table: &str,
    key: &str,
    out: &mut Vec<(String, String)>,
) {
    for (k, v) in m.iter() {
        let name = format!("{prefix}{}", k.get_ref());
        let text = match v.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(_) | DeValue::Float(_) => match number(v.get_ref()) {
                Some(n) if n.fract() == 0.0 && n.abs() < 9e15 => format!("{}", n as i64),
                Some(n) => n.to_string(),
                None => continue,
            },
            DeValue::Boolean(b) => b.to_string(),
            DeValue::Table(inner) => {
                collect_scalars(ctx, inner, &format!("{name}."), table, key, out);
                continue;
            }
            other => {
                ctx.error(
                    v.span(),
                    format!(
                        "`{key}.{name}` in `{table}` must be a string, number or boolean, found {}",
                        other.type_str()
                    ),
                    None,
                );
                continue;
            }
        };
        out.push((name, text));
    }
}
