//! The search of an index's graph in place, over the memory-mapped files
//! (Malkov and Yashunin 2018, algorithms 2 and 5): greedy descent through
//! the upper layers, then a beam of width `ef` on layer 0; with a compact
//! store the beam runs on the codes and the best candidates are re-scored
//! with the float32 vectors. A label filter is applied inside the beam, or,
//! when the planner chose it, by an exact scan of the passing items from
//! the posting lists ([`crate::postings`]).
//!
//! The visited set is a per-thread array of generation stamps, so a query
//! clears it by incrementing a counter; together with the reused heaps no
//! allocation happens per query once a thread has warmed up. Every row
//! pointer and neighbour id read is bounds-checked ([`GraphView`]); a bad
//! one ends the search with [`Error::Corrupt`] naming the file.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;

use crate::distance::{prefetch, DistanceFn4, Metric};
use crate::error::{Error, Result};
use crate::format::graph::GraphView;
use crate::live::Deleted;
use crate::manifest::POSTINGS;
use crate::neighbours::{Cand, TopK, Visited};
use crate::postings::{LabelFilter, PostingsView};
use crate::quant::{Codes, Quantizer, QueryCode, Store};

/// Everything one search reads of an open index, built once per request
/// (O(levels)) by [`crate::Index`].
/// The beam width a graph search of `k` results with beam `ef` runs with,
/// and how many of its candidates it re-ranks with the float32 vectors:
/// with a compact store (`compact`) the beam holds at least the `rerank`
/// candidates asked, and re-ranks `rerank`, else the whole beam, never
/// fewer than `k` (at most the candidates found); with float32, no
/// re-ranking. The one home of these rules: the search runs by them and
/// [`crate::Index::query`] reports them in its plan.
pub(crate) fn depths(
    ef: usize,
    k: usize,
    rerank: Option<usize>,
    compact: bool,
) -> (usize, Option<usize>) {
    if !compact {
        return (ef.max(k), None);
    }
    let beam = ef.max(k).max(rerank.unwrap_or(0));
    (beam, Some(rerank.unwrap_or(beam).max(k)))
}

pub(crate) struct Searcher<'a> {
    /// The index directory (for errors naming `postings.bin`).
    pub dir: &'a Path,
    pub graph: GraphView<'a>,
    /// The stored (for cosine: normalised) float32 vectors.
    pub vectors: &'a [f32],
    pub labels: Option<&'a [i64]>,
    /// The compact store the beam is searched on, if any.
    pub codes: Option<Codes<'a>>,
    /// The posting lists, when the filter's plan is the exact scan.
    pub postings: Option<PostingsView<'a>>,
    pub count: usize,
    pub dim: usize,
    pub metric: Metric,
    pub kernel4: DistanceFn4,
    pub store: Store,
    pub quantizer: Option<&'a Quantizer>,
    /// Compact stores: candidates re-scored with float32 (`None`: all of
    /// the beam).
    pub rerank: Option<usize>,
    /// Deleted items (`None`: none): they route the beam but are never
    /// results, as hnswlib's `mark_deleted`.
    pub deleted: Option<&'a Deleted>,
}

/// Per-thread search state, reused across queries.
#[derive(Default)]
struct Scratch {
    visited: Visited,
    candidates: BinaryHeap<Reverse<Cand>>,
    results: Option<TopK>,
    sorted: Vec<Cand>,
    query: Vec<f32>,
    /// Unvisited neighbours of the node being expanded, and their distances.
    batch: Vec<u32>,
    batch_dist: Vec<f32>,
    /// The query prepared for the compact store.
    qcode: QueryCode,
}

