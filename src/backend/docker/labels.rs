//! Labels on every container and network, and the ownership checks that reaping relies on.

use std::collections::HashMap;

use crate::backend::{LABEL_HOST, LABEL_PID, LABEL_RUN, LABEL_TEST};

/// Labels identifying this process's run; `test` is added per environment.
#[derive(Debug, Clone)]
pub(crate) struct RunLabels {
    pub run_id: String,
    pub pid: u32,
    pub host: String,
}

impl RunLabels {
    pub fn for_this_process(run_id: &str) -> Self {
        RunLabels {
            run_id: run_id.to_string(),
            pid: std::process::id(),
            host: hostname(),
        }
    }

    /// The full label set for an object created for `test`.
    pub fn for_test(&self, test: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_RUN.to_string(), self.run_id.clone()),
            (LABEL_PID.to_string(), self.pid.to_string()),
            (LABEL_HOST.to_string(), self.host.clone()),
            (LABEL_TEST.to_string(), test.to_string()),
        ])
    }
}

/// This machine's hostname (labels tell which host owns a leftover; pids are only
/// meaningful on the host that wrote them).
pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates on success
    // (and we cut at the first NUL or the end anyway).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether a process with this pid exists on this host. EPERM means it exists but belongs
/// to someone else, which still counts as alive: never reap what might be in use.
pub(crate) fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 performs only the existence and permission check.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether an object with these labels belongs to a dead clnrm process on this host.
pub(crate) fn is_dead_leftover(labels: &HashMap<String, String>, this_host: &str) -> bool {
    if !labels.contains_key(LABEL_RUN) {
        return false;
    }
    if labels.get(LABEL_HOST).map(String::as_str) != Some(this_host) {
        // Another host's pid says nothing here: leave it to that host or `clnrm clean`.
        return false;
    }
    match labels.get(LABEL_PID).and_then(|p| p.parse::<u32>().ok()) {
        Some(pid) => pid != std::process::id() && !pid_alive(pid),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pid: &str, host: &str) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_RUN.to_string(), "r1".to_string()),
            (LABEL_PID.to_string(), pid.to_string()),
            (LABEL_HOST.to_string(), host.to_string()),
        ])
    }

    #[test]
    fn own_and_live_pids_are_not_leftovers() {
        let me = std::process::id().to_string();
        assert!(!is_dead_leftover(&labels(&me, "h"), "h"));
        // pid 1 always exists.
        assert!(!is_dead_leftover(&labels("1", "h"), "h"));
    }

    #[test]
    fn dead_pid_on_this_host_is_a_leftover_but_not_elsewhere() {
        // pid_max is at most 2^22 on Linux, so this pid cannot exist.
        let dead = "4194305";
        assert!(is_dead_leftover(&labels(dead, "h"), "h"));
        assert!(!is_dead_leftover(&labels(dead, "other"), "h"));
        assert!(!is_dead_leftover(&labels("garbage", "h"), "h"));
    }

    #[test]
    fn labels_carry_run_pid_host_and_test() {
        let l = RunLabels {
            run_id: "abc".into(),
            pid: 42,
            host: "box".into(),
        }
        .for_test("t1");
        assert_eq!(l[LABEL_RUN], "abc");
        assert_eq!(l[LABEL_PID], "42");
        assert_eq!(l[LABEL_HOST], "box");
        assert_eq!(l[LABEL_TEST], "t1");
    }
}
