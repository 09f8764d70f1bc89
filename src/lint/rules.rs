//! The lint rules. Each works on the loaded model; `raw_rendered` gives line numbers of keys the
//! model does not locate, `raw_source` (the unrendered template) is needed by `unused-var`.

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

use super::finding::*;
use crate::fmt::template::{scan_tags, TagKind};
use crate::suite::{Command, StepSpec, TestSpec};

/// `long-shell` limits: beyond either, a script file reads and diffs better.
pub(crate) const LONG_SHELL_MAX_CHARS: usize = 300;
pub(crate) const LONG_SHELL_MAX_LINES: usize = 10;
/// Programs whose purpose is to print something: checking only their exit code rarely tests
/// what the author meant. A heuristic, kept short on purpose to avoid noise.
const PRINTING_PROGRAMS: &[&str] = &[
    "echo",
    "printf",
    "cat",
    "ls",
    "curl",
    "wget",
    "grep",
    "egrep",
    "head",
    "tail",
    "env",
    "printenv",
    "date",
    "jq",
    "wc",
    "sort",
    "uniq",
    "cut",
    "awk",
    "sed",
    "tr",
    "find",
    "ps",
    "df",
    "du",
    "id",
    "whoami",
    "hostname",
    "uname",
    "redis-cli",
    "psql",
    "mysql",
];
/// Values that are placeholders, not secrets, whatever the key is called.
const PLACEHOLDER_SECRETS: &[&str] = &["changeme", "password", "secret", "example", "dummy"];

static SECRET_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(pass(word|wd)?|secret|token|api_?key|private_?key|access_?key|credential)")
        .expect("valid regex")
});
/// Well-known token shapes: AWS access key, GitHub, Slack, Stripe/OpenAI style, PEM keys.
static SECRET_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abprs]-[A-Za-z0-9-]{10,}|sk_(live|test)_[A-Za-z0-9]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY-----)",
    )
    .expect("valid regex")
});
static IDENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"[A-Za-z_][A-Za-z0-9_]*|"[^"]*"|'[^']*'"#).expect("valid regex"));

