//! An index directory opened from memory-mapped files and searched in place.
//!
//! Opening checks magic, version, header checksums, file sizes against the
//! manifest and the structural invariants that cost O(1) per layer (section
//! bounds and alignment, CSR end points, entry point). It never reads the
//! vectors or the adjacency lists. Whatever opening cannot check cheaply is
//! checked where it is used: every row pointer and neighbour id read during a
//! search is bounds-checked, and a bad one ends that search with
//! [`Error::Corrupt`] naming `graph.bin`. [`Index::verify`] checks everything
//! up front, CRC32s included.
//!
//! Search is the HNSW algorithm (Malkov and Yashunin 2018, algorithms 2 and
//! 5): greedy descent through the upper layers, then a beam of width `ef` on
//! layer 0. The visited set is a per-thread array of generation stamps, so a
//! query clears it by incrementing a counter; together with the reused heaps
//! no allocation happens per query once a thread has warmed up.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bincode::Options;
use memmap2::Mmap;
use rayon::prelude::*;

use crate::build::ItemInfo;
use crate::distance::{prefetch, DistanceFn4, Metric};
use crate::error::{Error, Result};
use crate::format::{
    read_header, section, GraphHeader, LayerEntry, MetaHeader, FLAG_LABELS, FLAG_PAIRINGS,
    FLAG_SCORES, GRAPH_MAGIC, HEADER_SIZE, MAX_LEVELS, META_MAGIC,
};
use crate::manifest::{Manifest, GRAPH, META, POSTINGS, VECTORS};
use crate::neighbours::{Cand, Neighbours, TopK, Visited};
use crate::postings::{
    OwnedPostings, Plan, PlanChoice, PlanKind, PostingsHeader, PostingsView, SearchOptions,
};
use crate::quant::{Codes, QuantHeader, QueryCode, Store};
use crate::score::ItemPairing;

/// Largest `k` or `ef` accepted by search.
pub const MAX_EF: usize = 1 << 20;

pub use crate::postings::LabelFilter;

/// What [`Index::verify`] checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Files whose size and CRC32 matched the manifest.
    pub files: Vec<String>,
    /// Bytes read.
    pub bytes: u64,
    /// Graph edges checked.
    pub edges: u64,
}

/// An open index.
#[derive(Debug)]
pub struct Index {
    dir: PathBuf,
    manifest: Manifest,
    graph: Mmap,
    vectors: Mmap,
    meta: Option<Mmap>,
    header: GraphHeader,
    layers: Vec<LayerEntry>,
    vectors_offset: usize,
    count: usize,
    dim: usize,
    metric: Metric,
    kernel4: DistanceFn4,
    meta_header: Option<MetaHeader>,
    /// The compact vector file (`vectors.f16` / `vectors.i8`) and its header.
    compact: Option<(Mmap, QuantHeader)>,
    /// `postings.bin` and its header.
    postings_file: Option<(Mmap, PostingsHeader)>,
    /// Posting lists built from the labels, for an index without
    /// `postings.bin` (at the first filtered search).
    postings_mem: OnceLock<OwnedPostings>,
    options: SearchOptions,
}

/// Maps `path` read-only after checking its size against the manifest.
fn map_file(dir: &Path, manifest: &Manifest, name: &str) -> Result<Mmap> {
    let path = dir.join(name);
    let entry = manifest.file(dir, name)?;
    let file = File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::MissingFile { path: path.clone() },
        _ => Error::io(&path, e),
    })?;
    let actual = file.metadata().map_err(|e| Error::io(&path, e))?.len();
    if actual != entry.size {
        return Err(Error::SizeMismatch {
            path,
            expected: entry.size,
            actual,
        });
    }
    // SAFETY: the map is read-only and private to this `Index`, which owns it
    // for as long as any slice into it lives (slices borrow `&self`). The
    // contract is that nobody truncates or rewrites the file while it is
    // mapped (that could raise SIGBUS or change bytes under us): index
    // directories are published by atomic rename and never modified in
    // place; rebuilding writes a new directory. Every view into the bytes
    // goes through bounds- and alignment-checked `bytemuck` casts.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
    Ok(map)
}

#[derive(Clone, Copy, Default)]
struct LayerView<'a> {
    nodes: &'a [u32],
    offsets: &'a [u64],
    neighbours: &'a [u32],
}

/// Slices of one open index, built once per call (O(levels)).
struct View<'a> {
    index: &'a Index,
    vectors: &'a [f32],
    labels: Option<&'a [i64]>,
    layers: [LayerView<'a>; MAX_LEVELS as usize],
    /// The compact store the beam is searched on, if any.
    codes: Option<Codes<'a>>,
    postings: Option<PostingsView<'a>>,
}

/// Per-thread search state, reused across queries.
#[derive(Default)]
struct Scratch {
    visited: Visited,
    candidates: BinaryHeap<Reverse<Cand>>,
    results: Option<TopK>,
    sorted: Vec<Cand>,
    query: Vec<f32>,
    /// Unvisited neighbours of the node being expanded, and their distances.
    batch: Vec<u32>,
    batch_dist: Vec<f32>,
    /// The query prepared for the compact store.
    qcode: QueryCode,
}

