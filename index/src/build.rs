//! Building an index directory: validate, preprocess, build the HNSW graph
//! (with our own builder, [`crate::hnsw`], or with `hnsw_rs`, exported
//! through its public API), write every file with its CRC32 through the
//! writer of the module that owns its format ([`crate::format::graph`],
//! [`crate::format::meta`], [`crate::quant`], [`crate::postings`]) and
//! publish the directory atomically.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

#[cfg(feature = "hnsw-rs")]
use hnsw_rs::hnsw::Hnsw;

#[cfg(feature = "hnsw-rs")]
use crate::distance::DistanceFn;
use crate::distance::Metric;
use crate::error::{Error, Result};
use crate::format::graph::GraphParams;
pub use crate::format::meta::ItemInfo;
use crate::format::meta::ItemPairing;
use crate::format::meta::{self, MetaSections};
use crate::format::VERSION;
use crate::fsutil::TempDir;
use crate::graph::Graph;
pub use crate::graph::Progress;
#[cfg(feature = "hnsw-rs")]
use crate::graph::{insertion_order, Layer, BATCH};
use crate::manifest::{
    BuildParams, FileEntry, Manifest, Tool, FORMAT_NAME, GRAPH, MANIFEST, META, POSTINGS, VECTORS,
};
use crate::quant::{Quantizer, Store, DEFAULT_QUANTILE};

#[cfg(feature = "hnsw-rs")]
/// Layers hnsw_rs may create (its `NB_LAYER_MAX`).
const HNSW_MAX_LAYER: usize = 16;
/// Largest `m` hnsw_rs accepts (it exits the process above this).
pub const MAX_M: usize = 256;
/// Links per node unless asked otherwise (hnswlib's and faiss's default).
pub const DEFAULT_M: usize = 16;
/// Beam width while building unless asked otherwise (hnswlib's default).
pub const DEFAULT_EF_CONSTRUCTION: usize = 200;
/// Largest `ef_construction` accepted.
pub const MAX_EF_CONSTRUCTION: usize = 100_000;

/// Which code builds the HNSW graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphBuilder {
    /// Our builder ([`crate::hnsw`]): hnswlib's algorithm over flat link
    /// arrays; the default (about twice as fast as hnsw_rs, see the module).
    #[default]
    Native,
    /// hnsw_rs 0.3.5, exported through its public API (the cross-check).
    HnswRs,
}

impl GraphBuilder {
    /// The name recorded in the manifest (`build.builder`).
    pub fn describe(self) -> String {
        match self {
            GraphBuilder::Native => format!("likeness-index {}", env!("CARGO_PKG_VERSION")),
            GraphBuilder::HnswRs => "hnsw_rs 0.3.5".into(),
        }
    }
}

impl std::str::FromStr for GraphBuilder {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "native" => Ok(GraphBuilder::Native),
            "hnsw_rs" | "hnsw-rs" => Ok(GraphBuilder::HnswRs),
            other => Err(Error::param(
                "builder",
                other,
                "expected `native` or `hnsw_rs`",
            )),
        }
    }
}

/// Builds index directories.
///
/// Defaults follow the HNSW paper (Malkov and Yashunin 2018) and hnswlib:
/// `m = 16`, `ef_construction = 200`, cosine metric, all threads, seed 0.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexBuilder {
    m: usize,
    ef_construction: usize,
    seed: u64,
    metric: Metric,
    threads: usize,
    model_fingerprint: Option<String>,
    model_dir: Option<String>,
    classes: Vec<String>,
    overwrite: bool,
    graph_builder: GraphBuilder,
    scores: Option<Vec<f32>>,
    pairings: Option<Vec<ItemPairing>>,
    store: Store,
    quantile: f32,
}

