//! `likeness compact`: every change folded into one clean graph.
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Index directory (rewritten in place, atomically).
    #[arg(long)]
    pub index: PathBuf,
}