impl Scratch {
    /// Starts a new query over `n` items.
    fn begin(&mut self, n: usize) {
        self.visited.begin(n);
        self.candidates.clear();
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Index {
    /// Opens the index directory `dir`.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let manifest = Manifest::read(&dir)?;
        let graph = map_file(&dir, &manifest, GRAPH)?;
        let vectors = map_file(&dir, &manifest, VECTORS)?;
        let meta = if manifest.files.contains_key(META) {
            Some(map_file(&dir, &manifest, META)?)
        } else {
            None
        };
        let gpath = dir.join(GRAPH);
        let header: GraphHeader = read_header(
            &gpath,
            &graph,
            &GRAPH_MAGIC,
            "LKNSGRPH",
            |h: &GraphHeader| h.version,
            |h| h.header_crc,
        )?;
        let (count, dim, metric, layers) = check_graph(&gpath, &graph, &header)?;

        let mpath = dir.join(crate::manifest::MANIFEST);
        if manifest.count != count
            || manifest.dim != dim
            || manifest.metric != metric
            || manifest.levels != layers.len()
        {
            return Err(Error::corrupt(
                &mpath,
                format!(
                    "records {} vectors of dimension {} ({}, {} levels) but graph.bin holds {count} of dimension {dim} ({metric}, {} levels)",
                    manifest.count,
                    manifest.dim,
                    manifest.metric,
                    manifest.levels,
                    layers.len()
                ),
            ));
        }
        let vectors_offset = check_vectors(&dir.join(VECTORS), &vectors, count, dim)?;
        let meta_header = match &meta {
            Some(m) => Some(check_meta(&dir.join(META), m, count)?),
            None => None,
        };
        if manifest.has_labels != meta_header.is_some_and(|h| h.flags & FLAG_LABELS != 0) {
            return Err(Error::corrupt(&mpath, "has_labels disagrees with meta.bin"));
        }
        let compact = match manifest.store.file_name() {
            None => None,
            Some(name) => {
                // With a compact store, vectors.npy is read only for the
                // re-ranked candidates: random reads, so no read-ahead or
                // fault-around of neighbouring pages (only a hint; an error
                // changes nothing).
                #[cfg(unix)]
                let _ = vectors.advise(memmap2::Advice::Random);
                if manifest.store == Store::I8 {
                    let qz = manifest
                        .quantizer
                        .as_ref()
                        .ok_or_else(|| Error::corrupt(&mpath, "store i8 without its quantizer"))?;
                    qz.check(dim).map_err(|r| Error::corrupt(&mpath, r))?;
                }
                let map = map_file(&dir, &manifest, name)?;
                let h =
                    crate::quant::check_store(&dir.join(name), &map, manifest.store, count, dim)?;
                Some((map, h))
            }
        };
        let postings_file = if manifest.postings {
            if !manifest.has_labels {
                return Err(Error::corrupt(&mpath, "posting lists without labels"));
            }
            let map = map_file(&dir, &manifest, POSTINGS)?;
            let h = crate::postings::check_postings(&dir.join(POSTINGS), &map, count)?;
            Some((map, h))
        } else {
            None
        };
        Ok(Index {
            dir,
            manifest,
            graph,
            vectors,
            meta,
            header,
            layers,
            vectors_offset,
            count,
            dim,
            metric,
            kernel4: metric.kernel4(),
            meta_header,
            compact,
            postings_file,
            postings_mem: OnceLock::new(),
            options: SearchOptions::default(),
        })
    }

    /// How searches run: re-ranking depth, filter plan and its threshold.
    pub fn options(&self) -> SearchOptions {
        self.options
    }

    /// Sets how searches run (see [`SearchOptions`]).
    pub fn set_options(&mut self, options: SearchOptions) -> Result<()> {
        if options.rerank.is_some_and(|r| r == 0 || r > MAX_EF) {
            return Err(Error::param(
                "rerank",
                options.rerank.unwrap_or(0),
                format!("must be in 1..={MAX_EF}"),
            ));
        }
        self.options = options;
        Ok(())
    }

    /// How the vectors the graph search reads are stored.
    pub fn store(&self) -> Store {
        self.manifest.store
    }

    /// The posting lists (mapped, or built from the labels on first use);
    /// `None` without labels.
    fn postings_view(&self) -> Result<Option<PostingsView<'_>>> {
        if let Some((map, h)) = &self.postings_file {
            return crate::postings::view_of(&self.dir.join(POSTINGS), map, h).map(Some);
        }
        Ok(self.labels().map(|l| {
            self.postings_mem
                .get_or_init(|| OwnedPostings::from_labels(l))
                .view()
        }))
    }

    /// The plan of a search for `k` items with `filter` (what `query` and
    /// `/stats` report). Without a filter: the graph.
    pub fn plan(&self, k: usize, filter: Option<&LabelFilter>) -> Result<Plan> {
        let exact_below = self
            .options
            .exact_below
            .unwrap_or_else(|| crate::postings::default_exact_below(self.count));
        let Some(f) = filter else {
            return Ok(Plan {
                kind: PlanKind::Graph,
                passing: None,
                exact_below,
                unknown_labels: Vec::new(),
            });
        };
        let Some(p) = self.postings_view()? else {
            return Err(Error::InvalidInput(
                "a label filter needs an index built with --labels".into(),
            ));
        };
        let (passing, unknown_labels) = p
            .estimate(f, self.count)
            .map_err(|r| Error::corrupt(self.dir.join(POSTINGS), r))?;
        let kind = match self.options.plan {
            PlanChoice::Exact => PlanKind::Exact,
            PlanChoice::Graph => PlanKind::FilteredGraph,
            PlanChoice::Auto if passing <= exact_below.max(k) => PlanKind::Exact,
            PlanChoice::Auto => PlanKind::FilteredGraph,
        };
        Ok(Plan {
            kind,
            passing: Some(passing),
            exact_below,
            unknown_labels,
        })
    }

