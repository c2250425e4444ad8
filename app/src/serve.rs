//! The HTTP server of `likeness serve`: JSON over HTTP, over a memory-mapped
//! index.
//!
//! The index stays mapped; searches run on a dedicated rayon pool of
//! `workers` threads, never on the async threads, so a slow query cannot
//! stall the others. `POST /admin/reload` (or SIGHUP) opens the index
//! directory again and swaps it in atomically: queries already running
//! finish on the old one. SIGINT/SIGTERM stop accepting connections and let
//! running requests finish.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `POST /search` | `{"vector": [...], "k": 10, "ef": 64, "labels": [..], "exclude_labels": [..]}` | `{"hits": [...], "took_ms": ..}` |
//! | `POST /search/batch` | `{"vectors": [[...], ...], "k", "ef", "labels"}` | `{"results": [{"hits": [...]}, ...]}` |
//! | `POST /search/image?k=10&ef=64&region=x,y,w,h&labels=1,4` | raw image bytes | as `/search` (needs a model), and `readout_score` with a score read-out; a whole photo of faces whose regions the read-out learnt: `faces` (`/faces`' shape, those regions graded) instead of `readout_score` and `predicted_score` (`serve/faces.rs`); concurrent requests share a forward pass (`serve/batch.rs`) |
//! | `GET /items/{id}` | | `{"id", "label", "class", "path", "region"}`, and `"score"` when the index has scores, `"subject"` and `"side"` where it records them (as each hit has them) |
//! | `GET /healthz` | | `{"status": "ok"}` |
//! | `GET /stats` | | count, dim, metric, store, model, uptime, queries, latency quantiles, searches per filter plan (`plans`) |
//! | `POST /admin/reload` | | `{"reloaded": true, "count": ..}` (needs the admin token when one is set) |
//! | `POST /admin/items` | `{"vectors": [[...]], "labels": [..], "scores": [..]}`, or image bytes with `?label=` | `{"ids": [...]}` once on disk (`serve/admin.rs`) |
//! | `DELETE /admin/items/{id}`, `POST /admin/items/delete` | `{"ids": [...]}` | `{"deleted": n}` |
//! | `POST /admin/compact` | | the fold's report |
//!
//! When the index has scores, each hit has its `score` and every search
//! answer (`/search`, each `/search/batch` result, `/search/image` but a
//! whole photo's of graded faces) a `predicted_score`: the hits' scores
//! weighted by 1/distance ([`likeness_index::score::predict_from_hits`]).
//!
//! Every error is JSON `{"error": "..."}` with a 4xx status (5xx only for a
//! failed reload); the server never panics on input.
//!
//! The page (`GET /`) and its endpoints (`/items`, `/items/{id}/image`,
//! `/search/item/{id}`, `/info`) live in `serve/page.rs`, `serve/items.rs`
//! and `serve/thumbs.rs`; the admin token and the security headers in
//! `serve/guard.rs`.
mod admin;
mod body;
mod card;
mod faces;
mod filter;
mod guard;
mod items;
mod page;
mod search;
mod thumbs;

pub use page::PageOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use likeness_index::{Index, ItemInfo, ItemPairing};

use crate::embedder::ImageEmbedder;
use crate::error::{Error, Result};
use filter::{filter, LabelName};
// The search routes' helpers that the other routes share.
use search::{default_ef, default_k, finish, hits_body, parse_region, run_query};

type ApiResult = std::result::Result<Response, ApiError>;

mod batch;

/// Most vectors in one `/search/batch`.
pub const MAX_BATCH: usize = 1024;

