//! Rewrites the upstream clnrm dialects into the current schema, in place, keeping comments.
//!
//! Mirrors `suite::upstream` (which normalises the same forms at load time, with a warning
//! naming what this module writes): `[test.metadata]` -> `[meta]`; `[services.x]` ->
//! `[service.x]` (generic-container `type`/`plugin` dropped, `command`/`args` -> `cmd`,
//! `environment` -> `env`, `working_dir` -> `workdir`, `volumes` -> `mounts`, `health_check` ->
//! `ready`, compose-style `ports = ["9000:8080"]` -> `ports = [8080]`); top-level `[[steps]]` -> one `[[scenario]]` named after the test; `[[scenario]]
//! run = "..."` -> a first step named `run` with `sh`; step `command`, `expected_*`,
//! `max_retries` / `retry_on_failure`, numeric timeouts; `[limits]` -> `memory` / `cpus` of each
//! service. Keys without a meaning here (`[otel]`, `[assertions]`, ...) are left in place: the loader
//! keeps warning that they are not evaluated.

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Key, Table, Value};

use super::format::FmtError;
use crate::suite::upstream::{
    container_port, DEFAULT_STEP_RETRIES, FALLBACK_SCENARIO, GENERIC_PLUGINS, HEALTH_CHECK,
    SERVICE_RENAMES, STEP_RENAMES,
};

/// Applies every rewrite; returns whether anything changed.
pub(crate) fn rewrite(doc: &mut DocumentMut) -> Result<bool, FmtError> {
    let root = doc.as_table_mut();
    let mut changed = false;
    changed |= rewrite_metadata(root)?;
    changed |= rewrite_services(root)?;
    changed |= rewrite_steps(root)?;
    changed |= rewrite_scenarios(root)?;
    changed |= rewrite_limits(root)?;
    Ok(changed)
}

/// Renames `from` to `to` inside `table`, keeping the key's comments.
fn rename(table: &mut Table, from: &str, to: &str) -> Result<bool, FmtError> {
    rename_with(table, from, to, |i| i)
}

/// Like `rename`, converting the value on the way.
fn rename_with(
    table: &mut Table,
    from: &str,
    to: &str,
    convert: impl FnOnce(Item) -> Item,
) -> Result<bool, FmtError> {
    if !table.contains_key(from) {
        return Ok(false);
    }
    if table.contains_key(to) {
        return Err(FmtError::Dialect(format!(
            "both `{from}` and `{to}` are set; remove one"
        )));
    }
    let (old, item) = table.remove_entry(from).expect("presence checked above");
    let mut key = Key::new(to);
    *key.leaf_decor_mut() = old.leaf_decor().clone();
    table.insert_formatted(&key, convert(item));
    Ok(true)
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(String::as_str).collect::<Array>())
}

/// A string command becomes `["sh", "-c", "..."]`; an array stays.
fn shell_argv(item: Item) -> Item {
    match item.as_str() {
        Some(s) => Item::Value(strings(&["sh".into(), "-c".into(), s.to_string()])),
        None => item,
    }
}

fn rewrite_metadata(root: &mut Table) -> Result<bool, FmtError> {
    let Some(test) = root.get_mut("test").and_then(Item::as_table_mut) else {
        return Ok(false);
    };
    let Some(metadata) = test.remove("metadata") else {
        return Ok(false);
    };
    let test_empty = test.is_empty();
    if root.contains_key("meta") {
        return Err(FmtError::Dialect(
            "both `[test.metadata]` and `[meta]` are present; keep one".into(),
        ));
    }
    if test_empty {
        root.remove("test");
    }
    root.insert("meta", metadata);
    Ok(true)
}

