//! fmt and lint through the public API: property tests over generated files, and `fmt_paths`
//! on real files (check mode, atomic writes, refusals, directory walking).

use std::path::PathBuf;

use clnrm::fmt::{fmt_paths, format_source, FileStatus, SourceKind};
use proptest::prelude::*;

mod support;

// ---------- generated current-dialect files ----------

fn content() -> impl Strategy<Value = String> {
    // `=`, `==`, `X=1`, `#` and `[` inside strings must never be touched or misread.
    "[a-zA-Z0-9 =X_.:/#\\[-]{0,12}"
}

fn string_repr() -> impl Strategy<Value = String> {
    prop_oneof![
        content().prop_map(|s| format!("\"{s}\"")),
        content().prop_map(|s| format!("'{s}'")),
        (content(), content()).prop_map(|(a, b)| format!("\"\"\"\n{a}\n  {b} == X=1\n\"\"\"")),
        (content(), content()).prop_map(|(a, b)| format!("'''{a}\n   {b}'''")),
        Just(r#""X=1 == \"q\" \u00e9\t""#.to_string()),
    ]
}

fn comment() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[a-z ]{0,10}".prop_map(|c| format!("# {c}")))
}

fn array_repr() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(string_repr(), 0..4),
        any::<bool>(),
        comment(),
    )
        .prop_map(|(items, multi, c)| {
            if multi {
                let mut s = String::from("[\n");
                if let Some(c) = c {
                    s.push_str(&format!("  {c}\n"));
                }
                for i in &items {
                    s.push_str(&format!("      {i},\n"));
                }
                s.push(']');
                s
            } else {
                format!("[ {} ]", items.join(" ,"))
            }
        })
}

fn value_repr() -> impl Strategy<Value = String> {
    prop_oneof![
        string_repr(),
        (-1000i64..1000).prop_map(|i| i.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        array_repr(),
        (string_repr(), string_repr()).prop_map(|(a, b)| format!("{{A={a},   B = {b}}}")),
    ]
}

fn sep() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" = ", "=", "   =   ", " =\t"])
}

/// A table body: keys from `pool` (a random subset, shuffled), random values and layout.
fn body(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::subsequence(pool.to_vec(), 0..=pool.len())
        .prop_shuffle()
        .prop_flat_map(|keys| {
            let n = keys.len();
            (
                Just(keys),
                prop::collection::vec(
                    (value_repr(), sep(), comment(), comment(), any::<bool>()),
                    n,
                ),
            )
        })
        .prop_map(|(keys, vals)| {
            let mut s = String::new();
            for (k, (v, sep, above, after, blank)) in keys.iter().zip(vals) {
                if blank {
                    s.push('\n');
                }
                if let Some(c) = above {
                    s.push_str(&format!("  {c}\n"));
                }
                s.push_str(&format!("{k}{sep}{v}"));
                if let Some(c) = after {
                    s.push_str(&format!("   {c}"));
                }
                s.push('\n');
            }
            s
        })
}

const META: &[&str] = &[
    "name",
    "description",
    "tags",
    "timeout",
    "zz_unknown",
    "retries",
];
const SERVICE: &[&str] = &[
    "image",
    "cmd",
    "env",
    "workdir",
    "reuse",
    "labels.extra",
    "x_custom",
];
const SCENARIO: &[&str] = &["name", "timeout", "service", "description"];
const STEP: &[&str] = &[
    "cmd",
    "name",
    "stdout_contains",
    "exit_code",
    "sh_x",
    "stderr_regex",
];
const VARS: &[&str] = &["zeta", "alpha", "mid"];
const PERF: &[&str] = &["max_ms", "tolerance"];

