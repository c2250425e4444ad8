//! The one error type of the crate.
//!
//! Every message says what is wrong and, where there is one, what to do about
//! it. Errors about files name the file.

use std::path::PathBuf;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `likeness-index`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system error while reading or writing `path`.
    ///
    /// The message names the file and says what to do; the operating
    /// system's own text is the error's [`source`](std::error::Error::source),
    /// which chain printers (`anyhow`'s `{:#}`) append once. (The message
    /// used to embed it as well, so such printers showed it twice.)
    #[error("{path}: {}", io_advice(source))]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A caller-supplied argument is out of its valid range.
    #[error("invalid {name} = {value}: {reason}")]
    InvalidParameter {
        /// Name of the parameter, as the CLI spells it.
        name: &'static str,
        /// The rejected value, formatted.
        value: String,
        /// What the valid range is.
        reason: String,
    },

    /// A command line that cannot be carried out as given (the message says
    /// what to change).
    #[error("{0}")]
    Usage(String),

    /// Input vectors or labels do not fit together (lengths, shapes).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A query or vector set has a different dimension than expected.
    #[error("dimension mismatch: expected vectors of dimension {expected}, got {got}; {hint}")]
    DimensionMismatch {
        /// Dimension of the index or gallery.
        expected: usize,
        /// Dimension supplied.
        got: usize,
        /// What probably went wrong.
        hint: &'static str,
    },

    /// A vector contains NaN or an infinity.
    #[error("row {row}, column {col} is {value} (not finite): a vector must hold finite numbers; remove or repair that row")]
    NonFinite {
        /// Row (vector) number, 0-based.
        row: usize,
        /// Column, 0-based.
        col: usize,
        /// The offending value.
        value: f32,
    },

    /// A vector too long for the l2 metric: its distances would overflow
    /// float32 (see `distance::MAX_L2_LENGTH`).
    #[error("row {row} has length {length:.3e}: with the l2 metric a vector must be shorter than {max:.1e}, or its distances overflow to infinity; scale the vectors down (or use a cosine index)")]
    TooLong {
        /// Row (vector) number, 0-based.
        row: usize,
        /// Its Euclidean length.
        length: f64,
        /// The longest length allowed.
        max: f64,
    },

    /// A vector of length zero cannot be normalised for the cosine metric.
    #[error("row {row} has zero length, so its cosine similarity is undefined: a cosine index cannot take it; remove that row (or use an l2 index)")]
    ZeroVector {
        /// Row (vector) number, 0-based.
        row: usize,
    },

    /// A `.npy` file is malformed or of an unsupported type.
    #[error("{path}: not a usable .npy file: {reason}")]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A file does not start with the expected magic bytes: it is not the
    /// file it claims to be (or its first bytes were overwritten).
    #[error("{path}: wrong magic bytes (expected {expected:?}); this is not a likeness index file or its header is damaged, rebuild the index")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic that was expected.
        expected: &'static str,
    },

    /// A file was written by a newer (or unknown) format version.
    #[error("{path}: format version {found} is not supported (this build reads versions {min}..={max}); upgrade likeness or rebuild the index with this version")]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the file.
        found: u32,
        /// Oldest supported version.
        min: u32,
        /// Newest supported version.
        max: u32,
    },

    /// A file is shorter than its header says.
    #[error("{path}: truncated: needs at least {expected} bytes but has {actual}; the copy is incomplete, copy or rebuild the index again")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes needed.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },

    /// A file's size differs from the size recorded in `manifest.json`.
    #[error("{path}: size is {actual} bytes but manifest.json records {expected}; the index directory is damaged or mixed from two builds, rebuild it")]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// Size in the manifest.
        expected: u64,
        /// Size on disk.
        actual: u64,
    },

    /// A file's CRC32 differs from the checksum recorded for it.
    #[error("{path}: checksum mismatch (recorded {expected:#010x}, computed {actual:#010x}); the file is corrupt, rebuild the index")]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// Recorded CRC32.
        expected: u32,
        /// Computed CRC32.
        actual: u32,
    },

    /// A file has valid framing but inconsistent contents (for example a
    /// neighbour id past the end of the index).
    #[error("{path}: corrupt: {reason}; rebuild the index")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is inconsistent.
        reason: String,
    },

    /// The change log has a damaged record that is not a crash's torn
    /// tail (a crash only ever cuts the last record short): records, or
    /// more bytes than one append writes, follow it. Nothing is cut off:
    /// writers refuse the index, since cutting the log there would erase
    /// acknowledged changes.
    #[error("{path}: the change log is damaged at byte {offset}: {reason}. A crash can only cut the last record short, so this is damage to the file, not an unfinished write; nothing was changed and no change will be written until it is repaired. Restore the index directory (or this file) from a backup; the records before byte {offset} ({before}) are intact")]
    DamagedLog {
        /// The log file.
        path: PathBuf,
        /// Where the damaged record starts.
        offset: u64,
        /// Whole records before it.
        before: usize,
        /// What follows the damaged record.
        reason: String,
    },

    /// An index's vectors are stored in a form this build does not know
    /// (a `store` in `manifest.json` or a store code in the compact file).
    #[error("{path}: vector store {found} is not supported (this build reads {known}); upgrade likeness or rebuild the index with --store f32")]
    UnsupportedStore {
        /// The file.
        path: PathBuf,
        /// The store found.
        found: String,
        /// The stores this build reads ([`crate::quant::STORE_NAMES`]).
        known: &'static str,
    },

    /// The index directory itself is missing, or is not a directory.
    #[error("{path}: {what}; an index is the folder that `likeness build` or `likeness index` writes (or likeness.build in Python)", what = if path.exists() { "not a directory" } else { "no such directory" })]
    NoIndex {
        /// The path given as the index.
        path: PathBuf,
    },

    /// The index directory is missing because a rebuild replacing it
    /// (`build --force` on a filesystem that cannot swap directories)
    /// stopped between its two renames, and the previous index it left
    /// under a hidden name could not be put back
    /// ([`crate::fsutil::restore_replaced`]).
    #[error("{path}: no such directory, but a rebuild that replaced it stopped between its two renames, and the index it replaced is hidden as {}: {reason}", list(hidden))]
    UnfinishedReplace {
        /// The path given as the index.
        path: PathBuf,
        /// The hidden copies found.
        hidden: Vec<PathBuf>,
        /// Why it was not put back, and what to do.
        reason: String,
    },

    /// An index file that the manifest requires is missing.
    #[error("{path}: missing; an index directory needs manifest.json, graph.bin and vectors.npy (meta.bin is optional)")]
    MissingFile {
        /// The missing file.
        path: PathBuf,
    },

    /// Another process is changing this index.
    #[error("{path}: another process is changing this index (it holds {path}/.lock): wait for it to finish and try again; a server with the index open holds it until it stops, so send changes to the server (POST /admin/items)")]
    Busy {
        /// The index directory.
        path: PathBuf,
    },

    /// The index directory was replaced since this writer opened it: its
    /// changes would land in a directory nobody reads, or in the new index
    /// without its lock.
    #[error("{path}: this index directory was replaced (rebuilt, or its .lock removed) since it was opened for changes, so this change was not made; open the index again and repeat the change")]
    Replaced {
        /// The index directory.
        path: PathBuf,
    },

    /// A change was committed (the manifest naming its new generation
    /// replaced the old), then a later step failed: syncing the
    /// directory, or opening the new generation. The change is in the
    /// index, so the caller must not repeat it (an add would add its
    /// items twice).
    #[error("{path}: {change} was committed (generation {generation}) and is in the index, do not repeat it; but a step after the commit failed: {reason}")]
    Committed {
        /// The index directory.
        path: PathBuf,
        /// What was committed ("the change", "the add of items 10..=12").
        change: String,
        /// The generation committed.
        generation: u64,
        /// What failed, with its causes.
        reason: String,
    },
}

