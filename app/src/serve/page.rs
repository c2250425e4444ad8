//! The page: a single-page application at `GET /` (plain HTML, CSS and ES
//! modules from `serve/assets/`, compiled into the binary, so it works
//! offline and needs no build step), and `GET /info`, the facts it shows.
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /assets/{name}` | its scripts, style and icon (with `ETag`) |
//! | `GET /info` | index manifest summary, model card summary, eval summary, whether image search works (and why not) |
//! | `GET /info/curves.png`, `/info/eval.png`, `/info/score.png` | the model's training curves, the eval bars and the scores' scatter, when they exist |
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::thumbs::{not_modified, Thumbs};
use crate::model_card::{ModelSummary, MODEL_CARD};

use super::{ApiError, ApiResult, AppState};

/// Settings of the page and its endpoints.
#[derive(Clone)]
pub struct PageOptions {
    /// Secret that `/admin/*` requests must send as `Authorization: Bearer`;
    /// required when the address is not loopback.
    pub admin_token: Option<String>,
    /// Folder of `eval.json` / `eval.png` [default: the index folder if it
    /// holds `eval.json`, else `<index>-eval`, where `likeness eval` writes].
    pub eval_dir: Option<PathBuf>,
    /// Model folder whose card and charts `/info` shows [default: the one
    /// recorded in the index].
    pub model_dir: Option<PathBuf>,
    /// Memory for encoded thumbnails, bytes.
    pub thumb_cache_bytes: usize,
    /// The largest source photo a thumbnail is drawn from.
    pub limits: crate::read::DecodeLimits,
}

/// The token is a secret: `{:?}` shows only whether there is one.
impl std::fmt::Debug for PageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageOptions")
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("eval_dir", &self.eval_dir)
            .field("model_dir", &self.model_dir)
            .field("thumb_cache_bytes", &self.thumb_cache_bytes)
            .field("limits", &self.limits)
            .finish()
    }
}

impl Default for PageOptions {
    fn default() -> Self {
        PageOptions {
            admin_token: None,
            eval_dir: None,
            model_dir: None,
            thumb_cache_bytes: 64 << 20,
            limits: crate::read::DecodeLimits::default(),
        }
    }
}

/// What the page's handlers keep between requests.
pub(super) struct PageState {
    opts: PageOptions,
    pub(super) thumbs: Thumbs,
    /// The model's card, read again only when the file changes.
    cards: super::card::CardCache,
}

impl PageState {
    pub(super) fn new(opts: &PageOptions) -> Self {
        PageState {
            opts: opts.clone(),
            thumbs: Thumbs::new(opts.thumb_cache_bytes, opts.limits),
            cards: super::card::CardCache::default(),
        }
    }

    pub(super) fn admin_token(&self) -> Option<&str> {
        self.opts.admin_token.as_deref()
    }
}

/// One embedded file.
struct Asset {
    name: &'static str,
    mime: &'static str,
    bytes: &'static [u8],
}

const INDEX_HTML: &str = include_str!("assets/index.html");

static ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "api.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/api.js"),
    },
    Asset {
        name: "views.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/views.js"),
    },
    Asset {
        name: "query.js",
        mime: "text/javascript; charset=utf-8",
        bytes: include_bytes!("assets/query.js"),
    },
    Asset {
        name: "app.css",
        mime: "text/css; charset=utf-8",
        bytes: include_bytes!("assets/app.css"),
    },
    Asset {
        name: "icon.svg",
        mime: "image/svg+xml",
        bytes: include_bytes!("assets/icon.svg"),
    },
];

/// A strong validator from the bytes (CRC32 and length): the assets are
/// compiled in, so it changes exactly when the binary's copy does.
pub(super) fn etag_of(bytes: &[u8]) -> String {
    format!("\"{:08x}-{:x}\"", crc32fast::hash(bytes), bytes.len())
}

/// `bytes` as `mime` with `ETag` and `Cache-Control`, or 304 when the client
/// holds them. `no-cache` makes the browser revalidate (a 304 on loopback
/// costs well under a millisecond) so a new binary's page is never stale.
pub(super) fn cached_bytes(
    headers: &HeaderMap,
    mime: &'static str,
    etag: &str,
    bytes: axum::body::Bytes,
) -> Response {
    let tag = HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let cache = HeaderValue::from_static("no-cache");
    if not_modified(headers, etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, tag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
            (header::ETAG, tag),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response()
}

pub(super) async fn index_html(headers: HeaderMap) -> Response {
    let bytes = INDEX_HTML.as_bytes();
    cached_bytes(
        &headers,
        "text/html; charset=utf-8",
        &etag_of(bytes),
        axum::body::Bytes::from_static(bytes),
    )
}

pub(super) async fn asset(headers: HeaderMap, UrlPath(name): UrlPath<String>) -> ApiResult {
    let a = ASSETS
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no asset `{name}`")))?;
    Ok(cached_bytes(
        &headers,
        a.mime,
        &etag_of(a.bytes),
        axum::body::Bytes::from_static(a.bytes),
    ))
}

/// Reads a small JSON file; `None` when it is missing or does not parse (the
/// page then leaves that part out).
fn read_json(path: &Path) -> Option<Value> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > 16 << 20 {
        return None;
    }
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

/// `YYYY-MM-DD HH:MM UTC` from seconds since the epoch (days to a civil
/// date by Howard Hinnant's algorithm).
fn utc_date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

impl AppState {
    /// The model folder the page describes.
    pub(super) fn page_model_dir(&self) -> Option<PathBuf> {
        self.page.opts.model_dir.clone().or_else(|| {
            self.current()
                .index
                .manifest()
                .model_dir
                .as_ref()
                .map(PathBuf::from)
        })
    }

    /// The card of [`Self::page_model_dir`], kept between requests
    /// (`serve/card.rs`).
    pub(super) fn model_card(&self) -> Option<Arc<ModelSummary>> {
        self.page_model_dir().and_then(|d| self.page.cards.get(&d))
    }

    /// The folder holding `eval.json`, if any.
    fn page_eval_dir(&self) -> Option<PathBuf> {
        if let Some(d) = &self.page.opts.eval_dir {
            return Some(d.clone());
        }
        if self.dir.join("eval.json").is_file() {
            return Some(self.dir.clone());
        }
        let mut name = self.dir.file_name()?.to_os_string();
        name.push("-eval");
        let sibling = self.dir.with_file_name(name);
        sibling.join("eval.json").is_file().then_some(sibling)
    }
}

fn model_summary(dir: &Path, card: Option<&ModelSummary>) -> Value {
    let card_path = dir.join(MODEL_CARD);
    let trained = std::fs::metadata(&card_path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| utc_date(d.as_secs()));
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    json!({
        "dir": dir.display().to_string(),
        "name": name,
        "found": card.is_some(),
        "arch": card.map(|c| &c.spec.arch),
        "dim": card.map(|c| c.spec.dim),
        "input_size": card.map(|c| c.spec.input_size),
        "trained": trained,
        "epochs": card.map(ModelSummary::epochs),
        "best_epoch": card.map(|c| c.best_epoch),
        "device": card.map(|c| &c.device),
        "fingerprint": card.map(|c| &c.weights_crc32),
        "curves_png": dir.join("curves.png").is_file(),
        // The labels its score read-out learnt from (null: it does not
        // grade, or its card does not say).
        "graded_labels": card.filter(|c| c.grades()).and_then(|c| c.score_domain.as_ref()).map(|d| &d.labels),
        // The lowest and highest grade it learnt from, so that the page can
        // say what a grade of 0.29 means (null where the card does not say).
        "graded_range": card.filter(|c| c.grades()).and_then(|c| c.score_domain.as_ref()).and_then(|d| Some([d.min?, d.max?])),
    })
}

fn eval_summary(dir: &Path) -> Option<Value> {
    let e = read_json(&dir.join("eval.json"))?;
    let obj = e.as_object()?;
    // The scores are flattened into the top level: recall@K, map@r, ...
    let scores: serde_json::Map<String, Value> = obj
        .iter()
        .filter(|(k, v)| {
            v.is_number()
                && (k.starts_with("recall@")
                    || k.starts_with("ann_recall@")
                    || ["precision@1", "r_precision", "map@r"].contains(&k.as_str()))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Some(json!({
        "dir": dir.display().to_string(),
        "protocol": e["protocol"],
        "queries": e["queries"],
        "gallery": e["gallery"],
        "ks": e["ks"],
        "scores": scores,
        "per_class": e["per_class"],
        "eval_png": dir.join("eval.png").is_file(),
        // `eval --score`: each score predicted from its neighbours against
        // the baselines (null when the eval did not predict scores).
        "score": score_summary(&e["score"]),
        "score_png": dir.join("score.png").is_file(),
    }))
}

/// The page's part of `eval.json`'s `score` (written by `eval --score`):
/// how it predicted, and MAE, RMSE and Spearman's ρ of each predictor, all
/// items and per label. `None` when there is none.
fn score_summary(s: &Value) -> Option<Value> {
    s.as_object()?;
    let metrics = |m: &Value| json!({"n": m["n"], "mae": m["mae"], "rmse": m["rmse"], "spearman": m["spearman"]});
    let predictors = |v: &Value| {
        json!({
            "knn": metrics(&v["knn"]),
            "global_mean": metrics(&v["global_mean"]),
            "label_mean": metrics(&v["label_mean"]),
        })
    };
    let per_label: Vec<Value> = s["per_label"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let mut p = predictors(l);
            p["class"] = if l["class"].is_null() {
                l["label"].clone()
            } else {
                l["class"].clone()
            };
            p
        })
        .collect();
    let mut all = predictors(s);
    for key in ["k", "weighting", "scored"] {
        all[key] = s[key].clone();
    }
    all["per_label"] = Value::Array(per_label);
    Some(all)
}

pub(super) async fn info(State(st): State<Arc<AppState>>) -> ApiResult {
    let st2 = Arc::clone(&st);
    // File reads: off the async threads.
    let v = tokio::task::spawn_blocking(move || {
        let st = st2;
        let l = st.current();
        let m = l.index.manifest();
        let model_dir = st.page_model_dir();
        let image_search = st.embedder.is_some();
        let why_not = if image_search {
            None
        } else if m.model_dir.is_none() && st.page.opts.model_dir.is_none() {
            Some(
                "this index was built from vectors, so the server has no model to turn an \
                 image into a vector; query by item (click any card in the gallery) instead",
            )
        } else if st.no_model {
            Some(
                "this server was started with --no-model; query by item (click any card in the \
                 gallery) instead",
            )
        } else {
            Some(
                "the index's model did not load (the server's log says why); query by item \
                 (click any card in the gallery) instead",
            )
        };
        // Live items only: deleted ones are not in the gallery.
        let live = l.index.snapshot();
        let counts = l.index.labels().map(|_| {
            let mut c = vec![0usize; m.classes.len()];
            for i in (0..live.len()).filter(|&i| !live.deleted.contains(i)) {
                let slot = l.index.label_of(i).and_then(|x| usize::try_from(x).ok());
                if let Some(slot) = slot.and_then(|i| c.get_mut(i)) {
                    *slot += 1;
                }
            }
            c
        });
        json!({
            "index": {
                "dir": st.dir.display().to_string(),
                "count": live.live_count(),
                "dim": l.index.dim(),
                "metric": l.index.metric().to_string(),
                "levels": l.index.levels(),
                "has_labels": l.index.labels().is_some(),
                "has_sources": l.items.iter().any(|i| !i.source.is_empty()),
                "classes": m.classes,
                "class_counts": counts,
                "created": utc_date(m.created_unix),
                "builder": m.build.builder,
                "m": m.build.m,
                "ef_construction": m.build.ef_construction,
                "model_fingerprint": m.model_fingerprint,
            },
            "model": model_dir.as_deref().map(|d| model_summary(d, st.page.cards.get(d).as_deref())),
            "eval": st.page_eval_dir().as_deref().and_then(eval_summary),
            "image_search": image_search,
            "image_search_unavailable": why_not,
            "faces": st.faces.is_ok(),
            "limits": {
                "max_k": likeness_index::MAX_K,
                "max_ef": likeness_index::MAX_EF,
                "default_k": likeness_index::DEFAULT_K,
                "default_ef": likeness_index::DEFAULT_EF,
                "max_batch": super::MAX_BATCH,
                "max_batch_hits": super::MAX_BATCH_HITS,
            },
        })
    })
    .await
    .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "info task failed"))?;
    Ok(Json(v).into_response())
}

/// `curves.png` (the model folder), `eval.png` (the eval folder, else the
/// model folder) or `score.png` (the eval folder: `eval --score`'s scatter).
/// Only these three names; the folders come from the index and
/// the server's options, never from the request.
pub(super) async fn info_file(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    UrlPath(file): UrlPath<String>,
) -> ApiResult {
    let path = match file.as_str() {
        "curves.png" => st.page_model_dir().map(|d| d.join("curves.png")),
        "eval.png" => st
            .page_eval_dir()
            .map(|d| d.join("eval.png"))
            .filter(|p| p.is_file())
            .or_else(|| st.page_model_dir().map(|d| d.join("eval.png"))),
        "score.png" => st.page_eval_dir().map(|d| d.join("score.png")),
        _ => None,
    };
    let missing = || ApiError::new(StatusCode::NOT_FOUND, format!("no {file} for this index"));
    let path = path.filter(|p| p.is_file()).ok_or_else(missing)?;
    let bytes = tokio::task::spawn_blocking(move || {
        std::fs::read(&path).ok().filter(|b| b.len() <= 32 << 20)
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(missing)?;
    let etag = etag_of(&bytes);
    Ok(cached_bytes(&headers, "image/png", &etag, bytes.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_token_never_shows_in_debug_output() {
        let o = PageOptions {
            admin_token: Some("hunter2".into()),
            ..Default::default()
        };
        let shown = format!("{o:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("<set>"),
            "{shown}"
        );
    }

    /// `eval --score`'s numbers reach the page (they were left out, so the
    /// page of a graded index said nothing of how well grades are predicted).
    #[test]
    fn the_eval_summary_carries_the_score_prediction() {
        let dir = tempfile::tempdir().unwrap();
        let m = |mae: f64, rho: Value| json!({"n": 4, "mae": mae, "rmse": mae * 1.5, "pearson": null, "spearman": rho});
        let eval = json!({
            "protocol": "leave-one-out", "queries": 4, "gallery": 4, "ks": [1],
            "recall@1": 1.0, "per_class": [],
            "score": {
                "k": 8, "weighting": "1/distance", "scored": 4,
                "knn": m(0.13, json!(0.81)), "global_mean": m(0.24, Value::Null), "label_mean": m(0.2, Value::Null),
                "per_label": [{"label": 0, "class": "cheek", "knn": m(0.15, json!(0.74)),
                               "global_mean": m(0.24, Value::Null), "label_mean": m(0.2, Value::Null)}],
            },
        });
        std::fs::write(dir.path().join("eval.json"), eval.to_string()).unwrap();
        let e = eval_summary(dir.path()).unwrap();
        let s = &e["score"];
        assert_eq!(s["k"], 8);
        assert_eq!(s["knn"]["mae"], 0.13);
        assert_eq!(s["knn"]["spearman"], 0.81);
        assert_eq!(s["global_mean"]["mae"], 0.24);
        assert_eq!(s["per_label"][0]["class"], "cheek");
        assert_eq!(s["per_label"][0]["knn"]["spearman"], 0.74);
        assert_eq!(e["score_png"], false);
        // An eval without scores: none, and the page shows no table.
        let mut plain = eval.clone();
        plain.as_object_mut().unwrap().remove("score");
        std::fs::write(dir.path().join("eval.json"), plain.to_string()).unwrap();
        assert_eq!(eval_summary(dir.path()).unwrap()["score"], Value::Null);
    }

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14 22:13 UTC");
    }

    #[test]
    fn etags_match_with_lists_and_weak_prefixes() {
        let tag = etag_of(b"abc");
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, &tag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{tag}")).unwrap(),
        );
        assert!(not_modified(&h, &tag));
        assert!(!not_modified(&h, &etag_of(b"abd")));
    }

    #[test]
    fn every_asset_the_page_imports_is_served() {
        let mut names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        names.sort();
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(a.bytes).unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .rsplit_once("./")
                    .map(|(_, t)| t.trim_end_matches([';', '"', '\'']))
                    .unwrap();
                assert!(names.contains(&target), "{} imports {target}", a.name);
            }
        }
        for needed in ["/assets/app.js", "/assets/app.css"] {
            assert!(INDEX_HTML.contains(needed), "{needed}");
        }
    }
}
