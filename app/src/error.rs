//! The application's error type. Every message says what is wrong and, where
//! it can, what to do about it; the engine's errors pass through unchanged.
use std::path::PathBuf;

/// Result alias of the app crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The io::Error is not marked as the source: `{:#}` (anyhow) would print
    // its text a second time after the message that already holds it.
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: file not found")]
    NotFound { path: PathBuf },
    #[error("{path}: cannot decode image: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error(
        "{path}: image is {width}x{height} = {pixels} pixels, over the limit of {limit} pixels \
         ({} MP of 1024x1024; a decompression bomb or a huge scan?); shrink it, or raise the \
         limit with --max-megapixels (at most {max_megapixels})",
        limit_megapixels
    )]
    ImageTooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
        /// `limit` in the unit of `--max-megapixels`, and that option's
        /// largest value: the decoder's, carried so that this layer names
        /// no layer above it.
        limit_megapixels: u64,
        max_megapixels: u32,
    },
    #[error(
        "{path}: region x={x},y={y},w={w},h={h} lies outside the {width}x{height} image; \
         fix the box so that x+w <= width and y+h <= height (a box is x,y,w,h, not the \
         corners x0,y0,x1,y1 of a hit's JSON `region`: x0,y0,x1-x0,y1-y0)"
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
    #[error("{path}: not a valid IDX file: {reason}")]
    Idx { path: PathBuf, reason: String },
    /// A command line that cannot run as given.
    #[error("{0}")]
    Usage(String),
    /// Input or settings that cannot be used; the message says which
    /// and what to do (no prefix: it is not always a setting).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Index(#[from] likeness_index::Error),
}

impl Error {
    /// An I/O error tied to the file it concerns; a missing file gets its own variant.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        let path = path.into();
        if error.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound { path }
        } else {
            Error::Io { path, error }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `build --vectors missing.npy` once printed the OS error twice.
    #[test]
    fn io_errors_say_it_once() {
        let e = Error::io(
            "x.npy",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        );
        assert_eq!(format!("{:#}", anyhow_like(&e)), "x.npy: denied");
        let e = Error::io("y.npy", std::io::ErrorKind::NotFound.into());
        assert_eq!(e.to_string(), "y.npy: file not found");
    }

    /// What anyhow's `{:#}` prints: the message and every source after it.
    fn anyhow_like(e: &dyn std::error::Error) -> String {
        let mut s = e.to_string();
        let mut src = e.source();
        while let Some(x) = src {
            s.push_str(&format!(": {x}"));
            src = x.source();
        }
        s
    }
}
