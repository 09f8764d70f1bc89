//! Rewrites the upstream clnrm dialect into the current schema, in place, keeping comments.
//!
//! `[test.metadata]` -> `[meta]`; `[services.x]` -> `[service.x]` (generic-container
//! `type`/`plugin` dropped, `command` -> `cmd`); top-level `[[steps]]` -> one `[[scenario]]`
//! named after the test; `[[scenario]] run = "..."` -> a first step with `sh`.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Key, Table, Value};

use super::format::FmtError;

/// Scenario name used for upstream `[[steps]]` when the test has no name either.
const FALLBACK_SCENARIO: &str = "main";
/// Upstream marker for "a plain container": the only plugin the current schema expresses.
const GENERIC_PLUGINS: &[&str] = &["generic_container", "generic"];

/// Applies every rewrite; returns whether anything changed.
pub(crate) fn rewrite(doc: &mut DocumentMut) -> Result<bool, FmtError> {
    let root = doc.as_table_mut();
    let mut changed = false;
    changed |= rewrite_metadata(root)?;
    changed |= rewrite_services(root)?;
    changed |= rewrite_steps(root)?;
    changed |= rewrite_scenario_run(root)?;
    Ok(changed)
}

/// Renames `from` to `to` inside `table`, keeping the key's comments.
fn rename(table: &mut Table, from: &str, to: &str) -> Result<bool, FmtError> {
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
    table.insert_formatted(&key, item);
    Ok(true)
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
    let Some(Item::Table(services)) = root.remove("services") else {
        return Ok(false);
    };
    if !root.contains_key("service") {
        let mut t = Table::new();
        t.set_implicit(true);
        root.insert("service", Item::Table(t));
    }
    let target = root
        .get_mut("service")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| FmtError::Dialect("`service` is not a table".into()))?;
    for (key, mut item) in services.into_iter() {
        if target.contains_key(&key) {
            return Err(FmtError::Dialect(format!(
                "service `{key}` is defined in both `[services]` and `[service]`"
            )));
        }
        if let Some(svc) = item.as_table_mut() {
            for marker in ["type", "plugin"] {
                let generic = svc
                    .get(marker)
                    .and_then(Item::as_str)
                    .is_some_and(|p| GENERIC_PLUGINS.contains(&p));
                if generic {
                    svc.remove(marker);
                }
            }
            rename(svc, "command", "cmd")?;
        }
        target.insert(&key, item);
    }
    Ok(true)
}

/// Upstream step keys -> current ones. `command` depends on its type (string -> `sh`).
fn rewrite_step(step: &mut Table) -> Result<(), FmtError> {
    let is_string = step.get("command").and_then(Item::as_str).is_some();
    rename(step, "command", if is_string { "sh" } else { "cmd" })?;
    rename(step, "expected_output_regex", "stdout_regex")?;
    rename(step, "expected_exit_code", "exit_code")?;
    Ok(())
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
    let mut new_steps = ArrayOfTables::new();
    for mut step in steps.into_iter() {
        rewrite_step(&mut step)?;
        new_steps.push(step);
    }
    let mut scenario = Table::new();
    scenario.insert("name", Item::Value(Value::from(name)));
    scenario.insert("steps", Item::ArrayOfTables(new_steps));
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

fn rewrite_scenario_run(root: &mut Table) -> Result<bool, FmtError> {
    let Some(Item::ArrayOfTables(scenarios)) = root.get_mut("scenario") else {
        return Ok(false);
    };
    let mut changed = false;
    for scenario in scenarios.iter_mut() {
        let Some((old, run)) = scenario.remove_entry("run") else {
            continue;
        };
        let as_key = if run.as_str().is_some() { "sh" } else { "cmd" };
        let mut key = Key::new(as_key);
        *key.leaf_decor_mut() = old.leaf_decor().clone();
        let mut step = Table::new();
        step.insert_formatted(&key, run);
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
                    "scenario has both `run` and a `steps` that is not an array of tables".into(),
                ))
            }
        }
        changed = true;
    }
    Ok(changed)
}
