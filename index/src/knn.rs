//! A k-NN request as `likeness query` and the Python package make it: `k`
//! results per query row whatever the index's size, item ids left out of
//! their own row (query by stored item), graph or exact search.
//!
//! One place for this logic, so that the CLI, `likeness eval` and the Python
//! `Index.search` return the same ids and distances for the same request.

use crate::error::{Error, Result};
use crate::index::{Index, LabelFilter};
use crate::neighbours::Neighbours;

/// The k nearest items of each query row.
#[derive(Debug, Clone, Copy)]
pub struct KnnQuery<'a> {
    /// Results per query row (rows are padded with `-1` / `+inf`).
    pub k: usize,
    /// Beam width of the graph search (raised to the search depth).
    pub ef: usize,
    /// Brute force over the mapped vectors instead of the graph.
    pub exact: bool,
    /// Only (or never) items with these labels.
    pub filter: Option<&'a LabelFilter>,
    /// Row `q` leaves item `exclude[q]` out of its results (a query by
    /// stored item should not find itself).
    pub exclude: Option<&'a [usize]>,
}

impl KnnQuery<'_> {
    /// Results asked of the index per row: `k`, one more when an item is
    /// left out, never more than the index holds.
    pub fn depth(&self, index: &Index) -> usize {
        let n = index.len();
        let want = if self.exclude.is_some() {
            self.k + 1
        } else {
            self.k
        };
        want.min(n).max(self.k.min(n)).max(1)
    }

    /// The beam width the graph search runs with.
    pub fn beam(&self, index: &Index) -> usize {
        self.ef.max(self.depth(index))
    }

    /// Searches `queries` (row-major, `dim` columns) on rayon.
    pub fn run(&self, index: &Index, queries: &[f32], dim: usize) -> Result<Neighbours> {
        if self.k == 0 {
            return Err(Error::param("k", 0, "must be at least 1"));
        }
        let want = self.depth(index);
        let found = if self.exact {
            index.search_exact_batch(queries, dim, want, self.filter)?
        } else {
            index.search_batch(queries, dim, want, self.beam(index), self.filter)?
        };
        let nq = found.queries();
        if let Some(ex) = self.exclude {
            if ex.len() != nq {
                return Err(Error::InvalidInput(format!(
                    "{nq} query rows but {} items to leave out",
                    ex.len()
                )));
            }
        }
        if self.exclude.is_none() && found.k() == self.k {
            return Ok(found);
        }
        // Leave each row's own item out, and pad to k so the shape is what
        // was asked.
        let k = self.k;
        let mut ids = Vec::with_capacity(nq * k);
        let mut dists = Vec::with_capacity(nq * k);
        for q in 0..nq {
            let skip = self.exclude.map(|ex| ex[q] as i64);
            let mut row = found
                .ids(q)
                .iter()
                .zip(found.distances(q))
                .filter(|(&i, _)| Some(i) != skip)
                .map(|(&i, &d)| (i, d));
            for _ in 0..k {
                let (i, d) = row.next().unwrap_or((-1, f32::INFINITY));
                ids.push(i);
                dists.push(d);
            }
        }
        Neighbours::from_parts(nq, k, ids, dists)
            .ok_or_else(|| Error::InvalidInput("result shape".into()))
    }
}

// TEMPORARY (replaced by the reshape-index branch's knn.rs at merge).
pub const DEFAULT_K: usize = 10;
pub const DEFAULT_EF: usize = 64;
impl<'a> KnnQuery<'a> {
    pub fn new(_v: &'a [f32]) -> Self {
        KnnQuery { k: DEFAULT_K, ef: DEFAULT_EF, exact: false, filter: None, exclude: None }
    }
    pub fn k(self, k: usize) -> Self { KnnQuery { k, ..self } }
    pub fn ef(self, ef: usize) -> Self { KnnQuery { ef, ..self } }
    pub fn exact(self, exact: bool) -> Self { KnnQuery { exact, ..self } }
    pub fn filter(self, filter: Option<&'a LabelFilter>) -> Self { KnnQuery { filter, ..self } }
    pub fn exclude(self, exclude: Option<&'a [usize]>) -> Self { KnnQuery { exclude, ..self } }
    pub fn options(self, _o: crate::postings::SearchOptions) -> Self { self }
}
impl Index {
    pub fn query(&self, _q: &KnnQuery<'_>) -> Result<(Neighbours, crate::Plan)> {
        Err(Error::InvalidInput("temporary".into()))
    }
}
