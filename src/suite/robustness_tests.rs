//! Property tests: no input makes the pipeline panic, and a loaded file is exactly what renders.

use std::path::Path;

use proptest::prelude::*;

use super::*;

fn load_text(name: &str, text: &[u8]) -> Result<Loaded, Vec<Diagnostic>> {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().join(name);
    std::fs::write(&p, text).expect("write");
    Loader::new(LoadOptions::default()).load(&p)
}

/// Fragments that exercise many schema branches when shuffled together.
const PIECES: &[&str] = &[
    "[meta]\n",
    "name = \"x\"\n",
    "[service.a]\n",
    "image = 3\n",
    "[[scenario]]\n",
    "[[scenario.steps]]\n",
    "cmd = []\n",
    "sh = \"true\"\n",
    "stdout_regex = [\"(\", 1]\n",
    "timeout = \"-1s\"\n",
    "[perf.scenario.\"x\"]\n",
    "max_ms = -4\n",
    "[test.metadata]\n",
    "[[steps]]\n",
    "command = 5\n",
    "memory = \"lots\"\n",
    "{{ x }}\n",
    "{% for i in range(end=3) %}\n",
    "{% endfor %}\n",
    "[vars]\n",
    "x = { a = 1 }\n",
    "\u{0}\u{ff}\n",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = load_text("a.clnrm.toml", &bytes);
        let _ = load_text("a.clnrm.toml.tera", &bytes);
    }

    #[test]
    fn shuffled_schema_fragments_never_panic_and_errors_are_located(
        idx in proptest::collection::vec(0..PIECES.len(), 0..24),
        tera in any::<bool>(),
    ) {
        let text: String = idx.iter().map(|i| PIECES[*i]).collect();
        let name = if tera { "f.clnrm.toml.tera" } else { "f.clnrm.toml" };
        if let Err(diags) = load_text(name, text.as_bytes()) {
            prop_assert!(!diags.is_empty());
            for d in &diags {
                // Every diagnostic renders and names the file.
                prop_assert!(d.to_string().contains(name));
            }
        }
    }
}

#[test]
fn real_clock_renders_are_not_cached() {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().join("t.clnrm.toml.tera");
    std::fs::write(
        &p,
        "[meta]\nname = \"t\"\ndescription = \"{{ now_rfc3339() }}\"\n[service.a]\n[[scenario]]\nname = \"s\"\n[[scenario.steps]]\nsh = \"true\"\n",
    )
    .expect("write");
    let l = Loader::new(LoadOptions::default());
    l.load(&p).expect("valid");
    assert_eq!(l.cached_files(), 0);
    let frozen = Loader::new(LoadOptions {
        freeze_clock: Some("2024-01-01T00:00:00Z".into()),
        ..Default::default()
    });
    let s = frozen.load(&p).expect("valid").spec;
    assert_eq!(s.description.as_deref(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(frozen.cached_files(), 1);
    assert!(Path::new(&p).exists());
}

#[test]
fn loader_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Loader>();
}
