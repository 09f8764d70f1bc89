//! The current dialect (`[meta]`, `[service.<id>]`, `[[scenario]]`...) read strictly into the
//! model, plus the semantic checks both dialects share (services, regexes, names, budgets).

use std::collections::{BTreeMap, BTreeSet};

use toml::de::{DeTable, DeValue};

use super::model::*;
use super::reader::{did_you_mean, quote_list, Ctx, Span, Tbl};
pub(crate) use super::sections::{read_determinism, read_perf};
use super::trust;

/// What a dialect builder produces; path and content hash are filled in by the loader.
pub(crate) struct Built {
    pub spec: TestSpec,
    /// Line of the test name, for cross-file "name used twice" diagnostics.
    pub name_line: u32,
    pub name_span: Span,
}

/// Keys of each table, in the canonical order `clnrm fmt` writes them.
pub(crate) const TOP: &[&str] = &[
    "meta",
    "vars",
    "service",
    "scenario",
    "expect",
    "perf",
    "determinism",
    "report",
];
pub(crate) const META: &[&str] = &[
    "name",
    "description",
    "version",
    "tags",
    "timeout",
    "retries",
    "skip",
];
pub(crate) const SERVICE: &[&str] = &[
    "image",
    "cmd",
    "env",
    "workdir",
    "memory",
    "cpus",
    "pids",
    "ready",
    "reuse",
    "mounts",
    "network_access",
    "ports",
    "depends_on",
];
pub(crate) const READY: &[&str] = &["cmd", "interval", "timeout"];
pub(crate) const SCENARIO: &[&str] = &[
    "name",
    "description",
    "service",
    "timeout",
    "retries",
    "tags",
    "skip",
    "steps",
    "expect",
];
pub(crate) const STEP: &[&str] = &[
    "name",
    "description",
    "service",
    "cmd",
    "sh",
    "env",
    "workdir",
    "timeout",
    "exit_code",
    "stdout_contains",
    "stdout_not_contains",
    "stdout_regex",
    "stdout_equals",
    "stderr_contains",
    "stderr_not_contains",
    "stderr_regex",
    "stderr_equals",
    "continue_on_failure",
    "retries",
];

/// Read a current-dialect document. Returns `None` when errors were reported.
pub(crate) fn build_current(
    ctx: &mut Ctx<'_>,
    root: &DeTable<'_>,
    root_span: Span,
) -> Option<Built> {
    let root = Tbl::new(root, "top level", root_span.clone());
    root.check_keys(ctx, TOP);
    check_vars(ctx, &root);

    let mut skip = None;
    let (name, name_span, description, tags, timeout, retries) = match root.table(ctx, "meta") {
        Some((t, span)) => {
            let meta = Tbl::new(t, "[meta]", span);
            meta.check_keys(ctx, META);
            let name = meta.req_str(ctx, "name", "\"my-test\"");
            // `version` documents the file (upstream requires it); nothing depends on it.
            let _ = meta.str(ctx, "version");
            skip = meta.str(ctx, "skip").map(|s| s.0);
            (
                name.as_ref().map(|n| n.0.clone()),
                name.map(|n| n.1),
                meta.str(ctx, "description").map(|d| d.0),
                meta.str_list(ctx, "tags").unwrap_or_default(),
                meta.duration(ctx, "timeout"),
                meta.int(ctx, "retries", 0, 100).map(|r| r.0 as u32),
            )
        }
        None => {
            if root.get("meta").is_none() {
                ctx.error(
                    0..0,
                    "missing `[meta]` table",
                    Some("start the file with `[meta]` and `name = \"my-test\"`".into()),
                );
            }
            (None, None, None, Vec::new(), None, None)
        }
    };

    let mut services = read_services(ctx, &root);
    let mut scenarios = Vec::new();
    let mut no_service_reported = false;
    for (i, (t, span)) in root.tables(ctx, "scenario").into_iter().enumerate() {
        let sc = Tbl::new(t, format!("[[scenario]] #{}", i + 1), span);
        if let Some(s) = read_scenario(ctx, &sc, &services, &mut no_service_reported) {
            scenarios.push(s);
        }
    }
    add_default_service(ctx, &mut services, &scenarios);
    if root.get("scenario").is_none() {
        ctx.error(
            0..0,
            "the test declares no `[[scenario]]`",
            Some("add `[[scenario]]` with `name` and at least one `[[scenario.steps]]`".into()),
        );
    }
    check_unique_scenarios(ctx, &root, &scenarios);
    let perf = read_perf(ctx, &root, &scenarios);
    let determinism = read_determinism(ctx, &root);
    let expect = crate::telemetry::expect::schema::read_expect(ctx, &root, "[expect]");
    let report = read_report(ctx, &root);
    check_depends_on(ctx, &root, &services);

    let (name, name_span) = (name?, name_span?);
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
            tags,
            timeout,
            retries,
            services,
            scenarios,
            perf,
            determinism,
            expect,
            dialect: Dialect::Current,
            content_hash: String::new(),
            skip,
            report,
        },
    })
}

