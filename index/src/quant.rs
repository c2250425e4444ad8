//! Compact vector stores: the graph is searched on half-precision (`f16`) or
//! 8-bit (`i8`) copies of the vectors, and the best candidates are re-scored
//! with the float32 vectors of `vectors.npy`, so returned distances are exact.
//!
//! Why: the vectors are most of an index's memory (1 B × 64 float32 is
//! 256 GB). Every serious engine searches compressed vectors and re-ranks
//! with the originals (faiss SQ8, usearch f16/i8, Qdrant's scalar
//! quantization). The compact file is the hot set; `vectors.npy` is read only
//! for the `rerank` candidates of each query.
//!
//! # `i8`: per-dimension affine scalar quantization
//!
//! Dimension `d` keeps `offset[d]` and `scale[d]` fitted on the data: the
//! central `quantile` (default 0.99, Qdrant's choice) of its values is mapped
//! onto the codes 0..=255, values outside are clipped. A fold that rewrites
//! `vectors.i8` (an index that grew, or compaction) fits it again over the
//! live items ([`Quantizer::fit_rows`]), so added vectors outside the
//! build's range are not clipped. A code `c` decodes to
//! `offset + scale · c`, so inside the fitted range the error is at most half
//! a step (`scale / 2`).
//!
//! Distances are an integer inner product: with `w = q ∘ scale`,
//! `<q, x̂> = <q, offset> + <w, c>`; `w` is rounded per query to 16-bit
//! integers (at most [`max_weight`] in magnitude, so the 32-bit sum cannot
//! overflow), and `Σ w_d c_d` runs on `vpdpwssd` (AVX-512 VNNI), `vpmaddwd`
//! (AVX2) or a scalar loop, all of which give the same integer. Squared L2 is
//! `|q|² − 2 <q, x̂> + |x̂|²` with `|x̂|²` stored per item.
//!
//! # `f16`
//!
//! IEEE half precision (`half::f16`), converted with F16C (`vcvtph2ps`) on
//! AVX2 CPUs, by `half` elsewhere.
//!
//! # File `vectors.f16` / `vectors.i8` (version 1)
//!
//! ```text
//! 0     QuantHeader (128 bytes, CRC32 of bytes 0..124 in its last 4 bytes)
//! ...   codes  count × stride elements (u16 = f16 bits, or u8), 64-byte aligned;
//!       rows padded with zeros to `stride` (a multiple of 32 elements)
//! ...   norms  f32 × count (i8 only: |x̂|² of each decoded row), 64-byte aligned
//! ```
//!
//! The quantizer's parameters are recorded in `manifest.json`
//! (`quantizer`), with the store (`store`) and the file's size and CRC32.

use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

use bytemuck::{Pod, Zeroable};
use half::f16;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::distance::Metric;
use crate::error::{Error, Result};
use crate::format::{align_up, header_crc, read_header, section, HEADER_SIZE};

/// Magic of the compact vector file.
pub const QUANT_MAGIC: [u8; 8] = *b"LKNSQVEC";
/// Version of the compact vector file this build writes and reads.
pub const QUANT_VERSION: u32 = 1;
/// Default central fraction of each dimension's values mapped onto the i8
/// codes (Qdrant's default); the rest are clipped.
pub const DEFAULT_QUANTILE: f32 = 0.99;
/// Rows of the compact file are padded to a multiple of this many elements,
/// so the SIMD kernels need no tail (32 = one AVX-512 step of 16-bit lanes).
pub const PAD: usize = 32;
/// Rows sampled to fit the quantizer (the quantiles of 100k values are
/// within 1e-5 of the full column's on our data; fitting stays O(sample)).
const FIT_SAMPLE: usize = 100_000;

/// How the vectors that the graph search reads are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Store {
    /// float32 in `vectors.npy` (no compact file, no re-ranking).
    #[default]
    F32,
    /// Half precision in `vectors.f16`, re-ranked with float32.
    F16,
    /// 8-bit per-dimension affine codes in `vectors.i8`, re-ranked with float32.
    I8,
}

/// The store names this build reads (the `store` field of the manifest).
pub const STORE_NAMES: &str = "f32, f16, i8";