impl Default for IndexBuilder {
    fn default() -> Self {
        IndexBuilder {
            m: DEFAULT_M,
            ef_construction: DEFAULT_EF_CONSTRUCTION,
            seed: 0,
            metric: Metric::Cosine,
            threads: 0,
            model_fingerprint: None,
            model_dir: None,
            classes: Vec::new(),
            overwrite: false,
            graph_builder: GraphBuilder::Native,
            scores: None,
            pairings: None,
            store: Store::F32,
            quantile: DEFAULT_QUANTILE,
        }
    }
}

/// What [`IndexBuilder::build`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildReport {
    /// Items indexed.
    pub count: usize,
    /// Graph layers.
    pub levels: usize,
    /// Seconds spent in graph construction.
    pub graph_seconds: f64,
    /// Seconds for everything.
    pub total_seconds: f64,
    /// Total bytes of the index files.
    pub bytes: u64,
}

impl IndexBuilder {
    /// A builder with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Links per node in upper layers (layer 0 keeps `2 m`); 2..=256.
    #[must_use]
    pub fn m(mut self, m: usize) -> Self {
        self.m = m;
        self
    }

    /// Beam width during construction; 1..=100000.
    #[must_use]
    pub fn ef_construction(mut self, ef: usize) -> Self {
        self.ef_construction = ef;
        self
    }

    /// Seed of the insertion order (a seeded shuffle, so data sorted by class
    /// does not bias the graph). With one thread the build is reproducible.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The metric.
    #[must_use]
    pub fn metric(mut self, metric: Metric) -> Self {
        self.metric = metric;
        self
    }

