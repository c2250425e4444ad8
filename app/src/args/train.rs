//! `likeness train`.
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training images: an image folder, a .csv manifest (with optional
    /// region boxes) or an IDX images file.
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder for the model (weights.safetensors, model.json, model.pt, ...).
    #[arg(long)]
    pub out: PathBuf,
    /// Backbone: convnet (small images, CPU), resnet18 (from scratch, 112-224
    /// px), efficientnet-lite0 (fine-tuned from ImageNet; `make pretrained`
    /// fetches its weights), dlib-resnet (dlib's face descriptor fine-tuned,
    /// for aligned 150 px face chips; `make face-models` fetches it) or
    /// torchscript:PATH (fine-tune a TorchScript
    /// backbone with a projection head) [default: efficientnet-lite0 for up
    /// to 20,000 colour images of 24 px or more, else convnet].
    #[arg(long)]
    pub arch: Option<crate::settings::Arch>,
    /// Embedding dimension.
    #[arg(long, default_value_t = 64)]
    pub dim: u32,
    /// Channel multiplier of convnet (1: 32, 32, 64, 64, 128 channels).
    #[arg(long, default_value_t = 1.25)]
    pub width: f32,
    /// Square input size in pixels [default: convnet: the images' median
    /// side rounded up to a multiple of 4, within 20-64; 112 otherwise].
    #[arg(long)]
    pub input_size: Option<u32>,
    /// N: distinct classes per tuple [default: min(#classes, 32)].
    #[arg(long)]
    pub classes_per_tuple: Option<usize>,
    /// T: independent N-pair tuples per step (batch = 2·N·T images).
    #[arg(long, default_value_t = 2)]
    pub tuples: usize,
    /// Loss: npair-mc (Sohn 2016), npair-ovo, or triplet (batch-hard).
    #[arg(long, value_enum, default_value_t = crate::settings::LossKind::NpairMc)]
    pub loss: crate::settings::LossKind,
    /// λ of the L2 penalty on embedding norms.
    #[arg(long, default_value_t = 0.008)]
    pub l2_reg: f64,
    /// Margin of the triplet loss.
    #[arg(long, default_value_t = 1.0)]
    pub margin: f64,
    /// C > N: sample C classes per tuple and mine the N hardest (Sohn §3.2).
    #[arg(long)]
    pub mine_classes: Option<usize>,
    /// Passes over the training images [default: none: train until the
    /// held-out Recall@1 stops improving (--patience), or --max-steps].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Without --epochs: the most steps [default: 8 passes over the
    /// training images, within 500-10,000]; the learning rate's cosine ends there.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Without --epochs: no early stop before this step [default: a quarter
    /// of --max-steps].
    #[arg(long)]
    pub min_steps: Option<usize>,
    /// Without --epochs: linear learning-rate warm-up [default: 2% of
    /// --max-steps, at most 200].
    #[arg(long)]
    pub warmup_steps: Option<usize>,
    /// Without --epochs: stop after this many validations (and a tenth of
    /// --max-steps) without a better held-out Recall@1 (the best weights
    /// are kept).
    #[arg(long, default_value_t = crate::settings::DEFAULT_PATIENCE)]
    pub patience: usize,
    /// Stop at the first step past this much time (300, 90s, 5m, 1.5h), then
    /// validate and save; without --epochs the learning rate ends there.
    #[arg(long, value_parser = crate::settings::parse_duration)]
    pub time_budget: Option<f64>,
    /// Without --epochs: steps between validations [default: measured, so
    /// that validation costs at most 10% of the time].
    #[arg(long)]
    pub val_steps: Option<usize>,
    /// Train from grades: B quantile bins of the manifest's `score` column
    /// become the classes of N-pair sampling; rows with an empty score are
    /// left out (grade a few, train on those). The bin edges go into
    /// model.json.
    #[arg(long)]
    pub score_bins: Option<usize>,
    /// With --score-bins: weight of a linear read-out of the (standardised)
    /// score from the embedding, trained by squared error beside the N-pair
    /// loss, which orders the embedding by grade; 0 = the bins alone
    /// [default: 1].
    #[arg(long)]
    pub score_weight: Option<f64>,
    /// Steps per epoch [default: training images / images per step].
    #[arg(long)]
    pub steps_per_epoch: Option<usize>,
    /// Adam learning rate, of the head over a pretrained backbone (whose own
    /// is a tenth of it) [default: 4e-3; 1e-3 over a pretrained backbone].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate schedule over all steps.
    #[arg(long, value_enum, default_value_t = crate::settings::LrSchedule::Cosine)]
    pub lr_schedule: crate::settings::LrSchedule,
    /// Forward-pass precision: fp32, or bf16 (autocast, as torch.autocast)
    /// [default: bf16 where the CPU has AMX or AVX512-BF16, else fp32].
    #[arg(long, value_enum)]
    pub precision: Option<crate::settings::Precision>,
    /// Adam weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Held-out set: none, images:F (fraction of each class's images, at
    /// least 2 where a class has 4 or more) or
    /// classes:F (the last fraction of classes: zero-shot) [default:
    /// images:0.1, or none when --val-data is given].
    #[arg(long)]
    pub val: Option<crate::settings::ValSplit>,
    /// Validate on another source (e.g. the test split); with --val
    /// classes:F, only its images of the classes held out of --data (a
    /// validation left with no two images of a class is refused).
    #[arg(long)]
    pub val_data: Option<PathBuf>,
    /// Mirror images at random in training [default: on, unless two class
    /// names differ only by left/right, e.g. left_eye and right_eye].
    #[arg(long, overrides_with = "no_flip")]
    pub flip: bool,
    /// Do not mirror images (for left/right-sensitive regions).
    #[arg(long)]
    pub no_flip: bool,
    /// Test-time flip: validation, embedding and model.pt use the sum of the
    /// unit embeddings of each image and its mirror image (2 forward passes)
    /// [default: as the training flip].
    #[arg(long, overrides_with = "no_flip_tta")]
    pub flip_tta: bool,
    /// No test-time flip.
    #[arg(long)]
    pub no_flip_tta: bool,
    /// Random resized crop: smallest area fraction kept (1 = no crop).
    #[arg(long, default_value_t = 1.0)]
    pub min_crop: f32,
    /// Drop classes with fewer training images than this (at least 2)
    /// instead of refusing them.
    #[arg(long, default_value_t = 0)]
    pub min_per_class: usize,
    /// Seed of weights, sampling, splits and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Continue an interrupted training in --out: the same command plus
    /// --resume (other settings are refused).
    #[arg(long)]
    pub resume: bool,
    /// Overwrite a model, or start over an interrupted training, in --out.
    #[arg(long)]
    pub force: bool,
    /// Images per forward pass when embedding the held-out set (default:
    /// 32 on the CPU, 256 on CUDA, as `embed --batch`).
    #[arg(long, value_parser = super::batch_size)]
    pub eval_batch: Option<usize>,
    /// Validate after every N-th epoch (and always after the last); the best
    /// checkpoint is chosen among the validated epochs.
    #[arg(long, default_value_t = 1)]
    pub val_every: usize,
}
