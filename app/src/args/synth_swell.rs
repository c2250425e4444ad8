//! `likeness synth-swell`.
use std::path::PathBuf;

use clap::Args;

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
