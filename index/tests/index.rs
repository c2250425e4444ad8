//! End-to-end tests of the on-disk index: recall against brute force, round
//! trips, damaged files, and the golden v1 index.

use std::path::{Path, PathBuf};

use likeness_index::{
    exact, metrics, Error, GraphBuilder, Index, IndexBuilder, ItemInfo, ItemPairing, KnnQuery,
    LabelFilter, Metric, Neighbours, Side,
};
use rand::{Rng, SeedableRng};

/// `n` points around `clusters` random centres in `dim` dimensions, with
/// their cluster as label.
fn clustered(n: usize, dim: usize, clusters: usize, seed: u64) -> (Vec<f32>, Vec<i64>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let mut v = Vec::with_capacity(n * dim);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let c = rng.gen_range(0..clusters);
        labels.push(c as i64);
        for d in 0..dim {
            // Sum of uniforms: roughly Gaussian, cheap.
            let noise: f32 = (0..4).map(|_| rng.gen_range(-0.25f32..0.25)).sum();
            v.push(centres[c * dim + d] + noise);
        }
    }
    (v, labels)
}

/// Runs `q` on `index` (the one search entry point), keeping the
/// neighbours.
fn search(index: &Index, q: KnnQuery<'_>) -> Neighbours {
    index.query(&q).unwrap().0
}

