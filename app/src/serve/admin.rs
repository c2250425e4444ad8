//! Changes over HTTP, under the admin token: `POST /admin/items` (vectors as
//! JSON, or an image embedded with the index's model), `DELETE
//! /admin/items/{id}`, `POST /admin/items/delete` (a batch) and `POST
//! /admin/compact`.
//!
//! One [`Writer`] for the server's life, opened at the first change (so a
//! server that never writes never takes the index's lock) and used under a
//! mutex on tokio's blocking threads, never the search pool. A change is
//! fsync'd before its answer is sent. Searches never wait for it: a logged
//! change is swapped into the open index's live state in one pointer store
//! ([`likeness_index::live`]), and after a fold the new generation is
//! swapped in whole, as a reload is; a search sees every change answered
//! before it began.
//!
//! Compaction runs in the background, on one thread (the other cores keep
//! searching), when deleted items reach [`COMPACT_DELETED`] of the items
//! the graph (and the log) holds, or on request.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use likeness_index::labels::{item_label, typed_label};
use likeness_index::{Error as IndexError, LabelName, NewItems, Writer};

use super::{body_error, parse_json, parse_region, ApiError, ApiResult, AppState, Loaded};
use crate::embedder::embed_encoded;

/// Fraction of the searched items (the graph's and the log's) that are
/// deleted at which the server compacts on its own ([`deleted_fraction`]).
/// Deleted items still sit in the graph, which searches walk: with 20%
/// deleted, searches ran at 0.79–0.85× the speed of a fresh build of the
/// live items, after `compact` at 1.0× (fashion-mnist-784, one thread;
/// docs/benchmarks.md). Compacting at a fifth keeps them above 0.8×.
pub const COMPACT_DELETED: f64 = 0.2;

/// Most rows one `POST /admin/items` may add.
const MAX_ADD: usize = 100_000;

/// A label as JSON: an integer, or a class name (a new name becomes a new
/// class).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LabelValue {
    Int(i64),
    Name(String),
    /// `?label=` of an image add (not from JSON).
    #[serde(skip)]
    Typed(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddRequest {
    vectors: Vec<Vec<f32>>,
    #[serde(default)]
    labels: Option<Vec<LabelValue>>,
    #[serde(default)]
    scores: Option<Vec<Option<f32>>>,
}

/// Query of an image add: its label, score and region.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AddImageParams {
    label: Option<String>,
    score: Option<f32>,
    region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteRequest {
    ids: Vec<u64>,
}

fn index_error(e: IndexError) -> ApiError {
    match e {
        IndexError::Busy { .. } | IndexError::Replaced { .. } => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        e => e.into(),
    }
}

impl AppState {
    /// Runs `f` with the writer (opened on first use), then publishes what
    /// it changed: a fold's new generation is swapped in whole, also when
    /// the change failed after its commit ([`IndexError::Committed`]).
    fn write<T>(&self, f: impl FnOnce(&mut Writer) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let mut guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            *guard = Some(Writer::open(&self.dir).map_err(index_error)?);
        }
        let w = guard.as_mut().ok_or_else(|| ApiError::bad("no writer"))?;
        let out = f(w);
        let current = self.current();
        if !Arc::ptr_eq(&current.index, w.index()) {
            let fresh = Loaded::of(Arc::clone(w.index())).map_err(ApiError::from)?;
            self.swap(fresh);
        }
        out
    }

    /// Starts a background compaction when deletes passed the threshold and
    /// none is running.
    fn maybe_compact(self: &Arc<Self>) {
        let l = self.current();
        if deleted_fraction(&l.index) < COMPACT_DELETED
            || self.compacting.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            let res = me.write(|w| {
                w.threads(1);
                let r = w.compact().map_err(index_error);
                w.threads(0);
                r
            });
            match res {
                Ok(r) => eprintln!(
                    "likeness serve: compacted in the background: {}, generation {}, {:.1}s",
                    crate::plural::plural(r.live, "live item"),
                    r.generation,
                    r.seconds
                ),
                Err(e) => eprintln!(
                    "likeness serve: background compaction failed: {}",
                    e.message
                ),
            }
            me.compacting.store(false, Ordering::Release);
        });
    }

    /// Runs a change on a blocking thread.
    async fn change<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Writer) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || me.write(f))
            .await
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "change task failed"))?
    }
}

/// Labels from JSON, class names resolved (new names appended to `classes`).
fn resolve_labels(
    classes: &mut Vec<String>,
    labels: Vec<LabelValue>,
) -> Result<Vec<i64>, ApiError> {
    labels
        .into_iter()
        .map(|l| match l {
            LabelValue::Int(i) => item_label(classes, &LabelName::Int(i)),
            LabelValue::Name(n) => item_label(classes, &LabelName::Name(n)),
            LabelValue::Typed(t) => typed_label(classes, &t),
        })
        .map(|r| r.map_err(ApiError::from))
        .collect()
}

