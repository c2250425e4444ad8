//! The report of `likeness eval` (`eval.json`), computed from an open index
//! with labels: label metrics by exact search ([`crate::metrics`]) and the
//! graph's agreement with exact search. The CLI (after embedding any query
//! images) and the Python `likeness.evaluate` both call [`evaluate_index`],
//! so their keys and values are the same.

use std::borrow::Cow;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::index::Index;
use crate::knn::{KnnQuery, MAX_K};
use crate::metrics;

/// What `likeness eval` measured (`eval.json`).
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The index directory, as it was opened.
    pub index: String,
    /// `leave-one-out` or `query-vs-gallery`.
    pub protocol: String,
    /// Queries that scored (the lone ones left out).
    pub queries: usize,
    /// Items in the index.
    pub gallery: usize,
    /// The K of Recall@K.
    pub ks: Vec<usize>,
    /// `recall@K` for each K, `precision@1`, `r_precision`, `map@r`, `ann_recall@K`.
    #[serde(flatten)]
    pub scores: serde_json::Map<String, serde_json::Value>,
    /// Queries without another item of their label.
    pub lone_queries: usize,
    /// One object per label: `label`, `class`, `r`, `queries` and the scores.
    pub per_class: Vec<serde_json::Value>,
    /// The beam width the ANN agreement check used.
    pub ef: usize,
    /// Seconds the evaluation took.
    pub seconds: f64,
    /// Score prediction from neighbours (`likeness eval --score`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<crate::score::ScoreReport>,
    /// `score.knn.mae`, at the top level for scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_mae: Option<f64>,
    /// `score.knn.spearman`, at the top level for scripts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_spearman: Option<f64>,
}

impl EvalReport {
    /// Adds the score report (and its top-level summary keys).
    pub fn with_score(mut self, score: crate::score::ScoreReport) -> Self {
        self.score_mae = Some(score.overall.knn.mae);
        self.score_spearman = Some(score.overall.knn.spearman);
        self.score = Some(score);
        self
    }
}

/// Evaluates `index` (which must have labels): leave-one-out over its items
/// when `queries` is `None`, else the labelled query vectors
/// `(row-major vectors, labels)` against the index. `ks` are the K of
/// Recall@K; `ef` is the beam width of the ANN agreement check (raised to
/// the search depth).
pub fn evaluate_index(
    index: &Index,
    queries: Option<(&[f32], &[i64])>,
    ks: &[usize],
    ef: usize,
) -> Result<EvalReport> {
    let start = Instant::now();
    if ks.is_empty() || ks.contains(&0) {
        return Err(Error::InvalidInput(
            "the K values of Recall@K must be positive, e.g. 1,2,4,8".into(),
        ));
    }
    let labels = index.labels().ok_or_else(|| {
        Error::InvalidInput(format!(
            "{} has no labels; evaluation needs an index built with labels (`likeness index`, or `build --labels`)",
            index.dir().display()
        ))
    })?;
    let dim = index.dim();
    let metric = index.metric();
    // The live items: with changes, the files' rows and the logged ones,
    // the deleted left out (neither queries nor gallery).
    let live = index.snapshot();
    let changed = live.tail_len() > 0 || !live.deleted.is_empty();
    let (gallery, labels, ids): (Cow<'_, [f32]>, Cow<'_, [i64]>, Vec<usize>) = if changed {
        let ids: Vec<usize> = (0..live.len())
            .filter(|&i| !live.deleted.contains(i))
            .collect();
        let mut v = Vec::with_capacity(ids.len() * dim);
        let mut l = Vec::with_capacity(ids.len());
        let tail_labels = live.tail_labels.as_deref().unwrap_or_default();
        for &i in &ids {
            match index.vector(i) {
                Some(row) => v.extend_from_slice(row),
                None => v.extend_from_slice(live.tail_vector(i).unwrap_or_default()),
            }
            l.push(
                labels
                    .get(i)
                    .or_else(|| tail_labels.get(i - live.base))
                    .copied()
                    .unwrap_or(-1),
            );
        }
        (Cow::Owned(v), Cow::Owned(l), ids)
    } else {
        (
            Cow::Borrowed(index.vectors()),
            Cow::Borrowed(labels),
            (0..index.len()).collect(),
        )
    };
    let kmax = ks.iter().copied().max().unwrap_or(1);
    // The graph's agreement with exact search, at K = the largest K of
    // Recall@K; a request asks for at most `MAX_K` (the label metrics above
    // rank whole classes by their own exact scan and need no request).
    let kmax = kmax.min(MAX_K);
    let (m, ann, protocol, ef) = match queries {
        None => {
            let m = metrics::evaluate(&gallery, &labels, None, dim, metric, ks)?;
            // ANN agreement: every item's graph neighbours (itself left out) vs exact.
            let n = ids.len();
            let k = kmax.min(n.saturating_sub(1)).max(1);
            let q = KnnQuery::new(&gallery).k(k).ef(ef).exclude(Some(&ids));
            let (approx, _) = index.query(&q)?;
            let (exact, _) = index.query(&q.exact(true))?;
            let ann = metrics::ann_recall(&approx, &exact, k)?;
            (m, (k, ann), "leave-one-out", q.beam(index))
        }
        Some((qv, ql)) => {
            let mut qn = qv.to_vec();
            metric.preprocess(&mut qn, dim)?;
            let m = metrics::evaluate(&gallery, &labels, Some((&qn, ql)), dim, metric, ks)?;
            let k = kmax.min(ids.len());
            let q = KnnQuery::new(qv).dim(dim).k(k).ef(ef.max(k));
            let (approx, _) = index.query(&q)?;
            let (exact, _) = index.query(&q.exact(true))?;
            let ann = metrics::ann_recall(&approx, &exact, k)?;
            (m, (k, ann), "query-vs-gallery", ef.max(k))
        }
    };
    let mut scores = serde_json::Map::new();
    for &(k, r) in &m.overall.recall_at_k {
        scores.insert(format!("recall@{k}"), r.into());
    }
    scores.insert("precision@1".into(), m.overall.precision_at_1.into());
    scores.insert("r_precision".into(), m.overall.r_precision.into());
    scores.insert("map@r".into(), m.overall.map_at_r.into());
    scores.insert(format!("ann_recall@{}", ann.0), ann.1.into());
    let per_class = m
        .per_class
        .iter()
        .map(|c| {
            let mut v = serde_json::json!({
                "label": c.label,
                "class": index.manifest().class_name(c.label),
                "r": c.r,
                "queries": c.scores.queries,
                "precision@1": c.scores.precision_at_1,
                "r_precision": c.scores.r_precision,
                "map@r": c.scores.map_at_r,
            });
            for &(k, r) in &c.scores.recall_at_k {
                v[format!("recall@{k}")] = r.into();
            }
            v
        })
        .collect();
    Ok(EvalReport {
        index: index.dir().display().to_string(),
        protocol: protocol.into(),
        queries: m.overall.queries,
        gallery: ids.len(),
        ks: ks.to_vec(),
        scores,
        lone_queries: m.lone_queries,
        per_class,
        ef,
        seconds: start.elapsed().as_secs_f64(),
        score: None,
        score_mae: None,
        score_spearman: None,
    })
}
