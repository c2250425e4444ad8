//! The graph options `build` and `index` share: one spelling of each, with
//! the engine's defaults.
use clap::{Args, ValueEnum};
use likeness_index::build::{DEFAULT_EF_CONSTRUCTION, DEFAULT_M};
use likeness_index::quant::DEFAULT_QUANTILE;
use likeness_index::{GraphBuilder, IndexBuilder, Metric, Store};

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

#[derive(Debug, Clone, Args)]
pub struct GraphArgs {
    /// Distance: cosine (vectors normalised at build) or l2 (squared Euclidean).
    #[arg(long, value_enum, default_value_t = MetricArg::Cosine)]
    pub metric: MetricArg,
    /// Links per node in the upper layers (layer 0 keeps 2·M); 2..=256.
    #[arg(long, default_value_t = DEFAULT_M)]
    pub m: usize,
    /// Beam width while building; larger is slower to build and gives better recall.
    #[arg(long, default_value_t = DEFAULT_EF_CONSTRUCTION)]
    pub ef_construction: usize,
    /// Seed of the levels and the insertion order (with --threads 1 the
    /// build is reproducible).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Graph builder: `native` (ours, the default) or `hnsw_rs` (only in
    /// builds with the `hnsw-rs` feature of likeness-index; for comparison).
    #[arg(long, default_value = "native")]
    pub builder: GraphBuilder,
    /// How the vectors the graph search reads are stored: f32, f16 (half
    /// precision) or i8 (8-bit per-dimension codes, a quarter of f32's
    /// memory); f16 and i8 re-rank with the float32 vectors, so distances
    /// stay exact.
    #[arg(long, default_value = "f32")]
    pub store: Store,
    /// i8: central fraction of each dimension's values the codes span; the
    /// rest are clipped.
    #[arg(long, default_value_t = DEFAULT_QUANTILE)]
    pub quantile: f32,
}

impl GraphArgs {
    /// A builder with these options and `threads` build threads.
    pub fn builder(&self, threads: usize) -> IndexBuilder {
        IndexBuilder::new()
            .metric(self.metric.into())
            .m(self.m)
            .ef_construction(self.ef_construction)
            .seed(self.seed)
            .graph_builder(self.builder)
            .store(self.store)
            .quantile(self.quantile)
            .threads(threads)
    }

    /// The settings as the command prints them.
    pub fn describe(&self) -> String {
        format!(
            "{}, store {}, M={}, ef_construction={}",
            Metric::from(self.metric),
            self.store,
            self.m,
            self.ef_construction
        )
    }
}
