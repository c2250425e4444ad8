//! HNSW construction written for the flat layout (Malkov and Yashunin 2018,
//! Algorithms 1, 2 and 4), making the same choices as hnswlib: `m` links per
//! node on the upper layers and `2 m` on layer 0, the neighbour-selection
//! heuristic both for a new node and when a full neighbour list is shrunk,
//! one entry point carried from layer to layer, levels drawn with
//! `mL = 1 / ln m`.
//!
//! Why our own builder: `hnsw_rs` (still here as
//! [`crate::GraphBuilder::HnswRs`], the tests' cross-check of the export and
//! of this builder) spent much of a build on its own search bookkeeping (a
//! `HashMap` of `Arc`-cloned points per search, an allocation per
//! candidate) and was slower than hnswlib with the same threads (the
//! figures: docs/benchmarks.md, "History moved here from module docs";
//! `make bench-ann` prints both builders' times today). This builder keeps per-thread state instead: a
//! generation-stamped visited array and reused heaps, so an insertion
//! allocates nothing; the link lists live in one flat array of atomics,
//! each node's lists guarded by a sequence lock (see [`Links`]; atomics so
//! that the code needs no `unsafe`; written under the lock, read without it
//! and re-read when a write overlapped, so lists are never seen
//! half-written); distances use the crate's four-at-once kernels with early
//! stop.
//!
//! Concurrency: points are inserted on a rayon pool. A new point is linked
//! into the graph one neighbour at a time, each under that neighbour's lock;
//! no thread ever holds two node locks, so there is no deadlock. A point
//! whose level is above the current top holds the entry-point lock for its
//! whole insertion and then becomes the entry point (as in hnswlib; the lock
//! is never taken while a node lock is held). With one thread the build is
//! reproducible for a given seed.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{
    fence, AtomicU32, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::{Mutex, PoisonError};

use rayon::prelude::*;

use crate::distance::{distances4, prefetch, prefetch_vector, DistanceFn, DistanceFn4, Metric};
use crate::error::{Error, Result};
use crate::format::graph::GraphView;
use crate::format::MAX_LEVELS;
use crate::graph::{insertion_order, splitmix64, Graph, Layer, Progress, BATCH};
use crate::neighbours::{Cand, Visited};

/// The link lists of every node on every layer, each node's lists guarded
/// by a sequence lock in the first word of its layer-0 slot.
///
/// Why a sequence lock. The beam search reads a node's list at every
/// expansion; with a mutex per node (in an array of its own) that was a
/// locked read-modify-write on a second cache line per expansion, 11.2% of a
/// 2-thread fashion-mnist-784 build in `perf` (hnswlib pays the same). Here a
/// reader takes no lock: it reads the sequence word, copies the list, and
/// keeps the copy if the word is unchanged and even (no writer ran
/// meanwhile), else it reads again. Writers (rare: one per new link) make
/// the word odd with a compare-and-swap, write, and make it even again. The
/// word, the count and the first ids share a cache line, so an expansion
/// touches one line where it touched two (measured: 0.98× the build's CPU
/// time; the next candidate's list is also prefetched, see
/// `search_layer`).
struct Links {
    m: usize,
    m0: usize,
    /// Layer 0: `n` slots of `2 + m0` words: the node's sequence word, the
    /// count, then the ids.
    l0: Vec<AtomicU32>,
    /// Layers 1..=level of node `i`: `level` slots of `1 + m` words each
    /// (count, then ids; empty for nodes that live on layer 0 only).
    upper: Vec<Vec<AtomicU32>>,
}

/// A node's sequence lock, held for writing; released (the word made even
/// again) on drop.
struct WriteGuard<'a> {
    word: &'a AtomicU32,
    next: u32,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.word.store(self.next, Release);
    }
}

