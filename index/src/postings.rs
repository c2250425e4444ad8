//! Per-label posting lists (`postings.bin`) and the filter planner.
//!
//! A search with a label filter first estimates how many items pass, from
//! the lengths of the filter's posting lists (exact for one-of and none-of
//! filters: labels are disjoint). When few pass ([`PlanKind::Exact`], at
//! most [`SearchOptions::exact_below`] items), it scans just those items
//! with the float32 vectors: exact answers in time proportional to the
//! passing items. Otherwise ([`PlanKind::FilteredGraph`]) it walks the graph
//! with the filter applied inside the beam: nodes that do not pass are still
//! expanded (the graph stays connected through them) but never enter the
//! results, and the walk goes on until `ef` passing items are found (`ef`
//! raised to at least `k`). This is Qdrant's planning, without its extra
//! per-label links.
//!
//! Indexes built before posting lists were written have no `postings.bin`;
//! for them the lists are built in memory from `meta.bin`'s labels at the
//! first filtered search (O(n log n) once, then kept with the open index).
//!
//! # `postings.bin` (version 1)
//!
//! ```text
//! 0     PostingsHeader (128 bytes, CRC32 of bytes 0..124 in its last 4 bytes)
//! ...   keys     i64 × labels       distinct labels, strictly increasing
//! ...   offsets  u64 × (labels + 1) row pointers into ids
//! ...   ids      u32 × count        the items of each label, increasing
//! ```
//! every section 64-byte aligned; the file's CRC32 is in the manifest.

use std::path::Path;
use std::str::FromStr;

use bytemuck::{Pod, Zeroable};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::{align_up, header_crc, read_header, section, HEADER_SIZE};

/// Magic of `postings.bin`.
pub const POSTINGS_MAGIC: [u8; 8] = *b"LKNSPOST";
/// Version of `postings.bin` this build writes and reads.
pub const POSTINGS_VERSION: u32 = 1;
/// The default threshold of the exact scan is `sqrt(EXACT_SCAN_VISITS · n)`
/// items for an index of `n`: an exact scan costs one distance per passing
/// item (`P`), the filtered graph about `V · n / P` (the `V` distances of an
/// unfiltered search, divided by the fraction `P / n` that passes, since it
/// walks on until `ef` pass); the two meet at `P = sqrt(V · n)`. `V` is
/// measured: in `make bench-ann`'s filter table (60,000 × 784, ef 64, one
/// thread) the exact scan was 5.5× faster than the filtered graph at 2,970
/// passing items and 1.7× slower at 6,012; interpolated (log-log), they meet
/// at 5,100 = sqrt(433 · 60,000). Both costs scale with the dimension, so it
/// cancels.
pub const EXACT_SCAN_VISITS: f64 = 433.0;

/// The default exact-scan threshold for an index of `n` items (see
/// [`EXACT_SCAN_VISITS`]): 5,097 for 60,000, 658,000 for a billion.
pub fn default_exact_below(n: usize) -> usize {
    (EXACT_SCAN_VISITS * n as f64).sqrt() as usize
}

/// Restricts results to items whose label is (or is not) in a set.
///
/// The search plans by how many items pass (see this module): an
/// exact scan of them when they are few, else the graph with the filter
/// inside the beam.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelFilter {
    /// Only items with one of these labels (sorted).
    Only(Vec<i64>),
    /// Items with none of these labels (sorted).
    Except(Vec<i64>),
}

impl LabelFilter {
    /// Only items with one of `labels`.
    pub fn only(labels: impl IntoIterator<Item = i64>) -> Self {
        let mut v: Vec<i64> = labels.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        LabelFilter::Only(v)
    }

    /// Items with none of `labels`.
    pub fn except(labels: impl IntoIterator<Item = i64>) -> Self {
        let mut v: Vec<i64> = labels.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        LabelFilter::Except(v)
    }

    /// Whether an item with `label` passes.
    #[inline]
    pub fn allows(&self, label: i64) -> bool {
        match self {
            LabelFilter::Only(v) => v.binary_search(&label).is_ok(),
            LabelFilter::Except(v) => v.binary_search(&label).is_err(),
        }
    }
}

