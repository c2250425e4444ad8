//! Embedding networks: a backbone plus a linear projection to `dim`.
//!
//! | arch | for | backbone |
//! |---|---|---|
//! | `convnet` | small images (≤ 64 px), grey or RGB, fast on CPU | 5 conv3×3+BN+ReLU (32,32,pool,64,64,pool,128), global average pool |
//! | `resnet18` | faces at 112–224 px, from scratch | tch's ResNet-18 without its classifier |
//! | `efficientnet-lite0` | small colour sets: fine-tuned from ImageNet ([`efficientnet`]) | EfficientNet-Lite0 without its classifier, 1280 features |
//! | `dlib-resnet` | aligned 150 px face chips: fine-tuned from dlib's face descriptor ([`dlib_resnet`]) | dlib's 29-convolution ResNet, 128 features |
//! | `torchscript:PATH` | fine-tuning a user's PyTorch backbone | a TorchScript module whose output is `[B, F]` |

use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

pub mod dlib_resnet;
pub mod efficientnet;

pub use likeness_app::settings::Arch;

/// Everything needed to rebuild the network and feed it: the eval transform
/// lives here so training and serving cannot drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub arch: Arch,
    /// Square input side, pixels.
    pub input_size: u32,
    /// 1 (grey) or 3 (RGB).
    pub channels: u32,
    /// Per-channel mean and standard deviation of pixels scaled to [0, 1].
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Embedding dimension.
    pub dim: u32,
    /// Channel multiplier of `convnet` (1 = 32, 32, 64, 64, 128 channels).
    #[serde(default = "one")]
    pub width: f32,
    /// Test-time flip: outside training the embedding is the sum of the
    /// L2-normalised embeddings of the image and its mirror image (part of
    /// the network, so `model.pt` does the same).
    #[serde(default)]
    pub flip_tta: bool,
}

fn one() -> f32 {
    1.0
}

/// Largest input side. Backbones are run at 600 px at most in practice
/// (EfficientNet-B7); one 3-channel image of 1,024 px is 12 MB as floats,
/// a batch of 20 a quarter of a GB. A larger side in a flag or a damaged
/// `model.json` would otherwise abort on a failed allocation.
pub const MAX_INPUT_SIZE: u32 = 1024;

impl ModelSpec {
    /// What any network needs of the spec, whether it came from flags or
    /// from a `model.json` (which may have been edited or damaged).
    pub fn check(&self) -> Result<()> {
        let c = self.channels;
        if c != 1 && c != 3 {
            return Err(Error::Invalid(format!(
                "{c} channels: use 1 (grey) or 3 (RGB)"
            )));
        }
        if self.mean.len() != c as usize || self.std.len() != c as usize {
            return Err(Error::Invalid(format!(
                "the model has {c} channels but {} means and {} standard deviations: \
                 give one of each per channel (model.json `spec.mean`, `spec.std`)",
                self.mean.len(),
                self.std.len()
            )));
        }
        if let Some(s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::Invalid(format!(
                "a standard deviation of {s} would divide pixels by it: each of \
                 model.json's `spec.std` must be a positive number"
            )));
        }
        if self.mean.iter().any(|m| !m.is_finite()) {
            return Err(Error::Invalid(
                "model.json's `spec.mean` holds a value that is not a number".into(),
            ));
        }
        if self.input_size > MAX_INPUT_SIZE {
            return Err(Error::Invalid(format!(
                "an input of {0} × {0} px is over the {MAX_INPUT_SIZE} px this takes \
                 (--input-size, or model.json's `spec.input_size`)",
                self.input_size
            )));
        }
        if self.dim == 0 {
            return Err(Error::Invalid("--dim must be at least 1".into()));
        }
        Ok(())
    }
}