impl Store {
    /// Name on the command line and in `manifest.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Store::F32 => "f32",
            Store::F16 => "f16",
            Store::I8 => "i8",
        }
    }

    /// Whether this is the default float32 store (not written to the
    /// manifest, so f32 manifests stay as they were).
    pub fn is_f32(&self) -> bool {
        *self == Store::F32
    }

    /// File name of the compact vectors (`None` for f32).
    pub fn file_name(self) -> Option<&'static str> {
        match self {
            Store::F32 => None,
            Store::F16 => Some("vectors.f16"),
            Store::I8 => Some("vectors.i8"),
        }
    }

    /// Code in the compact file's header.
    fn code(self) -> u32 {
        match self {
            Store::F32 => 0,
            Store::F16 => 1,
            Store::I8 => 2,
        }
    }

    /// Bytes per stored element.
    fn elem_size(self) -> usize {
        match self {
            Store::F32 => 4,
            Store::F16 => 2,
            Store::I8 => 1,
        }
    }
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Store {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(Store::F32),
            "f16" => Ok(Store::F16),
            "i8" => Ok(Store::I8),
            other => Err(Error::param(
                "store",
                other,
                format!("expected one of {STORE_NAMES}"),
            )),
        }
    }
}

/// Row length of the compact file in elements: `dim` rounded up to [`PAD`].
pub fn stride(dim: usize) -> usize {
    dim.div_ceil(PAD) * PAD
}

/// Per-dimension affine 8-bit quantizer (`x ≈ offset + scale · code`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quantizer {
    /// Central fraction of each dimension's values mapped onto the codes.
    pub quantile: f32,
    /// Value of code 0, per dimension.
    pub offset: Vec<f32>,
    /// Step between codes, per dimension (> 0).
    pub scale: Vec<f32>,
}

impl Quantizer {
    /// Fits the quantizer on `data` (rows of `dim`, already preprocessed):
    /// per dimension, the `(1 − quantile) / 2` and `(1 + quantile) / 2`
    /// quantiles of (a sample of) its values become codes 0 and 255.
    pub fn fit(data: &[f32], dim: usize, quantile: f32) -> Result<Self> {
        Self::fit_rows(data, dim, quantile, |_| true)
    }

    /// As [`Quantizer::fit`], over the rows `keep` accepts: a fold refits
    /// on a grown index's live items only (deleted rows, which compaction
    /// zeroes, would pull every range towards 0). With every row kept it
    /// samples the rows `fit` does, so a grown index without deletions
    /// gets the quantizer of a fresh build of the same vectors.
    pub fn fit_rows(
        data: &[f32],
        dim: usize,
        quantile: f32,
        keep: impl Fn(usize) -> bool,
    ) -> Result<Self> {
        if !(quantile > 0.0 && quantile <= 1.0) {
            return Err(Error::param("quantile", quantile, "must be in (0, 1]"));
        }
        crate::distance::check_shape(data.len(), dim)?;
        let n = data.len() / dim;
        let kept = (0..n).filter(|&r| keep(r)).count();
        if kept == 0 {
            return Err(Error::InvalidInput("no vectors to fit a quantizer".into()));
        }
        let step = kept.div_ceil(FIT_SAMPLE).max(1);
        let rows: Vec<usize> = (0..n).filter(|&r| keep(r)).step_by(step).collect();
        let lo_q = f64::from(1.0 - quantile) / 2.0;
        let hi_q = 1.0 - lo_q;
        let ranges: Vec<(f32, f32)> = (0..dim)
            .into_par_iter()
            .map(|d| {
                let mut col: Vec<f32> = rows.iter().map(|&r| data[r * dim + d]).collect();
                let last = col.len() - 1;
                let lo_i = ((lo_q * last as f64).floor() as usize).min(last);
                let hi_i = ((hi_q * last as f64).ceil() as usize).min(last);
                let (_, &mut lo, _) = col.select_nth_unstable_by(lo_i, f32::total_cmp);
                let (_, &mut hi, _) = col.select_nth_unstable_by(hi_i, f32::total_cmp);
                (lo, hi.max(lo))
            })
            .collect();
        let offset = ranges.iter().map(|r| r.0).collect();
        let scale = ranges
            .iter()
            .map(|&(lo, hi)| {
                let s = (hi - lo) / 255.0;
                // A constant dimension: any positive step keeps its value
                // exact (code 0); 1.0 keeps integers (pixels) exact too.
                if s > 0.0 && s.is_finite() {
                    s
                } else {
                    1.0
                }
            })
            .collect();
        Ok(Quantizer {
            quantile,
            offset,
            scale,
        })
    }

