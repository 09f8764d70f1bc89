//! The upstream clnrm dialect (`[test.metadata]`, `[services.<id>]`, top-level `[[steps]]`,
//! `[[scenario]]` with `run`), normalised into the same model with warnings naming the modern form.

use std::collections::BTreeMap;

use toml::de::{DeTable, DeValue};

use super::model::*;
use super::reader::{Ctx, Span, Tbl};
use super::schema::{
    check_regex, check_service_exists, check_service_id, check_vars, read_determinism, read_perf,
    resolve_service, Built,
};

const TOP: &[&str] = &[
    "test",
    "services",
    "steps",
    "scenario",
    "vars",
    "perf",
    "determinism",
];
/// Upstream tables clnrm does not implement: rejected with a pointer to the equivalent.
const UNSUPPORTED: &[&str] = &[
    "assertions",
    "otel",
    "otel_validation",
    "otel_headers",
    "otel_propagators",
    "expect",
    "report",
    "limits",
    "graph",
    "hermeticity",
    "counts",
    "windows",
    "order",
    "status",
];
const TEST: &[&str] = &["metadata"];
const METADATA: &[&str] = &["name", "description", "timeout"];
const SERVICE: &[&str] = &["type", "plugin", "image", "command", "env", "workdir"];
const STEP: &[&str] = &[
    "name",
    "command",
    "expected_output_regex",
    "expected_exit_code",
    "service",
];
const SCENARIO: &[&str] = &[
    "name",
    "service",
    "run",
    "expected_output_regex",
    "expected_exit_code",
];

/// True when the document is written in the upstream dialect.
pub(crate) fn is_upstream(root: &DeTable<'_>) -> bool {
    let top = ["test", "services", "steps"];
    top.iter().any(|k| root.get(*k).is_some())
        || root
            .get("scenario")
            .and_then(|v| v.get_ref().as_array())
            .is_some_and(|a| {
                a.iter().any(|s| {
                    s.get_ref()
                        .as_table()
                        .is_some_and(|t| t.get("run").is_some())
                })
            })
}

