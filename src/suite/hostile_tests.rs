//! The hostile-input corpus (`tests/corpus/hostile`): every file is refused with the located
//! error its first line names, no host file is ever quoted, and nothing aborts. A proptest
//! mutates the corpus files: no mutation panics or aborts the loader.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::{is_test_file, LoadOptions, Loader};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/hostile")
}

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("corpus folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_test_file(p))
        .collect();
    files.sort();
    files
}

#[test]
fn every_hostile_file_is_refused_with_its_located_reason() {
    let files = corpus();
    assert!(files.len() >= 15, "corpus has {} files", files.len());
    let loader = Loader::new(LoadOptions::default());
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read corpus file");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks `# expect:`", f.display()));
        let diags = match loader.load(&f) {
            Ok(l) => panic!("{} loaded: {:?}", f.display(), l.spec.name),
            Err(d) => d,
        };
        let shown: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert!(
            diags.iter().any(|d| d.message.contains(expect)),
            "{}: expected `{expect}` in {shown:#?}",
            f.display()
        );
        assert!(
            diags.iter().all(|d| d.line.is_some()),
            "{}: every error is located: {shown:#?}",
            f.display()
        );
        for s in &shown {
            assert!(
                !s.contains("root:x:0") && !s.contains("/bin/sh\n"),
                "{}: a host file is quoted: {s}",
                f.display()
            );
        }
    }
}

#[test]
fn an_included_file_above_the_size_limit_is_not_read() {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(d.path().join(".clnrm")).expect("mkdir");
    // 300 MB, sparse: costs no disk, and would cost 300 MB of memory if read whole.
    let big = std::fs::File::create(d.path().join("big.tera")).expect("create");
    big.set_len(300 << 20).expect("set_len");
    let p = d.path().join("t.clnrm.toml.tera");
    std::fs::write(&p, "{% include \"big.tera\" %}\n").expect("write");
    let diags = Loader::new(LoadOptions::default())
        .load(&p)
        .expect_err("refused");
    assert!(
        diags[0]
            .message
            .ends_with("big.tera` is above the 4 MiB limit of test files"),
        "{}",
        diags[0]
    );
    assert_eq!(diags[0].line, Some(1));
}

#[test]
fn includes_are_found_only_up_to_the_repository_root() {
    let d = tempfile::tempdir().expect("tempdir");
    let repo = d.path().join("repo");
    std::fs::create_dir_all(repo.join(".git")).expect("mkdir");
    std::fs::create_dir_all(repo.join("tests")).expect("mkdir");
    // Above the repository: never found, although the name is plain.
    std::fs::write(d.path().join("outside.tera"), "leak").expect("write");
    std::fs::write(repo.join("lib.tera"), "[meta]\n").expect("write");
    let p = repo.join("tests/t.clnrm.toml.tera");
    std::fs::write(&p, "{% include \"outside.tera\" %}\n").expect("write");
    let loader = Loader::new(LoadOptions::default());
    let diags = loader.load(&p).expect_err("not found");
    assert_eq!(
        diags[0].message,
        "included template `outside.tera` not found"
    );
    std::fs::write(&p, "{% include \"lib.tera\" %}name = \"t\"\n").expect("write");
    let diags = loader.load(&p).expect_err("incomplete test");
    assert!(
        diags.iter().all(|d| !d.message.contains("not found")),
        "{diags:?}"
    );
    // A symlink inside the repository pointing out of it is refused.
    std::os::unix::fs::symlink(d.path().join("outside.tera"), repo.join("link.tera"))
        .expect("symlink");
    std::fs::write(&p, "{% include \"link.tera\" %}\n").expect("write");
    let diags = loader.load(&p).expect_err("refused");
    assert!(
        diags[0].message.contains("outside the repository"),
        "{}",
        diags[0]
    );
}

#[test]
fn mounts_resolve_relative_to_the_file_and_obey_the_allowlist() {
    let d = tempfile::tempdir().expect("tempdir");
    let repo = std::fs::canonicalize(d.path()).expect("canonical");
    std::fs::create_dir_all(repo.join(".clnrm")).expect("mkdir");
    std::fs::create_dir_all(repo.join("suite/fixtures")).expect("mkdir");
    let p = repo.join("suite/m.clnrm.toml");
    let file = |mount: &str| {
        format!(
            "[meta]\nname = \"m\"\n[service.a]\nimage = \"x\"\nmounts = [\"{mount}\"]\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\ncmd = [\"true\"]\n"
        )
    };
    std::fs::write(&p, file("./fixtures:/fixtures:ro")).expect("write");
    let spec = Loader::new(LoadOptions::default())
        .load(&p)
        .expect("valid")
        .spec;
    assert_eq!(
        spec.services["a"].mounts,
        vec![format!(
            "{}:/fixtures:ro",
            repo.join("suite/fixtures").display()
        )]
    );
    std::fs::write(&p, file("/etc/hostname:/h:ro")).expect("write");
    let diags = Loader::new(LoadOptions::default())
        .load(&p)
        .expect_err("refused");
    assert_eq!(
        (diags[0].line, diags[0].column),
        (Some(5), Some(11)),
        "{}",
        diags[0]
    );
    let allowed = Loader::new(LoadOptions {
        allow_mounts: vec![PathBuf::from("/etc/hostname")],
        ..Default::default()
    });
    assert_eq!(
        allowed.load(&p).expect("allowed").spec.services["a"].mounts,
        vec!["/etc/hostname:/h:ro".to_string()]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Byte-level mutations of the hostile corpus never panic or abort the loader, and
    /// every error names the file.
    #[test]
    fn mutated_corpus_files_never_panic(
        pick in 0usize..64,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
    ) {
        let files = corpus();
        let src = &files[pick % files.len()];
        let mut bytes = std::fs::read(src).expect("read");
        for (at, b) in edits {
            if !bytes.is_empty() {
                let i = at as usize % bytes.len();
                bytes[i] = b;
            }
        }
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join(src.file_name().expect("name"));
        std::fs::write(&p, &bytes).expect("write");
        if let Err(diags) = Loader::new(LoadOptions::default()).load(&p) {
            for x in diags {
                prop_assert!(x.to_string().contains("-->"));
            }
        }
    }
}
