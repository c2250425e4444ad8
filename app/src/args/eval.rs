//! `likeness eval`.
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("protocol").args(["queries", "leave_one_out"])))]
pub struct EvalArgs {
    /// Index directory with labels (made by `likeness index`).
    #[arg(long)]
    pub index: PathBuf,
    /// Labelled query images (query vs gallery); class names must match the index's.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Every indexed item queries all the others (the default).
    #[arg(long)]
    pub leave_one_out: bool,
    /// The K of Recall@K.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub ks: Vec<usize>,
    /// Beam width for the ANN agreement check (raised to the largest K if smaller).
    #[arg(long, default_value_t = likeness_index::knn::DEFAULT_EF)]
    pub ef: usize,
    /// Model directory for --queries [default: the one recorded in the index].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Where eval.json and eval.png go [default: INDEX_DIR-eval beside the index].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also predict each item's score from its neighbours, leave-one-out:
    /// the mean of the scores of its --score-k nearest scored items, each
    /// weighted by 1/distance, items of the same subject left out (a face
    /// never predicts itself). Reports MAE, RMSE, Pearson r and Spearman ρ,
    /// overall and per label, beside two baselines (the global mean, the
    /// label's mean); writes score.png. Needs an index with scores.
    #[arg(long)]
    pub score: bool,
    /// Neighbours a predicted score is made of.
    #[arg(long, default_value_t = likeness_index::score::DEFAULT_K)]
    pub score_k: usize,
    #[command(flatten)]
    pub photos: super::PhotoArgs,
    /// Images per forward pass when embedding --queries (default: 32 on the
    /// CPU, 256 on CUDA).
    #[arg(long, value_parser = super::batch_size)]
    pub batch: Option<usize>,
    /// Skip --queries images that cannot be decoded (each is listed)
    /// instead of stopping at the first.
    #[arg(long, requires = "queries")]
    pub skip_bad: bool,
}
