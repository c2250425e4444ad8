//! `likeness train`: the multi-class N-pair trainer (Sohn, NIPS 2016).
//!
//! One step: the [`sampler`] draws `T` tuples of `N` classes with two images
//! each (optionally mining `N` of `C > N` candidate classes, §3.2 of the
//! paper); a background thread decodes and augments the next step on rayon
//! while this one trains; the network embeds all `2·N·T` images in one
//! forward pass; the [`loss`] is averaged over the tuples. After each epoch
//! the held-out set is embedded and searched exactly (Recall@K, MAP@R) and the
//! best weights are kept.
pub mod adam;
pub mod defaults;
pub mod loss;
pub mod output;
pub mod sampler;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{Arch, ModelSpec, Net};
use crate::transform::{self, Augment};
use loss::LossConfig;
use output::{EpochRecord, ModelCard};
use sampler::Sampler;

pub use likeness_app::settings::{LrSchedule, ValSplit};

/// Everything `likeness train` needs, validated by [`TrainConfig::validate`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub data: PathBuf,
    pub out: PathBuf,
    pub arch: Arch,
    pub dim: u32,
    /// Channel multiplier of `convnet`.
    #[serde(default = "default_width")]
    pub width: f32,
    /// Embed outside training as the sum of the unit embeddings of the image
    /// and its mirror image ([`crate::model::ModelSpec::flip_tta`]); default:
    /// on unless images are not mirrored in training.
    #[serde(default)]
    pub flip_tta: Option<bool>,
    /// `--flip` / `--no-flip`; default: derived ([`defaults::derive`]: on
    /// unless the classes come in left/right pairs). The flip actually used
    /// is the plan's (`model.json`'s `augment`).
    #[serde(default)]
    pub flip: Option<bool>,
    /// Square input side; default: derived ([`defaults::derive`]).
    pub input_size: Option<u32>,
    /// N; default min(#classes, 32).
    pub classes_per_tuple: Option<usize>,
    pub tuples: usize,
    pub loss: LossConfig,
    /// C > N enables hard negative class mining.
    pub mine_classes: Option<usize>,
    /// Passes of `steps_per_epoch`; `None`: a step budget with early
    /// stopping ([`defaults::Stop::Patience`]).
    pub epochs: Option<usize>,
    /// Steps per epoch; default: training images / images per step.
    pub steps_per_epoch: Option<usize>,
    pub lr: f64,
    /// How the learning rate changes over the steps.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Precision of the forward pass (bf16 autocast is ~2x faster on CPUs with AMX/AVX512-BF16).
    /// `None`: bf16 where the CPU has AMX or AVX512-BF16, else fp32.
    #[serde(default)]
    pub precision: Option<crate::runtime::Precision>,
    pub weight_decay: f64,
    pub val: ValSplit,
    pub val_data: Option<PathBuf>,
    pub augment: Augment,
    /// Drop classes with fewer training images than this (≥ 2); 0 = refuse them.
    pub min_per_class: usize,
    pub seed: u64,
    pub resume: bool,
    pub force: bool,
    /// Batch size for validation embedding.
    pub eval_batch: usize,
    /// Validate after every `val_every`-th epoch and after the last (≥ 1).
    pub val_every: usize,
    /// Without `epochs`: the most steps (default: derived).
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// Without `epochs`: no early stop before this step (default: a quarter
    /// of the most steps).
    #[serde(default)]
    pub min_steps: Option<usize>,
    /// Without `epochs`: linear learning-rate warm-up steps (default: 2% of
    /// the most steps, at most 200).
    #[serde(default)]
    pub warmup_steps: Option<usize>,
    /// Without `epochs`: stop after this many validations without a better
    /// Recall@1.
    #[serde(default = "default_patience")]
    pub patience: usize,
    /// Stop at the first step past this many seconds (then validate and
    /// export).
    #[serde(default)]
    pub time_budget: Option<f64>,
    /// Without `epochs`: steps between validations (default: measured so
    /// that validation costs at most 10% of the time).
    #[serde(default)]
    pub val_steps: Option<usize>,
    /// Train on `B` quantile bins of the items' scores as classes (for data
    /// with grades and no classes); the bin edges go into `model.json`.
    #[serde(default)]
    pub score_bins: Option<usize>,
    /// With `score_bins`: weight of the score read-out (a linear layer from
    /// the embedding to the standardised score, squared error) added to the
    /// N-pair loss (default [`DEFAULT_SCORE_WEIGHT`]; 0 = bins only).
    #[serde(default)]
    pub score_weight: Option<f64>,
}

/// The score read-out's weight under `--score-bins`. On the synthetic
/// swell set (docs/scores.md) N-pair over score bins alone stays at chance
/// (loss ln B) and its held-out Spearman ρ is about 0; the read-out gives the
/// embedding a direction ordered by grade.
pub const DEFAULT_SCORE_WEIGHT: f64 = 1.0;

impl TrainConfig {
    /// The score read-out's weight in effect: 0 without `score_bins`.
    pub fn score_weight(&self) -> f64 {
        match self.score_bins {
            Some(_) => self.score_weight.unwrap_or(DEFAULT_SCORE_WEIGHT),
            None => 0.0,
        }
    }
}

