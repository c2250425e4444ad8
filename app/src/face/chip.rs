//! dlib's aligned face chips: a square crop in which a face's 5 landmarks
//! fall at fixed places (dlib's `get_face_chip_details`, 150 px, padding
//! 0.25; the johns crops are such chips). dlib's face descriptor expects
//! them, so `train` checks for them before it chooses that network.
use image::DynamicImage;

use super::{FaceFinder, Landmarks};

/// The chip side dlib's descriptor takes.
pub const SIDE: u32 = 150;

/// Where the 5-point model's landmarks fall in a 150 px chip (outer and
/// inner corner of the eye on the image's right, then of the eye on its
/// left, then the base of the nose): their mean over the 55 johns chips
/// (`likeness regions --landmarks-out`; standard deviations 1.5 to 4.4 px).
pub const POINTS: [[f32; 2]; 5] = [
    [109.8, 47.7],
    [90.3, 47.6],
    [37.7, 46.4],
    [57.3, 47.1],
    [74.0, 86.1],
];

/// How far (px at 150) a landmark may lie from [`POINTS`]: about three
/// standard deviations of the farthest-spread point over the johns chips.
pub const TOLERANCE: f32 = 12.0;

/// Whether `image` is an aligned face chip: square, with a face whose 5
/// landmarks all lie within [`TOLERANCE`] of [`POINTS`] (scaled to its side).
pub fn is_chip(finder: &FaceFinder, image: &DynamicImage) -> bool {
    let (w, h) = (image.width(), image.height());
    if w != h || w == 0 || finder.landmarks() != Landmarks::Dlib5 {
        return false;
    }
    let scale = SIDE as f32 / w as f32;
    finder.find(image).iter().any(|face| {
        face.points.len() == POINTS.len()
            && face.points.iter().zip(POINTS).all(|(p, q)| {
                let (dx, dy) = (p[0] * scale - q[0], p[1] * scale - q[1]);
                dx.hypot(dy) <= TOLERANCE
            })
    })
}

/// `face` cut from `image` as an aligned chip of [`SIDE`] px: the
/// similarity transform (rotation, scale, shift; least squares) that takes
/// its 5 landmarks to [`POINTS`], sampled bilinearly, black outside the
/// photo (as dlib's `extract_image_chip`). `None` without 5 landmarks.
pub fn cut(image: &image::RgbImage, face: &super::Face) -> Option<image::RgbImage> {
    if face.points.len() != POINTS.len() {
        return None;
    }
    // Least squares for x' = a·x − b·y + tx, y' = b·x + a·y + ty, from the
    // photo's points (x, y) to the chip's (x', y'), both centred.
    let mean = |pts: &[[f64; 2]]| {
        let n = pts.len() as f64;
        let (sx, sy) = pts
            .iter()
            .fold((0.0, 0.0), |(sx, sy), p| (sx + p[0], sy + p[1]));
        [sx / n, sy / n]
    };
    let src: Vec<[f64; 2]> = face
        .points
        .iter()
        .map(|p| [f64::from(p[0]), f64::from(p[1])])
        .collect();
    let dst: Vec<[f64; 2]> = POINTS
        .iter()
        .map(|p| [f64::from(p[0]), f64::from(p[1])])
        .collect();
    let (ms, md) = (mean(&src), mean(&dst));
    let (mut num_a, mut num_b, mut den) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(&dst) {
        let (x, y) = (s[0] - ms[0], s[1] - ms[1]);
        let (u, v) = (d[0] - md[0], d[1] - md[1]);
        num_a += x * u + y * v;
        num_b += x * v - y * u;
        den += x * x + y * y;
    }
    if den <= 0.0 {
        return None;
    }
    let (a, b) = (num_a / den, num_b / den);
    let scale2 = a * a + b * b;
    if scale2 <= 0.0 {
        return None;
    }
    // The inverse maps each chip pixel back into the photo.
    let (w, h) = (image.width() as i64, image.height() as i64);
    let sample = |x: f64, y: f64| -> [u8; 3] {
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let px = |xi: i64, yi: i64| -> [f64; 3] {
            if xi < 0 || yi < 0 || xi >= w || yi >= h {
                return [0.0; 3];
            }
            let p = image.get_pixel(xi as u32, yi as u32).0;
            [f64::from(p[0]), f64::from(p[1]), f64::from(p[2])]
        };
        let (xi, yi) = (x0 as i64, y0 as i64);
        let (p00, p10, p01, p11) = (
            px(xi, yi),
            px(xi + 1, yi),
            px(xi, yi + 1),
            px(xi + 1, yi + 1),
        );
        let mut out = [0u8; 3];
        for c in 0..3 {
            let top = p00[c] * (1.0 - fx) + p10[c] * fx;
            let bottom = p01[c] * (1.0 - fx) + p11[c] * fx;
            out[c] = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
        }
        out
    };
    Some(image::RgbImage::from_fn(SIDE, SIDE, |u, v| {
        let (du, dv) = (f64::from(u) - md[0], f64::from(v) - md[1]);
        // (x, y) − mean = R⁻¹ (u, v) − mean', with R⁻¹ = [a b; −b a] / (a² + b²).
        let x = (a * du + b * dv) / scale2 + ms[0];
        let y = (-b * du + a * dv) / scale2 + ms[1];
        image::Rgb(sample(x, y))
    }))
}
