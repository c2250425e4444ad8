//! `likeness build`: an index from a .npy of vectors (and labels).
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use likeness_index::npy;

use crate::args::BuildArgs;
use crate::error::{Error, Result};
use crate::plural::plural;

pub fn run(threads: usize, args: BuildArgs) -> Result<ExitCode> {
    let start = Instant::now();
    if args.out.exists() && !args.force {
        return Err(Error::Usage(format!(
            "{} already exists; remove it, choose another --out or pass --force to replace it",
            args.out.display()
        )));
    }
    let matrix = npy::read_matrix(&args.vectors)?;
    let labels = args.labels.as_ref().map(npy::read_labels).transpose()?;
    if let Some(l) = &labels {
        if l.len() != matrix.rows {
            return Err(Error::Usage(format!(
                "{} holds {} vectors but {} holds {} labels; give one label per vector",
                args.vectors.display(),
                matrix.rows,
                args.labels.as_deref().unwrap_or(Path::new("")).display(),
                l.len()
            )));
        }
    }
    let read_seconds = start.elapsed().as_secs_f64();
    let builder = args.graph.builder(threads).overwrite(args.force);
    let bar = crate::progress::bar(matrix.rows as u64, "indexing");
    let progress = |done: usize, _total: usize| bar.set_position(done as u64);
    let res = builder.build(
        &matrix.data,
        matrix.dim,
        labels.as_deref(),
        None,
        &args.out,
        Some(&progress),
    );
    bar.finish_and_clear();
    let report = res?;
    crate::outln!(
        "indexed {} of dimension {} ({}, {}, {}) \
         in {:.2}s (read {:.2}s, graph {:.2}s); {:.1} MB in {}",
        plural(report.count, "vector"),
        matrix.dim,
        args.graph.describe(),
        plural(threads, "thread"),
        plural(report.levels, "level"),
        read_seconds + report.total_seconds,
        read_seconds,
        report.graph_seconds,
        report.bytes as f64 / 1e6,
        args.out.display()
    )?;
    Ok(ExitCode::SUCCESS)
}
