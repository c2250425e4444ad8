//! Image decoding with limits, so a corrupt file or a decompression bomb gives
//! an error naming the file instead of a crash or an out-of-memory kill.
use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::Region;
use crate::error::{Error, Result};

/// Pixels in a megapixel as `--max-megapixels` counts them: 1024 × 1024,
/// so that the default takes 8192×8192 (and a 100 MP camera's 11648×8736
/// fits under 100).
pub const MEGAPIXEL: u64 = 1 << 20;

/// The default of `--max-megapixels`: 8192×8192, over any phone's photo,
/// and 512 MiB decoded as RGBA8, within a small machine's memory.
pub const DEFAULT_MAX_MEGAPIXELS: u32 = 64;

/// The most `--max-megapixels` takes: 32768×32768, 4 GiB decoded as RGBA8
/// (the decoder may hold twice that); past it a file is a bomb, not a photo.
pub const MAX_MEGAPIXELS: u32 = 1024;

/// Caps applied before and during decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest width × height accepted (default [`DEFAULT_MAX_MEGAPIXELS`]).
    pub max_pixels: u64,
    /// Largest file accepted, in bytes (default 256 MiB).
    pub max_file_bytes: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits::megapixels(DEFAULT_MAX_MEGAPIXELS)
    }
}

