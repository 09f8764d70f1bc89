//! The trust boundary end to end, through the real binary: secrets never reach an artifact,
//! untrusted output cannot forge a workflow command, hostile mounts are refused before
//! anything runs, relative mounts work in Docker, and a step's output does not grow memory.

use std::path::Path;
use std::process::Output;

mod support;

use support::{leftovers, text, write, IMAGE};

/// A scratch repository (its own `.clnrm`, so the boundary is the temp folder).
fn repo() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(d.path().join(".clnrm")).expect("mkdir");
    d
}

fn clnrm(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    support::clnrm_cmd(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("clnrm runs")
}

const SECRET: &str = "hunter2-9f3b7c1e-very-secret";
const CONFIG_SECRET: &str = "config-listed-token-77aa";

#[test]
fn secrets_never_reach_an_artifact_and_are_registered_with_actions_first() {
    let d = repo();
    write(
        d.path(),
        ".clnrm/config.toml",
        "mask_env = [\"CLNRM_PROBE_TOKEN\"]\n",
    );
    write(
        d.path(),
        "leak.clnrm.toml.tera",
        r#"[meta]
name = "leak"

[service.host]

[[scenario]]
name = "passing step prints the secret"

[[scenario.steps]]
cmd = ["echo", "{{ env(name="CLNRM_PROBE_SECRET") }}"]
env = { TOKEN = "{{ env(name="CLNRM_PROBE_SECRET") }}" }

[[scenario.steps]]
sh = "echo $TOKEN; echo $CLNRM_PROBE_TOKEN >&2"
env = { TOKEN = "{{ env(name="CLNRM_PROBE_SECRET") }}" }

[[scenario]]
name = "failing step quotes it"

[[scenario.steps]]
sh = "echo {{ env(name="CLNRM_PROBE_SECRET") }}; echo $CLNRM_PROBE_TOKEN; exit 3"
stdout_contains = "never"
"#,
    );
    let summary = d.path().join("summary.md");
    let out = clnrm(
        d.path(),
        &[
            "run",
            "--backend",
            "local",
            "--json",
            "r.json",
            "--junit",
            "r.xml",
            "--markdown",
            "r.md",
        ],
        &[
            ("CLNRM_PROBE_SECRET", SECRET),
            ("CLNRM_PROBE_TOKEN", CONFIG_SECRET),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().expect("utf-8")),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // The run really used the value: the passing scenario passed, the failing one failed.
    let json = std::fs::read_to_string(d.path().join("r.json")).expect("json");
    assert!(
        json.contains("\"status\": \"passed\"") || json.contains("\"passed\""),
        "{json}"
    );
    assert!(
        json.contains("***"),
        "the masked value is visible as ***: {json}"
    );
    for f in ["r.json", "r.xml", "r.md", "summary.md"] {
        let body = std::fs::read_to_string(d.path().join(f)).expect(f);
        assert!(!body.contains(SECRET), "{f} holds the secret:\n{body}");
        assert!(
            !body.contains(CONFIG_SECRET),
            "{f} holds the config-listed secret"
        );
    }
    assert!(
        !text(&out.stdout).contains(SECRET),
        "stdout holds the secret"
    );
    assert!(!text(&out.stdout).contains(CONFIG_SECRET));
    // stderr names each value once, in `::add-mask::`, before any other line mentions it.
    let lines: Vec<&str> = stderr.lines().collect();
    for s in [SECRET, CONFIG_SECRET] {
        let hits: Vec<&&str> = lines.iter().filter(|l| l.contains(s)).collect();
        assert_eq!(hits, vec![&format!("::add-mask::{s}").as_str()], "{stderr}");
    }
}

#[test]
fn step_output_and_escapes_cannot_forge_workflow_commands() {
    let d = repo();
    write(
        d.path(),
        "inject.clnrm.toml",
        r#"[meta]
name = "inject"

[service.host]

[[scenario]]
name = "hostile output"

[[scenario.steps]]
sh = "printf 'x\n::error::INJECTED\n\\033[2J##[set-env name=A]b\n' >&2; exit 2"
stderr_contains = "never there"
"#,
    );
    let out = clnrm(
        d.path(),
        &["run", "--backend", "local"],
        &[("GITHUB_ACTIONS", "true")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    for (name, stream) in [("stdout", text(&out.stdout)), ("stderr", text(&out.stderr))] {
        for l in stream.lines() {
            let t = l.trim_start();
            assert!(
                !t.starts_with("::error::INJECTED") && !t.contains("##[set-env"),
                "{name} line reads as a workflow command: {l:?}"
            );
            assert!(!l.contains('\u{1b}'), "{name} carries a raw escape: {l:?}");
        }
    }
    // Annotations clnrm itself emits still work; they go to stderr (stdout is data only).
    assert!(
        text(&out.stderr).contains("::error file=inject.clnrm.toml"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !text(&out.stdout).contains("::error"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn hostile_mounts_are_refused_before_anything_runs_unless_allowed() {
    let d = repo();
    write(
        d.path(),
        "host.clnrm.toml",
        r#"[meta]
name = "host"

[service.app]
image = "clnrm-test/busybox:1"
mounts = ["/var/run/docker.sock:/var/run/docker.sock", "/:/host:ro"]

[[scenario]]
name = "s"

[[scenario.steps]]
cmd = ["cat", "/host/etc/shadow"]
"#,
    );
    let out = clnrm(d.path(), &["validate"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mount of `/var/run/docker.sock`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mount of `/` refused: it is a system path of the host"),
        "{stderr}"
    );
    assert!(stderr.contains("host.clnrm.toml:6:11"), "{stderr}");
    let out = clnrm(d.path(), &["run", "--backend", "local"], &[]);
    assert_eq!(out.status.code(), Some(2), "run refuses too");
    // An explicit allowance lifts the refusal of `/` (validate only: nothing runs here).
    write(
        d.path(),
        "host.clnrm.toml",
        "[meta]\nname = \"host\"\n[service.app]\nimage = \"x\"\nmounts = [\"/:/host:ro\"]\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\ncmd = [\"true\"]\n",
    );
    assert_eq!(clnrm(d.path(), &["validate"], &[]).status.code(), Some(2));
    let out = clnrm(d.path(), &["validate", "--allow-mount", "/"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    write(d.path(), ".clnrm/config.toml", "allow_mounts = [\"/\"]\n");
    assert_eq!(clnrm(d.path(), &["validate"], &[]).status.code(), Some(0));
}

#[test]
fn includes_cannot_read_host_files() {
    let d = repo();
    write(
        d.path(),
        "inc.clnrm.toml.tera",
        "{% include \"/etc/passwd\" %}\n{% include \"../../../../../../etc/passwd\" %}\n",
    );
    for cmd in ["render", "validate"] {
        let args: Vec<&str> = if cmd == "render" {
            vec!["render", "inc.clnrm.toml.tera"]
        } else {
            vec!["validate"]
        };
        let out = clnrm(d.path(), &args, &[]);
        let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{all}");
        assert!(
            !all.contains("root:x:0"),
            "{cmd} quotes /etc/passwd:\n{all}"
        );
        assert!(all.contains("absolute paths are not allowed"), "{all}");
        assert!(all.contains("`..` is not allowed"), "{all}");
    }
}

#[test]
fn generator_sizes_and_clock_offsets_are_bounded_and_located() {
    let d = repo();
    let huge = "9000000000000000000";
    write(
        d.path(),
        "big.clnrm.toml.tera",
        &format!(
            "[meta]\nname = \"big\"\ndescription = \"{{{{ fake_paragraph(min={huge}, max={huge}) }}}}\"\n"
        ),
    );
    write(
        d.path(),
        "late.clnrm.toml.tera",
        "[meta]\nname = \"late\"\ndescription = \"{{ now_plus(seconds=9223372036854775807) }}\"\n",
    );
    let t = std::time::Instant::now();
    let out = clnrm(d.path(), &["validate"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    assert!(
        stderr.contains(&format!(
            "fake_paragraph: `max` must be from 0 to 100, found {huge}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("big.clnrm.toml.tera:3:19"), "{stderr}");
    assert!(
        stderr.contains("now_plus: `seconds` (9223372036854775807) moves the time out"),
        "{stderr}"
    );
    assert!(stderr.contains("late.clnrm.toml.tera:3:19"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_relative_mount_resolves_against_the_test_file_in_docker() {
    support::ensure_test_image();
    let d = repo();
    write(
        d.path(),
        "suite/fixtures/greeting.txt",
        "hello from the host\n",
    );
    write(
        d.path(),
        "suite/mount.clnrm.toml",
        r#"[meta]
name = "mount"

[service.app]
image = "clnrm-test/busybox:1"
mounts = ["./fixtures:/fixtures:ro"]

[[scenario]]
name = "reads the fixture"

[[scenario.steps]]
cmd = ["cat", "/fixtures/greeting.txt"]
stdout_equals = "hello from the host"

[[scenario.steps]]
name = "read-only"
sh = "touch /fixtures/x"
exit_code = 1
"#,
    );
    let out = clnrm(d.path(), &["run", "--backend", "docker", "suite"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A test file with one service mounting `mount`, whose step runs `sh` and expects `exit`.
fn mount_suite(dir: &Path, mount: &str, sh: &str, exit: i32) {
    write(
        dir,
        "suite/write.clnrm.toml",
        &format!(
            r#"[meta]
name = "write"

[service.app]
image = "{IMAGE}"
mounts = ["{mount}"]

[[scenario]]
name = "writes"

[[scenario.steps]]
sh = "{sh}"
exit_code = {exit}
"#
        ),
    );
}

#[test]
fn a_test_file_cannot_write_through_a_mount_unless_the_project_allows_it() {
    support::ensure_test_image();
    let d = repo();
    let data = d.path().join("suite/fixtures/data");
    write(d.path(), "suite/fixtures/data/keep.txt", "keep\n");
    // No mode: read-only. The step's write fails, and the checkout is untouched.
    mount_suite(
        d.path(),
        "./fixtures/data:/w",
        "cat /w/keep.txt && ! touch /w/new && ! rm /w/keep.txt",
        0,
    );
    let out = clnrm(d.path(), &["run", "--backend", "docker", "suite"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!data.join("new").exists());
    assert!(data.join("keep.txt").exists());
    // `:rw` without the opt-in: refused at load, located, with the config key and flag.
    mount_suite(d.path(), "./fixtures/data:/w:rw", "touch /w/new", 0);
    for args in [
        &["validate", "suite"][..],
        &["run", "--backend", "docker", "suite"],
    ] {
        let out = clnrm(d.path(), args, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("read-write mount of `./fixtures/data`"),
            "{stderr}"
        );
        assert!(stderr.contains("write.clnrm.toml:6:11"), "{stderr}");
        assert!(stderr.contains("allow_rw_mounts = true"), "{stderr}");
        assert!(stderr.contains("--allow-rw-mounts"), "{stderr}");
    }
    assert!(!data.join("new").exists(), "nothing ran");
    // With the flag, or with the config key, the test may write.
    let out = clnrm(
        d.path(),
        &["run", "--backend", "docker", "--allow-rw-mounts", "suite"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(data.join("new").exists());
    std::fs::remove_file(data.join("new")).expect("rm");
    write(d.path(), ".clnrm/config.toml", "allow_rw_mounts = true\n");
    let out = clnrm(d.path(), &["run", "--backend", "docker", "suite"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(data.join("new").exists());
}

#[test]
fn a_mount_source_swapped_for_a_symlink_after_loading_is_not_mounted() {
    support::ensure_test_image();
    let d = repo();
    write(d.path(), ".clnrm/config.toml", "allow_rw_mounts = true\n");
    write(d.path(), "suite/fixtures/data/sub/inside.txt", "inside\n");
    // Each scenario gets its own environment. With `-j 1` the runner warms at most three
    // environments ahead, so the last scenarios' containers are created after the first
    // scenario has replaced `sub` (checked at load) by a symlink to the host's root.
    write(
        d.path(),
        "suite/swap.clnrm.toml",
        &format!(
            r#"[meta]
name = "swap"

[service.app]
image = "{IMAGE}"
mounts = ["./fixtures/data:/w:rw", "./fixtures/data/sub:/host"]

[[scenario]]
name = "swaps"

[[scenario.steps]]
sh = "rm -r /w/sub && ln -s / /w/sub"

{later}"#,
            later = (1..=5)
                .map(|i| format!(
                    "\n[[scenario]]\nname = \"mounts the swapped folder {i}\"\n\n[[scenario.steps]]\nsh = \"ls /host\"\n"
                ))
                .collect::<String>()
        ),
    );
    let out = clnrm(
        d.path(),
        &["run", "--backend", "docker", "-j", "1", "suite"],
        &[],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("now resolves to `/`"), "{all}");
    assert!(!all.contains("docker.sock"), "{all}");
}

/// Peak RSS (KiB) of the largest waited-for descendant of this process.
fn children_max_rss_kib() -> i64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_maxrss
    }
}

#[test]
fn three_hundred_megabytes_of_output_do_not_grow_memory() {
    let d = repo();
    write(
        d.path(),
        "loud.clnrm.toml",
        r#"[meta]
name = "loud"

[service.host]

[[scenario]]
name = "300 MB of stdout"

[[scenario.steps]]
sh = "head -c 300000000 /dev/zero | tr '\\0' 'x'; echo; echo THE-END"
stdout_contains = "THE-END"
"#,
    );
    let out = clnrm(
        d.path(),
        &["run", "--backend", "local", "--json", "r.json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = std::fs::read_to_string(d.path().join("r.json")).expect("json");
    assert!(json.contains("bytes cut ...]"), "the cut is stated");
    assert!(json.contains("\"stdout_truncated\": true"));
    // Before the bounded capture this was about 296 MB (the whole output, buffered).
    let rss_mib = children_max_rss_kib() / 1024;
    assert!(rss_mib < 100, "peak RSS {rss_mib} MiB");
}

/// A test of three services (a network and three creates in flight at once) whose step sleeps.
fn slow_suite(dir: &Path, sleep_s: u32) {
    write(
        dir,
        "slow.clnrm.toml",
        &format!(
            r#"[meta]
name = "slow"

[service.a]
image = "clnrm-test/busybox:1"
[service.b]
image = "clnrm-test/busybox:1"
[service.c]
image = "clnrm-test/busybox:1"

[[scenario]]
name = "sleeps"
service = "a"

[[scenario.steps]]
cmd = ["sleep", "{sleep_s}"]
"#
        ),
    );
}

fn spawn_run(dir: &Path) -> std::process::Child {
    support::clnrm_cmd(dir)
        .args(["run", "--backend", "docker"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("clnrm starts")
}

fn wait_for_first_object(label: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while leftovers(label) == (0, 0) {
        assert!(std::time::Instant::now() < deadline, "nothing was created");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn kill_9_during_creation_leaves_nothing_after_the_next_run() {
    support::ensure_test_image();
    let d = repo();
    slow_suite(d.path(), 30);
    let mut child = spawn_run(d.path());
    let label = format!("clnrm.pid={}", child.id());
    // The first labelled object (the network) exists: the three creates are in flight now.
    wait_for_first_object(&label);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().expect("wait");
    let other = repo();
    write(
        other.path(),
        "quick.clnrm.toml",
        "[meta]\nname = \"quick\"\n[service.a]\nimage = \"clnrm-test/busybox:1\"\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\ncmd = [\"true\"]\n",
    );
    let out = clnrm(other.path(), &["run", "--backend", "docker"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(leftovers(&label), (0, 0), "the next run reaped everything");
}

#[test]
fn a_second_signal_keeps_the_exit_code_of_the_first() {
    support::ensure_test_image();
    let d = repo();
    slow_suite(d.path(), 30);
    let mut child = spawn_run(d.path());
    let label = format!("clnrm.pid={}", child.id());
    wait_for_first_object(&label);
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    std::thread::sleep(std::time::Duration::from_millis(30));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(143));
    // A forced exit may leave objects behind: the next run reaps them.
    let other = repo();
    write(
        other.path(),
        "quick.clnrm.toml",
        "[meta]\nname = \"quick\"\n[service.a]\nimage = \"clnrm-test/busybox:1\"\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\ncmd = [\"true\"]\n",
    );
    let out = clnrm(other.path(), &["run", "--backend", "docker"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(leftovers(&label), (0, 0));
}

#[test]
fn two_concurrent_runs_neither_disturbs_the_other() {
    support::ensure_test_image();
    let (a, b) = (repo(), repo());
    slow_suite(a.path(), 2);
    slow_suite(b.path(), 2);
    let mut ca = spawn_run(a.path());
    let mut cb = spawn_run(b.path());
    let (la, lb) = (
        format!("clnrm.pid={}", ca.id()),
        format!("clnrm.pid={}", cb.id()),
    );
    assert_eq!(ca.wait().expect("wait").code(), Some(0));
    assert_eq!(cb.wait().expect("wait").code(), Some(0));
    assert_eq!((leftovers(&la), leftovers(&lb)), ((0, 0), (0, 0)));
}
