//! Face detection: SeetaFace's funnel-structured cascade (the `rustface`
//! crate, pure Rust, BSD-2-Clause), with the model file that ships inside
//! that crate.
//!
//! SeetaFace scans a 40-px window over an image pyramid that only shrinks,
//! so a face smaller than 40 px is found only after the image is enlarged:
//! [`Detector::detect`] resizes it by 40/min_face first (shrinking it for
//! a `min_face` over 40, so that smaller faces are left out). dlib's examples/faces
//! hold faces of 37–52 px by dlib's boxes, 41–58 px by SeetaFace's (1/0.902 larger):
//! its window finds 40 of their 43 unscaled, and enlarging for 32 px finds 41
//! but takes 1.3x as long, so the default `min_face` is 40.
use image::GrayImage;
use rustface::{ImageData, Model};

/// SeetaFace's window, in pixels: the smallest face it sees unscaled.
const WINDOW: u32 = 40;
/// The crate's own floor for `set_min_face_size` (it panics below it).
pub const MIN_FACE_FLOOR: u32 = 20;
/// The default smallest face, in pixels across.
pub const DEFAULT_MIN_FACE: u32 = 40;
/// The longest side the detector scans: a larger photo is shrunk to it
/// first and the boxes mapped back; the landmarks are still placed on the
/// photo's own pixels. SeetaFace's cost grows with the pixels it scans: an
/// 8192×8192 photo took 7.1 s, and under 1 s at 2048 with the same faces
/// (docs/benchmarks.md, "Regions"). 2048 keeps faces down to 40/2048 of the long side (79 px of a 12 MP
/// phone photo), where 1024 would lose those under 158 px.
pub const DETECT_SIDE: u32 = 2048;
/// SeetaFace's score threshold; 2.0 is its authors' example value, and
/// dlib's examples/faces gave no false faces with it.
const SCORE_THRESH: f64 = 2.0;
/// A face whose box lies this share of its area or more inside a larger
/// face's box is a false detection (a face inside a face), and is dropped.
/// Measured: johns' John_Savage/000289_01099139.jpg gave a second "face",
/// a 37 px box on an eye wholly inside the 117 px real one (share 1.0),
/// which then counted as another person; in dlib's examples/faces (66 faces
/// side by side) no box lies more than 0.126 inside another.
pub const NESTED_SHARE: f32 = 0.8;

/// A face's box in image pixels, as dlib's shape predictors expect it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    /// The detector's confidence.
    pub score: f32,
}

pub struct Detector {
    model: Model,
    min_face: u32,
}

impl Detector {
    /// `min_face` is checked by the arguments (at least [`MIN_FACE_FLOOR`]).
    pub fn new(model: Model, min_face: u32) -> Self {
        Detector {
            model,
            min_face: min_face.max(MIN_FACE_FLOOR),
        }
    }

    pub fn min_face(&self) -> u32 {
        self.min_face
    }

    /// Every face in the image, largest first, in its own pixels; a box
    /// inside a larger one is dropped ([`drop_nested`]).
    pub fn detect(&self, gray: &GrayImage) -> Vec<FaceBox> {
        drop_nested(self.detect_all(gray))
    }

    /// Every box the cascade gives, largest first, nested ones included.
    pub fn detect_all(&self, gray: &GrayImage) -> Vec<FaceBox> {
        let (w, h) = gray.dimensions();
        let scale = detect_scale(w, h, self.min_face);
        let (sw, sh) = (
            ((w as f32 * scale).round() as u32).max(1),
            ((h as f32 * scale).round() as u32).max(1),
        );
        let scaled;
        let image = if scale > 1.0 {
            scaled = image::imageops::resize(gray, sw, sh, image::imageops::FilterType::Triangle);
            &scaled
        } else if scale < 1.0 {
            // Each source pixel into one target pixel, averaged: 30 ms for
            // 8192² to 2048², where a Triangle filter took ~10 times that.
            scaled = image::imageops::thumbnail(gray, sw, sh);
            &scaled
        } else {
            gray
        };
        // The exact ratio each way, so boxes map back onto the photo.
        let (sx, sy) = (sw as f32 / w as f32, sh as f32 / h as f32);
        let (iw, ih) = image.dimensions();
        if iw < WINDOW || ih < WINDOW {
            return Vec::new();
        }
        // A detector holds its scratch buffers; a fresh one per image keeps
        // images independent across rayon's threads (the model clone is 1.2 MB).
        let mut detector = rustface::create_detector_with_model(self.model.clone());
        detector.set_min_face_size(WINDOW);
        detector.set_score_thresh(SCORE_THRESH);
        detector.set_pyramid_scale_factor(0.8);
        detector.set_slide_window_step(4, 4);
        let mut faces: Vec<FaceBox> = detector
            .detect(&ImageData::new(image.as_raw(), iw, ih))
            .into_iter()
            .map(|f| {
                let b = f.bbox();
                to_dlib_box(
                    b.x() as f32 / sx,
                    b.y() as f32 / sy,
                    b.width() as f32 / sx,
                    b.height() as f32 / sy,
                    f.score() as f32,
                )
            })
            .collect();
        faces.sort_by(|a, b| b.w.total_cmp(&a.w));
        faces
    }
}

