//! Labelled images from three kinds of source, behind one [`Dataset`].
//!
//! | source        | on the command line                      | module       |
//! |---------------|------------------------------------------|--------------|
//! | image folders | a directory `root/<class>/<image>`       | [`folder`]   |
//! | CSV manifest  | a `.csv` file `path,label[,x,y,w,h]` or with a header naming `score`, `subject`, `side` too | [`manifest`] |
//! | IDX (MNIST)   | `*-images-idx3-ubyte[.gz]` (+ labels)    | [`idx`]      |
//!
//! Opening a source lists its items (cheap: file names, a manifest, or the IDX
//! arrays); images are decoded on demand, in parallel and in order, by
//! [`Dataset::load_many`]. Item `i` is always row `i` of whatever is computed
//! from the dataset.
pub use likeness_app::read::decode;
pub mod folder;
pub mod idx;

pub mod manifest;
pub use likeness_app::shard;
pub mod swell;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::DynamicImage;
use rayon::prelude::*;

use crate::error::{Error, Result};
pub use decode::DecodeLimits;
pub use likeness_index::Side;

pub use likeness_app::read::Region;

/// Which kind of source a dataset was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Folder,
    Manifest,
    Idx,
}

/// One labelled item: where its pixels come from and its class.
#[derive(Debug, Clone, Default)]
pub struct Item {
    /// Index into [`Dataset::classes`].
    pub label: usize,
    /// The image file (for IDX items: the IDX image file).
    pub path: PathBuf,
    /// The part of the image this item is, if not all of it.
    pub region: Option<Region>,
    /// Row in the IDX file, for IDX items.
    pub row: Option<usize>,
    /// Line of the manifest this item came from, for error messages.
    pub line: Option<u64>,
    /// A grade of the item (manifest column `score`).
    pub score: Option<f32>,
    /// An id shared by the regions of one face or person (`subject`).
    pub subject: Option<String>,
    /// Which side of the face the region is on (`side`).
    pub side: Option<Side>,
}

/// A decoded item.
#[derive(Debug, Clone)]
pub struct Sample {
    pub image: DynamicImage,
    pub label: usize,
    pub path: PathBuf,
    pub region: Option<Region>,
}

/// A labelled image collection from any supported source.
#[derive(Debug, Clone)]
pub struct Dataset {
    kind: SourceKind,
    root: PathBuf,
    classes: Vec<String>,
    items: Vec<Item>,
    idx: Option<Arc<idx::IdxImages>>,
    limits: DecodeLimits,
}

