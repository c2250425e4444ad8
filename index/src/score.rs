//! Scores (grades) of items: predicting an item's score from its nearest
//! neighbours, and how well that works (MAE, RMSE, Pearson r, Spearman ρ),
//! against two baselines. `likeness eval --score`, `query` and `serve` (and
//! Python) share these functions, so their numbers agree.
//!
//! The prediction is a distance-weighted mean: the K nearest items that have
//! a score, each weighted by `1 / max(distance, 1e-6)` (closer counts more;
//! an exact duplicate dominates instead of dividing by zero). Leave-one-out,
//! an item's own subject (the regions of one face) is left out, so a face
//! never predicts itself from its other regions.

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::distance::Metric;
use crate::error::{Error, Result};

/// Smallest distance used in the weights `1 / distance`.
pub const MIN_DISTANCE: f32 = 1e-6;
/// Default K of the prediction (`--score-k`).
pub const DEFAULT_K: usize = 8;

pub use crate::format::meta::{ItemPairing, Side};

/// Integer group of each item from its subject: items with the same subject
/// share a group; an item without one is a group of its own.
pub fn subject_groups<'a>(subjects: impl IntoIterator<Item = Option<&'a str>>) -> Vec<usize> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut next = 0usize;
    subjects
        .into_iter()
        // Named and lone items draw from one counter, so never collide.
        .map(|s| match s {
            Some(s) => *ids.entry(s).or_insert_with(|| {
                next += 1;
                next - 1
            }),
            None => {
                next += 1;
                next - 1
            }
        })
        .collect()
}

/// The distance-weighted mean of the scores of `(distance, score)` pairs;
/// `NaN` when there are none.
pub fn weighted_mean(neighbours: &[(f32, f32)]) -> f32 {
    let (mut num, mut den) = (0f64, 0f64);
    for &(d, s) in neighbours {
        let w = 1.0 / f64::from(d.max(MIN_DISTANCE));
        num += w * f64::from(s);
        den += w;
    }
    if den > 0.0 {
        (num / den) as f32
    } else {
        f32::NAN
    }
}

/// Items with scores to predict from: row-major vectors (`dim` columns,
/// preprocessed for `metric`), a score per item (`NaN` = none: never a
/// neighbour) and, optionally, each item's subject group
/// ([`subject_groups`]).
#[derive(Debug, Clone, Copy)]
pub struct ScoredSet<'a> {
    pub vectors: &'a [f32],
    pub scores: &'a [f32],
    pub groups: Option<&'a [usize]>,
    pub dim: usize,
    pub metric: Metric,
}

/// A predicted score and the neighbours it came from, `(item, distance)`,
/// nearest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub score: f32,
    pub neighbours: Vec<(usize, f32)>,
}

