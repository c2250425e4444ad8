//! Training from grades: with `--score-bins` the classes are quantile bins of
//! the items' scores, and a linear read-out of the standardised score from
//! the embedding (squared error, weighted by `--score-weight`) gives the
//! embedding a direction ordered by grade. It is stored beside the weights as
//! `score_head.*`; embedding ignores it.
use std::path::Path;

use tch::nn::Linear;
use tch::{Device, Kind, Tensor};

use super::output::{ModelCard, ScoreDomain, ScoreNorm};
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
    pub norm: Option<ScoreNorm>,
    /// What it learns from, with a read-out.
    pub domain: Option<ScoreDomain>,
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
        let domain = head.as_ref().map(|_| score_domain(data));
        if norm.is_some() {
            eprintln!(
                "  score read-out: weight {weight}; a linear layer predicts the standardised \
                 score from the embedding (squared error), so that nearer items have nearer grades; \
                 --score-weight (0 = bins only)"
            );
        }
        Ok(ScoreHead {
            weight,
            head,
            norm,
            domain,
        })
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
pub(super) fn standardised(norm: Option<ScoreNorm>, ds: &Dataset, items: &[usize]) -> Vec<f32> {
    match norm {
        Some(ScoreNorm { mean, std }) => items
            .iter()
            .map(|&i| (ds.items()[i].score.unwrap_or(mean) - mean) / std)
            .collect(),
        None => Vec::new(),
    }
}

/// Mean and standard deviation of the training items' scores, which the
/// score read-out predicts standardised (so its weight means the same for
/// grades in [0, 1] and in [0, 100]).
fn score_standardiser(ds: &Dataset, train: &[usize]) -> Result<ScoreNorm> {
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
    Ok(ScoreNorm {
        mean: mean as f32,
        std: var.sqrt().max(1e-6) as f32,
    })
}

/// The labels and the score range of the training items (those with a
/// score: the only ones the read-out learns from).
fn score_domain(data: &Data) -> ScoreDomain {
    let scores = data.train.iter().filter_map(|&i| data.ds.items()[i].score);
    let (min, max) = scores.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
        (lo.min(s), hi.max(s))
    });
    ScoreDomain {
        labels: data.score_labels.clone(),
        min,
        max,
    }
}

/// A trained model's score read-out, for prediction: `score_head.*` from
/// the model's weights and the standardisation `model.json` records.
pub struct Readout {
    /// `[dim, 1]`: the linear layer's weight, transposed.
    weight: Tensor,
    /// `[1]`.
    bias: Tensor,
    norm: ScoreNorm,
    /// What it learnt from, where the card records it.
    pub domain: Option<ScoreDomain>,
}

/// Why a model has no usable read-out: what [`Readout::load`] says instead.
#[derive(Debug, Clone, PartialEq)]
pub enum NoReadout {
    /// Trained without `--score-bins`, or with `--score-weight 0`.
    NotTrained,
    /// Its `model.json` predates the recorded standardisation.
    NoNorm,
}

