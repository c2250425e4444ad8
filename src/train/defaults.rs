//! Settings derived from the data in front of the trainer: a pure function
//! from the dataset's shape (images, classes, median image side, colour),
//! what was asked on the command line and the machine's features to the
//! settings and, for each, why. `likeness train` prints the decisions on its
//! first lines and writes them to `model.json`.
//!
//! The fixed defaults (lr 4e-3, 2 tuples per step, L2 0.008, flip-TTA, width
//! 1.25) are the Fashion-MNIST sweep's winners (docs/benchmarks.md); this
//! module scales the rest to the data.
use serde::{Deserialize, Serialize};

pub use likeness_app::settings::ValSplit;

use crate::model::Arch;
use crate::runtime::Precision;
use likeness_app::plural::plural;

/// What the trainer knows about the data before it builds the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Training images (after the held-out split).
    pub train_images: usize,
    /// Training classes.
    pub classes: usize,
    /// Median of max(width, height) over (up to 2,000) training images.
    pub median_side: u32,
    pub grey: bool,
    /// Two class names that differ only by `left`/`right` (see
    /// [`sided_pair`]), if the classes have such a pair.
    pub sided: Option<(String, String)>,
    /// Held-out images that validation (and early stopping) can use.
    pub held_out: usize,
    /// Whether the images are dlib's aligned face chips.
    pub face_chips: FaceChips,
}

/// Whether the training images are dlib's aligned face chips
/// ([`likeness_app::face::chip`]), from a sample of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaceChips {
    /// Not looked for, and why (grey or not square images, no face models).
    NotChecked(String),
    /// `chips` of `sampled` images are chips.
    Counted { chips: usize, sampled: usize },
}

impl FaceChips {
    /// Enough of the sample is chips ([`FACE_CHIP_SHARE`]).
    pub fn found(&self) -> bool {
        match self {
            FaceChips::Counted { chips, sampled } => {
                *sampled > 0 && *chips as f64 >= FACE_CHIP_SHARE * *sampled as f64
            }
            FaceChips::NotChecked(_) => false,
        }
    }
}

/// Training images that `train` looks at for face chips (about 10 ms each).
pub const FACE_CHIP_SAMPLE: usize = 20;
/// The share of them that must be chips: the detector misses a face now
/// and then (1 of the 55 johns chips), so not all.
pub const FACE_CHIP_SHARE: f64 = 0.8;

/// The first two class names that are the same but for `left` and `right`
/// (`left_eye`/`right_eye`, `Left cheek`/`Right cheek`), compared without
/// case. Mirroring turns one such class into the other, so flips are off
/// by default when there is one.
pub fn sided_pair<S: AsRef<str>>(classes: &[S]) -> Option<(String, String)> {
    let lower: Vec<String> = classes.iter().map(|c| c.as_ref().to_lowercase()).collect();
    lower.iter().enumerate().find_map(|(i, c)| {
        if !c.contains("left") {
            return None;
        }
        let other = c.replace("left", "right");
        lower.iter().position(|x| *x == other).map(|j| {
            (
                classes[i].as_ref().to_string(),
                classes[j].as_ref().to_string(),
            )
        })
    })
}

/// The settings the command line left open (`None`) or fixed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Asked {
    /// `--arch`; unset: chosen from the data ([`choose_arch`]).
    pub arch: Option<Arch>,
    /// `--lr`; unset: [`LR`], or [`PRETRAINED_LR`] for a pretrained backbone.
    pub lr: Option<f64>,
    pub input_size: Option<u32>,
    pub classes_per_tuple: Option<usize>,
    pub tuples: usize,
    pub precision: Option<Precision>,
    /// `--flip-tta` / `--no-flip-tta`; unset: as the training flip.
    pub flip_tta: Option<bool>,
    /// `--flip` / `--no-flip` (mirror images in training); unset: on unless
    /// the classes come in left/right pairs.
    pub flip: Option<bool>,
    pub epochs: Option<usize>,
    pub steps_per_epoch: Option<usize>,
    pub max_steps: Option<usize>,
    pub min_steps: Option<usize>,
    pub warmup_steps: Option<usize>,
    pub patience: usize,
}

/// The machine's features that change a default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Machine {
    pub cuda: bool,
    /// The CPU feature that makes bf16 fast (`amx_bf16`, `avx512_bf16`), if any.
    pub fast_bf16: Option<String>,
}

impl Machine {
    /// This machine, detected at run time.
    pub fn detect(cuda: bool) -> Machine {
        Machine {
            cuda,
            fast_bf16: fast_bf16_feature(),
        }
    }
}

/// The CPU feature that makes bf16 matrix products fast, detected at run time.
pub fn fast_bf16_feature() -> Option<String> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512bf16") {
            return Some("avx512_bf16".into());
        }
        // AMX has no stable detection macro; the kernel lists it.
        if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") {
            if info.split_whitespace().any(|f| f == "amx_bf16") {
                return Some("amx_bf16".into());
            }
        }
    }
    None
}

/// `fp32` or `bf16`, as on the command line.
pub fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::Fp32 => "fp32",
        Precision::Bf16 => "bf16",
    }
}

