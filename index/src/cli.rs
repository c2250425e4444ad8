//! `likeness build`, `likeness query` and `likeness verify`: the command-line
//! face of the `likeness-index` crate (HNSW served from memory-mapped files).
//!
//! These forms are used by benchmarks and checks; keep them stable:
//!
//! ```text
//! likeness build  --vectors BASE.npy [--labels L.npy] --out DIR [--metric cosine|l2]
//!                 [--m 16] [--ef-construction 200] [--seed S] [--force]
//! likeness query  --index DIR --vectors Q.npy -k 10 [--ef 64] [--exact]
//!                 [--out NEIGHBOURS.npy] [--json]
//! likeness verify --index DIR
//! ```
//!
//! `query` reports queries/s, the index open time and the peak resident set
//! size on stderr, so stdout stays clean for the results.
//!
//! This module is behind the `cli` feature. It is compiled into the torch-free
//! front binary `likeness`, which runs these commands itself (so a query starts
//! in milliseconds and maps only the index) and hands every other command to
//! `likeness-torch`; [`is_index_command`] makes that choice from the raw
//! arguments.
use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::{npy, Index, IndexBuilder, LabelFilter, Metric, Neighbours};

/// The subcommands this module runs.
pub const COMMANDS: [&str; 4] = ["build", "query", "verify", "serve"];

/// Options that take a value and may precede the subcommand (the root CLI's
/// global options).
const GLOBAL_WITH_VALUE: [&str; 4] = [
    "--device",
    "--threads",
    "--torch-threads",
    "--loader-threads",
];

/// Whether a raw command line (`argv[0]` first) names one of [`COMMANDS`],
/// skipping the global options before it (a `query` with `--image` or
/// `--montage` does not count). `--help`, `--version` and unknown
/// options before the subcommand answer `false` (the full CLI handles them).
pub fn is_index_command(args: &[OsString]) -> bool {
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        let Some(a) = arg.to_str() else { return false };
        if GLOBAL_WITH_VALUE.contains(&a) {
            it.next();
        } else if GLOBAL_WITH_VALUE
            .iter()
            .any(|g| a.strip_prefix(g).is_some_and(|r| r.starts_with('=')))
        {
            continue;
        } else if a == "query" {
            // Image queries and montages need the network and image decoders.
            let torch = it.any(|r| {
                r.to_str().is_some_and(|r| {
                    ["--image", "--montage"]
                        .iter()
                        .any(|o| r == *o || r.strip_prefix(o).is_some_and(|x| x.starts_with('=')))
                })
            });
            return !torch;
        } else {
            return COMMANDS.contains(&a);
        }
    }
    false
}

/// The index half of the `likeness` command line, as the front binary parses it.
#[derive(Debug, Parser)]
#[command(name = "likeness", version, about = "likeness index commands", long_about = None)]
pub struct IndexCli {
    /// Accepted for symmetry with the other commands; index commands run on the CPU.
    #[arg(long, global = true, env = "LIKENESS_DEVICE", hide = true)]
    pub device: Option<String>,
    /// Threads for rayon [default: all cores].
    #[arg(long, global = true, env = "LIKENESS_THREADS")]
    pub threads: Option<usize>,
    /// Accepted for symmetry: index commands run no torch.
    #[arg(long, global = true, env = "LIKENESS_TORCH_THREADS", hide = true)]
    pub torch_threads: Option<usize>,
    /// rayon's threads (overrides --threads).
    #[arg(long, global = true, env = "LIKENESS_LOADER_THREADS")]
    pub loader_threads: Option<usize>,
    #[command(subcommand)]
    pub command: IndexCommand,
}

