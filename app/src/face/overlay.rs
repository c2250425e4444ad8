//! A picture for a person to check what `regions` placed: the face boxes,
//! the landmarks and every region's rectangle along the face's axes.
use image::{Rgb, RgbImage};

use super::{Face, RegionBox};

/// One colour per region name (eye, under_eye, cheek, brow, nose, mouth, …).
fn colour(name: &str) -> Rgb<u8> {
    match name {
        "eye" => Rgb([0, 200, 255]),
        "under_eye" => Rgb([255, 0, 200]),
        "cheek" => Rgb([255, 160, 0]),
        "brow" => Rgb([120, 255, 80]),
        "nose" => Rgb([255, 255, 0]),
        "mouth" => Rgb([255, 60, 60]),
        _ => Rgb([255, 255, 255]),
    }
}

/// Lines this many pixels thick per 500 px of the image's larger side.
fn thickness(image: &RgbImage) -> i32 {
    (image.width().max(image.height()) as i32 / 500).max(1)
}

fn dot(image: &mut RgbImage, x: i32, y: i32, r: i32, c: Rgb<u8>) {
    for dy in -r..=r {
        for dx in -r..=r {
            let (px, py) = (x + dx, y + dy);
            if px >= 0 && py >= 0 && (px as u32) < image.width() && (py as u32) < image.height() {
                image.put_pixel(px as u32, py as u32, c);
            }
        }
    }
}

fn line(image: &mut RgbImage, a: [f32; 2], b: [f32; 2], c: Rgb<u8>) {
    let t = thickness(image) / 2;
    let steps = (b[0] - a[0]).abs().max((b[1] - a[1]).abs()).ceil().max(1.0) as i32;
    for i in 0..=steps {
        let f = i as f32 / steps as f32;
        let (x, y) = (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]));
        dot(image, x.round() as i32, y.round() as i32, t, c);
    }
}

/// Draws the faces onto `image`. The subject's left regions are drawn
/// solid, their right ones dashed, so a mirrored photo is seen at a glance.
pub fn draw(image: &mut RgbImage, faces: &[Face], regions: &[Vec<RegionBox>]) {
    for (face, boxes) in faces.iter().zip(regions) {
        let b = face.bbox;
        let white = Rgb([255, 255, 255]);
        let corners = [
            [b.x, b.y],
            [b.x + b.w, b.y],
            [b.x + b.w, b.y + b.h],
            [b.x, b.y + b.h],
        ];
        for i in 0..4 {
            line(image, corners[i], corners[(i + 1) % 4], white);
        }
        for r in boxes {
            let c = r.placed.corners;
            let dashed = r.placed.side == super::Side::Right;
            for i in 0..4 {
                let (a, z) = (c[i], c[(i + 1) % 4]);
                if dashed {
                    // Eight dashes a side.
                    for k in (0..8).step_by(2) {
                        let p = |t: f32| [a[0] + t * (z[0] - a[0]), a[1] + t * (z[1] - a[1])];
                        line(
                            image,
                            p(k as f32 / 8.0),
                            p((k + 1) as f32 / 8.0),
                            colour(r.placed.name),
                        );
                    }
                } else {
                    line(image, a, z, colour(r.placed.name));
                }
            }
        }
        let r = thickness(image);
        for p in &face.points {
            dot(
                image,
                p[0].round() as i32,
                p[1].round() as i32,
                r,
                Rgb([0, 255, 0]),
            );
        }
    }
}
