//! Binary layouts of `graph.bin` and `meta.bin`, and bounds-checked views
//! over their (memory-mapped) bytes.
//!
//! All integers are little-endian; every section starts at a multiple of
//! [`SECTION_ALIGN`] bytes, so once the file is mapped (page-aligned) the
//! sections are viewed as `&[u32]`/`&[u64]`/`&[i64]` with
//! `bytemuck::try_cast_slice`, which checks length and alignment. No
//! `transmute`, no unchecked pointer reads.
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

use std::path::Path;

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};

const _: () = assert!(
    cfg!(target_endian = "little"),
    "likeness-index maps little-endian files in place and needs a little-endian CPU"
);

/// Alignment of every section.
pub const SECTION_ALIGN: usize = 64;
/// Magic of `graph.bin`.
pub const GRAPH_MAGIC: [u8; 8] = *b"LKNSGRPH";
/// Magic of `meta.bin`.
pub const META_MAGIC: [u8; 8] = *b"LKNSMETA";
/// Oldest `graph.bin`/`meta.bin` version this build reads.
pub const MIN_VERSION: u32 = 1;
/// Version this build writes (and the newest it reads). 2: `meta.bin`
/// gained scores and pairings (subject, side).
pub const VERSION: u32 = 2;
/// Most layers a graph may have (hnsw_rs builds at most 16).
pub const MAX_LEVELS: u32 = 32;
/// `meta.bin` flag: the labels section is present.
pub const FLAG_LABELS: u32 = 1;
/// `meta.bin` flag (version ≥ 2): the scores section is present.
pub const FLAG_SCORES: u32 = 2;
/// `meta.bin` flag (version ≥ 2): the pairings payload is present.
pub const FLAG_PAIRINGS: u32 = 4;

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

pub const HEADER_SIZE: usize = 128;
const _: () = assert!(std::mem::size_of::<GraphHeader>() == HEADER_SIZE);
const _: () = assert!(std::mem::size_of::<MetaHeader>() == HEADER_SIZE);
const _: () = assert!(std::mem::size_of::<LayerEntry>() == 48);

/// CRC32 of a header's bytes before its final checksum field.
pub fn header_crc(bytes: &[u8; HEADER_SIZE]) -> u32 {
    crc32fast::hash(&bytes[..HEADER_SIZE - 4])
}

/// Rounds `x` up to the section alignment.
pub fn align_up(x: u64) -> u64 {
    x.div_ceil(SECTION_ALIGN as u64) * SECTION_ALIGN as u64
}

/// Reads and checks the fixed header common to both files: length, magic,
/// version, header CRC. Returns a copy of the header.
pub fn read_header<H: Pod>(
    path: &Path,
    bytes: &[u8],
    magic: &[u8; 8],
    magic_name: &'static str,
    version_of: impl Fn(&H) -> u32,
    crc_of: impl Fn(&H) -> u32,
) -> Result<H> {
    if bytes.len() < 8 || bytes[..8] != magic[..] {
        return Err(Error::BadMagic {
            path: path.to_path_buf(),
            expected: magic_name,
        });
    }
    let Some(head) = bytes.get(..HEADER_SIZE) else {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            expected: HEADER_SIZE as u64,
            actual: bytes.len() as u64,
        });
    };
    let h: H = bytemuck::pod_read_unaligned(head);
    let version = version_of(&h);
    if !(MIN_VERSION..=VERSION).contains(&version) {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            min: MIN_VERSION,
            max: VERSION,
        });
    }
    let arr: &[u8; HEADER_SIZE] = head
        .try_into()
        .map_err(|_| Error::corrupt(path, "header"))?;
    let actual = header_crc(arr);
    let expected = crc_of(&h);
    if actual != expected {
        return Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    Ok(h)
}

/// A checked section `[offset, offset + count × size_of::<T>())` of `bytes`
/// viewed as `&[T]`.
pub fn section<'a, T: Pod>(
    path: &Path,
    bytes: &'a [u8],
    offset: u64,
    count: u64,
    what: &str,
) -> Result<&'a [T]> {
    let size = std::mem::size_of::<T>() as u64;
    let end = count
        .checked_mul(size)
        .and_then(|l| l.checked_add(offset))
        .ok_or_else(|| Error::corrupt(path, format!("{what}: size overflows")))?;
    if end > bytes.len() as u64 {
        return Err(Error::Truncated {
            path: path.to_path_buf(),
            expected: end,
            actual: bytes.len() as u64,
        });
    }
    let raw = &bytes[offset as usize..end as usize];
    bytemuck::try_cast_slice(raw).map_err(|e| {
        Error::corrupt(
            path,
            format!("{what} at offset {offset}: {e:?} (misaligned section)"),
        )
    })
}
