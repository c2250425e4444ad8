//! likeness: learn what looks alike from labelled images, index a gallery,
//! find the nearest matches fast. See ARCHITECTURE.md for the map.
//!
//! - [`data`]: labelled images from folders, CSV manifests (with regions) and IDX files
//! - [`runtime`]: device and thread settings for torch and rayon
//! - [`doctor`]: the readiness report of `likeness doctor`
//! - [`model`]: embedding networks (convnet, resnet18, TorchScript backbones)
//! - [`train`]: the N-pair trainer, its losses, sampler and outputs
//! - [`transform`]: images to normalised network input (and augmentation)
//! - [`embed`]: batched embedding with a trained network
//! - [`gallery`]: the batch embedder of `embed`/`index` and its output directory
//! - [`commands`]: the commands that run a network, one file each
//! - [`torch_models`]: the network lent to the torch-free `query --image` and `serve`
//! - [`cli`]: dispatch of a parsed command line (arguments: `likeness_app::args`)
pub mod cache;
pub mod cli;
pub mod commands;
pub mod data;
pub mod doctor;
pub mod embed;
pub mod error;
pub mod gallery;
pub mod model;
pub mod runtime;
pub mod torch_models;
pub mod train;
pub mod transform;

pub use error::{Error, Result};

/// `path` made absolute where it exists (else as given), for the paths that
/// model.json, embed.json and an index's manifest record: they are read
/// from other directories than the one the command ran in (embed.json once
/// said `"model_dir": "M"`).
pub fn absolute(path: &std::path::Path) -> std::path::PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
