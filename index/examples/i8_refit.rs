//! An i8 index that grows past the range its quantizer was fitted on: the
//! figures of docs/benchmarks.md ("The i8 quantizer of a grown index").
//! Not part of the library.
//!
//! ```text
//! cargo run --release -p likeness-index --example i8_refit -- BASE.npy QUERIES.npy [SHIFT] [QUERIES_PER_HALF]
//! ```
//!
//! The first half of BASE is built with `--store i8` (squared L2, M 16,
//! ef_construction 200, 2 threads); the second half, every value plus
//! SHIFT (default 128: fashion-mnist's pixels are 0..255, so about half of
//! the added values fall outside the fitted range), is added in one call,
//! which folds it into the graph. Against it: a fresh i8 build of the same
//! 60,000 vectors, and the grown index built and grown the same way with
//! `--store f32` (the graph's share of any loss). Queries: the first
//! QUERIES_PER_HALF (500) rows of QUERIES as they are and the same rows
//! plus SHIFT. Recall@10 against exact search, ef 64: "i8
//! pass" re-ranks only the 10 the beam ranked best by their codes (so it
//! counts which items the codes found), "re-ranked" the whole beam (the
//! default). Also: the fold's time, and the time of one fit of the
//! quantizer over the 60,000 (best of 3).
use std::path::Path;
use std::time::Instant;

use likeness_index::postings::SearchOptions;
use likeness_index::{
    npy, Index, IndexBuilder, KnnQuery, Metric, NewItems, Quantizer, Store, Writer,
};

type Res<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const K: usize = 10;
const EF: usize = 64;

fn builder(store: Store) -> IndexBuilder {
    IndexBuilder::new()
        .metric(Metric::L2)
        .m(16)
        .ef_construction(200)
        .store(store)
        .threads(2)
}

/// Recall@K of `index` against `truth`, per query half; `rerank`: re-rank
/// only the K best of the beam (the i8 pass) or the whole beam.
fn recall(index: &Index, queries: &[f32], truth: &[i64], i8_pass: bool) -> Res<(f64, f64)> {
    let options = SearchOptions {
        rerank: if i8_pass { Some(K) } else { None },
        ..SearchOptions::default()
    };
    let (found, _) = index.query(&KnnQuery::new(queries).k(K).ef(EF).options(options))?;
    let rows = found.queries();
    let mut hits = [0usize; 2];
    for q in 0..rows {
        let want = &truth[q * K..(q + 1) * K];
        hits[q * 2 / rows] += found.ids(q).iter().filter(|i| want.contains(i)).count();
    }
    let per_half = (rows / 2 * K) as f64;
    Ok((hits[0] as f64 / per_half, hits[1] as f64 / per_half))
}

/// Builds the first half with `store`, adds the shifted second half;
/// returns the fold's seconds.
fn grow(dir: &Path, store: Store, first: &[f32], added: &[f32], dim: usize) -> Res<f64> {
    builder(store).build(first, dim, None, None, dir, None)?;
    let mut w = Writer::open(dir)?;
    w.threads(2);
    let t = Instant::now();
    w.add(&NewItems {
        vectors: added,
        ..NewItems::default()
    })?;
    Ok(t.elapsed().as_secs_f64())
}

/// Fraction of the added values outside the quantizer's range.
fn clipped(qz: &Quantizer, added: &[f32], dim: usize) -> f64 {
    let out = added
        .chunks_exact(dim)
        .flat_map(|row| row.iter().enumerate())
        .filter(|&(d, &x)| x < qz.offset[d] || x > qz.offset[d] + 255.0 * qz.scale[d])
        .count();
    out as f64 / added.len() as f64
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        return Err("usage: i8_refit BASE.npy QUERIES.npy [SHIFT] [QUERIES_PER_HALF]".into());
    }
    let shift: f32 = args.get(2).map_or(Ok(128.0), |s| s.parse())?;
    let per_half: usize = args.get(3).map_or(Ok(500), |s| s.parse())?;
    let base = npy::read_matrix(&args[0])?;
    let qm = npy::read_matrix(&args[1])?;
    let dim = base.dim;
    let half = base.rows / 2;
    let first = &base.data[..half * dim];
    let added: Vec<f32> = base.data[half * dim..].iter().map(|x| x + shift).collect();
    let all: Vec<f32> = first.iter().chain(&added).copied().collect();
    let q0 = &qm.data[..per_half * dim];
    let queries: Vec<f32> = q0
        .iter()
        .copied()
        .chain(q0.iter().map(|x| x + shift))
        .collect();

    let t = tempfile::tempdir()?;
    let fresh_dir = t.path().join("fresh");
    builder(Store::I8).build(&all, dim, None, None, &fresh_dir, None)?;
    let fresh = Index::open(&fresh_dir)?;
    let (truth, _) = fresh.query(&KnnQuery::new(&queries).k(K).exact(true))?;
    let truth = truth.all_ids().to_vec();

    let grown_dir = t.path().join("grown");
    let fold_s = grow(&grown_dir, Store::I8, first, &added, dim)?;
    let grown = Index::open(&grown_dir)?;
    let f32_dir = t.path().join("grown-f32");
    let fold_f32_s = grow(&f32_dir, Store::F32, first, &added, dim)?;
    let grown_f32 = Index::open(&f32_dir)?;

    let mut fit_s = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        let qz = Quantizer::fit(&all, dim, likeness_index::quant::DEFAULT_QUANTILE)?;
        fit_s = fit_s.min(t.elapsed().as_secs_f64());
        std::hint::black_box(qz);
    }

    println!(
        "{} + {} vectors of dimension {dim}, added shifted by {shift}; {per_half} + {per_half} queries; k {K}, ef {EF}",
        half,
        base.rows - half
    );
    println!(
        "fold of the add: i8 {fold_s:.2} s, f32 {fold_f32_s:.2} s; one fit of the quantizer over {}: {fit_s:.3} s",
        base.rows
    );
    for (name, ix) in [("grown i8", &grown), ("fresh i8", &fresh)] {
        let qz = ix.manifest().quantizer.as_ref().ok_or("no quantizer")?;
        println!(
            "{name}: added values outside its quantizer's range {:.4}",
            clipped(qz, &added, dim)
        );
    }
    println!("| index | i8 pass, queries as they are | i8 pass, shifted queries | re-ranked, as they are | re-ranked, shifted |");
    println!("|---|---:|---:|---:|---:|");
    for (name, ix) in [
        ("grown i8", &grown),
        ("fresh i8", &fresh),
        ("grown f32", &grown_f32),
    ] {
        let (a, b) = recall(ix, &queries, &truth, true)?;
        let (c, d) = recall(ix, &queries, &truth, false)?;
        println!("| {name} | {a:.4} | {b:.4} | {c:.4} | {d:.4} |");
    }
    Ok(())
}
