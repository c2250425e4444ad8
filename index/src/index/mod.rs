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
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use memmap2::Mmap;

use crate::distance::{DistanceFn4, Metric};
use crate::error::{Error, Result};
use crate::format::graph::GraphLayout;
use crate::format::meta::{self, ItemInfo, ItemPairing, MetaHeader, FLAG_LABELS};
use crate::format::section;
use crate::live::{Deleted, Live};
use crate::manifest::{Manifest, DELETED, GRAPH, META, POSTINGS, VECTORS};
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
    /// Deleted items and the items added since the files (the change log):
    /// searches clone the `Arc`, a [`crate::writer::Writer`] swaps it.
    live: RwLock<Arc<Live>>,
    /// Bytes of the change log after its last whole record (a record a
    /// crash cut short; the writer cuts them off).
    log_torn: u64,
    /// Where the next record of the change log goes.
    log_len: u64,
}

/// Opens [`Index::open`] tries when the manifest keeps changing under it.
pub const OPEN_TRIES: usize = 4;

/// Maps `path` read-only after checking its size against the manifest.
fn map_file(dir: &Path, manifest: &Manifest, name: &str) -> Result<Mmap> {
    let path = manifest.path(dir, name);
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
    ///
    /// The manifest may be replaced while we read the files it names: a
    /// writer commits a new generation and removes the old one's files, or
    /// a rebuild (`build --force`) publishes a new directory in place of
    /// this one, its generation starting again at 0. Then the files are
    /// missing, of another size, or (a rebuild of the same shape) the new
    /// directory's, opened under the old manifest. So when the manifest's
    /// bytes differ after the open from before it, whatever the outcome,
    /// we open again, up to [`OPEN_TRIES`] times in all.
    ///
    /// A missing `dir` whose previous index a rebuild left under a hidden
    /// name (stopped between the two renames of its fallback) is put back
    /// first, or refused with [`Error::UnfinishedReplace`] naming it
    /// ([`crate::fsutil::restore_replaced`] says when and why).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        if std::fs::symlink_metadata(dir).is_err() {
            crate::fsutil::restore_replaced(dir, crate::manifest::MANIFEST)?;
        }
        let mut tries = 1;
        loop {
            let before = Manifest::fingerprint(dir);
            let res = Self::open_once(dir);
            let after = Manifest::fingerprint(dir);
            if before == after || tries == OPEN_TRIES {
                return res;
            }
            if after.is_none() {
                // Between a rebuild's two renames (where the filesystem
                // cannot swap the directories in one) there is no
                // directory: give the second one a moment.
                std::thread::sleep(std::time::Duration::from_millis(10 * tries as u64));
            }
            tries += 1;
        }
    }

    fn open_once(dir: &Path) -> Result<Self> {
        let dir = dir.to_path_buf();
        let manifest = Manifest::read(&dir)?;
        #[cfg(test)]
        if let Some(race) = tests::AFTER_MANIFEST.with(std::cell::Cell::take) {
            race();
        }
        let graph = map_file(&dir, &manifest, GRAPH)?;
        let vectors = map_file(&dir, &manifest, VECTORS)?;
        let meta = if manifest.files.contains_key(META) {
            Some(map_file(&dir, &manifest, META)?)
        } else {
            None
        };
        let layout = crate::format::graph::read(&manifest.path(&dir, GRAPH), &graph)?;
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
        let vectors_offset = check_vectors(&manifest.path(&dir, VECTORS), &vectors, count, dim)?;
        let meta_header = match &meta {
            Some(m) => Some(meta::check(&manifest.path(&dir, META), m, count)?),
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
                let h = crate::quant::check_store(
                    &manifest.path(&dir, name),
                    &map,
                    manifest.store,
                    count,
                    dim,
                )?;
                Some((map, h))
            }
        };
        let postings_file = if manifest.postings {
            if !manifest.has_labels {
                return Err(Error::corrupt(&mpath, "posting lists without labels"));
            }
            let map = map_file(&dir, &manifest, POSTINGS)?;
            let h = crate::postings::check_postings(&manifest.path(&dir, POSTINGS), &map, count)?;
            Some((map, h))
        } else {
            None
        };
        let deleted = match manifest.files.get(DELETED) {
            None => Deleted::default(),
            Some(entry) => {
                let path = manifest.path(&dir, DELETED);
                let bytes = read_whole(&path, entry.size)?;
                let actual = crc32fast::hash(&bytes);
                if actual != entry.crc32 {
                    return Err(Error::ChecksumMismatch {
                        path,
                        expected: entry.crc32,
                        actual,
                    });
                }
                let aligned: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
                let ids =
                    crate::format::deleted::read(&path, bytemuck::cast_slice(&aligned), count)?;
                Deleted::of(&ids)
            }
        };
        let has_scores = meta_header.is_some_and(|h| h.flags & meta::FLAG_SCORES != 0);
        let mut live = Live::new(count, dim, manifest.has_labels, has_scores, deleted);
        let (mut log_torn, mut log_len) = (0, 0);
        if let Some(name) = &manifest.log {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::MissingFile { path: path.clone() },
                _ => Error::io(&path, e),
            })?;
            let replay = crate::format::log::read(&path, &bytes, dim, count, manifest.generation)?;
            for change in &replay.changes {
                live.check(change).map_err(|r| Error::corrupt(&path, r))?;
                live.apply(change);
            }
            (log_torn, log_len) = (replay.torn, replay.good_len);
        }
        Ok(Index {
            live: RwLock::new(Arc::new(live)),
            log_torn,
            log_len,
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

    /// Number of ids given: items are `0..len()`, deleted ones included
    /// (ids are never reused; see [`Index::live_count`]).
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// Whether the index has no items (never true for a built index).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items in the generation's files (ids `0..base_len()`); the rest were
    /// added since and live in the change log until the next fold.
    pub fn base_len(&self) -> usize {
        self.count
    }

    /// Items not deleted.
    pub fn live_count(&self) -> usize {
        self.snapshot().live_count()
    }

    /// Deleted items (their ids are never returned or reused).
    pub fn deleted_count(&self) -> usize {
        self.snapshot().deleted.len()
    }

    /// Deleted items that searches still pass over: nodes of the graph
    /// (routed through, never returned) and the log's rows (scanned,
    /// skipped), which the next fold inserts into the graph. This is what
    /// a compaction removes, and what to compact on: the deleted ids stay
    /// deleted after it ([`Index::deleted_count`] never drops, ids are not
    /// reused), but it leaves them no links and no upper layers, so no
    /// search reaches them. A node with no links on layer 0 is such an
    /// item unless it is the entry point (an index of one item).
    pub fn deleted_in_graph(&self) -> usize {
        let live = self.snapshot();
        let Ok(view) = self.graph_view() else {
            // Opening checked the graph's sections; should that fail here,
            // counting every deleted item errs towards compacting.
            return live.deleted.len();
        };
        live.deleted
            .ids()
            .into_iter()
            .filter(|&id| {
                id as usize >= self.count
                    || id == view.entry
                    || view.neighbours(0, id).map_or(true, |n| !n.is_empty())
            })
            .count()
    }

    /// Whether item `id` was deleted.
    pub fn is_deleted(&self, id: usize) -> bool {
        self.snapshot().deleted.contains(id)
    }

    /// The deleted ids, ascending.
    pub fn deleted_ids(&self) -> Vec<u32> {
        self.snapshot().deleted.ids()
    }

    /// The changes on top of the files, as of now (a clone of an `Arc`).
    pub fn snapshot(&self) -> Arc<Live> {
        Arc::clone(&self.live.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the changes (the writer, after logging one).
    pub(crate) fn set_live(&self, live: Live) {
        *self.live.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(live);
    }

    /// Records in the change log, and bytes after its last whole one.
    pub fn log_state(&self) -> (usize, u64) {
        (self.snapshot().records, self.log_torn)
    }

    /// Where the next record of the change log goes.
    pub(crate) fn log_len(&self) -> u64 {
        self.log_len
    }

    /// Generation of the files (0: as built).
    pub fn generation(&self) -> u64 {
        self.manifest.generation
    }

    /// The mapped graph's layers.
    pub(crate) fn graph_view(&self) -> Result<crate::format::graph::GraphView<'_>> {
        crate::format::graph::GraphView::new(self.file_path(GRAPH), &self.graph, &self.layout)
    }

    /// Where the file of entry `name` is.
    pub(crate) fn file_path(&self, name: &str) -> PathBuf {
        self.manifest.path(&self.dir, name)
    }

    /// The label of item `id` (added since the files too), if the index has
    /// labels and the id exists.
    pub fn label_of(&self, id: usize) -> Option<i64> {
        match self.labels()?.get(id) {
            Some(&l) => Some(l),
            None => self
                .snapshot()
                .tail_labels
                .as_ref()?
                .get(id.checked_sub(self.count)?)
                .copied(),
        }
    }

    /// The score of item `id` (`None` without scores, or NaN).
    pub fn score_of(&self, id: usize) -> Option<f32> {
        let s = match self.scores() {
            Some(s) if id < self.count => s.get(id).copied(),
            Some(_) => self
                .snapshot()
                .tail_scores
                .as_ref()?
                .get(id - self.count)
                .copied(),
            None => None,
        };
        s.filter(|v| v.is_finite())
    }

    /// The stored vector of item `id` (added since the files too): an error
    /// says why there is none (out of range, deleted).
    pub fn item_vector(&self, id: usize) -> Result<Vec<f32>> {
        let live = self.snapshot();
        if id >= live.len() {
            return Err(Error::InvalidInput(format!(
                "no item {id}: ids of this index are 0..{}",
                live.len()
            )));
        }
        if live.deleted.contains(id) {
            return Err(Error::InvalidInput(format!("item {id} was deleted")));
        }
        match self.vector(id) {
            Some(v) => Ok(v.to_vec()),
            None => Ok(live.tail_vector(id).unwrap_or_default().to_vec()),
        }
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
            (Some(m), Some(h)) => meta::pairings(&self.file_path(META), m, h),
            _ => Ok(Vec::new()),
        }
    }

    /// Decodes the per-item records of `meta.bin` (empty when the index was
    /// built without them). Reads the whole payload; not needed for search.
    pub fn items(&self) -> Result<Vec<ItemInfo>> {
        match (&self.meta, &self.meta_header) {
            (Some(m), Some(h)) => meta::items(&self.file_path(META), m, h),
            _ => Ok(Vec::new()),
        }
    }

    /// The posting lists (mapped, or built from the labels on first use);
    /// `None` without labels.
    fn postings_view(&self) -> Result<Option<PostingsView<'_>>> {
        if let Some((map, h)) = &self.postings_file {
            return crate::postings::view_of(&self.file_path(POSTINGS), map, h).map(Some);
        }
        Ok(self.labels().map(|l| {
            self.postings_mem
                .get_or_init(|| OwnedPostings::from_labels(l))
                .view()
        }))
    }
}

