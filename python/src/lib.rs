//! `likeness._likeness`: the Python face of `likeness-index` (PyO3 +
//! rust-numpy). The package `likeness` re-exports everything from here.
//!
//! Arrays come in as read-only views where they already are C-contiguous
//! float32 (others are converted once) and go out as NumPy arrays that own
//! the Rust buffers (moved, not copied). `Index.vectors` and `Index.labels`
//! are views on the memory map whose base object holds its own reference to
//! the open index, so they outlive `close()`. Every search, build, verify and
//! evaluation runs with the GIL released.
//!
//! Every computation is the index crate's own (`IndexBuilder`, `KnnQuery`,
//! `eval::evaluate_index`), the same calls as the CLI's, so files and
//! numbers are interchangeable between the two.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock};

use likeness_index::build::{GraphBuilder, DEFAULT_EF_CONSTRUCTION, DEFAULT_M};
use likeness_index::quant::{Store, DEFAULT_QUANTILE};
use likeness_index::{
    eval, score, Error, Hit, Index, IndexBuilder, ItemInfo, KnnQuery, LabelFilter, Metric,
    Neighbours, DEFAULT_EF, DEFAULT_K,
};
use numpy::ndarray::{Array2, ArrayView1, ArrayView2};
use numpy::{
    dtype, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyFileExistsError, PyFileNotFoundError, PyOSError, PyRuntimeError, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

create_exception!(
    likeness,
    CorruptIndexError,
    PyException,
    "An index file is corrupt, truncated, of an unsupported format version, or \
     not a likeness index file at all (wrong magic). The message names the \
     file; rebuild the index."
);

/// The Python exception for an index error, keeping its message.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(msg)
        }
        Error::Io { .. } => PyOSError::new_err(msg),
        Error::MissingFile { .. } => PyFileNotFoundError::new_err(msg),
        Error::BadMagic { .. }
        | Error::UnsupportedVersion { .. }
        | Error::Truncated { .. }
        | Error::SizeMismatch { .. }
        | Error::ChecksumMismatch { .. }
        | Error::Corrupt { .. }
        // The only .npy this module reads is an index's vectors.npy.
        | Error::Npy { .. } => CorruptIndexError::new_err(msg),
        Error::InvalidParameter { .. }
        | Error::Usage(_)
        | Error::InvalidInput(_)
        | Error::DimensionMismatch { .. }
        | Error::NonFinite { .. }
        | Error::ZeroVector { .. } => PyValueError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// A positive count argument (`k`, `ef`, `m`, ...), as a `ValueError` when not.
fn positive(name: &str, v: i64) -> PyResult<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| PyValueError::new_err(format!("{name} = {v}: must be at least 1")))
}

/// Float rows as f32: borrowed from a C-contiguous float32 array, else
/// converted once (float16, float64, non-contiguous).
struct Rows<'py> {
    /// Keeps the read-only borrow of a float32 array alive.
    borrowed: Option<numpy::PyReadonlyArrayDyn<'py, f32>>,
    owned: Vec<f32>,
    rows: usize,
    dim: usize,
}

impl Rows<'_> {
    fn as_slice(&self) -> &[f32] {
        match &self.borrowed {
            // Checked C-contiguous when it was stored.
            Some(b) => b.as_slice().unwrap_or(&[]),
            None => &self.owned,
        }
    }
}

