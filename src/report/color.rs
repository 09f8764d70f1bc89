//! The `--color auto|always|never` choice and how it resolves against the terminal and NO_COLOR.

use std::ffi::OsStr;

/// What the user asked for with `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    Always,
    Never,
}

/// Whether to emit colour, reading `NO_COLOR` and `TERM` from the environment.
pub fn use_color(choice: ColorChoice, is_tty: bool) -> bool {
    resolve_color(
        choice,
        is_tty,
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    )
}

/// Pure form of [`use_color`], so the rules are testable without touching the environment.
///
/// An explicit `always`/`never` wins over the environment (a flag is the more specific
/// request); NO_COLOR counts only when set to a non-empty value, as no-color.org specifies;
/// `TERM=dumb` cannot render escapes.
pub fn resolve_color(
    choice: ColorChoice,
    is_tty: bool,
    no_color: Option<&OsStr>,
    term: Option<&OsStr>,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let no_color_set = no_color.is_some_and(|v| !v.is_empty());
            let dumb = term.is_some_and(|t| t == "dumb");
            is_tty && !no_color_set && !dumb
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_tty_and_no_color() {
        let nc = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(resolve_color(ColorChoice::Auto, true, None, None));
        assert!(!resolve_color(ColorChoice::Auto, false, None, None));
        assert!(!resolve_color(ColorChoice::Auto, true, nc, None));
        assert!(resolve_color(ColorChoice::Auto, true, empty, None));
        assert!(!resolve_color(
            ColorChoice::Auto,
            true,
            None,
            Some(OsStr::new("dumb"))
        ));
    }

    #[test]
    fn explicit_choice_wins() {
        let nc = Some(OsStr::new("1"));
        assert!(resolve_color(ColorChoice::Always, false, nc, None));
        assert!(!resolve_color(ColorChoice::Never, true, None, None));
    }
}
