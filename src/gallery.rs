//! Encoding a gallery: the batch embedder behind `likeness embed` and
//! `likeness index`, and the embeddings directory it writes.
//!
//! # Threading layout (measured: `make bench-embed`, docs/benchmarks.md)
//! Each batch is decoded, cropped, resized and normalised on rayon (all
//! cores), then goes through one batched forward pass on torch's intra-op
//! threads (all cores) under `no_grad`. Three layouts were measured on this
//! 2-core machine (Fashion-MNIST test set as 10,000 PNG files + 55 JPEGs,
//! convnet, batch 256, best of 2): decode *then* forward 1,132 images/s;
//! decode of batch *i + 1* overlapped with the forward pass of batch *i*
//! (`--prefetch 1`) 960 images/s, because rayon's and OpenMP's threads then
//! fight over the two cores (OpenMP spin-waits); one single-threaded
//! decode+forward worker per core (two `--threads 1` processes on halves of
//! the data) 1,191 images/s, 5% more than the default but with one copy of
//! the model and libtorch per worker. Decode-then-forward is the default on
//! the CPU. On CUDA the forward pass takes no CPU cores, so decoding runs
//! [`CUDA_PREFETCH`] batches ahead, and batches reach the GPU through pinned
//! memory with non-blocking copies (`embed::host_to_device`).
//! Memory is bounded by `(prefetch + 2) · batch` decoded images whatever the
//! gallery size; rows are written in item order as they come.
//!
//! # The embeddings directory (`likeness embed --out DIR`)
//! - `vectors.npy`: float32 `(n, dim)`, row `i` is item `i` (64-byte aligned);
//! - `labels.npy`: int64 `(n,)`, the class index of each row;
//! - `items.csv`: `id,label,class,path,row,x,y,w,h,score,subject,side` (IDX
//!   row, region box, score, subject and side when there are any);
//! - `scores.npy`: float32 `(n,)`, each row's score, NaN where it has none
//!   (only when the source has a `score` column);
//! - `predicted_scores.npy`: float32 `(n,)`, each row's grade as the
//!   model's score read-out predicts it (only for a model trained with
//!   `--score-bins`; from the same forward passes as the vectors);
//! - `embed.json`: model directory and fingerprint, classes, counts, timings;
//! - `skipped.csv` (with `--skip-bad`): `path,row,line,reason` of each image
//!   that could not be used.
//!
//! The directory is written beside its final name and renamed into place.
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use likeness_index::npy::RowWriter;
use likeness_index::{ItemInfo, TempDir};
use serde::{Deserialize, Serialize};

use crate::data::shard::Shard;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Net;
use crate::train::output::ModelCard;
use crate::train::score::{NoReadout, Readout, Unfamiliar};
use crate::transform;

/// Format name of `embed.json`.
pub const EMBED_FORMAT: &str = "likeness-embeddings";
/// Version of the embeddings directory layout.
pub const EMBED_VERSION: u32 = 1;

/// Batches decoded ahead on CUDA: the GPU's forward pass takes no CPU
/// cores, so decoding the next batches meanwhile hides its time.
pub const CUDA_PREFETCH: usize = 2;

/// How to run the embedder.
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// Images per forward pass.
    pub batch: usize,
    /// Batches decoded ahead of the forward pass (0: decode, then forward).
    pub prefetch: usize,
    /// Skip images that cannot be decoded (listed in the outcome) instead of
    /// stopping at the first one.
    pub skip_bad: bool,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            batch: likeness_app::args::DEFAULT_BATCH_CPU,
            prefetch: 0,
            skip_bad: false,
        }
    }
}

/// An item that could not be embedded.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub item: usize,
    pub path: PathBuf,
    pub row: Option<usize>,
    pub line: Option<u64>,
    pub reason: String,
}

/// What [`embed_stream`] did.
#[derive(Debug, Clone)]
pub struct EmbedStats {
    /// Items embedded (rows produced).
    pub embedded: usize,
    pub skipped: Vec<Skipped>,
    /// Items whose channel count differs from the model's (converted).
    pub converted: usize,
    pub seconds: f64,
}

impl EmbedStats {
    pub fn images_per_second(&self) -> f64 {
        self.embedded as f64 / self.seconds.max(1e-9)
    }
}

/// One decoded batch, ready for the network.
struct Prepared {
    /// Dataset indices of the rows of `input`.
    kept: Vec<usize>,
    input: Vec<f32>,
    skipped: Vec<Skipped>,
    converted: usize,
}