/// Runs every rule on one loaded test. Findings are sorted by line, then rule id.
/// `raw_source` is the file as written (before Tera); `None` skips `unused-var`.
pub fn lint(spec: &TestSpec, raw_rendered: &str, raw_source: Option<&str>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut push = |rule: &'static str, line: u32, message: String, hint: Option<String>| {
        out.push(Finding {
            rule,
            severity: severity_of(rule),
            path: spec.path.clone(),
            line,
            message,
            hint,
        })
    };
    let tera_name = spec.path.extension().is_some_and(|e| e == "tera");
    if let (false, Some(src)) = (tera_name, raw_source) {
        if let Some(line) = src
            .lines()
            .position(|l| l.contains("{{") || l.contains("{%"))
        {
            push(
                TEMPLATE_BY_CONTENT,
                line as u32 + 1,
                "this file holds Tera syntax and is rendered as a template".into(),
                Some(format!(
                    "rename it to `{}.tera`",
                    spec.path
                        .file_name()
                        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
                )),
            );
        }
    }
    for svc in spec.services.values() {
        if let Some(image) = &svc.image {
            if !image_is_pinned(image) {
                push(
                    IMAGE_LATEST,
                    svc.line,
                    format!(
                        "service `{}` uses image `{image}` without a fixed tag",
                        svc.id
                    ),
                    Some(
                        "pin a version tag or a digest (`name:1.2.3` or `name@sha256:...`)".into(),
                    ),
                );
            }
        }
        // A service with `ports` is a server: steps reach it through the port variables.
        let used = !svc.ports.is_empty()
            || spec.scenarios.iter().any(|sc| {
                sc.service.as_deref() == Some(svc.id.as_str())
                    || sc.steps.iter().any(|st| st.service == svc.id)
            });
        if !used {
            push(
                UNUSED_SERVICE,
                svc.line,
                format!("service `{}` is never used by a step", svc.id),
                Some("remove it, or name it in a step's or scenario's `service`".into()),
            );
        }
        for (key, value) in &svc.env {
            if let Some(why) = secret_reason(key, value, raw_source) {
                let line = line_of_key(raw_rendered, svc.line, key);
                push(
                    SECRET_IN_ENV,
                    line,
                    format!("env `{key}` of service `{}` {why}", svc.id),
                    Some(secret_hint(key)),
                );
            }
        }
    }
    let levels = std::iter::once((&spec.expect, None)).chain(
        spec.scenarios
            .iter()
            .map(|sc| (&sc.expect, Some(sc.name.as_str()))),
    );
    for (e, scenario) in levels {
        for x in &e.spans {
            if matches_own_spans(x) {
                let at = scenario.map_or(String::new(), |s| format!(" of scenario `{s}`"));
                push(
                    SPAN_EXPECT_MATCHES_ANY,
                    x.line,
                    format!(
                        "`[[expect.span]]`{at} with name `{}` is met by clnrm's own spans",
                        x.name.0
                    ),
                    Some("name the span the code under test emits, or add `kind`, `attrs` or `parent`".into()),
                );
            }
        }
    }
    for sc in &spec.scenarios {
        let every_step_bounded =
            !sc.steps.is_empty() && sc.steps.iter().all(|s| s.timeout.is_some());
        if spec.timeout.is_none() && sc.timeout.is_none() && !every_step_bounded {
            push(
                SCENARIO_NO_TIMEOUT,
                sc.line,
                format!(
                    "scenario `{}` has no timeout and neither has the test",
                    sc.name
                ),
                Some("set `timeout` on the scenario or in `[meta]`".into()),
            );
        }
        let mut seen: HashSet<&str> = HashSet::new();
        for st in &sc.steps {
            if !seen.insert(st.name.as_str()) {
                push(
                    DUPLICATE_STEP_NAME,
                    st.line,
                    format!(
                        "step name `{}` appears twice in scenario `{}`",
                        st.name, sc.name
                    ),
                    Some("give each step of a scenario its own `name`".into()),
                );
            }
            if st.expect.stdout.is_empty() && st.expect.stderr.is_empty() && prints_output(&st.run)
            {
                push(
                    STEP_NO_OUTPUT_EXPECTATION,
                    st.line,
                    format!(
                        "step `{}` prints output (`{}`) but only its exit code is checked",
                        st.name,
                        short(&st.run.display(), 60)
                    ),
                    Some("add `stdout_contains`, `stdout_regex` or `stdout_equals`".into()),
                );
            }
            if let Command::Shell(sh) = &st.run {
                let lines = sh.lines().count();
                if sh.chars().count() > LONG_SHELL_MAX_CHARS || lines > LONG_SHELL_MAX_LINES {
                    push(
                        LONG_SHELL,
                        st.line,
                        format!(
                            "step `{}` runs a {}-character, {lines}-line `sh` string",
                            st.name,
                            sh.chars().count()
                        ),
                        Some(format!(
                            "move it into a script (limits: {LONG_SHELL_MAX_CHARS} characters, {LONG_SHELL_MAX_LINES} lines)"
                        )),
                    );
                }
            }
            step_secrets(st, raw_rendered, raw_source, &mut push);
        }
    }
    if let Some(source) = raw_source {
        for (name, line) in unused_vars(raw_rendered, source) {
            push(
                UNUSED_VAR,
                line,
                format!("variable `{name}` is defined in `[vars]` but never used"),
                Some("remove it, or reference it as `{{ vars.NAME }}`".replace("NAME", &name)),
            );
        }
    }
    out.sort_by(|a, b| (a.line, a.rule).cmp(&(b.line, b.rule)));
    out
}

fn step_secrets(
    st: &StepSpec,
    raw_rendered: &str,
    raw_source: Option<&str>,
    push: &mut impl FnMut(&'static str, u32, String, Option<String>),
) {
    for (key, value) in &st.env {
        if let Some(why) = secret_reason(key, value, raw_source) {
            push(
                SECRET_IN_ENV,
                line_of_key(raw_rendered, st.line, key),
                format!("env `{key}` of step `{}` {why}", st.name),
                Some(secret_hint(key)),
            );
        }
    }
}

fn secret_hint(key: &str) -> String {
    format!(
        "use `{key} = \"{{{{ env(name='{key}') }}}}\"` so the value comes from the CI secret store"
    )
}

/// `name`, `name:latest`, `host:5000/name` are floating; `name:1.2`, `name@sha256:..` pinned.
fn image_is_pinned(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => !tag.is_empty() && tag != "latest",
        None => false,
    }
}

fn prints_output(run: &Command) -> bool {
    match run {
        Command::Argv(argv) => match argv.as_slice() {
            [sh, flag, script, ..] if is_shell(sh) && flag == "-c" => script_prints(script),
            [prog, args @ ..] => program_prints(prog, args.iter().map(String::as_str)),
            [] => false,
        },
        Command::Shell(script) => script_prints(script),
    }
}

fn is_shell(prog: &str) -> bool {
    matches!(basename(prog), "sh" | "bash" | "ash" | "dash" | "zsh")
}

fn basename(prog: &str) -> &str {
    prog.rsplit('/').next().unwrap_or(prog)
}

fn program_prints<'a>(prog: &str, mut args: impl Iterator<Item = &'a str>) -> bool {
    PRINTING_PROGRAMS.contains(&basename(prog))
        && !args.any(|a| matches!(a, "-q" | "--quiet" | "--silent" | "-s" | "-o" | "--output"))
}