impl Scratch {
    /// Starts a new query over `n` items.
    fn begin(&mut self, n: usize) {
        self.visited.begin(n);
        self.candidates.clear();
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Searcher<'_> {
    fn corrupt(&self, reason: String) -> Error {
        self.graph.corrupt(reason)
    }

    /// Neighbours of global id `i` in layer `l` (bounds-checked).
    #[inline]
    fn neighbours(&self, l: usize, i: u32) -> Result<&[u32]> {
        self.graph.neighbours(l, i)
    }

    /// Hints the CPU to load the first `lines` cache lines of item `i`'s
    /// vector.
    #[inline]
    fn prefetch_vector(&self, i: u32, lines: usize) {
        let d = self.dim;
        let start = (i as usize).saturating_mul(d);
        if let Some(v) = self.vectors.get(start..start.saturating_add(d)) {
            for line in v.chunks(16).take(lines) {
                prefetch(line);
            }
        }
    }

    /// Hints the CPU to load the row pointer of item `i` on layer 0.
    #[inline]
    fn prefetch_row_pointer(&self, i: u32) {
        if let Some(p) = self.graph.layer(0).offsets.get(i as usize..) {
            prefetch(p);
        }
    }

    /// Hints the CPU to load the start of item `i`'s layer-0 neighbour list
    /// (its row pointer should be in cache already).
    #[inline]
    fn prefetch_row(&self, i: u32) {
        let lv = self.graph.layer(0);
        if let Some(&a) = lv.offsets.get(i as usize) {
            if let Some(row) = lv.neighbours.get(a as usize..) {
                prefetch(row);
            }
        }
    }

    #[inline]
    fn vector(&self, i: u32) -> Result<&[f32]> {
        let d = self.dim;
        let range = (i as usize)
            .checked_mul(d)
            .and_then(|s| Some(s..s.checked_add(d)?));
        range.and_then(|r| self.vectors.get(r)).ok_or_else(|| {
            self.corrupt(format!(
                "neighbour id {i} is out of range (the index has {} items)",
                self.count
            ))
        })
    }

    /// Distances from `q` to the items `ids` into `out`: see
    /// [`crate::distance::distances4`]; with a compact store, the
    /// approximate distances from `qc` (the query prepared for it).
    #[inline]
    fn distances(
        &self,
        q: &[f32],
        qc: &QueryCode,
        dist: DistanceFn4,
        ids: &[u32],
        bound: f32,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let Some(codes) = &self.codes else {
            return crate::distance::distances4(q, ids, bound, dist, |j| self.vector(j), out);
        };
        out.clear();
        for (n, &j) in ids.iter().enumerate() {
            if let Some(&next) = ids.get(n + 2) {
                codes.prefetch(next, COMPACT_PREFETCH_LINES);
            }
            let d = codes.distance(qc, j).ok_or_else(|| {
                self.corrupt(format!(
                    "neighbour id {j} is out of range (the index has {} items)",
                    self.count
                ))
            })?;
            out.push(d);
        }
        Ok(())
    }

    /// Hints the CPU to load the start of the vector the beam reads for `i`.
    #[inline]
    fn prefetch_item(&self, i: u32) {
        match &self.codes {
            Some(c) => c.prefetch(i, COMPACT_PREFETCH_LINES),
            None => self.prefetch_vector(i, 4),
        }
    }

    /// The exact plan: scans the items that pass `filter` (from the posting
    /// lists for a one-of filter, else every item's label) with the float32
    /// vectors; the `k` nearest go to `ids`/`dists`.
    #[allow(clippy::too_many_arguments)]
    fn search_exact(
        &self,
        s: &mut Scratch,
        q: &[f32],
        k: usize,
        filter: &LabelFilter,
        postings: &PostingsView<'_>,
        ids: &mut [i64],
        dists: &mut [f32],
    ) -> Result<()> {
        let dist = self.metric.kernel();
        let results = s.results.get_or_insert_with(|| TopK::new(k));
        results.clear_with(k);
        let mut consider = |i: u32| -> Result<()> {
            if self.deleted.is_some_and(|d| d.contains(i as usize)) {
                return Ok(());
            }
            let d = dist(q, self.vector(i)?);
            if results.len() < k || d < results.bound() {
                results.push(Cand { dist: d, id: i });
            }
            Ok(())
        };
        match (filter, self.labels) {
            (LabelFilter::Only(set), _) => {
                for &l in set {
                    let list = postings
                        .list(l)
                        .map_err(|r| Error::corrupt(self.dir.join(POSTINGS), r))?;
                    for &i in list.unwrap_or(&[]) {
                        consider(i)?;
                    }
                }
            }
            (LabelFilter::Except(_), Some(labels)) => {
                for (i, &l) in labels.iter().enumerate() {
                    if filter.allows(l) {
                        consider(i as u32)?;
                    }
                }
            }
            (LabelFilter::Except(_), None) => {}
        }
        results.drain_into(ids, dists);
        Ok(())
    }

    /// The `k` nearest items of query row `qno` (`query`, checked for
    /// shape and finite values by the caller) into `ids`/`dists`, padded
    /// with `-1`/`+inf`: the exact scan of the passing items when the
    /// searcher holds posting lists (the filter's plan), else the graph
    /// (filtered inside the beam when `filter` is given). `ef` is raised
    /// to `k`. Uses this thread's reusable scratch.
    #[allow(clippy::too_many_arguments)]
    pub fn search_row(
        &self,
        query: &[f32],
        qno: usize,
        k: usize,
        ef: usize,
        filter: Option<&LabelFilter>,
        ids: &mut [i64],
        dists: &mut [f32],
    ) -> Result<()> {
        SCRATCH.with(|s| self.search(&mut s.borrow_mut(), query, qno, k, ef, filter, ids, dists))
    }

    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        s: &mut Scratch,
        query: &[f32],
        qno: usize,
        k: usize,
        ef: usize,
        filter: Option<&LabelFilter>,
        ids: &mut [i64],
        dists: &mut [f32],
    ) -> Result<()> {
        let dist = self.kernel4;
        // Normalise the query into the scratch copy.
        let mut qbuf = std::mem::take(&mut s.query);
        qbuf.clear();
        qbuf.extend_from_slice(query);
        let res = match self.metric.normalize_rows(&mut qbuf, self.dim) {
            Ok(()) => match (filter, &self.postings) {
                (Some(f), Some(p)) => self.search_exact(s, &qbuf, k, f, p, ids, dists),
                _ => self.search_prepared(s, &qbuf, k, ef, filter, dist, ids, dists),
            },
            Err(Error::ZeroVector { .. }) => Err(Error::ZeroVector { row: qno }),
            Err(e) => Err(e),
        };
        s.query = qbuf;
        res
    }