fn seed() -> u64 {
    std::env::var("LIKENESS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        // A fixed default, so that a CI run cannot fail by the luck of the
        // draw; other seeds through the variable (a sweep over 45 of them is
        // summarised in recall_against_brute_force).
        .unwrap_or(7)
}

#[test]
fn recall_against_brute_force() {
    let seed = seed();
    println!("seed = {seed} (rerun with LIKENESS_TEST_SEED={seed})");
    // 20k points as the issue asks when optimised; unoptimised hnsw_rs
    // builds ~10x slower, so plain `cargo test` uses 4k (same dimension,
    // same threshold).
    let n = if cfg!(debug_assertions) {
        2_500
    } else {
        20_000
    };
    let (dim, nq, k) = (64, 200, 10);
    println!("{n} points, {dim}-d, {nq} queries");
    // Few, wide clusters: neighbours are decided inside a 64-d cloud, the
    // hard case for a graph search.
    let (all, _) = clustered(n + nq, dim, 10, seed);
    let (base, queries) = all.split_at(n * dim);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ix");
    for (metric, sub) in [(Metric::L2, "l2"), (Metric::Cosine, "cos")] {
        let truth = exact::search(base, queries, dim, k, metric).unwrap();
        let mut recalls = Vec::new();
        // Our builder (the default) and, when compiled in, hnsw_rs on the
        // same data.
        let builders: &[GraphBuilder] = if cfg!(feature = "hnsw-rs") {
            &[GraphBuilder::Native, GraphBuilder::HnswRs]
        } else {
            &[GraphBuilder::Native]
        };
        for &builder in builders {
            let out = out.with_extension(format!("{sub}-{builder:?}"));
            let t = std::time::Instant::now();
            IndexBuilder::new()
                .metric(metric)
                .seed(seed)
                .graph_builder(builder)
                .build(base, dim, None, None, &out, None)
                .unwrap();
            let build = t.elapsed();
            let index = Index::open(&out).unwrap();
            assert_eq!(index.manifest().build.builder, builder.describe());
            let approx = search(&index, KnnQuery::new(queries).dim(dim).k(k).ef(64));
            let recall = metrics::ann_recall(&approx, &truth, k).unwrap();
            println!("{metric} {builder:?}: recall@{k} at ef 64 = {recall:.4} (build {build:.1?})");
            // The bound is on our builder. hnsw_rs is the reference it is
            // compared with below, not code under test: over seeds 100-129 it
            // fell to 0.9425 once (l2, seed 104) while ours stayed >= 0.9715.
            assert!(
                builder != GraphBuilder::Native || recall >= 0.95,
                "{metric} {builder:?}: recall {recall} < 0.95 (seed {seed})"
            );
            // The exact search of the index agrees with the free function.
            let ex = search(&index, KnnQuery::new(queries).dim(dim).k(k).exact(true));
            assert!(metrics::ann_recall(&ex, &truth, k).unwrap() > 0.999);
            recalls.push(recall);
        }
        // Our graph is about as good as hnsw_rs's (same m, ef_construction).
        // On this data ours is systematically a little lower at ef 64: over
        // seeds 1-15 and one CI seed (32 comparisons) hnsw_rs led by 0.006 on
        // average and by 0.014 at most; over seeds 100-129 (59 comparisons)
        // by 0.005 and 0.013. Why: hnsw_rs 0.3.5 gives a new node up to 2m
        // layer-0 links (hnswlib and ours: m) and shrinks a full list by
        // dropping its farthest link rather than by the heuristic, so its
        // lists stay full: a denser graph, more distances per hop, higher
        // recall at the same ef (`make bench-ann` compares speed at equal
        // recall). The earlier bound of 0.01 failed on 4
        // of those 32 (the seed is random per run); 0.02 keeps the check on a
        // real regression.
        assert!(
            recalls.len() < 2 || recalls[0] >= recalls[1] - 0.02,
            "{metric}: native {} vs hnsw_rs {} (seed {seed})",
            recalls[0],
            recalls.last().unwrap()
        );
    }
}

fn build_small(
    dir: &Path,
    n: usize,
    dim: usize,
    metric: Metric,
    with_meta: bool,
) -> (PathBuf, Vec<f32>, Vec<i64>) {
    let (v, labels) = clustered(n, dim, 7, 11);
    let out = dir.join("ix");
    let items: Vec<ItemInfo> = (0..n)
        .map(|i| ItemInfo {
            source: format!("img/{i}.jpg"),
            region: (i % 2 == 0).then_some([0.0, 1.0, 2.0, i as f32]),
        })
        .collect();
    let b = IndexBuilder::new()
        .metric(metric)
        .m(8)
        .ef_construction(64)
        .threads(1)
        .seed(3);
    if with_meta {
        b.build(&v, dim, Some(&labels), Some(&items), &out, None)
            .unwrap();
    } else {
        b.build(&v, dim, None, None, &out, None).unwrap();
    }
    (out, v, labels)
}

#[test]
fn label_filter_and_progress() {
    let dir = tempfile::tempdir().unwrap();
    let (v, labels) = clustered(3000, 16, 7, 5);
    let out = dir.path().join("ix");
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let last = std::sync::atomic::AtomicUsize::new(0);
    let progress = |done: usize, total: usize| {
        assert_eq!(total, 3000);
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        last.fetch_max(done, std::sync::atomic::Ordering::Relaxed);
    };
    IndexBuilder::new()
        .metric(Metric::L2)
        .build(&v, 16, Some(&labels), None, &out, Some(&progress))
        .unwrap();
    assert!(calls.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert_eq!(last.load(std::sync::atomic::Ordering::Relaxed), 3000);
    let index = Index::open(&out).unwrap();
    let q = &v[..16];
    // Recall over 50 queries, not one: one query's Recall@10 moves in steps
    // of 0.1, and the parallel build's graph differs from run to run (one
    // query fell below 0.9 in 1 of 10 runs beside other tests; over these
    // 50 it was 1.0 in each of 6 runs).
    let queries: Vec<f32> = v.chunks(16).step_by(60).flatten().copied().collect();
    for f in [LabelFilter::only([2, 4]), LabelFilter::except([labels[0]])] {
        let query = || KnnQuery::new(&queries).dim(16).k(10).filter(Some(&f));
        let r = search(&index, query().ef(100));
        let ex = search(&index, query().exact(true));
        for row in 0..queries.len() / 16 {
            for &id in r.ids(row) {
                assert!(
                    id >= 0 && f.allows(labels[id as usize]),
                    "{f:?} let through {id}"
                );
            }
        }
        let recall = metrics::ann_recall(&r, &ex, 10).unwrap();
        assert!(recall >= 0.9, "{f:?}: Recall@10 {recall}");
    }
    // No labels: a filter is refused with a clear error.
    let out2 = dir.path().join("nolabels");
    IndexBuilder::new()
        .build(&v[..160], 16, None, None, &out2, None)
        .unwrap();
    let only1 = LabelFilter::only([1]);
    let e = Index::open(&out2)
        .unwrap()
        .query(&KnnQuery::new(q).k(1).ef(10).filter(Some(&only1)))
        .unwrap_err();
    assert!(e.to_string().contains("--labels"), "{e}");
}

#[test]
fn search_rejects_bad_queries() {
    let dir = tempfile::tempdir().unwrap();
    let (out, v, _) = build_small(dir.path(), 200, 8, Metric::Cosine, false);
    let index = Index::open(&out).unwrap();
    assert!(matches!(
        index.query(&KnnQuery::new(&v[..7]).k(5).ef(10)),
        Err(Error::DimensionMismatch {
            expected: 8,
            got: 7,
            ..
        })
    ));
    assert!(matches!(
        index.query(&KnnQuery::new(&v[..16]).dim(4).k(5).ef(10)),
        Err(Error::DimensionMismatch {
            expected: 8,
            got: 4,
            ..
        })
    ));
    let mut q = v[..24].to_vec();
    q[19] = f32::NAN;
    assert!(matches!(
        index.query(&KnnQuery::new(&q).dim(8).k(5).ef(10)),
        Err(Error::NonFinite { row: 2, col: 3, .. })
    ));
    assert!(matches!(
        index.query(&KnnQuery::new(&[0.0; 8]).k(5).ef(10)),
        Err(Error::ZeroVector { row: 0 })
    ));
    assert!(matches!(
        index.query(&KnnQuery::new(&v[..8]).k(0).ef(10)),
        Err(Error::InvalidParameter { name: "k", .. })
    ));
    assert!(matches!(
        index.query(&KnnQuery::new(&v[..8]).k(5).ef(usize::MAX)),
        Err(Error::InvalidParameter { name: "ef", .. })
    ));
    // k larger than the index: padded.
    let r = search(&index, KnnQuery::new(&v[..8]).k(300).ef(10));
    assert_eq!(r.ids(0).iter().filter(|&&i| i >= 0).count(), 200);
    assert_eq!(r.ids(0)[250], -1);
}

#[test]
fn build_refuses_existing_output_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let (out, v, _) = build_small(dir.path(), 50, 4, Metric::L2, false);
    let e = IndexBuilder::new()
        .build(&v, 4, None, None, &out, None)
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("ix")]);
    let mut files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["graph.bin", "manifest.json", "vectors.npy"]);
}

