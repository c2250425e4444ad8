//! Which items train and which validate: the `--val` split of the training
//! source (or `--val-data`), and the classes too small to train on.
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::defaults;
use super::TrainConfig;
use crate::data::Dataset;
use crate::error::{Error, Result};

/// The split an argument names (`--val`), defined with the arguments.
pub use likeness_app::settings::ValSplit;

/// The training source and its split.
pub(super) struct Data {
    /// The training source; with `--score-bins`, its items binned by score.
    pub ds: Dataset,
    /// With `--score-bins`: the bin edges, for `model.json`.
    pub score_edges: Option<Vec<f32>>,
    /// With `--score-bins`: the labels of the `train` items before binning
    /// (the regions the read-out learns to grade), sorted and distinct.
    pub score_labels: Vec<String>,
    /// With `--score-bins`: the rows of `--data` left out for having no
    /// score, and how many were kept.
    pub unscored: Option<(usize, usize)>,
    /// Without `--score-bins`: the rows that have a score, which are then
    /// not learnt from (said, so that a forgotten flag shows at once).
    pub scores_unused: usize,
    pub train: Vec<usize>,
    /// The labels of `train`, in its order (the sampler's input).
    pub train_labels: Vec<i64>,
    /// Distinct classes among `train`.
    pub classes: usize,
    /// The classes `--min-per-class` left out, with their training images.
    pub dropped: Vec<(String, usize)>,
    pub val: Vec<usize>,
    /// `--val-data`, when given; else `val` indexes `ds`.
    pub val_ds: Option<Dataset>,
    /// The split in effect: `--val`, or the default for the data and why
    /// ([`defaults::held_out_split`]).
    pub val_split: ValSplit,
    pub val_why: Option<String>,
}

impl Data {
    /// Opens `--data` (binned by score with `--score-bins`) and splits it.
    pub(super) fn load(cfg: &TrainConfig) -> Result<Data> {
        let source = Dataset::open(&cfg.data)?;
        let scores_unused = match cfg.score_bins {
            Some(_) => 0,
            None => source.items().iter().filter(|i| i.score.is_some()).count(),
        };
        let (ds, score_edges, source, unscored) = match cfg.score_bins {
            Some(b) => {
                let (source, left_out) = source.scored()?;
                let edges = source.score_bin_edges(b)?;
                let kept = source.len();
                (
                    source.binned_by_score(&edges)?,
                    Some(edges),
                    Some(source),
                    Some((left_out, kept)),
                )
            }
            None => (source, None, None, None),
        };
        let Split {
            mut train,
            val,
            val_ds,
            val_split,
            val_why,
            held_classes,
        } = split(cfg, &ds)?;
        if val.len() == 1 {
            return Err(Error::Invalid(
                "the held-out set has 1 image, and leave-one-out validation needs at least 2; \
                 hold out more (--val), or pass --val none"
                    .into(),
            ));
        }
        check_held_out(cfg, val_ds.as_ref().unwrap_or(&ds), &val, &held_classes)?;
        let dropped = check_classes(cfg, &ds, &mut train)?;
        // Binning keeps the items in order, so `train` indexes `source` too.
        let mut score_labels: Vec<String> = source
            .iter()
            .flat_map(|src| {
                train
                    .iter()
                    .map(|&i| src.classes()[src.items()[i].label].clone())
            })
            .collect();
        score_labels.sort_unstable();
        score_labels.dedup();
        let train_labels: Vec<i64> = train.iter().map(|&i| ds.items()[i].label as i64).collect();
        let classes = {
            let mut l = train_labels.clone();
            l.sort_unstable();
            l.dedup();
            l.len()
        };
        Ok(Data {
            ds,
            score_edges,
            score_labels,
            unscored,
            scores_unused,
            train,
            train_labels,
            classes,
            dropped,
            val,
            val_ds,
            val_split,
            val_why,
        })
    }

    /// The dataset that `val` indexes.
    pub(super) fn val_source(&self) -> &Dataset {
        self.val_ds.as_ref().unwrap_or(&self.ds)
    }
}

/// The items of training and validation.
struct Split {
    train: Vec<usize>,
    /// Validation items and the dataset they index (the training set or `--val-data`).
    val: Vec<usize>,
    val_ds: Option<Dataset>,
    val_split: ValSplit,
    val_why: Option<String>,
    /// With `--val classes:F`: the classes held out of training.
    held_classes: Vec<String>,
}

