//! An index directory opened from memory-mapped files and searched in place.
//!
//! Opening checks magic, version, header checksums, file sizes against the
//! manifest and the structural invariants that cost O(1) per layer (section
//! bounds and alignment, CSR end points, entry point; see
//! [`crate::format::graph`]). It never reads the vectors or the adjacency
//! lists. Whatever opening cannot check cheaply is checked where it is used:
//! every row pointer and neighbour id read during a search is
//! bounds-checked, and a bad one ends that search with [`Error::Corrupt`]
//! naming `graph.bin`. [`Index::verify`] checks everything up front, CRC32s
//! included.
//!
//! Searching goes through [`Index::query`] (in [`crate::knn`], which owns
//! the request and its checks); `search` here holds the planner and the
//! graph and exact searches it dispatches to, `verify` the full check,
//! `hits` the display of results.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::Mmap;

use crate::distance::{DistanceFn4, Metric};
use crate::error::{Error, Result};
use crate::format::graph::GraphLayout;
use crate::format::meta::{self, ItemInfo, ItemPairing, MetaHeader, FLAG_LABELS};
use crate::format::section;
use crate::manifest::{Manifest, GRAPH, META, POSTINGS, VECTORS};
use crate::postings::{OwnedPostings, PostingsHeader, PostingsView};
use crate::quant::{QuantHeader, Store};

mod hits;
mod search;
mod verify;

pub use crate::postings::LabelFilter;
pub use hits::Hit;
pub use verify::VerifyReport;

/// An open index.
#[derive(Debug)]
pub struct Index {
    dir: PathBuf,
    manifest: Manifest,
    graph: Mmap,
    vectors: Mmap,
    meta: Option<Mmap>,
    /// `graph.bin`'s header and layer table, checked at open.
    layout: GraphLayout,
    vectors_offset: usize,
    count: usize,
    dim: usize,
    metric: Metric,
    kernel4: DistanceFn4,
    meta_header: Option<MetaHeader>,
    /// The compact vector file (`vectors.f16` / `vectors.i8`) and its header.
    compact: Option<(Mmap, QuantHeader)>,
    /// `postings.bin` and its header.
    postings_file: Option<(Mmap, PostingsHeader)>,
    /// Posting lists built from the labels, for an index without
    /// `postings.bin` (at the first filtered search).
    postings_mem: OnceLock<OwnedPostings>,
}

/// Maps `path` read-only after checking its size against the manifest.
fn map_file(dir: &Path, manifest: &Manifest, name: &str) -> Result<Mmap> {
    let path = dir.join(name);
    let entry = manifest.file(dir, name)?;
    let file = File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::MissingFile { path: path.clone() },
        _ => Error::io(&path, e),
    })?;
    let actual = file.metadata().map_err(|e| Error::io(&path, e))?.len();
    if actual != entry.size {
        return Err(Error::SizeMismatch {
            path,
            expected: entry.size,
            actual,
        });
    }
    // SAFETY: the map is read-only and private to this `Index`, which owns it
    // for as long as any slice into it lives (slices borrow `&self`). The
    // contract is that nobody truncates or rewrites the file while it is
    // mapped (that could raise SIGBUS or change bytes under us): index
    // directories are published by atomic rename and never modified in
    // place; rebuilding writes a new directory. Every view into the bytes
    // goes through bounds- and alignment-checked `bytemuck` casts.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
    Ok(map)
}

impl Index {
    /// Opens the index directory `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let manifest = Manifest::read(&dir)?;
        let graph = map_file(&dir, &manifest, GRAPH)?;
        let vectors = map_file(&dir, &manifest, VECTORS)?;
        let meta = if manifest.files.contains_key(META) {
            Some(map_file(&dir, &manifest, META)?)
        } else {
            None
        };
        let layout = crate::format::graph::read(&dir.join(GRAPH), &graph)?;
        let (count, dim, metric) = (layout.count, layout.dim, layout.metric);
        let levels = layout.layers.len();

