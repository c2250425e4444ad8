//! `likeness embed`: encode a gallery into vectors.npy, labels.npy,
//! items.csv and embed.json.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use tch::Device;

use super::load_model;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gallery::{self, EmbedOptions};
use crate::model::Net;

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
    pub shard: Option<crate::data::shard::Shard>,
    #[command(flatten)]
    pub run: EmbedRunArgs,
}

/// Options shared by `embed` and `index`.
#[derive(Debug, Args)]
pub struct EmbedRunArgs {
    /// Images per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Skip images that cannot be used and list them in skipped.csv; without
    /// it the first bad image stops the run with its path.
    #[arg(long)]
    pub skip_bad: bool,
    /// Replace an existing output directory (only one this command made).
    #[arg(long)]
    pub force: bool,
    /// Batches decoded ahead of the forward pass (0: decode, then forward)
    /// [default: 0 on the CPU, measured faster on 2 cores; 2 on CUDA, where
    /// decoding on the CPU overlaps the GPU's forward pass; see src/gallery.rs].
    #[arg(long, hide = true)]
    pub prefetch: Option<usize>,
}

impl EmbedRunArgs {
    pub(crate) fn options(&self, device: Device) -> Result<EmbedOptions> {
        if self.batch == 0 {
            return Err(Error::Invalid("--batch must be at least 1".into()));
        }
        let prefetch_default = if device.is_cuda() {
            gallery::CUDA_PREFETCH
        } else {
            0
        };
        Ok(EmbedOptions {
            batch: self.batch,
            prefetch: self.prefetch.unwrap_or(prefetch_default),
            skip_bad: self.skip_bad,
        })
    }
}

/// `likeness embed`.
pub fn embed(device: Device, args: EmbedArgs) -> Result<ExitCode> {
    let opts = args.run.options(device)?;
    gallery::check_output(&args.out, args.run.force, "embed.json")?;
    let (net, card) = load_model(&args.model, device)?;
    let ds = Dataset::open(&args.data)?;
    let todo = args.shard.map_or(ds.len(), |s| s.range(ds.len()).len());
    let bar = crate::progress::bar(todo as u64, "embedding");
    let res = gallery::embed_to_dir(
        &net,
        &card,
        &args.model,
        &ds,
        &args.out,
        &opts,
        args.run.force,
        args.shard,
        Some(&bar),
    );
    bar.finish_and_clear();
    let (card, stats) = res?;
    report_embed(&stats, &net, card.count, &args.out);
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn report_embed(stats: &gallery::EmbedStats, net: &Net, count: usize, out: &Path) {
    if stats.converted > 0 {
        eprintln!(
            "likeness: converted {} images to {} (the model expects {} channel{})",
            stats.converted,
            if net.spec.channels == 1 {
                "greyscale"
            } else {
                "RGB"
            },
            net.spec.channels,
            if net.spec.channels == 1 { "" } else { "s" }
        );
    }
    if !stats.skipped.is_empty() {
        eprintln!(
            "likeness: skipped {} unusable images (listed in {})",
            stats.skipped.len(),
            out.join("skipped.csv").display()
        );
    }
    println!(
        "embedded {count} images of dimension {} in {:.2}s ({:.0} images/s) into {}",
        net.spec.dim,
        stats.seconds,
        stats.images_per_second(),
        out.display()
    );
}
