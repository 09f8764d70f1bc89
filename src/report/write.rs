//! The one place that writes report files: atomically, so a reader (or a crash) never sees
//! half a report.

use std::io::Write;
use std::path::Path;

use super::error::ReportError;

/// Write `bytes` to `path` atomically (see [`crate::atomic::write_atomic`]); `-` writes to
/// standard output instead.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    // Last line of defence: no report file or stream carries a registered secret.
    let bytes = &*crate::secrets::mask_bytes(bytes);
    if path == Path::new("-") {
        let write_err = |source| ReportError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut out = std::io::stdout().lock();
        out.write_all(bytes).map_err(write_err)?;
        return out.flush().map_err(write_err);
    }
    crate::atomic::write_atomic(path, bytes).map_err(|e| ReportError::Write {
        path: path.to_path_buf(),
        source: e.source,
    })
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
    fn append_keeps_what_was_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("summary.md");
        append(&path, b"one\n").expect("create");
        append(&path, b"two\n").expect("append");
        assert_eq!(std::fs::read(&path).expect("read"), b"one\ntwo\n");
    }
}