/// Waits a little in a retry loop: a spin hint first, then, if the writer
/// is still busy (it may have been descheduled on a loaded machine), the
/// rest of this thread's time slice.
#[inline]
fn backoff(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

impl Links {
    fn new(levels: &[u8], m: usize) -> Self {
        let n = levels.len();
        let m0 = 2 * m;
        Links {
            m,
            m0,
            l0: (0..n * (m0 + 2)).map(|_| AtomicU32::new(0)).collect(),
            upper: levels
                .iter()
                .map(|&l| {
                    (0..usize::from(l) * (m + 1))
                        .map(|_| AtomicU32::new(0))
                        .collect()
                })
                .collect(),
        }
    }

    /// Most links a node keeps on `layer`.
    fn cap(&self, layer: usize) -> usize {
        if layer == 0 {
            self.m0
        } else {
            self.m
        }
    }

    /// Node `i`'s sequence word.
    #[inline]
    fn word(&self, i: u32) -> &AtomicU32 {
        &self.l0[i as usize * (self.m0 + 2)]
    }

    /// Takes node `i`'s lock for writing (readers retry until it is
    /// released).
    fn lock(&self, i: u32) -> WriteGuard<'_> {
        let word = self.word(i);
        let mut spins = 0;
        loop {
            let v = word.load(Relaxed);
            if v & 1 == 0
                && word
                    .compare_exchange_weak(v, v + 1, Acquire, Relaxed)
                    .is_ok()
            {
                // The odd word is ordered before the writes that follow
                // (the seqlock writer's fence; a no-op on x86).
                fence(Release);
                return WriteGuard {
                    word,
                    next: v.wrapping_add(2),
                };
            }
            backoff(&mut spins);
        }
    }

    /// Node `i`'s slot on `layer` (count, then ids). `layer` must not exceed
    /// the node's level.
    #[inline]
    fn slot(&self, i: u32, layer: usize) -> &[AtomicU32] {
        if layer == 0 {
            let s = i as usize * (self.m0 + 2) + 1;
            &self.l0[s..s + self.m0 + 1]
        } else {
            let s = (layer - 1) * (self.m + 1);
            &self.upper[i as usize][s..s + self.m + 1]
        }
    }

    /// Copies node `i`'s links on `layer` into `out`, a consistent copy
    /// (see the type's comment); takes no lock.
    fn read(&self, i: u32, layer: usize, out: &mut Vec<u32>) {
        let mut spins = 0;
        while !self.try_read(i, layer, out) {
            backoff(&mut spins);
        }
    }

    /// One optimistic copy of node `i`'s links on `layer` into `out`:
    /// `false` (the copy is not to be used) when a writer held the lock or
    /// took it meanwhile.
    #[inline]
    fn try_read(&self, i: u32, layer: usize, out: &mut Vec<u32>) -> bool {
        let word = self.word(i);
        let v = word.load(Acquire);
        if v & 1 != 0 {
            return false;
        }
        read_slot(self.slot(i, layer), out);
        // The copy's loads are ordered before the second look at the word
        // (the seqlock reader's fence).
        fence(Acquire);
        word.load(Relaxed) == v
    }
}

impl Links {
    /// Hints the CPU to load node `i`'s layer-0 slot (word, count, ids).
    #[inline]
    fn prefetch(&self, i: u32) {
        let s = i as usize * (self.m0 + 2);
        if let Some(slot) = self.l0.get(s..s + self.m0 + 2) {
            for line in slot.chunks(16) {
                prefetch(line);
            }
        }
    }
}

/// The ids of a slot: the caller holds the node's lock, or validates the
/// copy with its sequence word. The count is clamped, so even a torn copy
/// stays in bounds.
fn read_slot(slot: &[AtomicU32], out: &mut Vec<u32>) {
    let count = (slot[0].load(Relaxed) as usize).min(slot.len() - 1);
    out.clear();
    out.extend(slot[1..=count].iter().map(|a| a.load(Relaxed)));
}

/// Replaces the ids of a slot. The caller holds the node's lock.
fn write_slot(slot: &[AtomicU32], ids: impl ExactSizeIterator<Item = u32>) {
    let count = ids.len().min(slot.len() - 1);
    for (a, id) in slot[1..].iter().zip(ids) {
        a.store(id, Relaxed);
    }
    slot[0].store(count as u32, Relaxed);
}

/// Per-thread search state, reused by every insertion of the thread.
#[derive(Default)]
struct Scratch {
    visited: Visited,
    candidates: BinaryHeap<Reverse<Cand>>,
    top: BinaryHeap<Cand>,
    sorted: Vec<Cand>,
    selected: Vec<Cand>,
    /// Candidates and survivors when a full neighbour list is shrunk.
    pool: Vec<Cand>,
    kept: Vec<Cand>,
    links: Vec<u32>,
    batch: Vec<u32>,
    dists: Vec<f32>,
}

