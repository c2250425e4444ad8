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

/// How the held-out (validation) set is formed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "fraction")]
pub enum ValSplit {
    /// No held-out set (unless `val_data` is given: then all of it).
    None,
    /// Hold out this fraction of each class's images.
    Images(f64),
    /// Hold out the last fraction of classes entirely (zero-shot protocol).
    Classes(f64),
}

impl std::str::FromStr for ValSplit {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "none" {
            return Ok(ValSplit::None);
        }
        let (kind, frac) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected none, images:F or classes:F"))?;
        let f: f64 = frac
            .parse()
            .map_err(|_| format!("`{frac}` is not a number"))?;
        if !(f > 0.0 && f < 1.0) {
            return Err(format!("`{s}`: the fraction must be between 0 and 1"));
        }
        match kind {
            "images" => Ok(ValSplit::Images(f)),
            "classes" => Ok(ValSplit::Classes(f)),
            _ => Err(format!("`{s}`: expected images:F or classes:F")),
        }
    }
}

/// Learning-rate schedule over all steps of the training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// `--lr` throughout.
    Constant,
    /// Cosine decay from `--lr` to 0 (Loshchilov & Hutter, SGDR, without restarts).
    #[default]
    Cosine,
}

impl LrSchedule {
    /// Learning rate at `step` of `total`.
    pub fn at(self, lr: f64, step: usize, total: usize) -> f64 {
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => {
                let t = step as f64 / total.max(1) as f64;
                0.5 * lr * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

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
    /// and its mirror image ([`crate::model::ModelSpec::flip_tta`]).
    #[serde(default)]
    pub flip_tta: bool,
    /// Square input side; default: the images' own size for IDX, 64 for
    /// `convnet`, 112 for `resnet18` and TorchScript backbones.
    pub input_size: Option<u32>,
    /// N; default min(#classes, 32).
    pub classes_per_tuple: Option<usize>,
    pub tuples: usize,
    pub loss: LossConfig,
    /// C > N enables hard negative class mining.
    pub mine_classes: Option<usize>,
    pub epochs: usize,
    /// Steps per epoch; default: training images / images per step.
    pub steps_per_epoch: Option<usize>,
    pub lr: f64,
    /// How the learning rate changes over the steps.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Precision of the forward pass (bf16 autocast is ~2x faster on CPUs with AMX/AVX512-BF16).
    #[serde(default)]
    pub precision: crate::runtime::Precision,
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
}

impl TrainConfig {
    fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.dim == 0 {
            return bad("--dim must be at least 1".into());
        }
        if self.epochs == 0 {
            return bad("--epochs must be at least 1".into());
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
                let hold = ((items.len() as f64 * f).round() as usize).min(items.len().saturating_sub(2));
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
}

/// Runs a training to completion (or Ctrl-C). Progress goes to `bar`.
pub fn train(cfg: &TrainConfig, device: Device) -> Result<Outcome> {
    cfg.validate()?;
    let started = Instant::now();
    let ds = Dataset::open(&cfg.data)?;
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
    let n = cfg.classes_per_tuple.unwrap_or(nclasses.min(32));
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

    // Channels and input size from the data and the architecture.
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
    let input_size = cfg.input_size.unwrap_or(match (&cfg.arch, ds.kind()) {
        (Arch::Convnet, crate::data::SourceKind::Idx) => first.image.width(),
        (Arch::Convnet, _) => 64,
        _ => 112,
    });
    // Normalisation statistics of (up to 2,000) training images.
    let mut pick = train.clone();
    pick.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed));
    pick.truncate(2000);
    let stats_imgs: Vec<_> = ds.load_many(&pick)?.into_iter().map(|s| s.image).collect();
    let (mean, std) = transform::channel_stats(&stats_imgs, channels);
    drop(stats_imgs);
    let spec = ModelSpec {
        arch: cfg.arch.clone(),
        input_size,
        channels,
        mean,
        std,
        dim: cfg.dim,
        width: cfg.width,
        flip_tta: cfg.flip_tta,
    };

    tch::manual_seed(cfg.seed as i64);
    if device.is_cuda() {
        // Every step has the same shapes: let cuDNN pick its fastest kernels.
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let mut net = Net::new(&spec, device)?;
    let mut card = ModelCard::new(cfg, &spec, &ds, n, c);
    card.device = crate::runtime::describe_device(device);
    let mut opt = adam::Adam::new(&net.vs, cfg.lr, cfg.weight_decay);
    let steps = cfg
        .steps_per_epoch
        .unwrap_or((train.len() / sampler.images_per_step()).max(1));
    card.steps_per_epoch = steps;
    let (mut start_epoch, mut start_step) = (0, 0);
    let mut partial = output::EpochProgress::default();
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
        start_epoch = ck.epoch;
        start_step = ck.step;
        partial = ck.partial;
    }

    // Background loader: decodes and augments step s+1 while step s trains.
    let (tx, rx) = mpsc::sync_channel::<Result<Prepared>>(2);
    let loader = {
        let ds = ds.clone();
        let train = train.clone();
        let sampler = sampler.clone();
        let spec = spec.clone();
        let aug = cfg.augment;
        let seed = cfg.seed;
        let epochs = cfg.epochs;
        std::thread::spawn(move || {
            let mut pos = (start_epoch, start_step);
            while pos.0 < epochs {
                let (epoch, step) = pos;
                let draw = sampler.draw(epoch, step);
                let items: Vec<usize> = draw
                    .anchors
                    .iter()
                    .chain(&draw.positives)
                    .map(|&i| train[i])
                    .collect();
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
                    }
                });
                if tx.send(prepared).is_err() {
                    return;
                }
                pos = if step + 1 == steps {
                    (epoch + 1, 0)
                } else {
                    (epoch, step + 1)
                };
            }
        })
    };

    let s = i64::from(input_size);
    let tn = (n * cfg.tuples) as i64;
    let bar = crate::progress::train_bar((cfg.epochs * steps) as u64);
    bar.set_position((start_epoch * steps + start_step) as u64);
    let mut best = card.best().map(|e| e.recall_at_1().unwrap_or(0.0));
    // A resumed epoch goes on from where it stood.
    let mut epoch_loss = partial.loss_sum;
    let mut epoch_steps = partial.steps;
    let mut epoch_started = Instant::now()
        .checked_sub(std::time::Duration::from_secs_f64(partial.seconds))
        .unwrap_or_else(Instant::now);
    for prepared in rx.iter() {
        let p = prepared?;
        let images = (2 * c * cfg.tuples) as i64;
        let x =
            crate::embed::host_to_device(&p.input, [images, i64::from(channels), s, s], device)?;
        let labels = Tensor::from_slice(&p.labels).to_device(device);
        let (x, labels) = if c > n {
            mine(
                &net,
                &x,
                &labels,
                n,
                c,
                cfg.tuples,
                cfg.seed ^ ((p.epoch as u64) << 32 | p.step as u64),
            )?
        } else {
            (x, labels)
        };
        net.set_train(true);
        opt.lr = cfg
            .lr_schedule
            .at(cfg.lr, p.epoch * steps + p.step, cfg.epochs * steps);
        let emb = crate::runtime::with_precision(cfg.precision, || net.forward_t(&x, true))
            .to_kind(tch::Kind::Float);
        let loss = loss::loss(
            &cfg.loss,
            &emb.narrow(0, 0, tn),
            &emb.narrow(0, tn, tn),
            &labels,
            cfg.tuples as i64,
        )?;
        opt.backward_step(&loss)?;
        let l = loss.double_value(&[]);
        if !l.is_finite() {
            return Err(Error::Invalid(format!(
                "the loss became {l} at epoch {} step {}; lower --lr or raise --l2-reg",
                p.epoch + 1,
                p.step + 1
            )));
        }
        epoch_loss += l;
        epoch_steps += 1;
        bar.inc(1);
        bar.set_message(format!(
            "epoch {}/{} loss {:.4}",
            p.epoch + 1,
            cfg.epochs,
            epoch_loss / epoch_steps as f64
        ));

        let last_of_epoch = p.step + 1 == steps;
        if STOP.load(Ordering::SeqCst) && !last_of_epoch {
            drop(rx);
            let _ = loader.join();
            bar.abandon_with_message("stopped");
            let progress = output::EpochProgress {
                loss_sum: epoch_loss,
                steps: epoch_steps,
                seconds: epoch_started.elapsed().as_secs_f64(),
            };
            out.save_checkpoint(&net.vs, &opt, (p.epoch, p.step + 1, progress), &card)?;
            return Ok(Outcome::Interrupted {
                epoch: p.epoch,
                step: p.step + 1,
            });
        }
        if !last_of_epoch {
            continue;
        }
        let secs = epoch_started.elapsed().as_secs_f64();
        let mut rec = EpochRecord {
            epoch: p.epoch + 1,
            loss: epoch_loss / epoch_steps as f64,
            seconds: secs,
            images_per_s: (epoch_steps * sampler.images_per_step()) as f64 / secs,
            validation: None,
        };
        let epoch_no = p.epoch + 1;
        let validate_now =
            !val.is_empty() && (epoch_no % cfg.val_every == 0 || epoch_no == cfg.epochs);
        if validate_now {
            net.set_train(false);
            let vds = val_ds.as_ref().unwrap_or(&ds);
            // In the training precision: with bf16 the forward passes run
            // about twice as fast on this CPU (the demo's flip-TTA convnet:
            // 1,067 vs 479 images/s, measured with its model.pt in PyTorch).
            // The index is embedded in fp32 (`likeness index`), so its metrics
            // can differ from these in the third decimal.
            let emb = crate::runtime::with_precision(cfg.precision, || {
                crate::embed::embed_items(&net, vds, &val, cfg.eval_batch, None)
            })?;
            let labels: Vec<i64> = val.iter().map(|&i| vds.items()[i].label as i64).collect();
            // Leave-one-out ranks the other val.len() - 1 images: a K above
            // that is the same as K = val.len() - 1 (see Validation).
            let mut ks = [1, 2, 4, 8].map(|k: usize| k.min(val.len() - 1)).to_vec();
            ks.dedup();
            let m = likeness_index::metrics::evaluate(
                &emb,
                &labels,
                None,
                cfg.dim as usize,
                likeness_index::Metric::Cosine,
                &ks,
            )?;
            rec.validation = Some(output::Validation::from_metrics(&m, val.len()));
        }
        let r1 = rec.recall_at_1();
        if bar.is_hidden() {
            eprintln!("{}", rec.summary());
        } else {
            bar.println(rec.summary());
        }
        card.epochs.push(rec);
        // Without validation the latest epoch is the best; an epoch skipped
        // by --val-every never replaces a validated one.
        let improved = match (r1, best) {
            (Some(r), Some(b)) => r > b,
            (Some(_), None) => true,
            (None, _) => val.is_empty(),
        };
        if improved {
            best = r1;
            out.save_weights(&net.vs)?;
            card.best_epoch = p.epoch + 1;
        }
        card.train_seconds += secs;
        out.save_checkpoint(&net.vs, &opt, (p.epoch + 1, 0, Default::default()), &card)?;
        // model.json only once training has finished (a folder with one is a
        // model the other commands accept); the log shows progress meanwhile.
        out.write_log(&card)?;
        epoch_loss = 0.0;
        epoch_steps = 0;
        epoch_started = Instant::now();
        if STOP.load(Ordering::SeqCst) && p.epoch + 1 < cfg.epochs {
            drop(rx);
            let _ = loader.join();
            bar.abandon_with_message("stopped");
            return Ok(Outcome::Interrupted {
                epoch: p.epoch + 1,
                step: 0,
            });
        }
    }
    let _ = loader.join();
    bar.finish_and_clear();
    card.total_seconds = started.elapsed().as_secs_f64();
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
) -> Result<(Tensor, Tensor)> {
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
    ))
}
