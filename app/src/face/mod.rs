//! Faces in photographs: a detector, landmarks, and regions placed from
//! them. `likeness regions`, `asymmetry --data PHOTOS` and the server's
//! `/faces` all go through [`FaceFinder`]; a whole photo queried by
//! `query --image` or `/search/image` has its faces' regions graded by
//! [`grade_photo`].
//!
//! | module | what |
//! |---|---|
//! | [`chip`] | whether an image is one of dlib's aligned face chips |
//! | [`detect`] | SeetaFace's detector (crate `rustface`), boxes calibrated to dlib's |
//! | [`shape_predictor`] | dlib's landmark cascade, read from its `.dat` and run in Rust |
//! | [`dlib_serial`] | dlib's serialization primitives |
//! | [`geometry`] | the face frame and the regions in it |
//! | [`models`] | which model file does what, its package and licence |
//! | [`overlay`] | the faces, points and regions drawn on the photo |
pub mod chip;
pub mod detect;
pub mod dlib_serial;
pub mod geometry;
pub mod models;
pub mod overlay;
pub mod shape_predictor;

use std::path::Path;
use std::str::FromStr;

use image::DynamicImage;

use crate::error::{Error, Result};
pub use detect::{FaceBox, DEFAULT_MIN_FACE, DETECT_SIDE, MIN_FACE_FLOOR};
pub use geometry::{region_names, Anchors, Frame, Placed, Side};
use shape_predictor::{BoxPx, Gray, ShapePredictor};

/// Which landmark model places the points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Landmarks {
    /// dlib's 5 points (CC0): the default.
    #[default]
    Dlib5,
    /// dlib's 68 points (iBUG 300-W: not for commercial use).
    Dlib68,
}

impl FromStr for Landmarks {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "dlib5" => Ok(Landmarks::Dlib5),
            "dlib68" => Ok(Landmarks::Dlib68),
            _ => Err(format!(
                "unknown landmark model `{s}`; use dlib5 (default) or dlib68"
            )),
        }
    }
}

impl Landmarks {
    pub fn as_str(self) -> &'static str {
        match self {
            Landmarks::Dlib5 => "dlib5",
            Landmarks::Dlib68 => "dlib68",
        }
    }

    fn model(self) -> models::ModelFile {
        match self {
            Landmarks::Dlib5 => models::LANDMARKS_5,
            Landmarks::Dlib68 => models::LANDMARKS_68,
        }
    }
}

/// One face found in an image.
#[derive(Debug, Clone)]
pub struct Face {
    pub bbox: FaceBox,
    /// The landmark model's points, image pixels.
    pub points: Vec<[f32; 2]>,
    pub frame: Frame,
}

impl Face {
    /// The face's regions (`wanted` empty: all of them).
    pub fn regions(&self, wanted: &[String]) -> Vec<Placed> {
        self.frame.regions(wanted)
    }
}

/// A detector and a landmark model, loaded once and used from any thread.
pub struct FaceFinder {
    detector: detect::Detector,
    predictor: ShapePredictor,
    landmarks: Landmarks,
}

impl FaceFinder {
    /// Loads the models from `dir` (see [`models::default_dir`]).
    pub fn open(dir: &Path, landmarks: Landmarks, min_face: u32) -> Result<Self> {
        if min_face < MIN_FACE_FLOOR {
            return Err(Error::Usage(format!(
                "--min-face {min_face}: the detector's smallest face is {MIN_FACE_FLOOR} px"
            )));
        }
        let bytes = models::read(dir, &models::DETECTOR)?;
        let seeta = rustface::read_model(std::io::Cursor::new(bytes)).map_err(|e| {
            Error::Usage(format!(
                "{}: not a SeetaFace model: {e}",
                dir.join(models::DETECTOR.file).display()
            ))
        })?;
        let model = landmarks.model();
        let bytes = models::read(dir, &model)?;
        let predictor = ShapePredictor::from_bytes(&bytes).map_err(|e| {
            Error::Usage(format!(
                "{}: not a dlib shape predictor: {e}",
                dir.join(model.file).display()
            ))
        })?;
        let want = match landmarks {
            Landmarks::Dlib5 => 5,
            Landmarks::Dlib68 => 68,
        };
        if predictor.parts() != want {
            return Err(Error::Usage(format!(
                "{}: places {} points, not {want}",
                dir.join(model.file).display(),
                predictor.parts()
            )));
        }
        Ok(FaceFinder {
            detector: detect::Detector::new(seeta, min_face),
            predictor,
            landmarks,
        })
    }

