//! Shared helpers for the integration tests.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the built `likeness` binary as a user would, without the environment
/// overrides a developer's shell may carry.
pub fn likeness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_likeness"))
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LIKENESS_DEVICE")
        .env_remove("LIKENESS_THREADS")
        .output()
        .expect("run likeness")
}

/// Writes `n` grey 24 × 24 images whose grade is their brightness (plus
/// noise) under `dir/img`, and their manifest `dir/{name}.csv`
/// (`path,label,score,subject`, one subject an image, all of label
/// `grade`): a set a small model learns grades from in a few seconds.
pub fn brightness_grades(
    dir: &Path,
    name: &str,
    n: usize,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> PathBuf {
    use rand::Rng;
    let img_dir = dir.join("img");
    std::fs::create_dir_all(&img_dir).unwrap();
    let mut csv = String::from("path,label,score,subject\n");
    for i in 0..n {
        let g: f32 = rng.random();
        let img = image::RgbImage::from_fn(24, 24, |_, _| {
            let v = (40.0 + 170.0 * g + rng.random_range(-25.0..25.0)).clamp(0.0, 255.0);
            image::Rgb([v as u8; 3])
        });
        let p = img_dir.join(format!("{name}{i}.png"));
        img.save(&p).unwrap();
        csv.push_str(&format!("{},grade,{g:.3},{name}{i}\n", p.display()));
    }
    let m = dir.join(format!("{name}.csv"));
    std::fs::write(&m, csv).unwrap();
    m
}

/// Trains the small convnet the serving and pipeline tests index with
/// (32 px, dim 16, no held-out set, 2 threads): `epochs` × `steps`, plus
/// `extra` flags. Fails the test with the trainer's output if it fails;
/// else returns what it said on stderr (the settings it derived, and why).
pub fn train_small(data: &Path, out: &Path, epochs: u32, steps: u32, extra: &[&str]) -> String {
    train_small_in(Path::new("."), data, out, epochs, steps, extra)
}

/// [`train_small`] run from `cwd`, where a relative `data` is named.
pub fn train_small_in(
    cwd: &Path,
    data: &Path,
    out: &Path,
    epochs: u32,
    steps: u32,
    extra: &[&str],
) -> String {
    let (epochs, steps) = (epochs.to_string(), steps.to_string());
    let mut args = vec![
        "--threads",
        "2",
        "train",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--arch",
        "convnet",
        "--input-size",
        "32",
        "--dim",
        "16",
        "--epochs",
        &epochs,
        "--steps-per-epoch",
        &steps,
        "--val",
        "none",
    ];
    args.extend_from_slice(extra);
    String::from_utf8_lossy(&succeeds_in(cwd, &args).stderr).into_owned()
}

/// Runs `likeness` in `cwd` (paths in `args` may be relative to it) and
/// returns what it said (stdout, then stderr); fails the test if it fails.
pub fn likeness_in(cwd: &Path, args: &[&str]) -> String {
    let o = succeeds_in(cwd, args);
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn succeeds_in(cwd: &Path, args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_likeness"))
        .current_dir(cwd)
        .args(args)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LIKENESS_DEVICE")
        .env_remove("LIKENESS_THREADS")
        .output()
        .expect("run likeness");
    assert!(
        o.status.success(),
        "likeness {args:?} in {}\n{}\n{}",
        cwd.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// A dataset fetched by `make data`; fails with the fix when it is missing.
pub fn real_data(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `make data` (or `make test`, which fetches it) first",
        path.display()
    );
    path
}

pub fn fashion_train() -> PathBuf {
    real_data(likeness::cache::fashion_mnist_train())
}
pub fn fashion_test() -> PathBuf {
    real_data(likeness::cache::fashion_mnist_test())
}
pub fn johns() -> PathBuf {
    real_data(likeness::cache::johns_dir())
}

/// The first image file of a johns identity.
pub fn johns_image(person: &str) -> PathBuf {
    let dir = johns().join(person);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    files.sort();
    files.into_iter().next().expect("johns person has images")
}
pub mod chromium;
pub mod server;
pub mod tab;