fn default_patience() -> usize {
    defaults::DEFAULT_PATIENCE
}

impl TrainConfig {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if let Some(w) = self.score_weight {
            if self.score_bins.is_none() {
                return bad("--score-weight needs --score-bins (it weighs the score read-out that training from grades adds)".into());
            }
            if !(w.is_finite() && w >= 0.0) {
                return bad(format!("--score-weight {w}: give a finite number >= 0"));
            }
        }
        if self.dim == 0 {
            return bad("--dim must be at least 1".into());
        }
        if self.epochs == Some(0) {
            return bad("--epochs must be at least 1".into());
        }
        if self.epochs.is_some()
            && (self.max_steps.is_some() || self.min_steps.is_some() || self.val_steps.is_some())
        {
            return bad(
                "--max-steps, --min-steps and --val-steps belong to training without --epochs; \
                 drop --epochs, or these"
                    .into(),
            );
        }
        if self.epochs.is_none() && self.steps_per_epoch.is_some() {
            return bad(
                "--steps-per-epoch needs --epochs; without --epochs, --val-steps sets the steps \
                 between validations"
                    .into(),
            );
        }
        if self.max_steps == Some(0) || self.val_steps == Some(0) || self.steps_per_epoch == Some(0)
        {
            return bad("--max-steps, --val-steps and --steps-per-epoch must be at least 1".into());
        }
        if self.patience == 0 {
            return bad("--patience must be at least 1".into());
        }
        if self.val_every == 0 {
            return bad("--val-every must be at least 1".into());
        }
        if self.eval_batch == 0 {
            return bad("--eval-batch must be at least 1".into());
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad(format!("--lr {} must be a positive number", self.lr));
        }
        if self.weight_decay.is_nan()
            || self.weight_decay < 0.0
            || self.loss.l2_reg.is_nan()
            || self.loss.l2_reg < 0.0
        {
            return bad("--weight-decay and --l2-reg must be non-negative".into());
        }
        if !(0.05..=1.0).contains(&self.augment.min_crop) {
            return bad("--min-crop must be between 0.05 and 1".into());
        }
        if self.min_per_class == 1 {
            return bad(
                "--min-per-class must be at least 2 (an N-pair needs two images of a class)".into(),
            );
        }
        Ok(())
    }
}

impl TrainConfig {
    /// What the command line fixed, for [`defaults::derive`].
    pub fn asked(&self) -> defaults::Asked {
        defaults::Asked {
            input_size: self.input_size,
            classes_per_tuple: self.classes_per_tuple,
            tuples: self.tuples,
            precision: self.precision,
            flip_tta: self.flip_tta,
            flip: self.flip,
            epochs: self.epochs,
            steps_per_epoch: self.steps_per_epoch,
            max_steps: self.max_steps,
            min_steps: self.min_steps,
            warmup_steps: self.warmup_steps,
            patience: self.patience,
        }
    }
}

fn default_width() -> f32 {
    1.0
}

/// How a training run ended.
#[derive(Debug)]
pub enum Outcome {
    Finished(Box<ModelCard>),
    /// Stopped by Ctrl-C; `--resume` continues.
    Interrupted {
        epoch: usize,
        step: usize,
        /// Without `--epochs`: `step` is the global step.
        budget: bool,
    },
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Installs the Ctrl-C handler that makes training stop after the current step.
pub fn install_ctrlc() {
    let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst));
}

/// The items of training and validation.
struct Split {
    train: Vec<usize>,
    /// Validation items and the dataset they index (the training set or `--val-data`).
    val: Vec<usize>,
    val_ds: Option<Dataset>,
}

fn split(cfg: &TrainConfig, ds: &Dataset) -> Result<Split> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5EED_5EED);
    let ncls = ds.classes().len();
    let val_ds = match &cfg.val_data {
        Some(p) => Some(Dataset::open(p)?),
        None => None,
    };
    // With --score-bins the held-out images are binned with the training
    // set's edges.
    let val_ds = match (val_ds, cfg.score_bins) {
        (Some(v), Some(b)) => {
            let edges = Dataset::open(&cfg.data)?.score_bin_edges(b)?;
            Some(v.binned_by_score(&edges)?)
        }
        (v, _) => v,
    };
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); ncls];
    for (i, it) in ds.items().iter().enumerate() {
        by_class[it.label].push(i);
    }
    let mut train = Vec::new();
    let mut val = Vec::new();
    match (cfg.val, &val_ds) {
        (ValSplit::None, None) => train = (0..ds.len()).collect(),
        (ValSplit::None, Some(v)) => {
            train = (0..ds.len()).collect();
            val = (0..v.len()).collect();
        }
        (ValSplit::Images(f), None) => {
            for items in &mut by_class {
                items.shuffle(&mut rng);
                let mut hold = ((items.len() as f64 * f).round() as usize)
                    .min(items.len().saturating_sub(2));
                // A lone held-out image of its class has no neighbour to
                // find (leave-one-out): hold out two where the class has
                // 4+ images (the johns folder: 11 per person, 10% = 1).
                if hold == 1 && items.len() >= 4 {
                    hold = 2;
                }
                val.extend_from_slice(&items[..hold]);
                train.extend_from_slice(&items[hold..]);
            }
            train.sort_unstable();
            val.sort_unstable();
        }
        (ValSplit::Images(_), Some(_)) => {
            return Err(Error::Invalid(
                "--val images:F holds out images of the training source; with --val-data use --val none or classes:F".into(),
            ))
        }
        (ValSplit::Classes(f), v) => {
            let hold = ((ncls as f64 * f).ceil() as usize).clamp(1, ncls.saturating_sub(2).max(1));
            let held: Vec<&String> = ds.classes()[ncls - hold..].iter().collect();
            for (c, items) in by_class.iter().enumerate() {
                if c < ncls - hold {
                    train.extend_from_slice(items);
                } else if v.is_none() {
                    val.extend_from_slice(items);
                }
            }
            if let Some(v) = v {
                val = v
                    .items()
                    .iter()
                    .enumerate()
                    .filter(|(_, it)| held.contains(&&v.classes()[it.label]))
                    .map(|(i, _)| i)
                    .collect();
            }
            train.sort_unstable();
            val.sort_unstable();
        }
    }
    Ok(Split { train, val, val_ds })
}

