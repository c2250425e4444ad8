//! Readers the commands and the server share: image files with limits, IDX
//! files, and the images behind indexed items.
pub mod decode;
pub mod idx;
pub mod item_images;

pub use decode::DecodeLimits;
pub use item_images::{split_source, ItemImages};

/// A rectangle inside an image, in pixels: the item is this part of its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Region {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl std::fmt::Display for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{},{},{}", self.x, self.y, self.w, self.h)
    }
}

impl std::str::FromStr for Region {
    type Err = String;
    /// Parses `x,y,w,h` (non-negative integers, `w` and `h` at least 1).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let parts: Vec<&str> = s.split(',').map(str::trim).collect();
        if parts.len() != 4 {
            return Err(format!("region `{s}` must be x,y,w,h (four integers)"));
        }
        let mut v = [0u32; 4];
        for (slot, (part, name)) in v.iter_mut().zip(parts.iter().zip(["x", "y", "w", "h"])) {
            *slot = part.parse().map_err(|_| {
                format!("region `{s}`: {name} = `{part}` is not a non-negative integer")
            })?;
        }
        if v[2] == 0 || v[3] == 0 {
            return Err(format!("region `{s}`: width and height must be at least 1"));
        }
        Ok(Region {
            x: v[0],
            y: v[1],
            w: v[2],
            h: v[3],
        })
    }
}