/// Most hits (vectors × k) in one `/search/batch`: 1,024 vectors of k =
/// 1,000 made a 230 MB answer and left the server 3 GB larger; 65,536 hits
/// are about 15 MB of JSON.
pub const MAX_BATCH_HITS: usize = 65_536;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: SocketAddr,
    /// The page, its thumbnails and the admin token.
    pub page: PageOptions,
    /// Search threads.
    pub workers: usize,
    /// Largest request body, bytes.
    pub max_body: usize,
    /// Image queries: how long the first waiting image waits for others to
    /// share its forward pass.
    pub batch_wait: std::time::Duration,
    /// Image queries: most images in one forward pass (1: no batching, each
    /// request embeds its own image on the search threads).
    pub max_batch: usize,
    /// Started with `--no-model`: the page says so, and names no model.
    pub no_model: bool,
    /// The largest photo decoded (uploads, thumbnails): `--max-megapixels`.
    pub limits: crate::read::DecodeLimits,
}

/// The index and its decoded item records, swapped as one on reload.
struct Loaded {
    index: Arc<Index>,
    items: Vec<ItemInfo>,
    /// Each item's subject and side (empty when the index records none),
    /// decoded once here as `items` are: each hit and item view names them
    /// (the page tells a left eye from a right one by them).
    pairings: Vec<ItemPairing>,
}

impl Loaded {
    fn open(dir: &Path) -> Result<Self> {
        Self::of(Arc::new(Index::open(dir)?))
    }

    /// An open index (a writer's, after a fold) with its records decoded.
    fn of(index: Arc<Index>) -> Result<Self> {
        let items = index.items()?;
        let pairings = index.pairings()?;
        Ok(Loaded {
            index,
            items,
            pairings,
        })
    }
}

/// Request latencies in logarithmic buckets (1 µs to ~100 s, 10 per decade).
struct Latencies {
    buckets: Vec<AtomicU64>,
}

const BUCKETS_PER_DECADE: f64 = 20.0;
const DECADES: usize = 8;

impl Latencies {
    fn new() -> Self {
        Latencies {
            buckets: (0..(BUCKETS_PER_DECADE as usize * DECADES + 1))
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
    fn record(&self, seconds: f64) {
        let us = (seconds * 1e6).max(1.0);
        let b = ((us.log10() * BUCKETS_PER_DECADE).floor() as usize).min(self.buckets.len() - 1);
        self.buckets[b].fetch_add(1, Ordering::Relaxed);
    }
    /// The `q` quantile in milliseconds (upper edge of its bucket).
    fn quantile_ms(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let target = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Some(10f64.powf((i + 1) as f64 / BUCKETS_PER_DECADE) / 1e3);
            }
        }
        None
    }
}

struct AppState {
    dir: PathBuf,
    loaded: RwLock<Arc<Loaded>>,
    embedder: Option<Arc<dyn ImageEmbedder>>,
    /// Gathers concurrent image queries into batches (`max_batch` > 1).
    batcher: Option<batch::Batcher>,
    pool: rayon::ThreadPool,
    started: Instant,
    queries: AtomicU64,
    reloads: AtomicU64,
    latencies: Latencies,
    page: page::PageState,
    /// Searches by the plan that ran: graph, filtered graph, exact scan.
    plans: [AtomicU64; 3],
    /// Finds faces in uploaded photos (`POST /faces`), or says why it can't.
    faces: std::result::Result<Arc<crate::face::FaceFinder>, String>,
    /// The index's writer, opened at the first change (`serve/admin.rs`).
    writer: std::sync::Mutex<Option<likeness_index::Writer>>,
    /// A background compaction is running.
    compacting: std::sync::atomic::AtomicBool,
    /// The server listens on loopback, so it answers loopback names only
    /// (`serve/guard.rs`).
    loopback: bool,
    /// Largest request body, bytes (`serve/body.rs`).
    max_body: usize,
    /// Started with `--no-model` (`/info` says why there is no image search).
    no_model: bool,
    /// The largest photo decoded (`--max-megapixels`).
    limits: crate::read::DecodeLimits,
}