/// When training stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Stop {
    /// `--epochs`: a fixed number of passes of `steps_per_epoch` steps.
    Epochs {
        epochs: usize,
        steps_per_epoch: usize,
    },
    /// Until the held-out Recall@1 has not improved for `patience`
    /// validations and a tenth of `max_steps` (once `min_steps` are done),
    /// or at `max_steps`; the
    /// learning rate warms up over `warmup_steps`, then follows a cosine to
    /// `max_steps`.
    Patience {
        max_steps: usize,
        min_steps: usize,
        warmup_steps: usize,
        patience: usize,
    },
}

/// One derived setting: its value and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub setting: String,
    pub value: String,
    pub why: String,
}

/// How a pretrained backbone is fine-tuned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Finetune {
    /// The backbone's learning rate as a fraction of the head's.
    pub backbone_lr_factor: f64,
    /// The first steps train the head alone, the backbone frozen.
    pub head_warmup_steps: usize,
    /// Batch norm keeps the pretrained running statistics in training.
    pub bn_frozen: bool,
}

/// The settings of one training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub arch: Arch,
    /// The head's (and a from-scratch network's) peak learning rate.
    pub lr: f64,
    /// With a pretrained backbone.
    pub finetune: Option<Finetune>,
    pub input_size: u32,
    pub classes_per_tuple: usize,
    pub images_per_step: usize,
    pub precision: Precision,
    /// Mirror training images at random.
    pub flip: bool,
    pub flip_tta: bool,
    /// Steps in one pass over the training images.
    pub steps_per_pass: usize,
    pub stop: Stop,
    pub decisions: Vec<Decision>,
}

/// Passes over the training images that the step budget plans for: the
/// sweep's 5 epochs of 60,000 images reached Recall@1 0.903; held-out 10%
/// leaves 54,000, and 8 passes (10,000 steps of 40) make up for it.
pub const PASSES: usize = 8;
/// Bounds of the planned steps: a tiny set still gets enough updates (the
/// issue's 3,600 images at 5 epochs were 110 updates, Recall@1 0.71), a large
/// one stops within minutes (10,000 steps of 28 px convnet: about 6 min here).
pub const MIN_PLANNED_STEPS: usize = 500;
pub const MAX_PLANNED_STEPS: usize = 10_000;
/// Early stopping waits for this many validations without improvement
/// (an argument's default, so it lives with the arguments).
pub use likeness_app::settings::DEFAULT_PATIENCE;
/// Validation may cost at most this share of the training time.
pub const VAL_SHARE: f64 = 0.10;

/// The learning rate of a network trained from scratch: the Fashion-MNIST
/// sweep's winner (docs/benchmarks.md). An argument's default, so it lives
/// with the arguments.
pub const LR: f64 = 4e-3;
/// The head's learning rate over a pretrained backbone, whose own is
/// [`BACKBONE_LR_FACTOR`] of it (docs/training.md, "Pretrained backbones").
pub const PRETRAINED_LR: f64 = 1e-3;
pub const BACKBONE_LR_FACTOR: f64 = 0.1;
/// A pretrained backbone is chosen for colour images of at least this side
/// (the median)...
pub const PRETRAINED_MIN_SIDE: u32 = 24;
/// ... and at most this many training images: beyond, the cached trunk
/// outputs (a 16 KB to 88 KB tensor per image and orientation) and their
/// one-time forward pass (66 ms an image at 224 px through the whole
/// network on 2 cores, PyTorch) cost more than a from-scratch convnet's
/// minutes.
pub const PRETRAINED_MAX_IMAGES: usize = 20_000;
/// Batch norm keeps its pretrained statistics below this many images a
/// step: the statistics of a small batch of few classes are noisy, and the
/// network was trained with the ImageNet ones.
pub const BN_FROZEN_BELOW: usize = 64;
/// The step budget's bounds with a pretrained backbone, whose steps start
/// from good features.
pub const PRETRAINED_MIN_STEPS: usize = 300;
pub const PRETRAINED_MAX_STEPS: usize = 3_000;

/// Why fine-tuning the pretrained backbone trains in fp32 even where the
/// CPU has fast bf16: its depthwise convolutions are not faster in bf16, and
/// bf16's rounding moved the answers of a 300-step fine-tuning. Measured on
/// the johns faces, the demo's split, seeds 0–4, on an AMD EPYC with
/// AVX512-BF16: Recall@1 1.00/0.87/0.80/1.00/0.93 in 22–23 s of training
/// (fp32) against 0.80/0.87/0.73/1.00/0.93 in 34–36 s (bf16).
pub const FINETUNE_FP32_WHY: &str = "fine-tuning the pretrained backbone: on the johns faces \
     (seeds 0-4) fp32 trained in 22 s against bf16's 34 s and scored Recall@1 \
     1.00/0.87/0.80/1.00/0.93 against 0.80/0.87/0.73/1.00/0.93 (AVX512-BF16 CPU)";