    #[allow(clippy::too_many_arguments)]
    fn search_prepared(
        &self,
        s: &mut Scratch,
        q: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&LabelFilter>,
        dist: DistanceFn4,
        ids: &mut [i64],
        dists: &mut [f32],
    ) -> Result<()> {
        let (ef, _) = depths(ef, k, self.rerank, self.codes.is_some());
        let mut qc = std::mem::take(&mut s.qcode);
        if self.codes.is_some() {
            qc.prepare(self.store, self.metric, self.quantizer, q);
        }
        // Deleted items. With a label filter they are filtered inside the
        // beam with it. Without one, the beam runs as if nothing were
        // deleted and they are dropped from its `ef` best: keeping `ef`
        // live ones in the beam instead (hnswlib's `mark_deleted`) made
        // searches with 20% deleted run at 0.70× the speed of a fresh build
        // of the live items, this at 0.79–0.85×, recall@10 0.9970 against
        // the fresh build's 0.9977 (fashion-mnist-784, ef 64, one thread).
        // Should that leave fewer than `k`, the beam runs again, filtering.
        let dead = |id: u32| self.deleted.is_some_and(|d| d.contains(id as usize));
        let mut in_beam = filter.is_some();
        let res = loop {
            if let Err(e) = self.beam(s, q, &qc, k, ef, filter, dist, in_beam) {
                break Err(e);
            }
            if let Err(e) = self.rerank(s, q, k, ef) {
                break Err(e);
            }
            let live = s.sorted.iter().filter(|c| !dead(c.id)).take(k).count();
            if in_beam || self.deleted.is_none() || live == k {
                break Ok(());
            }
            in_beam = true;
        };
        s.qcode = qc;
        res?;
        ids.fill(crate::neighbours::MISSING);
        dists.fill(f32::INFINITY);
        let live = s.sorted.iter().filter(|c| !dead(c.id));
        for (slot, c) in live.take(k).enumerate() {
            ids[slot] = i64::from(c.id);
            dists[slot] = c.dist;
        }
        Ok(())
    }

