//! The pretrained backbones: EfficientNet-Lite0 in tch against the PyTorch
//! model of the package it comes from, dlib's face ResNet against dlib's
//! own descriptors, and fine-tuning runs through the CLI (what stays
//! frozen, what moves, and that the model embeds and exports like any
//! other). Needs `make pretrained` and `make face-models` (run by `make
//! test`).
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use likeness::model::efficientnet::{self, EfficientNetLite0};
use tch::{nn, Device, Kind, Tensor};

fn weights_dir() -> PathBuf {
    let d = efficientnet::weights_dir();
    assert!(
        d.join(".complete").exists(),
        "{} is missing: run `make pretrained` (or `make test`, which fetches it) first",
        d.display()
    );
    d
}

fn python() -> PathBuf {
    std::env::var_os("LIKENESS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| likeness::cache::cache_dir().join("torch-2.11.0/bin/python"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A manifest of 4 johns crops of each of 3 people, in `dir`.
fn johns_train_csv(dir: &Path) -> PathBuf {
    let mut csv = String::from("path,label\n");
    for person in ["John_Salley", "John_Simm", "John_Savage"] {
        let d = common::johns().join(person);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(4) {
            csv.push_str(&format!("{},{person}\n", f.display()));
        }
    }
    let data = dir.join("train.csv");
    std::fs::write(&data, csv).unwrap();
    data
}

/// A johns crop resized to 224 px, as raw RGB bytes.
fn fixed_image() -> Vec<u8> {
    let img = image::open(common::johns_image("John_Salley")).unwrap();
    img.resize_exact(224, 224, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .into_raw()
}

/// dlib's face descriptor in tch against dlib's own 128 values
/// (tests/fixtures/dlib-descriptors.json, made by
/// scripts/descriptor-reference.py with PyPI dlib-bin) on a chip of each
/// johns person (PNG, from `make data`'s swell set: the same pixels for
/// both).
#[test]
fn dlib_resnet_matches_dlibs_own_face_descriptor() {
    use likeness::model::dlib_resnet::{self, DlibResNet, MEAN, STD};
    use sha2::Digest;
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/dlib-descriptors.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = DlibResNet::new(&(vs.root() / "backbone"));
    dlib_resnet::load_dlib(&vs).expect("dlib's face descriptor: run `make face-models`");
    let faces = fixture["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 5);
    for face in faces {
        let img = image::open(likeness::cache::swell_dir().join(face["image"].as_str().unwrap()))
            .unwrap()
            .to_rgb8();
        assert_eq!(img.dimensions(), (150, 150));
        let raw = img.into_raw();
        // The same pixels as dlib read: otherwise a difference below would
        // not be the network's.
        let sha = format!("{:x}", sha2::Sha256::digest(&raw));
        assert_eq!(sha, face["rgb_sha256"].as_str().unwrap(), "{face}");
        let x = Tensor::from_slice(&raw)
            .view([1, 150, 150, 3])
            .permute([0, 3, 1, 2])
            .to_kind(Kind::Float)
            / 255.0;
        let x = (x - Tensor::from_slice(&MEAN).view([1, 3, 1, 1])) / f64::from(STD);
        let got: Vec<f32> = Vec::try_from(tch::no_grad(|| net.forward(&x)).view([-1])).unwrap();
        let want: Vec<f32> = face["descriptor"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got.len(), 128);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "{}: off by {worst}", face["image"]);
    }
}

#[test]
fn efficientnet_lite0_matches_the_packages_pytorch_model() {
    let dir = weights_dir();
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("image.raw");
    let bytes = fixed_image();
    std::fs::write(&raw, &bytes).unwrap();
    let out = tmp.path().join("reference.json");
    let o = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/pretrained.py"
        ))
        .args([
            "reference",
            s(&dir.join("reference")),
            s(&dir.join("efficientnet-lite0-57934424.pth")),
            s(&raw),
            s(&out),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reference: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let want: Vec<f32> = reference["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(want.len(), 1000);

    let vs = nn::VarStore::new(Device::Cpu);
    let net = EfficientNetLite0::new(&(vs.root() / "backbone"));
    efficientnet::load_imagenet(&vs, "backbone").unwrap();
    let named = efficientnet::read_imagenet(&efficientnet::weights_path()).unwrap();
    let get = |k: &str| {
        named
            .iter()
            .find(|(n, _)| n == k)
            .unwrap()
            .1
            .shallow_clone()
    };
    let x = Tensor::from_slice(&bytes)
        .to_kind(Kind::Float)
        .view([1, 224, 224, 3])
        .permute([0, 3, 1, 2]);
    let x = (x - 127.0) / 128.0;
    let logits = tch::no_grad(|| {
        net.forward(&x, false)
            .matmul(&get("_fc.weight").tr())
            .g_add(&get("_fc.bias"))
    });
    let got: Vec<f32> = Vec::try_from(logits.view([-1])).unwrap();
    let top = |v: &[f32]| {
        v.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    assert_eq!(top(&got), top(&want));
    assert_eq!(top(&want) as u64, reference["top1"].as_u64().unwrap());
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!(
        "top-1 class {} (both); largest logit difference {worst:.2e}",
        top(&want)
    );
    assert!(worst < 1e-3, "largest logit difference {worst}");
    // Not a constant network: the logits spread.
    let spread =
        want.iter().fold(f32::MIN, |m, &v| m.max(v)) - want.iter().fold(f32::MAX, |m, &v| m.min(v));
    assert!(spread > 5.0, "logits spread {spread}");
}

#[test]
fn a_corrupt_weights_file_is_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("w.safetensors");
    std::fs::write(&bad, b"not weights").unwrap();
    let e = efficientnet::read_imagenet(&bad).err().unwrap().to_string();
    assert!(e.contains("sha256") && e.contains("pretrained.sh"), "{e}");
    let e = efficientnet::read_imagenet(&tmp.path().join("none"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("pretrained.sh") && e.contains("--arch convnet"),
        "{e}"
    );
}

/// `train` with no --arch on johns crops at `--input-size 96` (which rules
/// out dlib's 150 px face descriptor) picks EfficientNet-Lite0,
/// fine-tunes its top only, with batch norm frozen, and the model embeds
/// and exports as any other.
#[test]
fn defaults_fine_tune_efficientnet_on_colour_faces() {
    weights_dir();
    let tmp = tempfile::tempdir().unwrap();
    let data = johns_train_csv(tmp.path());
    let out = tmp.path().join("m");
    let o = common::likeness(&[
        "--device",
        "cpu",
        "train",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--max-steps",
        "12",
        "--val",
        "none",
        "--input-size",
        "96",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("arch: efficientnet-lite0"), "{err}");
    assert!(err.contains("batch norm frozen"), "{err}");
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
    assert_eq!(card["spec"]["arch"], "efficientnet-lite0");
    assert_eq!(card["lr"], 1e-3);
    let decisions = card["derivation"]["decisions"].as_array().unwrap();
    assert!(
        decisions.iter().any(|d| d["setting"] == "arch"),
        "{decisions:?}"
    );

    // Frozen layers (and every batch norm's statistics) are ImageNet's;
    // the last blocks and the head moved.
    let (net, _) = likeness::train::output::load(&out, Device::Cpu).unwrap();
    let imagenet = efficientnet::read_imagenet(&efficientnet::weights_path()).unwrap();
    let vars = net.vs.variables();
    let (mut same, mut moved) = (0, 0);
    for (k, t) in &imagenet {
        let Some(v) = vars.get(&format!("backbone.{k}")) else {
            continue;
        };
        let diff = (v - t).abs().max().double_value(&[]);
        let frozen = efficientnet::is_frozen(&format!("backbone.{k}")) || k.contains("running_");
        if frozen {
            assert!(diff == 0.0, "{k} changed by {diff}");
            same += 1;
        } else if diff > 0.0 {
            moved += 1;
        }
    }
    assert!(same > 100 && moved > 20, "{same} frozen, {moved} moved");

    indexes_and_exports(&net, &out, &data, 96);
}

/// The model in `out` (loaded as `net`) indexes `data` through the CLI, and
/// its TorchScript export agrees with it on `side` px input.
fn indexes_and_exports(net: &likeness::model::Net, out: &Path, data: &Path, side: i64) {
    let idx = out.with_extension("index");
    let o = common::likeness(&[
        "index",
        "--model",
        s(out),
        "--data",
        s(data),
        "--out",
        s(&idx),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = tch::CModule::load(out.join("model.pt")).unwrap();
    let x = Tensor::randn([2, 3, side, side], (Kind::Float, Device::Cpu));
    let a = tch::no_grad(|| net.forward_t(&x, false));
    let b = tch::no_grad(|| script.forward_ts(&[&x]).unwrap());
    let d = (a - b).abs().max().double_value(&[]);
    assert!(d < 1e-4, "TorchScript export differs by {d}");
}

/// `train --arch dlib-resnet` on johns chips: dlib's trunk stays as dlib
/// made it, its last block, linear layer and the head move, and the model
/// embeds through the CLI and exports as any other.
#[test]
fn dlib_resnet_fine_tunes_its_top_and_exports() {
    use likeness::model::dlib_resnet;
    let tmp = tempfile::tempdir().unwrap();
    let data = johns_train_csv(tmp.path());
    let out = tmp.path().join("m");
    let o = common::likeness(&[
        "--device",
        "cpu",
        "train",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--arch",
        "dlib-resnet",
        "--max-steps",
        "40",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("input size: 150 px"), "{err}");
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
    assert_eq!(card["spec"]["arch"], "dlib-resnet");
    assert_eq!(card["spec"]["input_size"], 150);

    let (net, _) = likeness::train::output::load(&out, Device::Cpu).unwrap();
    let dlib = nn::VarStore::new(Device::Cpu);
    let _ = dlib_resnet::DlibResNet::new(&(dlib.root() / "backbone"));
    dlib_resnet::load_dlib(&dlib).unwrap();
    let vars = net.vs.variables();
    let (mut same, mut moved) = (0, 0);
    for (k, t) in dlib.variables() {
        let diff = (&vars[&k] - t).abs().max().double_value(&[]);
        if dlib_resnet::is_frozen(&k) {
            assert!(diff == 0.0, "{k} changed by {diff}");
            same += 1;
        } else if diff > 0.0 {
            moved += 1;
        }
    }
    // 27 convolutions and 27 affine layers, two variables each, are frozen;
    // the last block's 2 convolutions, 2 affine layers and the fc move.
    assert_eq!((same, moved), (108, 9));

    indexes_and_exports(&net, &out, &data, 150);

    // Other sizes are refused with what to pass.
    let o = common::likeness(&[
        "--device",
        "cpu",
        "train",
        "--data",
        s(&data),
        "--out",
        s(&tmp.path().join("m2")),
        "--arch",
        "dlib-resnet",
        "--input-size",
        "96",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("--input-size 150"),
        "{err}"
    );
}
