//! Retrieval quality: metrics over labels and ANN recall against exact search.
//!
//! # Label metrics
//!
//! Each query has a label; its ranked neighbour list comes from a gallery of
//! labelled items. Two protocols:
//!
//! * [`Protocol::LeaveOneOut`]: queries are the gallery itself; a query is
//!   never its own neighbour (the usual protocol of CUB-200, Cars-196 and SOP
//!   in the deep-metric-learning literature);
//! * [`Protocol::QueryGallery`]: separate query and gallery sets (In-Shop).
//!
//! For a query, `R` is the number of gallery items other than itself that
//! share its label. A query with `R = 0` (a *lone* query) cannot score and is
//! left out of every average; the count is reported.
//!
//! * **Recall@K** (Sohn, "Improved Deep Metric Learning with Multi-class
//!   N-pair Loss Objective", NeurIPS 2016, and Oh Song et al. 2016 before
//!   it): 1 if any of the query's K nearest neighbours shares its label,
//!   else 0; averaged over queries. (Not the information-retrieval recall.)
//! * **Precision@1**: the fraction of queries whose nearest neighbour shares
//!   their label. It equals Recall@1 by definition; it is reported under its
//!   own name because Musgrave et al. do.
//! * **R-Precision** (Musgrave, Belongie and Lim, "A Metric Learning Reality
//!   Check", ECCV 2020): the fraction of the query's R nearest neighbours that
//!   share its label, `r / R`.
//! * **MAP@R** (same paper): mean average precision cut at R,
//!   `MAP@R = (1/R) Σ_{i=1..R} P(i)·rel(i)` where `rel(i)` is 1 if the i-th
//!   neighbour shares the label and `P(i)` is the precision among the first
//!   `i` neighbours. Unlike R-Precision it rewards putting the correct items
//!   first.
//!
//! All four are reported overall (mean over non-lone queries) and per class
//! (mean over that class's queries).
//!
//! # ANN recall
//!
//! [`ann_recall`]: the mean over queries of `|A_k ∩ E_k| / |E_k|` where `A_k`
//! are the k ids the approximate index returned and `E_k` the k ids of exact
//! search — the "recall@k" of the ANN literature (faiss, hnswlib).
//! [`ann_recall_by_distance`] counts instead the approximate results not
//! farther than the exact k-th distance plus a tolerance, as ann-benchmarks
//! does, which is robust to ties between duplicate vectors.

use std::collections::HashMap;

use serde::Serialize;

use crate::distance::Metric;
use crate::error::{Error, Result};
use crate::exact;
use crate::neighbours::Neighbours;

/// How queries relate to the gallery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// Queries are the gallery; each is excluded from its own results.
    LeaveOneOut,
    /// Disjoint query and gallery sets.
    QueryGallery,
}

/// Metrics of one class (or of all queries).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    /// Queries that scored (non-lone).
    pub queries: usize,
    /// `(K, Recall@K)` for each requested K.
    pub recall_at_k: Vec<(usize, f64)>,
    /// Precision@1 (= Recall@1).
    pub precision_at_1: f64,
    /// R-Precision.
    pub r_precision: f64,
    /// MAP@R.
    pub map_at_r: f64,
}

/// Metrics of one label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScores {
    /// The label.
    pub label: i64,
    /// Gallery items with this label (excluding the query itself in
    /// leave-one-out): the `R` of its queries.
    pub r: usize,
    /// The class's scores.
    #[serde(flatten)]
    pub scores: Scores,
}

/// Result of [`label_metrics`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelMetrics {
    /// The protocol used.
    pub protocol: Protocol,
    /// Scores over all non-lone queries.
    #[serde(flatten)]
    pub overall: Scores,
    /// Queries left out because no other gallery item has their label.
    pub lone_queries: usize,
    /// Per-class breakdown, sorted by label; classes whose queries are all
    /// lone are absent.
    pub per_class: Vec<ClassScores>,
}

#[derive(Default, Clone)]
struct Acc {
    n: usize,
    hits: Vec<f64>,
    p1: f64,
    rp: f64,
    map: f64,
}

impl Acc {
    fn finish(&self, ks: &[usize]) -> Scores {
        let d = self.n.max(1) as f64;
        Scores {
            queries: self.n,
            recall_at_k: ks
                .iter()
                .zip(&self.hits)
                .map(|(&k, &h)| (k, h / d))
                .collect(),
            precision_at_1: self.p1 / d,
            r_precision: self.rp / d,
            map_at_r: self.map / d,
        }
    }
}