    /// The directory this index was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the index has no items (never true for a built index).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Vector dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The metric.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Number of graph layers.
    pub fn levels(&self) -> usize {
        self.layers.len()
    }

    /// The stored (for cosine: normalised) vectors, row-major, mapped.
    pub fn vectors(&self) -> &[f32] {
        // Checked at open: in bounds and aligned.
        section::<f32>(
            Path::new(VECTORS),
            &self.vectors,
            self.vectors_offset as u64,
            (self.count * self.dim) as u64,
            "vectors",
        )
        .unwrap_or(&[])
    }

    /// Vector of item `i`.
    pub fn vector(&self, i: usize) -> Option<&[f32]> {
        self.vectors().get(i * self.dim..(i + 1) * self.dim)
    }

    /// Labels of the items, if the index has them (mapped).
    pub fn labels(&self) -> Option<&[i64]> {
        let (m, h) = (self.meta.as_ref()?, self.meta_header.as_ref()?);
        if h.flags & FLAG_LABELS == 0 {
            return None;
        }
        section::<i64>(
            Path::new(META),
            m,
            h.labels_offset,
            self.count as u64,
            "labels",
        )
        .ok()
    }

    /// Scores of the items (`NaN` = none), if the index has them (mapped).
    pub fn scores(&self) -> Option<&[f32]> {
        let (m, h) = (self.meta.as_ref()?, self.meta_header.as_ref()?);
        if h.flags & FLAG_SCORES == 0 {
            return None;
        }
        section::<f32>(
            Path::new(META),
            m,
            h.scores_offset,
            self.count as u64,
            "scores",
        )
        .ok()
    }

    /// Decodes each item's subject and side (empty when the index was built
    /// without them, as every version 1 index was).
    pub fn pairings(&self) -> Result<Vec<ItemPairing>> {
        let (Some(m), Some(h)) = (&self.meta, &self.meta_header) else {
            return Ok(Vec::new());
        };
        if h.flags & FLAG_PAIRINGS == 0 {
            return Ok(Vec::new());
        }
        let path = self.dir.join(META);
        let bytes = section::<u8>(&path, m, h.pairings_offset, h.pairings_len, "pairings")?;
        let p: Vec<ItemPairing> = bincode::DefaultOptions::new()
            .with_limit(h.pairings_len)
            .deserialize(bytes)
            .map_err(|e| Error::corrupt(&path, format!("subjects and sides do not decode: {e}")))?;
        if p.len() != self.count {
            return Err(Error::corrupt(
                &path,
                format!("{} subject/side records for {} items", p.len(), self.count),
            ));
        }
        Ok(p)
    }

    /// Decodes the per-item records of `meta.bin` (empty when the index was
    /// built without them). Reads the whole payload; not needed for search.
    pub fn items(&self) -> Result<Vec<ItemInfo>> {
        let (Some(m), Some(h)) = (&self.meta, &self.meta_header) else {
            return Ok(Vec::new());
        };
        let path = self.dir.join(META);
        let bytes = section::<u8>(&path, m, h.payload_offset, h.payload_len, "payload")?;
        let items: Vec<ItemInfo> = bincode::DefaultOptions::new()
            .with_limit(h.payload_len)
            .deserialize(bytes)
            .map_err(|e| Error::corrupt(&path, format!("item records do not decode: {e}")))?;
        if !items.is_empty() && items.len() != self.count {
            return Err(Error::corrupt(
                &path,
                format!("{} item records for {} items", items.len(), self.count),
            ));
        }
        Ok(items)
    }