fn prepare(
    ds: &Dataset,
    spec: &crate::model::ModelSpec,
    chunk: &[usize],
    skip_bad: bool,
) -> Result<Prepared> {
    // Each image becomes the network's input on the thread that decoded
    // it, and the decoded photo is dropped there: the batch held them all
    // first, and `embed --batch 128` of forty 4000×3000 JPEGs peaked at
    // 1.9 GB against 0.9 GB at --batch 8 (128 of them: 4.6 GB of pixels).
    let loaded = ds.load_each_with(chunk, |s| {
        // Grey (with or without alpha) is 1 channel, colour is 3.
        let c = if s.image.color().channel_count() <= 2 {
            1
        } else {
            3
        };
        (c, transform::batch_input(&[&s.image], spec, None, &[]))
    });
    let mut kept = Vec::with_capacity(chunk.len());
    let mut input = Vec::new();
    let mut skipped = Vec::new();
    let mut converted = 0;
    let channels = spec.channels;
    for (&i, res) in chunk.iter().zip(loaded) {
        match res {
            Ok((c, one)) => {
                if c != channels {
                    converted += 1;
                }
                kept.push(i);
                input.extend_from_slice(&one);
            }
            Err(e) if skip_bad => {
                let item = &ds.items()[i];
                skipped.push(Skipped {
                    item: i,
                    path: item.path.clone(),
                    row: item.row,
                    line: item.line,
                    reason: e.to_string(),
                });
            }
            Err(e) => {
                return Err(Error::Invalid(format!(
                    "{e}\n(pass --skip-bad to skip unusable images and list them in skipped.csv)"
                )))
            }
        }
    }
    Ok(Prepared {
        kept,
        input,
        skipped,
        converted,
    })
}

/// Embeds the dataset items at `indices` in order, handing each batch's rows
/// (`kept.len() × dim` floats) and dataset indices to `sink`. Decoding runs on
/// rayon `opts.prefetch` batches ahead of the forward pass.
pub fn embed_stream(
    net: &Net,
    ds: &Dataset,
    indices: &[usize],
    opts: &EmbedOptions,
    bar: Option<&indicatif::ProgressBar>,
    mut sink: impl FnMut(&[f32], &[usize]) -> Result<()>,
) -> Result<EmbedStats> {
    embed_stream_reading_out(net, None, ds, indices, opts, bar, |emb, _, kept| {
        sink(emb, kept)
    })
}

/// [`embed_stream`], and with `readout` each row's predicted score from
/// the same forward passes, handed to `sink` beside the rows.
pub fn embed_stream_reading_out(
    net: &Net,
    readout: Option<&Readout>,
    ds: &Dataset,
    indices: &[usize],
    opts: &EmbedOptions,
    bar: Option<&indicatif::ProgressBar>,
    mut sink: impl FnMut(&[f32], Option<&[f32]>, &[usize]) -> Result<()>,
) -> Result<EmbedStats> {
    let start = Instant::now();
    let batch = opts.batch.max(1);
    let mut stats = EmbedStats {
        embedded: 0,
        skipped: Vec::new(),
        converted: 0,
        seconds: 0.0,
    };
    let mut consume = |p: Prepared, stats: &mut EmbedStats| -> Result<()> {
        let done = (p.kept.len() + p.skipped.len()) as u64;
        stats.skipped.extend(p.skipped);
        stats.converted += p.converted;
        if !p.kept.is_empty() {
            let (emb, scores) =
                crate::embed::embed_reading_out(net, readout, &p.input, p.kept.len())?;
            check_finite(ds, &emb, &p.kept)?;
            sink(&emb, scores.as_deref(), &p.kept)?;
            stats.embedded += p.kept.len();
        }
        if let Some(b) = bar {
            b.inc(done);
        }
        Ok(())
    };
    if opts.prefetch == 0 {
        for chunk in indices.chunks(batch) {
            let p = prepare(ds, &net.spec, chunk, opts.skip_bad)?;
            consume(p, &mut stats)?;
        }
    } else {
        let (tx, rx) = sync_channel::<Result<Prepared>>(opts.prefetch);
        let spec = &net.spec;
        std::thread::scope(|scope| -> Result<()> {
            let producer = scope.spawn(move || {
                for chunk in indices.chunks(batch) {
                    let p = prepare(ds, spec, chunk, opts.skip_bad);
                    let failed = p.is_err();
                    if tx.send(p).is_err() || failed {
                        break;
                    }
                }
            });
            let mut result = Ok(());
            for p in rx.iter() {
                if let Err(e) = p.and_then(|p| consume(p, &mut stats)) {
                    result = Err(e);
                    break;
                }
            }
            // Dropping the receiver stops the producer at its next send.
            drop(rx);
            producer
                .join()
                .map_err(|_| Error::Invalid("the decoding thread panicked".into()))?;
            result
        })?;
    }
    stats.seconds = start.elapsed().as_secs_f64();
    Ok(stats)
}

