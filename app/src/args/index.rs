//! `likeness index`: embed a gallery and build its index.
use std::path::PathBuf;

use clap::Args;

use super::{EmbedRunArgs, GraphArgs};

#[derive(Debug, Args)]
pub struct IndexArgs {
    /// Trained model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Gallery images: folder, CSV manifest (with optional regions) or IDX file.
    #[arg(long)]
    pub data: PathBuf,
    /// Output index directory.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub graph: GraphArgs,
    #[command(flatten)]
    pub run: EmbedRunArgs,
}
