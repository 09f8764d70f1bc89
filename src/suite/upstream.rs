//! The upstream clnrm dialects, normalised into the current one before validation.
//!
//! Both upstream forms are rewritten in the parsed document: the old form (`[test.metadata]`,
//! `[services.<id>]`, top-level `[[steps]]` with `command`, `expected_output_regex`, ...) and the
//! v1.0 form (`[meta]` + `[service.<id>]` + `[[scenario]]` with `service` and a shell string
//! `run`, `[limits]`, `[report]`, `[otel]`, `[expect.*]`). Renamed keys keep their source spans,
//! so every later diagnostic still points into the file as written. Each upstream form gets one
//! warning naming the current spelling (what `clnrm fmt` writes); keys without a meaning here get
//! a "not evaluated" warning (see `not_evaluated`). The current-dialect schema then validates
//! the result: one set of rules for every file.

use std::borrow::Cow;

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use super::model::Limits;
use super::not_evaluated;
use super::reader::{Ctx, Span};
use super::schema::parse_memory;

/// Service keys renamed one to one: (upstream, current).
pub(crate) const SERVICE_RENAMES: &[(&str, &str)] = &[
    ("environment", "env"),
    ("working_dir", "workdir"),
    ("volumes", "mounts"),
];
/// Upstream spellings of the readiness probe (`{ cmd, interval, timeout, retries }`, seconds).
pub(crate) const HEALTH_CHECK: &[&str] = &["health_check", "healthcheck"];
/// Scenario name of upstream top-level `[[steps]]` when the test has no name either.
pub(crate) const FALLBACK_SCENARIO: &str = "main";
/// Step keys renamed one to one.
pub(crate) const STEP_RENAMES: &[(&str, &str)] = &[
    ("expected_output_regex", "stdout_regex"),
    ("expected_exit_code", "exit_code"),
    ("max_retries", "retries"),
];
/// Plugin markers meaning "a plain container": the only kind of service clnrm has.
pub(crate) const GENERIC_PLUGINS: &[&str] = &["generic_container", "generic", "container"];
/// Retries of a step with `retry_on_failure = true` and no `max_retries`.
pub(crate) const DEFAULT_STEP_RETRIES: &str = "3";

/// What normalisation found, beyond the rewritten document.
#[derive(Debug, Default)]
pub(crate) struct Normalised {
    /// Some upstream form was seen.
    pub upstream: bool,
    /// `[limits]`: applied to every service that sets no limit of its own.
    pub limits: Limits,
}

type Key<'i> = Spanned<Cow<'i, str>>;
type Val<'i> = Spanned<DeValue<'i>>;

/// Remembers which upstream forms were warned about, so each gets one warning per file.
struct Norm<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    warned: Vec<String>,
    upstream: bool,
}

impl Norm<'_, '_> {
    fn form(&mut self, span: Span, form: &str, current: &str) {
        self.upstream = true;
        if self.warned.iter().any(|w| w == form) {
            return;
        }
        self.warned.push(form.to_string());
        self.ctx.warn(
            span,
            format!("`{form}` is the upstream form; write {current}"),
            Some("`clnrm fmt` rewrites it".into()),
        );
    }

    fn not_evaluated(&mut self, span: Span, what: &str, why: &str) {
        self.upstream = true;
        not_evaluated::warn(self.ctx, span, what, why);
    }

    /// Renames `from` to `to` in `t`; both set is an error at the upstream key.
    fn rename(&mut self, t: &mut DeTable<'_>, from: &str, to: &str, form: &str) {
        let Some((k, v)) = t.remove_entry(from) else {
            return;
        };
        if t.get(to).is_some() {
            self.ctx.error(
                k.span(),
                format!("both `{from}` (upstream) and `{to}` are set"),
                Some(format!("keep `{to}` only")),
            );
            return;
        }
        self.form(k.span(), form, &format!("`{to}`"));
        t.insert(key(k.span(), to), v);
    }
}

fn key<'i>(span: Span, name: &str) -> Key<'i> {
    Spanned::new(span, Cow::Owned(name.to_string()))
}

fn string<'i>(span: Span, s: String) -> Val<'i> {
    Spanned::new(span, DeValue::String(Cow::Owned(s)))
}

