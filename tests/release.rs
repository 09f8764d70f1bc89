//! Release and GitHub Action plumbing, tested for real: `ci/package.sh` lays out a release of
//! the built binary, a local HTTP server serves it the way GitHub serves release downloads, and
//! `ci/install.sh` (what `ci/action.yml` calls) installs from it with curl; `ci/action-run.sh`
//! (the action's run step) writes its step outputs from a real run.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use assert_cmd::cargo::cargo_bin;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const TARGET: &str = "x86_64-unknown-linux-gnu";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A static file server for `root` on an ephemeral port: 200 with the file, 404 otherwise.
/// It serves until the test process ends.
fn serve(root: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let addr = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            respond(&root, stream);
        }
    });
    format!("http://{addr}")
}

fn respond(root: &Path, mut stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone the socket"));
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // Drain the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let file = path
        .trim_start_matches('/')
        .split('/')
        .filter(|c| !c.is_empty() && *c != "..")
        .fold(root.to_path_buf(), |p, c| p.join(c));
    let (status, body) = match std::fs::read(&file) {
        Ok(body) if file.is_file() => ("200 OK", body),
        _ => ("404 Not Found", b"Not Found".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// The built binary packaged once per test process (a debug build is large: fast gzip).
fn packaged() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let out = Command::new("bash")
            .arg(repo().join("ci/package.sh"))
            .arg(cargo_bin("clnrm"))
            .arg(TARGET)
            .arg(&dir)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("CLNRM_GZIP_LEVEL", "1")
            .output()
            .expect("ci/package.sh runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        dir
    })
}

/// A release of the built binary laid out as on GitHub: `<root>/v<version>/<archive>[.sha256]`.
/// Returns the archive's path.
fn release(root: &Path) -> PathBuf {
    let out = root.join(format!("v{VERSION}"));
    std::fs::create_dir_all(&out).unwrap();
    let name = format!("clnrm-v{VERSION}-{TARGET}.tar.gz");
    for file in [name.clone(), format!("{name}.sha256")] {
        std::fs::copy(packaged().join(&file), out.join(&file)).unwrap();
    }
    out.join(name)
}

fn install(base: &str, dest: &Path, target: &str) -> Output {
    Command::new("bash")
        .arg(repo().join("ci/install.sh"))
        .arg(dest)
        .env("CLNRM_RELEASE_URL", base)
        .env("CLNRM_TARGET", target)
        .env_remove("CLNRM_VERSION")
        .output()
        .expect("ci/install.sh runs")
}

#[test]
fn install_verifies_and_installs_the_release_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = release(&tmp.path().join("www"));
    let base = serve(tmp.path().join("www"));

    // The archive holds the binary, the licence, completions and the man page.
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .unwrap();
    let listing = text(&listing.stdout);
    let name = format!("clnrm-v{VERSION}-{TARGET}");
    for member in [
        "clnrm",
        "LICENSE",
        "CHANGELOG.md",
        "README.md",
        "completions/clnrm.bash",
        "completions/_clnrm",
        "completions/clnrm.fish",
        "man/clnrm.1",
    ] {
        assert!(
            listing.lines().any(|l| l == format!("{name}/{member}")),
            "{member} missing from:\n{listing}"
        );
    }

    let dest = tmp.path().join("bin");
    let out = install(&base, &dest, TARGET);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let installed = dest.join("clnrm");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(cargo_bin("clnrm")).unwrap()
    );
    let version = Command::new(&installed).arg("--version").output().unwrap();
    assert_eq!(text(&version.stdout).trim(), format!("clnrm {VERSION}"));
}

#[test]
fn install_refuses_an_archive_that_does_not_match_its_checksum() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = release(&tmp.path().join("www"));
    // The published sum is of other bytes: the archive is not what was released.
    let sum = archive.with_extension("gz.sha256");
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::write(&sum, format!("{}  {name}\n", "0".repeat(64))).unwrap();
    let base = serve(tmp.path().join("www"));

    let dest = tmp.path().join("bin");
    let out = install(&base, &dest, TARGET);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("checksum mismatch"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dest.join("clnrm").exists());
}

