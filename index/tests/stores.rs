//! Compact stores (f16, i8) with exact re-ranking, and the filter planner
//! with posting lists: results against exact search, the files' checks, and
//! the defaults of indexes written before them (the golden v1 index).

use std::path::{Path, PathBuf};

use likeness_index::postings::{PlanChoice, PlanKind, SearchOptions};
use likeness_index::{
    exact, Error, Index, IndexBuilder, KnnQuery, LabelFilter, Metric, Neighbours, Store,
};
use rand::{Rng, SeedableRng};

/// Runs `q` on `index` (the one search entry point), keeping the
/// neighbours.
fn search(index: &Index, q: KnnQuery<'_>) -> Neighbours {
    index.query(&q).unwrap().0
}

fn random(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n * dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

fn build(
    dir: &Path,
    v: &[f32],
    dim: usize,
    labels: Option<&[i64]>,
    store: Store,
    metric: Metric,
) -> PathBuf {
    let out = dir.join(format!("ix-{store}-{metric}"));
    IndexBuilder::new()
        .metric(metric)
        .m(8)
        .ef_construction(64)
        .threads(1)
        .store(store)
        .build(v, dim, labels, None, &out, None)
        .unwrap();
    out
}

#[test]
fn compact_stores_equal_exact_search_with_rerank_all() {
    let (n, dim, nq, k) = (400, 24, 30, 10);
    let v = random(n, dim, 1);
    let q = random(nq, dim, 2);
    let dir = tempfile::tempdir().unwrap();
    for metric in [Metric::L2, Metric::Cosine] {
        let truth = exact::search(&v, &q, dim, k, metric).unwrap();
        for store in [Store::F16, Store::I8] {
            let path = build(dir.path(), &v, dim, None, store, metric);
            let index = Index::open(&path).unwrap();
            assert_eq!(index.store(), store);
            index.verify().unwrap();
            // rerank = all: the beam holds every item, all re-scored.
            let request = KnnQuery::new(&q).dim(dim).k(k);
            let all = SearchOptions {
                rerank: Some(n),
                ..SearchOptions::default()
            };
            let got = search(&index, request.ef(16).options(all));
            for qi in 0..nq {
                assert_eq!(got.ids(qi), truth.ids(qi), "{store} {metric} query {qi}");
                for (a, b) in got.distances(qi).iter().zip(truth.distances(qi)) {
                    assert!(
                        (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                        "{store} {metric}: {a} vs {b}"
                    );
                }
            }
            // The default rerank (ef) still returns exact distances.
            let got = search(&index, request.ef(64));
            let mut exactv = v.clone();
            metric.preprocess(&mut exactv, dim).unwrap();
            let mut qp = q.clone();
            metric.preprocess(&mut qp, dim).unwrap();
            for qi in 0..nq {
                for (&id, &d) in got.ids(qi).iter().zip(got.distances(qi)) {
                    let want = metric.distance(
                        &qp[qi * dim..(qi + 1) * dim],
                        &exactv[id as usize * dim..(id as usize + 1) * dim],
                    );
                    assert!((d - want).abs() <= 1e-5 * want.abs().max(1.0));
                }
            }
            // --exact searches the float32 vectors whatever the store.
            let ex = search(&index, request.exact(true));
            assert_eq!(ex.all_ids(), truth.all_ids());
        }
    }
}

#[test]
fn compact_store_files_are_checked() {
    let (n, dim) = (200, 16);
    let v = random(n, dim, 3);
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), &v, dim, None, Store::I8, Metric::L2);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["store"], "i8");
    assert_eq!(m["quantizer"]["offset"].as_array().unwrap().len(), dim);
    assert!(m["files"]["vectors.i8"]["crc32"].is_u64());

    // A store this build does not know, in the manifest: a named error.
    let mut bad = m.clone();
    bad["store"] = "i4".into();
    std::fs::write(
        path.join("manifest.json"),
        serde_json::to_vec(&bad).unwrap(),
    )
    .unwrap();
    match Index::open(&path) {
        Err(e @ Error::UnsupportedStore { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("\"i4\"") && msg.contains("f32, f16, i8"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(path.join("manifest.json"), serde_json::to_vec(&m).unwrap()).unwrap();

    // ... and in the compact file's header (store code 7, header CRC fixed up).
    let file = path.join("vectors.i8");
    let orig = std::fs::read(&file).unwrap();
    let mut b = orig.clone();
    b[12..16].copy_from_slice(&7u32.to_le_bytes());
    let crc = crc32fast::hash(&b[..124]);
    b[124..128].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&file, &b).unwrap();
    assert!(matches!(
        Index::open(&path),
        Err(Error::UnsupportedStore { .. })
    ));

    // A damaged header: checksum error; a flipped code byte: verify finds it.
    let mut b = orig.clone();
    b[20] ^= 1;
    std::fs::write(&file, &b).unwrap();
    assert!(matches!(
        Index::open(&path),
        Err(Error::ChecksumMismatch { .. })
    ));
    let mut b = orig.clone();
    let last = b.len() - 400;
    b[last] ^= 0x55;
    std::fs::write(&file, &b).unwrap();
    let index = Index::open(&path).unwrap();
    assert!(matches!(
        index.verify(),
        Err(Error::ChecksumMismatch { .. })
    ));
    // Truncated: the size differs from the manifest's.
    std::fs::write(&file, &orig[..orig.len() - 4]).unwrap();
    assert!(matches!(
        Index::open(&path),
        Err(Error::SizeMismatch { .. })
    ));
    std::fs::write(&file, &orig).unwrap();
    Index::open(&path).unwrap().verify().unwrap();
}

/// Labels drawn so that label `l` of 1000 has one item in a thousand.
fn labelled(n: usize, seed: u64) -> Vec<i64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(0..1000)).collect()
}