impl AppState {
    fn current(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    fn reload(&self) -> Result<usize> {
        // With a writer open, its index is the directory's current state.
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = match writer.as_ref() {
            Some(w) => Loaded::of(Arc::clone(w.index()))?,
            None => Loaded::open(&self.dir)?,
        };
        drop(writer);
        let count = fresh.index.len();
        self.swap(fresh);
        self.reloads.fetch_add(1, Ordering::Relaxed);
        Ok(count)
    }

    /// Serves `fresh` from now on; searches running finish on the old one.
    fn swap(&self, fresh: Loaded) {
        let fresh = Arc::new(fresh);
        match self.loaded.write() {
            Ok(mut g) => *g = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
    }

    /// Runs `f` on the search pool and waits for it without blocking the
    /// async thread.
    async fn on_pool<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&AppState) -> T + Send + 'static,
    ) -> std::result::Result<T, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let me = Arc::clone(self);
        self.pool.spawn(move || {
            let _ = tx.send(f(&me));
        });
        rx.await
            .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "search worker failed"))
    }
}

/// A JSON error answer.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    fn bad(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<likeness_index::Error> for ApiError {
    fn from(e: likeness_index::Error) -> Self {
        use likeness_index::Error as E;
        // A damaged index is the server's fault; anything else, the request's.
        let status = match e {
            E::Io { .. }
            | E::BadMagic { .. }
            | E::UnsupportedVersion { .. }
            | E::Truncated { .. }
            | E::SizeMismatch { .. }
            | E::ChecksumMismatch { .. }
            | E::Corrupt { .. }
            | E::DamagedLog { .. }
            | E::MissingFile { .. }
            | E::NoIndex { .. }
            | E::UnfinishedReplace { .. }
            | E::Committed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Index(e) => e.into(),
            Error::Io { .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            e => ApiError::bad(e.to_string()),
        }
    }
}

fn body_error(r: BytesRejection) -> ApiError {
    let status = r.status();
    let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "request body too large".to_string()
    } else {
        r.body_text()
    };
    ApiError::new(status, msg)
}

/// A query string the route's parameters do not take (`?k=abc`), said
/// without the parser's framing.
fn query_error(r: axum::extract::rejection::QueryRejection) -> ApiError {
    let text = r.body_text();
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(&text);
    ApiError::bad(format!(
        "bad query string: {detail}; each route's parameters are in docs/http-api.md"
    ))
}

fn parse_json<T: serde::de::DeserializeOwned>(
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<T, ApiError> {
    let body = body.map_err(body_error)?;
    serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("malformed JSON body: {e}")))
}

/// One item as `GET /items/{id}`, the page's `/items` and the query of
/// `/search/item/{id}` show it; `score` only when the index has one for it,
/// `subject` and `side` only where the index records them for it.
#[derive(Debug, serde::Serialize)]
struct ItemView {
    id: usize,
    label: Option<i64>,
    class: Option<String>,
    path: Option<String>,
    region: Option<[f32; 4]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    side: Option<likeness_index::Side>,
}

fn item_view(l: &Loaded, id: usize) -> ItemView {
    let label = l.index.label_of(id);
    let info = l.items.get(id);
    ItemView {
        id,
        label,
        class: label
            .and_then(|x| l.index.manifest().class_name(x))
            .map(str::to_owned),
        path: info.map(|i| i.source.clone()).filter(|s| !s.is_empty()),
        region: info.and_then(|i| i.region),
        score: l.index.score_of(id),
        subject: l.pairings.get(id).and_then(|p| p.subject.clone()),
        side: l.pairings.get(id).and_then(|p| p.side),
    }
}

async fn item(State(st): State<Arc<AppState>>, UrlPath(id): UrlPath<String>) -> ApiResult {
    let l = st.current();
    let id = items::item_id(&l, &id)?;
    Ok(Json(item_view(&l, id)).into_response())
}

async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