/// `[vars]` values are strings, numbers, booleans, or arrays and tables of them (templates
/// iterate over those); dates have no template form.
pub(crate) fn check_vars(ctx: &mut Ctx<'_>, root: &Tbl<'_, '_>) {
    let Some((t, _)) = root.table(ctx, "vars") else {
        return;
    };
    for (k, v) in t.iter() {
        if !matches!(v.get_ref(), DeValue::Datetime(_)) {
            continue;
        }
        ctx.error(
            v.span(),
            format!(
                "`vars.{}` must be a string, number, boolean, array or table, found {}",
                k.get_ref(),
                v.get_ref().type_str()
            ),
            Some("quote it: `\"2024-01-01T00:00:00Z\"`".into()),
        );
    }
}

fn read_services(ctx: &mut Ctx<'_>, root: &Tbl<'_, '_>) -> BTreeMap<String, ServiceSpec> {
    let mut out = BTreeMap::new();
    let Some((t, _)) = root.table(ctx, "service") else {
        return out;
    };
    for (k, v) in t.iter() {
        let id = k.get_ref().to_string();
        let DeValue::Table(st) = v.get_ref() else {
            ctx.error(
                v.span(),
                format!(
                    "`service.{id}` must be a table, found {}",
                    v.get_ref().type_str()
                ),
                Some(format!(
                    "write `[service.{id}]` followed by `image = \"...\"`"
                )),
            );
            continue;
        };
        check_service_id(ctx, &id, k.span());
        let s = Tbl::new(st, format!("[service.{id}]"), v.span());
        s.check_keys(ctx, SERVICE);
        let ready = s.table(ctx, "ready").and_then(|(rt, span)| {
            let r = Tbl::new(rt, format!("[service.{id}] ready"), span);
            r.check_keys(ctx, READY);
            if r.get("cmd").is_none() {
                r.missing(ctx, "cmd", "[\"pg_isready\"]");
            }
            Some(ReadyProbe {
                cmd: r.argv(ctx, "cmd")?,
                interval: r
                    .duration(ctx, "interval")
                    .unwrap_or(DEFAULT_READY_INTERVAL),
                timeout: r.duration(ctx, "timeout").unwrap_or(DEFAULT_READY_TIMEOUT),
            })
        });
        let mounts = read_mounts(ctx, &s);
        let memory_bytes = s.get("memory").and_then(|mv| {
            let parsed = match mv.get_ref() {
                DeValue::String(text) => parse_memory(text),
                DeValue::Integer(_) => super::reader::number(mv.get_ref())
                    .filter(|n| *n > 0.0)
                    .map(|n| n as u64),
                _ => None,
            };
            if parsed.is_none() {
                ctx.error(
                    mv.span(),
                    format!("invalid `memory` in `[service.{id}]`"),
                    Some("write a size like `\"256m\"`, `\"1g\"` or a byte count".into()),
                );
            }
            parsed
        });
        let reuse = read_reuse(ctx, &s);
        let service = ServiceSpec {
            id: id.clone(),
            image: s.str(ctx, "image").map(|i| i.0),
            cmd: s.get("cmd").and_then(|_| s.argv(ctx, "cmd")),
            env: s.str_map(ctx, "env"),
            workdir: s.str(ctx, "workdir").map(|w| w.0),
            limits: Limits {
                memory_bytes,
                cpus_milli: s.positive(ctx, "cpus").map(|c| (c * 1000.0).round() as u64),
                pids: s.int(ctx, "pids", 1, i64::MAX).map(|p| p.0),
            },
            ready,
            reuse: reuse.is_some(),
            reuse_suite: reuse == Some(true),
            mounts,
            network_access: s.bool(ctx, "network_access").unwrap_or(false),
            ports: read_ports(ctx, &s),
            line: ctx.line_of(&v.span()),
            depends_on: s.str_list(ctx, "depends_on").unwrap_or_default(),
        };
        out.insert(id, service);
    }
    check_port_var_names(ctx, &root_service_spans(t), &out);
    out
}

