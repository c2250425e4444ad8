//! The module's functions: `build`, `predict_score`, `evaluate`.
use std::path::PathBuf;

use likeness_index::build::{GraphBuilder, DEFAULT_EF_CONSTRUCTION, DEFAULT_M};
use likeness_index::quant::{Store, DEFAULT_QUANTILE};
use likeness_index::{
    eval, score, Hit, Index, IndexBuilder, ItemPairing, Metric, Side, DEFAULT_EF,
};
use pyo3::exceptions::{PyFileExistsError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::convert::{
    float_rows, float_values, int_labels, optional_strings, positive, thread_count,
};
use crate::{py_err, PyIndex};

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
/// `subjects` and `sides`: n strings or None each (a side "left" or
/// "right", the subject's own), as `likeness index` records a manifest's
/// `subject` and `side` columns: `Index.items` then names them. Any
/// iterable will do (a pandas column too); NaN and pandas' NA are none,
/// as pandas reads an empty cell.
/// The GIL is released while building.
#[pyfunction]
// The text signature spells out the defaults that help() would show as
// `m=...` (test_user.py checks them against DEFAULT_M and the others).
#[pyo3(signature = (vectors, out, *, labels=None, scores=None, classes=None, subjects=None, sides=None, metric="cosine", m=DEFAULT_M as i64, ef_construction=DEFAULT_EF_CONSTRUCTION as i64, seed=0, store="f32", quantile=DEFAULT_QUANTILE, builder="native", threads=None, force=false),
       text_signature = "(vectors, out, *, labels=None, scores=None, classes=None, subjects=None, sides=None, metric=\"cosine\", m=16, ef_construction=200, seed=0, store=\"f32\", quantile=0.99, builder=\"native\", threads=None, force=False)")]
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    py: Python<'_>,
    vectors: &Bound<'_, PyAny>,
    out: PathBuf,
    labels: Option<&Bound<'_, PyAny>>,
    scores: Option<&Bound<'_, PyAny>>,
    classes: Option<Vec<String>>,
    subjects: Option<&Bound<'_, PyAny>>,
    sides: Option<&Bound<'_, PyAny>>,
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
        Some(t) => thread_count(t)?,
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
    let subjects = subjects
        .map(|s| optional_strings(s, "subjects"))
        .transpose()?;
    let sides = sides.map(|s| optional_strings(s, "sides")).transpose()?;
    let pairings = pairings(rows.rows, subjects, sides)?;
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
    let builder = match pairings {
        Some(p) => builder.pairings(p),
        None => builder,
    };
    let (data, dim) = (rows.as_slice(), rows.dim);
    let index = py
        .detach(|| {
            crate::pool(Some(threads))?.install(|| {
                builder.build(data, dim, labels.as_deref(), None, &out, None)?;
                Index::open(&out)
            })
        })
        .map_err(py_err)?;
    Ok(PyIndex::wrap(index))
}

/// `build`'s `subjects` and `sides` as the index records them (None when
/// neither is given), each checked to hold one entry per vector.
fn pairings(
    rows: usize,
    subjects: Option<Vec<Option<String>>>,
    sides: Option<Vec<Option<String>>>,
) -> PyResult<Option<Vec<ItemPairing>>> {
    if subjects.is_none() && sides.is_none() {
        return Ok(None);
    }
    for (name, n) in [
        ("subjects", subjects.as_ref().map(Vec::len)),
        ("sides", sides.as_ref().map(Vec::len)),
    ] {
        if let Some(n) = n.filter(|&n| n != rows) {
            return Err(PyValueError::new_err(format!(
                "vectors holds {rows} rows but {name} holds {n}; give one per vector \
                 (None where an item has none)"
            )));
        }
    }
    let sides: Vec<Option<Side>> = match sides {
        Some(v) => v
            .into_iter()
            .enumerate()
            .map(|(i, s)| match s.as_deref() {
                None | Some("") => Ok(None),
                Some(s) => s
                    .parse()
                    .map(Some)
                    .map_err(|e| PyValueError::new_err(format!("sides[{i}]: {e}"))),
            })
            .collect::<PyResult<_>>()?,
        None => vec![None; rows],
    };
    let subjects = subjects.unwrap_or_else(|| vec![None; rows]);
    Ok(Some(
        subjects
            .into_iter()
            .zip(sides)
            .map(|(subject, side)| ItemPairing {
                subject: subject.filter(|s| !s.is_empty()),
                side,
            })
            .collect(),
    ))
}

/// The score predicted from a query's hits, as `likeness query` and
/// `likeness serve` give it (`predicted_score`): the 1/distance-weighted
/// mean of the scores of the hits that have one (NaN = none). `distances`
/// and `scores` are the hits', in any order. None when no hit has a score.
#[pyfunction]
pub(crate) fn predict_score(distances: Vec<f32>, scores: Vec<f32>) -> PyResult<Option<f32>> {
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
            subject: None,
            side: None,
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
#[pyo3(signature = (index, ks=vec![1, 2, 4, 8], queries=None, labels=None, *, ef=DEFAULT_EF as i64),
       text_signature = "(index, ks=[1, 2, 4, 8], queries=None, labels=None, *, ef=64)")]
pub(crate) fn evaluate<'py>(
    py: Python<'py>,
    index: &PyIndex,
    ks: Vec<i64>,
    queries: Option<&Bound<'py, PyAny>>,
    labels: Option<&Bound<'py, PyAny>>,
    ef: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let ix = index.get()?;
    if ks.is_empty() {
        return Err(PyValueError::new_err(
            "ks is empty: give the K of each Recall@K, e.g. ks=[1, 5]",
        ));
    }
    let ks = ks
        .into_iter()
        .map(|k| positive("K of ks", k))
        .collect::<PyResult<Vec<_>>>()?;
    let ef = positive("ef", ef)?;
    let queries = match (queries, labels) {
        (None, None) => None,
        (Some(q), Some(l)) => {
            let rows = float_rows(q, "queries", false)?;
            // Checked before the rows are read as flat values, which
            // would be cut into rows of the index's dimension.
            if rows.dim != ix.dim() {
                return Err(py_err(likeness_index::Error::query_dimension(
                    ix.dim(),
                    rows.dim,
                )));
            }
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
        .detach(|| crate::pool(None)?.install(|| eval::evaluate_index(&ix, q, &ks, ef)))
        .map_err(py_err)?;
    let json =
        serde_json::to_string(&report).map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (json,))
}
