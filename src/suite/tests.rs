//! Pipeline tests: every bad input of issue 2 with its exact diagnostic, both dialects,
//! templates with the macro library, variable precedence, caching and suite checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const FIXTURES: &str = "tests/fixtures/spec";

fn loader() -> Loader {
    Loader::new(LoadOptions::default())
}

/// All diagnostics of a fixture that must fail, rendered as the user sees them.
fn errors_of(name: &str) -> String {
    let path = Path::new(FIXTURES).join(name);
    let diags = loader().load(&path).expect_err("fixture is invalid");
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p
}

#[test]
fn malformed_toml() {
    assert_eq!(
        errors_of("malformed.clnrm.toml"),
        "error: invalid TOML: string values must be quoted, expected literal string\n  --> tests/fixtures/spec/malformed.clnrm.toml:3:10\n   |\n 3 | timeout =\n   |          ^"
    );
}

#[test]
fn wrong_type() {
    assert_eq!(
        errors_of("wrong_type.clnrm.toml"),
        "error: `retries` in `[meta]` must be an integer, found string\n  --> tests/fixtures/spec/wrong_type.clnrm.toml:3:11\n   |\n 3 | retries = \"three\"\n   |           ^^^^^^^"
    );
}

#[test]
fn unknown_key_with_near_miss() {
    assert_eq!(
        errors_of("unknown_key.clnrm.toml"),
        "error: unknown key `imagee` in `[service.db]`\n  --> tests/fixtures/spec/unknown_key.clnrm.toml:5:1\n   |\n 5 | imagee = \"postgres\"\n   | ^^^^^^\n   = hint: did you mean `image`?"
    );
}

#[test]
fn missing_required_field() {
    assert_eq!(
        errors_of("missing_field.clnrm.toml"),
        "error: missing required key `name` in `[meta]`\n  --> tests/fixtures/spec/missing_field.clnrm.toml:1:1\n   |\n 1 | [meta]\n   | ^^^^^^\n   = hint: add `name = \"my-test\"`"
    );
}

#[test]
fn tera_syntax_error() {
    assert_eq!(
        errors_of("tera_syntax.clnrm.toml.tera"),
        "error: template syntax error: expected a value that can be negated\n  --> tests/fixtures/spec/tera_syntax.clnrm.toml.tera:3:7\n   |\n 3 | {% if %}\n   |       ^"
    );
}

#[test]
fn undefined_template_variable() {
    assert_eq!(
        errors_of("undefined_var.clnrm.toml.tera"),
        "error: undefined template variable `imagee`\n  --> tests/fixtures/spec/undefined_var.clnrm.toml.tera:5:13\n   |\n 5 | image = \"{{ imagee }}\"\n   |             ^^^^^^\n   = hint: define it in `[vars]`, set `CLNRM_VAR_IMAGEE` or pass `--var imagee=...`"
    );
}

#[test]
fn step_naming_a_missing_service() {
    assert_eq!(
        errors_of("missing_service.clnrm.toml"),
        "error: step `step 1` names service `ap`, which is not declared\n   --> tests/fixtures/spec/missing_service.clnrm.toml:10:11\n    |\n 10 | service = \"ap\"\n    |           ^^^^\n    = hint: did you mean `app`?"
    );
}

#[test]
fn invalid_regex() {
    assert_eq!(
        errors_of("bad_regex.clnrm.toml"),
        "error: invalid regex in `stdout_regex`: unclosed group\n   --> tests/fixtures/spec/bad_regex.clnrm.toml:11:16\n    |\n 11 | stdout_regex = \"hi(\"\n    |                ^^^^^\n    = hint: regex syntax: https://docs.rs/regex/latest/regex/#syntax"
    );
}

#[test]
fn non_utf8_file() {
    assert_eq!(
        errors_of("non_utf8.clnrm.toml"),
        "error: test file is not valid UTF-8 (byte 0xE9 at offset 18)\n  --> tests/fixtures/spec/non_utf8.clnrm.toml:2:12\n   |\n 2 | name = \"caf\u{FFFD}\"\n   |            ^\n   = hint: save the file as UTF-8"
    );
}

#[test]
fn empty_file() {
    assert_eq!(
        errors_of("empty.clnrm.toml"),
        "error: empty test file\n  --> tests/fixtures/spec/empty.clnrm.toml\n   = hint: a test needs `[meta]` with `name` and at least one `[[scenario]]`"
    );
}

