//! format_source: fixtures, byte-identical strings, comments, templates, dialect errors.

use super::*;

fn fmt(src: &str) -> String {
    format_source(src, SourceKind::Toml).expect("formats")
}

fn fmt_tpl(src: &str) -> Result<String, FmtError> {
    format_source(src, SourceKind::TeraTemplate)
}

#[test]
fn fixtures_match_expected_and_are_idempotent() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fmtlint");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with(".expected") {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("read fixture");
        let expected =
            std::fs::read_to_string(format!("{}.expected", path.display())).expect("expected");
        let kind = SourceKind::detect(&path, &src);
        let got = match format_source(&src, kind) {
            Ok(out) => {
                assert_eq!(
                    format_source(&out, kind).as_deref(),
                    Ok(out.as_str()),
                    "{path:?}"
                );
                out
            }
            Err(e) => match e.line() {
                Some(l) => format!("ERR line {l}: {e}\n"),
                None => format!("ERR {e}\n"),
            },
        };
        assert_eq!(got, expected, "{}", path.display());
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn string_reprs_are_byte_identical() {
    let src = "[[scenario]]\nname='a  ==  b'\n[[scenario.steps]]\nsh=\"\"\"\n  X=1   \\\n  == \"\"\"\nstdout_equals   =   \"\\u0041\\tX=1\"\ncmd=['a', \"b\\\\c\"]\n";
    let out = fmt(src);
    assert_eq!(
        out,
        "[[scenario]]\nname = 'a  ==  b'\n\n[[scenario.steps]]\ncmd = ['a', \"b\\\\c\"]\nsh = \"\"\"\n  X=1   \\\n  == \"\"\"\nstdout_equals = \"\\u0041\\tX=1\"\n"
    );
}

#[test]
fn comments_stay_with_their_key_and_header() {
    let src = "[service.b]\nimage = \"b:1\"\n# about a\n[service.a] # inline\n# the image\n  image = \"a:1\" # pinned\n";
    assert_eq!(
        fmt(src),
        "[service.a] # inline\n# the image\nimage = \"a:1\" # pinned\n\n[service.b]\nimage = \"b:1\"\n"
            .replace("[service.a] # inline", "# about a\n[service.a] # inline")
    );
}

#[test]
fn unknown_keys_follow_known_ones_in_source_order() {
    let src = "[meta]\nzz = 1\ntimeout = \"5s\"\naa = 2\nname = \"n\"\n";
    assert_eq!(
        fmt(src),
        "[meta]\nname = \"n\"\ntimeout = \"5s\"\nzz = 1\naa = 2\n"
    );
}

#[test]
fn header_comment_stays_on_top() {
    let src = "# file header\n\n[perf]\nmax_ms = 1\n\n[meta]\nname = \"x\"\n";
    assert_eq!(
        fmt(src),
        "# file header\n\n[meta]\nname = \"x\"\n\n[perf]\nmax_ms = 1\n"
    );
}

#[test]
fn parse_error_reports_the_line() {
    let err = format_source("[meta]\nname = \"x\"\nbad = \n", SourceKind::Toml).expect_err("bad");
    assert!(matches!(err, FmtError::Parse { line: 3, .. }), "{err:?}");
}

#[test]
fn dialect_conflicts_are_errors() {
    let both = "[meta]\nname = \"a\"\n[test.metadata]\nname = \"b\"\n";
    assert!(matches!(
        format_source(both, SourceKind::Toml),
        Err(FmtError::Dialect(_))
    ));
    let dup = "[service.x]\nimage = \"a:1\"\n[services.x]\nimage = \"b:1\"\n";
    assert!(matches!(
        format_source(dup, SourceKind::Toml),
        Err(FmtError::Dialect(_))
    ));
}

#[test]
fn ports_take_their_canonical_place_and_compose_strings_become_numbers() {
    let src = "[services.web]\nports = [\"8080/tcp\", \"127.0.0.1:9000:81\", 82] # web\nimage = \"w:1\"\ndepends_on = []\nnetwork_access = false\n";
    assert_eq!(
        fmt(src),
        "[service.web]\nimage = \"w:1\"\nnetwork_access = false\nports = [8080, 81, 82] # web\ndepends_on = []\n"
    );
    // Anything else is left for the loader to report.
    let udp = "[service.web]\nimage = \"w:1\"\nports = [\"53/udp\"]\n";
    assert_eq!(fmt(udp), udp);
}

#[test]
fn non_generic_plugin_is_kept_for_the_loader_to_reject() {
    let src = "[services.db]\nplugin = \"surrealdb\"\nimage = \"s:1\"\n";
    assert_eq!(
        fmt(src),
        "[service.db]\nimage = \"s:1\"\nplugin = \"surrealdb\"\n"
    );
}

#[test]
fn templates_with_tags_outside_strings_are_refused() {
    let cases = [
        ("[meta]\ntimeout = {{ t }}\n", 2, "expects structure"),
        (
            "[meta]\nname = \"{% set x = 1 %}\"\n",
            2,
            "effects outside its string",
        ),
        (
            "[meta]\n# {% if x %}\nname = \"a\"\n# {% endif %}\n",
            2,
            "outside a string value",
        ),
        (
            "[meta]\nname = \"{% if x %}\"\ndescription = \"{% endif %}\"\n",
            2,
            "not closed",
        ),
        ("[meta]\nname = \"{{ x\"\n", 2, "unclosed"),
    ];
    for (src, line, needle) in cases {
        match fmt_tpl(src) {
            Err(FmtError::TemplateRefused { line: l, reason }) => {
                assert_eq!(l, line, "{src}");
                assert!(reason.contains(needle), "{src}: {reason}");
            }
            other => panic!("{src}: {other:?}"),
        }
    }
}

#[test]
fn template_tags_survive_and_line_numbers_map_back() {
    let src = "[meta]\nname = \"{{\n  vars.n }}\"\n\n\ntimeout = {{ t }}\n";
    match fmt_tpl(src) {
        Err(FmtError::TemplateRefused { line, .. }) => assert_eq!(line, 6),
        other => panic!("{other:?}"),
    }
}

/// Renders a template with Tera (the loader's engine) and parses the result.
fn render(src: &str) -> toml::Value {
    let mut ctx = tera::Context::new();
    ctx.insert(
        "vars",
        &serde_json::json!({"svc": "app", "image": "alpine:3.20"}),
    );
    ctx.insert("ci", &true);
    let text = tera::Tera::one_off(src, &ctx, false).expect("renders");
    toml::from_str(&text).expect("rendered TOML parses")
}

#[test]
fn formatted_template_renders_to_the_same_value() {
    let src = include_str!("../../tests/fixtures/fmtlint/template_ok.clnrm.toml.tera");
    let out = fmt_tpl(src).expect("formats");
    assert_ne!(out, src);
    assert_eq!(render(&out), render(src));
    // Regions are restored byte for byte.
    assert!(out.contains("[service.{{ vars.svc }}]"));
    assert!(out.contains("sh = \"{% if ci %}echo ci{% else %}echo local{% endif %}\""));
}