    pub fn landmarks(&self) -> Landmarks {
        self.landmarks
    }

    pub fn min_face(&self) -> u32 {
        self.detector.min_face()
    }

    /// The face detector.
    pub fn detector(&self) -> &detect::Detector {
        &self.detector
    }

    /// Every face in `image`, largest first, with its landmarks.
    pub fn find(&self, image: &DynamicImage) -> Vec<Face> {
        // A decoded photo is RGB already: read it in place (a copy of an
        // 8192×8192 one is 200 MB).
        let owned;
        let rgb = match image.as_rgb8() {
            Some(rgb) => rgb,
            None => {
                owned = image.to_rgb8();
                &owned
            }
        };
        let (width, height) = rgb.dimensions();
        // dlib reads an RGB pixel's intensity as (r+g+b)/3, rounded down.
        let intensity: Vec<u8> = rgb
            .pixels()
            .map(|p| ((u16::from(p[0]) + u16::from(p[1]) + u16::from(p[2])) / 3) as u8)
            .collect();
        let gray = image::GrayImage::from_raw(width, height, intensity).expect("one byte a pixel");
        let view = Gray {
            pixels: gray.as_raw(),
            width,
            height,
        };
        self.detector
            .detect(&gray)
            .into_iter()
            .map(|bbox| {
                let points = self.locate(&view, bbox);
                let anchors = match self.landmarks {
                    Landmarks::Dlib5 => Anchors::from_five(&points),
                    Landmarks::Dlib68 => Anchors::from_sixty_eight(&points),
                };
                Face {
                    bbox,
                    points,
                    frame: Frame::new(&anchors),
                }
            })
            .collect()
    }

    /// The landmarks inside a face box (dlib's convention: inclusive corners).
    pub fn locate(&self, image: &Gray, b: FaceBox) -> Vec<[f32; 2]> {
        self.predictor.predict(
            image,
            BoxPx {
                left: b.x.round(),
                top: b.y.round(),
                right: (b.x + b.w).round() - 1.0,
                bottom: (b.y + b.h).round() - 1.0,
            },
        )
    }
}

/// A region ready to crop: its image-aligned box inside the image, and the
/// face-frame rectangle it came from.
#[derive(Debug, Clone, Copy)]
pub struct RegionBox {
    pub placed: Placed,
    pub region: crate::read::Region,
}

/// Boxes that stick out of the image are cut at its edge; one that keeps
/// less than this share of its area is dropped (a face at the border).
const MIN_INSIDE: f32 = 0.6;

impl RegionBox {
    /// `placed`'s image-aligned box cut to a `width`×`height` image, or
    /// `None` when too little of it is inside.
    pub fn clip(placed: Placed, width: u32, height: u32) -> Option<Self> {
        let [x0, y0, x1, y1] = placed.bounds();
        let area = (x1 - x0) * (y1 - y0);
        let (cx0, cy0) = (x0.max(0.0).round(), y0.max(0.0).round());
        let (cx1, cy1) = (x1.min(width as f32).round(), y1.min(height as f32).round());
        if cx1 - cx0 < 2.0 || cy1 - cy0 < 2.0 || (cx1 - cx0) * (cy1 - cy0) < MIN_INSIDE * area {
            return None;
        }
        Some(RegionBox {
            placed,
            region: crate::read::Region {
                x: cx0 as u32,
                y: cy0 as u32,
                w: (cx1 - cx0) as u32,
                h: (cy1 - cy0) as u32,
            },
        })
    }
}

/// Why [`grade_regions`] gave no grades.
#[derive(Debug)]
pub enum GradeError {
    /// A region could not be cut from the image.
    Crop(Error),
    /// The network failed.
    Embed(String),
}

