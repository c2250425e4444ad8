//! NumPy `.npy` files: read float matrices and integer label vectors, write
//! f32 and i64 arrays that `numpy.load(path, mmap_mode="r")` maps directly.
//!
//! Format (NumPy NEP 1, "A simple file format for NumPy arrays"): the magic
//! `\x93NUMPY`, a major and minor version byte, a little-endian header length
//! (u16 in version 1, u32 in versions 2 and 3), then an ASCII (version 3:
//! UTF-8) Python dict literal with `descr`, `fortran_order` and `shape`,
//! padded with spaces and ended by `\n`. We write the padding so the data
//! starts at a multiple of [`DATA_ALIGN`] bytes — what NumPy itself does, and
//! what lets a mapped `vectors.npy` be viewed as `&[f32]` in place.
//!
//! Reading accepts little- and big-endian `f2`/`f4`/`f8` for vectors and any
//! integer type for labels, C or Fortran order. The data length is checked
//! against the file size before anything is allocated.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// The `.npy` magic string.
pub const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Alignment of the data section in files we write.
pub const DATA_ALIGN: usize = 64;
/// Longest header we accept (NumPy caps its own at 10 KiB by default).
const MAX_HEADER: usize = 1 << 20;

/// A row-major matrix of f32.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns (the vector dimension).
    pub dim: usize,
    /// `rows × dim` values, row-major.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

/// Element kinds of a `descr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// IEEE float.
    Float,
    /// Signed integer.
    Int,
    /// Unsigned integer.
    Uint,
}

/// A parsed simple `descr` such as `<f4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DType {
    /// Float, signed or unsigned.
    pub kind: Kind,
    /// Bytes per element.
    pub size: usize,
    /// Big-endian data.
    pub big_endian: bool,
}

impl DType {
    fn parse(descr: &str) -> std::result::Result<Self, String> {
        let b = descr.as_bytes();
        if b.len() < 3 {
            return Err(format!("dtype {descr:?} is not a simple numeric type"));
        }
        let big_endian = match b[0] {
            b'<' | b'|' => false,
            b'>' => true,
            b'=' => cfg!(target_endian = "big"),
            _ => return Err(format!("dtype {descr:?} has no byte-order mark")),
        };
        let kind = match b[1] {
            b'f' => Kind::Float,
            b'i' => Kind::Int,
            b'u' => Kind::Uint,
            _ => return Err(format!("dtype {descr:?} is not a float or integer type")),
        };
        let size: usize = descr[2..]
            .parse()
            .map_err(|_| format!("dtype {descr:?} has no valid size"))?;
        let ok = match kind {
            Kind::Float => matches!(size, 2 | 4 | 8),
            Kind::Int | Kind::Uint => matches!(size, 1 | 2 | 4 | 8),
        };
        if !ok {
            return Err(format!("dtype {descr:?} has an unsupported size"));
        }
        Ok(DType {
            kind,
            size,
            big_endian,
        })
    }
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Element type.
    pub dtype: DType,
    /// Column-major data.
    pub fortran_order: bool,
    /// Array shape.
    pub shape: Vec<usize>,
    /// Offset of the first data byte.
    pub data_offset: usize,
}

impl Header {
    /// Number of elements (product of the shape), `None` on overflow.
    pub fn len(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Size of the data section in bytes, `None` on overflow.
    pub fn data_len(&self) -> Option<usize> {
        self.len()?.checked_mul(self.dtype.size)
    }
}

/// Parses the header at the start of `bytes` (which may hold more than the
/// header). Errors are plain reasons; callers add the path.
pub fn parse_header(bytes: &[u8]) -> std::result::Result<Header, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("missing the \\x93NUMPY magic".into());
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("header is truncated".into());
            }
            let l = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (l as usize, 12)
        }
        v => {
            return Err(format!(
                "format version {v} is not supported (1, 2 or 3 are)"
            ))
        }
    };
    if len > MAX_HEADER {
        return Err(format!("header length {len} is implausibly large"));
    }
    let end = start + len;
    let text = bytes.get(start..end).ok_or("header is truncated")?;
    let text = std::str::from_utf8(text).map_err(|_| "header is not text")?;
    let mut p = DictParser {
        s: text.as_bytes(),
        i: 0,
    };
    let fields = p.dict()?;
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (k, v) in fields {
        match (k.as_str(), v) {
            ("descr", PyVal::Str(s)) => descr = Some(s),
            ("fortran_order", PyVal::Bool(b)) => fortran = Some(b),
            ("shape", PyVal::Tuple(t)) => shape = Some(t),
            ("descr", _) => return Err("structured dtypes are not supported".into()),
            (k, _) => return Err(format!("unexpected header entry {k:?}")),
        }
    }
    let descr = descr.ok_or("header has no 'descr'")?;
    Ok(Header {
        dtype: DType::parse(&descr)?,
        fortran_order: fortran.ok_or("header has no 'fortran_order'")?,
        shape: shape.ok_or("header has no 'shape'")?,
        data_offset: end,
    })
}

