//! Each rule: one test that triggers it and one that does not (specs built directly, since
//! the loader lives in another module).

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::suite::{Determinism, Dialect, Expect, PerfSpec, ScenarioSpec, ServiceSpec, StepSpec};

fn service(id: &str, image: &str, line: u32) -> ServiceSpec {
    ServiceSpec {
        line,
        ..ServiceSpec::named(id).with_image(image)
    }
}

fn step(name: &str, run: Command, line: u32) -> StepSpec {
    StepSpec {
        run,
        line,
        ..StepSpec::argv(name, "app", &[])
    }
}

fn argv(a: &[&str]) -> Command {
    Command::Argv(a.iter().map(|s| s.to_string()).collect())
}

/// A clean test: pinned image used by a step with an expectation, a test timeout.
fn clean() -> TestSpec {
    let mut services = BTreeMap::new();
    services.insert("app".into(), service("app", "clnrm-test/busybox:1.36", 5));
    let mut s = step("hello", argv(&["echo", "hi"]), 12);
    s.expect.stdout.contains = vec!["hi".into()];
    TestSpec {
        skip: None,
        report: Default::default(),
        path: "t.clnrm.toml.tera".into(),
        name: "t".into(),
        description: None,
        tags: vec![],
        timeout: Some(Duration::from_secs(30)),
        retries: None,
        services,
        scenarios: vec![ScenarioSpec {
            skip: None,
            name: "main".into(),
            description: None,
            service: Some("app".into()),
            timeout: None,
            retries: None,
            tags: vec![],
            steps: vec![s],
            line: 9,
            expect: Default::default(),
        }],
        perf: PerfSpec::default(),
        determinism: Determinism::default(),
        expect: Default::default(),
        dialect: Dialect::Current,
        content_hash: String::new(),
    }
}

fn ids(f: &[Finding]) -> Vec<(&str, u32)> {
    f.iter().map(|f| (f.rule, f.line)).collect()
}

#[test]
fn clean_spec_has_no_findings() {
    assert_eq!(ids(&lint(&clean(), "", Some(""))), vec![]);
}

#[test]
fn image_latest_triggers_on_latest_and_untagged() {
    for image in ["alpine", "alpine:latest", "registry:5000/team/app"] {
        let mut spec = clean();
        spec.services.get_mut("app").expect("app").image = Some(image.into());
        assert_eq!(
            ids(&lint(&spec, "", None)),
            vec![("image-latest", 5)],
            "{image}"
        );
    }
}

#[test]
fn image_latest_accepts_tags_digests_and_host_services() {
    for image in [
        Some("registry:5000/app:2.1"),
        Some("alpine@sha256:abcd"),
        None,
    ] {
        let mut spec = clean();
        spec.services.get_mut("app").expect("app").image = image.map(String::from);
        assert_eq!(ids(&lint(&spec, "", None)), vec![], "{image:?}");
    }
}

#[test]
fn step_no_output_expectation_triggers_for_printing_commands() {
    for run in [
        argv(&["echo", "hi"]),
        argv(&["/bin/sh", "-c", "cd /x && cat f | sort"]),
        Command::Shell("echo start; ls /data".into()),
    ] {
        let mut spec = clean();
        spec.scenarios[0].steps[0].expect = Expect::default();
        spec.scenarios[0].steps[0].run = run.clone();
        assert_eq!(
            ids(&lint(&spec, "", None)),
            vec![("step-no-output-expectation", 12)],
            "{run:?}"
        );
    }
}

#[test]
fn step_no_output_expectation_quiet_for_silent_or_checked_steps() {
    for run in [
        argv(&["true"]),
        argv(&["grep", "-q", "x", "f"]),
        Command::Shell("echo hi > /tmp/out && test -s /tmp/out".into()),
    ] {
        let mut spec = clean();
        spec.scenarios[0].steps[0].expect = Expect::default();
        spec.scenarios[0].steps[0].run = run.clone();
        assert_eq!(ids(&lint(&spec, "", None)), vec![], "{run:?}");
    }
    // Printing, but stderr is checked: that counts as an output expectation.
    let mut spec = clean();
    spec.scenarios[0].steps[0].expect = Expect::default();
    spec.scenarios[0].steps[0].expect.stderr.regex = vec!["warn".into()];
    assert_eq!(ids(&lint(&spec, "", None)), vec![]);
}

#[test]
fn scenario_no_timeout_triggers_without_any_bound() {
    let mut spec = clean();
    spec.timeout = None;
    assert_eq!(
        ids(&lint(&spec, "", None)),
        vec![("scenario-no-timeout", 9)]
    );
}

#[test]
fn scenario_no_timeout_quiet_with_scenario_or_step_timeouts() {
    let mut spec = clean();
    spec.timeout = None;
    spec.scenarios[0].timeout = Some(Duration::from_secs(5));
    assert_eq!(ids(&lint(&spec, "", None)), vec![]);
    let mut spec = clean();
    spec.timeout = None;
    spec.scenarios[0].steps[0].timeout = Some(Duration::from_secs(5));
    assert_eq!(ids(&lint(&spec, "", None)), vec![]);
}

#[test]
fn duplicate_step_name_is_an_error_at_the_second_step() {
    let mut spec = clean();
    let mut again = spec.scenarios[0].steps[0].clone();
    again.line = 17;
    spec.scenarios[0].steps.push(again);
    let f = lint(&spec, "", None);
    assert_eq!(ids(&f), vec![("duplicate-step-name", 17)]);
    assert_eq!(f[0].severity, Severity::Error);
}