enum Body {
    Seq(nn::SequentialT),
    Func(nn::FuncT<'static>),
    Script(tch::TrainableCModule),
    Efficient(Box<efficientnet::EfficientNetLite0>),
    Dlib(Box<dlib_resnet::DlibResNet>),
}

/// A backbone and its projection head, with their variables.
pub struct Net {
    pub vs: nn::VarStore,
    body: Body,
    head: nn::Linear,
    pub spec: ModelSpec,
    /// Pretrained backbones: batch norm keeps its (ImageNet) statistics in
    /// training too (set by the trainer for small batches).
    pub bn_frozen: bool,
}

fn conv_bn(p: &nn::Path, c_in: i64, c_out: i64) -> nn::SequentialT {
    let conv = nn::ConvConfig {
        padding: 1,
        bias: false,
        ..Default::default()
    };
    nn::seq_t()
        .add(nn::conv2d(p / "conv", c_in, c_out, 3, conv))
        .add(nn::batch_norm2d(p / "bn", c_out, Default::default()))
        .add_fn(|x| x.relu())
}

/// Channels of the convnet's five layers at `width`.
fn convnet_channels(width: f32) -> [i64; 3] {
    [32, 64, 128].map(|c| ((c as f32 * width).round() as i64).max(1))
}

fn convnet(p: &nn::Path, channels: i64, width: f32) -> nn::SequentialT {
    let [a, b, c] = convnet_channels(width);
    nn::seq_t()
        .add(conv_bn(&(p / "c1"), channels, a))
        .add(conv_bn(&(p / "c2"), a, a))
        .add_fn(|x| x.max_pool2d_default(2))
        .add(conv_bn(&(p / "c3"), a, b))
        .add(conv_bn(&(p / "c4"), b, b))
        .add_fn(|x| x.max_pool2d_default(2))
        .add(conv_bn(&(p / "c5"), b, c))
        .add_fn(|x| x.mean_dim([2i64, 3].as_slice(), false, Kind::Float))
}

/// Stores every 4-D (convolution) weight channels-last, NHWC in memory. A
/// channels-last weight makes oneDNN (CPU) and cuDNN run the convolution
/// channels-last, and batch norm, ReLU and pooling keep that layout, so the
/// body runs without NCHW reorders. Measured with `examples/weights_layout.rs`
/// (steps of both layouts interleaved in one process): training 1-2% faster
/// on this 2-core CPU in bf16, 3-5% on an H200. Values are unchanged; `copy_`
/// into these weights (loading) keeps the layout, and `save_vars` writes
/// them contiguous.
fn channels_last(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (_, var) in vs.variables() {
            let size = var.size();
            if let [_, c, h, w] = size[..] {
                let mut cl = Tensor::empty_strided(
                    &size,
                    [c * h * w, 1, w * c, c],
                    (var.kind(), var.device()),
                );
                cl.copy_(&var);
                let mut var = var;
                var.set_data(&cl);
            }
        }
    })
}

