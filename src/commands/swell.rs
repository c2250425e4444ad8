//! `likeness synth-swell`: write the synthetic graded-regions set
//! ([`crate::data::swell`]); `make data` runs it into the cache.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::data::swell;
use crate::error::Result;

#[derive(Debug, Args)]
pub struct SwellArgs {
    /// The johns crops, one folder per person [default: the data cache's].
    #[arg(long)]
    pub johns: Option<PathBuf>,
    /// Output folder [default: <data cache>/swell-v<VERSION>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seed of the strengths.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Variants per crop. 30 gives training from grades 1,320 swells of the
    /// four training people's photographs (44 of them) to learn from.
    #[arg(long, default_value_t = 30)]
    pub variants: usize,
}

/// `likeness synth-swell`.
pub fn synth_swell(args: SwellArgs) -> Result<ExitCode> {
    let johns = args.johns.unwrap_or_else(crate::cache::johns_dir);
    let out = args.out.unwrap_or_else(crate::cache::swell_dir);
    let set = swell::generate(&johns, &out, args.seed, args.variants.max(1))?;
    println!(
        "wrote {} SYNTHETIC images ({} graded regions) into {}; test.csv holds {}, train.csv the others",
        set.images,
        set.regions,
        out.display(),
        set.held_out
    );
    Ok(ExitCode::SUCCESS)
}
