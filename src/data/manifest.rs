//! CSV manifests, one item per row.
//!
//! Without a header a row is `path,label[,x,y,w,h]`. With a header (a first
//! row with a field `path`) the columns are named, in any order:
//! `path`, `label`, optionally `x,y,w,h` (all four), `score` (a finite
//! number, e.g. a grade), `subject` (an id shared by the regions of one face
//! or person) and `side` (`left`, `right` or empty). Empty score, subject
//! or side cells mean "none". The columns `likeness regions` adds
//! ([`REGION_EXTRAS`]) are accepted and ignored.
//!
//! Paths are relative to the manifest's folder (absolute paths are kept). The
//! optional box makes the item a region of its image, so one face crop can
//! yield eyes, nose and mouth items. Labels are free text (an identity, a
//! region name, a grade); classes are the distinct labels, in numeric order
//! when all are integers, otherwise in text order. Every bad value is an
//! error that names the file and line.
use std::collections::BTreeMap;
use std::path::Path;

use likeness_index::Side;

use super::{Dataset, Item, Region, SourceKind};
use crate::error::{Error, Result};

/// The columns a header may name.
const COLUMNS: [&str; 9] = [
    "path", "label", "x", "y", "w", "h", "score", "subject", "side",
];

/// The columns `likeness regions` adds after the ones above: the face's id,
/// its roll in degrees, and the region's size along the face's own axes.
/// Readers accept and ignore them; any other unknown column is an error, so
/// that a misspelt `score` is caught rather than silently dropped.
pub const REGION_EXTRAS: [&str; 4] = ["face", "angle", "along", "across"];

/// Where each known column is in a row.
#[derive(Debug, Default)]
struct Layout {
    /// From a header (an empty box is then allowed: the row is a whole image).
    named: bool,
    fields: usize,
    path: usize,
    label: usize,
    region: Option<[usize; 4]>,
    score: Option<usize>,
    subject: Option<usize>,
    side: Option<usize>,
}

impl Layout {
    /// From a header row.
    fn from_header(record: &csv::StringRecord) -> std::result::Result<Self, String> {
        let mut at: BTreeMap<String, usize> = BTreeMap::new();
        for (i, name) in record.iter().enumerate() {
            let name = name.to_ascii_lowercase();
            if REGION_EXTRAS.contains(&name.as_str()) {
                continue;
            }
            if !COLUMNS.contains(&name.as_str()) {
                return Err(format!(
                    "unknown column `{name}` in the header; columns are {}",
                    COLUMNS.join(", ")
                ));
            }
            if at.insert(name.clone(), i).is_some() {
                return Err(format!("column `{name}` appears twice in the header"));
            }
        }
        let need = |c: &str| {
            at.get(c)
                .copied()
                .ok_or_else(|| format!("the header has no `{c}` column"))
        };
        let boxed: Vec<usize> = ["x", "y", "w", "h"]
            .iter()
            .filter_map(|c| at.get(*c).copied())
            .collect();
        let region = match boxed.len() {
            0 => None,
            4 => Some([boxed[0], boxed[1], boxed[2], boxed[3]]),
            _ => return Err("a region needs all four columns x,y,w,h".into()),
        };
        Ok(Layout {
            named: true,
            fields: record.len(),
            path: need("path")?,
            label: need("label")?,
            region,
            score: at.get("score").copied(),
            subject: at.get("subject").copied(),
            side: at.get("side").copied(),
        })
    }

    /// Headerless rows: `path,label` or `path,label,x,y,w,h`.
    fn plain(fields: usize) -> std::result::Result<Self, String> {
        match fields {
            2 | 6 => Ok(Layout {
                fields,
                path: 0,
                label: 1,
                region: (fields == 6).then_some([2, 3, 4, 5]),
                ..Layout::default()
            }),
            n => Err(format!(
                "expected 2 fields (path,label) or 6 (path,label,x,y,w,h), found {n}; \
                 for score, subject or side columns start the file with a header row"
            )),
        }
    }
}

/// A line starting with this byte is a comment.
const COMMENT: u8 = b'#';

/// The line a record starts on, from the byte offset the csv reader gives
/// it. The reader's own line number counts from where it stopped after the
/// previous record, before the `\n` of a CRLF, blank lines and comment
/// lines: every row of a CRLF file was named one line too early (and rows
/// after a blank or comment line too). So the offset is moved past those
/// here and the `\n`s before it are counted.
struct LineCounter<'a> {
    bytes: &'a [u8],
    /// An offset counted up to, and the line it is on.
    at: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            at: 0,
            line: 1,
        }
    }

    /// The line of the first byte of the record the reader started at
    /// `offset`.
    fn line_at(&mut self, offset: u64) -> u64 {
        let b = self.bytes;
        let mut i = (offset as usize).min(b.len());
        loop {
            while i < b.len() && (b[i] == b'\r' || b[i] == b'\n') {
                i += 1;
            }
            if i < b.len() && b[i] == COMMENT {
                // The reader skips a comment up to its `\n`.
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p + 1);
                continue;
            }
            break;
        }
        if i < self.at {
            // Records come in order; start over should one not.
            (self.at, self.line) = (0, 1);
        }
        self.line += b[self.at..i].iter().filter(|&&c| c == b'\n').count() as u64;
        self.at = i;
        self.line
    }
}

