//! `deleted.bin`, whole: the ids of deleted items, as of one generation of
//! an index that has been written to (see [`crate::writer`]).
//!
//! # Layout (version 2, the version of the files it sits beside)
//!
//! ```text
//! 0     DeletedHeader (128 bytes, CRC32 of bytes 0..124 in its last 4 bytes)
//! 128   ids u32 × deleted, strictly ascending, each < count
//! ```
//!
//! Why a sorted list and not a bitset: deletions are a few percent of an
//! index between compactions, and the list is what `verify` and people
//! read; it becomes the in-memory bitset ([`crate::live::Deleted`]) at open.
//! Ids are positions and never reused, so a deleted id stays in the list
//! after `compact` (which drops the item from the graph and wipes its
//! vector and records).

use std::io::Write;
use std::path::Path;

use bytemuck::{Pod, Zeroable};

use super::{header_crc, read_header, section, HEADER_SIZE, VERSION};
use crate::error::{Error, Result};

/// Magic of `deleted.bin`.
pub const DELETED_MAGIC: [u8; 8] = *b"LKNSDELE";

/// Fixed header of `deleted.bin`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct DeletedHeader {
    pub magic: [u8; 8],
    pub version: u32,
    pub flags: u32,
    /// Items (live and deleted) of the generation the list belongs to.
    pub count: u64,
    /// Ids in the list.
    pub deleted: u64,
    pub reserved: [u32; 23],
    pub header_crc: u32,
}
const _: () = assert!(std::mem::size_of::<DeletedHeader>() == HEADER_SIZE);

/// Reads and checks `deleted.bin` of an index of `count` items: header,
/// size, ids ascending and in range. Returns the ids.
pub(crate) fn read(path: &Path, bytes: &[u8], count: usize) -> Result<Vec<u32>> {
    let h: DeletedHeader = read_header(
        path,
        bytes,
        &DELETED_MAGIC,
        "LKNSDELE",
        |h: &DeletedHeader| h.version,
        |h| h.header_crc,
    )?;
    if h.count != count as u64 {
        return Err(Error::corrupt(
            path,
            format!("written for {} items, the index has {count}", h.count),
        ));
    }
    let ids: &[u32] = section(path, bytes, HEADER_SIZE as u64, h.deleted, "ids")?;
    if bytes.len() as u64 != HEADER_SIZE as u64 + 4 * h.deleted {
        return Err(Error::corrupt(path, "trailing bytes after the ids"));
    }
    if let Some(w) = ids.windows(2).find(|w| w[0] >= w[1]) {
        return Err(Error::corrupt(
            path,
            format!("ids not strictly ascending ({} then {})", w[0], w[1]),
        ));
    }
    if let Some(&last) = ids.last().filter(|&&l| l as usize >= count) {
        return Err(Error::corrupt(
            path,
            format!("id {last} is out of range (the index has {count} items)"),
        ));
    }
    Ok(ids.to_vec())
}

/// Writes `deleted.bin` for `count` items; `ids` strictly ascending.
pub(crate) fn write(w: &mut dyn Write, count: usize, ids: &[u32]) -> std::io::Result<()> {
    let mut h = DeletedHeader {
        magic: DELETED_MAGIC,
        version: VERSION,
        flags: 0,
        count: count as u64,
        deleted: ids.len() as u64,
        reserved: [0; 23],
        header_crc: 0,
    };
    h.header_crc = header_crc(bytemuck::cast_ref(&h));
    w.write_all(bytemuck::bytes_of(&h))?;
    w.write_all(bytemuck::cast_slice(ids))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(count: usize, ids: &[u32]) -> Vec<u8> {
        let mut v = Vec::new();
        write(&mut v, count, ids).unwrap();
        v
    }

    #[test]
    fn round_trip_and_damage() {
        let p = Path::new("deleted.bin");
        // Copy into an aligned buffer, as a map would be.
        let b = bytes(10, &[1, 4, 9]);
        let aligned: Vec<u32> = bytemuck::pod_collect_to_vec(&b);
        let a = bytemuck::cast_slice(&aligned);
        assert_eq!(read(p, a, 10).unwrap(), vec![1, 4, 9]);
        assert!(read(p, a, 11).is_err(), "count differs");
        let bad: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes(10, &[4, 1]));
        assert!(read(p, bytemuck::cast_slice(&bad), 10).is_err());
        let out: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes(5, &[5]));
        assert!(read(p, bytemuck::cast_slice(&out), 5).is_err());
        let mut flipped = aligned.clone();
        flipped[3] ^= 1;
        assert!(matches!(
            read(p, bytemuck::cast_slice(&flipped), 10),
            Err(Error::ChecksumMismatch { .. })
        ));
    }
}
