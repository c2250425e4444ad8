//! `likeness train`: the multi-class N-pair trainer (Sohn, NIPS 2016).
//!
//! One step: the [`sampler`] draws `T` tuples of `N` classes with two images
//! each (optionally mining `N` of `C > N` candidate classes, §3.2 of the
//! paper); a background thread decodes and augments the next step on rayon
//! while this one trains; the network embeds all `2·N·T` images in one
//! forward pass; the [`loss`] is averaged over the tuples. After each epoch
//! (or validation interval of a step budget) the held-out set is embedded and
//! searched exactly (Recall@K, MAP@R) and the best weights are kept.
//!
//! [`train`] runs the phases in order, each in the file of its concept:
//! `config.rs` (what was asked), `split.rs` (which items train and which
//! validate), `settings.rs` (the derived settings, printed), `trainer.rs`
//! (network and optimizer), `score.rs` (the score read-out), `resume.rs`,
//! `validate.rs` (validation and baselines), `schedule.rs` (steps, learning
//! rate, validation intervals, early stopping), `loader.rs`, `mine.rs`,
//! `steps.rs` (the step loop) and `finish.rs` (the model folder).
pub mod adam;
mod config;
pub mod defaults;
mod finish;
mod loader;
pub mod loss;
mod mine;
pub mod output;
mod resume;
pub mod sampler;
mod schedule;
pub mod score;
mod settings;
mod split;
mod steps;
mod trainer;
mod validate;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tch::Device;

use crate::error::Result;
pub use config::{TrainConfig, DEFAULT_SCORE_WEIGHT};
use loader::Loader;
use output::ModelCard;
use sampler::Sampler;
pub use schedule::LrSchedule;
use settings::Settings;
use split::Data;
pub use split::ValSplit;
use steps::Ended;
use trainer::{Start, Trainer};

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

/// Runs a training to completion (or Ctrl-C). Progress goes to a bar on
/// stderr.
pub fn train(cfg: &TrainConfig, device: Device) -> Result<Outcome> {
    cfg.validate()?;
    let started = Instant::now();
    let data = Data::load(cfg)?;
    let settings = Settings::derive(cfg, &data, device)?;
    let sampler = Sampler::new(&data.train_labels, settings.c, cfg.tuples, cfg.seed)?;
    // Only now that the settings hold is the output folder touched.
    let out = output::OutDir::prepare(&cfg.out, cfg.force, cfg.resume)?;
    let mut trainer = Trainer::build(cfg, &data, &settings, &sampler, &out, device, started)?;
    let start = if cfg.resume {
        trainer.resume()?
    } else {
        if !data.val.is_empty() {
            trainer.baselines()?;
        }
        Start::default()
    };
    trainer.schedule.settle_interval(cfg, data.val.is_empty());
    let loader = Loader::spawn(
        cfg,
        &data,
        &sampler,
        &settings,
        trainer.score.norm,
        &trainer.schedule,
        start.step,
    );
    match trainer.run(loader, start)? {
        Ended::Interrupted(outcome) => Ok(outcome),
        Ended::Finished(stopped) => trainer.finish(stopped),
    }
}