/// `build`, `query` and `verify`.
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Build an HNSW index directory from a .npy of vectors (f16/f32/f64).
    Build(BuildArgs),
    /// Find the k nearest items of each query vector in an index.
    Query(QueryArgs),
    /// Check every file of an index directory (sizes, CRC32s, graph links).
    Verify(VerifyArgs),
    /// Answer queries over HTTP (JSON) from a memory-mapped index.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Index directory to serve.
    #[arg(long)]
    pub index: PathBuf,
    /// Model for POST /search/image [default: the one recorded in the index, if it loads].
    #[arg(long, conflicts_with = "no_model")]
    pub model: Option<PathBuf>,
    /// Serve vectors only, even if the index records a model.
    #[arg(long)]
    pub no_model: bool,
    /// Address to listen on (port 0: any free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub addr: std::net::SocketAddr,
    /// Search threads [default: all cores].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Largest request body in MB.
    #[arg(long, default_value_t = 16)]
    pub max_body_mb: usize,
    /// Image queries: how long the first image waits for others to share
    /// its forward pass, in ms (measured: `make bench-serve`).
    #[arg(long, default_value_t = 2.0)]
    pub batch_wait_ms: f64,
    /// Image queries: most images in one forward pass (1: no batching).
    #[arg(long, default_value_t = 32)]
    pub max_batch: usize,
    /// Secret that POST /admin/* must send (`Authorization: Bearer SECRET`);
    /// required when --addr is not loopback.
    #[arg(long, env = "LIKENESS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Folder of the eval.json (and eval.png) the page shows [default: the
    /// index folder, else INDEX-eval beside it, where `likeness eval` writes].
    #[arg(long = "eval", value_name = "DIR")]
    pub eval_dir: Option<PathBuf>,
    /// Memory for the page's thumbnails, MB.
    #[arg(long, default_value_t = 64)]
    pub thumb_cache_mb: usize,
}

impl ServeArgs {
    /// Whether serving needs the network: an explicit --model, or a model
    /// recorded in the index that exists on disk (unless --no-model).
    pub fn wants_model(&self) -> bool {
        if self.no_model {
            return false;
        }
        self.model.is_some()
            || crate::Manifest::read(&self.index)
                .ok()
                .and_then(|m| m.model_dir)
                .is_some_and(|d| Path::new(&d).join("model.json").is_file())
    }

    /// The server settings.
    pub fn options(&self, threads: usize) -> Result<crate::serve::ServeOptions> {
        if self.max_body_mb == 0 {
            return Err(Error::param("--max-body-mb", 0, "must be at least 1"));
        }
        if !(self.batch_wait_ms.is_finite() && (0.0..=10_000.0).contains(&self.batch_wait_ms)) {
            return Err(Error::param(
                "--batch-wait-ms",
                self.batch_wait_ms,
                "must be between 0 and 10000",
            ));
        }
        if self.max_batch == 0 {
            return Err(Error::param(
                "--max-batch",
                0,
                "must be at least 1 (1: no batching)",
            ));
        }
        Ok(crate::serve::ServeOptions {
            addr: self.addr,
            page: crate::serve::PageOptions {
                admin_token: self.admin_token.clone(),
                eval_dir: self.eval_dir.clone(),
                model_dir: self.model.clone(),
                thumb_cache_bytes: self.thumb_cache_mb << 20,
            },
            workers: self.workers.unwrap_or(threads).max(1),
            max_body: self.max_body_mb << 20,
            batch_wait: std::time::Duration::from_secs_f64(self.batch_wait_ms / 1e3),
            max_batch: self.max_batch,
        })
    }
}

/// `likeness serve` without a model (vectors only).
pub fn serve(threads: usize, args: ServeArgs) -> Result<ExitCode> {
    let opts = args.options(threads)?;
    crate::serve::run(&args.index, None, &opts)?;
    Ok(ExitCode::SUCCESS)
}

