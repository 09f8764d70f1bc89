//! The step agent in Docker environments: whether it can be used, the mounts and entrypoint
//! that start it as each container's init, and waiting for its greeting.
//!
//! The decision is never silent: when steps go through one exec each instead, the reason is
//! kept with the environment (JSON results: `transport_note`) and printed with `CLNRM_DEBUG`.

use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;

use crate::agent::{self, AgentConn, AGENT_DIR, AGENT_PATH, SOCKET_NAME};
use crate::backend::{debug, StepTransport};

/// How long a started container's agent may take to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long its greeting may take once the socket is there.
const GREETING_TIMEOUT: Duration = Duration::from_secs(5);

/// What clnrm needs to know about an image.
#[derive(Debug, Clone)]
pub(crate) struct ImageFacts {
    /// The image's own entrypoint: the agent runs it (with the command) as its child.
    pub entrypoint: Vec<String>,
    /// Docker's architecture name (`amd64`, ...).
    pub arch: Option<String>,
}

/// How the steps of one environment are meant to run.
#[derive(Debug, Clone)]
pub(crate) enum Choice {
    Agent {
        bin: PathBuf,
        strict: bool,
    },
    /// One exec per step, and why.
    Exec(String),
}

#[derive(Default)]
struct Inner {
    mode: StepTransport,
    /// The static agent binary (path, architecture), or why there is none; found once.
    binary: Option<Result<(PathBuf, String), String>>,
    /// Per-run host directory holding one socket directory per container.
    root: Option<PathBuf>,
    /// Pool key -> why the agent failed to start for that configuration (not retried).
    failed: HashMap<u64, String>,
}

pub(crate) struct AgentState {
    inner: Mutex<Inner>,
    run_tag: String,
}

impl AgentState {
    pub fn new(mode: StepTransport, run_id: &str) -> Self {
        let short: String = run_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        AgentState {
            inner: Mutex::new(Inner {
                mode,
                ..Default::default()
            }),
            run_tag: format!("{}-{short}", std::process::id()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_mode(&self, mode: StepTransport) {
        self.lock().mode = mode;
    }

    /// Agent or exec for an environment of configuration `key` built from `images`.
    pub fn choose(&self, key: u64, images: &[&ImageFacts]) -> Choice {
        let mut inner = self.lock();
        let strict = match inner.mode {
            StepTransport::Exec => {
                return Choice::Exec("chosen with `--step-transport exec`".into())
            }
            StepTransport::Agent => true,
            StepTransport::Auto => false,
        };
        if let Some(reason) = inner.failed.get(&key) {
            return Choice::Exec(reason.clone());
        }
        if let Some(reason) = remote_daemon() {
            return Choice::Exec(reason);
        }
        let binary = inner
            .binary
            .get_or_insert_with(|| {
                agent::find_agent_binary().map(|(path, facts)| (path, facts.arch))
            })
            .clone();
        let (bin, arch) = match binary {
            Ok(b) => b,
            Err(reason) => return Choice::Exec(format!("no static agent binary: {reason}")),
        };
        if let Some(other) = images
            .iter()
            .filter_map(|i| i.arch.as_deref())
            .find(|a| *a != arch)
        {
            return Choice::Exec(format!(
                "image architecture `{other}` differs from the agent's `{arch}`"
            ));
        }
        Choice::Agent { bin, strict }
    }

    /// Use this file as the agent binary instead of looking for one (`CLNRM_AGENT_BIN`,
    /// the running executable). A dynamic or foreign file is not refused here: environments
    /// then use exec, with the reason, as they would for a binary found by the search.
    pub fn set_binary(&self, path: &Path) {
        let found = agent::binary::file_facts(path).and_then(|f| {
            if f.dynamic {
                Err(format!(
                    "{} is dynamically linked; the agent must be static",
                    path.display()
                ))
            } else {
                Ok((path.to_path_buf(), f.arch))
            }
        });
        let mut inner = self.lock();
        inner.binary = Some(found);
        inner.failed.clear();
    }

    /// Remember that the agent could not start for `key`; later environments use exec.
    pub fn record_failure(&self, key: u64, reason: &str) {
        debug(format_args!("step agent unavailable, using exec: {reason}"));
        self.lock().failed.insert(key, reason.to_string());
    }

    /// A fresh host directory for the sockets of one environment.
    pub fn env_dir(&self, name: &str) -> std::io::Result<PathBuf> {
        let mut inner = self.lock();
        let root = match &inner.root {
            Some(r) => r.clone(),
            None => {
                let r = std::env::temp_dir().join(format!("clnrm-agent-{}", self.run_tag));
                // Only this user reaches the sockets on the host; inside a container only
                // its own directory is visible.
                match std::fs::DirBuilder::new().mode(0o700).create(&r) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => private_dir(&r)?,
                    Err(e) => return Err(e),
                }
                inner.root = Some(r.clone());
                r
            }
        };
        let dir = root.join(name);
        std::fs::create_dir(&dir)?;
        Ok(dir)
    }

    /// Remove the socket directories of clnrm processes that are gone (killed before they
    /// could clean up; their containers are reaped by label).
    pub fn reap_dead_roots() {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("clnrm-agent-")) else {
                continue;
            };
            let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| p != std::process::id() && !super::labels::pid_alive(p)) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    pub fn remove_root(&self) {
        if let Some(r) = self.lock().root.take() {
            let _ = std::fs::remove_dir_all(r);
        }
    }
}

/// `Some(reason)` when the daemon is not reached over a local socket: a directory on this
/// machine cannot be mounted into its containers.
fn remote_daemon() -> Option<String> {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    if host.is_empty() || host.starts_with("unix://") {
        None
    } else {
        Some(format!(
            "the daemon is remote (DOCKER_HOST={host}): no shared directory for the agent socket"
        ))
    }
}

/// The socket directory of one container (created world-writable: the container's user,
/// whoever it is, creates the socket in it).
pub(crate) fn container_dir(env_dir: &Path, index: usize) -> std::io::Result<PathBuf> {
    let dir = env_dir.join(index.to_string());
    std::fs::create_dir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))?;
    Ok(dir)
}