/// A score cell: empty = none; otherwise a finite number. The refusal says
/// how to mark a row without a grade: R's `write.csv` writes `NA` and
/// numpy's `savetxt` `nan` there, which were refused with no word of what
/// to write instead.
pub fn parse_score(text: &str) -> std::result::Result<Option<f32>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    const UNGRADED: &str = "leave the cell empty for a row without a grade";
    let v: f32 = text
        .parse()
        .map_err(|_| format!("score `{text}` is not a number ({UNGRADED})"))?;
    if !v.is_finite() {
        return Err(format!(
            "score `{text}` is not a finite number ({UNGRADED})"
        ));
    }
    Ok(Some(v))
}

/// The headerless-row refusal, with the likely cause when the row holds no
/// comma but another separator: a spreadsheet saving "CSV" in a locale
/// whose decimal mark is a comma writes `;` between cells, and the header
/// `path;label;...` was then read as a one-field row ("found 1").
fn plain_layout(record: &csv::StringRecord) -> std::result::Result<Layout, String> {
    Layout::plain(record.len()).map_err(|e| {
        let sep = [';', '\t', '|']
            .into_iter()
            .find(|&c| record.len() == 1 && record[0].contains(c));
        match sep {
            Some(c) => format!(
                "{e}; the row has no comma but `{}`: manifests are comma-separated (save as \
                 \"CSV UTF-8 (comma delimited)\" or replace the separators with commas)",
                c.escape_default()
            ),
            None => e,
        }
    })
}

pub fn open(path: &Path) -> Result<Dataset> {
    let base = path.parent().unwrap_or(Path::new("."));
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(COMMENT))
        .from_reader(bytes.as_slice());
    let bad = |line: u64, reason: String| Error::Manifest {
        path: path.to_path_buf(),
        line,
        reason,
    };

    let mut rows: Vec<(String, Item)> = Vec::new();
    let mut layout: Option<Layout> = None;
    let mut lines = LineCounter::new(&bytes);
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            let line = e
                .position()
                .map_or(n as u64 + 1, |p| lines.line_at(p.byte()));
            bad(line, format!("cannot read row: {e}"))
        })?;
        let line = record
            .position()
            .map_or(n as u64 + 1, |p| lines.line_at(p.byte()));
        if n == 0 && record.iter().any(|f| f.eq_ignore_ascii_case("path")) {
            layout = Some(Layout::from_header(&record).map_err(|e| bad(line, e))?);
            continue;
        }
        // Headerless rows are each `path,label` or `path,label,x,y,w,h`; under
        // a header a row may leave out trailing cells (they are empty).
        let plain;
        let lay = match &layout {
            Some(l) => l,
            None => {
                plain = plain_layout(&record).map_err(|e| bad(line, e))?;
                &plain
            }
        };
        if record.len() > lay.fields {
            return Err(bad(
                line,
                format!(
                    "{} fields but the header names {} columns",
                    record.len(),
                    lay.fields
                ),
            ));
        }
        let cell = |i: usize| record.get(i).unwrap_or("");
        let file = cell(lay.path);
        let label = cell(lay.label);
        if file.is_empty() {
            return Err(bad(line, "empty path".into()));
        }
        if label.is_empty() {
            return Err(bad(line, "empty label".into()));
        }
        let region = match lay.region {
            Some(c) if lay.named && c.iter().all(|&i| cell(i).is_empty()) => None,
            Some(c) => {
                let text = format!(
                    "{},{},{},{}",
                    cell(c[0]),
                    cell(c[1]),
                    cell(c[2]),
                    cell(c[3])
                );
                Some(text.parse::<Region>().map_err(|e| bad(line, e))?)
            }
            None => None,
        };
        let score = match lay.score {
            Some(i) => parse_score(cell(i)).map_err(|e| bad(line, e))?,
            None => None,
        };
        let subject = lay
            .subject
            .map(|i| cell(i).to_string())
            .filter(|s| !s.is_empty());
        let side = match lay.side.map(cell).filter(|s| !s.is_empty()) {
            Some(s) => Some(s.parse::<Side>().map_err(|e| bad(line, e))?),
            None => None,
        };
        let full = base.join(file);
        if !full.is_file() {
            let why = if full.is_dir() {
                format!(
                    "{} is a folder, not an image file: name the image in it",
                    full.display()
                )
            } else {
                format!(
                    "image file {} not found: fix the path (relative paths are read from the \
                     manifest's folder) or remove the row",
                    full.display()
                )
            };
            return Err(bad(line, why));
        }
        rows.push((
            label.to_string(),
            Item {
                label: 0,
                path: full,
                region,
                row: None,
                line: Some(line),
                score,
                subject,
                side,
            },
        ));
    }
    if rows.is_empty() {
        return Err(Error::EmptyDataset {
            path: path.to_path_buf(),
            hint: "the manifest has no rows; write one `path,label[,x,y,w,h]` row per item \
                   (or name the columns in a header: path,label,x,y,w,h,score,subject,side)"
                .into(),
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
