//! A synthetic set of graded facial regions with known answers, derived from
//! the dlib "johns" crops (`make data`; `likeness synth-swell`).
//!
//! No public dataset of graded facial regions can be fetched here, so this
//! one is made: each variant of a face gets a smooth local swell (a radial
//! warp with a Gaussian fall-off, content magnified towards the centre) of
//! strength `s` in [0, 1] on the cheek and under-eye areas of each side.
//! For about half the variants the left and right strengths are drawn
//! independently; for the rest they are equal. Every region's score is its
//! strength, so a model's predicted scores and left/right asymmetry can be
//! checked against the truth. It is synthetic: it says nothing about real
//! grades, only whether the machinery measures what it is shown.
//!
//! Everything is a pure function of the seed and the input crops
//! (ChaCha8, PNG output), so reruns give the same files.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::Side;
use crate::error::{Error, Result};

/// Bumped whenever the output changes; `make data` keys its cache on it.
pub const VERSION: u32 = 2;
/// Largest fraction by which the centre of a swell is pulled in (content
/// there is magnified by up to 1 / (1 - 0.7) = 3.3 at `s = 1`).
pub const AMPLITUDE: f32 = 0.7;

/// One graded region of the 150 × 150 aligned crops: label, side (as seen
/// in the image), box `x, y, w, h`, and the σ of its swell in pixels. The
/// right boxes mirror the left ones about the vertical midline (x = 75).
pub const REGIONS: [(&str, Side, u32, u32, u32, u32, f32); 4] = [
    ("cheek", Side::Left, 16, 70, 36, 30, 13.0),
    ("cheek", Side::Right, 98, 70, 36, 30, 13.0),
    ("under_eye", Side::Left, 24, 50, 36, 18, 8.0),
    ("under_eye", Side::Right, 90, 50, 36, 18, 8.0),
];

/// Strengths of one variant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Strengths {
    pub left: f32,
    pub right: f32,
}