/// Fixed header of `postings.bin`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct PostingsHeader {
    pub magic: [u8; 8],
    pub version: u32,
    pub flags: u32,
    /// Items of the index (= ids in all lists).
    pub count: u64,
    /// Distinct labels.
    pub labels: u64,
    pub keys_offset: u64,
    pub offsets_offset: u64,
    pub ids_offset: u64,
    pub reserved: [u32; 17],
    pub header_crc: u32,
}
const _: () = assert!(std::mem::size_of::<PostingsHeader>() == HEADER_SIZE);

/// Which plan a filtered search may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanChoice {
    /// Exact scan below the threshold, filtered graph above (the default).
    #[default]
    Auto,
    /// Always scan the passing items exactly.
    Exact,
    /// Always walk the graph with the filter in the beam (what every filter
    /// did before the planner).
    Graph,
}

impl FromStr for PlanChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(PlanChoice::Auto),
            "exact" => Ok(PlanChoice::Exact),
            "graph" => Ok(PlanChoice::Graph),
            other => Err(Error::param(
                "plan",
                other,
                "expected `auto`, `exact` or `graph`",
            )),
        }
    }
}

/// How searches of an open index run (set with
/// [`crate::Index::set_options`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SearchOptions {
    /// Compact stores: candidates re-scored with the float32 vectors
    /// (`None`: all `ef` of the beam). Raises `ef` when larger.
    pub rerank: Option<usize>,
    /// Plan of filtered searches.
    pub plan: PlanChoice,
    /// Filters that keep at most this many items are scanned exactly
    /// (`None`: [`default_exact_below`] of the index's size).
    pub exact_below: Option<usize>,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            rerank: None,
            plan: PlanChoice::Auto,
            exact_below: None,
        }
    }
}

/// Which way a search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// No filter: the graph.
    Graph,
    /// The graph, with the filter applied inside the beam.
    FilteredGraph,
    /// An exact scan of the items that pass.
    Exact,
}

impl PlanKind {
    /// Name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanKind::Graph => "graph",
            PlanKind::FilteredGraph => "filtered_graph",
            PlanKind::Exact => "exact",
        }
    }
}

/// The plan of a search, as `query` and `/stats` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub kind: PlanKind,
    /// Items that pass the filter (from the posting lists; `None` without
    /// a filter).
    pub passing: Option<usize>,
    /// The threshold of the exact scan.
    pub exact_below: usize,
    /// Labels of the filter that no item of the index carries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_labels: Vec<i64>,
    /// Beam width the graph search ran with (`ef` raised to the depth
    /// asked); `None` when no graph was searched (an exact search or scan).
    /// Set by [`crate::Index::query`], so a caller reports what ran
    /// rather than working it out again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ef: Option<usize>,
    /// Candidates of the graph search re-ranked with the float32 vectors
    /// (a compact store): `rerank`, else the beam, and never fewer than
    /// the depth asked; `None` with the float32 store or no graph search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank: Option<usize>,
}

/// Posting lists held in memory (built from the labels of an index that has
/// no `postings.bin`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedPostings {
    keys: Vec<i64>,
    offsets: Vec<u64>,
    ids: Vec<u32>,
}

impl OwnedPostings {
    /// The lists of `labels` (label of item `i` at `labels[i]`).
    pub fn from_labels(labels: &[i64]) -> Self {
        let mut order: Vec<u32> = (0..labels.len() as u32).collect();
        order.sort_by_key(|&i| (labels[i as usize], i));
        let mut keys = Vec::new();
        let mut offsets = vec![0u64];
        for (pos, &i) in order.iter().enumerate() {
            let l = labels[i as usize];
            if keys.last() != Some(&l) {
                if !keys.is_empty() {
                    offsets.push(pos as u64);
                }
                keys.push(l);
            }
        }
        if !keys.is_empty() {
            offsets.push(order.len() as u64);
        }
        OwnedPostings {
            keys,
            offsets,
            ids: order,
        }
    }

    /// A view for the planner.
    pub fn view(&self) -> PostingsView<'_> {
        PostingsView {
            keys: &self.keys,
            offsets: &self.offsets,
            ids: &self.ids,
        }
    }
}

/// Posting lists: mapped from `postings.bin` or held in memory.
#[derive(Debug, Clone, Copy)]
pub struct PostingsView<'a> {
    keys: &'a [i64],
    offsets: &'a [u64],
    ids: &'a [u32],
}

