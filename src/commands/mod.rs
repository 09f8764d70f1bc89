//! Command dispatch: args -> settings -> one plain function per command -> exit code.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, ColorArg, Command};
use crate::exit;

mod baseline;
mod fmt;
mod init;
mod list;
mod load;
mod render;
mod report;
mod run;
mod session;
mod validate;
mod watch;

pub use load::load_suite;

/// Where human output goes; stdout is for data only.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub color: bool,
    /// True on an interactive terminal: progress bars allowed.
    pub interactive: bool,
}

impl Printer {
    pub fn from_args(color: ColorArg) -> Printer {
        let stderr_tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match color {
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto => stderr_tty && !no_color,
        };
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        Printer {
            color,
            interactive: stderr_tty && !ci,
        }
    }

    /// A line on stderr.
    pub fn info(&self, msg: impl AsRef<str>) {
        eprintln!("{}", msg.as_ref());
    }

    /// `error: ...` on stderr, with an optional hint after a blank line (uv style).
    pub fn error(&self, msg: impl AsRef<str>, hint: Option<&str>) {
        let label = self.paint("error", "1;31");
        eprintln!("{label}: {}", msg.as_ref());
        if let Some(h) = hint {
            eprintln!("\n{}: {h}", self.paint("hint", "1;36"));
        }
    }

    pub fn warn(&self, msg: impl AsRef<str>) {
        let label = self.paint("warning", "1;33");
        eprintln!("{label}: {}", msg.as_ref());
    }

    pub fn paint(&self, text: &str, ansi: &str) -> String {
        if self.color {
            format!("\x1b[{ansi}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

fn agent_exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

pub fn main_with_args<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version on stdout with exit 0, usage errors on stderr.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let printer = Printer::from_args(cli.color);
    let code = match cli.command {
        Command::Validate(a) => validate::validate(a, printer),
        Command::Render(a) => render::render(a, printer),
        Command::List(a) => list::list(a, printer),
        Command::Init(a) => init::init(a, printer),
        Command::Run(a) => run::run(a, printer),
        Command::Dev(a) => watch::watch(a, printer),
        Command::Clean => run::clean(printer),
        Command::Report(a) => report::report(a, printer),
        Command::Gate(a) => report::gate(a, printer),
        Command::Baseline(c) => baseline::baseline(c, printer),
        Command::Fmt(a) => fmt::fmt(a, printer),
        Command::Lint(a) => fmt::lint(a, printer),
        Command::Agent(a) => return agent_exit(crate::agent::run_agent(&a.socket, a.service)),
    };
    ExitCode::from(code)
}
