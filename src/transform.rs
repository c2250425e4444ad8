//! Images to network input: channel conversion, optional augmentation
//! (random resized crop, horizontal flip), resize, and normalisation to a
//! CHW f32 slice. The same code serves training (with augmentation) and
//! embedding (without), driven by the [`ModelSpec`] recorded in the model.
use image::imageops::FilterType;
use image::DynamicImage;
use rand::Rng;
use rayon::prelude::*;

use crate::model::ModelSpec;

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Augment {
    /// Mirror left-right with probability ½ (turn off for left/right-sensitive regions).
    pub flip: bool,
    /// Smallest area fraction kept by the random resized crop (1.0 = no crop).
    pub min_crop: f32,
}

impl Augment {
    pub const NONE: Augment = Augment {
        flip: false,
        min_crop: 1.0,
    };
}

/// Floats per image for `spec`.
pub fn input_len(spec: &ModelSpec) -> usize {
    spec.channels as usize * spec.input_size as usize * spec.input_size as usize
}

/// Writes the normalised CHW input for `img` into `out` (`input_len` floats).
pub fn to_input<R: Rng>(
    img: &DynamicImage,
    spec: &ModelSpec,
    aug: Option<(&Augment, &mut R)>,
    out: &mut [f32],
) {
    let size = spec.input_size;
    let mut img = if spec.channels == 1 {
        DynamicImage::ImageLuma8(img.to_luma8())
    } else {
        DynamicImage::ImageRgb8(img.to_rgb8())
    };
    let mut flip = false;
    if let Some((aug, rng)) = aug {
        if aug.min_crop < 1.0 {
            let (w, h) = (img.width() as f32, img.height() as f32);
            let area = w * h * rng.random_range(aug.min_crop.max(0.05)..=1.0);
            let ratio = (rng.random_range((0.75f32).ln()..=(4.0f32 / 3.0).ln())).exp();
            let cw = (area * ratio).sqrt().round().clamp(1.0, w) as u32;
            let ch = (area / ratio).sqrt().round().clamp(1.0, h) as u32;
            let x = rng.random_range(0..=img.width() - cw);
            let y = rng.random_range(0..=img.height() - ch);
            img = img.crop_imm(x, y, cw, ch);
        }
        flip = aug.flip && rng.random_bool(0.5);
    }
    if img.width() != size || img.height() != size {
        img = img.resize_exact(size, size, FilterType::Triangle);
    }
    let channels = spec.channels as usize;
    let plane = (size * size) as usize;
    let bytes = img.as_bytes();
    let scale: Vec<f32> = spec.std.iter().map(|s| 1.0 / (255.0 * s)).collect();
    let shift: Vec<f32> = spec
        .mean
        .iter()
        .zip(&spec.std)
        .map(|(m, s)| m / s)
        .collect();
    for y in 0..size as usize {
        for x in 0..size as usize {
            let sx = if flip { size as usize - 1 - x } else { x };
            let src = (y * size as usize + sx) * channels;
            let dst = y * size as usize + x;
            for c in 0..channels {
                out[c * plane + dst] = f32::from(bytes[src + c]) * scale[c] - shift[c];
            }
        }
    }
}

/// Whether [`batch_input`] mirrors the image of `seed` under `aug`, where
/// mirroring is all it does (no random crop); `None` where a crop makes the
/// input more than a function of the image and the flip. Follows the draws
/// of [`to_input`].
pub fn flipped(aug: Option<&Augment>, seed: u64) -> Option<bool> {
    match aug {
        None => Some(false),
        Some(a) if a.min_crop < 1.0 => None,
        Some(a) => {
            let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seed);
            Some(a.flip && rng.random_bool(0.5))
        }
    }
}

/// Inputs for a batch, in parallel; `seeds[i]` drives item `i`'s augmentation.
pub fn batch_input(
    images: &[&DynamicImage],
    spec: &ModelSpec,
    aug: Option<&Augment>,
    seeds: &[u64],
) -> Vec<f32> {
    let len = input_len(spec);
    let mut out = vec![0f32; len * images.len()];
    out.par_chunks_mut(len)
        .enumerate()
        .for_each(|(i, chunk)| match aug {
            Some(a) => {
                let mut rng =
                    <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(seeds[i]);
                to_input(images[i], spec, Some((a, &mut rng)), chunk);
            }
            None => to_input::<rand_chacha::ChaCha8Rng>(images[i], spec, None, chunk),
        });
    out
}

/// Per-channel mean and standard deviation of pixels in [0, 1], recorded
/// in the model as its normalisation, summed one image at a time so that
/// the images need not be held together (`train` samples up to 2,000 of
/// them: of 12-megapixel photos, 72 GB decoded).
#[derive(Debug, Clone)]
pub struct ChannelSums {
    channels: usize,
    sum: Vec<f64>,
    sq: Vec<f64>,
    n: f64,
}

impl ChannelSums {
    pub fn new(channels: u32) -> Self {
        let c = channels as usize;
        ChannelSums {
            channels: c,
            sum: vec![0f64; c],
            sq: vec![0f64; c],
            n: 0.0,
        }
    }

    /// Adds `img`'s pixels, converted to this many channels.
    pub fn add(&mut self, img: &DynamicImage) {
        let c = self.channels;
        let buf = if c == 1 {
            img.to_luma8().into_raw()
        } else {
            img.to_rgb8().into_raw()
        };
        for px in buf.chunks_exact(c) {
            for (i, &v) in px.iter().enumerate() {
                let v = f64::from(v) / 255.0;
                self.sum[i] += v;
                self.sq[i] += v * v;
            }
        }
        self.n += (buf.len() / c) as f64;
    }

    /// Mean and standard deviation per channel (at least 1e-3).
    pub fn stats(&self) -> (Vec<f32>, Vec<f32>) {
        let n = self.n.max(1.0);
        let mean: Vec<f32> = self.sum.iter().map(|s| (s / n) as f32).collect();
        let std = self
            .sq
            .iter()
            .zip(&mean)
            .map(|(q, &m)| {
                ((q / n - f64::from(m) * f64::from(m)).max(1e-8).sqrt() as f32).max(1e-3)
            })
            .collect();
        (mean, std)
    }
}
