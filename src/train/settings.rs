//! The settings of a training: what the command line left open is derived
//! from a look at the training images ([`defaults::derive`]) and printed,
//! with why, before anything is trained.
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::Device;

use super::defaults::{self, Machine, Plan, Shape};
use super::output::{self, ModelCard};
use super::split::{Data, ValSplit};
use super::TrainConfig;
use crate::error::{Error, Result};
use crate::model::{Arch, ModelSpec};
use crate::transform;
use likeness_app::plural::plural;

/// The settings of one training.
pub(super) struct Settings {
    pub plan: Plan,
    /// What the plan was derived from.
    pub shape: Shape,
    pub machine: Machine,
    pub spec: ModelSpec,
    /// N: the classes of a tuple.
    pub n: usize,
    /// C ≥ N: the classes a tuple draws, N of them mined where C > N.
    pub c: usize,
}

impl Settings {
    /// Derives the settings for `data` on `device` and prints them.
    pub(super) fn derive(cfg: &TrainConfig, data: &Data, device: Device) -> Result<Settings> {
        let (shape, sampled) = measure(cfg, data)?;
        let machine = Machine::detect(device.is_cuda());
        let mut plan = defaults::derive(None, &shape, &cfg.asked(), &machine);
        if let Some(why) = &data.val_why {
            plan.decisions.insert(
                0,
                defaults::Decision {
                    setting: "held out".into(),
                    value: match data.val_split {
                        ValSplit::None if data.val_ds.is_some() => "--val-data".into(),
                        ValSplit::None => "none".into(),
                        ValSplit::Images(f) => format!("images:{f}"),
                        ValSplit::Classes(f) => format!("classes:{f}"),
                    },
                    why: why.clone(),
                },
            );
        }
        if let (Some(asked), Some(edges)) = (cfg.score_bins, &data.score_edges) {
            if edges.len() + 1 < asked {
                plan.decisions.insert(
                    0,
                    defaults::Decision {
                        setting: "score bins".into(),
                        value: format!("{} of the {asked} asked", edges.len() + 1),
                        why: "the scores hold too few distinct values (or too many equal ones) \
                              for more bins of rows"
                            .into(),
                    },
                );
            }
        }
        if let Some((left_out, kept)) = data.unscored.filter(|&(l, _)| l > 0) {
            plan.decisions.insert(
                0,
                defaults::Decision {
                    setting: "graded rows".into(),
                    value: format!("{kept} of {}", kept + left_out),
                    why: format!(
                        "--score-bins learns from rows with a score; the {left_out} without one are left out (embed grades them afterwards)"
                    ),
                },
            );
        }
        if data.scores_unused > 0 {
            // A person who grades rows of regions.csv and trains without
            // --score-bins got a model of the labels with no read-out, and
            // nothing said so until embed wrote no predicted_scores.npy.
            plan.decisions.insert(
                0,
                defaults::Decision {
                    setting: "scores".into(),
                    value: "not learnt".into(),
                    why: format!(
                        "{} of {} {} a score, but without --score-bins the classes are \
                         the labels and the grades are not learnt; pass --score-bins B to learn \
                         them (docs/scores.md)",
                        data.scores_unused,
                        plural(data.ds.len(), "row"),
                        if data.scores_unused == 1 {
                            "has"
                        } else {
                            "have"
                        }
                    ),
                },
            );
        }
        if !data.dropped.is_empty() {
            plan.decisions.insert(
                0,
                defaults::Decision {
                    setting: "dropped classes".into(),
                    value: format!(
                        "{} (--min-per-class {})",
                        data.dropped.len(),
                        cfg.min_per_class
                    ),
                    why: format!(
                        "fewer training images than that: {}; model.json lists them under \
                         dropped_classes",
                        super::split::class_list(&data.dropped)
                    ),
                },
            );
        }
        print(&shape, data.val.len(), &plan);
        let (channels, mean, std) = normalisation(&plan.arch, shape.grey, &sampled);
        let n = plan.classes_per_tuple;
        if n > data.classes {
            return Err(Error::Invalid(format!(
                "--classes-per-tuple {n} is more than the {} training classes",
                data.classes
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
        let spec = ModelSpec {
            arch: plan.arch.clone(),
            input_size: plan.input_size,
            channels,
            mean,
            std,
            dim: cfg.dim,
            width: cfg.width,
            flip_tta: plan.flip_tta,
        };
        Ok(Settings {
            plan,
            shape,
            machine,
            spec,
            n,
            c,
        })
    }

    /// The model card of a training with these settings, before it has
    /// trained.
    pub(super) fn card(&self, cfg: &TrainConfig, data: &Data, device: Device) -> ModelCard {
        let mut card = ModelCard::new(cfg, &self.plan, &self.spec, &data.ds, self.c);
        card.val = data.val_split;
        card.score_bins = data.score_edges.clone();
        card.dropped_classes = data
            .dropped
            .iter()
            .map(|(class, images)| output::DroppedClass {
                class: class.clone(),
                images: *images,
            })
            .collect();
        card.score_weight = cfg.score_bins.map(|_| cfg.score_weight());
        card.device = crate::runtime::describe_device(device);
        card.derivation = Some(output::Derivation {
            train_images: self.shape.train_images,
            classes: self.shape.classes,
            median_side: self.shape.median_side,
            grey: self.shape.grey,
            fast_bf16: self.machine.fast_bf16.clone(),
            stop: self.plan.stop,
            decisions: self.plan.decisions.clone(),
            time_budget_seconds: cfg.time_budget,
        });
        card
    }
}

/// The data's shape from (up to 2,000) training images, and their pixel sums.
fn measure(cfg: &TrainConfig, data: &Data) -> Result<(Shape, Sampled)> {
    let (ds, train) = (&data.ds, &data.train);
    let first = ds.load(train[0])?;
    let grey = matches!(
        first.image.color(),
        image::ColorType::L8 | image::ColorType::L16
    );
    let mut pick = train.clone();
    pick.shuffle(&mut ChaCha8Rng::seed_from_u64(cfg.seed));
    pick.truncate(2000);
    // A few decoded at a time, and only their sizes and pixel sums kept:
    // all 2,000 held at once were 72 GB of 12-megapixel photos.
    let mut sampled = Sampled {
        sides: Vec::with_capacity(pick.len()),
        luma: grey.then(|| transform::ChannelSums::new(1)),
        rgb: transform::ChannelSums::new(3),
    };
    let mut chips = ChipCheck::new(grey);
    for chunk in pick.chunks(MEASURE_AT_ONCE) {
        for s in ds.load_many(chunk)? {
            sampled.sides.push(s.image.width().max(s.image.height()));
            if let Some(l) = &mut sampled.luma {
                l.add(&s.image);
            }
            sampled.rgb.add(&s.image);
            chips.look(&s.image);
        }
    }
    let shape = Shape {
        train_images: train.len(),
        classes: data.classes,
        median_side: median_side(&sampled.sides),
        grey,
        sided: defaults::sided_pair(ds.classes()),
        held_out: data.val.len(),
        face_chips: chips.verdict(),
    };
    Ok((shape, sampled))
}

/// Training images decoded at once while `measure` samples them: enough
/// to decode in parallel, and 0.3 GB of 12-megapixel photos.
const MEASURE_AT_ONCE: usize = 8;

/// What `measure` keeps of its sample: each image's longer side and the
/// pixel sums of the normalisation (grey, when the first image is, and
/// RGB, which resnet18 takes of any images).
struct Sampled {
    sides: Vec<u32>,
    luma: Option<transform::ChannelSums>,
    rgb: transform::ChannelSums,
}

/// How many of the first [`defaults::FACE_CHIP_SAMPLE`] images are dlib's
/// aligned face chips, looked at as they are decoded (colour square images
/// only, and only with the face models at hand).
struct ChipCheck {
    finder: Option<likeness_app::face::FaceFinder>,
    why_not: Option<String>,
    chips: usize,
    sampled: usize,
}

impl ChipCheck {
    fn new(grey: bool) -> Self {
        ChipCheck {
            finder: None,
            why_not: grey.then(|| "grey images".to_string()),
            chips: 0,
            sampled: 0,
        }
    }

    fn look(&mut self, image: &image::DynamicImage) {
        use likeness_app::face::{chip, models, FaceFinder, Landmarks, DEFAULT_MIN_FACE};
        if self.why_not.is_some() || self.sampled == defaults::FACE_CHIP_SAMPLE {
            return;
        }
        if image.width() != image.height() {
            self.why_not = Some("not square".into());
            return;
        }
        if self.finder.is_none() {
            match FaceFinder::open(&models::default_dir(), Landmarks::Dlib5, DEFAULT_MIN_FACE) {
                Ok(f) => self.finder = Some(f),
                Err(e) => {
                    self.why_not = Some(format!("no face models to look for face chips ({e})"));
                    return;
                }
            }
        }
        self.sampled += 1;
        if self
            .finder
            .as_ref()
            .is_some_and(|f| chip::is_chip(f, image))
        {
            self.chips += 1;
        }
    }

    fn verdict(self) -> defaults::FaceChips {
        match self.why_not {
            Some(why) => defaults::FaceChips::NotChecked(why),
            None => defaults::FaceChips::Counted {
                chips: self.chips,
                sampled: self.sampled,
            },
        }
    }
}

/// Channels and per-channel normalisation of `arch`'s input: a pretrained
/// backbone's own (RGB); otherwise the images' channels (RGB for resnet18)
/// and their statistics.
fn normalisation(arch: &Arch, grey: bool, sampled: &Sampled) -> (u32, Vec<f32>, Vec<f32>) {
    match arch {
        Arch::EfficientnetLite0 => {
            use crate::model::efficientnet::{MEAN, STD};
            return (3, vec![MEAN; 3], vec![STD; 3]);
        }
        Arch::DlibResnet => {
            use crate::model::dlib_resnet::{MEAN, STD};
            return (3, MEAN.to_vec(), vec![STD; 3]);
        }
        _ => {}
    }
    let channels = match arch {
        Arch::Resnet18 => 3,
        _ if grey => 1,
        _ => 3,
    };
    let (mean, std) = match (&sampled.luma, channels) {
        (Some(luma), 1) => luma.stats(),
        _ => sampled.rgb.stats(),
    };
    (channels, mean, std)
}

/// The first lines of a training: the data, what was decided, and why.
fn print(shape: &Shape, held_out: usize, plan: &Plan) {
    eprintln!(
        "data: {} ({} held out), {}, median side {} px, {}; decided: \
         input {} px, {} images per step, {}, {}",
        plural(shape.train_images, "training image"),
        held_out,
        plural(shape.classes, "class"),
        shape.median_side,
        if shape.grey { "grey" } else { "colour" },
        plan.input_size,
        plan.images_per_step,
        match plan.stop {
            defaults::Stop::Epochs {
                epochs,
                steps_per_epoch,
            } => plural(epochs * steps_per_epoch, "step"),
            defaults::Stop::Patience { max_steps, .. } => format!("up to {max_steps} steps"),
        },
        defaults::precision_name(plan.precision),
    );
    for d in &plan.decisions {
        eprintln!("  {}: {}; {}", d.setting, d.value, d.why);
    }
}

/// Median of the images' longer sides.
fn median_side(sides: &[u32]) -> u32 {
    let mut sides = sides.to_vec();
    sides.sort_unstable();
    sides.get(sides.len() / 2).copied().unwrap_or(64)
}
