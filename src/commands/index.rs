//! `likeness index`: embed a gallery and build its index in one step.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use likeness_index::cli::MetricArg;
use likeness_index::{IndexBuilder, ItemInfo, Metric};
use tch::Device;

use super::embed::{report_embed, EmbedRunArgs};
use super::load_model;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gallery;

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
    /// Distance: cosine (default) or l2.
    #[arg(long, value_enum, default_value_t = MetricArg::Cosine)]
    pub metric: MetricArg,
    /// HNSW links per node (layer 0 keeps 2·M).
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW beam width while building.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    #[command(flatten)]
    pub run: EmbedRunArgs,
}

/// `likeness index`: embed a gallery and build its index in one step.
pub fn index(device: Device, threads: usize, args: IndexArgs) -> Result<ExitCode> {
    let opts = args.run.options(device)?;
    gallery::check_output(
        &args.out,
        args.run.force,
        likeness_index::manifest::MANIFEST,
    )?;
    let (net, card) = load_model(&args.model, device)?;
    let ds = Dataset::open(&args.data)?;
    if ds.is_empty() {
        return Err(Error::EmptyDataset {
            path: ds.root().to_path_buf(),
            hint: "the gallery has no images to index".into(),
        });
    }
    // The graph's parameters are checked before the (long) embedding.
    let model_dir = std::fs::canonicalize(&args.model).unwrap_or_else(|_| args.model.clone());
    let builder = IndexBuilder::new()
        .metric(args.metric.into())
        .m(args.m)
        .ef_construction(args.ef_construction)
        .threads(threads)
        .overwrite(args.run.force)
        .model_fingerprint(card.weights_crc32.clone())
        .model_dir(model_dir.display().to_string())
        .classes(ds.classes().to_vec());
    builder.validate()?;
    let dim = net.spec.dim as usize;
    let mut vectors = Vec::with_capacity(ds.len() * dim);
    let mut labels = Vec::with_capacity(ds.len());
    let mut items: Vec<ItemInfo> = Vec::with_capacity(ds.len());
    let all: Vec<usize> = (0..ds.len()).collect();
    let bar = crate::progress::bar(ds.len() as u64, "embedding");
    let res = gallery::embed_stream(&net, &ds, &all, &opts, Some(&bar), |emb, kept| {
        vectors.extend_from_slice(emb);
        for &i in kept {
            labels.push(ds.items()[i].label as i64);
            items.push(gallery::item_info(&ds, i));
        }
        Ok(())
    });
    bar.finish_and_clear();
    let stats = res?;
    report_embed(&stats, &net, stats.embedded, &args.out);
    if stats.embedded == 0 {
        return Err(Error::Invalid(format!(
            "none of the {} images of {} could be used",
            ds.len(),
            ds.root().display()
        )));
    }
    let bar = crate::progress::bar(labels.len() as u64, "indexing");
    let progress = |done: usize, _total: usize| bar.set_position(done as u64);
    let res = builder.build(
        &vectors,
        dim,
        Some(&labels),
        Some(&items),
        &args.out,
        Some(&progress),
    );
    bar.finish_and_clear();
    let report = res?;
    if !stats.skipped.is_empty() {
        // The index directory only holds what its manifest lists, so the
        // list of skipped images goes beside it.
        let p = skipped_path(&args.out);
        gallery::write_skipped(&p, &stats.skipped)?;
        eprintln!("likeness: skipped images listed in {}", p.display());
    }
    println!(
        "indexed {} items ({}, M={}, ef_construction={}) in {:.2}s; {:.1} MB in {}",
        report.count,
        Metric::from(args.metric),
        args.m,
        args.ef_construction,
        report.total_seconds,
        report.bytes as f64 / 1e6,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn skipped_path(index_dir: &Path) -> PathBuf {
    let mut name = index_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "index".into());
    name.push(".skipped.csv");
    index_dir.with_file_name(name)
}