    fn view(&self) -> Result<View<'_>> {
        let path = self.dir.join(GRAPH);
        let mut layers = [LayerView::default(); MAX_LEVELS as usize];
        for (l, e) in self.layers.iter().enumerate() {
            layers[l] = LayerView {
                nodes: if l == 0 {
                    &[]
                } else {
                    section(&path, &self.graph, e.nodes_offset, e.nodes, "nodes")?
                },
                offsets: section(&path, &self.graph, e.offsets_offset, e.nodes + 1, "offsets")?,
                neighbours: section(
                    &path,
                    &self.graph,
                    e.neighbours_offset,
                    e.edges,
                    "neighbours",
                )?,
            };
        }
        let codes = match &self.compact {
            Some((map, h)) => {
                let name = self.manifest.store.file_name().unwrap_or_default();
                Some(Codes::view(&self.dir.join(name), map, h)?)
            }
            None => None,
        };
        Ok(View {
            index: self,
            vectors: self.vectors(),
            labels: self.labels(),
            layers,
            codes,
            postings: None,
        })
    }

    /// The view with the posting lists when `filter` plans an exact scan.
    fn planned_view(&self, k: usize, filter: Option<&LabelFilter>) -> Result<View<'_>> {
        let mut view = self.view()?;
        if filter.is_some() && self.plan(k, filter)?.kind == PlanKind::Exact {
            view.postings = self.postings_view()?;
        }
        Ok(view)
    }

    fn check_search_args(&self, k: usize, ef: usize, filter: Option<&LabelFilter>) -> Result<()> {
        if k == 0 || k > MAX_EF {
            return Err(Error::param("k", k, format!("must be in 1..={MAX_EF}")));
        }
        if ef == 0 || ef > MAX_EF {
            return Err(Error::param("ef", ef, format!("must be in 1..={MAX_EF}")));
        }
        if filter.is_some() && self.labels().is_none() {
            return Err(Error::InvalidInput(
                "a label filter needs an index built with --labels".into(),
            ));
        }
        Ok(())
    }

    fn check_dim(&self, got: usize) -> Result<()> {
        if got != self.dim {
            return Err(Error::DimensionMismatch {
                expected: self.dim,
                got,
                hint: "the queries must come from the model that built the index",
            });
        }
        Ok(())
    }

    /// The `k` nearest items of one query with beam width `ef` (raised to
    /// `k` if smaller), nearest first. The query is validated and, for
    /// cosine, normalised (on a per-thread copy).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&LabelFilter>,
    ) -> Result<Neighbours> {
        self.check_dim(query.len())?;
        self.check_search_args(k, ef, filter)?;
        let view = self.planned_view(k, filter)?;
        let mut out = Neighbours::new(1, k);
        let (ids, dists) = out
            .rows_mut()
            .next()
            .ok_or_else(|| Error::InvalidInput("k".into()))?;
        SCRATCH.with(|s| view.search(&mut s.borrow_mut(), query, 0, k, ef, filter, ids, dists))?;
        Ok(out)
    }

    /// As [`Index::search`] for a batch of queries (row-major, `query_dim`
    /// columns), in parallel on rayon.
    pub fn search_batch(
        &self,
        queries: &[f32],
        query_dim: usize,
        k: usize,
        ef: usize,
        filter: Option<&LabelFilter>,
    ) -> Result<Neighbours> {
        self.check_dim(query_dim)?;
        crate::distance::check_shape(queries.len(), query_dim)?;
        self.check_search_args(k, ef, filter)?;
        let view = self.planned_view(k, filter)?;
        let nq = queries.len() / query_dim;
        let mut out = Neighbours::new(nq, k);
        let rows: Vec<_> = out.rows_mut().collect();
        rows.into_par_iter()
            .enumerate()
            .try_for_each(|(q, (ids, dists))| {
                let query = &queries[q * query_dim..(q + 1) * query_dim];
                SCRATCH
                    .with(|s| view.search(&mut s.borrow_mut(), query, q, k, ef, filter, ids, dists))
            })?;
        Ok(out)
    }

    /// Exact k-NN over the mapped vectors (brute force on rayon), with the
    /// same query handling and filter as [`Index::search_batch`].
    pub fn search_exact_batch(
        &self,
        queries: &[f32],
        query_dim: usize,
        k: usize,
        filter: Option<&LabelFilter>,
    ) -> Result<Neighbours> {
        self.check_dim(query_dim)?;
        self.check_search_args(k, k, filter)?;
        let mut q = queries.to_vec();
        self.metric.preprocess(&mut q, query_dim)?;
        match (filter, self.labels()) {
            (Some(f), Some(labels)) => {
                crate::exact::search_filtered(self.vectors(), &q, self.dim, k, self.metric, &|i| {
                    labels.get(i as usize).is_some_and(|&l| f.allows(l))
                })
            }
            _ => crate::exact::search_prepared(self.vectors(), &q, self.dim, k, self.metric, false),
        }
    }

    /// Full check: every file's size and CRC32 against the manifest, then
    /// every row pointer, neighbour id and node list of the graph, the
    /// vectors (finite) and the item records.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            files: Vec::new(),
            bytes: 0,
            edges: 0,
        };
        let compact_name = self.manifest.store.file_name().unwrap_or_default();
        for (name, map) in [
            (GRAPH, Some(&self.graph)),
            (VECTORS, Some(&self.vectors)),
            (META, self.meta.as_ref()),
            (compact_name, self.compact.as_ref().map(|c| &c.0)),
            (POSTINGS, self.postings_file.as_ref().map(|p| &p.0)),
        ] {
            let Some(map) = map else { continue };
            let path = self.dir.join(name);
            let entry = self.manifest.file(&self.dir, name)?;
            let actual = crc32fast::hash(map);
            if actual != entry.crc32 {
                return Err(Error::ChecksumMismatch {
                    path,
                    expected: entry.crc32,
                    actual,
                });
            }
            report.files.push(name.to_string());
            report.bytes += map.len() as u64;
        }
        let view = self.view()?;
        let path = self.dir.join(GRAPH);
        for l in 0..self.layers.len() {
            let lv = &view.layers[l];
            if l > 0 {
                if lv.nodes.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(Error::corrupt(
                        &path,
                        format!("layer {l}: node list is not strictly increasing"),
                    ));
                }
                if lv.nodes.last().is_some_and(|&x| x as usize >= self.count) {
                    return Err(Error::corrupt(
                        &path,
                        format!("layer {l}: node id out of range"),
                    ));
                }
            }
            if lv.offsets.windows(2).any(|w| w[0] > w[1]) {
                return Err(Error::corrupt(
                    &path,
                    format!("layer {l}: row pointers decrease"),
                ));
            }
            for (pos, &j) in lv.neighbours.iter().enumerate() {
                let ok = if l == 0 {
                    (j as usize) < self.count
                } else {
                    lv.nodes.binary_search(&j).is_ok()
                };
                if !ok {
                    return Err(Error::corrupt(
                        &path,
                        format!("layer {l}: neighbour id {j} at position {pos} is not an item of the layer"),
                    ));
                }
            }
            report.edges += lv.neighbours.len() as u64;
        }
        crate::distance::check_finite(view.vectors, self.dim)
            .map_err(|e| Error::corrupt(self.dir.join(VECTORS), e.to_string()))?;
        if let Some(c) = &view.codes {
            c.check_values()
                .map_err(|r| Error::corrupt(self.dir.join(compact_name), r))?;
        }
        if let (Some(_), Some(labels)) = (&self.postings_file, self.labels()) {
            if let Some(p) = self.postings_view()? {
                p.check(labels)
                    .map_err(|r| Error::corrupt(self.dir.join(POSTINGS), r))?;
            }
        }
        self.items()?;
        Ok(report)
    }
}

