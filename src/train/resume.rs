//! `--resume`: a training goes on from the checkpoint in its output folder,
//! provided it was started with the same settings.
use super::trainer::{Start, Trainer};
use crate::error::{Error, Result};

/// The most changed settings a refused `--resume` lists.
const SHOWN_CHANGES: usize = 12;

impl Trainer<'_> {
    /// Restores the weights, the optimizer, the intervals so far and where
    /// the steps stood.
    pub(super) fn resume(&mut self) -> Result<Start> {
        let ck = self.out.read_checkpoint()?;
        // The settings first: other ones could not even load the tensors
        // (another --arch), or would continue a different training.
        let changed = ck
            .settings
            .as_ref()
            .map(|before| self.card.settings_changed_since(before))
            .unwrap_or_default();
        if !changed.is_empty() {
            let mut lines: Vec<String> = changed.iter().take(SHOWN_CHANGES).cloned().collect();
            if changed.len() > SHOWN_CHANGES {
                lines.push(format!("and {} more", changed.len() - SHOWN_CHANGES));
            }
            return Err(Error::Invalid(format!(
                "--resume: the training in {} has other settings than this command \
                 (checkpoint → this run):\n  {}\nrerun it with the checkpoint's settings (the \
                 interrupted command plus --resume), or train these settings into a new --out \
                 (or start over in this one with --force instead of --resume)",
                self.cfg.out.display(),
                lines.join("\n  ")
            )));
        }
        self.out
            .restore_checkpoint(&ck, &mut self.net.vs, &mut self.opt)?;
        // The steps' seconds go on from the earlier runs' (they counted only
        // the resumed part of the training).
        self.card.train_seconds = ck.train_seconds();
        self.card.epochs = ck.epochs;
        self.card.best_epoch = ck.best_epoch;
        self.card.baselines = ck.baselines;
        self.spent_before = ck.spent_seconds;
        let step = self.schedule.resume(ck.epoch, ck.step, ck.run);
        Ok(Start {
            step,
            partial: ck.partial,
        })
    }
}