fn rewrite_services(root: &mut Table) -> Result<bool, FmtError> {
    let mut changed = false;
    if let Some(Item::Table(services)) = root.remove("services") {
        changed = true;
        if !root.contains_key("service") {
            let mut t = Table::new();
            t.set_implicit(true);
            root.insert("service", Item::Table(t));
        }
        let target = root
            .get_mut("service")
            .and_then(Item::as_table_mut)
            .ok_or_else(|| FmtError::Dialect("`service` is not a table".into()))?;
        for (key, item) in services.into_iter() {
            if target.contains_key(&key) {
                return Err(FmtError::Dialect(format!(
                    "service `{key}` is defined in both `[services]` and `[service]`"
                )));
            }
            target.insert(&key, item);
        }
    }
    let Some(all) = root.get_mut("service").and_then(Item::as_table_mut) else {
        return Ok(changed);
    };
    // Services are `[service.x]` tables in practice; an inline-table service is left as it is
    // (the loader still reads it and warns about its upstream keys).
    for (_, item) in all.iter_mut() {
        if let Some(t) = item.as_table_mut() {
            changed |= rewrite_service(t)?;
        }
    }
    Ok(changed)
}

/// `ports = ["8080/tcp", "9000:80"]` -> `ports = [8080, 80]`: the container port is all that
/// is used (it is published on 127.0.0.1 on an ephemeral port).
fn rewrite_ports(svc: &mut Table) -> bool {
    let Some(ports) = svc.get_mut("ports").and_then(Item::as_array_mut) else {
        return false;
    };
    let mut changed = false;
    for v in ports.iter_mut() {
        if let Some((port, _)) = v.as_str().and_then(container_port) {
            let decor = v.decor().clone();
            *v = Value::from(i64::from(port));
            *v.decor_mut() = decor;
            changed = true;
        }
    }
    changed
}

fn rewrite_service(svc: &mut Table) -> Result<bool, FmtError> {
    let mut changed = false;
    for marker in ["type", "plugin"] {
        let generic = svc
            .get(marker)
            .and_then(Item::as_str)
            .is_some_and(|p| GENERIC_PLUGINS.contains(&p));
        if generic {
            svc.remove(marker);
            changed = true;
        }
    }
    for (from, to) in SERVICE_RENAMES {
        if *from == "volumes" {
            changed |= rename_with(svc, from, to, volumes)?;
        } else {
            changed |= rename(svc, from, to)?;
        }
    }
    for from in ["command", "args"] {
        changed |= rename_with(svc, from, "cmd", shell_argv)?;
    }
    for from in HEALTH_CHECK {
        changed |= rename_with(svc, from, "ready", health_check)?;
    }
    changed |= rewrite_ports(svc);
    Ok(changed)
}

/// `[{ host_path, container_path, read_only }]` -> `["host:container[:ro|rw]"]` (as the
/// loader reads them: only an explicit `read_only = false` asks for `:rw`).
fn volumes(item: Item) -> Item {
    let mut out = Vec::new();
    let entries: Vec<Item> = match &item {
        Item::ArrayOfTables(a) => a.iter().map(|t| Item::Table(t.clone())).collect(),
        Item::Value(Value::Array(a)) => a.iter().map(|v| Item::Value(v.clone())).collect(),
        _ => return item,
    };
    for e in entries {
        if let Some(s) = e.as_str() {
            out.push(s.to_string());
            continue;
        }
        let Some(t) = e.as_table_like() else {
            return item;
        };
        let get = |k: &str| t.get(k).and_then(Item::as_str).map(str::to_string);
        let (Some(h), Some(c)) = (get("host_path"), get("container_path")) else {
            return item;
        };
        let mode = match t.get("read_only").and_then(Item::as_bool) {
            Some(true) => ":ro",
            Some(false) => ":rw",
            None => "",
        };
        out.push(format!("{h}:{c}{mode}"));
    }
    Item::Value(strings(&out))
}

