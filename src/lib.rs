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