// ---- damaged files -------------------------------------------------------

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Rewrites the manifest entry of `name` to match the file on disk, so a
/// damage inside the file is what opening meets (not the size check).
fn refresh_manifest(dir: &Path, name: &str) {
    let p = dir.join("manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join(name)).unwrap();
    m["files"][name]["size"] = bytes.len().into();
    m["files"][name]["crc32"] = crc32fast::hash(&bytes).into();
    std::fs::write(&p, serde_json::to_vec(&m).unwrap()).unwrap();
}

fn damaged(
    base: &Path,
    tag: &str,
    name: &str,
    f: impl FnOnce(&mut Vec<u8>),
    refresh: bool,
) -> PathBuf {
    let d = base.parent().unwrap().join(tag);
    copy_dir(base, &d);
    let p = d.join(name);
    let mut bytes = std::fs::read(&p).unwrap();
    f(&mut bytes);
    std::fs::write(&p, bytes).unwrap();
    if refresh {
        refresh_manifest(&d, name);
    }
    d
}

fn le32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn damaged_files_give_specific_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (good, v, _) = build_small(dir.path(), 300, 8, Metric::L2, true);
    let index = Index::open(&good).unwrap();
    index.verify().unwrap();
    drop(index);

    // Wrong magic.
    let d = damaged(&good, "magic", "graph.bin", |b| b[0] = b'X', true);
    assert!(
        matches!(Index::open(&d), Err(Error::BadMagic { ref path, .. }) if path.ends_with("graph.bin"))
    );
    let d = damaged(&good, "meta-magic", "meta.bin", |b| b[3] = b'?', true);
    assert!(
        matches!(Index::open(&d), Err(Error::BadMagic { ref path, .. }) if path.ends_with("meta.bin"))
    );
    let d = damaged(&good, "npy-magic", "vectors.npy", |b| b[1] = b'X', true);
    assert!(
        matches!(Index::open(&d), Err(Error::Npy { ref path, .. }) if path.ends_with("vectors.npy"))
    );

    // Newer version (the header checksum is not even looked at).
    let d = damaged(&good, "version", "graph.bin", |b| le32(b, 8, 9), true);
    assert!(matches!(
        Index::open(&d),
        Err(Error::UnsupportedVersion { found: 9, .. })
    ));

    // A flipped byte in the header (the dimension field).
    let d = damaged(&good, "flip", "graph.bin", |b| b[32] ^= 0x10, true);
    assert!(
        matches!(Index::open(&d), Err(Error::ChecksumMismatch { ref path, .. }) if path.ends_with("graph.bin"))
    );

    // Truncated: first the manifest size check, then (manifest refreshed)
    // the structural one.
    let cut = |b: &mut Vec<u8>| b.truncate(b.len() - 100);
    let d = damaged(&good, "trunc", "graph.bin", cut, false);
    assert!(matches!(Index::open(&d), Err(Error::SizeMismatch { .. })));
    let d = damaged(&good, "trunc2", "graph.bin", cut, true);
    assert!(
        matches!(Index::open(&d), Err(Error::Truncated { .. })),
        "{:?}",
        Index::open(&d)
    );
    let d = damaged(&good, "trunc3", "graph.bin", |b| b.truncate(100), true);
    assert!(matches!(
        Index::open(&d),
        Err(Error::Truncated {
            expected: 128,
            actual: 100,
            ..
        })
    ));
    let d = damaged(
        &good,
        "trunc4",
        "vectors.npy",
        |b| b.truncate(b.len() - 4),
        true,
    );
    assert!(
        matches!(Index::open(&d), Err(Error::Truncated { .. })),
        "{:?}",
        Index::open(&d)
    );

    // Manifest and file size disagree.
    let d = damaged(&good, "size", "vectors.npy", |b| b.push(0), false);
    assert!(
        matches!(Index::open(&d), Err(Error::SizeMismatch { expected, actual, .. }) if actual == expected + 1)
    );

    // Out-of-range neighbour ids inside an otherwise valid file: open
    // succeeds (it does not read adjacency), search and verify fail.
    let d = damaged(
        &good,
        "nbr",
        "graph.bin",
        |b| {
            // Layer 0 entry: neighbours_offset at 128 + 32, edges at 128 + 24.
            let off = u64::from_le_bytes(b[160..168].try_into().unwrap()) as usize;
            let edges = u64::from_le_bytes(b[152..160].try_into().unwrap()) as usize;
            for e in 0..edges {
                le32(b, off + 4 * e, 300 + e as u32);
            }
        },
        false,
    );
    // The manifest CRC is stale, but opening does not read CRCs.
    let ix = Index::open(&d).unwrap();
    let e = ix.query(&KnnQuery::new(&v[..8]).k(5).ef(20)).unwrap_err();
    assert!(
        matches!(e, Error::Corrupt { ref path, .. } if path.ends_with("graph.bin")),
        "{e}"
    );
    assert!(e.to_string().contains("out of range"), "{e}");
    assert!(matches!(ix.verify(), Err(Error::ChecksumMismatch { .. })));
    drop(ix);
    refresh_manifest(&d, "graph.bin");
    assert!(matches!(
        Index::open(&d).unwrap().verify(),
        Err(Error::Corrupt { .. })
    ));

    // A flipped byte in the vectors: open is fine, verify catches it.
    let d = damaged(
        &good,
        "vecflip",
        "vectors.npy",
        |b| *b.last_mut().unwrap() ^= 1,
        false,
    );
    assert!(
        matches!(Index::open(&d).unwrap().verify(), Err(Error::ChecksumMismatch { ref path, .. }) if path.ends_with("vectors.npy"))
    );

    // Item records that do not decode.
    let d = damaged(
        &good,
        "payload",
        "meta.bin",
        |b| {
            let off = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
            b[off..off + 8].fill(0xff);
        },
        true,
    );
    let ix = Index::open(&d).unwrap();
    assert!(matches!(ix.items(), Err(Error::Corrupt { .. })));

    // Missing file, missing/foreign/newer manifest.
    let d = damaged(&good, "missing", "graph.bin", |_| {}, false);
    std::fs::remove_file(d.join("graph.bin")).unwrap();
    assert!(matches!(Index::open(&d), Err(Error::MissingFile { .. })));
    let d = damaged(&good, "nomanifest", "graph.bin", |_| {}, false);
    std::fs::remove_file(d.join("manifest.json")).unwrap();
    assert!(matches!(Index::open(&d), Err(Error::MissingFile { .. })));
    let d = damaged(
        &good,
        "newmanifest",
        "manifest.json",
        |b| {
            let s = String::from_utf8(b.clone())
                .unwrap()
                .replace("\"format_version\": 2", "\"format_version\": 9");
            *b = s.into_bytes();
        },
        false,
    );
    assert!(matches!(
        Index::open(&d),
        Err(Error::UnsupportedVersion { found: 9, .. })
    ));
    let d = damaged(
        &good,
        "foreign",
        "manifest.json",
        |b| *b = b"{\"hello\": 1}".to_vec(),
        false,
    );
    assert!(matches!(Index::open(&d), Err(Error::BadMagic { .. })));
    let d = damaged(&good, "garbage", "manifest.json", |b| b.truncate(10), false);
    assert!(matches!(Index::open(&d), Err(Error::Corrupt { .. })));

    // Manifest disagreeing with graph.bin (dimension).
    let d = damaged(
        &good,
        "dims",
        "manifest.json",
        |b| {
            let s = String::from_utf8(b.clone())
                .unwrap()
                .replace("\"dim\": 8", "\"dim\": 9");
            *b = s.into_bytes();
        },
        false,
    );
    assert!(
        matches!(Index::open(&d), Err(Error::Corrupt { ref path, .. }) if path.ends_with("manifest.json"))
    );
}

