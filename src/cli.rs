//! The torch half's dispatcher: every command, given the parsed arguments
//! (`likeness_app::args`). The torch-free ones run in `likeness_app`, with
//! this crate's network lent for image queries; the others are this
//! crate's `commands/`, one file each.
use std::process::ExitCode;

use likeness_app::args::{Cli, Command};

use crate::commands;
use crate::error::Result;
use crate::runtime::{self, DeviceSpecExt};
use crate::torch_models::TorchModels;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let g = &cli.global;
    let req = runtime::ThreadRequest {
        threads: g.threads,
        torch: g.torch_threads,
        loader: g.loader_threads,
    };
    // CUDA's thread defaults only where the command runs torch on a GPU.
    let on_gpu = cli.command.needs_torch() && g.device.is_cuda();
    let plan = runtime::plan_threads(req, on_gpu, runtime::cores())?;
    runtime::init_threads(&plan);
    let threads = plan.loader;
    let device = g.device;
    let command = match cli.command {
        Command::Doctor(args) => return commands::doctor::run(device, &plan, args),
        Command::Inspect(args) => return commands::inspect::run(args),
        Command::Train(args) => return commands::train::run(device, &plan, *args),
        Command::Embed(args) => return commands::embed::run(device.resolve()?, args),
        Command::Index(args) => return commands::index::run(device.resolve()?, threads, args),
        Command::Eval(args) => return commands::eval::run(device.resolve()?, args),
        Command::SynthSwell(args) => return commands::synth_swell::run(args),
        Command::Regions(args) => return commands::regions::run(args),
        Command::Asymmetry(args) => return commands::asymmetry::run(device.resolve()?, args),
        Command::Add(args) if args.data.is_some() => {
            return commands::add::run(device.resolve()?, threads, args)
        }
        other => other,
    };
    let serving = matches!(command, Command::Serve(_));
    let models = TorchModels {
        device: device.resolve()?,
    };
    let code = match likeness_app::cli::run(command, threads, Some(&models)) {
        Ok(result) => result?,
        Err(other) => {
            return Err(crate::Error::Invalid(format!(
                "no command runs {other:?}; this is a bug, please report it"
            )))
        }
    };
    if serving {
        // The search threads have run libtorch (each with its own OpenMP
        // team) and rayon does not join them; letting `exit` run libtorch's
        // and libgomp's static destructors under them crashed at shutdown.
        // Everything the server wrote is flushed; leave without destructors.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: _exit ends the process at once; no Rust state needs
        // dropping (the index is only mapped read-only, all output flushed).
        unsafe { libc::_exit(0) }
    }
    Ok(code)
}
