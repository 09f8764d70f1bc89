//! `clnrm lint`: static checks on a loaded test, with ids, severities and rationales.

mod finding;
mod render;
mod rules;

pub use finding::{exit_code, rules, Finding, RuleInfo, Severity};
pub use render::{render_findings, LintFormat};
pub use rules::lint;
