//! The binary files of an index directory and what they share.
//!
//! Each file has one module that owns it whole (layout, reading, checking,
//! writing): [`graph`] (`graph.bin`), [`meta`] (`meta.bin`),
//! [`crate::quant`] (`vectors.f16`/`vectors.i8`), [`crate::postings`]
//! (`postings.bin`), [`deleted`] (`deleted.bin`) and [`log`] (the change
//! log, `log.<g>.wal`); `vectors.npy` is plain NumPy ([`crate::npy`]). An
//! index written to since its build names its files by generation
//! (`graph.3.bin`): `manifest.json` says which ([`crate::writer`]). This
//! module holds what they share: the 128-byte header convention, section
//! alignment and the bounds-checked views.
//!
//! All integers are little-endian; every section starts at a multiple of
//! [`SECTION_ALIGN`] bytes, so once the file is mapped (page-aligned) the
//! sections are viewed as `&[u32]`/`&[u64]`/`&[i64]` with
//! `bytemuck::try_cast_slice`, which checks length and alignment. No
//! `transmute`, no unchecked pointer reads.

use std::path::Path;

use bytemuck::Pod;

use crate::error::{Error, Result};

pub mod deleted;
pub mod graph;
pub mod log;
pub mod meta;

pub use graph::{GraphHeader, LayerEntry, GRAPH_MAGIC, MAX_LEVELS};
pub use meta::{MetaHeader, FLAG_LABELS, FLAG_PAIRINGS, FLAG_SCORES, META_MAGIC};

const _: () = assert!(
    cfg!(target_endian = "little"),
    "likeness-index maps little-endian files in place and needs a little-endian CPU"
);

/// Alignment of every section.
pub const SECTION_ALIGN: usize = 64;
/// Oldest `graph.bin`/`meta.bin` version this build reads.
pub const MIN_VERSION: u32 = 1;
/// Version this build writes (and the newest it reads). 2: `meta.bin`
/// gained scores and pairings (subject, side).
pub const VERSION: u32 = 2;

/// Size of every file's fixed header (its CRC32 in the last 4 bytes).
pub const HEADER_SIZE: usize = 128;

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

/// Writes zeros from `*pos` up to `target` (the padding before an aligned
/// section).
pub(crate) fn pad_to(
    w: &mut dyn std::io::Write,
    pos: &mut u64,
    target: u64,
) -> std::io::Result<()> {
    const ZEROS: [u8; 64] = [0; 64];
    while *pos < target {
        let k = ((target - *pos) as usize).min(ZEROS.len());
        w.write_all(&ZEROS[..k])?;
        *pos += k as u64;
    }
    Ok(())
}
