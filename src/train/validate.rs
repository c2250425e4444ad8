//! Validation: the held-out images embedded and searched exactly
//! (leave-one-out), and the baselines a trained network should beat.
use std::time::Instant;

use super::output::{Baselines, Validation};
use super::trainer::Trainer;
use super::TrainConfig;
use crate::data::Dataset;
use crate::error::Result;
use crate::model::{ModelSpec, Net};

impl Trainer<'_> {
    /// Validates the network as it stands.
    pub(super) fn validate(&mut self) -> Result<Validation> {
        if self.net.has_trunk() {
            return self.validate_from_trunk();
        }
        validate(
            &mut self.net,
            self.data.val_source(),
            &self.data.val,
            self.cfg,
            self.cfg.eval_batch_on(self.device),
            self.settings.plan.precision,
        )
    }

    /// Baselines on the held-out images; the untrained network's also
    /// times one validation, which sets the validation interval.
    pub(super) fn baselines(&mut self) -> Result<()> {
        if self.net.has_trunk() {
            // Fills the frozen layers' cache, so that the timing below is
            // that of the validations to come.
            self.validate()?;
        }
        let t = Instant::now();
        let untrained = self.validate()?;
        let val_seconds = t.elapsed().as_secs_f64();
        let val = &self.data.val;
        let pixels = pixel_baseline(self.data.val_source(), val, &self.settings.spec)?;
        eprintln!(
            "baselines on the {}: untrained network Recall@1 {:.4} MAP@R {:.4}, \
             raw pixels Recall@1 {:.4} MAP@R {:.4} ({val_seconds:.1}s a validation)",
            likeness_app::plural::plural(val.len(), "held-out image"),
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

impl Trainer<'_> {
    /// [`validate`] with a pretrained backbone: the frozen layers' output on
    /// the held-out images (and their mirror images, for test-time flip)
    /// never changes, so it is computed at the first validation and kept;
    /// each validation runs the top of the network only (on the synthetic
    /// swell set's 528 held-out regions, 2 cores: 121 s a validation through
    /// the whole network while others compiled).
    fn validate_from_trunk(&mut self) -> Result<Validation> {
        self.net.set_train(false);
        let (vds, val) = (self.data.val_source(), &self.data.val);
        if self.val_trunk.is_empty() {
            let spec = &self.net.spec;
            let s = i64::from(spec.input_size);
            for chunk in val.chunks(self.cfg.eval_batch_on(self.device)) {
                let input = crate::embed::batch_inputs(vds, chunk, spec)?;
                let x = crate::embed::host_to_device(
                    &input,
                    [chunk.len() as i64, i64::from(spec.channels), s, s],
                    self.device,
                )?;
                let h = self.net.trunk(&x).unwrap_or_else(|| x.shallow_clone());
                let f = spec
                    .flip_tta
                    .then(|| self.net.trunk(&x.flip([3i64].as_slice())))
                    .flatten();
                self.val_trunk.push((h, f));
            }
        }
        let net = &self.net;
        let mut emb = Vec::with_capacity(val.len() * self.cfg.dim as usize);
        for (h, f) in &self.val_trunk {
            let e = crate::runtime::with_precision(self.settings.plan.precision, || {
                tch::no_grad(|| net.embed_from_trunk(h, f.as_ref()))
            })
            .to_device(tch::Device::Cpu)
            .to_kind(tch::Kind::Float)
            .contiguous()
            .view([-1]);
            emb.extend(Vec::<f32>::try_from(&e)?);
        }
        let labels: Vec<i64> = val.iter().map(|&i| vds.items()[i].label as i64).collect();
        let m = likeness_index::metrics::evaluate(
            &emb,
            &labels,
            None,
            self.cfg.dim as usize,
            likeness_index::Metric::Cosine,
            &val_ks(val.len()),
        )?;
        Ok(Validation::from_metrics(&m, val.len()))
    }
}

/// Embeds the held-out items with `net` and searches them exactly
/// (leave-one-out, cosine).
fn validate(
    net: &mut Net,
    vds: &Dataset,
    val: &[usize],
    cfg: &TrainConfig,
    batch: usize,
    precision: crate::runtime::Precision,
) -> Result<Validation> {
    net.set_train(false);
    // In the training precision, where bf16 runs the forward passes about
    // twice as fast. The index is embedded in fp32 (`likeness index`), so
    // its metrics can differ from these in the third decimal.
    let emb = crate::runtime::with_precision(precision, || {
        crate::embed::embed_items(net, vds, val, batch, None)
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
        x.extend(crate::embed::batch_inputs(vds, chunk, &small)?);
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