impl Scratch {
    /// Starts a new search over `n` items.
    fn begin(&mut self, n: usize) {
        self.visited.begin(n);
        self.candidates.clear();
        self.top.clear();
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Everything an insertion reads.
struct Builder<'a> {
    data: &'a [f32],
    dim: usize,
    n: usize,
    ef: usize,
    levels: Vec<u8>,
    links: Links,
    dist: DistanceFn,
    dist4: DistanceFn4,
    /// Entry point and the top layer.
    entry: Mutex<(u32, usize)>,
}

impl Builder<'_> {
    #[inline]
    fn vector(&self, i: u32) -> &[f32] {
        let s = i as usize * self.dim;
        &self.data[s..s + self.dim]
    }

    /// Distances from `q` to `ids`: see [`distances4`].
    fn distances(&self, q: &[f32], ids: &[u32], bound: f32, out: &mut Vec<f32>) {
        let Ok(()) = distances4(
            q,
            ids,
            bound,
            self.dist4,
            |j| Ok::<_, std::convert::Infallible>(self.vector(j)),
            out,
        );
    }

    /// Greedy walk on `layer` from `cur`: moves to a closer neighbour while
    /// there is one.
    fn greedy(&self, q: &[f32], mut cur: Cand, layer: usize, s: &mut Scratch) -> Cand {
        loop {
            self.links.read(cur.id, layer, &mut s.links);
            self.distances(q, &s.links, cur.dist, &mut s.dists);
            let mut changed = false;
            for (&j, &d) in s.links.iter().zip(&s.dists) {
                if d < cur.dist {
                    cur = Cand { dist: d, id: j };
                    changed = true;
                }
            }
            if !changed {
                return cur;
            }
        }
    }

    /// Beam search of width `ef` on `layer` from `start`; leaves the best
    /// `ef` candidates in `s.sorted`, nearest first.
    fn search_layer(&self, q: &[f32], start: Cand, layer: usize, s: &mut Scratch) {
        s.begin(self.n);
        s.visited.visit(start.id);
        s.candidates.push(Reverse(start));
        s.top.push(start);
        while let Some(Reverse(c)) = s.candidates.pop() {
            let bound = if s.top.len() < self.ef {
                f32::INFINITY
            } else {
                s.top.peek().map_or(f32::INFINITY, |t| t.dist)
            };
            if c.dist > bound {
                break;
            }
            // The list most likely read next (as hnswlib does), while this
            // one is read and its distances computed (0.98× CPU time).
            if let (0, Some(Reverse(next))) = (layer, s.candidates.peek()) {
                self.links.prefetch(next.id);
            }
            self.links.read(c.id, layer, &mut s.links);
            s.batch.clear();
            for &j in &s.links {
                if s.visited.visit(j) == Some(true) {
                    s.batch.push(j);
                }
            }
            // The first group of four (`distances4` prefetches each next
            // group itself): 0.89× the build's CPU time against the first
            // vector alone; eight (two groups) was slower again (1.04×).
            for &j in s.batch.iter().take(4) {
                prefetch_vector(self.vector(j));
            }
            self.distances(q, &s.batch, bound, &mut s.dists);
            for (&j, &d) in s.batch.iter().zip(&s.dists) {
                let full = s.top.len() >= self.ef;
                if !full || d < s.top.peek().map_or(f32::INFINITY, |t| t.dist) {
                    let cand = Cand { dist: d, id: j };
                    s.candidates.push(Reverse(cand));
                    s.top.push(cand);
                    if s.top.len() > self.ef {
                        s.top.pop();
                    }
                }
            }
        }
        s.sorted.clear();
        s.sorted.extend(s.top.drain());
        s.sorted.sort_unstable();
    }

    /// The neighbour-selection heuristic (the paper's Algorithm 4, as in
    /// hnswlib): walking `sorted` nearest first, keep a candidate unless it
    /// is closer to an already kept one than to the base point; stop at
    /// `max`. Writes the kept ones to `out`.
    fn select(&self, sorted: &[Cand], max: usize, out: &mut Vec<Cand>) {
        out.clear();
        if sorted.len() <= max {
            out.extend_from_slice(sorted);
            return;
        }
        for &c in sorted {
            if out.len() >= max {
                break;
            }
            let v = self.vector(c.id);
            if out
                .iter()
                .all(|r| (self.dist)(v, self.vector(r.id)) >= c.dist)
            {
                out.push(c);
            }
        }
    }

