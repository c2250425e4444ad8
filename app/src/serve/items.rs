//! The page's item endpoints: pages of the gallery and "more like this".
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /items?offset=0&limit=60&label=L` | `{"total", "offset", "limit", "items": [{"id", "label", "class", "path", "region"}]}` (and each item's `"score"` when the index has scores, `"subject"` and `"side"` where it records them) |
//! | `GET /search/item/{id}?k=10&ef=64&labels=1,2` | `{"query": {item}, "hits": [...], "took_ms"}`: the search of `likeness query --id` (the item itself left out), with `predicted_score` as every search when the index has scores |
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{default_ef, default_k, hits_body, item_view, ApiError, ApiResult, AppState, Loaded};
use likeness_index::KnnQuery;

/// Most items in one `/items` page.
pub const MAX_PAGE: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    #[serde(default)]
    offset: usize,
    #[serde(default = "default_limit")]
    limit: usize,
    /// An integer label or a class name.
    label: Option<String>,
}

fn default_limit() -> usize {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ItemSearchParams {
    #[serde(default = "default_k")]
    k: usize,
    #[serde(default = "default_ef")]
    ef: usize,
    /// Comma-separated labels to keep.
    labels: Option<String>,
}

fn query_params<T>(p: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    p.map(|Query(p)| p).map_err(super::query_error)
}

/// `id` as a live item of `l`, or 404 naming the range (or saying it was
/// deleted).
pub(super) fn item_id(l: &Loaded, id: &str) -> Result<usize, ApiError> {
    let n = l.index.len();
    let i = id.parse::<usize>().ok().filter(|&i| i < n).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no item `{id}`: the index holds items 0..{n}"),
        )
    })?;
    if l.index.is_deleted(i) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("item {i} was deleted"),
        ));
    }
    Ok(i)
}

pub(super) async fn list(
    State(st): State<Arc<AppState>>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult {
    let p = query_params(params)?;
    if !(1..=MAX_PAGE).contains(&p.limit) {
        return Err(ApiError::bad(format!(
            "limit = {} is out of range 1..={MAX_PAGE}",
            p.limit
        )));
    }
    let l = st.current();
    let live = l.index.snapshot();
    if p.label.is_some() && l.index.labels().is_none() {
        return Err(ApiError::bad("this index has no labels to filter by"));
    }
    let label = p
        .label
        .as_deref()
        .map(|t| super::filter::resolve(&super::LabelName::parse(t), &l))
        .transpose()?;
    // Live items only (deleted ones are never shown), in id order.
    let (total, ids): (usize, Vec<usize>) = match label {
        None if live.deleted.is_empty() => {
            let n = live.len();
            (
                n,
                (p.offset.min(n)..p.offset.saturating_add(p.limit).min(n)).collect(),
            )
        }
        want => {
            let mut total = 0;
            let mut ids = Vec::new();
            for i in (0..live.len()).filter(|&i| !live.deleted.contains(i)) {
                if want.is_none_or(|w| l.index.label_of(i) == Some(w)) {
                    if total >= p.offset && ids.len() < p.limit {
                        ids.push(i);
                    }
                    total += 1;
                }
            }
            (total, ids)
        }
    };
    let items: Vec<Value> = ids.iter().map(|&i| json!(item_view(&l, i))).collect();
    Ok(
        Json(json!({ "total": total, "offset": p.offset, "limit": p.limit, "items": items }))
            .into_response(),
    )
}

/// `labels=1,4` or `labels=eye,brow`: integers or class names, resolved
/// against the index by `filter`.
pub(super) fn parse_labels(s: &str) -> Result<Vec<super::LabelName>, ApiError> {
    Ok(s.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(super::LabelName::parse)
        .collect())
}

pub(super) async fn search_item(
    State(st): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
    params: Result<Query<ItemSearchParams>, QueryRejection>,
) -> ApiResult {
    let start = Instant::now();
    let p = query_params(params)?;
    let only = p.labels.as_deref().map(parse_labels).transpose()?;
    let out = st
        .on_pool(move |st| -> Result<Value, ApiError> {
            let l = st.current();
            let id = item_id(&l, &id)?;
            let filter = super::filter(&l, only, None)?;
            let v = l
                .index
                .item_vector(id)
                .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, e.to_string()))?;
            // As `likeness query --id`: the item itself left out.
            let exclude = [id];
            let q = KnnQuery::new(&v)
                .k(p.k)
                .ef(p.ef)
                .filter(filter.as_ref())
                .exclude(Some(&exclude));
            let (found, _plan) = super::run_query(st, &l, &q)?;
            let mut body = hits_body(&l, &found, 0);
            body["query"] = json!(item_view(&l, id));
            Ok(body)
        })
        .await??;
    Ok(super::finish(&st, start, out, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_lists_are_integers_or_class_names() {
        use super::super::LabelName::{Int, Name};
        assert_eq!(parse_labels("1, 4,").unwrap(), vec![Int(1), Int(4)]);
        assert_eq!(
            parse_labels("1,eye").unwrap(),
            vec![Int(1), Name("eye".into())]
        );
    }
}
