//! IDX files, the MNIST format: a big-endian header (two zero bytes, a type
//! code, the number of dimensions, each dimension as u32) then the raw array.
//! Gzip-compressed files (`.gz`) are read transparently.
use std::io::Read;
use std::path::{Path, PathBuf};

use image::{DynamicImage, GrayImage};

use crate::error::{Error, Result};

/// Class names of Fashion-MNIST, used when the files sit in a `fashion-mnist` folder.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Largest IDX payload read (the files are loaded whole).
pub const MAX_IDX_BYTES: u64 = 4 << 30;

/// True for file names like `train-images-idx3-ubyte` or `t10k-images-idx3-ubyte.gz`.
pub fn is_idx_images_name(name: &str) -> bool {
    let name = name.strip_suffix(".gz").unwrap_or(name);
    name.ends_with("images-idx3-ubyte") || name.ends_with("images.idx3-ubyte")
}

/// The labels file that belongs to an images file.
pub fn labels_path(images: &Path) -> PathBuf {
    let name = images
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    images.with_file_name(name.replacen("images-idx3", "labels-idx1", 1).replacen(
        "images.idx3",
        "labels.idx1",
        1,
    ))
}

/// A parsed IDX array of unsigned bytes.
#[derive(Debug)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads the whole file (decompressing gzip) and checks its header and length.
pub fn read_array(path: &Path) -> Result<IdxArray> {
    let bad = |reason: String| Error::Idx {
        path: path.to_path_buf(),
        reason,
    };
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .take(MAX_IDX_BYTES)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("gzip stream is corrupt or truncated: {e}")))?;
        out
    } else {
        raw
    };
    parse_array(bytes).map_err(bad)
}

/// Parses an in-memory IDX array, checking the header against the length.
pub fn parse_array(mut bytes: Vec<u8>) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 {
        return Err(format!(
            "{} bytes is too short for an IDX header",
            bytes.len()
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err("bad magic: the first two bytes must be zero".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type 0x{:02x} is not supported (only 0x08, unsigned byte)",
            bytes[2]
        ));
    }
    let ndims = bytes[3] as usize;
    if ndims == 0 || ndims > 4 {
        return Err(format!("{ndims} dimensions is not supported (1 to 4)"));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(format!(
            "truncated header: {} bytes, need {header}",
            bytes.len()
        ));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|d| {
            let o = 4 + 4 * d;
            u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]) as usize
        })
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("dimensions overflow")?;
    let actual = bytes.len() - header;
    if actual != expected {
        return Err(format!(
            "header says {dims:?} = {expected} bytes of data but the file holds {actual} \
             (truncated or not an IDX file)"
        ));
    }
    bytes.drain(..header);
    Ok(IdxArray { dims, data: bytes })
}

/// Images of an IDX file, kept in memory (Fashion-MNIST train: 47 MB).
#[derive(Debug)]
pub struct IdxImages {
    path: PathBuf,
    rows: u32,
    cols: u32,
    data: Vec<u8>,
}

impl IdxImages {
    /// Images in the file.
    pub fn len(&self) -> usize {
        self.data.len() / (self.rows as usize * self.cols as usize).max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Bytes held in memory.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    pub fn image(&self, i: usize) -> Result<DynamicImage> {
        let size = self.rows as usize * self.cols as usize;
        let start = i.saturating_mul(size);
        let pixels = self
            .data
            .get(start..start.saturating_add(size))
            .ok_or_else(|| Error::Idx {
                path: self.path.clone(),
                reason: format!("image {i} out of range"),
            })?;
        let img = GrayImage::from_raw(self.cols, self.rows, pixels.to_vec()).ok_or_else(|| {
            Error::Idx {
                path: self.path.clone(),
                reason: "image buffer size mismatch".into(),
            }
        })?;
        Ok(DynamicImage::ImageLuma8(img))
    }
}

/// Reads an images file alone (no labels): for drawing indexed IDX rows.
pub fn read_images(images_path: &Path) -> Result<IdxImages> {
    let images = read_array(images_path)?;
    match images.dims[..] {
        [_, rows, cols] if rows > 0 && cols > 0 => Ok(IdxImages {
            path: images_path.to_path_buf(),
            rows: rows as u32,
            cols: cols as u32,
            data: images.data,
        }),
        _ => Err(Error::Idx {
            path: images_path.to_path_buf(),
            reason: format!(
                "an images file has 3 dimensions (n, rows, cols) of at least 1, found {:?}",
                images.dims
            ),
        }),
    }
}
