//! `query --montage`: each query beside its nearest items, for people who
//! would rather look than read. One row per query: the query (blue border),
//! then its k results nearest first, each with its label and distance under
//! it and a green border where its label matches the query's, red where it
//! does not (grey when the query's label is unknown).
use std::path::Path;

use image::{imageops::FilterType, DynamicImage, RgbImage};
use likeness_index::{Index, ItemInfo, Neighbours};
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::read::ItemImages;

const THUMB: u32 = 96;
const BORDER: u32 = 4;
const GAP: u32 = 10;
const TEXT: u32 = 36;
/// A caption line's height at the 13 px font.
const LINE: u32 = 15;

const BLUE: [u8; 3] = [40, 90, 200];
const GREEN: [u8; 3] = [30, 160, 60];
const RED: [u8; 3] = [210, 40, 40];
const GREY: [u8; 3] = [150, 150, 150];

pub fn thumb(img: &DynamicImage) -> RgbImage {
    let rgb = img.to_rgb8();
    // Keep the aspect ratio inside a THUMB square, centred on white.
    let (w, h) = rgb.dimensions();
    let scale = THUMB as f32 / w.max(h).max(1) as f32;
    let (tw, th) = (
        ((w as f32 * scale).round() as u32).clamp(1, THUMB),
        ((h as f32 * scale).round() as u32).clamp(1, THUMB),
    );
    let filter = if scale > 2.0 {
        FilterType::Nearest
    } else {
        FilterType::Triangle
    };
    let small = image::imageops::resize(&rgb, tw, th, filter);
    let mut out = RgbImage::from_pixel(THUMB, THUMB, image::Rgb([255, 255, 255]));
    image::imageops::overlay(
        &mut out,
        &small,
        i64::from((THUMB - tw) / 2),
        i64::from((THUMB - th) / 2),
    );
    out
}

fn paste(canvas: &mut RgbImage, tile: &RgbImage, x: u32, y: u32, border: [u8; 3]) {
    for by in 0..THUMB + 2 * BORDER {
        for bx in 0..THUMB + 2 * BORDER {
            canvas.put_pixel(x + bx, y + by, image::Rgb(border));
        }
    }
    image::imageops::overlay(canvas, tile, i64::from(x + BORDER), i64::from(y + BORDER));
}

/// Draws the montage of `found` (one row per query) into `out` (PNG).
pub fn draw(
    out: &Path,
    index: &Index,
    items: &[ItemInfo],
    found: &Neighbours,
    queries: &[(DynamicImage, Option<i64>)],
    loader: &mut ItemImages,
) -> Result<()> {
    let k = found.k() as u32;
    let cell = THUMB + 2 * BORDER;
    let width = GAP + cell + 2 * GAP + k * (cell + GAP);
    let row_h = cell + TEXT + GAP;
    let height = GAP + queries.len() as u32 * row_h;
    let mut canvas = RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let labels = index.labels();
    let manifest = index.manifest();
    let name = |label: Option<i64>| -> String {
        match label {
            Some(l) => manifest
                .class_name(l)
                .map_or_else(|| l.to_string(), str::to_owned),
            None => "?".into(),
        }
    };
    let mut texts: Vec<(String, i32, i32, [u8; 3])> = Vec::new();
    for (q, (qimg, qlabel)) in queries.iter().enumerate() {
        let y = GAP + q as u32 * row_h;
        paste(&mut canvas, &thumb(qimg), GAP, y, BLUE);
        texts.push((name(*qlabel), GAP as i32, (y + cell + 3) as i32, BLUE));
        for (r, (&id, &d)) in found.ids(q).iter().zip(found.distances(q)).enumerate() {
            if id < 0 {
                continue;
            }
            let x = GAP + cell + 2 * GAP + r as u32 * (cell + GAP);
            let img = loader.load(items.get(id as usize))?;
            let label = labels.and_then(|_| index.label_of(id as usize));
            let colour = match (qlabel, label) {
                (Some(a), Some(b)) if *a == b => GREEN,
                (Some(_), Some(_)) => RED,
                _ => GREY,
            };
            paste(&mut canvas, &thumb(&img), x, y, colour);
            texts.push((name(label), x as i32, (y + cell + 3) as i32, colour));
            // Region items also show whose image they come from (the folder).
            let info = items.get(id as usize);
            let owner = info
                .filter(|i| i.region.is_some())
                .and_then(|i| Path::new(i.source.as_str()).parent()?.file_name())
                .map(|n| format!(" {}", n.to_string_lossy()))
                .unwrap_or_default();
            texts.push((
                format!("{d:.3}{owner}"),
                x as i32,
                (y + cell + 18) as i32,
                GREY,
            ));
        }
    }
    let mut buf = canvas.into_raw();
    if crate::plot::fonts_available() {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        for (s, x, y, c) in &texts {
            let style = ("sans-serif", 13)
                .into_font()
                .color(&RGBColor(c[0], c[1], c[2]));
            let mut s = s.clone();
            if s.chars().count() > 15 {
                s = s.chars().take(14).collect::<String>() + "…";
            }
            root.draw(&Text::new(s, (*x, *y), style))
                .map_err(|e| Error::Invalid(format!("{}: cannot draw text: {e}", out.display())))?;
        }
        root.present()
            .map_err(|e| Error::Invalid(format!("{}: cannot draw: {e}", out.display())))?;
    }
    crate::plot::write_png(out, &buf, width, height)
}

