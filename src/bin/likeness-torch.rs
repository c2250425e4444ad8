//! `likeness-torch`: the half of the CLI that links libtorch (doctor, inspect,
//! train, and everything else). `likeness` execs it with the same arguments;
//! it accepts every command, so it can also be run directly.
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