fn root_service_spans(t: &DeTable<'_>) -> BTreeMap<String, Span> {
    t.iter()
        .map(|(k, _)| (k.get_ref().to_string(), k.span()))
        .collect()
}

/// `ports = [8080, 9090]`: container TCP ports, each published on 127.0.0.1 of this machine
/// on an ephemeral port (never a fixed host port, never another address).
fn read_ports(ctx: &mut Ctx<'_>, s: &Tbl<'_, '_>) -> Vec<u16> {
    let Some(v) = s.get("ports") else {
        return Vec::new();
    };
    let Some(items) = v.get_ref().as_array() else {
        ctx.error(
            v.span(),
            format!(
                "`ports` in `{}` must be an array of container ports, found {}",
                s.name,
                v.get_ref().type_str()
            ),
            Some("write `ports = [8080]`".into()),
        );
        return Vec::new();
    };
    let mut out: Vec<u16> = Vec::with_capacity(items.len());
    for item in items.iter() {
        let port = match item.get_ref() {
            DeValue::Integer(_) => super::reader::number(item.get_ref())
                .filter(|n| (1.0..=65535.0).contains(n))
                .map(|n| n as u16),
            // The upstream compose-style strings; normalisation warned about them.
            DeValue::String(t) => super::upstream::container_port(t).map(|p| p.0),
            _ => None,
        };
        let Some(port) = port else {
            let udp = item
                .get_ref()
                .as_str()
                .is_some_and(|t| t.trim().ends_with("/udp"));
            ctx.error(
                item.span(),
                if udp {
                    format!("`ports` in `{}`: only TCP ports are published", s.name)
                } else {
                    format!(
                        "`ports` in `{}`: each entry is a container port from 1 to 65535",
                        s.name
                    )
                },
                Some(
                    "write the container port only (`ports = [8080]`): it is published on 127.0.0.1 on an ephemeral host port".into(),
                ),
            );
            continue;
        };
        if out.contains(&port) {
            ctx.error(
                item.span(),
                format!("port {port} is listed twice in `{}`", s.name),
                Some("list each container port once".into()),
            );
            continue;
        }
        out.push(port);
    }
    out
}

/// Two services whose ids differ only in punctuation or case would set the same step
/// variables (`CLNRM_<SERVICE>_PORT_<N>`).
fn check_port_var_names(
    ctx: &mut Ctx<'_>,
    spans: &BTreeMap<String, Span>,
    services: &BTreeMap<String, ServiceSpec>,
) {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for svc in services.values().filter(|s| !s.ports.is_empty()) {
        let var = service_var_name(&svc.id);
        match seen.get(var.as_str()) {
            Some(other) => ctx.error(
                spans.get(&svc.id).cloned().unwrap_or(0..0),
                format!(
                    "services `{other}` and `{}` both publish ports as `CLNRM_{var}_*` variables",
                    svc.id
                ),
                Some("rename one of them: ids that differ only in case or punctuation name the same variables".into()),
            ),
            None => {
                seen.insert(var, &svc.id);
            }
        }
    }
}

/// Ids become parts of container and network names, so keep them to a safe alphabet.
pub(crate) fn check_service_id(ctx: &mut Ctx<'_>, id: &str, span: Span) {
    let ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if !ok {
        ctx.error(
            span,
            format!("invalid service id `{id}`"),
            Some("use letters, digits, `-`, `_` and `.` only".into()),
        );
    }
}