/// Counts of each label in `labels`.
fn label_counts(labels: &[i64]) -> HashMap<i64, usize> {
    let mut m = HashMap::new();
    for &l in labels {
        *m.entry(l).or_insert(0) += 1;
    }
    m
}

/// The neighbour-list depth [`label_metrics`] needs: the largest K and the
/// largest R over the queries.
pub fn required_depth(
    query_labels: &[i64],
    gallery_labels: &[i64],
    protocol: Protocol,
    ks: &[usize],
) -> usize {
    let counts = label_counts(gallery_labels);
    let self_excl = usize::from(protocol == Protocol::LeaveOneOut);
    let max_r = query_labels
        .iter()
        .map(|l| {
            counts
                .get(l)
                .copied()
                .unwrap_or(0)
                .saturating_sub(self_excl)
        })
        .max()
        .unwrap_or(0);
    max_r.max(ks.iter().copied().max().unwrap_or(1)).max(1)
}

/// Recall@K for each K in `ks`, Precision@1, R-Precision and MAP@R (see the
/// module documentation) of ranked neighbour lists.
///
/// `neighbours` holds, per query, gallery row ids nearest first (`-1` for
/// none) with depth at least [`required_depth`]; in leave-one-out the query
/// must already be excluded from its own list.
pub fn label_metrics(
    neighbours: &Neighbours,
    query_labels: &[i64],
    gallery_labels: &[i64],
    protocol: Protocol,
    ks: &[usize],
) -> Result<LabelMetrics> {
    if neighbours.queries() != query_labels.len() {
        return Err(Error::InvalidInput(format!(
            "{} neighbour lists for {} query labels",
            neighbours.queries(),
            query_labels.len()
        )));
    }
    if protocol == Protocol::LeaveOneOut && query_labels.len() != gallery_labels.len() {
        return Err(Error::InvalidInput(format!(
            "leave-one-out needs as many queries as gallery items, got {} and {}",
            query_labels.len(),
            gallery_labels.len()
        )));
    }
    if let Some(&k) = ks.iter().find(|&&k| k == 0) {
        return Err(Error::param("k", k, "Recall@K needs K >= 1"));
    }
    let need = required_depth(query_labels, gallery_labels, protocol, ks);
    if neighbours.k() < need {
        return Err(Error::InvalidInput(format!(
            "neighbour lists have depth {} but these metrics need {need} (the largest K or class size R); search with k = {need}",
            neighbours.k()
        )));
    }
    let counts = label_counts(gallery_labels);
    let self_excl = usize::from(protocol == Protocol::LeaveOneOut);
    let blank = Acc {
        hits: vec![0.0; ks.len()],
        ..Acc::default()
    };
    let mut total = blank.clone();
    let mut per: HashMap<i64, (usize, Acc)> = HashMap::new();
    let mut lone = 0usize;
    for (q, &label) in query_labels.iter().enumerate() {
        let r = counts
            .get(&label)
            .copied()
            .unwrap_or(0)
            .saturating_sub(self_excl);
        if r == 0 {
            lone += 1;
            continue;
        }
        let ids = neighbours.ids(q);
        let mut rel = Vec::with_capacity(need);
        for &id in ids {
            if protocol == Protocol::LeaveOneOut && id == q as i64 {
                return Err(Error::InvalidInput(format!(
                    "query {q} is its own neighbour; leave-one-out lists must exclude the query"
                )));
            }
            let hit = usize::try_from(id)
                .ok()
                .and_then(|i| gallery_labels.get(i))
                .is_some_and(|&l| l == label);
            if id >= 0 && usize::try_from(id).map_or(true, |i| i >= gallery_labels.len()) {
                return Err(Error::InvalidInput(format!(
                    "query {q} has neighbour id {id} but the gallery has {} items",
                    gallery_labels.len()
                )));
            }
            rel.push(hit);
        }
        let (_, acc) = per.entry(label).or_insert_with(|| (r, blank.clone()));
        for a in [&mut total, acc] {
            a.n += 1;
            for (h, &k) in a.hits.iter_mut().zip(ks) {
                if rel[..k.min(rel.len())].iter().any(|&x| x) {
                    *h += 1.0;
                }
            }
            if rel.first() == Some(&true) {
                a.p1 += 1.0;
            }
            let mut correct = 0usize;
            let mut ap = 0.0f64;
            for (i, &x) in rel[..r].iter().enumerate() {
                if x {
                    correct += 1;
                    ap += correct as f64 / (i + 1) as f64;
                }
            }
            a.rp += correct as f64 / r as f64;
            a.map += ap / r as f64;
        }
    }
    let mut per_class: Vec<ClassScores> = per
        .into_iter()
        .map(|(label, (r, acc))| ClassScores {
            label,
            r,
            scores: acc.finish(ks),
        })
        .collect();
    per_class.sort_by_key(|c| c.label);
    Ok(LabelMetrics {
        protocol,
        overall: total.finish(ks),
        lone_queries: lone,
        per_class,
    })
}