/// Drops or reports classes with fewer than two training images.
fn check_classes(cfg: &TrainConfig, ds: &Dataset, train: &mut Vec<usize>) -> Result<()> {
    let mut counts = vec![0usize; ds.classes().len()];
    for &i in train.iter() {
        counts[ds.items()[i].label] += 1;
    }
    let need = cfg.min_per_class.max(2);
    let small: Vec<usize> = (0..counts.len())
        .filter(|&c| counts[c] > 0 && counts[c] < need)
        .collect();
    if !small.is_empty() {
        if cfg.min_per_class == 0 {
            let list: Vec<String> = small
                .iter()
                .take(20)
                .map(|&c| format!("{} ({})", ds.classes()[c], counts[c]))
                .collect();
            return Err(Error::Invalid(format!(
                "{} class(es) have fewer than 2 training images: {}{}; add images, or pass \
                 --min-per-class 2 to drop them",
                small.len(),
                list.join(", "),
                if small.len() > 20 { ", …" } else { "" }
            )));
        }
        train.retain(|&i| !small.contains(&ds.items()[i].label));
    }
    let classes = counts
        .iter()
        .enumerate()
        .filter(|(c, &n)| n >= need && !small.contains(c))
        .count();
    if classes < 2 {
        return Err(Error::Invalid(format!(
            "{}: training needs at least 2 classes with 2+ images each; found {classes}",
            ds.root().display()
        )));
    }
    Ok(())
}

/// One prepared step from the background loader.
struct Prepared {
    epoch: usize,
    step: usize,
    /// Inputs of anchors (first half) then positives, `2·T·C` images.
    input: Vec<f32>,
    labels: Vec<i64>,
    /// The items' standardised scores, in the order of `input` (empty
    /// without the score read-out).
    scores: Vec<f32>,
}

/// Where the loop stands and what it has measured, without `--epochs`.
struct Budget {
    max_steps: usize,
    min_steps: usize,
    warmup: usize,
    patience: usize,
    /// Steps between validations, once known.
    interval: Option<usize>,
    /// The step the learning-rate schedule ends at.
    horizon: usize,
    run: output::RunInfo,
}

/// The learning rate at global step `g`.
fn lr_at(cfg: &TrainConfig, budget: Option<&Budget>, g: usize, total: usize) -> f64 {
    match budget {
        None => cfg.lr_schedule.at(cfg.lr, g, total),
        Some(b) if g < b.warmup => cfg.lr * (g + 1) as f64 / b.warmup as f64,
        Some(b) => cfg.lr_schedule.at(
            cfg.lr,
            g - b.warmup,
            b.horizon.saturating_sub(b.warmup).max(1),
        ),
    }
}

/// Embeds the held-out items with `net` and searches them exactly
/// (leave-one-out, cosine).
fn validate(
    net: &mut Net,
    vds: &Dataset,
    val: &[usize],
    cfg: &TrainConfig,
    precision: crate::runtime::Precision,
) -> Result<output::Validation> {
    net.set_train(false);
    // In the training precision: with bf16 the forward passes run about
    // twice as fast on this CPU (the demo's flip-TTA convnet: 1,067 vs 479
    // images/s, measured with its model.pt in PyTorch). The index is
    // embedded in fp32 (`likeness index`), so its metrics can differ from
    // these in the third decimal.
    let emb = crate::runtime::with_precision(precision, || {
        crate::embed::embed_items(net, vds, val, cfg.eval_batch, None)
    })?;
    let labels: Vec<i64> = val.iter().map(|&i| vds.items()[i].label as i64).collect();
    let m = likeness_index::metrics::evaluate(
        &emb,
        &labels,
        None,
        cfg.dim as usize,
        likeness_index::Metric::Cosine,
        &val_ks(val.len()),
    )?;
    Ok(output::Validation::from_metrics(&m, val.len()))
}

