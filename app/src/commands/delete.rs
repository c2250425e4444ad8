//! `likeness delete`: items out of an index (by id, ids file or label).
use std::path::Path;
use std::process::ExitCode;

use likeness_index::{npy, Index, Writer};

use crate::args::DeleteArgs;
use crate::error::{Error, Result};
use crate::plural::plural;

pub fn run(args: DeleteArgs) -> Result<ExitCode> {
    let mut writer = Writer::open(&args.index)?;
    let mut ids = args.ids.clone();
    if let Some(f) = &args.ids_file {
        ids.extend(read_ids(f)?);
    }
    if let Some(name) = &args.label {
        ids.extend(ids_of_label(writer.index(), name)?);
    }
    let asked = ids.len();
    let deleted = writer.delete(&ids)?;
    let index = writer.index();
    crate::outln!(
        "deleted {} from {} ({} already deleted); {} live of {}, {} deleted",
        plural(deleted, "item"),
        args.index.display(),
        asked - deleted,
        index.live_count(),
        plural(index.len(), "id"),
        index.deleted_count()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Ids from a `.npy` of integers or a text file of one id a line.
fn read_ids(path: &Path) -> Result<Vec<u64>> {
    let to_u64 = |v: i64| {
        u64::try_from(v)
            .map_err(|_| Error::Usage(format!("{}: id {v} is negative", path.display())))
    };
    if path.extension().is_some_and(|e| e == "npy") {
        return npy::read_labels(path)?.into_iter().map(to_u64).collect();
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            l.trim().parse::<u64>().map_err(|_| {
                Error::Usage(format!(
                    "{} line {}: `{}` is not an item id",
                    path.display(),
                    n + 1,
                    l.trim()
                ))
            })
        })
        .collect()
}

/// The live items of class `name` (a class name, or an integer label).
pub fn ids_of_label(index: &Index, name: &str) -> Result<Vec<u64>> {
    let label = resolve_label(index, name)?;
    Ok((0..index.len())
        .filter(|&i| index.label_of(i) == Some(label) && !index.is_deleted(i))
        .map(|i| i as u64)
        .collect())
}

/// A class name of the index, or an integer label.
fn resolve_label(index: &Index, name: &str) -> Result<i64> {
    if index.labels().is_none() {
        return Err(Error::Usage(format!(
            "{} has no labels to select by",
            index.dir().display()
        )));
    }
    if let Some(l) = index.manifest().class_label(name) {
        return Ok(l);
    }
    name.parse::<i64>().map_err(|_| {
        Error::Usage(format!(
            "`{name}` is not a class of this index ({} classes{}); give a class name or an integer label",
            index.manifest().classes.len(),
            match index.manifest().classes.first() {
                Some(c) => format!(", e.g. `{c}`"),
                None => String::new(),
            }
        ))
    })
}
