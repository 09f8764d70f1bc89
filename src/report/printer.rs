//! Human output on stderr (stdout is for data): plain lines, `warning:` and `error:` with an
//! optional `hint:` after a blank line, colour only when asked for or on a terminal.

use std::ffi::OsStr;
use std::io::Write;

use super::color::{resolve_color, ColorChoice};

/// Where human output goes and how it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Printer {
    pub color: bool,
    /// On an interactive terminal (never in CI): progress bars allowed.
    pub interactive: bool,
}

impl Printer {
    pub fn new(
        choice: ColorChoice,
        stderr_is_tty: bool,
        ci: bool,
        no_color: Option<&str>,
        term: Option<&str>,
    ) -> Printer {
        Printer {
            color: resolve_color(
                choice,
                stderr_is_tty,
                no_color.map(OsStr::new),
                term.map(OsStr::new),
            ),
            interactive: stderr_is_tty && !ci,
        }
    }

    /// Plain output, no colour, no progress: for tests and for errors before settings exist.
    pub fn plain() -> Printer {
        Printer {
            color: false,
            interactive: false,
        }
    }

    /// A line on stderr.
    pub fn info(&self, msg: impl AsRef<str>) {
        self.emit(&format!("{}\n", msg.as_ref()));
    }

    /// `error: ...` on stderr, with an optional hint after a blank line.
    pub fn error(&self, msg: impl AsRef<str>, hint: Option<&str>) {
        self.emit(&self.error_text(msg.as_ref(), hint));
    }

    pub fn warn(&self, msg: impl AsRef<str>) {
        self.emit(&format!(
            "{}: {}\n",
            self.paint("warning", "1;33"),
            msg.as_ref()
        ));
    }

    /// The text [`Printer::error`] writes.
    pub fn error_text(&self, msg: &str, hint: Option<&str>) -> String {
        let mut s = format!("{}: {msg}\n", self.paint("error", "1;31"));
        if let Some(h) = hint {
            s.push_str(&format!("\n{}: {h}\n", self.paint("hint", "1;36")));
        }
        s
    }

    pub fn paint(&self, text: &str, ansi: &str) -> String {
        if self.color {
            format!("\x1b[{ansi}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// One write call per message, so lines of concurrent writers never interleave.
    fn emit(&self, text: &str) {
        // Messages quote test files and step output: untrusted text (secrets, escapes,
        // workflow commands) is made safe here, once for every message.
        let text = crate::secrets::terminal(text, self.color);
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_hints_after_a_blank_line() {
        let p = Printer::plain();
        assert_eq!(
            p.error_text("no tests", Some("run `clnrm init`")),
            "error: no tests\n\nhint: run `clnrm init`\n"
        );
        let c = Printer {
            color: true,
            interactive: false,
        };
        assert_eq!(c.error_text("x", None), "\x1b[1;31merror\x1b[0m: x\n");
    }

    #[test]
    fn ci_is_never_interactive() {
        let p = Printer::new(ColorChoice::Auto, true, true, None, None);
        assert!(p.color && !p.interactive);
        let p = Printer::new(ColorChoice::Auto, true, false, Some("1"), None);
        assert!(!p.color && p.interactive);
    }
}