impl Net {
    /// Builds the network with freshly initialised weights (seed torch first
    /// with `tch::manual_seed` for reproducible weights).
    pub fn new(spec: &ModelSpec, device: Device) -> Result<Net> {
        spec.check()?;
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let (body, features) = match &spec.arch {
            Arch::Convnet => {
                if spec.input_size < 8 {
                    return Err(Error::Invalid(
                        "convnet needs --input-size of at least 8".into(),
                    ));
                }
                if !(spec.width > 0.0 && spec.width <= 16.0) {
                    return Err(Error::Invalid(format!(
                        "--width {} must be in (0, 16]",
                        spec.width
                    )));
                }
                let features = convnet_channels(spec.width)[2];
                let body = convnet(&(&root / "backbone"), spec.channels.into(), spec.width);
                (Body::Seq(body), features)
            }
            Arch::Resnet18 => {
                if spec.channels != 3 {
                    return Err(Error::Invalid(
                        "resnet18 takes RGB input (channels = 3)".into(),
                    ));
                }
                if spec.input_size < 32 {
                    return Err(Error::Invalid(
                        "resnet18 needs --input-size of at least 32".into(),
                    ));
                }
                (
                    Body::Func(tch::vision::resnet::resnet18_no_final_layer(
                        &(&root / "backbone"),
                    )),
                    512,
                )
            }
            Arch::EfficientnetLite0 => {
                if spec.channels != 3 {
                    return Err(Error::Invalid(
                        "efficientnet-lite0 takes RGB input (channels = 3)".into(),
                    ));
                }
                if spec.input_size < 32 {
                    return Err(Error::Invalid(
                        "efficientnet-lite0 needs --input-size of at least 32".into(),
                    ));
                }
                (
                    Body::Efficient(Box::new(efficientnet::EfficientNetLite0::new(
                        &(&root / "backbone"),
                    ))),
                    efficientnet::FEATURES,
                )
            }
            Arch::DlibResnet => {
                if spec.channels != 3 || spec.input_size != dlib_resnet::NATIVE_SIZE {
                    return Err(Error::Invalid(format!(
                        "dlib-resnet takes RGB face chips of {0} px (channels = 3, --input-size {0})",
                        dlib_resnet::NATIVE_SIZE
                    )));
                }
                (
                    Body::Dlib(Box::new(dlib_resnet::DlibResNet::new(
                        &(&root / "backbone"),
                    ))),
                    dlib_resnet::FEATURES,
                )
            }
            Arch::TorchScript(path) => {
                if !path.is_file() {
                    return Err(Error::not_found(path.clone()));
                }
                let mut m = tch::TrainableCModule::load(path, &root / "backbone").map_err(|e| {
                    Error::Invalid(format!(
                        "{}: not a loadable TorchScript module: {e}",
                        path.display()
                    ))
                })?;
                m.set_eval();
                let probe = Tensor::zeros(
                    [
                        2,
                        spec.channels.into(),
                        spec.input_size.into(),
                        spec.input_size.into(),
                    ],
                    (Kind::Float, device),
                );
                let out = tch::no_grad(|| m.forward_t(&probe, false));
                let size = out.size();
                if size.len() != 2 || size[0] != 2 {
                    return Err(Error::Invalid(format!(
                        "{}: a TorchScript backbone must map [B, {}, {s}, {s}] to [B, F]; it gave {size:?}",
                        path.display(),
                        spec.channels,
                        s = spec.input_size
                    )));
                }
                (Body::Script(m), size[1])
            }
        };
        let head = nn::linear(
            &root / "head",
            features,
            spec.dim.into(),
            Default::default(),
        );
        if !matches!(spec.arch, Arch::TorchScript(_)) {
            channels_last(&vs);
        }
        Ok(Net {
            vs,
            body,
            head,
            spec: spec.clone(),
            bn_frozen: false,
        })
    }

