//! `log.<generation>.wal`, whole: the change log of an index that has been
//! written to. Every add and delete is appended here and fsync'd before it
//! is acknowledged; the next fold ([`crate::writer`]) writes the changes
//! into a new generation of the files and starts a new, empty log.
//!
//! # Layout (version 2, the version of the files it sits beside)
//!
//! ```text
//! 0     LogHeader (128 bytes, CRC32 of bytes 0..124 in its last 4 bytes)
//! 128   records, each: payload length u32, CRC32 of the payload u32, payload
//! ```
//!
//! Payloads (little-endian): kind `u8` and 3 zero bytes, then
//! - add (1): first id `u64`, items `n: u32`, flags `u32` (1: labels,
//!   2: scores), labels `i64 × n`, scores `f32 × n` (NaN = none), the
//!   prepared (for cosine: normalised) vectors `f32 × n × dim`;
//! - delete (2): ids `n: u32`, 4 zero bytes, ids `u64 × n`.
//!
//! Why a log and not a new generation per change: a generation rewrites
//! the graph and the vectors, O(items); one HTTP add appends one record,
//! O(dim), and one fsync. A record is acknowledged only once it is whole on
//! disk, so a crash can leave at most one partial record, at the end; the
//! reader stops at the first record that is short or fails its CRC
//! ([`Replay::torn`]) and the next writer cuts it off before appending.

use std::path::Path;

use bytemuck::{Pod, Zeroable};

use super::{header_crc, read_header, HEADER_SIZE, VERSION};
use crate::error::{Error, Result};

/// Magic of the change log.
pub const LOG_MAGIC: [u8; 8] = *b"LKNSLOG\0";
/// Largest record accepted (an add of ~330,000 vectors of 784 floats).
pub const MAX_RECORD: usize = 1 << 30;

const KIND_ADD: u8 = 1;
const KIND_DELETE: u8 = 2;
const FLAG_LABELS: u32 = 1;
const FLAG_SCORES: u32 = 2;

/// Fixed header of the change log.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct LogHeader {
    pub magic: [u8; 8],
    pub version: u32,
    pub flags: u32,
    pub dim: u64,
    /// Items in the generation's files: the first add starts at this id.
    pub base_count: u64,
    /// The generation this log continues.
    pub generation: u64,
    pub reserved: [u32; 21],
    pub header_crc: u32,
}
const _: () = assert!(std::mem::size_of::<LogHeader>() == HEADER_SIZE);

/// One change, as logged.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Items `first..first + n`.
    Add {
        first: u64,
        labels: Option<Vec<i64>>,
        scores: Option<Vec<f32>>,
        /// Prepared rows, `n × dim`.
        vectors: Vec<f32>,
    },
    Delete {
        ids: Vec<u64>,
    },
}

/// The header of a new log.
pub(crate) fn header(dim: usize, base_count: usize, generation: u64) -> [u8; HEADER_SIZE] {
    let mut h = LogHeader {
        magic: LOG_MAGIC,
        version: VERSION,
        flags: 0,
        dim: dim as u64,
        base_count: base_count as u64,
        generation,
        reserved: [0; 21],
        header_crc: 0,
    };
    h.header_crc = header_crc(bytemuck::cast_ref(&h));
    *bytemuck::cast_ref(&h)
}

/// The framed record of `change` (length, CRC32, payload).
pub(crate) fn record(change: &Change, dim: usize) -> Vec<u8> {
    let mut p = Vec::new();
    match change {
        Change::Add {
            first,
            labels,
            scores,
            vectors,
        } => {
            let n = vectors.len() / dim.max(1);
            p.extend_from_slice(&[KIND_ADD, 0, 0, 0]);
            p.extend_from_slice(&first.to_le_bytes());
            let flags = u32::from(labels.is_some()) * FLAG_LABELS
                + u32::from(scores.is_some()) * FLAG_SCORES;
            p.extend_from_slice(&(n as u32).to_le_bytes());
            p.extend_from_slice(&flags.to_le_bytes());
            if let Some(l) = labels {
                p.extend_from_slice(bytemuck::cast_slice(l));
            }
            if let Some(s) = scores {
                p.extend_from_slice(bytemuck::cast_slice(s));
            }
            p.extend_from_slice(bytemuck::cast_slice(vectors));
        }
        Change::Delete { ids } => {
            p.extend_from_slice(&[KIND_DELETE, 0, 0, 0]);
            p.extend_from_slice(&(ids.len() as u32).to_le_bytes());
            p.extend_from_slice(&[0; 4]);
            p.extend_from_slice(bytemuck::cast_slice(ids));
        }
    }
    let mut out = Vec::with_capacity(8 + p.len());
    out.extend_from_slice(&(p.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&p).to_le_bytes());
    out.extend_from_slice(&p);
    out
}