/// Sizes rayon's global pool: `threads` or all cores.
pub fn init_threads(threads: Option<usize>) -> Result<usize> {
    let n = match threads {
        Some(0) => return Err(Error::param("--threads", 0, "must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // A second call in the same process (tests) keeps the first pool; that is fine.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
    Ok(n)
}

/// Runs a parsed index command line.
pub fn run(cli: IndexCli) -> Result<ExitCode> {
    let threads = init_threads(cli.loader_threads.or(cli.threads))?;
    match cli.command {
        IndexCommand::Build(args) => build(threads, args),
        IndexCommand::Query(args) => query(threads, args),
        IndexCommand::Verify(args) => verify(args),
        IndexCommand::Serve(args) => serve(threads, args),
    }
}

/// A progress bar with count, rate and ETA on stderr (hidden when stderr is
/// not a terminal).
fn bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// The metric as a command-line value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// 1 - cos(a, b): vectors are normalised once, then compared by inner product.
    Cosine,
    /// Squared Euclidean distance.
    L2,
}

impl From<MetricArg> for Metric {
    fn from(m: MetricArg) -> Self {
        match m {
            MetricArg::Cosine => Metric::Cosine,
            MetricArg::L2 => Metric::L2,
        }
    }
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Vectors to index: a 2-D .npy of float16, float32 or float64 (items × dimension).
    #[arg(long)]
    pub vectors: PathBuf,
    /// Integer labels, one per vector (.npy of shape (n,) or (n, 1)).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Output index directory; it must not exist unless --force is given.
    #[arg(long)]
    pub out: PathBuf,
    /// Distance: cosine (vectors normalised at build) or l2 (squared Euclidean).
    #[arg(long, value_enum, default_value_t = MetricArg::Cosine)]
    pub metric: MetricArg,
    /// Links per node in the upper layers (layer 0 keeps 2·M); 2..=256.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// Beam width while building; larger is slower to build and gives better recall.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Seed of the levels and the insertion order (with --threads 1 the
    /// build is reproducible).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Graph builder: `native` (ours, the default) or `hnsw_rs` (only in
    /// builds with the `hnsw-rs` feature of likeness-index; for comparison).
    #[arg(long, default_value = "native")]
    pub builder: crate::GraphBuilder,
    /// Replace an existing index at --out. The new index is built beside it
    /// first; a failed build leaves the old one untouched.
    #[arg(long)]
    pub force: bool,
    /// How the vectors the graph search reads are stored: f32, f16 (half
    /// precision) or i8 (8-bit per-dimension codes, a quarter of f32's
    /// memory); f16 and i8 re-rank with the float32 vectors, so distances
    /// stay exact.
    #[arg(long, default_value = "f32")]
    pub store: crate::Store,
    /// i8: central fraction of each dimension's values the codes span; the
    /// rest are clipped.
    #[arg(long, default_value_t = crate::quant::DEFAULT_QUANTILE)]
    pub quantile: f32,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["vectors", "id", "image"])))]
pub struct QueryArgs {
    /// Index directory made by `likeness build` or `likeness index`.
    #[arg(long)]
    pub index: PathBuf,
    /// Query vectors: a 2-D .npy of float16, float32 or float64 with the index's dimension.
    #[arg(long)]
    pub vectors: Option<PathBuf>,
    /// Query by indexed item: its stored vector; the item itself is left out
    /// of its results. Several ids: --id 3,17,42.
    #[arg(long, value_delimiter = ',')]
    pub id: Vec<usize>,
    /// Query by image: embedded with the model that built the index.
    #[arg(long)]
    pub image: Option<PathBuf>,
    /// Region of --image to query with, in pixels: x,y,w,h.
    #[arg(long, requires = "image")]
    pub region: Option<String>,
    /// The query's label (a class name of the index), for --image queries:
    /// the montage then colours each result by whether its label matches.
    #[arg(long, requires = "image")]
    pub label: Option<String>,
    /// Model directory for --image [default: the one recorded in the index];
    /// its fingerprint must match the index's.
    #[arg(long, requires = "image")]
    pub model: Option<PathBuf>,
    /// Neighbours per query.
    #[arg(short = 'k', long = "k", default_value_t = 10)]
    pub k: usize,
    /// Beam width of the search (raised to k if smaller); larger is slower
    /// and more accurate.
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    /// Exact brute-force search instead of the graph (ground truth).
    #[arg(long)]
    pub exact: bool,
    /// f16/i8 stores: candidates re-scored with the float32 vectors
    /// [default: ef]; raises ef when larger.
    #[arg(long)]
    pub rerank: Option<usize>,
    /// Only results with one of these labels (integers or class names,
    /// comma-separated). A label no item carries gives no results; an
    /// unknown class name is an error.
    #[arg(long, value_delimiter = ',', conflicts_with = "exclude_labels")]
    pub labels: Vec<String>,
    /// No results with these labels (integers or class names).
    #[arg(long, value_delimiter = ',')]
    pub exclude_labels: Vec<String>,
    /// Plan of a filtered search: auto (exact scan when at most
    /// --exact-below items pass, else the graph with the filter in the
    /// beam), exact or graph.
    #[arg(long, default_value = "auto")]
    pub plan: crate::postings::PlanChoice,
    /// Filters that keep at most this many items are scanned exactly
    /// [default: sqrt(433 × items), 5,097 for 60,000; see docs/benchmarks.md].
    #[arg(long)]
    pub exact_below: Option<usize>,
    /// Write the item ids as an int64 .npy of shape (queries, k); -1 pads
    /// queries with fewer than k results.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print JSON Lines on stdout: one {"type":"query",...} object per query,
    /// then one {"type":"summary",...}.
    #[arg(long)]
    pub json: bool,
    /// Draw each query beside its k nearest items (label under each, green
    /// border where it matches the query's label, red where not) into this PNG.
    #[arg(long)]
    pub montage: Option<PathBuf>,
}