// ---- round trips ---------------------------------------------------------

mod round_trip {
    use super::{Index, IndexBuilder, ItemInfo, Metric};
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
        #[test]
        fn build_open_identical(
            n in 1usize..60,
            dim in 1usize..9,
            seed in any::<u64>(),
            l2 in any::<bool>(),
            labelled in any::<bool>(),
        ) {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let v: Vec<f32> = (0..n * dim).map(|_| rng.gen_range(0.1f32..10.0)).collect();
            let labels: Vec<i64> = (0..n).map(|_| rng.gen_range(i64::MIN..i64::MAX)).collect();
            let items: Vec<ItemInfo> = (0..n)
                .map(|i| ItemInfo {
                    source: format!("d/é{i}-{}", rng.gen::<u32>()),
                    region: rng.gen::<bool>().then(|| [rng.gen(), rng.gen(), rng.gen(), rng.gen()]),
                })
                .collect();
            let metric = if l2 { Metric::L2 } else { Metric::Cosine };
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("ix");
            let (lab, it) = if labelled { (Some(&labels[..]), Some(&items[..])) } else { (None, None) };
            IndexBuilder::new().metric(metric).seed(seed).m(4).ef_construction(20)
                .build(&v, dim, lab, it, &out, None).unwrap();
            let index = Index::open(&out).unwrap();
            index.verify().unwrap();
            let mut want = v.clone();
            metric.preprocess(&mut want, dim).unwrap();
            prop_assert_eq!(index.vectors(), &want[..]);
            prop_assert_eq!((index.len(), index.dim(), index.metric()), (n, dim, metric));
            if labelled {
                prop_assert_eq!(index.labels(), Some(&labels[..]));
                prop_assert_eq!(index.items().unwrap(), items);
            } else {
                prop_assert!(index.labels().is_none());
                prop_assert!(index.items().unwrap().is_empty());
            }
            // Every item finds itself first (k = n, ef = n covers the graph).
            let r = super::search(&index, likeness_index::KnnQuery::new(&v[..dim]).k(n).ef(n));
            prop_assert_eq!(r.distances(0)[0].max(0.0) < 1e-5, true);
        }
    }
}