/// `reuse`: `true` (this test's scenarios share a healthy environment: `Some(false)`),
/// `"suite"` (other tests with identical services may share it too: `Some(true)`), or
/// `false` / absent (`None`).
fn read_reuse(ctx: &mut Ctx<'_>, s: &Tbl<'_, '_>) -> Option<bool> {
    let v = s.get("reuse")?;
    match v.get_ref() {
        DeValue::Boolean(true) => Some(false),
        DeValue::Boolean(false) => None,
        DeValue::String(t) if t == "suite" => Some(true),
        DeValue::String(t) if t == "test" => Some(false),
        other => {
            ctx.error(
                v.span(),
                format!(
                    "`reuse` in `{}` must be `true`, `false`, `\"test\"` or `\"suite\"`, found {}",
                    s.name,
                    match other {
                        DeValue::String(t) => format!("`\"{t}\"`"),
                        o => o.type_str().to_string(),
                    }
                ),
                Some("`true` shares one environment among this test's scenarios; `\"suite\"` also with other tests".into()),
            );
            None
        }
    }
}

/// `mounts`, each checked against the trust boundary and resolved to what Docker receives.
fn read_mounts(ctx: &mut Ctx<'_>, s: &Tbl<'_, '_>) -> Vec<String> {
    let list = s.str_list(ctx, "mounts").unwrap_or_default();
    let spans: Vec<Span> = match s.get("mounts") {
        Some(v) => match v.get_ref().as_array() {
            Some(a) => a.iter().map(|e| e.span()).collect(),
            None => vec![v.span()],
        },
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let span = spans.get(i).cloned().unwrap_or(s.span.clone());
        if let Some(r) = check_mount(ctx, m, span) {
            out.push(r);
        }
    }
    out
}

pub(crate) fn check_mount(ctx: &mut Ctx<'_>, m: &str, span: Span) -> Option<String> {
    let parts: Vec<&str> = m.split(':').collect();
    let ok = match parts.as_slice() {
        [h, c] => !h.is_empty() && c.starts_with('/'),
        [h, c, mode] => !h.is_empty() && c.starts_with('/') && (*mode == "ro" || *mode == "rw"),
        _ => false,
    };
    if !ok {
        ctx.error(
            span,
            format!("invalid mount `{m}`"),
            Some(
                "write `host_path:/container/path` (read-only) or `host_path:/container/path:rw`"
                    .into(),
            ),
        );
        return None;
    }
    let root = ctx
        .repo_root
        .clone()
        .unwrap_or_else(|| trust::repo_root(ctx.path, None));
    let allow = trust::MountAllow {
        paths: &ctx.allow_mounts,
        rw: ctx.allow_rw_mounts,
    };
    match trust::resolve_mount(ctx.path, &root, &allow, m) {
        Ok(r) => Some(r),
        Err(r) => {
            ctx.error(span, r.message, Some(r.hint));
            None
        }
    }
}

/// "256m", "1g", "512k", "1024", "1.5g" (binary units, as Docker reads them).
pub fn parse_memory(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n > 0.0 && n.is_finite()).then_some((n * mult as f64) as u64)
}

