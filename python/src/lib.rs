//! `likeness._likeness`: the Python face of `likeness-index` (PyO3 +
//! rust-numpy). The package `likeness` re-exports everything from here.
//!
//! Arrays come in as read-only views where they already are C-contiguous
//! float32 (others are converted once) and go out as NumPy arrays that own
//! the Rust buffers (moved, not copied). `Index.vectors` and `Index.labels`
//! are views on the memory map whose base object holds its own reference to
//! the open index, so they outlive `close()`. Every search, build, verify and
//! evaluation runs with the GIL released, and so does every change
//! (`add`, `delete`, `update`, `compact`, `fold`).
//!
//! Changes go through the engine's `Writer`, opened on the first change and
//! kept by the `Index` object (with the directory's lock) until `close()`
//! or until the object is dropped. After each change the object searches
//! the writer's index, so the next search sees it.
//!
//! Every computation is the index crate's own (`IndexBuilder`, `KnnQuery`,
//! `eval::evaluate_index`), the same calls as the CLI's, so files and
//! numbers are interchangeable between the two.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use likeness_index::build::{DEFAULT_EF_CONSTRUCTION, DEFAULT_M};
use likeness_index::manifest::{FileEntry, META};
use likeness_index::quant::DEFAULT_QUANTILE;
use likeness_index::{
    Error, Index, ItemInfo, ItemPairing, KnnQuery, LabelFilter, Neighbours, NewItems, Writer,
    DEFAULT_EF, DEFAULT_K, FOLD_AT,
};
use numpy::ndarray::{Array2, ArrayView1, ArrayView2};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

mod convert;
mod functions;
mod held;

use convert::{
    float_rows, float_values, given_ids, item_ids, item_labels, label_set, positive, report_dict,
    thread_count,
};
use functions::{build, evaluate, predict_score};
use held::{held_here, HeldWriter};

create_exception!(
    likeness,
    CorruptIndexError,
    PyException,
    "An index file is corrupt, truncated, of an unsupported format version, or \
     not a likeness index file at all (wrong magic). The message names the \
     file; rebuild the index."
);

create_exception!(
    likeness,
    IndexBusyError,
    PyRuntimeError,
    "Another writer holds the index's lock (its directory's .lock): another \
     process, or another likeness.Index object of this process, has changed \
     it and is still open. Close that one (Index.close()) or send the change \
     to it; the message names the directory."
);

/// The Python exception for an index error, keeping its message.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Busy { path } if held_here(&path) => IndexBusyError::new_err(format!(
            "{0}: another likeness.Index of this process holds this index's writer and its \
             lock ({0}/.lock): it made a change and is still open; call its close(), or make \
             the change through it",
            path.display()
        )),
        Error::Busy { .. } | Error::Replaced { .. } => IndexBusyError::new_err(msg),
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(msg)
        }
        Error::Io { .. } => PyOSError::new_err(msg),
        // No index at the path; the message says where the hidden one is.
        Error::MissingFile { .. } | Error::NoIndex { .. } | Error::UnfinishedReplace { .. } => {
            PyFileNotFoundError::new_err(msg)
        }
        Error::BadMagic { .. }
        | Error::UnsupportedVersion { .. }
        | Error::Truncated { .. }
        | Error::SizeMismatch { .. }
        | Error::ChecksumMismatch { .. }
        | Error::Corrupt { .. }
        | Error::DamagedLog { .. }
        // The only .npy this module reads is an index's vectors.npy.
        | Error::Npy { .. } => CorruptIndexError::new_err(msg),
        Error::InvalidParameter { .. }
        | Error::Usage(_)
        | Error::InvalidInput(_)
        | Error::DimensionMismatch { .. }
        | Error::NonFinite { .. }
        | Error::TooLong { .. }
        | Error::ZeroVector { .. } => PyValueError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// Rayon pools of a given size, kept for reuse (making one costs a thread
