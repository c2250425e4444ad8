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
//! | [`format`] | `src/format.rs` | byte layouts of `graph.bin` and `meta.bin`, checked views |
//! | [`manifest`] | `src/manifest.rs` | `manifest.json`: parameters, sizes, CRC32s, tool, model |
//! | [`build`] | `src/build.rs` | [`IndexBuilder`]: validate, build the graph (ours or hnsw_rs's), write, atomic publish |
//! | `graph` | `src/graph.rs` | the CSR graph both builders hand over, seeded insertion order (below `build` and `hnsw`) |
//! | `hnsw` | `src/hnsw.rs` | our HNSW construction (hnswlib's algorithm over flat, per-node-locked link arrays) |
//! | [`index`] | `src/index.rs` | [`Index`]: open (mmap + O(levels) checks), search, verify |
//! | [`knn`] | `src/knn.rs` | [`KnnQuery`]: k results per row (padded), own item left out, graph or exact |
//! | [`quant`] | `src/quant.rs` | compact stores (`f16`, `i8`): quantizer, `vectors.f16`/`vectors.i8`, SIMD kernels |
//! | [`postings`] | `src/postings.rs` | `postings.bin`: per-label item lists; the filter planner's estimate and exact scan |
//!
//! An index directory holds `manifest.json`, `graph.bin`, `vectors.npy` and,
//! with labels or item records, `meta.bin`; see [`format`] for the layouts.

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
pub mod manifest;
pub mod metrics;
pub mod neighbours;
pub mod npy;
pub mod postings;
pub mod quant;
pub mod score;

pub use build::{BuildReport, GraphBuilder, IndexBuilder, ItemInfo};
pub use distance::Metric;
pub use error::{Error, Result};
pub use fsutil::{atomic_write, TempDir};
pub use index::{Hit, Index, LabelFilter, VerifyReport};
pub use knn::KnnQuery;
pub use manifest::Manifest;
pub use neighbours::Neighbours;
pub use npy::Matrix;
pub use postings::Plan;
pub use quant::{Quantizer, Store};
pub use score::{ItemPairing, Side};