/// Upstream health check (seconds as integers, `retries`, Docker's `CMD` prefixes) ->
/// `ready = { cmd, interval = "Ns", timeout = "Ns" }`, as the loader reads it.
fn health_check(item: Item) -> Item {
    let Some(t) = item.as_table_like() else {
        return item;
    };
    let mut out = InlineTable::new();
    let cmd = t.get("cmd").or_else(|| t.get("test"));
    if let Some(cmd) = cmd {
        let argv: Option<Vec<String>> = match cmd {
            c if c.as_str().is_some() => Some(vec![
                "sh".into(),
                "-c".into(),
                c.as_str().unwrap_or("").to_string(),
            ]),
            c => c.as_array().and_then(|a| {
                let v: Option<Vec<String>> =
                    a.iter().map(|e| e.as_str().map(str::to_string)).collect();
                match v.as_deref() {
                    Some([first, rest @ ..]) if first == "CMD" => Some(rest.to_vec()),
                    Some([first, script]) if first == "CMD-SHELL" => {
                        Some(vec!["sh".into(), "-c".into(), script.clone()])
                    }
                    other => other.map(<[String]>::to_vec),
                }
            }),
        };
        match argv {
            Some(a) => {
                out.insert("cmd", strings(&a));
            }
            None => return item,
        }
    }
    let secs = |k: &str| {
        t.get(k)
            .and_then(|v| v.as_integer().or_else(|| v.as_float().map(|f| f as i64)))
    };
    let (interval, timeout, retries) = (secs("interval"), secs("timeout"), secs("retries"));
    match (interval, t.get("interval").and_then(Item::as_str)) {
        (Some(i), _) => {
            out.insert("interval", Value::from(format!("{i}s")));
        }
        (None, Some(s)) => {
            out.insert("interval", Value::from(s));
        }
        _ => {}
    }
    let overall = match (timeout, interval, retries) {
        (t, Some(i), Some(n)) => Some(t.unwrap_or(0).max(i * n)),
        (t, _, _) => t,
    };
    match (overall, t.get("timeout").and_then(Item::as_str)) {
        (Some(total), _) => {
            out.insert("timeout", Value::from(format!("{total}s")));
        }
        (None, Some(s)) => {
            out.insert("timeout", Value::from(s));
        }
        _ => {}
    }
    Item::Value(Value::InlineTable(out))
}

/// Upstream step keys -> current ones. `command` depends on its type (string -> `sh`).
fn rewrite_step(step: &mut Table) -> Result<(), FmtError> {
    let is_string = step.get("command").and_then(Item::as_str).is_some();
    rename(step, "command", if is_string { "sh" } else { "cmd" })?;
    for (from, to) in STEP_RENAMES {
        rename(step, from, to)?;
    }
    if let Some(retry) = step.remove("retry_on_failure") {
        if retry.as_bool() == Some(true) && !step.contains_key("retries") {
            let n: i64 = DEFAULT_STEP_RETRIES.parse().expect("a literal integer");
            step.insert("retries", Item::Value(Value::from(n)));
        }
    }
    numeric_timeout(step, "timeout_ms", "ms")?;
    numeric_timeout(step, "timeout", "s")?;
    Ok(())
}

/// `timeout_ms = 1500` -> `timeout = "1500ms"`; a bare number `timeout = 30` -> `"30s"`.
fn numeric_timeout(t: &mut Table, from: &str, unit: &str) -> Result<bool, FmtError> {
    let n = t
        .get(from)
        .and_then(|v| v.as_integer().or_else(|| v.as_float().map(|f| f as i64)));
    let Some(n) = n else {
        return Ok(false);
    };
    if from != "timeout" && t.contains_key("timeout") {
        return Err(FmtError::Dialect(format!(
            "both `{from}` and `timeout` are set; remove one"
        )));
    }
    let (old, _) = t.remove_entry(from).expect("presence checked above");
    let mut key = Key::new("timeout");
    *key.leaf_decor_mut() = old.leaf_decor().clone();
    t.insert_formatted(&key, Item::Value(Value::from(format!("{n}{unit}"))));
    Ok(true)
}

fn rewrite_steps(root: &mut Table) -> Result<bool, FmtError> {
    let Some(Item::ArrayOfTables(steps)) = root.remove("steps") else {
        return Ok(false);
    };
    let name = root
        .get("meta")
        .and_then(|m| m.get("name"))
        .and_then(Item::as_str)
        .unwrap_or(FALLBACK_SCENARIO)
        .to_string();
    let mut scenario = Table::new();
    scenario.insert("name", Item::Value(Value::from(name)));
    scenario.insert("steps", Item::ArrayOfTables(steps));
    match root.get_mut("scenario") {
        None => {
            let mut arr = ArrayOfTables::new();
            arr.push(scenario);
            root.insert("scenario", Item::ArrayOfTables(arr));
        }
        Some(Item::ArrayOfTables(arr)) => arr.push(scenario),
        Some(_) => {
            return Err(FmtError::Dialect(
                "`scenario` is not an array of tables; cannot add the `[[steps]]` scenario".into(),
            ))
        }
    }
    Ok(true)
}

