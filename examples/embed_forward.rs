//! In-memory embedding speed: likeness's forward loop (`embed::embed_tensor`,
//! the one `likeness embed` runs: host batch → device through pinned memory
//! → forward under `no_grad` → embeddings back on the host) over random
//! images already decoded in memory, so that decoding is out of the picture.
//! Its peer is `benches/peers/forward_pytorch.py` (PyTorch eager, same
//! network shape, batch and device); `make bench-embed` runs both.
//!
//! `cargo run --release --example embed_forward -- [IMAGES] [BATCH] [cpu|cuda] [convnet|resnet18] [fp32|bf16]`
//! (defaults: 20480 images, batch 512, cuda when available, convnet 28 px
//! grey; resnet18 is 112 px RGB). Prints one line: `likeness images/s ...`.
use std::time::Instant;

use likeness::model::{Arch, ModelSpec, Net};
use likeness::runtime::{with_precision, Precision};
use tch::Device;

fn main() -> likeness_app::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let images: usize = arg(0, "20480").parse().expect("IMAGES: a number");
    let batch: usize = arg(1, "512").parse().expect("BATCH: a number");
    let device = match arg(2, "auto").as_str() {
        "cpu" => Device::Cpu,
        "cuda" => Device::Cuda(0),
        _ => Device::cuda_if_available(),
    };
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let arch = arg(3, "convnet");
    let precision = if arg(4, "fp32") == "bf16" {
        Precision::Bf16
    } else {
        Precision::Fp32
    };
    let (arch_v, size, channels) = match arch.as_str() {
        "resnet18" => (Arch::Resnet18, 112u32, 3u32),
        _ => (Arch::Convnet, 28, 1),
    };
    let spec = ModelSpec {
        arch: arch_v,
        input_size: size,
        channels,
        mean: vec![0.5; channels as usize],
        std: vec![0.25; channels as usize],
        dim: 64,
        width: 1.0,
        flip_tta: false,
    };
    tch::manual_seed(0);
    let net = Net::new(&spec, device).expect("network");
    let per = (channels * size * size) as usize;
    // Deterministic pseudo-random pixels (speed does not depend on them).
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let host: Vec<f32> = (0..images * per)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let pass = || {
        let mut rows = 0usize;
        for chunk in host.chunks(batch * per) {
            let n = chunk.len() / per;
            let emb = with_precision(precision, || {
                likeness::embed::embed_tensor(&net, chunk, n, device).expect("forward")
            });
            rows += emb.len() / 64;
        }
        rows
    };
    // One warm-up pass: CUDA's start, cuDNN's algorithm search, the pinned pool.
    pass();
    let t = Instant::now();
    let rows = pass();
    let dt = t.elapsed().as_secs_f64();
    assert_eq!(rows, images);
    likeness_app::outln!(
        "likeness images/s {:.1} ({images} in-memory images, batch {batch}, {arch} {size}px, {}, {:?})",
        images as f64 / dt,
        if precision == Precision::Bf16 { "bf16" } else { "fp32" },
        device
    )?;
    Ok(())
}
