//! The step loop. Each step trains on one prepared batch: the network embeds
//! all `2·N·T` images in one forward pass and the [`super::loss`] is averaged
//! over the tuples. Where an interval ends (an epoch, or a validation
//! interval of a step budget) the network is validated, the best weights are
//! kept and a checkpoint is written; Ctrl-C stops after the current step.
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tch::Tensor;

use super::loader::{Loader, Prepared};
use super::mine::mine;
use super::output::{EpochProgress, EpochRecord};
use super::trainer::{Start, Trainer};
use super::{loss, Outcome, STOP};
use crate::error::{Error, Result};

/// How the step loop ended.
pub(super) enum Ended {
    /// All steps done, the time budget reached or stopped early: why.
    Finished(String),
    /// Stopped by Ctrl-C, with a checkpoint to resume from.
    Interrupted(Outcome),
}

/// The interval in progress: an epoch, or the steps up to a validation.
struct Interval {
    loss_sum: f64,
    steps: usize,
    started: Instant,
}

impl Interval {
    /// A resumed interval goes on from where it stood.
    fn resumed(p: &EpochProgress) -> Interval {
        Interval {
            loss_sum: p.loss_sum,
            steps: p.steps,
            started: Instant::now()
                .checked_sub(Duration::from_secs_f64(p.seconds))
                .unwrap_or_else(Instant::now),
        }
    }

    fn fresh() -> Interval {
        Interval {
            loss_sum: 0.0,
            steps: 0,
            started: Instant::now(),
        }
    }

    fn mean_loss(&self) -> f64 {
        self.loss_sum / self.steps as f64
    }
}

