//! The library's one error type. Every message says what is wrong and, where
//! it can, what to do about it. `anyhow` is used only in `main`.
use std::path::PathBuf;

/// Result alias used throughout the `likeness` library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: file not found")]
    NotFound { path: PathBuf },

    #[error("{path}: cannot decode image: {reason}")]
    Decode { path: PathBuf, reason: String },

    #[error(
        "{path}: image is {width}x{height} = {pixels} pixels, over the limit of {limit} pixels \
         (a decompression bomb or a huge scan?); shrink it or raise the limit"
    )]
    ImageTooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },

    #[error(
        "{path}: region x={x},y={y},w={w},h={h} lies outside the {width}x{height} image; \
         fix the box so that x+w <= width and y+h <= height"
    )]
    RegionOutside {
        path: PathBuf,
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        width: u32,
        height: u32,
    },

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

    #[error("{path}: not a valid IDX file: {reason}")]
    Idx { path: PathBuf, reason: String },

    #[error(
        "{path}: cannot tell what kind of data source this is; give a folder of class folders \
         (root/<class>/<image>), a .csv manifest (path,label[,x,y,w,h]) or an IDX image file \
         (*-images-idx3-ubyte[.gz])"
    )]
    UnknownSource { path: PathBuf },

    #[error("invalid setting: {0}")]
    Invalid(String),

    #[error("device: {0}")]
    Device(String),

    #[error(transparent)]
    Torch(#[from] tch::TchError),

    #[error(transparent)]
    Index(#[from] likeness_index::Error),
}

impl Error {
    /// An I/O error tied to the file it concerns; a missing file gets its own variant.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound { path }
        } else {
            Error::Io { path, source }
        }
    }
}
