//! Settings that arguments name and the torch half acts on: plain values,
//! parsed and printed here so that the front binary's `--help` and the
//! trainer's `model.json` spell them alike.
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// `train`: early stopping waits for this many validations without improvement.
pub const DEFAULT_PATIENCE: usize = 5;

/// `--device auto|cpu|cuda[:N]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// CUDA device 0 when CUDA is available, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" | "gpu" => Ok(DeviceSpec::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(DeviceSpec::Cuda)
                    .map_err(|_| format!("`{s}`: expected cuda:N with N a device number")),
                None => Err(format!("`{s}`: expected auto, cpu, cuda or cuda:N")),
            },
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Auto => write!(f, "auto"),
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Numeric precision of the training forward pass.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// float32 throughout.
    #[default]
    Fp32,
    /// Automatic mixed precision: the forward pass runs in bfloat16 where
    /// PyTorch's autocast policy allows it (convolutions, matmuls), weights
    /// and gradients stay float32 — `torch.autocast(dtype=torch.bfloat16)`.
    Bf16,
}

/// Which backbone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arch {
    Convnet,
    Resnet18,
    /// EfficientNet-Lite0 from its ImageNet weights (fine-tuned).
    EfficientnetLite0,
    /// dlib's face descriptor (a ResNet, 150 px face chips), fine-tuned.
    DlibResnet,
    TorchScript(PathBuf),
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "convnet" => Ok(Arch::Convnet),
            "resnet18" => Ok(Arch::Resnet18),
            "efficientnet-lite0" => Ok(Arch::EfficientnetLite0),
            "dlib-resnet" => Ok(Arch::DlibResnet),
            _ => match s.strip_prefix("torchscript:") {
                Some(p) if !p.is_empty() => Ok(Arch::TorchScript(PathBuf::from(p))),
                _ => Err(format!(
                    "`{s}`: expected convnet, resnet18, efficientnet-lite0, dlib-resnet or torchscript:PATH"
                )),
            },
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Arch::Convnet => f.write_str("convnet"),
            Arch::Resnet18 => f.write_str("resnet18"),
            Arch::EfficientnetLite0 => f.write_str("efficientnet-lite0"),
            Arch::DlibResnet => f.write_str("dlib-resnet"),
            Arch::TorchScript(p) => write!(f, "torchscript:{}", p.display()),
        }
    }
}

impl Arch {
    /// Whether the network starts from pretrained weights (ImageNet's,
    /// dlib's face descriptor).
    pub fn pretrained(&self) -> bool {
        matches!(self, Arch::EfficientnetLite0 | Arch::DlibResnet)
    }
}

impl Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Arch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How the held-out (validation) set is formed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "fraction")]
pub enum ValSplit {
    /// No held-out set (unless `val_data` is given: then all of it).
    None,
    /// Hold out this fraction of each class's images.
    Images(f64),
    /// Hold out the last fraction of classes entirely (zero-shot protocol).
    Classes(f64),
}

impl std::str::FromStr for ValSplit {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "none" {
            return Ok(ValSplit::None);
        }
        let (kind, frac) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected none, images:F or classes:F"))?;
        let f: f64 = frac
            .parse()
            .map_err(|_| format!("`{frac}` is not a number"))?;
        if !(f > 0.0 && f < 1.0) {
            return Err(format!("`{s}`: the fraction must be between 0 and 1"));
        }
        match kind {
            "images" => Ok(ValSplit::Images(f)),
            "classes" => Ok(ValSplit::Classes(f)),
            _ => Err(format!("`{s}`: expected images:F or classes:F")),
        }
    }
}

/// Learning-rate schedule over all steps of the training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// `--lr` throughout.
    Constant,
    /// Cosine decay from `--lr` to 0 (Loshchilov & Hutter, SGDR, without restarts).
    #[default]
    Cosine,
}

impl LrSchedule {
    /// Learning rate at `step` of `total`.
    pub fn at(self, lr: f64, step: usize, total: usize) -> f64 {
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => {
                let t = step as f64 / total.max(1) as f64;
                0.5 * lr * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

/// Which loss to train with.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// Multi-class N-pair loss (one softmax per anchor).
    NpairMc,
    /// N-pair loss as one-vs-one binary terms.
    NpairOvo,
    /// Triplet loss with batch-hard mining.
    Triplet,
}

impl std::fmt::Display for LossKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LossKind::NpairMc => "npair-mc",
            LossKind::NpairOvo => "npair-ovo",
            LossKind::Triplet => "triplet",
        })
    }
}

/// Parses a duration such as `300`, `90s`, `5m`, `1.5h` into seconds.
pub fn parse_duration(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let scale = match unit {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "`{s}`: expected seconds, or a number with s, m or h"
            ))
        }
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v * scale),
        _ => Err(format!(
            "`{s}`: expected a positive duration such as 300, 90s, 5m or 1.5h"
        )),
    }
}
