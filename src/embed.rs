//! Embedding images with a trained network, in batches under `no_grad`.
use indicatif::ProgressBar;
use tch::{Device, Tensor};

use crate::data::Dataset;
use crate::error::Result;
use crate::model::{ModelSpec, Net};
use crate::transform;

/// Embeddings (`indices.len()` rows of `dim`) of the dataset items at
/// `indices`, row `i` for `indices[i]`. Decoding and preprocessing run on
/// rayon, the forward pass on torch's threads, one batch at a time.
pub fn embed_items(
    net: &Net,
    ds: &Dataset,
    indices: &[usize],
    batch: usize,
    bar: Option<&ProgressBar>,
) -> Result<Vec<f32>> {
    let spec = &net.spec;
    let dim = spec.dim as usize;
    let device = net.vs.device();
    let mut out = Vec::with_capacity(indices.len() * dim);
    for chunk in indices.chunks(batch.max(1)) {
        let input = batch_inputs(ds, chunk, spec)?;
        let emb = embed_tensor(net, &input, chunk.len(), device)?;
        out.extend_from_slice(&emb);
        if let Some(b) = bar {
            b.inc(chunk.len() as u64);
        }
    }
    Ok(out)
}

/// The network's input (`spec`, no augmentation) of the dataset items at
/// `indices`, one after another. Each image becomes its input on the
/// thread that decoded it, which then drops the decoded photo: a batch of
/// 32 whole 4000×3000 photos held 1.15 GB of pixels when it was all
/// decoded first (as `embed` did before da88e47). A bad item stops the
/// batch with its error (the first in the order of `indices`).
pub fn batch_inputs(ds: &Dataset, indices: &[usize], spec: &ModelSpec) -> Result<Vec<f32>> {
    let mut input = Vec::with_capacity(indices.len() * transform::input_len(spec));
    for one in ds.load_each_with(indices, |s| {
        transform::batch_input(&[&s.image], spec, None, &[])
    }) {
        input.extend_from_slice(&one?);
    }
    Ok(input)
}

/// A host batch (`shape`, row-major float32) as a tensor on `device`. On
/// CUDA it goes through page-locked memory with a non-blocking copy, so the
/// copy runs on the GPU's copy engine while this thread goes on launching
/// kernels (libtorch's pinned allocator keeps the buffer until the copy is
/// done, and caches it for the next batch).
/// (`_pin_memory`, not `pin_memory`: tch always passes the device, which
/// `pin_memory` now warns about on stderr.)
pub fn host_to_device(input: &[f32], shape: [i64; 4], device: Device) -> Result<Tensor> {
    let x = Tensor::f_from_slice(input)?.f_view(shape)?;
    if !device.is_cuda() {
        return Ok(x);
    }
    // Page-locked memory can be refused (a container's locked-memory
    // limit); a plain blocking copy still works.
    Ok(match x.f_internal_pin_memory(device) {
        Ok(pinned) => pinned.f_to_device_(device, tch::Kind::Float, true, false)?,
        Err(_) => x.f_to_device(device)?,
    })
}

/// Forward pass (eval mode, no gradients) of `count` preprocessed inputs.
pub fn embed_tensor(net: &Net, input: &[f32], count: usize, device: Device) -> Result<Vec<f32>> {
    let s = i64::from(net.spec.input_size);
    let x = host_to_device(
        input,
        [count as i64, i64::from(net.spec.channels), s, s],
        device,
    )?;
    let emb = tch::no_grad(|| net.forward_t(&x, false));
    to_host(emb)
}

/// [`embed_tensor`], and with `readout` its predictions from the same
/// forward passes ([`embed_and_read_out`]).
pub fn embed_reading_out(
    net: &Net,
    readout: Option<&crate::train::score::Readout>,
    input: &[f32],
    count: usize,
) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
    Ok(match readout {
        Some(r) => {
            let (emb, scores) = embed_and_read_out(net, r, input, count)?;
            (emb, Some(scores))
        }
        None => (embed_tensor(net, input, count, net.vs.device())?, None),
    })
}

/// What [`embed_tensor`] gives, and the score read-out's predictions from
/// the same forward passes.
fn embed_and_read_out(
    net: &Net,
    readout: &crate::train::score::Readout,
    input: &[f32],
    count: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let s = i64::from(net.spec.input_size);
    let x = host_to_device(
        input,
        [count as i64, i64::from(net.spec.channels), s, s],
        net.vs.device(),
    )?;
    let views = tch::no_grad(|| net.views(&x));
    let scores = readout.predict(&views)?;
    let emb = tch::no_grad(|| net.combine_views(views));
    Ok((to_host(emb)?, scores))
}

/// A batch of embeddings as floats on the host, row after row (whatever
/// the forward ran in: bf16 under autocast).
fn to_host(emb: Tensor) -> Result<Vec<f32>> {
    let emb = emb
        .to_device(Device::Cpu)
        .to_kind(tch::Kind::Float)
        .contiguous()
        .view([-1]);
    Ok(Vec::<f32>::try_from(&emb)?)
}