    /// Checks the parameters against `dim` (they come from a file).
    pub fn check(&self, dim: usize) -> std::result::Result<(), String> {
        if self.offset.len() != dim || self.scale.len() != dim {
            return Err(format!(
                "quantizer has {} offsets and {} scales for dimension {dim}",
                self.offset.len(),
                self.scale.len()
            ));
        }
        if let Some(d) = (0..dim).find(|&d| {
            !(self.offset[d].is_finite() && self.scale[d].is_finite() && self.scale[d] > 0.0)
        }) {
            return Err(format!(
                "quantizer dimension {d}: offset {} scale {} (need finite, scale > 0)",
                self.offset[d], self.scale[d]
            ));
        }
        Ok(())
    }

    /// Codes of one row (`out` may be longer than the row: padding stays).
    pub fn encode(&self, row: &[f32], out: &mut [u8]) {
        for (((o, &x), &off), &s) in out.iter_mut().zip(row).zip(&self.offset).zip(&self.scale) {
            *o = ((x - off) / s).round().clamp(0.0, 255.0) as u8;
        }
    }

    /// The values a row of codes stands for.
    pub fn decode(&self, codes: &[u8], out: &mut [f32]) {
        for (((o, &c), &off), &s) in out.iter_mut().zip(codes).zip(&self.offset).zip(&self.scale) {
            *o = off + s * f32::from(c);
        }
    }
}

/// Largest magnitude of a query's 16-bit weights for dimension `dim`: the
/// integer sum `Σ w_d c_d` (codes ≤ 255) must fit an i32.
pub fn max_weight(dim: usize) -> i32 {
    let cap = (i32::MAX as i64) / (255 * stride(dim).max(1) as i64);
    cap.clamp(1, i64::from(i16::MAX)) as i32
}

/// Fixed header of the compact vector file.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct QuantHeader {
    pub magic: [u8; 8],
    pub version: u32,
    /// 1 = f16, 2 = i8.
    pub store: u32,
    pub count: u64,
    pub dim: u32,
    /// Elements per row (`dim` rounded up to 32).
    pub stride: u32,
    pub codes_offset: u64,
    pub norms_offset: u64,
    pub reserved: [u32; 19],
    pub header_crc: u32,
}
const _: () = assert!(std::mem::size_of::<QuantHeader>() == HEADER_SIZE);

/// Writes the compact file of `data` (preprocessed rows of `dim`).
pub(crate) fn write_store(
    w: &mut dyn std::io::Write,
    store: Store,
    data: &[f32],
    dim: usize,
    quantizer: Option<&Quantizer>,
) -> std::io::Result<()> {
    let n = data.len() / dim.max(1);
    let st = stride(dim);
    let codes_offset = HEADER_SIZE as u64;
    let codes_len = (n * st * store.elem_size()) as u64;
    let norms_offset = if store == Store::I8 {
        align_up(codes_offset + codes_len)
    } else {
        0
    };
    let mut h = QuantHeader {
        magic: QUANT_MAGIC,
        version: QUANT_VERSION,
        store: store.code(),
        count: n as u64,
        dim: dim as u32,
        stride: st as u32,
        codes_offset,
        norms_offset,
        reserved: [0; 19],
        header_crc: 0,
    };
    h.header_crc = header_crc(bytemuck::cast_ref(&h));
    w.write_all(bytemuck::bytes_of(&h))?;
    match (store, quantizer) {
        (Store::F16, _) => {
            let mut row = vec![f16::ZERO; st];
            for v in data.chunks_exact(dim) {
                for (o, &x) in row.iter_mut().zip(v) {
                    *o = f16::from_f32(x);
                }
                w.write_all(bytemuck::cast_slice(&row))?;
            }
        }
        (Store::I8, Some(qz)) => {
            let mut row = vec![0u8; st];
            let mut dec = vec![0f32; dim];
            let mut norms = Vec::with_capacity(n);
            for v in data.chunks_exact(dim) {
                qz.encode(v, &mut row);
                w.write_all(&row)?;
                qz.decode(&row, &mut dec);
                norms.push(
                    dec.iter()
                        .map(|&x| f64::from(x) * f64::from(x))
                        .sum::<f64>() as f32,
                );
            }
            let mut pos = codes_offset + codes_len;
            while pos < norms_offset {
                w.write_all(&[0])?;
                pos += 1;
            }
            w.write_all(bytemuck::cast_slice(&norms))?;
        }
        _ => {
            return Err(std::io::Error::other(format!(
                "no compact file for store {store}"
            )))
        }
    }
    Ok(())
}

