//! HNSW (Malkov and Yashunin 2018): [`build`](self::build) constructs the
//! graph in memory (hnswlib's algorithm over flat, per-node-locked link
//! arrays) and hands it over in the CSR form of [`crate::graph`];
//! [`search`] walks the written graph in place, over the memory-mapped
//! files of an open index.
//!
//! Below `index` (which searches through [`search::Searcher`]) and `build`
//! (which calls [`build()`]); it reads `graph.bin` only through
//! [`crate::format::graph`].

mod build;
pub(crate) mod search;

pub(crate) use build::{build, extend, Params};