/// Leave-one-out ranks the other `n - 1` images: a K above that is the same
/// as K = n - 1 (see [`output::Validation`]).
fn val_ks(n: usize) -> Vec<usize> {
    let mut ks = [1, 2, 4, 8].map(|k: usize| k.min(n - 1)).to_vec();
    ks.dedup();
    ks
}

/// The raw-pixel baseline: the network's input (normalised, at most 32 px a
/// side, so that 6,000 held-out images search in seconds) compared by L2.
fn pixel_baseline(vds: &Dataset, val: &[usize], spec: &ModelSpec) -> Result<output::Validation> {
    let mut small = spec.clone();
    small.input_size = spec.input_size.min(32);
    let dim = (small.channels * small.input_size * small.input_size) as usize;
    let mut x = Vec::with_capacity(val.len() * dim);
    for chunk in val.chunks(512) {
        let samples = vds.load_many(chunk)?;
        let images: Vec<_> = samples.iter().map(|s| &s.image).collect();
        x.extend(transform::batch_input(&images, &small, None, &[]));
    }
    let labels: Vec<i64> = val.iter().map(|&i| vds.items()[i].label as i64).collect();
    let m = likeness_index::metrics::evaluate(
        &x,
        &labels,
        None,
        dim,
        likeness_index::Metric::L2,
        &val_ks(val.len()),
    )?;
    Ok(output::Validation::from_metrics(&m, val.len()))
}

/// Median of max(width, height).
fn median_side(images: &[image::DynamicImage]) -> u32 {
    let mut sides: Vec<u32> = images.iter().map(|i| i.width().max(i.height())).collect();
    sides.sort_unstable();
    sides.get(sides.len() / 2).copied().unwrap_or(64)
}

