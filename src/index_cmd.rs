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
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use likeness_index::{npy, Index, IndexBuilder, Metric, Neighbours};
use serde::Serialize;

use crate::error::{Error, Result};

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
    /// Seed of the insertion order (with --threads 1 the build is reproducible).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace an existing index at --out. The new index is built beside it
    /// first; a failed build leaves the old one untouched.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Index directory made by `likeness build`.
    #[arg(long)]
    pub index: PathBuf,
    /// Query vectors: a 2-D .npy of float16, float32 or float64 with the index's dimension.
    #[arg(long)]
    pub vectors: PathBuf,
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
    /// Write the item ids as an int64 .npy of shape (queries, k); -1 pads
    /// queries with fewer than k results.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print JSON Lines on stdout: one {"type":"query",...} object per query,
    /// then one {"type":"summary",...}.
    #[arg(long)]
    pub json: bool,
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
        return Err(Error::Invalid(format!(
            "{} already exists; remove it, choose another --out or pass --force to replace it",
            args.out.display()
        )));
    }
    let matrix = npy::read_matrix(&args.vectors)?;
    let labels = args.labels.as_ref().map(npy::read_labels).transpose()?;
    if let Some(l) = &labels {
        if l.len() != matrix.rows {
            return Err(Error::Invalid(format!(
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
        .threads(threads)
        .overwrite(args.force);
    let bar = crate::progress::bar(matrix.rows as u64, "indexing");
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
        "indexed {} vectors of dimension {} ({}, M={}, ef_construction={}, {} threads, {} levels) \
         in {:.2}s (read {:.2}s, graph {:.2}s); {:.1} MB in {}",
        report.count,
        matrix.dim,
        Metric::from(args.metric),
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

/// `likeness query`.
pub fn query(threads: usize, args: QueryArgs) -> Result<ExitCode> {
    let t_open = Instant::now();
    let index = Index::open(&args.index)?;
    let open_seconds = t_open.elapsed().as_secs_f64();
    let rss_after_open = proc_status_bytes("VmRSS");
    let queries = npy::read_matrix(&args.vectors)?;
    if queries.dim != index.dim() {
        return Err(Error::Invalid(format!(
            "dimension mismatch: {} holds vectors of dimension {} but the index {} has dimension {}; \
             the queries must come from the model that built the index",
            args.vectors.display(),
            queries.dim,
            args.index.display(),
            index.dim()
        )));
    }
    let t_search = Instant::now();
    let found = if args.exact {
        index.search_exact_batch(&queries.data, queries.dim, args.k, None)?
    } else {
        index.search_batch(&queries.data, queries.dim, args.k, args.ef, None)?
    };
    let search_seconds = t_search.elapsed().as_secs_f64();
    let stats = QueryStats {
        queries: queries.rows,
        k: args.k,
        ef: (!args.exact).then_some(args.ef.max(args.k)),
        exact: args.exact,
        threads,
        open_seconds,
        search_seconds,
        queries_per_second: queries.rows as f64 / search_seconds.max(1e-9),
        rss_after_open_bytes: rss_after_open,
        peak_rss_bytes: proc_status_bytes("VmHWM"),
        index_bytes: index.manifest().files.values().map(|f| f.size).sum(),
    };
    if let Some(out) = &args.out {
        npy::write(out, found.all_ids(), &[found.queries(), found.k()])?;
    }
    if args.json {
        print_json_lines(&index, &found, &stats)?;
    } else if args.out.is_none() {
        print_ids(&found)?;
    }
    eprintln!("{}", render_stats(&stats));
    Ok(ExitCode::SUCCESS)
}

fn render_stats(s: &QueryStats) -> String {
    let mb = |b: Option<u64>| b.map_or("n/a".to_string(), |b| format!("{:.1} MB", b as f64 / 1e6));
    format!(
        "{} queries, k={}, {} on {} thread{}: {:.0} queries/s ({:.3}s); index open {:.2} ms; \
         rss after open {}, peak rss {} (index files {:.1} MB)",
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
        s.index_bytes as f64 / 1e6
    )
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

fn print_json_lines(index: &Index, found: &Neighbours, stats: &QueryStats) -> Result<()> {
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
            let rec = QueryRecord::Query {
                query: q,
                ids,
                distances: found.distances(q),
                labels: labels.map(|l| {
                    ids.iter()
                        .map(|&i| usize::try_from(i).ok().and_then(|i| l.get(i).copied()))
                        .collect()
                }),
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
    fn reads_peak_rss_on_linux() {
        if cfg!(target_os = "linux") {
            let hwm = proc_status_bytes("VmHWM").unwrap();
            assert!(hwm > 1 << 20, "{hwm}");
        }
        assert_eq!(proc_status_bytes("NoSuchField"), None);
    }
}
