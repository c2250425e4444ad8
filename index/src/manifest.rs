//! `manifest.json`: what an index directory holds and what built it.
//!
//! Written last when building, so its presence marks a complete index.
//! Opening compares every file's size with the manifest (a `stat`, no
//! reading); [`crate::Index::verify`] also recomputes the CRC32s.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::distance::Metric;
use crate::error::{Error, Result};
use crate::format::MIN_VERSION;
use crate::labels::LabelName;
use crate::quant::{Quantizer, Store};

/// File name of the manifest.
pub const MANIFEST: &str = "manifest.json";
/// File name of the graph.
pub const GRAPH: &str = "graph.bin";
/// File name of the vectors.
pub const VECTORS: &str = "vectors.npy";
/// File name of the per-item metadata.
pub const META: &str = "meta.bin";
/// File name of the per-label posting lists.
pub const POSTINGS: &str = "postings.bin";
/// File name of the deleted items' ids (an index written to since its build).
pub const DELETED: &str = "deleted.bin";
/// Version of a manifest written by a change ([`crate::writer`]): it may
/// name generation files (`path`), a change log (`log`) and deleted items.
/// A build still writes [`crate::format::VERSION`], so an index never written to stays
/// readable by the releases before changes.
pub const LIVE_VERSION: u32 = 3;
/// Value of the `format` field.
pub const FORMAT_NAME: &str = "likeness-index";
/// Largest manifest accepted (it is a few hundred bytes).
const MAX_MANIFEST: u64 = 1 << 20;

/// Size and checksum of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Size in bytes.
    pub size: u64,
    /// CRC32 (IEEE) of the whole file.
    pub crc32: u32,
    /// The file's name in the directory when not the entry's own (a
    /// generation's files are `graph.3.bin`, ...; see [`crate::writer`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Parameters the graph was built with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildParams {
    /// Links per node in layers ≥ 1 (layer 0 keeps up to `2 m`).
    pub m: usize,
    /// Beam width while inserting.
    pub ef_construction: usize,
    /// Seed of the insertion order.
    pub seed: u64,
    /// Threads used to build.
    pub threads: usize,
    /// Graph builder and version.
    pub builder: String,
}

/// The name and version of the program that wrote the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// Crate name.
    pub name: String,
    /// Crate version.
    pub version: String,
}

/// Contents of `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `"likeness-index"`.
    pub format: String,
    /// Format version of the directory (and of its binary files).
    pub format_version: u32,
    /// Metric the vectors are searched with.
    pub metric: Metric,
    /// Vector dimension.
    pub dim: usize,
    /// Number of items.
    pub count: usize,
    /// Number of graph layers.
    pub levels: usize,
    /// Whether `meta.bin` holds labels.
    pub has_labels: bool,
    /// Build parameters.
    pub build: BuildParams,
    /// Program that wrote the index.
    pub tool: Tool,
    /// Fingerprint of the model that produced the vectors, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_fingerprint: Option<String>,
    /// Directory of that model (as given to `likeness index`), so image
    /// queries can load it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<String>,
    /// Names of the labels: `classes[label]`, when the vectors came from a
    /// labelled image source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// How the vectors the graph search reads are stored (absent: f32, as
    /// every index written before compact stores; see [`crate::quant`]).
    #[serde(default, skip_serializing_if = "Store::is_f32")]
    pub store: Store,
    /// The i8 store's quantizer (per-dimension offset and scale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantizer: Option<Quantizer>,
    /// Whether `postings.bin` (per-label item lists, see
    /// [`crate::postings`]) is present (absent: false, as in indexes written
    /// before it; their lists are built in memory from the labels).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub postings: bool,
    /// Seconds since the Unix epoch when the index was built.
    pub created_unix: u64,
    /// Generation of the files (absent: 0, as built); each fold of changes
    /// writes the next ([`crate::writer`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u64,
    /// The change log continuing this generation (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// Every other file of the directory, by name.
    pub files: BTreeMap<String, FileEntry>,
}

