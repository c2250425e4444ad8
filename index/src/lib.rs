//! likeness-index: exact search, retrieval metrics, `.npy` I/O and an HNSW
//! index served in place from memory-mapped files. No libtorch.
//!
//! # Map of the crate
//!
//! | module | file | what it holds |
//! |---|---|---|
//! | [`error`] | `src/error.rs` | the one [`Error`] enum and [`Result`] |
//! | [`distance`] | `src/distance.rs` | [`Metric`] (cosine, l2), `preprocess`, SIMD-friendly kernels |
//! | [`neighbours`] | `src/neighbours.rs` | [`Neighbours`] result sets, the top-k collector |
//! | [`exact`] | `src/exact.rs` | brute-force k-NN on rayon (query-vs-base and leave-one-out) |
//! | [`metrics`] | `src/metrics.rs` | Recall@K, Precision@1, R-Precision, MAP@R, ANN recall |
//! | [`eval`] | `src/eval.rs` | the `likeness eval` report of an index (CLI and Python share it) |
//! | [`score`] | `src/score.rs` | scores: [`Side`], prediction from neighbours (distance-weighted kNN, same subject left out), MAE/RMSE/Pearson/Spearman and baselines |
//! | [`npy`] | `src/npy.rs` | read f16/f32/f64 matrices and integer labels; write aligned f32/i64 |
//! | [`fsutil`] | `src/fsutil.rs` | atomic file and directory publication |
//! | [`format`] | `src/format/mod.rs` | what the binary files share: 128-byte headers, aligned sections, checked views |
//! | [`format::graph`] | `src/format/graph.rs` | `graph.bin` whole: layout, open checks, the views a search reads, full link check, writer |
//! | [`format::meta`] | `src/format/meta.rs` | `meta.bin` whole: layout, its records ([`ItemInfo`], [`ItemPairing`], [`Side`]), checks, readers, writer |
//! | [`quant`] | `src/quant.rs` | compact stores (`f16`, `i8`): quantizer, `vectors.f16`/`vectors.i8` whole, SIMD kernels |
//! | [`postings`] | `src/postings.rs` | `postings.bin` whole: per-label item lists; the filter planner's estimate and exact scan |
//! | [`manifest`] | `src/manifest.rs` | `manifest.json`: parameters, sizes, CRC32s, tool, model, class names |
//! | [`labels`] | `src/labels.rs` | labels as people give them (a number or a class name): in a filter, and for an item added or changed (a new name is a new class) |
//! | `graph` | `src/graph.rs` | the in-memory CSR graph both builders hand over, seeded insertion order |
//! | `hnsw` | `src/hnsw/mod.rs` | HNSW: `build.rs` our construction (hnswlib's algorithm over flat, per-node-locked link arrays), `search.rs` the search of the mapped graph in place |
//! | [`build`] | `src/build.rs` | [`IndexBuilder`]: check inputs, prepare vectors, build the graph (ours or hnsw_rs's), write the files, atomic publish |
//! | [`index`] | `src/index/mod.rs` | [`Index`]: open (mmap + O(levels) checks), accessors; `search.rs` the planner and the searches [`Index::query`] dispatches to; `verify.rs` [`VerifyReport`], the full check; `hits.rs` [`Hit`] |
//! | [`live`] | `src/live.rs` | [`Live`](live::Live): the changes on top of a generation's files (logged rows, deleted set) an [`Index`] searches with |
//! | [`format::log`], [`format::deleted`] | `src/format/log.rs`, `deleted.rs` | the change log (`log.<g>.wal`) and `deleted.bin` whole |
//! | [`writer`] | `src/writer/mod.rs` | [`Writer`]: add, delete, update, compact in place; `fold.rs` writes a generation and commits it |
//! | [`knn`] | `src/knn.rs` | [`KnnQuery`] and [`Index::query`], the one search entry point: defaults and limits of `k`/`ef`, the one check of a request, exclusion, padding |
//!
//! An index directory holds `manifest.json`, `graph.bin`, `vectors.npy` and,
//! with labels or item records, `meta.bin` (and `postings.bin` with labels,
//! `vectors.f16`/`vectors.i8` with a compact store); see [`format`] for the
//! layouts. Once changed in place ([`writer`]) it also holds `deleted.bin`
//! and a change log, and the files carry their generation in their names.
//!
//! Layers: a module imports only modules listed before it here, never one
//! after it, so the imports form no cycle: `error`; `graph`, `fsutil`,
//! `distance`, `neighbours`, `npy`, `labels`; `format`; `quant`, `postings`;
//! `manifest`, `live`; `exact`, `metrics`, `hnsw`; `index`; `knn`; `build`,
//! `score`, `eval`, `writer`. The engine knows nothing of its front ends: the
//! command line, the server and the page are `likeness-app`'s.

pub mod build;
pub mod distance;
pub mod error;
pub mod eval;
pub mod exact;
pub mod format;
pub mod fsutil;
mod graph;
mod hnsw;
pub mod index;
pub mod knn;
pub mod labels;
pub mod live;
pub mod manifest;
pub mod metrics;
pub mod neighbours;
pub mod npy;
pub mod postings;
pub mod quant;
pub mod score;
pub mod writer;

pub use build::{BuildReport, GraphBuilder, IndexBuilder, ItemInfo};
pub use distance::Metric;
pub use error::{Error, Result};
pub use fsutil::{atomic_write, TempDir};
pub use index::{Hit, Index, LabelFilter, VerifyReport};
pub use knn::{KnnQuery, DEFAULT_EF, DEFAULT_K, MAX_EF, MAX_K, MAX_THREADS};
pub use labels::LabelName;
pub use live::Deleted;
pub use manifest::Manifest;
pub use neighbours::Neighbours;
pub use npy::Matrix;
pub use postings::Plan;
pub use quant::{Quantizer, Store};
pub use score::{ItemPairing, Side};
pub use writer::{FoldReport, NewItems, Writer, FOLD_AT};