impl QueryArgs {
    /// Whether this query needs the torch binary (an image to embed, or
    /// images to draw).
    pub fn needs_torch(&self) -> bool {
        self.image.is_some() || self.montage.is_some()
    }
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Index directory to check (every file's size and CRC32, every graph link).
    #[arg(long)]
    pub index: PathBuf,
}

/// `likeness build`.
pub fn build(threads: usize, args: BuildArgs) -> Result<ExitCode> {
    let start = Instant::now();
    if args.out.exists() && !args.force {
        return Err(Error::Usage(format!(
            "{} already exists; remove it, choose another --out or pass --force to replace it",
            args.out.display()
        )));
    }
    let matrix = npy::read_matrix(&args.vectors)?;
    let labels = args.labels.as_ref().map(npy::read_labels).transpose()?;
    if let Some(l) = &labels {
        if l.len() != matrix.rows {
            return Err(Error::InvalidInput(format!(
                "{} holds {} vectors but {} holds {} labels; give one label per vector",
                args.vectors.display(),
                matrix.rows,
                args.labels.as_deref().unwrap_or(Path::new("")).display(),
                l.len()
            )));
        }
    }
    let read_seconds = start.elapsed().as_secs_f64();
    let builder = IndexBuilder::new()
        .metric(args.metric.into())
        .m(args.m)
        .ef_construction(args.ef_construction)
        .seed(args.seed)
        .graph_builder(args.builder)
        .store(args.store)
        .quantile(args.quantile)
        .threads(threads)
        .overwrite(args.force);
    let bar = bar(matrix.rows as u64, "indexing");
    let progress = |done: usize, _total: usize| bar.set_position(done as u64);
    let res = builder.build(
        &matrix.data,
        matrix.dim,
        labels.as_deref(),
        None,
        &args.out,
        Some(&progress),
    );
    bar.finish_and_clear();
    let report = res?;
    print_line(&format!(
        "indexed {} vectors of dimension {} ({}, store {}, M={}, ef_construction={}, {} threads, {} levels) \
         in {:.2}s (read {:.2}s, graph {:.2}s); {:.1} MB in {}",
        report.count,
        matrix.dim,
        Metric::from(args.metric),
        args.store,
        args.m,
        args.ef_construction,
        threads,
        report.levels,
        read_seconds + report.total_seconds,
        read_seconds,
        report.graph_seconds,
        report.bytes as f64 / 1e6,
        args.out.display()
    ));
    Ok(ExitCode::SUCCESS)
}

/// One JSON Lines record of `likeness query --json`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum QueryRecord<'a> {
    /// The neighbours of query row `query`, nearest first.
    Query {
        query: usize,
        ids: &'a [i64],
        distances: &'a [f32],
        #[serde(skip_serializing_if = "Option::is_none")]
        labels: Option<Vec<Option<i64>>>,
        /// Rank, id, distance, label, class, path and region of each result.
        hits: Vec<Hit>,
        /// With scores in the index: the 1/distance-weighted mean of the
        /// hits' scores.
        #[serde(skip_serializing_if = "Option::is_none")]
        predicted_score: Option<f32>,
    },
    /// Once, after the last query.
    Summary(&'a QueryStats),
}

/// What `likeness query` measured.
#[derive(Debug, Serialize)]
pub struct QueryStats {
    pub queries: usize,
    pub k: usize,
    /// `null` for exact search.
    pub ef: Option<usize>,
    pub exact: bool,
    /// How the vectors the graph search reads are stored.
    pub store: crate::Store,
    /// The compact store's kernels on this CPU (f16/i8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernels: Option<&'static str>,
    /// Candidates re-scored with float32 (f16/i8 graph searches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<usize>,
    /// The plan that ran (`null` for --exact).
    pub plan: Option<crate::Plan>,
    /// Resident bytes of each mapped index file after the search (from
    /// /proc/self/smaps; empty elsewhere).
    pub resident: std::collections::BTreeMap<String, u64>,
    pub threads: usize,
    pub open_seconds: f64,
    pub search_seconds: f64,
    pub queries_per_second: f64,
    /// Resident set size right after opening the index (bytes).
    pub rss_after_open_bytes: Option<u64>,
    /// Peak resident set size of the process (VmHWM, bytes).
    pub peak_rss_bytes: Option<u64>,
    /// Total size of the index files (bytes).
    pub index_bytes: u64,
}

/// `likeness query` for vector and item queries (image queries and
/// montages are handled by the torch binary, which calls [`search`] and
/// [`emit`]).
pub fn query(threads: usize, args: QueryArgs) -> Result<ExitCode> {
    if args.needs_torch() {
        return Err(Error::Usage(
            "--image and --montage need the `likeness` binary with its likeness-torch sibling"
                .into(),
        ));
    }
    let t_open = Instant::now();
    let mut index = Index::open(&args.index)?;
    let open_seconds = t_open.elapsed().as_secs_f64();
    index.set_options(search_options(&args))?;
    let rss_after_open = proc_status_bytes("VmRSS");
    let (data, dim, exclude) = query_vectors(&index, &args)?;
    let (found, stats) = search(
        &index,
        &data,
        dim,
        exclude.as_deref(),
        &args,
        threads,
        open_seconds,
        rss_after_open,
    )?;
    emit(&index, &found, &stats, &args, None)?;
    Ok(ExitCode::SUCCESS)
}

/// The query rows of `--vectors` or `--id` (with the ids to leave out of
/// each row's results).
#[allow(clippy::type_complexity)]
pub fn query_vectors(
    index: &Index,
    args: &QueryArgs,
) -> Result<(Vec<f32>, usize, Option<Vec<usize>>)> {
    if let Some(path) = &args.vectors {
        let queries = npy::read_matrix(path)?;
        if queries.dim != index.dim() {
            return Err(Error::Usage(format!(
                "dimension mismatch: {} holds vectors of dimension {} but the index {} has dimension {}; \
                 the queries must come from the model that built the index",
                path.display(),
                queries.dim,
                args.index.display(),
                index.dim()
            )));
        }
        return Ok((queries.data, queries.dim, None));
    }
    let mut data = Vec::with_capacity(args.id.len() * index.dim());
    for &id in &args.id {
        let v = index.vector(id).ok_or_else(|| {
            Error::Usage(format!(
                "--id {id} is out of range: the index {} holds items 0..{}",
                args.index.display(),
                index.len()
            ))
        })?;
        data.extend_from_slice(v);
    }
    Ok((data, index.dim(), Some(args.id.clone())))
}

/// The search options `args` ask for (re-ranking, filter plan).
pub fn search_options(args: &QueryArgs) -> crate::postings::SearchOptions {
    crate::postings::SearchOptions {
        rerank: args.rerank,
        plan: args.plan,
        exact_below: args.exact_below,
    }
}

/// The label filter of `--labels`/`--exclude-labels`: integers, or class
/// names of the index (an unknown name is an error naming the known ones).
pub fn label_filter(index: &Index, args: &QueryArgs) -> Result<Option<LabelFilter>> {
    let parse = |names: &[String]| -> Result<Vec<i64>> {
        let classes = &index.manifest().classes;
        names
            .iter()
            .map(|n| {
                if let Ok(l) = n.trim().parse::<i64>() {
                    return Ok(l);
                }
                classes
                    .iter()
                    .position(|c| c == n.trim())
                    .map(|p| p as i64)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "unknown label {n:?}: the index's labels are integers{}",
                            if classes.is_empty() {
                                String::new()
                            } else {
                                format!(" or one of its class names ({})", classes.join(", "))
                            }
                        ))
                    })
            })
            .collect()
    };
    let f = match (args.labels.is_empty(), args.exclude_labels.is_empty()) {
        (true, true) => return Ok(None),
        (false, _) => LabelFilter::only(parse(&args.labels)?),
        (true, false) => LabelFilter::except(parse(&args.exclude_labels)?),
    };
    if index.labels().is_none() {
        return Err(Error::Usage(format!(
            "{} has no labels to filter by: build it with --labels",
            args.index.display()
        )));
    }
    Ok(Some(f))
}