/// `POST /admin/items`: JSON `{"vectors": [[...]], "labels": [..],
/// "scores": [..]}`, or image bytes (`?label=&score=&region=x,y,w,h`)
/// embedded with the server's model. Answers `{"ids": [...]}` once the
/// items are on disk.
pub(super) async fn add(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<AddImageParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (vectors, labels, scores, dim) = if json_body {
        let req: AddRequest = parse_json(body)?;
        let dim = st.current().index.dim();
        if req.vectors.is_empty() || req.vectors.len() > MAX_ADD {
            return Err(ApiError::bad(format!(
                "vectors: give 1..={MAX_ADD} rows, got {}",
                req.vectors.len()
            )));
        }
        if let Some((i, v)) = req.vectors.iter().enumerate().find(|(_, v)| v.len() != dim) {
            return Err(ApiError::bad(format!(
                "vector {i} has {} values; the index's dimension is {dim}",
                v.len()
            )));
        }
        let n = req.vectors.len();
        for (what, len) in [
            ("labels", req.labels.as_ref().map(Vec::len)),
            ("scores", req.scores.as_ref().map(Vec::len)),
        ] {
            if let Some(len) = len.filter(|&l| l != n) {
                return Err(ApiError::bad(format!("{n} vectors but {len} {what}")));
            }
        }
        let scores = req.scores.map(|s| {
            s.into_iter()
                .map(|v| v.unwrap_or(f32::NAN))
                .collect::<Vec<_>>()
        });
        (req.vectors.concat(), req.labels, scores, dim)
    } else {
        let Query(p) = params.map_err(super::query_error)?;
        let body = body.map_err(body_error)?;
        // No image begins with `{`: `curl -d '{"vectors": ...}'` sends
        // JSON as a form, and was answered "cannot decode image".
        if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            let sent = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none");
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "the body is JSON but its Content-Type is {sent}: send it as \
                     Content-Type: application/json (curl: -H 'Content-Type: application/json')"
                ),
            ));
        }
        let Some(embedder) = st.embedder.clone() else {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "this server has no model to embed images: send vectors as JSON (Content-Type: application/json), or start it with the index's model",
            ));
        };
        if body.is_empty() {
            return Err(ApiError::bad(
                "empty body: send the image bytes, or JSON vectors",
            ));
        }
        let region = p.region.as_deref().map(parse_region).transpose()?;
        let limits = st.limits;
        let v = tokio::task::spawn_blocking(move || {
            embed_encoded(embedder.as_ref(), &[(&body, region)], &limits)
                .remove(0)
                .map(|e| e.vector)
        })
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "embedding failed"))?
        .map_err(ApiError::bad)?;
        let dim = v.len();
        // What a person types: a name, else a class number (as JSON's
        // integers), else a new name.
        let labels = p.label.map(|l| vec![LabelValue::Typed(l)]);
        (v, labels, p.score.map(|s| vec![s]), dim)
    };
    let n = vectors.len() / dim.max(1);
    let st2 = Arc::clone(&st);
    let (ids, generation, logged) = st
        .change(move |w| {
            let mut classes = w.index().manifest().classes.clone();
            let before = classes.len();
            let labels = labels
                .map(|l| resolve_labels(&mut classes, l))
                .transpose()?;
            let new = NewItems {
                vectors: &vectors,
                labels: labels.as_deref(),
                scores: scores.as_deref(),
                items: None,
                classes: (classes.len() > before).then_some(&classes[..]),
            };
            let ids = w.add(&new).map_err(index_error)?;
            let ix = w.index();
            Ok((ids, ix.generation(), ix.len() - ix.base_len()))
        })
        .await?;
    let _ = st2;
    let ids: Vec<u64> = ids.collect();
    debug_assert_eq!(ids.len(), n);
    Ok(
        Json(json!({ "ids": ids, "generation": generation, "logged_items": logged }))
            .into_response(),
    )
}

/// `DELETE /admin/items/{id}`.
pub(super) async fn delete_one(
    State(st): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> ApiResult {
    // An id the index never gave is 404, as on every other route; one
    // deleted before counts as `already_deleted`.
    let n = st.current().index.len();
    let id = id
        .parse::<u64>()
        .ok()
        .filter(|&i| i < n as u64)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no item `{id}`: the index holds items 0..{n}"),
            )
        })?;
    delete_ids(st, vec![id]).await
}

/// `POST /admin/items/delete`: `{"ids": [...]}`.
pub(super) async fn delete_batch(
    State(st): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let req: DeleteRequest = parse_json(body)?;
    delete_ids(st, req.ids).await
}

async fn delete_ids(st: Arc<AppState>, ids: Vec<u64>) -> ApiResult {
    let asked = ids.len();
    let deleted = st
        .change(move |w| w.delete(&ids).map_err(index_error))
        .await?;
    st.maybe_compact();
    Ok(Json(json!({ "deleted": deleted, "already_deleted": asked - deleted })).into_response())
}

/// `POST /admin/compact`: every change folded into one clean graph (waits
/// for it).
pub(super) async fn compact(State(st): State<Arc<AppState>>) -> ApiResult {
    let r = st.change(|w| w.compact().map_err(index_error)).await?;
    Ok(Json(json!(r)).into_response())
}

/// Deleted items still searched past, as a fraction of all the items
/// searches pass over (live ones and those). Not deleted ids over all
/// ids: compaction takes deleted items out of the graph but their ids stay
/// deleted, so that fraction never drops and, once past the threshold,
/// made every later delete compact the whole index again.
fn deleted_fraction(ix: &likeness_index::Index) -> f64 {
    let dead = ix.deleted_in_graph();
    dead as f64 / (ix.live_count() + dead).max(1) as f64
}

/// What `/stats` says of the changes.
pub(super) fn stats(l: &Loaded) -> Value {
    let ix = &l.index;
    let ids = ix.len();
    let logged = ids - ix.base_len();
    json!({
        "generation": ix.generation(),
        // The graph, plus the log's items searched exactly beside it.
        "segments": 1 + usize::from(logged > 0),
        "logged_items": logged,
        "log_records": ix.log_state().0,
        "fold_at": likeness_index::FOLD_AT,
        "deleted": ix.deleted_count(),
        "deleted_in_graph": ix.deleted_in_graph(),
        "deleted_fraction": deleted_fraction(ix),
        "compact_at_deleted_fraction": COMPACT_DELETED,
    })
}