#[test]
fn install_reports_a_missing_asset_so_the_action_builds_from_source() {
    let tmp = tempfile::tempdir().unwrap();
    release(&tmp.path().join("www"));
    let base = serve(tmp.path().join("www"));

    // No aarch64 archive was published.
    let dest = tmp.path().join("bin");
    let out = install(&base, &dest, "aarch64-unknown-linux-gnu");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("HTTP 404"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dest.join("clnrm").exists());

    // Nor any release of this version at all.
    std::fs::remove_dir_all(tmp.path().join("www").join(format!("v{VERSION}"))).unwrap();
    let out = install(&base, &dest, TARGET);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
}

#[test]
fn changelog_section_is_the_release_notes() {
    let out = Command::new("bash")
        .arg(repo().join("ci/changelog.sh"))
        .arg("0.1.0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let notes = text(&out.stdout);
    assert!(notes.starts_with("### Added\n"), "{notes}");
    assert!(!notes.contains("## ["), "{notes}");

    let out = Command::new("bash")
        .arg(repo().join("ci/changelog.sh"))
        .arg("99.0.0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no section `## [99.0.0]`"));
}

#[test]
fn completions_and_man_page_are_generated_on_stdout() {
    let run = |args: &[&str]| {
        Command::new(cargo_bin("clnrm"))
            .args(args)
            .output()
            .unwrap()
    };
    let bash = run(&["completions", "bash"]);
    assert!(bash.status.success());
    let bash = text(&bash.stdout);
    assert!(bash.contains("complete -F _clnrm"), "{bash}");
    assert!(bash.contains("--fail-fast"), "run options are completed");
    let zsh = text(&run(&["completions", "zsh"]).stdout);
    assert!(zsh.starts_with("#compdef clnrm"), "{zsh}");
    let man = run(&["man"]);
    assert!(man.status.success());
    let man = text(&man.stdout);
    assert!(man.contains(".TH clnrm 1"), "{man}");
    assert!(man.contains("completions"), "subcommands are listed");
    let bad = run(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// The action's run step on a real (local-backend) run: outputs for later steps, exit code.
fn action_run(tmp: &Path, dir: &Path, envs: &[(&str, &str)]) -> (Output, String, String) {
    let output = tmp.join("github_output");
    let summary = tmp.join("summary.md");
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("ci/action-run.sh"))
        .current_dir(dir)
        .env("CLNRM_BIN", cargo_bin("clnrm"))
        .env("CLNRM_OUT", tmp.join("out"))
        .env("CLNRM_GATE", "false")
        .env("CLNRM_PULL", "auto")
        .env("CI", "true")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env_remove("GITHUB_ACTIONS")
        .env("NO_COLOR", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("ci/action-run.sh runs");
    let outputs = std::fs::read_to_string(&output).unwrap_or_default();
    let summary = std::fs::read_to_string(&summary).unwrap_or_default();
    (out, outputs, summary)
}

#[test]
fn action_run_step_sets_outputs_from_the_results() {
    let dir = repo().join("tests/fixtures/cli/local-fail");
    let tmp = tempfile::tempdir().unwrap();
    let (out, outputs, _) = action_run(tmp.path(), &dir, &[("CLNRM_ARGS", "--backend local")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let lines: Vec<&str> = outputs.lines().collect();
    assert!(lines.contains(&"passed=1"), "{outputs}");
    assert!(lines.contains(&"failed=1"), "{outputs}");
    assert!(lines.contains(&"regressed=0"), "{outputs}");
    assert!(lines.contains(&"exit-code=1"), "{outputs}");
    let results = lines
        .iter()
        .find_map(|l| l.strip_prefix("results-path="))
        .expect("results-path output");
    assert!(Path::new(results).is_absolute() && Path::new(results).is_file());
}

#[test]
fn action_run_step_writes_a_summary_when_clnrm_wrote_no_report() {
    let dir = repo().join("tests/fixtures/cli/local-pass");
    let tmp = tempfile::tempdir().unwrap();
    let (out, outputs, summary) =
        action_run(tmp.path(), &dir, &[("CLNRM_ARGS", "--no-such-option")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(outputs.lines().any(|l| l == "results-path="), "{outputs}");
    assert!(outputs.lines().any(|l| l == "exit-code=2"), "{outputs}");
    assert!(
        summary.contains("exited with code 2 before writing a report"),
        "{summary}"
    );
}
