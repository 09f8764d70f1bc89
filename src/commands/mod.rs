//! Command dispatch: args -> [`Settings`] (resolved once) -> one plain function per command
//! -> exit code.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::exit;
use crate::report::Printer;
use crate::settings::{Environment, Settings};

mod baseline;
mod completions;
mod fmt;
mod init;
mod list;
mod load;
mod pipeline;
mod render;
mod report;
mod run;
mod telemetry;
mod validate;
mod watch;

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
    // The step agent inside a container: no project, no settings, its own exit code.
    if let Command::Agent(a) = &cli.command {
        return agent_exit(crate::agent::run_agent(&a.socket, a.service.clone()));
    }
    let env = Environment::capture();
    let settings = match Settings::resolve(&cli, &env) {
        Ok(s) => s,
        Err(e) => {
            Printer::plain().error(e.to_string(), e.hint().as_deref());
            return ExitCode::from(exit::USAGE);
        }
    };
    // Values never to print: registered (and, under GitHub Actions, `::add-mask::`ed) before
    // anything is loaded or printed.
    crate::secrets::register_env(&settings.mask_env);
    let s = &settings;
    let code = match &cli.command {
        Command::Validate(a) => validate::validate(s, a),
        Command::Render(a) => render::render(s, a),
        Command::List(a) => list::list(s, a),
        Command::Init(a) => init::init(a, s.printer),
        Command::Run(a) => run::run(s, a),
        Command::Dev(a) => watch::watch(s, a),
        Command::Clean => run::clean(s),
        Command::Report(a) => report::report(s, a),
        Command::Gate(a) => report::gate(s, a),
        Command::Baseline(c) => baseline::baseline(s, c),
        Command::Fmt(a) => fmt::fmt(s, a),
        Command::Lint(a) => fmt::lint(s, a),
        Command::Agent(_) => exit::USAGE,
        Command::Spans(a) => telemetry::spans(s, a),
        Command::Analyze(a) => telemetry::analyze(s, a),
        Command::Diff(a) => telemetry::diff(s, a),
        Command::Completions(a) => completions::completions(a, s.printer),
        Command::Man => completions::man(s.printer),
    };
    ExitCode::from(code)
}
