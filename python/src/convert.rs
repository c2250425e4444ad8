//! Python arguments to Rust values: float rows (borrowed where NumPy
//! already holds C-contiguous float32), labels, ids, and reports back to
//! dicts. Every error is a `TypeError` or `ValueError` that names the
//! argument.
use likeness_index::{FoldReport, LabelName};
use numpy::{
    dtype, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;

/// A positive count argument (`k`, `ef`, `m`, ...), as a `ValueError` when not.
pub(crate) fn positive(name: &str, v: i64) -> PyResult<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&v| v > 0)
        .ok_or_else(|| PyValueError::new_err(format!("{name} = {v}: must be at least 1")))
}

/// A thread count: 1..=MAX_THREADS.
pub(crate) fn thread_count(v: i64) -> PyResult<usize> {
    let n = positive("threads", v)?;
    if n > likeness_index::MAX_THREADS {
        return Err(PyValueError::new_err(format!(
            "threads = {n}: give 1..={} (this machine has {} cores)",
            likeness_index::MAX_THREADS,
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        )));
    }
    Ok(n)
}

/// Float rows as f32: borrowed from a C-contiguous float32 array, else
/// converted once (float16, float64, non-contiguous).
pub(crate) struct Rows<'py> {
    /// Keeps the read-only borrow of a float32 array alive.
    borrowed: Option<numpy::PyReadonlyArrayDyn<'py, f32>>,
    owned: Vec<f32>,
    pub(crate) rows: usize,
    pub(crate) dim: usize,
}

impl Rows<'_> {
    pub(crate) fn as_slice(&self) -> &[f32] {
        match &self.borrowed {
            // Checked C-contiguous when it was stored.
            Some(b) => b.as_slice().unwrap_or(&[]),
            None => &self.owned,
        }
    }
}

/// Reads `obj` (named `what` in messages) as rows of floats: a 2-D array,
/// or a 1-D one (a single row) when `one_row_ok`.
pub(crate) fn float_rows<'py>(
    obj: &Bound<'py, PyAny>,
    what: &str,
    one_row_ok: bool,
) -> PyResult<Rows<'py>> {
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
    if !arr.is_aligned() {
        // NumPy lets a view start at any byte (`np.frombuffer(b, "<f4",
        // offset=1)`); Rust may read floats only where they are aligned
        // (ndarray asserts it in debug builds), so such an array is read
        // from NumPy's copy, which is aligned.
        return float_rows(&obj.call_method0("copy")?, what, one_row_ok);
    }
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
pub(crate) fn int_labels(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<i64>> {
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
pub(crate) fn float_values(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<f32>> {
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

/// A label filter's set (`labels=`, `exclude_labels=`): one label or any
/// iterable of them (list, set, NumPy array, ...), each an integer or a
/// class name of the index, resolved by the engine's one rule as `likeness
/// query --labels` and `/search` resolve them (an unknown name, or a number
/// past the classes, is a `ValueError` naming them).
pub(crate) fn label_set(
    obj: &Bound<'_, PyAny>,
    what: &str,
    manifest: &likeness_index::Manifest,
) -> PyResult<Vec<i64>> {
    let one = |v: &Bound<'_, PyAny>| -> PyResult<i64> {
        let given = if let Ok(name) = v.cast::<PyString>() {
            LabelName::Name(name.to_cow()?.into_owned())
        } else {
            LabelName::Int(v.extract::<i64>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "{what} must be integers or class names (str); {} is neither",
                    v.repr().map_or_else(|_| "?".to_string(), |r| r.to_string())
                ))
            })?)
        };
        manifest
            .filter_label(&given)
            .map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
    };
    if obj.is_instance_of::<PyString>() || obj.extract::<i64>().is_ok() {
        return Ok(vec![one(obj)?]);
    }
    obj.try_iter()
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "{what} must be a label (an int or a class name) or an iterable of them"
            ))
        })?
        .map(|v| one(&v?))
        .collect()
}

