//! A k-NN request and the one search entry point, [`Index::query`]: `k`
//! results per query row whatever the index's size, item ids left out of
//! their own row (query by stored item), graph or exact search, an optional
//! label filter, the search options.
//!
//! Every search parameter has its home here: the defaults and limits of `k`
//! and `ef` ([`DEFAULT_K`], [`DEFAULT_EF`], [`MAX_K`], [`MAX_EF`]) and the
//! one check of a request ([`KnnQuery::validate`]). The CLI, the HTTP
//! server, `likeness eval` and the Python `Index.search` all search through
//! [`Index::query`], so they accept the same requests and return the same
//! ids and distances for them.

use crate::error::{Error, Result};
use crate::index::{Index, LabelFilter};
use crate::neighbours::Neighbours;
use crate::postings::{Plan, PlanKind, SearchOptions};

/// Results per query row when the caller does not say.
pub const DEFAULT_K: usize = 10;
/// Beam width of the graph search when the caller does not say (hnswlib's
/// and faiss's usual query-time setting; raised to the search depth).
pub const DEFAULT_EF: usize = 64;
/// Largest `k` a request may ask for.
///
/// One limit for every caller (CLI, HTTP, Python): the HTTP server's, which
/// bounds the work and the answer one request can cause. Evaluation does
/// not need more: R-precision and MAP@R rank whole classes with the exact
/// scan of [`crate::metrics`], which does not go through a request, and
/// `likeness eval`'s graph-agreement check asks for at most `MAX_K` (see
/// [`crate::eval`]).
pub const MAX_K: usize = 1000;

/// Most threads a search or build pool may have, wherever the count comes
/// from (`--threads`, Python's `threads=`). Starting 100,000 threads took
/// over two minutes and looked like a hang, 1,000 a second; no machine
/// this runs on gives one process 1,024 cores.
pub const MAX_THREADS: usize = 1024;
/// Largest `ef` (and `rerank`) a request may ask for: ten times [`MAX_K`],
/// far past where recall stops improving on any graph we build.
pub const MAX_EF: usize = 10_000;

/// The k nearest items of each query row.
///
/// Made with [`KnnQuery::new`] (the defaults) and the setters, run with
/// [`Index::query`].
#[derive(Debug, Clone, Copy)]
pub struct KnnQuery<'a> {
    /// The query rows, row-major (`dim` columns, else the index's).
    pub vectors: &'a [f32],
    /// Columns of `vectors` (`None`: the index's dimension). A value other
    /// than the index's is refused with [`Error::DimensionMismatch`].
    pub dim: Option<usize>,
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
    /// Re-ranking depth and filter plan.
    pub options: SearchOptions,
}

impl<'a> KnnQuery<'a> {
    /// A graph search of `vectors` (row-major, the index's dimension) for
    /// [`DEFAULT_K`] results with beam [`DEFAULT_EF`], no filter, nothing
    /// left out, default options.
    pub fn new(vectors: &'a [f32]) -> Self {
        KnnQuery {
            vectors,
            dim: None,
            k: DEFAULT_K,
            ef: DEFAULT_EF,
            exact: false,
            filter: None,
            exclude: None,
            options: SearchOptions::default(),
        }
    }

    /// Declares the columns of `vectors` (checked against the index).
    #[must_use]
    pub fn dim(mut self, dim: usize) -> Self {
        self.dim = Some(dim);
        self
    }

    /// Results per query row.
    #[must_use]
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// Beam width of the graph search.
    #[must_use]
    pub fn ef(mut self, ef: usize) -> Self {
        self.ef = ef;
        self
    }

    /// Exact search (brute force) instead of the graph.
    #[must_use]
    pub fn exact(mut self, exact: bool) -> Self {
        self.exact = exact;
        self
    }

    /// Only (or never) items with these labels.
    #[must_use]
    pub fn filter(mut self, filter: Option<&'a LabelFilter>) -> Self {
        self.filter = filter;
        self
    }

    /// Row `q` leaves item `exclude[q]` out of its results.
    #[must_use]
    pub fn exclude(mut self, exclude: Option<&'a [usize]>) -> Self {
        self.exclude = exclude;
        self
    }

    /// Re-ranking depth and filter plan.
    #[must_use]
    pub fn options(mut self, options: SearchOptions) -> Self {
        self.options = options;
        self
    }

    /// Number of query rows (after [`KnnQuery::validate`]).
    pub fn rows(&self, index: &Index) -> usize {
        self.vectors.len() / self.dim.unwrap_or(index.dim()).max(1)
    }

