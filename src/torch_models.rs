//! The network the torch-free commands borrow: `query --image` and `serve`
//! (in `likeness_app`) embed images through [`TorchModels`], which loads
//! the model an index records and refuses another fingerprint.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use image::DynamicImage;
use likeness_app::embedder::{Graded, ImageEmbedder, LoadedModel, ModelLoader};
use likeness_index::Index;
use tch::Device;

use crate::error::{Error, Result};
use crate::model::Net;
use crate::train::output::ModelCard;
use crate::train::score::Readout;

/// Loads models onto `device`.
pub struct TorchModels {
    pub device: Device,
}

impl ModelLoader for TorchModels {
    fn load(&self, index: &Index, explicit: Option<&Path>) -> likeness_app::Result<LoadedModel> {
        let (net, card, dir) =
            model_for_index(index, explicit, self.device).map_err(|e| match e {
                Error::App(e) => e,
                // Already worded (`invalid setting: ...`): said once.
                e => likeness_app::Error::Usage(e.to_string()),
            })?;
        // A model trained from grades also grades what it embeds.
        let readout = match Readout::load(&dir, &card, self.device) {
            Ok(r) => r.ok(),
            Err(e) => return Err(likeness_app::Error::Usage(e.to_string())),
        };
        Ok(LoadedModel {
            embedder: Arc::new(TorchEmbedder {
                net: Mutex::new((net, readout)),
                fingerprint: card.weights_crc32,
            }),
            dir,
        })
    }
}

/// A trained network and its score read-out, if it has one, behind a lock
/// (one forward pass at a time; the server's batcher gathers concurrent
/// images into one).
struct TorchEmbedder {
    net: Mutex<(Net, Option<Readout>)>,
    fingerprint: String,
}

impl ImageEmbedder for TorchEmbedder {
    fn embed_images(&self, images: &[&DynamicImage]) -> std::result::Result<Vec<Vec<f32>>, String> {
        // The same forward pass; a read-out's grades cost one small matmul.
        self.embed_and_grade(images).map(|g| g.vectors)
    }

    fn embed_and_grade(&self, images: &[&DynamicImage]) -> std::result::Result<Graded, String> {
        let guard = self.lock()?;
        let (net, readout) = &*guard;
        let input = crate::transform::batch_input(images, &net.spec, None, &[]);
        let dim = net.spec.dim as usize;
        let (emb, grades) =
            crate::embed::embed_reading_out(net, readout.as_ref(), &input, images.len())
                .map_err(|e| e.to_string())?;
        Ok(Graded {
            vectors: emb.chunks(dim).map(<[f32]>::to_vec).collect(),
            grades,
        })
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

impl TorchEmbedder {
    fn lock(
        &self,
    ) -> std::result::Result<std::sync::MutexGuard<'_, (Net, Option<Readout>)>, String> {
        self.net
            .lock()
            .map_err(|_| "the model is unavailable after an earlier failure".to_string())
    }
}

/// The model an index was built with: `explicit` or the recorded directory,
/// refused when its fingerprint or dimension differs from the index's.
pub fn model_for_index(
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
    let (net, card) = crate::train::output::load(&dir, device).map_err(|e| {
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
