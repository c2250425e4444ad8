//! Training from grades: with `--score-bins` the classes are quantile bins of
//! the items' scores, and a linear read-out of the standardised score from
//! the embedding (squared error, weighted by `--score-weight`) gives the
//! embedding a direction ordered by grade. It is stored beside the weights as
//! `score_head.*`; embedding ignores it.
use tch::nn::Linear;
use tch::Tensor;

use super::split::Data;
use super::TrainConfig;
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Net;

/// The score read-out of a training, if it has one.
pub(super) struct ScoreHead {
    /// The weight of its loss; 0 without one.
    weight: f64,
    head: Option<Linear>,
    /// Mean and standard deviation of the training scores, with a read-out.
    pub norm: Option<(f32, f32)>,
}

impl ScoreHead {
    /// Adds the read-out's variables to `net` (with `--score-bins` and a
    /// weight above 0).
    pub(super) fn new(cfg: &TrainConfig, net: &Net, dim: u32, data: &Data) -> Result<ScoreHead> {
        let weight = cfg.score_weight();
        let head = (weight > 0.0).then(|| {
            tch::nn::linear(
                net.vs.root() / "score_head",
                i64::from(dim),
                1,
                Default::default(),
            )
        });
        let norm = head
            .as_ref()
            .map(|_| score_standardiser(&data.ds, &data.train))
            .transpose()?;
        if norm.is_some() {
            eprintln!(
                "  score read-out: weight {weight}; a linear layer predicts the standardised \
                 score from the embedding (squared error), so that nearer items have nearer grades; \
                 --score-weight (0 = bins only)"
            );
        }
        Ok(ScoreHead { weight, head, norm })
    }

    /// `loss` plus the read-out's weighted squared error on the embeddings
    /// `emb` of items with the standardised `scores`.
    pub(super) fn add_loss(&self, loss: Tensor, emb: &Tensor, scores: Option<&Tensor>) -> Tensor {
        match (&self.head, scores) {
            (Some(head), Some(target)) => {
                let err = emb.apply(head).squeeze_dim(1) - target;
                loss + err.square().mean(tch::Kind::Float) * self.weight
            }
            _ => loss,
        }
    }
}

/// The standardised scores of `items` (`norm`: [`ScoreHead::norm`]); an item
/// without a score counts as the mean. Empty without a read-out.
pub(super) fn standardised(norm: Option<(f32, f32)>, ds: &Dataset, items: &[usize]) -> Vec<f32> {
    match norm {
        Some((mean, std)) => items
            .iter()
            .map(|&i| (ds.items()[i].score.unwrap_or(mean) - mean) / std)
            .collect(),
        None => Vec::new(),
    }
}

/// Mean and standard deviation of the training items' scores, which the
/// score read-out predicts standardised (so its weight means the same for
/// grades in [0, 1] and in [0, 100]).
fn score_standardiser(ds: &Dataset, train: &[usize]) -> Result<(f32, f32)> {
    let s: Vec<f64> = train
        .iter()
        .filter_map(|&i| ds.items()[i].score.map(f64::from))
        .collect();
    if s.len() < 2 {
        return Err(Error::Invalid(format!(
            "the score read-out needs at least 2 training items with a score, and there are {}; \
             pass --score-weight 0 to train on the bins alone",
            s.len()
        )));
    }
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / s.len() as f64;
    Ok((mean as f32, var.sqrt().max(1e-6) as f32))
}
