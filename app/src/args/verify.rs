//! `likeness verify`: check every file of an index.
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Index directory to check (every file's size and CRC32, every graph link).
    #[arg(long)]
    pub index: PathBuf,
}