impl View<'_> {
    fn corrupt(&self, reason: String) -> Error {
        Error::corrupt(self.index.dir.join(GRAPH), reason)
    }

    /// Neighbours of global id `i` in layer `l`.
    #[inline]
    fn neighbours(&self, l: usize, i: u32) -> Result<&[u32]> {
        let lv = &self.layers[l];
        let row = if l == 0 {
            i as usize
        } else {
            lv.nodes.binary_search(&i).map_err(|_| {
                self.corrupt(format!(
                    "layer {l} links to item {i}, which is not in that layer"
                ))
            })?
        };
        let (a, b) = match (lv.offsets.get(row), lv.offsets.get(row + 1)) {
            (Some(&a), Some(&b)) if a <= b && b <= lv.neighbours.len() as u64 => {
                (a as usize, b as usize)
            }
            _ => return Err(self.corrupt(format!("layer {l}: bad row pointers for item {i}"))),
        };
        Ok(&lv.neighbours[a..b])
    }

    /// Hints the CPU to load the first `lines` cache lines of item `i`'s
    /// vector.
    #[inline]
    fn prefetch_vector(&self, i: u32, lines: usize) {
        let d = self.index.dim;
        let start = (i as usize).saturating_mul(d);
        if let Some(v) = self.vectors.get(start..start.saturating_add(d)) {
            for line in v.chunks(16).take(lines) {
                prefetch(line);
            }
        }
    }

    /// Hints the CPU to load the row pointer of item `i` on layer 0.
    #[inline]
    fn prefetch_row_pointer(&self, i: u32) {
        if let Some(p) = self.layers[0].offsets.get(i as usize..) {
            prefetch(p);
        }
    }

    /// Hints the CPU to load the start of item `i`'s layer-0 neighbour list
    /// (its row pointer should be in cache already).
    #[inline]
    fn prefetch_row(&self, i: u32) {
        let lv = &self.layers[0];
        if let Some(&a) = lv.offsets.get(i as usize) {
            if let Some(row) = lv.neighbours.get(a as usize..) {
                prefetch(row);
            }
        }
    }

    #[inline]
    fn vector(&self, i: u32) -> Result<&[f32]> {
        let d = self.index.dim;
        let range = (i as usize)
            .checked_mul(d)
            .and_then(|s| Some(s..s.checked_add(d)?));
        range.and_then(|r| self.vectors.get(r)).ok_or_else(|| {
            self.corrupt(format!(
                "neighbour id {i} is out of range (the index has {} items)",
                self.index.count
            ))
        })
    }

    /// Distances from `q` to the items `ids` into `out`: see
    /// [`crate::distance::distances4`]; with a compact store, the
    /// approximate distances from `qc` (the query prepared for it).
    #[inline]
    fn distances(
        &self,
        q: &[f32],
        qc: &QueryCode,
        dist: DistanceFn4,
        ids: &[u32],
        bound: f32,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let Some(codes) = &self.codes else {
            return crate::distance::distances4(q, ids, bound, dist, |j| self.vector(j), out);
        };
        out.clear();
        for (n, &j) in ids.iter().enumerate() {
            if let Some(&next) = ids.get(n + 2) {
                codes.prefetch(next, COMPACT_PREFETCH_LINES);
            }
            let d = codes.distance(qc, j).ok_or_else(|| {
                self.corrupt(format!(
                    "neighbour id {j} is out of range (the index has {} items)",
                    self.index.count
                ))
            })?;
            out.push(d);
        }
        Ok(())
    }

    /// Hints the CPU to load the start of the vector the beam reads for `i`.
    #[inline]
    fn prefetch_item(&self, i: u32) {
        match &self.codes {
            Some(c) => c.prefetch(i, COMPACT_PREFETCH_LINES),
            None => self.prefetch_vector(i, 4),
        }
    }

    /// The exact plan: scans the items that pass `filter` (from the posting
    /// lists for a one-of filter, else every item's label) with the float32
    /// vectors; the `k` nearest go to `ids`/`dists`.
    #[allow(clippy::too_many_arguments)]
    fn search_exact(
        &self,
        s: &mut Scratch,
        q: &[f32],
        k: usize,
        filter: &LabelFilter,
        postings: &PostingsView<'_>,
        ids: &mut [i64],
        dists: &mut [f32],
    ) -> Result<()> {
        let ix = self.index;
        let dist = ix.metric.kernel();
        let results = s.results.get_or_insert_with(|| TopK::new(k));
        results.clear_with(k);
        let mut consider = |i: u32| -> Result<()> {
            let d = dist(q, self.vector(i)?);
            if results.len() < k || d < results.bound() {
                results.push(Cand { dist: d, id: i });
            }
            Ok(())
        };
        match (filter, self.labels) {
            (LabelFilter::Only(set), _) => {
                for &l in set {
                    let list = postings
                        .list(l)
                        .map_err(|r| Error::corrupt(ix.dir.join(POSTINGS), r))?;
                    for &i in list.unwrap_or(&[]) {
                        consider(i)?;
                    }
                }
            }
            (LabelFilter::Except(_), Some(labels)) => {
                for (i, &l) in labels.iter().enumerate() {
                    if filter.allows(l) {
                        consider(i as u32)?;
                    }
                }
            }
            (LabelFilter::Except(_), None) => {}
        }
        results.drain_into(ids, dists);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        s: &mut Scratch,
        query: &[f32],
        qno: usize,
        k: usize,
        ef: usize,
        filter: Option<&LabelFilter>,
        ids: &mut [i64],
        dists: &mut [f32],
    ) -> Result<()> {
        let ix = self.index;
        let dist = ix.kernel4;
        // Validate and normalise the query into the scratch copy.
        let mut qbuf = std::mem::take(&mut s.query);
        qbuf.clear();
        qbuf.extend_from_slice(query);
        let res = match ix.metric.preprocess(&mut qbuf, ix.dim) {
            Ok(()) => match (filter, &self.postings) {
                (Some(f), Some(p)) => self.search_exact(s, &qbuf, k, f, p, ids, dists),
                _ => self.search_prepared(s, &qbuf, k, ef, filter, dist, ids, dists),
            },
            Err(Error::NonFinite { col, value, .. }) => Err(Error::NonFinite {
                row: qno,
                col,
                value,
            }),
            Err(Error::ZeroVector { .. }) => Err(Error::ZeroVector { row: qno }),
            Err(e) => Err(e),
        };
        s.query = qbuf;
        res
    }

    #[allow(clippy::too_many_arguments)]
    fn search_prepared(
        &self,
        s: &mut Scratch,
        q: &[f32],
        k: usize,
        ef: usize,
        filter: Option<&LabelFilter>,
        dist: DistanceFn4,
        ids: &mut [i64],
        dists: &mut [f32],
    ) -> Result<()> {
        let ix = self.index;
        let rerank = ix.options.rerank;
        let ef = match self.codes {
            Some(_) => ef.max(k).max(rerank.unwrap_or(0)),
            None => ef.max(k),
        };
        let mut qc = std::mem::take(&mut s.qcode);
        if self.codes.is_some() {
            qc.prepare(
                ix.manifest.store,
                ix.metric,
                ix.manifest.quantizer.as_ref(),
                q,
            );
        }
        let res = self.beam(s, q, &qc, k, ef, filter, dist);
        s.qcode = qc;
        res?;
        if self.codes.is_some() {
            // Re-rank: the best candidates of the compact store, re-scored
            // with the float32 vectors, so returned distances are exact.
            let exact = ix.metric.kernel();
            let r = rerank.unwrap_or(ef).max(k).min(s.sorted.len());
            for c in &mut s.sorted[..r] {
                c.dist = exact(q, self.vector(c.id)?);
            }
            s.sorted[..r].sort_unstable();
        }
        ids.fill(crate::neighbours::MISSING);
        dists.fill(f32::INFINITY);
        for (slot, c) in s.sorted.iter().take(k).enumerate() {
            ids[slot] = i64::from(c.id);
            dists[slot] = c.dist;
        }
        Ok(())
    }

    /// Greedy descent, then the beam of width `ef` on layer 0 (filtered
    /// inside the beam when `filter` is given); leaves the results in
    /// `s.sorted`, nearest first.
    #[allow(clippy::too_many_arguments)]
    fn beam(
        &self,
        s: &mut Scratch,
        q: &[f32],
        qc: &QueryCode,
        k: usize,
        ef: usize,
        filter: Option<&LabelFilter>,
        dist: DistanceFn4,
    ) -> Result<()> {
        let ix = self.index;
        let _ = k;
        let mut cur = ix.header.entry_point;
        self.distances(q, qc, dist, &[cur], f32::INFINITY, &mut s.batch_dist)?;
        let mut cur_d = s.batch_dist[0];
        // Greedy descent through the upper layers.
        for l in (1..ix.layers.len()).rev() {
            loop {
                let nbrs = self.neighbours(l, cur)?;
                self.distances(q, qc, dist, nbrs, cur_d, &mut s.batch_dist)?;
                let mut changed = false;
                for (&j, &d) in nbrs.iter().zip(&s.batch_dist) {
                    if d < cur_d {
                        cur_d = d;
                        cur = j;
                        changed = true;
                    }
                }
                if !changed {
                    break;
                }
            }
        }
        // Beam search on layer 0.
        s.begin(ix.count);
        let results = s.results.get_or_insert_with(|| TopK::new(ef));
        results.clear_with(ef);
        let passes = |i: u32| match (filter, self.labels) {
            (Some(f), Some(labels)) => labels.get(i as usize).is_some_and(|&l| f.allows(l)),
            _ => true,
        };
        let _ = s.visited.visit(cur);
        s.candidates.push(Reverse(Cand {
            dist: cur_d,
            id: cur,
        }));
        if passes(cur) {
            results.push(Cand {
                dist: cur_d,
                id: cur,
            });
        }
        while let Some(Reverse(c)) = s.candidates.pop() {
            if c.dist > results.bound() && (filter.is_none() || results.len() >= ef) {
                break;
            }
            // The next node to expand is likely the next best candidate.
            if let Some(Reverse(next)) = s.candidates.peek() {
                self.prefetch_row(next.id);
            }
            // Mark the unvisited neighbours and start loading their vectors,
            // then compute their distances four at a time.
            s.batch.clear();
            for &j in self.neighbours(0, c.id)? {
                match s.visited.visit(j) {
                    Some(true) => {}
                    Some(false) => continue,
                    None => {
                        return Err(self.corrupt(format!(
                            "neighbour id {j} is out of range (the index has {} items)",
                            ix.count
                        )))
                    }
                }
                self.prefetch_item(j);
                s.batch.push(j);
            }
            // Only distances below the current bound matter (it can only
            // shrink while this batch is added), so the kernel may stop early.
            self.distances(q, qc, dist, &s.batch, results.bound(), &mut s.batch_dist)?;
            for (&j, &d) in s.batch.iter().zip(&s.batch_dist) {
                if results.len() < ef || d < results.bound() {
                    self.prefetch_row_pointer(j);
                    s.candidates.push(Reverse(Cand { dist: d, id: j }));
                    if passes(j) {
                        results.push(Cand { dist: d, id: j });
                    }
                }
            }
        }
        results.drain_sorted(&mut s.sorted);
        Ok(())
    }
}