fn strings<'i>(span: Span, items: &[String]) -> Val<'i> {
    let mut a = DeArray::new();
    for s in items {
        a.push(string(span.clone(), s.clone()));
    }
    Spanned::new(span, DeValue::Array(a))
}

fn table_mut<'t, 'i>(t: &'t mut DeTable<'i>, k: &str) -> Option<&'t mut DeTable<'i>> {
    match t.get_mut(k)?.get_mut() {
        DeValue::Table(t) => Some(t),
        _ => None,
    }
}

fn array_mut<'t, 'i>(t: &'t mut DeTable<'i>, k: &str) -> Option<&'t mut DeArray<'i>> {
    match t.get_mut(k)?.get_mut() {
        DeValue::Array(a) => Some(a),
        _ => None,
    }
}

/// Rewrite `root` from any upstream form into the current dialect, in place.
pub(crate) fn normalise(ctx: &mut Ctx<'_>, root: &mut DeTable<'_>) -> Normalised {
    let mut n = Norm {
        ctx,
        warned: Vec::new(),
        upstream: false,
    };
    // A v1.0 `[meta]` needs no rewrite, but its `version` says where the file comes from.
    if let Some(DeValue::Table(m)) = root.get("meta").map(Spanned::get_ref) {
        n.upstream |= m.get("version").is_some();
    }
    for (name, why) in not_evaluated::TABLES {
        if let Some((k, _)) = root.remove_entry(*name) {
            n.not_evaluated(k.span(), &format!("[{name}]"), why);
        }
    }
    metadata(&mut n, root);
    services(&mut n, root);
    top_level_steps(&mut n, root);
    scenarios(&mut n, root);
    let limits = limits(&mut n, root);
    if let Some(r) = table_mut(root, "report") {
        for (k, why) in not_evaluated::REPORT_KEYS {
            if let Some((key, _)) = r.remove_entry(*k) {
                n.not_evaluated(key.span(), &format!("[report] {k}"), why);
            }
        }
    }
    Normalised {
        upstream: n.upstream,
        limits,
    }
}

/// `[test.metadata]` -> `[meta]`.
fn metadata(n: &mut Norm<'_, '_>, root: &mut DeTable<'_>) {
    let Some(test) = table_mut(root, "test") else {
        return;
    };
    let Some((k, v)) = test.remove_entry("metadata") else {
        return;
    };
    let empty = test.is_empty();
    if empty {
        root.remove("test");
    }
    if root.get("meta").is_some() {
        n.ctx.error(
            k.span(),
            "both `[test.metadata]` (upstream) and `[meta]` are present",
            Some("keep `[meta]` only".into()),
        );
        return;
    }
    n.form(v.span(), "[test.metadata]", "`[meta]`");
    root.insert(key(k.span(), "meta"), v);
}

/// `[services.<id>]` -> `[service.<id>]`, and the keys of every service.
fn services(n: &mut Norm<'_, '_>, root: &mut DeTable<'_>) {
    if let Some((k, v)) = root.remove_entry("services") {
        n.form(k.span(), "[services.<id>]", "`[service.<id>]`");
        match (v.into_inner(), root.get("service").is_some()) {
            (DeValue::Table(upstream), true) => {
                let Some(current) = table_mut(root, "service") else {
                    return;
                };
                for (id, svc) in upstream {
                    if current.get(id.get_ref().as_ref()).is_some() {
                        n.ctx.error(
                            id.span(),
                            format!(
                                "service `{}` is declared in both `[services]` and `[service]`",
                                id.get_ref()
                            ),
                            Some("keep one of the two tables".into()),
                        );
                        continue;
                    }
                    current.insert(id, svc);
                }
            }
            (other, _) => {
                root.insert(key(k.span(), "service"), Spanned::new(k.span(), other));
            }
        }
    }
    let Some(all) = table_mut(root, "service") else {
        return;
    };
    for (_, svc) in all.iter_mut() {
        if let DeValue::Table(t) = svc.get_mut() {
            service(n, t);
        }
    }
}

