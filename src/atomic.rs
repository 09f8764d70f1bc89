//! The one atomic file writer (reports, baselines, formatted test files): a reader, or a
//! crash, sees the old file or the new one, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Prefix and suffix of the temporary files, so leftovers of a killed process are
/// recognisable (`.clnrm-<pid>.*.tmp` next to the target; the pid lets the next write
/// remove those of dead writers).
pub const TEMP_PREFIX: &str = ".clnrm-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// What failed, and where.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} `{}`: {source}", path.display())]
pub struct AtomicError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Write `bytes` to `path` through a temporary file in the same directory, fsync it, rename
/// it over the target and fsync the directory. Missing parent directories are created (CI
/// configs name paths like `target/reports/junit.xml`). A replaced file keeps its
/// permissions; a new one gets 0644 (temp files are created 0600, and CI upload steps often
/// run as another user than the one that ran the tests).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), AtomicError> {
    let err = |action: &'static str| {
        move |source| AtomicError {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(err("create the directory of"))?;
    // Leftovers of writers killed mid-write (their pid is in the name) go first.
    crate::tempfiles::sweep(&dir, TEMP_PREFIX);
    let mut tmp = tempfile::Builder::new()
        .prefix(&crate::tempfiles::prefix(TEMP_PREFIX))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(&dir)
        .map_err(err("create a temporary file next to"))?;
    tmp.write_all(bytes).map_err(err("write"))?;
    tmp.as_file().sync_all().map_err(err("sync"))?;
    let permissions = match std::fs::metadata(path) {
        Ok(meta) => Some(meta.permissions()),
        Err(_) => new_file_permissions(),
    };
    if let Some(p) = permissions {
        tmp.as_file()
            .set_permissions(p)
            .map_err(err("set the permissions of"))?;
    }
    tmp.persist(path).map_err(|e| err("replace")(e.error))?;
    // The rename is only durable once the directory entry is on disk; some filesystems cannot
    // open a directory, which is not worth failing the write over.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn new_file_permissions() -> Option<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Some(std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn new_file_permissions() -> Option<std::fs::Permissions> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/dir/report.xml");
        write_atomic(&path, b"first").expect("write");
        write_atomic(&path, b"second").expect("overwrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.xml")]);
    }

    #[cfg(unix)]
    #[test]
    fn new_files_are_readable_by_all_and_replaced_files_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.toml");
        write_atomic(&path, b"x").expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o644);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        write_atomic(&path, b"y").expect("rewrite");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn names_the_path_on_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").expect("write");
        let err = write_atomic(&blocker.join("report.xml"), b"x").unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "cannot create the directory of `{}`",
                blocker.join("report.xml").display()
            )),
            "{err}"
        );
    }
}