/// Searches `queries` (rows of `dim`) as `args` asks: graph or exact, `k`
/// results each; row `q` leaves out item `exclude[q]` when given.
#[allow(clippy::too_many_arguments)]
pub fn search(
    index: &Index,
    queries: &[f32],
    dim: usize,
    exclude: Option<&[usize]>,
    args: &QueryArgs,
    threads: usize,
    open_seconds: f64,
    rss_after_open: Option<u64>,
) -> Result<(Neighbours, QueryStats)> {
    if args.k == 0 {
        return Err(Error::Usage("-k must be at least 1".into()));
    }
    let k = args.k;
    let filter = label_filter(index, args)?;
    let request = crate::KnnQuery {
        k,
        ef: args.ef,
        exact: args.exact,
        filter: filter.as_ref(),
        exclude,
    };
    let plan = if args.exact {
        None
    } else {
        Some(index.plan(request.depth(index), filter.as_ref())?)
    };
    let t_search = Instant::now();
    let found = request.run(index, queries, dim)?;
    let search_seconds = t_search.elapsed().as_secs_f64();
    let nq = found.queries();
    let store = index.store();
    let stats = QueryStats {
        queries: nq,
        k,
        ef: (!args.exact).then_some(request.beam(index)),
        exact: args.exact,
        store,
        kernels: (store != crate::Store::F32).then(crate::quant::kernel_name),
        rerank: (!args.exact && store != crate::Store::F32)
            .then(|| args.rerank.unwrap_or(request.beam(index))),
        plan,
        resident: resident_bytes(index),
        threads,
        open_seconds,
        search_seconds,
        queries_per_second: nq as f64 / search_seconds.max(1e-9),
        rss_after_open_bytes: rss_after_open,
        peak_rss_bytes: proc_status_bytes("VmHWM"),
        index_bytes: index.manifest().files.values().map(|f| f.size).sum(),
    };
    Ok((found, stats))
}