/// Entrypoint, command and extra binds that start the agent as the container's init with
/// the service's own process (image entrypoint + command) as its child.
pub(crate) fn agent_launch(
    bin: &Path,
    dir: &Path,
    image_entrypoint: &[String],
    cmd: Option<&[String]>,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let entrypoint = vec![
        AGENT_PATH.to_string(),
        "__agent".to_string(),
        "--socket".to_string(),
        format!("{AGENT_DIR}/{SOCKET_NAME}"),
        "--".to_string(),
    ];
    // Exactly what Docker would run without the agent: the image's entrypoint followed by
    // the command; no entrypoint and no command leaves the agent as the keep-alive process.
    let child: Vec<String> = match (image_entrypoint.is_empty(), cmd) {
        (true, None) => vec![],
        (_, Some(c)) => image_entrypoint.iter().chain(c).cloned().collect(),
        (false, None) => image_entrypoint
            .iter()
            .cloned()
            .chain(super::KEEP_ALIVE.iter().map(|s| s.to_string()))
            .collect(),
    };
    let binds = vec![
        format!("{}:{AGENT_PATH}:ro", bin.display()),
        format!("{}:{AGENT_DIR}", dir.display()),
    ];
    (entrypoint, child, binds)
}

/// Why no agent answered in a started container.
pub(crate) enum WaitError {
    /// The agent did not start: why (it exited, with its last log lines; or the socket
    /// never appeared).
    NotStarted(String),
    /// The agent started (its socket is there) but the container has exited since: the
    /// service's own process ended, with this code.
    Exited(i64),
}

/// An existing socket root is used only if it is a real directory (not a symlink) of this
/// user that no one else can enter: anyone else could otherwise read or swap the sockets.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(dir)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if !m.file_type().is_dir() || m.uid() != uid || m.permissions().mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} exists but is not a private directory of this user",
            dir.display()
        )));
    }
    Ok(())
}

/// The agent's socket, if it is one: the socket directory is writable from inside the
/// container, so a process there could put a symlink (to another environment's socket) in
/// its place, which connecting would follow.
fn is_socket(path: &Path) -> Option<bool> {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| m.file_type().is_socket())
}

/// Wait for the agent of a started container to listen and greet.
pub(crate) async fn wait_agent(
    docker: &Docker,
    container: &str,
    dir: &Path,
) -> Result<AgentConn, WaitError> {
    let socket = dir.join(SOCKET_NAME);
    let start = Instant::now();
    let mut polls = 0u32;
    loop {
        if let Some(is_socket) = is_socket(&socket) {
            if !is_socket {
                return Err(WaitError::NotStarted(format!(
                    "{} is not a socket (replaced from inside the container?)",
                    socket.display()
                )));
            }
            return match AgentConn::connect(&socket, GREETING_TIMEOUT).await {
                Ok(conn) => Ok(conn),
                Err(e) => {
                    // The socket proves the agent ran; if it is gone now, the container is
                    // exiting, which the daemon may not have recorded yet.
                    for _ in 0..50 {
                        if let Some(code) = super::create::exited(docker, container).await {
                            return Err(WaitError::Exited(code));
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(WaitError::NotStarted(e))
                }
            };
        }
        polls += 1;
        if polls % 25 == 0 {
            if let Some(code) = super::create::exited(docker, container).await {
                return Err(WaitError::NotStarted(format!(
                    "the agent exited with code {code}{}",
                    log_tail(docker, container).await
                )));
            }
        }
        if start.elapsed() > START_TIMEOUT {
            return Err(WaitError::NotStarted(format!(
                "the agent's socket did not appear within {START_TIMEOUT:?} (is the daemon's filesystem this machine's?)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn log_tail(docker: &Docker, container: &str) -> String {
    let opts = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail("5")
        .build();
    let mut logs = docker.logs(container, Some(opts));
    let mut text = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        if text.len() > 2000 {
            break;
        }
    }
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_private_real_directory_serves_as_socket_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let private = tmp.path().join("private");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&private)
            .expect("mkdir");
        assert!(private_dir(&private).is_ok());
        let open = tmp.path().join("open");
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&open)
            .expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(private_dir(&open).is_err());
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&private, &link).expect("symlink");
        assert!(private_dir(&link).is_err());
    }

    #[test]
    fn a_symlink_in_place_of_the_socket_is_not_followed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let sock = tmp.path().join("real.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        assert_eq!(is_socket(&sock), Some(true));
        let link = tmp.path().join("agent.sock");
        std::os::unix::fs::symlink(&sock, &link).expect("symlink");
        assert_eq!(is_socket(&link), Some(false));
        assert_eq!(is_socket(&tmp.path().join("missing")), None);
    }
}
