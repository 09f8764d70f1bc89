//! The watched set: test files under the roots, the templates they include, the sha256 of
//! each, and what a batch of changed paths means (which tests to reload and re-run).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::filter::is_ignored;
use crate::suite::{is_test_file, Diagnostic, Loader, Severity, TestSpec};

/// What a burst of events changed on disk.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Test files to load again: changed, new, or including a changed template.
    pub reload: BTreeSet<PathBuf>,
    /// Test files gone from disk (forgotten, nothing to run).
    pub removed: Vec<PathBuf>,
    /// Files whose bytes really changed (tests and templates).
    pub changed: Vec<PathBuf>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.reload.is_empty() && self.removed.is_empty()
    }
}

/// Outcome of loading the affected files again.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// Valid tests, sorted by path: what the cycle runs.
    pub tests: Vec<TestSpec>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, Default)]
struct FileState {
    /// Templates this file includes. Kept from the last good load while the file is invalid,
    /// so fixing a broken template still re-runs the test.
    includes: Vec<PathBuf>,
    /// Test name while the file is valid.
    name: Option<String>,
    needs_image: bool,
}

/// Test files being watched and the content hashes of every file that can affect them.
#[derive(Debug)]
pub struct WatchSet {
    /// Canonical roots: folders (watched recursively) or single files.
    roots: Vec<PathBuf>,
    files: BTreeMap<PathBuf, FileState>,
    hashes: HashMap<PathBuf, [u8; 32]>,
    /// A file left the set or a template changed: the loader cache should drop stale entries.
    evict: bool,
}