/// Cache lines of a compact row prefetched ahead of its distance (i8 rows
/// of 784 dimensions are 13 lines; the hardware prefetcher streams the rest).
const COMPACT_PREFETCH_LINES: usize = 8;

/// Structural checks of `graph.bin` in O(levels): returns count, dim, metric
/// and the layer table.
fn check_graph(
    path: &Path,
    bytes: &[u8],
    h: &GraphHeader,
) -> Result<(usize, usize, Metric, Vec<LayerEntry>)> {
    let bad = |r: String| Error::corrupt(path, r);
    if h.header_size as usize != HEADER_SIZE {
        return Err(bad(format!(
            "header size {} (expected {HEADER_SIZE})",
            h.header_size
        )));
    }
    let count = usize::try_from(h.count)
        .ok()
        .filter(|&c| c >= 1 && c < u32::MAX as usize)
        .ok_or_else(|| bad(format!("item count {}", h.count)))?;
    let dim = h.dim as usize;
    if dim == 0 {
        return Err(bad("dimension 0".into()));
    }
    let metric = match h.metric {
        0 => Metric::Cosine,
        1 => Metric::L2,
        m => return Err(bad(format!("unknown metric code {m}"))),
    };
    if !(1..=MAX_LEVELS).contains(&h.levels) {
        return Err(bad(format!(
            "{} levels (1..={MAX_LEVELS} allowed)",
            h.levels
        )));
    }
    if h.m == 0 || h.m0 < h.m {
        return Err(bad(format!("m = {}, m0 = {}", h.m, h.m0)));
    }
    if u64::from(h.entry_point) >= h.count {
        return Err(bad(format!("entry point {} out of range", h.entry_point)));
    }
    let levels = h.levels as usize;
    let table: Vec<LayerEntry> = {
        let raw = section::<u8>(
            path,
            bytes,
            HEADER_SIZE as u64,
            (levels * std::mem::size_of::<LayerEntry>()) as u64,
            "layer table",
        )?;
        raw.chunks_exact(std::mem::size_of::<LayerEntry>())
            .map(bytemuck::pod_read_unaligned)
            .collect()
    };
    let mut end = (HEADER_SIZE + levels * std::mem::size_of::<LayerEntry>()) as u64;
    let mut prev_nodes = h.count;
    for (l, e) in table.iter().enumerate() {
        if l == 0 && (e.nodes != h.count || e.nodes_offset != 0) {
            return Err(bad(format!(
                "layer 0 has {} rows for {} items",
                e.nodes, h.count
            )));
        }
        if e.nodes == 0 || e.nodes > prev_nodes {
            return Err(bad(format!(
                "layer {l} has {} nodes (layer below: {prev_nodes})",
                e.nodes
            )));
        }
        prev_nodes = e.nodes;
        let max_deg = u64::from(if l == 0 { h.m0 } else { h.m });
        if e.edges > e.nodes.saturating_mul(max_deg) {
            return Err(bad(format!(
                "layer {l} has {} edges, more than {} nodes × {max_deg}",
                e.edges, e.nodes
            )));
        }
        let nodes: &[u32] = if l > 0 {
            section(path, bytes, e.nodes_offset, e.nodes, "nodes")?
        } else {
            &[]
        };
        let offsets: &[u64] = section(path, bytes, e.offsets_offset, e.nodes + 1, "row pointers")?;
        section::<u32>(path, bytes, e.neighbours_offset, e.edges, "neighbours")?;
        if offsets.first() != Some(&0) || offsets.last() != Some(&e.edges) {
            return Err(bad(format!(
                "layer {l}: row pointers do not span the {} edges",
                e.edges
            )));
        }
        if l == levels - 1 && nodes.binary_search(&h.entry_point).is_err() && l > 0 {
            return Err(bad(format!(
                "entry point {} is not in the top layer",
                h.entry_point
            )));
        }
        for x in [
            e.nodes_offset + 4 * if l > 0 { e.nodes } else { 0 },
            e.offsets_offset + 8 * (e.nodes + 1),
            e.neighbours_offset + 4 * e.edges,
        ] {
            end = end.max(x);
        }
    }
    let len = bytes.len() as u64;
    if len != end {
        return Err(bad(format!(
            "file is {len} bytes but its sections end at {end}"
        )));
    }
    Ok((count, dim, metric, table))
}