pub use crate::index::Hit;

/// Prints (or writes) the results of a query run as `args` asks. Single
/// queries by id or image get a table of hits; `--vectors` batches one line
/// of ids per query. `query_names` labels each query in the table.
pub fn emit(
    index: &Index,
    found: &Neighbours,
    stats: &QueryStats,
    args: &QueryArgs,
    query_names: Option<&[String]>,
) -> Result<()> {
    if let Some(out) = &args.out {
        npy::write(out, found.all_ids(), &[found.queries(), found.k()])?;
    }
    let detailed = args.vectors.is_none();
    let items =
        if index.manifest().files.contains_key(crate::manifest::META) && (args.json || detailed) {
            Some(index.items()?)
        } else {
            None
        };
    if args.json {
        print_json_lines(index, items.as_deref(), found, stats)?;
    } else if detailed {
        print_table(index, items.as_deref(), found, args, query_names)?;
    } else if args.out.is_none() {
        print_ids(found)?;
    }
    eprintln!("{}", render_stats(stats));
    Ok(())
}

fn print_table(
    index: &Index,
    items: Option<&[crate::ItemInfo]>,
    found: &Neighbours,
    args: &QueryArgs,
    query_names: Option<&[String]>,
) -> Result<()> {
    let stdout = std::io::stdout().lock();
    let mut w = BufWriter::new(stdout);
    let res = (|| {
        for q in 0..found.queries() {
            let name = match (query_names.and_then(|n| n.get(q)), args.id.get(q)) {
                (Some(n), _) => n.clone(),
                (None, Some(id)) => format!("item {id}"),
                (None, None) => format!("query {q}"),
            };
            writeln!(w, "query: {name}")?;
            let hits = index.hits(items, found, q);
            let scored = index.scores().is_some();
            if let Some(p) = crate::score::predict_from_hits(&hits).filter(|_| scored) {
                writeln!(
                    w,
                    "predicted score: {p:.4} (the hits' scores weighted by 1/distance)"
                )?;
            }
            writeln!(
                w,
                "{:>4}  {:>9}  {:>8}  {:<16}  {}path [region]",
                "rank",
                "distance",
                "id",
                "label",
                if scored { "   score  " } else { "" }
            )?;
            for h in hits {
                let label = match (&h.class, h.label) {
                    (Some(c), _) => c.clone(),
                    (None, Some(l)) => l.to_string(),
                    (None, None) => "-".into(),
                };
                let region = h.region.map_or(String::new(), |[x0, y0, x1, y1]| {
                    format!(" [{x0},{y0},{},{}]", x1 - x0, y1 - y0)
                });
                // 1 - cos of a vector with itself can round to -1e-7.
                let d = if h.distance.abs() < 5e-6 {
                    0.0
                } else {
                    h.distance
                };
                let score = if scored {
                    h.score
                        .map_or(format!("{:>8}  ", "-"), |s| format!("{s:>8.4}  "))
                } else {
                    String::new()
                };
                writeln!(
                    w,
                    "{:>4}  {:>9.5}  {:>8}  {:<16}  {}{}{}",
                    h.rank,
                    d,
                    h.id,
                    label,
                    score,
                    h.path.as_deref().unwrap_or("-"),
                    region
                )?;
            }
            if q + 1 < found.queries() {
                writeln!(w)?;
            }
        }
        w.flush()
    })();
    stdout_result(res)
}

