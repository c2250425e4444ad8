//! What an index holds beyond its generation's files: the items added and
//! deleted since (replayed from the change log, [`crate::format::log`]),
//! and the deleted items the generation records (`deleted.bin`).
//!
//! An open [`crate::Index`] keeps one [`Live`] behind an `Arc`; a search
//! clones the `Arc` (no lock is held while it runs) and a writer swaps in
//! a new one, so a search sees every change acknowledged before it began.

use crate::format::log::Change;

/// A set of item ids as one bit each.
#[derive(Debug, Clone, Default)]
pub struct Deleted {
    words: Vec<u64>,
    count: usize,
}

impl Deleted {
    /// The set of `ids`.
    pub fn of(ids: &[u32]) -> Self {
        let mut d = Deleted::default();
        for &i in ids {
            d.insert(i as usize);
        }
        d
    }

    /// Whether `id` is in the set.
    #[inline]
    pub fn contains(&self, id: usize) -> bool {
        self.words
            .get(id / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// Adds `id`; false when it was there already.
    pub fn insert(&mut self, id: usize) -> bool {
        if self.words.len() <= id / 64 {
            self.words.resize(id / 64 + 1, 0);
        }
        let w = &mut self.words[id / 64];
        let bit = 1 << (id % 64);
        let new = *w & bit == 0;
        *w |= bit;
        self.count += usize::from(new);
        new
    }

    /// Number of ids in the set.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The ids, ascending.
    pub fn ids(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.count);
        for (w, &bits) in self.words.iter().enumerate() {
            let mut b = bits;
            while b != 0 {
                out.push((w * 64) as u32 + b.trailing_zeros());
                b &= b - 1;
            }
        }
        out
    }
}

/// The changes on top of a generation's files.
#[derive(Debug, Clone)]
pub struct Live {
    /// Items in the generation's files (ids `0..base`).
    pub base: usize,
    pub dim: usize,
    /// Prepared vectors of the items added since (ids `base..`), row-major.
    pub tail: Vec<f32>,
    /// Their labels (the index has labels) and scores (it has scores).
    pub tail_labels: Option<Vec<i64>>,
    pub tail_scores: Option<Vec<f32>>,
    /// Deleted items, of the files and since.
    pub deleted: Deleted,
    /// Records replayed from, or appended to, the change log.
    pub records: usize,
}

impl Live {
    /// No changes on top of `base` items (`labels`/`scores`: whether the
    /// index has them, so added items must or may bring them).
    pub fn new(base: usize, dim: usize, labels: bool, scores: bool, deleted: Deleted) -> Self {
        Live {
            base,
            dim,
            tail: Vec::new(),
            tail_labels: labels.then(Vec::new),
            tail_scores: scores.then(Vec::new),
            deleted,
            records: 0,
        }
    }

    /// Items added since the files.
    pub fn tail_len(&self) -> usize {
        self.tail.len() / self.dim.max(1)
    }

    /// Every id given so far: ids are `0..len()`.
    pub fn len(&self) -> usize {
        self.base + self.tail_len()
    }

    /// Whether no id was given (never true for a built index).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items not deleted.
    pub fn live_count(&self) -> usize {
        self.len() - self.deleted.len()
    }

    /// Vector of tail item `id` (an id ≥ `base`).
    pub fn tail_vector(&self, id: usize) -> Option<&[f32]> {
        let r = id.checked_sub(self.base)?;
        self.tail.get(r * self.dim..(r + 1) * self.dim)
    }

    /// Checks `change` against this state (ids, shapes, labels and scores
    /// as the index has them): the message says what is wrong.
    pub fn check(&self, change: &Change) -> std::result::Result<(), String> {
        match change {
            Change::Add {
                first,
                labels,
                scores,
                vectors,
            } => {
                let n = vectors.len() / self.dim.max(1);
                if *first != self.len() as u64 {
                    return Err(format!(
                        "adds items from id {first}, but the next id is {}",
                        self.len()
                    ));
                }
                if n == 0 || n * self.dim != vectors.len() {
                    return Err(format!(
                        "{} values are not whole rows of {}",
                        vectors.len(),
                        self.dim
                    ));
                }
                match (labels, &self.tail_labels) {
                    (Some(l), Some(_)) if l.len() != n => {
                        return Err(format!("{n} vectors but {} labels", l.len()))
                    }
                    (None, Some(_)) => {
                        return Err("this index has labels: give one for each new item".into())
                    }
                    (Some(_), None) => {
                        return Err("this index has no labels; add the items without them".into())
                    }
                    _ => {}
                }
                match (scores, &self.tail_scores) {
                    (Some(s), Some(_)) if s.len() != n => {
                        return Err(format!("{n} vectors but {} scores", s.len()))
                    }
                    (Some(_), None) => {
                        return Err(
                            "this index has no scores; build it with scores to add scored items"
                                .into(),
                        )
                    }
                    (Some(s), _) if s.iter().any(|v| v.is_infinite()) => {
                        return Err("scores must be finite (NaN = none)".into())
                    }
                    _ => {}
                }
                if vectors.iter().any(|v| !v.is_finite()) {
                    return Err("vectors must be finite".into());
                }
                Ok(())
            }
            Change::Delete { ids } => match ids.iter().find(|&&i| i >= self.len() as u64) {
                Some(i) => Err(format!(
                    "no item {i}: ids of this index are 0..{}",
                    self.len()
                )),
                None => Ok(()),
            },
        }
    }

    /// Applies a change that passed [`Live::check`].
    pub fn apply(&mut self, change: &Change) {
        match change {
            Change::Add {
                labels,
                scores,
                vectors,
                ..
            } => {
                let n = vectors.len() / self.dim.max(1);
                self.tail.extend_from_slice(vectors);
                if let (Some(t), Some(l)) = (&mut self.tail_labels, labels) {
                    t.extend_from_slice(l);
                }
                if let Some(t) = &mut self.tail_scores {
                    match scores {
                        Some(s) => t.extend_from_slice(s),
                        None => t.extend(std::iter::repeat_n(f32::NAN, n)),
                    }
                }
            }
            Change::Delete { ids } => {
                for &i in ids {
                    self.deleted.insert(i as usize);
                }
            }
        }
        self.records += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deleted_set() {
        let mut d = Deleted::of(&[3, 64, 200]);
        assert!(d.contains(64) && !d.contains(65) && !d.contains(10_000));
        assert!(!d.insert(3));
        assert!(d.insert(0));
        assert_eq!(d.ids(), vec![0, 3, 64, 200]);
        assert_eq!(d.len(), 4);
    }

    #[test]
    fn changes_are_checked_then_applied() {
        let mut l = Live::new(2, 2, true, false, Deleted::default());
        let add = Change::Add {
            first: 2,
            labels: Some(vec![7]),
            scores: None,
            vectors: vec![1.0, 0.0],
        };
        l.check(&add).unwrap();
        l.apply(&add);
        assert_eq!((l.len(), l.tail_vector(2)), (3, Some(&[1.0, 0.0][..])));
        assert!(l.check(&add).unwrap_err().contains("next id is 3"));
        let unlabelled = Change::Add {
            first: 3,
            labels: None,
            scores: None,
            vectors: vec![1.0, 0.0],
        };
        assert!(l.check(&unlabelled).unwrap_err().contains("has labels"));
        assert!(l.check(&Change::Delete { ids: vec![3] }).is_err());
        l.apply(&Change::Delete { ids: vec![0, 2] });
        assert_eq!(l.live_count(), 1);
    }
}