#[test]
fn duplicate_service_id_is_one_clear_error() {
    assert_eq!(
        errors_of("duplicate_service.clnrm.toml"),
        "error: duplicate service id `db`: `[service.db]` is declared twice\n  --> tests/fixtures/spec/duplicate_service.clnrm.toml:7:10\n   |\n 7 | [service.db]\n   |          ^^\n   = hint: service ids must be unique within a test: rename one or merge the two tables"
    );
}

#[test]
fn scenario_without_steps() {
    assert_eq!(
        errors_of("no_steps.clnrm.toml"),
        "error: scenario `empty` has no steps\n  --> tests/fixtures/spec/no_steps.clnrm.toml:7:1\n   |\n 7 | [[scenario]]\n   | ^^^^^^^^^^^^\n   = hint: add at least one `[[scenario.steps]]` with `cmd = [...]` or `sh = \"...\"`"
    );
}

#[test]
fn test_without_service() {
    assert_eq!(
        errors_of("no_service.clnrm.toml"),
        "error: step `step 1` has no service to run on\n  --> tests/fixtures/spec/no_service.clnrm.toml:6:1\n   |\n 6 | [[scenario.steps]]\n   | ^^^^^^^^^^^^^^^^^^\n   = hint: declare a `[service.<id>]` (`image` may be omitted to run on the host with `--backend local`), or set `default_image = \"<image>\"` in `.clnrm/config.toml` or pass `--default-image <image>` to run such steps in a default service"
    );
}

#[test]
fn all_errors_of_a_file_are_reported_in_source_order() {
    let path = Path::new(FIXTURES).join("many_errors.clnrm.toml");
    let diags = loader().load(&path).expect_err("invalid");
    let got: Vec<(Option<u32>, &str)> =
        diags.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (
                Some(3),
                "invalid duration `soon` for `timeout` in `[meta]`: expected number at 0"
            ),
            (
                Some(12),
                "`exit_code` in `[[scenario.steps]] #1` must be between 0 and 255, found 300"
            ),
            (
                Some(13),
                "unknown key `stdout_contain` in `[[scenario.steps]] #1`"
            ),
        ]
    );
    assert_eq!(
        diags[2].hint.as_deref(),
        Some("did you mean `stdout_contains`?")
    );
}

#[test]
fn ten_megabyte_file_is_rejected_without_reading_it() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().join("huge.clnrm.toml");
    let f = std::fs::File::create(&p).expect("create");
    f.set_len(10 * 1024 * 1024).expect("sparse file");
    let diags = loader().load(&p).expect_err("too big");
    assert_eq!(
        diags[0].to_string(),
        format!(
            "error: test file is 10.0 MiB, above the 4 MiB limit\n  --> {}\n   = hint: split it into several test files, or move large data out of it",
            p.display()
        )
    );
}

const FULL: &str = r#"[meta]
name = "full"
description = "every key"
tags = ["smoke", "db"]
timeout = "2m"
retries = 1

[vars]
greeting = "hi"

[service.db]
image = "clnrm-test/busybox:latest"
cmd = ["sleep", "3600"]
env = { MODE = "test" }
workdir = "/tmp"
memory = "256m"
cpus = 1.5
pids = 64
ready = { cmd = ["true"], interval = "50ms", timeout = "5s" }
reuse = true
mounts = ["./data:/data:ro"]
network_access = false

[service.host]

[[scenario]]
name = "happy"
service = "db"
timeout = "30s"
tags = ["fast"]

[[scenario.steps]]
name = "echo"
cmd = ["echo", "a b"]
stdout_contains = ["a", "b"]
stdout_regex = "a\\s+b"
env = { X = "1" }

[[scenario.steps]]
name = "fail"
service = "host"
sh = "echo oops >&2; exit 3"
exit_code = 3
stderr_equals = "oops\n"
continue_on_failure = true

[perf]
max_ms = 500
tolerance = 0.2

[perf.step."happy/echo"]
max_ms = 100

[determinism]
freeze_clock = "2024-01-01T00:00:00Z"
seed = 7
"#;