enum PyVal {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

struct DictParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl DictParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!(
                "malformed header: expected '{}' at byte {}",
                c as char, self.i
            ))
        }
    }
    fn string(&mut self) -> std::result::Result<String, String> {
        self.ws();
        let q = *self
            .s
            .get(self.i)
            .ok_or("malformed header: unexpected end")?;
        if q != b'\'' && q != b'"' {
            return Err(format!(
                "malformed header: expected a string at byte {}",
                self.i
            ));
        }
        let start = self.i + 1;
        let len = self.s[start..]
            .iter()
            .position(|&c| c == q)
            .ok_or("malformed header: unterminated string")?;
        self.i = start + len + 1;
        Ok(String::from_utf8_lossy(&self.s[start..start + len]).into_owned())
    }
    fn value(&mut self) -> std::result::Result<PyVal, String> {
        self.ws();
        let rest = &self.s[self.i..];
        if rest.starts_with(b"True") {
            self.i += 4;
            return Ok(PyVal::Bool(true));
        }
        if rest.starts_with(b"False") {
            self.i += 5;
            return Ok(PyVal::Bool(false));
        }
        if self.eat(b'(') {
            let mut dims = Vec::new();
            loop {
                if self.eat(b')') {
                    return Ok(PyVal::Tuple(dims));
                }
                self.ws();
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                let n = std::str::from_utf8(&self.s[start..self.i])
                    .ok()
                    .and_then(|t| t.parse::<usize>().ok())
                    .ok_or_else(|| format!("malformed header: bad shape entry at byte {start}"))?;
                dims.push(n);
                if !self.eat(b',') {
                    self.expect(b')')?;
                    return Ok(PyVal::Tuple(dims));
                }
            }
        }
        if matches!(rest.first(), Some(b'\'' | b'"')) {
            return Ok(PyVal::Str(self.string()?));
        }
        Err(format!(
            "malformed header: unsupported value at byte {}",
            self.i
        ))
    }
    fn dict(&mut self) -> std::result::Result<Vec<(String, PyVal)>, String> {
        self.expect(b'{')?;
        let mut out = Vec::new();
        loop {
            if self.eat(b'}') {
                return Ok(out);
            }
            let k = self.string()?;
            self.expect(b':')?;
            let v = self.value()?;
            out.push((k, v));
            if !self.eat(b',') {
                self.expect(b'}')?;
                return Ok(out);
            }
        }
    }
}

fn npy_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Opens `path`, parses its header and checks the data size against the
/// file size. Returns the header and a reader positioned at the data.
fn open(path: &Path) -> Result<(Header, BufReader<File>)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut pre = [0u8; 12];
    let got = read_up_to(&mut r, &mut pre).map_err(|e| Error::io(path, e))?;
    let pre = &pre[..got];
    if got < 10 || &pre[..6] != MAGIC {
        return Err(npy_err(
            path,
            "missing the \\x93NUMPY magic; is this a .npy file?",
        ));
    }
    let (hlen, start) = match pre[6] {
        1 => (usize::from(u16::from_le_bytes([pre[8], pre[9]])), 10),
        _ if got >= 12 => (
            u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as usize,
            12,
        ),
        _ => return Err(npy_err(path, "header is truncated")),
    };
    if hlen > MAX_HEADER {
        return Err(npy_err(
            path,
            format!("header length {hlen} is implausibly large"),
        ));
    }
    let mut head = pre.to_vec();
    head.resize(start + hlen, 0);
    if got < head.len() {
        r.read_exact(&mut head[got..])
            .map_err(|_| npy_err(path, "header is truncated"))?;
    } else {
        // The 12-byte prefix overran a tiny version-1 header; rewind.
        return open_slow(path);
    }
    let h = parse_header(&head).map_err(|e| npy_err(path, e))?;
    check_size(path, &h, file_len)?;
    Ok((h, r))
}