async fn stats(State(st): State<Arc<AppState>>) -> Response {
    let l = st.current();
    let m = l.index.manifest();
    let q = |x| st.latencies.quantile_ms(x);
    Json(json!({
        "index": st.dir.display().to_string(),
        "count": l.index.len(),
        "dim": l.index.dim(),
        "metric": l.index.metric().to_string(),
        "store": l.index.store().as_str(),
        "store_kernels": likeness_index::quant::kernel_name(),
        "filter_exact_below": likeness_index::postings::default_exact_below(l.index.len()),
        "plans": {
            "graph": st.plans[0].load(Ordering::Relaxed),
            "filtered_graph": st.plans[1].load(Ordering::Relaxed),
            "exact": st.plans[2].load(Ordering::Relaxed),
        },
        "model_fingerprint": m.model_fingerprint,
        "model_loaded": st.embedder.as_ref().map(|e| e.fingerprint()),
        "uptime_seconds": st.started.elapsed().as_secs_f64(),
        "queries_served": st.queries.load(Ordering::Relaxed),
        "reloads": st.reloads.load(Ordering::Relaxed),
        "changes": admin::stats(&l),
        "workers": st.pool.current_num_threads(),
        "latency_ms": { "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999) },
        "image_batches": st.batcher.as_ref().map(|b| {
            let mut j = b.stats.json();
            j["max_batch"] = b.max.into();
            j["batch_wait_ms"] = (b.wait.as_secs_f64() * 1e3).into();
            j
        }),
    }))
    .into_response()
}

async fn reload(State(st): State<Arc<AppState>>) -> ApiResult {
    let st2 = Arc::clone(&st);
    let count = tokio::task::spawn_blocking(move || st2.reload())
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "reload task failed"))?
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reload failed, still serving the previous index: {e}"),
            )
        })?;
    Ok(Json(json!({ "reloaded": true, "count": count })).into_response())
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such endpoint: see POST /search, /search/batch, /search/image, GET /items/{id}, /healthz, /stats, POST /admin/reload, /admin/items, /admin/items/delete, /admin/compact, DELETE /admin/items/{id}, and the page's GET /, /items, /items/{id}/image, /search/item/{id}, /info",
    )
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} takes no {method}: see docs/http-api.md for its method",
            uri.path()
        ),
    )
}

fn router(state: Arc<AppState>, max_body: usize) -> Router {
    Router::new()
        .route("/search", post(search::search))
        .route("/search/batch", post(search::search_batch))
        .route("/search/image", post(search::search_image))
        .route("/faces", post(faces::find))
        .route("/items/{id}", get(item))
        .route("/healthz", get(healthz))
        .route("/stats", get(stats))
        .route("/admin/reload", post(reload))
        .route("/admin/items", post(admin::add))
        .route("/admin/items/delete", post(admin::delete_batch))
        .route(
            "/admin/items/{id}",
            axum::routing::delete(admin::delete_one),
        )
        .route("/admin/compact", post(admin::compact))
        .route("/", get(page::index_html))
        .route("/assets/{name}", get(page::asset))
        .route("/info", get(page::info))
        .route("/info/{file}", get(page::info_file))
        .route("/items", get(items::list))
        .route("/items/{id}/image", get(thumbs::image))
        .route("/search/item/{id}", get(items::search_item))
        .fallback(not_found)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            body::read_whole,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard::guard,
        ))
        .with_state(state)
}

/// Serves `index_dir` until SIGINT or SIGTERM. Prints `listening on ADDR`
/// (the bound address, useful with port 0) on stdout once ready.
/// The face finder, loaded only where image search is on (a click on a
/// region searches by image); a missing model is a note, not an error.
fn faces_for(image_search: bool) -> std::result::Result<Arc<crate::face::FaceFinder>, String> {
    if !image_search {
        return Err("faces need image search: start the server with the index's model".into());
    }
    let finder = faces::load();
    if let Err(why) = &finder {
        eprintln!("note: {why}");
    }
    finder
}

