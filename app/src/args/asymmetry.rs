//! `likeness asymmetry`.
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct AsymmetryArgs {
    /// Trained model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// A manifest with a header naming `subject` and `side` columns (and
    /// the region boxes `x,y,w,h`), such as `likeness regions` writes; or
    /// photographs (a folder or one image), whose regions are then found
    /// first, as `likeness regions` would, into OUT/regions.csv (with a
    /// model trained from grades, only the regions its score read-out
    /// learnt from).
    #[arg(long)]
    pub data: PathBuf,
    /// An index with scores (made by `likeness index` from a manifest with a
    /// `score` column, with the same model): predict each side's score from
    /// its neighbours too. (A model trained with `--score-bins` predicts it
    /// with its score read-out without one.)
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// Neighbours a predicted score is made of.
    #[arg(long, default_value_t = likeness_index::score::DEFAULT_K)]
    pub score_k: usize,
    /// Output folder: asymmetry.csv, asymmetry.png, unpaired.csv, summary.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Pairs shown at each end (most and least asymmetric) in asymmetry.png.
    #[arg(long, default_value_t = 4)]
    pub show: usize,
    /// Images per forward pass (default: 32 on the CPU, 256 on CUDA).
    #[arg(long, value_parser = super::batch_size)]
    pub batch: Option<usize>,
    #[command(flatten)]
    pub photos: super::PhotoArgs,
    /// Given photos: the smallest face to find, pixels across (as
    /// `likeness regions --min-face`). Pairs whose regions are too small to
    /// judge are flagged (`too_small` in asymmetry.csv); a larger value
    /// leaves their faces out.
    #[arg(long, default_value_t = crate::face::DEFAULT_MIN_FACE)]
    pub min_face: u32,
    /// Given photos: skip those that cannot be read (each is listed)
    /// instead of stopping at the first.
    #[arg(long)]
    pub skip_bad: bool,
}