/// Fallback for headers shorter than 2 bytes (not produced by NumPy).
fn open_slow(path: &Path) -> Result<(Header, BufReader<File>)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let h = parse_header(&bytes).map_err(|e| npy_err(path, e))?;
    check_size(path, &h, bytes.len() as u64)?;
    let mut r = BufReader::new(File::open(path).map_err(|e| Error::io(path, e))?);
    std::io::copy(
        &mut (&mut r).take(h.data_offset as u64),
        &mut std::io::sink(),
    )
    .map_err(|e| Error::io(path, e))?;
    Ok((h, r))
}

fn check_size(path: &Path, h: &Header, file_len: u64) -> Result<()> {
    let data = h
        .data_len()
        .ok_or_else(|| npy_err(path, format!("shape {:?} overflows", h.shape)))?;
    let want = (h.data_offset as u64).saturating_add(data as u64);
    if file_len < want {
        return Err(npy_err(
            path,
            format!(
                "truncated: shape {:?} needs {want} bytes but the file has {file_len}",
                h.shape
            ),
        ));
    }
    if file_len > want {
        return Err(npy_err(
            path,
            format!(
                "{} bytes of trailing data after the array of shape {:?}",
                file_len - want,
                h.shape
            ),
        ));
    }
    Ok(())
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            m => n += m,
        }
    }
    Ok(n)
}

/// Streams `count` elements of `dtype` from `r`, converting each with `f`.
fn read_elements<T>(
    r: &mut impl Read,
    dtype: DType,
    count: usize,
    mut f: impl FnMut(&[u8]) -> std::result::Result<T, String>,
) -> std::result::Result<Vec<T>, String> {
    let mut out = Vec::with_capacity(count);
    let mut buf = vec![0u8; (1 << 16) * dtype.size];
    let mut tmp = [0u8; 8];
    let mut left = count;
    while left > 0 {
        let n = left.min(1 << 16);
        let bytes = &mut buf[..n * dtype.size];
        r.read_exact(bytes)
            .map_err(|e| format!("reading data: {e}"))?;
        for c in bytes.chunks_exact(dtype.size) {
            let e = &mut tmp[..dtype.size];
            e.copy_from_slice(c);
            if dtype.big_endian {
                e.reverse();
            }
            out.push(f(e)?);
        }
        left -= n;
    }
    Ok(out)
}

fn float_of(dtype: DType) -> impl Fn(&[u8]) -> std::result::Result<f32, String> {
    move |b: &[u8]| {
        Ok(match (dtype.kind, dtype.size) {
            (Kind::Float, 2) => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            (Kind::Float, 4) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            (Kind::Float, 8) => {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }
            _ => return Err("not a float type".into()),
        })
    }
}

fn int_of(dtype: DType) -> impl Fn(&[u8]) -> std::result::Result<i64, String> {
    move |b: &[u8]| {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        match dtype.kind {
            Kind::Uint => {
                let v = u64::from_le_bytes(w);
                i64::try_from(v).map_err(|_| format!("label {v} does not fit in int64"))
            }
            Kind::Int => {
                // Sign-extend from the element width.
                let shift = 64 - 8 * b.len() as u32;
                Ok((i64::from_le_bytes(w) << shift) >> shift)
            }
            Kind::Float => Err("labels must be integers".into()),
        }
    }
}