#[test]
fn current_dialect_normalises_every_key() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = write(d.path(), "full.clnrm.toml", FULL);
    std::fs::create_dir(d.path().join("data")).expect("mkdir");
    let l = loader().load(&p).expect("valid");
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let s = l.spec;
    assert_eq!(
        (s.name.as_str(), s.dialect, s.retries),
        ("full", Dialect::Current, Some(1))
    );
    assert_eq!(s.tags, vec!["smoke", "db"]);
    assert_eq!(s.timeout, Some(Duration::from_secs(120)));
    let db = &s.services["db"];
    assert_eq!(
        db.limits,
        Limits {
            memory_bytes: Some(256 << 20),
            cpus_milli: Some(1500),
            pids: Some(64)
        }
    );
    assert_eq!(
        db.ready.as_ref().map(|r| (r.interval, r.timeout)),
        Some((Duration::from_millis(50), Duration::from_secs(5)))
    );
    assert_eq!(
        (db.reuse, db.line, db.mounts.clone()),
        (
            true,
            11,
            // Relative sources are resolved against the test file's folder.
            vec![format!(
                "{}:/data:ro",
                std::fs::canonicalize(d.path().join("data"))
                    .expect("exists")
                    .display()
            )]
        )
    );
    assert_eq!(s.services["host"].image, None);
    let sc = &s.scenarios[0];
    assert_eq!(
        (sc.name.as_str(), sc.line, sc.timeout),
        ("happy", 26, Some(Duration::from_secs(30)))
    );
    assert_eq!(sc.steps[0].service, "db");
    assert_eq!(
        sc.steps[0].run,
        Command::Argv(vec!["echo".into(), "a b".into()])
    );
    assert_eq!(sc.steps[0].expect.stdout.contains, vec!["a", "b"]);
    assert_eq!(sc.steps[1].service, "host");
    assert_eq!(
        sc.steps[1].run,
        Command::Shell("echo oops >&2; exit 3".into())
    );
    assert_eq!(sc.steps[1].expect.exit_code, 3);
    assert_eq!(sc.steps[1].expect.stderr.equals.as_deref(), Some("oops\n"));
    assert_eq!(
        s.perf.scenario_max_ms,
        BTreeMap::from([("happy".to_string(), 500.0)])
    );
    assert_eq!(
        s.perf.step_max_ms,
        BTreeMap::from([("happy/echo".to_string(), 100.0)])
    );
    assert_eq!(
        s.determinism,
        Determinism {
            freeze_clock: Some("2024-01-01T00:00:00Z".into()),
            seed: Some(7)
        }
    );
    assert_eq!(s.content_hash.len(), 64);
}

#[test]
fn upstream_dialect_is_normalised_with_warnings() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = write(
        d.path(),
        "up.clnrm.toml",
        r#"[test.metadata]
name = "legacy"
description = "upstream form"

[services.app]
type = "generic_container"
plugin = "alpine"
image = "clnrm-test/busybox:latest"

[[steps]]
name = "hello"
command = ["echo", "hello"]
expected_output_regex = "hel+o"
expected_exit_code = 0

[[scenario]]
name = "shell"
service = "app"
run = "echo hi | grep hi"
"#,
    );
    let l = loader().load(&p).expect("valid");
    let s = &l.spec;
    assert_eq!((s.name.as_str(), s.dialect), ("legacy", Dialect::Upstream));
    assert_eq!(s.scenarios.len(), 2);
    // `[[steps]]` becomes the last scenario, where `clnrm fmt` puts it.
    assert_eq!(s.scenarios[1].name, "legacy");
    assert_eq!(
        s.scenarios[1].steps[0].run,
        Command::Argv(vec!["echo".into(), "hello".into()])
    );
    assert_eq!(s.scenarios[1].steps[0].expect.stdout.regex, vec!["hel+o"]);
    assert_eq!(s.scenarios[1].steps[0].service, "app");
    assert_eq!(
        s.scenarios[0].steps[0].run,
        Command::Shell("echo hi | grep hi".into())
    );
    let warned: Vec<&str> = l.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        warned,
        vec![
            "`[test.metadata]` is the upstream form; write `[meta]`",
            "`[services.<id>]` is the upstream form; write `[service.<id>]`",
            "`type = \"generic_container\"` is the upstream form; write nothing: every service is a container",
            "`plugin = \"alpine\"` (upstream) is not evaluated by clnrm: it is accepted and ignored",
            "`[[steps]]` is the upstream form; write `[[scenario]]` with `[[scenario.steps]]`",
            "`command = [...]` is the upstream form; write `cmd = [...]`",
            "`expected_output_regex` is the upstream form; write `stdout_regex`",
            "`expected_exit_code` is the upstream form; write `exit_code`",
            "`run` is the upstream form; write a first `[[scenario.steps]]` with `sh = \"...\"`",
        ]
    );
    assert!(l.warnings.iter().all(|w| w.severity == Severity::Warning
        && (w.hint.as_deref() == Some("`clnrm fmt` rewrites it")
            || w.message.contains("not evaluated"))));
    assert_eq!(l.warnings[0].to_string(), format!("warning: `[test.metadata]` is the upstream form; write `[meta]`\n  --> {}:1:1\n   |\n 1 | [test.metadata]\n   | ^^^^^^^^^^^^^^^\n   = hint: `clnrm fmt` rewrites it", p.display()));
}

