//! `likeness delete`: items out of an index, for good.
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["ids", "ids_file", "label"]))]
pub struct DeleteArgs {
    /// Index directory (changed in place).
    #[arg(long)]
    pub index: PathBuf,
    /// Ids to delete, comma-separated (`3,9,12`).
    #[arg(long, value_delimiter = ',')]
    pub ids: Vec<u64>,
    /// A file of ids: .npy of integers, or text with one id a line.
    #[arg(long)]
    pub ids_file: Option<PathBuf>,
    /// Delete every item of this class (its name, or its integer label).
    #[arg(long)]
    pub label: Option<String>,
}