    /// Threads for construction; 0 = rayon's default (all cores).
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Records a fingerprint of the model that made the vectors.
    #[must_use]
    pub fn model_fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.model_fingerprint = Some(fingerprint.into());
        self
    }

    /// Records the directory of the model that made the vectors (image
    /// queries load it from there).
    #[must_use]
    pub fn model_dir(mut self, dir: impl Into<String>) -> Self {
        self.model_dir = Some(dir.into());
        self
    }

    /// Records the names of the labels (`classes[label]`): one per label,
    /// so `build` refuses a label outside `0..classes.len()`.
    #[must_use]
    pub fn classes(mut self, classes: Vec<String>) -> Self {
        self.classes = classes;
        self
    }

    /// Replace an existing index directory at the output path. The new index
    /// is built and synced beside it first, so a failed build leaves the old
    /// one untouched; only a directory that holds a `manifest.json` (or
    /// nothing at all) is replaced, never an arbitrary folder.
    #[must_use]
    pub fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Which code builds the graph (default: [`GraphBuilder::Native`]).
    #[must_use]
    pub fn graph_builder(mut self, builder: GraphBuilder) -> Self {
        self.graph_builder = builder;
        self
    }

    /// Records a score per item (`NaN` = none) in `meta.bin`, for score
    /// prediction from neighbours ([`crate::score`]).
    #[must_use]
    pub fn scores(mut self, scores: Vec<f32>) -> Self {
        self.scores = Some(scores);
        self
    }

    /// Records each item's subject and side in `meta.bin`.
    #[must_use]
    pub fn pairings(mut self, pairings: Vec<ItemPairing>) -> Self {
        self.pairings = Some(pairings);
        self
    }

    /// How the vectors the graph search reads are stored (default f32;
    /// `f16` and `i8` add a compact copy and re-rank with float32, see
    /// [`crate::quant`]).
    #[must_use]
    pub fn store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    /// Central fraction of each dimension's values the i8 codes span
    /// (default 0.99); the rest are clipped.
    #[must_use]
    pub fn quantile(mut self, quantile: f32) -> Self {
        self.quantile = quantile;
        self
    }

    /// Checks the parameters without building, so that a caller can refuse
    /// bad ones before long work (embedding a gallery); `build` checks them
    /// too.
    pub fn validate(&self) -> Result<()> {
        if !(2..=MAX_M).contains(&self.m) {
            return Err(Error::param("m", self.m, format!("must be in 2..={MAX_M}")));
        }
        if !(1..=MAX_EF_CONSTRUCTION).contains(&self.ef_construction) {
            return Err(Error::param(
                "ef-construction",
                self.ef_construction,
                format!("must be in 1..={MAX_EF_CONSTRUCTION}"),
            ));
        }
        if !(self.quantile > 0.0 && self.quantile <= 1.0) {
            return Err(Error::param("quantile", self.quantile, "must be in (0, 1]"));
        }
        if self.threads > 4096 {
            return Err(Error::param(
                "threads",
                self.threads,
                "must be at most 4096",
            ));
        }
        if let Some(f) = &self.model_fingerprint {
            if f.len() > 4096 {
                return Err(Error::param(
                    "model fingerprint",
                    f.len(),
                    "must be at most 4096 bytes",
                ));
            }
        }
        Ok(())
    }

    /// Builds an index of `vectors` (row-major, `dim` columns) into
    /// `out_dir`, which must not exist yet. `labels` and `items`, when given,
    /// have one entry per vector. Vectors are validated (no NaN/Inf; no zero
    /// rows for cosine) and normalised for cosine.
    ///
    /// The phases: [`check_inputs`](Self::check_inputs), preparing the
    /// vectors, [`build_graph`](Self::build_graph),
    /// [`write_files`](Self::write_files) into a sibling temporary
    /// directory, [`write_manifest`](Self::write_manifest) and the atomic
    /// publication ([`publish`](Self::publish)).
    pub fn build(
        &self,
        vectors: &[f32],
        dim: usize,
        labels: Option<&[i64]>,
        items: Option<&[ItemInfo]>,
        out_dir: &Path,
        progress: Option<Progress<'_>>,
    ) -> Result<BuildReport> {
        let start = Instant::now();
        let n = self.check_inputs(vectors, dim, labels, items, out_dir)?;
        // Held from before the long work to the publication, so a writer
        // cannot change the index while it is being replaced (its changes,
        // acknowledged, would vanish with the old directory): it gets
        // `Busy`, and so does this build while a writer has the index open.
        let _replacing = self.lock_replaced(out_dir)?;
        let data = self.prepare_vectors(vectors, dim)?;
        let threads = if self.threads == 0 {
            rayon::current_num_threads()
        } else {
            self.threads
        };
        let t_graph = Instant::now();
        let graph = self.build_graph(&data, dim, threads, progress)?;
        let graph_seconds = t_graph.elapsed().as_secs_f64();
        let tmp = TempDir::sibling_of(out_dir)?;
        let (files, quantizer) = self.write_files(tmp.path(), &data, dim, &graph, labels, items)?;
        let bytes = files.values().map(|f| f.size).sum();
        let manifest = self.manifest(n, dim, &graph, labels.is_some(), threads, quantizer, files);
        self.write_manifest(tmp.path(), &manifest)?;
        self.publish(tmp, out_dir)?;
        Ok(BuildReport {
            count: n,
            levels: graph.layers.len(),
            graph_seconds,
            total_seconds: start.elapsed().as_secs_f64(),
            bytes,
        })
    }

    /// Phase 1: the parameters, the inputs' shapes and lengths, and the
    /// output path (absent, or replaceable with `overwrite`; its parent is
    /// created). Returns the number of vectors.
    fn check_inputs(
        &self,
        vectors: &[f32],
        dim: usize,
        labels: Option<&[i64]>,
        items: Option<&[ItemInfo]>,
        out_dir: &Path,
    ) -> Result<usize> {
        self.validate()?;
        crate::distance::check_shape(vectors.len(), dim)?;
        let n = vectors.len() / dim;
        if n == 0 {
            return Err(Error::InvalidInput("no vectors to index".into()));
        }
        if n >= u32::MAX as usize || dim > u32::MAX as usize {
            return Err(Error::InvalidInput(format!(
                "{n} vectors of dimension {dim}: at most {} vectors and dimension {} are supported",
                u32::MAX - 1,
                u32::MAX
            )));
        }
        let same_length = |what: &str, len: Option<usize>| match len {
            Some(len) if len != n => {
                Err(Error::InvalidInput(format!("{n} vectors but {len} {what}")))
            }
            _ => Ok(()),
        };
        same_length("labels", labels.map(<[i64]>::len))?;
        same_length("item records", items.map(<[ItemInfo]>::len))?;
        same_length("scores", self.scores.as_ref().map(Vec::len))?;
        if let Some(s) = &self.scores {
            if let Some(i) = s.iter().position(|v| v.is_infinite()) {
                return Err(Error::InvalidInput(format!(
                    "score of item {i} is infinite; scores must be finite (NaN = none)"
                )));
            }
        }
        same_length("subject/side records", self.pairings.as_ref().map(Vec::len))?;
        self.check_class_names(labels)?;
        if out_dir.exists() {
            if !self.overwrite {
                return Err(Error::InvalidInput(format!(
                    "{} already exists; remove it, choose another --out or pass --force",
                    out_dir.display()
                )));
            }
            crate::fsutil::check_replaceable(out_dir, MANIFEST)?;
        }
        if let Some(parent) = out_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        Ok(n)
    }

    /// With class names, every label must have one (`classes[label]`):
    /// else a label past the list is nameless, and the first new class
    /// name added later takes that label, which items already carry.
    fn check_class_names(&self, labels: Option<&[i64]>) -> Result<()> {
        let n = self.classes.len();
        if n == 0 {
            return Ok(());
        }
        let named = 0..n as i64;
        match labels
            .into_iter()
            .flatten()
            .enumerate()
            .find(|(_, l)| !named.contains(l))
        {
            Some((i, l)) => Err(Error::InvalidInput(format!(
                "label {l} (item {i}) has no class name: {n} class name{} given, for labels 0..{n}; give one class name per label, in label order (or none)",
                if n == 1 { " was" } else { "s were" }
            ))),
            None => Ok(()),
        }
    }

    /// The lock of the index that `out_dir` holds, when this build will
    /// replace it (see [`crate::fsutil::DirLock`]); a directory that is
    /// empty has no writer to exclude.
    fn lock_replaced(&self, out_dir: &Path) -> Result<Option<crate::fsutil::DirLock>> {
        if self.overwrite && out_dir.join(MANIFEST).is_file() {
            crate::fsutil::DirLock::acquire(out_dir).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Phase 2: the working copy of the vectors, checked (finite; no zero
    /// rows for cosine) and normalised for cosine.
    fn prepare_vectors(&self, vectors: &[f32], dim: usize) -> Result<WorkingCopy> {
        let mut data = WorkingCopy::of(vectors);
        self.metric.preprocess(&mut data, dim)?;
        Ok(data)
    }

    /// Phase 3: the HNSW graph of the prepared vectors, by the chosen
    /// builder.
    fn build_graph(
        &self,
        data: &[f32],
        dim: usize,
        threads: usize,
        progress: Option<Progress<'_>>,
    ) -> Result<Graph> {
        match self.graph_builder {
            GraphBuilder::Native => crate::hnsw::build(
                data,
                dim,
                crate::hnsw::Params {
                    metric: self.metric,
                    m: self.m,
                    ef_construction: self.ef_construction,
                    seed: self.seed,
                    threads,
                },
                progress,
            ),
            #[cfg(feature = "hnsw-rs")]
            GraphBuilder::HnswRs => Ok(build_graph(data, dim, self, threads, progress)?.0),
            #[cfg(not(feature = "hnsw-rs"))]
            GraphBuilder::HnswRs => Err(Error::InvalidInput(
                "this likeness was built without hnsw_rs (feature `hnsw-rs` of \
                 likeness-index); use the default builder or rebuild with \
                 `--features likeness-index/hnsw-rs`"
                    .into(),
            )),
        }
    }

    /// What `graph.bin`'s header records of this build.
    fn graph_params(&self, dim: usize) -> GraphParams {
        GraphParams {
            dim,
            metric: self.metric,
            seed: self.seed,
            ef_construction: self.ef_construction,
        }
    }

    /// Phase 4: every file but the manifest into `dir`, each through the
    /// writer of the module that owns its format; returns their sizes and
    /// CRC32s, and the i8 store's quantizer.
    fn write_files(
        &self,
        dir: &Path,
        data: &[f32],
        dim: usize,
        graph: &Graph,
        labels: Option<&[i64]>,
        items: Option<&[ItemInfo]>,
    ) -> Result<(BTreeMap<String, FileEntry>, Option<Quantizer>)> {
        let n = data.len() / dim;
        let mut files = BTreeMap::new();
        files.insert(
            VECTORS.to_string(),
            write_file(&dir.join(VECTORS), |w| {
                crate::npy::write_to(w, data, &[n, dim]).map(|_| ())
            })?,
        );
        files.insert(
            GRAPH.to_string(),
            write_file(&dir.join(GRAPH), |w| {
                crate::format::graph::write(w, graph, self.graph_params(dim))
            })?,
        );
        let quantizer = match self.store {
            Store::I8 => Some(Quantizer::fit(data, dim, self.quantile)?),
            _ => None,
        };
        if let Some(name) = self.store.file_name() {
            files.insert(
                name.to_string(),
                write_file(&dir.join(name), |w| {
                    crate::quant::write_store(w, self.store, data, dim, quantizer.as_ref())
                })?,
            );
        }
        if let Some(l) = labels {
            files.insert(
                POSTINGS.to_string(),
                write_file(&dir.join(POSTINGS), |w| {
                    crate::postings::write_postings(w, l)
                })?,
            );
        }
        if labels.is_some() || items.is_some() || self.scores.is_some() || self.pairings.is_some() {
            let payload = meta::encode("item metadata", items.unwrap_or(&[]))?;
            let pairings = match &self.pairings {
                Some(p) => Some(meta::encode("subjects and sides", p)?),
                None => None,
            };
            let sections = MetaSections {
                labels,
                scores: self.scores.as_deref(),
                payload: &payload,
                pairings: pairings.as_deref(),
            };
            files.insert(
                META.to_string(),
                write_file(&dir.join(META), |w| meta::write(w, n, &sections))?,
            );
        }
        Ok((files, quantizer))
    }

    /// The manifest of this build.
    #[allow(clippy::too_many_arguments)]
    fn manifest(
        &self,
        n: usize,
        dim: usize,
        graph: &Graph,
        has_labels: bool,
        threads: usize,
        quantizer: Option<Quantizer>,
        files: BTreeMap<String, FileEntry>,
    ) -> Manifest {
        Manifest {
            format: FORMAT_NAME.into(),
            format_version: VERSION,
            metric: self.metric,
            dim,
            count: n,
            levels: graph.layers.len(),
            has_labels,
            build: BuildParams {
                m: self.m,
                ef_construction: self.ef_construction,
                seed: self.seed,
                threads,
                builder: self.graph_builder.describe(),
            },
            tool: Tool {
                name: env!("CARGO_PKG_NAME").into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            model_fingerprint: self.model_fingerprint.clone(),
            model_dir: self.model_dir.clone(),
            classes: self.classes.clone(),
            store: self.store,
            quantizer,
            postings: has_labels,
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            generation: 0,
            log: None,
            files,
        }
    }

    /// Phase 5: `manifest.json`, written last (its presence marks a
    /// complete directory).
    fn write_manifest(&self, dir: &Path, manifest: &Manifest) -> Result<()> {
        let json = serde_json::to_vec_pretty(manifest)
            .map_err(|e| Error::InvalidInput(format!("cannot encode manifest: {e}")))?;
        write_file(&dir.join(MANIFEST), |w| w.write_all(&json))?;
        Ok(())
    }

    /// Phase 6: the finished temporary directory renamed to `out_dir`
    /// (replacing an old index there with `overwrite`).
    fn publish(&self, tmp: TempDir, out_dir: &Path) -> Result<()> {
        if self.overwrite {
            tmp.publish_replacing(out_dir, MANIFEST)
        } else {
            tmp.publish(out_dir)
        }
    }
}

/// The build's working copy of the vectors (preprocessed in place), on
/// transparent huge pages where the system gives them on request (Linux's
/// default `madvise` mode), else on the heap.
///
/// Why. Graph construction reads the vectors of random items: with 4 KiB
/// pages nearly every distance also misses the TLB (60,000 × 784 floats
/// are 188 MB, 46,000 pages); 2 MiB pages cover them with under a hundred
/// entries. Measured on fashion-mnist-784 (2 threads): 0.88× the CPU time
/// of the same build on the heap.
enum WorkingCopy {
    Mapped(memmap2::MmapMut),
    Heap(Vec<f32>),
}

impl WorkingCopy {
    fn of(vectors: &[f32]) -> Self {
        #[cfg(target_os = "linux")]
        if !vectors.is_empty() {
            if let Ok(mut map) = memmap2::MmapMut::map_anon(std::mem::size_of_val(vectors)) {
                // Asked before the first touch, which is when pages are
                // chosen; refused (an old kernel, THP off) = plain pages.
                let _ = map.advise(memmap2::Advice::HugePage);
                // A page-aligned map casts to f32 (the cast checks).
                if let Ok(floats) = bytemuck::try_cast_slice_mut::<u8, f32>(&mut map) {
                    floats.copy_from_slice(vectors);
                    return WorkingCopy::Mapped(map);
                }
            }
        }
        WorkingCopy::Heap(vectors.to_vec())
    }
}

impl std::ops::Deref for WorkingCopy {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match self {
            WorkingCopy::Mapped(m) => bytemuck::cast_slice(m),
            WorkingCopy::Heap(v) => v,
        }
    }
}

impl std::ops::DerefMut for WorkingCopy {
    fn deref_mut(&mut self) -> &mut [f32] {
        match self {
            WorkingCopy::Mapped(m) => bytemuck::cast_slice_mut(m),
            WorkingCopy::Heap(v) => v,
        }
    }
}

/// A writer that counts bytes and computes their CRC32.
struct CrcWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<FileEntry> {
    let f = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut w = CrcWriter {
        inner: BufWriter::with_capacity(1 << 20, f),
        crc: crc32fast::Hasher::new(),
        len: 0,
    };
    fill(&mut w)
        .and_then(|()| w.flush())
        .map_err(|e| Error::io(path, e))?;
    Ok(FileEntry {
        size: w.len,
        crc32: w.crc.finalize(),
        path: None,
    })
}

#[cfg(feature = "hnsw-rs")]
/// The distance hnsw_rs builds with: our kernels, clamped at 0 (hnsw_rs
/// asserts non-negative distances; `1 - dot` of unit vectors can be -1e-7).
pub(crate) struct BuildDistance(pub DistanceFn);

#[cfg(feature = "hnsw-rs")]
impl anndists::dist::Distance<f32> for BuildDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (self.0)(a, b).max(0.0)
    }
}