/// The share of each class's images held out to validate on by default.
pub const VAL_FRACTION: f64 = 0.1;
/// Classes this small (the median) hold nothing out by default: a tenth of
/// fewer than 15 images rounds to under the 2 a leave-one-out query needs,
/// so the split would take 2 anyway (a quarter of an 8-image class), and a
/// Recall@1 over 2 images a class moves by whole tenths between
/// checkpoints, too coarse to stop by. Measured on the johns faces, the
/// demo's split (8 crops a person, 5 people; `make bench-faces`), seeds
/// 0/1/2: Recall@1 0.87/0.80/0.40 holding out 2 a person and keeping the
/// checkpoint they chose, 1.00/0.87/0.80 training on all 8 to the end of
/// the step budget.
pub const MIN_CLASS_TO_HOLD_OUT: usize = 15;

/// The held-out split without `--val` (`--val-data`: all of it, nothing of
/// the training source), from the training source's images per class, and
/// why.
pub fn held_out_split(class_sizes: &[usize], val_data: bool) -> (ValSplit, String) {
    if val_data {
        return (ValSplit::None, "--val-data: validate on it".into());
    }
    let mut sizes: Vec<usize> = class_sizes.iter().copied().filter(|&n| n > 0).collect();
    sizes.sort_unstable();
    let median = sizes.get(sizes.len() / 2).copied().unwrap_or(0);
    if median < MIN_CLASS_TO_HOLD_OUT {
        return (
            ValSplit::None,
            format!(
                "{} in the median class, fewer than {MIN_CLASS_TO_HOLD_OUT}: a \
                 tenth rounds below the 2 a query needs, holding out 2 costs a quarter of the \
                 data and their Recall@1 is too coarse to stop by; all train, to the end of the \
                 step budget (johns faces, the demo's split, seeds 0/1/2: Recall@1 \
                 1.00/0.87/0.80 against 0.87/0.80/0.40 holding out 2 a person)",
                plural(median, "image")
            ),
        );
    }
    (
        ValSplit::Images(VAL_FRACTION),
        format!(
            "{} in the median class: a tenth of each class validates and stops \
             the training early",
            plural(median, "image")
        ),
    )
}

/// The backbone: `--arch`, or a pretrained one for small colour sets and
/// the small convnet otherwise, with why.
pub fn choose_arch(asked: Option<&Arch>, shape: &Shape) -> (Arch, String) {
    if let Some(a) = asked {
        return (a.clone(), "--arch".into());
    }
    if shape.grey {
        return (
            Arch::Convnet,
            "grey images: an ImageNet backbone sees colour (Fashion-MNIST: the convnet's \
             Recall@1 0.903)"
                .into(),
        );
    }
    if let Some((l, r)) = &shape.sided {
        // ImageNet features are trained with mirror flips and nearly
        // mirror-invariant, so a left and a right crop embed alike. The
        // demo's region catalogue (240 regions to train): efficientnet-lite0
        // Recall@1 0.50 on the 90 held out, the convnet 0.90.
        return (
            Arch::Convnet,
            format!(
                "classes {l} and {r} differ by side, and ImageNet features hardly tell a \
                 crop from its mirror image (regions: Recall@1 0.50 fine-tuned, 0.90 from scratch)"
            ),
        );
    }
    if shape.median_side < PRETRAINED_MIN_SIDE {
        return (
            Arch::Convnet,
            format!(
                "images of {} px, below {PRETRAINED_MIN_SIDE} px: too small for ImageNet features",
                shape.median_side
            ),
        );
    }
    if shape.train_images > PRETRAINED_MAX_IMAGES {
        return (
            Arch::Convnet,
            format!(
                "{} training images, over {PRETRAINED_MAX_IMAGES}: enough to train from scratch, \
                 and fine-tuning would cost more",
                shape.train_images
            ),
        );
    }
    if let (true, FaceChips::Counted { chips, sampled }) =
        (shape.face_chips.found(), &shape.face_chips)
    {
        return (
            Arch::DlibResnet,
            format!(
                "{chips} of {sampled} sampled images are aligned face chips (dlib's 5 landmarks \
                 where its 150 px chips put them): dlib's face descriptor fine-tuned (johns \
                 faces, the demo's split, seeds 0-4: Recall@1 1.00 each, against 0.92 on \
                 average for efficientnet-lite0)"
            ),
        );
    }
    (
        Arch::EfficientnetLite0,
        format!(
            "{} colour images of {} px (at most {PRETRAINED_MAX_IMAGES}): ImageNet features \
             fine-tuned beat a convnet from scratch on small colour sets (johns faces, the \
             demo's split, seeds 0/1/2: Recall@1 0.87/0.80/0.40 against 0.53/0.33/0.20)",
            shape.train_images, shape.median_side
        ),
    )
}

