//! `meta.bin`, whole: its layout, the records it holds (labels, scores,
//! item sources, subjects and sides), the checks when it is opened, the
//! readers of each section and its writer.
//!
//! # `meta.bin` (version 2; version 1 is the same without scores and pairings)
//!
//! ```text
//! 0     MetaHeader (128 bytes, CRC32 of bytes 0..124 in its last 4 bytes)
//! ...   labels  i64 × count (if FLAG_LABELS), 64-byte aligned
//! ...   scores  f32 × count (if FLAG_SCORES, NaN = no score), 64-byte aligned
//! ...   payload: bincode of Vec<ItemInfo> (source paths, region boxes),
//!       decoded on demand with a byte limit equal to its length
//! ...   pairings: bincode of Vec<ItemPairing> (subject, side) (if
//!       FLAG_PAIRINGS), right after the payload
//! ```
//!
//! Version 2 took the header fields `scores_offset`, `pairings_offset` and
//! `pairings_len` from the reserved words, which version 1 wrote as zeros, so
//! one header struct reads both; a version 1 file may not set the new flags.

use std::io::Write;
use std::path::Path;

use bincode::Options;
use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};

use super::{align_up, header_crc, pad_to, read_header, section, HEADER_SIZE, VERSION};
use crate::error::{Error, Result};

/// Magic of `meta.bin`.
pub const META_MAGIC: [u8; 8] = *b"LKNSMETA";
/// `meta.bin` flag: the labels section is present.
pub const FLAG_LABELS: u32 = 1;
/// `meta.bin` flag (version ≥ 2): the scores section is present.
pub const FLAG_SCORES: u32 = 2;
/// `meta.bin` flag (version ≥ 2): the pairings payload is present.
pub const FLAG_PAIRINGS: u32 = 4;

/// Fixed header of `meta.bin`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct MetaHeader {
    pub magic: [u8; 8],
    pub version: u32,
    pub flags: u32,
    pub count: u64,
    pub labels_offset: u64,
    pub payload_offset: u64,
    pub payload_len: u64,
    /// Version ≥ 2, with FLAG_SCORES.
    pub scores_offset: u64,
    /// Version ≥ 2, with FLAG_PAIRINGS.
    pub pairings_offset: u64,
    pub pairings_len: u64,
    pub reserved: [u32; 13],
    pub header_crc: u32,
}

const _: () = assert!(std::mem::size_of::<MetaHeader>() == HEADER_SIZE);

/// Per-item metadata kept in `meta.bin` besides the label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ItemInfo {
    /// Where the item came from (an image path, usually).
    pub source: String,
    /// Optional region of the source, `[x0, y0, x1, y1]`.
    pub region: Option<[f32; 4]>,
}

/// Which side of a face a region is on (as the person sees it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Left,
    Right,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Left => "left",
            Side::Right => "right",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Side {
    type Err = String;
    /// `left` or `right` (any case).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "left" => Ok(Side::Left),
            "right" => Ok(Side::Right),
            _ => Err(format!("side `{s}` must be `left`, `right` or empty")),
        }
    }
}

/// Which face (subject) and side an item belongs to, kept in `meta.bin`
/// (version 2) beside its score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ItemPairing {
    /// An id shared by the regions of one face or person.
    pub subject: Option<String>,
    pub side: Option<Side>,
}

/// Reads the header of `meta.bin` (mapped at `bytes`) and checks it
/// against the index's `count` items: flags known to its version, every
/// section in bounds and aligned, nothing after the last.
pub(crate) fn check(path: &Path, bytes: &[u8], count: usize) -> Result<MetaHeader> {
    let h: MetaHeader = read_header(
        path,
        bytes,
        &META_MAGIC,
        "LKNSMETA",
        |h: &MetaHeader| h.version,
        |h| h.header_crc,
    )?;
    if h.count != count as u64 {
        return Err(Error::corrupt(
            path,
            format!("{} records for {count} items", h.count),
        ));
    }
    let known = if h.version >= 2 {
        FLAG_LABELS | FLAG_SCORES | FLAG_PAIRINGS
    } else {
        FLAG_LABELS
    };
    if h.flags & !known != 0 {
        return Err(Error::corrupt(
            path,
            format!("unknown flags {:#x} for version {}", h.flags, h.version),
        ));
    }
    if h.flags & FLAG_LABELS != 0 {
        section::<i64>(path, bytes, h.labels_offset, h.count, "labels")?;
    }
    if h.flags & FLAG_SCORES != 0 {
        section::<f32>(path, bytes, h.scores_offset, h.count, "scores")?;
    }
    section::<u8>(path, bytes, h.payload_offset, h.payload_len, "payload")?;
    let mut end = h.payload_offset.saturating_add(h.payload_len);
    if h.flags & FLAG_PAIRINGS != 0 {
        section::<u8>(path, bytes, h.pairings_offset, h.pairings_len, "pairings")?;
        end = end.max(h.pairings_offset.saturating_add(h.pairings_len));
    }
    if bytes.len() as u64 != end {
        return Err(Error::corrupt(
            path,
            format!(
                "file is {} bytes but its sections end at {end}",
                bytes.len()
            ),
        ));
    }
    Ok(h)
}

