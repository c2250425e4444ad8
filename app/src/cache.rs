//! Where likeness keeps what it downloads: `$LIKENESS_CACHE`, by default
//! `~/.cache/likeness` (the torch venv, the datasets, the face models, apt's
//! private lists).
use std::path::PathBuf;

/// The cache root.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LIKENESS_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache").join("likeness")
}
