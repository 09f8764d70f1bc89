//! JSON results: the stable, versioned serialisation of [`RunResults`] and its reader.

use std::path::Path;

use crate::results::{RunResults, SCHEMA_VERSION};

use super::error::ReportError;

/// Pretty-printed JSON with a trailing newline. Stable: field order follows the struct
/// declarations and every map is a `BTreeMap`, so equal results give equal bytes.
pub fn json(results: &RunResults) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(results)
        .expect("RunResults has only string map keys and derived Serialize impls");
    out.push(b'\n');
    out
}

/// Read a results file written by [`json`]; `-` reads standard input.
///
/// The schema version is checked before the rest is decoded, so a file from another clnrm
/// version gets a version error rather than a confusing "missing field" one.
pub fn read_json(path: &Path) -> Result<RunResults, ReportError> {
    let bytes = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut buf).map_err(|source| {
            ReportError::Read {
                path: path.to_path_buf(),
                source,
            }
        })?;
        buf
    } else {
        std::fs::read(path).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            source,
        })?
    };
    parse_json(path, &bytes)
}

/// Decode results from bytes; `path` only names the source in errors.
pub fn parse_json(path: &Path, bytes: &[u8]) -> Result<RunResults, ReportError> {
    let parse_err = |source| ReportError::Parse {
        path: path.to_path_buf(),
        source,
    };
    // First pass reads only the version (other fields are skipped, not built), so a file
    // of another version is reported as such instead of as a missing field.
    #[derive(serde::Deserialize)]
    struct Probe {
        schema_version: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(parse_err)?;
    let found = probe
        .schema_version
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| ReportError::MissingSchemaVersion {
            path: path.to_path_buf(),
        })?;
    if found != u64::from(SCHEMA_VERSION) {
        return Err(ReportError::SchemaVersion {
            path: path.to_path_buf(),
            found,
            expected: SCHEMA_VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(parse_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    #[test]
    fn round_trips_and_is_stable() {
        let results = fixtures::mixed();
        let bytes = json(&results);
        assert_eq!(bytes, json(&results));
        let back = parse_json(Path::new("r.json"), &bytes).expect("own output parses");
        assert_eq!(back, results);
    }

    #[test]
    fn reads_a_file_from_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("results.json");
        std::fs::write(&path, json(&fixtures::mixed())).expect("write");
        assert_eq!(read_json(&path).expect("reads"), fixtures::mixed());
        let missing = read_json(&dir.path().join("nope.json")).unwrap_err();
        assert!(matches!(missing, ReportError::Read { .. }), "{missing}");
    }

    #[test]
    fn rejects_other_schema_versions_clearly() {
        let err =
            parse_json(Path::new("old.json"), br#"{"schema_version": 7, "x": 1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`old.json` has results schema version 7, this clnrm reads version 1\n\
             hint: re-render it with the clnrm version that wrote it"
        );
        let err = parse_json(Path::new("a.json"), br#"{"tests": []}"#).unwrap_err();
        assert!(matches!(err, ReportError::MissingSchemaVersion { .. }));
        let err = parse_json(Path::new("a.json"), b"not json").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("`a.json` is not a clnrm results file: "));
    }
}