/// Runs a training to completion (or Ctrl-C). Progress goes to `bar`.
pub fn train(cfg: &TrainConfig, device: Device) -> Result<Outcome> {
    cfg.validate()?;
    let started = Instant::now();
    let ds = Dataset::open(&cfg.data)?;
    let (ds, score_edges) = match cfg.score_bins {
        Some(b) => {
            let edges = ds.score_bin_edges(b)?;
            (ds.binned_by_score(&edges)?, Some(edges))
        }
        None => (ds, None),
    };
    let Split {
        mut train,
        val,
        val_ds,
    } = split(cfg, &ds)?;
    if val.len() == 1 {
        return Err(Error::Invalid(
            "the held-out set has 1 image, and leave-one-out validation needs at least 2; \
             hold out more (--val), or pass --val none"
                .into(),
        ));
    }
    check_classes(cfg, &ds, &mut train)?;
    let train_labels: Vec<i64> = train.iter().map(|&i| ds.items()[i].label as i64).collect();
    let nclasses = {
        let mut l = train_labels.clone();
        l.sort_unstable();
        l.dedup();
        l.len()
    };

    // Channels, normalisation statistics and the median size from (up to
    // 2,000) training images.
    let first = ds.load(train[0])?;
    let grey = matches!(
        first.image.color(),
        image::ColorType::L8 | image::ColorType::L16
    );
    let channels = match cfg.arch {
        Arch::Resnet18 => 3,
        _ if grey => 1,
        _ => 3,
    };
    let mut pick = train.clone();
    pick.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed));
    pick.truncate(2000);
    let stats_imgs: Vec<_> = ds.load_many(&pick)?.into_iter().map(|s| s.image).collect();
    let (mean, std) = transform::channel_stats(&stats_imgs, channels);
    let shape = defaults::Shape {
        train_images: train.len(),
        classes: nclasses,
        median_side: median_side(&stats_imgs),
        grey,
        sided: defaults::sided_pair(ds.classes()),
    };
    drop(stats_imgs);
    let machine = defaults::Machine::detect(device.is_cuda());
    let plan = defaults::derive(&cfg.arch, &shape, &cfg.asked(), &machine);
    eprintln!(
        "data: {} training images ({} held out), {} classes, median side {} px, {}; decided: \
         input {} px, {} images per step, {}, {}",
        shape.train_images,
        val.len(),
        shape.classes,
        shape.median_side,
        if grey { "grey" } else { "colour" },
        plan.input_size,
        plan.images_per_step,
        match plan.stop {
            defaults::Stop::Epochs {
                epochs,
                steps_per_epoch,
            } => format!("{} steps", epochs * steps_per_epoch),
            defaults::Stop::Patience { max_steps, .. } => format!("up to {max_steps} steps"),
        },
        defaults::precision_name(plan.precision),
    );
    for d in &plan.decisions {
        eprintln!("  {}: {}; {}", d.setting, d.value, d.why);
    }
    let n = plan.classes_per_tuple;
    if n > nclasses {
        return Err(Error::Invalid(format!(
            "--classes-per-tuple {n} is more than the {nclasses} training classes"
        )));
    }
    let c = match cfg.mine_classes {
        Some(c) if c < n => {
            return Err(Error::Invalid(format!(
                "--mine-classes {c} must exceed --classes-per-tuple {n}"
            )))
        }
        Some(c) => c,
        None => n,
    };
    let sampler = Sampler::new(&train_labels, c, cfg.tuples, cfg.seed)?;
    let out = output::OutDir::prepare(&cfg.out, cfg.force, cfg.resume)?;
    let input_size = plan.input_size;
    let precision = plan.precision;
    let spec = ModelSpec {
        arch: cfg.arch.clone(),
        input_size,
        channels,
        mean,
        std,
        dim: cfg.dim,
        width: cfg.width,
        flip_tta: plan.flip_tta,
    };

    tch::manual_seed(cfg.seed as i64);
    if device.is_cuda() {
        // Every step has the same shapes: let cuDNN pick its fastest kernels.
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let mut net = Net::new(&spec, device)?;
    // Training from grades: a linear read-out of the standardised score,
    // stored beside the weights as `score_head.*` (embedding ignores it).
    let score_weight = cfg.score_weight();
    let score_head = (score_weight > 0.0).then(|| {
        tch::nn::linear(
            net.vs.root() / "score_head",
            i64::from(spec.dim),
            1,
            Default::default(),
        )
    });
    let score_norm = score_head
        .as_ref()
        .map(|_| score_standardiser(&ds, &train))
        .transpose()?;
    if score_norm.is_some() {
        eprintln!(
            "  score read-out: weight {score_weight}; a linear layer predicts the standardised \
             score from the embedding (squared error), so that nearer items have nearer grades; \
             --score-weight (0 = bins only)"
        );
    }
    let mut card = ModelCard::new(cfg, &plan, &spec, &ds, c);
    card.score_bins = score_edges.clone();
    card.score_weight = cfg.score_bins.map(|_| score_weight);
    card.device = crate::runtime::describe_device(device);
    card.derivation = Some(output::Derivation {
        train_images: shape.train_images,
        classes: shape.classes,
        median_side: shape.median_side,
        grey,
        fast_bf16: machine.fast_bf16.clone(),
        stop: plan.stop,
        decisions: plan.decisions.clone(),
        time_budget_seconds: cfg.time_budget,
    });
    let mut opt = adam::Adam::new(&net.vs, cfg.lr, cfg.weight_decay);
    // `steps`: the steps of an epoch (the sampler's key); `total`: all steps.
    let (steps, total, mut budget) = match plan.stop {
        defaults::Stop::Epochs {
            epochs,
            steps_per_epoch,
        } => (steps_per_epoch, epochs * steps_per_epoch, None),
        defaults::Stop::Patience {
            max_steps,
            min_steps,
            warmup_steps,
            patience,
        } => (
            plan.steps_per_pass,
            max_steps,
            Some(Budget {
                max_steps,
                min_steps,
                warmup: warmup_steps,
                patience,
                interval: cfg.val_steps,
                horizon: max_steps,
                run: output::RunInfo {
                    horizon: max_steps,
                    ..Default::default()
                },
            }),
        ),
    };
    card.steps_per_epoch = steps;
    let mut start = 0usize;
    let mut partial = output::EpochProgress::default();
    let mut spent_before = 0.0;
    let vds = val_ds.as_ref().unwrap_or(&ds);
    if cfg.resume {
        let ck = out.read_checkpoint()?;
        // The settings first: other ones could not even load the tensors
        // (another --arch), or would continue a different training.
        let changed = ck
            .settings
            .as_ref()
            .map(|before| card.settings_changed_since(before))
            .unwrap_or_default();
        if !changed.is_empty() {
            return Err(Error::Invalid(format!(
                "--resume: {} holds a training with other settings ({}); repeat the interrupted \
                 command with --resume, or start over with --force",
                cfg.out.display(),
                changed.join("; ")
            )));
        }
        out.restore_checkpoint(&ck, &mut net.vs, &mut opt)?;
        card.epochs = ck.epochs;
        card.best_epoch = ck.best_epoch;
        card.baselines = ck.baselines;
        spent_before = ck.spent_seconds;
        partial = ck.partial;
        match (&mut budget, ck.run) {
            (Some(b), Some(run)) => {
                start = ck.step;
                if run.val_interval > 0 {
                    b.interval = Some(run.val_interval);
                }
                b.horizon = run.horizon;
                b.run = run;
            }
            _ => start = ck.epoch * steps + ck.step,
        }
    } else if !val.is_empty() {
        // Baselines on the held-out images; the untrained network's also
        // times one validation, which sets the validation interval.
        let t = Instant::now();
        let untrained = validate(&mut net, vds, &val, cfg, precision)?;
        let val_seconds = t.elapsed().as_secs_f64();
        let pixels = pixel_baseline(vds, &val, &spec)?;
        eprintln!(
            "baselines on the {} held-out images: untrained network Recall@1 {:.4} MAP@R {:.4}, \
             raw pixels Recall@1 {:.4} MAP@R {:.4} ({val_seconds:.1}s a validation)",
            val.len(),
            untrained.recall_1,
            untrained.map_at_r,
            pixels.recall_1,
            pixels.map_at_r
        );
        card.baselines = Some(output::Baselines { untrained, pixels });
        if let Some(b) = &mut budget {
            b.run.val_seconds = val_seconds;
        }
    }
    if let Some(b) = &mut budget {
        if b.interval.is_none() && val.is_empty() {
            // Nothing to compare: a checkpoint every tenth of the steps.
            b.interval = Some((b.max_steps / 10).max(10));
            b.run.val_interval_why = "no held-out set: a tenth of the steps".into();
        } else if let (Some(n), true) = (cfg.val_steps, b.run.val_interval_why.is_empty()) {
            b.run.val_interval_why = format!("--val-steps {n}");
        }
        if let Some(n) = b.interval {
            b.run.val_interval = n;
        }
    }

    // Background loader: decodes and augments step g+1 while step g trains.
    // A step's batch depends on its (epoch, step) key only, so a resumed run
    // sees the same batches.
    let (tx, rx) = mpsc::sync_channel::<Result<Prepared>>(2);
    let loader = {
        let ds = ds.clone();
        let train = train.clone();
        let sampler = sampler.clone();
        let spec = spec.clone();
        let aug = crate::transform::Augment {
            flip: plan.flip,
            ..cfg.augment
        };
        let seed = cfg.seed;
        std::thread::spawn(move || {
            for g in start..total {
                let (epoch, step) = (g / steps, g % steps);
                let draw = sampler.draw(epoch, step);
                let items: Vec<usize> = draw
                    .anchors
                    .iter()
                    .chain(&draw.positives)
                    .map(|&i| train[i])
                    .collect();
                let scores: Vec<f32> = match score_norm {
                    Some((mean, std)) => items
                        .iter()
                        .map(|&i| (ds.items()[i].score.unwrap_or(mean) - mean) / std)
                        .collect(),
                    None => Vec::new(),
                };
                let prepared = ds.load_many(&items).map(|samples| {
                    let images: Vec<_> = samples.iter().map(|s| &s.image).collect();
                    let mut rng =
                        ChaCha8Rng::seed_from_u64(seed ^ ((epoch as u64) << 32 | step as u64));
                    let seeds: Vec<u64> = (0..images.len()).map(|_| rng.random()).collect();
                    let aug = (aug != Augment::NONE).then_some(&aug);
                    let input = transform::batch_input(&images, &spec, aug, &seeds);
                    Prepared {
                        epoch,
                        step,
                        input,
                        labels: draw.labels,
                        scores,
                    }
                });
                if tx.send(prepared).is_err() {
                    return;
                }
            }
        })
    };

    let s = i64::from(input_size);
    let tn = (n * cfg.tuples) as i64;
    let bar = crate::progress::train_bar(total as u64);
    bar.set_position(start as u64);
    let mut best = card.best().map(|e| {
        e.validation
            .as_ref()
            .map_or((0.0, 0.0), |v| (v.recall_1, v.map_at_r))
    });
    // A resumed interval goes on from where it stood.
    let mut epoch_loss = partial.loss_sum;
    let mut epoch_steps = partial.steps;
    let mut epoch_started = Instant::now()
        .checked_sub(std::time::Duration::from_secs_f64(partial.seconds))
        .unwrap_or_else(Instant::now);
    let spent = |now: Instant| spent_before + now.duration_since(started).as_secs_f64();
    let mut calib: Option<Instant> = None;
    let mut stopped = String::from("all epochs done");
    for prepared in rx.iter() {
        let p = prepared?;
        let g = p.epoch * steps + p.step;
        let images = (2 * c * cfg.tuples) as i64;
        let x =
            crate::embed::host_to_device(&p.input, [images, i64::from(channels), s, s], device)?;
        let labels = Tensor::from_slice(&p.labels).to_device(device);
        let scores =
            (!p.scores.is_empty()).then(|| Tensor::from_slice(&p.scores).to_device(device));
        let (x, labels, scores) = if c > n {
            let (x, labels, rows) = mine(
                &net,
                &x,
                &labels,
                n,
                c,
                cfg.tuples,
                cfg.seed ^ ((p.epoch as u64) << 32 | p.step as u64),
            )?;
            (x, labels, scores.map(|s| s.index_select(0, &rows)))
        } else {
            (x, labels, scores)
        };
        net.set_train(true);
        opt.lr = lr_at(cfg, budget.as_ref(), g, total);
        let emb = crate::runtime::with_precision(precision, || net.forward_t(&x, true))
            .to_kind(tch::Kind::Float);
        let loss = loss::loss(
            &cfg.loss,
            &emb.narrow(0, 0, tn),
            &emb.narrow(0, tn, tn),
            &labels,
            cfg.tuples as i64,
        )?;
        let loss = match (&score_head, &scores) {
            (Some(head), Some(target)) => {
                let err = emb.apply(head).squeeze_dim(1) - target;
                loss + err.square().mean(tch::Kind::Float) * score_weight
            }
            _ => loss,
        };
        opt.backward_step(&loss)?;
        let l = loss.double_value(&[]);
        if !l.is_finite() {
            return Err(Error::Invalid(format!(
                "the loss became {l} at step {}; lower --lr or raise --l2-reg",
                g + 1
            )));
        }
        epoch_loss += l;
        epoch_steps += 1;
        bar.inc(1);
        let interval_no = card.epochs.len() + 1;
        bar.set_message(match &budget {
            None => format!(
                "epoch {}/{} loss {:.4}",
                p.epoch + 1,
                total / steps,
                epoch_loss / epoch_steps as f64
            ),
            Some(_) => format!("loss {:.4}", epoch_loss / epoch_steps as f64),
        });

        // Where this step ends: an epoch, a validation interval, the budget.
        let done = g + 1;
        let now = Instant::now();
        let over_time = cfg.time_budget.is_some_and(|t| spent(now) >= t);
        let last_of_epoch = match &mut budget {
            None => p.step + 1 == steps || over_time,
            Some(b) => {
                // Steps 3-10 of this run time one step; with the validation's
                // time that sets the interval (and a time budget's horizon).
                if epoch_steps == 2 && calib.is_none() {
                    calib = Some(now);
                }
                if epoch_steps == 10 && b.run.step_seconds == 0.0 {
                    if let Some(t0) = calib {
                        b.run.step_seconds = now.duration_since(t0).as_secs_f64() / 8.0;
                    }
                    if b.interval.is_none() {
                        let n = defaults::val_interval(
                            b.run.val_seconds,
                            b.run.step_seconds,
                            b.max_steps,
                        );
                        b.interval = Some(n);
                        b.run.val_interval = n;
                        b.run.val_interval_why = format!(
                            "a validation takes {:.2}s, a step {:.3}s: every {n} steps keeps \
                             validation within 10% of the time",
                            b.run.val_seconds, b.run.step_seconds
                        );
                        eprintln!("  validation: every {n} steps ({})", b.run.val_interval_why);
                    }
                    if let Some(t) = cfg.time_budget {
                        let per = b.run.step_seconds * (1.0 + defaults::VAL_SHARE);
                        let fit = done + ((t - spent(now)).max(0.0) / per) as usize;
                        if fit < b.horizon {
                            b.horizon = fit.max(b.warmup + 1);
                            b.run.horizon = b.horizon;
                            eprintln!(
                                "  time budget {t:.0}s: the learning rate ends at step {} \
                                 (about {per:.3}s a step)",
                                b.horizon
                            );
                        }
                    }
                }
                over_time
                    || done == total
                    || b.interval
                        .is_some_and(|n| epoch_steps >= n && done % n == 0)
            }
        };
        if STOP.load(Ordering::SeqCst) && !last_of_epoch {
            drop(rx);
            let _ = loader.join();
            bar.abandon_with_message("stopped");
            let progress = output::EpochProgress {
                loss_sum: epoch_loss,
                steps: epoch_steps,
                seconds: epoch_started.elapsed().as_secs_f64(),
            };
            card.total_seconds = spent(Instant::now());
            let pos = match &budget {
                Some(b) => {
                    card.run = Some(b.run.clone());
                    (card.epochs.len(), done)
                }
                None => (p.epoch, p.step + 1),
            };
            out.save_checkpoint(&net.vs, &opt, (pos.0, pos.1, progress), &card)?;
            return Ok(Outcome::Interrupted {
                epoch: pos.0,
                step: pos.1,
                budget: budget.is_some(),
            });
        }
        if !last_of_epoch {
            continue;
        }
        let secs = epoch_started.elapsed().as_secs_f64();
        let mut rec = EpochRecord {
            epoch: interval_no,
            loss: epoch_loss / epoch_steps as f64,
            seconds: secs,
            images_per_s: (epoch_steps * sampler.images_per_step()) as f64 / secs,
            validation: None,
            step: budget.as_ref().map(|_| done),
        };
        let last = done == total || over_time;
        let validate_now = !val.is_empty() && (interval_no.is_multiple_of(cfg.val_every) || last);
        if validate_now {
            rec.validation = Some(validate(&mut net, vds, &val, cfg, precision)?);
        }
        let r1 = rec.validation.as_ref().map(|v| (v.recall_1, v.map_at_r));
        if bar.is_hidden() {
            eprintln!("{}", rec.summary());
        } else {
            bar.println(rec.summary());
        }
        card.epochs.push(rec);
        // Without validation the latest epoch is the best; an epoch skipped
        // by --val-every never replaces a validated one. Ties in Recall@1
        // (a small held-out set saturates it) go to the better MAP@R.
        let improved = match (r1, best) {
            (Some(r), Some(b)) => r > b,
            (Some(_), None) => true,
            (None, _) => val.is_empty(),
        };
        if improved {
            best = r1;
            out.save_weights(&net.vs)?;
            card.best_epoch = interval_no;
        }
        card.train_seconds += secs;
        // Early stopping: `patience` validations since the best one.
        let mut finish = last;
        if over_time {
            stopped = format!("time budget {:.0}s reached", cfg.time_budget.unwrap_or(0.0));
        } else if done == total {
            stopped = match &budget {
                Some(_) => format!("max steps {total} reached"),
                None => "all epochs done".into(),
            };
        }
        if let Some(b) = &budget {
            let since = card
                .epochs
                .iter()
                .filter(|e| e.epoch > card.best_epoch && e.validation.is_some())
                .count();
            // And a tenth of the steps: the interval depends on the
            // machine's speed, the stopping point should not (much).
            let best_step = card.best().and_then(|e| e.step).unwrap_or(0);
            if !finish
                && !val.is_empty()
                && done >= b.min_steps
                && since >= b.patience
                && done - best_step >= b.max_steps / 10
            {
                finish = true;
                stopped = format!(
                    "early stop: no better Recall@1 in {since} validations since step {}",
                    card.best().and_then(|e| e.step).unwrap_or(0)
                );
            }
        }
        card.total_seconds = spent(Instant::now());
        if let Some(b) = &mut budget {
            b.run.steps = done;
            card.run = Some(b.run.clone());
        }
        if finish {
            drop(rx);
            break;
        }
        let pos = match &budget {
            Some(_) => (card.epochs.len(), done),
            None => (p.epoch + 1, 0),
        };
        out.save_checkpoint(&net.vs, &opt, (pos.0, pos.1, Default::default()), &card)?;
        // model.json only once training has finished (a folder with one is a
        // model the other commands accept); the log shows progress meanwhile.
        out.write_log(&card)?;
        epoch_loss = 0.0;
        epoch_steps = 0;
        epoch_started = Instant::now();
        if STOP.load(Ordering::SeqCst) {
            drop(rx);
            let _ = loader.join();
            bar.abandon_with_message("stopped");
            return Ok(Outcome::Interrupted {
                epoch: pos.0,
                step: pos.1,
                budget: budget.is_some(),
            });
        }
    }
    let _ = loader.join();
    bar.finish_and_clear();
    if let Some(b) = &mut budget {
        b.run.stopped = stopped.clone();
        card.run = Some(b.run.clone());
    }
    card.total_seconds = spent(Instant::now());
    // The exported model is the best epoch's (already in weights.safetensors).
    // model.pt is traced on the CPU whatever the training device, so that
    // `torch.jit.load` opens it on any machine (a CUDA trace would need a GPU
    // or map_location).
    let mut export = if device == Device::Cpu {
        net
    } else {
        drop(net);
        Net::new(&spec, Device::Cpu)?
    };
    out.load_weights(&mut export.vs)?;
    export.set_train(false);
    card.weights_crc32 = out.weights_crc32()?;
    out.export_torchscript(&mut export)?;
    out.write_card(&card)?;
    out.write_log(&card)?;
    out.plot_curves(&card)?;
    out.remove_checkpoint()?;
    Ok(Outcome::Finished(Box::new(card)))
}