fn read_scenario(
    ctx: &mut Ctx<'_>,
    sc: &Tbl<'_, '_>,
    services: &BTreeMap<String, ServiceSpec>,
    no_service_reported: &mut bool,
) -> Option<ScenarioSpec> {
    sc.check_keys(ctx, SCENARIO);
    let name = sc.req_str(ctx, "name", "\"happy path\"");
    let service = sc.str(ctx, "service");
    if let Some((id, span)) = &service {
        check_service_exists(ctx, id, span.clone(), services, "scenario");
    }
    let steps_tables = sc.tables(ctx, "steps");
    if sc.get("steps").is_none() {
        ctx.error(
            sc.span.clone(),
            format!(
                "scenario `{}` has no steps",
                name.as_ref().map_or("?", |n| n.0.as_str())
            ),
            Some(
                "add at least one `[[scenario.steps]]` with `cmd = [...]` or `sh = \"...\"`".into(),
            ),
        );
    }
    let mut steps = Vec::new();
    let mut seen = BTreeMap::<String, Span>::new();
    for (i, (t, span)) in steps_tables.into_iter().enumerate() {
        let st = Tbl::new(t, format!("[[scenario.steps]] #{}", i + 1), span.clone());
        st.check_keys(ctx, STEP);
        let step_name = st.str(ctx, "name");
        if let Some((n, nspan)) = &step_name {
            if seen.insert(n.clone(), nspan.clone()).is_some() {
                ctx.error(
                    nspan.clone(),
                    format!("duplicate step name `{n}` in this scenario"),
                    Some("step names identify budgets and results: make them unique".into()),
                );
            }
        }
        let name = step_name.map_or_else(|| format!("step {}", i + 1), |n| n.0);
        let run = read_command(ctx, &st, &name);
        let own = st.str(ctx, "service");
        let svc = resolve_service(
            ctx,
            &name,
            own,
            service.as_ref().map(|s| s.0.clone()),
            services,
            span.clone(),
            no_service_reported,
        );
        let expect = Expect {
            exit_code: st.int(ctx, "exit_code", 0, 255).map_or(0, |e| e.0),
            stdout: read_output(ctx, &st, "stdout"),
            stderr: read_output(ctx, &st, "stderr"),
        };
        let step = StepSpec {
            name,
            service: svc.unwrap_or_default(),
            env: st.str_map(ctx, "env"),
            workdir: st.str(ctx, "workdir").map(|w| w.0),
            timeout: st.duration(ctx, "timeout"),
            expect,
            continue_on_failure: st.bool(ctx, "continue_on_failure").unwrap_or(false),
            line: ctx.line_of(&span),
            description: st.str(ctx, "description").map(|d| d.0),
            retries: st.int(ctx, "retries", 0, 100).map_or(0, |r| r.0 as u32),
            run: run?,
        };
        steps.push(step);
    }
    Some(ScenarioSpec {
        name: name?.0,
        description: sc.str(ctx, "description").map(|d| d.0),
        service: service.map(|s| s.0),
        timeout: sc.duration(ctx, "timeout"),
        retries: sc.int(ctx, "retries", 0, 100).map(|r| r.0 as u32),
        tags: sc.str_list(ctx, "tags").unwrap_or_default(),
        expect: crate::telemetry::expect::schema::read_expect(
            ctx,
            sc,
            &format!("{} expect", sc.name),
        ),
        line: ctx.line_of(&sc.span),
        skip: sc.str(ctx, "skip").map(|s| s.0),
        steps,
    })
}

/// Exactly one of `cmd` (argv) and `sh` (shell string).
fn read_command(ctx: &mut Ctx<'_>, st: &Tbl<'_, '_>, name: &str) -> Option<Command> {
    match (st.get("cmd"), st.get("sh")) {
        (Some(_), Some(_)) => {
            let span = st.key_span("sh").unwrap_or(st.span.clone());
            ctx.error(
                span,
                format!("step `{name}` sets both `cmd` and `sh`"),
                Some(
                    "keep one: `cmd = [...]` runs an argv, `sh = \"...\"` runs a shell string"
                        .into(),
                ),
            );
            None
        }
        (None, None) => {
            ctx.error(
                st.span.clone(),
                format!("step `{name}` has nothing to run"),
                Some("add `cmd = [\"prog\", \"arg\"]` or `sh = \"prog arg | other\"`".into()),
            );
            None
        }
        (Some(_), None) => st.argv(ctx, "cmd").map(Command::Argv),
        (None, Some(_)) => st.str(ctx, "sh").map(|s| Command::Shell(s.0)),
    }
}

fn read_output(ctx: &mut Ctx<'_>, st: &Tbl<'_, '_>, stream: &str) -> OutputExpect {
    let key = |k: &str| format!("{stream}_{k}");
    let regex = st.str_or_list(ctx, &key("regex"));
    for (r, span) in &regex {
        check_regex(ctx, r, span.clone(), &key("regex"));
    }
    OutputExpect {
        contains: st
            .str_or_list(ctx, &key("contains"))
            .into_iter()
            .map(|c| c.0)
            .collect(),
        not_contains: st
            .str_or_list(ctx, &key("not_contains"))
            .into_iter()
            .map(|c| c.0)
            .collect(),
        regex: regex.into_iter().map(|r| r.0).collect(),
        equals: st.str(ctx, &key("equals")).map(|e| e.0),
    }
}

