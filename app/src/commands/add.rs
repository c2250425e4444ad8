//! `likeness add`: vectors (or, through the torch half, embedded images)
//! added to an index in place.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use likeness_index::{npy, NewItems, Writer};

use crate::args::AddArgs;
use crate::error::{Error, Result};
use crate::plural::plural;

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
    let ids_out = args.ids_out.as_deref().map(IdsOut::prepare).transpose()?;
    let mut writer = Writer::open(&args.index)?;
    writer.threads(threads);
    let new = NewItems {
        vectors: &matrix.data,
        labels: labels.as_deref(),
        scores: scores.as_deref(),
        ..NewItems::default()
    };
    let ids = add_items(&mut writer, &new)?;
    finish(&writer, &args.index, ids, ids_out, start)
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

/// `--ids-out`, made ready before the index changes: a temporary file
/// beside it, created now, so a path whose folder is missing or not
/// writable (or that is a folder) fails while nothing has been added. It
/// used to fail after the add: the items were in the index, their ids
/// were lost, and a retry added them twice.
#[derive(Debug)]
pub struct IdsOut {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
}

impl IdsOut {
    /// Checks `path` and creates the temporary file beside it.
    pub fn prepare(path: &Path) -> Result<Self> {
        let refuse = |why: String| {
            Error::Usage(format!(
                "--ids-out {}: {why}; give a file path in a folder you can write to (nothing was added)",
                path.display()
            ))
        };
        if path.is_dir() {
            return Err(refuse("is a folder".into()));
        }
        let Some(name) = path.file_name() else {
            return Err(refuse("has no file name".into()));
        };
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        // The name holds our process id, so a file already there was left
        // by a process that is gone (killed before its rename): ours to
        // replace. Refusing it (`create_new`) failed every later add that
        // drew the same id, as a container's commands do.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| refuse(format!("cannot create a file there ({e})")))?;
        Ok(IdsOut {
            path: path.to_path_buf(),
            tmp,
            file: Some(file),
        })
    }

    /// Writes `ids` as `.npy` into the temporary file, syncs it and renames
    /// it into place (then syncs the folder, so the name lasts).
    fn write(&mut self, ids: &[i64]) -> std::io::Result<()> {
        let Some(f) = self.file.take() else {
            return Err(std::io::Error::other("already written"));
        };
        let mut w = std::io::BufWriter::new(f);
        npy::write_to(&mut w, ids, &[ids.len()])?;
        w.flush()?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&self.tmp, &self.path)?;
        let parent = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // Some filesystems refuse fsync on a folder; the rename stands.
        match File::open(parent).and_then(|d| d.sync_all()) {
            Err(e) if e.kind() != std::io::ErrorKind::InvalidInput => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for IdsOut {
    /// The temporary file goes unless it was renamed into place.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Writes `--ids-out` and prints what the add did. The items are in the
/// index by now: when the ids cannot be written, the error says which
/// they are, so they are not lost and not added again.
pub fn finish(
    writer: &Writer,
    dir: &Path,
    ids: Range<u64>,
    ids_out: Option<IdsOut>,
    start: Instant,
) -> Result<ExitCode> {
    if let Some(mut out) = ids_out {
        let v: Vec<i64> = ids.clone().map(|i| i as i64).collect();
        if let Err(e) = out.write(&v) {
            return Err(Error::Usage(format!(
                "added {} to {} (ids {}..={}) but could not write {}: {e}; the items are in the index, do not add them again",
                plural(v.len(), "item"),
                dir.display(),
                ids.start,
                ids.end.saturating_sub(1),
                out.path.display()
            )));
        }
    }
    let index = writer.index();
    let (records, _) = index.log_state();
    let how = if records == 0 {
        format!("folded into the graph, generation {}", index.generation())
    } else {
        format!(
            "logged; {} in the log, folded at {}",
            match index.len() - index.base_len() {
                1 => "1 item waits".to_string(),
                n => format!("{n} items wait"),
            },
            likeness_index::FOLD_AT
        )
    };
    crate::outln!(
        "added {} to {}: ids {}..={} ({how}) in {:.2}s",
        plural((ids.end - ids.start) as usize, "item"),
        dir.display(),
        ids.start,
        ids.end.saturating_sub(1),
        start.elapsed().as_secs_f64()
    )?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use likeness_index::{IndexBuilder, Metric};

    /// A temporary file left by a killed add whose process id this one
    /// drew again (containers number their commands alike) made every
    /// later `add --ids-out` fail before adding: "cannot create a file
    /// there (File exists)".
    #[test]
    fn a_temporary_file_a_killed_add_left_is_replaced() {
        let t = tempfile::tempdir().unwrap();
        let out_path = t.path().join("ids.npy");
        let stale = t
            .path()
            .join(format!(".ids.npy.tmp-{}", std::process::id()));
        std::fs::write(&stale, b"left by a killed add").unwrap();
        let mut out = IdsOut::prepare(&out_path).unwrap();
        out.write(&[7, 8]).unwrap();
        assert_eq!(npy::read_labels(&out_path).unwrap(), vec![7, 8]);
        assert!(!stale.exists());
    }

    /// When `--ids-out` cannot be written after all (here its path became a
    /// folder after the check), the error names the items that were added,
    /// so their ids are not lost and they are not added again.
    #[test]
    fn a_late_ids_out_failure_names_the_added_ids() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("ix");
        let v: Vec<f32> = (0..40).map(|i| (i as f32).sin()).collect();
        IndexBuilder::new()
            .metric(Metric::L2)
            .build(&v, 4, None, None, &dir, None)
            .unwrap();
        let out_path = t.path().join("ids.npy");
        let out = IdsOut::prepare(&out_path).unwrap();
        std::fs::create_dir(&out_path).unwrap();
        std::fs::write(out_path.join("x"), b"").unwrap();
        let mut w = Writer::open(&dir).unwrap();
        let ids = add_items(
            &mut w,
            &NewItems {
                vectors: &v[..8],
                ..NewItems::default()
            },
        )
        .unwrap();
        let text = finish(&w, &dir, ids, Some(out), Instant::now())
            .unwrap_err()
            .to_string();
        assert!(
            text.starts_with(&format!("added 2 items to {} (ids 10..=11)", dir.display())),
            "{text}"
        );
        assert!(text.contains("do not add them again"), "{text}");
        // The temporary file is gone; the index has the items.
        let names: Vec<_> = std::fs::read_dir(t.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(w.index().len(), 12);
    }
}
