//! What a training leaves in `MODEL_DIR`, written atomically file by file:
//!
//! - `weights.safetensors`: the best epoch's variables (backbone + head);
//! - `model.json`: the [`ModelCard`] (architecture, transform, loss,
//!   hyper-parameters, classes, dataset fingerprint, per-epoch metrics, versions);
//! - `train_log.csv`: one row per epoch;
//! - `model.pt`: a traced TorchScript export (`torch.jit.load` opens it);
//! - `checkpoint.json` and its tensors while training (for `--resume`): two
//!   slots of tensor files, written in turn, so that a process killed while
//!   saving leaves the previous checkpoint whole (`checkpoint.json`, written
//!   last and atomically, names the slot it belongs to).
use likeness_app::model_card::MODEL_CARD;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::nn::VarStore;

use super::loss::LossConfig;
use super::TrainConfig;
use crate::absolute;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::{ModelSpec, Net};

/// Format tag and version of `model.json`.
pub const MODEL_FORMAT: &str = "likeness-model";
pub const MODEL_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Validation {
    pub queries: usize,
    #[serde(rename = "recall@1")]
    pub recall_1: f64,
    #[serde(rename = "recall@2")]
    pub recall_2: f64,
    #[serde(rename = "recall@4")]
    pub recall_4: f64,
    #[serde(rename = "recall@8")]
    pub recall_8: f64,
    pub r_precision: f64,
    #[serde(rename = "map@r")]
    pub map_at_r: f64,
}

impl Validation {
    pub fn from_metrics(m: &likeness_index::metrics::LabelMetrics, queries: usize) -> Self {
        // Recall@K for a K above the number of candidates (a small held-out
        // set) is Recall@(candidates): the K nearest are all of them.
        let r = |k: usize| {
            m.overall
                .recall_at_k
                .iter()
                .filter(|(kk, _)| *kk <= k)
                .max_by_key(|(kk, _)| *kk)
                .map_or(0.0, |(_, v)| *v)
        };
        Validation {
            queries,
            recall_1: r(1),
            recall_2: r(2),
            recall_4: r(4),
            recall_8: r(8),
            r_precision: m.overall.r_precision,
            map_at_r: m.overall.map_at_r,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f64,
    pub seconds: f64,
    pub images_per_s: f64,
    pub validation: Option<Validation>,
    /// Without `--epochs`: the training step this interval ended at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
}

impl EpochRecord {
    pub fn recall_at_1(&self) -> Option<f64> {
        self.validation.as_ref().map(|v| v.recall_1)
    }
    pub fn summary(&self) -> String {
        let at = match self.step {
            Some(step) => format!("step {step:>6}"),
            None => format!("epoch {:>3}", self.epoch),
        };
        let mut s = format!(
            "{at}  loss {:.4}  {:.0} images/s  {:.1}s",
            self.loss, self.images_per_s, self.seconds
        );
        if let Some(v) = &self.validation {
            s.push_str(&format!(
                "  val R@1 {:.4} R@2 {:.4} R@4 {:.4} R@8 {:.4} MAP@R {:.4}",
                v.recall_1, v.recall_2, v.recall_4, v.recall_8, v.map_at_r
            ));
        }
        s
    }
}

/// `model.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelCard {
    pub format: String,
    pub format_version: u32,
    pub spec: ModelSpec,
    pub loss: LossConfig,
    pub classes_per_tuple: usize,
    pub mine_classes: usize,
    pub tuples: usize,
    pub epochs_planned: usize,
    pub steps_per_epoch: usize,
    pub lr: f64,
    pub lr_schedule: super::LrSchedule,
    #[serde(default)]
    pub precision: crate::runtime::Precision,
    pub weight_decay: f64,
    pub augment: crate::transform::Augment,
    pub val: super::ValSplit,
    pub val_data: Option<PathBuf>,
    pub seed: u64,
    pub data: PathBuf,
    /// The classes of `data`, indexed by its labels (with `--score-bins`,
    /// bin `b`'s name is `classes[b]`); those that did not train are also
    /// in `dropped_classes`. Kept whole so that the labels keep their names.
    pub classes: Vec<String>,
    /// The classes `--min-per-class` left out of training for too few
    /// images (absent when none were, and in cards of earlier versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_classes: Vec<DroppedClass>,
    /// CRC32 over the dataset's item list (paths, labels, regions).
    pub dataset_fingerprint: String,
    pub dataset_items: usize,
    pub epochs: Vec<EpochRecord>,
    pub best_epoch: usize,
    pub train_seconds: f64,
    pub total_seconds: f64,
    /// CRC32 of `weights.safetensors`: the model's fingerprint.
    pub weights_crc32: String,
    pub likeness_version: String,
    pub libtorch_version: Option<String>,
    /// Where it trained: `cpu (N threads)` or `cuda:N (GPU name)`.
    #[serde(default)]
    pub device: String,
    /// The settings derived from the data, and why (absent in cards of
    /// earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derivation: Option<Derivation>,
    /// What the run measured and why it stopped (not a setting: `--resume`
    /// does not compare it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunInfo>,
    /// The held-out metrics of the untrained network and of raw pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baselines: Option<Baselines>,
    /// With `train --score-bins`: the inner edges of the score bins that
    /// were the classes (bin `b` = `[edges[b-1], edges[b])`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_bins: Option<Vec<f32>>,
    /// With `train --score-bins`: the weight of the score read-out (0 =
    /// the bins alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_weight: Option<f64>,
    /// With a score read-out: the mean and standard deviation of the
    /// training scores, which it predicts standardised (absent in cards
    /// written before it was recorded; their read-out is not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_norm: Option<ScoreNorm>,
    /// With a score read-out: what it learnt from (absent in cards written
    /// before it was recorded; `asymmetry` then cannot say when it is asked
    /// about something else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_domain: Option<ScoreDomain>,
}

/// A class left out of training, and its training images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedClass {
    pub class: String,
    pub images: usize,
}