/// The settings on data of `shape`, given what was asked (`arch`: `--arch`).
pub fn derive(arch: Option<&Arch>, shape: &Shape, asked: &Asked, machine: &Machine) -> Plan {
    let mut decisions = Vec::new();
    let mut decide = |setting: &str, value: String, why: String| {
        decisions.push(Decision {
            setting: setting.into(),
            value,
            why,
        });
    };
    // dlib's descriptor takes 150 px chips only: another --input-size
    // rules it out.
    let mut shape = shape.clone();
    if let Some(s) = asked
        .input_size
        .filter(|&s| s != crate::model::dlib_resnet::NATIVE_SIZE)
    {
        shape.face_chips = FaceChips::NotChecked(format!("--input-size {s}"));
    }
    let shape = &shape;
    let (arch, why) = choose_arch(arch.or(asked.arch.as_ref()), shape);
    decide("arch", arch.to_string(), why);
    let arch = &arch;
    let input_size = match asked.input_size {
        Some(s) => {
            decide("input size", format!("{s} px"), "--input-size".into());
            s
        }
        None => match arch {
            Arch::EfficientnetLite0 => {
                let s = shape.median_side.div_ceil(32) * 32;
                let s = s.clamp(96, crate::model::efficientnet::NATIVE_SIZE);
                decide(
                    "input size",
                    format!("{s} px"),
                    format!(
                        "median image side {} px rounded up to a multiple of 32, within [96, \
                         224] (224: the backbone's own; smaller images are not blown up past \
                         the next multiple of 32, which would cost time for no detail)",
                        shape.median_side
                    ),
                );
                s
            }
            Arch::Convnet => {
                let s = shape.median_side.div_ceil(4) * 4;
                let s = s.clamp(20, 64);
                decide(
                    "input size",
                    format!("{s} px"),
                    format!(
                        "median image side {} px rounded up to a multiple of 4, within [20, 64] \
                         for convnet",
                        shape.median_side
                    ),
                );
                s
            }
            Arch::DlibResnet => {
                let s = crate::model::dlib_resnet::NATIVE_SIZE;
                decide(
                    "input size",
                    format!("{s} px"),
                    "dlib's face descriptor takes its own 150 px face chips".into(),
                );
                s
            }
            _ => {
                decide(
                    "input size",
                    "112 px".into(),
                    "resnet18 and TorchScript backbones at 112 px".into(),
                );
                112
            }
        },
    };
    let n = match asked.classes_per_tuple {
        Some(n) => {
            decide(
                "classes per tuple",
                n.to_string(),
                "--classes-per-tuple".into(),
            );
            n
        }
        None => {
            let n = shape.classes.min(32);
            decide(
                "classes per tuple",
                n.to_string(),
                format!("min({}, 32)", plural(shape.classes, "class")),
            );
            n
        }
    };
    let images_per_step = 2 * n * asked.tuples.max(1);
    decide(
        "images per step",
        images_per_step.to_string(),
        format!(
            "2 images x {} x {} (the sweep: 2 tuples beat 4 and 8)",
            plural(n, "class"),
            plural(asked.tuples, "tuple")
        ),
    );
    let precision = match asked.precision {
        Some(p) => {
            decide("precision", precision_name(p).into(), "--precision".into());
            p
        }
        None if machine.cuda => {
            decide(
                "precision",
                "fp32".into(),
                "on CUDA bf16 measured no faster (40.7 vs 42.0 s)".into(),
            );
            Precision::Fp32
        }
        None if matches!(arch, Arch::EfficientnetLite0) => {
            decide("precision", "fp32".into(), FINETUNE_FP32_WHY.into());
            Precision::Fp32
        }
        None if matches!(arch, Arch::DlibResnet) => {
            decide(
                "precision",
                "fp32".into(),
                "dlib's descriptor is fine-tuned above its cached trunk: a step is a few \
                 milliseconds, with nothing for bf16 to win"
                    .into(),
            );
            Precision::Fp32
        }
        None => match &machine.fast_bf16 {
            Some(f) => {
                decide(
                    "precision",
                    "bf16".into(),
                    format!("this CPU has {f} (bf16 steps about twice as fast)"),
                );
                Precision::Bf16
            }
            None => {
                decide(
                    "precision",
                    "fp32".into(),
                    "this CPU has neither AMX nor AVX512-BF16".into(),
                );
                Precision::Fp32
            }
        },
    };
    let flip = match (asked.flip, &shape.sided) {
        (Some(f), _) => {
            decide(
                "flip",
                if f { "on" } else { "off" }.into(),
                if f { "--flip" } else { "--no-flip" }.into(),
            );
            f
        }
        (None, Some((l, r))) => {
            // The demo's region catalogue (6 regions, 40 crops to train, 15
            // held out): Recall@1 0.89 without flips, 0.54 with them.
            decide(
                "flip",
                "off".into(),
                format!("classes {l} and {r} differ by side, and a mirror image turns one into the other"),
            );
            false
        }
        (None, None) => true,
    };
    let flip_tta = match asked.flip_tta {
        Some(f) => f,
        None => flip,
    };
    if asked.flip_tta.is_none() {
        decide(
            "flip-tta",
            if flip_tta { "on" } else { "off" }.into(),
            if flip_tta {
                "mirrored images are alike (+0.002 Recall@1 on Fashion-MNIST)".into()
            } else {
                "images are not mirrored in training: left and right differ".into()
            },
        );
    }
    let pretrained = arch.pretrained();
    let lr = match asked.lr {
        Some(lr) => {
            decide("lr", lr.to_string(), "--lr".into());
            lr
        }
        None if pretrained => {
            decide(
                "lr",
                PRETRAINED_LR.to_string(),
                format!(
                    "the head's over a pretrained backbone; the backbone's is {BACKBONE_LR_FACTOR}x \
                     that, so fine-tuning keeps what pretraining taught it"
                ),
            );
            PRETRAINED_LR
        }
        None => LR,
    };
    let steps_per_pass = (shape.train_images / images_per_step).max(1);
    let stop = match asked.epochs {
        Some(epochs) => {
            let steps_per_epoch = asked.steps_per_epoch.unwrap_or(steps_per_pass);
            decide(
                "steps",
                format!(
                    "{} ({} of {steps_per_epoch})",
                    epochs * steps_per_epoch,
                    plural(epochs, "epoch")
                ),
                "--epochs".into(),
            );
            Stop::Epochs {
                epochs,
                steps_per_epoch,
            }
        }
        None => {
            let planned = (PASSES * shape.train_images).div_ceil(images_per_step);
            let max_steps = match asked.max_steps {
                Some(m) => {
                    decide("max steps", m.to_string(), "--max-steps".into());
                    m
                }
                None => {
                    let (lo, hi) = if pretrained {
                        (PRETRAINED_MIN_STEPS, PRETRAINED_MAX_STEPS)
                    } else {
                        (MIN_PLANNED_STEPS, MAX_PLANNED_STEPS)
                    };
                    let m = planned.clamp(lo, hi);
                    decide(
                        "max steps",
                        m.to_string(),
                        format!(
                            "{PASSES} passes over {} = {} steps, within \
                             [{lo}, {hi}]{}",
                            plural(shape.train_images, "image"),
                            planned,
                            if pretrained { " (fine-tuning)" } else { "" }
                        ),
                    );
                    m
                }
            };
            let min_steps = asked.min_steps.unwrap_or(max_steps / 4).min(max_steps);
            let warmup_steps = asked
                .warmup_steps
                .unwrap_or((max_steps / 50).min(200))
                .min(max_steps);
            if shape.held_out == 0 {
                decide(
                    "stop",
                    format!("at step {max_steps}, with the last weights"),
                    "nothing held out to stop early by".into(),
                );
            } else {
                decide(
                    "stop",
                    format!(
                        "after {} and {} without a better Recall@1, from step \
                         {min_steps}",
                        plural(asked.patience, "validation"),
                        plural(max_steps / 10, "step")
                    ),
                    "--patience, and a tenth of the steps; the first quarter always runs".into(),
                );
            }
            decide(
                "lr schedule",
                format!(
                    "warm-up {}, cosine to step {max_steps}",
                    plural(warmup_steps, "step")
                ),
                "the end is at most max steps; early stopping keeps the best weights".into(),
            );
            Stop::Patience {
                max_steps,
                min_steps,
                warmup_steps,
                patience: asked.patience,
            }
        }
    };
    let finetune = pretrained.then(|| {
        let total = match stop {
            Stop::Epochs {
                epochs,
                steps_per_epoch,
            } => epochs * steps_per_epoch,
            Stop::Patience { max_steps, .. } => max_steps,
        };
        let head_warmup_steps = (total / 10).max(1);
        let bn_frozen = images_per_step < BN_FROZEN_BELOW;
        let (trained, norm, norm_why) = match arch {
            Arch::DlibResnet => (
                "last down-sampling block and linear layer".to_string(),
                "none (dlib folded it into fixed affine layers)".to_string(),
                String::new(),
            ),
            _ => (
                format!(
                    "last {} blocks",
                    16 - crate::model::efficientnet::FROZEN_BLOCKS
                ),
                if bn_frozen { "frozen" } else { "training" }.to_string(),
                format!(
                    "; {images_per_step} images a step {} {BN_FROZEN_BELOW}{}",
                    if bn_frozen { "<" } else { ">=" },
                    if bn_frozen {
                        ": batch statistics too noisy, ImageNet's kept"
                    } else {
                        ""
                    }
                ),
            ),
        };
        decide(
            "fine-tuning",
            format!(
                "head alone for {}, then the backbone's {trained} \
                 at {BACKBONE_LR_FACTOR}x the lr; batch norm {norm}",
                plural(head_warmup_steps, "step")
            ),
            format!(
                "a tenth of the steps warms the new head up before its gradients reach the \
                 backbone{norm_why}"
            ),
        );
        Finetune {
            backbone_lr_factor: BACKBONE_LR_FACTOR,
            head_warmup_steps,
            bn_frozen,
        }
    });
    Plan {
        arch: arch.clone(),
        lr,
        finetune,
        input_size,
        classes_per_tuple: n,
        images_per_step,
        precision,
        flip,
        flip_tta,
        steps_per_pass,
        stop,
        decisions,
    }
}