#[cfg(feature = "hnsw-rs")]
/// Builds the hnsw_rs graph of preprocessed `data` and exports it. Also
/// returns the hnsw_rs structure (tests compare searches against it).
pub(crate) fn build_graph<'a>(
    data: &'a [f32],
    dim: usize,
    b: &IndexBuilder,
    threads: usize,
    progress: Option<Progress<'_>>,
) -> Result<(Graph, Hnsw<'a, f32, BuildDistance>)> {
    let n = data.len() / dim;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::InvalidInput(format!("cannot start {threads} build threads: {e}")))?;
    let mut hnsw = Hnsw::<f32, BuildDistance>::new(
        b.m,
        n,
        HNSW_MAX_LAYER,
        b.ef_construction,
        BuildDistance(b.metric.kernel()),
    );
    let order = insertion_order(n, b.seed);
    let mut done = 0usize;
    for chunk in order.chunks(BATCH) {
        let batch: Vec<(&[f32], usize)> = chunk
            .iter()
            .map(|&i| (&data[i * dim..(i + 1) * dim], i))
            .collect();
        if threads <= 1 {
            for &item in &batch {
                hnsw.insert_slice(item);
            }
        } else {
            pool.install(|| hnsw.parallel_insert_slice(&batch));
        }
        done += batch.len();
        if let Some(p) = progress {
            p(done, n);
        }
    }
    hnsw.set_searching_mode(true);
    let graph = export(&hnsw, n, b.m)?;
    Ok((graph, hnsw))
}

