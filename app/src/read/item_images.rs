//! The images behind indexed items, for montages: decoded from their
//! recorded source and cropped to their region.
use std::path::{Path, PathBuf};

use likeness_index::ItemInfo;

use super::{decode, Region};
use crate::error::{Error, Result};

/// Decodes indexed items' images (IDX rows for `path#row` sources, with
/// each IDX file read once) and crops their regions.
pub struct ItemImages {
    idx: std::collections::HashMap<PathBuf, super::idx::IdxImages>,
    /// The largest photo decoded (`--max-megapixels`).
    limits: decode::DecodeLimits,
}

impl ItemImages {
    pub fn new(limits: decode::DecodeLimits) -> Self {
        ItemImages {
            idx: Default::default(),
            limits,
        }
    }

    pub fn load(&mut self, info: Option<&ItemInfo>) -> Result<image::DynamicImage> {
        let info = info.ok_or_else(|| Error::Invalid("item out of range".into()))?;
        if info.source.is_empty() {
            return Err(Error::Invalid(
                "the index records no source images (built from vectors); --montage needs an index \
                 made by `likeness index`"
                    .into(),
            ));
        }
        let (path, row) = split_source(&info.source);
        let path = path.to_path_buf();
        let image = match row {
            Some(row) => {
                if !self.idx.contains_key(&path) {
                    let images = super::idx::read_images(&path)?;
                    self.idx.insert(path.clone(), images);
                }
                self.idx[&path].image(row)?
            }
            None => decode::decode_file(&path, &self.limits)?,
        };
        match info_region(info) {
            Some(r) => decode::crop(&image, r, &path),
            None => Ok(image),
        }
    }
}

/// `path#row` (an IDX row) or a plain path, as `likeness index` records them.
pub fn split_source(s: &str) -> (&Path, Option<usize>) {
    match s.rsplit_once('#') {
        Some((p, r)) if !r.is_empty() && r.bytes().all(|c| c.is_ascii_digit()) => match r.parse() {
            Ok(row) => (Path::new(p), Some(row)),
            Err(_) => (Path::new(s), None),
        },
        _ => (Path::new(s), None),
    }
}

/// The region of an [`ItemInfo`] back as a pixel box.
fn info_region(info: &ItemInfo) -> Option<Region> {
    info.region.map(|[x0, y0, x1, y1]| Region {
        x: x0 as u32,
        y: y0 as u32,
        w: (x1 - x0) as u32,
        h: (y1 - y0) as u32,
    })
}
