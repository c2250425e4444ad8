//! `likeness index`: embed a gallery and build its index in one step.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use likeness_app::args::IndexArgs;
use likeness_index::ItemInfo;
use tch::Device;

use super::embed::{options, report_embed};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gallery;

/// `likeness index`: embed a gallery and build its index in one step.
pub fn run(device: Device, threads: usize, args: IndexArgs) -> Result<ExitCode> {
    let opts = options(&args.run, device)?;
    gallery::check_output(
        &args.out,
        args.run.force,
        likeness_index::manifest::MANIFEST,
    )?;
    let (net, card) = crate::train::output::load(&args.model, device)?;
    let ds = Dataset::open(&args.data)?.with_limits(args.run.photos.limits());
    if ds.is_empty() {
        return Err(Error::EmptyDataset {
            path: ds.root().to_path_buf(),
            hint: "the gallery has no images to index".into(),
        });
    }
    // The graph's parameters are checked before the (long) embedding.
    let model_dir = crate::absolute(&args.model);
    let builder = args
        .graph
        .builder(threads)
        .overwrite(args.run.force)
        .model_fingerprint(card.weights_crc32.clone())
        .model_dir(model_dir.display().to_string())
        .classes(ds.classes().to_vec());
    builder.validate()?;
    let dim = net.spec.dim as usize;
    let mut vectors = Vec::with_capacity(ds.len() * dim);
    let mut labels = Vec::with_capacity(ds.len());
    let mut items: Vec<ItemInfo> = Vec::with_capacity(ds.len());
    let mut kept_ids: Vec<usize> = Vec::with_capacity(ds.len());
    let all: Vec<usize> = (0..ds.len()).collect();
    let bar = likeness_app::progress::bar(ds.len() as u64, "embedding");
    let res = gallery::embed_stream(&net, &ds, &all, &opts, Some(&bar), |emb, kept| {
        vectors.extend_from_slice(emb);
        for &i in kept {
            labels.push(ds.items()[i].label as i64);
            items.push(gallery::item_info(&ds, i));
            kept_ids.push(i);
        }
        Ok(())
    });
    bar.finish_and_clear();
    let stats = res?;
    report_embed(&stats, &net, stats.embedded, &args.out)?;
    if stats.embedded == 0 {
        return Err(Error::Invalid(format!(
            "none of the {} images of {} could be used",
            ds.len(),
            ds.root().display()
        )));
    }
    // Scores, subjects and sides of the items that were embedded.
    let mut builder = builder;
    if let Some(all) = ds.scores() {
        builder = builder.scores(kept_ids.iter().map(|&i| all[i]).collect());
    }
    if let Some(all) = ds.pairings() {
        builder = builder.pairings(kept_ids.iter().map(|&i| all[i].clone()).collect());
    }
    let bar = likeness_app::progress::bar(labels.len() as u64, "indexing");
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
    likeness_app::outln!(
        "indexed {} ({}) in {:.2}s; {:.1} MB in {}",
        likeness_app::plural::plural(report.count, "item"),
        args.graph.describe(),
        report.total_seconds,
        report.bytes as f64 / 1e6,
        args.out.display()
    )?;
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