impl DecodeLimits {
    /// Photos up to `mp` megapixels ([`MEGAPIXEL`]s), as `--max-megapixels`
    /// asks; the callers' arguments keep `mp` within [`MAX_MEGAPIXELS`].
    pub fn megapixels(mp: u32) -> Self {
        DecodeLimits {
            max_pixels: u64::from(mp) * MEGAPIXEL,
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
    if bytes.is_empty() {
        return Err(bad("the file is empty".into()));
    }
    // Checked before the guess: a TIFF is guessed as one and then "not
    // supported", a HEIC not guessed at all, and neither said what to do.
    if let Some(what) = unread_format(bytes) {
        return Err(bad(format!(
            "{what}, a format likeness does not read (it reads JPEG, PNG, BMP and WebP): \
             convert it to JPEG or PNG{}",
            if what.starts_with("a HEIC") {
                " (e.g. `heif-convert IN.heic OUT.jpg` from libheif; an iPhone saves JPEGs \
                 under Settings > Camera > Formats > Most Compatible)"
            } else {
                ""
            }
        )));
    }
    let r = reader()?;
    if r.format().is_none() {
        return Err(bad(
            "not an image likeness reads (no JPEG, PNG, BMP or WebP signature at its start): \
             is it an image? convert it to JPEG or PNG"
                .into(),
        ));
    }
    if r.format() == Some(image::ImageFormat::Jpeg) {
        jpeg_complete(bytes).map_err(|why| bad(why.into()))?;
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
            limit_megapixels: limits.max_pixels / MEGAPIXEL,
            max_megapixels: MAX_MEGAPIXELS,
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

/// What a photo in a format likeness does not decode is, from its first
/// bytes, so that a phone's HEIC (even one renamed `.jpg`) or a scanner's
/// TIFF is named as such rather than "unrecognised" or "Tiff is not
/// supported". `None` for everything else.
fn unread_format(b: &[u8]) -> Option<&'static str> {
    // ISO base media files (HEIF, AVIF, Canon's CR3) open with a `ftyp`
    // box: size, "ftyp", the major brand, then more brands.
    if b.len() >= 12 && &b[4..8] == b"ftyp" {
        let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let brands = &b[8..size.clamp(12, b.len())];
        let has = |list: &[&[u8; 4]]| brands.chunks(4).any(|c| list.iter().any(|l| c == *l));
        if has(&[b"avif", b"avis"]) {
            return Some("an AVIF image");
        }
        if has(&[
            b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1",
        ]) {
            return Some("a HEIC/HEIF photo (an iPhone's usual format)");
        }
        if has(&[b"crx "]) {
            return Some("a Canon RAW (CR3) photo");
        }
        return None;
    }
    let starts = |sig: &[u8]| b.starts_with(sig);
    if starts(b"II*\0") || starts(b"MM\0*") {
        Some("a TIFF image (or a camera RAW file, which is built on TIFF)")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("a GIF image")
    } else if starts(b"\0\0\0\x0CjP  \r\n\x87\n") || starts(&[0xFF, 0x4F, 0xFF, 0x51]) {
        Some("a JPEG 2000 image")
    } else if starts(b"\0\0\0\x0CJXL \r\n\x87\n") || starts(&[0xFF, 0x0A]) {
        Some("a JPEG XL image")
    } else if starts(b"8BPS") {
        Some("a Photoshop document")
    } else if starts(b"%PDF") {
        Some("a PDF document")
    } else {
        None
    }
}

/// Whether a JPEG holds all its image data. The decoder fills what a cut
/// file lacks with grey and says nothing, so half a photo would be found
/// faceless or graded as grey (a 5 kB head of a 123 kB photo was). Walks
/// the markers from SOI to EOI: segments by their lengths, each scan's
/// entropy-coded data to its next marker (where 0xFF is followed only by
/// 0x00 stuffing or a restart marker). Bytes after EOI (a phone's appended
/// video) are not read.
fn jpeg_complete(b: &[u8]) -> std::result::Result<(), &'static str> {
    const CUT: &str = "the JPEG is cut short (no end-of-image marker): the file is \
                       truncated or damaged; copy it again from its source";
    if !b.starts_with(&[0xFF, 0xD8]) {
        return Err("not a JPEG: no start-of-image marker");
    }
    let mut i = 2;
    loop {
        // The next marker: 0xFF, then a code (0xFF fill bytes may repeat).
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1;
        }
        let Some(&code) = b.get(i) else {
            return Err(CUT);
        };
        i += 1;
        match code {
            0xD9 => return Ok(()),
            // Markers without a length: TEM, restarts, a stray SOI.
            0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        let (Some(&hi), Some(&lo)) = (b.get(i), b.get(i + 1)) else {
            return Err(CUT);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len < 2 || i + len > b.len() {
            return Err(CUT);
        }
        i += len;
        if code == 0xDA {
            // Entropy-coded data up to the next marker that is neither
            // stuffing (FF 00) nor a restart (FF D0..D7).
            loop {
                while i < b.len() && b[i] != 0xFF {
                    i += 1;
                }
                match b.get(i + 1) {
                    None => return Err(CUT),
                    Some(0x00) | Some(0xD0..=0xD7) => i += 2,
                    Some(0xFF) => i += 1,
                    Some(_) => break,
                }
            }
        }
    }
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

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        bytes
    }

    /// A JPEG cut short decodes "fine" to grey; it must be refused, at any
    /// cut, while a whole one, and one with bytes after its end (a phone's
    /// appended video), decode.
    #[test]
    fn a_cut_jpeg_is_refused() {
        let whole = jpeg(64, 48);
        let limits = DecodeLimits::default();
        assert!(decode_bytes(&whole, Path::new("a.jpg"), &limits).is_ok());
        let mut tail = whole.clone();
        tail.extend_from_slice(b"\x00\x00\x00\x18ftypmp42\xff\xda\x01\x02");
        assert!(decode_bytes(&tail, Path::new("a.jpg"), &limits).is_ok());
        for cut in [whole.len() - 2, whole.len() / 2, 200] {
            let e = decode_bytes(&whole[..cut], Path::new("cut.jpg"), &limits).unwrap_err();
            assert!(e.to_string().contains("cut short"), "{cut}: {e}");
        }
        let e = decode_bytes(b"", Path::new("zero.jpg"), &limits).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }

    /// A HEIC photo (an iPhone's, even renamed `.jpg`), a TIFF and a GIF
    /// were "unrecognised image format" or "The image format Tiff is not
    /// supported": each is now named, with what to do; a file that is no
    /// image at all is told apart from them.
    #[test]
    fn photos_in_formats_not_read_are_named_with_what_to_do() {
        let limits = DecodeLimits::default();
        let said = |bytes: &[u8], name: &str| {
            decode_bytes(bytes, Path::new(name), &limits)
                .unwrap_err()
                .to_string()
        };
        // An iPhone's HEIC opens `....ftypheic....mif1...` (then its boxes).
        let mut heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
        heic.extend([0u8; 64]);
        for name in ["IMG_0001.HEIC", "renamed.jpg"] {
            let e = said(&heic, name);
            assert!(
                e.contains(name) && e.contains("HEIC") && e.contains("convert it to JPEG"),
                "{e}"
            );
        }
        let mut avif = b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf".to_vec();
        avif.extend([0u8; 64]);
        assert!(said(&avif, "a.avif").contains("an AVIF image"));
        let e = said(b"II*\0\x08\0\0\0\0\0\0\0\0\0", "scan.tif");
        assert!(
            e.contains("a TIFF image") && e.contains("convert it to JPEG or PNG"),
            "{e}"
        );
        let e = said(b"GIF89a\x02\0\x02\0\0\0\0;", "anim.gif");
        assert!(e.contains("a GIF image"), "{e}");
        let e = said(b"hello, these are notes\n", "notes.jpg");
        assert!(e.contains("not an image likeness reads"), "{e}");
        // A real MP4 is no photo, and no brand above: not called a HEIC.
        let e = said(b"\0\0\0\x14ftypisom\0\0\0\0isom....", "clip.jpg");
        assert!(!e.contains("HEIC"), "{e}");
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

    /// A photo over the limit was refused with no way round it: the
    /// message now names the flag that raises it, and raising it works.
    #[test]
    fn a_photo_over_the_limit_names_the_flag_that_raises_it() {
        let bytes = jpeg(1100, 1000);
        let e = decode_bytes(&bytes, Path::new("big.jpg"), &DecodeLimits::megapixels(1))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("1100x1000") && e.contains("--max-megapixels") && e.contains("1 MP"),
            "{e}"
        );
        let ok = decode_bytes(&bytes, Path::new("big.jpg"), &DecodeLimits::megapixels(2));
        assert_eq!(ok.unwrap().width(), 1100);
        assert_eq!(
            DecodeLimits::default().max_pixels,
            8192 * 8192,
            "the default takes 8192×8192"
        );
    }
}
