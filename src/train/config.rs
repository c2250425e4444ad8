//! [`TrainConfig`]: what `likeness train` was asked, before the settings are
//! derived from the data ([`super::defaults::derive`]), and its checks.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::defaults;
use super::loss::LossConfig;
use super::schedule::LrSchedule;
use super::split::ValSplit;
use crate::error::{Error, Result};
use crate::model::Arch;
use crate::transform::Augment;

/// Everything `likeness train` needs, validated by [`TrainConfig::validate`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    pub data: PathBuf,
    pub out: PathBuf,
    /// `None`: chosen from the data ([`defaults::choose_arch`]).
    pub arch: Option<Arch>,
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
    /// Peak learning rate (of the head, over a pretrained backbone);
    /// `None`: derived ([`defaults::LR`] or [`defaults::PRETRAINED_LR`]).
    pub lr: Option<f64>,
    /// How the learning rate changes over the steps.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Precision of the forward pass (bf16 autocast is ~2x faster on CPUs with AMX/AVX512-BF16).
    /// `None`: bf16 where the CPU has AMX or AVX512-BF16, else fp32.
    #[serde(default)]
    pub precision: Option<crate::runtime::Precision>,
    pub weight_decay: f64,
    /// `--val`; `None`: derived from the class sizes
    /// ([`defaults::held_out_split`]).
    pub val: Option<ValSplit>,
    pub val_data: Option<PathBuf>,
    pub augment: Augment,
    /// Drop classes with fewer training images than this (≥ 2); 0 = refuse them.
    pub min_per_class: usize,
    pub seed: u64,
    pub resume: bool,
    pub force: bool,
    /// Images per forward pass when embedding the held-out set (`None`:
    /// `embed`'s default for the device, [`TrainConfig::eval_batch_on`]).
    pub eval_batch: Option<usize>,
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

    /// Refuses settings that contradict each other or cannot train.
    /// The validation batch on `device`: as given, else `embed`'s default.
    pub(super) fn eval_batch_on(&self, device: tch::Device) -> usize {
        self.eval_batch
            .unwrap_or_else(|| likeness_app::args::default_batch(device.is_cuda()))
    }

    pub(super) fn validate(&self) -> Result<()> {
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
        if self.eval_batch == Some(0) {
            return bad("--eval-batch must be at least 1".into());
        }
        if let Some(lr) = self.lr {
            if !(lr > 0.0 && lr.is_finite()) {
                return bad(format!("--lr {lr} must be a positive number"));
            }
        }
        if self.weight_decay.is_nan()
            || self.weight_decay < 0.0
            || self.loss.l2_reg.is_nan()
            || self.loss.l2_reg < 0.0
        {
            return bad("--weight-decay and --l2-reg must be non-negative".into());
        }
        let m = self.loss.margin;
        if !(m.is_finite() && m > 0.0) {
            // At 0 or below, batch-hard triplets are satisfied by collapse.
            return bad(format!(
                "--margin {m}: give a positive number (the default is 1)"
            ));
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

    /// What the command line fixed, for [`defaults::derive`].
    pub fn asked(&self) -> defaults::Asked {
        defaults::Asked {
            arch: self.arch.clone(),
            lr: self.lr,
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

fn default_patience() -> usize {
    defaults::DEFAULT_PATIENCE
}