impl WatchSet {
    pub fn new(roots: Vec<PathBuf>) -> WatchSet {
        WatchSet {
            roots,
            files: BTreeMap::new(),
            hashes: HashMap::new(),
            evict: false,
        }
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Test files currently watched, sorted.
    pub fn test_files(&self) -> Vec<PathBuf> {
        self.files.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Watched files that currently fail to load.
    pub fn invalid(&self) -> usize {
        self.files.values().filter(|f| f.name.is_none()).count()
    }

    /// Whether any valid watched test has a service with an image (picks the backend).
    pub fn needs_image(&self) -> bool {
        self.files.values().any(|f| f.needs_image)
    }

    /// Every template included by a watched test.
    pub fn includes(&self) -> BTreeSet<PathBuf> {
        self.files
            .values()
            .flat_map(|f| f.includes.iter().cloned())
            .collect()
    }

    /// A path that is (or would be, once created) a test file of this session.
    pub fn is_test_path(&self, p: &Path) -> bool {
        self.roots.iter().any(|r| r == p)
            || (is_test_file(p) && self.roots.iter().any(|r| p.starts_with(r) && r != p))
    }

    /// Whether an event on `p` can matter: a test file, a known include, or (while some file
    /// is invalid) a template that may be the missing include it needs.
    pub fn is_relevant(&self, p: &Path) -> bool {
        if is_ignored(p) {
            return false;
        }
        self.is_test_path(p)
            || self.hashes.contains_key(p)
            || (self.invalid() > 0 && is_template_like(p))
    }

    /// Compare the bytes of `candidates` with the last seen ones (sha256) and work out which
    /// tests are affected. Same bytes -> nothing.
    pub fn detect<'a>(&mut self, candidates: impl IntoIterator<Item = &'a PathBuf>) -> Changes {
        let mut c = Changes::default();
        let mut gone = Vec::new();
        let unique: BTreeSet<&PathBuf> = candidates.into_iter().collect();
        for p in unique {
            if is_ignored(p) {
                continue;
            }
            let bytes = if p.is_file() {
                std::fs::read(p).ok()
            } else {
                None
            };
            match bytes {
                Some(b) => {
                    let h: [u8; 32] = Sha256::digest(&b).into();
                    if self.hashes.get(p) == Some(&h) {
                        continue;
                    }
                    if self.is_test_path(p) || self.hashes.contains_key(p) {
                        self.hashes.insert(p.clone(), h);
                    }
                    c.changed.push(p.clone());
                }
                // Exists but unreadable: let the loader report it at its location.
                None if p.is_file() => c.changed.push(p.clone()),
                None => {
                    if self.hashes.remove(p).is_some() || self.files.contains_key(p) {
                        gone.push(p.clone());
                    }
                }
            }
        }
        let mut retry_invalid = false;
        for p in &c.changed {
            if self.is_test_path(p) {
                c.reload.insert(p.clone());
            } else {
                self.evict = true;
                let deps = self.dependents(p);
                if deps.is_empty() {
                    retry_invalid = true;
                }
                c.reload.extend(deps);
            }
        }
        for p in gone {
            if self.files.remove(&p).is_some() {
                c.removed.push(p.clone());
                self.evict = true;
            }
            c.reload.extend(self.dependents(&p));
        }
        if retry_invalid {
            // A new template may be the include an invalid file was missing.
            let invalid = self.files.iter().filter(|(_, f)| f.name.is_none());
            c.reload.extend(invalid.map(|(p, _)| p.clone()));
        }
        c
    }

    /// Load `paths` again through the pipeline (its cache makes unchanged inputs cheap),
    /// update the set and return the valid tests and the errors. Test names stay unique
    /// across the whole watched set.
    pub fn reload(&mut self, loader: &Loader, paths: &BTreeSet<PathBuf>) -> Reloaded {
        let list: Vec<PathBuf> = paths.iter().cloned().collect();
        let was_invalid = |p: &PathBuf| self.files.get(p).is_some_and(|f| f.name.is_none());
        if list.iter().any(was_invalid) {
            // The loader caches a failed render under the file's bytes alone (the includes of a
            // file that did not render are unknown), so a fixed template would still hit the
            // old error: evict the invalid files before loading them again.
            let keep: Vec<PathBuf> = self
                .files
                .keys()
                .filter(|p| !(paths.contains(*p) && was_invalid(p)))
                .cloned()
                .collect();
            loader.retain(&keep);
        }
        let suite = loader.load_suite(&list);
        let taken: HashMap<&str, &PathBuf> = self
            .files
            .iter()
            .filter(|(p, _)| !paths.contains(*p))
            .filter_map(|(p, f)| f.name.as_deref().map(|n| (n, p)))
            .collect();
        let mut out = Reloaded {
            tests: Vec::new(),
            errors: suite.errors,
            warnings: suite.warnings,
        };
        let mut valid: HashMap<PathBuf, (String, bool)> = HashMap::new();
        for t in suite.tests {
            if let Some(other) = taken.get(t.name.as_str()) {
                out.errors.push(
                    Diagnostic::file(
                        &t.path,
                        Severity::Error,
                        format!(
                            "test name `{}` is also used by `{}`",
                            t.name,
                            other.display()
                        ),
                    )
                    .with_hint("names must be unique in the suite: rename one of the tests"),
                );
                continue;
            }
            let needs_image = t.services.values().any(|s| s.image.is_some());
            valid.insert(t.path.clone(), (t.name.clone(), needs_image));
            out.tests.push(t);
        }
        for p in paths {
            let state = self.files.entry(p.clone()).or_default();
            let new_includes = suite.includes.get(p).cloned().unwrap_or_default();
            match valid.remove(p) {
                Some((name, needs_image)) => {
                    state.name = Some(name);
                    state.needs_image = needs_image;
                    state.includes = new_includes;
                }
                None => {
                    state.name = None;
                    state.needs_image = false;
                    for inc in new_includes {
                        if !state.includes.contains(&inc) {
                            state.includes.push(inc);
                        }
                    }
                }
            }
            if !self.hashes.contains_key(p) {
                if let Ok(b) = std::fs::read(p) {
                    self.hashes.insert(p.clone(), Sha256::digest(&b).into());
                }
            }
        }
        self.track_includes();
        if self.evict
            || paths
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "tera"))
        {
            // Rendering a changed template adds a compiled entry; drop what no file uses.
            // Not after plain TOML edits: `retain` is linear in cache size times set size.
            loader.retain(&self.test_files());
            self.evict = false;
        }
        out
    }

    /// Hash newly included templates, forget hashes of files nothing refers to any more.
    fn track_includes(&mut self) {
        let includes = self.includes();
        for inc in &includes {
            if !self.hashes.contains_key(inc) {
                if let Ok(b) = std::fs::read(inc) {
                    self.hashes.insert(inc.clone(), Sha256::digest(&b).into());
                }
            }
        }
        let files = &self.files;
        self.hashes
            .retain(|p, _| files.contains_key(p) || includes.contains(p));
    }

    fn dependents(&self, template: &Path) -> Vec<PathBuf> {
        self.files
            .iter()
            .filter(|(_, f)| f.includes.iter().any(|i| i == template))
            .map(|(p, _)| p.clone())
            .collect()
    }
}