impl ScoredSet<'_> {
    fn check(&self) -> Result<()> {
        if self.dim == 0 || self.vectors.len() != self.scores.len() * self.dim {
            return Err(Error::InvalidInput(format!(
                "{} values for {} scores of dimension {}",
                self.vectors.len(),
                self.scores.len(),
                self.dim
            )));
        }
        if self.groups.is_some_and(|g| g.len() != self.scores.len()) {
            return Err(Error::InvalidInput(
                "one subject group per item is needed".into(),
            ));
        }
        Ok(())
    }

    /// Predicts the score of each query row (same `dim` and preprocessing)
    /// from its `k` nearest scored items (exact search), leaving out the
    /// items whose group equals the query's (`query_groups[q]`, when given).
    pub fn predict(
        &self,
        queries: &[f32],
        query_groups: Option<&[usize]>,
        k: usize,
    ) -> Result<Vec<Prediction>> {
        self.check()?;
        if k == 0 {
            return Err(Error::param("score-k", 0, "must be at least 1"));
        }
        let dim = self.dim;
        if !queries.len().is_multiple_of(dim) {
            return Err(Error::InvalidInput(format!(
                "{} query values are not rows of {dim}",
                queries.len()
            )));
        }
        let nq = queries.len() / dim;
        if query_groups.is_some_and(|g| g.len() != nq) {
            return Err(Error::InvalidInput(
                "one subject group per query is needed".into(),
            ));
        }
        let scored: Vec<usize> = (0..self.scores.len())
            .filter(|&i| self.scores[i].is_finite())
            .collect();
        let kernel = self.metric.kernel();
        Ok((0..nq)
            .into_par_iter()
            .map(|q| {
                let qv = &queries[q * dim..(q + 1) * dim];
                let skip = query_groups.map(|g| g[q]);
                let mut cand: Vec<(f32, usize)> = scored
                    .iter()
                    .filter(|&&i| match (skip, self.groups) {
                        (Some(s), Some(g)) => g[i] != s,
                        _ => true,
                    })
                    .map(|&i| (kernel(qv, &self.vectors[i * dim..(i + 1) * dim]), i))
                    .collect();
                let order =
                    |a: &(f32, usize), b: &(f32, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
                let kk = k.min(cand.len());
                if kk < cand.len() {
                    cand.select_nth_unstable_by(kk, order);
                    cand.truncate(kk);
                }
                cand.sort_by(order);
                let pairs: Vec<(f32, f32)> =
                    cand.iter().map(|&(d, i)| (d, self.scores[i])).collect();
                Prediction {
                    score: weighted_mean(&pairs),
                    neighbours: cand.into_iter().map(|(d, i)| (i, d)).collect(),
                }
            })
            .collect())
    }

    /// Leave-one-out predictions: each item's score from the `k` nearest
    /// other scored items of other subjects. `NaN` for items without a
    /// score or without scored neighbours.
    pub fn predict_leave_one_out(&self, k: usize) -> Result<Vec<f32>> {
        let groups: Vec<usize>;
        let groups = match self.groups {
            Some(g) => g,
            None => {
                groups = (0..self.scores.len()).collect();
                &groups
            }
        };
        let set = ScoredSet {
            groups: Some(groups),
            ..*self
        };
        Ok(set
            .predict(self.vectors, Some(groups), k)?
            .into_iter()
            .zip(self.scores)
            .map(|(p, s)| if s.is_finite() { p.score } else { f32::NAN })
            .collect())
    }
}

/// Error and agreement of predictions with the true scores.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoreMetrics {
    /// Pairs that were scored (both finite).
    pub n: usize,
    /// Mean absolute error.
    pub mae: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Pearson correlation (`NaN`, written `null`, when either side is constant).
    pub pearson: f64,
    /// Spearman rank correlation (ties get their mean rank).
    pub spearman: f64,
}

impl ScoreMetrics {
    /// Metrics over the pairs where both values are finite.
    pub fn of(truth: &[f32], pred: &[f32]) -> Self {
        let (t, p): (Vec<f64>, Vec<f64>) = truth
            .iter()
            .zip(pred)
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|(&a, &b)| (f64::from(a), f64::from(b)))
            .unzip();
        let n = t.len();
        if n == 0 {
            return ScoreMetrics {
                n,
                mae: f64::NAN,
                rmse: f64::NAN,
                pearson: f64::NAN,
                spearman: f64::NAN,
            };
        }
        let mae = t.iter().zip(&p).map(|(a, b)| (a - b).abs()).sum::<f64>() / n as f64;
        let mse = t.iter().zip(&p).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / n as f64;
        ScoreMetrics {
            n,
            mae,
            rmse: mse.sqrt(),
            pearson: pearson(&t, &p),
            spearman: pearson(&ranks(&t), &ranks(&p)),
        }
    }
}

/// Pearson correlation; `NaN` when either side has no variance.
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return f64::NAN;
    }
    let ma = a[..n].iter().sum::<f64>() / n as f64;
    let mb = b[..n].iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a[..n].iter().zip(&b[..n]) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    // Relative tolerance: a "constant" column with rounding noise.
    if saa <= 1e-24 * n as f64 || sbb <= 1e-24 * n as f64 {
        return f64::NAN;
    }
    sab / (saa * sbb).sqrt()
}

/// Ranks from 1, ties sharing their mean rank.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &o in &order[i..=j] {
            r[o] = mean;
        }
        i = j + 1;
    }
    r
}

/// The predictions and both baselines, measured on one group of items.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreRow {
    /// The K-nearest-neighbour prediction.
    pub knn: ScoreMetrics,
    /// Every item predicted as the mean score of all scored items.
    pub global_mean: ScoreMetrics,
    /// Every item predicted as the mean score of its label's items.
    pub label_mean: ScoreMetrics,
}