#[test]
fn upstream_tables_without_a_meaning_are_accepted_with_a_located_warning() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = write(d.path(), "up.clnrm.toml", "[test.metadata]\nname = \"x\"\n\n[services.a]\nimage = \"i\"\n\n[[steps]]\nname = \"a\"\ncommand = \"true\"\n\n[otel]\nexporter = \"stdout\"\n\n[[expect.span]]\nname = \"clnrm.run\"\n");
    let l = loader().load(&p).expect("valid");
    let otel = l
        .warnings
        .iter()
        .find(|w| w.message.contains("[otel]"))
        .expect("warned");
    assert_eq!(
        otel.message,
        "`[otel]` (upstream) is not evaluated by clnrm: it is accepted and ignored"
    );
    assert_eq!((otel.line, otel.column), (Some(11), Some(2)));
    // `[expect.*]` has a meaning: it is read as telemetry expectations, without a warning.
    assert!(!l.warnings.iter().any(|w| w.message.contains("[expect]")));
    assert_eq!(l.spec.expect.spans.len(), 1);
    assert_eq!(l.spec.expect.spans[0].name.0, "clnrm.run");
}

#[test]
fn template_with_macros_vars_and_functions_renders_and_validates() {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(d.path().join(".clnrm")).expect("project root marker");
    write(
        d.path(),
        "_common.tera",
        "{% macro greet(who) %}hello {{ who }}{% endmacro greet %}",
    );
    let sub = d.path().join("suite");
    std::fs::create_dir(&sub).expect("mkdir");
    let p = write(
        &sub,
        "t.clnrm.toml.tera",
        r#"{% import "_macros.toml.tera" as m %}{% import "_common.tera" as c %}
[vars]
image = "clnrm-test/busybox:latest"
count = 2
label = "x"

[determinism]
freeze_clock = "2030-05-06T07:08:09Z"

{{ m::meta(name="tpl-" ~ label, description="made at " ~ now_rfc3339()) }}
{{ m::service(id="app", image=vars.image, ready="true") }}
{{ m::scenario(name="loop") }}
{% for i in range(end=count) %}
{{ m::step(name="s" ~ i, cmd=["echo", c::greet(who=fake_name(seed=i))]) }}
{% endfor %}
{{ m::scenario(name="shell") }}
{{ m::step(name="sh", cmd='echo "quoted" \ done', stdout_contains="quoted", exit_code=0) }}
{{ m::budget(scenario="loop", max_ms=250) }}
"#,
    );
    let mut cli = BTreeMap::new();
    cli.insert("label".to_string(), "cli".to_string());
    let mut env = BTreeMap::new();
    env.insert("COUNT".to_string(), "3".to_string());
    env.insert("LABEL".to_string(), "env".to_string());
    let l = Loader::new(LoadOptions {
        cli_vars: cli,
        env_vars: env,
        ..Default::default()
    });
    let r = l.render(&p).expect("renders");
    let map: Vec<(String, String, VarSource)> = r
        .vars
        .iter()
        .map(|v| (v.name.clone(), v.value.clone(), v.source.clone()))
        .collect();
    assert_eq!(
        map,
        vec![
            (
                "count".into(),
                "3".into(),
                VarSource::Env("CLNRM_VAR_COUNT".into())
            ),
            (
                "image".into(),
                "clnrm-test/busybox:latest".into(),
                VarSource::File
            ),
            ("label".into(), "cli".into(), VarSource::Cli),
        ]
    );
    let loaded = l.load(&p).expect("valid");
    let s = loaded.spec;
    assert_eq!(s.name, "tpl-cli");
    assert_eq!(
        s.description.as_deref(),
        Some("made at 2030-05-06T07:08:09Z")
    );
    assert_eq!(s.scenarios[0].steps.len(), 3, "count from env is a number");
    assert_eq!(
        s.scenarios[1].steps[0].run,
        Command::Shell("echo \"quoted\" \\ done".into())
    );
    assert_eq!(
        s.services["app"].ready.as_ref().map(|r| r.cmd.clone()),
        Some(vec!["sh".into(), "-c".into(), "true".into()])
    );
    assert_eq!(s.perf.scenario_max_ms.get("loop"), Some(&250.0));
    match &s.scenarios[0].steps[0].run {
        Command::Argv(a) => assert!(a[1].starts_with("hello "), "{a:?}"),
        other => panic!("argv expected, got {other:?}"),
    }
    let common = std::path::absolute(d.path().join("_common.tera")).expect("abs");
    assert_eq!(loaded.includes, vec![common]);
}