        let mpath = dir.join(crate::manifest::MANIFEST);
        if manifest.count != count
            || manifest.dim != dim
            || manifest.metric != metric
            || manifest.levels != levels
        {
            return Err(Error::corrupt(
                &mpath,
                format!(
                    "records {} vectors of dimension {} ({}, {} levels) but graph.bin holds {count} of dimension {dim} ({metric}, {} levels)",
                    manifest.count,
                    manifest.dim,
                    manifest.metric,
                    manifest.levels,
                    levels
                ),
            ));
        }
        let vectors_offset = check_vectors(&dir.join(VECTORS), &vectors, count, dim)?;
        let meta_header = match &meta {
            Some(m) => Some(meta::check(&dir.join(META), m, count)?),
            None => None,
        };
        if manifest.has_labels != meta_header.is_some_and(|h| h.flags & FLAG_LABELS != 0) {
            return Err(Error::corrupt(&mpath, "has_labels disagrees with meta.bin"));
        }
        let compact = match manifest.store.file_name() {
            None => None,
            Some(name) => {
                // With a compact store, vectors.npy is read only for the
                // re-ranked candidates: random reads, so no read-ahead or
                // fault-around of neighbouring pages (only a hint; an error
                // changes nothing).
                #[cfg(unix)]
                let _ = vectors.advise(memmap2::Advice::Random);
                if manifest.store == Store::I8 {
                    let qz = manifest
                        .quantizer
                        .as_ref()
                        .ok_or_else(|| Error::corrupt(&mpath, "store i8 without its quantizer"))?;
                    qz.check(dim).map_err(|r| Error::corrupt(&mpath, r))?;
                }
                let map = map_file(&dir, &manifest, name)?;
                let h =
                    crate::quant::check_store(&dir.join(name), &map, manifest.store, count, dim)?;
                Some((map, h))
            }
        };
        let postings_file = if manifest.postings {
            if !manifest.has_labels {
                return Err(Error::corrupt(&mpath, "posting lists without labels"));
            }
            let map = map_file(&dir, &manifest, POSTINGS)?;
            let h = crate::postings::check_postings(&dir.join(POSTINGS), &map, count)?;
            Some((map, h))
        } else {
            None
        };
        Ok(Index {
            dir,
            manifest,
            graph,
            vectors,
            meta,
            layout,
            vectors_offset,
            count,
            dim,
            metric,
            kernel4: metric.kernel4(),
            meta_header,
            compact,
            postings_file,
            postings_mem: OnceLock::new(),
        })
    }

    /// How the vectors the graph search reads are stored.
    pub fn store(&self) -> Store {
        self.manifest.store
    }

    /// The directory this index was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the index has no items (never true for a built index).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Number of graph layers.
    pub fn levels(&self) -> usize {
        self.layout.layers.len()
    }

    /// The stored (for cosine: normalised) vectors, row-major, mapped.
    pub fn vectors(&self) -> &[f32] {
        // Checked at open: in bounds and aligned.
        section::<f32>(
            Path::new(VECTORS),
            &self.vectors,
            self.vectors_offset as u64,
            (self.count * self.dim) as u64,
            "vectors",
        )
        .unwrap_or(&[])
    }

    /// Vector of item `i`.
    pub fn vector(&self, i: usize) -> Option<&[f32]> {
        self.vectors().get(i * self.dim..(i + 1) * self.dim)
    }

    /// Labels of the items, if the index has them (mapped).
    pub fn labels(&self) -> Option<&[i64]> {
        let (m, h) = (self.meta.as_ref()?, self.meta_header.as_ref()?);
        meta::labels(Path::new(META), m, h)
    }

    /// Scores of the items (`NaN` = none), if the index has them (mapped).
    pub fn scores(&self) -> Option<&[f32]> {
        let (m, h) = (self.meta.as_ref()?, self.meta_header.as_ref()?);
        meta::scores(Path::new(META), m, h)
    }

    /// Decodes each item's subject and side (empty when the index was built
    /// without them, as every version 1 index was).
    pub fn pairings(&self) -> Result<Vec<ItemPairing>> {
        match (&self.meta, &self.meta_header) {
            (Some(m), Some(h)) => meta::pairings(&self.dir.join(META), m, h),
            _ => Ok(Vec::new()),
        }
    }

    /// Decodes the per-item records of `meta.bin` (empty when the index was
    /// built without them). Reads the whole payload; not needed for search.
    pub fn items(&self) -> Result<Vec<ItemInfo>> {
        match (&self.meta, &self.meta_header) {
            (Some(m), Some(h)) => meta::items(&self.dir.join(META), m, h),
            _ => Ok(Vec::new()),
        }
    }

    /// The posting lists (mapped, or built from the labels on first use);
    /// `None` without labels.
    /// The posting lists (mapped, or built from the labels on first use);
    /// `None` without labels.
    fn postings_view(&self) -> Result<Option<PostingsView<'_>>> {
        if let Some((map, h)) = &self.postings_file {
            return crate::postings::view_of(&self.dir.join(POSTINGS), map, h).map(Some);
        }
        Ok(self.labels().map(|l| {
            self.postings_mem
                .get_or_init(|| OwnedPostings::from_labels(l))
                .view()
        }))
    }
}

/// Checks the `.npy` header of `vectors.npy`; returns the data offset.
fn check_vectors(path: &Path, bytes: &[u8], count: usize, dim: usize) -> Result<usize> {
    let h = crate::npy::parse_header(bytes).map_err(|r| Error::Npy {
        path: path.to_path_buf(),
        reason: r,
    })?;
    let d = h.dtype;
    if d.kind != crate::npy::Kind::Float || d.size != 4 || d.big_endian || h.fortran_order {
        return Err(Error::corrupt(
            path,
            "vectors must be little-endian float32 in C order",
        ));
    }
    if h.shape != [count, dim] {
        return Err(Error::corrupt(
            path,
            format!(
                "shape {:?} does not match graph.bin ({count}, {dim})",
                h.shape
            ),
        ));
    }
    let values = count
        .checked_mul(dim)
        .filter(|v| v.checked_mul(4).is_some())
        .ok_or_else(|| Error::corrupt(path, format!("{count} × {dim} values overflow")))?;
    section::<f32>(path, bytes, h.data_offset as u64, values as u64, "vectors")?;
    let want = (h.data_offset as u64).saturating_add(4 * values as u64);
    if bytes.len() as u64 != want {
        return Err(Error::corrupt(
            path,
            format!("{} bytes, expected {want}", bytes.len()),
        ));
    }
    Ok(h.data_offset)
}
