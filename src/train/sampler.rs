//! N-pair batches: `T` tuples of `C` distinct classes, two distinct images
//! of each (an anchor and a positive). With `C > N` the trainer mines `N` of
//! the `C` classes per tuple; otherwise `C = N`.
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// One sampled step: `anchors[t*C + c]` and `positives[t*C + c]` are two
/// items of class `labels[t*C + c]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draw {
    pub anchors: Vec<usize>,
    pub positives: Vec<usize>,
    pub labels: Vec<i64>,
}

/// Draws tuples from per-class item lists.
#[derive(Debug, Clone)]
pub struct Sampler {
    by_class: Vec<(i64, Vec<usize>)>,
    classes_per_tuple: usize,
    tuples: usize,
    seed: u64,
}

impl Sampler {
    /// `items[i]` is the class of training item `i`. Every class must have at
    /// least two items (the caller drops or reports smaller ones).
    pub fn new(labels: &[i64], classes_per_tuple: usize, tuples: usize, seed: u64) -> Result<Self> {
        let mut map = std::collections::BTreeMap::<i64, Vec<usize>>::new();
        for (i, &l) in labels.iter().enumerate() {
            map.entry(l).or_default().push(i);
        }
        if let Some((l, _)) = map.iter().find(|(_, v)| v.len() < 2) {
            return Err(Error::Invalid(format!(
                "class {l} has fewer than 2 training items"
            )));
        }
        if classes_per_tuple < 2 {
            return Err(Error::Invalid("a tuple needs at least 2 classes".into()));
        }
        if classes_per_tuple > map.len() {
            return Err(Error::Invalid(format!(
                "--classes-per-tuple {classes_per_tuple} (or --mine-classes) is more than the {} training classes",
                map.len()
            )));
        }
        if tuples == 0 {
            return Err(Error::Invalid("--tuples must be at least 1".into()));
        }
        Ok(Sampler {
            by_class: map.into_iter().collect(),
            classes_per_tuple,
            tuples,
            seed,
        })
    }

    pub fn images_per_step(&self) -> usize {
        2 * self.classes_per_tuple * self.tuples
    }

    /// The draw of `(epoch, step)`: a pure function of the seed, so a resumed
    /// or re-run training sees the same batches.
    pub fn draw(&self, epoch: usize, step: usize) -> Draw {
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed
                ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (step as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
        );
        let n = self.classes_per_tuple * self.tuples;
        let mut d = Draw {
            anchors: Vec::with_capacity(n),
            positives: Vec::with_capacity(n),
            labels: Vec::with_capacity(n),
        };
        let mut order: Vec<usize> = (0..self.by_class.len()).collect();
        for _ in 0..self.tuples {
            order.shuffle(&mut rng);
            for &c in &order[..self.classes_per_tuple] {
                let (label, items) = &self.by_class[c];
                let a = rng.random_range(0..items.len());
                let mut p = rng.random_range(0..items.len() - 1);
                if p >= a {
                    p += 1;
                }
                d.anchors.push(items[a]);
                d.positives.push(items[p]);
                d.labels.push(*label);
            }
        }
        d
    }
}