    /// Inserts point `q` (Algorithm 1).
    fn insert(&self, q: u32) {
        let level = usize::from(self.levels[q as usize]);
        let guard = self.entry.lock().unwrap_or_else(PoisonError::into_inner);
        let (entry, top) = *guard;
        if entry == q {
            return;
        }
        // As hnswlib: a point that raises the top keeps the entry lock for
        // its whole insertion, so no other such point can raise the top in
        // the meantime (its new upper layers would stay unlinked). Rare (a
        // few points per build); the entry lock is never taken while a node
        // lock is held, so this cannot deadlock.
        let raising = (level > top).then_some(guard);
        let v = self.vector(q);
        SCRATCH.with(|cell| {
            let s = &mut *cell.borrow_mut();
            let mut cur = Cand {
                dist: (self.dist)(v, self.vector(entry)),
                id: entry,
            };
            for layer in (level + 1..=top).rev() {
                cur = self.greedy(v, cur, layer, s);
            }
            for layer in (0..=level.min(top)).rev() {
                self.search_layer(v, cur, layer, s);
                let mut sorted = std::mem::take(&mut s.sorted);
                // In a parallel build another thread may have reached `q`
                // through its upper layers and linked to it on this one
                // already, so the search can find `q` itself: never a
                // neighbour of its own (4 of 120 runs of the 16-thread test).
                sorted.retain(|c| c.id != q);
                let mut selected = std::mem::take(&mut s.selected);
                self.select(&sorted, self.links.m, &mut selected);
                if let Some(&best) = selected.first() {
                    cur = best;
                }
                {
                    let _guard = self.links.lock(q);
                    write_slot(self.links.slot(q, layer), selected.iter().map(|c| c.id));
                }
                for &nb in &selected {
                    self.link_back(nb.id, q, nb.dist, layer, s);
                }
                s.sorted = sorted;
                s.selected = selected;
            }
        });
        if let Some(mut e) = raising {
            *e = (q, level);
        }
    }

    /// Adds `q` (at distance `d`) to `nb`'s links on `layer`, shrinking the
    /// list with the heuristic when it is full; nothing if `nb` links to `q`
    /// already.
    fn link_back(&self, nb: u32, q: u32, d: f32, layer: usize, s: &mut Scratch) {
        let cap = self.links.cap(layer);
        let _guard = self.links.lock(nb);
        let slot = self.links.slot(nb, layer);
        let count = (slot[0].load(Relaxed) as usize).min(cap);
        // In a parallel build `nb` may have listed `q` already: while `q`
        // was being inserted, `nb`'s own insertion reached `q` through an
        // upper layer. Appending it again repeated a link (1 of 40 runs of
        // the 16-thread test); hnswlib checks the same.
        if slot[1..=count].iter().any(|a| a.load(Relaxed) == q) {
            return;
        }
        if count < cap {
            slot[1 + count].store(q, Relaxed);
            slot[0].store(count as u32 + 1, Relaxed);
            return;
        }
        read_slot(slot, &mut s.links);
        let base = self.vector(nb);
        s.pool.clear();
        s.pool.push(Cand { dist: d, id: q });
        for &j in &s.links {
            s.pool.push(Cand {
                dist: (self.dist)(base, self.vector(j)),
                id: j,
            });
        }
        s.pool.sort_unstable();
        self.select(&s.pool, cap, &mut s.kept);
        write_slot(slot, s.kept.iter().map(|c| c.id));
    }
}