fn split(cfg: &TrainConfig, ds: &Dataset) -> Result<Split> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5EED_5EED);
    let ncls = ds.classes().len();
    let val_ds = match &cfg.val_data {
        Some(p) => Some(Dataset::open(p)?),
        None => None,
    };
    // With --score-bins the held-out images are binned with the training
    // set's edges.
    let val_ds = match (val_ds, cfg.score_bins) {
        (Some(v), Some(b)) => {
            let edges = Dataset::open(&cfg.data)?.scored()?.0.score_bin_edges(b)?;
            Some(v.scored()?.0.binned_by_score(&edges)?)
        }
        (v, _) => v,
    };
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); ncls];
    for (i, it) in ds.items().iter().enumerate() {
        by_class[it.label].push(i);
    }
    let (val_split, val_why) = match cfg.val {
        Some(v) => (v, None),
        None => {
            // Classes that --min-per-class will drop do not count: 17 lone
            // faces of `regions --chips` beside 10 people of 3-12 chips
            // once made the median class 1 image ("held out: none; 1
            // images in the median class"), and would hold nothing out of
            // a set whose kept classes have 40 each.
            let dropped = |n: usize| cfg.min_per_class > 0 && n < cfg.min_per_class.max(2);
            let sizes: Vec<usize> = by_class
                .iter()
                .map(Vec::len)
                .map(|n| if dropped(n) { 0 } else { n })
                .collect();
            let (v, why) = defaults::held_out_split(&sizes, val_ds.is_some());
            (v, Some(why))
        }
    };
    let mut train = Vec::new();
    let mut val = Vec::new();
    let mut held_classes = Vec::new();
    match (val_split, &val_ds) {
        (ValSplit::None, None) => train = (0..ds.len()).collect(),
        (ValSplit::None, Some(v)) => {
            train = (0..ds.len()).collect();
            val = (0..v.len()).collect();
        }
        (ValSplit::Images(f), None) => {
            for items in &mut by_class {
                items.shuffle(&mut rng);
                let mut hold = ((items.len() as f64 * f).round() as usize)
                    .min(items.len().saturating_sub(2));
                // A lone held-out image of its class has no neighbour to
                // find (leave-one-out): hold out two where the class has
                // 4+ images (the johns folder: 11 per person, 10% = 1).
                if hold == 1 && items.len() >= 4 {
                    hold = 2;
                }
                val.extend_from_slice(&items[..hold]);
                train.extend_from_slice(&items[hold..]);
            }
            train.sort_unstable();
            val.sort_unstable();
        }
        (ValSplit::Images(_), Some(_)) => {
            return Err(Error::Invalid(
                "--val images:F holds out images of the training source; with --val-data use --val none or classes:F".into(),
            ))
        }
        (ValSplit::Classes(f), v) => {
            let hold = ((ncls as f64 * f).ceil() as usize).clamp(1, ncls.saturating_sub(2).max(1));
            held_classes = ds.classes()[ncls - hold..].to_vec();
            let held = &held_classes;
            for (c, items) in by_class.iter().enumerate() {
                if c < ncls - hold {
                    train.extend_from_slice(items);
                } else if v.is_none() {
                    val.extend_from_slice(items);
                }
            }
            if let Some(v) = v {
                val = v
                    .items()
                    .iter()
                    .enumerate()
                    .filter(|(_, it)| held.contains(&v.classes()[it.label]))
                    .map(|(i, _)| i)
                    .collect();
            }
            train.sort_unstable();
            val.sort_unstable();
        }
    }
    Ok(Split {
        train,
        val,
        val_ds,
        val_split,
        val_why,
        held_classes,
    })
}

