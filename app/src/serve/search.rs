//! The search routes: `POST /search` (one vector), `/search/batch` (many)
//! and `/search/image` (an image's bytes, embedded with the model; a whole
//! photo of faces gets its regions graded, `faces.rs`), each one
//! `KnnQuery` through [`run_query`], and the JSON of their hits
//! ([`hits_body`]), which `/search/item/{id}` (`items.rs`) shares.
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use likeness_index::postings::PlanKind;
use likeness_index::{KnnQuery, Neighbours, Plan, DEFAULT_EF, DEFAULT_K};

use super::{
    body_error, faces, filter, items, parse_json, query_error, ApiError, ApiResult, AppState,
    LabelName, Loaded, MAX_BATCH, MAX_BATCH_HITS,
};
use crate::embedder::embed_encoded;
use crate::face;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchRequest {
    vector: Vec<f32>,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default = "default_ef")]
    ef: usize,
    #[serde(default)]
    labels: Option<Vec<LabelName>>,
    #[serde(default)]
    exclude_labels: Option<Vec<LabelName>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BatchRequest {
    vectors: Vec<Vec<f32>>,
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default = "default_ef")]
    ef: usize,
    #[serde(default)]
    labels: Option<Vec<LabelName>>,
    #[serde(default)]
    exclude_labels: Option<Vec<LabelName>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImageParams {
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default = "default_ef")]
    ef: usize,
    region: Option<String>,
    /// Comma-separated labels: results only from these classes.
    labels: Option<String>,
}

// serde's `default =` takes a function path.
pub(super) fn default_k() -> usize {
    DEFAULT_K
}
pub(super) fn default_ef() -> usize {
    DEFAULT_EF
}

pub(super) async fn search(
    State(st): State<Arc<AppState>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let start = Instant::now();
    let req: SearchRequest = parse_json(body)?;
    let out = st
        .on_pool(
            move |st| -> std::result::Result<serde_json::Value, ApiError> {
                let l = st.current();
                let f = filter(&l, req.labels, req.exclude_labels)?;
                let q = KnnQuery::new(&req.vector)
                    .k(req.k)
                    .ef(req.ef)
                    .filter(f.as_ref());
                let (found, plan) = run_query(st, &l, &q)?;
                let mut body = hits_body(&l, &found, 0);
                body["plan"] = json!(plan);
                Ok(body)
            },
        )
        .await??;
    Ok(finish(&st, start, out, 1))
}

/// A search through the engine's one entry point (it checks the request),
/// counted by the plan that ran for `/stats`.
pub(super) fn run_query(
    st: &AppState,
    l: &Loaded,
    q: &KnnQuery<'_>,
) -> std::result::Result<(Neighbours, Plan), ApiError> {
    let (found, plan) = l.index.query(q)?;
    let slot = match plan.kind {
        PlanKind::Graph => 0,
        PlanKind::FilteredGraph => 1,
        PlanKind::Exact => 2,
    };
    st.plans[slot].fetch_add(found.queries() as u64, Ordering::Relaxed);
    Ok((found, plan))
}

pub(super) fn finish(
    st: &AppState,
    start: Instant,
    mut out: serde_json::Value,
    queries: u64,
) -> Response {
    let took = start.elapsed().as_secs_f64();
    st.queries.fetch_add(queries, Ordering::Relaxed);
    st.latencies.record(took);
    out["took_ms"] = json!(took * 1e3);
    Json(out).into_response()
}

pub(super) async fn search_batch(
    State(st): State<Arc<AppState>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let start = Instant::now();
    let req: BatchRequest = parse_json(body)?;
    if req.vectors.is_empty() || req.vectors.len() > MAX_BATCH {
        return Err(ApiError::bad(format!(
            "vectors must hold 1..={MAX_BATCH} vectors, got {}",
            req.vectors.len()
        )));
    }
    let hits = req.vectors.len().saturating_mul(req.k);
    if hits > MAX_BATCH_HITS {
        return Err(ApiError::bad(format!(
            "{} vectors × k = {} is {hits} hits, over {MAX_BATCH_HITS} for one batch: \
             send fewer vectors at a time, or a smaller k",
            req.vectors.len(),
            req.k
        )));
    }
    let n = req.vectors.len() as u64;
    let out = st
        .on_pool(
            move |st| -> std::result::Result<serde_json::Value, ApiError> {
                let l = st.current();
                let dim = l.index.dim();
                if let Some((i, v)) = req.vectors.iter().enumerate().find(|(_, v)| v.len() != dim) {
                    return Err(ApiError::bad(format!(
                        "vectors[{i}] has {} values but the index has dimension {dim}",
                        v.len()
                    )));
                }
                let flat: Vec<f32> = req.vectors.concat();
                let f = filter(&l, req.labels, req.exclude_labels)?;
                let q = KnnQuery::new(&flat)
                    .dim(dim)
                    .k(req.k)
                    .ef(req.ef)
                    .filter(f.as_ref());
                // One call: the rows run in parallel on this search pool.
                let (found, plan) = run_query(st, &l, &q)?;
                let results: Vec<_> = (0..found.queries())
                    .map(|r| hits_body(&l, &found, r))
                    .collect();
                Ok(json!({ "results": results, "plan": plan }))
            },
        )
        .await??;
    Ok(finish(&st, start, out, n))
}

pub(super) fn parse_region(s: &str) -> std::result::Result<[u32; 4], ApiError> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let bad = || {
        ApiError::bad(format!(
            "region `{s}` must be x,y,w,h (non-negative integers, w and h >= 1)"
        ))
    };
    if parts.len() != 4 {
        return Err(bad());
    }
    let mut v = [0u32; 4];
    for (slot, p) in v.iter_mut().zip(parts) {
        *slot = p.parse().map_err(|_| bad())?;
    }
    if v[2] == 0 || v[3] == 0 {
        return Err(bad());
    }
    Ok(v)
}

