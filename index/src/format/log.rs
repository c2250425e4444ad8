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
//! disk, so a crash can leave at most one partial record, at the end
//! ([`Replay::torn`]): the next writer cuts it off before appending.
//!
//! A damaged record anywhere else is not a crash's doing, and cutting the
//! log there would erase the acknowledged records after it. So the reader
//! tells the two apart and refuses the second ([`Error::DamagedLog`]): a
//! short or failing record is a torn tail only when no intact record
//! follows it (the bytes after it are scanned for one, at every offset:
//! the length field itself may be what was damaged) and, when its framing
//! is readable, the bytes after it are no more than that one record (one
//! append writes one record).

use std::path::Path;

use bytemuck::{Pod, Zeroable};

use super::{header_crc, read_header, HEADER_SIZE, VERSION};
use crate::error::{Error, Result};

/// Magic of the change log.
pub const LOG_MAGIC: [u8; 8] = *b"LKNSLOG\0";
/// Largest record payload the reader accepts (an add of ~330,000 vectors
/// of 784 floats), and so the largest the writer may append: a longer one
/// would read as a torn tail and be dropped, acknowledged. The writer folds
/// a change whose record would not fit ([`fits`]).
pub const MAX_RECORD: usize = 1 << 30;

/// [`MAX_RECORD`], or in tests the limit a test set (a record over the
/// real one takes a GiB to build).
fn max_record() -> usize {
    #[cfg(test)]
    if let Some(limit) = tests::MAX_RECORD_FOR_TEST.with(std::cell::Cell::get) {
        return limit;
    }
    MAX_RECORD
}

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

/// Payload bytes of an add of `n` items of dimension `dim`, with labels
/// and/or scores: what [`record`] writes. `None` past `usize`.
pub(crate) fn add_payload_len(n: usize, dim: usize, labels: bool, scores: bool) -> Option<usize> {
    let per_item = dim
        .checked_mul(4)?
        .checked_add(8 * usize::from(labels) + 4 * usize::from(scores))?;
    n.checked_mul(per_item)?.checked_add(20)
}

/// Payload bytes of a delete of `n` ids: what [`record`] writes.
pub(crate) fn delete_payload_len(n: usize) -> Option<usize> {
    n.checked_mul(8)?.checked_add(12)
}

/// Payload bytes of `change`'s record, computed from its counts (nothing
/// is encoded).
pub(crate) fn payload_len(change: &Change, dim: usize) -> Option<usize> {
    match change {
        Change::Add {
            labels,
            scores,
            vectors,
            ..
        } => add_payload_len(
            vectors.len() / dim.max(1),
            dim,
            labels.is_some(),
            scores.is_some(),
        ),
        Change::Delete { ids } => delete_payload_len(ids.len()),
    }
}

/// Whether a record whose payload is `len` bytes may be appended: the
/// reader accepts it. (Its counts are then below `u32::MAX` too: a payload
/// of at most [`MAX_RECORD`] holds fewer than 2^28 items or ids.)
pub(crate) fn fits(len: Option<usize>) -> bool {
    len.is_some_and(|l| l <= max_record())
}

/// The framed record of `change` (length, CRC32, payload). The caller
/// checks first that it [`fits`].
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
    debug_assert_eq!(Some(p.len()), payload_len(change, dim));
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
/// dimension `dim`: its header must say so. Whole records are decoded; a
/// short or damaged last record is a torn tail ([`Replay::torn`]); a
/// damaged record with more after it is [`Error::DamagedLog`].
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
    while at < bytes.len() {
        let Some(change) = intact(bytes, at, dim) else {
            check_torn(path, bytes, at, dim, changes.len())?;
            break;
        };
        let change = change.ok_or_else(|| {
            Error::corrupt(
                path,
                format!("record at byte {at} has a valid checksum but does not decode"),
            )
        })?;
        changes.push(change);
        at = next_record(bytes, at);
    }
    Ok(Replay {
        changes,
        good_len: at as u64,
        torn: (bytes.len() - at) as u64,
    })
}

/// Where the record after the one at `at` starts (its length read as is).
fn next_record(bytes: &[u8], at: usize) -> usize {
    at + 8 + u32_at(bytes, at).unwrap_or(0) as usize
}

