//! k-NN result sets and the bounded top-k collector shared by exact and
//! graph search.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The `k` nearest items of each of a batch of queries, nearest first.
///
/// Rows with fewer than `k` results (a gallery smaller than `k`, or a label
/// filter that matches few items) are padded with id `-1` and distance
/// `f32::INFINITY`, the convention of faiss and of the int64 `.npy` the CLI
/// writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    queries: usize,
    k: usize,
    ids: Vec<i64>,
    distances: Vec<f32>,
}

/// Id used to pad rows with fewer than `k` results.
pub const MISSING: i64 = -1;

impl Neighbours {
    /// An all-missing result set of `queries × k`.
    pub fn new(queries: usize, k: usize) -> Self {
        Neighbours {
            queries,
            k,
            ids: vec![MISSING; queries * k],
            distances: vec![f32::INFINITY; queries * k],
        }
    }

    /// Builds a result set from row-major `ids` and `distances` of
    /// `queries × k`. Returns `None` when the lengths do not match.
    pub fn from_parts(
        queries: usize,
        k: usize,
        ids: Vec<i64>,
        distances: Vec<f32>,
    ) -> Option<Self> {
        let n = queries.checked_mul(k)?;
        (ids.len() == n && distances.len() == n).then_some(Neighbours {
            queries,
            k,
            ids,
            distances,
        })
    }

    /// Number of queries.
    pub fn queries(&self) -> usize {
        self.queries
    }

    /// Results per query.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Ids of query `q`'s neighbours, nearest first (`-1` = none).
    pub fn ids(&self, q: usize) -> &[i64] {
        &self.ids[q * self.k..(q + 1) * self.k]
    }

    /// Distances of query `q`'s neighbours, ascending.
    pub fn distances(&self, q: usize) -> &[f32] {
        &self.distances[q * self.k..(q + 1) * self.k]
    }

    /// All ids, row-major `queries × k`.
    pub fn all_ids(&self) -> &[i64] {
        &self.ids
    }

    /// All distances, row-major `queries × k`.
    pub fn all_distances(&self) -> &[f32] {
        &self.distances
    }

    /// Splits into `(ids, distances)`, both row-major.
    pub fn into_parts(self) -> (Vec<i64>, Vec<f32>) {
        (self.ids, self.distances)
    }

    pub(crate) fn rows_mut(&mut self) -> impl Iterator<Item = (&mut [i64], &mut [f32])> {
        let k = self.k.max(1);
        self.ids.chunks_mut(k).zip(self.distances.chunks_mut(k))
    }
}

/// The visited set of a graph search: one generation stamp per item, so
/// starting a new search is O(1) (except when the set grows or the
/// generation counter wraps). Shared by the search and the builder.
#[derive(Debug, Default)]
pub(crate) struct Visited {
    stamps: Vec<u32>,
    generation: u32,
}

impl Visited {
    /// Starts a new search over `n` items: all unvisited.
    pub fn begin(&mut self, n: usize) {
        if self.stamps.len() < n {
            self.stamps.clear();
            self.stamps.resize(n, 0);
            self.generation = 0;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamps.fill(0);
            self.generation = 1;
        }
    }

    /// Marks item `i` visited: `Some(true)` if it was not yet, `Some(false)`
    /// if it was, `None` if `i` is beyond the `n` of [`Visited::begin`]'s
    /// largest call.
    #[inline]
    pub fn visit(&mut self, i: u32) -> Option<bool> {
        let st = self.stamps.get_mut(i as usize)?;
        let new = *st != self.generation;
        *st = self.generation;
        Some(new)
    }
}

/// A candidate: distance first, ties broken by the smaller id so results are
/// deterministic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cand {
    pub dist: f32,
    pub id: u32,
}

impl PartialEq for Cand {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        self.dist.total_cmp(&o.dist).then(self.id.cmp(&o.id))
    }
}

/// Keeps the `k` smallest candidates seen (a max-heap of size `k`).
#[derive(Debug, Clone)]
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<Cand>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Empties the collector for reuse with capacity `k`, keeping the
    /// allocation.
    pub fn clear_with(&mut self, k: usize) {
        self.k = k;
        self.heap.clear();
    }

    /// Moves the candidates into `out` (cleared first), nearest first.
    pub fn drain_sorted(&mut self, out: &mut Vec<Cand>) {
        out.clear();
        out.extend(self.heap.drain());
        out.sort_unstable();
    }

    /// The distance a candidate must beat to enter (infinite until full).
    #[inline]
    pub fn bound(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |c| c.dist)
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    #[inline]
    pub fn push(&mut self, c: Cand) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(c);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if c < *worst {
                *worst = c;
            }
        }
    }

    /// Writes the candidates, nearest first, into `ids`/`dists` (padding the
    /// rest with [`MISSING`]) and empties the collector.
    pub fn drain_into(&mut self, ids: &mut [i64], dists: &mut [f32]) {
        ids.fill(MISSING);
        dists.fill(f32::INFINITY);
        let mut n = self.heap.len();
        while let Some(c) = self.heap.pop() {
            n -= 1;
            if n < ids.len() {
                ids[n] = i64::from(c.id);
                dists[n] = c.dist;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topk_keeps_smallest_sorted_with_id_tiebreak() {
        let mut t = TopK::new(3);
        for (d, id) in [(5.0, 0), (1.0, 1), (3.0, 2), (1.0, 3), (0.5, 4), (9.0, 5)] {
            t.push(Cand { dist: d, id });
        }
        assert_eq!(t.bound(), 1.0);
        let mut ids = [0i64; 4];
        let mut ds = [0f32; 4];
        t.drain_into(&mut ids, &mut ds);
        assert_eq!(ids, [4, 1, 3, MISSING]);
        assert_eq!(ds[..3], [0.5, 1.0, 1.0]);
        assert!(ds[3].is_infinite());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn neighbours_parts() {
        assert!(Neighbours::from_parts(2, 2, vec![0; 4], vec![0.0; 3]).is_none());
        let n = Neighbours::from_parts(2, 2, vec![1, 2, 3, 4], vec![0.0; 4]).unwrap();
        assert_eq!(n.ids(1), &[3, 4]);
        assert_eq!(Neighbours::new(1, 2).ids(0), &[MISSING, MISSING]);
    }
}