/// One label's row of the score report.
#[derive(Debug, Clone, Serialize)]
pub struct LabelScores {
    pub label: i64,
    pub class: Option<String>,
    #[serde(flatten)]
    pub scores: ScoreRow,
}

/// What `likeness eval --score` measured (`eval.json` key `score`).
#[derive(Debug, Clone, Serialize)]
pub struct ScoreReport {
    /// K of the prediction.
    pub k: usize,
    /// How a prediction is made, in words.
    pub weighting: String,
    /// Items with a score (the others are neither predicted nor neighbours).
    pub scored: usize,
    /// Overall.
    #[serde(flatten)]
    pub overall: ScoreRow,
    /// Per label.
    pub per_label: Vec<LabelScores>,
    /// `[true, predicted]` per scored item, for the scatter plot.
    #[serde(skip)]
    pub pairs: Vec<(f32, f32)>,
}

/// Leave-one-out score prediction over a whole labelled set and its report.
/// `labels` may be empty (no per-label rows, and the label-mean baseline is
/// the global mean).
pub fn evaluate_scores(
    set: &ScoredSet<'_>,
    labels: &[i64],
    classes: &[String],
    k: usize,
) -> Result<ScoreReport> {
    let scores = set.scores;
    let scored = scores.iter().filter(|s| s.is_finite()).count();
    if scored < 2 {
        return Err(Error::InvalidInput(format!(
            "{scored} items have a score; score prediction needs at least 2 (a `score` column in the manifest)"
        )));
    }
    let pred = set.predict_leave_one_out(k)?;
    let labels: Vec<i64> = if labels.len() == scores.len() {
        labels.to_vec()
    } else {
        vec![0; scores.len()]
    };
    let global = mean(scores.iter().copied());
    let mut label_means: HashMap<i64, f32> = HashMap::new();
    for &l in &labels {
        label_means.entry(l).or_insert_with(|| {
            mean(
                scores
                    .iter()
                    .zip(&labels)
                    .filter(|(_, &m)| m == l)
                    .map(|(&s, _)| s),
            )
        });
    }
    let gm = vec![global; scores.len()];
    let lm: Vec<f32> = labels.iter().map(|l| label_means[l]).collect();
    let row = |keep: &dyn Fn(usize) -> bool| {
        let pick = |v: &[f32]| -> Vec<f32> {
            (0..v.len())
                .filter(|&i| keep(i))
                .map(|i| v[i])
                .collect::<Vec<_>>()
        };
        let t = pick(scores);
        ScoreRow {
            knn: ScoreMetrics::of(&t, &pick(&pred)),
            global_mean: ScoreMetrics::of(&t, &pick(&gm)),
            label_mean: ScoreMetrics::of(&t, &pick(&lm)),
        }
    };
    let mut distinct: Vec<i64> = labels.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let per_label = distinct
        .iter()
        .filter(|&&l| {
            labels
                .iter()
                .zip(scores)
                .any(|(&m, s)| m == l && s.is_finite())
        })
        .map(|&l| LabelScores {
            label: l,
            class: crate::manifest::class_name(classes, l).map(str::to_owned),
            scores: row(&|i| labels[i] == l),
        })
        .collect();
    Ok(ScoreReport {
        k,
        weighting: "mean of the K nearest scored items of other subjects, weighted by 1/distance"
            .into(),
        scored,
        overall: row(&|_| true),
        per_label,
        pairs: scores
            .iter()
            .zip(&pred)
            .filter(|(s, p)| s.is_finite() && p.is_finite())
            .map(|(&s, &p)| (s, p))
            .collect(),
    })
}

/// The predicted score of a query from its hits (those with a score), as
/// `query` and `serve` show it: the same 1/distance-weighted mean.
pub fn predict_from_hits(hits: &[crate::Hit]) -> Option<f32> {
    let pairs: Vec<(f32, f32)> = hits
        .iter()
        .filter_map(|h| h.score.map(|s| (h.distance.max(0.0), s)))
        .collect();
    Some(weighted_mean(&pairs)).filter(|v| v.is_finite())
}

