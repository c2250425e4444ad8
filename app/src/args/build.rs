//! `likeness build`: an index from a .npy of vectors.
use std::path::PathBuf;

use clap::Args;

use super::GraphArgs;

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Vectors to index: a 2-D .npy of float16, float32 or float64 (items × dimension).
    #[arg(long)]
    pub vectors: PathBuf,
    /// Integer labels, one per vector (.npy of shape (n,) or (n, 1)).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Output index directory; it must not exist unless --force is given.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub graph: GraphArgs,
    /// Replace an existing index at --out. The new index is built beside it
    /// first; a failed build leaves the old one untouched.
    #[arg(long)]
    pub force: bool,
}
