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

use likeness_index::build::{GraphBuilder, DEFAULT_EF_CONSTRUCTION, DEFAULT_M};
use likeness_index::quant::{Store, DEFAULT_QUANTILE};
use likeness_index::{
    eval, score, Error, FoldReport, Hit, Index, IndexBuilder, ItemInfo, KnnQuery, LabelFilter,
    Metric, Neighbours, NewItems, Writer, DEFAULT_EF, DEFAULT_K, FOLD_AT,
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
        Error::Busy { .. } => IndexBusyError::new_err(msg),
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

/// Labels of items to add or update: integers, or class names when the
/// index records them (`classes`, the manifest's), mapped to their labels;
/// a name not there yet is appended to `classes` (a new class). A
/// single value (an int or a str) is one label. Lists are read element by
/// element, so ints and names may be mixed (NumPy would turn `["a", 4]`
/// into strings).
fn item_labels(
    obj: &Bound<'_, PyAny>,
    classes: &mut Vec<String>,
    what: &str,
) -> PyResult<Vec<i64>> {
    let values: Vec<Bound<'_, PyAny>> = if obj.cast::<PyUntypedArray>().is_ok() {
        let dt = obj.getattr("dtype")?;
        let kind: String = dt.getattr("kind")?.extract()?;
        let ndim: usize = obj.getattr("ndim")?.extract()?;
        match kind.as_str() {
            "i" | "u" if ndim > 0 => return int_labels(obj, what),
            "i" | "u" | "U" | "O" if ndim <= 1 => {
                let list = obj.call_method0("tolist")?;
                if ndim == 0 {
                    vec![list]
                } else {
                    list.extract()?
                }
            }
            "i" | "u" | "U" | "O" => {
                let shape: Vec<usize> = obj.getattr("shape")?.extract()?;
                return Err(PyValueError::new_err(format!(
                    "{what} must have shape (n,), got {shape:?}"
                )));
            }
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "{what} must be integers or class names (str), got dtype {}",
                    dt.str()?
                )))
            }
        }
    } else if obj.is_instance_of::<pyo3::types::PyString>() || obj.extract::<i64>().is_ok() {
        vec![obj.clone()]
    } else {
        obj.try_iter()
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "{what} must be integers or class names (str), one per item"
                ))
            })?
            .collect::<PyResult<_>>()?
    };
    values
        .iter()
        .map(|v| {
            if let Ok(name) = v.extract::<String>() {
                class_label(classes, &name, what)
            } else if let Ok(l) = v.extract::<i64>() {
                Ok(l)
            } else {
                Err(PyTypeError::new_err(format!(
                    "{what} must be integers or class names (str); {} is neither",
                    v.repr().map_or_else(|_| "?".to_string(), |r| r.to_string())
                )))
            }
        })
        .collect()
}

/// The label of the class `name`: its position in `classes`, where a new
/// name is appended; an index without class names takes integers only.
fn class_label(classes: &mut Vec<String>, name: &str, what: &str) -> PyResult<i64> {
    if classes.is_empty() {
        return Err(PyValueError::new_err(format!(
            "{what}: {name:?} is a class name, but this index records none; give integer labels"
        )));
    }
    if let Some(p) = classes.iter().position(|c| c == name) {
        return Ok(p as i64);
    }
    classes.push(name.to_string());
    Ok(classes.len() as i64 - 1)
}

/// Item ids: one int, or integers of shape (n,); negative ones refused.
fn item_ids(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    let ids = match obj.extract::<i64>() {
        Ok(one) => vec![one],
        // `[]` is float64 to NumPy: no ids.
        Err(_) if obj.len().is_ok_and(|n| n == 0) => Vec::new(),
        Err(_) => int_labels(obj, "ids")?,
    };
    ids.iter()
        .map(|&i| {
            u64::try_from(i).map_err(|_| {
                PyValueError::new_err(format!("id {i} is negative: ids are 0, 1, 2, ..."))
            })
        })
        .collect()
}

/// A fold report as a dict (the engine's field names).
fn report_dict<'py>(py: Python<'py>, r: &FoldReport) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(r).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (json,))
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
/// Any number of Python threads may search one `Index` at once, also while
/// another changes it (`add`, `delete`, `update`, `compact`).
#[pyclass(module = "likeness", name = "Index", frozen)]
struct PyIndex {
    /// The index searched: the writer's own once there is one, swapped
    /// after each change (a fold makes a new one).
    inner: RwLock<Option<Arc<Index>>>,
    path: PathBuf,
    /// Decoded item records (`meta.bin`) of one generation, on first use
    /// (a fold may change them: compaction wipes the deleted items').
    items: Mutex<Option<(u64, Arc<Vec<ItemInfo>>)>>,
    /// The writer, opened on the first change and kept (with the index's
    /// lock) until `close()` or the object is dropped: changes then cost
    /// no reopening, and no other writer changes the index under this one.
    writer: Mutex<Option<Writer>>,
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

    fn item_records(&self, index: &Index) -> PyResult<Arc<Vec<ItemInfo>>> {
        let mut cached = self.items.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, v)) = cached.as_ref().filter(|(g, _)| *g == index.generation()) {
            return Ok(v.clone());
        }
        let v = Arc::new(index.items().map_err(py_err)?);
        *cached = Some((index.generation(), v.clone()));
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
        let threads = threads.map(|t| positive("threads", t)).transpose()?;
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
                None => Writer::open(&self.path).map_err(py_err)?,
            };
            let w = slot.insert(w);
            // 0: rayon's default (all cores), as `build`'s None.
            w.threads(threads.unwrap_or(0));
            let out = change(w);
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
    /// name), "path" (the item's source), "region" ([x0, y0, x1, y1]) and
    /// "score" (absent where the item has none), as `likeness serve`'s hits.
    /// With `distances` (a search's row), each dict also gets "distance".
    /// Id -1 (search padding) gives None; a deleted id raises ValueError.
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
            if let Some(info) = records.get(i) {
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
/// manifest's `score` column), for `predicted_score`. `classes`: the
/// labels' names (`classes[label]`, as `likeness index` records its
/// folders): hits get "class", and `add`/`update` take names as labels.
/// The GIL is released while building.
#[pyfunction]
#[pyo3(signature = (vectors, out, *, labels=None, scores=None, classes=None, metric="cosine", m=DEFAULT_M as i64, ef_construction=DEFAULT_EF_CONSTRUCTION as i64, seed=0, store="f32", quantile=DEFAULT_QUANTILE, builder="native", threads=None, force=false))]
#[allow(clippy::too_many_arguments)]
fn build(
    py: Python<'_>,
    vectors: &Bound<'_, PyAny>,
    out: PathBuf,
    labels: Option<&Bound<'_, PyAny>>,
    scores: Option<&Bound<'_, PyAny>>,
    classes: Option<Vec<String>>,
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
    let builder = match classes {
        Some(c) => builder.classes(c),
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
