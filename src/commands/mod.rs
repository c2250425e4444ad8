//! One file per command that joins a trained model and an index: `embed`,
//! `index`, image queries (`query --image`, `--montage`), `eval` and `serve`
//! with image queries. What they share (loading the model an index was
//! built with) lives here.
use std::path::{Path, PathBuf};

use likeness_index::Index;
use tch::Device;

use crate::error::{Error, Result};
use crate::model::Net;
use crate::train::output::ModelCard;

pub mod asymmetry;
pub mod embed;
pub mod eval;
pub mod index;
pub mod query;
pub mod serve;
pub mod swell;

pub use embed::{EmbedArgs, EmbedRunArgs};
pub use eval::EvalArgs;
pub use index::IndexArgs;

pub(crate) fn load_model(dir: &Path, device: Device) -> Result<(Net, ModelCard)> {
    crate::train::output::load(dir, device)
}

/// The model an index was built with: `explicit` or the recorded directory,
/// refused when its fingerprint differs from the index's.
pub(crate) fn model_for_index(
    index: &Index,
    explicit: Option<&Path>,
    device: Device,
) -> Result<(Net, ModelCard, PathBuf)> {
    let m = index.manifest();
    let dir = match (explicit, &m.model_dir) {
        (Some(d), _) => d.to_path_buf(),
        (None, Some(d)) => PathBuf::from(d),
        (None, None) => {
            return Err(Error::Invalid(format!(
            "{} records no model (it was built from vectors); image queries need an index made by \
                 `likeness index`, or pass --model",
            index.dir().display()
        )))
        }
    };
    let (net, card) = load_model(&dir, device).map_err(|e| {
        Error::Invalid(format!(
            "cannot load the model of index {} from {}: {e}",
            index.dir().display(),
            dir.display()
        ))
    })?;
    if let Some(fp) = &m.model_fingerprint {
        if *fp != card.weights_crc32 {
            return Err(Error::Invalid(format!(
                "model mismatch: {} has fingerprint {} but the index {} was built by a model with \
                 fingerprint {fp}; query with the model that built the index (or rebuild the index \
                 with `likeness index --model {}`)",
                dir.display(),
                card.weights_crc32,
                index.dir().display(),
                dir.display()
            )));
        }
    }
    if net.spec.dim as usize != index.dim() {
        return Err(Error::Invalid(format!(
            "the model {} makes vectors of dimension {} but the index has dimension {}",
            dir.display(),
            net.spec.dim,
            index.dim()
        )));
    }
    Ok((net, card, dir))
}
