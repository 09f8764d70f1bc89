//! Temporary files of atomic writes (temp file + rename) carry the writer's pid in their
//! name, so the leftovers of a writer killed mid-write (kill -9 during `baseline record`) are
//! recognised and removed by the next write in the same folder, without touching the temp
//! file of a concurrent writer that is still alive.

use std::path::Path;

/// Prefix of this process's temp files of `kind` (`.perf-baseline.`, `.clnrm-report-`...).
pub fn prefix(kind: &str) -> String {
    format!("{kind}{}.", std::process::id())
}

/// Remove temp files of `kind` in `dir` left by processes that no longer exist. Errors are
/// ignored: a leftover is untidy, never a reason to fail the write that follows.
pub fn sweep(dir: &Path, kind: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name
            .to_str()
            .filter(|n| n.ends_with(".tmp"))
            .and_then(|n| n.strip_prefix(kind))
        else {
            continue;
        };
        let Some(pid) = rest
            .split('.')
            .next()
            .and_then(|p| p.parse::<i32>().ok())
            .filter(|p| *p > 0)
        else {
            continue;
        };
        if !alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks whether the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_dead_writers_go_and_live_ones_stay() {
        let d = tempfile::tempdir().expect("tempdir");
        // A pid that cannot exist (above pid_max) stands for a killed writer.
        let dead = d.path().join(".perf-baseline.2147483646.abc.tmp");
        let mine = d
            .path()
            .join(format!("{}abc.tmp", prefix(".perf-baseline.")));
        let other = d.path().join(".perf-baseline.2147483646.toml");
        for p in [&dead, &mine, &other] {
            std::fs::write(p, "x").expect("write");
        }
        sweep(d.path(), ".perf-baseline.");
        // Only temp files: a name with a pid but another suffix is never touched.
        assert!(!dead.exists());
        assert!(mine.exists() && other.exists());
    }
}