/// The level of each point: `floor(-ln(u) / ln(m))` for a seeded uniform
/// `u` in (0, 1], at most `MAX_LEVELS - 1`.
fn draw_levels(n: usize, m: usize, seed: u64) -> Vec<u8> {
    let ml = 1.0 / (m as f64).ln();
    let mut state = seed ^ 0x6C65_7665_6C73_2121; // "levels!!"
    (0..n)
        .map(|_| {
            // 53 random bits -> (0, 1].
            let u = ((splitmix64(&mut state) >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let l = (-u.ln() * ml).floor();
            l.min(f64::from(MAX_LEVELS - 1)) as u8
        })
        .collect()
}

/// What a graph is built with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Params {
    pub metric: Metric,
    /// Links per node on the upper layers (`2 m` on layer 0).
    pub m: usize,
    /// Beam width of the searches that find a new point's neighbours.
    pub ef_construction: usize,
    /// Seeds the levels and the insertion order.
    pub seed: u64,
    /// Insertion threads (1: sequential and reproducible).
    pub threads: usize,
}

/// Builds the graph of preprocessed `data` (`n` rows of `dim`), inserting
/// in the seeded order of [`insertion_order`].
pub(crate) fn build(
    data: &[f32],
    dim: usize,
    p: Params,
    progress: Option<Progress<'_>>,
) -> Result<Graph> {
    let Params {
        metric,
        m,
        ef_construction,
        seed,
        threads,
    } = p;
    let n = data.len() / dim;
    if n == 0 || n >= u32::MAX as usize {
        return Err(Error::InvalidInput(format!(
            "cannot build a graph of {n} items (1..{} allowed)",
            u32::MAX
        )));
    }
    let levels = draw_levels(n, m, seed);
    let order = insertion_order(n, seed);
    let first = order[0] as u32;
    let b = Builder {
        data,
        dim,
        n,
        ef: ef_construction.max(1),
        links: Links::new(&levels, m),
        entry: Mutex::new((first, usize::from(levels[first as usize]))),
        levels,
        dist: metric.kernel(),
        dist4: metric.kernel4(),
    };
    insert_all(&b, &order, threads, progress)?;
    Ok(b.export())
}

/// Continues the graph `old` (over the first `old_count` rows of `data`)
/// with the rows after them, as hnswlib's `add_items` does: the old links
/// are copied into the builder's lists, each new point draws its level from
/// a stream seeded by `p.seed` and `old_count` (so a later extension draws
/// afresh) and is inserted, in its id order, from the old entry point.
/// Old points keep their levels; their lists gain back links as in a
/// build. Deleted points stay in the graph (they still route), as in
/// hnswlib's `mark_deleted`; `compact` drops them.
pub(crate) fn extend(
    data: &[f32],
    dim: usize,
    old: &GraphView<'_>,
    old_count: usize,
    p: Params,
    progress: Option<Progress<'_>>,
) -> Result<Graph> {
    let n = data.len() / dim;
    if n <= old_count || n >= u32::MAX as usize {
        return Err(Error::InvalidInput(format!(
            "cannot extend a graph of {old_count} items to {n}"
        )));
    }
    // Opening checks the header and the layers' bounds, not each link;
    // the builder indexes its lists and the vectors by every link, so a
    // damaged link (an id past the items) would panic mid-insert. One pass
    // over the edges, small beside the inserts.
    old.check_links(old_count)?;
    let mut levels = vec![0u8; old_count];
    for l in 1..old.levels() {
        for &i in old.layer(l).nodes {
            if let Some(v) = levels.get_mut(i as usize) {
                *v = l as u8;
            }
        }
    }
    levels.extend(draw_levels(
        n - old_count,
        p.m,
        p.seed ^ (old_count as u64).rotate_left(17),
    ));
    let links = Links::new(&levels, p.m);
    for l in 0..old.levels() {
        let lv = old.layer(l);
        let rows = if l == 0 { old_count } else { lv.nodes.len() };
        for r in 0..rows {
            let i = if l == 0 { r as u32 } else { lv.nodes[r] };
            let nbrs = old.neighbours(l, i)?;
            if nbrs.len() > links.cap(l) {
                return Err(old.corrupt(format!(
                    "item {i} has {} links on layer {l}, more than m {} allows",
                    nbrs.len(),
                    p.m
                )));
            }
            write_slot(links.slot(i, l), nbrs.iter().copied());
        }
    }
    let b = Builder {
        data,
        dim,
        n,
        ef: p.ef_construction.max(1),
        links,
        entry: Mutex::new((old.entry, old.levels().saturating_sub(1))),
        levels,
        dist: p.metric.kernel(),
        dist4: p.metric.kernel4(),
    };
    let new: Vec<usize> = (old_count..n).collect();
    insert_all(&b, &new, p.threads, progress)?;
    Ok(b.export())
}

/// Inserts `order` on `threads` threads (one: in order, reproducibly),
/// reporting progress every [`BATCH`] points.
fn insert_all(
    b: &Builder<'_>,
    order: &[usize],
    threads: usize,
    progress: Option<Progress<'_>>,
) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::InvalidInput(format!("cannot start {threads} build threads: {e}")))?;
    let mut done = 0;
    for chunk in order.chunks(BATCH) {
        if threads <= 1 {
            for &i in chunk {
                b.insert(i as u32);
            }
        } else {
            pool.install(|| chunk.par_iter().for_each(|&i| b.insert(i as u32)));
        }
        done += chunk.len();
        if let Some(p) = progress {
            p(done, order.len());
        }
    }
    // The pool's threads (and their scratch) end with the pool; a sequential
    // build ran on this thread, whose visited array (4 bytes per point) goes.
    SCRATCH.with(|cell| *cell.borrow_mut() = Scratch::default());
    Ok(())
}

