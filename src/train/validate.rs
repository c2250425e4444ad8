//! Validation: the held-out images embedded and searched exactly
//! (leave-one-out), and the baselines a trained network should beat.
use std::time::Instant;

use super::output::{Baselines, Validation};
use super::trainer::Trainer;
use super::TrainConfig;
use crate::data::Dataset;
use crate::error::Result;
use crate::model::{ModelSpec, Net};
use crate::transform;

impl Trainer<'_> {
    /// Validates the network as it stands.
    pub(super) fn validate(&mut self) -> Result<Validation> {
        validate(
            &mut self.net,
            self.data.val_source(),
            &self.data.val,
            self.cfg,
            self.settings.plan.precision,
        )
    }

    /// Baselines on the held-out images; the untrained network's also
    /// times one validation, which sets the validation interval.
    pub(super) fn baselines(&mut self) -> Result<()> {
        let t = Instant::now();
        let untrained = self.validate()?;
        let val_seconds = t.elapsed().as_secs_f64();
        let val = &self.data.val;
        let pixels = pixel_baseline(self.data.val_source(), val, &self.settings.spec)?;
        eprintln!(
            "baselines on the {} held-out images: untrained network Recall@1 {:.4} MAP@R {:.4}, \
             raw pixels Recall@1 {:.4} MAP@R {:.4} ({val_seconds:.1}s a validation)",
            val.len(),
            untrained.recall_1,
            untrained.map_at_r,
            pixels.recall_1,
            pixels.map_at_r
        );
        self.card.baselines = Some(Baselines { untrained, pixels });
        if let Some(b) = &mut self.schedule.budget {
            b.run.val_seconds = val_seconds;
        }
        Ok(())
    }
}

/// Embeds the held-out items with `net` and searches them exactly
/// (leave-one-out, cosine).
fn validate(
    net: &mut Net,
    vds: &Dataset,
    val: &[usize],
    cfg: &TrainConfig,
    precision: crate::runtime::Precision,
) -> Result<Validation> {
    net.set_train(false);
    // In the training precision, where bf16 runs the forward passes about
    // twice as fast. The index is embedded in fp32 (`likeness index`), so
    // its metrics can differ from these in the third decimal.
    let emb = crate::runtime::with_precision(precision, || {
        crate::embed::embed_items(net, vds, val, cfg.eval_batch, None)
    })?;
    let labels: Vec<i64> = val.iter().map(|&i| vds.items()[i].label as i64).collect();
    let m = likeness_index::metrics::evaluate(
        &emb,
        &labels,
        None,
        cfg.dim as usize,
        likeness_index::Metric::Cosine,
        &val_ks(val.len()),
    )?;
    Ok(Validation::from_metrics(&m, val.len()))
}

/// Leave-one-out ranks the other `n - 1` images: a K above that is the same
/// as K = n - 1 (see [`Validation`]).
fn val_ks(n: usize) -> Vec<usize> {
    let mut ks = [1, 2, 4, 8].map(|k: usize| k.min(n - 1)).to_vec();
    ks.dedup();
    ks
}

/// The raw-pixel baseline: the network's input (normalised, at most 32 px a
/// side, so that 6,000 held-out images search in seconds) compared by L2.
fn pixel_baseline(vds: &Dataset, val: &[usize], spec: &ModelSpec) -> Result<Validation> {
    let mut small = spec.clone();
    small.input_size = spec.input_size.min(32);
    let dim = (small.channels * small.input_size * small.input_size) as usize;
    let mut x = Vec::with_capacity(val.len() * dim);
    for chunk in val.chunks(512) {
        let samples = vds.load_many(chunk)?;
        let images: Vec<_> = samples.iter().map(|s| &s.image).collect();
        x.extend(transform::batch_input(&images, &small, None, &[]));
    }
    let labels: Vec<i64> = val.iter().map(|&i| vds.items()[i].label as i64).collect();
    let m = likeness_index::metrics::evaluate(
        &x,
        &labels,
        None,
        dim,
        likeness_index::Metric::L2,
        &val_ks(val.len()),
    )?;
    Ok(Validation::from_metrics(&m, val.len()))
}
