//! Finding test files: `*.clnrm.toml` and `*.clnrm.toml.tera` under the given roots, honouring
//! `.gitignore`, never stray TOML, symlink loops reported instead of followed forever.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Directories never searched, even without a `.gitignore`.
const SKIP_DIRS: &[&str] = &[".git", "target", "node_modules"];

#[derive(Debug, Error)]
pub enum DiscoverError {
    #[error("path `{path}` does not exist")]
    NotFound { path: PathBuf },
    #[error("symlink loop at `{path}`")]
    SymlinkLoop { path: PathBuf },
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("while searching `{root}`: {message}")]
    Walk { root: PathBuf, message: String },
}

/// True for names that are tests (as opposed to includable templates like `_macros.toml.tera`).
pub fn is_test_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('_') && (name.ends_with(".clnrm.toml") || name.ends_with(".clnrm.toml.tera"))
}

/// Test files under `roots`, sorted and deduplicated. A file given explicitly is taken even if
/// ignored or differently named; an empty result is not an error (the caller exits 4).
pub fn discover(roots: &[PathBuf]) -> Result<Vec<PathBuf>, DiscoverError> {
    // Keyed by canonical path so `./a` and `a` count once; the value keeps the given spelling.
    let mut found: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    for root in roots {
        let meta = std::fs::metadata(root).map_err(|e| io_error(root, e))?;
        if meta.is_file() {
            add(&mut found, root.clone());
            continue;
        }
        let walker = ignore::WalkBuilder::new(root)
            .require_git(false)
            .follow_links(true)
            .filter_entry(|e| {
                let skip = e.file_type().is_some_and(|t| t.is_dir())
                    && e.depth() > 0
                    && e.file_name()
                        .to_str()
                        .is_some_and(|n| SKIP_DIRS.contains(&n));
                !skip
            })
            .build();
        for entry in walker {
            let entry = entry.map_err(|e| walk_error(root, e))?;
            if entry.file_type().is_some_and(|t| t.is_file()) && is_test_file(entry.path()) {
                add(&mut found, entry.into_path());
            }
        }
    }
    let mut out: Vec<PathBuf> = found.into_values().collect();
    out.sort();
    out.dedup();
    Ok(out)
}

fn add(found: &mut BTreeMap<PathBuf, PathBuf>, p: PathBuf) {
    let key = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
    found.entry(key).or_insert(p);
}

fn io_error(path: &Path, e: std::io::Error) -> DiscoverError {
    match e.kind() {
        std::io::ErrorKind::NotFound => DiscoverError::NotFound { path: path.into() },
        // ELOOP has no stable ErrorKind on every toolchain; match the OS code.
        _ if e.raw_os_error() == Some(libc::ELOOP) => {
            DiscoverError::SymlinkLoop { path: path.into() }
        }
        _ => DiscoverError::Io {
            path: path.into(),
            source: e,
        },
    }
}

fn walk_error(root: &Path, e: ignore::Error) -> DiscoverError {
    match innermost(e) {
        ignore::Error::Loop { child, .. } => DiscoverError::SymlinkLoop { path: child },
        ignore::Error::Io(io) if io.raw_os_error() == Some(libc::ELOOP) => {
            DiscoverError::SymlinkLoop { path: root.into() }
        }
        ignore::Error::WithPath { path, err } => match *err {
            ignore::Error::Io(io) => io_error(&path, io),
            other => DiscoverError::Walk {
                root: root.into(),
                message: other.to_string(),
            },
        },
        other => DiscoverError::Walk {
            root: root.into(),
            message: other.to_string(),
        },
    }
}

/// `ignore` wraps errors in depth/path layers; unwrap depth so loops are recognised.
fn innermost(e: ignore::Error) -> ignore::Error {
    match e {
        ignore::Error::WithDepth { err, .. } => innermost(*err),
        ignore::Error::WithLineNumber { err, .. } => innermost(*err),
        ignore::Error::WithPath { path, err } => match innermost(*err) {
            l @ ignore::Error::Loop { .. } => l,
            other => ignore::Error::WithPath {
                path,
                err: Box::new(other),
            },
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(dir: &Path, rel: &str) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
        fs::write(p, "").expect("write");
    }

    #[test]
    fn finds_tests_only_and_honours_gitignore_and_skip_dirs() {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        for f in [
            "a.clnrm.toml",
            "sub/b.clnrm.toml.tera",
            "sub/_macros.toml.tera",
            "sub/helpers.tera",
            "Cargo.toml",
            "x.toml",
            "target/t.clnrm.toml",
            "node_modules/n.clnrm.toml",
            "ignored/i.clnrm.toml",
        ] {
            touch(r, f);
        }
        fs::write(r.join(".gitignore"), "ignored/\n").expect("write");
        let got = discover(&[r.to_path_buf()]).expect("discover");
        let rel: Vec<_> = got
            .iter()
            .map(|p| p.strip_prefix(r).expect("under root").to_path_buf())
            .collect();
        assert_eq!(
            rel,
            vec![
                PathBuf::from("a.clnrm.toml"),
                PathBuf::from("sub/b.clnrm.toml.tera")
            ]
        );
        // An explicit file is taken even though ignored, and duplicates collapse.
        let explicit = r.join("ignored/i.clnrm.toml");
        let got = discover(&[explicit.clone(), explicit.clone()]).expect("discover");
        assert_eq!(got, vec![explicit]);
    }

    #[test]
    fn empty_directory_yields_empty_list() {
        let d = tempfile::tempdir().expect("tempdir");
        touch(d.path(), "Cargo.toml");
        assert_eq!(
            discover(&[d.path().to_path_buf()]).expect("discover"),
            Vec::<PathBuf>::new()
        );
    }

    #[test]
    fn symlink_loop_is_an_error_not_a_hang() {
        let d = tempfile::tempdir().expect("tempdir");
        let r = d.path();
        fs::create_dir(r.join("a")).expect("mkdir");
        std::os::unix::fs::symlink(r, r.join("a/back")).expect("symlink");
        let err = discover(&[r.to_path_buf()]).expect_err("loop detected");
        assert!(matches!(err, DiscoverError::SymlinkLoop { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("symlink loop at `{}`", r.join("a/back").display())
        );
        // A symlink pointing at itself, given explicitly.
        std::os::unix::fs::symlink(r.join("self.clnrm.toml"), r.join("self.clnrm.toml"))
            .expect("symlink");
        let err = discover(&[r.join("self.clnrm.toml")]).expect_err("ELOOP");
        assert_eq!(
            err.to_string(),
            format!("symlink loop at `{}`", r.join("self.clnrm.toml").display())
        );
    }

    #[test]
    fn missing_root_is_reported() {
        let err = discover(&[PathBuf::from("/definitely/not/here")]).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "path `/definitely/not/here` does not exist"
        );
    }
}
