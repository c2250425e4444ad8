//! `likeness query`: the nearest items of vectors, stored items or an image.
use std::path::PathBuf;

use clap::Args;

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
    /// Region of --image to query with, in pixels: x,y,w,h (a hit's JSON
    /// `region` is corners x0,y0,x1,y1: give x0,y0,x1-x0,y1-y0).
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
    #[command(flatten)]
    pub photos: super::PhotoArgs,
    /// Neighbours per query.
    #[arg(short = 'k', long = "k", default_value_t = likeness_index::knn::DEFAULT_K)]
    pub k: usize,
    /// Beam width of the search (raised to k if smaller); larger is slower
    /// and more accurate.
    #[arg(long, default_value_t = likeness_index::knn::DEFAULT_EF)]
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
    /// unknown class name, or a number past the class names, is an error
    /// naming them.
    #[arg(long, value_delimiter = ',', conflicts_with = "exclude_labels")]
    pub labels: Vec<String>,
    /// No results with these labels (integers or class names).
    #[arg(long, value_delimiter = ',')]
    pub exclude_labels: Vec<String>,
    /// Plan of a filtered search: auto (exact scan when at most
    /// --exact-below items pass, else the graph with the filter in the
    /// beam), exact or graph.
    #[arg(long, default_value = "auto")]
    pub plan: likeness_index::postings::PlanChoice,
    /// Filters that keep at most this many items are scanned exactly
    /// [default: sqrt(433 × items), 5,097 for 60,000; see docs/benchmarks.md].
    #[arg(long)]
    pub exact_below: Option<usize>,
    /// Write the item ids as an int64 .npy of shape (queries, k); -1 pads
    /// queries with fewer than k results.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print JSON Lines on stdout: one {"type":"query",...} object per query,
    /// then one {"type":"summary",...}. A hit's `region` is the item's box
    /// as corners [x0, y0, x1, y1], as `serve` and Python give it (the
    /// table prints it as x,y,w,h; --region takes x0,y0,x1-x0,y1-y0); a
    /// face's `region` (`faces`, a whole photo's) is x,y,w,h, as --region
    /// takes it.
    #[arg(long)]
    pub json: bool,
    /// Draw each query beside its k nearest items (label under each, green
    /// border where it matches the query's label, red where not) into this PNG.
    #[arg(long)]
    pub montage: Option<PathBuf>,
}

impl QueryArgs {
    /// Whether this query needs the network: an image to embed.
    pub fn needs_torch(&self) -> bool {
        self.image.is_some()
    }
}
