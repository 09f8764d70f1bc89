//! Upstream keys that clnrm accepts but does not evaluate yet, in one place.
//!
//! Each one gets a located warning saying so: such a key is never silently dropped, and a test
//! relying on it is never reported green without that warning next to it. When a feature lands
//! (telemetry will implement `[otel]`; `[expect.*]` is read by `telemetry::expect::schema`),
//! delete its entry here and read it in the schema instead.

use super::reader::{Ctx, Span};

/// Top-level tables, with what the user should know about each.
pub(crate) const TABLES: &[(&str, &str)] = &[
    (
        "otel",
        "telemetry export settings are not read yet; clnrm's own receiver is not configured by this table",
    ),
    ("otel_validation", "span checks are not evaluated yet"),
    ("otel_headers", "telemetry export settings are not read yet"),
    ("otel_propagators", "telemetry export settings are not read yet"),
    (
        "assertions",
        "express checks as step expectations (`exit_code`, `stdout_regex`, `stdout_contains`)",
    ),
    ("weaver", "semantic-convention live checks are not run"),
    ("chaos", "fault injection is not performed"),
    ("performance", "use `[perf]` budgets and the baseline gate"),
    ("matrix", "expand the matrix with a `{% for %}` loop in a template"),
];

/// Keys of a service table.
pub(crate) const SERVICE_KEYS: &[(&str, &str)] = &[
    (
        "username",
        "plugin setting; the service runs as a plain container",
    ),
    (
        "password",
        "plugin setting; the service runs as a plain container",
    ),
    (
        "strict",
        "plugin setting; the service runs as a plain container",
    ),
    (
        "wait_for_span",
        "readiness by span is not evaluated; use `ready = { cmd = [...] }`",
    ),
    (
        "wait_for_span_timeout_secs",
        "readiness by span is not evaluated; use `ready = { cmd = [...] }`",
    ),
];

/// Keys of a `[[scenario]]`.
pub(crate) const SCENARIO_KEYS: &[(&str, &str)] = &[
    ("artifacts", "artifacts are not collected"),
    ("concurrent", "steps of a scenario always run in order"),
    ("policy", "security policies are not enforced"),
];

/// Keys of a step.
pub(crate) const STEP_KEYS: &[(&str, &str)] = &[(
    "should_fail",
    "not evaluated: write the expected `exit_code` instead",
)];

/// Keys of `[report]`.
pub(crate) const REPORT_KEYS: &[(&str, &str)] = &[("digest", "no trace digest is written")];

/// The one wording of the warning.
pub(crate) fn warn(ctx: &mut Ctx<'_>, span: Span, what: &str, why: &str) {
    ctx.warn(
        span,
        format!("`{what}` (upstream) is not evaluated by clnrm: it is accepted and ignored"),
        Some(why.to_string()),
    );
}

/// What to say about a plugin type other than a plain container.
pub(crate) fn plugin(ctx: &mut Ctx<'_>, span: Span, kind: &str) {
    warn(
        ctx,
        span,
        &format!("plugin = \"{kind}\""),
        "plugin behaviour is not evaluated: the service runs as a plain container of its `image`",
    );
}