/// Runs exact search at the needed depth and computes [`label_metrics`].
///
/// With `queries = None` the protocol is leave-one-out over the gallery;
/// otherwise `queries` is `(vectors, labels)` searched against the gallery.
pub fn evaluate(
    gallery: &[f32],
    gallery_labels: &[i64],
    queries: Option<(&[f32], &[i64])>,
    dim: usize,
    metric: Metric,
    ks: &[usize],
) -> Result<LabelMetrics> {
    crate::distance::check_shape(gallery.len(), dim)?;
    if gallery.len() / dim != gallery_labels.len() {
        return Err(Error::InvalidInput(format!(
            "{} gallery vectors but {} labels",
            gallery.len() / dim,
            gallery_labels.len()
        )));
    }
    // Recall@K needs K candidates: all other gallery items for leave-one-out.
    let n = gallery_labels.len();
    let candidates = if queries.is_none() {
        n.saturating_sub(1)
    } else {
        n
    };
    if let Some(&k) = ks.iter().find(|&&k| k == 0 || k > candidates) {
        return Err(Error::InvalidInput(format!(
            "Recall@{k}: K must be between 1 and the {candidates} gallery items each query is ranked against; use smaller K values"
        )));
    }
    match queries {
        None => {
            let need = required_depth(gallery_labels, gallery_labels, Protocol::LeaveOneOut, ks);
            let nn = exact::search_leave_one_out(gallery, dim, need, metric)?;
            label_metrics(
                &nn,
                gallery_labels,
                gallery_labels,
                Protocol::LeaveOneOut,
                ks,
            )
        }
        Some((qv, ql)) => {
            crate::distance::check_shape(qv.len(), dim)?;
            if qv.len() / dim != ql.len() {
                return Err(Error::InvalidInput(format!(
                    "{} query vectors but {} labels",
                    qv.len() / dim,
                    ql.len()
                )));
            }
            let need = required_depth(ql, gallery_labels, Protocol::QueryGallery, ks);
            let nn = exact::search(gallery, qv, dim, need, metric)?;
            label_metrics(&nn, ql, gallery_labels, Protocol::QueryGallery, ks)
        }
    }
}

fn check_pair(approx: &Neighbours, exact: &Neighbours, k: usize) -> Result<()> {
    if approx.queries() != exact.queries() {
        return Err(Error::InvalidInput(format!(
            "{} approximate result rows but {} exact ones",
            approx.queries(),
            exact.queries()
        )));
    }
    if k == 0 || k > approx.k() || k > exact.k() {
        return Err(Error::param(
            "k",
            k,
            format!("must be in 1..={}", approx.k().min(exact.k())),
        ));
    }
    Ok(())
}

/// ANN recall@k: mean over queries of the fraction of the exact k nearest ids
/// that the approximate search also returned in its first k. Queries whose
/// exact list is empty are skipped.
pub fn ann_recall(approx: &Neighbours, exact: &Neighbours, k: usize) -> Result<f64> {
    check_pair(approx, exact, k)?;
    let (mut sum, mut n) = (0.0f64, 0usize);
    for q in 0..exact.queries() {
        let truth: Vec<i64> = exact.ids(q)[..k]
            .iter()
            .copied()
            .filter(|&i| i >= 0)
            .collect();
        if truth.is_empty() {
            continue;
        }
        let found = approx.ids(q)[..k]
            .iter()
            .filter(|&&i| i >= 0 && truth.contains(&i))
            .count();
        sum += found as f64 / truth.len() as f64;
        n += 1;
    }
    Ok(if n == 0 { 1.0 } else { sum / n as f64 })
}

