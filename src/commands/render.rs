//! `clnrm render FILE`: the rendered TOML on stdout, or the variable map with `--map`.

use crate::cli::RenderArgs;
use crate::exit;
use crate::settings::Settings;
use crate::suite::{Loader, VarSource};

pub fn render(settings: &Settings, args: &RenderArgs) -> u8 {
    let printer = settings.printer;
    let loader = Loader::new(settings.load.clone());
    match loader.render(&args.file) {
        Ok(rendered) => {
            if args.map {
                for v in &rendered.vars {
                    let source = match &v.source {
                        VarSource::File => "file [vars]".to_string(),
                        VarSource::Env(name) => format!("env {name}"),
                        VarSource::Cli => "--var".to_string(),
                    };
                    let value = crate::secrets::mask(&v.value);
                    println!("{} = {:?}  # from {source}", v.name, value);
                }
            } else {
                // Values read with `env()` are masked here too: CI logs keep what render prints.
                print!("{}", crate::secrets::mask(&rendered.text));
                if !rendered.text.ends_with('\n') {
                    println!();
                }
            }
            exit::OK
        }
        Err(diags) => {
            for d in &diags {
                eprintln!(
                    "{}",
                    crate::secrets::terminal(&d.to_string(), printer.color)
                );
            }
            printer.error(format!("cannot render `{}`", args.file.display()), None);
            exit::USAGE
        }
    }
}