pub fn run(
    index_dir: &Path,
    embedder: Option<Arc<dyn ImageEmbedder>>,
    opts: &ServeOptions,
) -> Result<()> {
    guard::check_options(opts)?;
    let loaded = Loaded::open(index_dir)?;
    if let (Some(e), Some(fp)) = (&embedder, &loaded.index.manifest().model_fingerprint) {
        if e.fingerprint() != *fp {
            return Err(Error::Usage(format!(
                "model mismatch: the model has fingerprint {} but the index {} was built by {fp}",
                e.fingerprint(),
                index_dir.display()
            )));
        }
    }
    let workers = opts.workers.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("search-{i}"))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {workers} search threads: {e}")))?;
    let batcher = match &embedder {
        Some(e) if opts.max_batch > 1 => Some(batch::Batcher::start(
            Arc::clone(e),
            opts.batch_wait,
            opts.max_batch,
            opts.limits,
        )),
        _ => None,
    };
    let image_search = embedder.is_some();
    let state = Arc::new(AppState {
        dir: index_dir.to_path_buf(),
        loaded: RwLock::new(Arc::new(loaded)),
        embedder,
        batcher,
        pool,
        started: Instant::now(),
        queries: AtomicU64::new(0),
        reloads: AtomicU64::new(0),
        latencies: Latencies::new(),
        plans: Default::default(),
        page: page::PageState::new(&opts.page),
        faces: faces_for(image_search),
        writer: std::sync::Mutex::new(None),
        compacting: std::sync::atomic::AtomicBool::new(false),
        loopback: opts.addr.ip().is_loopback(),
        max_body: opts.max_body,
        no_model: opts.no_model,
        limits: opts.limits,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("<tokio runtime>", e))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(opts.addr)
            .await
            .map_err(|e| Error::Usage(format!("cannot listen on {}: {e}", opts.addr)))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("<listener>", e))?;
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on {local}");
            let _ = out.flush();
        }
        let st = Arc::clone(&state);
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                let st = Arc::clone(&st);
                let res = tokio::task::spawn_blocking(move || st.reload()).await;
                match res {
                    Ok(Ok(n)) => eprintln!(
                        "likeness serve: SIGHUP: reloaded ({})",
                        crate::plural::plural(n, "item")
                    ),
                    Ok(Err(e)) => eprintln!("likeness serve: SIGHUP: reload failed, still serving the previous index: {e}"),
                    Err(_) => eprintln!("likeness serve: SIGHUP: reload task failed"),
                }
            }
        });
        let app = router(state, opts.max_body);
        let stopping = Arc::new(tokio::sync::Notify::new());
        let signalled = Arc::clone(&stopping);
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown().await;
            signalled.notify_one();
        });
        // Answers under way get a grace period; a connection still open
        // after it (a client that stopped sending) does not hold the stop.
        tokio::select! {
            r = std::future::IntoFuture::into_future(server) => r.map_err(|e| Error::io("<server>", e)),
            () = async {
                stopping.notified().await;
                tokio::time::sleep(STOP_GRACE).await;
            } => {
                eprintln!(
                    "likeness serve: connections still open {} s after the signal; stopping anyway",
                    STOP_GRACE.as_secs()
                );
                Ok(())
            }
        }
    })?;
    eprintln!("likeness serve: stopped");
    Ok(())
}

/// How long a stopping server waits for the answers under way (a search
/// answers in milliseconds, an image query in tens of them; a client still
/// sending after this is not waited for).
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_quantiles_come_from_the_recorded_values() {
        let l = Latencies::new();
        assert_eq!(l.quantile_ms(0.5), None);
        for _ in 0..99 {
            l.record(0.001);
        }
        l.record(0.5);
        let p50 = l.quantile_ms(0.5).unwrap();
        assert!((1.0..1.2).contains(&p50), "{p50}");
        let p999 = l.quantile_ms(0.999).unwrap();
        assert!((500.0..600.0).contains(&p999), "{p999}");
    }
}
