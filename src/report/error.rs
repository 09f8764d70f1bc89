//! Errors of the reporters: rendering, reading results files, merging shards, writing files.

use std::path::PathBuf;

/// Everything that can go wrong while producing or reading a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write JUnit XML: {0}")]
    Junit(#[from] quick_junit::SerializeError),

    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot write `{path}`: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{path}` is not a clnrm results file: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("`{path}` has no `schema_version`: it is not a clnrm results file\nhint: produce one with `clnrm run --json PATH`")]
    MissingSchemaVersion { path: PathBuf },

    #[error("`{path}` has results schema version {found}, this clnrm reads version {expected}\nhint: re-render it with the clnrm version that wrote it")]
    SchemaVersion {
        path: PathBuf,
        found: u64,
        expected: u32,
    },

    /// Two shards disagree on something that must be equal for them to be one run.
    #[error("cannot merge {first} and {second}: different {field} (`{first_value}` vs `{second_value}`)\nhint: only shards of one run of one suite with one clnrm version can be merged")]
    MergeMismatch {
        field: &'static str,
        first: String,
        first_value: String,
        second: String,
        second_value: String,
    },

    #[error("cannot merge {first} and {second}: both contain test `{path}`\nhint: shards of one run hold disjoint sets of tests; was a results file given twice?")]
    MergeDuplicateTest {
        path: String,
        first: String,
        second: String,
    },

    #[error("cannot merge {first} and {second}: both are shard {index}\nhint: was a results file given twice?")]
    MergeDuplicateShard {
        index: u32,
        first: String,
        second: String,
    },

    #[error("nothing to merge: no results given")]
    MergeEmpty,
}