/// A network that gives NaN or infinity for an image is broken (damaged
/// weights, a `model.json` edited by hand), not the image: say so here,
/// rather than let `index` later blame "row 0" of the vectors.
fn check_finite(ds: &Dataset, emb: &[f32], kept: &[usize]) -> Result<()> {
    let dim = emb.len() / kept.len().max(1);
    let Some(at) = emb.iter().position(|x| !x.is_finite()) else {
        return Ok(());
    };
    let item = &ds.items()[kept[at / dim.max(1)]];
    Err(Error::Invalid(format!(
        "the model gave a vector with {} for {}: its weights or model.json are damaged \
         (retrain, or restore the model folder)",
        emb[at],
        item.path.display()
    )))
}

/// `embed.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbedCard {
    pub format: String,
    pub format_version: u32,
    pub count: usize,
    pub dim: usize,
    pub source: String,
    pub model_dir: String,
    pub model_fingerprint: String,
    pub classes: Vec<String>,
    pub skipped: usize,
    pub converted: usize,
    pub seconds: f64,
    pub images_per_second: f64,
    pub likeness_version: String,
    /// Set by `embed --shard i/N`: the part of the source this folder holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::data::shard::ShardInfo>,
    /// Whether the folder holds `predicted_scores.npy` (the model has a
    /// score read-out). Absent in older folders: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub predicted_scores: bool,
    /// Where the model records what its read-out learnt from: the rows'
    /// labels and predictions beyond it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readout_unfamiliar: Option<Unfamiliar>,
}

/// The index record of a dataset item: its source (`path`, or `path#row`
/// for an IDX row) and region as `[x0, y0, x1, y1]`.
pub fn item_info(ds: &Dataset, i: usize) -> ItemInfo {
    let item = &ds.items()[i];
    let source = match item.row {
        Some(r) => format!("{}#{r}", item.path.display()),
        None => item.path.display().to_string(),
    };
    ItemInfo {
        source,
        region: item.region.map(|r| {
            [
                r.x as f32,
                r.y as f32,
                (r.x + r.w) as f32,
                (r.y + r.h) as f32,
            ]
        }),
    }
}

