//! Normalisation of upstream keys, the default service, dependencies, skips, `[report]` and
//! templates by content, each on a file written for the purpose.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p
}

fn load(text: &str, default_image: Option<&str>) -> Result<Loaded, Vec<Diagnostic>> {
    let d = tempfile::tempdir().expect("tempdir");
    let p = write(d.path(), "t.clnrm.toml", text);
    Loader::new(LoadOptions {
        default_image: default_image.map(str::to_string),
        ..Default::default()
    })
    .load(&p)
}

fn messages(d: &[Diagnostic]) -> Vec<&str> {
    d.iter().map(|d| d.message.as_str()).collect()
}

#[test]
fn upstream_volumes_are_read_only_unless_read_only_is_false() {
    let file = |vol: &str| {
        format!(
            "[test.metadata]\nname = \"v\"\n[services.db]\nimage = \"img:1\"\nvolumes = [{vol}]\n[[steps]]\nname = \"a\"\nservice = \"db\"\ncommand = \"true\"\n"
        )
    };
    let l = load(
        &file("{ host_path = \".\", container_path = \"/d\" }"),
        None,
    )
    .expect("valid");
    assert!(
        l.spec.services["db"].mounts[0].ends_with(":/d:ro"),
        "{:?}",
        l.spec.services["db"].mounts
    );
    let e = load(
        &file("{ host_path = \".\", container_path = \"/d\", read_only = false }"),
        None,
    )
    .expect_err("writable without the opt-in");
    assert!(
        messages(&e)[0].starts_with("read-write mount of `.`"),
        "{:?}",
        messages(&e)
    );
}

