//! Event filtering: drop what can never change a test (VCS and build folders, editor temp
//! files, read-only access) before it reaches the debounce.

use std::path::Path;

use notify::event::{AccessKind, AccessMode, EventKind};

/// Folders whose content never belongs to a suite (same list as discovery).
const IGNORED_DIRS: &[&str] = &[".git", "target", "node_modules"];

/// Editor scratch files: vim swap files and its `4913` write probe, backup files (`~`),
/// emacs lock files (`.#name`).
pub fn is_editor_temp(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name == "4913"
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".swo")
        || name.starts_with(".#")
}

/// True when no event on this path can matter: inside an ignored folder or an editor temp file.
pub fn is_ignored(path: &Path) -> bool {
    is_editor_temp(path)
        || path.components().any(|c| {
            c.as_os_str()
                .to_str()
                .is_some_and(|s| IGNORED_DIRS.contains(&s))
        })
}

/// Kinds that may change bytes on disk. Opens and reads are dropped: loading a file after a
/// change would otherwise trigger another cycle (sha256 would stop it, but later and dearer).
pub fn is_interesting(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, ModifyKind};
    use std::path::PathBuf;

    #[test]
    fn editor_temp_files_are_ignored() {
        for p in [
            "s/4913",
            "s/a.clnrm.toml~",
            "s/.a.clnrm.toml.swp",
            "s/.a.clnrm.toml.swx",
            "s/.#a.clnrm.toml",
        ] {
            assert!(is_ignored(&PathBuf::from(p)), "{p}");
        }
        assert!(!is_ignored(Path::new("s/a.clnrm.toml")));
        assert!(!is_ignored(Path::new("s/_macros.toml.tera")));
    }

    #[test]
    fn vcs_and_build_folders_are_ignored() {
        assert!(is_ignored(Path::new("/p/.git/index")));
        assert!(is_ignored(Path::new("/p/target/debug/a.clnrm.toml")));
        assert!(is_ignored(Path::new("/p/node_modules/x/a.clnrm.toml")));
        assert!(!is_ignored(Path::new("/p/targets/a.clnrm.toml")));
    }

    #[test]
    fn reads_do_not_count_writes_do() {
        assert!(!is_interesting(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_interesting(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_interesting(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_interesting(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(is_interesting(&EventKind::Create(CreateKind::File)));
    }
}
