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

impl Graph {
    /// This graph (built over a subset of the items, row `r` being item
    /// `ids[r]`, `ids` ascending) as a graph over all `count` items: the
    /// others get no links and no upper layers, so no search reaches them
    /// (what `compact` leaves of deleted items, whose ids stay theirs).
    pub(crate) fn spread(self, ids: &[u32], count: usize) -> Graph {
        let map = |r: u32| ids[r as usize];
        let mut layers = Vec::with_capacity(self.layers.len());
        for (l, layer) in self.layers.into_iter().enumerate() {
            let neighbours: Vec<u32> = layer.neighbours.into_iter().map(map).collect();
            if l > 0 {
                // Ascending stays ascending: `ids` is.
                layers.push(Layer {
                    nodes: layer.nodes.into_iter().map(map).collect(),
                    offsets: layer.offsets,
                    neighbours,
                });
                continue;
            }
            let mut offsets = Vec::with_capacity(count + 1);
            offsets.push(0);
            let mut next = 0usize;
            for item in 0..count as u32 {
                let end = if ids.get(next) == Some(&item) {
                    next += 1;
                    layer.offsets[next]
                } else {
                    *offsets.last().unwrap_or(&0)
                };
                offsets.push(end);
            }
            layers.push(Layer {
                nodes: Vec::new(),
                offsets,
                neighbours,
            });
        }
        Graph {
            count,
            entry: map(self.entry),
            m: self.m,
            layers,
        }
    }
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

    #[test]
    fn spread_keeps_links_and_isolates_the_rest() {
        // Rows 0, 1, 2 are items 1, 3, 4 of 6.
        let g = Graph {
            count: 3,
            entry: 2,
            m: 2,
            layers: vec![
                Layer {
                    nodes: vec![],
                    offsets: vec![0, 1, 3, 4],
                    neighbours: vec![1, 0, 2, 1],
                },
                Layer {
                    nodes: vec![0, 2],
                    offsets: vec![0, 1, 2],
                    neighbours: vec![2, 0],
                },
            ],
        };
        let s = g.spread(&[1, 3, 4], 6);
        assert_eq!(s.count, 6);
        assert_eq!(s.entry, 4);
        assert_eq!(s.layers[0].offsets, vec![0, 0, 1, 1, 3, 4, 4]);
        assert_eq!(s.layers[0].neighbours, vec![3, 1, 4, 3]);
        assert_eq!(s.layers[1].nodes, vec![1, 4]);
        assert_eq!(s.layers[1].neighbours, vec![4, 1]);
    }
}
