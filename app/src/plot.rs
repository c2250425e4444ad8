//! PNG charts for people who would rather look than read: training curves
//! (`curves.png`) and, later, evaluation bars. Text needs a TrueType font:
//! the first of a few common system fonts (Debian: `fonts-dejavu-core`,
//! which `make` installs); without one the charts are drawn without text.
use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
];

/// Registers a system font as "sans-serif" once; false when none exists.
pub fn fonts_available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        for p in FONT_PATHS {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// One line of a chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
}

/// A panel: title, axis names and its lines.
pub struct Panel<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series<'a>>,
    /// The x axis covers at least this range (e.g. every epoch, also where
    /// a series has points only at some).
    pub x_span: Option<(f64, f64)>,
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{}: cannot draw chart: {e}", path.display()))
}

/// Height of the row under each panel that names its lines: the key drawn
/// inside the plot (lower right) covered the end of the loss curve, where
/// training settles, and could cover any curve.
const KEY_ROW: u32 = 26;

/// Draws panels side by side into a PNG (written atomically), each with the
/// names of its lines in a row beneath it, outside the plot.
pub fn line_panels(path: &Path, panels: &[Panel<'_>]) -> Result<()> {
    let text = fonts_available();
    let (w, h) = (520 * panels.len().max(1) as u32, 400);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (panel, whole) in panels.iter().zip(areas.iter()) {
            let (area, key) = whole.split_vertically(if text { h - KEY_ROW } else { h });
            let pts = panel.series.iter().flat_map(|s| s.points.iter());
            let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
            for &(x, y) in pts {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
            if x0 > x1 {
                (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
            }
            if let Some((a, b)) = panel.x_span {
                x0 = x0.min(a);
                x1 = x1.max(b);
            }
            if x1 - x0 < 1e-9 {
                x1 = x0 + 1.0;
            }
            let pad = ((y1 - y0) * 0.08).max(1e-3);
            let mut b = ChartBuilder::on(&area);
            b.margin(14);
            if text {
                b.caption(panel.title, ("sans-serif", 20))
                    .x_label_area_size(36)
                    .y_label_area_size(52);
            }
            let mut chart = b
                .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
                .map_err(|e| plot_err(path, e))?;
            let mut mesh = chart.configure_mesh();
            if text {
                mesh.x_desc(panel.x_label).y_desc(panel.y_label);
            } else {
                mesh.disable_x_axis().disable_y_axis();
            }
            mesh.draw().map_err(|e| plot_err(path, e))?;
            for s in &panel.series {
                let color = s.color;
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| plot_err(path, e))?;
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| plot_err(path, e))?;
            }
            if text {
                draw_key(&key, &panel.series).map_err(|e| plot_err(path, e))?;
            }
        }
        root.present().map_err(|e| plot_err(path, e))?;
    }
    write_png(path, &buf, w, h)
}

/// Encodes an RGB buffer as PNG and publishes it atomically.
/// The lines' names in one row, centred: a short stroke of each colour,
/// then its name.
fn draw_key<DB: DrawingBackend>(
    key: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[Series<'_>],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    const STROKE: i32 = 18;
    const GAP: i32 = 6;
    const APART: i32 = 22;
    let style = TextStyle::from(("sans-serif", 14).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let widths: Vec<i32> = series
        .iter()
        .map(|s| {
            key.estimate_text_size(s.name, &style)
                .map(|(w, _)| w as i32)
        })
        .collect::<std::result::Result<_, _>>()?;
    let total: i32 = widths.iter().map(|w| STROKE + GAP + w).sum::<i32>()
        + APART * (widths.len() as i32 - 1).max(0);
    let (kw, kh) = key.dim_in_pixel();
    let (mut x, y) = (((kw as i32 - total) / 2).max(0), kh as i32 / 2);
    for (s, w) in series.iter().zip(widths) {
        key.draw(&PathElement::new(
            vec![(x, y), (x + STROKE, y)],
            s.color.stroke_width(2),
        ))?;
        key.draw_text(s.name, &style, (x + STROKE + GAP, y))?;
        x += STROKE + GAP + w + APART;
    }
    Ok(())
}

pub fn write_png(path: &Path, rgb: &[u8], w: u32, h: u32) -> Result<()> {
    let img = image::RgbImage::from_raw(w, h, rgb.to_vec())
        .ok_or_else(|| plot_err(path, "buffer size mismatch"))?;
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| plot_err(path, e))?;
    use std::io::Write;
    Ok(likeness_index::atomic_write(path, |f| f.write_all(&bytes))?)
}

/// `eval.png`: one bar per score (Recall@K for each K, Precision@1,
/// R-Precision, MAP@R, ANN agreement), value printed above each bar.
pub fn eval_bars(path: &Path, report: &likeness_index::eval::EvalReport) -> Result<()> {
    let mut bars: Vec<(String, f64)> = report
        .ks
        .iter()
        .filter_map(|k| {
            report.scores[&format!("recall@{k}")]
                .as_f64()
                .map(|v| (format!("R@{k}"), v))
        })
        .collect();
    for (key, name) in [
        ("precision@1", "P@1"),
        ("r_precision", "R-Prec"),
        ("map@r", "MAP@R"),
    ] {
        if let Some(v) = report.scores.get(key).and_then(|v| v.as_f64()) {
            bars.push((name.to_string(), v));
        }
    }
    for (k, v) in &report.scores {
        if let (Some(rest), Some(v)) = (k.strip_prefix("ann_recall@"), v.as_f64()) {
            bars.push((format!("ANN@{rest}"), v));
        }
    }
    let text = fonts_available();
    let (w, h) = (120 + 90 * bars.len() as u32, 420);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let mut b = ChartBuilder::on(&root);
        b.margin(16);
        let title = format!(
            "{} ({} queries, {})",
            report.index, report.queries, report.protocol
        );
        if text {
            b.caption(title, ("sans-serif", 16))
                .x_label_area_size(30)
                .y_label_area_size(48);
        }
        let n = bars.len().max(1);
        let mut chart = b
            .build_cartesian_2d(0f64..n as f64, 0f64..1.05f64)
            .map_err(|e| plot_err(path, e))?;
        let names: Vec<String> = bars.iter().map(|(n, _)| n.clone()).collect();
        let x_name = |x: &f64| {
            let i = x.floor() as usize;
            if (x - i as f64 - 0.5).abs() < 0.01 {
                names.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&x_name);
        if !text {
            mesh.disable_x_axis().disable_y_axis();
        } else {
            mesh.y_desc("score");
        }
        mesh.draw().map_err(|e| plot_err(path, e))?;
        let colour = |name: &str| {
            if name.starts_with("R@") {
                RGBColor(40, 90, 200)
            } else if name.starts_with("ANN") {
                RGBColor(150, 150, 150)
            } else {
                RGBColor(30, 160, 60)
            }
        };
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (name, v))| {
                Rectangle::new(
                    [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v)],
                    colour(name).filled(),
                )
            }))
            .map_err(|e| plot_err(path, e))?;
        if text {
            chart
                .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                    Text::new(
                        format!("{v:.3}"),
                        (i as f64 + 0.25, (v + 0.04).min(1.04)),
                        ("sans-serif", 14),
                    )
                }))
                .map_err(|e| plot_err(path, e))?;
        }
        root.present().map_err(|e| plot_err(path, e))?;
    }
    write_png(path, &buf, w, h)
}