fn service(n: &mut Norm<'_, '_>, t: &mut DeTable<'_>) {
    // `type` / `plugin` chose an upstream plugin; here every service is a container (or a host
    // service without an image).
    for marker in ["type", "plugin"] {
        if let Some((k, v)) = t.remove_entry(marker) {
            let kind = v.get_ref().as_str().unwrap_or("").to_string();
            if GENERIC_PLUGINS.contains(&kind.as_str()) {
                n.form(
                    k.span(),
                    &format!("{marker} = \"{kind}\""),
                    "nothing: every service is a container",
                );
            } else {
                not_evaluated::plugin(n.ctx, k.span(), &kind);
                n.upstream = true;
            }
        }
    }
    for (from, to) in SERVICE_RENAMES {
        n.rename(t, from, to, from);
    }
    // `command` and `args` were the main process: argv, or a string run by a shell.
    for from in ["command", "args"] {
        if let Some((k, v)) = t.remove_entry(from) {
            if t.get("cmd").is_some() {
                n.ctx.error(
                    k.span(),
                    format!("both `{from}` (upstream) and `cmd` are set"),
                    Some("keep `cmd` only".into()),
                );
                continue;
            }
            n.form(k.span(), from, "`cmd = [...]`");
            let v = match v.get_ref().as_str() {
                Some(s) => strings(
                    v.span(),
                    &["sh".to_string(), "-c".to_string(), s.to_string()],
                ),
                None => v,
            };
            t.insert(key(k.span(), "cmd"), v);
        }
    }
    for from in HEALTH_CHECK {
        let Some((k, mut v)) = t.remove_entry(*from) else {
            continue;
        };
        if t.get("ready").is_some() {
            n.ctx.error(
                k.span(),
                format!("both `{from}` (upstream) and `ready` are set"),
                Some("keep `ready` only".into()),
            );
            continue;
        }
        n.form(
            k.span(),
            from,
            "`ready = { cmd = [...], interval = \"1s\", timeout = \"30s\" }`",
        );
        let span = v.span();
        if let DeValue::Table(r) = v.get_mut() {
            health_check(r, span);
        }
        t.insert(key(k.span(), "ready"), v);
    }
    if let Some(mounts) = t.get_mut("mounts") {
        volumes(n, mounts);
    }
    if let Some(ports) = t.get("ports") {
        ports_as_numbers(n, ports);
    }
    for (k, why) in not_evaluated::SERVICE_KEYS {
        if let Some((key, _)) = t.remove_entry(*k) {
            n.not_evaluated(key.span(), k, why);
        }
    }
}

/// A compose-style port entry (`"8080"`, `"8080/tcp"`, `"9000:8080"`,
/// `"127.0.0.1:9000:8080/tcp"`) -> the container port, and whether a host side was given
/// (it is not used: ports are always published on 127.0.0.1 on an ephemeral port). `None`
/// for anything else (UDP included), which the schema then reports.
pub(crate) fn container_port(entry: &str) -> Option<(u16, bool)> {
    let e = entry.trim();
    let e = e.strip_suffix("/tcp").unwrap_or(e);
    let (host_side, port) = match e.rsplit_once(':') {
        Some((h, p)) => (!h.is_empty(), p),
        None => (false, e),
    };
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    Some((port, host_side))
}

/// `ports = ["8080", "9000:80"]` (read by the schema as `[8080, 80]`): a warning naming the
/// current spelling, and one more when a host port or address is dropped.
fn ports_as_numbers(n: &mut Norm<'_, '_>, v: &Val<'_>) {
    let DeValue::Array(items) = v.get_ref() else {
        return;
    };
    for item in items.iter() {
        let Some(text) = item.get_ref().as_str() else {
            continue;
        };
        let Some((port, host_side)) = container_port(text) else {
            continue;
        };
        n.form(
            item.span(),
            "ports = [\"...\"]",
            "the container port as a number (`ports = [8080]`)",
        );
        if host_side {
            n.ctx.warn(
                item.span(),
                format!("the host side of `\"{text}\"` is not used: container port {port} is published on 127.0.0.1 on an ephemeral port"),
                Some("steps read the host port from `CLNRM_<SERVICE>_PORT_<N>`; a test file never binds a fixed host port or another address".into()),
            );
        }
    }
}

