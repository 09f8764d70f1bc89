//! Names, tags and descriptions are printed in logs, reports and annotations: a control
//! character in one could forge a log line (`\n::error::...` is a GitHub workflow command) or
//! drive the terminal (ESC sequences). They are refused at load, located.

use super::model::TestSpec;
use super::reader::{Ctx, Span};

/// The first control character of `s`, if any.
fn control(s: &str) -> Option<char> {
    s.chars().find(|c| c.is_control())
}

/// Report every name, tag and description of `spec` holding a control character.
pub(crate) fn check(ctx: &mut Ctx<'_>, spec: &TestSpec, name_span: &Span) {
    let bad = |ctx: &mut Ctx<'_>, what: &str, value: &str, span: Span| {
        if let Some(c) = control(value) {
            ctx.error(
                span,
                format!(
                    "{what} `{}` contains the control character U+{:04X}",
                    value.escape_debug(),
                    c as u32
                ),
                Some("names, tags and descriptions are printed in logs and reports: use printable characters only".into()),
            );
        }
    };
    bad(ctx, "test name", &spec.name, name_span.clone());
    let top = name_span.clone();
    if let Some(d) = &spec.description {
        bad(ctx, "test description", d, top.clone());
    }
    for t in &spec.tags {
        bad(ctx, "tag", t, top.clone());
    }
    for sc in &spec.scenarios {
        let span = ctx.line_span(sc.line);
        bad(ctx, "scenario name", &sc.name, span.clone());
        if let Some(d) = &sc.description {
            bad(ctx, "scenario description", d, span.clone());
        }
        for t in &sc.tags {
            bad(ctx, "tag", t, span.clone());
        }
        for st in &sc.steps {
            let span = ctx.line_span(st.line);
            bad(ctx, "step name", &st.name, span);
        }
    }
}