/// Leave-one-out score prediction over the items of an open index, with its
/// recorded scores, subjects (left out of their own predictions) and labels.
pub fn evaluate_index_scores(index: &crate::Index, k: usize) -> Result<ScoreReport> {
    let scores = index.scores().ok_or_else(|| {
        Error::InvalidInput(format!(
            "{} has no scores; index a manifest with a `score` column (a header row `path,label,score,...`)",
            index.dir().display()
        ))
    })?;
    let pairings = index.pairings()?;
    let groups = subject_groups(
        (0..index.len()).map(|i| pairings.get(i).and_then(|p| p.subject.as_deref())),
    );
    let set = ScoredSet {
        vectors: index.vectors(),
        scores,
        groups: Some(&groups),
        dim: index.dim(),
        metric: index.metric(),
    };
    evaluate_scores(
        &set,
        index.labels().unwrap_or(&[]),
        &index.manifest().classes,
        k,
    )
}

/// Mean of the finite values (`NaN` when there are none).
fn mean(v: impl Iterator<Item = f32>) -> f32 {
    let (mut s, mut n) = (0f64, 0usize);
    for x in v.filter(|x| x.is_finite()) {
        s += f64::from(x);
        n += 1;
    }
    if n == 0 {
        f32::NAN
    } else {
        (s / n as f64) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_share_ties() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn groups_follow_subjects() {
        let g = subject_groups([Some("a"), None, Some("b"), Some("a"), None]);
        assert_eq!(g[0], g[3]);
        assert_ne!(g[0], g[2]);
        assert_ne!(g[1], g[4]);
        assert_ne!(g[1], g[0]);
    }

    #[test]
    fn weights_are_inverse_distance() {
        // 1/1 · 0 + 1/3 · 1 over 1 + 1/3 = 0.25
        assert!((weighted_mean(&[(1.0, 0.0), (3.0, 1.0)]) - 0.25).abs() < 1e-6);
        assert!(weighted_mean(&[]).is_nan());
    }

    /// Four points on a line, squared Euclidean distance, K = 2; the
    /// predictions worked out by hand in the comments.
    #[test]
    fn hand_computed_leave_one_out() {
        let x = [0.0f32, 1.0, 3.0, 7.0];
        let s = [0.0f32, 1.0, 2.0, 4.0];
        let set = ScoredSet {
            vectors: &x,
            scores: &s,
            groups: None,
            dim: 1,
            metric: Metric::L2,
        };
        let p = set.predict_leave_one_out(2).unwrap();
        // 0: (1·1 + 2/9)/(1 + 1/9) = 1.1; 1: (0 + 2/4)/(1 + 1/4) = 0.4;
        // 2: (1/4)/(1/4 + 1/9) = 9/13; 3: (2/16 + 1/36)/(1/16 + 1/36) = 22/13.
        let want = [1.1, 0.4, 9.0 / 13.0, 22.0 / 13.0];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{p:?}");
        }
        let r = evaluate_scores(&set, &[], &[], 2).unwrap();
        // |errors| 1.1, 0.6, 17/13, 30/13; ranks of p (3,1,2,4): ρ = 1 - 6·6/60.
        assert!((r.overall.knn.mae - (1.7 + 47.0 / 13.0) / 4.0).abs() < 1e-5);
        assert!((r.overall.knn.spearman - 0.4).abs() < 1e-9);
        // The global mean 1.75: |errors| 1.75, 0.75, 0.25, 2.25.
        assert!((r.overall.global_mean.mae - 1.25).abs() < 1e-6);
        assert!(r.overall.global_mean.spearman.is_nan());

        // Items 0 and 1 are one subject: neither predicts the other.
        let g = subject_groups([Some("a"), Some("a"), Some("c"), Some("d")]);
        let set = ScoredSet {
            groups: Some(&g),
            ..set
        };
        let r = evaluate_scores(&set, &[], &[], 2).unwrap();
        // 0: (2/9 + 4/49)/(1/9 + 1/49) = 134/58; 1: (2/4 + 4/36)/(1/4 + 1/36) = 2.2.
        let errors = 134.0 / 58.0 + 1.2 + 17.0 / 13.0 + 30.0 / 13.0;
        assert!((r.overall.knn.mae - errors / 4.0).abs() < 1e-5);
        // Ranks of p (4,3,1,2): Σd² = 18, ρ = 1 - 108/60.
        assert!((r.overall.knn.spearman + 0.8).abs() < 1e-9);
    }

    #[test]
    fn side_parses() {
        assert_eq!("LEFT".parse::<Side>(), Ok(Side::Left));
        assert!("up".parse::<Side>().is_err());
    }
}
