//! Shared helpers for the integration tests.
#![allow(dead_code)]
use std::path::PathBuf;
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
