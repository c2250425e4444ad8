//! `likeness embed --shard i/N`: one of N contiguous ranges of a dataset's
//! items, so that N processes (the Ray tasks of `likeness.ray`) embed one
//! gallery between them while item order and ids stay global.
//!
//! Shard `i` of a source with `len` items holds items
//! `floor(i·len/N) .. floor((i+1)·len/N)`: sizes differ by at most one and
//! the ranges tile `0..len` in order, so concatenating the shards' vectors
//! gives the vectors of one unsharded `embed`.
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `i/N`: shard `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::Invalid(format!(
                "--shard `{s}` must be i/N with 0 <= i < N (e.g. 0/4 is the first of 4 shards)"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// The items of this shard among `len`.
    pub fn range(&self, len: usize) -> Range<usize> {
        // u128: i·len overflows usize only for absurd sizes, but costs nothing.
        let at = |i: usize| (i as u128 * len as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }

    /// The record written into `embed.json`, for a source of `len` items.
    pub fn info(&self, len: usize) -> ShardInfo {
        let r = self.range(len);
        ShardInfo {
            index: self.index,
            count: self.count,
            offset: r.start,
            items: r.len(),
            source_items: len,
        }
    }
}

/// `embed.json`'s `shard`: which part of the source an embeddings folder
/// holds. Row `r` of its `vectors.npy` has the global id `offset + r`
/// (without `--skip-bad` skips, the source's item `offset + r`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: usize,
    pub count: usize,
    /// First item of the range.
    pub offset: usize,
    /// Items in the range (before any skipped).
    pub items: usize,
    /// Items in the whole source.
    pub source_items: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_tile_the_items_in_order() {
        for len in [0, 1, 5, 10, 10_000, 10_001] {
            for n in 1..=7 {
                let mut next = 0;
                for i in 0..n {
                    let r = Shard { index: i, count: n }.range(len);
                    assert_eq!(r.start, next, "len {len}, shard {i}/{n}");
                    assert!(r.len() == len / n || r.len() == len / n + 1);
                    next = r.end;
                }
                assert_eq!(next, len);
            }
        }
    }

    #[test]
    fn parses_i_of_n_and_refuses_the_rest() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        for bad in ["4/4", "0/0", "1", "a/2", "-1/2", "1/2/3", ""] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains("--shard"), "{bad}: {e}");
        }
    }
}