/// spawn per worker), the most recently used first, and the process they
/// were made in.
struct Pools {
    pid: u32,
    pools: Vec<(usize, Arc<rayon::ThreadPool>)>,
}
static POOLS: LazyLock<Mutex<Pools>> = LazyLock::new(|| {
    Mutex::new(Pools {
        pid: std::process::id(),
        pools: Vec::new(),
    })
});

/// Pools kept: a sweep of `threads=1..200` once left 19,901 threads alive.
/// Older ones are dropped, and their threads end.
const KEEP_POOLS: usize = 4;

/// The search pool of `threads` (None: one thread a core). Searches never
/// run on rayon's global pool: after `fork` (multiprocessing's default on
/// Linux) a child inherits the parent's pools without their threads, and a
/// search there waited for ever. A child makes its own.
pub(crate) fn pool(threads: Option<usize>) -> Result<Arc<rayon::ThreadPool>, Error> {
    let threads = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let mut cache = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if cache.pid != std::process::id() {
        // The parent's pools have no threads here; dropping them would
        // signal threads that do not exist, so they are let go unused.
        std::mem::forget(std::mem::take(&mut cache.pools));
        cache.pid = std::process::id();
    }
    if let Some(at) = cache.pools.iter().position(|(n, _)| *n == threads) {
        let hit = cache.pools.remove(at);
        let p = hit.1.clone();
        cache.pools.insert(0, hit);
        return Ok(p);
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::InvalidInput(format!("cannot start {threads} search threads: {e}")))?;
    let p = Arc::new(p);
    cache.pools.insert(0, (threads, p.clone()));
    cache.pools.truncate(KEEP_POOLS);
    Ok(p)
}

/// Runs `req` (`rows` query rows) through the engine's one entry point:
/// on the calling thread for one row or `threads = 1` (graph search), else
/// on a pool of `threads` (None: all cores).
fn run_search(
    index: &Index,
    req: &KnnQuery<'_>,
    rows: usize,
    threads: Option<usize>,
) -> Result<Neighbours, Error> {
    let query = |q: &KnnQuery<'_>| index.query(q).map(|(found, _plan)| found);
    match threads {
        // A single row never leaves the calling thread (rayon does not split
        // one item), so a lone query pays no thread hand-off.
        _ if rows <= 1 => query(req),
        Some(1) if !req.exact => {
            req.validate(index)?;
            let dim = index.dim();
            let mut ids = Vec::with_capacity(rows * req.k);
            let mut dists = Vec::with_capacity(rows * req.k);
            for row in req.vectors.chunks_exact(dim) {
                let (i, d) = query(&KnnQuery {
                    vectors: row,
                    ..*req
                })?
                .into_parts();
                ids.extend_from_slice(&i);
                dists.extend_from_slice(&d);
            }
            Neighbours::from_parts(rows, req.k, ids, dists)
                .ok_or_else(|| Error::InvalidInput("result shape".into()))
        }
        n => pool(n)?.install(|| query(req)),
    }
}

/// Owns a reference to an open index for as long as a NumPy view on its
/// memory map lives (the view's base object).
#[pyclass(module = "likeness", frozen)]
struct MappedIndex {
    _index: Arc<Index>,
}

/// A read-only numpy view of `data`, a column of `index`'s memory map
/// (labels, scores), whose base object keeps the map alive.
fn mapped_array1<'py, T: numpy::Element>(
    py: Python<'py>,
    index: &Arc<Index>,
    data: &[T],
) -> PyResult<Bound<'py, PyArray1<T>>> {
    let view = ArrayView1::from(data);
    let owner = Bound::new(
        py,
        MappedIndex {
            _index: index.clone(),
        },
    )?;
    // SAFETY: as for `vectors`: `data` lives in the index's memory map,
    // kept alive by `owner`, the array's base object.
    let arr = unsafe { PyArray1::borrow_from_array(&view, owner.into_any()) };
    arr.readwrite().make_nonwriteable();
    Ok(arr)
}