/// Checked view of a compact vector file (mapped bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Codes<'a> {
    F16 {
        rows: &'a [f16],
        stride: usize,
    },
    I8 {
        rows: &'a [u8],
        norms: &'a [f32],
        stride: usize,
    },
}

/// Reads and checks the header and sections of a compact file: the store
/// code (an unknown one is [`Error::UnsupportedStore`]), count, dimension,
/// stride, section bounds and alignment, file length.
pub(crate) fn check_store(
    path: &Path,
    bytes: &[u8],
    want: Store,
    count: usize,
    dim: usize,
) -> Result<QuantHeader> {
    let h: QuantHeader = read_header_v(path, bytes)?;
    let store = match h.store {
        1 => Store::F16,
        2 => Store::I8,
        other => {
            return Err(Error::UnsupportedStore {
                path: path.to_path_buf(),
                found: format!("code {other}"),
                known: STORE_NAMES,
            })
        }
    };
    let bad = |r: String| Error::corrupt(path, r);
    if store != want {
        return Err(bad(format!(
            "holds store {store} but manifest.json records {want}"
        )));
    }
    if h.count != count as u64 || h.dim as usize != dim || h.stride as usize != stride(dim) {
        return Err(bad(format!(
            "{} rows of dimension {} (stride {}) for an index of {count} × {dim}",
            h.count, h.dim, h.stride
        )));
    }
    let elems = (count as u64)
        .checked_mul(u64::from(h.stride))
        .ok_or_else(|| bad("size overflows".into()))?;
    let mut end = match store {
        Store::F16 => {
            section::<u16>(path, bytes, h.codes_offset, elems, "codes")?;
            h.codes_offset + 2 * elems
        }
        _ => {
            section::<u8>(path, bytes, h.codes_offset, elems, "codes")?;
            h.codes_offset + elems
        }
    };
    if store == Store::I8 {
        if h.norms_offset < end {
            return Err(bad("norms overlap the codes".into()));
        }
        section::<f32>(path, bytes, h.norms_offset, count as u64, "norms")?;
        end = h.norms_offset + 4 * count as u64;
    }
    if bytes.len() as u64 != end {
        return Err(bad(format!(
            "file is {} bytes but its sections end at {end}",
            bytes.len()
        )));
    }
    Ok(h)
}

fn read_header_v(path: &Path, bytes: &[u8]) -> Result<QuantHeader> {
    // The compact file has its own version, independent of graph.bin's.
    if bytes.len() >= 12 && bytes[..8] == QUANT_MAGIC[..] {
        let v = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if v != QUANT_VERSION {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: v,
                min: QUANT_VERSION,
                max: QUANT_VERSION,
            });
        }
    }
    read_header(
        path,
        bytes,
        &QUANT_MAGIC,
        "LKNSQVEC",
        |_: &QuantHeader| crate::format::MIN_VERSION,
        |h| h.header_crc,
    )
}

impl<'a> Codes<'a> {
    /// The view of a file already passed through [`check_store`].
    pub(crate) fn view(path: &Path, bytes: &'a [u8], h: &QuantHeader) -> Result<Self> {
        let st = h.stride as usize;
        let elems = h.count * u64::from(h.stride);
        Ok(match h.store {
            1 => Codes::F16 {
                rows: bytemuck::cast_slice(section::<u16>(
                    path,
                    bytes,
                    h.codes_offset,
                    elems,
                    "codes",
                )?),
                stride: st,
            },
            _ => Codes::I8 {
                rows: section::<u8>(path, bytes, h.codes_offset, elems, "codes")?,
                norms: section::<f32>(path, bytes, h.norms_offset, h.count, "norms")?,
                stride: st,
            },
        })
    }

