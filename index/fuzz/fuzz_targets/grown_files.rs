//! Opens a grown index (manifest version 3, generation files, meta.bin
//! with scores, item records and subjects/sides, an i8 store, postings,
//! `deleted.<g>.bin` and a change log) whose one file, picked by the first
//! input byte, is replaced by the rest of the input; then searches (graph,
//! exact, filtered), decodes the hits' records, verifies, and writes
//! through a `Writer` (a delete and a fold): any outcome but a panic or a
//! crash is fine.
//!
//! The manifest is rewritten with the file's size and CRC32, so the
//! fuzzer gets past that check and reaches the headers, sections, records
//! and the log's replay (the log is not in the manifest; a torn or
//! damaged record is the reader's to find). `tests/grow.rs`
//! (`damage_to_any_file_of_a_grown_index_is_an_error_not_a_panic`) runs
//! seeded damage of the same files in `cargo test`. Run: `cargo +nightly
//! fuzz run grown_files` in index/fuzz (no corpus needed: the valid files
//! are built here).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use likeness_index::{
    Index, IndexBuilder, ItemInfo, ItemPairing, KnnQuery, LabelFilter, Metric, NewItems, Side,
    Store, Writer,
};

const N: usize = 64;
const DIM: usize = 8;

/// A small grown index built once per process, and its files' names.
fn template() -> &'static (tempfile::TempDir, PathBuf, Vec<String>) {
    static T: OnceLock<(tempfile::TempDir, PathBuf, Vec<String>)> = OnceLock::new();
    T.get_or_init(|| {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("ix");
        let v: Vec<f32> = (0..N * DIM)
            .map(|i| ((i * 37 % 101) as f32 * 0.13).sin())
            .collect();
        let labels: Vec<i64> = (0..N as i64).map(|i| i % 5).collect();
        let items: Vec<ItemInfo> = (0..N)
            .map(|i| ItemInfo {
                source: format!("faces/{i}.png"),
                region: Some([1.0, 2.0, 30.0, 40.0]),
            })
            .collect();
        let pairings: Vec<ItemPairing> = (0..N)
            .map(|i| ItemPairing {
                subject: Some(format!("s{}", i / 2)),
                side: Some(if i % 2 == 0 { Side::Left } else { Side::Right }),
            })
            .collect();
        IndexBuilder::new()
            .metric(Metric::L2)
            .m(4)
            .ef_construction(16)
            .threads(1)
            .store(Store::I8)
            .scores((0..N).map(|i| i as f32 / 10.0).collect())
            .pairings(pairings)
            .build(&v, DIM, Some(&labels), Some(&items), &dir, None)
            .unwrap();
        let mut w = Writer::open(&dir).unwrap();
        w.delete(&[3, 4, 50]).unwrap();
        w.fold().unwrap();
        w.add(&NewItems {
            vectors: &v[..2 * DIM],
            labels: Some(&[1, 2]),
            scores: Some(&[0.5, f32::NAN]),
            ..NewItems::default()
        })
        .unwrap();
        w.delete(&[7, N as u64]).unwrap();
        drop(w);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "manifest.json" && n != likeness_index::writer::LOCK)
            .collect();
        names.sort();
        (t, dir, names)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let (_, src, names) = template();
    let name = &names[pick as usize % names.len()];
    let dir = tempfile::tempdir().unwrap();
    for other in names.iter().filter(|o| *o != name) {
        std::fs::copy(src.join(other), dir.path().join(other)).unwrap();
    }
    std::fs::write(dir.path().join(name), bytes).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("manifest.json")).unwrap()).unwrap();
    for (key, entry) in m["files"].as_object_mut().unwrap() {
        if entry["path"].as_str().unwrap_or(key) == name {
            entry["size"] = bytes.len().into();
            entry["crc32"] = crc32fast::hash(bytes).into();
        }
    }
    std::fs::write(dir.path().join("manifest.json"), m.to_string()).unwrap();
    if let Ok(index) = Index::open(dir.path()) {
        let q: Vec<f32> = (0..DIM).map(|i| (i as f32 * 0.37).sin()).collect();
        let filter = LabelFilter::only([1, 2]);
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
    if let Ok(mut w) = Writer::open(dir.path()) {
        let _ = w.delete(&[1]);
        let _ = w.fold();
    }
});
