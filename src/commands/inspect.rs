//! `likeness inspect`: what a data source holds; `--check` decodes every image.
use std::process::ExitCode;

use likeness_app::args::InspectArgs;

use crate::data::Dataset;
use crate::error::{Error, Result};
use likeness_app::plural::plural;

#[derive(serde::Serialize)]
struct InspectReport<'a> {
    source: &'a std::path::Path,
    kind: crate::data::SourceKind,
    items: usize,
    regions: usize,
    classes: Vec<(&'a str, usize)>,
    /// The rows with a score, where any has one: what `train --score-bins`
    /// learns from, so that a person grading a few rows can count them.
    #[serde(skip_serializing_if = "Option::is_none")]
    graded: Option<Graded<'a>>,
    checked: bool,
}

#[derive(serde::Serialize)]
struct Graded<'a> {
    rows: usize,
    min: f32,
    max: f32,
    /// Graded rows per class, classes with none left out.
    classes: Vec<(&'a str, usize)>,
}

/// The graded rows of `ds`, `None` where no row has a score.
fn graded(ds: &Dataset) -> Option<Graded<'_>> {
    let scores: Vec<(usize, f32)> = ds
        .items()
        .iter()
        .filter_map(|it| it.score.map(|s| (it.label, s)))
        .collect();
    if scores.is_empty() {
        return None;
    }
    let mut per = vec![0usize; ds.classes().len()];
    for &(label, _) in &scores {
        per[label] += 1;
    }
    Some(Graded {
        rows: scores.len(),
        min: scores.iter().map(|s| s.1).fold(f32::INFINITY, f32::min),
        max: scores.iter().map(|s| s.1).fold(f32::NEG_INFINITY, f32::max),
        classes: ds
            .classes()
            .iter()
            .map(String::as_str)
            .zip(per)
            .filter(|&(_, n)| n > 0)
            .collect(),
    })
}

pub fn run(args: InspectArgs) -> Result<ExitCode> {
    let ds = Dataset::open(args.source())?.with_limits(args.photos.limits());
    if args.check {
        check_all(&ds)?;
    }
    let counts = ds.class_counts();
    let report = InspectReport {
        source: ds.root(),
        kind: ds.kind(),
        items: ds.len(),
        regions: ds.region_count(),
        classes: ds
            .classes()
            .iter()
            .map(String::as_str)
            .zip(counts)
            .collect(),
        graded: graded(&ds),
        checked: args.check,
    };
    if args.json {
        likeness_app::stdout::line(
            &serde_json::to_string(&report).map_err(|e| Error::Invalid(e.to_string()))?,
        )?;
    } else {
        let mut s = format!(
            "{}: {:?} source, {} ({}), {}",
            report.source.display(),
            report.kind,
            plural(report.items, "item"),
            plural(report.regions, "region"),
            plural(report.classes.len(), "class")
        );
        for (name, n) in &report.classes {
            s.push_str(&format!("\n  {n:>7}  {name}"));
        }
        if let Some(g) = &report.graded {
            let per: Vec<String> = g.classes.iter().map(|(c, n)| format!("{c} {n}")).collect();
            s.push_str(&format!(
                "\ngraded: {} of {}, scores {} to {} ({}); `train --score-bins` learns \
                 from these",
                g.rows,
                plural(report.items, "row"),
                g.min,
                g.max,
                per.join(", ")
            ));
        }
        if args.check {
            s.push_str("\nall images decoded");
        }
        likeness_app::stdout::line(&s)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Most unusable images listed by name (the count says the rest).
const LIST_BAD: usize = 20;

/// Decodes every item in parallel, with a progress bar on stderr, and
/// lists every one that fails, so that one run finds them all.
fn check_all(ds: &Dataset) -> Result<()> {
    use rayon::prelude::*;
    let bar = likeness_app::progress::bar(ds.len() as u64, "decoding");
    let mut bad: Vec<(usize, String)> = Vec::new();
    let all: Vec<usize> = (0..ds.len()).collect();
    for chunk in all.chunks(512) {
        let failed: Vec<(usize, String)> = chunk
            .par_iter()
            .filter_map(|&i| ds.load(i).err().map(|e| (i, e.to_string())))
            .collect();
        bad.extend(failed);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if bad.is_empty() {
        return Ok(());
    }
    let mut list: Vec<String> = bad
        .iter()
        .take(LIST_BAD)
        .map(|(_, why)| format!("  {why}"))
        .collect();
    if bad.len() > LIST_BAD {
        list.push(format!("  ... and {} more", bad.len() - LIST_BAD));
    }
    Err(Error::Invalid(format!(
        "{} of {} cannot be used:\n{}\n(fix or remove them; `embed` and `index` \
         can skip them with --skip-bad)",
        bad.len(),
        plural(ds.len(), "image"),
        list.join("\n")
    )))
}