fn is_template_like(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "tera" || e == "toml")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::LoadOptions;

    fn body(name: &str, cmd: &str) -> String {
        format!(
            "[meta]\nname = \"{name}\"\n[service.a]\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nsh = \"{cmd}\"\n"
        )
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write fixture");
        p
    }

    /// A set over a fresh temp root (with a `.git` marker bounding include lookup), loaded.
    fn setup(files: &[(&str, &str)]) -> (tempfile::TempDir, WatchSet, Loader) {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(d.path().join(".git")).expect("root marker");
        let root = d.path().canonicalize().expect("canonical root");
        let mut paths = Vec::new();
        for (n, t) in files {
            paths.push(write(&root, n, t));
        }
        let mut set = WatchSet::new(vec![root]);
        let loader = Loader::new(LoadOptions::default());
        let c = set.detect(&paths);
        set.reload(&loader, &c.reload);
        (d, set, loader)
    }

    #[test]
    fn same_bytes_change_nothing() {
        let (d, mut set, _l) = setup(&[("a.clnrm.toml", &body("a", "true"))]);
        let root = d.path().canonicalize().expect("canonical");
        let p = write(&root, "a.clnrm.toml", &body("a", "true"));
        assert_eq!(set.detect([&p]), Changes::default());
    }

    #[test]
    fn a_changed_test_reloads_only_itself() {
        let (d, mut set, l) = setup(&[
            ("a.clnrm.toml", &body("a", "true")),
            ("b.clnrm.toml", &body("b", "true")),
        ]);
        let root = d.path().canonicalize().expect("canonical");
        let p = write(&root, "a.clnrm.toml", &body("a", "false"));
        let c = set.detect([&p]);
        assert_eq!(c.reload, BTreeSet::from([p.clone()]));
        let r = set.reload(&l, &c.reload);
        assert_eq!(r.tests.len(), 1);
        assert_eq!(r.tests[0].name, "a");
        assert!(r.errors.is_empty());
    }

    #[test]
    fn a_changed_template_reloads_the_tests_including_it() {
        let inc = "{% macro n() %}one{% endmacro n %}";
        let with = "{% import \"_inc.tera\" as i %}[meta]\nname = \"t-{{ i::n() }}\"\n[service.a]\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nsh = \"true\"\n";
        let (d, mut set, l) = setup(&[
            ("_inc.tera", inc),
            ("uses.clnrm.toml.tera", with),
            ("plain.clnrm.toml", &body("plain", "true")),
        ]);
        let root = d.path().canonicalize().expect("canonical");
        assert_eq!(set.len(), 2, "the template itself is not a test");
        let t = write(&root, "_inc.tera", "{% macro n() %}two{% endmacro n %}");
        assert!(set.is_relevant(&t));
        let c = set.detect([&t]);
        assert_eq!(
            c.reload,
            BTreeSet::from([root.join("uses.clnrm.toml.tera")])
        );
        let r = set.reload(&l, &c.reload);
        assert_eq!(r.tests[0].name, "t-two");
    }

    #[test]
    fn an_invalid_file_is_reported_and_rerun_when_its_template_is_fixed() {
        let with = "{% import \"_inc.tera\" as i %}[meta]\nname = \"{{ i::n() }}\"\n[service.a]\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nsh = \"true\"\n";
        let (d, mut set, l) = setup(&[
            ("_inc.tera", "{% macro n() %}ok{% endmacro n %}"),
            ("uses.clnrm.toml.tera", with),
        ]);
        let root = d.path().canonicalize().expect("canonical");
        let t = write(
            &root,
            "_inc.tera",
            "{% macro n() %}{{ oops( }}{% endmacro n %}",
        );
        let c = set.detect([&t]);
        let r = set.reload(&l, &c.reload);
        assert!(r.tests.is_empty());
        assert!(!r.errors.is_empty());
        assert_eq!(set.invalid(), 1);
        let t = write(&root, "_inc.tera", "{% macro n() %}fixed{% endmacro n %}");
        let c = set.detect([&t]);
        assert_eq!(c.reload.len(), 1, "still tracked while invalid");
        let r = set.reload(&l, &c.reload);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.tests[0].name, "fixed");
        assert_eq!(set.invalid(), 0);
    }

    #[test]
    fn removed_and_new_files_enter_and_leave_the_set() {
        let (d, mut set, l) = setup(&[("a.clnrm.toml", &body("a", "true"))]);
        let root = d.path().canonicalize().expect("canonical");
        let a = root.join("a.clnrm.toml");
        std::fs::remove_file(&a).expect("remove");
        let c = set.detect([&a]);
        assert_eq!(c.removed, vec![a.clone()]);
        assert!(c.reload.is_empty());
        assert!(set.is_empty());
        let b = write(&root, "b.clnrm.toml", &body("b", "true"));
        let c = set.detect([&b]);
        set.reload(&l, &c.reload);
        assert_eq!(set.test_files(), vec![b]);
        assert_eq!(
            l.cached_files(),
            1,
            "the removed file left the loader cache"
        );
    }

    #[test]
    fn duplicate_names_across_the_set_are_errors() {
        let (d, mut set, l) = setup(&[("a.clnrm.toml", &body("a", "true"))]);
        let root = d.path().canonicalize().expect("canonical");
        let b = write(&root, "b.clnrm.toml", &body("a", "true"));
        let c = set.detect([&b]);
        let r = set.reload(&l, &c.reload);
        assert!(r.tests.is_empty());
        assert_eq!(r.errors.len(), 1);
        assert!(
            r.errors[0].message.contains("also used by"),
            "{}",
            r.errors[0]
        );
    }

    #[test]
    fn only_tests_and_their_templates_are_relevant() {
        let (d, set, _l) = setup(&[("a.clnrm.toml", &body("a", "true"))]);
        let root = d.path().canonicalize().expect("canonical");
        assert!(set.is_relevant(&root.join("a.clnrm.toml")));
        assert!(set.is_relevant(&root.join("sub/new.clnrm.toml")));
        assert!(!set.is_relevant(&root.join("notes.md")));
        assert!(
            !set.is_relevant(&root.join("_unused.tera")),
            "no invalid file needs it"
        );
        assert!(!set.is_relevant(&root.join(".a.clnrm.toml.swp")));
        assert!(!set.is_relevant(&root.join("target/x.clnrm.toml")));
    }
}
