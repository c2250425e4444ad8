//! `graph.bin`, whole: its layout, the checks when it is opened and
//! verified, the views a search reads through, and its writer.
//!
//! # `graph.bin` (version 1)
//!
//! ```text
//! 0     GraphHeader (128 bytes, CRC32 of bytes 0..124 in its last 4 bytes)
//! 128   LayerEntry × levels (48 bytes each)
//! ...   per layer l, each section 64-byte aligned:
//!         nodes      u32 × nodes   (layers ≥ 1 only: sorted global ids)
//!         offsets    u64 × (nodes + 1)   CSR row pointers into neighbours
//!         neighbours u32 × edges         global ids, nearest first
//! ```
//!
//! Layer 0 holds every item, so item `i`'s row is `i` and no node list is
//! stored. In upper layers a node's row is found by binary search in the
//! sorted node list (only a few hops per query happen up there).
//!
//! Opening ([`read`]) checks what costs O(1) per layer: header, section
//! bounds and alignment, CSR end points, entry point. Every row pointer and
//! neighbour id a search reads is bounds-checked where it is read
//! ([`GraphView::neighbours`]); [`GraphView::check_links`] checks them all
//! up front (`verify`).

use std::io::Write;
use std::path::{Path, PathBuf};

use bytemuck::{Pod, Zeroable};

use super::{align_up, header_crc, pad_to, read_header, section, HEADER_SIZE, VERSION};
use crate::distance::Metric;
use crate::error::{Error, Result};
use crate::graph::Graph;

/// Magic of `graph.bin`.
pub const GRAPH_MAGIC: [u8; 8] = *b"LKNSGRPH";
/// Most layers a graph may have (hnsw_rs builds at most 16).
pub const MAX_LEVELS: u32 = 32;

/// Fixed header of `graph.bin`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct GraphHeader {
    pub magic: [u8; 8],
    pub version: u32,
    pub header_size: u32,
    pub count: u64,
    pub seed: u64,
    pub dim: u32,
    /// 0 = cosine, 1 = l2.
    pub metric: u32,
    pub m: u32,
    pub m0: u32,
    pub ef_construction: u32,
    pub levels: u32,
    pub entry_point: u32,
    pub flags: u32,
    pub reserved: [u32; 15],
    pub header_crc: u32,
}

/// One row of the layer table.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, Default)]
pub struct LayerEntry {
    pub nodes: u64,
    pub nodes_offset: u64,
    pub offsets_offset: u64,
    pub edges: u64,
    pub neighbours_offset: u64,
    pub reserved: u64,
}

const _: () = assert!(std::mem::size_of::<GraphHeader>() == HEADER_SIZE);
const _: () = assert!(std::mem::size_of::<LayerEntry>() == 48);

/// What opening `graph.bin` found: its header and layer table, checked.
#[derive(Debug, Clone)]
pub(crate) struct GraphLayout {
    pub header: GraphHeader,
    pub layers: Vec<LayerEntry>,
    pub count: usize,
    pub dim: usize,
    pub metric: Metric,
}

/// Reads the header of `graph.bin` (mapped at `bytes`) and checks its
/// structure in O(levels).
pub(crate) fn read(path: &Path, bytes: &[u8]) -> Result<GraphLayout> {
    let header: GraphHeader = read_header(
        path,
        bytes,
        &GRAPH_MAGIC,
        "LKNSGRPH",
        |h: &GraphHeader| h.version,
        |h| h.header_crc,
    )?;
    let (count, dim, metric, layers) = check(path, bytes, &header)?;
    Ok(GraphLayout {
        header,
        layers,
        count,
        dim,
        metric,
    })
}

