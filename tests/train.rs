//! The trainer: loss parity with PyTorch, determinism, TorchScript export,
//! and its errors on bad input.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use likeness::train::loss::{loss, LossConfig, LossKind};
use tch::{Kind, Tensor};

/// The venv's Python (with torch and numpy); `make test` sets LIKENESS_PYTHON.
fn python() -> PathBuf {
    let p = std::env::var_os("LIKENESS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| likeness::cache::cache_dir().join("torch-2.11.0/bin/python"));
    assert!(
        p.exists(),
        "{} missing: run `make venv` (or `make test`)",
        p.display()
    );
    p
}

fn run_python(script: &str, stdin: &str, args: &[&str]) -> String {
    use std::io::Write;
    let mut child = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn value(t: &Tensor) -> f64 {
    t.double_value(&[])
}

#[test]
fn hand_checked_tiny_case() {
    // Anchors (1), (0); positives (1), (2). Logits [[1, 2], [0, 0]]:
    // anchor 0: log(1 + e^(2-1)) = 1.3132617, anchor 1: log 2 = 0.6931472.
    // L2: 0.002 · ¼ · (0.5 + 2.5) = 0.0015.
    let a = Tensor::from_slice(&[1.0f32, 0.0]).view([2, 1]);
    let p = Tensor::from_slice(&[1.0f32, 2.0]).view([2, 1]);
    let l = Tensor::from_slice(&[0i64, 1]);
    let mut cfg = LossConfig::default();
    let mc = value(&loss(&cfg, &a, &p, &l, 1).unwrap());
    assert!(
        (mc - (1.3132617 + std::f64::consts::LN_2) / 2.0 - 0.0015).abs() < 1e-6,
        "{mc}"
    );
    cfg.kind = LossKind::NpairOvo;
    let ovo = value(&loss(&cfg, &a, &p, &l, 1).unwrap());
    assert!(
        (ovo - mc).abs() < 1e-6,
        "with N = 2, ovo equals mc: {ovo} vs {mc}"
    );
    // Triplet, margin 1: embeddings 1, 0, 1, 2 with classes 0, 1, 0, 1.
    // Hardest positive / negative distances: (0, 1), (2, 1), (0, 1), (2, 1).
    cfg.kind = LossKind::Triplet;
    let tr = value(&loss(&cfg, &a, &p, &l, 1).unwrap());
    assert!(
        (tr - (0.0 + 2.0 + 0.0 + 2.0) / 4.0 - 0.0015).abs() < 1e-5,
        "{tr}"
    );
}

const PYTORCH_LOSSES: &str = r#"
import json, sys, torch, torch.nn.functional as F
d = json.load(sys.stdin)
T, N, D = d["tuples"], d["n"], d["dim"]
a = torch.tensor(d["anchors"], dtype=torch.float64).view(T * N, D)
p = torch.tensor(d["positives"], dtype=torch.float64).view(T * N, D)
lab = torch.tensor(d["labels"])
lam, margin = d["l2_reg"], d["margin"]
l2 = lam * 0.25 * ((a ** 2).sum(1).mean() + (p ** 2).sum(1).mean())
logits = a.view(T, N, D) @ p.view(T, N, D).transpose(1, 2)
mc = F.cross_entropy(logits.reshape(T * N, N), torch.arange(N).repeat(T))
# ovo: for each anchor, sum over j != i of log(1 + exp(l_ij - l_ii))
diff = logits - logits.diagonal(dim1=1, dim2=2).unsqueeze(2)
mask = 1 - torch.eye(N, dtype=torch.float64)
ovo = (F.softplus(diff) * mask).sum(2).mean()
# triplet, batch-hard, Euclidean
e = torch.cat([a, p]); ids = lab.repeat(2)
dist = torch.cdist(e, e)
same = ids[:, None] == ids[None, :]
eye = torch.eye(len(e), dtype=torch.bool)
hp = torch.where(same & ~eye, dist, torch.zeros_like(dist)).amax(1)
hn = torch.where(~same, dist, torch.full_like(dist, float("inf"))).amin(1)
tr = F.relu(hp - hn + margin).mean()
print(json.dumps({"npair-mc": (mc + l2).item(), "npair-ovo": (ovo + l2).item(), "triplet": (tr + l2).item()}))
"#;

#[test]
fn losses_agree_with_pytorch_within_1e_5() {
    let (t, n, d) = (3i64, 5i64, 8i64);
    let gen = |off: f64| -> Vec<f32> {
        (0..t * n * d)
            .map(|i| ((i as f64 * 0.37 + off).sin() * 1.5) as f32)
            .collect()
    };
    let (av, pv) = (gen(0.1), gen(2.3));
    // Classes recur across tuples (as with few classes): tuple t uses classes t..t+N mod 6.
    let labels: Vec<i64> = (0..t)
        .flat_map(|tt| (0..n).map(move |c| (tt + c) % 6))
        .collect();
    let input = serde_json::json!({
        "tuples": t, "n": n, "dim": d, "anchors": av, "positives": pv, "labels": labels,
        "l2_reg": 0.01, "margin": 0.5,
    });
    let out: serde_json::Value =
        serde_json::from_str(&run_python(PYTORCH_LOSSES, &input.to_string(), &[])).unwrap();
    let a = Tensor::from_slice(&av).view([t * n, d]);
    let p = Tensor::from_slice(&pv).view([t * n, d]);
    let l = Tensor::from_slice(&labels);
    for (kind, name) in [
        (LossKind::NpairMc, "npair-mc"),
        (LossKind::NpairOvo, "npair-ovo"),
        (LossKind::Triplet, "triplet"),
    ] {
        let cfg = LossConfig {
            kind,
            l2_reg: 0.01,
            margin: 0.5,
        };
        let ours = value(&loss(&cfg, &a, &p, &l, t).unwrap().to_kind(Kind::Double));
        let theirs = out[name].as_f64().unwrap();
        assert!(
            (ours - theirs).abs() < 1e-5,
            "{name}: likeness {ours} vs pytorch {theirs}"
        );
    }
}

use common::likeness;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Arguments of a short CPU training on the Fashion-MNIST test split: one
/// thread, 1 epoch of 4 steps, 2 tuples, no validation. `set` replaces those
/// values (an empty one drops the option) or adds options (clap refuses an
/// option given twice).
fn train_args(out: &Path, set: &[(&str, &str)]) -> Vec<String> {
    let mut opts: Vec<(&str, &str)> = vec![
        ("--threads", "1"),
        ("--epochs", "1"),
        ("--steps-per-epoch", "4"),
        ("--tuples", "2"),
        ("--val", "none"),
    ];
    for &(key, value) in set {
        match opts.iter_mut().find(|(k, _)| *k == key) {
            Some(opt) => opt.1 = value,
            None => opts.push((key, value)),
        }
    }
    let data = common::fashion_test();
    let mut args: Vec<String> = [
        "--device",
        "cpu",
        "train",
        "--data",
        s(&data),
        "--out",
        s(out),
    ]
    .map(String::from)
    .to_vec();
    // An empty value drops the option.
    for (key, value) in opts.into_iter().filter(|(_, v)| !v.is_empty()) {
        args.extend([key.to_string(), value.to_string()]);
    }
    args
}

/// A model folder's `model.json`.
fn read_card(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap()
}

fn run(args: &[String]) -> Output {
    likeness(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A quick training on the Fashion-MNIST test split.
fn quick_train(out: &Path, seed: &str) -> Output {
    run(&train_args(out, &[("--seed", seed)]))
}

#[test]
fn same_seed_on_one_cpu_thread_gives_bit_identical_weights() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let o = quick_train(out, "7");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let wa = std::fs::read(a.join("weights.safetensors")).unwrap();
    let wb = std::fs::read(b.join("weights.safetensors")).unwrap();
    assert_eq!(wa, wb, "weights differ between two runs with the same seed");
    // A different seed gives different weights (the test can fail).
    let c = dir.path().join("c");
    let o = quick_train(&c, "8");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_ne!(wa, std::fs::read(c.join("weights.safetensors")).unwrap());
    for f in ["model.json", "train_log.csv", "model.pt"] {
        assert!(a.join(f).is_file(), "{f} missing");
    }
}

/// `--val-every 2` over 3 epochs validates after epochs 2 and 3 only, and
/// keeps a validated epoch's weights.
#[test]
fn validation_runs_every_n_epochs_and_after_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let o = run(&train_args(
        &out,
        &[
            ("--threads", "2"),
            ("--epochs", "3"),
            ("--steps-per-epoch", "3"),
            ("--tuples", "1"),
            ("--val", "images:0.05"),
            ("--val-every", "2"),
        ],
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log = std::fs::read_to_string(out.join("train_log.csv")).unwrap();
    let recall: Vec<&str> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(4).unwrap())
        .collect();
    assert_eq!(recall.len(), 3, "{log}");
    assert!(recall[0].is_empty(), "epoch 1 was validated: {log}");
    assert!(!recall[1].is_empty() && !recall[2].is_empty(), "{log}");
    let card = read_card(&out);
    let best = card["best_epoch"].as_u64().unwrap();
    assert!(best == 2 || best == 3, "best epoch {best}");
    // The card says where the model trained.
    assert_eq!(card["device"], "cpu (2 threads)");
}

#[test]
fn torchscript_export_gives_the_same_embeddings_in_pytorch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    let o = quick_train(&out, "7");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (net, card) = likeness::train::output::load(&out, tch::Device::Cpu).unwrap();
    let ds = likeness::data::Dataset::open(common::fashion_test()).unwrap();
    let idx: Vec<usize> = (0..64).collect();
    let samples = ds.load_many(&idx).unwrap();
    let images: Vec<_> = samples.iter().map(|s| &s.image).collect();
    let input = likeness::transform::batch_input(&images, &card.spec, None, &[]);
    let ours = likeness::embed::embed_tensor(&net, &input, 64, tch::Device::Cpu).unwrap();
    let x = dir.path().join("x.npy");
    let y = dir.path().join("y.npy");
    likeness_index::npy::write(&x, &input, &[64, 28 * 28]).unwrap();
    run_python(
        "import sys, numpy as np, torch\n\
         m = torch.jit.load(sys.argv[1]); m.eval()\n\
         x = torch.from_numpy(np.load(sys.argv[2])).view(-1, 1, 28, 28)\n\
         with torch.no_grad(): y = m(x)\n\
         np.save(sys.argv[3], y.numpy().astype(np.float32))\n",
        "",
        &[s(&out.join("model.pt")), s(&x), s(&y)],
    );
    let theirs = likeness_index::npy::read_matrix(&y).unwrap();
    assert_eq!((theirs.rows, theirs.dim), (64, card.spec.dim as usize));
    let worst = ours
        .iter()
        .zip(&theirs.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst < 1e-4,
        "model.pt differs from likeness by up to {worst}"
    );
}

/// An image folder: `classes[i]` images of class `ci`, 16×16 RGB.
fn folder(dir: &Path, counts: &[usize]) -> PathBuf {
    let root = dir.join("imgs");
    for (c, &n) in counts.iter().enumerate() {
        let cd = root.join(format!("c{c}"));
        std::fs::create_dir_all(&cd).unwrap();
        for i in 0..n {
            let img = image::RgbImage::from_fn(16, 16, |x, y| {
                image::Rgb([(c * 60) as u8, (x * 8 + i as u32) as u8, (y * 8) as u8])
            });
            img.save(cd.join(format!("{i}.png"))).unwrap();
        }
    }
    root
}

/// Without --epochs a seeded run on a tiny set stops early, once the
/// held-out Recall@1 (then MAP@R) has not improved for --patience
/// validations, and keeps the best validated weights.
#[test]
fn early_stopping_ends_a_tiny_run_before_max_steps_with_the_best_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = folder(dir.path(), &[12, 12, 12, 12]);
    let out = dir.path().join("m");
    let o = likeness(&[
        "--device",
        "cpu",
        "--threads",
        "1",
        "train",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--val",
        "images:0.25",
        "--max-steps",
        "400",
        "--min-steps",
        "20",
        "--val-steps",
        "10",
        "--patience",
        "3",
        "--seed",
        "3",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // The decisions are printed and recorded.
    assert!(
        err.contains("decided: input 20 px, 16 images per step"),
        "{err}"
    );
    let card = read_card(&out);
    let run = &card["run"];
    let steps = run["steps"].as_u64().unwrap();
    assert!(steps < 400, "ran to --max-steps: {run}");
    assert!(
        run["stopped"].as_str().unwrap().starts_with("early stop"),
        "{run}"
    );
    assert_eq!(run["val_interval"], 10);
    let decisions = card["derivation"]["decisions"].as_array().unwrap();
    assert!(
        decisions.iter().any(|d| d["setting"] == "input size"),
        "{decisions:?}"
    );
    // The kept interval is the best validated one, followed by at least 3
    // others and 40 steps (a tenth of --max-steps).
    let epochs = card["epochs"].as_array().unwrap();
    let key = |e: &serde_json::Value| {
        let v = &e["validation"];
        (
            v["recall@1"].as_f64().unwrap(),
            v["map@r"].as_f64().unwrap(),
        )
    };
    let best = card["best_epoch"].as_u64().unwrap() as usize;
    let kept = key(&epochs[best - 1]);
    assert!(epochs.iter().all(|e| key(e) <= kept), "{epochs:?}");
    assert!(epochs.len() >= best + 3, "{epochs:?}");
    assert!(
        steps >= epochs[best - 1]["step"].as_u64().unwrap() + 40,
        "{run}"
    );
    assert!(card["baselines"]["pixels"]["recall@1"].as_f64().is_some());
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("verdict: "), "{stdout}");
}

/// Without --epochs, Ctrl-C mid-interval and --resume give the weights of
/// an uninterrupted run, bit for bit (one thread).
#[test]
fn ctrl_c_and_resume_work_without_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &Path, more: &[&str]| {
        let mut a = train_args(
            out,
            &[
                ("--epochs", ""),
                ("--steps-per-epoch", ""),
                ("--val", "images:0.02"),
                ("--max-steps", "40"),
                ("--val-steps", "10"),
            ],
        );
        a.extend(more.iter().map(|m| m.to_string()));
        a
    };
    let out = dir.path().join("m");
    let (mut child, err) = interrupt_when(&args(&out, &[]), |line| line.starts_with("step "));
    assert_eq!(child.wait().unwrap().code(), Some(130), "{err}");
    assert!(err.contains("stopped at step"), "{err}");
    let o = run(&args(&out, &["--resume"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let whole = dir.path().join("whole");
    let o = run(&args(&whole, &[]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(out.join("weights.safetensors")).unwrap(),
        std::fs::read(whole.join("weights.safetensors")).unwrap(),
        "resumed and uninterrupted runs differ"
    );
    let (a, b) = (read_card(&out), read_card(&whole));
    assert_eq!(a["run"]["steps"], 40);
    assert_eq!(a["epochs"].as_array().unwrap().len(), 4);
    for e in 0..4 {
        assert_eq!(
            a["epochs"][e]["loss"], b["epochs"][e]["loss"],
            "interval {e}"
        );
    }
}

/// --time-budget stops training within one validation interval of it.
#[test]
fn time_budget_is_honoured_within_one_validation_interval() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    // The budget counts from the start (opening the data and the baselines
    // take a few seconds of it on a busy machine).
    let budget = 15.0;
    let o = run(&train_args(
        &out,
        &[
            ("--threads", "2"),
            ("--epochs", ""),
            ("--steps-per-epoch", ""),
            ("--val", "images:0.02"),
            ("--val-steps", "10"),
            ("--time-budget", "15s"),
        ],
    ));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let card = read_card(&out);
    let run = &card["run"];
    assert!(
        run["stopped"].as_str().unwrap().starts_with("time budget"),
        "{run}"
    );
    // Once a step was timed, the learning rate's cosine was fitted to the
    // budget.
    if run["step_seconds"].as_f64().unwrap() > 0.0 {
        assert!(run["horizon"].as_u64().unwrap() < 1_960, "{run}");
    }
    let last = card["epochs"].as_array().unwrap().last().unwrap().clone();
    let interval = last["seconds"].as_f64().unwrap() + run["val_seconds"].as_f64().unwrap();
    let total = card["total_seconds"].as_f64().unwrap();
    // Past the last interval: the model folder is written (model.pt traced,
    // curves drawn), 1–2 s on this 2-core machine under load.
    assert!(
        total >= budget && total - budget <= interval + 2.0,
        "{total:.2}s for a {budget}s budget, interval {interval:.2}s: {run}"
    );
}

fn train_err(args: &[&str]) -> String {
    let o = likeness(args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "expected an error: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!e.contains("panicked"), "{e}");
    e
}

#[test]
fn bad_training_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let base = |data: &Path| {
        vec![
            "--device".to_string(),
            "cpu".into(),
            "train".into(),
            "--data".into(),
            s(data).into(),
            "--out".into(),
            s(&out).into(),
            "--epochs".into(),
            "1".into(),
            "--steps-per-epoch".into(),
            "1".into(),
            "--val".into(),
            "none".into(),
        ]
    };
    let run = |data: &Path, extra: &[&str]| {
        let mut a = base(data);
        a.extend(extra.iter().map(|x| x.to_string()));
        train_err(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // One class.
    let one = folder(&dir.path().join("one"), &[4]);
    assert!(run(&one, &[]).contains("at least 2 classes"));
    // A class with a single image: listed, and --min-per-class drops it.
    let small = folder(&dir.path().join("small"), &[3, 1, 3]);
    let e = run(&small, &[]);
    assert!(e.contains("c1 (1)") && e.contains("--min-per-class"), "{e}");
    let mut ok = base(&small);
    ok.extend(
        [
            "--min-per-class",
            "2",
            "--input-size",
            "16",
            "--tuples",
            "1",
        ]
        .map(String::from),
    );
    let o = likeness(&ok.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // ... naming it, and model.json records it as left out (its `classes`
    // keep every label's name).
    assert!(
        err.contains(
            "dropped classes: 1 (--min-per-class 2); fewer training images than that: c1 (1)"
        ),
        "{err}"
    );
    let card = read_card(&out);
    assert_eq!(
        card["dropped_classes"],
        serde_json::json!([{"class": "c1", "images": 1}])
    );
    assert_eq!(card["classes"], serde_json::json!(["c0", "c1", "c2"]));
    // An output folder that holds a model is refused without --force.
    assert!(run(&small, &["--min-per-class", "2"]).contains("--force"));
    std::fs::remove_dir_all(&out).unwrap();
    // More classes per tuple than classes.
    let three = folder(&dir.path().join("three"), &[2, 2, 2]);
    assert!(run(&three, &["--classes-per-tuple", "4"]).contains("more than the 3 training classes"));
    assert!(run(&three, &["--val-every", "0"]).contains("--val-every must be at least 1"));
    assert!(run(&three, &["--eval-batch", "0"]).contains("`0` is not a batch"));
    let e = run(&three, &["--loss", "triplet", "--margin=-1"]);
    assert!(e.contains("--margin -1: give a positive number"), "{e}");
    let e = run(&three, &["--input-size", "100000"]);
    assert!(e.contains("over the 1024 px"), "{e}");
    // A TorchScript file that is not one.
    let junk = dir.path().join("junk.pt");
    std::fs::write(&junk, b"not a model").unwrap();
    let arch = format!("torchscript:{}", junk.display());
    assert!(run(&three, &["--arch", &arch]).contains("not a loadable TorchScript module"));
    // CUDA asked for where there is none.
    if !tch::Cuda::is_available() {
        assert!(run(&three, &["--device", "cuda"]).contains("CUDA is not available"));
    }
    // Held-out sets: one image cannot be validated leave-one-out; three,
    // two of one class, can, and Recall@4 and @8 are then Recall@2 (all the
    // other images).
    let held_out = |data: &Path, val: &str| {
        let mut a = base(data);
        *a.last_mut().unwrap() = val.to_string();
        a.extend(["--input-size", "16", "--tuples", "1"].map(String::from));
        a
    };
    let one_held = held_out(&folder(&dir.path().join("tiny"), &[3, 2]), "images:0.34");
    let e = train_err(&one_held.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(e.contains("held-out set has 1 image"), "{e}");
    let three_held = held_out(
        &folder(&dir.path().join("small-val"), &[4, 3]),
        "images:0.34",
    );
    let o = likeness(&three_held.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let card = read_card(&out);
    let v = &card["epochs"][0]["validation"];
    assert_eq!(v["queries"], 3, "{v}");
    assert_eq!(
        (&v["recall@4"], &v["recall@8"]),
        (&v["recall@2"], &v["recall@2"]),
        "{v}"
    );
}

/// A validation asked for (--val images:F|classes:F, --val-data) that
/// leaves no held-out image with another of its class to find is refused,
/// naming the flags: --val-data with --val classes:F validates on its
/// images of the classes held out of --data, and trained without
/// validating when it had none.
#[test]
fn validation_asked_for_that_holds_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = folder(&dir.path().join("data"), &[3, 3, 3]);
    // Other classes than --data's: d0, d1.
    let other = folder(&dir.path().join("other"), &[3, 3]);
    for c in ["c0", "c1"] {
        let to = other.join(c.replace('c', "d"));
        std::fs::rename(other.join(c), to).unwrap();
    }
    let lone = folder(&dir.path().join("lone"), &[1, 1]);
    let same = folder(&dir.path().join("same"), &[2, 2, 3]);
    let out = dir.path().join("m");
    let args = |more: &[&str]| {
        let mut a: Vec<String> = [
            "--device",
            "cpu",
            "--threads",
            "1",
            "train",
            "--data",
            s(&data),
            "--out",
            s(&out),
            "--epochs",
            "1",
            "--steps-per-epoch",
            "1",
            "--input-size",
            "16",
            "--tuples",
            "1",
        ]
        .map(String::from)
        .to_vec();
        a.extend(more.iter().map(|m| m.to_string()));
        a
    };
    let refused = |more: &[&str]| {
        let a = args(more);
        let e = train_err(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!out.exists(), "{more:?} touched --out: {e}");
        e
    };
    let e = refused(&["--val", "classes:0.34", "--val-data", s(&other)]);
    assert!(
        e.contains("--val classes:0.34 with --val-data")
            && e.contains("none of its images are of those classes (c2 (0))")
            && e.contains("pass --val none"),
        "{e}"
    );
    let e = refused(&["--val", "images:0.1"]);
    assert!(
        e.contains("--val images:0.1 holds out 0 image(s)") && e.contains("raise F"),
        "{e}"
    );
    let e = refused(&["--val-data", s(&lone)]);
    assert!(e.contains("no two of its images are of one class"), "{e}");
    // --val-data with images of the held-out class validates on them.
    let a = args(&["--val", "classes:0.34", "--val-data", s(&same)]);
    let o = run(&a);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(read_card(&out)["epochs"][0]["validation"]["queries"], 3);
}

/// Without --val, classes of 8 images (the demo's johns split) hold
/// nothing out and train to the end of the budget; classes of 20 hold out a
/// tenth. Each run says why, and model.json records the split in effect.
#[test]
fn tiny_classes_hold_nothing_out_by_default() {
    let dir = tempfile::tempdir().unwrap();
    for (counts, kind, held) in [
        (&[8usize, 8, 8][..], "none", 0),
        (&[20, 20, 20][..], "images", 6),
    ] {
        let sub = dir.path().join(kind);
        let data = folder(&sub, counts);
        let out = sub.join("m");
        let o = likeness(&[
            "--device",
            "cpu",
            "--threads",
            "1",
            "train",
            "--data",
            s(&data),
            "--out",
            s(&out),
            "--arch",
            "convnet",
            "--input-size",
            "16",
            "--tuples",
            "1",
            "--max-steps",
            "20",
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(err.contains(&format!("({held} held out)")), "{err}");
        assert!(err.contains(&format!("held out: {kind}")), "{err}");
        let card = read_card(&out);
        assert_eq!(card["val"]["kind"], kind, "{}", card["val"]);
        let run = &card["run"];
        if held == 0 {
            assert!(err.contains("nothing held out to stop early by"), "{err}");
            assert_eq!(run["steps"], 20, "{run}");
        }
    }
}

#[test]
fn torchscript_backbones_are_fine_tuned_and_must_output_2d() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("backbone.pt");
    let flat = dir.path().join("flat4d.pt");
    run_python(
        "import sys, torch, torch.nn as nn\n\
         torch.manual_seed(0)\n\
         b = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())\n\
         torch.jit.script(b).save(sys.argv[1])\n\
         torch.jit.script(nn.Conv2d(3, 4, 3)).save(sys.argv[2])\n",
        "",
        &[s(&good), s(&flat)],
    );
    let data = folder(dir.path(), &[3, 3, 3]);
    let out = dir.path().join("m");
    let arch = format!("torchscript:{}", good.display());
    let o = likeness(&[
        "--device",
        "cpu",
        "train",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--arch",
        &arch,
        "--input-size",
        "16",
        "--epochs",
        "2",
        "--steps-per-epoch",
        "3",
        "--tuples",
        "2",
        "--val",
        "none",
        "--dim",
        "4",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The backbone's weights moved: fine-tuning, not a frozen feature extractor.
    let (net, _) = likeness::train::output::load(&out, tch::Device::Cpu).unwrap();
    let vars = net.vs.variables();
    assert!(
        vars.keys().any(|k| k.starts_with("backbone")),
        "{:?}",
        vars.keys()
    );
    let arch = format!("torchscript:{}", flat.display());
    let e = train_err(&[
        "--device",
        "cpu",
        "train",
        "--data",
        s(&data),
        "--out",
        s(&dir.path().join("m2")),
        "--arch",
        &arch,
        "--input-size",
        "16",
        "--val",
        "none",
    ]);
    assert!(e.contains("to [B, F]"), "{e}");
}

#[test]
fn ctrl_c_leaves_a_checkpoint_that_resume_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m");
    // Two epochs of 60 steps in `dir`, with `more` options.
    let two_epochs = |dir: &Path, more: &[&str]| {
        let mut a = train_args(dir, &[("--epochs", "2"), ("--steps-per-epoch", "60")]);
        a.extend(more.iter().map(|m| m.to_string()));
        a
    };
    let args = two_epochs(&out, &[]);
    // Interrupt once the first epoch is reported (so inside the second one,
    // after a whole epoch has been saved), whatever the machine's speed.
    let (mut child, err) = interrupt_when(&args, |line| {
        line.split_whitespace().take(2).eq(["epoch", "1"])
    });
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("stopped at epoch 2"), "{err}");
    assert!(err.contains("--resume"), "{err}");
    assert!(out.join("checkpoint.json").is_file());
    assert!(
        !out.join("model.json").exists(),
        "an interrupted run is not a finished model"
    );
    // Other commands say what the folder is.
    let o = likeness(&[
        "embed",
        "--model",
        s(&out),
        "--data",
        s(&common::fashion_test()),
        "--out",
        s(&dir.path().join("vectors")),
    ]);
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(
        msg.contains("interrupted training") && msg.contains("--resume"),
        "{msg}"
    );
    // Starting again without --resume would lose the checkpoint.
    let o = run(&args);
    assert!(!o.status.success());
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(
        msg.contains("interrupted training") && msg.contains("--resume"),
        "{msg}"
    );
    // Checked on copies: the checkpoint's tensor files come in two slots,
    // written in turn; checkpoint.json names the one it belongs to.
    let copy_of = |name: &str| {
        let copy = dir.path().join(name);
        std::fs::create_dir_all(&copy).unwrap();
        for e in std::fs::read_dir(&out).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
        copy
    };
    let ck: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("checkpoint.json")).unwrap()).unwrap();
    let slot = ck["slot"].as_u64().unwrap_or(0);
    let adam_of = |slot: u64| {
        if slot == 0 {
            "checkpoint-adam.safetensors"
        } else {
            "checkpoint-adam.1.safetensors"
        }
    };
    let damage = |path: &Path| {
        let mut bytes = std::fs::read(path).unwrap_or_else(|_| vec![0; 64]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        std::fs::write(path, bytes).unwrap();
    };
    // Its own tensors damaged: refused on --resume, naming the file.
    let copy = copy_of("copy");
    damage(&copy.join(adam_of(slot)));
    let o = run(&two_epochs(&copy, &["--resume"]));
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && msg.contains(adam_of(slot)) && msg.contains("CRC32"),
        "{msg}"
    );
    // The other slot's damaged, as a save killed half-way leaves it: the
    // checkpoint before it still resumes. Its checkpoint.json here is as
    // earlier versions wrote it, without the seconds of the steps before:
    // they are the sum of its intervals'.
    let killed = copy_of("killed");
    damage(&killed.join(adam_of(1 - slot)));
    let mut old_ck = ck.clone();
    old_ck
        .as_object_mut()
        .unwrap()
        .remove("train_seconds")
        .unwrap();
    std::fs::write(
        killed.join("checkpoint.json"),
        serde_json::to_vec(&old_ck).unwrap(),
    )
    .unwrap();
    let o = run(&two_epochs(&killed, &["--resume"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_train_seconds_add_up(&read_card(&killed));
    // --resume with other settings is refused, naming them, and only them
    // (the settings that follow from --lr were once dumped with it: ~4 KB).
    let o = run(&two_epochs(&out, &["--lr", "0.5", "--resume"]));
    let msg = String::from_utf8_lossy(&o.stderr);
    let refusal = &msg[msg.find("error:").expect(&msg)..];
    assert!(
        !o.status.success()
            && refusal.contains("\n  lr: 0.004 → 0.5\n")
            && refusal.contains("new --out")
            && refusal.lines().count() == 3,
        "{msg}"
    );
    assert!(out.join("checkpoint.json").is_file());
    // The same command with --resume finishes the training.
    let o = run(&two_epochs(&out, &["--resume"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("model.json").is_file());
    assert!(
        !out.join("checkpoint.json").exists(),
        "checkpoint removed once finished"
    );
    let card = read_card(&out);
    assert_eq!(card["epochs"].as_array().unwrap().len(), 2);
    // The seconds of steps count both runs (the resumed one's alone were
    // reported).
    assert_train_seconds_add_up(&card);
    // ... exactly as if it had never stopped: same weights, bit for bit (one
    // thread), and the interrupted epoch's mean loss over all its steps.
    let whole = dir.path().join("whole");
    let o = run(&two_epochs(&whole, &[]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(out.join("weights.safetensors")).unwrap(),
        std::fs::read(whole.join("weights.safetensors")).unwrap(),
        "resumed and uninterrupted runs differ"
    );
    let card_whole = read_card(&whole);
    for e in 0..2 {
        let (a, b) = (&card["epochs"][e]["loss"], &card_whole["epochs"][e]["loss"]);
        assert!(
            (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-9,
            "epoch {e}: {a} vs {b}"
        );
    }
}

#[test]
fn bf16_precision_runs_the_forward_pass_under_cpu_and_cuda_autocast() {
    use likeness::runtime::{autocast_state, with_precision, Precision};
    use tch::Device;
    let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
    let before = [autocast_state(Device::Cpu), autocast_state(Device::Cuda(0))];
    let (kind, inside) = with_precision(Precision::Bf16, || {
        (
            a.matmul(&a).kind(),
            [autocast_state(Device::Cpu), autocast_state(Device::Cuda(0))],
        )
    });
    assert_eq!(kind, Kind::BFloat16);
    // CUDA too, and to bfloat16 rather than CUDA's default float16 (whose
    // gradients would need loss scaling).
    assert_eq!(inside, [(true, true), (true, true)]);
    assert_eq!(
        [autocast_state(Device::Cpu), autocast_state(Device::Cuda(0))],
        before,
        "autocast is switched back afterwards"
    );
    assert!(!before[0].0 && !before[1].0);
    assert_eq!(
        with_precision(Precision::Fp32, || a.matmul(&a).kind()),
        Kind::Float
    );
}

#[test]
fn bf16_autocast_sees_weight_updates_between_steps() {
    // Regression: without clearing autocast's cache of bf16 weight copies on
    // leaving the region, every step reused the first step's weights.
    use likeness::runtime::{with_precision, Precision};
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let lin = tch::nn::linear(vs.root(), 4, 2, Default::default());
    let x = Tensor::ones([3, 4], (Kind::Float, tch::Device::Cpu));
    let before = with_precision(Precision::Bf16, || x.apply(&lin)).to_kind(Kind::Float);
    tch::no_grad(|| {
        let mut w = lin.ws.shallow_clone();
        let _ = w.g_add_scalar_(1.0);
    });
    let after = with_precision(Precision::Bf16, || x.apply(&lin)).to_kind(Kind::Float);
    let change = (after - before).abs().mean(Kind::Float).double_value(&[]);
    assert!(
        change > 1.0,
        "the second forward pass used stale weights (change {change})"
    );
}

/// Convolution weights live channels-last in memory; the saved file must
/// still hold them in the standard (contiguous NCHW) order, so that loading
/// it, here or in PyTorch, gives the same network.
#[test]
fn saved_weights_load_back_into_the_same_network() {
    use likeness::model::{Arch, ModelSpec, Net};
    use likeness::train::output::OutDir;
    let dir = tempfile::tempdir().unwrap();
    for arch in [Arch::Convnet, Arch::Resnet18] {
        let spec = ModelSpec {
            arch: arch.clone(),
            input_size: 32,
            channels: 3,
            mean: vec![0.5; 3],
            std: vec![0.25; 3],
            dim: 16,
            width: 1.0,
            flip_tta: false,
        };
        tch::manual_seed(3);
        let a = Net::new(&spec, tch::Device::Cpu).unwrap();
        let out = OutDir::prepare(&dir.path().join(format!("{arch:?}")), false, false).unwrap();
        out.save_weights(&a.vs).unwrap();
        tch::manual_seed(4);
        let mut b = Net::new(&spec, tch::Device::Cpu).unwrap();
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, tch::Device::Cpu));
        let before = tch::no_grad(|| b.forward_t(&x, false));
        out.load_weights(&mut b.vs).unwrap();
        let ea = tch::no_grad(|| a.forward_t(&x, false));
        let eb = tch::no_grad(|| b.forward_t(&x, false));
        assert!(ea.allclose(&eb, 0.0, 0.0, false), "{arch:?}");
        assert!(
            !before.allclose(&ea, 1e-3, 1e-3, false),
            "{arch:?}: the seeds differ"
        );
        // The file's tensors are the variables' values in NCHW order.
        let file = Tensor::read_safetensors(out.path("weights.safetensors")).unwrap();
        let vars = a.vs.variables();
        for (name, t) in file {
            assert!(t.is_contiguous());
            assert!(t.equal(&vars[&name].contiguous()), "{arch:?} {name}");
        }
    }
}

#[test]
fn our_adam_matches_libtorchs_bit_for_bit() {
    // The trainer's Adam (whose state goes into checkpoints) must update
    // exactly as tch's `nn::Adam` (libtorch's C++ Adam) did.
    use likeness::model::{Arch, ModelSpec, Net};
    use likeness::train::adam::Adam;
    use tch::nn::OptimizerConfig;
    // Nothing in this test binary changes torch's thread count, so both
    // networks train with the same kernels and reductions.
    let spec = ModelSpec {
        arch: Arch::Convnet,
        input_size: 16,
        channels: 1,
        mean: vec![0.5],
        std: vec![0.25],
        dim: 8,
        width: 0.5,
        flip_tta: false,
    };
    let x = Tensor::randn([6, 1, 16, 16], (Kind::Float, tch::Device::Cpu));
    for wd in [0.0, 1e-3] {
        // b starts as a copy of a (not from the same seed: other tests draw
        // from torch's global generator at the same time).
        let a = Net::new(&spec, tch::Device::Cpu).unwrap();
        let mut b = Net::new(&spec, tch::Device::Cpu).unwrap();
        b.vs.copy(&a.vs).unwrap();
        let initial: Vec<(String, Tensor)> =
            a.vs.variables()
                .into_iter()
                .map(|(n, t)| (n, t.detach().copy()))
                .collect();
        let mut theirs = tch::nn::Adam {
            wd,
            ..Default::default()
        }
        .build(&a.vs, 1e-2)
        .unwrap();
        let mut ours = Adam::new(&b.vs, 1e-2, wd);
        let loss = |net: &Net| {
            let e = net.forward_t(&x, true);
            (e.narrow(0, 0, 3) - e.narrow(0, 3, 3))
                .pow_tensor_scalar(2)
                .mean(Kind::Float)
        };
        for step in 0..12 {
            // A changing rate, as the cosine schedule does.
            let lr = 1e-2 / f64::from(step + 1);
            theirs.set_lr(lr);
            ours.lr = lr;
            theirs.backward_step(&loss(&a));
            ours.backward_step(&loss(&b)).unwrap();
        }
        let (va, vb) = (a.vs.variables(), b.vs.variables());
        assert_eq!(va.len(), vb.len());
        for (name, t) in &va {
            assert!(t.equal(&vb[name]), "weight decay {wd}: {name} differs");
        }
        assert!(
            initial.iter().any(|(n, t)| !t.equal(&va[n])),
            "the steps changed nothing"
        );
    }
}

/// A model card's `train_seconds` are those of all its intervals.
fn assert_train_seconds_add_up(card: &serde_json::Value) {
    let epochs: f64 = card["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seconds"].as_f64().unwrap())
        .sum();
    let train = card["train_seconds"].as_f64().unwrap();
    assert!(
        (train - epochs).abs() <= 1e-6 * epochs,
        "train_seconds {train}, its intervals {epochs}"
    );
}

/// Runs `likeness ARGS`, sends SIGINT when a stderr line satisfies `when`,
/// and returns the child (to wait for) and all of its stderr.
fn interrupt_when(args: &[String], when: impl Fn(&str) -> bool) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    for line in lines.by_ref() {
        let line = line.unwrap();
        err.push_str(&line);
        err.push('\n');
        if when(&line) {
            let killed = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(killed.success());
            break;
        }
    }
    for line in lines {
        err.push_str(&line.unwrap());
        err.push('\n');
    }
    (child, err)
}

/// The held-out default counts only the classes training keeps: 5 lone
/// images that `--min-per-class 2` drops beside 3 classes of 20 once made
/// the median class 1 image, so nothing was held out and training ran
/// blind to the end of its budget (as `regions --chips` output with 17 lone
/// faces beside 10 people said "1 images in the median class").
#[test]
fn classes_dropped_by_min_per_class_do_not_decide_the_held_out_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = folder(dir.path(), &[20, 20, 20, 1, 1, 1, 1, 1]);
    let out = dir.path().join("m");
    let o = likeness(&[
        "--device",
        "cpu",
        "--threads",
        "2",
        "train",
        "--data",
        s(&data),
        "--out",
        s(&out),
        "--min-per-class",
        "2",
        "--arch",
        "convnet",
        "--input-size",
        "16",
        "--max-steps",
        "2",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("held out: images:0.1; 20 images in the median class"),
        "{err}"
    );
    assert_eq!(read_card(&out)["val"]["kind"], "images", "{err}");
}