/// The per-item records of one `meta.bin`: sources and regions, and
/// subjects and sides (each empty when the index records none).
struct ItemRecords {
    items: Vec<ItemInfo>,
    pairings: Vec<ItemPairing>,
}

/// Item records decoded from the `meta.bin` whose manifest entry is the
/// first (see `PyIndex::items`).
type CachedItems = (Option<FileEntry>, Arc<ItemRecords>);

/// An open index: memory-mapped files, searched in place.
///
/// Open one with `Index.open(path)` or get one from `likeness.build(...)`.
/// Any number of Python threads may search one `Index` at once, also while
/// another changes it (`add`, `delete`, `update`, `compact`).
#[pyclass(module = "likeness", name = "Index", frozen)]
struct PyIndex {
    /// The index searched: the writer's own once there is one, swapped
    /// after each change (a fold makes a new one).
    inner: RwLock<Option<Arc<Index>>>,
    path: PathBuf,
    /// Decoded item records (`meta.bin`), on first use, with the
    /// manifest's entry of the file they came from (its name, size and
    /// CRC32; none without the file). A fold may change them (compaction
    /// wipes the deleted items'), and so may a rebuild (`build --force`),
    /// whose generation starts again at 0: the generation alone would hand
    /// the old gallery's records to the new one.
    items: Mutex<Option<CachedItems>>,
    /// The writer, opened on the first change and kept (with the index's
    /// lock) until `close()` or the object is dropped: changes then cost
    /// no reopening, and no other writer changes the index under this one.
    writer: Mutex<Option<HeldWriter>>,
}

impl PyIndex {
    fn wrap(index: Index) -> Self {
        PyIndex {
            path: index.dir().to_path_buf(),
            inner: RwLock::new(Some(Arc::new(index))),
            items: Mutex::new(None),
            writer: Mutex::new(None),
        }
    }

    fn closed_err(&self) -> PyErr {
        PyValueError::new_err(format!(
            "the index {} was closed; open it again with likeness.Index.open",
            self.path.display()
        ))
    }

    fn get(&self) -> PyResult<Arc<Index>> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| self.closed_err())
    }

    fn item_records(&self, index: &Index) -> PyResult<Arc<ItemRecords>> {
        let source = index.manifest().files.get(META).cloned();
        let mut cached = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, v)) = cached.as_ref().filter(|(f, _)| *f == source) {
            return Ok(v.clone());
        }
        let v = Arc::new(ItemRecords {
            items: index.items().map_err(py_err)?,
            pairings: index.pairings().map_err(py_err)?,
        });
        *cached = Some((source, v.clone()));
        Ok(v)
    }

    /// Runs `change` on the writer (opened on first use) with the GIL
    /// released, then makes this object search the writer's index, also
    /// when the change failed (a fold may have committed before an error).
    fn change<T: Send>(
        &self,
        py: Python<'_>,
        threads: Option<i64>,
        change: impl FnOnce(&mut Writer) -> likeness_index::Result<T> + Send,
    ) -> PyResult<T> {
        let threads = threads.map(thread_count).transpose()?;
        self.get()?;
        py.detach(|| {
            // The writer's mutex first, then the index's slot: `close` takes
            // them in the same order.
            let mut slot = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            if self
                .inner
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_none()
            {
                return Err(self.closed_err());
            }
            let w = match slot.take() {
                Some(w) => w,
                None => HeldWriter::open(&self.path).map_err(py_err)?,
            };
            let w = &mut slot.insert(w).writer;
            // 0: all cores, as `build`'s None; on our pool, not rayon's
            // global one (see `pool`).
            w.threads(threads.unwrap_or(0));
            let out = pool(threads).and_then(|p| p.install(|| change(w)));
            *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Some(w.index().clone());
            out.map_err(py_err)
        })
    }
}