impl Error {
    /// This error's message followed by each of its sources' (what a chain
    /// printer shows), for an error kept as text inside another.
    pub fn chain_text(&self) -> String {
        let mut text = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            text.push_str(&format!(": {s}"));
            src = s.source();
        }
        text
    }
}

/// Paths, comma-separated.
fn list(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(", ")
}

/// What an I/O error means for the user, without the operating system's
/// text (the error's source carries that).
fn io_advice(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => {
            "not found; check the path (a relative path starts at the current directory)".into()
        }
        K::PermissionDenied => "permission denied; check the file's permissions".into(),
        K::AlreadyExists => "already exists; remove it or choose another path".into(),
        K::StorageFull => "no space left on the device; free some space".into(),
        K::IsADirectory => "is a directory; give a file".into(),
        K::NotADirectory => "a part of the path is not a directory; check the path".into(),
        // An error made by this crate or a library (not the operating
        // system) has only its own message.
        _ if e.raw_os_error().is_none() => match e.get_ref() {
            Some(inner) => inner.to_string(),
            None => e.kind().to_string(),
        },
        kind => format!("{kind}"),
    }
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A [`Error::Corrupt`] for `path`.
    pub fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// A [`Error::InvalidParameter`].
    pub fn param(name: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name,
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// Queries of dimension `got` against an index of dimension `expected`.
    pub fn query_dimension(expected: usize, got: usize) -> Self {
        Error::DimensionMismatch {
            expected,
            got,
            hint: "the queries must come from the model that built the index",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message names the file and says what to do once; the
    /// operating system's text comes once, as the source (what `likeness
    /// build --vectors missing.npy` printed twice).
    #[test]
    fn io_error_text_says_each_thing_once() {
        // What opening a missing file gives (ENOENT).
        let e = Error::io("missing.npy", std::io::Error::from_raw_os_error(2));
        let text = e.to_string();
        assert_eq!(
            text,
            "missing.npy: not found; check the path (a relative path starts at the current directory)"
        );
        // As a chain printer shows it: message, then each source once.
        let mut chain = text.clone();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            chain.push_str(&format!(": {s}"));
            src = s.source();
        }
        let os_text = std::io::Error::from_raw_os_error(2).to_string();
        assert_eq!(chain.matches(&os_text).count(), 1, "{chain}");
        assert_eq!(chain.matches("missing.npy").count(), 1, "{chain}");
        // An error this crate made (not the OS) keeps its own message.
        let own = Error::io(
            "x.npy",
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "shape [2] holds 2 values but 3 were given",
            ),
        );
        assert_eq!(
            own.to_string(),
            "x.npy: shape [2] holds 2 values but 3 were given"
        );
    }
}