/// Applies the swells of `s` to `img` (any size; boxes scale with it).
pub fn swell(img: &RgbImage, s: Strengths) -> RgbImage {
    let (w, h) = img.dimensions();
    let scale = w as f32 / 150.0;
    let centres: Vec<(f32, f32, f32, f32)> = REGIONS
        .iter()
        .map(|&(_, side, x, y, bw, bh, sigma)| {
            let st = match side {
                Side::Left => s.left,
                Side::Right => s.right,
            };
            (
                (x as f32 + bw as f32 / 2.0) * scale,
                (y as f32 + bh as f32 / 2.0) * scale,
                sigma * scale,
                st,
            )
        })
        .collect();
    let mut out = RgbImage::new(w, h);
    for (px, py, p) in out.enumerate_pixels_mut() {
        let (x, y) = (px as f32 + 0.5, py as f32 + 0.5);
        let (mut sx, mut sy) = (x, y);
        for &(cx, cy, sigma, st) in &centres {
            let (dx, dy) = (x - cx, y - cy);
            let g = (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp();
            let pull = AMPLITUDE * st * g;
            sx -= pull * dx;
            sy -= pull * dy;
        }
        *p = bilinear(img, sx - 0.5, sy - 0.5);
    }
    out
}

fn bilinear(img: &RgbImage, x: f32, y: f32) -> Rgb<u8> {
    let (w, h) = img.dimensions();
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let mut o = [0u8; 3];
    for (c, v) in o.iter_mut().enumerate() {
        let a = f32::from(img.get_pixel(x0, y0)[c]);
        let b = f32::from(img.get_pixel(x1, y0)[c]);
        let d = f32::from(img.get_pixel(x0, y1)[c]);
        let e = f32::from(img.get_pixel(x1, y1)[c]);
        let top = a + (b - a) * fx;
        let bot = d + (e - d) * fx;
        *v = (top + (bot - top) * fy).round().clamp(0.0, 255.0) as u8;
    }
    Rgb(o)
}

/// The strengths of variant `k` of crop `name`: equal sides with
/// probability 1/2, values rounded to 3 decimals (as written in the CSV).
pub fn strengths(seed: u64, name: &str, k: usize) -> Strengths {
    let h = crc32fast::hash(format!("{name}/{k}").as_bytes());
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (u64::from(h) << 16) ^ k as u64);
    let round = |v: f32| (v * 1000.0).round() / 1000.0;
    let left = round(rng.random::<f32>());
    let equal = rng.random_bool(0.5);
    let right = if equal {
        left
    } else {
        round(rng.random::<f32>())
    };
    Strengths { left, right }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct SwellSet {
    pub images: usize,
    pub regions: usize,
    pub held_out: String,
}

/// Writes the set into `out`: `images/<person>/<crop>_v<k>.png`,
/// `regions.csv` (every region), `train.csv` (four people), `test.csv` (the
/// fifth, in name order), `strengths.png` (one face at s = 0, 0.5, 1) and
/// `README.txt`. `johns` is the folder of people's crops.
pub fn generate(johns: &Path, out: &Path, seed: u64, variants: usize) -> Result<SwellSet> {
    let mut people: Vec<PathBuf> = std::fs::read_dir(johns)
        .map_err(|e| Error::io(johns, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    people.sort();
    if people.len() < 2 {
        return Err(Error::Invalid(format!(
            "{} holds {} people's folders; the swell set needs the johns crops (`make data`)",
            johns.display(),
            people.len()
        )));
    }
    let held_out = people
        .last()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut crops: Vec<(String, PathBuf)> = Vec::new();
    for p in &people {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| Error::io(p, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| {
                f.extension()
                    .is_some_and(|x| x == "jpg" || x == "jpeg" || x == "png")
            })
            .collect();
        files.sort();
        crops.extend(files.into_iter().map(|f| (name.clone(), f)));
    }
    crate::error::create_dir(out)?;
    // One row per region: path,label,x,y,w,h,score,subject,side.
    let rows: Vec<Result<(String, String)>> = crops
        .par_iter()
        .map(|(person, file)| {
            let img = image::open(file)
                .map_err(|e| Error::Invalid(format!("{}: {e}", file.display())))?
                .to_rgb8();
            let stem = file.file_stem().unwrap_or_default().to_string_lossy();
            let dir = out.join("images").join(person);
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            let mut text = String::new();
            for k in 0..variants {
                let s = strengths(seed, &format!("{person}/{stem}"), k);
                let rel = format!("images/{person}/{stem}_v{k}.png");
                let path = out.join(&rel);
                swell(&img, s)
                    .save(&path)
                    .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
                for &(label, side, x, y, w, h, _) in &REGIONS {
                    let score = match side {
                        Side::Left => s.left,
                        Side::Right => s.right,
                    };
                    let _ = writeln!(
                        text,
                        "{rel},{label},{x},{y},{w},{h},{score},{person}/{stem},{side}"
                    );
                }
            }
            Ok((person.clone(), text))
        })
        .collect();
    let header = "path,label,x,y,w,h,score,subject,side\n";
    let (mut all, mut train, mut test) =
        (header.to_string(), header.to_string(), header.to_string());
    let mut regions = 0;
    for r in rows {
        let (person, text) = r?;
        regions += text.lines().count();
        all.push_str(&text);
        if person == held_out {
            test.push_str(&text);
        } else {
            train.push_str(&text);
        }
    }
    for (name, text) in [
        ("regions.csv", &all),
        ("train.csv", &train),
        ("test.csv", &test),
    ] {
        likeness_index::atomic_write(&out.join(name), |f| {
            use std::io::Write;
            f.write_all(text.as_bytes())
        })?;
    }
    // One face at s = 0, 0.5 and 1 (both sides), side by side.
    if let Some((_, first)) = crops.first() {
        let img = image::open(first)
            .map_err(|e| Error::Invalid(format!("{}: {e}", first.display())))?
            .to_rgb8();
        let (w, h) = img.dimensions();
        let mut strip = RgbImage::from_pixel(3 * w + 8, h, Rgb([255, 255, 255]));
        for (i, s) in [0.0, 0.5, 1.0].into_iter().enumerate() {
            let v = swell(&img, Strengths { left: s, right: s });
            image::imageops::replace(&mut strip, &v, i as i64 * (w as i64 + 4), 0);
        }
        let p = out.join("strengths.png");
        strip
            .save(&p)
            .map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))?;
    }
    let readme = format!(
        "SYNTHETIC graded facial regions (likeness synth-swell, version {VERSION}, seed {seed}).\n\
         Derived from the dlib johns crops: each of {variants} variants per crop has a radial swell\n\
         (Gaussian fall-off, amplitude {AMPLITUDE}) of strength s in [0,1] on the cheek and under-eye\n\
         areas of each side; left and right are equal for about half the variants. score = s.\n\
         Sides are as seen in the image. train.csv: four people; test.csv: {held_out}.\n"
    );
    std::fs::write(out.join("README.txt"), readme).map_err(|e| Error::io(out, e))?;
    Ok(SwellSet {
        images: crops.len() * variants,
        regions,
        held_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_strength_changes_nothing_and_strength_moves_pixels() {
        let img = RgbImage::from_fn(150, 150, |x, y| {
            Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, 9])
        });
        let same = swell(
            &img,
            Strengths {
                left: 0.0,
                right: 0.0,
            },
        );
        assert_eq!(same, img);
        let moved = swell(
            &img,
            Strengths {
                left: 1.0,
                right: 0.0,
            },
        );
        // Left cheek centre changed, right cheek centre did not.
        assert_ne!(moved.get_pixel(30, 80), img.get_pixel(30, 80));
        assert_eq!(moved.get_pixel(120, 85), img.get_pixel(120, 85));
    }

    /// `subject` names the photograph: all swells of one photograph share
    /// it (so `eval --score` leaves them all out), and the fifth person is
    /// only in test.csv.
    #[test]
    fn subjects_are_photographs_and_the_split_is_by_person() {
        let dir = tempfile::tempdir().unwrap();
        let johns = dir.path().join("johns");
        for person in ["Ann", "Bob"] {
            std::fs::create_dir_all(johns.join(person)).unwrap();
            for photo in ["p1", "p2"] {
                RgbImage::from_fn(150, 150, |x, y| Rgb([x as u8, y as u8, 7]))
                    .save(johns.join(person).join(format!("{photo}.png")))
                    .unwrap();
            }
        }
        let out = dir.path().join("set");
        let set = generate(&johns, &out, 0, 3).unwrap();
        assert_eq!(
            (set.images, set.regions, set.held_out.as_str()),
            (12, 48, "Bob")
        );
        let rows = |f: &str| -> Vec<Vec<String>> {
            std::fs::read_to_string(out.join(f))
                .unwrap()
                .lines()
                .skip(1)
                .map(|l| l.split(',').map(str::to_string).collect())
                .collect()
        };
        let test = rows("test.csv");
        assert_eq!(test.len(), 24);
        assert!(test.iter().all(|r| r[0].starts_with("images/Bob/")));
        assert!(rows("train.csv")
            .iter()
            .all(|r| r[0].starts_with("images/Ann/")));
        for r in rows("regions.csv") {
            // images/<person>/<photo>_v<k>.png -> <person>/<photo>
            let stem = r[0].trim_start_matches("images/");
            let photo = &stem[..stem.rfind("_v").unwrap()];
            assert_eq!(r[7], photo, "{r:?}");
        }
    }

    #[test]
    fn strengths_are_seeded_and_about_half_equal() {
        assert_eq!(strengths(0, "a/b", 3), strengths(0, "a/b", 3));
        let equal = (0..400)
            .filter(|&k| {
                let s = strengths(0, "p/q", k);
                s.left == s.right
            })
            .count();
        assert!((150..250).contains(&equal), "{equal}");
    }
}