/// Reads a 2-D float `.npy` (`f2`, `f4` or `f8`, either byte order, C or
/// Fortran order) as a row-major f32 matrix. Values are not validated here;
/// see [`crate::Metric::preprocess`].
pub fn read_matrix(path: impl AsRef<Path>) -> Result<Matrix> {
    let path = path.as_ref();
    let (h, mut r) = open(path)?;
    if h.dtype.kind != Kind::Float {
        return Err(npy_err(
            path,
            "vectors must be float16, float32 or float64, not an integer type; convert with arr.astype('float32')",
        ));
    }
    let &[rows, dim] = h.shape.as_slice() else {
        return Err(npy_err(
            path,
            format!(
                "expected a 2-D array (vectors × dimension), got shape {:?}",
                h.shape
            ),
        ));
    };
    let count = rows * dim; // cannot overflow: checked by `open`
    let mut data =
        read_elements(&mut r, h.dtype, count, float_of(h.dtype)).map_err(|e| npy_err(path, e))?;
    if h.fortran_order && rows > 1 && dim > 1 {
        data = transpose(&data, dim, rows);
    }
    Ok(Matrix { rows, dim, data })
}

/// Reads a label vector: any integer dtype, shape `(n,)` or `(n, 1)`.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<i64>> {
    read_column(path.as_ref(), false, "labels", int_of)
}

/// Reads a float vector (scores): `f2`, `f4` or `f8`, shape `(n,)` or `(n, 1)`.
pub fn read_floats(path: impl AsRef<Path>) -> Result<Vec<f32>> {
    read_column(path.as_ref(), true, "values", float_of)
}

/// One column of shape `(n,)` or `(n, 1)`, float or integer as `float`
/// says, each element converted by the converter `of` picks for the dtype.
fn read_column<T, F>(
    path: &Path,
    float: bool,
    what: &str,
    of: impl Fn(DType) -> F,
) -> Result<Vec<T>>
where
    F: Fn(&[u8]) -> std::result::Result<T, String>,
{
    let (h, mut r) = open(path)?;
    if (h.dtype.kind == Kind::Float) != float {
        let fix = if float {
            "expected floats; convert with arr.astype('float32')"
        } else {
            "expected integers (labels or ids); convert with arr.astype('int64')"
        };
        return Err(npy_err(path, fix));
    }
    let n = match h.shape.as_slice() {
        [n] | [n, 1] => *n,
        s => {
            return Err(npy_err(
                path,
                format!("expected {what} of shape (n,) or (n, 1), got {s:?}"),
            ))
        }
    };
    read_elements(&mut r, h.dtype, n, of(h.dtype)).map_err(|e| npy_err(path, e))
}

fn transpose(col_major: &[f32], rows_out_dim: usize, rows: usize) -> Vec<f32> {
    // col_major[c * rows + r] -> out[r * dim + c]
    let dim = rows_out_dim;
    let mut out = vec![0.0f32; col_major.len()];
    for c in 0..dim {
        for r in 0..rows {
            out[r * dim + c] = col_major[c * rows + r];
        }
    }
    out
}

/// Element types [`write`] can store.
pub trait Element: bytemuck::Pod {
    /// The little-endian NumPy `descr`.
    const DESCR: &'static str;
    /// Little-endian bytes of one value.
    fn le_bytes(self) -> [u8; 8];
}

impl Element for f32 {
    const DESCR: &'static str = "<f4";
    fn le_bytes(self) -> [u8; 8] {
        let b = self.to_le_bytes();
        [b[0], b[1], b[2], b[3], 0, 0, 0, 0]
    }
}

impl Element for i64 {
    const DESCR: &'static str = "<i8";
    fn le_bytes(self) -> [u8; 8] {
        self.to_le_bytes()
    }
}