impl Dataset {
    /// Opens a source named by its path: a directory is an image folder, a
    /// `.csv` file a manifest, `*-images-idx3-ubyte[.gz]` an IDX image file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            return folder::open(path);
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if name.ends_with(".csv") {
            manifest::open(path)
        } else if idx::is_idx_images_name(&name) {
            idx::open(path)
        } else {
            Err(Error::UnknownSource {
                path: path.to_path_buf(),
            })
        }
    }

    pub(crate) fn from_parts(
        kind: SourceKind,
        root: PathBuf,
        classes: Vec<String>,
        items: Vec<Item>,
        idx: Option<Arc<idx::IdxImages>>,
    ) -> Result<Self> {
        if items.is_empty() {
            return Err(Error::EmptyDataset {
                path: root,
                hint: "the source lists no items".into(),
            });
        }
        Ok(Dataset {
            kind,
            root,
            classes,
            items,
            idx,
            limits: DecodeLimits::default(),
        })
    }

    /// Replaces the decoder limits (pixel count, file size).
    #[must_use]
    pub fn with_limits(mut self, limits: DecodeLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn kind(&self) -> SourceKind {
        self.kind
    }
    /// The path the dataset was opened from.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// Class names; an item's `label` indexes this.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }
    pub fn items(&self) -> &[Item] {
        &self.items
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    /// Number of items of each class, indexed like [`Dataset::classes`].
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for it in &self.items {
            counts[it.label] += 1;
        }
        counts
    }
    /// Each item's score, `NaN` where it has none (as in `scores.npy`);
    /// `None` when no item has a score.
    pub fn scores(&self) -> Option<Vec<f32>> {
        self.items.iter().any(|i| i.score.is_some()).then(|| {
            self.items
                .iter()
                .map(|i| i.score.unwrap_or(f32::NAN))
                .collect()
        })
    }
    /// Each item's subject and side, for the index; `None` when no item has
    /// either.
    pub fn pairings(&self) -> Option<Vec<likeness_index::ItemPairing>> {
        self.items
            .iter()
            .any(|i| i.subject.is_some() || i.side.is_some())
            .then(|| {
                self.items
                    .iter()
                    .map(|i| likeness_index::ItemPairing {
                        subject: i.subject.clone(),
                        side: i.side,
                    })
                    .collect()
            })
    }
    /// The `bins - 1` inner edges that split the items' scores into `bins`
    /// quantile bins (`train --score-bins`). Every item needs a score.
    pub fn score_bin_edges(&self, bins: usize) -> Result<Vec<f32>> {
        if bins < 2 {
            return Err(Error::Invalid(format!(
                "--score-bins {bins}: at least 2 bins are needed"
            )));
        }
        let mut v = Vec::with_capacity(self.len());
        for it in &self.items {
            match it.score {
                Some(s) => v.push(s),
                None => {
                    return Err(Error::Invalid(format!(
                        "{}{}: an item without a score; --score-bins needs a score on every row",
                        it.path.display(),
                        it.line.map(|l| format!(" (line {l})")).unwrap_or_default()
                    )))
                }
            }
        }
        v.sort_by(f32::total_cmp);
        let mut distinct = v.clone();
        distinct.dedup();
        let edges: Vec<f32> = if distinct.len() <= bins {
            // Few grades (1..5, a Likert scale): one bin a grade. Quantile
            // edges fell on the last row of a grade and merged two (grades
            // 1..5 in equal shares made 4 bins, 4 and 5 together).
            distinct[1..].to_vec()
        } else {
            let mut edges: Vec<f32> = (1..bins).map(|i| v[i * v.len() / bins]).collect();
            edges.dedup();
            // An edge equal to the smallest score would leave its lower bin empty.
            edges.retain(|&e| e > v[0]);
            edges
        };
        if edges.is_empty() {
            return Err(Error::Invalid(
                "all scores are equal; there is nothing to bin".into(),
            ));
        }
        Ok(edges)
    }

    /// A copy whose classes are score bins: bin `b` holds the scores in
    /// `[edges[b - 1], edges[b])` (open at both ends).
    pub fn binned_by_score(&self, edges: &[f32]) -> Result<Self> {
        let name = |b: usize| {
            let lo = b.checked_sub(1).map(|i| format!("{:.3}", edges[i]));
            let hi = edges.get(b).map(|e| format!("{e:.3}"));
            format!(
                "score [{}, {})",
                lo.unwrap_or_else(|| "-inf".into()),
                hi.unwrap_or_else(|| "inf".into())
            )
        };
        let classes: Vec<String> = (0..=edges.len()).map(name).collect();
        let mut items = Vec::with_capacity(self.len());
        for it in &self.items {
            let s = it.score.ok_or_else(|| {
                Error::Invalid(format!(
                    "{}{}: an item without a score; score bins need a score on every row",
                    it.path.display(),
                    it.line.map(|l| format!(" (line {l})")).unwrap_or_default()
                ))
            })?;
            let label = edges.iter().filter(|&&e| s >= e).count();
            items.push(Item {
                label,
                ..it.clone()
            });
        }
        Ok(Dataset {
            classes,
            items,
            ..self.clone()
        })
    }

    /// How many items are regions of an image rather than whole images.
    pub fn region_count(&self) -> usize {
        self.items.iter().filter(|i| i.region.is_some()).count()
    }

    /// The items that have a score (all the classes kept), and how many were
    /// left out for having none: what `train --score-bins` learns from, so
    /// that a person may grade a few rows of a manifest and leave the rest.
    pub fn scored(self) -> Result<(Self, usize)> {
        let keep: Vec<usize> = (0..self.len())
            .filter(|&i| self.items[i].score.is_some())
            .collect();
        let left_out = self.len() - keep.len();
        if keep.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: no row has a score; --score-bins learns from graded rows: \
                 add a `score` column (a header row path,label,...,score) and grade some rows",
                self.root.display()
            )));
        }
        if left_out == 0 {
            return Ok((self, 0));
        }
        Ok((self.subset(&keep)?, left_out))
    }

    /// Keeps only the items at `indices` (in that order); classes are kept.
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        let mut items = Vec::with_capacity(indices.len());
        for &i in indices {
            let it = self.items.get(i).ok_or_else(|| {
                Error::Invalid(format!(
                    "item {i} out of range (dataset has {})",
                    self.len()
                ))
            })?;
            items.push(it.clone());
        }
        Ok(Dataset {
            items,
            ..self.clone()
        })
    }

    /// Decodes item `i` (cropping its region, if any).
    pub fn load(&self, i: usize) -> Result<Sample> {
        let item = self.item(i)?;
        let image = match (item.row, &self.idx) {
            (Some(row), Some(idx)) => idx.image(row)?,
            _ => decode::decode_file(&item.path, &self.limits)?,
        };
        if item.region.is_some() {
            return crop_sample(item, &image);
        }
        Ok(Sample {
            image,
            label: item.label,
            path: item.path.clone(),
            region: None,
        })
    }

    fn item(&self, i: usize) -> Result<&Item> {
        self.items.get(i).ok_or_else(|| {
            Error::Invalid(format!(
                "item {i} out of range (dataset has {})",
                self.len()
            ))
        })
    }

    /// The items at `indices` that [`Dataset::load_each`] loads together,
    /// as positions in `indices`: the regions of one image file (not an
    /// IDX row) share one group, in their order; any other item is alone.
    pub fn photo_groups(&self, indices: &[usize]) -> Vec<Vec<usize>> {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut by_file = std::collections::HashMap::<&Path, usize>::new();
        for (pos, &i) in indices.iter().enumerate() {
            match self.items.get(i) {
                Some(item) if item.row.is_none() && item.region.is_some() => {
                    let g = *by_file.entry(&item.path).or_insert_with(|| {
                        groups.push(Vec::new());
                        groups.len() - 1
                    });
                    groups[g].push(pos);
                }
                _ => groups.push(vec![pos]),
            }
        }
        groups
    }

    /// Each of the items at `indices`, decoded in parallel (rayon), in the
    /// order of `indices`, with its own error where it has one. The regions
    /// of one photo are cut from one decode of it ([`Dataset::photo_groups`]):
    /// `likeness regions` writes ten a face, and each decoded the whole
    /// photo once more: `embed` of the 240 regions of one 3972×3090 group
    /// photo took 19–25 s, now 10–13 s (2 busy cores). A thread holds one
    /// decoded photo at a time, as before.
    pub fn load_each(&self, indices: &[usize]) -> Vec<Result<Sample>> {
        self.load_each_with(indices, |s| s)
    }

    /// [`Dataset::load_each`], with each sample turned into `f(sample)` on
    /// the thread that loaded it, so that a batch need not hold its
    /// decoded photos at once (`embed` keeps the network's input of each).
    pub fn load_each_with<T: Send>(
        &self,
        indices: &[usize],
        f: impl Fn(Sample) -> T + Sync,
    ) -> Vec<Result<T>> {
        self.load_each_at(indices, |_, s| f(s))
    }

    /// [`Dataset::load_each_with`], with `f` also given the sample's
    /// position in `indices` (the training loader's augmentation draws
    /// follow it).
    pub fn load_each_at<T: Send>(
        &self,
        indices: &[usize],
        f: impl Fn(usize, Sample) -> T + Sync,
    ) -> Vec<Result<T>> {
        let groups = self.photo_groups(indices);
        let done: Vec<Vec<(usize, Result<T>)>> = groups
            .par_iter()
            .map(|g| {
                let load = |pos: usize| (pos, self.load(indices[pos]).map(|s| f(pos, s)));
                if g.len() == 1 {
                    return vec![load(g[0])];
                }
                let path = &self.items[indices[g[0]]].path;
                match decode::decode_file(path, &self.limits) {
                    Ok(image) => g
                        .iter()
                        .map(|&pos| {
                            let item = &self.items[indices[pos]];
                            (pos, crop_sample(item, &image).map(|s| f(pos, s)))
                        })
                        .collect(),
                    // Each item says its error, as `load` words it.
                    Err(_) => g.iter().map(|&pos| load(pos)).collect(),
                }
            })
            .collect();
        let mut out: Vec<Option<Result<T>>> = (0..indices.len()).map(|_| None).collect();
        for (pos, r) in done.into_iter().flatten() {
            out[pos] = Some(r);
        }
        out.into_iter()
            .map(|r| r.expect("each position is in one group"))
            .collect()
    }

    /// Decodes the items at `indices` as [`Dataset::load_each`] does; the
    /// result is in the order of `indices`. A bad item stops the batch
    /// with its error (the first in that order).
    pub fn load_many(&self, indices: &[usize]) -> Result<Vec<Sample>> {
        self.load_each(indices).into_iter().collect()
    }
}

/// `item`'s region cut from its decoded photo (which the photo's other
/// regions share in [`Dataset::load_each`]).
fn crop_sample(item: &Item, photo: &DynamicImage) -> Result<Sample> {
    let region = item.region.expect("only regions are grouped");
    Ok(Sample {
        image: decode::crop(photo, region, &item.path)?,
        label: item.label,
        path: item.path.clone(),
        region: item.region,
    })
}