/// The labels section (checked at open), if the file has one.
pub(crate) fn labels<'a>(path: &Path, bytes: &'a [u8], h: &MetaHeader) -> Option<&'a [i64]> {
    if h.flags & FLAG_LABELS == 0 {
        return None;
    }
    section::<i64>(path, bytes, h.labels_offset, h.count, "labels").ok()
}

/// The scores section (checked at open; `NaN` = none), if the file has one.
pub(crate) fn scores<'a>(path: &Path, bytes: &'a [u8], h: &MetaHeader) -> Option<&'a [f32]> {
    if h.flags & FLAG_SCORES == 0 {
        return None;
    }
    section::<f32>(path, bytes, h.scores_offset, h.count, "scores").ok()
}

/// Decodes the per-item records (empty when the file has none).
pub(crate) fn items(path: &Path, bytes: &[u8], h: &MetaHeader) -> Result<Vec<ItemInfo>> {
    let raw = section::<u8>(path, bytes, h.payload_offset, h.payload_len, "payload")?;
    let items: Vec<ItemInfo> = bincode::DefaultOptions::new()
        .with_limit(h.payload_len)
        .deserialize(raw)
        .map_err(|e| Error::corrupt(path, format!("item records do not decode: {e}")))?;
    if !items.is_empty() && items.len() as u64 != h.count {
        return Err(Error::corrupt(
            path,
            format!("{} item records for {} items", items.len(), h.count),
        ));
    }
    Ok(items)
}

/// Decodes each item's subject and side (empty when the file has none, as
/// every version 1 file).
pub(crate) fn pairings(path: &Path, bytes: &[u8], h: &MetaHeader) -> Result<Vec<ItemPairing>> {
    if h.flags & FLAG_PAIRINGS == 0 {
        return Ok(Vec::new());
    }
    let raw = section::<u8>(path, bytes, h.pairings_offset, h.pairings_len, "pairings")?;
    let p: Vec<ItemPairing> = bincode::DefaultOptions::new()
        .with_limit(h.pairings_len)
        .deserialize(raw)
        .map_err(|e| Error::corrupt(path, format!("subjects and sides do not decode: {e}")))?;
    if p.len() as u64 != h.count {
        return Err(Error::corrupt(
            path,
            format!("{} subject/side records for {} items", p.len(), h.count),
        ));
    }
    Ok(p)
}

/// What goes into `meta.bin` besides its header.
pub(crate) struct MetaSections<'a> {
    pub labels: Option<&'a [i64]>,
    pub scores: Option<&'a [f32]>,
    /// Bincode of the item records ([`encode`]).
    pub payload: &'a [u8],
    /// Bincode of the subjects and sides ([`encode`]).
    pub pairings: Option<&'a [u8]>,
}

/// The bincode of `what` (the payload and pairings sections).
pub(crate) fn encode<T: Serialize + ?Sized>(what: &str, records: &T) -> Result<Vec<u8>> {
    bincode::DefaultOptions::new()
        .serialize(records)
        .map_err(|e| Error::InvalidInput(format!("cannot encode {what}: {e}")))
}

/// Writes `meta.bin` for `n` items.
pub(crate) fn write(w: &mut dyn Write, n: usize, m: &MetaSections<'_>) -> std::io::Result<()> {
    let labels_offset = HEADER_SIZE as u64;
    let mut end = labels_offset;
    if m.labels.is_some() {
        end = align_up(end + 8 * n as u64);
    }
    let scores_offset = if m.scores.is_some() { end } else { 0 };
    if m.scores.is_some() {
        end = align_up(end + 4 * n as u64);
    }
    let payload_offset = end;
    let pairings_offset = if m.pairings.is_some() {
        payload_offset + m.payload.len() as u64
    } else {
        0
    };
    let flags = [
        (m.labels.is_some(), FLAG_LABELS),
        (m.scores.is_some(), FLAG_SCORES),
        (m.pairings.is_some(), FLAG_PAIRINGS),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |f, (_, b)| f | b);
    let mut h = MetaHeader {
        magic: META_MAGIC,
        version: VERSION,
        flags,
        count: n as u64,
        labels_offset,
        payload_offset,
        payload_len: m.payload.len() as u64,
        scores_offset,
        pairings_offset,
        pairings_len: m.pairings.map_or(0, |p| p.len() as u64),
        reserved: [0; 13],
        header_crc: 0,
    };
    h.header_crc = header_crc(bytemuck::cast_ref(&h));
    w.write_all(bytemuck::bytes_of(&h))?;
    let mut pos = HEADER_SIZE as u64;
    if let Some(l) = m.labels {
        w.write_all(bytemuck::cast_slice(l))?;
        pos += 8 * n as u64;
    }
    if let Some(s) = m.scores {
        pad_to(w, &mut pos, scores_offset)?;
        w.write_all(bytemuck::cast_slice(s))?;
        pos += 4 * n as u64;
    }
    pad_to(w, &mut pos, payload_offset)?;
    w.write_all(m.payload)?;
    if let Some(p) = m.pairings {
        w.write_all(p)?;
    }
    Ok(())
}