/// What a log holds.
#[derive(Debug)]
pub struct Replay {
    pub changes: Vec<Change>,
    /// Bytes of the header and the whole records: where the next record goes.
    pub good_len: u64,
    /// Bytes after them: a record cut short by a crash (never acknowledged).
    pub torn: u64,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the log of a generation `generation` of `base_count` items of
/// dimension `dim`: its header must say so. Whole records are decoded; the
/// first short or damaged record ends the log (see [`Replay::torn`]).
pub(crate) fn read(
    path: &Path,
    bytes: &[u8],
    dim: usize,
    base_count: usize,
    generation: u64,
) -> Result<Replay> {
    let h: LogHeader = read_header(
        path,
        bytes,
        &LOG_MAGIC,
        "LKNSLOG",
        |h: &LogHeader| h.version,
        |h| h.header_crc,
    )?;
    if (h.dim, h.base_count, h.generation) != (dim as u64, base_count as u64, generation) {
        return Err(Error::corrupt(
            path,
            format!(
                "written for generation {} ({} items of dimension {}), the manifest says generation {generation} ({base_count} of dimension {dim})",
                h.generation, h.base_count, h.dim
            ),
        ));
    }
    let mut at = HEADER_SIZE;
    let mut changes = Vec::new();
    while let (Some(len), Some(crc)) = (u32_at(bytes, at), u32_at(bytes, at + 4)) {
        let len = len as usize;
        let Some(payload) = bytes
            .get(at + 8..at + 8 + len)
            .filter(|_| len <= MAX_RECORD)
        else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let change = decode(payload, dim).ok_or_else(|| {
            Error::corrupt(
                path,
                format!("record at byte {at} has a valid checksum but does not decode"),
            )
        })?;
        changes.push(change);
        at += 8 + len;
    }
    Ok(Replay {
        changes,
        good_len: at as u64,
        torn: (bytes.len() - at) as u64,
    })
}

fn decode(p: &[u8], dim: usize) -> Option<Change> {
    match *p.first()? {
        KIND_ADD => {
            let first = u64_at(p, 4)?;
            let n_logged = u32_at(p, 12)? as usize;
            let flags = u32_at(p, 16)?;
            let mut at = 20;
            let labels_on = flags & FLAG_LABELS != 0;
            let scores_on = flags & FLAG_SCORES != 0;
            let per_item = 4 * dim + 8 * usize::from(labels_on) + 4 * usize::from(scores_on);
            let n = (p.len() - at) / per_item.max(1);
            if n * per_item != p.len() - at || n == 0 || n != n_logged {
                return None;
            }
            let mut take = |bytes: usize| {
                let s = p.get(at..at + bytes);
                at += bytes;
                s
            };
            let labels = if labels_on {
                Some(bytemuck::pod_collect_to_vec::<u8, i64>(take(8 * n)?))
            } else {
                None
            };
            let scores = if scores_on {
                Some(bytemuck::pod_collect_to_vec::<u8, f32>(take(4 * n)?))
            } else {
                None
            };
            let vectors = bytemuck::pod_collect_to_vec::<u8, f32>(take(4 * n * dim)?);
            Some(Change::Add {
                first,
                labels,
                scores,
                vectors,
            })
        }
        KIND_DELETE => {
            let n = u32_at(p, 4)? as usize;
            let ids = p.get(12..)?;
            if ids.len() != 8 * n {
                return None;
            }
            Some(Change::Delete {
                ids: bytemuck::pod_collect_to_vec(ids),
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_torn_tail_is_cut() {
        let p = Path::new("log.1.wal");
        let mut b = header(2, 5, 1).to_vec();
        let add = Change::Add {
            first: 5,
            labels: Some(vec![3, 4]),
            scores: None,
            vectors: vec![1.0, 0.0, 0.0, 1.0],
        };
        let plain = Change::Add {
            first: 7,
            labels: None,
            scores: None,
            vectors: vec![0.5, 0.5],
        };
        let del = Change::Delete { ids: vec![1, 6] };
        for c in [&add, &plain, &del] {
            b.extend(record(c, 2));
        }
        let whole = b.len() as u64;
        let r = read(p, &b, 2, 5, 1).unwrap();
        assert_eq!(r.changes, vec![add.clone(), plain, del.clone()]);
        assert_eq!((r.good_len, r.torn), (whole, 0));
        // Every cut inside the last record drops exactly that record.
        let last = record(&del, 2).len();
        for cut in 1..last {
            let r = read(p, &b[..b.len() - cut], 2, 5, 1).unwrap();
            assert_eq!(r.changes.len(), 2, "cut {cut}");
            assert_eq!(r.good_len, whole - last as u64);
        }
        // A flipped payload byte ends the log there.
        let mut bad = b.clone();
        bad[HEADER_SIZE + 12] ^= 0x40;
        assert_eq!(read(p, &bad, 2, 5, 1).unwrap().changes.len(), 0);
        // The wrong generation or dimension is refused.
        assert!(read(p, &b, 2, 5, 2).is_err());
        assert!(read(p, &b, 3, 5, 1).is_err());
    }
}