/// Hard negative class mining (Sohn 2016, §3.2): from `C` candidate classes
/// per tuple, start from a random one and greedily add the class that most
/// violates the N-pair constraint against those already chosen, until `N`.
/// Returns the chosen rows (anchors then positives) and their labels.
fn mine(
    net: &Net,
    x: &Tensor,
    labels: &Tensor,
    n: usize,
    c: usize,
    tuples: usize,
    seed: u64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let tc = (c * tuples) as i64;
    let emb = tch::no_grad(|| net.forward_t(x, false)).to_device(Device::Cpu);
    let (fa, fp) = (emb.narrow(0, 0, tc), emb.narrow(0, tc, tc));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows: Vec<i64> = Vec::with_capacity(n * tuples);
    for t in 0..tuples {
        let off = (t * c) as i64;
        let sim = fa
            .narrow(0, off, c as i64)
            .matmul(&fp.narrow(0, off, c as i64).transpose(0, 1));
        let sim: Vec<f32> = Vec::<f32>::try_from(&sim.contiguous().view([-1]))?;
        let v = |i: usize, j: usize| sim[i * c + j] - sim[i * c + i];
        let mut chosen = vec![rng.random_range(0..c)];
        let mut score: Vec<f32> = (0..c)
            .map(|j| v(chosen[0], j).max(v(j, chosen[0])))
            .collect();
        while chosen.len() < n {
            let next = (0..c)
                .filter(|j| !chosen.contains(j))
                .max_by(|&a, &b| score[a].total_cmp(&score[b]))
                .unwrap_or(0);
            chosen.push(next);
            for (j, sc) in score.iter_mut().enumerate() {
                *sc = sc.max(v(next, j).max(v(j, next)));
            }
        }
        rows.extend(chosen.iter().map(|&k| off + k as i64));
    }
    let idx = Tensor::from_slice(&rows);
    let both = Tensor::cat(&[&idx, &(&idx + tc)], 0).to_device(x.device());
    Ok((
        x.index_select(0, &both),
        labels.index_select(0, &idx.to_device(labels.device())),
        both,
    ))
}

/// Mean and standard deviation of the training items' scores, which the
/// score read-out predicts standardised (so its weight means the same for
/// grades in [0, 1] and in [0, 100]).
fn score_standardiser(ds: &Dataset, train: &[usize]) -> Result<(f32, f32)> {
    let s: Vec<f64> = train
        .iter()
        .filter_map(|&i| ds.items()[i].score.map(f64::from))
        .collect();
    if s.len() < 2 {
        return Err(Error::Invalid(format!(
            "the score read-out needs at least 2 training items with a score, and there are {}; \
             pass --score-weight 0 to train on the bins alone",
            s.len()
        )));
    }
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / s.len() as f64;
    Ok((mean as f32, var.sqrt().max(1e-6) as f32))
}