/// Every region's grade by the model's score read-out, in the order of
/// `boxes` (face by face), from one forward pass over the crops that
/// `--region`/`region=` would embed; `None` where the read-out did not
/// learn the region's label (`card`). `/faces` grades with it, and
/// [`grade_photo`] (`query --image PHOTO`, `/search/image`).
pub fn grade_regions(
    embedder: &dyn crate::embedder::ImageEmbedder,
    card: &crate::model_card::ModelSummary,
    image: &DynamicImage,
    boxes: &[Vec<RegionBox>],
    source: &Path,
) -> std::result::Result<Vec<Option<f32>>, GradeError> {
    let regions: Vec<&RegionBox> = boxes.iter().flatten().collect();
    let wanted: Vec<bool> = regions
        .iter()
        .map(|r| card.grades_label(r.placed.name))
        .collect();
    let crops = regions
        .iter()
        .zip(&wanted)
        .filter(|(_, &w)| w)
        .map(|(r, _)| crate::read::decode::crop(image, r.region, source))
        .collect::<Result<Vec<_>>>()
        .map_err(GradeError::Crop)?;
    let mut grades = if crops.is_empty() {
        Vec::new()
    } else {
        let refs: Vec<&DynamicImage> = crops.iter().collect();
        embedder
            .embed_and_grade(&refs)
            .map_err(GradeError::Embed)?
            .grades
            .unwrap_or_default()
    }
    .into_iter();
    Ok(wanted
        .iter()
        .map(|&w| if w { grades.next() } else { None })
        .collect())
}

/// The labels a model's score read-out learnt, where every one is a
/// facial region (a name `likeness regions` writes): a whole photo is then
/// no crop of anything it learnt, and [`grade_photo`] grades its faces'
/// regions of these labels instead. `None` without a read-out, or where
/// the card names no labels or any other label (the photo may be what the
/// read-out grades).
pub fn graded_face_labels(card: &crate::model_card::ModelSummary) -> Option<Vec<String>> {
    if !card.grades() {
        return None;
    }
    let labels = &card.score_domain.as_ref()?.labels;
    let known = region_names();
    (!labels.is_empty() && labels.iter().all(|l| known.contains(&l.as_str())))
        .then(|| labels.clone())
}

/// A face of a whole photo, and its regions of the labels the read-out
/// learnt, graded ([`grade_photo`]).
#[derive(Debug, Clone)]
pub struct GradedFace {
    pub face: Face,
    /// Its regions of those labels, cut to the photo.
    pub regions: Vec<RegionBox>,
    /// Each region's grade, in the order of `regions`.
    pub grades: Vec<Option<f32>>,
}

/// A whole photo queried with no region (`query --image`, `POST
/// /search/image`): when the read-out learnt facial regions only
/// ([`graded_face_labels`]) and `finder` finds faces, each face's regions of
/// those labels with their grades ([`grade_regions`]), largest face first.
/// A johns photo queried whole once got `grade: 0.3896` from a model that
/// learnt cheeks and under-eyes: no grade of anything it learnt. `None` for
/// any other model, or where no face is found (the image may be a region's
/// crop, which the read-out grades as it is).
pub fn grade_photo(
    finder: &FaceFinder,
    embedder: &dyn crate::embedder::ImageEmbedder,
    card: &crate::model_card::ModelSummary,
    image: &DynamicImage,
    source: &Path,
) -> std::result::Result<Option<Vec<GradedFace>>, GradeError> {
    let Some(labels) = graded_face_labels(card) else {
        return Ok(None);
    };
    let faces = finder.find(image);
    if faces.is_empty() {
        return Ok(None);
    }
    let boxes = region_boxes(&faces, &labels, image.width(), image.height());
    let mut grades = grade_regions(embedder, card, image, &boxes, source)?.into_iter();
    Ok(Some(
        faces
            .into_iter()
            .zip(boxes)
            .map(|(face, regions)| GradedFace {
                grades: grades.by_ref().take(regions.len()).collect(),
                face,
                regions,
            })
            .collect(),
    ))
}

/// Every region of every face, cut to the image.
pub fn region_boxes(
    faces: &[Face],
    wanted: &[String],
    width: u32,
    height: u32,
) -> Vec<Vec<RegionBox>> {
    faces
        .iter()
        .map(|f| {
            f.regions(wanted)
                .into_iter()
                .filter_map(|p| RegionBox::clip(p, width, height))
                .collect()
        })
        .collect()
}

/// `--regions LIST`: known names only, each once.
pub fn parse_region_list(list: &str) -> Result<Vec<String>> {
    let known = region_names();
    let mut out: Vec<String> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !known.contains(&name) {
            return Err(Error::Usage(format!(
                "--regions: unknown region `{name}`; the regions are {}",
                known.join(", ")
            )));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}