/// The standardisation of the score read-out's target:
/// `score = mean + std · read-out`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoreNorm {
    pub mean: f32,
    pub std: f32,
}

/// What a score read-out learnt from: the labels of its training items
/// and the range of their scores. Outside them its read-outs are not
/// grades (the demo's read-out, trained on cheeks and under-eyes, read
/// 1.54 on a 0-1 scale for a tiny face's under-eye), so `asymmetry` says so.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreDomain {
    pub labels: Vec<String>,
    pub min: f32,
    pub max: f32,
}

/// The derivation of a training's settings ([`super::defaults::derive`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Derivation {
    pub train_images: usize,
    pub classes: usize,
    pub median_side: u32,
    pub grey: bool,
    /// The CPU feature that made bf16 the default, if any.
    pub fast_bf16: Option<String>,
    pub stop: super::defaults::Stop,
    pub decisions: Vec<super::defaults::Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget_seconds: Option<f64>,
}

/// Measured during the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunInfo {
    /// Steps between validations, and why.
    pub val_interval: usize,
    pub val_interval_why: String,
    /// Seconds of one validation (the untrained network's) and of one step
    /// (mean of steps 3-10).
    pub val_seconds: f64,
    pub step_seconds: f64,
    /// The step the learning-rate schedule ends at (`max_steps`, or fewer to
    /// fit `--time-budget`).
    pub horizon: usize,
    pub steps: usize,
    pub stopped: String,
}

/// Held-out metrics without training, on the same images.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baselines {
    pub untrained: Validation,
    /// Raw pixels of the network input (at most 32 px a side), L2.
    pub pixels: Validation,
}

impl Baselines {
    /// One line: how much training bought on the held-out images.
    pub fn verdict(&self, trained: &Validation) -> String {
        let (u, p) = (&self.untrained, &self.pixels);
        let best = u.recall_1.max(p.recall_1);
        let gain = trained.recall_1 - best;
        let against = if p.recall_1 >= u.recall_1 {
            "raw pixels"
        } else {
            "the untrained network"
        };
        let word = if gain >= 0.02 {
            "training helped"
        } else if best >= 1.0 && gain > -0.005 {
            // A pretrained backbone can find every held-out image's class
            // before it trains (dlib's face descriptor on the johns faces).
            "already perfect before training: the held-out images cannot show a gain; \
             hold out more, or harder ones, to measure one"
        } else if gain > -0.005 {
            "training bought little; try more steps (--max-steps) or another --arch"
        } else {
            "training made it worse; train longer, check the labels, or lower --lr"
        };
        format!(
            "verdict: {word}: Recall@1 {:.4} vs {best:.4} of {against} ({gain:+.4}); MAP@R {:.4} \
             (untrained network {:.4} / {:.4}, raw pixels {:.4} / {:.4} Recall@1 / MAP@R)",
            trained.recall_1, trained.map_at_r, u.recall_1, u.map_at_r, p.recall_1, p.map_at_r
        )
    }
}