/// `build`'s `subjects` or `sides`: one str or a missing value per item,
/// from any iterable (a list, a NumPy array, a pandas column). None, a NaN
/// float and pandas' `NA` are missing, as an empty cell of a manifest is
/// (pandas reads an empty cell of items.csv as NaN).
pub(crate) fn optional_strings(
    obj: &Bound<'_, PyAny>,
    what: &str,
) -> PyResult<Vec<Option<String>>> {
    let not_iterable = || {
        PyTypeError::new_err(format!(
            "{what} must be an iterable of str (None or NaN where an item has none), one per vector"
        ))
    };
    if obj.is_instance_of::<PyString>() {
        return Err(not_iterable());
    }
    obj.try_iter()
        .map_err(|_| not_iterable())?
        .enumerate()
        .map(|(i, v)| {
            let v = v?;
            if v.is_none() {
                return Ok(None);
            }
            if let Ok(s) = v.cast::<PyString>() {
                return Ok(Some(s.to_cow()?.into_owned()));
            }
            let missing = v.extract::<f64>().is_ok_and(f64::is_nan)
                || v.get_type().name().is_ok_and(|n| n == "NAType");
            if missing {
                return Ok(None);
            }
            Err(PyTypeError::new_err(format!(
                "{what}[{i}] is {}: give a str, or None (NaN) where an item has none",
                v.repr().map_or_else(|_| "?".to_string(), |r| r.to_string())
            )))
        })
        .collect()
}

/// Ids as given to `items`: one int, or integers of shape (n,) (an empty
/// list is no ids, though NumPy reads `[]` as float64).
pub(crate) fn given_ids(obj: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    match obj.extract::<i64>() {
        Ok(one) => Ok(vec![one]),
        Err(_) if obj.len().is_ok_and(|n| n == 0) => Ok(Vec::new()),
        Err(_) => int_labels(obj, "ids"),
    }
}

/// Labels of items to add or update: integers, or class names when the
/// index records them (`classes`, the manifest's), mapped to their labels;
/// a name not there yet is appended to `classes` (a new class). A
/// single value (an int or a str) is one label. Lists are read element by
/// element, so ints and names may be mixed (NumPy would turn `["a", 4]`
/// into strings).
pub(crate) fn item_labels(
    obj: &Bound<'_, PyAny>,
    classes: &mut Vec<String>,
    what: &str,
) -> PyResult<Vec<i64>> {
    let values: Vec<Bound<'_, PyAny>> = if obj.cast::<PyUntypedArray>().is_ok() {
        let dt = obj.getattr("dtype")?;
        let kind: String = dt.getattr("kind")?.extract()?;
        let ndim: usize = obj.getattr("ndim")?.extract()?;
        match kind.as_str() {
            "i" | "u" if ndim > 0 => {
                return int_labels(obj, what)?
                    .into_iter()
                    .map(|l| {
                        likeness_index::labels::item_label(classes, &LabelName::Int(l))
                            .map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
                    })
                    .collect()
            }
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
    } else if obj.is_instance_of::<PyString>() || obj.extract::<i64>().is_ok() {
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
            // The engine's rule, as `add`/`update` and `/admin/items`: a
            // number must be a class (when the index names them), a name
            // is its class or a new one.
            let given = if let Ok(name) = v.extract::<String>() {
                LabelName::Name(name)
            } else if let Ok(l) = v.extract::<i64>() {
                LabelName::Int(l)
            } else {
                return Err(PyTypeError::new_err(format!(
                    "{what} must be integers or class names (str); {} is neither",
                    v.repr().map_or_else(|_| "?".to_string(), |r| r.to_string())
                )));
            };
            likeness_index::labels::item_label(classes, &given)
                .map_err(|e| PyValueError::new_err(format!("{what}: {e}")))
        })
        .collect()
}

/// Item ids: one int, or integers of shape (n,); negative ones refused.
pub(crate) fn item_ids(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u64>> {
    given_ids(obj)?
        .iter()
        .map(|&i| {
            u64::try_from(i).map_err(|_| {
                PyValueError::new_err(format!("id {i} is negative: ids are 0, 1, 2, ..."))
            })
        })
        .collect()
}

/// A fold report as a dict (the engine's field names).
pub(crate) fn report_dict<'py>(py: Python<'py>, r: &FoldReport) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_string(r).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (json,))
}
