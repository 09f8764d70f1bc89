use std::process::ExitCode;

fn main() -> ExitCode {
    clnrm::main_with_args(std::env::args_os())
}