/// `asymmetry.png`: pairs of tiles (a left crop beside its mirrored right
/// crop), one pair per row, with a caption of one or two lines (`\n`)
/// under each pair; the most asymmetric pairs (`true`) in a red column, the
/// least in a green one.
pub fn pair_rows(out: &Path, rows: &[(RgbImage, RgbImage, String, bool)]) -> Result<()> {
    let cell = THUMB + 2 * BORDER;
    let pair_w = 2 * cell + 2 * GAP + 120;
    let row_h = cell + TEXT;
    let most = rows.iter().filter(|r| r.3).count() as u32;
    let least = rows.len() as u32 - most;
    let width = GAP + 2 * pair_w;
    let height = GAP + 24 + most.max(least) * row_h;
    let mut canvas = RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let mut texts: Vec<(String, i32, i32, [u8; 3])> = vec![
        ("most asymmetric".into(), GAP as i32, 4, RED),
        ("least asymmetric".into(), (GAP + pair_w) as i32, 4, GREEN),
    ];
    let (mut i_most, mut i_least) = (0u32, 0u32);
    for (l, r, text, is_most) in rows {
        let (col, k, colour) = if *is_most {
            i_most += 1;
            (0, i_most - 1, RED)
        } else {
            i_least += 1;
            (1, i_least - 1, GREEN)
        };
        let x = GAP + col * pair_w;
        let y = GAP + 24 + k * row_h;
        paste(&mut canvas, l, x, y, colour);
        paste(&mut canvas, r, x + cell + 2, y, colour);
        // A caption of up to two lines (TEXT leaves room for them).
        for (i, line) in text.lines().take(2).enumerate() {
            let y = y + cell + 3 + i as u32 * LINE;
            texts.push((line.to_string(), x as i32, y as i32, GREY));
        }
    }
    let mut buf = canvas.into_raw();
    if crate::plot::fonts_available() {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        for (s, x, y, c) in &texts {
            let style = ("sans-serif", 13)
                .into_font()
                .color(&RGBColor(c[0], c[1], c[2]));
            root.draw(&Text::new(s.clone(), (*x, *y), style))
                .map_err(|e| Error::Invalid(format!("{}: cannot draw text: {e}", out.display())))?;
        }
        root.present()
            .map_err(|e| Error::Invalid(format!("{}: cannot draw: {e}", out.display())))?;
    }
    crate::plot::write_png(out, &buf, width, height)
}
