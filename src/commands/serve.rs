//! `likeness serve` with a model: image queries (`POST /search/image`)
//! embedded by libtorch, batched by the index crate's server.
use std::path::Path;
use std::process::ExitCode;

use likeness_index::Index;

use super::model_for_index;
use crate::data::{decode, Region};
use crate::error::Result;
use crate::model::Net;

/// `POST /search/image` for `likeness serve`: decode, crop, transform and
/// embed one image with the index's model.
pub struct TorchEmbedder {
    net: std::sync::Mutex<Net>,
    fingerprint: String,
    limits: decode::DecodeLimits,
}

impl TorchEmbedder {
    /// Decodes and crops one request's image.
    fn decode(&self, bytes: &[u8], region: Option<[u32; 4]>) -> Result<image::DynamicImage> {
        let path = Path::new("<request body>");
        let image = decode::decode_bytes(bytes, path, &self.limits)?;
        match region {
            Some([x, y, w, h]) => decode::crop(image, Region { x, y, w, h }, path),
            None => Ok(image),
        }
    }
}

impl likeness_index::serve::ImageEmbedder for TorchEmbedder {
    fn embed(
        &self,
        bytes: &[u8],
        region: Option<[u32; 4]>,
    ) -> std::result::Result<Vec<f32>, String> {
        self.embed_batch(&[(bytes, region)])
            .pop()
            .unwrap_or_else(|| Err("no answer from the embedder".into()))
    }

    /// Decodes the images in parallel (rayon), then one forward pass over
    /// those that decoded; each bad image gets its own error.
    fn embed_batch(
        &self,
        images: &[(&[u8], Option<[u32; 4]>)],
    ) -> Vec<std::result::Result<Vec<f32>, String>> {
        use rayon::prelude::*;
        let decoded: Vec<Result<image::DynamicImage>> =
            images.par_iter().map(|(b, r)| self.decode(b, *r)).collect();
        let good: Vec<&image::DynamicImage> =
            decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
        let rows = if good.is_empty() {
            Ok(Vec::new())
        } else {
            match self.net.lock() {
                Ok(net) => {
                    let input = crate::transform::batch_input(&good, &net.spec, None, &[]);
                    crate::embed::embed_tensor(&net, &input, good.len(), net.vs.device())
                        .map(|v| (v, net.spec.dim as usize))
                        .map(|(v, dim)| v.chunks(dim).map(<[f32]>::to_vec).collect::<Vec<_>>())
                        .map_err(|e| e.to_string())
                }
                Err(_) => Err("the model is unavailable after an earlier failure".to_string()),
            }
        };
        let mut rows = match rows {
            Ok(r) => r.into_iter(),
            Err(e) => return images.iter().map(|_| Err(e.clone())).collect(),
        };
        decoded
            .into_iter()
            .map(|d| match d {
                Ok(_) => rows
                    .next()
                    .ok_or_else(|| "the forward pass returned too few rows".to_string()),
                Err(e) => Err(e.to_string()),
            })
            .collect()
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

/// `likeness serve` with a model (the front binary serves vectors alone).
pub fn serve(
    device: crate::runtime::DeviceSpec,
    threads: usize,
    args: likeness_index::cli::ServeArgs,
) -> Result<ExitCode> {
    let opts = args.options(threads)?;
    let index = Index::open(&args.index)?;
    let embedder: Option<std::sync::Arc<dyn likeness_index::serve::ImageEmbedder>> =
        if args.no_model {
            None
        } else {
            let device = device.resolve()?;
            match model_for_index(&index, args.model.as_deref(), device) {
                Ok((net, card, dir)) => {
                    eprintln!(
                        "likeness serve: image queries use the model in {}",
                        dir.display()
                    );
                    Some(std::sync::Arc::new(TorchEmbedder {
                        net: std::sync::Mutex::new(net),
                        fingerprint: card.weights_crc32,
                        limits: decode::DecodeLimits::default(),
                    }))
                }
                // An explicit --model must work; a recorded one may be gone.
                Err(e) if args.model.is_some() => return Err(e),
                Err(e) => {
                    eprintln!("likeness serve: serving vectors only: {e}");
                    None
                }
            }
        };
    drop(index);
    let with_model = embedder.is_some();
    likeness_index::serve::run(&args.index, embedder, &opts)?;
    if with_model {
        // The search threads have run libtorch (each with its own OpenMP
        // team) and rayon does not join them; letting `exit` run libtorch's
        // and libgomp's static destructors under them crashed at shutdown.
        // Everything the server wrote is flushed; leave without destructors.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: _exit ends the process at once; no Rust state needs
        // dropping (the index is only mapped read-only, all output flushed).
        unsafe { libc::_exit(0) }
    }
    Ok(ExitCode::SUCCESS)
}