/// Reads `obj` (named `what` in messages) as rows of floats: a 2-D array,
/// or a 1-D one (a single row) when `one_row_ok`.
fn float_rows<'py>(obj: &Bound<'py, PyAny>, what: &str, one_row_ok: bool) -> PyResult<Rows<'py>> {
    let py = obj.py();
    let arr = obj.cast::<PyUntypedArray>().map_err(|_| {
        let ty = obj
            .get_type()
            .name()
            .map_or_else(|_| "?".to_string(), |n| n.to_string());
        PyTypeError::new_err(format!(
            "{what} must be a numpy.ndarray of float16, float32 or float64, not {ty}; \
             convert with numpy.asarray({what}, dtype=numpy.float32)"
        ))
    })?;
    let shape = arr.shape().to_vec();
    let (rows, dim) = match shape.as_slice() {
        &[r, d] => (r, d),
        &[d] if one_row_ok => (1, d),
        s => {
            let want = if one_row_ok {
                "a 1-D array (one vector) or a 2-D array (vectors × dimension)"
            } else {
                "a 2-D array (vectors × dimension)"
            };
            return Err(PyValueError::new_err(format!(
                "{what} must be {want}, got {}-D shape {s:?}",
                s.len()
            )));
        }
    };
    if dim == 0 {
        return Err(PyValueError::new_err(format!(
            "{what} has shape {shape:?}: vectors of dimension 0"
        )));
    }
    let dt = arr.dtype();
    let mut out = Rows {
        borrowed: None,
        owned: Vec::new(),
        rows,
        dim,
    };
    if dt.is_equiv_to(&dtype::<f32>(py)) {
        let a = obj.cast::<PyArrayDyn<f32>>()?.readonly();
        // `as_slice` also accepts Fortran order, whose rows are not rows.
        if arr.is_c_contiguous() && a.as_slice().is_ok() {
            out.borrowed = Some(a);
        } else {
            out.owned = a.as_array().iter().copied().collect();
        }
    } else if dt.is_equiv_to(&dtype::<f64>(py)) {
        let a = obj.cast::<PyArrayDyn<f64>>()?.readonly();
        // As `likeness build` reads a float64 .npy: rounded to nearest.
        out.owned = a.as_array().iter().map(|&x| x as f32).collect();
    } else if dt.is_equiv_to(&dtype::<half::f16>(py)) {
        let a = obj.cast::<PyArrayDyn<half::f16>>()?.readonly();
        out.owned = a.as_array().iter().map(|x| x.to_f32()).collect();
    } else {
        let name = dt.str().map_or_else(|_| "?".to_string(), |s| s.to_string());
        return Err(PyTypeError::new_err(format!(
            "{what} has dtype {name}; expected float16, float32 or float64 \
             (native byte order); convert with {what}.astype(numpy.float32)"
        )));
    }
    Ok(out)
}

/// Integer labels from any integer array or sequence, as int64.
fn int_labels(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<i64>> {
    let py = obj.py();
    let np = py.import("numpy")?;
    let arr = np.call_method1("asarray", (obj,))?;
    let dt = arr.getattr("dtype")?;
    let kind: String = dt.getattr("kind")?.extract()?;
    if kind != "i" && kind != "u" {
        return Err(PyTypeError::new_err(format!(
            "{what} must be integers, got dtype {}; convert with {what}.astype(numpy.int64)",
            dt.str()?
        )));
    }
    let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
    if !matches!(shape.as_slice(), [_] | [_, 1]) {
        return Err(PyValueError::new_err(format!(
            "{what} must have shape (n,) or (n, 1), got {shape:?}"
        )));
    }
    if kind == "u" && dt.getattr("itemsize")?.extract::<usize>()? == 8 {
        let max: u64 = if shape[0] == 0 {
            0
        } else {
            arr.call_method0("max")?.extract()?
        };
        if max > i64::MAX as u64 {
            return Err(PyValueError::new_err(format!(
                "{what}: label {max} does not fit in int64"
            )));
        }
    }
    let a = arr.call_method1("astype", ("int64",))?;
    let a = a.cast::<PyArrayDyn<i64>>()?.readonly();
    Ok(a.as_array().iter().copied().collect())
}

/// Floats from any 1-D float array or sequence (`scores`), as f32.
fn float_values(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<f32>> {
    let np = obj.py().import("numpy")?;
    let arr = np
        .call_method1("asarray", (obj,))?
        .call_method1("astype", ("float32",))
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be numbers; convert with numpy.asarray({what}, dtype=numpy.float32)"
            ))
        })?;
    let shape: Vec<usize> = arr.getattr("shape")?.extract()?;
    if shape.len() != 1 {
        return Err(PyValueError::new_err(format!(
            "{what} must have shape (n,), got {shape:?}"
        )));
    }
    let a = arr.cast::<PyArrayDyn<f32>>()?.readonly();
    Ok(a.as_array().iter().copied().collect())
}

