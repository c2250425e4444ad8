//! The `likeness` binary: parse, run, report. Everything else is in the libraries.
//!
//! This front binary never loads libtorch: it links only `likeness-app`, so
//! the torch-free commands (`build`, `query` by vector or id, `verify`, and
//! `serve` without a model) start in milliseconds and use no memory beyond
//! the index they map. It parses every command; those that need a network
//! (`Command::needs_torch`) replace this process (`exec`, same arguments)
//! with the sibling `likeness-torch` (src/bin/likeness-torch.rs), installed
//! beside it. Nothing here may call into the `likeness` library crate: the
//! linker would then pull libtorch in.
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use clap::Parser;
use likeness_app::args::Cli;

/// The binary that runs the commands needing libtorch.
const TORCH_BINARY: &str = "likeness-torch";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let cli = Cli::parse_from(&args);
    // The one decision of which binary runs a command.
    if cli.command.needs_torch() {
        return report(Err(exec_torch(&args)));
    }
    let result =
        likeness_app::cli::init_threads(&cli.global).and_then(
            |threads| match likeness_app::cli::run(cli.command, threads, None) {
                Ok(result) => result,
                Err(other) => Err(likeness_app::Error::Usage(format!(
                    "{other:?} needs the network; run it with likeness-torch"
                ))),
            },
        );
    report(result.map_err(anyhow::Error::from))
}

fn report(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("likeness: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Replaces this process with `likeness-torch` found beside the running
/// binary, passing the same arguments (and how OpenMP should wait,
/// [`likeness_app::openmp`]). Returns only on failure.
fn exec_torch(args: &[OsString]) -> anyhow::Error {
    let me = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => return anyhow::anyhow!("cannot locate the running binary: {e}"),
    };
    let torch = me.with_file_name(TORCH_BINARY);
    if !torch.is_file() {
        return anyhow::anyhow!(
            "{} not found beside {}: this command needs libtorch, which lives in that second \
             binary; install both (`cargo install --path .` and `make build` build them together)",
            torch.display(),
            me.display()
        );
    }
    let argv0 = args.first().cloned().unwrap_or_else(|| "likeness".into());
    let mut cmd = std::process::Command::new(&torch);
    cmd.arg0(argv0).args(args.iter().skip(1));
    if let Some((var, value)) = likeness_app::openmp::wait_setting() {
        cmd.env(var, value);
    }
    let err = cmd.exec();
    anyhow::anyhow!("cannot run {}: {err}", torch.display())
}