    /// Results asked of the index per row: `k`, one more when an item is
    /// left out, never more than the index holds.
    pub fn depth(&self, index: &Index) -> usize {
        let n = index.live_count();
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

    /// The one check of a request against `index`: `k` in `1..=MAX_K`, `ef`
    /// in `1..=MAX_EF`, `rerank` in `1..=MAX_EF`, the rows' dimension and
    /// shape, finite values, one excluded item per row, and labels in the
    /// index when there is a filter. [`Index::query`] calls it; nothing
    /// after it checks these again. (A zero row for cosine is found when
    /// the row is normalised: [`Error::ZeroVector`].)
    pub fn validate(&self, index: &Index) -> Result<()> {
        if !(1..=MAX_K).contains(&self.k) {
            return Err(Error::param("k", self.k, format!("must be in 1..={MAX_K}")));
        }
        if !(1..=MAX_EF).contains(&self.ef) {
            return Err(Error::param(
                "ef",
                self.ef,
                format!("must be in 1..={MAX_EF}"),
            ));
        }
        if let Some(r) = self.options.rerank {
            if !(1..=MAX_EF).contains(&r) {
                return Err(Error::param(
                    "rerank",
                    r,
                    format!("must be in 1..={MAX_EF}"),
                ));
            }
        }
        let dim = self.dim.unwrap_or(index.dim());
        // One row given as a slice of the wrong length is a dimension
        // mismatch too.
        let got = if self.dim.is_none() && self.vectors.len() < index.dim() {
            self.vectors.len()
        } else {
            dim
        };
        if got != index.dim() {
            return Err(Error::query_dimension(index.dim(), got));
        }
        crate::distance::check_shape(self.vectors.len(), dim)?;
        index.metric().check_values(self.vectors, dim)?;
        if let Some(ex) = self.exclude {
            let nq = self.vectors.len() / dim;
            if ex.len() != nq {
                return Err(Error::InvalidInput(format!(
                    "{nq} query rows but {} items to leave out",
                    ex.len()
                )));
            }
        }
        if self.filter.is_some() && index.labels().is_none() {
            return Err(Error::InvalidInput(
                "this index has no labels to filter by; build it with labels (`likeness build --labels`, `likeness.build(labels=...)`, or `likeness index`)".into(),
            ));
        }
        Ok(())
    }
}

impl Index {
    /// The one search entry point: checks `q` ([`KnnQuery::validate`]),
    /// plans it once, runs the graph search (filtered in the beam, or the
    /// exact scan of the passing items, as planned) or the exact search,
    /// leaves each row's excluded item out and pads every row to `k` with
    /// `-1` / `+inf`.
    ///
    /// Returns the neighbours (`rows × k`) and the plan: what ran, with
    /// the beam width and re-ranking depth of a graph search. An exact
    /// request reports [`PlanKind::Exact`] (with the filter's estimate
    /// when there is a filter).
    pub fn query(&self, q: &KnnQuery<'_>) -> Result<(Neighbours, Plan)> {
        q.validate(self)?;
        let live = self.snapshot();
        let depth = q.depth(self);
        let mut plan = self.plan(depth, q.filter, &q.options)?;
        let mut found = if q.exact {
            plan.kind = PlanKind::Exact;
            self.search_exact_batch(q.vectors, depth, q.filter, &live)?
        } else {
            let beam = q.beam(self);
            if plan.kind != PlanKind::Exact {
                let compact = self.store() != crate::quant::Store::F32;
                let (ef, rerank) =
                    crate::hnsw::search::depths(beam, depth, q.options.rerank, compact);
                (plan.ef, plan.rerank) = (Some(ef), rerank);
            }
            self.search_batch(q.vectors, depth, beam, q.filter, &plan, &q.options, &live)?
        };
        if live.tail_len() > 0 {
            found = self.merge_tail(q.vectors, found, q.filter, &live)?;
        }
        Ok((finish(q, found)?, plan))
    }
}

/// Leaves each row's own item out, and pads to `k` so the shape is what
/// was asked.
fn finish(q: &KnnQuery<'_>, found: Neighbours) -> Result<Neighbours> {
    let nq = found.queries();
    if q.exclude.is_none() && found.k() == q.k {
        return Ok(found);
    }
    let k = q.k;
    let mut ids = Vec::with_capacity(nq * k);
    let mut dists = Vec::with_capacity(nq * k);
    for row in 0..nq {
        let skip = q.exclude.map(|ex| ex[row] as i64);
        let mut hits = found
            .ids(row)
            .iter()
            .zip(found.distances(row))
            .filter(|(&i, _)| Some(i) != skip)
            .map(|(&i, &d)| (i, d));
        for _ in 0..k {
            let (i, d) = hits.next().unwrap_or((-1, f32::INFINITY));
            ids.push(i);
            dists.push(d);
        }
    }
    Neighbours::from_parts(nq, k, ids, dists)
        .ok_or_else(|| Error::InvalidInput("result shape".into()))
}
