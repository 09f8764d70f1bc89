//! One exec in a running container: argv intact, stdout/stderr demultiplexed, timeout kill.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::Docker;
use futures_util::StreamExt;

use super::error::api_error;
use crate::backend::capture::Capture;
use crate::backend::{BackendError, ExecOutput};

/// Run `argv` in `container` and collect its result. On timeout the exec's process tree is
/// killed and `timed_out` is set; the returned flag `clean` is false when the kill could not
/// be confirmed, so the caller must not reuse the container.
pub(crate) async fn exec_in(
    docker: &Docker,
    container: &str,
    argv: &[String],
    env: &BTreeMap<String, String>,
    workdir: Option<&str>,
    timeout: Duration,
) -> Result<(ExecOutput, bool), BackendError> {
    if argv.is_empty() {
        return Err(BackendError::Other("empty argv".to_string()));
    }
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let opts = CreateExecOptions::<String> {
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        attach_stdin: Some(false),
        tty: Some(false),
        cmd: Some(argv.to_vec()),
        env: (!env.is_empty()).then(|| env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: workdir.map(str::to_string),
        ..Default::default()
    };
    let created = docker
        .create_exec(container, opts)
        .await
        .map_err(|e| api_error("create exec", e))?;
    let mut out = ExecOutput::default();
    let (mut so, mut se) = (Capture::default(), Capture::default());
    match docker
        .start_exec(&created.id, None)
        .await
        .map_err(|e| api_error("start exec", e))?
    {
        StartExecResults::Attached { mut output, .. } => loop {
            match tokio::time::timeout_at(deadline, output.next()).await {
                Ok(Some(Ok(LogOutput::StdOut { message }))) => so.push(&message),
                Ok(Some(Ok(LogOutput::StdErr { message }))) => se.push(&message),
                // Without a tty the daemon only sends stdout/stderr frames; anything else is
                // console output that belongs with stdout.
                Ok(Some(Ok(LogOutput::Console { message }))) => so.push(&message),
                Ok(Some(Ok(LogOutput::StdIn { .. }))) => {}
                Ok(Some(Err(e))) => return Err(api_error("read exec output", e)),
                Ok(None) => break,
                Err(_elapsed) => {
                    out.timed_out = true;
                    break;
                }
            }
        },
        StartExecResults::Detached => {
            return Err(BackendError::Other(
                "exec started detached although output was requested".to_string(),
            ))
        }
    }
    (out.stdout, out.stdout_cut) = so.finish();
    (out.stderr, out.stderr_cut) = se.finish();
    let mut clean = true;
    if out.timed_out {
        clean = kill_exec(docker, &created.id, container).await;
        out.exit_code = None;
    } else {
        // The stream can end a moment before the daemon records the exit code.
        let mut code = None;
        for _ in 0..50 {
            let info = docker
                .inspect_exec(&created.id)
                .await
                .map_err(|e| api_error("inspect exec", e))?;
            if info.running != Some(true) {
                code = info.exit_code;
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        out.exit_code = code;
    }
    out.duration = started.elapsed();
    Ok((out, clean))
}

/// Kill a timed-out exec and its descendants. The pid the daemon reports is in the daemon's
/// pid namespace; it is only signalled after /proc confirms it belongs to this container's
/// cgroup (so a different namespace or a reused pid is never hit). Returns whether it was
/// killed; otherwise the caller destroys the container, which kills the process for sure.
async fn kill_exec(docker: &Docker, exec_id: &str, container: &str) -> bool {
    let Ok(info) = docker.inspect_exec(exec_id).await else {
        return false;
    };
    if info.running != Some(true) {
        return true;
    }
    let full_id = info.container_id.unwrap_or_else(|| container.to_string());
    let Some(pid) = info
        .pid
        .and_then(|p| i32::try_from(p).ok())
        .filter(|p| *p > 0)
    else {
        return false;
    };
    if !in_container_cgroup(pid, &full_id) {
        return false;
    }
    // Collect the tree before killing: once the parent dies, children are re-parented.
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        tree.extend(children(tree[i]));
        i += 1;
    }
    for p in &tree {
        // SAFETY: plain kill(2) on pids verified above to belong to the container.
        unsafe {
            libc::kill(*p, libc::SIGKILL);
        }
    }
    true
}

fn in_container_cgroup(pid: i32, container_id: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .map(|s| !container_id.is_empty() && s.contains(container_id))
        .unwrap_or(false)
}

fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}