    /// With a compact store: the best candidates of the beam re-scored
    /// with the float32 vectors, so returned distances are exact.
    fn rerank(&self, s: &mut Scratch, q: &[f32], k: usize, ef: usize) -> Result<()> {
        if self.codes.is_none() {
            return Ok(());
        }
        let exact = self.metric.kernel();
        let (_, r) = depths(ef, k, self.rerank, true);
        let r = r.unwrap_or(k).min(s.sorted.len());
        for c in &mut s.sorted[..r] {
            c.dist = exact(q, self.vector(c.id)?);
        }
        s.sorted[..r].sort_unstable();
        Ok(())
    }

    /// Greedy descent, then the beam of width `ef` on layer 0 (filtered
    /// inside the beam when `filter` is given); leaves the results in
    /// `s.sorted`, nearest first.
    #[allow(clippy::too_many_arguments)]
    fn beam(
        &self,
        s: &mut Scratch,
        q: &[f32],
        qc: &QueryCode,
        k: usize,
        ef: usize,
        filter: Option<&LabelFilter>,
        dist: DistanceFn4,
        skip_deleted: bool,
    ) -> Result<()> {
        let _ = k;
        let mut cur = self.graph.entry;
        self.distances(q, qc, dist, &[cur], f32::INFINITY, &mut s.batch_dist)?;
        let mut cur_d = s.batch_dist[0];
        // Greedy descent through the upper layers.
        for l in (1..self.graph.levels()).rev() {
            loop {
                let nbrs = self.neighbours(l, cur)?;
                self.distances(q, qc, dist, nbrs, cur_d, &mut s.batch_dist)?;
                let mut changed = false;
                for (&j, &d) in nbrs.iter().zip(&s.batch_dist) {
                    if d < cur_d {
                        cur_d = d;
                        cur = j;
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
        }
        // Beam search on layer 0.
        s.begin(self.count);
        let results = s.results.get_or_insert_with(|| TopK::new(ef));
        results.clear_with(ef);
        let deleted = self.deleted.filter(|_| skip_deleted);
        let passes = |i: u32| {
            deleted.is_none_or(|d| !d.contains(i as usize))
                && match (filter, self.labels) {
                    (Some(f), Some(labels)) => labels.get(i as usize).is_some_and(|&l| f.allows(l)),
                    _ => true,
                }
        };
        // With items that cannot be results, the beam keeps going until it
        // holds `ef` that can.
        let filtering = filter.is_some() || deleted.is_some();
        let _ = s.visited.visit(cur);
        s.candidates.push(Reverse(Cand {
            dist: cur_d,
            id: cur,
        }));
        if passes(cur) {
            results.push(Cand {
                dist: cur_d,
                id: cur,
            });
        }
        while let Some(Reverse(c)) = s.candidates.pop() {
            if c.dist > results.bound() && (!filtering || results.len() >= ef) {
                break;
            }
            // The next node to expand is likely the next best candidate.
            if let Some(Reverse(next)) = s.candidates.peek() {
                self.prefetch_row(next.id);
            }
            // Mark the unvisited neighbours and start loading their vectors,
            // then compute their distances four at a time.
            s.batch.clear();
            for &j in self.neighbours(0, c.id)? {
                match s.visited.visit(j) {
                    Some(true) => {}
                    Some(false) => continue,
                    None => {
                        return Err(self.corrupt(format!(
                            "neighbour id {j} is out of range (the index has {} items)",
                            self.count
                        )))
                    }
                }
                self.prefetch_item(j);
                s.batch.push(j);
            }
            // Only distances below the current bound matter (it can only
            // shrink while this batch is added), so the kernel may stop early.
            self.distances(q, qc, dist, &s.batch, results.bound(), &mut s.batch_dist)?;
            for (&j, &d) in s.batch.iter().zip(&s.batch_dist) {
                if results.len() < ef || d < results.bound() {
                    self.prefetch_row_pointer(j);
                    s.candidates.push(Reverse(Cand { dist: d, id: j }));
                    if passes(j) {
                        results.push(Cand { dist: d, id: j });
                    }
                }
            }
        }
        results.drain_sorted(&mut s.sorted);
        Ok(())
    }
}

/// Cache lines of a compact row prefetched ahead of its distance (i8 rows
/// of 784 dimensions are 13 lines; the hardware prefetcher streams the rest).
const COMPACT_PREFETCH_LINES: usize = 8;
