//! A fold: the index's files, the logged changes and one more change
//! written as the next generation, committed by replacing `manifest.json`.
//! Files that did not change are named again, not rewritten.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::format::log::Change;
use crate::format::meta::{self, ItemInfo, ItemPairing, MetaSections};
use crate::graph::Graph;
use crate::index::Index;
use crate::live::Live;
use crate::manifest::{
    FileEntry, Manifest, DELETED, GRAPH, LIVE_VERSION, MANIFEST, META, POSTINGS, VECTORS,
};
use crate::quant::{Quantizer, Store};

use super::write_manifest;

/// Labels and/or scores to set.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Update<'a> {
    pub ids: &'a [u64],
    pub labels: Option<&'a [i64]>,
    pub scores: Option<&'a [f32]>,
}

/// What a fold writes besides the logged changes.
#[derive(Debug, Default)]
pub(crate) struct Fold<'a> {
    /// A change not logged (an add, with its item records; or a delete
    /// whose record would not fit the log).
    pub change: Option<(&'a Change, Option<&'a [ItemInfo]>)>,
    pub update: Option<Update<'a>>,
    /// Class names, when they grew (the old list is a prefix).
    pub classes: Option<&'a [String]>,
    /// Rebuild the graph over the live items; wipe the deleted ones.
    pub compact: bool,
}

/// What a fold did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FoldReport {
    /// The new generation.
    pub generation: u64,
    /// Ids given (items, deleted included).
    pub count: usize,
    /// Items not deleted.
    pub live: usize,
    pub deleted: usize,
    /// Items inserted into the graph by this fold.
    pub inserted: usize,
    /// Whether the graph was rebuilt (compaction).
    pub rebuilt: bool,
    pub seconds: f64,
}

/// The name of a file of generation `g`: `graph.bin` → `graph.<g>.bin`.
fn generation_name(entry: &str, g: u64) -> String {
    match entry.split_once('.') {
        Some((stem, ext)) => format!("{stem}.{g}.{ext}"),
        None => format!("{entry}.{g}"),
    }
}