pub(super) async fn search_image(
    State(st): State<Arc<AppState>>,
    params: std::result::Result<Query<ImageParams>, axum::extract::rejection::QueryRejection>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> ApiResult {
    let start = Instant::now();
    let Query(p) = params.map_err(query_error)?;
    let body = body.map_err(body_error)?;
    let region = p.region.as_deref().map(parse_region).transpose()?;
    let only = p.labels.as_deref().map(items::parse_labels).transpose()?;
    let Some(embedder) = st.embedder.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "this server has no model: start it with --model (or from an index made by `likeness index`) to search by image",
        ));
    };
    if body.is_empty() {
        return Err(ApiError::bad("empty body: send the image bytes"));
    }
    // A bad request is refused before the image costs a forward pass.
    let f = {
        let l = st.current();
        let f = filter(&l, only, None)?;
        KnnQuery::new(&[])
            .dim(l.index.dim())
            .k(p.k)
            .ef(p.ef)
            .filter(f.as_ref())
            .validate(&l.index)?;
        f
    };
    // A whole photo's faces, where the read-out learnt facial regions, are
    // graded instead of the photo (`face::grade_photo`, as `query --image`).
    let faces = match (&region, &st.faces) {
        (None, Ok(finder)) => faces::grader(&st).map(|(_, card)| (Arc::clone(finder), card)),
        _ => None,
    };
    // Where that read-out cannot look for faces, the photo is graded whole
    // and the answer says why (`note`, as `query --image` prints it).
    let unfound = match (&region, &st.faces) {
        (None, Err(e)) => faces::grader(&st)
            .and_then(|(_, card)| face::graded_face_labels(&card))
            .map(|labels| {
                format!(
                    "the read-out learnt {} regions, but faces cannot be found to grade them \
                     ({e}); query a region with region=x,y,w,h",
                    labels.join(", ")
                )
            }),
        _ => None,
    };
    // Batched: the batcher embeds it; otherwise the search thread does.
    let (batched, body) = match &st.batcher {
        Some(b) => (
            Some(b.submit(body, region).await.map_err(ApiError::bad)?),
            Bytes::new(),
        ),
        None => (None, body),
    };
    let out = st
        .on_pool(
            move |st| -> std::result::Result<serde_json::Value, ApiError> {
                let e = match batched {
                    Some(e) => e,
                    None => embed_encoded(embedder.as_ref(), &[(&body, region)], &st.limits)
                        .remove(0)
                        .map_err(ApiError::bad)?,
                };
                let l = st.current();
                let q = KnnQuery::new(&e.vector).k(p.k).ef(p.ef).filter(f.as_ref());
                let (found, plan) = run_query(st, &l, &q)?;
                let mut body = hits_body(&l, &found, 0);
                body["plan"] = json!(plan);
                let graded = match &faces {
                    Some((finder, card)) => {
                        faces::grade_photo(finder, embedder.as_ref(), card, &e.image)?
                    }
                    None => None,
                };
                match graded {
                    // Neither the photo's read-out nor its neighbours'
                    // score grades anything the read-out learnt.
                    Some(faces) => {
                        body["faces"] = faces;
                        if let Some(b) = body.as_object_mut() {
                            b.remove("predicted_score");
                        }
                    }
                    // A model trained from grades grades the query image
                    // itself (a region, or a crop holding no face).
                    None => {
                        if let Some(g) = e.grade {
                            body["readout_score"] = json!(g);
                        }
                        let note = faces
                            .as_ref()
                            .and_then(|(_, card)| face::graded_face_labels(card))
                            .map(|labels| no_face_note(&labels))
                            .or(unfound);
                        if let Some(note) = note {
                            body["note"] = json!(note);
                        }
                    }
                }
                Ok(body)
            },
        )
        .await??;
    Ok(finish(&st, start, out, 1))
}

/// Why a whole photo was graded as one crop, where the read-out learnt
/// facial regions (`labels`) and no face was found: a photo of dogs, or a
/// face under the detector's smallest, was graded whole (-0.12) with no
/// word of why (`query --image` prints the same note).
fn no_face_note(labels: &[String]) -> String {
    format!(
        "no face found: graded whole, as one crop of what the read-out learnt ({}); for a \
         photo, query a region of it with region=x,y,w,h (`likeness regions --min-face` finds \
         faces under {} px)",
        labels.join(", "),
        face::DEFAULT_MIN_FACE
    )
}

/// The answer to one query: its hits and, when the index has scores, the
/// score predicted from them (`predicted_score`, the 1/distance-weighted
/// mean of the hits' scores).
pub(super) fn hits_body(
    l: &Loaded,
    found: &likeness_index::Neighbours,
    q: usize,
) -> serde_json::Value {
    let index = &l.index;
    // Each hit names its item's `subject` and `side` where the index
    // records them (the engine's fields, from the pairings decoded on load).
    let hits = index.hits(Some(&l.items), Some(&l.pairings), found, q);
    let mut body = json!({ "hits": hits });
    if index.scores().is_some() {
        body["predicted_score"] = json!(likeness_index::score::predict_from_hits(&hits));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_parse_or_are_refused() {
        assert_eq!(parse_region("1, 2,3,4").unwrap(), [1, 2, 3, 4]);
        for bad in ["1,2,3", "1,2,0,4", "a,b,c,d", "-1,2,3,4"] {
            assert!(parse_region(bad).is_err(), "{bad}");
        }
    }
}
