//! Image decoding with limits, so a corrupt file or a decompression bomb gives
//! an error naming the file instead of a crash or an out-of-memory kill.
use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::Region;
use crate::error::{Error, Result};

/// Caps applied before and during decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest width × height accepted (default 64 megapixels).
    pub max_pixels: u64,
    /// Largest file accepted, in bytes (default 256 MiB).
    pub max_file_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_pixels: 64 * 1024 * 1024,
            max_file_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Reads and decodes one image file, checking its header dimensions against
/// the pixel limit before any pixel is decoded.
pub fn decode_file(path: &Path, limits: &DecodeLimits) -> Result<DynamicImage> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() > limits.max_file_bytes {
        return Err(Error::Decode {
            path: path.to_path_buf(),
            reason: format!(
                "file is {} bytes, over the limit of {} bytes",
                meta.len(),
                limits.max_file_bytes
            ),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_bytes(&bytes, path, limits)
}

/// Decodes an in-memory image; `path` is only used in error messages.
pub fn decode_bytes(bytes: &[u8], path: &Path, limits: &DecodeLimits) -> Result<DynamicImage> {
    let bad = |reason: String| Error::Decode {
        path: path.to_path_buf(),
        reason,
    };
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| bad(e.to_string()))
    };
    let r = reader()?;
    if r.format().is_none() {
        return Err(bad(
            "unrecognised image format (expected jpeg, png, bmp or webp)".into(),
        ));
    }
    let (width, height) = r.into_dimensions().map_err(|e| bad(e.to_string()))?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(Error::ImageTooLarge {
            path: path.to_path_buf(),
            width,
            height,
            pixels,
            limit: limits.max_pixels,
        });
    }
    let mut decoder_limits = Limits::default();
    // 4 bytes per pixel (RGBA8) plus the decoder's own buffers.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).max(1 << 20));
    let mut r = reader()?;
    r.limits(decoder_limits);
    let mut decoder = r.into_decoder().map_err(|e| bad(e.to_string()))?;
    // A phone stores a portrait photo as landscape pixels and an EXIF
    // orientation; viewers turn it upright, and so must we, or faces are
    // found on their side (or not at all) and a mirrored one swaps the
    // subject's left and right. Boxes are in the upright image's pixels,
    // as a viewer shows it.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| bad(e.to_string()))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Cuts `region` out of `image`, or says why it can't.
pub fn crop(image: &DynamicImage, region: Region, path: &Path) -> Result<DynamicImage> {
    let (width, height) = (image.width(), image.height());
    let fits = u64::from(region.x) + u64::from(region.w) <= u64::from(width)
        && u64::from(region.y) + u64::from(region.h) <= u64::from(height)
        && region.w > 0
        && region.h > 0;
    if !fits {
        return Err(Error::RegionOutside {
            path: path.to_path_buf(),
            x: region.x,
            y: region.y,
            w: region.w,
            h: region.h,
            width,
            height,
        });
    }
    Ok(image.crop_imm(region.x, region.y, region.w, region.h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb, RgbImage};

    /// A little-endian TIFF block holding only the Orientation tag.
    fn exif_orientation(o: u16) -> Vec<u8> {
        let mut v = b"II*\0".to_vec();
        v.extend(8u32.to_le_bytes());
        v.extend(1u16.to_le_bytes());
        v.extend(0x0112u16.to_le_bytes()); // Orientation
        v.extend(3u16.to_le_bytes()); // SHORT
        v.extend(1u32.to_le_bytes());
        v.extend(o.to_le_bytes());
        v.extend([0, 0]);
        v.extend(0u32.to_le_bytes());
        v
    }

    /// A phone's portrait photo: landscape pixels, EXIF orientation 6
    /// (turn 90° clockwise to view). Decoded upright, as viewers show it.
    #[test]
    fn exif_orientation_is_applied() {
        let img = RgbImage::from_fn(40, 20, |x, _| {
            if x < 20 {
                Rgb([250, 0, 0])
            } else {
                Rgb([0, 0, 250])
            }
        });
        let mut bytes = Vec::new();
        let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 95);
        enc.set_exif_metadata(exif_orientation(6)).unwrap();
        enc.write_image(img.as_raw(), 40, 20, image::ExtendedColorType::Rgb8)
            .unwrap();
        let up = decode_bytes(&bytes, Path::new("portrait.jpg"), &DecodeLimits::default())
            .unwrap()
            .to_rgb8();
        assert_eq!(up.dimensions(), (20, 40));
        // The stored left half (red) is now on top.
        assert!(up.get_pixel(10, 5)[0] > 200 && up.get_pixel(10, 5)[2] < 50);
        assert!(up.get_pixel(10, 35)[2] > 200 && up.get_pixel(10, 35)[0] < 50);
    }
}
