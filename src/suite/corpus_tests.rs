//! The upstream corpus (`tests/fixtures/upstream`): files written from the documentation of
//! the system clnrm reimplements. Which load, and the located reason of each one that does not,
//! are pinned here and reported in the README.

use std::path::PathBuf;

use super::*;

const DIR: &str = "tests/fixtures/upstream";

fn corpus() -> Vec<PathBuf> {
    let mut files = discover(&[PathBuf::from(DIR)]).expect("corpus is discoverable");
    files.sort();
    files
}

/// File name -> `None` when it loads, else the first error as `line:col message`.
fn outcomes(default_image: Option<&str>) -> Vec<(String, Option<String>)> {
    let loader = Loader::new(LoadOptions {
        default_image: default_image.map(str::to_string),
        ..Default::default()
    });
    corpus()
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let out = loader.load(p).err().map(|d| {
                let first = &d[0];
                format!(
                    "{}:{} {}",
                    first.line.unwrap_or(0),
                    first.column.unwrap_or(0),
                    first.message
                )
            });
            (name, out)
        })
        .collect()
}

/// What the README reports: 22 files, 16 load as they are, 18 with a default image.
const REJECTED: &[(&str, &str)] = &[
    (
        "old-bad-regex.clnrm.toml",
        "12:25 invalid regex in `stdout_regex`: unclosed group",
    ),
    (
        "old-missing-command.clnrm.toml",
        "7:1 step `nothing_to_run` has nothing to run",
    ),
    (
        "old-multi-service.clnrm.toml",
        "26:1 step `no_service_named` does not say which service it runs on (the test declares `app_server`, `database`)",
    ),
    (
        "old-no-service.clnrm.toml",
        "5:1 step `uname` has no service to run on",
    ),
    (
        "v1-conditional-headers.clnrm.toml.tera",
        "10:7 undefined template variable `token`",
    ),
    (
        "v1-unknown-service.clnrm.toml",
        "12:11 scenario names service `ap`, which is not declared",
    ),
];

fn rejected(got: &[(String, Option<String>)]) -> Vec<(&str, &str)> {
    got.iter()
        .filter_map(|(n, o)| o.as_deref().map(|o| (n.as_str(), o)))
        .collect()
}

#[test]
fn corpus_outcomes_are_pinned() {
    let got = outcomes(None);
    assert_eq!(got.len(), 22);
    assert_eq!(rejected(&got), REJECTED);
    // With a default image, steps naming no service run in the default service.
    let with_default = outcomes(Some("clnrm-test/busybox:latest"));
    let still: Vec<&str> = rejected(&with_default).iter().map(|r| r.0).collect();
    assert_eq!(
        still,
        [
            "old-bad-regex.clnrm.toml",
            "old-missing-command.clnrm.toml",
            "v1-conditional-headers.clnrm.toml.tera",
            "v1-unknown-service.clnrm.toml",
        ]
    );
}

/// The spec without what legitimately differs after a rewrite (lines, hash, dialect).
fn meaning(spec: &TestSpec) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                for k in ["line", "content_hash", "dialect", "path"] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(spec).expect("specs serialise");
    strip(&mut v);
    v
}

/// `clnrm fmt` writes what the loader reads: every loadable plain file of the corpus, once
/// rewritten, loads without an upstream warning into the same test.
#[test]
fn fmt_rewrites_to_what_the_loader_normalises() {
    let loader = Loader::new(LoadOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    for p in corpus() {
        let src = std::fs::read_to_string(&p).expect("read");
        let kind = crate::fmt::SourceKind::detect(&p, &src);
        let (Ok(before), crate::fmt::SourceKind::Toml) = (loader.load(&p), kind) else {
            continue;
        };
        let out = crate::fmt::format_source(&src, kind).expect("formats");
        let q = dir.path().join(p.file_name().expect("file name"));
        std::fs::write(&q, &out).expect("write");
        let after = loader
            .load(&q)
            .unwrap_or_else(|d| panic!("{}: {d:?}\n{out}", p.display()));
        let upstream: Vec<&str> = after
            .warnings
            .iter()
            .map(|w| w.message.as_str())
            .filter(|m| m.contains("upstream form"))
            .collect();
        assert!(upstream.is_empty(), "{}: {upstream:?}\n{out}", p.display());
        assert_eq!(
            meaning(&after.spec),
            meaning(&before.spec),
            "{}\n{out}",
            p.display()
        );
        checked += 1;
    }
    assert_eq!(checked, 10);
}