/// A label set: one int or a sequence of ints.
fn label_set(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<i64>> {
    if let Ok(v) = obj.extract::<i64>() {
        return Ok(vec![v]);
    }
    obj.extract::<Vec<i64>>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be an int or a sequence of ints")))
}

/// Rayon pools of a given size, kept for reuse (making one costs a thread
/// spawn per worker).
type Pools = Mutex<Vec<(usize, Arc<rayon::ThreadPool>)>>;
static POOLS: LazyLock<Pools> = LazyLock::new(|| Mutex::new(Vec::new()));

fn pool(threads: usize) -> Result<Arc<rayon::ThreadPool>, Error> {
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = pools.iter().find(|(n, _)| *n == threads) {
        return Ok(p.clone());
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::InvalidInput(format!("cannot start {threads} search threads: {e}")))?;
    let p = Arc::new(p);
    pools.push((threads, p.clone()));
    Ok(p)
}

/// Runs `req` (`rows` query rows) through the engine's one entry point:
/// on the calling thread for one row or `threads = 1` (graph search), on a
/// pool of `threads`, or on rayon's global pool (all cores).
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
        Some(n) => pool(n)?.install(|| query(req)),
        None => query(req),
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

/// An open index: memory-mapped files, searched in place.
///
/// Open one with `Index.open(path)` or get one from `likeness.build(...)`.
/// Any number of Python threads may search one `Index` at once.
#[pyclass(module = "likeness", name = "Index", frozen)]
struct PyIndex {
    inner: RwLock<Option<Arc<Index>>>,
    path: PathBuf,
    /// Decoded item records (`meta.bin`), on first use.
    items: OnceLock<Vec<ItemInfo>>,
}

impl PyIndex {
    fn wrap(index: Index) -> Self {
        PyIndex {
            path: index.dir().to_path_buf(),
            inner: RwLock::new(Some(Arc::new(index))),
            items: OnceLock::new(),
        }
    }

    fn get(&self) -> PyResult<Arc<Index>> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "the index {} was closed; open it again with likeness.Index.open",
                    self.path.display()
                ))
            })
    }

    fn item_records(&self, index: &Index) -> PyResult<&[ItemInfo]> {
        if let Some(v) = self.items.get() {
            return Ok(v);
        }
        let v = index.items().map_err(py_err)?;
        Ok(self.items.get_or_init(|| v))
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
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let index = py.detach(|| Index::open(&path)).map_err(py_err)?;
        Ok(PyIndex::wrap(index))
    }

    /// Number of items.
    #[getter]
    fn count(&self) -> PyResult<usize> {
        Ok(self.get()?.len())
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

    /// The stored vectors (for cosine: normalised), float32 [count, dim]:
    /// a read-only view on the memory map, no copy. The view keeps the
    /// index's files mapped; closing or dropping this Index does not
    /// invalidate it.
    #[getter]
    fn vectors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let index = self.get()?;
        let view = ArrayView2::from_shape((index.len(), index.dim()), index.vectors())
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

    /// The items' labels, int64 [count] (a read-only view on the memory
    /// map, like `vectors`), or None when the index was built without.
    #[getter]
    fn labels<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray1<i64>>>> {
        let index = self.get()?;
        index
            .labels()
            .map(|l| mapped_array1(py, &index, l))
            .transpose()
    }

    /// The items' scores, float32 [count] (NaN where an item has none; a
    /// read-only view on the memory map, like `vectors`), or None when the
    /// index was built without scores.
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
    /// name), "path" (the item's source), "region" ([x0, y0, x1, y1]) and
    /// "score" (absent where the item has none), as `likeness serve`'s hits.
    /// With `distances` (a search's row), each dict also gets "distance".
    /// Id -1 (search padding) gives None.
    #[pyo3(signature = (ids, distances=None))]
    fn items<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
        distances: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let index = self.get()?;
        let ids = int_labels(ids, "ids")?;
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
        let labels = index.labels();
        let scores = index.scores();
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
            let d = PyDict::new(py);
            d.set_item("id", id)?;
            if let Some(l) = labels.map(|l| l[i]) {
                d.set_item("label", l)?;
                if let Some(c) = manifest.class_name(l) {
                    d.set_item("class", c)?;
                }
            }
            if let Some(info) = records.get(i) {
                if !info.source.is_empty() {
                    d.set_item("path", &info.source)?;
                }
                if let Some(r) = info.region {
                    d.set_item("region", r.to_vec())?;
                }
            }
            if let Some(sc) = scores.and_then(|s| s.get(i)).filter(|s| s.is_finite()) {
                d.set_item("score", sc)?;
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
    /// items with one of these labels, `exclude_labels` drops them.
    /// `exact=True` compares against every item instead. `threads`: None
    /// uses all cores (rayon); 1 runs on the calling thread. The GIL is
    /// released for the whole search, so Python threads can search one
    /// index at once.
    #[pyo3(signature = (queries, k=DEFAULT_K as i64, *, ef=DEFAULT_EF as i64, labels=None, exclude_labels=None, exact=false, threads=None))]
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
        let threads = threads.map(|t| positive("threads", t)).transpose()?;
        let filter = match (labels, exclude_labels) {
            (Some(_), Some(_)) => {
                return Err(PyValueError::new_err(
                    "give labels (keep only these) or exclude_labels (drop these), not both",
                ))
            }
            (Some(l), None) => Some(LabelFilter::only(label_set(l, "labels")?)),
            (None, Some(l)) => Some(LabelFilter::except(label_set(l, "exclude_labels")?)),
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

    /// Releases this object's reference to the index. Arrays from
    /// `vectors` and `labels` stay valid (they hold their own); any other
    /// use of this Index raises ValueError.
    fn close(&self) {
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _ty: Option<&Bound<'_, PyAny>>,
        _value: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) {
        self.close();
    }

    fn __len__(&self) -> PyResult<usize> {
        self.count()
    }

    fn __repr__(&self) -> String {
        match self.get() {
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

/// Builds an HNSW index of `vectors` into the directory `out` and opens it:
/// the same files as `likeness build` (either opens the other's).
///
/// `vectors`: a 2-D float16, float32 or float64 array [n, dim]; a
/// non-contiguous array is copied once. Rows with NaN or Inf are refused
/// (the error names the row), and for "cosine" so are all-zero rows.
/// `labels`: n integers (stored as int64), for label filters and
/// `evaluate`. `metric`: "cosine" (vectors normalised at build) or "l2"
/// (squared Euclidean). `m`: links per node in the upper layers (layer 0
/// keeps 2·m), 2..=256. `ef_construction`: the build's beam width.
/// `seed`: of the levels and insertion order (with `threads=1` the build is
/// reproducible). `threads`: None = all cores. `force`: replace an existing
/// index at `out` (built beside it first; a failed build leaves it
/// untouched). `store`: "f32", "f16" or "i8" (8-bit per-dimension codes,
/// a quarter of f32's memory; f16 and i8 re-rank with float32).
/// `quantile`: i8's central fraction of each dimension's values the codes
/// span. `builder`: "native" or "hnsw_rs" (builds with that feature). The
/// same options, names and defaults as `likeness build`. `scores`: n
/// floats, NaN where an item has none (as `likeness index` records a
/// manifest's `score` column), for `predicted_score`. The GIL is released
/// while building.
#[pyfunction]
#[pyo3(signature = (vectors, out, *, labels=None, scores=None, metric="cosine", m=DEFAULT_M as i64, ef_construction=DEFAULT_EF_CONSTRUCTION as i64, seed=0, store="f32", quantile=DEFAULT_QUANTILE, builder="native", threads=None, force=false))]
#[allow(clippy::too_many_arguments)]
fn build(
    py: Python<'_>,
    vectors: &Bound<'_, PyAny>,
    out: PathBuf,
    labels: Option<&Bound<'_, PyAny>>,
    scores: Option<&Bound<'_, PyAny>>,
    metric: &str,
    m: i64,
    ef_construction: i64,
    seed: u64,
    store: &str,
    quantile: f32,
    builder: &str,
    threads: Option<i64>,
    force: bool,
) -> PyResult<PyIndex> {
    let store: Store = store.parse().map_err(py_err)?;
    let graph_builder: GraphBuilder = builder.parse().map_err(py_err)?;
    let metric: Metric = metric.parse().map_err(py_err)?;
    let m = positive("m", m)?;
    let ef_construction = positive("ef_construction", ef_construction)?;
    // As the CLI: all cores unless told (the manifest records the count).
    let threads = match threads {
        Some(t) => positive("threads", t)?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let rows = float_rows(vectors, "vectors", false)?;
    let labels = labels.map(|l| int_labels(l, "labels")).transpose()?;
    if let Some(l) = &labels {
        if l.len() != rows.rows {
            return Err(PyValueError::new_err(format!(
                "vectors holds {} rows but labels holds {}; give one label per vector",
                rows.rows,
                l.len()
            )));
        }
    }
    let scores = scores.map(|s| float_values(s, "scores")).transpose()?;
    if let Some(sc) = &scores {
        if sc.len() != rows.rows {
            return Err(PyValueError::new_err(format!(
                "vectors holds {} rows but scores holds {}; give one score per vector \
                 (NaN where an item has none)",
                rows.rows,
                sc.len()
            )));
        }
    }
    if out.exists() && !force {
        return Err(PyFileExistsError::new_err(format!(
            "{} already exists; remove it, choose another out or pass force=True to replace it",
            out.display()
        )));
    }
    let builder = IndexBuilder::new()
        .metric(metric)
        .m(m)
        .ef_construction(ef_construction)
        .seed(seed)
        .store(store)
        .quantile(quantile)
        .graph_builder(graph_builder)
        .threads(threads)
        .overwrite(force);
    let builder = match scores {
        Some(sc) => builder.scores(sc),
        None => builder,
    };
    let (data, dim) = (rows.as_slice(), rows.dim);
    let index = py
        .detach(|| {
            builder.build(data, dim, labels.as_deref(), None, &out, None)?;
            Index::open(&out)
        })
        .map_err(py_err)?;
    Ok(PyIndex::wrap(index))
}

/// The score predicted from a query's hits, as `likeness query` and
/// `likeness serve` give it (`predicted_score`): the 1/distance-weighted
/// mean of the scores of the hits that have one (NaN = none). `distances`
/// and `scores` are the hits', in any order. None when no hit has a score.
#[pyfunction]
fn predict_score(distances: Vec<f32>, scores: Vec<f32>) -> PyResult<Option<f32>> {
    if distances.len() != scores.len() {
        return Err(PyValueError::new_err(format!(
            "{} distances but {} scores; give one score per hit",
            distances.len(),
            scores.len()
        )));
    }
    // The engine's own function over hits, so that the sharded answer is
    // computed as one index's is.
    let hits: Vec<Hit> = distances
        .iter()
        .zip(&scores)
        .enumerate()
        .map(|(r, (&distance, &s))| Hit {
            rank: r + 1,
            id: r as i64,
            distance,
            label: None,
            class: None,
            path: None,
            region: None,
            score: Some(s).filter(|s| s.is_finite()),
        })
        .collect();
    Ok(score::predict_from_hits(&hits))
}

/// Retrieval metrics of an index with labels: the same keys and values as
/// `likeness eval --json` on the same index.
///
/// With `queries=None`, leave-one-out: every item queries all the others.
/// Otherwise `queries` (2-D float array) with `labels` (one int per row)
/// are searched against the index. Keys: "recall@K" for each K in `ks`,
/// "precision@1", "r_precision", "map@r", "ann_recall@K" (the graph's
/// agreement with exact search at the largest K, beam width `ef`),
/// "per_class", counts and "seconds". The GIL is released.
#[pyfunction]
#[pyo3(signature = (index, ks=vec![1, 2, 4, 8], queries=None, labels=None, *, ef=DEFAULT_EF as i64))]
fn evaluate<'py>(
    py: Python<'py>,
    index: &PyIndex,
    ks: Vec<i64>,
    queries: Option<&Bound<'py, PyAny>>,
    labels: Option<&Bound<'py, PyAny>>,
    ef: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let ix = index.get()?;
    let ks = ks
        .into_iter()
        .map(|k| positive("K of ks", k))
        .collect::<PyResult<Vec<_>>>()?;
    let ef = positive("ef", ef)?;
    let queries = match (queries, labels) {
        (None, None) => None,
        (Some(q), Some(l)) => {
            let rows = float_rows(q, "queries", false)?;
            let l = int_labels(l, "labels")?;
            if l.len() != rows.rows {
                return Err(PyValueError::new_err(format!(
                    "queries holds {} rows but labels holds {}; give one label per query",
                    rows.rows,
                    l.len()
                )));
            }
            Some((rows, l))
        }
        _ => {
            return Err(PyValueError::new_err(
                "queries and labels go together: give both (query vs gallery) or neither (leave-one-out)",
            ))
        }
    };
    let q = queries.as_ref().map(|(r, l)| (r.as_slice(), l.as_slice()));
    let report = py
        .detach(|| eval::evaluate_index(&ix, q, &ks, ef))
        .map_err(py_err)?;
    let json =
        serde_json::to_string(&report).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (json,))
}

/// The likeness index from Python: build, open, search, verify, evaluate.
#[pymodule]
fn _likeness(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyIndex>()?;
    m.add("CorruptIndexError", m.py().get_type::<CorruptIndexError>())?;
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
    Ok(())
}