/// `score.png`: predicted against true score, one dot per item, with the
/// identity line (a perfect prediction lies on it).
pub fn score_scatter(path: &Path, pairs: &[(f32, f32)], title: &str) -> Result<()> {
    let text = fonts_available();
    let (w, h) = (520u32, 520u32);
    let finite = pairs
        .iter()
        .flat_map(|&(a, b)| [a, b])
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(f64::from(v)), h.max(f64::from(v)))
    });
    let (lo, hi) = if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.05;
        (lo - pad, hi + pad)
    } else {
        (0.0, 1.0)
    };
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        let mut b = ChartBuilder::on(&root);
        b.margin(16);
        if text {
            b.caption(title, ("sans-serif", 15))
                .x_label_area_size(36)
                .y_label_area_size(48);
        }
        let mut chart = b
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(|e| plot_err(path, e))?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("true score").y_desc("predicted score");
        } else {
            mesh.disable_x_axis().disable_y_axis();
        }
        mesh.draw().map_err(|e| plot_err(path, e))?;
        chart
            .draw_series(LineSeries::new(
                [(lo, lo), (hi, hi)],
                RGBColor(150, 150, 150).stroke_width(2),
            ))
            .map_err(|e| plot_err(path, e))?;
        chart
            .draw_series(pairs.iter().map(|&(t, p)| {
                Circle::new(
                    (f64::from(t), f64::from(p)),
                    3,
                    RGBColor(40, 90, 200).mix(0.6).filled(),
                )
            }))
            .map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    write_png(path, &buf, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key covers no line: a line along the foot of the plot, where a
    /// loss curve settles, is drawn whole (the key in the lower right once
    /// hid its last 80 pixels).
    #[test]
    fn the_key_of_the_lines_covers_none_of_them() {
        assert!(
            fonts_available(),
            "no font in {FONT_PATHS:?}: install fonts-dejavu-core (`make` does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let low = RGBColor(200, 60, 40);
        let line = |y: f64| (1..=12).map(|x| (f64::from(x), y)).collect::<Vec<_>>();
        line_panels(
            &path,
            &[Panel {
                title: "validation",
                x_label: "epoch",
                y_label: "score",
                series: vec![
                    Series {
                        name: "low",
                        points: line(0.0),
                        color: low,
                    },
                    Series {
                        name: "high",
                        points: line(1.0),
                        color: RGBColor(30, 90, 200),
                    },
                ],
                x_span: None,
            }],
        )
        .unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        // The columns with a pixel of the low line's colour: one run, from
        // its first point to its last.
        let has =
            |x: u32| (0..img.height()).any(|y| img.get_pixel(x, y).0 == [low.0, low.1, low.2]);
        let cols: Vec<u32> = (0..img.width()).filter(|&x| has(x)).collect();
        assert!(cols.len() > 300, "{} columns", cols.len());
        let gap = cols.windows(2).map(|w| w[1] - w[0]).max().unwrap();
        assert!(gap <= 2, "the low line is hidden over {gap} columns");
    }
}