impl Builder<'_> {
    /// The finished lists in the CSR layout of [`Graph`].
    fn export(self) -> Graph {
        let (entry, top) = *self.entry.lock().unwrap_or_else(PoisonError::into_inner);
        let mut layers = Vec::with_capacity(top + 1);
        let mut ids = Vec::new();
        for l in 0..=top {
            let rows: Vec<u32> = (0..self.n as u32)
                .filter(|&i| usize::from(self.levels[i as usize]) >= l)
                .collect();
            let mut layer = Layer::default();
            layer.offsets.reserve(rows.len() + 1);
            layer.offsets.push(0);
            for &i in &rows {
                read_slot(self.links.slot(i, l), &mut ids);
                layer.neighbours.extend_from_slice(&ids);
                layer.offsets.push(layer.neighbours.len() as u64);
            }
            if l > 0 {
                layer.nodes = rows;
            }
            layers.push(layer);
        }
        Graph {
            count: self.n,
            entry,
            m: self.links.m,
            layers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n * dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
    }

    /// Every list respects its layer's capacity, holds no self-link, no
    /// repeat and only nodes of its layer; the entry point is on the top
    /// layer; layer 0 is connected enough that every node has a link.
    fn check_invariants(g: &Graph, n: usize, m: usize) {
        assert_eq!(g.count, n);
        let top = g.layers.len() - 1;
        assert!(top == 0 || g.layers[top].nodes.contains(&g.entry));
        for (l, layer) in g.layers.iter().enumerate() {
            let rows: Vec<u32> = if l == 0 {
                (0..n as u32).collect()
            } else {
                layer.nodes.clone()
            };
            let cap = if l == 0 { 2 * m } else { m };
            assert_eq!(layer.offsets.len(), rows.len() + 1);
            for (r, &i) in rows.iter().enumerate() {
                let list =
                    &layer.neighbours[layer.offsets[r] as usize..layer.offsets[r + 1] as usize];
                assert!(
                    list.len() <= cap,
                    "layer {l} node {i}: {} links",
                    list.len()
                );
                if rows.len() > 1 {
                    assert!(!list.is_empty(), "node {i} has no links on layer {l}");
                }
                let mut seen = list.to_vec();
                seen.sort_unstable();
                seen.dedup();
                assert_eq!(seen.len(), list.len(), "repeated link of {i} on layer {l}");
                for &j in list {
                    assert_ne!(j, i);
                    assert!(
                        l == 0 || rows.binary_search(&j).is_ok(),
                        "{j} not on layer {l}"
                    );
                    assert!((j as usize) < n);
                }
            }
        }
    }

    #[test]
    fn graph_invariants_and_reproducible_on_one_thread() {
        let (n, dim, m) = (2000, 16, 6);
        for metric in [Metric::L2, Metric::Cosine] {
            let mut data = random(n, dim, 5);
            metric.preprocess(&mut data, dim).unwrap();
            let graph = |seed, threads| {
                let p = Params {
                    metric,
                    m,
                    ef_construction: 40,
                    seed,
                    threads,
                };
                build(&data, dim, p, None).unwrap()
            };
            let a = graph(3, 1);
            check_invariants(&a, n, m);
            assert!(a.layers.len() > 1, "2000 points with m 6 have upper layers");
            assert_eq!(a, graph(3, 1), "same seed, one thread: same graph");
            assert_ne!(a, graph(4, 1), "another seed: another graph");
            // Two threads: a valid graph, though not the same one.
            check_invariants(&graph(3, 2), n, m);
        }
    }

    /// Many threads raising the top at once: every node of a shared upper
    /// layer still gets links (hnswlib's rule: a point that raises the top
    /// holds the entry lock while it is inserted).
    #[test]
    fn parallel_builds_link_every_upper_layer_node() {
        let (n, dim, m) = (20_000, 16, 2);
        let data = random(n, dim, 11);
        for seed in 0..4 {
            let p = Params {
                metric: Metric::L2,
                m,
                ef_construction: 50,
                seed,
                threads: 16,
            };
            let g = build(&data, dim, p, None).unwrap();
            check_invariants(&g, n, m);
        }
    }

    #[test]
    fn tiny_inputs() {
        for n in [1, 2, 3] {
            let data = random(n, 4, 1);
            let g = build(
                &data,
                4,
                Params {
                    metric: Metric::L2,
                    m: 2,
                    ef_construction: 8,
                    seed: 0,
                    threads: 2,
                },
                None,
            )
            .unwrap();
            check_invariants(&g, n, 2);
            let links: usize = g.layers[0].neighbours.len();
            assert_eq!(links, n * (n - 1), "{n} points: all linked");
        }
        assert!(build(
            &[],
            4,
            Params {
                metric: Metric::L2,
                m: 2,
                ef_construction: 8,
                seed: 0,
                threads: 1
            },
            None
        )
        .is_err());
    }

    /// A copy taken while a writer holds the lock is refused; after the
    /// write it is accepted and shows the new list.
    #[test]
    fn sequence_lock_refuses_copies_during_a_write() {
        let links = Links::new(&[1, 0], 4);
        let mut out = Vec::new();
        assert!(links.try_read(0, 1, &mut out) && out.is_empty());
        {
            let _guard = links.lock(0);
            write_slot(links.slot(0, 1), [7, 8].into_iter());
            assert!(!links.try_read(0, 1, &mut out), "copy during a write");
            assert!(
                !links.try_read(0, 0, &mut out),
                "the lock covers all layers"
            );
            assert!(links.try_read(1, 0, &mut out), "other nodes are free");
        }
        assert!(links.try_read(0, 1, &mut out));
        assert_eq!(out, [7, 8]);
        assert_eq!(links.word(0).load(Relaxed), 2);
    }

    /// The sequence lock under contention: writers rewrite a few nodes'
    /// lists over and over, each time with one value repeated as many times
    /// as it says (a list `[k; k % cap + 1]`), while readers copy them
    /// without a lock. A copy mixing two writes (a torn read) would show
    /// two values or a wrong length; none may ever be returned. (On a
    /// machine whose cores run the threads at once.)
    #[test]
    fn sequence_lock_readers_never_see_a_torn_list() {
        let m = 64;
        let levels = [1u8, 0, 1];
        let links = Links::new(&levels, m);
        let stop = std::sync::atomic::AtomicBool::new(false);
        let torn = AtomicU32::new(0);
        let (links, stop, torn) = (&links, &stop, &torn);
        std::thread::scope(|scope| {
            for w in 0..2u32 {
                scope.spawn(move || {
                    let mut k = w + 1;
                    while !stop.load(Relaxed) {
                        let node = k % 3;
                        for layer in 0..=usize::from(levels[node as usize]) {
                            let len = k as usize % links.cap(layer) + 1;
                            let _guard = links.lock(node);
                            write_slot(links.slot(node, layer), std::iter::repeat_n(k, len));
                        }
                        k += 2;
                    }
                });
            }
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        for r in 0..200_000u32 {
                            let node = r % 3;
                            for layer in 0..=usize::from(levels[node as usize]) {
                                links.read(node, layer, &mut out);
                                let Some(&k) = out.first() else { continue };
                                let len = k as usize % links.cap(layer) + 1;
                                if out.len() != len || out.iter().any(|&x| x != k) {
                                    torn.fetch_add(1, Relaxed);
                                }
                            }
                        }
                    })
                })
                .collect();
            for r in readers {
                r.join().unwrap();
            }
            stop.store(true, Relaxed);
        });
        assert_eq!(torn.load(Relaxed), 0, "torn copies returned");
        // Every lock was released: the words are even again.
        for node in 0..3 {
            assert_eq!(links.word(node).load(Relaxed) % 2, 0);
        }
    }

    #[test]
    fn levels_follow_the_geometric_law() {
        let m = 16;
        let levels = draw_levels(200_000, m, 7);
        let above = |l: u8| levels.iter().filter(|&&x| x >= l).count() as f64;
        // P(level >= l) = m^-l.
        let p1 = above(1) / 200_000.0;
        let p2 = above(2) / 200_000.0;
        assert!((p1 - 1.0 / 16.0).abs() < 0.005, "{p1}");
        assert!((p2 - 1.0 / 256.0).abs() < 0.001, "{p2}");
        assert_eq!(levels, draw_levels(200_000, m, 7));
    }
}
