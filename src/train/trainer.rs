//! [`Trainer`]: the network, its optimizer and the model card of one
//! training, from their construction to the export. The phases live by
//! concept: [`super::resume`], [`super::validate`], [`super::steps`],
//! [`super::finish`].
use std::time::Instant;

use tch::Device;

use super::adam::Adam;
use super::output::{EpochProgress, ModelCard, OutDir};
use super::sampler::Sampler;
use super::schedule::Schedule;
use super::score::ScoreHead;
use super::settings::Settings;
use super::split::Data;
use super::TrainConfig;
use crate::error::Result;
use crate::model::Net;

/// What a training builds and updates.
pub(super) struct Trainer<'a> {
    pub cfg: &'a TrainConfig,
    pub data: &'a Data,
    pub settings: &'a Settings,
    pub sampler: &'a Sampler,
    pub out: &'a OutDir,
    pub device: Device,
    pub net: Net,
    pub score: ScoreHead,
    pub opt: Adam,
    pub card: ModelCard,
    pub schedule: Schedule,
    /// When this run started, and the seconds of the runs it resumes.
    pub started: Instant,
    pub spent_before: f64,
    /// A pretrained backbone's frozen layers on each (item, mirrored) seen,
    /// where the input is a function of those (see [`Net::trunk`]).
    pub trunk_cache: std::collections::HashMap<(usize, bool), tch::Tensor>,
    /// The frozen layers' output on the held-out images, by batch (and on
    /// their mirror images, with test-time flip), from the first validation.
    pub val_trunk: Vec<(tch::Tensor, Option<tch::Tensor>)>,
}

/// Where the steps start: the global step and, when resumed within an
/// interval, how far that interval had got.
#[derive(Default)]
pub(super) struct Start {
    pub step: usize,
    pub partial: EpochProgress,
}

impl<'a> Trainer<'a> {
    /// Builds the network (and the score read-out) from `cfg.seed`, its
    /// optimizer, the model card and the schedule.
    pub(super) fn build(
        cfg: &'a TrainConfig,
        data: &'a Data,
        settings: &'a Settings,
        sampler: &'a Sampler,
        out: &'a OutDir,
        device: Device,
        started: Instant,
    ) -> Result<Trainer<'a>> {
        tch::manual_seed(cfg.seed as i64);
        if device.is_cuda() {
            // Every step has the same shapes: let cuDNN pick its fastest kernels.
            tch::Cuda::cudnn_set_benchmark(true);
        }
        let mut net = Net::new(&settings.spec, device)?;
        let mut opt_scale = None;
        if let Some(ft) = &settings.plan.finetune {
            // The ImageNet weights, then the frozen layers out of the optimizer.
            net.load_pretrained()?;
            net.bn_frozen = ft.bn_frozen;
            opt_scale = Some(ft.backbone_lr_factor);
        }
        let score = ScoreHead::new(cfg, &net, settings.spec.dim, data)?;
        let mut card = settings.card(cfg, data, device);
        card.score_norm = score.norm;
        card.score_domain = score.domain.clone();
        let mut opt = Adam::new(&net.vs, settings.plan.lr, cfg.weight_decay);
        if let Some(f) = opt_scale {
            opt.set_scale(Net::is_backbone, f);
        }
        let schedule = Schedule::new(cfg, &settings.plan);
        card.steps_per_epoch = schedule.steps;
        Ok(Trainer {
            cfg,
            data,
            settings,
            sampler,
            out,
            device,
            net,
            score,
            opt,
            card,
            schedule,
            started,
            spent_before: 0.0,
            trunk_cache: Default::default(),
            val_trunk: Vec::new(),
        })
    }

    /// The training's seconds at `now`, resumed runs included.
    pub(super) fn spent(&self, now: Instant) -> f64 {
        self.spent_before + now.duration_since(self.started).as_secs_f64()
    }
}
