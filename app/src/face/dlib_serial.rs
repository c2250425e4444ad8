//! dlib's serialization primitives (dlib/serialize.h, dlib 19.24–20.0), as
//! far as a shape predictor and a DNN (the face descriptor) need them. The
//! `.dat` files that Debian's `libdlib-data` and PyPI's
//! `face_recognition_models` ship use them.
//!
//! - An integer is a control byte (low 4 bits: how many magnitude bytes
//!   follow, bit 0x80: negative) and then that many little-endian bytes, for
//!   signed and unsigned types alike.
//! - A float is two integers, mantissa (i64) then exponent (i16): the value is
//!   mantissa·2^exponent; exponents 32000–32002 stand for +inf, −inf and NaN.
//!   (Files from before dlib 18.x wrote floats as text: their first byte has
//!   one of the bits 0x70 set, and they are refused.)
//! - `std::vector<T>`: its length (an integer), then the items.
//! - `matrix<float,0,1>`: rows and columns (negated in the current format),
//!   then rows·columns floats.
//! - `std::string`: its length, then the bytes; `bool`: the byte `'1'` or `'0'`.
//! - A DNN tensor (dlib/cuda/tensor.h): version 2, four sizes (samples, k,
//!   rows, columns), then the values as raw little-endian f32; an alias
//!   tensor (a view into a layer's parameters): version 1 and four sizes.
use std::fmt;

/// What went wrong where, in bytes from the start of the file.
#[derive(Debug)]
pub struct FormatError {
    pub offset: usize,
    pub what: String,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.what)
    }
}

pub type Result<T> = std::result::Result<T, FormatError>;

