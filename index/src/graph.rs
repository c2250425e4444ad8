//! The graph in memory as both builders hand it over (CSR layers, entry
//! point) and the seeded choices they share (insertion order, levels'
//! random stream, progress batches). It imports nothing: `hnsw` (our
//! builder) and `build` (hnsw_rs's export) make it, `format::graph` writes
//! it to `graph.bin`.

/// Points inserted between two progress reports.
pub(crate) const BATCH: usize = 4096;

/// Progress callback: `(items inserted, total)`. Called from worker threads.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// One exported layer in CSR form.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Layer {
    /// Sorted global ids (empty for layer 0, which holds every item).
    pub nodes: Vec<u32>,
    /// Row pointers, `rows + 1` entries.
    pub offsets: Vec<u64>,
    /// Global neighbour ids.
    pub neighbours: Vec<u32>,
}

/// An HNSW graph in CSR form, as written to `graph.bin`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Graph {
    pub count: usize,
    pub entry: u32,
    pub m: usize,
    pub layers: Vec<Layer>,
}

/// SplitMix64: the seeded permutation of insertion order needs no more.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Insertion order: a Fisher–Yates shuffle of `0..n` seeded by `seed`.
pub(crate) fn insertion_order(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut s = seed;
    for i in (1..n).rev() {
        let j = (splitmix64(&mut s) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insertion_order_is_a_seeded_permutation() {
        let a = insertion_order(1000, 1);
        let mut s = a.clone();
        s.sort_unstable();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, insertion_order(1000, 1));
        assert_ne!(a, insertion_order(1000, 2));
    }
}