/// Remembers which upstream forms were seen so each gets one warning, not one per use.
#[derive(Default)]
struct Warned(Vec<&'static str>);

impl Warned {
    fn once(&mut self, ctx: &mut Ctx<'_>, span: Span, form: &'static str, modern: &str) {
        if self.0.contains(&form) {
            return;
        }
        self.0.push(form);
        ctx.warn(
            span,
            format!("`{form}` is the upstream form; write {modern}"),
            Some("`clnrm fmt` rewrites it".into()),
        );
    }
}

pub(crate) fn build_upstream(
    ctx: &mut Ctx<'_>,
    root: &DeTable<'_>,
    root_span: Span,
) -> Option<Built> {
    let root_tbl = Tbl::new(root, "top level", root_span);
    let mut w = Warned::default();
    for (k, _) in root.iter() {
        let key = k.get_ref().as_ref();
        if UNSUPPORTED.contains(&key) {
            ctx.error(
                k.span(),
                format!("`[{key}]` (upstream) is not supported by clnrm"),
                Some("express checks as step expectations (`exit_code`, `stdout_regex`, `stdout_contains`)".into()),
            );
        }
    }
    let allowed: Vec<&str> = TOP.iter().chain(UNSUPPORTED).copied().collect();
    root_tbl.check_keys(ctx, &allowed);
    check_vars(ctx, &root_tbl);

    let mut name = None;
    let mut description = None;
    let mut timeout = None;
    if let Some((t, span)) = root_tbl.table(ctx, "test") {
        let test = Tbl::new(t, "[test]", span.clone());
        test.check_keys(ctx, TEST);
        if let Some((mt, mspan)) = test.table(ctx, "metadata") {
            w.once(ctx, mspan.clone(), "[test.metadata]", "`[meta]`");
            let meta = Tbl::new(mt, "[test.metadata]", mspan);
            meta.check_keys(ctx, METADATA);
            name = meta.req_str(ctx, "name", "\"my-test\"");
            description = meta.str(ctx, "description").map(|d| d.0);
            timeout = meta.duration(ctx, "timeout");
        } else if test.get("metadata").is_none() {
            test.missing(ctx, "metadata", "{ name = \"my-test\" }");
        }
    } else if root.get("test").is_none() {
        ctx.error(
            0..0,
            "missing `[test.metadata]` table",
            Some("add `[test.metadata]` with `name = \"my-test\"` (or write `[meta]` in the current form)".into()),
        );
    }

    let services = read_services(ctx, &root_tbl, &mut w);
    let mut scenarios = Vec::new();
    let mut no_service = false;
    let steps = root_tbl.tables(ctx, "steps");
    if let Some(first) = steps.first() {
        w.once(
            ctx,
            first.1.clone(),
            "[[steps]]",
            "`[[scenario]]` with `[[scenario.steps]]`",
        );
        let mut out = Vec::new();
        for (i, (t, span)) in steps.iter().enumerate() {
            let st = Tbl::new(t, format!("[[steps]] #{}", i + 1), span.clone());
            st.check_keys(ctx, STEP);
            let step_name = st
                .str(ctx, "name")
                .map_or_else(|| format!("step {}", i + 1), |n| n.0);
            let run = match st.get("command") {
                None => {
                    st.missing(ctx, "command", "[\"echo\", \"hi\"]");
                    None
                }
                Some(v) => command(ctx, &mut w, v.get_ref(), v.span()),
            };
            let own = st.str(ctx, "service");
            let svc = resolve_service(
                ctx,
                &step_name,
                own,
                None,
                &services,
                span.clone(),
                &mut no_service,
            );
            let expect = expectations(ctx, &mut w, &st);
            if let Some(run) = run {
                out.push(step(step_name, svc, run, expect, ctx.line_of(span)));
            }
        }
        scenarios.push(ScenarioSpec {
            // Named after the test, as `clnrm fmt` names it when it rewrites the file, so
            // results and baseline keys do not change when a suite is migrated.
            name: name
                .as_ref()
                .map(|n| n.0.clone())
                .unwrap_or_else(|| "steps".into()),
            description: None,
            service: None,
            timeout: None,
            retries: None,
            tags: Vec::new(),
            steps: out,
            line: ctx.line_of(&first.1),
        });
    }
    for (i, (t, span)) in root_tbl.tables(ctx, "scenario").into_iter().enumerate() {
        let sc = Tbl::new(t, format!("[[scenario]] #{}", i + 1), span.clone());
        sc.check_keys(ctx, SCENARIO);
        let sname = sc.req_str(ctx, "name", "\"happy path\"");
        let own = sc.str(ctx, "service");
        if let Some((id, s)) = &own {
            check_service_exists(ctx, id, s.clone(), &services, "scenario");
        }
        let run = match sc.get("run") {
            None => {
                sc.missing(ctx, "run", "\"echo hi\"");
                None
            }
            Some(v) => {
                w.once(
                    ctx,
                    v.span(),
                    "run",
                    "a `[[scenario.steps]]` with `sh = \"...\"`",
                );
                command(ctx, &mut w, v.get_ref(), v.span())
            }
        };
        let label = sname.as_ref().map_or("run".to_string(), |n| n.0.clone());
        let svc = resolve_service(
            ctx,
            &label,
            None,
            own.as_ref().map(|s| s.0.clone()),
            &services,
            span.clone(),
            &mut no_service,
        );
        let expect = expectations(ctx, &mut w, &sc);
        if let (Some((n, _)), Some(run)) = (sname, run) {
            scenarios.push(ScenarioSpec {
                name: n,
                description: None,
                service: own.map(|s| s.0),
                timeout: None,
                retries: None,
                tags: Vec::new(),
                steps: vec![step("run".into(), svc, run, expect, ctx.line_of(&span))],
                line: ctx.line_of(&span),
            });
        }
    }
    if scenarios.is_empty() && !ctx.has_errors() {
        ctx.error(
            0..0,
            "the test declares no `[[steps]]` or `[[scenario]]`",
            Some("add a `[[scenario]]` with at least one `[[scenario.steps]]`".into()),
        );
    }
    let perf = read_perf(ctx, &root_tbl, &scenarios);
    let determinism = read_determinism(ctx, &root_tbl);
    let (name, name_span) = name?;
    if ctx.has_errors() {
        return None;
    }
    Some(Built {
        name_line: ctx.line_of(&name_span),
        name_span,
        spec: TestSpec {
            path: ctx.path.to_path_buf(),
            name,
            description,
            tags: Vec::new(),
            timeout,
            retries: None,
            services,
            scenarios,
            perf,
            determinism,
            dialect: Dialect::Upstream,
            content_hash: String::new(),
        },
    })
}

fn step(name: String, svc: Option<String>, run: Command, expect: Expect, line: u32) -> StepSpec {
    StepSpec {
        name,
        service: svc.unwrap_or_default(),
        run,
        env: BTreeMap::new(),
        workdir: None,
        timeout: None,
        expect,
        continue_on_failure: false,
        line,
    }
}

/// Upstream `command`/`run`: an argv array, or a string that upstream ran through a shell.
fn command(ctx: &mut Ctx<'_>, w: &mut Warned, v: &DeValue<'_>, span: Span) -> Option<Command> {
    if let Some(s) = v.as_str() {
        w.once(ctx, span, "command = \"...\"", "`sh = \"...\"`");
        return Some(Command::Shell(s.to_string()));
    }
    let argv: Option<Vec<String>> = v.as_array().and_then(|a| {
        a.iter()
            .map(|e| e.get_ref().as_str().map(str::to_string))
            .collect()
    });
    match argv {
        Some(a) if !a.is_empty() => {
            w.once(ctx, span, "command = [...]", "`cmd = [...]`");
            Some(Command::Argv(a))
        }
        _ => {
            ctx.error(
                span,
                "`command` must be a non-empty array of strings or a shell string",
                None,
            );
            None
        }
    }
}

fn expectations(ctx: &mut Ctx<'_>, w: &mut Warned, t: &Tbl<'_, '_>) -> Expect {
    let mut e = Expect::default();
    if let Some((r, span)) = t.str(ctx, "expected_output_regex") {
        w.once(ctx, span.clone(), "expected_output_regex", "`stdout_regex`");
        check_regex(ctx, &r, span, "expected_output_regex");
        e.stdout.regex.push(r);
    }
    if let Some((code, span)) = t.int(ctx, "expected_exit_code", 0, 255) {
        w.once(ctx, span, "expected_exit_code", "`exit_code`");
        e.exit_code = code;
    }
    e
}

fn read_services(
    ctx: &mut Ctx<'_>,
    root: &Tbl<'_, '_>,
    w: &mut Warned,
) -> BTreeMap<String, ServiceSpec> {
    let mut out = BTreeMap::new();
    let Some((t, span)) = root.table(ctx, "services") else {
        return out;
    };
    w.once(ctx, span, "[services.<id>]", "`[service.<id>]`");
    for (k, v) in t.iter() {
        let id = k.get_ref().to_string();
        let DeValue::Table(st) = v.get_ref() else {
            ctx.error(v.span(), format!("`services.{id}` must be a table"), None);
            continue;
        };
        check_service_id(ctx, &id, k.span());
        let s = Tbl::new(st, format!("[services.{id}]"), v.span());
        s.check_keys(ctx, SERVICE);
        // `type` and `plugin` chose an upstream plugin; every service here is a container (or
        // a host service without an image), so they are read for type-checking only.
        let _ = s.str(ctx, "type");
        let _ = s.str(ctx, "plugin");
        let cmd = s
            .get("command")
            .and_then(|c| command(ctx, w, c.get_ref(), c.span()).map(|c| c.to_argv()));
        out.insert(
            id.clone(),
            ServiceSpec {
                id,
                image: s.str(ctx, "image").map(|i| i.0),
                cmd,
                env: s.str_map(ctx, "env"),
                workdir: s.str(ctx, "workdir").map(|w| w.0),
                limits: Limits::default(),
                ready: None,
                reuse: false,
                reuse_suite: false,
                mounts: Vec::new(),
                network_access: false,
                line: ctx.line_of(&v.span()),
            },
        );
    }
    out
}