    /// Embeddings `[B, dim]` of images `[B, C, H, W]` (normalised input).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if train {
            return self.forward_once(xs, true);
        }
        self.combine_views(self.views(xs))
    }

    /// In eval mode, the embedding of each view of `xs` the model embeds,
    /// as the head makes it (without normalisation: what the score
    /// read-out was trained on): `xs` itself, and with test-time flip its
    /// mirror image too.
    pub fn views(&self, xs: &Tensor) -> Vec<Tensor> {
        let mut v = vec![self.forward_once(xs, false)];
        if self.spec.flip_tta {
            v.push(self.forward_once(&xs.flip([3i64].as_slice()), false));
        }
        v
    }

    /// The embedding [`Net::views`] make: with test-time flip the sum of
    /// their unit vectors, else the one view as it is.
    pub fn combine_views(&self, mut views: Vec<Tensor>) -> Tensor {
        if views.len() == 1 {
            return views.remove(0);
        }
        let unit = |e: &Tensor| {
            let n = e
                .norm_scalaropt_dim(2, [1i64].as_slice(), true)
                .clamp_min(1e-12);
            e / n
        };
        views
            .iter()
            .map(unit)
            .reduce(|a, b| a + b)
            .expect("at least one view")
    }

    fn forward_once(&self, xs: &Tensor, train: bool) -> Tensor {
        let f = match &self.body {
            Body::Seq(s) => s.forward_t(xs, train),
            Body::Func(f) => f.forward_t(xs, train),
            Body::Script(m) => m.forward_t(xs, train),
            Body::Efficient(e) => e.forward(xs, train && !self.bn_frozen),
            Body::Dlib(d) => d.forward(xs),
        };
        f.apply(&self.head)
    }

    /// The pretrained backbone's frozen layers ([`efficientnet::FROZEN_BLOCKS`],
    /// [`dlib_resnet::trunk_end`]) on `xs`, if it has them: the same for
    /// every step, so the trainer caches them.
    pub fn trunk(&self, xs: &Tensor) -> Option<Tensor> {
        match &self.body {
            Body::Efficient(e) => Some(tch::no_grad(|| e.trunk(xs))),
            Body::Dlib(d) => Some(tch::no_grad(|| d.trunk(xs))),
            _ => None,
        }
    }

    /// Whether the backbone has frozen layers ([`Net::trunk`]).
    pub fn has_trunk(&self) -> bool {
        matches!(self.body, Body::Efficient(_) | Body::Dlib(_))
    }

    /// What `forward_t(xs, false)` gives, from the trunk's output on `xs`
    /// and, with test-time flip, on `xs` mirrored (`flipped`).
    pub fn embed_from_trunk(&self, h: &Tensor, flipped: Option<&Tensor>) -> Tensor {
        let mut views = vec![self.forward_from_trunk(h, false, false)];
        if let (true, Some(f)) = (self.spec.flip_tta, flipped) {
            views.push(self.forward_from_trunk(f, false, false));
        }
        self.combine_views(views)
    }

    /// Embeddings from the output of [`Net::trunk`] (no test-time flip:
    /// training only); `backbone_grad` false: the backbone's layers run
    /// without gradients (the head's warm-up).
    pub fn forward_from_trunk(&self, h: &Tensor, train: bool, backbone_grad: bool) -> Tensor {
        match &self.body {
            Body::Efficient(e) => {
                let bn_train = train && !self.bn_frozen;
                let f = if backbone_grad {
                    e.top(h, bn_train)
                } else {
                    tch::no_grad(|| e.top(h, bn_train))
                };
                f.apply(&self.head)
            }
            Body::Dlib(d) => {
                let f = if backbone_grad {
                    d.top(h)
                } else {
                    tch::no_grad(|| d.top(h))
                };
                f.apply(&self.head)
            }
            // No trunk: `h` is the input itself.
            _ => self.forward_once(h, train),
        }
    }

    /// Starts a pretrained backbone from its weights (ImageNet's, dlib's)
    /// and stops gradients at its frozen layers; other backbones are left
    /// alone.
    pub fn load_pretrained(&mut self) -> Result<()> {
        let frozen: fn(&str) -> bool = match &self.body {
            Body::Efficient(_) => {
                efficientnet::load_imagenet(&self.vs, "backbone")?;
                efficientnet::is_frozen
            }
            Body::Dlib(_) => {
                dlib_resnet::load_dlib(&self.vs)?;
                dlib_resnet::is_frozen
            }
            _ => return Ok(()),
        };
        for (name, mut var) in self.vs.variables() {
            if frozen(&name) {
                let _ = var.requires_grad_(false);
            }
        }
        Ok(())
    }

    /// Whether the backbone (not the head) owns variable `name`.
    pub fn is_backbone(name: &str) -> bool {
        name.starts_with("backbone.")
    }

    /// Switches a TorchScript backbone between training and eval behaviour
    /// (batch norm, dropout); native backbones take `train` per call.
    pub fn set_train(&mut self, train: bool) {
        if let Body::Script(m) = &mut self.body {
            if train {
                m.set_train()
            } else {
                m.set_eval()
            }
        }
    }
}
