//! A gallery that grows: add, delete, update and compact in place, across
//! reopenings, on an index of every store, and on the committed golden
//! indexes (which must open unchanged and be upgraded only when written).

use std::path::{Path, PathBuf};

use likeness_index::{
    Error, Index, IndexBuilder, ItemInfo, KnnQuery, LabelFilter, Metric, NewItems, Store, Writer,
    FOLD_AT,
};
use rand::{Rng, SeedableRng};

fn random(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n * dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
}

fn build(dir: &Path, n: usize, dim: usize, store: Store) -> (Vec<f32>, Vec<i64>) {
    let v = random(n, dim, 1);
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 7).collect();
    IndexBuilder::new()
        .metric(Metric::L2)
        .m(8)
        .ef_construction(64)
        .store(store)
        .threads(2)
        .build(&v, dim, Some(&labels), None, dir, None)
        .unwrap();
    (v, labels)
}

/// Ids of the `k` nearest to `q`, by the graph (or exactly).
fn nearest(
    index: &Index,
    q: &[f32],
    k: usize,
    exact: bool,
    filter: Option<&LabelFilter>,
) -> Vec<i64> {
    let (found, _) = index
        .query(&KnnQuery::new(q).k(k).ef(64).exact(exact).filter(filter))
        .unwrap();
    found.ids(0).to_vec()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn add_delete_update_compact_and_reopen() {
    for store in [Store::F32, Store::I8] {
        let t = tmp();
        let dir = t.path().join("ix");
        let dim = 16;
        let (v, _) = build(&dir, 600, dim, store);
        let mut w = Writer::open(&dir).unwrap();
        // A small add is logged and searchable at once, by graph and exact.
        let new = random(5, dim, 9);
        let ids = w
            .add(&NewItems {
                vectors: &new,
                labels: Some(&[3, 3, 3, 3, 6]),
                ..NewItems::default()
            })
            .unwrap();
        assert_eq!(ids, 600..605);
        let index = w.index().clone();
        assert_eq!(
            (index.len(), index.base_len(), index.generation()),
            (605, 600, 0)
        );
        for (r, row) in new.chunks(dim).enumerate() {
            for exact in [false, true] {
                assert_eq!(
                    nearest(&index, row, 1, exact, None)[0],
                    600 + r as i64,
                    "{store:?}"
                );
            }
        }
        assert_eq!(index.label_of(604), Some(6));
        // Deleting: never a result, by any path.
        let gone = [0u64, 1, 2, 602];
        assert_eq!(w.delete(&gone).unwrap(), 4);
        assert_eq!(
            w.delete(&gone).unwrap(),
            0,
            "deleting twice changes nothing"
        );
        let only3 = LabelFilter::only([3]);
        let check_gone = |index: &Index| {
            for &g in &gone {
                let row = index_vector_or(&v, &new, g as usize, dim);
                for exact in [false, true] {
                    for f in [None, Some(&only3)] {
                        let got = nearest(index, &row, 10, exact, f);
                        assert!(
                            !got.contains(&(g as i64)),
                            "{g} returned ({store:?}, exact {exact})"
                        );
                    }
                }
                assert!(index.is_deleted(g as usize));
                assert!(index.item_vector(g as usize).is_err());
            }
        };
        check_gone(&index);
        // Everything survives reopening (the log is replayed).
        drop(w);
        let reopened = Index::open(&dir).unwrap();
        assert_eq!((reopened.len(), reopened.deleted_count()), (605, 4));
        check_gone(&reopened);
        reopened.verify().unwrap();
        // Enough adds fold into a new generation with the graph extended.
        let mut w = Writer::open(&dir).unwrap();
        let more = random(FOLD_AT, dim, 10);
        let labels = vec![5; FOLD_AT];
        let ids = w
            .add(&NewItems {
                vectors: &more,
                labels: Some(&labels),
                ..NewItems::default()
            })
            .unwrap();
        assert_eq!(ids.start, 605);
        let index = w.index().clone();
        assert_eq!(
            (index.generation(), index.base_len(), index.log_state().0),
            (1, 605 + FOLD_AT, 0)
        );
        index.verify().unwrap();
        check_gone(&index);
        let hits = more
            .chunks(dim)
            .enumerate()
            .filter(|(r, row)| nearest(&index, row, 1, false, None)[0] == 605 + *r as i64)
            .count();
        assert!(
            hits as f64 >= 0.95 * FOLD_AT as f64,
            "{hits} of {FOLD_AT} added items found by the graph"
        );
        // Labels change without touching vectors; filters follow.
        w.update(&[10], Some(&[6]), None).unwrap();
        let index = w.index().clone();
        assert_eq!(index.label_of(10), Some(6));
        let row = &v[10 * dim..11 * dim];
        assert_eq!(
            nearest(&index, row, 1, true, Some(&LabelFilter::only([6])))[0],
            10
        );
        assert!(!nearest(&index, row, 5, true, Some(&LabelFilter::only([10 % 7]))).contains(&10));
        assert!(
            w.update(&[1], Some(&[2]), None).is_err(),
            "a deleted item cannot be updated"
        );
        // Compaction: one clean graph over the live items; ids unchanged.
        let exact_answers = |index: &Index| -> Vec<Vec<i64>> {
            (600..605)
                .filter(|i| *i != 602)
                .map(|i| nearest(index, &new[(i - 600) * dim..(i - 599) * dim], 3, true, None))
                .collect()
        };
        let before = exact_answers(&index);
        let report = w.compact().unwrap();
        assert!(report.rebuilt && report.deleted == 4 && report.live == 605 + FOLD_AT - 4);
        let index = w.index().clone();
        index.verify().unwrap();
        check_gone(&index);
        let after = exact_answers(&index);
        assert_eq!(before, after, "exact answers are the same after compaction");
        // Deleted items' vectors are wiped.
        assert!(index.vector(1).unwrap().iter().all(|&x| x == 0.0));
        // New ids continue after every id ever given.
        let ids = w
            .add(&NewItems {
                vectors: &new[..dim],
                labels: Some(&[1]),
                ..NewItems::default()
            })
            .unwrap();
        assert_eq!(ids.start, (605 + FOLD_AT) as u64);
        // Only the current generation's files remain.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("graph"))
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}

/// A fold kept the quantizer fitted at build: added vectors outside its
/// range were clipped to codes 0 or 255, so the i8 pass could not tell
/// them apart (only the float32 re-ranking of the beam found them). Now a
/// fold refits over the live items: the grown index's quantizer is a
/// fresh build's over the same vectors, and compaction leaves the deleted
/// (zeroed) rows out of the fit.
#[test]
fn a_fold_refits_the_i8_quantizer_over_the_live_items() {
    let t = tmp();
    let dir = t.path().join("ix");
    let dim = 16;
    let (v, labels) = build(&dir, 300, dim, Store::I8);
    // Values in 2..4, where the build's fit saw -1..1.
    let added: Vec<f32> = random(300, dim, 31).iter().map(|x| x + 3.0).collect();
    let added_labels = vec![2i64; 300];
    let mut w = Writer::open(&dir).unwrap();
    w.add(&NewItems {
        vectors: &added,
        labels: Some(&added_labels),
        ..NewItems::default()
    })
    .unwrap();
    let grown = w.index().clone();
    assert_eq!(grown.generation(), 1, "an add of 300 folds");
    let fresh_of = |name: &str, vectors: &[f32], labels: &[i64]| {
        let d = t.path().join(name);
        IndexBuilder::new()
            .metric(Metric::L2)
            .store(Store::I8)
            .build(vectors, dim, Some(labels), None, &d, None)
            .unwrap();
        Index::open(&d)
            .unwrap()
            .manifest()
            .quantizer
            .clone()
            .unwrap()
    };
    let all: Vec<f32> = v.iter().chain(&added).copied().collect();
    let all_labels: Vec<i64> = labels.iter().chain(&added_labels).copied().collect();
    let qz = grown.manifest().quantizer.clone().unwrap();
    assert_eq!(qz, fresh_of("fresh", &all, &all_labels));
    // The i8 pass alone (re-ranking no more than the one it ranked first)
    // finds the added items. With the build's quantizer every added value
    // clips to the top code, the added items' codes are all alike, and it
    // finds about 1 in 300. Not every one: the graph search is approximate
    // and the fold's parallel inserts vary from run to run (1 or 2 of
    // these 30 were missed in 2 of 20 runs).
    let options = likeness_index::postings::SearchOptions {
        rerank: Some(1),
        ..Default::default()
    };
    let rows: Vec<usize> = (0..300).step_by(10).collect();
    let missed: Vec<usize> = rows
        .iter()
        .copied()
        .filter(|&r| {
            let row = &added[r * dim..(r + 1) * dim];
            let (found, _) = grown
                .query(&KnnQuery::new(row).k(1).ef(64).options(options))
                .unwrap();
            found.ids(0) != [300 + r as i64]
        })
        .collect();
    assert!(missed.len() <= 3, "added rows missed: {missed:?}");
    // Compaction refits over the live items only: with the built ones
    // deleted, over the added ones, not the zeros that replace the rest.
    let built: Vec<u64> = (0..300).collect();
    w.delete(&built).unwrap();
    w.compact().unwrap();
    drop(w);
    let compacted = Index::open(&dir).unwrap();
    compacted.verify().unwrap();
    assert_eq!(
        compacted.manifest().quantizer.clone().unwrap(),
        fresh_of("fresh-added", &added, &added_labels)
    );
}

fn index_vector_or(base: &[f32], new: &[f32], id: usize, dim: usize) -> Vec<f32> {
    let n = base.len() / dim;
    if id < n {
        base[id * dim..(id + 1) * dim].to_vec()
    } else {
        new[(id - n) * dim..(id - n + 1) * dim].to_vec()
    }
}

#[test]
fn bad_changes_are_refused_and_change_nothing() {
    let t = tmp();
    let dir = t.path().join("ix");
    build(&dir, 100, 4, Store::F32);
    let mut w = Writer::open(&dir).unwrap();
    let row = [1.0, 0.0, 0.0, 0.0];
    let msg = |e: Error| e.to_string();
    assert!(msg(w
        .add(&NewItems {
            vectors: &row,
            ..NewItems::default()
        })
        .unwrap_err())
    .contains("labels"));
    assert!(w
        .add(&NewItems {
            vectors: &row[..3],
            labels: Some(&[1]),
            ..NewItems::default()
        })
        .is_err());
    assert!(w
        .add(&NewItems {
            vectors: &[f32::NAN, 0.0, 0.0, 0.0],
            labels: Some(&[1]),
            ..NewItems::default()
        })
        .is_err());
    assert!(msg(w.delete(&[100]).unwrap_err()).contains("0..100"));
    assert!(w.delete(&[5, 1000]).is_err());
    assert!(!w.index().is_deleted(5), "a refused delete deletes nothing");
    // One writer at a time.
    assert!(matches!(Writer::open(&dir), Err(Error::Busy { .. })));
    drop(w);
    Writer::open(&dir).unwrap();
}

#[test]
fn a_torn_log_record_is_dropped_and_cut_off() {
    let t = tmp();
    let dir = t.path().join("ix");
    build(&dir, 50, 4, Store::F32);
    let mut w = Writer::open(&dir).unwrap();
    w.delete(&[3]).unwrap();
    let log = dir.join(w.index().manifest().log.clone().unwrap());
    drop(w);
    let whole = std::fs::metadata(&log).unwrap().len();
    // A crash in the middle of the next record.
    let mut rec = std::fs::read(&log).unwrap()[128..].to_vec();
    rec.truncate(rec.len() - 3);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend(&rec);
    std::fs::write(&log, &bytes).unwrap();
    let index = Index::open(&dir).unwrap();
    assert_eq!(
        (index.deleted_count(), index.log_state()),
        (1, (1, rec.len() as u64))
    );
    // verify passes (a crash leaves this) but reports the bytes.
    assert_eq!(index.verify().unwrap().log_torn, rec.len() as u64);
    let mut w = Writer::open(&dir).unwrap();
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        whole,
        "the writer cuts the torn record off"
    );
    w.delete(&[4]).unwrap();
    drop(w);
    assert_eq!(Index::open(&dir).unwrap().deleted_ids(), vec![3, 4]);
}

/// The reviewer's repro (issue: a damaged record in the middle of the log
/// silently dropped every later one, and the next writer cut them off for
/// good): 200 items, four adds of 5, four bytes overwritten inside the
/// second record.
#[test]
fn a_damaged_log_record_before_intact_ones_is_refused_not_cut() {
    let t = tmp();
    let dir = t.path().join("ix");
    let dim = 16;
    build(&dir, 200, dim, Store::F32);
    let mut w = Writer::open(&dir).unwrap();
    for k in 0..4 {
        w.add(&NewItems {
            vectors: &random(5, dim, 10 + k),
            labels: Some(&[1; 5]),
            ..NewItems::default()
        })
        .unwrap();
    }
    let log = dir.join(w.index().manifest().log.clone().unwrap());
    drop(w);
    let good = std::fs::read(&log).unwrap();
    // Header 128, then records of 8 + 20 + 5 × (16 × 4 + 8) = 388 bytes.
    assert_eq!(good.len(), 128 + 4 * 388);
    let mut bad = good.clone();
    bad[840..844].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
    std::fs::write(&log, &bad).unwrap();

    let e = Index::open(&dir).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(
            e,
            Error::DamagedLog {
                offset: 516,
                before: 1,
                ..
            }
        ),
        "{text}"
    );
    assert!(text.contains(&log.display().to_string()), "{text}");
    assert!(text.contains("byte 904"), "{text}");
    assert!(text.contains("backup"), "{text}");
    // A writer refuses too, and the file keeps every byte: the intact
    // records after the damage are still there to restore or salvage.
    assert!(matches!(
        Writer::open(&dir).unwrap_err(),
        Error::DamagedLog { .. }
    ));
    assert_eq!(std::fs::read(&log).unwrap(), bad);
    // Restored, all 20 added items are back.
    std::fs::write(&log, &good).unwrap();
    let index = Index::open(&dir).unwrap();
    index.verify().unwrap();
    assert_eq!((index.len(), index.log_state()), (220, (4, 0)));
}