/// Structural checks of `graph.bin` in O(levels): returns count, dim, metric
/// and the layer table.
fn check(
    path: &Path,
    bytes: &[u8],
    h: &GraphHeader,
) -> Result<(usize, usize, Metric, Vec<LayerEntry>)> {
    let bad = |r: String| Error::corrupt(path, r);
    if h.header_size as usize != HEADER_SIZE {
        return Err(bad(format!(
            "header size {} (expected {HEADER_SIZE})",
            h.header_size
        )));
    }
    let count = usize::try_from(h.count)
        .ok()
        .filter(|&c| c >= 1 && c < u32::MAX as usize)
        .ok_or_else(|| bad(format!("item count {}", h.count)))?;
    let dim = h.dim as usize;
    if dim == 0 {
        return Err(bad("dimension 0".into()));
    }
    let metric = match h.metric {
        0 => Metric::Cosine,
        1 => Metric::L2,
        m => return Err(bad(format!("unknown metric code {m}"))),
    };
    if !(1..=MAX_LEVELS).contains(&h.levels) {
        return Err(bad(format!(
            "{} levels (1..={MAX_LEVELS} allowed)",
            h.levels
        )));
    }
    if h.m == 0 || h.m0 < h.m {
        return Err(bad(format!("m = {}, m0 = {}", h.m, h.m0)));
    }
    if u64::from(h.entry_point) >= h.count {
        return Err(bad(format!("entry point {} out of range", h.entry_point)));
    }
    let levels = h.levels as usize;
    let table: Vec<LayerEntry> = {
        let raw = section::<u8>(
            path,
            bytes,
            HEADER_SIZE as u64,
            (levels * std::mem::size_of::<LayerEntry>()) as u64,
            "layer table",
        )?;
        raw.chunks_exact(std::mem::size_of::<LayerEntry>())
            .map(bytemuck::pod_read_unaligned)
            .collect()
    };
    let mut end = (HEADER_SIZE + levels * std::mem::size_of::<LayerEntry>()) as u64;
    let mut prev_nodes = h.count;
    for (l, e) in table.iter().enumerate() {
        if l == 0 && (e.nodes != h.count || e.nodes_offset != 0) {
            return Err(bad(format!(
                "layer 0 has {} rows for {} items",
                e.nodes, h.count
            )));
        }
        if e.nodes == 0 || e.nodes > prev_nodes {
            return Err(bad(format!(
                "layer {l} has {} nodes (layer below: {prev_nodes})",
                e.nodes
            )));
        }
        prev_nodes = e.nodes;
        let max_deg = u64::from(if l == 0 { h.m0 } else { h.m });
        if e.edges > e.nodes.saturating_mul(max_deg) {
            return Err(bad(format!(
                "layer {l} has {} edges, more than {} nodes × {max_deg}",
                e.edges, e.nodes
            )));
        }
        let nodes: &[u32] = if l > 0 {
            section(path, bytes, e.nodes_offset, e.nodes, "nodes")?
        } else {
            &[]
        };
        let offsets: &[u64] = section(path, bytes, e.offsets_offset, e.nodes + 1, "row pointers")?;
        section::<u32>(path, bytes, e.neighbours_offset, e.edges, "neighbours")?;
        if offsets.first() != Some(&0) || offsets.last() != Some(&e.edges) {
            return Err(bad(format!(
                "layer {l}: row pointers do not span the {} edges",
                e.edges
            )));
        }
        if l == levels - 1 && nodes.binary_search(&h.entry_point).is_err() && l > 0 {
            return Err(bad(format!(
                "entry point {} is not in the top layer",
                h.entry_point
            )));
        }
        for x in [
            e.nodes_offset + 4 * if l > 0 { e.nodes } else { 0 },
            e.offsets_offset + 8 * (e.nodes + 1),
            e.neighbours_offset + 4 * e.edges,
        ] {
            end = end.max(x);
        }
    }
    let len = bytes.len() as u64;
    if len != end {
        return Err(bad(format!(
            "file is {len} bytes but its sections end at {end}"
        )));
    }
    Ok((count, dim, metric, table))
}

/// The sections of one layer.
#[derive(Clone, Copy, Default)]
pub(crate) struct LayerView<'a> {
    /// Sorted global ids (empty on layer 0).
    pub nodes: &'a [u32],
    /// Row pointers into `neighbours`.
    pub offsets: &'a [u64],
    pub neighbours: &'a [u32],
}

/// Slices of every layer of a mapped `graph.bin` (built in O(levels)).
pub(crate) struct GraphView<'a> {
    path: PathBuf,
    layers: [LayerView<'a>; MAX_LEVELS as usize],
    levels: usize,
    /// The entry point of searches (on the top layer).
    pub entry: u32,
}

impl<'a> GraphView<'a> {
    /// The views of `layout`'s layers in `bytes` (checked at open, so the
    /// casts only repeat the bounds and alignment checks).
    pub fn new(path: PathBuf, bytes: &'a [u8], layout: &GraphLayout) -> Result<Self> {
        let mut layers = [LayerView::default(); MAX_LEVELS as usize];
        for (l, e) in layout.layers.iter().enumerate() {
            layers[l] = LayerView {
                nodes: if l == 0 {
                    &[]
                } else {
                    section(&path, bytes, e.nodes_offset, e.nodes, "nodes")?
                },
                offsets: section(&path, bytes, e.offsets_offset, e.nodes + 1, "offsets")?,
                neighbours: section(&path, bytes, e.neighbours_offset, e.edges, "neighbours")?,
            };
        }
        Ok(GraphView {
            path,
            layers,
            levels: layout.layers.len(),
            entry: layout.header.entry_point,
        })
    }

