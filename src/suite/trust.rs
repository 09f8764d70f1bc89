//! The trust boundary of a test file: which host paths it may bind-mount and which files it
//! may include. A test file alone reaches only the repository it lives in; anything else needs
//! the project config (`allow_mounts`) or `--allow-mount`. Host mounts are read-only: a test
//! file that could write through one could change the checkout later CI steps run, or swap a
//! folder for a symlink that a later mount follows out of the repository. `:rw` needs
//! `allow_rw_mounts` or `--allow-rw-mounts`.

use std::path::{Component, Path, PathBuf};

/// Paths a bind mount never reaches without an explicit allowlist entry, even when the
/// repository root is above them: they hand the container the host.
const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var",
    "/var/run",
    "/var/lib/docker",
];

/// Trees refused whole (the host's configuration, kernel interfaces, devices, the daemon).
const SYSTEM_TREES: &[&str] = &[
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/run",
    "/var/run",
    "/var/lib/docker",
];

/// The repository root of `file`: `configured` when given, else the nearest folder above the
/// file holding `.git` or `.clnrm`, else the file's own folder (a lone file reaches only its
/// neighbours).
pub(crate) fn repo_root(file: &Path, configured: Option<&Path>) -> PathBuf {
    if let Some(r) = configured {
        return canonical(r);
    }
    let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let folder = abs
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut dir = Some(folder.as_path());
    while let Some(d) = dir {
        if d.join(".git").exists() || d.join(".clnrm").exists() {
            return canonical(d);
        }
        dir = d.parent();
    }
    canonical(&folder)
}

/// Symlinks resolved when the path exists, else `.` and `..` removed lexically.
pub(crate) fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| lexical(p))
}

fn lexical(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// Why a mount or include was refused: message and hint for a located diagnostic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub message: String,
    pub hint: String,
}

fn refuse(message: String, hint: impl Into<String>) -> Refusal {
    Refusal {
        message,
        hint: hint.into(),
    }
}

/// What the project allows a test file's mounts beyond its repository: more host paths, and
/// writing (`:rw`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MountAllow<'a> {
    pub paths: &'a [PathBuf],
    pub rw: bool,
}

/// A mount as written (`source:/target[:ro|rw]`), syntax already checked. Returns the mount
/// with its source made absolute and its mode explicit (what Docker receives; a host mount
/// without a mode is read-only), or why it is refused.
///
/// A source starting with `/`, `.` or `~`, or holding a `/`, is a host path (relative ones
/// resolve against the test file's folder); a bare name (`data`) is a Docker named volume,
/// which holds no host path and is left as is.
pub(crate) fn resolve_mount(
    file: &Path,
    root: &Path,
    allow: &MountAllow<'_>,
    mount: &str,
) -> Result<String, Refusal> {
    let (source, rest) = mount.split_once(':').unwrap_or((mount, ""));
    let is_volume = !source.contains('/')
        && !source.starts_with('.')
        && !source.starts_with('~')
        && source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if is_volume {
        return Ok(mount.to_string());
    }
    if source.starts_with('~') {
        return Err(refuse(
            format!("mount source `{source}`: `~` is not expanded"),
            "write the path relative to the test file, e.g. `./fixtures:/fixtures:ro`",
        ));
    }
    let folder = std::path::absolute(file)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let joined = if Path::new(source).is_absolute() {
        PathBuf::from(source)
    } else {
        folder.join(source)
    };
    let resolved = canonical(&joined);
    let resolved_text = resolved.display().to_string();
    let shown = if source == resolved_text {
        format!("`{source}`")
    } else {
        format!("`{source}` (`{resolved_text}`)")
    };
    let (target, mode) = match rest.rsplit_once(':') {
        Some((t, m)) if m == "ro" || m == "rw" => (t, m),
        _ => (rest, "ro"),
    };
    let with_rest = format!("{resolved_text}:{target}:{mode}");
    let writable = |with_rest: String| {
        if mode == "rw" && !allow.rw {
            Err(refuse(
                format!("read-write mount of {shown} refused: test files may not write to the host"),
                "host mounts are read-only; if the tests really must write there, allow it with `allow_rw_mounts = true` in `.clnrm/config.toml` or `--allow-rw-mounts`",
            ))
        } else {
            Ok(with_rest)
        }
    };
    if allow.paths.iter().any(|a| resolved.starts_with(a)) {
        return writable(with_rest);
    }
    let allow_hint = format!(
        "if the test really needs it, allow it in `.clnrm/config.toml` (`allow_mounts = [\"{resolved_text}\"]`) or with `--allow-mount {resolved_text}`"
    );
    if is_socket(&resolved) {
        let what = if resolved_text.ends_with("docker.sock") {
            "the Docker daemon socket, which gives a container full control of the host"
        } else {
            "a Unix socket of the host"
        };
        return Err(refuse(
            format!("mount of {shown} refused: it is {what}"),
            allow_hint,
        ));
    }
    let system = SYSTEM_DIRS.iter().any(|s| resolved == Path::new(s))
        || SYSTEM_TREES.iter().any(|s| resolved.starts_with(s));
    if system {
        return Err(refuse(
            format!("mount of {shown} refused: it is a system path of the host"),
            allow_hint,
        ));
    }
    let root_is_system = SYSTEM_DIRS.iter().any(|s| root == Path::new(s));
    if !resolved.starts_with(root) || root_is_system {
        return Err(refuse(
            format!(
                "mount of {shown} refused: it is outside the repository (`{}`)",
                root.display()
            ),
            format!("a test file may mount only paths below its repository root; {allow_hint}"),
        ));
    }
    if !joined.exists() {
        return Err(refuse(
            format!("mount source {shown} does not exist"),
            "relative sources resolve against the test file's folder; Docker would create a missing one, owned by root",
        ));
    }
    writable(with_rest)
}

