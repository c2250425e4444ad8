//! Runs a parsed command line: the torch-free commands here; the others are
//! the torch half's (`likeness::cli`), which [`Command::needs_torch`] names.
use std::process::ExitCode;

use crate::args::{Command, GlobalArgs};
use crate::embedder::ModelLoader;
use crate::error::Result;

/// Sizes rayon's global pool from `--loader-threads`/`--threads`, or all cores.
pub fn init_threads(global: &GlobalArgs) -> Result<usize> {
    // The flags' parser keeps them in 1..=MAX_THREADS.
    let n = match global.loader_threads.or(global.threads) {
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // A second call in the same process (tests) keeps the first pool; that is fine.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
    Ok(n)
}

/// Runs `command` if this crate holds it; `models` embeds images for
/// `query --image` and `serve` (the torch half lends it). A command that
/// runs a network comes back as `Err(command)`.
pub fn run(
    command: Command,
    threads: usize,
    models: Option<&dyn ModelLoader>,
) -> std::result::Result<Result<ExitCode>, Box<Command>> {
    use crate::commands::{add, build, compact, delete, query, serve, update, verify};
    Ok(match command {
        Command::Build(args) => build::run(threads, args),
        Command::Verify(args) => verify::run(args),
        Command::Add(args) if args.data.is_none() => add::run(threads, args),
        Command::Delete(args) => delete::run(args),
        Command::Update(args) => update::run(args),
        Command::Compact(args) => compact::run(threads, args),
        Command::Query(args) if models.is_some() || !args.needs_torch() => {
            query::run(threads, args, models)
        }
        Command::Serve(args) => serve::run(threads, args, models),
        other => return Err(Box::new(other)),
    })
}