/// CRC32 (hex) of a dataset's item list.
pub fn dataset_fingerprint(ds: &Dataset) -> String {
    let mut h = crc32fast::Hasher::new();
    for c in ds.classes() {
        h.update(c.as_bytes());
        h.update(&[0]);
    }
    for it in ds.items() {
        h.update(it.path.to_string_lossy().as_bytes());
        h.update(&(it.label as u64).to_le_bytes());
        h.update(&(it.row.map_or(u64::MAX, |r| r as u64)).to_le_bytes());
        if let Some(r) = it.region {
            for v in [r.x, r.y, r.w, r.h] {
                h.update(&v.to_le_bytes());
            }
        }
    }
    format!("{:08x}", h.finalize())
}

impl ModelCard {
    pub fn new(
        cfg: &TrainConfig,
        plan: &super::defaults::Plan,
        spec: &ModelSpec,
        ds: &Dataset,
        c: usize,
    ) -> Self {
        let n = plan.classes_per_tuple;
        ModelCard {
            format: MODEL_FORMAT.into(),
            format_version: MODEL_VERSION,
            spec: spec.clone(),
            loss: cfg.loss,
            classes_per_tuple: n,
            mine_classes: c,
            tuples: cfg.tuples,
            epochs_planned: match plan.stop {
                super::defaults::Stop::Epochs { epochs, .. } => epochs,
                super::defaults::Stop::Patience { .. } => 0,
            },
            steps_per_epoch: 0,
            lr: plan.lr,
            lr_schedule: cfg.lr_schedule,
            precision: plan.precision,
            weight_decay: cfg.weight_decay,
            augment: crate::transform::Augment {
                flip: plan.flip,
                ..cfg.augment
            },
            // The split in effect is set by the settings (`--val` or derived).
            val: cfg.val.unwrap_or(super::ValSplit::None),
            // Absolute: `eval --score` opens it to tell the rows the model
            // trained on, from wherever it runs (a card once read
            // `"data": "grades.csv"`, relative to a directory it did not name).
            val_data: cfg.val_data.as_deref().map(absolute),
            seed: cfg.seed,
            data: absolute(&cfg.data),
            classes: ds.classes().to_vec(),
            dropped_classes: Vec::new(),
            dataset_fingerprint: dataset_fingerprint(ds),
            dataset_items: ds.len(),
            epochs: Vec::new(),
            best_epoch: 0,
            train_seconds: 0.0,
            total_seconds: 0.0,
            weights_crc32: String::new(),
            likeness_version: env!("CARGO_PKG_VERSION").into(),
            libtorch_version: crate::runtime::libtorch_version(),
            device: String::new(),
            derivation: None,
            run: None,
            baselines: None,
            score_bins: None,
            score_weight: None,
            score_norm: None,
            score_domain: None,
        }
    }

    /// What a `--resume` must repeat: the card without its results, timings,
    /// versions and device (a run may resume elsewhere).
    pub fn settings(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut v = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        for key in [
            "epochs",
            "best_epoch",
            "train_seconds",
            "total_seconds",
            "weights_crc32",
            "likeness_version",
            "libtorch_version",
            "device",
            "run",
            "baselines",
        ] {
            v.remove(key);
        }
        v
    }