#[test]
fn numpy_reads_vectors_npy() {
    let py = std::env::var_os("LIKENESS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/root/.cache/likeness/torch-2.11.0/bin/python".into());
    if !py.exists() {
        println!(
            "SKIPPED: no python at {} (set LIKENESS_PYTHON)",
            py.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, _, _) = build_small(dir.path(), 120, 5, Metric::Cosine, false);
    let index = Index::open(&out).unwrap();
    let sum: f64 = index.vectors().iter().map(|&x| f64::from(x)).sum();
    let script = "import sys, numpy as np\nv = np.load(sys.argv[1], mmap_mode='r')\nassert v.dtype == np.float32 and v.shape == (120, 5) and v.offset % 64 == 0\nassert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)\nprint(repr(float(v.astype(np.float64).sum())))";
    let o = std::process::Command::new(py)
        .args(["-c", script])
        .arg(out.join("vectors.npy"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
    assert!((got - sum).abs() < 1e-6, "{got} vs {sum}");
}

// ---- golden index --------------------------------------------------------

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-v1")
}

/// The data the golden index was built from (deterministic).
fn golden_data() -> (Vec<f32>, Vec<i64>, Vec<ItemInfo>) {
    let (v, labels) = clustered(300, 8, 5, 2024);
    let items = (0..300)
        .map(|i| ItemInfo {
            source: format!("gallery/{:03}.png", i),
            region: (i % 3 == 0).then_some([1.0, 2.0, 30.0, 40.0]),
        })
        .collect();
    (v, labels, items)
}

/// Regenerates `tests/data/golden-v1` (only when asked: the golden index
/// exists to catch format changes, so it must not follow them silently).
#[test]
#[ignore = "writes tests/data/golden-v1; run with --ignored after a deliberate format change"]
fn regenerate_golden_v1() {
    let (v, labels, items) = golden_data();
    let d = golden_dir();
    let _ = std::fs::remove_dir_all(&d);
    IndexBuilder::new()
        .metric(Metric::Cosine)
        .m(8)
        .ef_construction(64)
        .threads(1)
        .seed(7)
        .model_fingerprint("golden-test-model")
        .build(&v, 8, Some(&labels), Some(&items), &d, None)
        .unwrap();
}

#[test]
fn golden_v1_index_still_opens() {
    let index = Index::open(golden_dir()).expect("the committed v1 index must keep opening");
    index.verify().unwrap();
    let m = index.manifest();
    assert_eq!(
        (m.format_version, m.count, m.dim, m.metric),
        (1, 300, 8, Metric::Cosine)
    );
    assert_eq!(m.model_fingerprint.as_deref(), Some("golden-test-model"));
    let (v, labels, items) = golden_data();
    assert_eq!(index.labels(), Some(&labels[..]));
    assert_eq!(index.items().unwrap(), items);
    // Version 1 had no scores, subjects or sides: none are invented.
    assert!(index.scores().is_none());
    assert!(index.pairings().unwrap().is_empty());
    let mut want = v.clone();
    Metric::Cosine.preprocess(&mut want, 8).unwrap();
    let diff = index
        .vectors()
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-6, "{diff}");
    // Search over the golden graph finds the exact neighbours.
    let approx = search(&index, KnnQuery::new(&v[..80]).dim(8).k(5).ef(50));
    let truth = exact::search(&v, &v[..80], 8, 5, Metric::Cosine).unwrap();
    assert!(metrics::ann_recall(&approx, &truth, 5).unwrap() >= 0.99);
}

// ---- golden v2: scores, subjects and sides ---------------------------------

fn golden_v2_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-v2")
}