/// Checks the `.npy` header of `vectors.npy`; returns the data offset.
fn check_vectors(path: &Path, bytes: &[u8], count: usize, dim: usize) -> Result<usize> {
    let h = crate::npy::parse_header(bytes).map_err(|r| Error::Npy {
        path: path.to_path_buf(),
        reason: r,
    })?;
    let d = h.dtype;
    if d.kind != crate::npy::Kind::Float || d.size != 4 || d.big_endian || h.fortran_order {
        return Err(Error::corrupt(
            path,
            "vectors must be little-endian float32 in C order",
        ));
    }
    if h.shape != [count, dim] {
        return Err(Error::corrupt(
            path,
            format!(
                "shape {:?} does not match graph.bin ({count}, {dim})",
                h.shape
            ),
        ));
    }
    let values = count
        .checked_mul(dim)
        .filter(|v| v.checked_mul(4).is_some())
        .ok_or_else(|| Error::corrupt(path, format!("{count} × {dim} values overflow")))?;
    section::<f32>(path, bytes, h.data_offset as u64, values as u64, "vectors")?;
    let want = (h.data_offset as u64).saturating_add(4 * values as u64);
    if bytes.len() as u64 != want {
        return Err(Error::corrupt(
            path,
            format!("{} bytes, expected {want}", bytes.len()),
        ));
    }
    Ok(h.data_offset)
}

