//! The steps of a training: how many, the learning rate at each, and where
//! validation intervals end. With `--epochs` an interval is an epoch; without,
//! a [`Budget`] of steps whose validation interval is measured on the first
//! steps and which stops early once Recall@1 stops improving.
use std::time::Instant;

use super::defaults::{self, Plan};
use super::output::{ModelCard, RunInfo};
use super::TrainConfig;

/// The schedule an argument names (`--lr-schedule`), defined with the arguments.
pub use likeness_app::settings::LrSchedule;

/// Where the loop stands and what it has measured, without `--epochs`.
pub(super) struct Budget {
    pub max_steps: usize,
    pub min_steps: usize,
    pub warmup: usize,
    pub patience: usize,
    /// Steps between validations, once known.
    pub interval: Option<usize>,
    /// The step the learning-rate schedule ends at.
    pub horizon: usize,
    pub run: RunInfo,
    /// When the step timing began (after this run's second step).
    calib: Option<Instant>,
}

/// The steps of one training.
pub(super) struct Schedule {
    /// The steps of an epoch (the sampler's key).
    pub steps: usize,
    /// All steps.
    pub total: usize,
    /// Without `--epochs`.
    pub budget: Option<Budget>,
    /// The peak learning rate (the plan's).
    pub lr: f64,
}

impl Schedule {
    pub(super) fn new(cfg: &TrainConfig, plan: &Plan) -> Schedule {
        let (steps, total, budget) = match plan.stop {
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
                    run: RunInfo {
                        horizon: max_steps,
                        ..Default::default()
                    },
                    calib: None,
                }),
            ),
        };
        Schedule {
            steps,
            total,
            budget,
            lr: plan.lr,
        }
    }

    /// Takes up a checkpoint's position (`epoch`, `step`) and, with a
    /// budget, what it had measured; returns the global step to go on from.
    pub(super) fn resume(&mut self, epoch: usize, step: usize, run: Option<RunInfo>) -> usize {
        match (&mut self.budget, run) {
            (Some(b), Some(run)) => {
                if run.val_interval > 0 {
                    b.interval = Some(run.val_interval);
                }
                b.horizon = run.horizon;
                b.run = run;
                step
            }
            _ => epoch * self.steps + step,
        }
    }

    /// Fixes the validation interval where it does not wait for the step
    /// timing: no held-out set, or `--val-steps`.
    pub(super) fn settle_interval(&mut self, cfg: &TrainConfig, no_val: bool) {
        if let Some(b) = &mut self.budget {
            if b.interval.is_none() && no_val {
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
    }

    /// The learning rate at global step `g`.
    pub(super) fn lr(&self, cfg: &TrainConfig, g: usize) -> f64 {
        match &self.budget {
            None => cfg.lr_schedule.at(self.lr, g, self.total),
            Some(b) if g < b.warmup => self.lr * (g + 1) as f64 / b.warmup as f64,
            Some(b) => cfg.lr_schedule.at(
                self.lr,
                g - b.warmup,
                b.horizon.saturating_sub(b.warmup).max(1),
            ),
        }
    }

    /// Whether global step `g`, the `interval_steps`-th of its interval,
    /// ends the interval: the end of an epoch, of a validation interval or
    /// of all steps, or the time budget (`over_time`). `spent`: the
    /// training's seconds at `now`.
    pub(super) fn ends_interval(
        &mut self,
        cfg: &TrainConfig,
        g: usize,
        interval_steps: usize,
        over_time: bool,
        now: Instant,
        spent: f64,
    ) -> bool {
        let done = g + 1;
        match &mut self.budget {
            None => g % self.steps + 1 == self.steps || over_time,
            Some(b) => {
                b.calibrate(cfg, interval_steps, done, now, spent);
                over_time
                    || done == self.total
                    || b.interval
                        .is_some_and(|n| interval_steps >= n && done.is_multiple_of(n))
            }
        }
    }
}

impl Budget {
    /// Steps 3-10 of this run time one step; with the validation's time that
    /// sets the interval (and a time budget's horizon).
    fn calibrate(
        &mut self,
        cfg: &TrainConfig,
        interval_steps: usize,
        done: usize,
        now: Instant,
        spent: f64,
    ) {
        if interval_steps == 2 && self.calib.is_none() {
            self.calib = Some(now);
        }
        if interval_steps != 10 || self.run.step_seconds != 0.0 {
            return;
        }
        if let Some(t0) = self.calib {
            self.run.step_seconds = now.duration_since(t0).as_secs_f64() / 8.0;
        }
        if self.interval.is_none() {
            let n =
                defaults::val_interval(self.run.val_seconds, self.run.step_seconds, self.max_steps);
            self.interval = Some(n);
            self.run.val_interval = n;
            self.run.val_interval_why = format!(
                "a validation takes {:.2}s, a step {:.3}s: every {} keeps \
                 validation within 10% of the time",
                self.run.val_seconds,
                self.run.step_seconds,
                likeness_app::plural::plural(n, "step")
            );
            eprintln!(
                "  validation: every {} ({})",
                likeness_app::plural::plural(n, "step"),
                self.run.val_interval_why
            );
        }
        if let Some(t) = cfg.time_budget {
            let per = self.run.step_seconds * (1.0 + defaults::VAL_SHARE);
            let fit = done + ((t - spent).max(0.0) / per) as usize;
            if fit < self.horizon {
                self.horizon = fit.max(self.warmup + 1);
                self.run.horizon = self.horizon;
                eprintln!(
                    "  time budget {t:.0}s: the learning rate ends at step {} \
                     (about {per:.3}s a step)",
                    self.horizon
                );
            }
        }
    }

    /// Early stopping after `done` steps: `patience` validations since the
    /// best one, and a tenth of the steps, since the interval depends on the
    /// machine's speed and the stopping point should not (much). Returns why.
    pub(super) fn early_stop(&self, card: &ModelCard, done: usize) -> Option<String> {
        let since = card
            .epochs
            .iter()
            .filter(|e| e.epoch > card.best_epoch && e.validation.is_some())
            .count();
        let best_step = card.best().and_then(|e| e.step).unwrap_or(0);
        if done >= self.min_steps
            && since >= self.patience
            && done - best_step >= self.max_steps / 10
        {
            Some(format!(
                "early stop: no better Recall@1 in {} since step {best_step}",
                likeness_app::plural::plural(since, "validation")
            ))
        } else {
            None
        }
    }
}