/// The scores and pairings of the golden v2 index (deterministic): every
/// fourth item without a score; subjects of 3 items, left/right/none.
fn golden_v2_extra() -> (Vec<f32>, Vec<ItemPairing>) {
    let scores = (0..300)
        .map(|i| {
            if i % 4 == 3 {
                f32::NAN
            } else {
                i as f32 / 300.0
            }
        })
        .collect();
    let pairings = (0..300)
        .map(|i| ItemPairing {
            subject: (i % 5 != 4).then(|| format!("s{}", i / 3)),
            side: [Some(Side::Left), Some(Side::Right), None][i % 3],
        })
        .collect();
    (scores, pairings)
}

/// Regenerates `tests/data/golden-v2` (only when asked, as for v1).
#[test]
#[ignore = "writes tests/data/golden-v2; run with --ignored after a deliberate format change"]
fn regenerate_golden_v2() {
    let (v, labels, items) = golden_data();
    let (scores, pairings) = golden_v2_extra();
    let d = golden_v2_dir();
    let _ = std::fs::remove_dir_all(&d);
    IndexBuilder::new()
        .metric(Metric::Cosine)
        .m(8)
        .ef_construction(64)
        .threads(1)
        .seed(7)
        .model_fingerprint("golden-test-model")
        .scores(scores)
        .pairings(pairings)
        .build(&v, 8, Some(&labels), Some(&items), &d, None)
        .unwrap();
}

#[test]
fn golden_v2_index_opens_with_scores_and_sides() {
    let index = Index::open(golden_v2_dir()).expect("the committed v2 index must keep opening");
    index.verify().unwrap();
    assert_eq!(index.manifest().format_version, 2);
    let (_, labels, items) = golden_data();
    let (scores, pairings) = golden_v2_extra();
    assert_eq!(index.labels(), Some(&labels[..]));
    assert_eq!(index.items().unwrap(), items);
    let got = index.scores().expect("scores");
    assert_eq!(got.len(), 300);
    for (a, b) in got.iter().zip(&scores) {
        assert!(a == b || (a.is_nan() && b.is_nan()), "{a} vs {b}");
    }
    assert_eq!(index.pairings().unwrap(), pairings);
}

