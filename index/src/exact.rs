//! Exact (brute-force) k-nearest-neighbour search, parallel over queries.
//!
//! Ground truth for recall measurements and the search of choice for small
//! galleries. Queries are processed in blocks of [`QUERY_BLOCK`] so each base
//! vector, once loaded into cache, is compared with several queries: this is
//! what lets the scan run faster than memory bandwidth alone would allow.

use rayon::prelude::*;

use crate::distance::{check_shape, Metric};
use crate::error::{Error, Result};
use crate::neighbours::{Cand, Neighbours, TopK};

/// Queries compared against each base vector while it is in cache.
pub const QUERY_BLOCK: usize = 8;

/// The `k` nearest base rows of every query row.
///
/// `base` and `queries` are row-major with `dim` columns, as they come from
/// the model (for cosine they are normalised here, on copies). Distances are
/// those of [`Metric::distance`]. Base ids are row numbers; at most
/// `u32::MAX` rows.
pub fn search(
    base: &[f32],
    queries: &[f32],
    dim: usize,
    k: usize,
    metric: Metric,
) -> Result<Neighbours> {
    let base = prepared(base, dim, metric)?;
    let queries = prepared(queries, dim, metric)?;
    search_prepared(&base, &queries, dim, k, metric, false)
}

/// Leave-one-out: the `k` nearest *other* rows of every row of `base` (a row
/// is never its own neighbour; exact duplicates of it still are).
pub fn search_leave_one_out(
    base: &[f32],
    dim: usize,
    k: usize,
    metric: Metric,
) -> Result<Neighbours> {
    let base = prepared(base, dim, metric)?;
    search_prepared(&base, &base, dim, k, metric, true)
}

/// As [`search`] for vectors already passed through [`Metric::preprocess`]
/// (no copy is made). With `leave_one_out`, `queries` must be `base` itself
/// (same rows), and row `i` is excluded from the results of query `i`.
pub fn search_prepared(
    base: &[f32],
    queries: &[f32],
    dim: usize,
    k: usize,
    metric: Metric,
    leave_one_out: bool,
) -> Result<Neighbours> {
    scan(base, queries, dim, k, metric, leave_one_out, None)
}

/// As [`search_prepared`] (no leave-one-out), keeping only base rows `i`
/// for which `allow(i)` holds.
pub fn search_filtered(
    base: &[f32],
    queries: &[f32],
    dim: usize,
    k: usize,
    metric: Metric,
    allow: &(dyn Fn(u32) -> bool + Sync),
) -> Result<Neighbours> {
    scan(base, queries, dim, k, metric, false, Some(allow))
}

fn scan(
    base: &[f32],
    queries: &[f32],
    dim: usize,
    k: usize,
    metric: Metric,
    leave_one_out: bool,
    allow: Option<&(dyn Fn(u32) -> bool + Sync)>,
) -> Result<Neighbours> {
    check_shape(base.len(), dim)?;
    check_shape(queries.len(), dim)?;
    let n = base.len() / dim;
    let nq = queries.len() / dim;
    if n > u32::MAX as usize {
        return Err(Error::InvalidInput(format!(
            "{n} base vectors; at most {} are supported",
            u32::MAX
        )));
    }
    if leave_one_out && nq != n {
        return Err(Error::InvalidInput(format!(
            "leave-one-out needs the queries to be the base itself, got {nq} queries for {n} base rows"
        )));
    }
    let dist = metric.kernel();
    let mut out = Neighbours::new(nq, k);
    if k == 0 || nq == 0 {
        return Ok(out);
    }
    let rows: Vec<_> = out.rows_mut().collect();
    let mut blocks: Vec<Vec<_>> = Vec::with_capacity(nq.div_ceil(QUERY_BLOCK));
    let mut it = rows.into_iter();
    loop {
        let b: Vec<_> = it.by_ref().take(QUERY_BLOCK).collect();
        if b.is_empty() {
            break;
        }
        blocks.push(b);
    }
    blocks.into_par_iter().enumerate().for_each(|(bi, block)| {
        let q0 = bi * QUERY_BLOCK;
        let qs: Vec<&[f32]> = (0..block.len())
            .map(|i| &queries[(q0 + i) * dim..(q0 + i + 1) * dim])
            .collect();
        let mut tops: Vec<TopK> = (0..block.len()).map(|_| TopK::new(k)).collect();
        for (j, row) in base.chunks_exact(dim).enumerate() {
            if allow.is_some_and(|f| !f(j as u32)) {
                continue;
            }
            for (i, q) in qs.iter().enumerate() {
                if leave_one_out && q0 + i == j {
                    continue;
                }
                let d = dist(q, row);
                if d < tops[i].bound() || tops[i].len() < k {
                    tops[i].push(Cand {
                        dist: d,
                        id: j as u32,
                    });
                }
            }
        }
        for ((ids, ds), top) in block.into_iter().zip(&mut tops) {
            top.drain_into(ids, ds);
        }
    });
    Ok(out)
}

