//! Image folders: `root/<class>/<image>`, one sub-folder per class.
use std::path::{Path, PathBuf};

use super::{Dataset, Item, SourceKind};
use crate::error::{Error, Result};

/// File extensions read as images (case-insensitive); `jpe` and `jfif`
/// are JPEG's rarer names.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "jpe", "jfif", "png", "bmp", "webp"];

/// Photo formats that are not read (no decoder is built in), named when a
/// folder holds them rather than passed over in silence.
pub const UNREAD_PHOTO_EXTENSIONS: &[&str] = &[
    "tif", "tiff", "gif", "heic", "heif", "avif", "jp2", "dng", "cr2", "cr3", "nef", "arw",
];

pub fn is_unread_photo(path: &Path) -> bool {
    has_extension(path, UNREAD_PHOTO_EXTENSIONS)
}

pub fn is_image_file(path: &Path) -> bool {
    has_extension(path, IMAGE_EXTENSIONS)
}

/// Whether `path`'s extension is one of `list` (case-insensitive).
fn has_extension(path: &Path, list: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| list.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| Error::io(dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

/// Files that mark a folder as one likeness wrote: a model, a training
/// under way, an index, embeddings, an evaluation.
const WRITTEN_MARKS: &[&str] = &[
    "model.json",
    "checkpoint.json",
    "manifest.json",
    "embed.json",
    "eval.json",
];

/// What likeness wrote `dir` as, and what reads it, where it holds the
/// files of one of its outputs (`WRITTEN_MARKS`): given as data (`inspect
/// runs/m`), such a folder once got "no labelled images found", which
/// named neither what it is nor what to run instead.
pub fn written_folder(dir: &Path) -> Option<String> {
    let has = |f: &str| dir.join(f).is_file();
    let d = dir.display();
    let index_graph = || {
        has("graph.bin")
            || std::fs::read_dir(dir).is_ok_and(|mut it| {
                it.any(|e| {
                    e.is_ok_and(|e| {
                        let n = e.file_name();
                        let n = n.to_string_lossy();
                        n.starts_with("graph.") && n.ends_with(".bin")
                    })
                })
            })
    };
    Some(if has("model.json") {
        format!(
            "a model folder (model.json, written by `likeness train`), not data: what it \
             learnt and from what is in {d}/model.json (and {d}/curves.png); use it with \
             `likeness embed --model {d} --data SRC --out DIR` or `likeness index --model {d} \
             --data SRC --out DIR`, and give `inspect` the data it trained on"
        )
    } else if has("checkpoint.json") {
        format!(
            "an interrupted training (checkpoint.json), not data: continue it with the same \
             `likeness train ... --out {d}` command plus --resume"
        )
    } else if has("manifest.json") && index_graph() {
        format!(
            "an index folder (manifest.json, graph.bin), not data: `likeness verify --index {d}` \
             checks it and says what it holds, `likeness eval --index {d}` measures it, \
             `likeness serve --index {d}` shows it in a browser"
        )
    } else if has("embed.json") {
        format!(
            "an embeddings folder (embed.json, written by `likeness embed`), not data: \
             `likeness build --vectors {d}/vectors.npy --labels {d}/labels.npy --out DIR` \
             indexes it"
        )
    } else if has("eval.json") {
        format!(
            "an evaluation (eval.json, written by `likeness eval`), not data: read \
             {d}/eval.json and eval.png, or show it with `likeness serve --index INDEX --eval {d}`"
        )
    } else {
        return None;
    })
}

fn is_hidden(entry: &std::fs::DirEntry) -> bool {
    entry.file_name().to_string_lossy().starts_with('.')
}

/// Whether `path` is a symbolic link to nothing: `is_file` and `is_dir`
/// are both false for it, so it was passed over without a word.
pub fn is_broken_link(path: &Path) -> bool {
    path.symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
        && !path.exists()
}

/// What a folder of photos holds that is not read, so that it is counted
/// and named rather than passed over: `inspect` of a phone's folder once
/// listed its JPEGs and said nothing of its HEICs, its year folders or
/// the photos loose at its top. Files that are no photo (`.txt`,
/// `Thumbs.db`) are not listed; dot files are not looked at.
#[derive(Debug, Default)]
pub struct LeftOut {
    /// Photos in a format not decoded ([`UNREAD_PHOTO_EXTENSIONS`]).
    pub unread: Vec<PathBuf>,
    /// Folders below the class (person) folders.
    pub deeper: Vec<PathBuf>,
    /// Symbolic links whose target is missing.
    pub broken_links: Vec<PathBuf>,
    /// Images at the top of a class folder source, in no class.
    pub loose: Vec<PathBuf>,
    /// Photos whose path is not UTF-8 (an old Windows zip's `café.jpg` in
    /// Latin-1), which a CSV cannot name: `regions` wrote them as
    /// `caf\u{FFFD}.jpg`, and `index` of its manifest then stopped at
    /// "not found".
    pub not_utf8: Vec<PathBuf>,
    /// CSV files at the top of the folder: manifests, most likely (the
    /// swell set's folder holds train.csv and test.csv beside `images/`,
    /// and given as data it was read as one class, `images`, holding no
    /// image).
    pub manifests: Vec<PathBuf>,
}

impl LeftOut {
    /// Files of a class (or person) folder that are not one of its images.
    pub fn take(&mut self, path: PathBuf) {
        if path.is_dir() {
            self.deeper.push(path);
        } else if is_broken_link(&path) {
            self.broken_links.push(path);
        } else if is_unread_photo(&path) {
            self.unread.push(path);
        }
    }

    /// A note on stderr for each kind of file left out, with its count,
    /// the first few paths and what to do to include them.
    pub fn note(&self, root: &Path) {
        let names = |v: &[PathBuf]| {
            let mut s: Vec<String> = v.iter().take(5).map(|p| p.display().to_string()).collect();
            if v.len() > 5 {
                s.push(format!("and {} more", v.len() - 5));
            }
            s.join(", ")
        };
        let count = |n: usize, what: &str| likeness_app::plural::plural(n, what);
        if let Some(first) = self.manifests.first() {
            eprintln!(
                "note: {} also holds {}: {}; to read the images one of them lists, give \
                 that file in place of the folder (e.g. {})",
                root.display(),
                count(self.manifests.len(), "CSV file"),
                names(&self.manifests),
                first.display()
            );
        }
        if !self.unread.is_empty() {
            eprintln!(
                "note: {} of a format not read here (tif, gif, heic, raw, ...) left out: {}; \
                 convert them to JPEG or PNG to include them",
                count(self.unread.len(), "file"),
                names(&self.unread)
            );
        }
        if !self.loose.is_empty() {
            eprintln!(
                "note: {} at the top of {} in no class folder left out: {}; images are read \
                 as {}/CLASS/IMAGE: move each into its class's folder to include it",
                count(self.loose.len(), "image"),
                root.display(),
                names(&self.loose),
                root.display()
            );
        }
        if !self.deeper.is_empty() {
            eprintln!(
                "note: images are read from the folders directly inside {} (a folder a class \
                 or person); {} below those left out: {}; move their images up to include them",
                root.display(),
                count(self.deeper.len(), "folder"),
                names(&self.deeper)
            );
        }
        if !self.not_utf8.is_empty() {
            eprintln!(
                "note: {} whose path is not UTF-8 text left out (a manifest cannot name it): \
                 {}; rename them in UTF-8 (e.g. `convmv -f latin1 -t utf8 -r --notest DIR`)",
                count(self.not_utf8.len(), "photo"),
                names(&self.not_utf8)
            );
        }
        if !self.broken_links.is_empty() {
            eprintln!(
                "note: {} to a missing file left out: {}",
                count(self.broken_links.len(), "symbolic link"),
                names(&self.broken_links)
            );
        }
    }
}

/// Lists `root/<class>/<image>`: classes and files in name order; notes
/// on stderr what is left out ([`LeftOut`]).
pub fn open(root: &Path) -> Result<Dataset> {
    let mut left = LeftOut::default();
    let ds = read(root, &mut left);
    left.note(root);
    ds
}

/// [`open`], telling `left` what is not read instead of printing it.
pub fn read(root: &Path, left: &mut LeftOut) -> Result<Dataset> {
    let mut classes = Vec::new();
    let mut items = Vec::new();
    let entries = sorted_entries(root)?;
    // Manifests first, so that they are named even when a class folder
    // below stops the reading (the swell set's `images/`).
    let is_csv =
        |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) && p.is_file();
    left.manifests.extend(
        entries
            .iter()
            .filter(|e| !is_hidden(e))
            .map(std::fs::DirEntry::path)
            .filter(|p| is_csv(p)),
    );
    for entry in entries {
        if is_hidden(&entry) {
            continue;
        }
        let class_dir = entry.path();
        if !class_dir.is_dir() {
            if is_csv(&class_dir) {
                // Named above.
            } else if is_image_file(&class_dir) && class_dir.is_file() {
                left.loose.push(class_dir);
            } else if is_broken_link(&class_dir) {
                left.broken_links.push(class_dir);
            } else if is_unread_photo(&class_dir) {
                left.unread.push(class_dir);
            }
            continue;
        }
        let class = entry.file_name().to_string_lossy().into_owned();
        // What likeness wrote (`train --out` or `embed --out` inside the
        // folder) is no class of photos: its curves once trained as one.
        if let Some(mark) = WRITTEN_MARKS.iter().find(|m| class_dir.join(m).is_file()) {
            eprintln!(
                "note: {} holds {mark}: a likeness output, not a class; left out",
                class_dir.display()
            );
            continue;
        }
        let label = classes.len();
        let before = items.len();
        for f in sorted_entries(&class_dir)? {
            let p = f.path();
            if is_hidden(&f) {
                continue;
            }
            if p.is_file() && is_image_file(&p) {
                items.push(Item {
                    label,
                    path: p,
                    region: None,
                    row: None,
                    line: None,
                    ..Item::default()
                });
            } else {
                left.take(p);
            }
        }
        if items.len() == before {
            return Err(Error::EmptyClass {
                path: class_dir,
                class,
            });
        }
        classes.push(class);
    }
    if classes.is_empty() {
        if let Some(what) = written_folder(root) {
            return Err(Error::NotData {
                path: root.to_path_buf(),
                what,
            });
        }
        return Err(Error::EmptyDataset {
            path: root.to_path_buf(),
            hint: "an image folder needs one sub-folder per class, each holding images".into(),
        });
    }
    Dataset::from_parts(SourceKind::Folder, root.to_path_buf(), classes, items, None)
}