#[test]
fn v1_form_maps_onto_the_model() {
    let l = load(
        r#"[meta]
name = "v1"
version = "1.0"

[service.app]
plugin = "generic_container"
image = "img:1"
args = ["sleep", "60"]

[[scenario]]
name = "s"
service = "app"
run = "echo hi"
expected_output_regex = "hi"
timeout_ms = 1500

[limits]
cpu_millicores = 500
memory_mb = 64

[report]
json = "out/r.json"
digest = "d.sha"
"#,
        None,
    )
    .expect("valid");
    let s = &l.spec;
    assert_eq!(s.dialect, Dialect::Upstream);
    let app = &s.services["app"];
    assert_eq!(
        app.cmd.as_deref(),
        Some(&["sleep".to_string(), "60".into()][..])
    );
    assert_eq!(app.limits.cpus_milli, Some(500));
    assert_eq!(app.limits.memory_bytes, Some(64 << 20));
    let sc = &s.scenarios[0];
    assert_eq!(sc.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(sc.steps[0].name, "run");
    assert_eq!(sc.steps[0].run, Command::Shell("echo hi".into()));
    assert_eq!(sc.steps[0].expect.stdout.regex, ["hi"]);
    assert_eq!(s.report.json.as_deref(), Some(Path::new("out/r.json")));
    let w = messages(&l.warnings);
    assert!(
        w.contains(
            &"`[report] digest` (upstream) is not evaluated by clnrm: it is accepted and ignored"
        ),
        "{w:?}"
    );
    assert!(
        w.contains(
            &"`[limits]` is the upstream form; write `memory` and `cpus` in each `[service.<id>]`"
        ),
        "{w:?}"
    );
}

#[test]
fn compose_style_service_and_step_keys_are_mapped() {
    let l = load(
        r#"[test.metadata]
name = "c"
tags = ["x"]

[services.db]
image = "img:1"
environment = { A = "1" }
working_dir = "/srv"
health_check = { cmd = "test -e /tmp/ok", interval = 2, retries = 5 }
ports = [5432]
volumes = [{ host_path = ".", container_path = "/data", read_only = true }]

[services.api]
image = "img:1"
depends_on = ["db"]

[[steps]]
name = "a"
service = "api"
command = "true"
description = "d"
timeout = 7
retry_on_failure = true

[[steps]]
name = "b"
service = "api"
command = ["true"]
max_retries = 1
"#,
        None,
    )
    .expect("valid");
    let s = &l.spec;
    assert_eq!(s.tags, ["x"]);
    let db = &s.services["db"];
    assert_eq!(db.env.get("A").map(String::as_str), Some("1"));
    assert_eq!(db.workdir.as_deref(), Some("/srv"));
    // A relative host path resolves against the test file's folder (inside the repository).
    assert_eq!(db.mounts.len(), 1);
    assert!(
        db.mounts[0].starts_with('/') && db.mounts[0].ends_with(":/data:ro"),
        "{:?}",
        db.mounts
    );
    let ready = db.ready.as_ref().expect("health check mapped");
    assert_eq!(ready.cmd, ["sh", "-c", "test -e /tmp/ok"]);
    assert_eq!(ready.interval, Duration::from_secs(2));
    assert_eq!(ready.timeout, Duration::from_secs(10));
    assert_eq!(s.services["api"].depends_on, ["db"]);
    let steps = &s.scenarios[0].steps;
    assert_eq!(steps[0].description.as_deref(), Some("d"));
    assert_eq!(steps[0].timeout, Some(Duration::from_secs(7)));
    assert_eq!((steps[0].retries, steps[1].retries), (3, 1));
    let w = messages(&l.warnings);
    for form in [
        "environment",
        "working_dir",
        "health_check",
        "volumes",
        "retry_on_failure",
        "max_retries",
    ] {
        assert!(
            w.iter()
                .any(|m| m.starts_with(&format!("`{form}` is the upstream form"))),
            "{form}: {w:?}"
        );
    }
    // `ports` has the same spelling here: published, not warned about.
    assert_eq!(db.ports, [5432]);
    assert!(!w.iter().any(|m| m.contains("ports")), "{w:?}");
}

#[test]
fn compose_style_port_strings_map_to_container_ports_with_warnings() {
    let l = load(
        r#"[meta]
name = "p"
version = "1.0"

[service.web]
image = "img:1"
ports = ["8080", "9000/tcp", "0.0.0.0:80:81", 82]

[[scenario]]
name = "s"
service = "web"
run = "true"
"#,
        None,
    )
    .expect("valid");
    assert_eq!(l.spec.services["web"].ports, [8080, 9000, 81, 82]);
    let form: Vec<&Diagnostic> = l
        .warnings
        .iter()
        .filter(|d| {
            d.message
                .starts_with("`ports = [\"...\"]` is the upstream form")
        })
        .collect();
    assert_eq!(form.len(), 1, "{:?}", l.warnings);
    assert_eq!(form[0].line, Some(7));
    let host = l
        .warnings
        .iter()
        .find(|d| {
            d.message
                .contains("host side of `\"0.0.0.0:80:81\"` is not used")
        })
        .expect("dropped host side warned");
    assert!(host.message.contains("127.0.0.1"), "{}", host.message);
}

#[test]
fn bad_ports_are_located_errors() {
    for (ports, line_col, want) in [
        ("[\"53/udp\"]", (6, 10), "only TCP ports are published"),
        (
            "[0]",
            (6, 10),
            "each entry is a container port from 1 to 65535",
        ),
        (
            "[70000]",
            (6, 10),
            "each entry is a container port from 1 to 65535",
        ),
        ("[80, 80]", (6, 14), "port 80 is listed twice"),
        ("8080", (6, 9), "must be an array of container ports"),
        ("[\"web\"]", (6, 10), "each entry is a container port"),
    ] {
        let text = format!(
            "[meta]\nname = \"p\"\n\n[service.web]\nimage = \"img:1\"\nports = {ports}\n\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\ncmd = [\"true\"]\n"
        );
        let e = load(&text, None).expect_err(ports);
        assert_eq!(e.len(), 1, "{ports}: {e:?}");
        assert!(e[0].message.contains(want), "{ports}: {}", e[0].message);
        assert_eq!(
            (e[0].line, e[0].column),
            (Some(line_col.0), Some(line_col.1)),
            "{ports}"
        );
    }
    // Ids that name the same variables.
    let e = load(
        "[meta]\nname = \"p\"\n[service.my-db]\nimage = \"i\"\nports = [1]\n[service.my_db]\nimage = \"i\"\nports = [2]\n[[scenario]]\nname = \"s\"\nservice = \"my-db\"\n[[scenario.steps]]\ncmd = [\"true\"]\n",
        None,
    )
    .expect_err("colliding variable names");
    assert!(
        e[0].message
            .contains("services `my-db` and `my_db` both publish ports as `CLNRM_MY_DB_*`"),
        "{e:?}"
    );
    assert_eq!(e[0].line, Some(6));
}

#[test]
fn an_upstream_key_and_its_current_spelling_together_are_an_error() {
    let e = load(
        "[meta]\nname = \"x\"\n[service.a]\nimage = \"i\"\nenv = {}\nenvironment = {}\n[[scenario]]\nname = \"s\"\nrun = \"true\"\n",
        None,
    )
    .expect_err("invalid");
    assert_eq!(
        messages(&e),
        ["both `environment` (upstream) and `env` are set"]
    );
    assert_eq!(e[0].line, Some(6));
}

#[test]
fn steps_naming_no_service_run_in_the_default_service_when_an_image_is_configured() {
    let text =
        "[meta]\nname = \"x\"\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nsh = \"uname\"\n";
    let e = load(text, None).expect_err("no service, no default image");
    assert!(
        e[0].hint
            .as_deref()
            .unwrap_or("")
            .contains("--default-image"),
        "{e:?}"
    );
    let l = load(text, Some("busybox:1")).expect("valid with a default image");
    let svc = &l.spec.services[DEFAULT_SERVICE];
    assert_eq!(svc.image.as_deref(), Some("busybox:1"));
    assert_eq!(l.spec.scenarios[0].steps[0].service, DEFAULT_SERVICE);
    // Upstream files with several services: a step naming none ran in the default container.
    let up = "[test.metadata]\nname = \"u\"\n[services.a]\nimage = \"i\"\n[services.b]\nimage = \"i\"\n[[steps]]\nname = \"x\"\ncommand = [\"true\"]\n";
    let l = load(up, Some("busybox:1")).expect("valid");
    assert_eq!(l.spec.scenarios[0].steps[0].service, DEFAULT_SERVICE);
    // The current dialect keeps asking which one.
    let cur = "[meta]\nname = \"c\"\n[service.a]\nimage = \"i\"\n[service.b]\nimage = \"i\"\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nsh = \"true\"\n";
    assert!(load(cur, Some("busybox:1")).is_err());
}

#[test]
fn depends_on_is_checked_and_orders_start_waves() {
    let base = |deps: &str| {
        format!("[meta]\nname = \"x\"\n[service.a]\nimage = \"i\"\ndepends_on = [{deps}]\n[service.b]\nimage = \"i\"\ndepends_on = [\"c\"]\n[service.c]\nimage = \"i\"\n[[scenario]]\nname = \"s\"\nservice = \"a\"\n[[scenario.steps]]\nsh = \"true\"\n")
    };
    let l = load(&base("\"b\""), None).expect("valid");
    assert_eq!(
        start_waves(&l.spec.services),
        Some(vec![
            vec!["c".to_string()],
            vec!["b".into()],
            vec!["a".into()]
        ])
    );
    let e = load(&base("\"nope\""), None).expect_err("unknown dependency");
    assert_eq!(
        messages(&e),
        ["service `a` depends on `nope`, which is not another service of this test"]
    );
    let cyclic = "[meta]\nname = \"x\"\n[service.a]\nimage = \"i\"\ndepends_on = [\"b\"]\n[service.b]\nimage = \"i\"\ndepends_on = [\"a\"]\n[[scenario]]\nname = \"s\"\nservice = \"a\"\n[[scenario.steps]]\nsh = \"true\"\n";
    let e = load(cyclic, None).expect_err("cycle");
    assert_eq!(
        messages(&e),
        ["`depends_on` of this test's services form a cycle"]
    );
}

#[test]
fn skip_reasons_are_read_on_tests_and_scenarios() {
    let l = load(
        "[meta]\nname = \"x\"\nskip = \"flaky upstream\"\n[service.a]\nimage = \"i\"\n[[scenario]]\nname = \"s\"\nskip = \"not yet\"\n[[scenario.steps]]\nsh = \"true\"\n",
        None,
    )
    .expect("valid");
    assert_eq!(l.spec.skip.as_deref(), Some("flaky upstream"));
    assert_eq!(l.spec.scenarios[0].skip.as_deref(), Some("not yet"));
}

#[test]
fn report_paths_merge_across_tests_unless_they_disagree() {
    let with = |name: &str, json: &str| {
        let mut l = load(
            &format!("[meta]\nname = \"{name}\"\n[service.a]\nimage = \"i\"\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nsh = \"true\"\n[report]\njson = \"{json}\"\njunit = \"j.xml\"\n"),
            None,
        )
        .expect("valid");
        l.spec.name = name.into();
        l.spec
    };
    let (a, b, c) = (
        with("a", "r.json"),
        with("b", "r.json"),
        with("c", "other.json"),
    );
    let (r, notes) = ReportSpec::merged([&a, &b]);
    assert_eq!(r.json.as_deref(), Some(Path::new("r.json")));
    assert!(notes.is_empty());
    let (r, notes) = ReportSpec::merged([&a, &c]);
    assert_eq!(
        (r.json, r.junit.as_deref()),
        (None, Some(Path::new("j.xml")))
    );
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("`other.json` in `c`"), "{notes:?}");
}

#[test]
fn plain_files_holding_tera_are_rendered_and_vars_may_be_arrays_and_tables() {
    let l = load(
        "[vars]\nenvs = [\"dev\", \"prod\"]\ndb = { port = 5432 }\n\n[meta]\nname = \"t\"\n[service.a]\nimage = \"i\"\n{% for e in envs %}\n[[scenario]]\nname = \"{{ e }}\"\n[[scenario.steps]]\nsh = \"echo {{ db.port }}\"\n{% endfor %}\n",
        None,
    )
    .expect("rendered");
    let names: Vec<&str> = l.spec.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["dev", "prod"]);
    assert_eq!(
        l.spec.scenarios[1].steps[0].run,
        Command::Shell("echo 5432".into())
    );
    let e = load(
        "[vars]\nwhen = 1979-05-27\n[meta]\nname = \"{{ when }}\"\n",
        None,
    )
    .expect_err("dates have no template form");
    assert!(e[0].message.starts_with("`vars.when` must be"), "{e:?}");
}