/// Each hit names its item's subject and side from the pairings the caller
/// decoded (the committed v2 index records them), in the JSON the server
/// answers ("left"/"right"); an index that records none (v1) gives no such
/// fields.
#[test]
fn hits_name_their_subject_and_side_where_the_index_records_them() {
    let index = Index::open(golden_v2_dir()).unwrap();
    let (v, _, items) = golden_data();
    let (_, want) = golden_v2_extra();
    let pairings = index.pairings().unwrap();
    let found = search(&index, KnnQuery::new(&v[..8]).dim(8).k(12).exact(true));
    let hits = index.hits(Some(&items), Some(&pairings), &found, 0);
    assert_eq!(hits.len(), 12);
    let (mut left, mut right, mut none) = (0, 0, 0);
    for h in &hits {
        let p = &want[h.id as usize];
        assert_eq!((&h.subject, h.side), (&p.subject, p.side), "hit {}", h.id);
        let j = serde_json::to_value(h).unwrap();
        match p.side {
            Some(Side::Left) => left += (j["side"] == "left") as usize,
            Some(Side::Right) => right += (j["side"] == "right") as usize,
            None => none += j.get("side").is_none() as usize,
        }
        match &p.subject {
            Some(s) => assert_eq!(j["subject"], s.as_str(), "{j}"),
            None => assert!(j.get("subject").is_none(), "{j}"),
        }
    }
    assert_eq!(left + right + none, 12, "{hits:?}");
    assert!(left > 0 && right > 0, "{hits:?}");
    // Without the pairings passed, or from an index with none: no fields.
    let bare = index.hits(Some(&items), None, &found, 0);
    assert!(bare.iter().all(|h| h.subject.is_none() && h.side.is_none()));
    let v1 = Index::open(golden_dir()).unwrap();
    let none = v1.pairings().unwrap();
    let found = search(&v1, KnnQuery::new(&v[..8]).dim(8).k(5).exact(true));
    for h in v1.hits(Some(&items), Some(&none), &found, 0) {
        let j = serde_json::to_value(&h).unwrap();
        assert!(j.get("side").is_none() && j.get("subject").is_none(), "{j}");
    }
}

#[test]
fn scores_round_trip_and_bad_scores_are_refused() {
    let (v, labels) = clustered(40, 4, 2, 1);
    let dir = tempfile::tempdir().unwrap();
    let scores: Vec<f32> = (0..40).map(|i| i as f32 * 0.5).collect();
    IndexBuilder::new()
        .scores(scores.clone())
        .build(&v, 4, Some(&labels), None, &dir.path().join("a"), None)
        .unwrap();
    let index = Index::open(dir.path().join("a")).unwrap();
    index.verify().unwrap();
    assert_eq!(index.scores(), Some(&scores[..]));
    assert!(index.pairings().unwrap().is_empty());
    // Hits carry their item's score.
    let found = search(&index, KnnQuery::new(&v[..4]).dim(4).k(3).exact(true));
    let hits = index.hits(None, None, &found, 0);
    assert_eq!(hits[0].score, Some(scores[hits[0].id as usize]));
    let mut bad = scores.clone();
    bad[3] = f32::INFINITY;
    let e = IndexBuilder::new()
        .scores(bad)
        .build(&v, 4, None, None, &dir.path().join("b"), None)
        .unwrap_err();
    assert!(e.to_string().contains("item 3"), "{e}");
    let e = IndexBuilder::new()
        .scores(vec![0.0; 3])
        .build(&v, 4, None, None, &dir.path().join("c"), None)
        .unwrap_err();
    assert!(e.to_string().contains("3 scores"), "{e}");
}

// ---- Index::query, the one search entry point -------------------------------