fn file() -> impl Strategy<Value = String> {
    let scenario = (
        body(SCENARIO),
        prop::collection::vec(body(STEP), 0..3),
        comment(),
    )
        .prop_map(|(b, steps, c)| {
            let mut s = String::new();
            if let Some(c) = c {
                s.push_str(&format!("{c}\n"));
            }
            s.push_str(&format!("[[scenario]]\n{b}"));
            for st in steps {
                s.push_str(&format!("[[ scenario.steps ]]\n{st}"));
            }
            s
        });
    (
        body(META).prop_map(|b| format!("[meta]\n{b}")),
        body(VARS).prop_map(|b| format!("[vars]\n{b}")),
        body(SERVICE).prop_map(|b| format!("[service.web]   # web\n{b}")),
        body(SERVICE).prop_map(|b| format!("[service.\"db 1\"]\n{b}")),
        prop::collection::vec(scenario, 0..3),
        body(PERF).prop_map(|b| format!("[perf]\n{b}")),
        comment(),
    )
        .prop_flat_map(|(m, v, s1, s2, scenarios, p, tail)| {
            let mut blocks = vec![m, v, s1, s2, p];
            blocks.extend(scenarios);
            (Just(blocks).prop_shuffle(), Just(tail))
        })
        .prop_map(|(blocks, tail)| {
            let mut s = blocks.join("\n");
            if let Some(t) = tail {
                s.push_str(&format!("\n{t}\n"));
            }
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fmt_is_idempotent_and_keeps_the_toml_value(src in file()) {
        let before: toml::Value = toml::from_str(&src).expect("generator makes valid TOML");
        let once = format_source(&src, SourceKind::Toml).expect("formats");
        let twice = format_source(&once, SourceKind::Toml).expect("formats again");
        prop_assert_eq!(&twice, &once);
        let after: toml::Value = toml::from_str(&once).expect("output parses");
        prop_assert_eq!(after, before);
    }

    #[test]
    fn templated_strings_survive_byte_for_byte(src in file(), expr in "[a-z_.]{1,8}") {
        // Put a Tera expression into every double-quoted single-line string.
        let tagged = src.replace("\"X=1", &format!("\"{{{{ {expr} }}}}X=1"));
        let once = format_source(&tagged, SourceKind::TeraTemplate).expect("formats");
        let twice = format_source(&once, SourceKind::TeraTemplate).expect("formats again");
        prop_assert_eq!(&twice, &once);
        prop_assert_eq!(
            once.matches(&format!("{{{{ {expr} }}}}")).count(),
            tagged.matches(&format!("{{{{ {expr} }}}}")).count()
        );
    }
}

// ---------- fmt_paths on disk ----------

const MESSY: &str = "[service.b]\nimage=\"b:1\"\n[meta]\nname=\"t\"\n";
const CLEAN: &str = "[meta]\nname = \"t\"\n\n[service.b]\nimage = \"b:1\"\n";

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write fixture");
    p
}

#[test]
fn check_mode_diffs_and_leaves_files_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let messy = write(dir.path(), "a.clnrm.toml", MESSY);
    let clean = write(dir.path(), "b.clnrm.toml", CLEAN);
    let out = fmt_paths(&[messy.clone(), clean.clone()], true);
    assert_eq!(out.exit_code(), 1);
    assert_eq!(out.files.len(), 2);
    assert_eq!(out.files[1].status, FileStatus::Unchanged);
    let FileStatus::WouldChange { diff } = &out.files[0].status else {
        panic!("{:?}", out.files[0]);
    };
    assert!(diff.starts_with(&format!(
        "--- a/{}\n+++ b/{}\n",
        messy.display(),
        messy.display()
    )));
    assert!(
        diff.contains("+name = \"t\"\n") && diff.contains("-image=\"b:1\"\n"),
        "{diff}"
    );
    assert_eq!(std::fs::read_to_string(&messy).expect("read"), MESSY);
}

#[test]
fn write_mode_rewrites_atomically_and_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let messy = write(dir.path(), "a.clnrm.toml", MESSY);
    let out = fmt_paths(std::slice::from_ref(&messy), false);
    assert_eq!(out.files[0].status, FileStatus::Formatted);
    assert_eq!(out.exit_code(), 0);
    assert_eq!(std::fs::read_to_string(&messy).expect("read"), CLEAN);
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("a.clnrm.toml")]);
    assert_eq!(fmt_paths(&[messy], true).exit_code(), 0);
}

#[test]
fn skipped_templates_and_broken_files_stay_untouched_and_broken_ones_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tpl = "[meta]\n{% if x %}\nname = \"a\"\n{% endif %}\n";
    let t = write(dir.path(), "t.clnrm.toml.tera", tpl);
    let bad = write(dir.path(), "bad.clnrm.toml", "[meta\n");
    let missing = dir.path().join("missing.clnrm.toml");
    let out = fmt_paths(&[t.clone(), bad, missing], false);
    assert_eq!(out.exit_code(), 2);
    let kinds: Vec<&str> = out
        .files
        .iter()
        .map(|f| match &f.status {
            FileStatus::Refused(_) => "refused",
            FileStatus::Skipped(_) => "skipped",
            FileStatus::Io(_) => "io",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["refused", "io", "skipped"]);
    assert!(
        out.summary()
            .contains("t.clnrm.toml.tera:2: template left unchanged: "),
        "{}",
        out.summary()
    );
    assert_eq!(std::fs::read_to_string(&t).expect("read"), tpl);
    // A template fmt cannot lay out is left as written, which is not a failure.
    assert_eq!(fmt_paths(std::slice::from_ref(&t), true).exit_code(), 0);
}

#[test]
fn directory_walk_only_picks_test_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    let cargo = write(dir.path(), "Cargo.toml", "[package]\nname=\"x\"\n");
    write(&dir.path().join("sub"), "a.clnrm.toml", MESSY);
    let out = fmt_paths(&[dir.path().to_path_buf()], false);
    assert_eq!(out.files.len(), 1);
    assert!(out.files[0].path.ends_with("sub/a.clnrm.toml"));
    assert_eq!(
        std::fs::read_to_string(cargo).expect("read"),
        "[package]\nname=\"x\"\n"
    );
}