#[pymethods]
impl PyIndex {
    /// Opens the index directory `path` (made by `likeness build`,
    /// `likeness index` or `likeness.build`). Opening maps the files and
    /// checks headers and sizes (not every byte: see `verify`).
    ///
    /// Raises FileNotFoundError when the directory or one of its files is
    /// missing, and CorruptIndexError when a file is damaged or not an index.
    ///
    /// The Index holds every change acknowledged before it was opened (the
    /// change log is replayed) and those made through it; changes another
    /// process makes later are seen once the index is opened again.
    ///
    /// The files are memory-mapped: never rewrite them in place while an
    /// Index is open (`np.save` over `vectors.npy`, a truncation), or the
    /// process is killed by SIGBUS at its next search. Replacing the index
    /// with `likeness.build(..., force=True)`, `likeness build --force` or
    /// a compaction publishes new files and is safe.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let index = py.detach(|| Index::open(&path)).map_err(py_err)?;
        Ok(PyIndex::wrap(index))
    }

    /// Number of ids given: items are `0..count`, deleted ones included
    /// (ids are never reused; `live_count` leaves the deleted out).
    #[getter]
    fn count(&self) -> PyResult<usize> {
        Ok(self.get()?.len())
    }

    /// Items not deleted: the ones a search can return.
    #[getter]
    fn live_count(&self) -> PyResult<usize> {
        Ok(self.get()?.live_count())
    }

    /// Items deleted (never returned again; their ids are not reused).
    #[getter]
    fn deleted_count(&self) -> PyResult<usize> {
        Ok(self.get()?.deleted_count())
    }

    /// The deleted ids, ascending, int64.
    #[getter]
    fn deleted_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let ids: Vec<i64> = self
            .get()?
            .deleted_ids()
            .into_iter()
            .map(i64::from)
            .collect();
        Ok(PyArray1::from_vec(py, ids))
    }

    /// Generation of the index's files: 0 as built, one more after each
    /// fold (an add of `FOLD_AT` items or more, `update`, `compact`,
    /// `fold`). Smaller changes are in the change log beside the files.
    #[getter]
    fn generation(&self) -> PyResult<u64> {
        Ok(self.get()?.generation())
    }

    /// Vector dimension.
    #[getter]
    fn dim(&self) -> PyResult<usize> {
        Ok(self.get()?.dim())
    }

    /// The metric: "cosine" or "l2" (squared Euclidean).
    #[getter]
    fn metric(&self) -> PyResult<&'static str> {
        Ok(self.get()?.metric().as_str())
    }

    /// The index directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// manifest.json as a dict (parameters, sizes, CRC32s, tool, model).
    #[getter]
    fn manifest<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let json = serde_json::to_string(self.get()?.manifest())
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        py.import("json")?.call_method1("loads", (json,))
    }

    /// The stored vectors (for cosine: normalised), float32 [n, dim]:
    /// a read-only view on the memory map, no copy. The view keeps the
    /// index's files mapped; closing or dropping this Index, or changing
    /// it, does not invalidate it.
    ///
    /// It shows the items in the index's files: items added since the last
    /// fold (in the change log) are not in it until the next fold (`n` is
    /// then less than `count`), a view taken before a change does not
    /// follow it, and deleted items' rows stay until `compact()` zeroes
    /// them. `is_deleted`/`deleted_ids` say which are deleted.
    #[getter]
    fn vectors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let index = self.get()?;
        let view = ArrayView2::from_shape((index.base_len(), index.dim()), index.vectors())
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let owner = Bound::new(
            py,
            MappedIndex {
                _index: index.clone(),
            },
        )?;
        // SAFETY: the data is the index's read-only memory map, which lives
        // (unmoved, never remapped) as long as an `Arc<Index>` does; `owner`
        // holds one and becomes the array's base object, so the map
        // outlives the array. The array is made non-writeable before it is
        // returned, and NumPy refuses to make it writeable again (its base
        // exposes no writeable buffer).
        let arr = unsafe { PyArray2::borrow_from_array(&view, owner.into_any()) };
        arr.readwrite().make_nonwriteable();
        Ok(arr)
    }

    /// The items' labels, int64 [n] (a read-only view on the memory
    /// map, like `vectors`: the files' items, behind the change log until
    /// the next fold), or None when the index was built without.
    #[getter]
    fn labels<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray1<i64>>>> {
        let index = self.get()?;
        index
            .labels()
            .map(|l| mapped_array1(py, &index, l))
            .transpose()
    }

    /// The items' scores, float32 [n] (NaN where an item has none; a
    /// read-only view on the memory map, like `vectors`: the files' items,
    /// behind the change log until the next fold), or None when the index
    /// was built without scores.
    #[getter]
    fn scores<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray1<f32>>>> {
        let index = self.get()?;
        index
            .scores()
            .map(|s| mapped_array1(py, &index, s))
            .transpose()
    }

    /// What is known of each item id: a list with one dict per id, holding
    /// "id" and, when the index records them, "label", "class" (the label's
    /// name), "path" (the item's source), "region" ([x0, y0, x1, y1]),
    /// "score", "subject" and "side" ("left" or "right") (each absent where
    /// the item has none), as `likeness serve`'s hits.
    /// With `distances` (a search's row), each dict also gets "distance".
    /// `ids`: integers of shape (n,) (a search's row), or one int (a list
    /// of one dict). Id -1 (search padding) gives None; a deleted id raises
    /// ValueError.
    #[pyo3(signature = (ids, distances=None))]
    fn items<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        distances: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let index = self.get()?;
        let ids = given_ids(ids)?;
        let dists: Option<Vec<f32>> = distances.map(|d| d.extract()).transpose()?;
        if let Some(d) = &dists {
            if d.len() != ids.len() {
                return Err(PyValueError::new_err(format!(
                    "{} ids but {} distances",
                    ids.len(),
                    d.len()
                )));
            }
        }
        let records = self.item_records(&index)?;
        let manifest = index.manifest();
        let out = PyList::empty(py);
        for (pos, &id) in ids.iter().enumerate() {
            if id == -1 {
                out.append(py.None())?;
                continue;
            }
            let i = usize::try_from(id)
                .ok()
                .filter(|&i| i < index.len())
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "id {id} is out of range: the index {} holds items 0..{}",
                        self.path.display(),
                        index.len()
                    ))
                })?;
            if index.is_deleted(i) {
                // As a search, which never returns one.
                return Err(PyValueError::new_err(format!(
                    "item {id} was deleted from the index {}",
                    self.path.display()
                )));
            }
            let d = PyDict::new(py);
            d.set_item("id", id)?;
            // Items added since the files (the change log) too.
            if let Some(l) = index.label_of(i) {
                d.set_item("label", l)?;
                if let Some(c) = manifest.class_name(l) {
                    d.set_item("class", c)?;
                }
            }
            if let Some(info) = records.items.get(i) {
                if !info.source.is_empty() {
                    d.set_item("path", &info.source)?;
                }
                if let Some(r) = info.region {
                    d.set_item("region", r.to_vec())?;
                }
            }
            if let Some(sc) = index.score_of(i) {
                d.set_item("score", sc)?;
            }
            if let Some(p) = records.pairings.get(i) {
                if let Some(subject) = &p.subject {
                    d.set_item("subject", subject)?;
                }
                if let Some(side) = p.side {
                    d.set_item("side", side.as_str())?;
                }
            }
            if let Some(ds) = &dists {
                d.set_item("distance", ds[pos])?;
            }
            out.append(d)?;
        }
        Ok(out)
    }

    /// The k nearest items of each query, nearest first.
    ///
    /// `queries` is a 2-D float16/float32/float64 array [q, dim], or one
    /// 1-D vector (results of shape [1, k]). A C-contiguous float32 array
    /// is read in place; any other is converted once.
    ///
    /// Returns `(ids, distances)`: int64 [q, k] and float32 [q, k], padded
    /// with -1 / +inf where fewer than k items are found (a small index,
    /// or a label filter). `ef` is the graph search's beam width (raised
    /// to k); larger is slower and more accurate. `labels` keeps only
    /// items with one of these labels, `exclude_labels` drops them: one
    /// label or an iterable of them (list, set, NumPy array), each an int
    /// or, where the index records class names (`manifest["classes"]`),
    /// a name (`labels="eye"`), as `likeness query --labels` takes them;
    /// an unknown name raises ValueError.
    /// `exact=True` compares against every item instead. `threads`: None
    /// uses all cores (rayon); 1 runs on the calling thread. The GIL is
    /// released for the whole search, so Python threads can search one
    /// index at once.
    // The text signature spells out the defaults that help() would show
    // as `k=...` (test_user.py checks them against DEFAULT_K, DEFAULT_EF).
    #[pyo3(signature = (queries, k=DEFAULT_K as i64, *, ef=DEFAULT_EF as i64, labels=None, exclude_labels=None, exact=false, threads=None),
           text_signature = "($self, queries, k=10, *, ef=64, labels=None, exclude_labels=None, exact=False, threads=None)")]
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn search<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: i64,
        ef: i64,
        labels: Option<&Bound<'py, PyAny>>,
        exclude_labels: Option<&Bound<'py, PyAny>>,
        exact: bool,
        threads: Option<i64>,
    ) -> PyResult<(Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>)> {
        let index = self.get()?;
        let k = positive("k", k)?;
        let ef = positive("ef", ef)?;
        let threads = threads.map(thread_count).transpose()?;
        let filter = match (labels, exclude_labels) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "give labels (keep only these) or exclude_labels (drop these), not both",
                ))
            }
            (Some(l), None) => Some(LabelFilter::only(label_set(l, "labels", index.manifest())?)),
            (None, Some(l)) => Some(LabelFilter::except(label_set(
                l,
                "exclude_labels",
                index.manifest(),
            )?)),
            (None, None) => None,
        };
        let rows = float_rows(queries, "queries", true)?;
        let (nq, dim) = (rows.rows, rows.dim);
        let data = rows.as_slice();
        let req = KnnQuery::new(data)
            .dim(dim)
            .k(k)
            .ef(ef)
            .exact(exact)
            .filter(filter.as_ref());
        let found = py
            .detach(|| run_search(&index, &req, nq, threads))
            .map_err(py_err)?;
        let (q, k) = (found.queries(), found.k());
        let (ids, dists) = found.into_parts();
        let shape_err = |e: numpy::ndarray::ShapeError| PyRuntimeError::new_err(e.to_string());
        let ids = Array2::from_shape_vec((q, k), ids).map_err(shape_err)?;
        let dists = Array2::from_shape_vec((q, k), dists).map_err(shape_err)?;
        Ok((
            PyArray2::from_owned_array(py, ids),
            PyArray2::from_owned_array(py, dists),
        ))
    }

    /// Checks every file: sizes and CRC32s against the manifest, every
    /// graph link, finite vectors, the item records. Returns a dict with
    /// "files", "bytes" and "edges" checked; raises CorruptIndexError.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let index = self.get()?;
        let report = py.detach(|| index.verify()).map_err(py_err)?;
        let d = PyDict::new(py);
        d.set_item("files", report.files)?;
        d.set_item("bytes", report.bytes)?;
        d.set_item("edges", report.edges)?;
        Ok(d)
    }

    /// Adds items; returns their ids (int64 [n], consecutive, never used
    /// before).
    ///
    /// `vectors`: a 2-D float16/float32/float64 array [n, dim] (or one 1-D
    /// vector) of the index's dimension (normalised here for cosine).
    /// `labels`: one per item, required when the index has labels, refused
    /// when not: integers, or class names (str) when the index records
    /// them (`manifest["classes"]`); a name it does not know yet becomes a
    /// new class (and the add folds, as the names live in the manifest). `scores`: one float per item (NaN = none), for an index
    /// with scores. `threads`: of a fold (None: all cores).
    ///
    /// The change is on disk (fsync'd) when this returns, and the next
    /// search of this object sees it. Fewer than `FOLD_AT` items (with
    /// those logged before) go to the change log and are searched exactly
    /// beside the graph; more fold into a new generation with the graph
    /// extended (as hnswlib's `add_items`). The first change opens the
    /// index for writing and takes its lock until `close()`; another writer
    /// raises IndexBusyError. The GIL is released.
    #[pyo3(signature = (vectors, labels=None, scores=None, *, threads=None))]
    fn add<'py>(
        &self,
        py: Python<'py>,
        vectors: &Bound<'py, PyAny>,
        labels: Option<&Bound<'py, PyAny>>,
        scores: Option<&Bound<'py, PyAny>>,
        threads: Option<i64>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let index = self.get()?;
        let rows = float_rows(vectors, "vectors", true)?;
        if rows.dim != index.dim() {
            return Err(PyValueError::new_err(format!(
                "vectors have dimension {} but the index {} holds vectors of dimension {}",
                rows.dim,
                self.path.display(),
                index.dim()
            )));
        }
        let mut classes = index.manifest().classes.clone();
        let known = classes.len();
        let labels = labels
            .map(|l| item_labels(l, &mut classes, "labels"))
            .transpose()?;
        let scores = scores.map(|s| float_values(s, "scores")).transpose()?;
        let data = rows.as_slice();
        let new = NewItems {
            vectors: data,
            labels: labels.as_deref(),
            scores: scores.as_deref(),
            items: None,
            classes: (classes.len() > known).then_some(&classes[..]),
        };
        let ids = self.change(py, threads, |w| w.add(&new))?;
        let ids: Vec<i64> = ids.map(|i| i as i64).collect();
        Ok(PyArray1::from_vec(py, ids))
    }

    /// Deletes items by id (an int or a sequence of ints); returns how
    /// many were not deleted before. A deleted item is never returned
    /// again, by any search (graph, exact, label filters); its id is not
    /// reused. An id out of range raises ValueError and deletes nothing.
    /// On disk (fsync'd) when this returns; `compact()` reclaims the space.
    /// The GIL is released.
    fn delete(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let ids = item_ids(ids)?;
        self.change(py, None, |w| w.delete(&ids))
    }

    /// Sets the labels and/or the scores of items `ids` (their vectors are
    /// untouched): `labels` as for `add` (ints, or class names), `scores`
    /// floats (NaN = none), one per id. Writes a new generation (labels
    /// live in the files); returns the fold report as a dict. A deleted id
    /// raises ValueError. The GIL is released.
    #[pyo3(signature = (ids, labels=None, scores=None, *, threads=None))]
    fn update<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        labels: Option<&Bound<'py, PyAny>>,
        scores: Option<&Bound<'py, PyAny>>,
        threads: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let index = self.get()?;
        let ids = item_ids(ids)?;
        let mut classes = index.manifest().classes.clone();
        let known = classes.len();
        let labels = labels
            .map(|l| item_labels(l, &mut classes, "labels"))
            .transpose()?;
        let scores = scores.map(|s| float_values(s, "scores")).transpose()?;
        let grew = (classes.len() > known).then_some(&classes[..]);
        let report = self.change(py, threads, |w| {
            w.update_with(&ids, labels.as_deref(), scores.as_deref(), grew)
        })?;
        report_dict(py, &report)
    }

    /// Folds every change into one clean generation: the graph rebuilt
    /// over the live items only, the deleted items' vectors and records
    /// wiped (their ids stay unused). Returns the fold report as a dict:
    /// "generation", "count", "live", "deleted", "inserted", "rebuilt",
    /// "seconds". `threads`: of the build (None: all cores). The GIL is
    /// released; searches of this object keep running on the previous
    /// generation until it is done.
    #[pyo3(signature = (*, threads=None))]
    fn compact<'py>(&self, py: Python<'py>, threads: Option<i64>) -> PyResult<Bound<'py, PyAny>> {
        let report = self.change(py, threads, Writer::compact)?;
        report_dict(py, &report)
    }

    /// Writes the changes in the change log into a new generation (the
    /// graph extended with the items added since; deleted items kept as
    /// tombstones), so that `vectors`/`labels`/`scores` show every item.
    /// Returns the fold report as a dict, like `compact`. The GIL is
    /// released.
    #[pyo3(signature = (*, threads=None))]
    fn fold<'py>(&self, py: Python<'py>, threads: Option<i64>) -> PyResult<Bound<'py, PyAny>> {
        let report = self.change(py, threads, Writer::fold)?;
        report_dict(py, &report)
    }

    /// Whether item `id` was deleted.
    fn is_deleted(&self, id: i64) -> PyResult<bool> {
        let index = self.get()?;
        let i = usize::try_from(id)
            .ok()
            .filter(|&i| i < index.len())
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "id {id} is out of range: the index {} holds items 0..{}",
                    self.path.display(),
                    index.len()
                ))
            })?;
        Ok(index.is_deleted(i))
    }

    /// Releases this object's reference to the index, and its writer with
    /// the index's lock (every change is already on disk). Arrays from
    /// `vectors` and `labels` stay valid (they hold their own); any other
    /// use of this Index raises ValueError.
    fn close(&self, py: Python<'_>) {
        // The writer's mutex first, as `change` takes them; waits (with the
        // GIL released) for a change in flight to finish.
        py.detach(|| {
            let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            *self.inner.write().unwrap_or_else(|e| e.into_inner()) = None;
            *w = None;
        });
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _ty: Option<&Bound<'_, PyAny>>,
        _value: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
        py: Python<'_>,
    ) {
        self.close(py);
    }

    fn __len__(&self) -> PyResult<usize> {
        self.count()
    }

    fn __repr__(&self) -> String {
        match self.get() {
            Ok(ix) if ix.deleted_count() > 0 => format!(
                "<likeness.Index {:?}: {} × {}, {}, {} deleted>",
                self.path.display().to_string(),
                ix.len(),
                ix.dim(),
                ix.metric(),
                ix.deleted_count()
            ),
            Ok(ix) => format!(
                "<likeness.Index {:?}: {} × {}, {}>",
                self.path.display().to_string(),
                ix.len(),
                ix.dim(),
                ix.metric()
            ),
            Err(_) => format!(
                "<likeness.Index {:?} (closed)>",
                self.path.display().to_string()
            ),
        }
    }
}

/// The likeness index from Python: build, open, search, change, verify,
/// evaluate.
#[pymodule]
fn _likeness(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyIndex>()?;
    m.add("CorruptIndexError", m.py().get_type::<CorruptIndexError>())?;
    m.add("IndexBusyError", m.py().get_type::<IndexBusyError>())?;
    m.add_function(wrap_pyfunction!(build, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(predict_score, m)?)?;
    // The engine's defaults and limits, so that likeness.ray and scripts
    // read them rather than write them again.
    m.add("DEFAULT_K", DEFAULT_K)?;
    m.add("DEFAULT_EF", DEFAULT_EF)?;
    m.add("MAX_K", likeness_index::MAX_K)?;
    m.add("MAX_EF", likeness_index::MAX_EF)?;
    m.add("DEFAULT_M", DEFAULT_M)?;
    m.add("DEFAULT_EF_CONSTRUCTION", DEFAULT_EF_CONSTRUCTION)?;
    m.add("DEFAULT_QUANTILE", DEFAULT_QUANTILE)?;
    // Items an add folds at (see Index.add).
    m.add("FOLD_AT", FOLD_AT)?;
    Ok(())
}