impl Trainer<'_> {
    /// Trains on the loader's steps from `start` until the last, the time
    /// budget, early stopping or Ctrl-C.
    pub(super) fn run(&mut self, loader: Loader, start: Start) -> Result<Ended> {
        let (steps, total) = (self.schedule.steps, self.schedule.total);
        let bar = likeness_app::progress::train_bar(total as u64);
        bar.set_position(start.step as u64);
        let mut best = self.card.best().map(|e| {
            e.validation
                .as_ref()
                .map_or((0.0, 0.0), |v| (v.recall_1, v.map_at_r))
        });
        let mut interval = Interval::resumed(&start.partial);
        let mut stopped = None;
        while let Ok(prepared) = loader.rx.recv() {
            let p = prepared?;
            let g = p.epoch * steps + p.step;
            interval.loss_sum += self.step(&p, g)?;
            interval.steps += 1;
            bar.inc(1);
            bar.set_message(match &self.schedule.budget {
                None => format!(
                    "epoch {}/{} loss {:.4}",
                    p.epoch + 1,
                    total / steps,
                    interval.mean_loss()
                ),
                Some(_) => format!("loss {:.4}", interval.mean_loss()),
            });

            // Where this step ends: an epoch, a validation interval, the budget.
            let done = g + 1;
            let now = Instant::now();
            let over_time = self.cfg.time_budget.is_some_and(|t| self.spent(now) >= t);
            let ends = self.schedule.ends_interval(
                self.cfg,
                g,
                interval.steps,
                over_time,
                now,
                self.spent(now),
            );
            if STOP.load(Ordering::SeqCst) && !ends {
                loader.stop();
                bar.abandon_with_message("stopped");
                return self
                    .interrupt_within(&p, done, &interval)
                    .map(Ended::Interrupted);
            }
            if !ends {
                continue;
            }
            if let Some(why) = self.close_interval(&interval, done, over_time, &mut best, &bar)? {
                stopped = Some(why);
                break;
            }
            let pos = match &self.schedule.budget {
                Some(_) => (self.card.epochs.len(), done),
                None => (p.epoch + 1, 0),
            };
            self.out.save_checkpoint(
                &self.net.vs,
                &self.opt,
                (pos.0, pos.1, Default::default()),
                &self.card,
            )?;
            // model.json only once training has finished (a folder with one is a
            // model the other commands accept); the log shows progress meanwhile.
            self.out.write_log(&self.card)?;
            interval = Interval::fresh();
            if STOP.load(Ordering::SeqCst) {
                loader.stop();
                bar.abandon_with_message("stopped");
                return Ok(Ended::Interrupted(Outcome::Interrupted {
                    epoch: pos.0,
                    step: pos.1,
                    budget: self.schedule.budget.is_some(),
                }));
            }
        }
        loader.stop();
        bar.finish_and_clear();
        Ok(Ended::Finished(
            stopped.unwrap_or_else(|| "all epochs done".into()),
        ))
    }

    /// One optimizer step on the batch of global step `g`; returns its loss.
    fn step(&mut self, p: &Prepared, g: usize) -> Result<f64> {
        let cfg = self.cfg;
        let (n, c, spec) = (self.settings.n, self.settings.c, &self.settings.spec);
        let s = i64::from(spec.input_size);
        let images = (2 * c * cfg.tuples) as i64;
        let x = crate::embed::host_to_device(
            &p.input,
            [images, i64::from(spec.channels), s, s],
            self.device,
        )?;
        let labels = Tensor::from_slice(&p.labels).to_device(self.device);
        let scores =
            (!p.scores.is_empty()).then(|| Tensor::from_slice(&p.scores).to_device(self.device));
        let (x, labels, scores) = if c > n {
            let (x, labels, rows) = mine(
                &self.net,
                &x,
                &labels,
                n,
                c,
                cfg.tuples,
                cfg.seed ^ ((p.epoch as u64) << 32 | p.step as u64),
            )?;
            (x, labels, scores.map(|s| s.index_select(0, &rows)))
        } else {
            (x, labels, scores)
        };
        self.net.set_train(true);
        self.opt.lr = self.schedule.lr(cfg, g);
        // A pretrained backbone: its head trains alone for the first steps.
        let finetune = self.settings.plan.finetune;
        let warm = finetune.is_some_and(|f| g < f.head_warmup_steps);
        if let Some(f) = finetune {
            let scale = if warm { 0.0 } else { f.backbone_lr_factor };
            self.opt.set_scale(crate::model::Net::is_backbone, scale);
        }
        let trunk = match (&p.flips, c == n) {
            (Some(flips), true) => self.cached_trunk(&x, &p.items, flips),
            _ => None,
        };
        let net = &self.net;
        let emb = crate::runtime::with_precision(self.settings.plan.precision, || match &trunk {
            Some(h) => net.forward_from_trunk(h, true, !warm),
            None => net.forward_t(&x, true),
        })
        .to_kind(tch::Kind::Float);
        let tn = (n * cfg.tuples) as i64;
        let loss = loss::loss(
            &cfg.loss,
            &emb.narrow(0, 0, tn),
            &emb.narrow(0, tn, tn),
            &labels,
            cfg.tuples as i64,
        )?;
        let loss = self.score.add_loss(loss, &emb, scores.as_ref());
        self.opt.backward_step(&loss)?;
        let l = loss.double_value(&[]);
        if !l.is_finite() {
            return Err(Error::Invalid(format!(
                "the loss became {l} at step {}; lower --lr or raise --l2-reg",
                g + 1
            )));
        }
        Ok(l)
    }

    /// The output of the frozen layers of a pretrained backbone for the
    /// batch `x` of `items` (mirrored where `flips` says): each (item, flip)
    /// is computed once, the first time it is drawn, and cached; `None`
    /// without such layers.
    fn cached_trunk(&mut self, x: &Tensor, items: &[usize], flips: &[bool]) -> Option<Tensor> {
        let keys: Vec<(usize, bool)> = items.iter().copied().zip(flips.iter().copied()).collect();
        let mut missing: Vec<i64> = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            if !self.trunk_cache.contains_key(k) && !missing.iter().any(|&j| keys[j as usize] == *k)
            {
                missing.push(i as i64);
            }
        }
        if !missing.is_empty() {
            let rows = Tensor::from_slice(&missing).to_device(x.device());
            let h = self.net.trunk(&x.index_select(0, &rows))?;
            for (j, &i) in missing.iter().enumerate() {
                self.trunk_cache
                    .insert(keys[i as usize], h.get(j as i64).copy());
            }
        }
        let rows: Vec<Tensor> = keys
            .iter()
            .map(|k| self.trunk_cache[k].shallow_clone())
            .collect();
        Some(Tensor::stack(&rows, 0))
    }

    /// Ends the interval after `done` steps: records it, validates (after
    /// every `--val-every`-th interval and the last) and keeps the best
    /// weights. Returns why training ends, if it does.
    fn close_interval(
        &mut self,
        interval: &Interval,
        done: usize,
        over_time: bool,
        best: &mut Option<(f64, f64)>,
        bar: &ProgressBar,
    ) -> Result<Option<String>> {
        let cfg = self.cfg;
        let total = self.schedule.total;
        let interval_no = self.card.epochs.len() + 1;
        let no_val = self.data.val.is_empty();
        let secs = interval.started.elapsed().as_secs_f64();
        let mut rec = EpochRecord {
            epoch: interval_no,
            loss: interval.mean_loss(),
            seconds: secs,
            images_per_s: (interval.steps * self.sampler.images_per_step()) as f64 / secs,
            validation: None,
            step: self.schedule.budget.as_ref().map(|_| done),
        };
        let last = done == total || over_time;
        if !no_val && (interval_no.is_multiple_of(cfg.val_every) || last) {
            rec.validation = Some(self.validate()?);
        }
        let r1 = rec.validation.as_ref().map(|v| (v.recall_1, v.map_at_r));
        if bar.is_hidden() {
            eprintln!("{}", rec.summary());
        } else {
            bar.println(rec.summary());
        }
        self.card.epochs.push(rec);
        // Without validation the latest epoch is the best; an epoch skipped
        // by --val-every never replaces a validated one. Ties in Recall@1
        // (a small held-out set saturates it) go to the better MAP@R.
        let improved = match (r1, *best) {
            (Some(r), Some(b)) => r > b,
            (Some(_), None) => true,
            (None, _) => no_val,
        };
        if improved {
            *best = r1;
            self.out.save_weights(&self.net.vs)?;
            self.card.best_epoch = interval_no;
        }
        self.card.train_seconds += secs;
        let stopped = if over_time {
            Some(format!(
                "time budget {:.0}s reached",
                cfg.time_budget.unwrap_or(0.0)
            ))
        } else if done == total {
            Some(match &self.schedule.budget {
                Some(_) => format!("max steps {total} reached"),
                None => "all epochs done".into(),
            })
        } else {
            match &self.schedule.budget {
                Some(b) if !no_val => b.early_stop(&self.card, done),
                _ => None,
            }
        };
        self.card.total_seconds = self.spent(Instant::now());
        if let Some(b) = &mut self.schedule.budget {
            b.run.steps = done;
            self.card.run = Some(b.run.clone());
        }
        Ok(stopped)
    }

    /// Ctrl-C within an interval: a checkpoint that holds how far the
    /// interval had got.
    fn interrupt_within(
        &mut self,
        p: &Prepared,
        done: usize,
        interval: &Interval,
    ) -> Result<Outcome> {
        let progress = EpochProgress {
            loss_sum: interval.loss_sum,
            steps: interval.steps,
            seconds: interval.started.elapsed().as_secs_f64(),
        };
        self.card.total_seconds = self.spent(Instant::now());
        let pos = match &self.schedule.budget {
            Some(b) => {
                self.card.run = Some(b.run.clone());
                (self.card.epochs.len(), done)
            }
            None => (p.epoch, p.step + 1),
        };
        self.out.save_checkpoint(
            &self.net.vs,
            &self.opt,
            (pos.0, pos.1, progress),
            &self.card,
        )?;
        Ok(Outcome::Interrupted {
            epoch: pos.0,
            step: pos.1,
            budget: self.schedule.budget.is_some(),
        })
    }
}