    /// The epoch whose weights were kept.
    pub fn best(&self) -> Option<&EpochRecord> {
        self.epochs.iter().find(|e| e.epoch == self.best_epoch)
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    pub epoch: usize,
    pub step: usize,
    pub epochs: Vec<EpochRecord>,
    /// The epoch whose weights are in `weights.safetensors` (0: none yet).
    #[serde(default)]
    pub best_epoch: usize,
    /// [`ModelCard::settings`] of the interrupted run (absent in checkpoints
    /// of earlier versions: then not checked).
    #[serde(default)]
    pub settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// Adam's step count; its moments are in `checkpoint-adam.safetensors`
    /// (absent in checkpoints of earlier versions: the moments restart).
    #[serde(default)]
    pub adam_step: Option<i64>,
    /// The interrupted epoch's progress (zero at an epoch's end).
    #[serde(default)]
    pub partial: EpochProgress,
    /// CRC32s of `checkpoint.safetensors` and `checkpoint-adam.safetensors`,
    /// which are written before this file: a save cut short leaves them out
    /// of step with it, and `--resume` says so.
    #[serde(default)]
    pub crc32: Option<[String; 2]>,
    /// The slot of the tensor files ([`checkpoint_files`]); 0 in checkpoints
    /// of earlier versions, which had one.
    #[serde(default)]
    pub slot: u8,
    /// Without `--epochs`: what the run had measured (`step` is then the
    /// global step, `epoch` the intervals done).
    #[serde(default)]
    pub run: Option<RunInfo>,
    #[serde(default)]
    pub baselines: Option<Baselines>,
    /// Seconds spent before the interruption (for `--time-budget`).
    #[serde(default)]
    pub spent_seconds: f64,
    /// The card's `train_seconds` at the interruption: the seconds of the
    /// intervals done, which a resumed run adds its own to (absent in
    /// checkpoints of earlier versions; see [`Checkpoint::train_seconds`]).
    #[serde(default, rename = "train_seconds")]
    pub recorded_train_seconds: Option<f64>,
}

impl Checkpoint {
    /// The seconds of the intervals done before the interruption. A
    /// checkpoint of an earlier version did not record them, but they are
    /// the sum of its intervals' seconds (`train_seconds` only ever adds
    /// those), so they are not lost.
    pub fn train_seconds(&self) -> f64 {
        self.recorded_train_seconds
            .unwrap_or_else(|| self.epochs.iter().map(|e| e.seconds).sum())
    }
}

/// How far an epoch had got: the sum of its step losses, its steps and
/// seconds, so that a resumed epoch reports the whole epoch's mean loss.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct EpochProgress {
    pub loss_sum: f64,
    pub steps: usize,
    pub seconds: f64,
}

/// The tensor files of checkpoint slot `slot`: the variables and Adam's
/// moments. Slot 0 keeps the names of the one slot earlier versions had.
fn checkpoint_files(slot: u8) -> [&'static str; 2] {
    if slot == 0 {
        ["checkpoint.safetensors", "checkpoint-adam.safetensors"]
    } else {
        ["checkpoint.1.safetensors", "checkpoint-adam.1.safetensors"]
    }
}

/// The output folder of a training.
pub struct OutDir {
    dir: PathBuf,
}

/// Writes `bytes` to `path` atomically (temp file in the same folder, fsync,
/// rename, folder fsync), with the index crate's publication helper.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(likeness_index::atomic_write(path, |f| f.write_all(bytes))?)
}

/// Opens a trained model folder (what [`OutDir`] wrote): `model.json` for the architecture and
/// transform, `weights.safetensors` for the variables.
pub fn load(dir: &Path, device: tch::Device) -> Result<(Net, ModelCard)> {
    let card = read_card(dir)?;
    let mut net = Net::new(&card.spec, device)?;
    let weights = dir.join("weights.safetensors");
    if !weights.is_file() {
        return Err(Error::not_found(weights));
    }
    // The card's checksum of the weights (the fingerprint indexes record)
    // catches a damaged file before it gives wrong vectors; 20 ms for 45 MB.
    let crc = crc32_of(&weights)?;
    if !card.weights_crc32.is_empty() && crc != card.weights_crc32 {
        return Err(Error::Invalid(format!(
            "{}: checksum {crc}, but model.json records {}: the file is damaged or from \
             another training; restore the model folder (or retrain)",
            weights.display(),
            card.weights_crc32
        )));
    }
    net.vs.load(&weights)?;
    net.set_train(false);
    Ok((net, card))
}

/// The `model.json` of a trained model folder, checked, without its weights.
pub fn read_card(dir: &Path) -> Result<ModelCard> {
    let card_path = dir.join(MODEL_CARD);
    if !card_path.exists() {
        let what = if dir.join("checkpoint.json").is_file() {
            "holds an interrupted training, not a finished model; finish it with the same \
             `likeness train` command and --resume"
        } else if dir.join(likeness_index::manifest::MANIFEST).is_file() {
            "is an index, not a model; pass the model folder that `likeness train` wrote"
        } else {
            "is not a model folder (no model.json); pass the folder that `likeness train` wrote"
        };
        return Err(Error::Invalid(format!("{} {what}", dir.display())));
    }
    let text = std::fs::read(&card_path).map_err(|e| Error::io(&card_path, e))?;
    let card: ModelCard = serde_json::from_slice(&text).map_err(|e| {
        Error::Invalid(format!(
            "{}: not a likeness model card: {e}",
            card_path.display()
        ))
    })?;
    if card.format != MODEL_FORMAT || card.format_version > MODEL_VERSION {
        return Err(Error::Invalid(format!(
            "{}: format {} v{} is not supported by this likeness (reads {} v1..={}); upgrade likeness",
            card_path.display(),
            card.format,
            card.format_version,
            MODEL_FORMAT,
            MODEL_VERSION
        )));
    }
    Ok(card)
}