impl Manifest {
    /// Reads and checks `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MANIFEST);
        let file = std::fs::File::open(&path).map_err(|e| match e.kind() {
            // "no such directory" rather than "manifest.json: missing" for
            // a mistyped or absent --index.
            _ if !dir.is_dir() => Error::NoIndex {
                path: dir.to_path_buf(),
            },
            std::io::ErrorKind::NotFound => Error::MissingFile { path: path.clone() },
            _ => Error::io(&path, e),
        })?;
        let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        if len > MAX_MANIFEST {
            return Err(Error::corrupt(
                &path,
                format!("{len} bytes is far too large for a manifest"),
            ));
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        // Look at the version before the full schema, so a newer manifest
        // reports "newer version" rather than a missing field.
        let raw: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt(&path, format!("not valid JSON: {e}")))?;
        if raw.get("format").and_then(|v| v.as_str()) != Some(FORMAT_NAME) {
            return Err(Error::BadMagic {
                path,
                expected: "\"format\": \"likeness-index\"",
            });
        }
        let version = raw
            .get("format_version")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        if !(u64::from(MIN_VERSION)..=u64::from(LIVE_VERSION)).contains(&version) {
            return Err(Error::UnsupportedVersion {
                path,
                found: u32::try_from(version).unwrap_or(u32::MAX),
                min: MIN_VERSION,
                max: LIVE_VERSION,
            });
        }
        if let Some(store) = raw.get("store") {
            let name = store.as_str().unwrap_or_default();
            if name.parse::<Store>().is_err() {
                return Err(Error::UnsupportedStore {
                    path,
                    found: store.to_string(),
                    known: crate::quant::STORE_NAMES,
                });
            }
        }
        let mut m: Manifest = serde_json::from_value(raw)
            .map_err(|e| Error::corrupt(&path, format!("unexpected contents: {e}")))?;
        // A fold of an index built before posting lists, when it left the
        // records alone, used to claim posting lists without writing them
        // (then the index did not open). Nothing is missing but the claim:
        // filters work without posting lists.
        if m.format_version == LIVE_VERSION && m.postings && !m.files.contains_key(POSTINGS) {
            m.postings = false;
        }
        Ok(m)
    }

    /// CRC32 of `dir/manifest.json`'s bytes; `None` when it cannot be
    /// read. Tells one manifest from the next where the generation cannot:
    /// a rebuild (`build --force`) publishes a new directory whose
    /// generation starts again at 0.
    pub fn fingerprint(dir: &Path) -> Option<u32> {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(dir.join(MANIFEST))
            .and_then(|f| f.take(MAX_MANIFEST + 1).read_to_end(&mut bytes))
            .ok()?;
        Some(crc32fast::hash(&bytes))
    }

    /// The name of `label` (`classes[label]`), when the index records
    /// class names and has one for it (`None` for a negative label or one
    /// past the list).
    pub fn class_name(&self, label: i64) -> Option<&str> {
        class_name(&self.classes, label)
    }

    /// The label of the class named `name` (its position in `classes`):
    /// the inverse of [`Manifest::class_name`].
    pub fn class_label(&self, name: &str) -> Option<i64> {
        self.classes
            .iter()
            .position(|c| c == name)
            .map(|p| p as i64)
    }

    /// The label that `given` names in a filter: [`crate::labels::filter_label`]
    /// over this index's classes.
    pub fn filter_label(&self, given: &LabelName) -> Result<i64> {
        crate::labels::filter_label(&self.classes, given)
    }

    /// Where the file of entry `name` is: its `path`, else its name.
    pub fn path(&self, dir: &Path, name: &str) -> std::path::PathBuf {
        match self.files.get(name).and_then(|f| f.path.as_deref()) {
            Some(p) => dir.join(p),
            None => dir.join(name),
        }
    }

    /// The entry for `name`, or an error naming the file.
    pub fn file(&self, dir: &Path, name: &str) -> Result<&FileEntry> {
        self.files
            .get(name)
            .ok_or_else(|| Error::corrupt(dir.join(MANIFEST), format!("no entry for {name}")))
    }
}

fn is_zero(x: &u64) -> bool {
    *x == 0
}

/// `classes[label]` (see [`Manifest::class_name`]), for the lists that
/// travel without their manifest.
pub(crate) fn class_name(classes: &[String], label: i64) -> Option<&str> {
    usize::try_from(label)
        .ok()
        .and_then(|i| classes.get(i))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    #[test]
    fn class_name_of_a_label() {
        let classes = vec!["cat".to_string(), "dog".to_string()];
        assert_eq!(super::class_name(&classes, 1), Some("dog"));
        assert_eq!(super::class_name(&classes, 2), None);
        assert_eq!(super::class_name(&classes, -1), None);
        assert_eq!(super::class_name(&[], 0), None);
    }
}
