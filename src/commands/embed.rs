//! `likeness embed`: encode a gallery into vectors.npy, labels.npy,
//! items.csv and embed.json.
use std::path::Path;
use std::process::ExitCode;

use likeness_app::args::{EmbedArgs, EmbedRunArgs};
use tch::Device;

use crate::data::Dataset;
use crate::error::Result;
use crate::gallery::{self, EmbedOptions};
use crate::model::Net;
use likeness_app::plural::plural;

/// The embedder's options from the arguments `embed` and `index` share.
pub(crate) fn options(run: &EmbedRunArgs, device: Device) -> Result<EmbedOptions> {
    let prefetch_default = if device.is_cuda() {
        gallery::CUDA_PREFETCH
    } else {
        0
    };
    Ok(EmbedOptions {
        batch: run
            .batch
            .unwrap_or_else(|| likeness_app::args::default_batch(device.is_cuda())),
        prefetch: run.prefetch.unwrap_or(prefetch_default),
        skip_bad: run.skip_bad,
    })
}

/// `likeness embed`.
pub fn run(device: Device, args: EmbedArgs) -> Result<ExitCode> {
    let opts = options(&args.run, device)?;
    gallery::check_output(&args.out, args.run.force, "embed.json")?;
    let (net, model) = crate::train::output::load(&args.model, device)?;
    let ds = Dataset::open(&args.data)?.with_limits(args.run.photos.limits());
    let todo = args.shard.map_or(ds.len(), |s| s.range(ds.len()).len());
    let bar = likeness_app::progress::bar(todo as u64, "embedding");
    let res = gallery::embed_to_dir(
        &net,
        &model,
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
    report_embed(&stats, &net, card.count, &args.out)?;
    if card.predicted_scores {
        likeness_app::outln!(
            "each image's grade, as the model's score read-out predicts it: {}",
            args.out.join("predicted_scores.npy").display()
        )?;
    }
    if let (Some(u), Some(domain)) = (&card.readout_unfamiliar, &model.score_domain) {
        u.warn(
            domain,
            "their rows of predicted_scores.npy",
            "items.csv names each row's image and box",
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn report_embed(
    stats: &gallery::EmbedStats,
    net: &Net,
    count: usize,
    out: &Path,
) -> Result<()> {
    if stats.converted > 0 {
        eprintln!(
            "likeness: converted {} to {} (the model expects {})",
            plural(stats.converted, "image"),
            if net.spec.channels == 1 {
                "greyscale"
            } else {
                "RGB"
            },
            plural(net.spec.channels as usize, "channel")
        );
    }
    if !stats.skipped.is_empty() {
        eprintln!(
            "likeness: skipped {} (listed in {})",
            plural(stats.skipped.len(), "unusable image"),
            out.join("skipped.csv").display()
        );
    }
    likeness_app::outln!(
        "embedded {} of dimension {} in {:.2}s ({:.0} images/s) into {}",
        plural(count, "image"),
        net.spec.dim,
        stats.seconds,
        stats.images_per_second(),
        out.display()
    )?;
    Ok(())
}