/// Refuses a validation that was asked for (`--val images:F|classes:F`, or
/// `--val-data`) but has nothing to measure: no held-out image with another
/// of its class held out, which leave-one-out needs to find. `--val-data`
/// with `--val classes:F` validates on the `--val-data` images of the
/// classes held out of `--data`, and trained without validating (and
/// without those classes) when it had none of them.
fn check_held_out(
    cfg: &TrainConfig,
    vds: &Dataset,
    val: &[usize],
    held_classes: &[String],
) -> Result<()> {
    let asked = matches!(cfg.val, Some(ValSplit::Images(_) | ValSplit::Classes(_)));
    if !asked && cfg.val_data.is_none() {
        return Ok(());
    }
    let mut counts = vec![0usize; vds.classes().len()];
    for &i in val {
        counts[vds.items()[i].label] += 1;
    }
    if counts.iter().any(|&n| n >= 2) {
        return Ok(());
    }
    // The classes held out and their images there, for the message.
    let images_of = |name: &String| {
        vds.classes()
            .iter()
            .position(|c| c == name)
            .map_or(0, |c| counts[c])
    };
    let held: Vec<(String, usize)> = held_classes
        .iter()
        .map(|c| (c.clone(), images_of(c)))
        .collect();
    let none = "so nothing would be validated (each held-out image needs another of its class \
                to find)";
    let message = match (cfg.val, &cfg.val_data) {
        (Some(ValSplit::Classes(f)), Some(d)) => format!(
            "--val classes:{f} with --val-data {}: validation takes the --val-data images of \
             the {} class(es) held out of --data's training, and {} ({}), {none}; pass --val \
             none to validate on all of --val-data (and train on every class), or drop \
             --val-data to validate on --data's own images of the held-out classes",
            d.display(),
            held.len(),
            if val.is_empty() {
                "none of its images are of those classes"
            } else {
                "no two of its images are of one of them"
            },
            class_list(&held),
        ),
        (Some(ValSplit::Classes(f)), None) => format!(
            "--val classes:{f} holds out {} class(es), none with 2+ images ({}), {none}; hold \
             out more classes (a larger F), or pass --val none",
            held.len(),
            class_list(&held),
        ),
        (Some(ValSplit::Images(f)), _) => format!(
            "--val images:{f} holds out {} image(s), no two of one class (each class holds out \
             F of its images, rounded, and keeps 2 to train), {none}; raise F, or pass --val none",
            val.len(),
        ),
        (_, Some(d)) => format!(
            "--val-data {}: no two of its images are of one class, {none}; give it 2+ images \
             of a class, or drop --val-data",
            d.display()
        ),
        (_, None) => return Ok(()),
    };
    Err(Error::Invalid(message))
}

/// The most classes a message names; the others are counted.
const LISTED_CLASSES: usize = 10;

/// `name (images), …` for up to [`LISTED_CLASSES`] classes, then how many
/// more.
pub(super) fn class_list(classes: &[(String, usize)]) -> String {
    let mut list: Vec<String> = classes
        .iter()
        .take(LISTED_CLASSES)
        .map(|(name, n)| format!("{name} ({n})"))
        .collect();
    if classes.len() > LISTED_CLASSES {
        list.push(format!("and {} more", classes.len() - LISTED_CLASSES));
    }
    list.join(", ")
}

/// Refuses classes with fewer than two training images, or with
/// `--min-per-class` drops those with fewer than it asks from `train` and
/// returns them with their counts.
fn check_classes(
    cfg: &TrainConfig,
    ds: &Dataset,
    train: &mut Vec<usize>,
) -> Result<Vec<(String, usize)>> {
    let mut counts = vec![0usize; ds.classes().len()];
    for &i in train.iter() {
        counts[ds.items()[i].label] += 1;
    }
    let need = cfg.min_per_class.max(2);
    let small: Vec<usize> = (0..counts.len())
        .filter(|&c| counts[c] > 0 && counts[c] < need)
        .collect();
    let named: Vec<(String, usize)> = small
        .iter()
        .map(|&c| (ds.classes()[c].clone(), counts[c]))
        .collect();
    if !small.is_empty() {
        if cfg.min_per_class == 0 {
            return Err(Error::Invalid(format!(
                "{} class(es) have fewer than 2 training images: {}; add images, or pass \
                 --min-per-class 2 to drop them",
                small.len(),
                class_list(&named),
            )));
        }
        train.retain(|&i| !small.contains(&ds.items()[i].label));
    }
    let classes = counts
        .iter()
        .enumerate()
        .filter(|(c, &n)| n >= need && !small.contains(c))
        .count();
    if classes < 2 {
        return Err(Error::Invalid(format!(
            "{}: training needs at least 2 classes with 2+ images each; found {classes}",
            ds.root().display()
        )));
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_lists_name_ten_and_count_the_rest() {
        let classes: Vec<(String, usize)> = (0..13).map(|i| (format!("c{i}"), i % 2 + 1)).collect();
        assert_eq!(class_list(&classes[..2]), "c0 (1), c1 (2)");
        let list = class_list(&classes);
        assert!(
            list.starts_with("c0 (1), c1 (2), c2 (1)") && list.ends_with("c9 (2), and 3 more"),
            "{list}"
        );
    }
}
