//! The `likeness` binary: parse, run, report. Everything else is in the library.
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = likeness::cli::Cli::parse();
    match likeness::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("likeness: error: {:#}", anyhow::Error::from(e));
            ExitCode::from(2)
        }
    }
}