#[test]
fn filter_planner_equals_exact_filtered_search_at_every_selectivity() {
    let (n, dim, nq, k) = (5000, 16, 20, 10);
    let v = random(n, dim, 5);
    let q = random(nq, dim, 6);
    let labels = labelled(n, 7);
    let dir = tempfile::tempdir().unwrap();
    for store in [Store::F32, Store::I8] {
        let path = build(dir.path(), &v, dim, Some(&labels), store, Metric::L2);
        assert!(path.join("postings.bin").exists());
        let index = Index::open(&path).unwrap();
        index.verify().unwrap();
        let labels = &labels;
        let allow = |set: &[i64], only: bool| {
            let set = set.to_vec();
            move |i: u32| set.contains(&labels[i as usize]) == only
        };
        // 50%, 10%, 1%, 0.1% of the items, and an exclusion.
        for (frac, filter, only, set) in [
            (
                0.5,
                LabelFilter::only(0..500),
                true,
                (0..500).collect::<Vec<i64>>(),
            ),
            (0.1, LabelFilter::only(0..100), true, (0..100).collect()),
            (0.01, LabelFilter::only(0..10), true, (0..10).collect()),
            (0.001, LabelFilter::only([3]), true, vec![3]),
            (0.9, LabelFilter::except(0..100), false, (0..100).collect()),
        ] {
            let mut base = v.clone();
            Metric::L2.preprocess(&mut base, dim).unwrap();
            let truth =
                exact::search_filtered(&base, &q, dim, k, Metric::L2, &allow(&set, only)).unwrap();
            for choice in [PlanChoice::Auto, PlanChoice::Exact, PlanChoice::Graph] {
                let options = SearchOptions {
                    plan: choice,
                    exact_below: Some(200),
                    ..SearchOptions::default()
                };
                // A wide beam: the filtered graph must find the same items.
                let request = KnnQuery::new(&q)
                    .dim(dim)
                    .k(k)
                    .ef(400)
                    .filter(Some(&filter))
                    .options(options);
                let (got, plan) = index.query(&request).unwrap();
                let passing = plan.passing.unwrap();
                let want_passing = labels.iter().filter(|&&l| set.contains(&l) == only).count();
                assert_eq!(passing, want_passing);
                let expected_kind = match choice {
                    PlanChoice::Exact => PlanKind::Exact,
                    PlanChoice::Graph => PlanKind::FilteredGraph,
                    PlanChoice::Auto if passing <= 200 => PlanKind::Exact,
                    PlanChoice::Auto => PlanKind::FilteredGraph,
                };
                assert_eq!(plan.kind, expected_kind, "{frac} {choice:?}");
                let mut hits = 0;
                for qi in 0..nq {
                    let want = truth.ids(qi);
                    hits += got.ids(qi).iter().filter(|i| want.contains(i)).count();
                    // Always k hits when at least k items pass.
                    let found = got.ids(qi).iter().filter(|&&i| i >= 0).count();
                    assert_eq!(found, passing.min(k), "{store} {frac} {choice:?}");
                    for &i in got.ids(qi).iter().filter(|&&i| i >= 0) {
                        assert!(allow(&set, only)(i as u32));
                    }
                }
                let recall = hits as f64 / (nq * k) as f64;
                if plan.kind == PlanKind::Exact {
                    assert_eq!(got.all_ids(), truth.all_ids(), "{store} {frac}");
                } else {
                    assert!(recall >= 0.99, "{store} {frac} {choice:?}: recall {recall}");
                }
            }
        }
        // A label no item carries: zero hits, reported as unknown.
        let none = LabelFilter::only([5000]);
        let (got, plan) = index
            .query(&KnnQuery::new(&q).dim(dim).k(k).filter(Some(&none)))
            .unwrap();
        assert_eq!(
            (plan.passing, plan.unknown_labels.clone()),
            (Some(0), vec![5000])
        );
        assert!(got.all_ids().iter().all(|&i| i == -1));
        // Fewer than k pass: exactly those, then padding.
        let some: Vec<i64> = labels.iter().copied().filter(|&l| l == 3).collect();
        let only3 = LabelFilter::only([3]);
        let got = search(&index, KnnQuery::new(&q[..dim]).k(k).filter(Some(&only3)));
        let found = got.ids(0).iter().filter(|&&i| i >= 0).count();
        assert_eq!(found, some.len().min(k));
    }
}