/// The validation interval in steps: validation (`val_secs` each) costs at
/// most [`VAL_SHARE`] of the time of its interval of steps (`step_secs`
/// each), rounded up to a multiple of 10, at least 10 and at most
/// `max_steps`. (Fashion-MNIST's 6,000 held-out images with flip-TTA take
/// about 12 s against 32 ms a step: every 3,400 steps.)
pub fn val_interval(val_secs: f64, step_secs: f64, max_steps: usize) -> usize {
    let need = if step_secs > 0.0 && val_secs.is_finite() {
        (val_secs * (1.0 - VAL_SHARE) / VAL_SHARE / step_secs).ceil()
    } else {
        10.0
    };
    let n = (need.min(1e9) as usize).div_ceil(10) * 10;
    n.clamp(10, max_steps.max(10))
}

pub use likeness_app::settings::parse_duration;

#[cfg(test)]
mod tests {
    use super::*;

    /// The reason the plan gives for `setting`.
    fn reason<'a>(p: &'a Plan, setting: &str) -> &'a str {
        &p.decisions
            .iter()
            .find(|d| d.setting == setting)
            .unwrap()
            .why
    }

    fn asked() -> Asked {
        Asked {
            tuples: 2,
            patience: DEFAULT_PATIENCE,
            ..Default::default()
        }
    }

    fn cpu_bf16() -> Machine {
        Machine {
            cuda: false,
            fast_bf16: Some("avx512_bf16".into()),
        }
    }

    fn shape(train_images: usize, classes: usize, median_side: u32, grey: bool) -> Shape {
        Shape {
            train_images,
            classes,
            median_side,
            grey,
            sided: None,
            held_out: train_images / 10,
            face_chips: FaceChips::NotChecked("a test".into()),
        }
    }

    fn stop_steps(p: &Plan) -> (usize, usize, usize) {
        match p.stop {
            Stop::Patience {
                max_steps,
                min_steps,
                warmup_steps,
                ..
            } => (max_steps, min_steps, warmup_steps),
            Stop::Epochs { .. } => panic!("expected a step budget"),
        }
    }

    #[test]
    fn small_greyscale_images_train_at_their_own_size() {
        // Fashion-MNIST's train split less the 10% held out.
        let p = derive(
            Some(&Arch::Convnet),
            &shape(54_000, 10, 28, true),
            &asked(),
            &cpu_bf16(),
        );
        assert_eq!(p.input_size, 28);
        assert_eq!(p.classes_per_tuple, 10);
        assert_eq!(p.images_per_step, 40);
        assert_eq!(p.precision, Precision::Bf16);
        assert!(p.flip_tta);
        assert_eq!(p.steps_per_pass, 1350);
        // 8 passes = 10,800 steps, capped at 10,000.
        assert_eq!(stop_steps(&p), (10_000, 2_500, 200));
        let why: Vec<&str> = p.decisions.iter().map(|d| d.setting.as_str()).collect();
        for s in [
            "input size",
            "classes per tuple",
            "images per step",
            "precision",
            "max steps",
        ] {
            assert!(why.contains(&s), "{s} missing from {why:?}");
        }
    }

    #[test]
    fn tiny_images_are_upscaled_to_20_px_and_get_the_minimum_steps() {
        // sklearn's 8x8 digits: 1,617 training images in 10 classes.
        let p = derive(
            Some(&Arch::Convnet),
            &shape(1_617, 10, 8, true),
            &asked(),
            &cpu_bf16(),
        );
        assert_eq!(p.input_size, 20);
        // 8 passes = 324 steps: raised to the minimum.
        assert_eq!(stop_steps(&p), (500, 125, 10));
        // An odd side rounds up to a multiple of 4; large ones stop at 64.
        let p = derive(
            Some(&Arch::Convnet),
            &shape(1_000, 10, 37, false),
            &asked(),
            &cpu_bf16(),
        );
        assert_eq!(p.input_size, 40);
        let p = derive(
            Some(&Arch::Convnet),
            &shape(1_000, 10, 500, false),
            &asked(),
            &cpu_bf16(),
        );
        assert_eq!(p.input_size, 64);
    }

    #[test]
    fn rgb_faces_on_resnet18_run_at_112_px() {
        // The demo's johns split: 40 crops of 5 people, 150 px.
        let p = derive(
            Some(&Arch::Resnet18),
            &shape(40, 5, 150, false),
            &asked(),
            &cpu_bf16(),
        );
        assert_eq!(p.input_size, 112);
        assert_eq!(p.classes_per_tuple, 5);
        assert_eq!(p.images_per_step, 20);
        assert_eq!(p.steps_per_pass, 2);
        assert_eq!(stop_steps(&p).0, MIN_PLANNED_STEPS);
    }

    #[test]
    fn many_classes_take_32_per_tuple() {
        let p = derive(
            Some(&Arch::Convnet),
            &shape(200_000, 1_000, 64, false),
            &asked(),
            &cpu_bf16(),
        );
        assert_eq!(p.classes_per_tuple, 32);
        assert_eq!(p.images_per_step, 128);
        assert_eq!(stop_steps(&p).0, MAX_PLANNED_STEPS);
    }

    #[test]
    fn precision_follows_the_cpu_and_the_device() {
        let s = shape(1_000, 10, 28, true);
        // Fine-tuning the pretrained backbone: fp32 even with fast bf16.
        let colour = shape(40, 5, 150, false);
        let p = derive(None, &colour, &asked(), &cpu_bf16());
        assert_eq!(p.arch, Arch::EfficientnetLite0);
        assert_eq!(p.precision, Precision::Fp32);
        assert!(reason(&p, "precision").contains("fine-tuning"));
        let plain = Machine::default();
        assert_eq!(
            derive(Some(&Arch::Convnet), &s, &asked(), &plain).precision,
            Precision::Fp32
        );
        let cuda = Machine {
            cuda: true,
            fast_bf16: Some("amx_bf16".into()),
        };
        assert_eq!(
            derive(Some(&Arch::Convnet), &s, &asked(), &cuda).precision,
            Precision::Fp32
        );
        let mut a = asked();
        a.precision = Some(Precision::Bf16);
        assert_eq!(
            derive(Some(&Arch::Convnet), &s, &a, &plain).precision,
            Precision::Bf16
        );
    }

    #[test]
    fn flags_win_over_derived_values() {
        let mut a = asked();
        a.input_size = Some(32);
        a.classes_per_tuple = Some(4);
        a.epochs = Some(3);
        a.flip = Some(false);
        let p = derive(
            Some(&Arch::Convnet),
            &shape(800, 10, 28, true),
            &a,
            &cpu_bf16(),
        );
        assert_eq!(p.input_size, 32);
        assert_eq!(p.images_per_step, 16);
        assert!(!p.flip, "--no-flip");
        assert!(!p.flip_tta, "--no-flip turns test-time flip off");
        assert_eq!(
            p.stop,
            Stop::Epochs {
                epochs: 3,
                steps_per_epoch: 50
            }
        );
        a.epochs = None;
        a.max_steps = Some(300);
        a.min_steps = Some(1_000);
        let p = derive(
            Some(&Arch::Convnet),
            &shape(800, 10, 28, true),
            &a,
            &cpu_bf16(),
        );
        assert_eq!(stop_steps(&p), (300, 300, 6));
    }

    #[test]
    fn aligned_face_chips_choose_dlibs_descriptor() {
        let mut s = shape(40, 5, 150, false);
        s.face_chips = FaceChips::Counted {
            chips: 19,
            sampled: 20,
        };
        let p = derive(None, &s, &asked(), &cpu_bf16());
        assert_eq!(p.arch, Arch::DlibResnet);
        assert!(reason(&p, "arch").contains("19 of 20"));
        assert_eq!(p.input_size, 150);
        assert_eq!(p.precision, Precision::Fp32);
        assert!(p.finetune.is_some());
        // Too few chips, another input size, or grey: not dlib's.
        s.face_chips = FaceChips::Counted {
            chips: 15,
            sampled: 20,
        };
        let p = derive(None, &s, &asked(), &cpu_bf16());
        assert_eq!(p.arch, Arch::EfficientnetLite0);
        s.face_chips = FaceChips::Counted {
            chips: 20,
            sampled: 20,
        };
        let mut a = asked();
        a.input_size = Some(96);
        assert_eq!(
            derive(None, &s, &a, &cpu_bf16()).arch,
            Arch::EfficientnetLite0
        );
        s.grey = true;
        assert_eq!(derive(None, &s, &asked(), &cpu_bf16()).arch, Arch::Convnet);
    }

    #[test]
    fn classes_that_differ_by_side_turn_flips_off() {
        let regions = ["left_eye", "Right_Eye", "nose", "mouth"];
        assert_eq!(
            sided_pair(&regions),
            Some(("left_eye".to_string(), "Right_Eye".to_string()))
        );
        assert_eq!(sided_pair(&["left", "up", "down"]), None, "no partner");
        assert_eq!(sided_pair(&["cheek", "under_eye"]), None);
        let mut s = shape(240, 6, 40, false);
        s.sided = sided_pair(&regions);
        let p = derive(None, &s, &asked(), &cpu_bf16());
        assert_eq!(p.arch, Arch::Convnet, "sided classes: the convnet");
        let why = reason(&p, "arch");
        assert!(why.contains("mirror"), "{why}");
        assert!(!p.flip && !p.flip_tta, "sided classes: no flips");
        let why = reason(&p, "flip");
        assert!(
            why.contains("left_eye") && why.contains("Right_Eye"),
            "{why}"
        );
        // An explicit --flip wins; unsided classes keep the default flips.
        let mut a = asked();
        a.flip = Some(true);
        let p = derive(Some(&Arch::Convnet), &s, &a, &cpu_bf16());
        assert!(p.flip && p.flip_tta);
        let p = derive(
            Some(&Arch::Convnet),
            &shape(240, 6, 40, false),
            &asked(),
            &cpu_bf16(),
        );
        assert!(p.flip && p.flip_tta);
    }

    #[test]
    fn small_colour_sets_fine_tune_the_pretrained_backbone() {
        // The demo's johns split less the held-out 10: 30 crops of 150 px.
        let p = derive(None, &shape(30, 5, 150, false), &asked(), &cpu_bf16());
        assert_eq!(p.arch, Arch::EfficientnetLite0);
        assert_eq!(p.input_size, 160);
        assert_eq!(p.lr, PRETRAINED_LR);
        let ft = p.finetune.expect("fine-tuning settings");
        assert!(ft.bn_frozen, "20 images a step: batch norm frozen");
        assert_eq!(ft.backbone_lr_factor, BACKBONE_LR_FACTOR);
        assert_eq!(stop_steps(&p).0, PRETRAINED_MIN_STEPS);
        assert_eq!(ft.head_warmup_steps, PRETRAINED_MIN_STEPS / 10);
        let why: Vec<&str> = p.decisions.iter().map(|d| d.setting.as_str()).collect();
        for s in ["arch", "lr", "fine-tuning"] {
            assert!(why.contains(&s), "{s} missing from {why:?}");
        }
        // Region crops of ~40 px run at 96; large images at the native 224.
        assert_eq!(
            derive(None, &shape(240, 6, 40, false), &asked(), &cpu_bf16()).input_size,
            96
        );
        assert_eq!(
            derive(None, &shape(240, 6, 500, false), &asked(), &cpu_bf16()).input_size,
            224
        );
        // A big batch trains batch norm.
        let mut a = asked();
        a.classes_per_tuple = Some(32);
        let p = derive(None, &shape(2_000, 40, 64, false), &a, &cpu_bf16());
        assert!(!p.finetune.unwrap().bn_frozen);
    }

    #[test]
    fn grey_tiny_or_large_sets_keep_the_convnet() {
        for (s, says) in [
            (shape(54_000, 10, 28, true), "grey"),
            (shape(1_000, 10, 16, false), "below"),
            (shape(50_000, 10, 64, false), "over"),
        ] {
            let p = derive(None, &s, &asked(), &cpu_bf16());
            assert_eq!(p.arch, Arch::Convnet, "{s:?}");
            assert_eq!(p.lr, LR);
            assert!(p.finetune.is_none());
            let why = reason(&p, "arch");
            assert!(why.contains(says), "{why}");
        }
        // --arch and --lr win.
        let mut a = asked();
        a.arch = Some(Arch::Convnet);
        a.lr = Some(0.01);
        let p = derive(None, &shape(30, 5, 150, false), &a, &cpu_bf16());
        assert_eq!((p.arch, p.lr), (Arch::Convnet, 0.01));
        a.arch = Some(Arch::EfficientnetLite0);
        let p = derive(None, &shape(54_000, 10, 28, true), &a, &cpu_bf16());
        assert_eq!(p.arch, Arch::EfficientnetLite0);
        assert!(p.finetune.is_some());
    }

    #[test]
    fn tiny_classes_hold_nothing_out_and_train_to_the_end() {
        // The demo's johns split: 8 crops a person. A tenth of 8 rounds to
        // 1, below the 2 a query needs: nothing held out.
        let (v, why) = held_out_split(&[8; 5], false);
        assert_eq!(v, ValSplit::None);
        assert!(why.contains("8 images in the median class"), "{why}");
        // One image a class: one image, not "1 images".
        let (_, why) = held_out_split(&[1, 1, 3], false);
        assert!(why.starts_with("1 image in the median class"), "{why}");
        // 14 is the largest median class that holds nothing out (a tenth
        // rounds to 1), 15 the smallest that holds out (2).
        assert_eq!(held_out_split(&[14, 14, 30], false).0, ValSplit::None);
        assert_eq!(
            held_out_split(&[15, 15, 3], false).0,
            ValSplit::Images(VAL_FRACTION)
        );
        // The region catalogue (40 a region), the swell set's score bins,
        // Fashion-MNIST (6,000 a class): a tenth validates, as before.
        for sizes in [vec![40; 6], vec![1_056; 5], vec![6_000; 10]] {
            assert_eq!(
                held_out_split(&sizes, false).0,
                ValSplit::Images(VAL_FRACTION),
                "{sizes:?}"
            );
        }
        // --val-data validates on itself; empty classes do not count.
        assert_eq!(held_out_split(&[40; 6], true).0, ValSplit::None);
        assert_eq!(
            held_out_split(&[0, 0, 0, 20, 20], false).0,
            ValSplit::Images(VAL_FRACTION)
        );
        // Nothing held out: the plan runs to its last step and says why.
        let mut s = shape(40, 5, 150, false);
        s.held_out = 0;
        let p = derive(None, &s, &asked(), &cpu_bf16());
        assert_eq!(stop_steps(&p).0, PRETRAINED_MIN_STEPS);
        let why = reason(&p, "stop");
        assert!(why.contains("nothing held out"), "{why}");
        let held = derive(None, &shape(40, 5, 150, false), &asked(), &cpu_bf16());
        assert!(reason(&held, "stop").contains("--patience"));
    }

    #[test]
    fn validation_costs_at_most_a_tenth_of_the_time() {
        // 8 s to validate, 40 ms a step: 1,800 steps between validations.
        assert_eq!(val_interval(8.0, 0.04, 100_000), 1_800);
        // At most the whole budget: one validation, at the end.
        assert_eq!(val_interval(8.0, 0.04, 1_000), 1_000);
        let n = val_interval(8.0, 0.04, 100_000) as f64;
        assert!(8.0 / (8.0 + n * 0.04) <= VAL_SHARE + 1e-9);
        // Cheap validation: every 10 steps at least.
        assert_eq!(val_interval(0.01, 1.0, 500), 10);
        assert_eq!(val_interval(f64::NAN, 1.0, 500), 10);
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("300"), Ok(300.0));
        assert_eq!(parse_duration("90s"), Ok(90.0));
        assert_eq!(parse_duration("5m"), Ok(300.0));
        assert_eq!(parse_duration("1.5h"), Ok(5400.0));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-3m").is_err());
        assert!(parse_duration("0").is_err());
    }
}
