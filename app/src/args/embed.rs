//! `likeness embed`, and the options `index` shares.
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Trained model directory (model.json + weights.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Images to encode: an image folder, a CSV manifest (with optional
    /// regions) or an IDX file.
    #[arg(long)]
    pub data: PathBuf,
    /// Output directory: vectors.npy, labels.npy, items.csv, embed.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Embed only shard i of N (i/N, from 0): the i-th of N contiguous,
    /// near-equal ranges of the items. Ids stay the source's (items.csv's
    /// `id` is global) and embed.json records the range, so the N folders
    /// concatenate to one unsharded embed (`likeness.ray` runs them).
    #[arg(long, value_name = "i/N")]
    pub shard: Option<crate::shard::Shard>,
    #[command(flatten)]
    pub run: EmbedRunArgs,
}

/// Options shared by `embed` and `index`.
#[derive(Debug, Args)]
pub struct EmbedRunArgs {
    /// Images per forward pass (default: 32 on the CPU, 256 on CUDA).
    #[arg(long, value_parser = super::batch_size)]
    pub batch: Option<usize>,
    /// Skip images that cannot be used and list them in skipped.csv; without
    /// it the first bad image stops the run with its path.
    #[arg(long)]
    pub skip_bad: bool,
    #[command(flatten)]
    pub photos: super::PhotoArgs,
    /// Replace an existing output directory (only one this command made).
    #[arg(long)]
    pub force: bool,
    /// Batches decoded ahead of the forward pass (0: decode, then forward)
    /// [default: 0 on the CPU, measured faster on 2 cores; 2 on CUDA, where
    /// decoding on the CPU overlaps the GPU's forward pass; see src/gallery.rs].
    #[arg(long, hide = true)]
    pub prefetch: Option<usize>,
}