/// `dir/.name.tmp.ext`: same folder (so rename is atomic), same extension
/// (tch picks the format from it).
fn tmp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, "tmp"));
    path.with_file_name(format!(".{stem}.tmp.{ext}"))
}

/// CRC32 (hex) of a file's bytes.
fn crc32_of(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(format!("{:08x}", crc32fast::hash(&bytes)))
}

fn sync_rename(tmp: &Path, path: &Path) -> Result<()> {
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(tmp, e))?;
    std::fs::rename(tmp, path).map_err(|e| Error::io(path, e))
}

impl OutDir {
    /// Creates the folder, refusing one that holds another model unless
    /// `force` (or `resume`, which continues the model there).
    pub fn prepare(dir: &Path, force: bool, resume: bool) -> Result<OutDir> {
        let card = dir.join(MODEL_CARD);
        if resume {
            if !dir.join("checkpoint.json").is_file() {
                return Err(Error::Invalid(format!(
                    "{}: --resume needs a checkpoint.json there (an interrupted training); none found",
                    dir.display()
                )));
            }
        } else if !force {
            if card.exists() {
                return Err(Error::Invalid(format!(
                    "{} already holds a model (model.json); pass --force to overwrite it, or choose another --out",
                    dir.display()
                )));
            }
            if dir.join("checkpoint.json").exists() {
                return Err(Error::Invalid(format!(
                    "{} holds an interrupted training (checkpoint.json); continue it with --resume, or pass --force to start over",
                    dir.display()
                )));
            }
        }
        crate::error::create_dir(dir)?;
        Ok(OutDir {
            dir: dir.to_path_buf(),
        })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn save_vars(&self, vs: &VarStore, name: &str) -> Result<String> {
        // Written contiguous (convolution weights live channels-last, which
        // tch's `VarStore::save` refuses); the safetensors writer orders the
        // tensors itself, so the bytes do not depend on the map's order.
        let vars: Vec<(String, tch::Tensor)> = tch::no_grad(|| {
            vs.variables()
                .into_iter()
                .map(|(name, t)| (name, t.contiguous()))
                .collect()
        });
        self.write_tensors(name, &vars)
    }

    /// Publishes named tensors as the safetensors file `name` (temp file,
    /// fsync, rename) and returns its CRC32.
    fn write_tensors(&self, name: &str, tensors: &[(String, tch::Tensor)]) -> Result<String> {
        let path = self.path(name);
        let tmp = tmp_name(&path);
        tch::Tensor::write_safetensors(tensors, &tmp)?;
        let crc = crc32_of(&tmp)?;
        sync_rename(&tmp, &path)?;
        Ok(crc)
    }

    /// Saves the best weights so far. A card and export already there (a
    /// model overwritten with `--force`) describe other weights: they go first,
    /// so that the folder is never taken for a finished model while training.
    pub fn save_weights(&self, vs: &VarStore) -> Result<()> {
        self.remove(&[MODEL_CARD, "model.pt"])?;
        self.save_vars(vs, "weights.safetensors").map(drop)
    }

    pub fn load_weights(&self, vs: &mut VarStore) -> Result<()> {
        vs.load(self.path("weights.safetensors"))?;
        Ok(())
    }

    pub fn weights_crc32(&self) -> Result<String> {
        crc32_of(&self.path("weights.safetensors"))
    }

    /// Saves what `--resume` needs: the variables, Adam's state, where the
    /// run stood (`epoch`, `step` and the epoch's `partial` progress) and the
    /// card's epochs and settings.
    pub fn save_checkpoint(
        &self,
        vs: &VarStore,
        opt: &super::adam::Adam,
        (epoch, step, partial): (usize, usize, EpochProgress),
        card: &ModelCard,
    ) -> Result<()> {
        let (moments, adam_step) = opt.state();
        // The slot the last checkpoint does not use: a kill while these are
        // written leaves that one as it was (one in 13 timed kills once left
        // a checkpoint that could not be resumed).
        let slot = self.read_checkpoint().map_or(0, |c| 1 - c.slot.min(1));
        let files = checkpoint_files(slot);
        let crc32 = [
            self.save_vars(vs, files[0])?,
            self.write_tensors(files[1], &moments)?,
        ];
        let ck = Checkpoint {
            epoch,
            step,
            epochs: card.epochs.clone(),
            best_epoch: card.best_epoch,
            settings: Some(card.settings()),
            adam_step: Some(adam_step),
            partial,
            crc32: Some(crc32),
            slot,
            run: card.run.clone(),
            baselines: card.baselines.clone(),
            spent_seconds: card.total_seconds,
            recorded_train_seconds: Some(card.train_seconds),
        };
        let json = serde_json::to_vec_pretty(&ck).map_err(|e| Error::Invalid(e.to_string()))?;
        write_atomic(&self.path("checkpoint.json"), &json)
    }

    /// Reads `checkpoint.json` (the tensors are loaded by
    /// [`OutDir::restore_checkpoint`], once its settings have been checked).
    pub fn read_checkpoint(&self) -> Result<Checkpoint> {
        let p = self.path("checkpoint.json");
        let text = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        serde_json::from_slice(&text).map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))
    }

    /// Loads the tensors of checkpoint `ck` into `vs` and `opt`.
    pub fn restore_checkpoint(
        &self,
        ck: &Checkpoint,
        vs: &mut VarStore,
        opt: &mut super::adam::Adam,
    ) -> Result<()> {
        let files = checkpoint_files(ck.slot);
        if let Some(expected) = &ck.crc32 {
            for (name, want) in files.iter().zip(expected) {
                let got = crc32_of(&self.path(name))?;
                if &got != want {
                    return Err(Error::Invalid(format!(
                        "{}: CRC32 {got}, checkpoint.json expects {want} (the checkpoint was \
                         cut short while saving); start over with --force",
                        self.path(name).display()
                    )));
                }
            }
        }
        vs.load(self.path(files[0]))?;
        match ck.adam_step {
            Some(step) => {
                let moments = tch::Tensor::read_safetensors(self.path(files[1]))?;
                opt.load_state(&moments, step)?;
            }
            None => eprintln!(
                "likeness: this checkpoint holds no optimizer state (an earlier likeness); \
                 Adam's moments restart"
            ),
        }
        Ok(())
    }

    pub fn remove_checkpoint(&self) -> Result<()> {
        let [a, b] = checkpoint_files(0);
        let [c, d] = checkpoint_files(1);
        self.remove(&["checkpoint.json", a, b, c, d])
    }

    /// Removes those of `names` that exist.
    fn remove(&self, names: &[&str]) -> Result<()> {
        for name in names {
            let p = self.path(name);
            if p.exists() {
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            }
        }
        Ok(())
    }

    pub fn write_card(&self, card: &ModelCard) -> Result<()> {
        let json = serde_json::to_vec_pretty(card).map_err(|e| Error::Invalid(e.to_string()))?;
        write_atomic(&self.path(MODEL_CARD), &json)
    }

    pub fn write_log(&self, card: &ModelCard) -> Result<()> {
        let mut s = String::from(
            "epoch,loss,seconds,images_per_s,recall@1,recall@2,recall@4,recall@8,r_precision,map@r\n",
        );
        for e in &card.epochs {
            s.push_str(&format!(
                "{},{:.6},{:.3},{:.1}",
                e.epoch, e.loss, e.seconds, e.images_per_s
            ));
            match &e.validation {
                Some(v) => s.push_str(&format!(
                    ",{:.6},{:.6},{:.6},{:.6},{:.6},{:.6}\n",
                    v.recall_1, v.recall_2, v.recall_4, v.recall_8, v.r_precision, v.map_at_r
                )),
                None => s.push_str(",,,,,,\n"),
            }
        }
        write_atomic(&self.path("train_log.csv"), s.as_bytes())
    }

    /// Traces the network (eval mode) into `model.pt`; PyTorch users load it
    /// with `torch.jit.load` and get the same embeddings.
    /// The variables are frozen first (tracing refuses tensors that require
    /// gradients), so call it once training is over.
    pub fn export_torchscript(&self, net: &mut Net) -> Result<()> {
        net.vs.freeze();
        let net = &*net;
        let s = i64::from(net.spec.input_size);
        let example = tch::Tensor::zeros(
            [2, i64::from(net.spec.channels), s, s],
            (tch::Kind::Float, net.vs.device()),
        );
        let module = tch::no_grad(|| {
            tch::CModule::create_by_tracing("likeness", "forward", &[example], &mut |xs| {
                vec![net.forward_t(&xs[0], false)]
            })
        })?;
        let path = self.path("model.pt");
        let tmp = tmp_name(&path);
        module.save(&tmp)?;
        sync_rename(&tmp, &path)
    }
}