fn render_stats(s: &QueryStats) -> String {
    let mb = |b: Option<u64>| b.map_or("n/a".to_string(), |b| format!("{:.1} MB", b as f64 / 1e6));
    let mut extra = String::new();
    if s.store != crate::Store::F32 {
        extra.push_str(&format!(
            "; store {} ({}), rerank {}",
            s.store,
            s.kernels.unwrap_or(""),
            s.rerank.map_or("-".to_string(), |r| r.to_string())
        ));
    }
    if let Some(p) = &s.plan {
        extra.push_str(&format!("; plan {}", p.kind.as_str()));
        if let Some(n) = p.passing {
            extra.push_str(&format!(
                " ({n} items pass the filter, exact scan at most {})",
                p.exact_below
            ));
        }
        if !p.unknown_labels.is_empty() {
            extra.push_str(&format!("; no item carries label {:?}", p.unknown_labels));
        }
    }
    if !s.resident.is_empty() {
        let parts: Vec<String> = s
            .resident
            .iter()
            .map(|(f, b)| format!("{f} {:.1} MB", *b as f64 / 1e6))
            .collect();
        extra.push_str(&format!("; resident: {}", parts.join(", ")));
    }
    format!(
        "{} queries, k={}, {} on {} thread{}: {:.0} queries/s ({:.3}s); index open {:.2} ms; \
         rss after open {}, peak rss {} (index files {:.1} MB){}",
        s.queries,
        s.k,
        s.ef.map_or("exact".to_string(), |ef| format!("ef={ef}")),
        s.threads,
        if s.threads == 1 { "" } else { "s" },
        s.queries_per_second,
        s.search_seconds,
        s.open_seconds * 1e3,
        mb(s.rss_after_open_bytes),
        mb(s.peak_rss_bytes),
        s.index_bytes as f64 / 1e6,
        extra
    )
}