/// A cursor over a whole file held in memory.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    pub fn offset(&self) -> usize {
        self.at
    }

    pub fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    pub fn fail<T>(&self, what: impl Into<String>) -> Result<T> {
        Err(FormatError {
            offset: self.at,
            what: what.into(),
        })
    }

    fn byte(&mut self) -> Result<u8> {
        match self.bytes.get(self.at) {
            Some(&b) => {
                self.at += 1;
                Ok(b)
            }
            None => self.fail("the file ends early (truncated download?)"),
        }
    }

    /// One integer of at most `max_bytes` magnitude bytes.
    pub fn int(&mut self, max_bytes: u8) -> Result<i128> {
        let control = self.byte()?;
        let n = control & 0x0f;
        if control & 0x70 != 0 || n > max_bytes {
            return self.fail(format!(
                "integer control byte {control:#04x} is not dlib's binary format"
            ));
        }
        let mut magnitude: u64 = 0;
        for i in 0..n {
            magnitude |= u64::from(self.byte()?) << (8 * i);
        }
        let v = i128::from(magnitude);
        Ok(if control & 0x80 != 0 { -v } else { v })
    }

    /// An `unsigned long` (8 bytes), refused if negative.
    pub fn ulong(&mut self) -> Result<u64> {
        let v = self.int(8)?;
        u64::try_from(v).or_else(|_| self.fail(format!("expected a non-negative integer, got {v}")))
    }

    /// The next `long`, without moving past it.
    pub fn peek_long(&mut self) -> Result<i64> {
        let at = self.at;
        let v = self.long();
        self.at = at;
        v
    }

    /// A `long` (8 bytes).
    pub fn long(&mut self) -> Result<i64> {
        let v = self.int(8)?;
        i64::try_from(v).or_else(|_| self.fail("integer out of range"))
    }

    /// A length, bounded by what the rest of the file could hold (every item
    /// takes at least one byte), so a corrupt length cannot allocate gigabytes.
    pub fn length(&mut self) -> Result<usize> {
        let n = self.ulong()?;
        let left = (self.bytes.len() - self.at) as u64;
        if n > left {
            return self.fail(format!(
                "a length of {n} items, but only {left} bytes are left"
            ));
        }
        Ok(n as usize)
    }

    /// A `float`.
    pub fn float(&mut self) -> Result<f32> {
        if self.bytes.get(self.at).is_some_and(|b| b & 0x70 != 0) {
            return self
                .fail("a float in dlib's old text format; re-save the model with dlib ≥ 19");
        }
        let mantissa = self.int(8)?;
        let exponent = self.int(2)?;
        Ok(match exponent {
            32000 => f32::INFINITY,
            32001 => f32::NEG_INFINITY,
            32002 => f32::NAN,
            e => (mantissa as f64 * 2f64.powi(e as i32)) as f32,
        })
    }

    /// A `std::string` (dlib names its layers' format versions with them).
    pub fn string(&mut self) -> Result<String> {
        let n = self.length()?;
        let bytes = &self.bytes[self.at..self.at + n];
        let s = std::str::from_utf8(bytes)
            .map(str::to_owned)
            .or_else(|_| self.fail("a string that is not UTF-8"))?;
        self.at += n;
        Ok(s)
    }

    /// A `bool`.
    pub fn boolean(&mut self) -> Result<bool> {
        match self.byte()? {
            b'1' => Ok(true),
            b'0' => Ok(false),
            b => {
                self.at -= 1;
                self.fail(format!("byte {b:#04x} is not a bool ('0' or '1')"))
            }
        }
    }

    /// The four sizes of a tensor, each at least 0.
    fn sizes(&mut self) -> Result<[usize; 4]> {
        let mut s = [0usize; 4];
        for v in &mut s {
            let n = self.long()?;
            *v = usize::try_from(n).or_else(|_| self.fail(format!("a tensor size of {n}")))?;
        }
        Ok(s)
    }

    /// A DNN tensor: its sizes and values.
    pub fn tensor(&mut self) -> Result<([usize; 4], Vec<f32>)> {
        let version = self.long()?;
        if version != 2 {
            return self.fail(format!("tensor format version {version}, expected 2"));
        }
        let sizes = self.sizes()?;
        let n = sizes.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
        let bytes = n.and_then(|n| n.checked_mul(4));
        let left = self.bytes.len() - self.at;
        let Some(bytes) = bytes.filter(|&b| b <= left) else {
            return self.fail(format!(
                "a tensor of {sizes:?} does not fit in the {left} bytes left"
            ));
        };
        let values = self.bytes[self.at..self.at + bytes]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        self.at += bytes;
        Ok((sizes, values))
    }

    /// An alias tensor's sizes.
    pub fn alias(&mut self) -> Result<[usize; 4]> {
        let version = self.long()?;
        if version != 1 {
            return self.fail(format!("alias tensor format version {version}, expected 1"));
        }
        self.sizes()
    }

    /// A `matrix<float,0,1>` (a column) or `matrix<float,0,0>`, flattened.
    pub fn float_matrix(&mut self) -> Result<Vec<f32>> {
        let (mut rows, mut cols) = (self.long()?, self.long()?);
        // The current format negates both sizes to tell itself from the old one.
        if rows < 0 && cols < 0 {
            rows = -rows;
            cols = -cols;
        }
        if rows < 0 || cols < 0 {
            return self.fail(format!("matrix of {rows}x{cols}"));
        }
        let n = (rows as u64).saturating_mul(cols as u64);
        if n > (self.bytes.len() - self.at) as u64 {
            return self.fail(format!("a {rows}x{cols} matrix does not fit in the file"));
        }
        (0..n).map(|_| self.float()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_floats_and_matrices_read_as_dlib_writes_them() {
        // 300 = 0x012c: two bytes; -5: negative, one byte; 0: no bytes.
        let bytes = [0x02, 0x2c, 0x01, 0x81, 0x05, 0x00];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.ulong().unwrap(), 300);
        assert_eq!(r.long().unwrap(), -5);
        assert_eq!(r.ulong().unwrap(), 0);
        assert!(r.at_end());
        // 0.75 = 3·2^-2; then a 1x1 matrix in the current (negated) format.
        let bytes = [
            0x01, 0x03, 0x81, 0x02, 0x81, 0x01, 0x81, 0x01, 0x01, 0x01, 0x00,
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.float().unwrap(), 0.75);
        assert_eq!(r.float_matrix().unwrap(), vec![1.0]);
    }

    #[test]
    fn strings_bools_and_tensors_read_as_dlib_writes_them() {
        let mut bytes = vec![0x01, 0x04, b'c', b'o', b'n', b'_', b'1', b'0'];
        // A tensor of 1x2x1x1: version 2, sizes, two raw floats.
        bytes.extend([0x01, 0x02, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01, 0x01, 0x01]);
        bytes.extend(1.5f32.to_le_bytes());
        bytes.extend((-2.0f32).to_le_bytes());
        bytes.extend([0x01, 0x01, 0x01, 0x03, 0x00, 0x01, 0x01, 0x01, 0x01]);
        let mut r = Reader::new(&bytes);
        assert_eq!(r.string().unwrap(), "con_");
        assert!(r.boolean().unwrap());
        assert!(!r.boolean().unwrap());
        assert_eq!(r.tensor().unwrap(), ([1, 2, 1, 1], vec![1.5, -2.0]));
        assert_eq!(r.alias().unwrap(), [3, 0, 1, 1]);
        assert!(r.at_end());
        // A tensor larger than the file, and a bool that is not one.
        let mut r = Reader::new(&[0x01, 0x02, 0x01, 0x10, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01]);
        assert!(r.tensor().unwrap_err().to_string().contains("does not fit"));
        assert!(Reader::new(b"x")
            .boolean()
            .unwrap_err()
            .to_string()
            .contains("not a bool"));
    }

    #[test]
    fn bad_bytes_are_errors_with_an_offset() {
        let mut r = Reader::new(&[0x02, 0x01]);
        let e = r.ulong().unwrap_err();
        assert!(e.to_string().contains("ends early"), "{e}");
        let mut r = Reader::new(&[0x31]);
        assert!(r.float().unwrap_err().to_string().contains("text format"));
        let mut r = Reader::new(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(r
            .length()
            .unwrap_err()
            .to_string()
            .contains("bytes are left"));
    }
}