/// ANN recall@k as ann-benchmarks counts it: the fraction of the approximate
/// first k results whose distance is at most the exact k-th distance plus
/// `epsilon` (ties between equidistant items all count).
pub fn ann_recall_by_distance(
    approx: &Neighbours,
    exact: &Neighbours,
    k: usize,
    epsilon: f32,
) -> Result<f64> {
    check_pair(approx, exact, k)?;
    let (mut sum, mut n) = (0.0f64, 0usize);
    for q in 0..exact.queries() {
        let valid = exact.ids(q)[..k].iter().filter(|&&i| i >= 0).count();
        if valid == 0 {
            continue;
        }
        let threshold = exact.distances(q)[valid - 1] + epsilon;
        let found = approx.ids(q)[..k]
            .iter()
            .zip(approx.distances(q))
            .filter(|(&i, &d)| i >= 0 && d <= threshold)
            .count();
        sum += found.min(valid) as f64 / valid as f64;
        n += 1;
    }
    Ok(if n == 0 { 1.0 } else { sum / n as f64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nn(rows: &[&[i64]]) -> Neighbours {
        let k = rows[0].len();
        let ids: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        let d = vec![0.0; ids.len()];
        Neighbours::from_parts(rows.len(), k, ids, d).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Five items, labels [0,0,1,1,1]; lists worked out by hand in the
    /// comments (R = 1 for label 0, R = 2 for label 1).
    #[test]
    fn leave_one_out_by_hand() {
        let labels = [0, 0, 1, 1, 1];
        let lists = nn(&[
            &[2, 1, 3, 4], // R@1 0, R@2 1, RP 0,   MAP@R 0
            &[0, 2, 3, 4], // R@1 1, R@2 1, RP 1,   MAP@R 1
            &[3, 0, 4, 1], // R@1 1, R@2 1, RP 1/2, MAP@R (1/2)(1) = 0.5
            &[0, 4, 2, 1], // R@1 0, R@2 1, RP 1/2, MAP@R (1/2)(1/2) = 0.25
            &[2, 3, 0, 1], // R@1 1, R@2 1, RP 1,   MAP@R (1/2)(1+1) = 1
        ]);
        let m = label_metrics(&lists, &labels, &labels, Protocol::LeaveOneOut, &[1, 2]).unwrap();
        assert_eq!(m.overall.queries, 5);
        assert_eq!(m.lone_queries, 0);
        assert_eq!(m.overall.recall_at_k, vec![(1, 0.6), (2, 1.0)]);
        assert!(close(m.overall.precision_at_1, 0.6));
        assert!(close(m.overall.r_precision, 0.6));
        assert!(close(m.overall.map_at_r, 0.55));
        assert_eq!(m.per_class.len(), 2);
        let c0 = &m.per_class[0];
        assert_eq!((c0.label, c0.r, c0.scores.queries), (0, 1, 2));
        assert!(close(c0.scores.precision_at_1, 0.5));
        assert!(close(c0.scores.map_at_r, 0.5));
        let c1 = &m.per_class[1];
        assert_eq!((c1.label, c1.r, c1.scores.queries), (1, 2, 3));
        assert!(close(c1.scores.r_precision, 2.0 / 3.0));
        assert!(close(c1.scores.map_at_r, 1.75 / 3.0));
    }

    /// The worked example of Musgrave et al. 2020, section 3.2: R = 10 and
    /// the first ten neighbours are [hit, miss, hit, hit, miss × 6]; MAP@R =
    /// (1/10)(1/1 + 2/3 + 3/4) ≈ 0.2417 and R-Precision = 3/10.
    #[test]
    fn musgrave_worked_example() {
        let mut gallery = vec![7i64; 10];
        gallery.extend([8i64; 10]);
        // query label 7; neighbours: ids < 10 are hits, ids >= 10 misses.
        let row: [i64; 10] = [0, 10, 1, 2, 11, 12, 13, 14, 15, 16];
        let m = label_metrics(
            &nn(&[&row]),
            &[7],
            &gallery,
            Protocol::QueryGallery,
            &[1, 4],
        )
        .unwrap();
        assert!(close(m.overall.map_at_r, (1.0 + 2.0 / 3.0 + 0.75) / 10.0));
        assert!(close(m.overall.r_precision, 0.3));
        assert_eq!(m.overall.recall_at_k, vec![(1, 1.0), (4, 1.0)]);
    }

    #[test]
    fn lone_queries_missing_ids_and_errors() {
        // Item 2 is the only one of label 5: a lone query, skipped.
        let labels = [1, 1, 5];
        let lists = nn(&[&[1, -1], &[2, 0], &[0, 1]]);
        let m = label_metrics(&lists, &labels, &labels, Protocol::LeaveOneOut, &[1, 2]).unwrap();
        assert_eq!(m.lone_queries, 1);
        assert_eq!(m.overall.queries, 2);
        assert_eq!(m.overall.recall_at_k, vec![(1, 0.5), (2, 1.0)]);
        assert!(m.per_class.iter().all(|c| c.label == 1));
        // Depth too small for K = 3.
        assert!(label_metrics(&lists, &labels, &labels, Protocol::LeaveOneOut, &[3]).is_err());
        // K = 0 rejected.
        assert!(label_metrics(&lists, &labels, &labels, Protocol::LeaveOneOut, &[0]).is_err());
        // Self in its own list.
        let bad = nn(&[&[0, 1], &[0, 2], &[0, 1]]);
        assert!(label_metrics(&bad, &labels, &labels, Protocol::LeaveOneOut, &[1]).is_err());
        // Out-of-range id.
        let bad = nn(&[&[9, 1], &[0, 2], &[0, 1]]);
        assert!(label_metrics(&bad, &labels, &labels, Protocol::LeaveOneOut, &[1]).is_err());
        // Label/list count mismatch.
        assert!(
            label_metrics(&lists, &labels[..2], &labels, Protocol::QueryGallery, &[1]).is_err()
        );
    }

    #[test]
    fn evaluate_runs_exact_search() {
        // Two tight clusters on a line, labels by cluster except one outlier
        // (item 3 is in cluster 0 but labelled 1).
        let v = [0.0f32, 0.1, 0.2, 0.3, 10.0, 10.1, 10.2];
        let l = [0i64, 0, 0, 1, 1, 1, 1];
        let m = evaluate(&v, &l, None, 1, Metric::L2, &[1]).unwrap();
        // Item 3's nearest is item 2 (label 0): miss. Item 2's nearest is 1 or 3
        // (0.1 both; tie → lower id 1): hit. Everyone else hits.
        assert!(close(m.overall.recall_at_k[0].1, 6.0 / 7.0));
        let q = [0.05f32, 10.05];
        let m = evaluate(&v, &l, Some((&q, &[0, 1])), 1, Metric::L2, &[1]).unwrap();
        assert!(close(m.overall.precision_at_1, 1.0));
        assert!(evaluate(&v, &l[..3], None, 1, Metric::L2, &[1]).is_err());
        // K up to the items each query is ranked against: 6 others
        // leave-one-out, all 7 for separate queries; more (or 0) is an error.
        assert!(evaluate(&v, &l, None, 1, Metric::L2, &[6]).is_ok());
        assert!(evaluate(&v, &l, None, 1, Metric::L2, &[1, 7]).is_err());
        assert!(evaluate(&v, &l, None, 1, Metric::L2, &[0]).is_err());
        assert!(evaluate(&v, &l, Some((&q, &[0, 1])), 1, Metric::L2, &[7]).is_ok());
        assert!(evaluate(&v, &l, Some((&q, &[0, 1])), 1, Metric::L2, &[8]).is_err());
    }

    #[test]
    fn ann_recall_by_hand() {
        let exact =
            Neighbours::from_parts(2, 2, vec![1, 2, 3, 4], vec![0.1, 0.2, 0.3, 0.4]).unwrap();
        let approx =
            Neighbours::from_parts(2, 2, vec![2, 9, 4, 3], vec![0.2, 0.2, 0.4, 0.3]).unwrap();
        assert!(close(ann_recall(&approx, &exact, 2).unwrap(), 0.75));
        assert!(close(ann_recall(&approx, &exact, 1).unwrap(), 0.0));
        // By distance, id 9 at 0.2 ties the exact 2nd distance: counts.
        assert!(close(
            ann_recall_by_distance(&approx, &exact, 2, 1e-6).unwrap(),
            1.0
        ));
        assert!(ann_recall(&approx, &exact, 3).is_err());
    }
}