#[test]
fn same_step_name_in_two_scenarios_is_fine() {
    let mut spec = clean();
    let mut other = spec.scenarios[0].clone();
    other.name = "second".into();
    spec.scenarios.push(other);
    assert_eq!(ids(&lint(&spec, "", None)), vec![]);
}

#[test]
fn unused_service_triggers_and_used_one_does_not() {
    let mut spec = clean();
    spec.services
        .insert("cache".into(), service("cache", "redis:7", 20));
    assert_eq!(ids(&lint(&spec, "", None)), vec![("unused-service", 20)]);
    // Publishing ports counts as used: steps reach it through the port variables.
    spec.services.get_mut("cache").unwrap().ports = vec![6379];
    assert_eq!(ids(&lint(&spec, "", None)), vec![]);
    spec.services.get_mut("cache").unwrap().ports.clear();
    // Used only as a scenario default counts as used.
    spec.scenarios[0].service = Some("cache".into());
    assert_eq!(ids(&lint(&spec, "", None)), vec![]);
}

const RENDERED_VARS: &str =
    "[meta]\nname = \"t\"\n\n[vars]\nimage = \"busybox\"\ngreeting = \"hi\"\n";

#[test]
fn unused_var_triggers_with_source_line() {
    let source = "[meta]\nname = \"t\"\n\n[vars]\nimage = \"busybox\"\ngreeting = \"hi\"\n\n[service.app]\nimage = \"{{ vars.image }}\"\n";
    let f = lint(&clean(), RENDERED_VARS, Some(source));
    assert_eq!(ids(&f), vec![("unused-var", 6)]);
    assert!(f[0].message.contains("`greeting`"), "{}", f[0].message);
}

#[test]
fn unused_var_quiet_when_used_skipped_without_source_or_whole_vars_use() {
    let both = "[vars]\nimage = \"b\"\ngreeting = \"hi\"\n[x]\na = \"{{ vars.image }} {% if greeting %}y{% endif %}\"\n";
    assert_eq!(ids(&lint(&clean(), RENDERED_VARS, Some(both))), vec![]);
    assert_eq!(ids(&lint(&clean(), RENDERED_VARS, None)), vec![]);
    let whole = "[vars]\nimage = \"b\"\n# {{ vars | json_encode() }}\n";
    assert_eq!(ids(&lint(&clean(), RENDERED_VARS, Some(whole))), vec![]);
    let include = "{% include \"common.tera\" %}\n";
    assert_eq!(ids(&lint(&clean(), RENDERED_VARS, Some(include))), vec![]);
}

#[test]
fn secret_in_env_triggers_on_token_shapes_and_random_secret_names() {
    let rendered = "[service.app]\nimage = \"x:1\"\nenv = { API_TOKEN = \"9f8a7d6c5b4e3f2a1b0c\" }\n\n[[scenario]]\n\n[[scenario.steps]]\nname = \"s\"\nenv.GH = \"ghp_abcdefghijklmnopqrstuvwxyz0123456789\"\n";
    let mut spec = clean();
    spec.services.get_mut("app").expect("app").line = 1;
    spec.services
        .get_mut("app")
        .expect("app")
        .env
        .insert("API_TOKEN".into(), "9f8a7d6c5b4e3f2a1b0c".into());
    spec.scenarios[0].steps[0].line = 7;
    spec.scenarios[0].steps[0].env.insert(
        "GH".into(),
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789".into(),
    );
    let f = lint(&spec, rendered, Some(rendered));
    assert_eq!(ids(&f), vec![("secret-in-env", 3), ("secret-in-env", 9)]);
}

#[test]
fn secret_in_env_quiet_for_placeholders_and_templated_values() {
    let mut spec = clean();
    let env = &mut spec.services.get_mut("app").expect("app").env;
    env.insert("POSTGRES_PASSWORD".into(), "postgres".into());
    env.insert("LOG_LEVEL".into(), "debug12345678".into());
    env.insert("API_TOKEN".into(), "9f8a7d6c5b4e3f2a1b0c".into());
    let source = "[service.app]\nenv = { API_TOKEN = \"{{ env(name='API_TOKEN') }}\" }\n";
    assert_eq!(ids(&lint(&spec, "", Some(source))), vec![]);
}

#[test]
fn long_shell_triggers_on_length_or_lines() {
    let long = format!("echo {} > /dev/null", "x".repeat(LONG_SHELL_MAX_CHARS));
    let many = "true\n".repeat(LONG_SHELL_MAX_LINES + 1);
    for sh in [long, many] {
        let mut spec = clean();
        spec.scenarios[0].steps[0].run = Command::Shell(sh);
        assert_eq!(ids(&lint(&spec, "", None)), vec![("long-shell", 12)]);
    }
}

#[test]
fn long_shell_quiet_for_short_scripts_and_argv() {
    let mut spec = clean();
    spec.scenarios[0].steps[0].run = Command::Shell("test -d /tmp && true".into());
    assert_eq!(ids(&lint(&spec, "", None)), vec![]);
    spec.scenarios[0].steps[0].run = argv(&["true", &"x".repeat(1000)]);
    assert_eq!(ids(&lint(&spec, "", None)), vec![]);
}

#[test]
fn template_by_content_suggests_the_tera_name() {
    let mut spec = clean();
    spec.path = "t/x.clnrm.toml".into();
    let src = "[meta]\nname = \"x\"\n# {{ not a comment to Tera }}\n";
    let f = lint(&spec, "", Some(src));
    assert_eq!(ids(&f), vec![("template-by-content", 3)]);
    assert_eq!(
        f[0].hint.as_deref(),
        Some("rename it to `x.clnrm.toml.tera`")
    );
    spec.path = "t/x.clnrm.toml.tera".into();
    assert_eq!(ids(&lint(&spec, "", Some(src))), vec![]);
}
