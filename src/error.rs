//! The library's one error type. Every message says what is wrong and, where
//! it can, what to do about it. `anyhow` is used only in `main`.
use std::path::PathBuf;

/// Result alias used throughout the `likeness` library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}:{line}: {reason}")]
    Manifest {
        path: PathBuf,
        line: u64,
        reason: String,
    },

    #[error("{path}: class folder `{class}` holds no images (jpg, jpeg, png, bmp, webp); add images or remove the folder")]
    EmptyClass { path: PathBuf, class: String },

    #[error("{path}: no labelled images found: {hint}")]
    EmptyDataset { path: PathBuf, hint: String },

    /// A folder likeness wrote (a model, an index, ...) given as data:
    /// `what` says which and what reads it.
    #[error("{path} is {what}")]
    NotData { path: PathBuf, what: String },

    #[error(
        "{path}: cannot tell what kind of data source this is; give a folder of class folders \
         (root/<class>/<image>), a .csv manifest (path,label[,x,y,w,h]) or an IDX image file \
         (*-images-idx3-ubyte[.gz])"
    )]
    UnknownSource { path: PathBuf },

    /// Input or settings that cannot be used; the message says which
    /// and what to do (no prefix: it is not always a setting).
    #[error("{0}")]
    Invalid(String),

    #[error("device: {0}")]
    Device(String),

    // Not marked as the source: anyhow's `{:#}` would print the stack again.
    #[error("{}", torch_message(.0))]
    Torch(tch::TchError),

    #[error(transparent)]
    Index(#[from] likeness_index::Error),
    /// Files, images and arguments (the torch-free app crate's errors).
    #[error(transparent)]
    App(#[from] likeness_app::Error),
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Error::Torch(e)
    }
}

/// libtorch's message without the C++ stack it appends (some twenty
/// `frame #N` lines that say nothing to a user).
fn torch_message(e: &tch::TchError) -> String {
    let text = e.to_string();
    match text.find("\nException raised from") {
        Some(at) => text[..at].trim_end().to_string(),
        None => text,
    }
}

impl Error {
    /// An I/O error tied to the file it concerns; a missing file gets its own variant.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::App(likeness_app::Error::io(path, source))
    }

    /// A missing file.
    pub fn not_found(path: impl Into<PathBuf>) -> Self {
        Error::App(likeness_app::Error::NotFound { path: path.into() })
    }
}

/// Creates the output folder `dir` (and its parents). Where a file stands
/// in the way, says so, rather than the OS's "File exists (os error 17)".
pub fn create_dir(dir: &std::path::Path) -> Result<()> {
    let blocker = dir.ancestors().find(|a| a.is_file());
    if let Some(file) = blocker {
        return Err(Error::Invalid(format!(
            "{}: {} is a file, where a folder is needed; give another path (or move the file)",
            dir.display(),
            file.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_errors_lose_their_cpp_stack() {
        let e = Error::Torch(tch::TchError::Torch(
            "The size of tensor a (32) must match the size of tensor b (64)\n\
             Exception raised from infer_size_impl at aten/src/ATen/ExpandUtils.cpp:31 \
             (most recent call first):\nframe #0: c10::Error::Error(...)\nframe #1: ..."
                .into(),
        ));
        let text = e.to_string();
        assert!(text.ends_with("the size of tensor b (64)"), "{text}");
        assert!(!text.contains("frame #"), "{text}");
    }
}