/// Upstream health check `{ cmd | test, interval, timeout, retries }` (seconds as integers)
/// -> `ready = { cmd, interval, timeout }` (durations; the overall timeout is the larger of
/// `timeout` and `interval * retries`).
pub(crate) fn health_check(r: &mut DeTable<'_>, span: Span) {
    if let Some((k, v)) = r.remove_entry("test") {
        r.insert(key(k.span(), "cmd"), v);
    }
    if let Some(cmd) = r.get_mut("cmd") {
        let span = cmd.span();
        let argv: Option<Vec<String>> = match cmd.get_ref() {
            DeValue::String(s) => Some(vec!["sh".into(), "-c".into(), s.to_string()]),
            DeValue::Array(a) => {
                let v: Option<Vec<String>> = a
                    .iter()
                    .map(|e| e.get_ref().as_str().map(str::to_string))
                    .collect();
                // Docker's `["CMD", ...]` / `["CMD-SHELL", "..."]` prefixes.
                match v.as_deref() {
                    Some([first, rest @ ..]) if first == "CMD" => Some(rest.to_vec()),
                    Some([first, script]) if first == "CMD-SHELL" => {
                        Some(vec!["sh".into(), "-c".into(), script.clone()])
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(argv) = argv {
            *cmd = strings(span, &argv);
        }
    }
    let secs = |v: Option<&Val<'_>>| -> Option<i64> {
        v.and_then(|v| super::reader::number(v.get_ref()))
            .map(|n| n as i64)
    };
    let interval = r
        .get("interval")
        .filter(|v| !v.get_ref().is_str())
        .and_then(|v| secs(Some(v)));
    let timeout = r
        .get("timeout")
        .filter(|v| !v.get_ref().is_str())
        .and_then(|v| secs(Some(v)));
    let retries = secs(r.get("retries"));
    r.remove("retries");
    if let (Some(i), Some(sp)) = (interval, r.get("interval").map(Spanned::span)) {
        r.insert(key(sp.clone(), "interval"), string(sp, format!("{i}s")));
    }
    let overall = match (timeout, interval, retries) {
        (t, Some(i), Some(n)) => Some(t.unwrap_or(0).max(i * n)),
        (t, _, _) => t,
    };
    if let Some(total) = overall {
        let sp = r.get("timeout").map_or(span, Spanned::span);
        r.insert(key(sp.clone(), "timeout"), string(sp, format!("{total}s")));
    }
}

/// Upstream volumes (`{ host_path, container_path, read_only }` tables, or strings) ->
/// `mounts = ["host:container[:ro|rw]"]`. Upstream mounts are writable unless `read_only`;
/// here a mount without a mode is read-only, so only an explicit `read_only = false` becomes
/// `:rw` (which needs `allow_rw_mounts`).
fn volumes(n: &mut Norm<'_, '_>, mounts: &mut Val<'_>) {
    let span = mounts.span();
    let DeValue::Array(a) = mounts.get_ref() else {
        return;
    };
    // Every element keeps its own span, so a refused mount is pointed at precisely.
    let mut out: Vec<(Span, String)> = Vec::new();
    for e in a.iter() {
        match e.get_ref() {
            DeValue::String(s) => out.push((e.span(), s.to_string())),
            DeValue::Table(t) => {
                let get = |k: &str| t.get(k).and_then(|v| v.get_ref().as_str());
                let (Some(h), Some(c)) = (get("host_path"), get("container_path")) else {
                    n.ctx.error(
                        e.span(),
                        "a volume needs `host_path` and `container_path`",
                        Some("write `mounts = [\"host:/container[:ro]\"]`".into()),
                    );
                    return;
                };
                let mode = match t.get("read_only").and_then(|v| v.get_ref().as_bool()) {
                    Some(true) => ":ro",
                    Some(false) => ":rw",
                    None => "",
                };
                out.push((e.span(), format!("{h}:{c}{mode}")));
            }
            _ => return,
        }
    }
    let mut arr = DeArray::new();
    for (sp, text) in out {
        arr.push(string(sp, text));
    }
    *mounts = Spanned::new(span, DeValue::Array(arr));
}

/// Top-level `[[steps]]` -> one `[[scenario]]` named after the test.
fn top_level_steps(n: &mut Norm<'_, '_>, root: &mut DeTable<'_>) {
    let Some((k, steps)) = root.remove_entry("steps") else {
        return;
    };
    n.form(
        k.span(),
        "[[steps]]",
        "`[[scenario]]` with `[[scenario.steps]]`",
    );
    // Named after the test, as `clnrm fmt` names it when it rewrites the file, so results
    // and baseline keys do not change when a suite is migrated.
    let name = root
        .get("meta")
        .and_then(|m| m.get_ref().as_table())
        .and_then(|m| m.get("name"))
        .and_then(|v| v.get_ref().as_str())
        .unwrap_or(FALLBACK_SCENARIO)
        .to_string();
    let mut sc = DeTable::new();
    sc.insert(key(k.span(), "name"), string(k.span(), name));
    sc.insert(key(k.span(), "steps"), steps);
    let sc = Spanned::new(k.span(), DeValue::Table(sc));
    let exists = root.get("scenario").is_some();
    match array_mut(root, "scenario") {
        Some(a) => a.push(sc),
        None if exists => n.ctx.error(
            k.span(),
            "`scenario` is not an array of tables; cannot add the `[[steps]]` scenario",
            None,
        ),
        None => {
            let mut a = DeArray::new();
            a.push(sc);
            root.insert(
                key(k.span(), "scenario"),
                Spanned::new(k.span(), DeValue::Array(a)),
            );
        }
    }
}

fn scenarios(n: &mut Norm<'_, '_>, root: &mut DeTable<'_>) {
    let Some(all) = array_mut(root, "scenario") else {
        return;
    };
    for sc in all.iter_mut() {
        if let DeValue::Table(t) = sc.get_mut() {
            scenario(n, t);
        }
    }
}

/// Keys of an upstream `[[scenario]]` with `run` that belong to the step it becomes.
const RUN_STEP_KEYS: &[&str] = &[
    "expected_output_regex",
    "expected_exit_code",
    "stdout_regex",
    "stdout_contains",
    "exit_code",
];

fn scenario(n: &mut Norm<'_, '_>, t: &mut DeTable<'_>) {
    if let Some((k, v)) = t.remove_entry("timeout_ms") {
        n.form(k.span(), "timeout_ms", "`timeout = \"1500ms\"`");
        if let Some(ms) = super::reader::number(v.get_ref()) {
            t.insert(
                key(k.span(), "timeout"),
                string(v.span(), format!("{}ms", ms as i64)),
            );
        } else {
            t.insert(key(k.span(), "timeout"), v);
        }
    }
    for (k, why) in not_evaluated::SCENARIO_KEYS {
        if let Some((key, _)) = t.remove_entry(*k) {
            n.not_evaluated(key.span(), k, why);
        }
    }
    if let Some((k, run)) = t.remove_entry("run") {
        n.form(
            k.span(),
            "run",
            "a first `[[scenario.steps]]` with `sh = \"...\"`",
        );
        let mut step = DeTable::new();
        let as_key = if run.get_ref().is_str() { "sh" } else { "cmd" };
        step.insert(key(k.span(), "name"), string(k.span(), "run".into()));
        step.insert(key(k.span(), as_key), run);
        for sk in RUN_STEP_KEYS {
            if let Some(entry) = t.remove_entry(*sk) {
                step.insert(entry.0, entry.1);
            }
        }
        let step = Spanned::new(k.span(), DeValue::Table(step));
        let has_steps = t.get("steps").is_some();
        match array_mut(t, "steps") {
            Some(a) => {
                // Upstream runs `run` before the scenario's other steps.
                let rest: Vec<Val<'_>> = a.iter().cloned().collect();
                let mut new = DeArray::new();
                new.push(step);
                for s in rest {
                    new.push(s);
                }
                *a = new;
            }
            None if has_steps => {}
            None => {
                let mut a = DeArray::new();
                a.push(step);
                t.insert(
                    key(k.span(), "steps"),
                    Spanned::new(k.span(), DeValue::Array(a)),
                );
            }
        }
    }
    if let Some(steps) = array_mut(t, "steps") {
        for s in steps.iter_mut() {
            if let DeValue::Table(st) = s.get_mut() {
                step(n, st);
            }
        }
    }
}

fn step(n: &mut Norm<'_, '_>, t: &mut DeTable<'_>) {
    if let Some((k, v)) = t.remove_entry("command") {
        let (to, form, current) = if v.get_ref().is_str() {
            ("sh", "command = \"...\"", "`sh = \"...\"`")
        } else {
            ("cmd", "command = [...]", "`cmd = [...]`")
        };
        if t.get(to).is_some() {
            n.ctx.error(
                k.span(),
                format!("both `command` (upstream) and `{to}` are set"),
                Some(format!("keep `{to}` only")),
            );
        } else {
            n.form(k.span(), form, current);
            t.insert(key(k.span(), to), v);
        }
    }
    for (from, to) in STEP_RENAMES {
        n.rename(t, from, to, from);
    }
    if let Some((k, v)) = t.remove_entry("retry_on_failure") {
        n.form(k.span(), "retry_on_failure", "`retries = 3`");
        if v.get_ref().as_bool() == Some(true) && t.get("retries").is_none() {
            let three = DeValue::parse(DEFAULT_STEP_RETRIES)
                .expect("a literal integer parses")
                .into_inner();
            t.insert(key(k.span(), "retries"), Spanned::new(v.span(), three));
        }
    }
    for from in ["timeout_ms", "timeout"] {
        let numeric = t.get(from).is_some_and(|v| !v.get_ref().is_str());
        if from == "timeout" && !numeric {
            continue;
        }
        if let Some((k, v)) = t.remove_entry(from) {
            // Upstream step timeouts: `timeout_ms` in milliseconds, a bare `timeout` in seconds.
            let unit = if from == "timeout_ms" { "ms" } else { "s" };
            n.form(
                k.span(),
                &format!("{from} as a number"),
                "`timeout = \"30s\"`",
            );
            match super::reader::number(v.get_ref()) {
                Some(x) => {
                    t.insert(
                        key(k.span(), "timeout"),
                        string(v.span(), format!("{}{unit}", x as i64)),
                    );
                }
                None => {
                    t.insert(key(k.span(), "timeout"), v);
                }
            }
        }
    }
    for (k, why) in not_evaluated::STEP_KEYS {
        if let Some((key, _)) = t.remove_entry(*k) {
            n.not_evaluated(key.span(), k, why);
        }
    }
}

/// `[limits] cpu_millicores / memory_mb` -> limits of every service that sets none.
fn limits(n: &mut Norm<'_, '_>, root: &mut DeTable<'_>) -> Limits {
    let mut out = Limits::default();
    let Some((k, v)) = root.remove_entry("limits") else {
        return out;
    };
    n.form(
        k.span(),
        "[limits]",
        "`memory` and `cpus` in each `[service.<id>]`",
    );
    let DeValue::Table(t) = v.get_ref() else {
        n.ctx.error(v.span(), "`limits` must be a table", None);
        return out;
    };
    for (key, val) in t.iter() {
        let num = super::reader::number(val.get_ref()).filter(|x| *x > 0.0);
        match (key.get_ref().as_ref(), num) {
            ("cpu_millicores", Some(m)) => out.cpus_milli = Some(m as u64),
            ("memory_mb", Some(m)) => out.memory_bytes = parse_memory(&format!("{m}m")),
            ("cpu_millicores" | "memory_mb", None) => n.ctx.error(
                val.span(),
                format!("`limits.{}` must be a positive number", key.get_ref()),
                None,
            ),
            (other, _) => n.ctx.error(
                key.span(),
                format!("unknown key `{other}` in `[limits]`"),
                Some("`[limits]` takes `cpu_millicores` and `memory_mb`".into()),
            ),
        }
    }
    out
}

/// Apply `[limits]` to every service without a limit of its own.
pub(crate) fn apply_limits(
    services: &mut std::collections::BTreeMap<String, super::model::ServiceSpec>,
    limits: &Limits,
) {
    for s in services.values_mut() {
        if s.limits.memory_bytes.is_none() {
            s.limits.memory_bytes = limits.memory_bytes;
        }
        if s.limits.cpus_milli.is_none() {
            s.limits.cpus_milli = limits.cpus_milli;
        }
    }
}