impl OutDir {
    /// `curves.png`: training loss, and validation Recall@1 and MAP@R, per epoch.
    pub fn plot_curves(&self, card: &ModelCard) -> Result<()> {
        use likeness_app::plot::{Panel, Series};
        use plotters::style::RGBColor;
        let loss: Vec<(f64, f64)> = card
            .epochs
            .iter()
            .map(|e| (e.epoch as f64, e.loss))
            .collect();
        let val = |f: fn(&Validation) -> f64| -> Vec<(f64, f64)> {
            card.epochs
                .iter()
                .filter_map(|e| e.validation.as_ref().map(|v| (e.epoch as f64, f(v))))
                .collect()
        };
        // Both panels span every epoch (validation may skip some).
        let x_span = card
            .epochs
            .first()
            .zip(card.epochs.last())
            .map(|(a, b)| (a.epoch as f64, b.epoch as f64));
        let mut panels = vec![Panel {
            title: "training loss",
            x_label: "epoch",
            y_label: "loss",
            series: vec![Series {
                name: "loss",
                points: loss,
                color: RGBColor(200, 60, 40),
            }],
            x_span,
        }];
        let r1 = val(|v| v.recall_1);
        if !r1.is_empty() {
            panels.push(Panel {
                title: "validation",
                x_label: "epoch",
                y_label: "score",
                series: vec![
                    Series {
                        name: "Recall@1",
                        points: r1,
                        color: RGBColor(30, 90, 200),
                    },
                    Series {
                        name: "Recall@8",
                        points: val(|v| v.recall_8),
                        color: RGBColor(90, 160, 230),
                    },
                    Series {
                        name: "MAP@R",
                        points: val(|v| v.map_at_r),
                        color: RGBColor(40, 150, 70),
                    },
                ],
                x_span,
            });
        }
        Ok(likeness_app::plot::line_panels(
            &self.path("curves.png"),
            &panels,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--resume` compares the settings a checkpoint wrote with today's:
    /// they must read back as written. EfficientNet-Lite0's mean (127/255
    /// as f32, widened) came back as another f64 from serde_json's default
    /// parser, and every such run was refused.
    #[test]
    fn settings_read_back_as_written() {
        let mean = f64::from(127f32 / 255f32);
        let v = serde_json::json!({"spec": {"mean": [mean, mean, mean], "std": [0.998_123_f64]}});
        let back: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
        assert_eq!(back, v);
    }

    fn v(recall_1: f64) -> Validation {
        Validation {
            queries: 15,
            recall_1,
            recall_2: recall_1,
            recall_4: recall_1,
            recall_8: recall_1,
            r_precision: recall_1,
            map_at_r: recall_1,
        }
    }

    #[test]
    fn the_verdict_compares_with_the_better_baseline() {
        let b = |untrained, pixels| Baselines {
            untrained: v(untrained),
            pixels: v(pixels),
        };
        assert!(b(0.5, 0.6).verdict(&v(0.9)).contains("training helped"));
        assert!(b(0.5, 0.6).verdict(&v(0.6)).contains("bought little"));
        assert!(b(0.5, 0.6).verdict(&v(0.4)).contains("made it worse"));
        // Perfect before training: nothing to gain, and no advice to train
        // longer; worse after it is still said.
        let perfect = b(1.0, 0.27).verdict(&v(1.0));
        assert!(
            perfect.contains("already perfect") && !perfect.contains("--max-steps"),
            "{perfect}"
        );
        assert!(b(1.0, 0.27).verdict(&v(0.9)).contains("made it worse"));
    }
}