/// `Index::query` against brute force computed here, for each kind of
/// request: plain graph search (a beam over the whole index, so it must be
/// exact), exact, filtered, leaving each row's own item out, and padding
/// to `k` with -1 / +inf.
#[test]
fn query_equals_brute_force_for_every_kind_of_request() {
    let dir = tempfile::tempdir().unwrap();
    let (n, dim, k) = (400, 8, 7);
    // Uniform points and a dense graph (m0 = 64 links of 400 items), so
    // every item is reachable and a beam as wide as the index is exact.
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let v: Vec<f32> = (0..n * dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect();
    let labels: Vec<i64> = (0..n).map(|_| rng.gen_range(0..6)).collect();
    let out = dir.path().join("ix");
    IndexBuilder::new()
        .metric(Metric::L2)
        .m(32)
        .ef_construction(400)
        .seed(1)
        .threads(1)
        .build(&v, dim, Some(&labels), None, &out, None)
        .unwrap();
    let index = Index::open(&out).unwrap();
    let q = &v[..20 * dim];
    let same = |got: &Neighbours, want: &Neighbours, what: &str| {
        assert_eq!(got.queries(), want.queries(), "{what}");
        for r in 0..got.queries() {
            assert_eq!(got.ids(r), want.ids(r), "{what} row {r}");
            for (a, b) in got.distances(r).iter().zip(want.distances(r)) {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{what}: {a} vs {b}"
                );
            }
        }
    };
    let truth = exact::search(&v, q, dim, k, Metric::L2).unwrap();
    // Plain: the beam covers every item.
    let (got, plan) = index.query(&KnnQuery::new(q).k(k).ef(n)).unwrap();
    same(&got, &truth, "plain");
    assert_eq!(plan.kind, likeness_index::postings::PlanKind::Graph);
    // Exact.
    let (got, plan) = index.query(&KnnQuery::new(q).k(k).exact(true)).unwrap();
    same(&got, &truth, "exact");
    assert_eq!(plan.kind, likeness_index::postings::PlanKind::Exact);
    // Filtered, graph and exact.
    let f = LabelFilter::only([1, 4]);
    let allow = |i: u32| f.allows(labels[i as usize]);
    let want = exact::search_filtered(&v, q, dim, k, Metric::L2, &allow).unwrap();
    for exact in [false, true] {
        let request = KnnQuery::new(q).k(k).ef(n).exact(exact).filter(Some(&f));
        let (got, plan) = index.query(&request).unwrap();
        same(&got, &want, &format!("filter, exact {exact}"));
        assert!(plan.passing.is_some());
    }
    // Each row's own item left out: the leave-one-out neighbours.
    let rows: Vec<usize> = (0..20).collect();
    let loo = exact::search_leave_one_out(&v, dim, k, Metric::L2).unwrap();
    let (ids, dists): (Vec<i64>, Vec<f32>) = (0..20)
        .flat_map(|r| {
            loo.ids(r)
                .iter()
                .copied()
                .zip(loo.distances(r).iter().copied())
        })
        .unzip();
    let want = Neighbours::from_parts(20, k, ids, dists).unwrap();
    for exact in [false, true] {
        let request = KnnQuery::new(q)
            .k(k)
            .ef(n)
            .exact(exact)
            .exclude(Some(&rows));
        let (got, _) = index.query(&request).unwrap();
        same(&got, &want, &format!("exclude, exact {exact}"));
    }
    // Fewer items than k pass the filter: those, then -1 / +inf.
    let lone = labels[0];
    let passing = labels.iter().filter(|&&l| l == lone).count();
    let only = LabelFilter::only([lone]);
    let big = passing + 5;
    let (got, _) = index
        .query(&KnnQuery::new(&v[..dim]).k(big).filter(Some(&only)))
        .unwrap();
    assert_eq!(got.k(), big);
    assert!(got.ids(0)[..passing].iter().all(|&i| i >= 0));
    assert!(got.ids(0)[passing..].iter().all(|&i| i == -1));
    assert!(got.distances(0)[passing..]
        .iter()
        .all(|&d| d == f32::INFINITY));
}

/// The one check of a request: limits, exclusion length, filter without
/// labels.
#[test]
fn query_validates_the_request_once() {
    let dir = tempfile::tempdir().unwrap();
    let (out, v, _) = build_small(dir.path(), 50, 8, Metric::L2, false);
    let index = Index::open(&out).unwrap();
    let q = &v[..16];
    let bad_param = |r: KnnQuery<'_>| match index.query(&r) {
        Err(Error::InvalidParameter { name, .. }) => name,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        bad_param(KnnQuery::new(q).k(likeness_index::MAX_K + 1)),
        "k"
    );
    assert_eq!(
        bad_param(KnnQuery::new(q).ef(likeness_index::MAX_EF + 1)),
        "ef"
    );
    let options = likeness_index::postings::SearchOptions {
        rerank: Some(0),
        ..Default::default()
    };
    assert_eq!(bad_param(KnnQuery::new(q).options(options)), "rerank");
    let e = index
        .query(&KnnQuery::new(q).exclude(Some(&[1])))
        .unwrap_err();
    assert!(e.to_string().contains("2 query rows but 1 items"), "{e}");
    let f = LabelFilter::only([1]);
    let e = index.query(&KnnQuery::new(q).filter(Some(&f))).unwrap_err();
    assert!(e.to_string().contains("no labels to filter by"), "{e}");
    let d = KnnQuery::new(q);
    assert_eq!(
        (d.k, d.ef),
        (likeness_index::DEFAULT_K, likeness_index::DEFAULT_EF)
    );
}