/// Reads a whole small file, checking its size against the manifest's.
fn read_whole(path: &Path, size: u64) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::MissingFile {
            path: path.to_path_buf(),
        },
        _ => Error::io(path, e),
    })?;
    if bytes.len() as u64 != size {
        return Err(Error::SizeMismatch {
            path: path.to_path_buf(),
            expected: size,
            actual: bytes.len() as u64,
        });
    }
    Ok(bytes)
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

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::IndexBuilder;

    thread_local! {
        /// Run once by this thread's next `open_once`, between reading the
        /// manifest and mapping the files: how a race is made.
        pub(super) static AFTER_MANIFEST: Cell<Option<Box<dyn FnOnce()>>> =
            const { Cell::new(None) };
    }

    fn build(dir: &Path, n: usize, seed: f32) {
        let rows: Vec<f32> = (0..n * 8).map(|i| (i as f32 * 0.37 + seed).sin()).collect();
        IndexBuilder::new()
            .metric(Metric::L2)
            .build(&rows, 8, None, None, dir, None)
            .unwrap();
    }

    /// A rebuild published while a reader opened the index (its manifest
    /// read, its files not yet mapped) used to fail the open: the retry
    /// looked for a new generation, and a rebuild starts again at 0.
    #[test]
    fn an_open_racing_a_rebuild_opens_the_new_index() {
        let t = tempfile::tempdir().unwrap();
        let (dir, new) = (t.path().join("ix"), t.path().join("new"));
        build(&dir, 300, 0.0);
        build(&new, 200, 1.0);
        let (d, aside) = (dir.clone(), t.path().join("old"));
        AFTER_MANIFEST.with(|h| {
            h.set(Some(Box::new(move || {
                // As `build --force` publishes where the filesystem cannot
                // swap directories (`TempDir::publish_replacing`).
                std::fs::rename(&d, &aside).unwrap();
                std::fs::rename(&new, &d).unwrap();
            })))
        });
        let ix = Index::open(&dir).unwrap();
        assert_eq!((ix.len(), ix.generation()), (200, 0));
        assert_eq!(ix.manifest(), &Manifest::read(&dir).unwrap());
        assert!(AFTER_MANIFEST.with(Cell::take).is_none(), "the race ran");
    }
}
