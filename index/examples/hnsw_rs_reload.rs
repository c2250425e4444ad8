//! hnsw_rs's own dump and reload, for comparison with `likeness query` (the
//! numbers in benches/ann/results.md, "1M × 128"). Not part of the library.
//!
//! ```text
//! cargo run --release -p likeness-index --features hnsw-rs --example hnsw_rs_reload -- build BASE.npy DIR [THREADS] [EF_CONSTRUCTION]
//! cargo run --release -p likeness-index --features hnsw-rs --example hnsw_rs_reload -- load DIR QUERIES.npy [K] [EF]
//! ```
//!
//! `build` inserts the vectors with hnsw_rs (M = 16, ef_construction 200 by
//! default, squared L2 of anndists) and writes hnsw_rs's `base.hnsw.graph` and
//! `base.hnsw.data` into DIR. `load` reloads them (vectors memory-mapped, as
//! hnsw_rs allows), answers the first query and prints the reload time, the
//! time to the first answer and the resident set size.
use std::path::Path;
use std::time::Instant;

use anndists::dist::DistL2;
use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::{HnswIo, ReloadOptions};
use likeness_index::npy;

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|r| r.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn build(base: &Path, dir: &Path, threads: usize, ef_construction: usize) -> Res<()> {
    let m = npy::read_matrix(base)?;
    let t = Instant::now();
    let hnsw = Hnsw::<f32, DistL2>::new(16, m.rows, 16, ef_construction, DistL2 {});
    let items: Vec<(&[f32], usize)> = (0..m.rows).map(|i| (m.row(i), i)).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    pool.install(|| {
        for chunk in items.chunks(4096) {
            hnsw.parallel_insert_slice(&chunk.to_vec());
        }
    });
    let built = t.elapsed().as_secs_f64();
    std::fs::create_dir_all(dir)?;
    let t = Instant::now();
    hnsw.file_dump(dir, "base").map_err(|e| e.to_string())?;
    println!(
        "hnsw_rs build {} x {} (M 16, ef_construction {ef_construction}) on {threads} threads: \
         {built:.2}s; dump {:.2}s",
        m.rows,
        m.dim,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn load(dir: &Path, queries: &Path, k: usize, ef: usize) -> Res<()> {
    let start = Instant::now();
    let q = npy::read_matrix(queries)?;
    let rss_before = rss_mb();
    let mut io = HnswIo::new(dir, "base");
    io.set_options(ReloadOptions::default().set_mmap(true));
    let hnsw: Hnsw<f32, DistL2> = io.load_hnsw().map_err(|e| e.to_string())?;
    let reload = start.elapsed().as_secs_f64();
    let found = hnsw.search(q.row(0), k, ef);
    let first = start.elapsed().as_secs_f64();
    let ids: Vec<usize> = found.iter().map(|n| n.d_id).collect();
    println!(
        "hnsw_rs reload {:.3}s, first answer after {:.3}s; rss {:.1} MB before reload, {:.1} MB after; ids {:?}",
        reload,
        first,
        rss_before,
        rss_mb(),
        ids
    );
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage =
        "usage: hnsw_rs_reload build BASE.npy DIR [THREADS] [EF_CONSTRUCTION] | load DIR QUERIES.npy [K] [EF]";
    match args.get(1).map(String::as_str) {
        Some("build") if args.len() >= 4 => build(
            Path::new(&args[2]),
            Path::new(&args[3]),
            args.get(4).map_or(Ok(2), |s| s.parse())?,
            args.get(5).map_or(Ok(200), |s| s.parse())?,
        ),
        Some("load") if args.len() >= 4 => load(
            Path::new(&args[2]),
            Path::new(&args[3]),
            args.get(4).map_or(Ok(10), |s| s.parse())?,
            args.get(5).map_or(Ok(64), |s| s.parse())?,
        ),
        _ => Err(usage.into()),
    }
}
