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
}

impl ModelSummary {
    /// Reads `dir/model.json`; `None` when it is missing or not a model card.
    pub fn read(dir: &Path) -> Option<ModelSummary> {
        let bytes = std::fs::read(dir.join(MODEL_CARD)).ok()?;
        serde_json::from_slice(&bytes).ok()
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
}