/// The record at `at` when it is whole and its CRC matches: `Some(None)`
/// when its payload then does not decode (a writer's bug, not damage).
/// An empty payload is never intact: zeroed blocks (what a lost write can
/// read as) have length 0 and CRC 0, and the CRC32 of nothing is 0.
fn intact(bytes: &[u8], at: usize, dim: usize) -> Option<Option<Change>> {
    let len = u32_at(bytes, at)? as usize;
    let crc = u32_at(bytes, at + 4)?;
    let payload = bytes
        .get(at + 8..at + 8 + len)
        .filter(|_| (1..=max_record()).contains(&len))?;
    (crc32fast::hash(payload) == crc).then(|| decode(payload, dim))
}

/// Whether the bytes at `at` start the framing of a record this log's
/// writer could have appended: its length agrees with the kind and counts
/// in its payload's first bytes (whether all of it is in `bytes` or not).
/// `None` when too few bytes are left to tell.
fn framed(bytes: &[u8], at: usize, dim: usize) -> Option<bool> {
    let len = u32_at(bytes, at)? as usize;
    let p = at + 8;
    let kind = u32_at(bytes, p)?;
    Some(
        match kind {
            k if k == u32::from(KIND_ADD) => {
                let (n, flags) = (u32_at(bytes, p + 12)? as usize, u32_at(bytes, p + 16)?);
                let (labels, scores) = (flags & FLAG_LABELS != 0, flags & FLAG_SCORES != 0);
                n > 0
                    && flags & !(FLAG_LABELS | FLAG_SCORES) == 0
                    && add_payload_len(n, dim, labels, scores) == Some(len)
            }
            k if k == u32::from(KIND_DELETE) => {
                let n = u32_at(bytes, p + 4)? as usize;
                n > 0 && u32_at(bytes, p + 8)? == 0 && delete_payload_len(n) == Some(len)
            }
            _ => false,
        } && len <= max_record(),
    )
}

