//! End-to-end tests through the real `clnrm` binary on fixture suites.
//!
//! Docker tests run against the local daemon and the locally built test image
//! (`scripts/test-image.sh`); `.ci/run` makes sure both are there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::cargo_bin;
use serde_json::Value;

mod support;
use support::{clnrm, ensure_test_image, leftovers, text};

/// The pinned tag the examples use; `scripts/test-image.sh` makes it with `latest`.
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cli")
        .join(name)
}

#[test]
fn validate_reports_every_error_located_and_exits_2() {
    let out = clnrm(&fixture("invalid"), &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("unknown key `imagee`"), "{err}");
    assert!(err.contains("./a.clnrm.toml:5:1"), "{err}");
    assert!(err.contains("did you mean `image`?"), "{err}");
    assert!(err.contains("./b.clnrm.toml:11:11"), "{err}");
    assert!(err.contains("`db`"), "{err}");
    assert!(err.contains("2 of 2 test files invalid"), "{err}");
    assert!(out.stdout.is_empty(), "data only on stdout");
}

#[test]
fn a_folder_without_tests_exits_4() {
    let out = clnrm(&fixture("empty"), &["validate"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(text(&out.stderr).contains("no test files found under `.`"));
    let out = clnrm(&fixture("empty"), &["run"]);
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn usage_errors_exit_2_and_help_lists_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = clnrm(dir.path(), &["run", "--shard", "5/4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("out of range"));
    let out = clnrm(dir.path(), &["run", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains("3  performance regression only"), "{help}");
    assert!(help.contains("5  backend unavailable"), "{help}");
    for heading in [
        "Selection:",
        "Execution:",
        "Terminal output:",
        "Reports:",
        "Perf gate:",
        "Test files:",
        "Watch mode:",
    ] {
        assert!(help.contains(heading), "{heading} {help}");
    }
    assert!(help.contains("--failure-output <WHEN>"), "{help}");
    assert!(help.contains("--slow-timeout <DURATION>"), "{help}");
    assert!(help.contains("--profile <NAME>"), "{help}");
    // Exit codes only where they apply.
    let fmt = text(&clnrm(dir.path(), &["fmt", "--help"]).stdout);
    assert!(
        fmt.contains("1  with `--check`: a file would change"),
        "{fmt}"
    );
    assert!(!fmt.contains("backend unavailable"), "{fmt}");
    let completions = text(&clnrm(dir.path(), &["completions", "--help"]).stdout);
    assert!(!completions.contains("Exit codes"), "{completions}");
}

#[test]
fn init_scaffolds_a_passing_test_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("tests/hello.clnrm.toml"), "# mine\n").unwrap();
    let out = clnrm(dir.path(), &["init"]);
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("created ./.clnrm/config.toml"), "{err}");
    assert!(
        err.contains("skipped ./tests/hello.clnrm.toml (already exists)"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("tests/hello.clnrm.toml")).unwrap(),
        "# mine\n"
    );

    let fresh = tempfile::tempdir().unwrap();
    assert_eq!(clnrm(fresh.path(), &["init"]).status.code(), Some(0));
    assert_eq!(clnrm(fresh.path(), &["validate"]).status.code(), Some(0));
    let out = clnrm(fresh.path(), &["run", "--json", "r.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r: Value =
        serde_json::from_slice(&std::fs::read(fresh.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(r["backend"], "local");
    assert_eq!(r["tests"][0]["scenarios"][0]["status"], "passed");
}

#[test]
fn render_map_shows_precedence_file_env_cli() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.clnrm.toml.tera"),
        r#"[vars]
a = "file-a"
b = "file-b"
c = "file-c"

[meta]
name = "{{ a }}-{{ b }}-{{ c }}"

[service.app]

[[scenario]]
name = "s"

[[scenario.steps]]
cmd = ["true"]
"#,
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(cargo_bin("clnrm"))
            .args(args)
            .current_dir(dir.path())
            .env("CLNRM_VAR_B", "env-b")
            .env("CLNRM_VAR_C", "env-c")
            .output()
            .unwrap()
    };
    let out = run(&["render", "t.clnrm.toml.tera", "--var", "c=cli-c"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(r#"name = "file-a-env-b-cli-c""#));
    let out = run(&["render", "t.clnrm.toml.tera", "--var", "c=cli-c", "--map"]);
    let map = text(&out.stdout);
    assert!(map.contains(r#"a = "file-a"  # from file [vars]"#), "{map}");
    assert!(
        map.contains(r#"b = "env-b"  # from env CLNRM_VAR_B"#),
        "{map}"
    );
    assert!(map.contains(r#"c = "cli-c"  # from --var"#), "{map}");
}

#[test]
fn list_json_names_tests_scenarios_and_tags() {
    let out = clnrm(&fixture("local-pass"), &["list", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tests"][0]["name"], "host-pass");
    assert_eq!(v["tests"][0]["tags"][0], "host");
    assert_eq!(v["tests"][0]["scenarios"][0]["name"], "echoes");
    assert_eq!(v["tests"][0]["scenarios"][0]["steps"], 2);
}

#[test]
fn local_failure_exits_1_with_exact_results_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let junit = dir.path().join("r.xml");
    let out = clnrm(
        &fixture("local-fail"),
        &[
            "run",
            "--backend",
            "local",
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let sc = &r["tests"][0]["scenarios"];
    assert_eq!(sc[0]["status"], "failed");
    assert_eq!(sc[0]["steps"][0]["exit_code"], 3);
    assert_eq!(sc[0]["steps"][0]["stderr"], "boom\n");
    assert_eq!(sc[0]["steps"][0]["failures"][0]["expectation"], "exit_code");
    assert_eq!(sc[0]["steps"][1]["status"], "skipped");
    assert_eq!(sc[1]["status"], "passed");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure"), "{xml}");
    let err = text(&out.stderr);
    assert!(err.contains("FAIL  host-fail / wrong exit code"), "{err}");
    // The failed step's output, under its line.
    assert!(
        err.contains("      --- stderr of step `exits 3` ---\n      boom\n"),
        "{err}"
    );
}

/// A host suite: a failing step that prints on both streams, a scenario that fails once and
/// then passes, and one that sleeps a second.
fn terminal_suite(config: &str) -> tempfile::TempDir {
    let dir = support::suite(&[(".clnrm/config.toml", config)]);
    let flag = dir.path().join("flag");
    let test = format!(
        r#"[meta]
name = "t"

[service.sh]

[[scenario]]
name = "broken"

[[scenario.steps]]
name = "build"
sh = "echo compiling; echo 'error: missing semicolon' >&2; exit 2"

[[scenario]]
name = "flaky"

[[scenario.steps]]
name = "once"
sh = "if [ -f {flag} ]; then exit 0; fi; touch {flag}; exit 1"

[[scenario]]
name = "slow"

[[scenario.steps]]
name = "nap"
sh = "sleep 1"
"#,
        flag = flag.display()
    );
    support::write(dir.path(), "t.clnrm.toml", &test);
    dir
}

#[test]
fn failures_show_their_output_retries_try_and_flaky_and_slow_scenarios_a_line() {
    let dir = terminal_suite("");
    let out = clnrm(
        dir.path(),
        &[
            "run",
            "--backend",
            "local",
            "--retries",
            "1",
            "--slow-timeout",
            "300ms",
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("TRY 1 FAIL  t / flaky ("), "{err}");
    assert!(err.contains("FLAKY 2/2 t / flaky ("), "{err}");
    assert!(err.contains("TRY 1 FAIL  t / broken ("), "{err}");
    assert!(err.contains("TRY 2 FAIL  t / broken ("), "{err}");
    assert!(
        err.contains(
            "      --- stdout of step `build` ---\n      compiling\n      \
             --- stderr of step `build` ---\n      error: missing semicolon\n"
        ),
        "{err}"
    );
    assert!(err.contains("SLOW [> 0.3s] t / slow\n"), "{err}");
    assert!(err.contains("PASS  t / slow ("), "{err}");
}

#[test]
fn the_ci_profile_applies_under_ci_and_an_unknown_profile_is_a_usage_error() {
    let config = "[profile.ci]\nretries = 1\nfailure_output = \"final\"\nslow_timeout = \"0s\"\n";
    let dir = terminal_suite(config);
    let out = support::clnrm_cmd(dir.path())
        .args(["run", "--backend", "local"])
        .env("CI", "true")
        .output()
        .expect("clnrm runs");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    // `retries = 1` of the profile: the flaky scenario passes on its second attempt.
    assert!(err.contains("FLAKY 2/2 t / flaky ("), "{err}");
    // `failure_output = "final"`: the output comes once, after the last scenario.
    let end = err
        .find("--- output of 1 failed scenario ---\n")
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(err.matches("error: missing semicolon").count(), 1, "{err}");
    assert!(err.find("error: missing semicolon").unwrap() > end, "{err}");
    assert!(err[end..].contains("TRY 2 FAIL  t / broken ("), "{err}");
    // `slow_timeout = "0s"`: no slow notice.
    assert!(!err.contains("SLOW"), "{err}");

    // Outside CI the profile does not apply: no retry, the flaky scenario fails.
    std::fs::remove_file(dir.path().join("flag")).ok();
    let out = clnrm(
        dir.path(),
        &["run", "--backend", "local", "--filter", "flaky"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    let out = clnrm(dir.path(), &["run", "--profile", "nightly"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("error: unknown profile `nightly`; defined: `ci`\n\nhint: define it as `[profile.nightly]` in `.clnrm/config.toml`"),
        "{err}"
    );
}

#[test]
fn filters_select_scenarios_and_nothing_selected_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = clnrm(
        &fixture("local-fail"),
        &[
            "run",
            "--filter",
            "host-fail/passes",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["tests"][0]["scenarios"].as_array().unwrap().len(), 1);
    let out = clnrm(&fixture("local-fail"), &["run", "--tag", "nope"]);
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn docker_run_uses_named_services_kills_timeouts_and_leaves_nothing() {
    ensure_test_image();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let started = Instant::now();
    let out = clnrm(
        &fixture("docker-one"),
        &["run", "--json", json.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["backend"], "docker");
    let sc = &r["tests"][0]["scenarios"][0];
    assert_eq!(sc["status"], "timed_out");
    let statuses: Vec<&str> = sc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["passed", "passed", "timed_out"]);
    // The 30 s sleep was cut at its 300 ms timeout.
    assert!(started.elapsed() < Duration::from_secs(25));
    let run_id = r["run_id"].as_str().unwrap();
    assert_eq!(leftovers(&format!("clnrm.run={run_id}")), (0, 0));
}

/// Start a run whose only step sleeps for two minutes and wait until its container exists.
fn start_slow_run() -> (std::process::Child, String) {
    ensure_test_image();
    let child = Command::new(cargo_bin("clnrm"))
        .args(["run"])
        .current_dir(fixture("slow"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let label = format!("clnrm.pid={}", child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    while leftovers(&label).0 == 0 {
        assert!(Instant::now() < deadline, "no container appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Give the exec a moment to start so the signal lands mid-step.
    std::thread::sleep(Duration::from_millis(500));
    (child, label)
}

fn wait_with_timeout(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "clnrm did not exit after the signal"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_mid_run_cleans_up_and_exits_130() {
    let (mut child, label) = start_slow_run();
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let code = wait_with_timeout(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(130));
    assert_eq!(leftovers(&label), (0, 0));
}

#[test]
fn sigterm_mid_run_cleans_up_and_exits_143() {
    let (mut child, label) = start_slow_run();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let code = wait_with_timeout(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(143));
    assert_eq!(leftovers(&label), (0, 0));
}

#[test]
fn leftovers_of_a_killed_run_are_reaped_by_the_next_run() {
    let (mut child, label) = start_slow_run();
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(leftovers(&label).0 > 0, "kill -9 leaves containers behind");
    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/suite/hello.clnrm.toml");
    let out = clnrm(&fixture("slow"), &["run", hello.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(leftovers(&label), (0, 0));
}

#[test]
fn validation_errors_become_workflow_annotations_under_github_actions() {
    let out = Command::new(cargo_bin("clnrm"))
        .args(["validate"])
        .current_dir(fixture("invalid"))
        .env("GITHUB_ACTIONS", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stdout),
        "::error file=a.clnrm.toml,line=5,col=1,title=clnrm%3A invalid test file::unknown key `imagee` in `[service.app]`\n\
         ::error file=b.clnrm.toml,line=11,col=11,title=clnrm%3A invalid test file::step `step 1` names service `db`, which is not declared\n"
    );
}

fn report_fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/report")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn report_merges_shards_into_the_unsharded_verdict_and_refuses_other_suites() {
    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("merged.json");
    let out = clnrm(
        dir.path(),
        &[
            "report",
            &report_fixture("shard-2.json"),
            &report_fixture("shard-1.json"),
            "--json",
            merged.to_str().unwrap(),
            "--format",
            "none",
        ],
    );
    // The shards hold failed scenarios: the merged verdict is "tests failed".
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let mut got: Value = serde_json::from_slice(&std::fs::read(&merged).unwrap()).unwrap();
    let mut want: Value =
        serde_json::from_slice(&std::fs::read(report_fixture("unsharded.json")).unwrap()).unwrap();
    got["run_id"] = Value::Null;
    want["run_id"] = Value::Null;
    assert_eq!(got["tests"], want["tests"]);
    assert_eq!(got["load_errors"], want["load_errors"]);

    let out = clnrm(
        dir.path(),
        &[
            "report",
            &report_fixture("shard-1.json"),
            &report_fixture("other-suite-shard-2.json"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("suite_id"), "{err}");
    assert!(err.contains("other-suite-shard-2.json"), "{err}");
}

#[test]
fn baseline_record_then_gate_saved_results() {
    let dir = tempfile::tempdir().unwrap();
    let suite = fixture("local-pass");
    let baseline = dir.path().join("b.toml");
    let results = dir.path().join("r.json");
    let out = clnrm(
        &suite,
        &[
            "baseline",
            "record",
            "--runs",
            "2",
            "--baseline",
            baseline.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let file = std::fs::read_to_string(&baseline).unwrap();
    assert!(file.contains("[keys.\"host.clnrm.toml#echoes\"]"), "{file}");
    assert_eq!(
        file.matches("{ ms = ").count() % 2,
        0,
        "two entries per key"
    );
    let out = clnrm(&suite, &["run", "--json", results.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    // Two history entries are advisory only: the gate passes and says why.
    let out = clnrm(
        &suite,
        &[
            "gate",
            results.to_str().unwrap(),
            "--baseline",
            baseline.to_str().unwrap(),
            "--json",
            dir.path().join("g.json").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let g: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("g.json")).unwrap()).unwrap();
    assert_eq!(g["perf"]["failed"], false);
    let out = clnrm(
        &suite,
        &["gate", results.to_str().unwrap(), "--baseline", "nope.toml"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no baseline at `nope.toml`"));
}

#[test]
fn fmt_check_and_lint_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let messy = "[[scenario]]\nname=\"s\"\n[[scenario.steps]]\ncmd=[\"true\"]\n\n[service.app]\nimage=\"alpine:latest\"\n[meta]\nname=\"t\"\n";
    std::fs::write(dir.path().join("t.clnrm.toml"), messy).unwrap();
    let out = clnrm(dir.path(), &["fmt", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with("--- a/./t.clnrm.toml"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("t.clnrm.toml")).unwrap(),
        messy,
        "--check writes nothing"
    );
    // Findings: `latest` tag and no timeout are warnings (exit 0), errors only with
    // --deny-warnings (exit 1), the same in every format.
    for format in ["human", "json", "github"] {
        let out = clnrm(dir.path(), &["lint", "--format", format]);
        assert_eq!(out.status.code(), Some(0), "{format}");
        let out = clnrm(dir.path(), &["lint", "--format", format, "--deny-warnings"]);
        assert_eq!(out.status.code(), Some(1), "{format}");
    }
    let out = clnrm(dir.path(), &["lint", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"image-latest"), "{rules:?}");
    assert_eq!(clnrm(dir.path(), &["fmt"]).status.code(), Some(0));
    assert_eq!(
        clnrm(dir.path(), &["fmt", "--check"]).status.code(),
        Some(0)
    );
    let formatted = std::fs::read_to_string(dir.path().join("t.clnrm.toml")).unwrap();
    assert!(formatted.starts_with("[meta]\nname = \"t\""), "{formatted}");
}

#[test]
fn upstream_v1_and_old_forms_run_on_docker_with_a_default_image() {
    ensure_test_image();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let fixture_dir = fixture("upstream-run");
    // Without a default image, the service-less steps are a located error.
    let out = clnrm(&fixture_dir, &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("steps.clnrm.toml:5:1"), "{err}");
    assert!(err.contains("--default-image"), "{err}");
    let out = clnrm(
        &fixture_dir,
        &[
            "run",
            "--default-image",
            "clnrm-test/busybox:latest",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("`[otel]` (upstream) is not evaluated"),
        "{err}"
    );
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["backend"], "docker");
    let status = |t: usize, s: usize| r["tests"][t]["scenarios"][s]["status"].clone();
    // Sorted by path: steps.clnrm.toml, then v1.clnrm.toml.
    assert_eq!(r["tests"][0]["name"], "upstream-steps");
    assert_eq!(status(0, 0), "passed");
    assert_eq!(status(1, 0), "passed", "{}", r["tests"][1]);
    assert_eq!(status(1, 1), "skipped");
    assert_eq!(
        r["tests"][1]["scenarios"][1]["message"],
        "skipped: waiting for a fix"
    );
    let run_id = r["run_id"].as_str().unwrap();
    assert_eq!(leftovers(&format!("clnrm.run={run_id}")), (0, 0));
}

#[test]
fn published_ports_reach_steps_as_variables_and_nothing_stays_published() {
    ensure_test_image();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = clnrm(
        &fixture("docker-ports"),
        &["run", "--json", json.to_str().unwrap()],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("not evaluated"), "{err}");
    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["backend"], "docker");
    let sc = &r["tests"][0]["scenarios"][0];
    assert_eq!(sc["status"], "passed", "{sc}");
    let published = sc["steps"][1]["stdout"]
        .as_str()
        .unwrap()
        .trim()
        .to_string();
    let (addr, port) = published.split_once(' ').unwrap();
    let port: u16 = port.parse().unwrap();
    assert_eq!(addr, format!("127.0.0.1:{port}"));
    // The results name the mapping.
    assert_eq!(
        sc["published"],
        serde_json::json!([{
            "service": "web",
            "container_port": 8080,
            "host_port": port,
            "in_network": "web:8080"
        }])
    );
    // The run is over: the port is closed and no container or network is left.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let run_id = r["run_id"].as_str().unwrap();
    assert_eq!(leftovers(&format!("clnrm.run={run_id}")), (0, 0));
}

#[test]
fn list_selects_and_shards_like_run() {
    let dir = fixture("upstream-run");
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["list", "--default-image", "img:1", "--format", "json"];
        all.extend_from_slice(args);
        let out = clnrm(&dir, &all);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["tests"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| {
                t["scenarios"].as_array().unwrap().iter().map(move |s| {
                    format!(
                        "{}/{}",
                        t["name"].as_str().unwrap(),
                        s["name"].as_str().unwrap()
                    )
                })
            })
            .collect()
    };
    assert_eq!(
        names(&["--filter", "name~^upstream-v"]),
        [
            "upstream-v1/api saw db ready at start",
            "upstream-v1/not today"
        ]
    );
    assert_eq!(
        names(&["--filter", "!not today"]),
        [
            "upstream-steps/upstream-steps",
            "upstream-v1/api saw db ready at start"
        ]
    );
    let (a, b) = (names(&["--shard", "1/2"]), names(&["--shard", "2/2"]));
    assert!(a.iter().all(|n| !b.contains(n)));
    assert_eq!(a.len() + b.len(), 3);
    let out = clnrm(&dir, &["list", "--filter", "name~("]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("invalid regex"));
}

#[test]
fn empty_shards_write_results_and_report_names_missing_shards() {
    // One test, three shards: two of them are empty, and say so instead of failing.
    let dir = tempfile::tempdir().unwrap();
    let mut with_tests = Vec::new();
    let mut files = Vec::new();
    for k in 1..=3 {
        let json = dir.path().join(format!("shard-{k}.json"));
        let out = clnrm(
            &fixture("local-pass"),
            &[
                "run",
                "--backend",
                "local",
                "--shard",
                &format!("{k}/3"),
                "--json",
                json.to_str().unwrap(),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(r["shard"]["index"], k);
        if r["tests"].as_array().unwrap().is_empty() {
            assert_eq!(r["empty_shard"], true, "{r}");
            assert!(
                text(&out.stderr).contains(&format!("shard {k}/3 was given none")),
                "{}",
                text(&out.stderr)
            );
        } else {
            assert!(r.get("empty_shard").is_none(), "{r}");
            with_tests.push(k);
        }
        files.push(json);
    }
    assert_eq!(with_tests.len(), 1);
    let paths = |skip: usize| -> Vec<String> {
        files
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, p)| p.to_str().unwrap().to_string())
            .collect()
    };
    let report = |files: &[String], extra: &[&str]| {
        let mut args = vec!["report", "--format", "none"];
        args.extend(files.iter().map(String::as_str));
        args.extend(extra);
        clnrm(dir.path(), &args)
    };

    let all = report(&paths(usize::MAX), &[]);
    assert_eq!(all.status.code(), Some(0), "{}", text(&all.stderr));
    assert!(
        !text(&all.stderr).contains("missing"),
        "{}",
        text(&all.stderr)
    );

    // Shard 2 lost: a warning by default, an error with --require-all-shards.
    let md = dir.path().join("merged.md");
    let partial = report(&paths(1), &["--markdown", md.to_str().unwrap()]);
    assert!(
        text(&partial.stderr).contains("results of shard 2/3 are missing"),
        "{}",
        text(&partial.stderr)
    );
    assert!(std::fs::read_to_string(&md)
        .unwrap()
        .contains("no results from shard 2;"));
    let strict = report(&paths(1), &["--require-all-shards"]);
    assert_eq!(strict.status.code(), Some(2), "{}", text(&strict.stderr));
    assert!(text(&strict.stderr).contains("error: results of shard 2/3 are missing"));
}

#[test]
fn under_github_actions_stdout_is_data_and_annotations_go_to_stderr_from_the_repo_root() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let out = Command::new(cargo_bin("clnrm"))
        .args(["run", "--backend", "local", "--json", "-"])
        .current_dir(fixture("local-fail"))
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", env!("CARGO_MANIFEST_DIR"))
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("NO_COLOR", "1")
        .output()
        .expect("clnrm runs");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // stdout is exactly the JSON results: no workflow command after it.
    let r: Value = serde_json::from_slice(&out.stdout).expect("stdout is only JSON");
    assert_eq!(r["tests"][0]["scenarios"][0]["status"], "failed");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("::error file=tests/fixtures/cli/local-fail/host-fail.clnrm.toml,line="),
        "{stderr}"
    );
    assert!(std::fs::read_to_string(&summary)
        .unwrap()
        .contains("host-fail"));
}