/// Checked again just before Docker resolves a bind (`source:/target:mode` as
/// [`resolve_mount`] returned it): the source must still resolve to itself. Between loading
/// and container creation an earlier test may have swapped a folder on the way for a symlink
/// (to `/`, say) that Docker would follow.
pub(crate) fn recheck_mount(mount: &str) -> Result<(), String> {
    let source = mount.split_once(':').map_or(mount, |m| m.0);
    if !source.starts_with('/') {
        // A named volume: no host path.
        return Ok(());
    }
    match std::fs::canonicalize(source) {
        Ok(now) if now == Path::new(source) => Ok(()),
        Ok(now) => Err(format!(
            "mount source `{source}` now resolves to `{}`: a symlink appeared after the test files were checked; refusing to mount it",
            now.display()
        )),
        Err(e) => Err(format!(
            "mount source `{source}` cannot be resolved any more ({e}); refusing to mount it"
        )),
    }
}

fn is_socket(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// An include name as written: absolute names and names with `..` are refused before any
/// lookup, so the boundary does not depend on which files happen to exist.
pub(crate) fn check_include_name(name: &str) -> Result<(), Refusal> {
    let p = Path::new(name);
    if p.is_absolute() || name.starts_with('~') {
        return Err(refuse(
            format!("include of `{name}` refused: absolute paths are not allowed"),
            "templates are looked up next to the including file, then in its parent folders up to the repository root; give a relative name",
        ));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(refuse(
            format!("include of `{name}` refused: `..` is not allowed in template names"),
            "templates are looked up next to the including file, then in its parent folders up to the repository root; name the file without `..`",
        ));
    }
    Ok(())
}

/// A found include must still be inside the repository once symlinks are resolved.
pub(crate) fn check_include_path(name: &str, found: &Path, root: &Path) -> Result<(), Refusal> {
    let real = canonical(found);
    if real.starts_with(root) {
        Ok(())
    } else {
        Err(refuse(
            format!(
                "include of `{name}` refused: it resolves to `{}`, outside the repository (`{}`)",
                real.display(),
                root.display()
            ),
            "a symlink must not lead a template out of the repository",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: MountAllow<'static> = MountAllow {
        paths: &[],
        rw: false,
    };

    fn repo() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().expect("tempdir");
        let root = canonical(d.path());
        std::fs::create_dir_all(root.join(".clnrm")).expect("mkdir");
        std::fs::create_dir_all(root.join("tests/fixtures")).expect("mkdir");
        let file = root.join("tests/a.clnrm.toml");
        std::fs::write(&file, "").expect("write");
        (d, root, file)
    }

    #[test]
    fn relative_sources_resolve_against_the_test_file_folder() {
        let (_d, root, file) = repo();
        let got = resolve_mount(&file, &repo_root(&file, None), &NONE, "./fixtures:/f:ro");
        assert_eq!(
            got,
            Ok(format!("{}:/f:ro", root.join("tests/fixtures").display()))
        );
        assert_eq!(
            resolve_mount(&file, &root, &NONE, "fixtures/:/f"),
            Ok(format!("{}:/f:ro", root.join("tests/fixtures").display()))
        );
        assert_eq!(
            resolve_mount(&file, &root, &NONE, "data:/data"),
            Ok("data:/data".into())
        );
    }

    #[test]
    fn host_paths_outside_the_repository_are_refused_unless_allowed() {
        let (_d, root, file) = repo();
        let e = resolve_mount(&file, &root, &NONE, "../../:/up").expect_err("escapes");
        assert!(e.message.contains("outside the repository"), "{e:?}");
        let e = resolve_mount(&file, &root, &NONE, "/:/host:ro").expect_err("root");
        assert_eq!(
            e.message,
            "mount of `/` refused: it is a system path of the host"
        );
        let e = resolve_mount(&file, &root, &NONE, "/etc:/e").expect_err("etc");
        assert!(e.hint.contains("--allow-mount /etc"), "{e:?}");
        assert_eq!(
            resolve_mount(
                &file,
                &root,
                &MountAllow {
                    paths: &[PathBuf::from("/etc")],
                    rw: false
                },
                "/etc:/e:ro"
            ),
            Ok("/etc:/e:ro".into())
        );
        let e = resolve_mount(&file, &root, &NONE, "./missing:/m").expect_err("missing");
        assert!(e.message.contains("does not exist"), "{e:?}");
    }

    #[test]
    fn a_socket_inside_the_repository_is_still_refused() {
        let (_d, root, file) = repo();
        let sock = root.join("tests/docker.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        let e = resolve_mount(&file, &root, &NONE, "./docker.sock:/var/run/docker.sock")
            .expect_err("socket");
        assert!(e.message.contains("Docker daemon socket"), "{e:?}");
    }

    #[test]
    fn symlinks_out_of_the_repository_are_followed_and_refused() {
        let (_d, root, file) = repo();
        std::os::unix::fs::symlink("/etc", root.join("tests/etc")).expect("symlink");
        let e = resolve_mount(&file, &root, &NONE, "./etc:/e").expect_err("symlink");
        assert_eq!(
            e.message,
            "mount of `./etc` (`/etc`) refused: it is a system path of the host"
        );
        assert!(check_include_path("etc/passwd", &root.join("tests/etc/passwd"), &root).is_err());
    }

    #[test]
    fn host_mounts_are_read_only_and_rw_needs_the_project_opt_in() {
        let (_d, root, file) = repo();
        let fixtures = root.join("tests/fixtures").display().to_string();
        // No mode: read-only, written out so Docker cannot default to read-write.
        assert_eq!(
            resolve_mount(&file, &root, &NONE, "./fixtures:/w"),
            Ok(format!("{fixtures}:/w:ro"))
        );
        let e = resolve_mount(&file, &root, &NONE, "./fixtures:/w:rw").expect_err("rw");
        assert_eq!(
            e.message,
            format!("read-write mount of `./fixtures` (`{fixtures}`) refused: test files may not write to the host")
        );
        assert!(e.hint.contains("`allow_rw_mounts = true`"), "{e:?}");
        assert!(e.hint.contains("`--allow-rw-mounts`"), "{e:?}");
        // An allowlisted path is not writable either without the opt-in.
        let etc = [PathBuf::from("/etc")];
        let paths_only = MountAllow {
            paths: &etc,
            rw: false,
        };
        assert!(resolve_mount(&file, &root, &paths_only, "/etc:/e:rw").is_err());
        let rw = MountAllow {
            paths: &[],
            rw: true,
        };
        assert_eq!(
            resolve_mount(&file, &root, &rw, "./fixtures:/w:rw"),
            Ok(format!("{fixtures}:/w:rw"))
        );
        assert_eq!(
            resolve_mount(&file, &root, &rw, "./fixtures:/w"),
            Ok(format!("{fixtures}:/w:ro"))
        );
        // The opt-in does not lift the path rules.
        assert!(resolve_mount(&file, &root, &rw, "/:/host:rw").is_err());
        // Named volumes hold no host path and keep Docker's default.
        assert_eq!(
            resolve_mount(&file, &root, &NONE, "data:/data"),
            Ok("data:/data".into())
        );
    }

    #[test]
    fn a_mount_whose_folder_became_a_symlink_is_refused_at_creation() {
        let (_d, root, file) = repo();
        let sub = root.join("tests/fixtures/sub");
        std::fs::create_dir_all(&sub).expect("mkdir");
        let m = resolve_mount(&file, &root, &NONE, "./fixtures/sub:/host").expect("ok");
        assert_eq!(recheck_mount(&m), Ok(()));
        assert_eq!(recheck_mount("data:/data"), Ok(()));
        // What a test with a writable mount of `fixtures` could do before a later test runs.
        std::fs::remove_dir(&sub).expect("rmdir");
        std::os::unix::fs::symlink("/", &sub).expect("symlink");
        let e = recheck_mount(&m).expect_err("swapped");
        assert!(e.contains("now resolves to `/`"), "{e}");
        std::fs::remove_file(&sub).expect("rm");
        let e = recheck_mount(&m).expect_err("gone");
        assert!(e.contains("cannot be resolved any more"), "{e}");
    }

    #[test]
    fn include_names_must_be_relative_and_stay_below() {
        assert!(check_include_name("/etc/passwd").is_err());
        assert!(check_include_name("../../../../etc/passwd").is_err());
        assert!(check_include_name("a/../../b").is_err());
        assert!(check_include_name("lib/common.tera").is_ok());
    }
}
