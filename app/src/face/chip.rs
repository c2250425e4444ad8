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