#[cfg(feature = "hnsw-rs")]
/// Reads the graph out of hnsw_rs through its public API.
fn export(hnsw: &Hnsw<'_, f32, BuildDistance>, n: usize, m: usize) -> Result<Graph> {
    let bug = |what: String| {
        Error::InvalidInput(format!("hnsw_rs returned an inconsistent graph: {what}"))
    };
    let top = usize::from(hnsw.get_max_level_observed());
    let pi = hnsw.get_point_indexation();
    let mut level = vec![u8::MAX; n];
    let mut adj: Vec<Vec<Vec<u32>>> = vec![Vec::new(); n];
    for p in pi {
        let id = p.get_origin_id();
        let lvl = p.get_point_id().0;
        if id >= n || level[id] != u8::MAX {
            return Err(bug(format!("point id {id} out of range or repeated")));
        }
        level[id] = lvl;
        let hood = p.get_neighborhood_id();
        adj[id] = (0..=usize::from(lvl))
            .map(|l| {
                hood.get(l)
                    .map(|v| v.iter().map(|x| x.get_origin_id() as u32).collect())
                    .unwrap_or_default()
            })
            .collect();
    }
    if let Some(missing) = level.iter().position(|&l| l == u8::MAX) {
        return Err(bug(format!("point {missing} was not inserted")));
    }
    let entry = pi
        .get_layer_iterator(top)
        .next()
        .map(|p| p.get_origin_id() as u32)
        .ok_or_else(|| bug("empty top layer".into()))?;
    let mut layers = Vec::with_capacity(top + 1);
    // `l` indexes the inner per-layer lists of every point, not one slice.
    #[allow(clippy::needless_range_loop)]
    for l in 0..=top {
        let mut layer = Layer::default();
        let rows: Vec<u32> = if l == 0 {
            (0..n as u32).collect()
        } else {
            (0..n as u32)
                .filter(|&i| usize::from(level[i as usize]) >= l)
                .collect()
        };
        layer.offsets.reserve(rows.len() + 1);
        layer.offsets.push(0);
        for &i in &rows {
            let list = &adj[i as usize][l];
            for &j in list {
                // Keep only links hnsw_rs may legitimately hold: to another
                // point present in this layer, once.
                let ok = (j as usize) < n
                    && j != i
                    && usize::from(level[j as usize]) >= l
                    && !layer.neighbours[*layer.offsets.last().unwrap_or(&0) as usize..]
                        .contains(&j);
                if ok {
                    layer.neighbours.push(j);
                }
            }
            layer.offsets.push(layer.neighbours.len() as u64);
        }
        if l > 0 {
            layer.nodes = rows;
        }
        layers.push(layer);
    }
    Ok(Graph {
        count: n,
        entry,
        m,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The export is checked against hnsw_rs itself: our in-place search of
    /// the exported graph and hnsw_rs's search of its own graph must return
    /// the same neighbours (>= 99%) at the same ef.
    #[cfg(feature = "hnsw-rs")]
    #[test]
    fn exported_graph_searches_like_hnsw_rs() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(99);
        let (n, dim, nq, k, ef) = (3000, 24, 300, 10, 32);
        let data: Vec<f32> = (0..(n + nq) * dim)
            .map(|_| rng.gen_range(-1.0f32..1.0))
            .collect();
        for metric in [Metric::L2, Metric::Cosine] {
            let mut data = data.clone();
            metric.preprocess(&mut data, dim).unwrap();
            let (base, queries) = data.split_at(n * dim);
            let b = IndexBuilder::new()
                .metric(metric)
                .m(8)
                .ef_construction(64)
                .seed(1);
            let (graph, hnsw) = build_graph(base, dim, &b, 1, None).unwrap();
            // Same graph, same entry point (sequential insertion: the first
            // point of the top layer is hnsw_rs's entry point).
            let top = hnsw.get_max_level_observed() as usize;
            assert_eq!(graph.layers.len(), top + 1);
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("ix");
            let tmp = TempDir::sibling_of(&out).unwrap();
            let vec_entry = write_file(&tmp.path().join(VECTORS), |w| {
                crate::npy::write_to(w, base, &[n, dim]).map(|_| ())
            })
            .unwrap();
            let graph_entry = write_file(&tmp.path().join(GRAPH), |w| {
                crate::format::graph::write(w, &graph, b.graph_params(dim))
            })
            .unwrap();
            let manifest = Manifest {
                format: FORMAT_NAME.into(),
                format_version: VERSION,
                metric,
                dim,
                count: n,
                levels: graph.layers.len(),
                has_labels: false,
                build: BuildParams {
                    m: 8,
                    ef_construction: 64,
                    seed: 1,
                    threads: 1,
                    builder: "test".into(),
                },
                tool: Tool {
                    name: "test".into(),
                    version: "0".into(),
                },
                model_fingerprint: None,
                model_dir: None,
                classes: Vec::new(),
                store: Store::F32,
                quantizer: None,
                postings: false,
                created_unix: 0,
                generation: 0,
                log: None,
                files: [
                    (VECTORS.to_string(), vec_entry),
                    (GRAPH.to_string(), graph_entry),
                ]
                .into(),
            };
            let json = serde_json::to_vec(&manifest).unwrap();
            write_file(&tmp.path().join(MANIFEST), |w| w.write_all(&json)).unwrap();
            tmp.publish(&out).unwrap();
            let index = crate::Index::open(&out).unwrap();
            index.verify().unwrap();
            let request = crate::KnnQuery::new(queries).dim(dim).k(k).ef(ef);
            let (ours, _) = index.query(&request).unwrap();
            let (mut same, mut total) = (0usize, 0usize);
            for q in 0..nq {
                let theirs: Vec<i64> = hnsw
                    .search(&queries[q * dim..(q + 1) * dim], k, ef)
                    .iter()
                    .map(|x| x.get_origin_id() as i64)
                    .collect();
                total += theirs.len();
                same += theirs.iter().filter(|i| ours.ids(q).contains(i)).count();
            }
            let agreement = same as f64 / total as f64;
            println!("{metric}: {:.4} of hnsw_rs's neighbours found", agreement);
            assert!(agreement >= 0.99, "{metric}: agreement {agreement}");
        }
    }

    #[test]
    fn rejects_bad_parameters_before_building() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ix");
        let v = vec![1.0f32; 8];
        let cases: Vec<(IndexBuilder, &str)> = vec![
            (IndexBuilder::new().m(257), "m"),
            (IndexBuilder::new().m(1), "m"),
            (IndexBuilder::new().ef_construction(0), "ef-construction"),
        ];
        for (b, name) in cases {
            match b.build(&v, 4, None, None, &out, None) {
                Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{other:?}"),
            }
        }
        let b = IndexBuilder::new();
        assert!(matches!(
            b.build(&v, 3, None, None, &out, None),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            b.build(&[], 3, None, None, &out, None),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            b.build(&v, 4, Some(&[1]), None, &out, None),
            Err(Error::InvalidInput(_))
        ));
        let mut nan = v.clone();
        nan[5] = f32::NAN;
        assert!(matches!(
            b.build(&nan, 4, None, None, &out, None),
            Err(Error::NonFinite { row: 1, col: 1, .. })
        ));
        assert!(!out.exists());
        // Nothing left behind in the parent either.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
