//! What the torch-free side reads of a model folder's `model.json`: a typed
//! summary of the fields it shows (the full card, written by the trainer, is
//! `likeness::train::output::ModelCard`). Unknown fields are ignored, so
//! cards of every version give a summary.
use std::path::Path;

use serde::Deserialize;

/// `model.json`'s name inside a model folder.
pub const MODEL_CARD: &str = "model.json";

/// The network a card describes.
#[derive(Debug, Clone, Deserialize)]
pub struct SpecSummary {
    pub arch: String,
    pub dim: u32,
    pub input_size: u32,
}

/// The fields of `model.json` the page and `serve` show.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelSummary {
    pub spec: SpecSummary,
    /// One record per epoch run (only their number is read here).
    #[serde(default)]
    epochs: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    pub best_epoch: Option<usize>,
    #[serde(default)]
    pub device: String,
    /// CRC32 of `weights.safetensors`: the model's fingerprint.
    pub weights_crc32: String,
    /// Present when the model has a score read-out (trained with
    /// `--score-bins`): how its scores were standardised.
    #[serde(default)]
    score_norm: Option<serde::de::IgnoredAny>,
    /// The labels of the regions its read-out learnt from (cards since
    /// 2026-12-05; older read-outs do not say).
    #[serde(default)]
    pub score_domain: Option<ScoreDomainSummary>,
}

/// The part of `model.json`'s `score_domain` that says what a read-out
/// grades: the labels and the range of the scores it learnt from.
#[derive(Debug, Clone, Deserialize)]
pub struct ScoreDomainSummary {
    pub labels: Vec<String>,
    #[serde(default)]
    pub min: Option<f32>,
    #[serde(default)]
    pub max: Option<f32>,
}

/// How far (a fraction of the training scores' range) a read-out may lie
/// outside that range before it is reported: a linear read-out overshoots
/// a little at the ends even on its own training regions.
pub const RANGE_SLACK: f32 = 0.1;

impl ScoreDomainSummary {
    /// Whether read-out `v` lies outside the learnt range by more than
    /// [`RANGE_SLACK`] of it (never, where the card records no range).
    pub fn outside(&self, v: f32) -> bool {
        match (self.min, self.max) {
            (Some(lo), Some(hi)) => {
                let slack = RANGE_SLACK * (hi - lo);
                v < lo - slack || v > hi + slack
            }
            _ => false,
        }
    }
}

impl ModelSummary {
    /// Reads `dir/model.json`; `None` when it is missing or not a model card.
    pub fn read(dir: &Path) -> Option<ModelSummary> {
        let bytes = std::fs::read(dir.join(MODEL_CARD)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The model grades what it embeds (a score read-out).
    pub fn grades(&self) -> bool {
        self.score_norm.is_some()
    }

    /// Whether the read-out grades regions of `label`: those it learnt
    /// from, or any label where the card does not record them.
    pub fn grades_label(&self, label: &str) -> bool {
        self.grades()
            && self
                .score_domain
                .as_ref()
                .is_none_or(|d| d.labels.iter().any(|l| l == label))
    }

    /// Epochs the training ran.
    pub fn epochs(&self) -> usize {
        self.epochs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_out_far_outside_its_scores_is_told() {
        let d: ScoreDomainSummary =
            serde_json::from_str(r#"{"labels": ["cheek"], "min": 0.0, "max": 1.0}"#).unwrap();
        assert!(!d.outside(1.09) && !d.outside(-0.09) && !d.outside(0.5));
        assert!(d.outside(1.85) && d.outside(-0.2));
        // Cards without the range never warn.
        let old: ScoreDomainSummary = serde_json::from_str(r#"{"labels": ["cheek"]}"#).unwrap();
        assert!(!old.outside(100.0));
    }

    #[test]
    fn reads_the_fields_it_shows_and_ignores_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MODEL_CARD),
            r#"{"spec": {"arch": "convnet", "dim": 64, "input_size": 28, "channels": 1},
                "epochs": [{}, {}, {}], "best_epoch": 2, "device": "cpu (2 threads)",
                "weights_crc32": "0badcafe", "lr": 0.004}"#,
        )
        .unwrap();
        let s = ModelSummary::read(dir.path()).unwrap();
        assert_eq!(
            (s.spec.arch.as_str(), s.spec.dim, s.spec.input_size),
            ("convnet", 64, 28)
        );
        assert_eq!((s.epochs(), s.best_epoch), (3, Some(2)));
        assert_eq!(s.weights_crc32, "0badcafe");
        std::fs::write(dir.path().join(MODEL_CARD), "{}").unwrap();
        assert!(ModelSummary::read(dir.path()).is_none());
    }

    #[test]
    fn a_read_out_grades_the_labels_it_learnt_from() {
        let dir = tempfile::tempdir().unwrap();
        let card = |extra: &str| {
            std::fs::write(
                dir.path().join(MODEL_CARD),
                format!(
                    r#"{{"spec": {{"arch": "convnet", "dim": 8, "input_size": 32}},
                        "weights_crc32": "0badcafe"{extra}}}"#
                ),
            )
            .unwrap();
            ModelSummary::read(dir.path()).unwrap()
        };
        let none = card(r#", "score_norm": null"#);
        assert!(!none.grades() && !none.grades_label("cheek"));
        let old = card(r#", "score_norm": {"mean": 0.5, "std": 0.3}"#);
        assert!(old.grades_label("cheek") && old.grades_label("eye"));
        let new = card(
            r#", "score_norm": {"mean": 0.5, "std": 0.3},
               "score_domain": {"labels": ["cheek", "under_eye"], "min": 0, "max": 1}"#,
        );
        assert!(new.grades_label("under_eye") && !new.grades_label("eye"));
    }
}