    /// Bytes of one row.
    pub(crate) fn row_bytes(&self) -> usize {
        match self {
            Codes::F16 { stride, .. } => 2 * stride,
            Codes::I8 { stride, .. } => *stride,
        }
    }

    /// Hints the CPU to load the first `lines` cache lines of row `i`.
    #[inline]
    pub(crate) fn prefetch(&self, i: u32, lines: usize) {
        let rb = self.row_bytes();
        let start = (i as usize).saturating_mul(rb);
        let bytes: &[u8] = match self {
            Codes::F16 { rows, .. } => bytemuck::cast_slice(rows),
            Codes::I8 { rows, .. } => rows,
        };
        if let Some(row) = bytes.get(start..start.saturating_add(rb)) {
            for line in row.chunks(64).take(lines) {
                crate::distance::prefetch(line);
            }
        }
    }

    /// Approximate distance from the prepared query to row `i`; `None` if
    /// `i` is out of range.
    #[inline]
    pub(crate) fn distance(&self, q: &QueryCode, i: u32) -> Option<f32> {
        let k = qkernels();
        match *self {
            Codes::F16 { rows, stride } => {
                let s = (i as usize).checked_mul(stride)?;
                let row = rows.get(s..s.checked_add(stride)?)?;
                Some(match q.metric {
                    Metric::L2 => (k.l2_f16)(&q.f, row),
                    Metric::Cosine => 1.0 - (k.dot_f16)(&q.f, row),
                })
            }
            Codes::I8 {
                rows,
                norms,
                stride,
            } => {
                let s = (i as usize).checked_mul(stride)?;
                let row = rows.get(s..s.checked_add(stride)?)?;
                let dot = q.base + q.step * (k.dot_u8)(&q.w, row) as f32;
                Some(match q.metric {
                    Metric::L2 => q.norm2 - 2.0 * dot + *norms.get(i as usize)?,
                    Metric::Cosine => 1.0 - dot,
                })
            }
        }
    }

    /// Full check for `verify`: f16 rows and norms are finite.
    pub(crate) fn check_values(&self) -> std::result::Result<(), String> {
        match self {
            Codes::F16 { rows, stride } => match rows.iter().position(|x| !x.is_finite()) {
                Some(p) => Err(format!(
                    "row {}, column {} is not finite",
                    p / stride,
                    p % stride
                )),
                None => Ok(()),
            },
            Codes::I8 { norms, .. } => match norms.iter().position(|x| !x.is_finite()) {
                Some(p) => Err(format!("norm of row {p} is not finite")),
                None => Ok(()),
            },
        }
    }
}

/// A query prepared for a compact store (reused per thread).
#[derive(Debug, Default, Clone)]
pub(crate) struct QueryCode {
    metric: Metric,
    /// f16: the query, zero-padded to the stride.
    f: Vec<f32>,
    /// i8: the weights `q ∘ scale` rounded to integers, zero-padded.
    w: Vec<i16>,
    /// i8: value of one weight unit.
    step: f32,
    /// i8: `<q, offset>`.
    base: f32,
    /// `|q|²`.
    norm2: f32,
}

impl QueryCode {
    /// Prepares the (preprocessed) query `q` for `store`.
    pub(crate) fn prepare(
        &mut self,
        store: Store,
        metric: Metric,
        quantizer: Option<&Quantizer>,
        q: &[f32],
    ) {
        let st = stride(q.len());
        self.metric = metric;
        self.norm2 = q.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>() as f32;
        match (store, quantizer) {
            (Store::F16, _) => {
                self.f.clear();
                self.f.extend_from_slice(q);
                self.f.resize(st, 0.0);
            }
            (Store::I8, Some(qz)) => {
                let max = q
                    .iter()
                    .zip(&qz.scale)
                    .map(|(&x, &s)| (x * s).abs())
                    .fold(0.0f32, f32::max);
                let cap = max_weight(q.len()) as f32;
                self.step = if max > 0.0 { max / cap } else { 1.0 };
                let inv = 1.0 / self.step;
                self.w.clear();
                self.w.extend(
                    q.iter()
                        .zip(&qz.scale)
                        .map(|(&x, &s)| (x * s * inv).round().clamp(-cap, cap) as i16),
                );
                self.w.resize(st, 0);
                self.base = q
                    .iter()
                    .zip(&qz.offset)
                    .map(|(&x, &o)| f64::from(x) * f64::from(o))
                    .sum::<f64>() as f32;
            }
            _ => {}
        }
    }
}

