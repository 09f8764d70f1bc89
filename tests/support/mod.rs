//! Support shared by every integration test binary: the local test image, the clnrm binary,
//! temporary suites and leftover checks against the daemon.
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use assert_cmd::cargo::cargo_bin;

/// The local test image (`scripts/test-image.sh`; it also tags `:1`).
pub const IMAGE: &str = "clnrm-test/busybox:latest";

/// Build the test image once per test binary if it is missing.
pub fn ensure_test_image() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let present = Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .expect("docker CLI runs")
            .status
            .success();
        if !present {
            let script = repo().join("scripts/test-image.sh");
            let st = Command::new("bash")
                .arg(script)
                .status()
                .expect("run test-image.sh");
            assert!(st.success(), "scripts/test-image.sh failed");
        }
    });
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The clnrm binary, run in `dir` with a clean, colourless, non-Actions environment.
pub fn clnrm_cmd(dir: &Path) -> Command {
    let mut c = Command::new(cargo_bin("clnrm"));
    c.current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("CI")
        .env("NO_COLOR", "1");
    c
}

pub fn clnrm(dir: &Path, args: &[&str]) -> Output {
    clnrm_cmd(dir).args(args).output().expect("clnrm runs")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A temporary folder holding `files` (relative path, content); a `.git` marks it as the
/// repository root, so the config search stops there.
pub fn suite(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join(".git")).expect("mkdir .git");
    for (name, content) in files {
        write(dir.path(), name, content);
    }
    dir
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, text).expect("write");
    path
}

/// Containers and networks carrying `label` (e.g. `clnrm.pid=123`, `clnrm.run=abc`).
pub fn leftovers(label: &str) -> (usize, usize) {
    let count = |args: &[&str]| {
        let out = Command::new("docker")
            .args(args)
            .output()
            .expect("docker CLI");
        text(&out.stdout).lines().filter(|l| !l.is_empty()).count()
    };
    (
        count(&["ps", "-aq", "--filter", &format!("label={label}")]),
        count(&["network", "ls", "-q", "--filter", &format!("label={label}")]),
    )
}

/// A static clnrm for the agent: `CLNRM_AGENT_BIN` (scripts/test.sh builds one), else built
/// here once into a target directory of its own (a running `cargo test` holds the lock of
/// the main one; the first time takes a few minutes).
pub fn agent_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("CLNRM_AGENT_BIN").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let root = repo();
        let out = Command::new("bash")
            .arg(root.join("scripts/agent-bin.sh"))
            .env("CLNRM_AGENT_TARGET_DIR", root.join("target/agent-static"))
            .output()
            .expect("run scripts/agent-bin.sh");
        assert!(out.status.success(), "{}", text(&out.stderr));
        PathBuf::from(text(&out.stdout).trim())
    })
    .clone()
}

/// The static OpenTelemetry emitter (examples/otel_emitter.rs) for the Docker telemetry tests:
/// `CLNRM_OTEL_EMITTER` when that file exists (scripts/test.sh points it at the example its
/// `cargo test` builds), else built here once beside the static agent
/// (`scripts/otel-emitter.sh`, target/agent-static).
pub fn otel_emitter() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("CLNRM_OTEL_EMITTER").filter(|p| !p.is_empty()) {
            let p = PathBuf::from(p);
            if p.is_file() {
                return p;
            }
        }
        let root = repo();
        let out = Command::new("bash")
            .arg(root.join("scripts/otel-emitter.sh"))
            .env("CLNRM_AGENT_TARGET_DIR", root.join("target/agent-static"))
            .output()
            .expect("run scripts/otel-emitter.sh");
        assert!(out.status.success(), "{}", text(&out.stderr));
        PathBuf::from(text(&out.stdout).trim())
    })
    .clone()
}