    /// Number of layers.
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// Layer `l`'s sections.
    #[inline]
    pub fn layer(&self, l: usize) -> &LayerView<'a> {
        &self.layers[l]
    }

    /// A [`Error::Corrupt`] naming `graph.bin`.
    pub fn corrupt(&self, reason: String) -> Error {
        Error::corrupt(&self.path, reason)
    }

    /// Neighbours of global id `i` in layer `l`, bounds-checked.
    #[inline]
    pub fn neighbours(&self, l: usize, i: u32) -> Result<&'a [u32]> {
        let lv = &self.layers[l];
        let row = if l == 0 {
            i as usize
        } else {
            lv.nodes.binary_search(&i).map_err(|_| {
                self.corrupt(format!(
                    "layer {l} links to item {i}, which is not in that layer"
                ))
            })?
        };
        let (a, b) = match (lv.offsets.get(row), lv.offsets.get(row + 1)) {
            (Some(&a), Some(&b)) if a <= b && b <= lv.neighbours.len() as u64 => {
                (a as usize, b as usize)
            }
            _ => return Err(self.corrupt(format!("layer {l}: bad row pointers for item {i}"))),
        };
        Ok(&lv.neighbours[a..b])
    }

    /// The full check of every layer (`verify`): node lists strictly
    /// increasing and in range, row pointers non-decreasing, every neighbour
    /// an item of its layer. Returns the number of edges checked.
    pub fn check_links(&self, count: usize) -> Result<u64> {
        let mut edges = 0;
        for l in 0..self.levels {
            let lv = &self.layers[l];
            if l > 0 {
                if lv.nodes.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(
                        self.corrupt(format!("layer {l}: node list is not strictly increasing"))
                    );
                }
                if lv.nodes.last().is_some_and(|&x| x as usize >= count) {
                    return Err(self.corrupt(format!("layer {l}: node id out of range")));
                }
            }
            if lv.offsets.windows(2).any(|w| w[0] > w[1]) {
                return Err(self.corrupt(format!("layer {l}: row pointers decrease")));
            }
            for (pos, &j) in lv.neighbours.iter().enumerate() {
                let ok = if l == 0 {
                    (j as usize) < count
                } else {
                    lv.nodes.binary_search(&j).is_ok()
                };
                if !ok {
                    return Err(self.corrupt(format!(
                        "layer {l}: neighbour id {j} at position {pos} is not an item of the layer"
                    )));
                }
            }
            edges += lv.neighbours.len() as u64;
        }
        Ok(edges)
    }
}

/// What `graph.bin`'s header records besides the graph itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GraphParams {
    pub dim: usize,
    pub metric: Metric,
    pub seed: u64,
    pub ef_construction: usize,
}

/// Writes `graph` as `graph.bin`.
pub(crate) fn write(w: &mut dyn Write, graph: &Graph, p: GraphParams) -> std::io::Result<()> {
    let levels = graph.layers.len();
    let mut pos = (HEADER_SIZE + levels * std::mem::size_of::<LayerEntry>()) as u64;
    let mut table = Vec::with_capacity(levels);
    for (l, layer) in graph.layers.iter().enumerate() {
        let rows = if l == 0 {
            graph.count
        } else {
            layer.nodes.len()
        } as u64;
        let mut e = LayerEntry {
            nodes: rows,
            edges: layer.neighbours.len() as u64,
            ..LayerEntry::default()
        };
        if l > 0 {
            pos = align_up(pos);
            e.nodes_offset = pos;
            pos += 4 * rows;
        }
        pos = align_up(pos);
        e.offsets_offset = pos;
        pos += 8 * (rows + 1);
        pos = align_up(pos);
        e.neighbours_offset = pos;
        pos += 4 * e.edges;
        table.push(e);
    }
    let mut h = GraphHeader {
        magic: GRAPH_MAGIC,
        version: VERSION,
        header_size: HEADER_SIZE as u32,
        count: graph.count as u64,
        seed: p.seed,
        dim: p.dim as u32,
        metric: match p.metric {
            Metric::Cosine => 0,
            Metric::L2 => 1,
        },
        m: graph.m as u32,
        m0: 2 * graph.m as u32,
        ef_construction: p.ef_construction as u32,
        levels: levels as u32,
        entry_point: graph.entry,
        flags: 0,
        reserved: [0; 15],
        header_crc: 0,
    };
    h.header_crc = header_crc(bytemuck::cast_ref(&h));
    w.write_all(bytemuck::bytes_of(&h))?;
    w.write_all(bytemuck::cast_slice(&table))?;
    let mut pos = (HEADER_SIZE + levels * std::mem::size_of::<LayerEntry>()) as u64;
    for (layer, e) in graph.layers.iter().zip(&table) {
        if e.nodes_offset != 0 {
            pad_to(w, &mut pos, e.nodes_offset)?;
            w.write_all(bytemuck::cast_slice(&layer.nodes))?;
            pos += 4 * layer.nodes.len() as u64;
        }
        pad_to(w, &mut pos, e.offsets_offset)?;
        w.write_all(bytemuck::cast_slice(&layer.offsets))?;
        pos += 8 * layer.offsets.len() as u64;
        pad_to(w, &mut pos, e.neighbours_offset)?;
        w.write_all(bytemuck::cast_slice(&layer.neighbours))?;
        pos += 4 * layer.neighbours.len() as u64;
    }
    Ok(())
}