/// The header bytes (magic to final `\n`) for an array of `shape`, padded so
/// the data starts at a multiple of [`DATA_ALIGN`].
pub fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_s = match shape {
        [n] => format!("({n},)"),
        s => format!(
            "({})",
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_s}, }}");
    // Version 1 (u16 length) unless the header is too long for it.
    let (version, prefix) = if dict.len() + 11 + DATA_ALIGN < usize::from(u16::MAX) {
        (1u8, 10)
    } else {
        (2u8, 12)
    };
    let total = (prefix + dict.len() + 1).div_ceil(DATA_ALIGN) * DATA_ALIGN;
    let hlen = total - prefix;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(hlen as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(hlen as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// Writes a 2-D `.npy` row by row when the number of rows is not known in
/// advance (streamed embeddings): the header is written for zero rows and
/// rewritten with the final count by [`RowWriter::finish`], which also syncs
/// the file. The header of a 2-D array always fits the same 128 bytes, so the
/// rewrite never moves the data. Publishing the file (rename) is the caller's.
pub struct RowWriter<T: Element> {
    path: std::path::PathBuf,
    out: BufWriter<File>,
    cols: usize,
    rows: usize,
    header_len: usize,
    _t: std::marker::PhantomData<T>,
}

impl<T: Element> RowWriter<T> {
    /// Creates (truncates) `path` for rows of `cols` values.
    pub fn create(path: impl AsRef<Path>, cols: usize) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if cols == 0 {
            return Err(Error::InvalidInput(format!(
                "{}: rows of zero values",
                path.display()
            )));
        }
        let f = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        let head = header_bytes(T::DESCR, &[0, cols]);
        out.write_all(&head).map_err(|e| Error::io(&path, e))?;
        Ok(RowWriter {
            path,
            out,
            cols,
            rows: 0,
            header_len: head.len(),
            _t: std::marker::PhantomData,
        })
    }

    /// Appends whole rows (`data.len()` must be a multiple of the row length).
    pub fn push(&mut self, data: &[T]) -> Result<()> {
        if !data.len().is_multiple_of(self.cols) {
            return Err(Error::InvalidInput(format!(
                "{}: {} values are not whole rows of {}",
                self.path.display(),
                data.len(),
                self.cols
            )));
        }
        let res = if cfg!(target_endian = "little") {
            self.out.write_all(bytemuck::cast_slice(data))
        } else {
            let size = std::mem::size_of::<T>();
            data.iter()
                .try_for_each(|&v| self.out.write_all(&v.le_bytes()[..size]))
        };
        res.map_err(|e| Error::io(&self.path, e))?;
        self.rows += data.len() / self.cols;
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Rewrites the header with the row count, flushes and syncs the file.
    /// Returns the number of rows.
    pub fn finish(self) -> Result<usize> {
        use std::io::{Seek, SeekFrom};
        let RowWriter {
            path,
            out,
            cols,
            rows,
            header_len,
            ..
        } = self;
        let io = |e| Error::io(&path, e);
        let mut f = out.into_inner().map_err(|e| io(e.into_error()))?;
        let head = header_bytes(T::DESCR, &[rows, cols]);
        if head.len() != header_len {
            return Err(Error::InvalidInput(format!(
                "{}: {rows} rows of {cols} need a longer .npy header than was reserved",
                path.display()
            )));
        }
        f.seek(SeekFrom::Start(0)).map_err(io)?;
        f.write_all(&head).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(rows)
    }
}

/// Writes `data` with `shape` (C order) to `w` as a `.npy` stream, returning
/// the number of bytes written.
pub fn write_to<T: Element>(
    mut w: impl Write,
    data: &[T],
    shape: &[usize],
) -> std::io::Result<u64> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "shape {shape:?} holds {n} values but {} were given",
                data.len()
            ),
        ));
    }
    let head = header_bytes(T::DESCR, shape);
    w.write_all(&head)?;
    if cfg!(target_endian = "little") {
        w.write_all(bytemuck::cast_slice(data))?;
    } else {
        let size = std::mem::size_of::<T>();
        for &v in data {
            w.write_all(&v.le_bytes()[..size])?;
        }
    }
    Ok((head.len() + std::mem::size_of_val(data)) as u64)
}