/// What the server compacts on: deleted items still in the graph (or
/// the log), not all deleted ids ever, which compaction cannot lower (ids
/// stay deleted), so one compaction made every later delete compact again.
#[test]
fn deleted_in_graph_counts_what_compaction_removes() {
    let t = tmp();
    let dir = t.path().join("ix");
    let dim = 8;
    build(&dir, 100, dim, Store::F32);
    let mut w = Writer::open(&dir).unwrap();
    w.delete(&(0..10).collect::<Vec<_>>()).unwrap();
    let logged = w
        .add(&NewItems {
            vectors: &random(3, dim, 4),
            labels: Some(&[0; 3]),
            ..NewItems::default()
        })
        .unwrap();
    // A logged row deleted before any fold counts too: the fold inserts it.
    w.delete(&[logged.start]).unwrap();
    let ix = w.index();
    assert_eq!((ix.deleted_count(), ix.deleted_in_graph()), (11, 11));
    w.compact().unwrap();
    let ix = w.index();
    assert_eq!((ix.deleted_count(), ix.deleted_in_graph()), (11, 0));
    // Deletes after it count from zero, through a fold and a reopening.
    w.delete(&[20, 101]).unwrap();
    assert_eq!(w.index().deleted_in_graph(), 2);
    w.add(&NewItems {
        vectors: &random(1, dim, 5),
        labels: Some(&[0]),
        ..NewItems::default()
    })
    .unwrap();
    w.fold().unwrap();
    drop(w);
    let ix = Index::open(&dir).unwrap();
    assert_eq!((ix.len(), ix.base_len()), (104, 104));
    assert_eq!((ix.deleted_count(), ix.deleted_in_graph()), (13, 2));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn golden(v: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/golden-v{v}"))
}

#[test]
fn golden_indexes_upgrade_only_when_written() {
    for v in [1, 2] {
        let t = tmp();
        let dir = t.path().join("ix");
        copy_dir(&golden(v), &dir);
        let index = Index::open(&dir).unwrap();
        let (n, dim) = (index.len(), index.dim());
        let version = index.manifest().format_version;
        drop(index);
        // Opening a writer changes nothing on disk.
        let w = Writer::open(&dir).unwrap();
        drop(w);
        assert_eq!(
            Index::open(&dir).unwrap().manifest().format_version,
            version
        );
        let mut w = Writer::open(&dir).unwrap();
        let row = vec![0.5; dim];
        let labels = w.index().labels().map(|_| vec![0i64]);
        let ids = w
            .add(&NewItems {
                vectors: &row,
                labels: labels.as_deref(),
                ..NewItems::default()
            })
            .unwrap();
        w.delete(&[0]).unwrap();
        w.compact().unwrap();
        drop(w);
        let index = Index::open(&dir).unwrap();
        index.verify().unwrap();
        assert_eq!((index.len(), index.deleted_ids()), (n + 1, vec![0]));
        assert_eq!(
            index.manifest().format_version,
            likeness_index::manifest::LIVE_VERSION
        );
        assert_eq!(nearest(&index, &row, 1, false, None)[0], ids.start as i64);
        assert_eq!(
            index.items().unwrap().get(n),
            Some(&ItemInfo::default()).filter(|_| v > 0)
        );
    }
}

/// A fold that leaves the records alone (deletes only, then
/// `Index.fold()`) on an index built before posting lists (golden v1 and
/// v2 have labels but none) committed a manifest that claimed posting
/// lists without their file: the index no longer opened ("no entry for
/// postings.bin; rebuild the index").
#[test]
fn a_fold_of_deletes_keeps_an_old_index_without_posting_lists_open() {
    for v in [1, 2] {
        let t = tmp();
        let dir = t.path().join("ix");
        copy_dir(&golden(v), &dir);
        let n = Index::open(&dir).unwrap().len();
        let mut w = Writer::open(&dir).unwrap();
        w.delete(&[1, 2]).unwrap();
        w.fold().unwrap();
        w.fold().unwrap();
        drop(w);
        let index = Index::open(&dir).unwrap_or_else(|e| panic!("golden v{v}: {e}"));
        index.verify().unwrap();
        assert_eq!((index.len(), index.deleted_ids()), (n, vec![1, 2]));
        // The label filters still work, without posting lists.
        let label = index.label_of(0).unwrap();
        let q = index.item_vector(0).unwrap();
        let hits = nearest(&index, &q, 5, false, Some(&LabelFilter::only([label])));
        assert_eq!(hits[0], 0);
        assert!(hits
            .iter()
            .all(|&h| h < 0 || index.label_of(h as usize) == Some(label)));
        drop(index);
        // What that fold wrote opens: the claim without a file is dropped.
        let path = dir.join("manifest.json");
        let mut m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        m["postings"] = serde_json::Value::Bool(true);
        std::fs::write(&path, serde_json::to_vec(&m).unwrap()).unwrap();
        let index = Index::open(&dir).unwrap();
        index.verify().unwrap();
        assert!(!index.manifest().postings);
        let mut w = Writer::open(&dir).unwrap();
        w.delete(&[3]).unwrap();
        w.fold().unwrap();
    }
}

#[test]
fn damaged_change_files_give_errors_never_panics() {
    let (_keep, dir, mut w) = index_with_a_writer(80);
    w.delete(&[2, 81]).unwrap();
    let log = dir.join(w.index().manifest().log.clone().unwrap());
    drop(w);
    let good_log = std::fs::read(&log).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    for round in 0..400 {
        let mut b = good_log.clone();
        match round % 3 {
            0 => {
                let i = rng.gen_range(0..b.len());
                b[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => b.truncate(rng.gen_range(0..b.len())),
            _ => b.extend((0..rng.gen_range(1..64)).map(|_| rng.gen::<u8>())),
        }
        std::fs::write(&log, &b).unwrap();
        // Any outcome but a panic: an error, or an index that searches.
        if let Ok(index) = Index::open(&dir) {
            let q = [0.1, 0.2, 0.3, 0.4];
            let _ = index.query(&KnnQuery::new(&q).k(5));
            let _ = index.verify();
        }
    }
    std::fs::write(&log, &good_log).unwrap();
    let index = Index::open(&dir).unwrap();
    assert_eq!((index.len(), index.deleted_ids()), (83, vec![2, 81]));
}

#[test]
fn eval_counts_the_live_items_only() {
    let t = tmp();
    let dir = t.path().join("ix");
    build(&dir, 300, 8, Store::F32);
    let mut w = Writer::open(&dir).unwrap();
    w.delete(&(0..50).collect::<Vec<u64>>()).unwrap();
    w.add(&NewItems {
        vectors: &random(4, 8, 6),
        labels: Some(&[0, 1, 2, 3]),
        ..NewItems::default()
    })
    .unwrap();
    let r = likeness_index::eval::evaluate_index(w.index(), None, &[1], 64).unwrap();
    assert_eq!((r.gallery, r.queries), (254, 254));
}

// ---- golden index of a changed index (manifest version 3) --------------------

/// What `golden-v3` was made of: golden-v2, then id 0 deleted and 300 rows
/// added (a fold: generation 1, with `deleted.bin`), then id 5 deleted and
/// 2 rows added (in the log).
fn golden_v3_changes() -> (Vec<f32>, Vec<f32>) {
    let folded: Vec<f32> = (0..300 * 8)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    let logged = vec![
        0.9, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.9,
    ];
    (folded, logged)
}

/// Regenerates `tests/data/golden-v3` (only when asked, after a deliberate
/// format change).
#[test]
#[ignore = "writes tests/data/golden-v3; run with --ignored after a deliberate format change"]
fn regenerate_golden_v3() {
    let d = golden(3);
    let _ = std::fs::remove_dir_all(&d);
    copy_dir(&golden(2), &d);
    let (folded, logged) = golden_v3_changes();
    let mut w = Writer::open(&d).unwrap();
    w.threads(1);
    let labels = vec![1i64; 300];
    w.delete(&[0]).unwrap();
    w.add(&NewItems {
        vectors: &folded,
        labels: Some(&labels),
        ..NewItems::default()
    })
    .unwrap();
    w.delete(&[5]).unwrap();
    w.add(&NewItems {
        vectors: &logged,
        labels: Some(&[2, 3]),
        ..NewItems::default()
    })
    .unwrap();
    drop(w);
    let _ = std::fs::remove_file(d.join(likeness_index::writer::LOCK));
}

#[test]
fn golden_v3_changed_index_still_opens() {
    let t = tmp();
    let dir = t.path().join("ix");
    copy_dir(&golden(3), &dir);
    let index = Index::open(&dir).expect("the committed v3 index must keep opening");
    index.verify().unwrap();
    let m = index.manifest();
    assert_eq!((m.format_version, m.generation, m.count), (3, 1, 600));
    assert_eq!(
        (index.len(), index.base_len(), index.deleted_ids()),
        (602, 600, vec![0, 5])
    );
    assert_eq!(index.log_state(), (2, 0));
    assert!(m.files.contains_key("deleted.bin"));
    assert_eq!(
        (index.label_of(600), index.label_of(601)),
        (Some(2), Some(3))
    );
    let (_, logged) = golden_v3_changes();
    for (r, row) in logged.chunks(8).enumerate() {
        assert_eq!(nearest(&index, row, 1, false, None)[0], 600 + r as i64);
    }
    assert!(!nearest(&index, index.vector(5).unwrap(), 10, true, None).contains(&5));
    // It is written to again like any index.
    let mut w = Writer::open(&dir).unwrap();
    w.compact().unwrap();
    assert_eq!(w.index().live_count(), 600);
}

/// The vectors of `tests/data/golden-i8`: 300 distinct rows of 8 in
/// -1..=1, from a formula (no generator whose stream could change).
fn golden_i8_vectors() -> Vec<f32> {
    (0..300 * 8usize)
        .map(|i| ((i * i * 31 + i * 7919) % 10_007) as f32 / 5003.0 - 1.0)
        .collect()
}

/// Regenerates `tests/data/golden-i8` (only when asked, after a deliberate
/// format change).
#[test]
#[ignore = "writes tests/data/golden-i8; run with --ignored after a deliberate format change"]
fn regenerate_golden_i8() {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-i8");
    let _ = std::fs::remove_dir_all(&d);
    IndexBuilder::new()
        .metric(Metric::L2)
        .m(8)
        .ef_construction(64)
        .store(Store::I8)
        .threads(1)
        .build(&golden_i8_vectors(), 8, None, None, &d, None)
        .unwrap();
}

/// An i8 index as `build --store i8` wrote it before folds refitted the
/// quantizer (`vectors.i8` version 1, the quantizer in the manifest)
/// keeps opening, and its first fold that rewrites the codes refits them
/// over all its items.
#[test]
fn golden_i8_index_opens_and_refits_at_its_first_fold() {
    let t = tmp();
    let dir = t.path().join("ix");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden-i8"),
        &dir,
    );
    let index = Index::open(&dir).expect("the committed i8 index must keep opening");
    index.verify().unwrap();
    let built = index.manifest().quantizer.clone().unwrap();
    assert_eq!((index.len(), index.manifest().store), (300, Store::I8));
    let v = golden_i8_vectors();
    assert_eq!(
        built,
        likeness_index::Quantizer::fit(&v, 8, built.quantile).unwrap()
    );
    for r in [0, 150, 299] {
        assert_eq!(
            nearest(&index, &v[r * 8..(r + 1) * 8], 1, false, None),
            [r as i64]
        );
    }
    drop(index);
    let added: Vec<f32> = random(FOLD_AT, 8, 41).iter().map(|x| x * 4.0).collect();
    let mut w = Writer::open(&dir).unwrap();
    w.add(&NewItems {
        vectors: &added,
        ..NewItems::default()
    })
    .unwrap();
    drop(w);
    let grown = Index::open(&dir).unwrap();
    grown.verify().unwrap();
    let all: Vec<f32> = v.iter().chain(&added).copied().collect();
    assert_eq!(
        grown.manifest().quantizer.clone().unwrap(),
        likeness_index::Quantizer::fit(&all, 8, built.quantile).unwrap()
    );
}

/// How many items carry `label`, by an exact search filtered to it.
fn carrying(index: &Index, label: i64) -> usize {
    let filter = LabelFilter::only([label]);
    let dim = index.dim();
    let (found, _) = index
        .query(
            &KnnQuery::new(&vec![0.0; dim])
                .k(index.len())
                .ef(index.len())
                .exact(true)
                .filter(Some(&filter)),
        )
        .unwrap();
    found.ids(0).iter().filter(|&&i| i >= 0).count()
}

/// A 4-d index of `items` items, and a writer that has logged 3 more.
fn index_with_a_writer(items: usize) -> (tempfile::TempDir, std::path::PathBuf, Writer) {
    let t = tmp();
    let dir = t.path().join("ix");
    build(&dir, items, 4, Store::F32);
    let mut w = Writer::open(&dir).unwrap();
    w.add(&NewItems {
        vectors: &random(3, 4, 5),
        labels: Some(&[1, 2, 3]),
        ..NewItems::default()
    })
    .unwrap();
    (t, dir, w)
}

/// A rebuild with `overwrite` while a writer has the index open is refused
/// (the writer's lock): before the fix it replaced the directory, and the
/// writer's next changes were acknowledged into the old one and lost, or
/// (a fold) written over the new index.
#[test]
fn a_rebuild_over_an_index_a_writer_has_open_is_refused() {
    let (t, dir, mut w) = index_with_a_writer(100);
    let dim = 4;
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    let other = random(50, dim, 6);
    let rebuild = || {
        IndexBuilder::new()
            .metric(Metric::L2)
            .m(8)
            .overwrite(true)
            .build(&other, dim, None, None, &dir, None)
    };
    let err = rebuild().unwrap_err();
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("another process is changing this index"),
        "{err}"
    );
    // Nothing replaced, nothing left beside it; the writer goes on.
    assert_eq!(std::fs::read(dir.join("manifest.json")).unwrap(), manifest);
    let siblings = std::fs::read_dir(t.path()).unwrap().count();
    assert_eq!(siblings, 1, "only ix in its parent");
    w.add(&NewItems {
        vectors: &random(2, dim, 7),
        labels: Some(&[4, 5]),
        ..NewItems::default()
    })
    .unwrap();
    assert_eq!(Index::open(&dir).unwrap().len(), 105);
    // Once the writer is closed the rebuild goes ahead.
    drop(w);
    rebuild().unwrap();
    assert_eq!(Index::open(&dir).unwrap().len(), 50);
    Writer::open(&dir).unwrap();
}

/// A writer whose directory was replaced without its lock (moved aside by
/// hand, a release before the lock was checked) fails its next change,
/// whatever it is, and the new index stays as built.
#[test]
fn a_writer_of_a_replaced_directory_changes_nothing() {
    let (t, dir, mut w) = index_with_a_writer(100);
    let dim = 4;
    std::fs::rename(&dir, t.path().join("ix-old")).unwrap();
    let fresh = random(50, dim, 6);
    IndexBuilder::new()
        .metric(Metric::L2)
        .m(8)
        .build(&fresh, dim, None, None, &dir, None)
        .unwrap();
    let manifest = std::fs::read(dir.join("manifest.json")).unwrap();
    let replaced = |e: Error| {
        assert!(matches!(e, Error::Replaced { .. }), "{e:?}");
        assert!(e.to_string().contains("open the index again"), "{e}");
    };
    // A logged add (would land in the old directory), a folding add and a
    // compaction (would write into the new one), a delete, an update.
    replaced(
        w.add(&NewItems {
            vectors: &random(1, dim, 8),
            labels: Some(&[1]),
            ..NewItems::default()
        })
        .unwrap_err(),
    );
    let labels = vec![1i64; FOLD_AT];
    replaced(
        w.add(&NewItems {
            vectors: &random(FOLD_AT, dim, 9),
            labels: Some(&labels),
            ..NewItems::default()
        })
        .unwrap_err(),
    );
    replaced(w.compact().unwrap_err());
    replaced(w.fold().unwrap_err());
    replaced(w.delete(&[0]).unwrap_err());
    replaced(w.update(&[0], Some(&[6]), None).unwrap_err());
    assert_eq!(std::fs::read(dir.join("manifest.json")).unwrap(), manifest);
    let index = Index::open(&dir).unwrap();
    assert_eq!((index.len(), index.live_count()), (50, 50));
    index.verify().unwrap();
    // The new index takes its own writer.
    drop(w);
    let mut w2 = Writer::open(&dir).unwrap();
    w2.delete(&[0]).unwrap();
}

/// `build --force`, where the filesystem cannot swap two directories,
/// renames the old index aside (`.ix.replaced-<pid>-<n>`) and then the
/// new one in (from `.ix.building-<pid>-<n>`). A crash between the two
/// renames left no index at the path and the old one hidden, and nothing
/// put it back: every open failed with "no such directory".
#[test]
fn an_index_an_interrupted_rebuild_left_aside_is_put_back_at_open() {
    let t = tmp();
    let dir = t.path().join("ix");
    let (v, _) = build(&dir, 300, 8, Store::F32);
    let new = t.path().join("new");
    build(&new, 200, 8, Store::F32);
    // The two folders as the fallback leaves them, named after a process
    // that is alive (this one): its build may still be running.
    let me = std::process::id();
    let hidden = t.path().join(format!(".ix.replaced-{me}-0badcafe"));
    let building = t.path().join(format!(".ix.building-{me}-0badcafe"));
    std::fs::rename(&dir, &hidden).unwrap();
    std::fs::rename(&new, &building).unwrap();
    // A publisher still between its renames holds the old index's lock:
    // nothing moves, and the error names the copy and what to do.
    {
        let _publisher = likeness_index::fsutil::DirLock::acquire(&hidden).unwrap();
        let e = Index::open(&dir).unwrap_err();
        assert!(matches!(e, Error::UnfinishedReplace { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains(&hidden.display().to_string()), "{text}");
        assert!(text.contains("mv "), "{text}");
        assert!(hidden.is_dir() && !dir.exists());
    }
    // With no publisher alive, opening (a writer's too) puts it back.
    let w = Writer::open(&dir).unwrap();
    assert_eq!(w.index().len(), 300);
    assert_eq!(w.index().vector(0).unwrap(), &v[..8]);
    drop(w);
    assert!(!hidden.exists());
    assert!(
        building.join("manifest.json").is_file(),
        "the new copy of a live process stays"
    );
    // Two hidden copies: which is the index is not known, so none moves.
    let other = t.path().join(".ix.replaced-4243-0badcafe");
    std::fs::rename(&dir, &hidden).unwrap();
    copy_dir(&hidden, &other);
    copy_dir(&building, &t.path().join(".ix.building-4243-00000001"));
    let e = Index::open(&dir).unwrap_err();
    let text = e.to_string();
    for h in [&hidden, &other] {
        assert!(text.contains(&h.display().to_string()), "{text}");
    }
    assert!(!dir.exists());
    // A hidden folder that holds no index is not one.
    std::fs::remove_dir_all(&other).unwrap();
    std::fs::remove_dir_all(t.path().join(".ix.building-4243-00000001")).unwrap();
    let manifest = std::fs::read(hidden.join("manifest.json")).unwrap();
    std::fs::remove_file(hidden.join("manifest.json")).unwrap();
    assert!(matches!(Index::open(&dir), Err(Error::NoIndex { .. })));
    assert!(!dir.exists());
    // An old copy that a finished publication failed to remove has no
    // `.building-` copy of its process beside it: an index deleted on
    // purpose stays deleted, rather than coming back as that old one.
    std::fs::write(hidden.join("manifest.json"), manifest).unwrap();
    std::fs::remove_dir_all(&building).unwrap();
    assert!(matches!(Index::open(&dir), Err(Error::NoIndex { .. })));
    assert!(!dir.exists() && hidden.is_dir());
}

fn class_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("c{i}")).collect()
}

fn named_builder(classes: Vec<String>) -> IndexBuilder {
    IndexBuilder::new().metric(Metric::L2).m(8).classes(classes)
}

/// The id of a process that has ended.
fn ended_process() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// Once the old index of an interrupted `build --force` is put back, the
/// new one beside it (`.ix.building-<pid>-`, complete, never acknowledged)
/// used to stay on disk for good, under a hidden name: a second copy of
/// the gallery. It is removed once its process has ended; the old index,
/// with every change acknowledged to it, is whole at the path.
#[test]
fn the_unacknowledged_copy_of_an_interrupted_rebuild_is_removed() {
    let t = tmp();
    let dir = t.path().join("ix");
    let (v, _) = build(&dir, 300, 8, Store::F32);
    // A change acknowledged to the old index, in its log.
    let mut w = Writer::open(&dir).unwrap();
    w.delete(&[7]).unwrap();
    drop(w);
    let new = t.path().join("new");
    build(&new, 200, 8, Store::F32);
    let gone = ended_process();
    let hidden = t.path().join(format!(".ix.replaced-{gone}-0badcafe"));
    let building = t.path().join(format!(".ix.building-{gone}-0badcafe"));
    std::fs::rename(&dir, &hidden).unwrap();
    std::fs::rename(&new, &building).unwrap();
    // A build of another process, and a folder that holds no index, stay.
    let other = t
        .path()
        .join(format!(".ix.building-{}-00000001", std::process::id()));
    copy_dir(&building, &other);
    let empty = t.path().join(format!(".ix.building-{gone}-00000002"));
    std::fs::create_dir(&empty).unwrap();

    let index = Index::open(&dir).unwrap();
    assert_eq!((index.len(), index.live_count()), (300, 299));
    assert_eq!(index.vector(0).unwrap(), &v[..8]);
    index.verify().unwrap();
    assert!(!hidden.exists());
    assert!(!building.exists(), "the unacknowledged copy is removed");
    assert!(other.join("manifest.json").is_file() && empty.is_dir());
}

/// Class names must name every label at build: with one name for five
/// labels, the first new class name added later took label 1, and the
/// items carrying it silently became that class.
#[test]
fn class_names_must_cover_the_labels_at_build() {
    let t = tmp();
    let dir = t.path().join("ix");
    let dim = 4;
    let v = random(500, dim, 1);
    let labels: Vec<i64> = (0..500).map(|i| i % 5).collect();
    let err = named_builder(class_names(1))
        .build(&v, dim, Some(&labels), None, &dir, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("label 1 (item 1) has no class name"), "{err}");
    assert!(err.contains("one class name per label"), "{err}");
    assert!(!dir.exists());
    let negative = [vec![-1i64], labels[1..].to_vec()].concat();
    let err = named_builder(class_names(5))
        .build(&v, dim, Some(&negative), None, &dir, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("label -1 (item 0)"), "{err}");
    assert!(!dir.exists());
}

/// A new class name takes the next label; the writer refuses it when items
/// already carry that label (integer labels added past the names, or an
/// index built before the check above), rather than moving them into it.
#[test]
fn a_new_class_name_never_takes_a_label_items_carry() {
    let t = tmp();
    let dir = t.path().join("ix");
    let dim = 4;
    let v = random(500, dim, 1);
    let labels: Vec<i64> = (0..500).map(|i| i % 5).collect();
    named_builder(class_names(5))
        .build(&v, dim, Some(&labels), None, &dir, None)
        .unwrap();
    // One name per label: a new name takes label 5, which no item carries.
    let mut w = Writer::open(&dir).unwrap();
    let grown = [class_names(5), vec!["new".into()]].concat();
    w.add(&NewItems {
        vectors: &random(1, dim, 2),
        labels: Some(&[5]),
        classes: Some(&grown),
        ..NewItems::default()
    })
    .unwrap();
    assert_eq!(w.index().manifest().class_label("new"), Some(5));
    assert_eq!(carrying(w.index(), 5), 1);
    assert_eq!(carrying(w.index(), 1), 100);

    // Integer labels past the names, then a new name that would take one
    // of them: refused, nothing changed (an add, and an update of others).
    w.add(&NewItems {
        vectors: &random(2, dim, 3),
        labels: Some(&[6, 6]),
        ..NewItems::default()
    })
    .unwrap();
    let grown = [grown, vec!["newer".into()]].concat();
    let err = w
        .add(&NewItems {
            vectors: &random(1, dim, 4),
            labels: Some(&[6]),
            classes: Some(&grown),
            ..NewItems::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("`newer` would take label 6"), "{err}");
    assert!(err.contains("item 501"), "{err}");
    let err = w
        .update_with(&[0], Some(&[6]), None, Some(&grown))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`newer` would take label 6"), "{err}");
    assert_eq!(w.index().len(), 503);
    assert_eq!(w.index().manifest().classes.len(), 6);
    assert_eq!(carrying(w.index(), 6), 2);
    // Relabelling every item that carries 6 frees it for the new name.
    w.update_with(&[501, 502], Some(&[6, 6]), None, Some(&grown))
        .unwrap();
    assert_eq!(w.index().manifest().class_label("newer"), Some(6));
}

/// Every file of a grown index (`graph.<g>.bin`, `meta.<g>.bin` with its
/// scores, item records and subjects/sides, `postings.<g>.bin`,
/// `vectors.<g>.i8`, `deleted.<g>.bin`, the change log) damaged at random,
/// seeded, the manifest's size and CRC32 of the file made to match (and
/// the 128-byte header's own CRC, or a log record's, half of the time), so
/// the damage reaches the parsers past the checksums: opening, searching,
/// listing, verifying and writing give errors, never a panic. The
/// deterministic peer of `fuzz/fuzz_targets/grown_files.rs`; a failure
/// prints the file, the seed and the panic to replay.
#[test]
fn damage_to_any_file_of_a_grown_index_is_an_error_not_a_panic() {
    use likeness_index::{ItemPairing, Side};
    let t = tmp();
    let dir = t.path().join("ix");
    let (n, dim) = (120, 8);
    let v = random(n, dim, 1);
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 5).collect();
    let items: Vec<ItemInfo> = (0..n)
        .map(|i| ItemInfo {
            source: format!("faces/{i}.png"),
            region: Some([1.0, 2.0, 30.0, 40.0]),
        })
        .collect();
    let pairings: Vec<ItemPairing> = (0..n)
        .map(|i| ItemPairing {
            subject: Some(format!("s{}", i / 2)),
            side: Some(if i % 2 == 0 { Side::Left } else { Side::Right }),
        })
        .collect();
    IndexBuilder::new()
        .metric(Metric::L2)
        .m(6)
        .ef_construction(32)
        .store(Store::I8)
        .threads(1)
        .scores((0..n).map(|i| i as f32 / 10.0).collect())
        .pairings(pairings)
        .build(&v, dim, Some(&labels), Some(&items), &dir, None)
        .unwrap();
    let mut w = Writer::open(&dir).unwrap();
    w.delete(&[3, 4, 50]).unwrap();
    w.fold().unwrap();
    w.add(&NewItems {
        vectors: &random(3, dim, 2),
        labels: Some(&[1, 2, 3]),
        scores: Some(&[0.5, f32::NAN, 2.0]),
        ..NewItems::default()
    })
    .unwrap();
    w.delete(&[7, 121]).unwrap();
    drop(w);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "manifest.json" && n != likeness_index::writer::LOCK)
        .collect();
    names.sort();
    for kind in [
        "graph.",
        "meta.",
        "postings.",
        "vectors.",
        "deleted.",
        "log.",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(kind)),
            "{kind}: {names:?}"
        );
    }
    let q = random(1, dim, 3);
    let filter = LabelFilter::only([1, 2]);
    for name in &names {
        let original = std::fs::read(dir.join(name)).unwrap();
        for seed in 0..40u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut bytes = original.clone();
            match rng.gen_range(0..4) {
                0 => bytes.truncate(rng.gen_range(0..bytes.len())),
                _ => {
                    for _ in 0..rng.gen_range(1..5) {
                        let at = rng.gen_range(0..bytes.len());
                        bytes[at] = match rng.gen_range(0..3) {
                            0 => 0,
                            1 => 0xff,
                            _ => rng.gen(),
                        };
                    }
                }
            }
            if rng.gen_bool(0.5) {
                fix_checksums(name, &mut bytes);
            }
            let copy = t.path().join(format!("damaged-{seed}"));
            let _ = std::fs::remove_dir_all(&copy);
            std::fs::create_dir(&copy).unwrap();
            for other in names.iter().filter(|o| *o != name) {
                std::fs::copy(dir.join(other), copy.join(other)).unwrap();
            }
            std::fs::write(copy.join(name), &bytes).unwrap();
            let mut m = manifest.clone();
            for (key, entry) in m["files"].as_object_mut().unwrap() {
                if entry["path"].as_str().unwrap_or(key) == name {
                    entry["size"] = bytes.len().into();
                    entry["crc32"] = crc32fast::hash(&bytes).into();
                }
            }
            std::fs::write(copy.join("manifest.json"), m.to_string()).unwrap();
            let run = std::panic::catch_unwind(|| {
                if let Ok(index) = Index::open(&copy) {
                    for exact in [false, true] {
                        let request = KnnQuery::new(&q).k(5).ef(16).exact(exact);
                        if let Ok((found, _)) = index.query(&request) {
                            let (items, pairings) = (index.items().ok(), index.pairings().ok());
                            let _ = index.hits(items.as_deref(), pairings.as_deref(), &found, 0);
                        }
                        let _ = index.query(&request.filter(Some(&filter)));
                    }
                    let _ = index.verify();
                }
                if let Ok(mut w) = Writer::open(&copy) {
                    let _ = w.delete(&[1]);
                    let _ = w.fold();
                }
            });
            if let Err(panic) = run {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("{name}, seed {seed}: a panic, not an error: {text}");
            }
            std::fs::remove_dir_all(&copy).unwrap();
        }
    }
}

/// Makes the checksums inside a damaged file match again: the CRC32 of a
/// 128-byte header (its bytes 0..124, in its last 4), and in a change log
/// each whole record's (length, CRC32, payload).
fn fix_checksums(name: &str, bytes: &mut [u8]) {
    if bytes.len() < 128 || name.ends_with(".npy") {
        return;
    }
    let crc = crc32fast::hash(&bytes[..124]);
    bytes[124..128].copy_from_slice(&crc.to_le_bytes());
    if !name.starts_with("log.") {
        return;
    }
    let mut at = 128;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            return;
        };
        let crc = crc32fast::hash(payload);
        bytes[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        at += 8 + len;
    }
}
