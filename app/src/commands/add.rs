//! `likeness add`: vectors (or, through the torch half, embedded images)
//! added to an index in place.
use std::ops::Range;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use likeness_index::{npy, NewItems, Writer};

use crate::args::AddArgs;
use crate::error::{Error, Result};

pub fn run(threads: usize, args: AddArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let Some(vectors) = &args.vectors else {
        return Err(Error::Usage(
            "give --vectors V.npy, or --data with a model to embed images".into(),
        ));
    };
    let matrix = npy::read_matrix(vectors)?;
    let labels = args.labels.as_ref().map(npy::read_labels).transpose()?;
    let scores = args.scores.as_ref().map(npy::read_floats).transpose()?;
    for (what, len, path) in [
        ("labels", labels.as_ref().map(Vec::len), &args.labels),
        ("scores", scores.as_ref().map(Vec::len), &args.scores),
    ] {
        if let (Some(len), Some(path)) = (len, path) {
            if len != matrix.rows {
                return Err(Error::Usage(format!(
                    "{} holds {} vectors but {} holds {len} {what}; give one per vector",
                    vectors.display(),
                    matrix.rows,
                    path.display()
                )));
            }
        }
    }
    let mut writer = Writer::open(&args.index)?;
    writer.threads(threads);
    let new = NewItems {
        vectors: &matrix.data,
        labels: labels.as_deref(),
        scores: scores.as_deref(),
        ..NewItems::default()
    };
    let ids = add_items(&mut writer, &new)?;
    finish(&writer, &args.index, ids, args.ids_out.as_deref(), start)
}

/// Adds `new`, the dimension checked first with a message that says whose
/// it is.
pub fn add_items(writer: &mut Writer, new: &NewItems<'_>) -> Result<Range<u64>> {
    let dim = writer.index().dim();
    if !new.vectors.len().is_multiple_of(dim) || new.vectors.is_empty() {
        return Err(Error::Usage(format!(
            "the index holds vectors of dimension {dim}; these are not (they must come from the model that built the index)"
        )));
    }
    Ok(writer.add(new)?)
}

/// Writes `--ids-out` and prints what the add did.
pub fn finish(
    writer: &Writer,
    dir: &Path,
    ids: Range<u64>,
    ids_out: Option<&Path>,
    start: Instant,
) -> Result<ExitCode> {
    if let Some(p) = ids_out {
        let v: Vec<i64> = ids.clone().map(|i| i as i64).collect();
        likeness_index::atomic_write(p, |f| {
            use std::io::Write;
            let mut w = std::io::BufWriter::new(f);
            npy::write_to(&mut w, &v, &[v.len()])?;
            w.flush()
        })?;
    }
    let index = writer.index();
    let (records, _) = index.log_state();
    let how = if records == 0 {
        format!("folded into the graph, generation {}", index.generation())
    } else {
        format!(
            "logged; {} items wait in the log, folded at {}",
            index.len() - index.base_len(),
            likeness_index::FOLD_AT
        )
    };
    super::print_line(&format!(
        "added {} items to {}: ids {}..={} ({how}) in {:.2}s",
        ids.end - ids.start,
        dir.display(),
        ids.start,
        ids.end.saturating_sub(1),
        start.elapsed().as_secs_f64()
    ));
    Ok(ExitCode::SUCCESS)
}