/// Scenario keys of an upstream `run` scenario that belong to the step `run` becomes.
const RUN_STEP_KEYS: &[&str] = &[
    "expected_output_regex",
    "expected_exit_code",
    "stdout_regex",
    "stdout_contains",
    "exit_code",
];

fn rewrite_scenarios(root: &mut Table) -> Result<bool, FmtError> {
    let Some(Item::ArrayOfTables(scenarios)) = root.get_mut("scenario") else {
        return Ok(false);
    };
    let mut changed = false;
    for scenario in scenarios.iter_mut() {
        changed |= numeric_timeout(scenario, "timeout_ms", "ms")?;
        if let Some((old, run)) = scenario.remove_entry("run") {
            changed = true;
            let as_key = if run.as_str().is_some() { "sh" } else { "cmd" };
            let mut key = Key::new(as_key);
            *key.leaf_decor_mut() = old.leaf_decor().clone();
            let mut step = Table::new();
            step.insert("name", Item::Value(Value::from("run")));
            step.insert_formatted(&key, run);
            for k in RUN_STEP_KEYS {
                if let Some(v) = scenario.remove(k) {
                    step.insert(k, v);
                }
            }
            match scenario.get_mut("steps") {
                Some(Item::ArrayOfTables(steps)) => {
                    // Upstream runs `run` before anything else in the scenario.
                    let rest: Vec<Table> = std::mem::take(steps).into_iter().collect();
                    steps.push(step);
                    for t in rest {
                        steps.push(t);
                    }
                }
                None => {
                    let mut steps = ArrayOfTables::new();
                    steps.push(step);
                    scenario.insert("steps", Item::ArrayOfTables(steps));
                }
                Some(_) => {
                    return Err(FmtError::Dialect(
                        "scenario has both `run` and a `steps` that is not an array of tables"
                            .into(),
                    ))
                }
            }
        }
        if let Some(Item::ArrayOfTables(steps)) = scenario.get_mut("steps") {
            for step in steps.iter_mut() {
                let before = step.to_string();
                rewrite_step(step)?;
                changed |= step.to_string() != before;
            }
        }
    }
    Ok(changed)
}

/// `[limits] cpu_millicores / memory_mb` -> `cpus` / `memory` of every service without them.
fn rewrite_limits(root: &mut Table) -> Result<bool, FmtError> {
    let Some(limits) = root.get("limits").and_then(Item::as_table_like) else {
        return Ok(false);
    };
    let num = |k: &str| {
        limits
            .get(k)
            .and_then(|v| v.as_integer().map(|i| i as f64).or_else(|| v.as_float()))
    };
    let (cpu, mem) = (num("cpu_millicores"), num("memory_mb"));
    let unknown = limits
        .iter()
        .any(|(k, _)| k != "cpu_millicores" && k != "memory_mb");
    if unknown {
        return Err(FmtError::Dialect(
            "`[limits]` holds keys other than `cpu_millicores` and `memory_mb`".into(),
        ));
    }
    root.remove("limits");
    if let Some(all) = root.get_mut("service").and_then(Item::as_table_mut) {
        for (_, item) in all.iter_mut() {
            let Some(svc) = item.as_table_mut() else {
                continue;
            };
            if let Some(m) = mem {
                if !svc.contains_key("memory") {
                    svc.insert("memory", Item::Value(Value::from(format!("{m}m"))));
                }
            }
            if let Some(c) = cpu {
                if !svc.contains_key("cpus") {
                    svc.insert("cpus", Item::Value(Value::from(c / 1000.0)));
                }
            }
        }
    }
    Ok(true)
}
