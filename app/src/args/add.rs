//! `likeness add`: new items into an existing index, without rebuilding.
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Index directory to add to (changed in place; see `likeness compact`).
    #[arg(long)]
    pub index: PathBuf,
    /// Vectors to add: a 2-D .npy (items × the index's dimension).
    #[arg(long, conflicts_with = "data")]
    pub vectors: Option<PathBuf>,
    /// Integer labels, one per vector (.npy); required when the index has labels.
    #[arg(long, requires = "vectors")]
    pub labels: Option<PathBuf>,
    /// Scores, one per vector (.npy of floats, NaN = none), for an index with scores.
    #[arg(long, requires = "vectors")]
    pub scores: Option<PathBuf>,
    /// Images to embed and add: folder, CSV manifest (with regions) or IDX
    /// file; their class names become the labels (new names are added).
    #[arg(long, required_unless_present = "vectors")]
    pub data: Option<PathBuf>,
    /// Model to embed --data with (default: the model the index records;
    /// another model is refused).
    #[arg(long, requires = "data")]
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub photos: super::PhotoArgs,
    /// Write the new items' ids here (.npy of int64).
    #[arg(long)]
    pub ids_out: Option<PathBuf>,
    /// Images per forward pass of --data (default: 32 on the CPU, 256 on CUDA).
    #[arg(long, value_parser = super::batch_size)]
    pub batch: Option<usize>,
    /// Skip images that cannot be read (--data), listing them, instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
}