/// Writes `data` of `shape` to `path` atomically: a temporary file in the
/// same directory, fsync, rename.
pub fn write<T: Element>(path: impl AsRef<Path>, data: &[T], shape: &[usize]) -> Result<()> {
    let path = path.as_ref();
    crate::fsutil::atomic_write(path, |f| {
        let mut w = BufWriter::with_capacity(1 << 20, f);
        write_to(&mut w, data, shape)?;
        w.flush()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_writer_streams_rows_and_fixes_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.npy");
        let mut w = RowWriter::<f32>::create(&p, 3).unwrap();
        w.push(&[1.0, 2.0, 3.0]).unwrap();
        assert!(w.push(&[1.0]).is_err());
        w.push(&[4.0, 5.0, 6.0, 7.0, 8.0, 9.0]).unwrap();
        assert_eq!(w.finish().unwrap(), 3);
        let m = read_matrix(&p).unwrap();
        assert_eq!((m.rows, m.dim), (3, 3));
        assert_eq!(m.data, (1..=9).map(|v| v as f32).collect::<Vec<_>>());
        // The header length does not depend on the row count.
        for rows in [0usize, 1, 1 << 40] {
            assert_eq!(header_bytes("<f4", &[rows, 4096]).len(), 128);
        }
    }

    #[test]
    fn header_is_aligned_and_parses_back() {
        for shape in [vec![3usize, 4], vec![7], vec![0, 128], vec![1_000_000, 784]] {
            let h = header_bytes("<f4", &shape);
            assert_eq!(h.len() % DATA_ALIGN, 0);
            assert_eq!(*h.last().unwrap(), b'\n');
            let p = parse_header(&h).unwrap();
            assert_eq!(p.shape, shape);
            assert_eq!(p.data_offset, h.len());
            assert!(!p.fortran_order);
            assert_eq!(p.dtype, DType::parse("<f4").unwrap());
        }
    }

    #[test]
    fn parses_numpy_variants() {
        let mk = |dict: &str| {
            let mut v = MAGIC.to_vec();
            v.extend_from_slice(&[1, 0]);
            v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            v.extend_from_slice(dict.as_bytes());
            v
        };
        let h = parse_header(&mk(
            "{\"descr\":\">f8\",\"shape\":(2,3),\"fortran_order\":True}",
        ))
        .unwrap();
        assert!(h.fortran_order && h.dtype.big_endian && h.dtype.size == 8);
        assert_eq!(h.shape, vec![2, 3]);
        assert_eq!(
            parse_header(&mk(
                "{'descr': '<i4', 'fortran_order': False, 'shape': (), }"
            ))
            .unwrap()
            .shape,
            Vec::<usize>::new()
        );
        for bad in [
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }",
            "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }",
            "{'descr': '<f4', 'shape': (2,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,",
            "['descr']",
        ] {
            assert!(parse_header(&mk(bad)).is_err(), "{bad}");
        }
        assert!(parse_header(b"\x93NUMPY\x09\x00\x00\x00").is_err());
        assert!(parse_header(b"PK\x03\x04").is_err());
    }

    #[test]
    fn write_read_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.npy");
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        write(&p, &data, &[3, 4]).unwrap();
        let m = read_matrix(&p).unwrap();
        assert_eq!((m.rows, m.dim), (3, 4));
        assert_eq!(m.data, data);
        assert_eq!(m.row(2), &data[8..]);

        let l = dir.path().join("l.npy");
        write(&l, &[5i64, -3, 7], &[3]).unwrap();
        assert_eq!(read_labels(&l).unwrap(), vec![5, -3, 7]);
        // Wrong kinds each way.
        assert!(matches!(read_matrix(&l), Err(Error::Npy { .. })));
        assert!(matches!(read_labels(&p), Err(Error::Npy { .. })));
        // Truncated and trailing bytes.
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        let e = read_matrix(&p).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let mut long = bytes.clone();
        long.push(0);
        std::fs::write(&p, &long).unwrap();
        assert!(read_matrix(&p)
            .unwrap_err()
            .to_string()
            .contains("trailing"));
        std::fs::write(&p, b"hello").unwrap();
        assert!(read_matrix(&p).unwrap_err().to_string().contains("magic"));
        assert!(matches!(
            read_matrix(dir.path().join("none.npy")),
            Err(Error::Io { .. })
        ));
        // Shape/data mismatch on write.
        assert!(write(&p, &data, &[5, 4]).is_err());
    }

    #[test]
    fn converts_types_orders_and_endianness() {
        let dir = tempfile::tempdir().unwrap();
        let raw = |descr: &str, shape: &str, fortran: bool, data: &[u8]| {
            let dict = format!(
                "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
                if fortran { "True" } else { "False" }
            );
            let mut v = MAGIC.to_vec();
            v.extend_from_slice(&[1, 0]);
            v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            v.extend_from_slice(dict.as_bytes());
            v.extend_from_slice(data);
            let p = dir
                .path()
                .join(format!("{}.npy", rand_name(descr, shape, fortran)));
            std::fs::write(&p, v).unwrap();
            p
        };
        // f64 big-endian, Fortran order: columns [1,2] and [3,4] -> rows [1,3],[2,4].
        let be: Vec<u8> = [1.0f64, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|x| x.to_be_bytes())
            .collect();
        let m = read_matrix(raw(">f8", "(2, 2)", true, &be)).unwrap();
        assert_eq!(m.data, vec![1.0, 3.0, 2.0, 4.0]);
        // f16.
        let h: Vec<u8> = [0.5f32, -2.0]
            .iter()
            .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
            .collect();
        assert_eq!(
            read_matrix(raw("<f2", "(1, 2)", false, &h)).unwrap().data,
            vec![0.5, -2.0]
        );
        // 1-D vectors rejected.
        assert!(read_matrix(raw("<f4", "(2,)", false, &[0; 8])).is_err());
        // i32, i16 negative, u8, (n,1) labels.
        let i: Vec<u8> = [-1i32, 9].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(
            read_labels(raw("<i4", "(2, 1)", false, &i)).unwrap(),
            vec![-1, 9]
        );
        assert_eq!(
            read_labels(raw("<i2", "(1,)", false, &(-300i16).to_le_bytes())).unwrap(),
            vec![-300]
        );
        assert_eq!(
            read_labels(raw("|u1", "(2,)", false, &[200, 3])).unwrap(),
            vec![200, 3]
        );
        assert!(read_labels(raw("<u8", "(1,)", false, &u64::MAX.to_le_bytes())).is_err());
        assert!(read_labels(raw("<i8", "(1, 2)", false, &[0; 16])).is_err());
    }

    /// The venv python (with numpy) the project uses, if present.
    pub(crate) fn python() -> Option<std::path::PathBuf> {
        let p = std::env::var_os("LIKENESS_PYTHON")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/root/.cache/likeness/torch-2.11.0/bin/python".into());
        if p.exists() {
            Some(p)
        } else {
            println!(
                "SKIPPED: no python at {} (set LIKENESS_PYTHON to a python with numpy)",
                p.display()
            );
            None
        }
    }

    #[test]
    fn numpy_maps_what_we_write_and_we_read_what_numpy_writes() {
        let Some(py) = python() else { return };
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f.npy");
        let i = dir.path().join("i.npy");
        let data: Vec<f32> = (0..35).map(|x| x as f32 * 0.25 - 3.0).collect();
        write(&f, &data, &[5, 7]).unwrap();
        write(&i, &[3i64, -9_000_000_000, 4], &[3]).unwrap();
        let script = r#"
import sys, numpy as np
f = np.load(sys.argv[1], mmap_mode="r"); i = np.load(sys.argv[2], mmap_mode="r")
assert isinstance(f, np.memmap) and f.dtype == np.float32 and f.shape == (5, 7), (f.dtype, f.shape)
assert f.offset % 64 == 0, f.offset
assert np.array_equal(f, (np.arange(35, dtype=np.float32) * 0.25 - 3.0).reshape(5, 7))
assert i.dtype == np.int64 and list(i) == [3, -9000000000, 4]
d = sys.argv[3]
np.save(d + "/h.npy", np.array([[1.5, -2], [3, 4]], dtype=np.float16))
np.save(d + "/d.npy", np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)))
np.save(d + "/l.npy", np.array([7, -1, 2], dtype=np.int32))
"#;
        let out = std::process::Command::new(&py)
            .args(["-c", script])
            .arg(&f)
            .arg(&i)
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            read_matrix(dir.path().join("h.npy")).unwrap().data,
            vec![1.5, -2.0, 3.0, 4.0]
        );
        let d = read_matrix(dir.path().join("d.npy")).unwrap();
        assert_eq!((d.rows, d.dim), (2, 3));
        assert_eq!(d.data, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            read_labels(dir.path().join("l.npy")).unwrap(),
            vec![7, -1, 2]
        );
    }

    fn rand_name(descr: &str, shape: &str, fortran: bool) -> String {
        let mut h = crc32fast::Hasher::new();
        h.update(descr.as_bytes());
        h.update(shape.as_bytes());
        h.update(&[u8::from(fortran)]);
        format!("{:08x}", h.finalize())
    }
}
