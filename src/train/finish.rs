//! The end of a finished training: the best interval's weights (already in
//! `weights.safetensors`) become the exported model, beside `model.json`,
//! the log and the curves; the checkpoint goes.
use std::time::Instant;

use tch::Device;

use super::trainer::Trainer;
use super::Outcome;
use crate::error::Result;
use crate::model::Net;

impl Trainer<'_> {
    /// Writes the model folder; `stopped`: why training ended.
    pub(super) fn finish(mut self, stopped: String) -> Result<Outcome> {
        if let Some(b) = &mut self.schedule.budget {
            b.run.stopped = stopped;
            self.card.run = Some(b.run.clone());
        }
        self.card.total_seconds = self.spent(Instant::now());
        let (out, mut card) = (self.out, self.card);
        // model.pt is traced on the CPU whatever the training device, so that
        // `torch.jit.load` opens it on any machine (a CUDA trace would need a
        // GPU or map_location).
        let mut export = if self.device == Device::Cpu {
            self.net
        } else {
            drop(self.net);
            Net::new(&self.settings.spec, Device::Cpu)?
        };
        out.load_weights(&mut export.vs)?;
        export.set_train(false);
        card.weights_crc32 = out.weights_crc32()?;
        out.export_torchscript(&mut export)?;
        out.write_card(&card)?;
        out.write_log(&card)?;
        out.plot_curves(&card)?;
        out.remove_checkpoint()?;
        Ok(Outcome::Finished(Box::new(card)))
    }
}