pub(crate) fn check_regex(ctx: &mut Ctx<'_>, pattern: &str, span: Span, key: &str) {
    if let Err(e) = regex::Regex::new(pattern) {
        // The regex crate's message repeats the pattern with its own caret; its last line is
        // the actual reason.
        let text = e.to_string();
        let reason = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(&text)
            .trim()
            .trim_start_matches("error: ")
            .to_string();
        ctx.error(
            span,
            format!("invalid regex in `{key}`: {reason}"),
            Some("regex syntax: https://docs.rs/regex/latest/regex/#syntax".into()),
        );
    }
}

pub(crate) fn check_service_exists(
    ctx: &mut Ctx<'_>,
    id: &str,
    span: Span,
    services: &BTreeMap<String, ServiceSpec>,
    who: &str,
) -> bool {
    if services.contains_key(id) {
        return true;
    }
    let ids: Vec<&str> = services.keys().map(String::as_str).collect();
    let hint = match did_you_mean(id, &ids) {
        Some(s) => format!("did you mean `{s}`?"),
        None if ids.is_empty() => format!("declare it with `[service.{id}]`"),
        None => format!("declared services: {}", quote_list(&ids)),
    };
    ctx.error(
        span,
        format!("{who} names service `{id}`, which is not declared"),
        Some(hint),
    );
    false
}

/// Id of the service that runs steps naming none, when the project configures its image.
pub const DEFAULT_SERVICE: &str = "default";

const NO_DEFAULT_HINT: &str = "set `default_image = \"<image>\"` in `.clnrm/config.toml` or pass `--default-image <image>` to run such steps in a default service";

/// The step's own service, else the scenario's, else the only service of the test, else the
/// default service (when a default image is configured: always for a test without services,
/// and for upstream files, whose steps without a service ran in a default container).
pub(crate) fn resolve_service(
    ctx: &mut Ctx<'_>,
    step: &str,
    own: Option<(String, Span)>,
    scenario: Option<String>,
    services: &BTreeMap<String, ServiceSpec>,
    step_span: Span,
    no_service_reported: &mut bool,
) -> Option<String> {
    if let Some((id, span)) = own {
        if id == DEFAULT_SERVICE && ctx.default_image.is_some() {
            return Some(id);
        }
        let who = format!("step `{step}`");
        return check_service_exists(ctx, &id, span, services, &who).then_some(id);
    }
    if let Some(id) = scenario {
        // Already checked (and reported) at the scenario.
        let default = id == DEFAULT_SERVICE && ctx.default_image.is_some();
        return (services.contains_key(&id) || default).then_some(id);
    }
    match services.len() {
        1 => services.keys().next().cloned(),
        0 if ctx.default_image.is_some() => Some(DEFAULT_SERVICE.to_string()),
        0 => {
            if !*no_service_reported {
                *no_service_reported = true;
                ctx.error(
                    step_span,
                    format!("step `{step}` has no service to run on"),
                    Some(format!("declare a `[service.<id>]` (`image` may be omitted to run on the host with `--backend local`), or {NO_DEFAULT_HINT}")),
                );
            }
            None
        }
        _ if ctx.upstream && ctx.default_image.is_some() => Some(DEFAULT_SERVICE.to_string()),
        _ => {
            let ids: Vec<&str> = services.keys().map(String::as_str).collect();
            let hint = if ctx.upstream {
                format!(
                    "add `service = \"{}\"` to the step or its scenario, or {NO_DEFAULT_HINT}",
                    ids[0]
                )
            } else {
                format!("add `service = \"{}\"` to the step or its scenario", ids[0])
            };
            ctx.error(
                step_span,
                format!(
                    "step `{step}` does not say which service it runs on (the test declares {})",
                    quote_list(&ids)
                ),
                Some(hint),
            );
            None
        }
    }
}

