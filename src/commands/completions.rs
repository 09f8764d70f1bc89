//! `clnrm completions SHELL` and `clnrm man`: generated from the clap definition, on stdout.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit;
use crate::report::Printer;

pub fn completions(args: &CompletionsArgs, printer: Printer) -> u8 {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "clnrm", &mut out);
    emit(&out, printer)
}

pub fn man(printer: Printer) -> u8 {
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut out) {
        printer.error(format!("cannot render the man page: {e}"), None);
        return exit::USAGE;
    }
    emit(&out, printer)
}

fn emit(bytes: &[u8], printer: Printer) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => exit::OK,
        // A closed pipe (`clnrm man | head`) is the reader's choice, not an error of ours.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            printer.error(format!("cannot write to stdout: {e}"), None);
            exit::USAGE
        }
    }
}