/// Resident bytes of each file of `index`'s directory mapped by this
/// process (the `Rss` of its mappings in /proc/self/smaps).
pub fn resident_bytes(index: &Index) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return out;
    };
    let dir = index
        .dir()
        .canonicalize()
        .unwrap_or_else(|_| index.dir().to_path_buf());
    let mut current: Option<String> = None;
    for line in smaps.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or("");
        if first.contains('-') && first.chars().next().is_some_and(|c| c.is_ascii_hexdigit()) {
            current = line
                .split_whitespace()
                .nth(5)
                .map(Path::new)
                .filter(|p| p.parent() == Some(dir.as_path()))
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned());
        } else if first == "Rss:" {
            if let (Some(name), Some(kb)) =
                (&current, parts.next().and_then(|v| v.parse::<u64>().ok()))
            {
                *out.entry(name.clone()).or_insert(0) += kb * 1024;
            }
        }
    }
    out
}

/// Plain output: one line per query, the ids separated by spaces.
fn print_ids(found: &Neighbours) -> Result<()> {
    let stdout = std::io::stdout().lock();
    let mut w = BufWriter::new(stdout);
    let res = (|| {
        for q in 0..found.queries() {
            let mut first = true;
            for id in found.ids(q) {
                if !first {
                    w.write_all(b" ")?;
                }
                first = false;
                write!(w, "{id}")?;
            }
            w.write_all(b"\n")?;
        }
        w.flush()
    })();
    stdout_result(res)
}

fn print_json_lines(
    index: &Index,
    items: Option<&[crate::ItemInfo]>,
    found: &Neighbours,
    stats: &QueryStats,
) -> Result<()> {
    let labels = index.labels();
    let stdout = std::io::stdout().lock();
    let mut w = BufWriter::new(stdout);
    fn line(w: &mut impl Write, rec: &QueryRecord<'_>) -> std::io::Result<()> {
        serde_json::to_writer(&mut *w, rec)?;
        w.write_all(b"\n")
    }
    let res = (|| {
        for q in 0..found.queries() {
            let ids = found.ids(q);
            let hits = index.hits(items, found, q);
            let rec = QueryRecord::Query {
                query: q,
                ids,
                distances: found.distances(q),
                labels: labels.map(|l| {
                    ids.iter()
                        .map(|&i| usize::try_from(i).ok().and_then(|i| l.get(i).copied()))
                        .collect()
                }),
                predicted_score: crate::score::predict_from_hits(&hits),
                hits,
            };
            line(&mut w, &rec)?;
        }
        line(&mut w, &QueryRecord::Summary(stats))?;
        w.flush()
    })();
    stdout_result(res)
}

/// A closed pipe (`| head`) is not an error; anything else is.
fn stdout_result(res: std::io::Result<()>) -> Result<()> {
    match res {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("<stdout>", e)),
        _ => Ok(()),
    }
}

/// `likeness verify`.
pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let index = Index::open(&args.index)?;
    let report = index.verify()?;
    print_line(&format!(
        "{}: ok ({} items, dimension {}, {}; {} checked, {:.1} MB, {} graph links) in {:.2}s",
        args.index.display(),
        index.len(),
        index.dim(),
        index.metric(),
        report.files.join(", "),
        report.bytes as f64 / 1e6,
        report.edges,
        start.elapsed().as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}

/// A `kB` field of `/proc/self/status` in bytes (`None` off Linux).
pub fn proc_status_bytes(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

fn print_line(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_index_commands_from_raw_arguments() {
        let a = |s: &str| -> Vec<OsString> { s.split(' ').map(OsString::from).collect() };
        assert!(is_index_command(&a(
            "likeness build --vectors v.npy --out x"
        )));
        assert!(is_index_command(&a(
            "likeness --threads 1 query --index x --id 3"
        )));
        assert!(is_index_command(&a(
            "likeness --device=cpu verify --index x"
        )));
        assert!(!is_index_command(&a(
            "likeness query --index x --image f.png"
        )));
        assert!(!is_index_command(&a(
            "likeness query --index x --id 1 --montage=m.png"
        )));
        assert!(!is_index_command(&a("likeness train --data d --out m")));
        assert!(!is_index_command(&a("likeness --help")));
        assert!(!is_index_command(&a("likeness")));
    }

    #[test]
    fn reads_peak_rss_on_linux() {
        if cfg!(target_os = "linux") {
            let hwm = proc_status_bytes("VmHWM").unwrap();
            assert!(hwm > 1 << 20, "{hwm}");
        }
        assert_eq!(proc_status_bytes("NoSuchField"), None);
    }
}
