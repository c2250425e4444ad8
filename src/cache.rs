//! Where likeness keeps what it downloads: `$LIKENESS_CACHE`, by default
//! `~/.cache/likeness` (the torch venv, the datasets, apt's private lists).
use std::path::PathBuf;

/// The cache root (the app's, so that both binaries agree).
pub use likeness_app::cache::cache_dir;

/// Where `make data` puts the datasets.
pub fn data_dir() -> PathBuf {
    cache_dir().join("data")
}

/// Fashion-MNIST's files (from the Debian package dataset-fashion-mnist).
pub fn fashion_mnist_dir() -> PathBuf {
    data_dir().join("fashion-mnist")
}

/// The Fashion-MNIST training images (60,000).
pub fn fashion_mnist_train() -> PathBuf {
    fashion_mnist_dir().join("train-images-idx3-ubyte.gz")
}

/// The Fashion-MNIST test images (10,000).
pub fn fashion_mnist_test() -> PathBuf {
    fashion_mnist_dir().join("t10k-images-idx3-ubyte.gz")
}

/// dlib's aligned face crops, `johns/<Name>/*.jpg` (5 people × 11).
pub fn johns_dir() -> PathBuf {
    data_dir().join("johns")
}

/// The synthetic graded-regions set (`likeness synth-swell`, run by `make data`).
pub fn swell_dir() -> PathBuf {
    data_dir().join(format!("swell-v{}", crate::data::swell::VERSION))
}

/// dlib's examples/faces: 9 photos whose 43 faces carry 68 landmarks each
/// (`*_with_face_landmarks.xml`), the truth `regions` is tested against.
pub fn dlib_faces_dir() -> PathBuf {
    data_dir().join("dlib-faces")
}