/// `faces` (largest first) without those whose box lies [`NESTED_SHARE`]
/// or more inside a larger face's box that is kept.
pub fn drop_nested(faces: Vec<FaceBox>) -> Vec<FaceBox> {
    let mut kept: Vec<FaceBox> = Vec::with_capacity(faces.len());
    for f in faces {
        if !kept.iter().any(|big| inside_share(&f, big) >= NESTED_SHARE) {
            kept.push(f);
        }
    }
    kept
}

/// The share of `small`'s area that lies inside `big`'s box.
pub fn inside_share(small: &FaceBox, big: &FaceBox) -> f32 {
    let w = ((small.x + small.w).min(big.x + big.w) - small.x.max(big.x)).max(0.0);
    let h = ((small.y + small.h).min(big.y + big.h) - small.y.max(big.y)).max(0.0);
    let area = small.w * small.h;
    if area > 0.0 {
        w * h / area
    } else {
        0.0
    }
}

/// The factor a `w`×`h` image is resized by before detection: so that a
/// face of `min_face` px fills the window (enlarged for a smaller one,
/// shrunk for a larger one), and shrunk further if need be to
/// [`DETECT_SIDE`] on its long side. rustface takes a smallest face
/// (`set_min_face_size`) and ignores it: scanned as it was, `--min-face
/// 100` still found the 31–54 px faces of dlib's 2008_002079.jpg.
fn detect_scale(w: u32, h: u32, min_face: u32) -> f32 {
    let fit = WINDOW as f32 / min_face as f32;
    let cap = DETECT_SIDE as f32 / w.max(h).max(1) as f32;
    fit.min(cap)
}

/// SeetaFace's boxes are larger and sit higher than the dlib HOG boxes that
/// dlib's shape predictors were trained on: measured on 57 faces, dlib's box
/// is 0.902 of SeetaFace's width, its centre (+0.008, +0.071) widths away.
fn to_dlib_box(x: f32, y: f32, w: f32, h: f32, score: f32) -> FaceBox {
    let (cx, cy) = (x + w / 2.0 + 0.008 * w, y + h / 2.0 + 0.071 * w);
    let side = 0.902 * w.max(h);
    FaceBox {
        x: cx - side / 2.0,
        y: cy - side / 2.0,
        w: side,
        h: side,
        score,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An 8192×8192 upload was scanned whole (5.6 s of CPU in `/faces`);
    /// now at most DETECT_SIDE on its long side, while a photo that size or
    /// smaller is scanned as it is, enlarged for a small `min_face`, or
    /// shrunk for a large one.
    #[test]
    fn a_large_photo_is_scanned_at_most_detect_side_long() {
        let side = |w: u32, h: u32, min_face: u32| {
            let s = detect_scale(w, h, min_face);
            ((w as f32 * s).round() as u32, (h as f32 * s).round() as u32)
        };
        assert_eq!(side(8192, 8192, DEFAULT_MIN_FACE), (2048, 2048));
        assert_eq!(side(8192, 6372, DEFAULT_MIN_FACE), (2048, 1593));
        assert_eq!(side(6372, 8192, MIN_FACE_FLOOR), (1593, 2048));
        assert_eq!(side(1986, 1545, DEFAULT_MIN_FACE), (1986, 1545));
        assert_eq!(side(500, 375, MIN_FACE_FLOOR), (1000, 750));
        assert_eq!(side(1986, 1545, MIN_FACE_FLOOR), (2048, 1593));
        // A smallest face over the window: shrunk so that it fills it.
        assert_eq!(side(2000, 1500, 100), (800, 600));
        assert_eq!(side(8192, 6144, 100), (2048, 1536));
    }

    /// johns' John_Savage/000289 gave a second "face" on an eye inside the
    /// real one, which then counted as another person. A box mostly inside
    /// a larger one goes; faces side by side, or only partly overlapping, stay.
    #[test]
    fn a_face_inside_a_face_is_dropped() {
        let b = |x: f32, y: f32, w: f32| FaceBox {
            x,
            y,
            w,
            h: w,
            score: 1.0,
        };
        let face = b(10.0, 10.0, 120.0);
        let eye = b(90.0, 40.0, 25.0);
        assert_eq!(inside_share(&eye, &face), 1.0);
        assert_eq!(drop_nested(vec![face, eye]), vec![face]);
        // 20% of it outside the face: at the threshold, still dropped.
        let edge = b(110.0, 40.0, 25.0);
        assert!((inside_share(&edge, &face) - 0.8).abs() < 1e-6);
        assert_eq!(drop_nested(vec![face, edge]), vec![face]);
        // Beyond it, and faces side by side, are kept.
        let out = b(111.0, 40.0, 25.0);
        let beside = b(120.0, 10.0, 100.0);
        assert_eq!(drop_nested(vec![face, out]), vec![face, out]);
        assert_eq!(drop_nested(vec![face, beside]), vec![face, beside]);
        // A box inside one that was itself dropped is judged by the kept ones.
        let inner = b(95.0, 45.0, 10.0);
        assert_eq!(drop_nested(vec![face, eye, inner]), vec![face]);
        assert_eq!(inside_share(&b(0.0, 0.0, 0.0), &face), 0.0);
    }
}
