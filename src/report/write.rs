//! The one place that writes report files: atomically, so a reader (or a crash) never sees
//! half a report.

use std::io::Write;
use std::path::Path;

use super::error::ReportError;

/// Write `bytes` to `path` through a temporary file in the same directory, fsync it, then
/// rename it over the target; `-` writes to standard output instead. Missing parent
/// directories are created (CI configs name paths like `target/reports/junit.xml`).
///
/// The file gets mode 0644 on Unix: temp files are created 0600, and CI upload steps
/// often run as another user than the one that ran the tests.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    // Last line of defence: no report file or stream carries a registered secret.
    let bytes = &*crate::secrets::mask_bytes(bytes);
    let write_err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes).map_err(write_err)?;
        return out.flush().map_err(write_err);
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(write_err)?;
    crate::tempfiles::sweep(&dir, ".clnrm-report-");
    let mut tmp = tempfile::Builder::new()
        .prefix(&crate::tempfiles::prefix(".clnrm-report-"))
        .tempfile_in(&dir)
        .map_err(write_err)?;
    tmp.write_all(bytes).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(write_err)?;
    }
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    // Make the rename itself durable; failing to open a directory (some filesystems) is
    // not worth failing the report over.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Append `bytes` to `path` in one write, creating it if needed: for
/// `$GITHUB_STEP_SUMMARY`, which other commands of the same step may also write to, so it
/// must not be replaced.
pub fn append(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let bytes = &*crate::secrets::mask_bytes(bytes);
    let write_err = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write_err)?;
    f.write_all(bytes).map_err(write_err)?;
    f.sync_all().map_err(write_err)
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
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }

    #[test]
    fn append_keeps_what_was_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("summary.md");
        append(&path, b"one\n").expect("create");
        append(&path, b"two\n").expect("append");
        assert_eq!(std::fs::read(&path).expect("read"), b"one\ntwo\n");
    }

    #[test]
    fn reports_the_path_on_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").expect("write");
        let err = write_atomic(&blocker.join("report.xml"), b"x").unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "cannot write `{}`",
                blocker.join("report.xml").display()
            )),
            "{err}"
        );
    }
}