impl<'a> PostingsView<'a> {
    /// The items with `label` (`Some(&[])` never: a label no item carries
    /// has no list, `None`). `Err` when the row pointers are damaged.
    pub fn list(&self, label: i64) -> std::result::Result<Option<&'a [u32]>, String> {
        let Ok(r) = self.keys.binary_search(&label) else {
            return Ok(None);
        };
        match (self.offsets.get(r), self.offsets.get(r + 1)) {
            (Some(&a), Some(&b)) if a <= b && b <= self.ids.len() as u64 => {
                Ok(Some(&self.ids[a as usize..b as usize]))
            }
            _ => Err(format!("bad row pointers for label {label}")),
        }
    }

    /// Distinct labels.
    pub fn labels(&self) -> &'a [i64] {
        self.keys
    }

    /// Items that pass `filter` among `count`, and the filter's labels that
    /// no item carries.
    pub fn estimate(
        &self,
        filter: &LabelFilter,
        count: usize,
    ) -> std::result::Result<(usize, Vec<i64>), String> {
        let (set, only) = match filter {
            LabelFilter::Only(v) => (v, true),
            LabelFilter::Except(v) => (v, false),
        };
        let mut hit = 0usize;
        let mut unknown = Vec::new();
        for &l in set {
            match self.list(l)? {
                Some(ids) => hit += ids.len(),
                None => unknown.push(l),
            }
        }
        let passing = if only {
            hit.min(count)
        } else {
            count.saturating_sub(hit)
        };
        Ok((passing, unknown))
    }

    /// Full check for `verify`: keys strictly increasing, row pointers
    /// monotone and spanning the ids, ids increasing within a list, every id
    /// in range and carrying its list's label.
    pub fn check(&self, labels: &[i64]) -> std::result::Result<(), String> {
        if self.keys.windows(2).any(|w| w[0] >= w[1]) {
            return Err("labels are not strictly increasing".into());
        }
        if self.offsets.len() != self.keys.len() + 1
            || self.offsets.first() != Some(&0)
            || self.offsets.last() != Some(&(self.ids.len() as u64))
            || self.offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err("row pointers do not span the lists".into());
        }
        if self.ids.len() != labels.len() {
            return Err(format!("{} ids for {} items", self.ids.len(), labels.len()));
        }
        for (r, &key) in self.keys.iter().enumerate() {
            let ids = &self.ids[self.offsets[r] as usize..self.offsets[r + 1] as usize];
            if ids.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("list of label {key} is not increasing"));
            }
            if let Some(&i) = ids.iter().find(|&&i| labels.get(i as usize) != Some(&key)) {
                return Err(format!(
                    "item {i} is in the list of label {key} but its label differs"
                ));
            }
        }
        Ok(())
    }
}

/// Writes `postings.bin` for `labels`.
pub(crate) fn write_postings(w: &mut dyn std::io::Write, labels: &[i64]) -> std::io::Result<()> {
    let p = OwnedPostings::from_labels(labels);
    let nl = p.keys.len() as u64;
    let keys_offset = HEADER_SIZE as u64;
    let offsets_offset = align_up(keys_offset + 8 * nl);
    let ids_offset = align_up(offsets_offset + 8 * (nl + 1));
    let mut h = PostingsHeader {
        magic: POSTINGS_MAGIC,
        version: POSTINGS_VERSION,
        flags: 0,
        count: labels.len() as u64,
        labels: nl,
        keys_offset,
        offsets_offset,
        ids_offset,
        reserved: [0; 17],
        header_crc: 0,
    };
    h.header_crc = header_crc(bytemuck::cast_ref(&h));
    w.write_all(bytemuck::bytes_of(&h))?;
    let mut pos = HEADER_SIZE as u64;
    let pad = |w: &mut dyn std::io::Write, pos: &mut u64, to: u64| {
        while *pos < to {
            w.write_all(&[0])?;
            *pos += 1;
        }
        Ok::<(), std::io::Error>(())
    };
    w.write_all(bytemuck::cast_slice(&p.keys))?;
    pos += 8 * nl;
    pad(w, &mut pos, offsets_offset)?;
    w.write_all(bytemuck::cast_slice(&p.offsets))?;
    pos += 8 * (nl + 1);
    pad(w, &mut pos, ids_offset)?;
    w.write_all(bytemuck::cast_slice(&p.ids))
}

