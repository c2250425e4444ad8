//! CSV manifests: `path,label[,x,y,w,h]`, one item per row.
//!
//! Paths are relative to the manifest's folder (absolute paths are kept). The
//! optional box makes the item a region of its image, so one face crop can
//! yield eyes, nose and mouth items. A first row `path,label,...` is a header
//! and skipped. Labels are free text (an identity, a region name, a grade);
//! classes are the distinct labels, in numeric order when all are integers,
//! otherwise in text order.
use std::collections::BTreeMap;
use std::path::Path;

use super::{Dataset, Item, Region, SourceKind};
use crate::error::{Error, Result};

pub fn open(path: &Path) -> Result<Dataset> {
    let base = path.parent().unwrap_or(Path::new("."));
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(file);
    let bad = |line: u64, reason: String| Error::Manifest {
        path: path.to_path_buf(),
        line,
        reason,
    };

    let mut rows: Vec<(String, Item)> = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(n as u64 + 1, |p| p.line());
            bad(line, format!("cannot read row: {e}"))
        })?;
        let line = record.position().map_or(n as u64 + 1, |p| p.line());
        if n == 0
            && record
                .get(0)
                .is_some_and(|f| f.eq_ignore_ascii_case("path"))
        {
            continue;
        }
        if record.len() != 2 && record.len() != 6 {
            return Err(bad(
                line,
                format!(
                    "expected 2 fields (path,label) or 6 (path,label,x,y,w,h), found {}",
                    record.len()
                ),
            ));
        }
        let file = &record[0];
        let label = &record[1];
        if file.is_empty() {
            return Err(bad(line, "empty path".into()));
        }
        if label.is_empty() {
            return Err(bad(line, "empty label".into()));
        }
        let region = if record.len() == 6 {
            let text = format!(
                "{},{},{},{}",
                &record[2], &record[3], &record[4], &record[5]
            );
            Some(text.parse::<Region>().map_err(|e| bad(line, e))?)
        } else {
            None
        };
        let full = base.join(file);
        if !full.is_file() {
            return Err(bad(
                line,
                format!("image file {} not found", full.display()),
            ));
        }
        rows.push((
            label.to_string(),
            Item {
                label: 0,
                path: full,
                region,
                row: None,
                line: Some(line),
            },
        ));
    }
    if rows.is_empty() {
        return Err(Error::EmptyDataset {
            path: path.to_path_buf(),
            hint: "the manifest has no rows; write one `path,label[,x,y,w,h]` row per item".into(),
        });
    }

    let all_numeric = rows.iter().all(|(l, _)| l.parse::<i64>().is_ok());
    let mut distinct: Vec<&str> = rows.iter().map(|(l, _)| l.as_str()).collect();
    if all_numeric {
        distinct.sort_by_key(|l| l.parse::<i64>().unwrap_or(0));
    } else {
        distinct.sort_unstable();
    }
    distinct.dedup();
    let classes: Vec<String> = distinct.iter().map(|s| s.to_string()).collect();
    let index: BTreeMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let items = rows
        .iter()
        .map(|(l, it)| Item {
            label: index[l.as_str()],
            ..it.clone()
        })
        .collect();
    Dataset::from_parts(
        SourceKind::Manifest,
        path.to_path_buf(),
        classes,
        items,
        None,
    )
}