/// Called when the record at `at` is short or fails its CRC: returns `Ok`
/// when that is what a crash mid-append leaves (a prefix of one last
/// record), else [`Error::DamagedLog`]. `before`: the whole records
/// before it.
fn check_torn(path: &Path, bytes: &[u8], at: usize, dim: usize, before: usize) -> Result<()> {
    let damaged = |reason: String| Error::DamagedLog {
        path: path.to_path_buf(),
        offset: at as u64,
        before,
        reason,
    };
    // An intact record further on (tried at every byte: the damage may be
    // in a length field, so the framing cannot be followed). Only framed
    // candidates have their CRC computed, which keeps this linear in
    // practice; a false match needs a framing and a CRC32 to agree by
    // chance.
    if let Some(next) = (at + 1..bytes.len().saturating_sub(8))
        .find(|&p| framed(bytes, p, dim) == Some(true) && intact(bytes, p, dim).is_some())
    {
        return Err(damaged(format!(
            "the record there is short or fails its checksum, but a whole record with a valid checksum starts at byte {next} ({} bytes before the end of the file)",
            bytes.len() - next
        )));
    }
    // One append writes one record: when this one's framing is readable
    // and it is whole, nothing can follow it.
    if framed(bytes, at, dim) == Some(true) {
        let end = next_record(bytes, at);
        if end < bytes.len() {
            return Err(damaged(format!(
                "the record there fails its checksum and {} bytes follow it, more than an unfinished append leaves",
                bytes.len() - end
            )));
        }
    }
    Ok(())
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
pub(crate) mod tests {
    use super::*;

    thread_local! {
        /// The record limit of this thread's reader and writer, when set
        /// (see `max_record`).
        pub(crate) static MAX_RECORD_FOR_TEST: std::cell::Cell<Option<usize>> =
            const { std::cell::Cell::new(None) };
    }

    /// The limit is reached by a delete of 134 million ids, or an add of
    /// fewer than `FOLD_AT` items of a dimension near a million: counted,
    /// not built (that would take the GiB).
    #[test]
    fn the_record_size_is_known_before_the_record_is_built() {
        for c in [
            Change::Delete { ids: vec![4, 9] },
            Change::Add {
                first: 5,
                labels: Some(vec![1, 2]),
                scores: Some(vec![0.5, f32::NAN]),
                vectors: vec![0.0; 6],
            },
        ] {
            assert_eq!(payload_len(&c, 3), Some(record(&c, 3).len() - 8));
        }
        let most_ids = (MAX_RECORD - 12) / 8;
        assert!(fits(delete_payload_len(most_ids)));
        assert!(!fits(delete_payload_len(most_ids + 1)));
        assert!(fits(add_payload_len(255, 1000, true, true)));
        assert!(!fits(add_payload_len(255, 1_100_000, false, false)));
        assert!(!fits(add_payload_len(usize::MAX / 2, 8, true, false)));
        assert!((MAX_RECORD - 12) / 8 < u32::MAX as usize);
    }

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
        // A flipped payload byte in the last record: what a crash can
        // leave, cut like a torn tail.
        let mut bad = b.clone();
        let n = bad.len();
        bad[n - 3] ^= 0x40;
        let r = read(p, &bad, 2, 5, 1).unwrap();
        assert_eq!((r.changes.len(), r.torn), (2, last as u64));
        // The wrong generation or dimension is refused.
        assert!(read(p, &b, 2, 5, 2).is_err());
        assert!(read(p, &b, 3, 5, 1).is_err());
    }

    /// Four adds of 2 items and a delete, as `likeness add` × 4 and
    /// `likeness delete` write them; returns the bytes and where each
    /// record starts.
    fn five_records() -> (Vec<u8>, Vec<usize>) {
        let mut b = header(2, 5, 1).to_vec();
        let mut starts = Vec::new();
        for k in 0..4u64 {
            starts.push(b.len());
            b.extend(record(
                &Change::Add {
                    first: 5 + 2 * k,
                    labels: Some(vec![1, 2]),
                    scores: None,
                    vectors: vec![0.6, 0.8, 1.0, 0.0],
                },
                2,
            ));
        }
        starts.push(b.len());
        b.extend(record(&Change::Delete { ids: vec![6] }, 2));
        (b, starts)
    }

    fn damaged_at(e: Error) -> (u64, usize, String) {
        let text = e.to_string();
        match e {
            Error::DamagedLog { offset, before, .. } => (offset, before, text),
            e => panic!("expected DamagedLog, got {e}"),
        }
    }

    /// The reviewer's repro: bytes overwritten in the middle of the second
    /// record used to end the log there (verify said ok, later items
    /// vanished, and the next writer cut them off for good).
    #[test]
    fn damage_before_intact_records_is_an_error_not_a_torn_tail() {
        let p = Path::new("log.1.wal");
        let (b, starts) = five_records();
        for (what, at) in [
            ("payload", starts[1] + 20),
            ("crc", starts[1] + 5),
            // A length field: the framing cannot be followed past it.
            ("length", starts[1] + 1),
        ] {
            let mut bad = b.clone();
            bad[at..at + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
            let (offset, before, text) = damaged_at(read(p, &bad, 2, 5, 1).unwrap_err());
            assert_eq!((offset, before), (starts[1] as u64, 1), "{what}");
            assert!(text.contains("log.1.wal"), "{text}");
            assert!(text.contains(&format!("byte {}", starts[2])), "{text}");
            assert!(text.contains("backup"), "{text}");
        }
        // The last record damaged, with the rest of an append after it:
        // more than one append leaves.
        let mut bad = b.clone();
        bad[starts[4] + 22] ^= 1;
        bad.extend(&record(&Change::Delete { ids: vec![7] }, 2)[..9]);
        let (offset, before, _) = damaged_at(read(p, &bad, 2, 5, 1).unwrap_err());
        assert_eq!((offset, before), (starts[4] as u64, 4));
        // Zeroed blocks in the middle (a lost write): the records after
        // them are still found.
        let mut bad = b.clone();
        bad[starts[2]..starts[3]].fill(0);
        let (offset, _, _) = damaged_at(read(p, &bad, 2, 5, 1).unwrap_err());
        assert_eq!(offset, starts[2] as u64);
    }

    /// What a crash mid-append can leave after the last whole record:
    /// a prefix of one record, or its length in zeroed blocks.
    #[test]
    fn a_torn_final_append_is_still_cut() {
        let p = Path::new("log.1.wal");
        let (b, _) = five_records();
        let next = record(&Change::Delete { ids: vec![8, 9] }, 2);
        for cut in 0..next.len() {
            let mut t = b.clone();
            t.extend(&next[..cut]);
            let r = read(p, &t, 2, 5, 1).unwrap();
            assert_eq!(
                (r.changes.len(), r.good_len, r.torn),
                (5, b.len() as u64, cut as u64)
            );
        }
        let mut t = b.clone();
        t.extend(vec![0; next.len()]);
        assert_eq!(read(p, &t, 2, 5, 1).unwrap().torn, next.len() as u64);
    }
}
