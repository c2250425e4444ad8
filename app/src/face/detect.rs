//! Face detection: SeetaFace's funnel-structured cascade (the `rustface`
//! crate, pure Rust, BSD-2-Clause), with the model file that ships inside
//! that crate.
//!
//! SeetaFace scans a 40-px window over an image pyramid that only shrinks,
//! so a face smaller than 40 px is found only after the image is enlarged:
//! [`Detector::detect`] enlarges it by 40/min_face first. dlib's examples/faces
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
/// SeetaFace's score threshold; 2.0 is its authors' example value, and
/// dlib's examples/faces gave no false faces with it.
const SCORE_THRESH: f64 = 2.0;

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

    /// Every face in the image, largest first.
    pub fn detect(&self, gray: &GrayImage) -> Vec<FaceBox> {
        let (w, h) = gray.dimensions();
        let scale = if self.min_face < WINDOW {
            WINDOW as f32 / self.min_face as f32
        } else {
            1.0
        };
        let scaled;
        let image = if scale > 1.0 {
            let (sw, sh) = (
                (w as f32 * scale).round() as u32,
                (h as f32 * scale).round() as u32,
            );
            scaled = image::imageops::resize(gray, sw, sh, image::imageops::FilterType::Triangle);
            &scaled
        } else {
            gray
        };
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
                    b.x() as f32 / scale,
                    b.y() as f32 / scale,
                    b.width() as f32 / scale,
                    b.height() as f32 / scale,
                    f.score() as f32,
                )
            })
            .collect();
        faces.sort_by(|a, b| b.w.total_cmp(&a.w));
        faces
    }
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