#[test]
fn golden_v1_index_has_the_defaults_of_the_new_fields() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-v1");
    let index = Index::open(&dir).unwrap();
    let m = index.manifest();
    assert_eq!(
        (m.store, m.quantizer.is_none(), m.postings),
        (Store::F32, true, false)
    );
    assert!(!m.files.contains_key("postings.bin"));
    // Without postings.bin the planner builds the lists from the labels.
    let labels = index.labels().unwrap().to_vec();
    let l0 = labels[0];
    let only = LabelFilter::only([l0]);
    let q = index.vector(0).unwrap().to_vec();
    let (got, plan) = index
        .query(&KnnQuery::new(&q).k(5).ef(16).filter(Some(&only)))
        .unwrap();
    assert_eq!(
        plan.passing,
        Some(labels.iter().filter(|&&l| l == l0).count())
    );
    assert_eq!(plan.kind, PlanKind::Exact);
    assert_eq!(got.ids(0)[0], 0);
    assert!(got
        .ids(0)
        .iter()
        .all(|&i| i >= 0 && labels[i as usize] == l0));
}

/// The plan [`Index::query`] returns says the beam width and re-ranking
/// depth the graph search ran with (one rule, `hnsw::search::depths`), so
/// callers report them instead of working them out again: a `rerank`
/// below `k` re-scores `k` (every returned distance is the float32 one), a
/// `rerank` above the beam widens it, float32 re-ranks nothing, and no
/// graph search (exact, or the exact scan of a filter) has neither.
#[test]
fn the_plan_says_the_beam_and_rerank_depth_that_ran() {
    let (n, dim, k) = (300, 16, 10);
    let v = random(n, dim, 1);
    let q = random(1, dim, 2);
    let labels = labelled(n, 3);
    let dir = tempfile::tempdir().unwrap();
    let i8 = Index::open(build(
        dir.path(),
        &v,
        dim,
        Some(&labels),
        Store::I8,
        Metric::L2,
    ))
    .unwrap();
    let f32s = Index::open(build(
        dir.path(),
        &v,
        dim,
        Some(&labels),
        Store::F32,
        Metric::L2,
    ))
    .unwrap();
    let with = |rerank: Option<usize>| SearchOptions {
        rerank,
        ..SearchOptions::default()
    };
    let request = KnnQuery::new(&q).k(k).ef(5);
    let ran = |index: &Index, r: KnnQuery<'_>| {
        let p = index.query(&r).unwrap().1;
        (p.ef, p.rerank)
    };
    assert_eq!(ran(&i8, request), (Some(k), Some(k)));
    assert_eq!(ran(&i8, request.options(with(Some(2)))), (Some(k), Some(k)));
    assert_eq!(
        ran(&i8, request.options(with(Some(50)))),
        (Some(50), Some(50))
    );
    assert_eq!(ran(&i8, request.ef(40)), (Some(40), Some(40)));
    assert_eq!(ran(&f32s, request.options(with(Some(50)))), (Some(k), None));
    assert_eq!(ran(&i8, request.exact(true)), (None, None));
    let few = LabelFilter::only([labels[0]]);
    let scan = SearchOptions {
        plan: PlanChoice::Exact,
        ..SearchOptions::default()
    };
    assert_eq!(
        ran(&i8, request.filter(Some(&few)).options(scan)),
        (None, None)
    );
    // `rerank` 2 re-scored all k: each distance is the float32 one.
    let found = search(&i8, request.options(with(Some(2))));
    for (&id, &d) in found.ids(0).iter().zip(found.distances(0)) {
        let row = &v[id as usize * dim..(id as usize + 1) * dim];
        let l2: f32 = row.iter().zip(&q).map(|(a, b)| (a - b) * (a - b)).sum();
        assert!(
            (d - l2).abs() <= 1e-4 * l2.max(1.0),
            "item {id}: {d} vs {l2}"
        );
    }
}