/// Declare the default service when some step resolved to it and the file does not.
fn add_default_service(
    ctx: &Ctx<'_>,
    services: &mut BTreeMap<String, ServiceSpec>,
    scenarios: &[ScenarioSpec],
) {
    let Some(image) = &ctx.default_image else {
        return;
    };
    let used = scenarios
        .iter()
        .flat_map(|s| &s.steps)
        .any(|st| st.service == DEFAULT_SERVICE);
    if used && !services.contains_key(DEFAULT_SERVICE) {
        services.insert(
            DEFAULT_SERVICE.to_string(),
            ServiceSpec::named(DEFAULT_SERVICE).with_image(image),
        );
    }
}

/// `depends_on` names services of this test, and the dependencies form no cycle.
fn check_depends_on(
    ctx: &mut Ctx<'_>,
    root: &Tbl<'_, '_>,
    services: &BTreeMap<String, ServiceSpec>,
) {
    let span_of = |ctx: &mut Ctx<'_>, id: &str| {
        root.table(ctx, "service")
            .and_then(|(t, _)| t.get(id).map(|v| v.span()))
            .unwrap_or(0..0)
    };
    for svc in services.values() {
        for dep in &svc.depends_on {
            if !services.contains_key(dep) || dep == &svc.id {
                let span = span_of(ctx, &svc.id);
                let ids: Vec<&str> = services.keys().map(String::as_str).collect();
                ctx.error(
                    span,
                    format!("service `{}` depends on `{dep}`, which is not another service of this test", svc.id),
                    Some(format!("declared services: {}", quote_list(&ids))),
                );
            }
        }
    }
    if start_waves(services).is_none() {
        let span = span_of(ctx, services.keys().next().map_or("", String::as_str));
        ctx.error(
            span,
            "`depends_on` of this test's services form a cycle",
            Some("a service cannot (indirectly) depend on itself".into()),
        );
    }
}

/// Services grouped into start waves: each wave depends only on earlier ones. `None` when
/// `depends_on` forms a cycle. Unknown dependencies are ignored here (reported at load).
pub fn start_waves(services: &BTreeMap<String, ServiceSpec>) -> Option<Vec<Vec<String>>> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut waves = Vec::new();
    while placed.len() < services.len() {
        let wave: Vec<String> = services
            .values()
            .filter(|s| !placed.contains(s.id.as_str()))
            .filter(|s| {
                s.depends_on
                    .iter()
                    .all(|d| placed.contains(d.as_str()) || !services.contains_key(d) || d == &s.id)
            })
            .map(|s| s.id.clone())
            .collect();
        if wave.is_empty() {
            return None;
        }
        for id in &wave {
            placed.insert(services[id].id.as_str());
        }
        waves.push(wave);
    }
    Some(waves)
}

/// `[report]`: report paths used when the command line gives none.
fn read_report(ctx: &mut Ctx<'_>, root: &Tbl<'_, '_>) -> ReportSpec {
    let Some((t, span)) = root.table(ctx, "report") else {
        return ReportSpec::default();
    };
    let r = Tbl::new(t, "[report]", span);
    r.check_keys(ctx, REPORT);
    let path = |ctx: &mut Ctx<'_>, k: &str| r.str(ctx, k).map(|p| std::path::PathBuf::from(p.0));
    ReportSpec {
        json: path(ctx, "json"),
        junit: path(ctx, "junit"),
        markdown: path(ctx, "markdown"),
    }
}

pub(crate) const REPORT: &[&str] = &["json", "junit", "markdown"];

fn check_unique_scenarios(ctx: &mut Ctx<'_>, root: &Tbl<'_, '_>, scenarios: &[ScenarioSpec]) {
    let mut seen = BTreeSet::new();
    for (i, s) in scenarios.iter().enumerate() {
        if !seen.insert(s.name.as_str()) {
            let span = root
                .tables(ctx, "scenario")
                .get(i)
                .map_or(0..0, |t| t.1.clone());
            ctx.error(
                span,
                format!("duplicate scenario name `{}` in this test", s.name),
                Some("scenario names identify results and baselines: make them unique".into()),
            );
        }
    }
}
