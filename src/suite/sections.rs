//! The `[perf]` budget and `[determinism]` tables, shared by both dialects.

use toml::de::DeValue;

use super::model::*;
use super::reader::{did_you_mean, quote_list, Ctx, Tbl};

pub(crate) const PERF: &[&str] = &["max_ms", "tolerance", "trace_drift", "scenario", "step"];
pub(crate) const DETERMINISM: &[&str] = &["freeze_clock", "seed"];

/// `[perf]` budgets; names must refer to scenarios and steps of this test.
pub(crate) fn read_perf(
    ctx: &mut Ctx<'_>,
    root: &Tbl<'_, '_>,
    scenarios: &[ScenarioSpec],
) -> PerfSpec {
    let mut perf = PerfSpec::default();
    let Some((t, span)) = root.table(ctx, "perf") else {
        return perf;
    };
    let p = Tbl::new(t, "[perf]", span);
    p.check_keys(ctx, PERF);
    let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
    if let Some(v) = p.get("tolerance") {
        match super::reader::number(v.get_ref()) {
            Some(n) if n >= 0.0 => perf.tolerance = Some(n),
            _ => ctx.error(
                v.span(),
                "`tolerance` in `[perf]` must be a non-negative number (0.10 = 10 %)",
                None,
            ),
        }
    }
    if let Some(v) = p.get("trace_drift") {
        match v.get_ref().as_str() {
            Some("warn") => perf.trace_drift = TraceDrift::Warn,
            Some("fail") => perf.trace_drift = TraceDrift::Fail,
            _ => ctx.error(
                v.span(),
                "`trace_drift` in `[perf]` must be `\"warn\"` or `\"fail\"`",
                Some("`fail` makes structural drift from the baseline's trace snapshot fail the gate".into()),
            ),
        }
    }
    if let Some((st, _)) = p.table(ctx, "scenario") {
        for (k, v) in st.iter() {
            let name = k.get_ref().to_string();
            if !names.contains(&name.as_str()) {
                let hint = did_you_mean(&name, &names).map_or_else(
                    || format!("scenarios: {}", quote_list(&names)),
                    |s| format!("did you mean `{s}`?"),
                );
                ctx.error(
                    k.span(),
                    format!("`[perf.scenario.\"{name}\"]` names no scenario of this test"),
                    Some(hint),
                );
            }
            if let Some(ms) = budget(ctx, v, &format!("[perf.scenario.\"{name}\"]")) {
                perf.scenario_max_ms.insert(name, ms);
            }
        }
    }
    if let Some((st, _)) = p.table(ctx, "step") {
        let steps: Vec<String> = scenarios
            .iter()
            .flat_map(|s| {
                s.steps
                    .iter()
                    .map(move |st| format!("{}/{}", s.name, st.name))
            })
            .collect();
        let step_refs: Vec<&str> = steps.iter().map(String::as_str).collect();
        for (k, v) in st.iter() {
            let key = k.get_ref().to_string();
            if !step_refs.contains(&key.as_str()) {
                let hint = did_you_mean(&key, &step_refs).map_or_else(
                    || "write `\"<scenario name>/<step name>\"`".to_string(),
                    |s| format!("did you mean `{s}`?"),
                );
                ctx.error(
                    k.span(),
                    format!("`[perf.step.\"{key}\"]` names no step of this test"),
                    Some(hint),
                );
            }
            if let Some(ms) = budget(ctx, v, &format!("[perf.step.\"{key}\"]")) {
                perf.step_max_ms.insert(key, ms);
            }
        }
    }
    if let Some(all) = p.positive(ctx, "max_ms") {
        for n in names {
            perf.scenario_max_ms.entry(n.to_string()).or_insert(all);
        }
    }
    perf
}

fn budget(ctx: &mut Ctx<'_>, v: &super::reader::Value<'_>, name: &str) -> Option<f64> {
    let DeValue::Table(t) = v.get_ref() else {
        ctx.error(
            v.span(),
            format!("`{name}` must be a table with `max_ms`"),
            None,
        );
        return None;
    };
    let b = Tbl::new(t, name, v.span());
    b.check_keys(ctx, &["max_ms"]);
    if b.get("max_ms").is_none() {
        b.missing(ctx, "max_ms", "250");
    }
    b.positive(ctx, "max_ms")
}

pub(crate) fn read_determinism(ctx: &mut Ctx<'_>, root: &Tbl<'_, '_>) -> Determinism {
    let Some((t, span)) = root.table(ctx, "determinism") else {
        return Determinism::default();
    };
    let d = Tbl::new(t, "[determinism]", span);
    d.check_keys(ctx, DETERMINISM);
    let freeze_clock = d.str(ctx, "freeze_clock").and_then(|(s, span)| {
        if chrono::DateTime::parse_from_rfc3339(&s).is_ok() {
            Some(s)
        } else {
            ctx.error(
                span,
                format!("`freeze_clock` in `[determinism]` is not an RFC 3339 instant: `{s}`"),
                Some("write e.g. `\"2024-01-01T00:00:00Z\"`".into()),
            );
            None
        }
    });
    Determinism {
        freeze_clock,
        seed: d.int(ctx, "seed", 0, i64::MAX).map(|s| s.0 as u64),
    }
}