#[test]
fn every_embedded_macro_emits_valid_toml() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = write(
        d.path(),
        "m.clnrm.toml.tera",
        r#"{% import "_macros.toml.tera" as m %}
{{ m::meta(name="macros", description="all of them", timeout="1m") }}
{{ m::service(id="a", image="img", cmd=["sleep", "9"], ready="test -e /tmp") }}
{{ m::service(id="h") }}
{{ m::scenario(name="s", service="a", description="d") }}
{{ m::step(name="argv", cmd=["echo", "x"], stdout_contains="x", stdout_regex="^x$") }}
{{ m::step(name="shell", cmd="exit 4", service="h", exit_code=4) }}
{{ m::budget(scenario="s", max_ms=10) }}
"#,
    );
    let s = loader().load(&p).expect("macros are schema-valid").spec;
    assert_eq!(s.timeout, Some(Duration::from_secs(60)));
    assert_eq!(s.services["a"].cmd, Some(vec!["sleep".into(), "9".into()]));
    assert_eq!(s.scenarios[0].steps[1].expect.exit_code, 4);
    assert_eq!(s.scenarios[0].steps[1].service, "h");
    assert_eq!(s.scenarios[0].steps[0].expect.stdout.regex, vec!["^x$"]);
}

#[test]
fn cache_hits_on_unchanged_content_and_misses_on_changes() {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(d.path().join(".git")).expect("root marker");
    write(d.path(), "_inc.tera", "{% macro n() %}one{% endmacro n %}");
    let text = "{% import \"_inc.tera\" as i %}[meta]\nname = \"{{ i::n() }}\"\n[service.a]\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nsh = \"true\"\n";
    let p = write(d.path(), "c.clnrm.toml.tera", text);
    let l = loader();
    let first = l.load(&p).expect("valid");
    assert_eq!(first.spec.name, "one");
    assert_eq!(l.load(&p).expect("valid"), first);
    assert_eq!(l.cached_files(), 1);
    assert!(std::sync::Arc::ptr_eq(
        &l.load_shared(&p),
        &l.load_shared(&p)
    ));
    // A change in an included template invalidates the file that includes it.
    write(d.path(), "_inc.tera", "{% macro n() %}two{% endmacro n %}");
    assert_eq!(l.load(&p).expect("valid").spec.name, "two");
    l.retain(&[]);
    assert_eq!(l.cached_files(), 0);
}

#[test]
fn fixing_a_broken_include_is_seen_without_touching_the_test_file() {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(d.path().join(".git")).expect("root marker");
    write(d.path(), "_inc.tera", "{% macro n() %}one{% endmacro %"); // broken
    let text = "{% import \"_inc.tera\" as i %}[meta]\nname = \"{{ i::n() }}\"\n[service.a]\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nsh = \"true\"\n";
    let p = write(d.path(), "c.clnrm.toml.tera", text);
    let l = loader();
    assert!(l.load(&p).is_err());
    // A failed render does not know its includes, so it must not be cached by the test
    // file's bytes alone: the fixed include is picked up.
    write(d.path(), "_inc.tera", "{% macro n() %}one{% endmacro n %}");
    assert_eq!(l.load(&p).expect("valid after the fix").spec.name, "one");
}

