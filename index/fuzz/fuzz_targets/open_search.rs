//! Opens an index directory whose files are cut from arbitrary bytes, then
//! searches and verifies it: any outcome but a panic or a crash is fine.
//!
//! The input is split into graph.bin, vectors.npy and meta.bin by two
//! length prefixes; the manifest is generated to match the sizes (so the
//! fuzzer gets past the size check and exercises the binary parsers and the
//! search over damaged graphs). Run: `cargo fuzz run open_search` in
//! index/fuzz (seed the corpus with files of tests/data/golden-v1).
#![no_main]

use libfuzzer_sys::fuzz_target;
use likeness_index::{Index, KnnQuery};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let a = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let b = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    let rest = &data[8..];
    let a = a.min(rest.len());
    let (graph, rest) = rest.split_at(a);
    let b = b.min(rest.len());
    let (vectors, meta) = rest.split_at(b);
    let dir = tempfile::tempdir().unwrap();
    let mut files = String::new();
    for (name, bytes) in [("graph.bin", graph), ("vectors.npy", vectors), ("meta.bin", meta)] {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        files.push_str(&format!(
            "{}\"{name}\": {{\"size\": {}, \"crc32\": 0}}",
            if files.is_empty() { "" } else { ", " },
            bytes.len()
        ));
    }
    // Take count/dim/levels from the graph header when present so the
    // manifest cross-check passes and deeper code runs.
    let rd32 = |o: usize| graph.get(o..o + 4).map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()));
    let rd64 = |o: usize| graph.get(o..o + 8).map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()));
    let metric = if rd32(36) == 1 { "l2" } else { "cosine" };
    let manifest = format!(
        "{{\"format\": \"likeness-index\", \"format_version\": 1, \"metric\": \"{metric}\", \"dim\": {}, \"count\": {}, \"levels\": {}, \"has_labels\": {}, \
         \"build\": {{\"m\": 16, \"ef_construction\": 200, \"seed\": 0, \"threads\": 1, \"builder\": \"fuzz\"}}, \
         \"tool\": {{\"name\": \"fuzz\", \"version\": \"0\"}}, \"created_unix\": 0, \"files\": {{{files}}}}}",
        rd32(32),
        rd64(16),
        rd32(52),
        meta.get(12).is_some_and(|f| f & 1 == 1),
    );
    std::fs::write(dir.path().join("manifest.json"), manifest).unwrap();
    if let Ok(index) = Index::open(dir.path()) {
        let dim = index.dim().min(4096);
        let q: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin() + 0.1).collect();
        let _ = index.query(&KnnQuery::new(&q).k(5).ef(16));
        let _ = index.query(&KnnQuery::new(&q).dim(dim).k(3).ef(8));
        let _ = index.items();
        let _ = index.verify();
    }
});