/// The compact-store kernels chosen for this CPU.
pub(crate) struct QKernels {
    /// `Σ w_d c_d` over equal-length (multiple of 32) slices.
    pub dot_u8: fn(&[i16], &[u8]) -> i32,
    /// `Σ (q_d − x_d)²` over equal-length (multiple of 32) slices.
    pub l2_f16: fn(&[f32], &[f16]) -> f32,
    /// `Σ q_d x_d`.
    pub dot_f16: fn(&[f32], &[f16]) -> f32,
    /// Which implementation (`query` reports it).
    pub name: &'static str,
}

pub(crate) fn qkernels() -> &'static QKernels {
    static K: OnceLock<QKernels> = OnceLock::new();
    K.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c");
            if avx2
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vnni")
            {
                return QKernels {
                    dot_u8: simd::dot_u8_vnni,
                    l2_f16: simd::l2_f16_avx2,
                    dot_f16: simd::dot_f16_avx2,
                    name: "avx512-vnni (i8), avx2+f16c (f16)",
                };
            }
            if avx2 {
                return QKernels {
                    dot_u8: simd::dot_u8_avx2,
                    l2_f16: simd::l2_f16_avx2,
                    dot_f16: simd::dot_f16_avx2,
                    name: "avx2 (i8), avx2+f16c (f16)",
                };
            }
        }
        QKernels {
            dot_u8: dot_u8_scalar,
            l2_f16: l2_f16_scalar,
            dot_f16: dot_f16_scalar,
            name: "scalar",
        }
    })
}

/// Names the compact-store kernels this CPU runs.
pub fn kernel_name() -> &'static str {
    qkernels().name
}

/// Portable `Σ w_d c_d`.
pub fn dot_u8_scalar(w: &[i16], c: &[u8]) -> i32 {
    w.iter().zip(c).fold(0i32, |s, (&w, &c)| {
        s.wrapping_add(i32::from(w) * i32::from(c))
    })
}

/// Portable `Σ (q_d − x_d)²`.
pub fn l2_f16_scalar(q: &[f32], x: &[f16]) -> f32 {
    q.iter()
        .zip(x)
        .map(|(&a, &b)| {
            let d = a - b.to_f32();
            d * d
        })
        .sum()
}