/// A script prints when the last stage of one of its commands is a printing program whose
/// output is not redirected.
fn script_prints(script: &str) -> bool {
    script
        .split(['\n', ';'])
        .flat_map(|s| s.split("&&"))
        .flat_map(|s| s.split("||"))
        .any(|cmd| {
            let last = cmd.rsplit('|').next().unwrap_or(cmd);
            if last.contains('>') {
                return false;
            }
            let mut words = last.split_whitespace();
            words.next().is_some_and(|p| program_prints(p, words))
        })
}

/// Why an env value looks like a committed secret, or `None`.
fn secret_reason(key: &str, value: &str, raw_source: Option<&str>) -> Option<&'static str> {
    // A value produced by the template (e.g. `{{ env(name=...) }}`) is not literal in the file.
    if let Some(src) = raw_source {
        let templated = src
            .lines()
            .filter(|l| l.contains(key) && l.contains('='))
            .any(|l| l.contains("{{"));
        if templated {
            return None;
        }
    }
    if SECRET_VALUE.is_match(value) {
        return Some("holds a value shaped like a real credential");
    }
    let randomish = value.chars().count() >= 12
        && value.chars().any(|c| c.is_ascii_digit())
        && value.chars().any(|c| c.is_ascii_alphabetic());
    let placeholder = PLACEHOLDER_SECRETS.contains(&value.to_ascii_lowercase().as_str());
    if SECRET_KEY.is_match(key) && randomish && !placeholder {
        return Some("looks like a literal secret");
    }
    None
}

/// First line at or after `from` (1-based) mentioning `key` in an assignment.
fn line_of_key(text: &str, from: u32, key: &str) -> u32 {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1) as usize)
        .find(|(_, l)| l.contains(key) && l.contains('='))
        .map(|(i, _)| i as u32 + 1)
        .unwrap_or(from)
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}...")
    }
}

/// `[vars]` entries (from the rendered file) that no Tera region of the source mentions.
/// Skipped (empty) when the source cannot be scanned, includes or extends another template
/// (vars may be used there), or uses `vars` as a whole (`{% for k in vars %}`).
fn unused_vars(raw_rendered: &str, source: &str) -> Vec<(String, u32)> {
    if !raw_rendered.contains("vars") {
        return Vec::new();
    }
    let Ok(doc) = raw_rendered.parse::<toml_edit::Document<String>>() else {
        return Vec::new();
    };
    let Some(vars) = doc.get("vars").and_then(|v| v.as_table_like()) else {
        return Vec::new();
    };
    let Ok(tags) = scan_tags(source) else {
        return Vec::new();
    };
    let mut used: HashSet<String> = HashSet::new();
    for tag in &tags {
        if tag.kind == TagKind::Comment {
            continue;
        }
        let inner = tag.inner(source);
        if tag.kind == TagKind::Stmt && matches!(tag.keyword(source), "include" | "extends") {
            return Vec::new();
        }
        for m in IDENT.find_iter(inner) {
            let tok = m.as_str().trim_matches(['"', '\'']);
            if tok == "vars" {
                let next = inner[m.end()..].trim_start().chars().next();
                if !matches!(next, Some('.') | Some('[')) {
                    return Vec::new();
                }
            }
            used.insert(tok.to_string());
        }
    }
    let rendered_lines = line_starts(raw_rendered);
    let mut out = BTreeMap::new();
    for (name, _) in vars.iter() {
        if used.contains(name) {
            continue;
        }
        let line = source_var_line(source, name).unwrap_or_else(|| {
            vars.key(name)
                .and_then(|k| k.span())
                .map(|s| rendered_lines.partition_point(|&st| st <= s.start) as u32)
                .unwrap_or(0)
        });
        out.insert(name.to_string(), line);
    }
    out.into_iter().collect()
}

fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Line of `name = ...` inside the source's `[vars]` table.
fn source_var_line(source: &str, name: &str) -> Option<u32> {
    let mut in_vars = false;
    for (i, line) in source.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_vars = t == "[vars]";
            continue;
        }
        let key = t
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(['"', '\'']);
        if in_vars && key == name {
            return Some(i as u32 + 1);
        }
    }
    None
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;

/// A span expectation with only a name that matches `clnrm.scenario` or a `clnrm.step:` span:
/// clnrm makes those itself, so it holds whatever the code under test does.
fn matches_own_spans(x: &crate::telemetry::expect::spec::SpanExpect) -> bool {
    use crate::telemetry::handle::{SCENARIO_SPAN, STEP_SPAN_PREFIX};
    let only_name = x.kind.is_none()
        && x.attrs_all.is_empty()
        && x.attrs_any.is_empty()
        && x.events_any.is_empty()
        && x.events_all.is_empty()
        && x.duration_min_ms.is_none()
        && x.duration_max_ms.is_none()
        && x.parent.is_none();
    only_name
        && (x.name.matches(SCENARIO_SPAN)
            || x.name.0.starts_with(STEP_SPAN_PREFIX)
            || x.name.matches(&format!("{STEP_SPAN_PREFIX}x")))
}