/// Writes the next generation of `index` with its logged changes and `f`,
/// and commits it. `threads`: graph insertion threads (0: rayon's).
pub(crate) fn run(dir: &Path, index: &Index, f: Fold<'_>, threads: usize) -> Result<FoldReport> {
    let start = Instant::now();
    let old = index.manifest();
    let dim = index.dim();
    let base = index.base_len();
    let mut live: Live = (*index.snapshot()).clone();
    if let Some((change, _)) = f.change {
        live.check(change).map_err(Error::InvalidInput)?;
        live.apply(change);
    }
    let n = live.len();
    let grew = n > base;
    if let Some(u) = &f.update {
        check_update(index, &live, u)?;
    }
    if f.compact && live.live_count() == 0 {
        return Err(Error::InvalidInput(
            "every item is deleted: nothing to compact; add items first or build a new index"
                .into(),
        ));
    }
    let g = old.generation + 1;
    let mut files: BTreeMap<String, FileEntry> = old.files.clone();
    let mut put = |entry: &str,
                   fill: &dyn Fn(&mut dyn std::io::Write) -> std::io::Result<()>|
     -> Result<()> {
        let name = generation_name(entry, g);
        let mut e = crate::build::write_file(&dir.join(&name), |w| fill(w))?;
        e.path = Some(name);
        files.insert(entry.to_string(), e);
        Ok(())
    };

    // Vectors: the files' rows, then the added ones; compaction zeroes the
    // deleted ones (their ids stay, their data goes).
    let rewrite = grew || f.compact;
    let data: Cow<'_, [f32]> = if rewrite {
        let mut v = Vec::with_capacity(n * dim);
        v.extend_from_slice(index.vectors());
        v.extend_from_slice(&live.tail);
        if f.compact {
            for id in live.deleted.ids() {
                v[id as usize * dim..(id as usize + 1) * dim].fill(0.0);
            }
        }
        Cow::Owned(v)
    } else {
        Cow::Borrowed(index.vectors())
    };
    let params = crate::hnsw::Params {
        metric: index.metric(),
        m: old.build.m,
        ef_construction: old.build.ef_construction,
        seed: old.build.seed,
        threads: if threads == 0 {
            rayon::current_num_threads()
        } else {
            threads
        },
    };
    let graph: Option<Graph> = if f.compact {
        let ids: Vec<u32> = (0..n as u32)
            .filter(|&i| !live.deleted.contains(i as usize))
            .collect();
        let mut rows = Vec::with_capacity(ids.len() * dim);
        for &i in &ids {
            rows.extend_from_slice(&data[i as usize * dim..(i as usize + 1) * dim]);
        }
        Some(crate::hnsw::build(&rows, dim, params, None)?.spread(&ids, n))
    } else if grew {
        let view = index.graph_view()?;
        Some(crate::hnsw::extend(&data, dim, &view, base, params, None)?)
    } else {
        None
    };
    let levels = graph.as_ref().map_or(index.levels(), |gr| gr.layers.len());
    let mut quantizer = old.quantizer.clone();
    if rewrite {
        put(VECTORS, &|w| {
            crate::npy::write_to(w, &data, &[n, dim]).map(|_| ())
        })?;
        if let Some(name) = old.store.file_name() {
            quantizer = refit(old, &data, dim, &live)?;
            let q = quantizer.as_ref();
            put(name, &|w| {
                crate::quant::write_store(w, old.store, &data, dim, q)
            })?;
        }
    }
    if let Some(gr) = &graph {
        let gp = crate::format::graph::GraphParams {
            dim,
            metric: index.metric(),
            seed: old.build.seed,
            ef_construction: old.build.ef_construction,
        };
        put(GRAPH, &|w| crate::format::graph::write(w, gr, gp))?;
    }

    // Records: labels, scores, sources, subjects and sides.
    let add_items = f.change.and_then(|(_, i)| i);
    let has_meta = old.files.contains_key(META);
    if has_meta || add_items.is_some() {
        let meta_changes = rewrite || f.update.is_some() || add_items.is_some();
        if meta_changes {
            let mut labels: Option<Vec<i64>> = index.labels().map(|l| {
                let mut v = l.to_vec();
                v.extend(live.tail_labels.iter().flatten());
                v
            });
            let mut scores: Option<Vec<f32>> = index.scores().map(|s| {
                let mut v = s.to_vec();
                v.extend(live.tail_scores.iter().flatten());
                v
            });
            let mut items = index.items()?;
            if !items.is_empty() || add_items.is_some() {
                let add_n = add_items.map_or(0, <[ItemInfo]>::len);
                items.resize(n - add_n, ItemInfo::default());
                items.extend(add_items.into_iter().flatten().cloned());
            }
            let mut pairings = index.pairings()?;
            let had_pairings = !pairings.is_empty();
            if had_pairings {
                pairings.resize(n, ItemPairing::default());
            }
            if let Some(u) = &f.update {
                for (k, &id) in u.ids.iter().enumerate() {
                    if let (Some(l), Some(new)) = (&mut labels, u.labels) {
                        l[id as usize] = new[k];
                    }
                    if let (Some(s), Some(new)) = (&mut scores, u.scores) {
                        s[id as usize] = new[k];
                    }
                }
            }
            if f.compact {
                for id in live.deleted.ids() {
                    let id = id as usize;
                    if let Some(it) = items.get_mut(id) {
                        *it = ItemInfo::default();
                    }
                    if let Some(p) = pairings.get_mut(id) {
                        *p = ItemPairing::default();
                    }
                    if let Some(s) = &mut scores {
                        s[id] = f32::NAN;
                    }
                }
            }
            let payload = meta::encode("item metadata", &items)?;
            let pair_bytes = if had_pairings {
                Some(meta::encode("subjects and sides", &pairings)?)
            } else {
                None
            };
            let sections = MetaSections {
                labels: labels.as_deref(),
                scores: scores.as_deref(),
                payload: &payload,
                pairings: pair_bytes.as_deref(),
            };
            put(META, &|w| meta::write(w, n, &sections))?;
            if let Some(l) = &labels {
                put(POSTINGS, &|w| crate::postings::write_postings(w, l))?;
            }
        }
    }
    let deleted = live.deleted.ids();
    if deleted.is_empty() {
        files.remove(DELETED);
    } else {
        put(DELETED, &|w| crate::format::deleted::write(w, n, &deleted))?;
    }
    let mut m: Manifest = old.clone();
    m.format_version = LIVE_VERSION;
    m.generation = g;
    m.log = None;
    m.count = n;
    m.levels = levels;
    m.quantizer = quantizer;
    // Posting lists are written with the records; a fold that leaves the
    // records alone keeps what the index had (an index built before them
    // has none, and a manifest claiming them would not open).
    m.postings = m.has_labels && files.contains_key(POSTINGS);
    if let Some(c) = f.classes {
        m.classes = c.to_vec();
    }
    m.files = files;
    // Everything the manifest names is on disk: fsync each new file, then
    // the directory, then commit.
    for e in m.files.values() {
        if let Some(p) = e.path.as_deref().filter(|p| generation_of(p) == Some(g)) {
            let path = dir.join(p);
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&path, e))?;
        }
    }
    crate::fsutil::sync_dir(dir)?;
    write_manifest(dir, &m)?;
    Ok(FoldReport {
        generation: g,
        count: n,
        live: n - deleted.len(),
        deleted: deleted.len(),
        inserted: if f.compact { 0 } else { n - base },
        rebuilt: f.compact,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The quantizer of a rewritten `vectors.i8`: refitted over the live items
/// (with the quantile the index was built with), so that a grown index
/// codes its vectors as a fresh build of them would. Kept, the build's
/// range clipped every added value outside it: fashion-mnist built on
/// 30,000 and grown by 30,000 shifted out of range (38% of their values
/// clipped) found 0.45 of their true 10 nearest by the codes, 0.90 after
/// re-ranking, where refitted it finds 0.98 and 0.9988 as a fresh build
/// does; the fit took 0.26–0.38 s of a fold's 8.4–8.9 s
/// (docs/benchmarks.md, "The i8 quantizer of a grown index"). An index
/// whose items are all deleted keeps its quantizer; f32 and f16 have none.
fn refit(old: &Manifest, data: &[f32], dim: usize, live: &Live) -> Result<Option<Quantizer>> {
    let Some(q) = old.quantizer.as_ref().filter(|_| old.store == Store::I8) else {
        return Ok(old.quantizer.clone());
    };
    if live.live_count() == 0 {
        return Ok(Some(q.clone()));
    }
    Quantizer::fit_rows(data, dim, q.quantile, |r| !live.deleted.contains(r)).map(Some)
}

fn check_update(index: &Index, live: &Live, u: &Update<'_>) -> Result<()> {
    for (what, len, has) in [
        (
            "labels",
            u.labels.map(<[i64]>::len),
            index.labels().is_some(),
        ),
        (
            "scores",
            u.scores.map(<[f32]>::len),
            index.scores().is_some(),
        ),
    ] {
        match len {
            Some(l) if l != u.ids.len() => {
                return Err(Error::InvalidInput(format!(
                    "{} ids but {l} {what}",
                    u.ids.len()
                )))
            }
            Some(_) if !has => {
                return Err(Error::InvalidInput(format!(
                    "this index has no {what} to update; build it with {what}"
                )))
            }
            _ => {}
        }
    }
    if u.labels.is_none() && u.scores.is_none() {
        return Err(Error::InvalidInput(
            "nothing to update: give labels or scores".into(),
        ));
    }
    if let Some(s) = u.scores.and_then(|s| s.iter().find(|v| v.is_infinite())) {
        return Err(Error::InvalidInput(format!(
            "score {s} is not finite (NaN = none)"
        )));
    }
    for &id in u.ids {
        if id >= live.len() as u64 {
            return Err(Error::InvalidInput(format!(
                "no item {id}: ids of this index are 0..{}",
                live.len()
            )));
        }
        if live.deleted.contains(id as usize) {
            return Err(Error::InvalidInput(format!("item {id} was deleted")));
        }
    }
    Ok(())
}

/// The generation in a file name `stem.<g>.ext`.
fn generation_of(name: &str) -> Option<u64> {
    let mut parts = name.split('.');
    let (_, g) = (parts.next()?, parts.next()?);
    g.parse().ok()
}

/// Removes the index files that `m` does not name: earlier generations,
/// and the files of a fold that a crash stopped before its commit.
pub(crate) fn remove_unnamed(dir: &Path, m: &Manifest) -> Result<()> {
    let named: Vec<String> = m
        .files
        .iter()
        .map(|(k, e)| e.path.clone().unwrap_or_else(|| k.clone()))
        .chain(m.log.clone())
        .collect();
    let ours = |name: &str| {
        let stem = name.split('.').next().unwrap_or_default();
        let known = ["graph", "vectors", "meta", "postings", "deleted", "log"].contains(&stem);
        let gen_file = generation_of(name).is_some();
        let base_file = [GRAPH, VECTORS, META, POSTINGS, DELETED].contains(&name)
            || [Store::F16, Store::I8]
                .iter()
                .filter_map(|s| s.file_name())
                .any(|f| f == name);
        known && (gen_file || base_file)
    };
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let temp = name.starts_with(&format!(".{MANIFEST}.tmp-"));
        if (ours(&name) && !named.contains(&name)) || temp {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}