/// Refuses an existing output unless `force`; with `force`, only a
/// directory holding `marker` (or nothing) may be replaced.
pub fn check_output(out: &Path, force: bool, marker: &str) -> Result<()> {
    if out.exists() {
        if !force {
            return Err(Error::Invalid(format!(
                "{} already exists; remove it, choose another --out or pass --force to replace it",
                out.display()
            )));
        }
        likeness_index::fsutil::check_replaceable(out, marker)?;
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    Ok(())
}

/// `likeness embed`: embeds every item of `ds` into a new directory `out`.
#[allow(clippy::too_many_arguments)]
pub fn embed_to_dir(
    net: &Net,
    card: &ModelCard,
    model_dir: &Path,
    ds: &Dataset,
    out: &Path,
    opts: &EmbedOptions,
    force: bool,
    shard: Option<Shard>,
    bar: Option<&indicatif::ProgressBar>,
) -> Result<(EmbedCard, EmbedStats)> {
    check_output(out, force, "embed.json")?;
    if ds.is_empty() {
        return Err(Error::EmptyDataset {
            path: ds.root().to_path_buf(),
            hint: "there is nothing to embed".into(),
        });
    }
    // With --shard, only the shard's range, and ids stay the source's.
    let range = shard.map_or(0..ds.len(), |s| s.range(ds.len()));
    if range.is_empty() {
        return Err(Error::Invalid(format!(
            "--shard {}/{} of {} holds no items: the source has {}; use at most {} shards",
            shard.map_or(0, |s| s.index),
            shard.map_or(1, |s| s.count),
            ds.root().display(),
            ds.len(),
            ds.len()
        )));
    }
    let dim = net.spec.dim as usize;
    let tmp = TempDir::sibling_of(out)?;
    let mut vectors = RowWriter::<f32>::create(tmp.path().join("vectors.npy"), dim)?;
    let items_path = tmp.path().join("items.csv");
    let mut items = csv::Writer::from_path(&items_path).map_err(|e| csv_err(&items_path, e))?;
    items
        .write_record([
            "id", "label", "class", "path", "row", "x", "y", "w", "h", "score", "subject", "side",
        ])
        .map_err(|e| csv_err(&items_path, e))?;
    let mut labels: Vec<i64> = Vec::with_capacity(ds.len());
    let mut scores: Vec<f32> = Vec::with_capacity(ds.len());
    let readout = match Readout::load(model_dir, card, net.vs.device())? {
        Ok(r) => Some(r),
        Err(NoReadout::NotTrained) => None,
        Err(NoReadout::NoNorm) => {
            eprintln!(
                "likeness: {} has a score read-out but its model.json predates the recorded \
                 standardisation, so no predicted_scores.npy; train it again to get one",
                model_dir.display()
            );
            None
        }
    };
    let mut predicted: Vec<f32> = Vec::new();
    let all: Vec<usize> = range.clone().collect();
    let stats = embed_stream_reading_out(
        net,
        readout.as_ref(),
        ds,
        &all,
        opts,
        bar,
        |emb, read, kept| {
            vectors.push(emb)?;
            predicted.extend_from_slice(read.unwrap_or_default());
            for &i in kept {
                let it = &ds.items()[i];
                let opt = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
                let id = range.start + labels.len();
                items
                    .write_record([
                        id.to_string(),
                        it.label.to_string(),
                        ds.classes()[it.label].clone(),
                        it.path.display().to_string(),
                        it.row.map(|r| r.to_string()).unwrap_or_default(),
                        opt(it.region.map(|r| r.x)),
                        opt(it.region.map(|r| r.y)),
                        opt(it.region.map(|r| r.w)),
                        opt(it.region.map(|r| r.h)),
                        it.score.map(|s| s.to_string()).unwrap_or_default(),
                        it.subject.clone().unwrap_or_default(),
                        it.side.map(|s| s.to_string()).unwrap_or_default(),
                    ])
                    .map_err(|e| csv_err(&items_path, e))?;
                labels.push(it.label as i64);
                scores.push(it.score.unwrap_or(f32::NAN));
            }
            Ok(())
        },
    )?;
    if stats.embedded == 0 {
        return Err(Error::Invalid(format!(
            "none of the {} images of {} could be used (first: {})",
            range.len(),
            ds.root().display(),
            stats.skipped.first().map_or("", |s| s.reason.as_str())
        )));
    }
    vectors.finish()?;
    items.flush().map_err(|e| Error::io(&items_path, e))?;
    drop(items);
    likeness_index::npy::write(tmp.path().join("labels.npy"), &labels, &[labels.len()])?;
    if ds.items().iter().any(|i| i.score.is_some()) {
        likeness_index::npy::write(tmp.path().join("scores.npy"), &scores, &[scores.len()])?;
    }
    if readout.is_some() {
        let p = tmp.path().join("predicted_scores.npy");
        likeness_index::npy::write(p, &predicted, &[predicted.len()])?;
    }
    let readout_unfamiliar = readout.as_ref().and_then(|r| r.domain.as_ref()).map(|d| {
        let rows = labels.iter().map(|&l| ds.classes()[l as usize].as_str());
        Unfamiliar::of(d, rows.zip(predicted.iter().map(|&v| Some(v))))
    });
    if !stats.skipped.is_empty() {
        write_skipped(&tmp.path().join("skipped.csv"), &stats.skipped)?;
    }
    let card = EmbedCard {
        format: EMBED_FORMAT.into(),
        format_version: EMBED_VERSION,
        count: stats.embedded,
        dim,
        source: crate::absolute(ds.root()).display().to_string(),
        model_dir: crate::absolute(model_dir).display().to_string(),
        model_fingerprint: card.weights_crc32.clone(),
        classes: ds.classes().to_vec(),
        skipped: stats.skipped.len(),
        converted: stats.converted,
        seconds: stats.seconds,
        images_per_second: stats.images_per_second(),
        likeness_version: env!("CARGO_PKG_VERSION").into(),
        shard: shard.map(|s| s.info(ds.len())),
        predicted_scores: readout.is_some(),
        readout_unfamiliar,
    };
    let json = serde_json::to_vec_pretty(&card).map_err(|e| Error::Invalid(e.to_string()))?;
    let p = tmp.path().join("embed.json");
    std::fs::write(&p, json).map_err(|e| Error::io(&p, e))?;
    if force {
        tmp.publish_replacing(out, "embed.json")?;
    } else {
        tmp.publish(out)?;
    }
    Ok((card, stats))
}

/// Writes `skipped.csv`: `item,path,row,line,reason`.
pub fn write_skipped(path: &Path, skipped: &[Skipped]) -> Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(|e| csv_err(path, e))?;
    w.write_record(["item", "path", "row", "line", "reason"])
        .map_err(|e| csv_err(path, e))?;
    for s in skipped {
        w.write_record([
            s.item.to_string(),
            s.path.display().to_string(),
            s.row.map(|r| r.to_string()).unwrap_or_default(),
            s.line.map(|r| r.to_string()).unwrap_or_default(),
            s.reason.clone(),
        ])
        .map_err(|e| csv_err(path, e))?;
    }
    w.flush().map_err(|e| Error::io(path, e))
}

fn csv_err(path: &Path, e: csv::Error) -> Error {
    Error::Invalid(format!("{}: cannot write CSV: {e}", path.display()))
}
