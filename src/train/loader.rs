//! The background loader: decodes and augments step g+1 on rayon while step
//! g trains. A step's batch depends on its (epoch, step) key only, so a
//! resumed run sees the same batches.
use std::sync::mpsc;
use std::thread::JoinHandle;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::sampler::Sampler;
use super::schedule::Schedule;
use super::score;
use super::settings::Settings;
use super::split::Data;
use super::TrainConfig;
use crate::error::Result;
use crate::transform::{self, Augment};

/// One prepared step from the background loader.
pub(super) struct Prepared {
    pub epoch: usize,
    pub step: usize,
    /// Inputs of anchors (first half) then positives, `2·T·C` images.
    pub input: Vec<f32>,
    pub labels: Vec<i64>,
    /// The dataset items of `input`, in its order.
    pub items: Vec<usize>,
    /// Whether each image was mirrored, where that is all the augmentation
    /// did (the input is then a function of item and flip; see
    /// [`transform::flipped`]).
    pub flips: Option<Vec<bool>>,
    /// The items' standardised scores, in the order of `input` (empty
    /// without the score read-out).
    pub scores: Vec<f32>,
}

/// The loader thread and the steps it prepares, two ahead at most.
pub(super) struct Loader {
    pub rx: mpsc::Receiver<Result<Prepared>>,
    thread: JoinHandle<()>,
}

impl Loader {
    /// Starts preparing the steps from global step `start` to the last.
    /// `score_norm`: [`super::score::ScoreHead::norm`].
    pub(super) fn spawn(
        cfg: &TrainConfig,
        data: &Data,
        sampler: &Sampler,
        settings: &Settings,
        score_norm: Option<super::output::ScoreNorm>,
        schedule: &Schedule,
        start: usize,
    ) -> Loader {
        let (tx, rx) = mpsc::sync_channel::<Result<Prepared>>(2);
        let ds = data.ds.clone();
        let train = data.train.clone();
        let sampler = sampler.clone();
        let spec = settings.spec.clone();
        let aug = Augment {
            flip: settings.plan.flip,
            ..cfg.augment
        };
        let seed = cfg.seed;
        let (steps, total) = (schedule.steps, schedule.total);
        let thread = std::thread::spawn(move || {
            for g in start..total {
                let (epoch, step) = (g / steps, g % steps);
                let draw = sampler.draw(epoch, step);
                let items: Vec<usize> = draw
                    .anchors
                    .iter()
                    .chain(&draw.positives)
                    .map(|&i| train[i])
                    .collect();
                let scores = score::standardised(score_norm, &ds, &items);
                let mut rng =
                    ChaCha8Rng::seed_from_u64(seed ^ ((epoch as u64) << 32 | step as u64));
                let seeds: Vec<u64> = (0..items.len()).map(|_| rng.random()).collect();
                let aug = (aug != Augment::NONE).then_some(&aug);
                // Each image becomes its input on the thread that decoded
                // it, with its own draws: a step of 32 whole 4000×3000
                // photos held all 32 decoded (1.15 GB) before any became
                // input.
                let one = |pos: usize, s: crate::data::Sample| {
                    transform::batch_input(&[&s.image], &spec, aug, &seeds[pos..=pos])
                };
                let inputs: Result<Vec<Vec<f32>>> =
                    ds.load_each_at(&items, one).into_iter().collect();
                let prepared = inputs.map(|inputs| {
                    let flips = seeds.iter().map(|&s| transform::flipped(aug, s)).collect();
                    Prepared {
                        epoch,
                        step,
                        input: inputs.concat(),
                        labels: draw.labels,
                        items: items.clone(),
                        flips,
                        scores,
                    }
                });
                if tx.send(prepared).is_err() {
                    return;
                }
            }
        });
        Loader { rx, thread }
    }

    /// Stops the loader (it ends at its next step) and waits for it.
    pub(super) fn stop(self) {
        drop(self.rx);
        let _ = self.thread.join();
    }
}