#[test]
fn suite_is_sorted_and_names_are_unique_across_files() {
    let d = tempfile::tempdir().expect("tempdir");
    let body = "[meta]\nname = \"same\"\n[service.a]\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nsh = \"true\"\n";
    let b = write(d.path(), "b.clnrm.toml", body);
    let a = write(d.path(), "a.clnrm.toml", body);
    let bad = write(d.path(), "c.clnrm.toml", "");
    let suite = loader().load_suite(&[b.clone(), bad.clone(), a.clone()]);
    assert_eq!(
        suite
            .tests
            .iter()
            .map(|t| t.path.clone())
            .collect::<Vec<_>>(),
        vec![a.clone()]
    );
    assert_eq!(suite.errors.len(), 2);
    assert_eq!(
        suite.errors[0].to_string(),
        format!(
            "error: test name `same` is also used by `{a}`\n  --> {b}:2:8\n   |\n 2 | name = \"same\"\n   |        ^^^^^^\n   = hint: names must be unique in the suite: rename the test in `{a}` or `{b}`",
            a = a.display(),
            b = b.display()
        )
    );
    assert_eq!(suite.errors[1].message, "empty test file");
    assert_eq!(
        suite.includes.keys().cloned().collect::<Vec<_>>(),
        vec![a, b, bad]
    );
    let seq = loader().load_suite_sequential(&[d.path().join("a.clnrm.toml")]);
    assert_eq!(seq.tests.len(), 1);
}

#[test]
fn freeze_clock_option_overrides_the_file_and_is_validated() {
    let opts = LoadOptions {
        freeze_clock: Some("yesterday".into()),
        ..Default::default()
    };
    assert_eq!(
        opts.validate(),
        Err(
            "`--freeze-clock yesterday` is not an RFC 3339 instant (e.g. `2024-01-01T00:00:00Z`)"
                .into()
        )
    );
    let d = tempfile::tempdir().expect("tempdir");
    let p = write(d.path(), "f.clnrm.toml.tera", "[meta]\nname = \"{{ now_rfc3339() }}\"\n[service.a]\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nsh = \"true\"\n[determinism]\nfreeze_clock = \"2000-01-01T00:00:00Z\"\n");
    let l = Loader::new(LoadOptions {
        freeze_clock: Some("2024-02-03T04:05:06Z".into()),
        ..Default::default()
    });
    let s = l.load(&p).expect("valid").spec;
    assert_eq!(s.name, "2024-02-03T04:05:06Z");
    assert_eq!(
        s.determinism.freeze_clock.as_deref(),
        Some("2024-02-03T04:05:06Z")
    );
    assert_eq!(
        loader().load(&p).expect("valid").spec.name,
        "2000-01-01T00:00:00Z"
    );
}

#[test]
fn rendered_toml_errors_point_at_the_rendered_line_and_say_so() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = write(
        d.path(),
        "r.clnrm.toml.tera",
        "[meta]\nname = \"r\"\n{{ \"colour\" }} = 1\n",
    );
    let diags = loader().load(&p).expect_err("invalid");
    let d = diags
        .iter()
        .find(|d| d.line == Some(3))
        .expect("error on line 3");
    assert_eq!(d.message, "unknown key `colour` in `[meta]`");
    assert_eq!(d.source_line.as_deref(), Some("colour = 1"));
    assert_eq!(d.hint, Some(format!("allowed keys: `name`, `description`, `version`, `tags`, `timeout`, `retries`, `skip`; line numbers refer to the rendered TOML: see `clnrm render {}`", p.display())));
}

#[test]
fn perf_trace_drift_is_warn_by_default_fail_when_asked_and_checked() {
    let d = tempfile::tempdir().expect("tempdir");
    let base = "[meta]\nname = \"d\"\n\n[service.h]\n\n[[scenario]]\nname = \"s\"\n\n[[scenario.steps]]\ncmd = [\"true\"]\n";
    let p = write(d.path(), "a.clnrm.toml", base);
    assert_eq!(
        loader().load(&p).expect("valid").spec.perf.trace_drift,
        TraceDrift::Warn
    );
    let p = write(
        d.path(),
        "b.clnrm.toml",
        &format!("{base}\n[perf]\ntrace_drift = \"fail\"\n"),
    );
    assert_eq!(
        loader().load(&p).expect("valid").spec.perf.trace_drift,
        TraceDrift::Fail
    );
    let p = write(
        d.path(),
        "c.clnrm.toml",
        &format!("{base}\n[perf]\ntrace_drift = \"strict\"\n"),
    );
    let err = loader()
        .load(&p)
        .expect_err("invalid")
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        err.contains("`trace_drift` in `[perf]` must be `\"warn\"` or `\"fail\"`")
            && err.contains("c.clnrm.toml:13:15"),
        "{err}"
    );
}
