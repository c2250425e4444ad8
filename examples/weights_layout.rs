//! Training speed of the convnet with NCHW vs channels-last convolution
//! weights (what `Net::new` now uses), measured in one process with the two
//! networks' steps interleaved, so that the machine's drifting speed affects
//! both alike (separate runs on the 2-core machine differ by up to 40%).
//!
//! `cargo run --release --example weights_layout -- [STEPS] [TUPLES] [bf16|fp32] [cpu|cuda]`
//! (defaults: 300 steps, 2 tuples of 10 classes = 40 images per step, bf16, cpu).
use std::time::Instant;

use likeness::model::{Arch, ModelSpec, Net};
use likeness::runtime::{with_precision, Precision};
use likeness::train::loss::{loss, LossConfig};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

fn main() -> likeness_app::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let steps: usize = arg(0, "300").parse().expect("STEPS: a number");
    let tuples: i64 = arg(1, "2").parse().expect("TUPLES: a number");
    let precision = match arg(2, "bf16").as_str() {
        "fp32" => Precision::Fp32,
        _ => Precision::Bf16,
    };
    let device = if arg(3, "cpu") == "cuda" {
        tch::Cuda::cudnn_set_benchmark(true);
        Device::Cuda(0)
    } else {
        Device::Cpu
    };
    tch::set_num_threads(2);
    let spec = ModelSpec {
        arch: Arch::Convnet,
        input_size: 28,
        channels: 1,
        mean: vec![0.286],
        std: vec![0.353],
        dim: 64,
        width: 1.25,
        flip_tta: false,
    };
    let make = |channels_last: bool| {
        tch::manual_seed(0);
        let net = Net::new(&spec, device).expect("network");
        if !channels_last {
            tch::no_grad(|| {
                for (_, mut var) in net.vs.variables() {
                    let nchw = var.contiguous();
                    var.set_data(&nchw);
                }
            });
        }
        let opt = nn::Adam::default().build(&net.vs, 1e-3).expect("optimizer");
        (net, opt)
    };
    let mut runs = [make(false), make(true)];
    let n = 10i64;
    let batch = 2 * n * tuples;
    let labels = Tensor::arange(n, (Kind::Int64, device)).repeat([tuples]);
    let cfg = LossConfig::default();
    let mut seconds = [0f64; 2];
    for i in 0..steps + 10 {
        for ((net, opt), secs) in runs.iter_mut().zip(&mut seconds) {
            let x = Tensor::randn([batch, 1, 28, 28], (Kind::Float, device));
            let start = Instant::now();
            let emb = with_precision(precision, || net.forward_t(&x, true)).to_kind(Kind::Float);
            let tn = n * tuples;
            let l = loss(
                &cfg,
                &emb.narrow(0, 0, tn),
                &emb.narrow(0, tn, tn),
                &labels,
                tuples,
            )
            .expect("loss");
            opt.backward_step(&l);
            let _ = l.double_value(&[]);
            if i >= 10 {
                *secs += start.elapsed().as_secs_f64();
            }
        }
    }
    let rate = |s: f64| (steps as i64 * batch) as f64 / s;
    likeness_app::outln!(
        "NCHW {:.0} images/s, channels-last {:.0} images/s, ratio {:.3}",
        rate(seconds[0]),
        rate(seconds[1]),
        seconds[0] / seconds[1]
    )?;
    Ok(())
}
