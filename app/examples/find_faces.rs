//! What `POST /faces` costs on one photo: decode, then find the faces and
//! their regions, as the server does, timed (best of `RUNS`).
//!
//! `cargo run --release -p likeness-app --example find_faces -- PHOTO [SIDE]`
//!
//! With SIDE, the photo is first enlarged to SIDE px on its long side and
//! set on a grey SIDE×SIDE square, written as a JPEG (quality 90) beside the
//! system's temporary files, and that file is timed: a large photo from a
//! small one, with faces to find.
use std::path::{Path, PathBuf};
use std::time::Instant;

use likeness_app::face::{self, models, FaceFinder, Landmarks};
use likeness_app::read::decode::{decode_bytes, DecodeLimits};

const RUNS: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let photo = PathBuf::from(args.next().ok_or("usage: find_faces PHOTO [SIDE]")?);
    let side: Option<u32> = args.next().map(|s| s.parse()).transpose()?;
    let path = match side {
        Some(side) => enlarge(&photo, side)?,
        None => photo,
    };
    let bytes = std::fs::read(&path)?;
    let finder = FaceFinder::open(
        &models::default_dir(),
        Landmarks::default(),
        face::DEFAULT_MIN_FACE,
    )?;
    let limits = DecodeLimits::default();
    let (mut decode_s, mut find_s) = (f64::MAX, f64::MAX);
    let mut found = Vec::new();
    let (mut width, mut height) = (0, 0);
    for _ in 0..RUNS {
        let t = Instant::now();
        let image = decode_bytes(&bytes, &path, &limits)?;
        decode_s = decode_s.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let faces = finder.find(&image);
        let boxes = face::region_boxes(&faces, &[], image.width(), image.height());
        find_s = find_s.min(t.elapsed().as_secs_f64());
        (width, height) = (image.width(), image.height());
        found = faces
            .iter()
            .zip(&boxes)
            .map(|(f, b)| (f.bbox, b.len()))
            .collect();
    }
    likeness_app::outln!(
        "{}: {width}x{height}, decode {:.0} ms, faces {:.0} ms (best of {RUNS}), {} faces",
        path.display(),
        decode_s * 1e3,
        find_s * 1e3,
        found.len()
    )?;
    for (b, regions) in found {
        likeness_app::outln!(
            "  box {:.0},{:.0} {:.0}x{:.0} score {:.1}, {regions} regions",
            b.x,
            b.y,
            b.w,
            b.h,
            b.score
        )?;
    }
    Ok(())
}

/// `photo` enlarged to `side` px on its long side, centred on grey
/// `side`×`side`, as a JPEG in the temporary folder.
fn enlarge(photo: &Path, side: u32) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let image = image::open(photo)?.to_rgb8();
    let (w, h) = image.dimensions();
    let s = side as f64 / w.max(h) as f64;
    let (nw, nh) = ((w as f64 * s).round() as u32, (h as f64 * s).round() as u32);
    let big = image::imageops::resize(&image, nw, nh, image::imageops::FilterType::Triangle);
    let mut canvas = image::RgbImage::from_pixel(side, side, image::Rgb([128, 128, 128]));
    image::imageops::overlay(
        &mut canvas,
        &big,
        i64::from((side - nw) / 2),
        i64::from((side - nh) / 2),
    );
    let stem = photo.file_stem().unwrap_or_default().to_string_lossy();
    let out = std::env::temp_dir().join(format!("{stem}-{side}.jpg"));
    let mut file = std::io::BufWriter::new(std::fs::File::create(&out)?);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut file, 90).encode_image(&canvas)?;
    Ok(out)
}
