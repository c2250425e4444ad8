//! Opens a valid labelled index whose compact vector file (`vectors.i8` or
//! `vectors.f16`) and `postings.bin` are replaced by arbitrary bytes, then
//! plans, searches (graph, filtered graph, exact scan) and verifies it: any
//! outcome but a panic or a crash is fine.
//!
//! The first input byte picks the store, the next four the length of the
//! compact file; the rest is postings.bin. The manifest is rewritten with
//! the files' sizes (CRC 0), so the fuzzer gets past the size check and
//! reaches the header, section and search code. Run: `cargo +nightly fuzz
//! run compact_postings` in index/fuzz (no corpus needed: the valid files
//! are built here; the fuzzer finds the magics from the comparisons).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use likeness_index::postings::{PlanChoice, SearchOptions};
use likeness_index::{Index, IndexBuilder, KnnQuery, LabelFilter, Metric, Store};

const N: usize = 64;
const DIM: usize = 8;

/// Two small valid indexes (i8, f16) built once per process.
fn templates() -> &'static (tempfile::TempDir, [PathBuf; 2]) {
    static T: OnceLock<(tempfile::TempDir, [PathBuf; 2])> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let v: Vec<f32> = (0..N * DIM).map(|i| ((i * 37 % 101) as f32 * 0.13).sin()).collect();
        let labels: Vec<i64> = (0..N as i64).map(|i| i % 5).collect();
        let paths = [Store::I8, Store::F16].map(|s| {
            let p = dir.path().join(s.as_str());
            IndexBuilder::new()
                .metric(Metric::L2)
                .m(4)
                .ef_construction(16)
                .threads(1)
                .store(s)
                .build(&v, DIM, Some(&labels), None, &p, None)
                .unwrap();
            p
        });
        (dir, paths)
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let (_, paths) = templates();
    let (store, src) = if data[0] & 1 == 0 {
        (Store::I8, &paths[0])
    } else {
        (Store::F16, &paths[1])
    };
    let a = u32::from_le_bytes([data[1], data[2], data[3], data[4]]) as usize;
    let rest = &data[5..];
    let (compact, postings) = rest.split_at(a.min(rest.len()));
    let dir = tempfile::tempdir().unwrap();
    for f in ["graph.bin", "vectors.npy", "meta.bin"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let name = store.file_name().unwrap();
    std::fs::write(dir.path().join(name), compact).unwrap();
    std::fs::write(dir.path().join("postings.bin"), postings).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("manifest.json")).unwrap()).unwrap();
    m["files"][name] = serde_json::json!({"size": compact.len(), "crc32": 0});
    m["files"]["postings.bin"] = serde_json::json!({"size": postings.len(), "crc32": 0});
    std::fs::write(dir.path().join("manifest.json"), serde_json::to_vec(&m).unwrap()).unwrap();
    let Ok(index) = Index::open(dir.path()) else {
        return;
    };
    let q: Vec<f32> = (0..DIM).map(|i| (i as f32 * 0.37).sin()).collect();
    let filters = [LabelFilter::only([1]), LabelFilter::only([0, 2, 9]), LabelFilter::except([3])];
    for plan in [PlanChoice::Auto, PlanChoice::Exact, PlanChoice::Graph] {
        let options = SearchOptions {
            plan,
            exact_below: Some(20),
            rerank: Some(8),
        };
        let request = KnnQuery::new(&q).k(5).ef(16).options(options);
        let _ = index.query(&request);
        for f in &filters {
            let _ = index.query(&request.filter(Some(f)));
            let _ = index.query(&request.dim(DIM).k(3).ef(8).filter(Some(f)));
        }
    }
    let _ = index.verify();
});