fn prepared(data: &[f32], dim: usize, metric: Metric) -> Result<std::borrow::Cow<'_, [f32]>> {
    check_shape(data.len(), dim)?;
    match metric {
        Metric::L2 => {
            metric.check_values(data, dim)?;
            Ok(std::borrow::Cow::Borrowed(data))
        }
        Metric::Cosine => {
            let mut v = data.to_vec();
            metric.preprocess(&mut v, dim)?;
            Ok(std::borrow::Cow::Owned(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::neighbours::MISSING;

    #[test]
    fn one_dimensional_l2_by_hand() {
        // Base points on a line: 0, 1, 3, 7, 8.
        let base = [0.0f32, 1.0, 3.0, 7.0, 8.0];
        let q = [2.9f32, 7.6];
        let r = search(&base, &q, 1, 2, Metric::L2).unwrap();
        assert_eq!(r.ids(0), &[2, 1]); // 3 (0.01), 1 (3.61)
        assert_eq!(r.ids(1), &[4, 3]); // 8 (0.16), 7 (0.36)
        assert!((r.distances(0)[0] - 0.01).abs() < 1e-5);
        assert!((r.distances(1)[1] - 0.36).abs() < 1e-5);
    }

    #[test]
    fn leave_one_out_excludes_self_but_not_duplicates() {
        let base = [0.0f32, 0.0, 5.0, 10.0];
        let r = search_leave_one_out(&base, 1, 2, Metric::L2).unwrap();
        assert_eq!(r.ids(0), &[1, 2]);
        assert_eq!(r.ids(1), &[0, 2]);
        assert_eq!(r.ids(2), &[0, 1]); // three-way tie at 25 broken by id
        assert_eq!(r.ids(3), &[2, 0]);
        assert_eq!(r.distances(0)[0], 0.0);
    }

    #[test]
    fn pads_when_k_exceeds_gallery_and_handles_many_blocks() {
        let base = [1.0f32, 0.0, 0.0, 1.0];
        let qs: Vec<f32> = (0..37).flat_map(|i| [1.0, i as f32 * 0.1]).collect();
        let r = search(&base, &qs, 2, 3, Metric::Cosine).unwrap();
        assert_eq!(r.queries(), 37);
        for q in 0..37 {
            let want = if q <= 10 { [0, 1] } else { [1, 0] };
            assert_eq!(&r.ids(q)[..2], &want, "query {q}");
            assert_eq!(r.ids(q)[2], MISSING);
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            search(&[1.0, f32::NAN], &[1.0, 1.0], 2, 1, Metric::L2),
            Err(Error::NonFinite { row: 0, col: 1, .. })
        ));
        assert!(search(&[1.0, 2.0, 3.0], &[1.0, 1.0], 2, 1, Metric::L2).is_err());
        assert!(search_prepared(&[1.0, 2.0], &[1.0], 1, 1, Metric::L2, true).is_err());
        assert_eq!(search(&[1.0], &[], 1, 1, Metric::L2).unwrap().queries(), 0);
    }

    #[test]
    fn matches_naive_on_random_data() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let dim = 19;
        let base: Vec<f32> = (0..300 * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let qs: Vec<f32> = (0..20 * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        for metric in [Metric::L2, Metric::Cosine] {
            let r = search(&base, &qs, dim, 5, metric).unwrap();
            let mut b = base.clone();
            let mut q = qs.clone();
            metric.preprocess(&mut b, dim).unwrap();
            metric.preprocess(&mut q, dim).unwrap();
            for qi in 0..20 {
                let qv = &q[qi * dim..(qi + 1) * dim];
                let mut all: Vec<(f32, i64)> = b
                    .chunks_exact(dim)
                    .enumerate()
                    .map(|(j, v)| (metric.distance(qv, v), j as i64))
                    .collect();
                all.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
                let want: Vec<i64> = all[..5].iter().map(|x| x.1).collect();
                assert_eq!(r.ids(qi), &want[..]);
            }
        }
    }
}