fn check_meta(path: &Path, bytes: &[u8], count: usize) -> Result<MetaHeader> {
    let h: MetaHeader = read_header(
        path,
        bytes,
        &META_MAGIC,
        "LKNSMETA",
        |h: &MetaHeader| h.version,
        |h| h.header_crc,
    )?;
    if h.count != count as u64 {
        return Err(Error::corrupt(
            path,
            format!("{} records for {count} items", h.count),
        ));
    }
    let known = if h.version >= 2 {
        FLAG_LABELS | FLAG_SCORES | FLAG_PAIRINGS
    } else {
        FLAG_LABELS
    };
    if h.flags & !known != 0 {
        return Err(Error::corrupt(
            path,
            format!("unknown flags {:#x} for version {}", h.flags, h.version),
        ));
    }
    if h.flags & FLAG_LABELS != 0 {
        section::<i64>(path, bytes, h.labels_offset, h.count, "labels")?;
    }
    if h.flags & FLAG_SCORES != 0 {
        section::<f32>(path, bytes, h.scores_offset, h.count, "scores")?;
    }
    section::<u8>(path, bytes, h.payload_offset, h.payload_len, "payload")?;
    let mut end = h.payload_offset.saturating_add(h.payload_len);
    if h.flags & FLAG_PAIRINGS != 0 {
        section::<u8>(path, bytes, h.pairings_offset, h.pairings_len, "pairings")?;
        end = end.max(h.pairings_offset.saturating_add(h.pairings_len));
    }
    if bytes.len() as u64 != end {
        return Err(Error::corrupt(
            path,
            format!(
                "file is {} bytes but its sections end at {end}",
                bytes.len()
            ),
        ));
    }
    Ok(h)
}

/// One result of a query as it is shown to people and programs (`query`
/// tables and JSON, `serve` answers).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    /// 1 for the nearest.
    pub rank: usize,
    pub id: i64,
    pub distance: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<i64>,
    /// The label's name, when the index records class names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Source of the item (image path; `path#row` for an IDX row).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Region of the source, `[x0, y0, x1, y1]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<[f32; 4]>,
    /// The item's score, when the index has scores and this item one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

impl Index {
    /// The hits of query row `q` of `found`, with labels and class names
    /// from this index and paths and regions from `items` (its decoded
    /// [`Index::items`], when the caller has them).
    pub fn hits(&self, items: Option<&[ItemInfo]>, found: &Neighbours, q: usize) -> Vec<Hit> {
        let labels = self.labels();
        let scores = self.scores();
        let classes = &self.manifest().classes;
        found
            .ids(q)
            .iter()
            .zip(found.distances(q))
            .enumerate()
            .filter(|(_, (&id, _))| id >= 0)
            .map(|(r, (&id, &distance))| {
                let i = id as usize;
                let label = labels.and_then(|l| l.get(i).copied());
                let info = items.and_then(|it| it.get(i));
                Hit {
                    rank: r + 1,
                    id,
                    distance,
                    label,
                    class: label
                        .and_then(|l| usize::try_from(l).ok())
                        .and_then(|l| classes.get(l).cloned()),
                    path: info.map(|i| i.source.clone()).filter(|s| !s.is_empty()),
                    region: info.and_then(|i| i.region),
                    score: scores
                        .and_then(|s| s.get(i).copied())
                        .filter(|s| s.is_finite()),
                }
            })
            .collect()
    }
}