/// Checks `postings.bin`'s header and sections (O(1)): magic, version,
/// header CRC, count, bounds, alignment, row-pointer end points, length.
pub(crate) fn check_postings(path: &Path, bytes: &[u8], count: usize) -> Result<PostingsHeader> {
    if bytes.len() >= 12 && bytes[..8] == POSTINGS_MAGIC[..] {
        let v = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if v != POSTINGS_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: v,
                min: POSTINGS_VERSION,
                max: POSTINGS_VERSION,
            });
        }
    }
    let h: PostingsHeader = read_header(
        path,
        bytes,
        &POSTINGS_MAGIC,
        "LKNSPOST",
        |_: &PostingsHeader| crate::format::MIN_VERSION,
        |h| h.header_crc,
    )?;
    let bad = |r: String| Error::corrupt(path, r);
    if h.count != count as u64 {
        return Err(bad(format!("{} items for an index of {count}", h.count)));
    }
    if h.labels > h.count {
        return Err(bad(format!("{} labels for {} items", h.labels, h.count)));
    }
    let v = view_of(path, bytes, &h)?;
    if v.offsets.first() != Some(&0) || v.offsets.last() != Some(&h.count) {
        return Err(bad("row pointers do not span the ids".into()));
    }
    let end = h.ids_offset.saturating_add(4 * h.count);
    if h.keys_offset < HEADER_SIZE as u64
        || h.offsets_offset < h.keys_offset + 8 * h.labels
        || h.ids_offset < h.offsets_offset + 8 * (h.labels + 1)
        || bytes.len() as u64 != end
    {
        return Err(bad(format!(
            "sections overlap or the file ({} bytes) does not end at {end}",
            bytes.len()
        )));
    }
    Ok(h)
}

/// The view of a `postings.bin` already passed through [`check_postings`].
pub(crate) fn view_of<'a>(
    path: &Path,
    bytes: &'a [u8],
    h: &PostingsHeader,
) -> Result<PostingsView<'a>> {
    Ok(PostingsView {
        keys: section(path, bytes, h.keys_offset, h.labels, "labels")?,
        offsets: section(path, bytes, h.offsets_offset, h.labels + 1, "row pointers")?,
        ids: section(path, bytes, h.ids_offset, h.count, "ids")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_from_labels_and_estimates() {
        let labels = [5i64, 1, 5, 3, 1, 5, -2];
        let p = OwnedPostings::from_labels(&labels);
        let v = p.view();
        v.check(&labels).unwrap();
        assert_eq!(v.labels(), &[-2, 1, 3, 5]);
        assert_eq!(v.list(5).unwrap(), Some(&[0u32, 2, 5][..]));
        assert_eq!(v.list(4).unwrap(), None);
        let (n, unknown) = v.estimate(&LabelFilter::only([1, 3, 9]), 7).unwrap();
        assert_eq!((n, unknown), (3, vec![9]));
        let (n, _) = v.estimate(&LabelFilter::except([5]), 7).unwrap();
        assert_eq!(n, 4);
        assert!(v.check(&[5, 1, 5, 3, 1, 5, 0]).is_err());
        let empty = OwnedPostings::from_labels(&[]);
        assert_eq!(
            empty.view().estimate(&LabelFilter::only([1]), 0).unwrap().0,
            0
        );
    }

    #[test]
    fn file_round_trip_and_damage() {
        let labels: Vec<i64> = (0..100).map(|i| (i * 7) % 13).collect();
        let mut bytes = Vec::new();
        write_postings(&mut bytes, &labels).unwrap();
        // Copy into 64-byte aligned memory, as a mapped file is.
        let mut aligned: Vec<u64> = vec![0; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut aligned)[..bytes.len()].copy_from_slice(&bytes);
        let buf = &bytemuck::cast_slice::<u64, u8>(&aligned)[..bytes.len()];
        let path = Path::new("postings.bin");
        let h = check_postings(path, buf, 100).unwrap();
        let v = view_of(path, buf, &h).unwrap();
        v.check(&labels).unwrap();
        assert!(v.view_eq(&OwnedPostings::from_labels(&labels).view()));
        assert!(check_postings(path, buf, 99).is_err());
        assert!(check_postings(path, &buf[..buf.len() - 4], 100).is_err());
        let mut bad = bytes.clone();
        bad[8] = 9;
        assert!(matches!(
            check_postings(path, &bad, 100),
            Err(Error::UnsupportedVersion { found: 9, .. })
        ));
    }

    impl PostingsView<'_> {
        fn view_eq(&self, o: &PostingsView<'_>) -> bool {
            self.keys == o.keys && self.offsets == o.offsets && self.ids == o.ids
        }
    }
}