impl Readout {
    /// The read-out of the model folder `dir` whose card is `card`, on
    /// `device`. A card that records one whose weights lack it is an error.
    pub fn load(
        dir: &Path,
        card: &ModelCard,
        device: Device,
    ) -> Result<std::result::Result<Readout, NoReadout>> {
        if card.score_weight.unwrap_or(0.0) <= 0.0 {
            return Ok(Err(NoReadout::NotTrained));
        }
        let Some(norm) = card.score_norm else {
            return Ok(Err(NoReadout::NoNorm));
        };
        let path = dir.join("weights.safetensors");
        let tensors = Tensor::read_safetensors(&path)?;
        let find = |name: &str| {
            tensors
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.to_kind(Kind::Float).to_device(device))
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{}: model.json records a score read-out but the weights have no {name}; \
                         the model folder is damaged, train it again",
                        path.display()
                    ))
                })
        };
        let (weight, bias) = (find("score_head.weight")?, find("score_head.bias")?);
        let dim = i64::from(card.spec.dim);
        if weight.size() != [1, dim] || bias.size() != [1] {
            return Err(Error::Invalid(format!(
                "{}: score_head.weight is {:?} and score_head.bias {:?}, not [1, {dim}] and [1]; \
                 the model folder is damaged, train it again",
                path.display(),
                weight.size(),
                bias.size()
            )));
        }
        if !(norm.std.is_finite() && norm.std > 0.0 && norm.mean.is_finite()) {
            return Err(Error::Invalid(format!(
                "{}: score_norm {norm:?} needs a finite mean and a standard deviation above 0",
                dir.join(likeness_app::model_card::MODEL_CARD).display()
            )));
        }
        Ok(Ok(Readout {
            weight: weight.transpose(0, 1),
            bias,
            norm,
            domain: card.score_domain.clone(),
        }))
    }

    /// Predicted scores from the [`Net::views`] of a batch: the mean of
    /// their read-outs (with test-time flip, the image's and its mirror
    /// image's: the model trained on both).
    pub fn predict(&self, views: &[Tensor]) -> Result<Vec<f32>> {
        let z = tch::no_grad(|| {
            let sum = views
                .iter()
                .map(|v| v.to_kind(Kind::Float).matmul(&self.weight).squeeze_dim(1))
                .reduce(|a, b| a + b);
            sum.map(|s| s / views.len() as f64 + &self.bias)
        })
        .ok_or_else(|| Error::Invalid("a score read-out of no views".into()))?;
        let scores = (z * f64::from(self.norm.std) + f64::from(self.norm.mean))
            .to_device(Device::Cpu)
            .contiguous();
        Ok(Vec::<f32>::try_from(&scores)?)
    }
}

/// What a score read-out is asked about beyond what it learnt from.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Unfamiliar {
    /// Labels that no training item had.
    pub labels: Vec<String>,
    /// Read-outs of the other items outside the training scores by more
    /// than [`RANGE_SLACK`] of their range, and the lowest and highest.
    pub out_of_range: usize,
    pub readouts: usize,
    pub lowest: Option<f32>,
    pub highest: Option<f32>,
}

pub use likeness_app::model_card::RANGE_SLACK;

impl Unfamiliar {
    /// What in `readouts` (each item's label and read-out) the read-out
    /// that learnt from `domain` did not.
    pub fn of<'a>(
        domain: &ScoreDomain,
        readouts: impl IntoIterator<Item = (&'a str, Option<f32>)>,
    ) -> Unfamiliar {
        let mut u = Unfamiliar::default();
        let slack = RANGE_SLACK * (domain.max - domain.min);
        for (label, v) in readouts {
            if !domain.labels.iter().any(|l| l == label) {
                if !u.labels.iter().any(|l| l == label) {
                    u.labels.push(label.to_string());
                }
                continue;
            }
            let Some(v) = v else { continue };
            u.readouts += 1;
            u.lowest = Some(u.lowest.map_or(v, |l| l.min(v)));
            u.highest = Some(u.highest.map_or(v, |h| h.max(v)));
            if v < domain.min - slack || v > domain.max + slack {
                u.out_of_range += 1;
            }
        }
        u.labels.sort_unstable();
        u
    }

    /// Says what it found, on stderr: `held_in` names where the read-outs
    /// are written, `look` where the user can see the crops.
    pub fn warn(&self, domain: &ScoreDomain, held_in: &str, look: &str) {
        if !self.labels.is_empty() {
            let one = self.labels.len() == 1;
            eprintln!(
                "warning: the score read-out learnt from {}; {} {} not among them, so the \
                 read-outs of {} ({held_in}) are not grades",
                domain.labels.join(", "),
                self.labels.join(", "),
                if one { "is" } else { "are" },
                if one { "that label" } else { "those labels" },
            );
        }
        if let (true, Some(lo), Some(hi)) = (self.out_of_range > 0, self.lowest, self.highest) {
            eprintln!(
                "warning: {} of {} read-outs lie outside the training scores [{}, {}] by more \
                 than {:.0}% of that range (lowest {lo:.3}, highest {hi:.3}): those crops are \
                 unlike the regions it learnt from; {look}",
                self.out_of_range,
                self.readouts,
                domain.min,
                domain.max,
                RANGE_SLACK * 100.0
            );
        }
    }
}