/// Portable `Σ q_d x_d`.
pub fn dot_f16_scalar(q: &[f32], x: &[f16]) -> f32 {
    q.iter().zip(x).map(|(&a, &b)| a * b.to_f32()).sum()
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod simd {
    //! x86-64 kernels, installed by [`super::qkernels`] only after run-time
    //! detection of their features. Slices are whole multiples of 32
    //! elements (rows are padded); a shorter common length is cut to a
    //! multiple of 32 and its tail added by the scalar code.

    use std::arch::x86_64::*;

    use half::f16;

    fn split(n: usize) -> usize {
        n - n % 32
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn dot_u8_vnni_impl(w: &[i16], c: &[u8]) -> i32 {
        let n = split(w.len().min(c.len()));
        let mut acc0 = _mm512_setzero_si512();
        let mut acc1 = _mm512_setzero_si512();
        let mut i = 0;
        while i + 64 <= n {
            // SAFETY: i + 64 <= n <= both lengths; unaligned loads.
            unsafe {
                let c0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(c.as_ptr().add(i).cast()));
                let c1 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(c.as_ptr().add(i + 32).cast()));
                let w0 = _mm512_loadu_si512(w.as_ptr().add(i).cast());
                let w1 = _mm512_loadu_si512(w.as_ptr().add(i + 32).cast());
                acc0 = _mm512_dpwssd_epi32(acc0, c0, w0);
                acc1 = _mm512_dpwssd_epi32(acc1, c1, w1);
            }
            i += 64;
        }
        if i + 32 <= n {
            // SAFETY: as above with i + 32 <= n.
            unsafe {
                let c0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(c.as_ptr().add(i).cast()));
                let w0 = _mm512_loadu_si512(w.as_ptr().add(i).cast());
                acc0 = _mm512_dpwssd_epi32(acc0, c0, w0);
            }
            i += 32;
        }
        let s = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0, acc1));
        s.wrapping_add(super::dot_u8_scalar(&w[i..], &c[i..]))
    }

    #[target_feature(enable = "avx2")]
    unsafe fn dot_u8_avx2_impl(w: &[i16], c: &[u8]) -> i32 {
        let n = split(w.len().min(c.len()));
        let mut acc0 = _mm256_setzero_si256();
        let mut acc1 = _mm256_setzero_si256();
        let mut i = 0;
        while i + 32 <= n {
            // SAFETY: i + 32 <= n <= both lengths; unaligned loads.
            unsafe {
                let c0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(c.as_ptr().add(i).cast()));
                let c1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(c.as_ptr().add(i + 16).cast()));
                let w0 = _mm256_loadu_si256(w.as_ptr().add(i).cast());
                let w1 = _mm256_loadu_si256(w.as_ptr().add(i + 16).cast());
                acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(c0, w0));
                acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(c1, w1));
            }
            i += 32;
        }
        let s = _mm256_add_epi32(acc0, acc1);
        let q = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        let q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0b01_00_11_10));
        let q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0b10_11_00_01));
        _mm_cvtsi128_si32(q).wrapping_add(super::dot_u8_scalar(&w[i..], &c[i..]))
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn hsum(s: __m256) -> f32 {
        let q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        let q = _mm_add_ps(q, _mm_movehl_ps(q, q));
        let q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
        _mm_cvtss_f32(q)
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn f16_impl<const L2: bool>(q: &[f32], x: &[f16]) -> f32 {
        let n = split(q.len().min(x.len()));
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: i + 8j + 8 <= i + 32 <= n <= both lengths;
                // unaligned loads; f16 is two bytes.
                unsafe {
                    let xv = _mm256_cvtph_ps(_mm_loadu_si128(x.as_ptr().add(i + 8 * j).cast()));
                    let qv = _mm256_loadu_ps(q.as_ptr().add(i + 8 * j));
                    *a = if L2 {
                        let d = _mm256_sub_ps(qv, xv);
                        _mm256_fmadd_ps(d, d, *a)
                    } else {
                        _mm256_fmadd_ps(qv, xv, *a)
                    };
                }
            }
            i += 32;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let tail = if L2 {
            super::l2_f16_scalar(&q[i..], &x[i..])
        } else {
            super::dot_f16_scalar(&q[i..], &x[i..])
        };
        hsum(s) + tail
    }

    pub(crate) fn dot_u8_vnni(w: &[i16], c: &[u8]) -> i32 {
        // SAFETY: installed only after avx512f, avx512bw and avx512vnni were
        // detected on this CPU.
        unsafe { dot_u8_vnni_impl(w, c) }
    }

    pub(crate) fn dot_u8_avx2(w: &[i16], c: &[u8]) -> i32 {
        // SAFETY: installed only after avx2 was detected.
        unsafe { dot_u8_avx2_impl(w, c) }
    }

    pub(crate) fn l2_f16_avx2(q: &[f32], x: &[f16]) -> f32 {
        // SAFETY: installed only after avx2, fma and f16c were detected.
        unsafe { f16_impl::<true>(q, x) }
    }

    pub(crate) fn dot_f16_avx2(q: &[f32], x: &[f16]) -> f32 {
        // SAFETY: as for `l2_f16_avx2`.
        unsafe { f16_impl::<false>(q, x) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn round_trip_error_is_at_most_half_a_step_inside_the_range() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let dim = 37;
        let n = 3000;
        let data: Vec<f32> = (0..n * dim)
            .map(|i| rng.gen_range(-3.0..5.0) * (1.0 + (i % dim) as f32))
            .collect();
        for quantile in [1.0, 0.99, 0.9] {
            let qz = Quantizer::fit(&data, dim, quantile).unwrap();
            qz.check(dim).unwrap();
            let mut codes = vec![0u8; stride(dim)];
            let mut back = vec![0f32; dim];
            let mut clipped = 0;
            for row in data.chunks_exact(dim) {
                qz.encode(row, &mut codes);
                qz.decode(&codes, &mut back);
                for d in 0..dim {
                    let (lo, hi) = (qz.offset[d], qz.offset[d] + 255.0 * qz.scale[d]);
                    // The fitted range, less float rounding of its ends.
                    let eps = qz.scale[d] * 1e-3;
                    if row[d] < lo - eps || row[d] > hi + eps {
                        clipped += 1;
                        // Clipped values decode to the nearest end.
                        assert!(back[d] == lo || (back[d] - hi).abs() <= 1e-3 * hi.abs().max(1.0));
                        continue;
                    }
                    let err = (row[d] - back[d]).abs();
                    assert!(
                        err <= qz.scale[d] * 0.5 * (1.0 + 1e-4) + 1e-6,
                        "q={quantile} dim {d}: {} -> {} (step {})",
                        row[d],
                        back[d],
                        qz.scale[d]
                    );
                }
            }
            let frac = clipped as f64 / (n * dim) as f64;
            assert!(
                frac <= f64::from(1.0 - quantile) + 0.01,
                "{frac} clipped at {quantile}"
            );
            if quantile == 1.0 {
                assert_eq!(clipped, 0);
            }
        }
    }

    #[test]
    fn constant_dimensions_and_bad_parameters() {
        let data = [2.0f32, 7.0, 2.0, 8.0, 2.0, 9.0];
        let qz = Quantizer::fit(&data, 2, 0.99).unwrap();
        let mut c = [0u8; 32];
        let mut back = [0f32; 2];
        qz.encode(&data[..2], &mut c);
        qz.decode(&c, &mut back);
        assert_eq!(back[0], 2.0);
        assert!(Quantizer::fit(&data, 2, 0.0).is_err());
        assert!(Quantizer::fit(&data, 2, 1.5).is_err());
        let mut bad = qz.clone();
        bad.scale[1] = 0.0;
        assert!(bad.check(2).is_err());
        assert!(qz.check(3).is_err());
    }

    #[test]
    fn every_kernel_this_cpu_has_agrees_with_the_scalar_one() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for dim in [1usize, 31, 32, 33, 64, 100, 784, 2000] {
            let st = stride(dim);
            let cap = max_weight(dim);
            // Worst case for overflow: every weight at the cap, every code 255.
            let w_max = vec![cap as i16; st];
            let c_max = vec![255u8; st];
            let w: Vec<i16> = (0..st).map(|_| rng.gen_range(-cap..=cap) as i16).collect();
            let c: Vec<u8> = (0..st).map(|_| rng.gen()).collect();
            let q: Vec<f32> = (0..st).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let x: Vec<f16> = (0..st)
                .map(|_| f16::from_f32(rng.gen_range(-1.0..1.0)))
                .collect();
            let want = dot_u8_scalar(&w, &c);
            let want_max = i64::from(cap) * 255 * st as i64;
            assert_eq!(
                i64::from(dot_u8_scalar(&w_max, &c_max)),
                want_max,
                "no overflow"
            );
            let want_l2 = l2_f16_scalar(&q, &x);
            let want_dot = dot_f16_scalar(&q, &x);
            let k = qkernels();
            assert_eq!((k.dot_u8)(&w, &c), want, "{} dim {dim}", k.name);
            assert!(((k.l2_f16)(&q, &x) - want_l2).abs() <= 1e-3 * want_l2.max(1.0));
            assert!(((k.dot_f16)(&q, &x) - want_dot).abs() <= 1e-3 * want_dot.abs().max(1.0));
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx2") {
                    assert_eq!(simd::dot_u8_avx2(&w, &c), want, "avx2 dim {dim}");
                    assert_eq!(i64::from(simd::dot_u8_avx2(&w_max, &c_max)), want_max);
                }
                if std::arch::is_x86_feature_detected!("avx512vnni")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                {
                    assert_eq!(simd::dot_u8_vnni(&w, &c), want, "vnni dim {dim}");
                    assert_eq!(i64::from(simd::dot_u8_vnni(&w_max, &c_max)), want_max);
                }
            }
        }
    }

    #[test]
    fn store_names_round_trip() {
        for s in [Store::F32, Store::F16, Store::I8] {
            assert_eq!(s.as_str().parse::<Store>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!("i4".parse::<Store>().is_err());
    }
}
