//! Changes to an index in place: add, delete, update labels and scores,
//! compact. Ids are positions, given in order and never reused; a deleted
//! item is never returned again.
//!
//! # Design: generations, a change log, tombstones
//!
//! The files of an index (`graph.bin`, `vectors.npy`, `meta.bin`, ...) are
//! never modified once written: searches map them. A change is either
//! - **logged**: appended to the generation's change log
//!   ([`crate::format::log`]) and fsync'd before the call returns (an add
//!   of fewer than [`FOLD_AT`] items, a delete), when its record fits the
//!   log ([`crate::format::log::MAX_RECORD`], 1 GiB: a delete of 134
//!   million ids, or an add of a dimension near a million); a larger one
//!   folds, as a record the reader would refuse must never be
//!   acknowledged. Readers replay the log
//!   when they open the index; an open [`Index`] sees the change at once
//!   ([`crate::live`]): added items are searched exactly beside the graph,
//!   deleted ones route the beam but are never results; or
//! - **folded**: a new generation of the files is written beside the old
//!   (`graph.<g>.bin`, `vectors.<g>.npy`, ...; a file that did not change
//!   is kept and named again), with the logged changes in it, and
//!   `manifest.json` is replaced atomically (write, fsync, rename, fsync
//!   the directory): that rename is the commit. Files no manifest names
//!   are removed by the next writer. An add of [`FOLD_AT`] items or more
//!   (counting those logged) folds: new items are inserted into the graph
//!   as hnswlib's `add_items` does (`hnsw::extend`). `update`
//!   folds (labels live in `meta.bin` and `postings.bin`).
//! - **compact** folds and rebuilds the graph over the live items only;
//!   deleted items keep their ids (ids are positions) but lose their
//!   vector (zeroed), records and links.
//!
//! A process killed at any instant leaves either the old manifest (and
//! the log as far as its last whole record, all acknowledged records
//! included) or the new one: nothing half-applied (`tests/grow.rs` kills
//! writers at random instants and checks). A step that fails after the
//! commit (syncing the directory, opening the new generation) is reported
//! as [`Error::Committed`], so the change is not repeated, and the writer
//! opens the directory again before its next change.
//!
//! One writer at a time: [`Writer::open`] takes an exclusive lock on
//! `.lock` in the directory (`flock`, [`crate::fsutil::DirLock`]), held
//! until the writer is dropped; a second writer gets [`Error::Busy`], and
//! so does a build that would replace the directory
//! ([`crate::IndexBuilder::overwrite`]). A directory replaced without the
//! lock (by hand, by an older release) is noticed before the next change,
//! which fails with [`Error::Replaced`]. Readers take no lock.

mod fold;

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::log::{self, Change};
use crate::format::meta::ItemInfo;
use crate::fsutil::{sync_dir, DirLock};
use crate::index::Index;
use crate::manifest::{Manifest, LIVE_VERSION, MANIFEST};

pub use fold::FoldReport;

/// Items added since the files (searched exactly beside the graph) at
/// which the next add folds them into the graph. The exact scan costs
/// `tail × dim` per query: with 255 logged rows of 784 floats, queries ran
/// at 0.82–0.87× the speed of the graph alone (51,000 × 784, k 10, ef 64,
/// one thread; docs/benchmarks.md). A fold rewrites the vectors, O(items):
/// folding twice as often would halve that cost and double the rewrites.
pub const FOLD_AT: usize = 256;

/// Name of the lock file in an index directory.
pub use crate::fsutil::LOCK;

/// Items to add: prepared or not, with what the index records of each.
#[derive(Debug, Clone, Default)]
pub struct NewItems<'a> {
    /// Row-major vectors of the index's dimension (normalised here for
    /// cosine).
    pub vectors: &'a [f32],
    /// One label each: required when the index has labels, refused when not.
    pub labels: Option<&'a [i64]>,
    /// One score each (NaN = none), for an index with scores.
    pub scores: Option<&'a [f32]>,
    /// Where each came from (an image and region): these are kept in
    /// `meta.bin`, so an add with them always folds.
    pub items: Option<&'a [ItemInfo]>,
    /// The index's class names with new ones appended, when the labels name
    /// new classes (`labels` index this list); kept in the manifest, so an
    /// add with them folds.
    pub classes: Option<&'a [String]>,
}

/// Changes an index in place; see the module documentation.
#[derive(Debug)]
pub struct Writer {
    dir: PathBuf,
    lock: DirLock,
    index: Arc<Index>,
    /// The change log, open for appending once the generation has one.
    log: Option<File>,
    /// An append failed and its bytes could not be cut off: no more
    /// appends until the log is reopened.
    log_broken: bool,
    /// A change failed where `index` and `log` may no longer be what the
    /// manifest names (a fold or a new log committed, then a later step
    /// failed): the next change opens the directory again first. Appending
    /// to the old log then would acknowledge a change into a file no
    /// manifest names, and the ids given would be taken already.
    stale: bool,
    threads: usize,
}

impl Writer {
    /// Opens the index at `dir` for changes: takes its lock, opens it
    /// (replaying its log), cuts off a record a crash left unfinished and
    /// removes files no manifest names.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.join(MANIFEST).exists() {
            // Let the reader's error say what is missing.
            Index::open(&dir)?;
        }
        // Taken before the index is opened, and checked before each change
        // (`DirLock::check`): a writer holding it never writes into a directory
        // that replaced the one it opened.
        let lock = DirLock::acquire(&dir)?;
        let index = Arc::new(Index::open(&dir)?);
        let mut w = Writer {
            dir,
            lock,
            index,
            log: None,
            log_broken: false,
            stale: false,
            threads: 0,
        };
        w.open_log()?;
        fold::remove_unnamed(&w.dir, w.index.manifest())?;
        Ok(w)
    }

    /// Threads a fold inserts or builds with (0: rayon's default).
    pub fn threads(&mut self, threads: usize) -> &mut Self {
        self.threads = threads;
        self
    }

    /// The index as of the last change (a new `Arc` after a fold).
    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// Opens the index again as the manifest now names it, with its log.
    fn reopen(&mut self) -> Result<()> {
        self.stale = true;
        self.log = None;
        self.log_broken = false;
        self.index = Arc::new(open_index(&self.dir)?);
        self.open_log()?;
        self.stale = false;
        Ok(())
    }

    /// Before a change: the lock still guards the directory, and this
    /// writer sees what its manifest names (see `stale`).
    fn ready(&mut self) -> Result<()> {
        self.lock.check()?;
        if self.stale {
            self.reopen()?;
        }
        Ok(())
    }

    /// Opens the generation's log for appending, cutting off a torn tail.
    fn open_log(&mut self) -> Result<()> {
        self.log = None;
        self.log_broken = false;
        let Some(name) = &self.index.manifest().log else {
            return Ok(());
        };
        let path = self.dir.join(name);
        let mut f = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let good = self.index.log_len();
        if self.index.log_state().1 > 0 {
            f.set_len(good).map_err(|e| Error::io(&path, e))?;
            f.sync_all().map_err(|e| Error::io(&path, e))?;
        }
        f.seek(SeekFrom::Start(good))
            .map_err(|e| Error::io(&path, e))?;
        self.log = Some(f);
        Ok(())
    }

    /// Starts this generation's change log: the file with its header,
    /// fsync'd, then a manifest naming it.
    fn start_log(&mut self) -> Result<()> {
        let m = self.index.manifest();
        let name = format!("log.{}.wal", m.generation);
        let path = self.dir.join(&name);
        let mut f = File::create(&path).map_err(|e| Error::io(&path, e))?;
        f.write_all(&log::header(m.dim, self.index.base_len(), m.generation))
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        sync_dir(&self.dir)?;
        let mut next = m.clone();
        next.log = Some(name);
        next.format_version = LIVE_VERSION;
        // Whether or not the manifest is replaced, `index` may not be what
        // it names from here on.
        self.stale = true;
        write_manifest(&self.dir, &next)?;
        self.reopen()
    }

    /// Appends `change` to the log and fsyncs it: once this returns, the
    /// change survives a crash. Then the open index sees it.
    fn append(&mut self, change: Change) -> Result<()> {
        // The log file is open in the directory this writer opened: were
        // that replaced, the change would be acknowledged and lost.
        self.ready()?;
        if self.log.is_none() {
            self.start_log()?;
        }
        let mut live = (*self.index.snapshot()).clone();
        live.check(&change).map_err(Error::InvalidInput)?;
        // `add` and `delete` fold such a change instead; appended, the
        // reader would cut it off as a torn tail, acknowledged.
        if !log::fits(log::payload_len(&change, self.index.dim())) {
            return Err(Error::InvalidInput(format!(
                "a change of {} bytes is more than the change log takes ({} bytes); nothing was changed",
                log::payload_len(&change, self.index.dim()).unwrap_or(usize::MAX),
                log::MAX_RECORD
            )));
        }
        let record = log::record(&change, self.index.dim());
        let path = self.log_path();
        if self.log_broken {
            return Err(Error::InvalidInput(format!(
                "{}: an earlier append failed and its partial record could not be cut off; reopen the index (restart the server) before changing it again",
                path.display()
            )));
        }
        let f = self
            .log
            .as_mut()
            .ok_or_else(|| Error::InvalidInput("no log".into()))?;
        let start = f.stream_position().map_err(|e| Error::io(&path, e))?;
        if let Err(e) = f.write_all(&record).and_then(|()| f.sync_data()) {
            // The caller is told this change failed, so none of it may stay:
            // a partial record followed by the next append would read as a
            // damaged log (not a torn tail), and a whole one unsynced could
            // be replayed after a crash. Cut it off; if even that fails,
            // append nothing more (reopening cuts it as a torn tail).
            let undone = f
                .set_len(start)
                .and_then(|()| f.seek(SeekFrom::Start(start)))
                .and_then(|_| f.sync_all());
            self.log_broken = undone.is_err();
            return Err(Error::io(&path, e));
        }
        live.apply(&change);
        self.index.set_live(live);
        Ok(())
    }

    fn log_path(&self) -> PathBuf {
        self.dir
            .join(self.index.manifest().log.as_deref().unwrap_or("log"))
    }

    /// Adds items; returns their ids. Fewer than [`FOLD_AT`] (with those
    /// logged before) are logged; more fold into a new generation.
    pub fn add(&mut self, new: &NewItems<'_>) -> Result<Range<u64>> {
        self.ready()?;
        let dim = self.index.dim();
        crate::distance::check_shape(new.vectors.len(), dim)?;
        if new.vectors.is_empty() {
            return Err(Error::InvalidInput("no vectors to add".into()));
        }
        let n = new.vectors.len() / dim;
        if let Some(items) = new.items.filter(|i| i.len() != n) {
            return Err(Error::InvalidInput(format!(
                "{n} vectors but {} item records",
                items.len()
            )));
        }
        let mut vectors = new.vectors.to_vec();
        self.index.metric().preprocess(&mut vectors, dim)?;
        let live = self.index.snapshot();
        let first = live.len() as u64;
        if first + n as u64 >= u64::from(u32::MAX) {
            return Err(Error::InvalidInput(format!(
                "{n} more items would pass the {} an index can hold",
                u32::MAX - 1
            )));
        }
        let change = Change::Add {
            first,
            labels: new.labels.map(<[i64]>::to_vec),
            scores: new.scores.map(<[f32]>::to_vec),
            vectors,
        };
        live.check(&change).map_err(Error::InvalidInput)?;
        let old_classes = &self.index.manifest().classes;
        let classes = new.classes.filter(|c| *c != &old_classes[..]);
        if let Some(c) = classes.filter(|c| !c.starts_with(old_classes)) {
            return Err(Error::InvalidInput(format!(
                "the new class list ({} names) must start with the index's {} class names",
                c.len(),
                old_classes.len()
            )));
        }
        if let Some(c) = classes {
            self.check_new_classes(c, &[])?;
        }
        // A record too large for the log is folded: only a fold keeps it
        // (see `append`).
        let too_large = !log::fits(log::payload_len(&change, dim));
        if new.items.is_some() || classes.is_some() || live.tail_len() + n >= FOLD_AT || too_large {
            self.fold_with(fold::Fold {
                change: Some((&change, new.items)),
                classes,
                ..fold::Fold::default()
            })
            // Its ids, which the caller would otherwise never learn.
            .map_err(|e| {
                committed_as(e, || {
                    format!("the add of items {first}..={}", first + n as u64 - 1)
                })
            })?;
        } else {
            self.append(change)?;
        }
        Ok(first..first + n as u64)
    }

    /// Deletes items; returns how many were not deleted before. An id out
    /// of range is an error and nothing is deleted.
    pub fn delete(&mut self, ids: &[u64]) -> Result<usize> {
        self.ready()?;
        let live = self.index.snapshot();
        let fresh: Vec<u64> = {
            let mut v: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|&i| i >= live.len() as u64 || !live.deleted.contains(i as usize))
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let change = Change::Delete { ids: fresh };
        live.check(&change).map_err(Error::InvalidInput)?;
        let Change::Delete { ids: fresh } = &change else {
            unreachable!()
        };
        let n = fresh.len();
        if n == 0 {
            return Ok(0);
        }
        if log::fits(log::payload_len(&change, self.index.dim())) {
            self.append(change)?;
        } else {
            // Too many ids for one record (134 million): folded in one
            // piece, so the delete stays all or nothing, as a logged one.
            self.fold_with(fold::Fold {
                change: Some((&change, None)),
                ..fold::Fold::default()
            })
            .map_err(|e| committed_as(e, || format!("the delete of {n} items")))?;
        }
        Ok(n)
    }

    /// Sets the labels and/or scores of `ids` (vectors untouched); folds.
    pub fn update(
        &mut self,
        ids: &[u64],
        labels: Option<&[i64]>,
        scores: Option<&[f32]>,
    ) -> Result<FoldReport> {
        self.update_with(ids, labels, scores, None)
    }

    /// As [`Writer::update`], with the index's class names extended by new
    /// ones (the old list must be a prefix) that `labels` may name.
    pub fn update_with(
        &mut self,
        ids: &[u64],
        labels: Option<&[i64]>,
        scores: Option<&[f32]>,
        classes: Option<&[String]>,
    ) -> Result<FoldReport> {
        self.ready()?;
        let old = &self.index.manifest().classes;
        if let Some(c) = classes.filter(|c| !c.starts_with(old)) {
            return Err(Error::InvalidInput(format!(
                "the new class list ({} names) must start with the index's {} class names",
                c.len(),
                old.len()
            )));
        }
        if let Some(c) = classes {
            self.check_new_classes(c, ids)?;
        }
        self.fold_with(fold::Fold {
            update: Some(fold::Update {
                ids,
                labels,
                scores,
            }),
            classes,
            ..fold::Fold::default()
        })
    }

    /// Refuses new class names (`classes` past the index's own) whose
    /// labels an item not in `relabelled` already carries: the item would
    /// silently change class. A build with class names gives every label
    /// one, so this guards indexes built before it checked, and integer
    /// labels added past the names.
    fn check_new_classes(&self, classes: &[String], relabelled: &[u64]) -> Result<()> {
        let known = self.index.manifest().classes.len();
        if classes.len() <= known {
            return Ok(());
        }
        let new = known as i64..classes.len() as i64;
        let relabelled: std::collections::HashSet<u64> = relabelled.iter().copied().collect();
        let live = self.index.snapshot();
        let labels = self
            .index
            .labels()
            .into_iter()
            .flatten()
            .chain(live.tail_labels.iter().flatten());
        for (id, &l) in labels.enumerate() {
            if new.contains(&l) && !live.deleted.contains(id) && !relabelled.contains(&(id as u64))
            {
                return Err(Error::InvalidInput(format!(
                    "the new class name `{}` would take label {l}, which item {id} already carries: \
                     this index names {known} labels (0..{known}) but its items use more; \
                     nothing was changed. Rebuild the index with one class name per label",
                    classes[l as usize]
                )));
            }
        }
        Ok(())
    }

    /// Writes every change into one clean generation: the graph rebuilt
    /// over the live items, deleted items' vectors and records wiped.
    pub fn compact(&mut self) -> Result<FoldReport> {
        self.fold_with(fold::Fold {
            compact: true,
            ..fold::Fold::default()
        })
    }

    /// Writes the logged changes into a new generation (the graph extended
    /// with the added items) and starts an empty log.
    pub fn fold(&mut self) -> Result<FoldReport> {
        self.fold_with(fold::Fold::default())
    }

    fn fold_with(&mut self, f: fold::Fold<'_>) -> Result<FoldReport> {
        // A fold writes by path: into a directory that replaced this
        // writer's, it would overwrite an index it holds no lock on.
        self.ready()?;
        let before = self.index.generation();
        // Once the fold starts, the manifest may name a new generation
        // whatever happens next: this writer's index and log are the old
        // one's until it is open.
        self.stale = true;
        let res = fold::run(&self.dir, &self.index, f, self.threads);
        let reopened = self.reopen();
        if reopened.is_ok() {
            // Only tidying: a failure leaves files the next writer removes.
            let _ = fold::remove_unnamed(&self.dir, self.index.manifest());
        }
        let now = Manifest::read(&self.dir).map(|m| m.generation);
        // The manifest names the new generation: the change is made,
        // whatever failed after the commit (syncing the directory, opening
        // the new files). Saying it failed would have the caller repeat it.
        let committed = res.is_ok() || now.as_ref().is_ok_and(|&g| g != before);
        match (res, reopened) {
            (Ok(report), Ok(())) => Ok(report),
            (res, reopened) if committed => {
                let generation = match (&res, &now) {
                    (Ok(r), _) => r.generation,
                    (_, Ok(g)) => *g,
                    _ => before + 1,
                };
                let failed = res.err().or(reopened.err());
                Err(Error::Committed {
                    path: self.dir.clone(),
                    change: "the change".into(),
                    generation,
                    reason: failed.map_or_else(String::new, |e| e.chain_text()),
                })
            }
            (res, _) => res,
        }
    }
}

/// An [`Error::Committed`] said of `change` ("the add of items 3..=9");
/// any other error as it is.
fn committed_as(e: Error, change: impl FnOnce() -> String) -> Error {
    match e {
        Error::Committed {
            path,
            generation,
            reason,
            ..
        } => Error::Committed {
            path,
            change: change(),
            generation,
            reason,
        },
        e => e,
    }
}

/// Opens the index of a writer (in tests, failing once when asked to: how
/// a fold's commit followed by a failure is made).
fn open_index(dir: &Path) -> Result<Index> {
    #[cfg(test)]
    if tests::FAIL_OPEN.with(|f| f.take()) {
        return Err(Error::io(
            dir,
            std::io::Error::from_raw_os_error(24), // EMFILE
        ));
    }
    Index::open(dir)
}

/// Replaces `manifest.json` atomically (the commit of a change).
fn write_manifest(dir: &Path, m: &Manifest) -> Result<()> {
    let json = serde_json::to_vec_pretty(m)
        .map_err(|e| Error::InvalidInput(format!("cannot encode manifest: {e}")))?;
    crate::fsutil::atomic_write(&dir.join(MANIFEST), |f| f.write_all(&json))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::{IndexBuilder, Metric};

    thread_local! {
        /// Makes the writer's next opening of the index fail (once).
        pub(super) static FAIL_OPEN: Cell<bool> = const { Cell::new(false) };
    }

    const DIM: usize = 8;

    fn rows(n: usize, seed: f32) -> Vec<f32> {
        (0..n * DIM)
            .map(|i| (i as f32 * 0.37 + seed).sin())
            .collect()
    }

    /// An l2 index of 300 `rows` in a temporary folder (kept alive by the
    /// returned guard), at `ix` inside it.
    fn three_hundred() -> (tempfile::TempDir, std::path::PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("ix");
        IndexBuilder::new()
            .metric(Metric::L2)
            .build(&rows(300, 0.0), DIM, None, None, &dir, None)
            .unwrap();
        (t, dir)
    }

    /// A fold that committed, then failed to open its new generation (out
    /// of file descriptors, say, in a server), used to leave the writer on
    /// the old generation with the old log open: it said the add failed
    /// (a retry adds the items twice), and the next small add was appended
    /// to the old log, which no manifest names, and acknowledged with ids
    /// the fold had given: lost at the next open.
    #[test]
    fn a_failure_after_a_fold_commits_says_so_and_loses_nothing_after() {
        let (_keep, dir) = three_hundred();
        let mut w = Writer::open(&dir).unwrap();
        w.add(&NewItems {
            vectors: &rows(2, 1.0),
            ..NewItems::default()
        })
        .unwrap();
        FAIL_OPEN.with(|f| f.set(true));
        let err = w
            .add(&NewItems {
                vectors: &rows(FOLD_AT, 2.0),
                ..NewItems::default()
            })
            .unwrap_err();
        assert!(
            matches!(err, Error::Committed { generation: 1, .. }),
            "{err}"
        );
        let next = 300 + 2 + FOLD_AT as u64;
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "the add of items 302..={} was committed",
                next - 1
            )) && text.contains("do not repeat it"),
            "{text}"
        );
        let ids = w
            .add(&NewItems {
                vectors: &rows(3, 3.0),
                ..NewItems::default()
            })
            .unwrap();
        assert_eq!(ids, next..next + 3);
        w.delete(&[5]).unwrap();
        drop(w);
        let ix = Index::open(&dir).unwrap();
        assert_eq!(ix.len(), next as usize + 3);
        assert!(ix.is_deleted(5));
        let want = rows(3, 3.0);
        assert_eq!(ix.item_vector(next as usize + 2).unwrap(), &want[2 * DIM..]);
        ix.verify().unwrap();
    }

    /// A change whose record was over the log's limit used to be appended
    /// and acknowledged, then cut off at the next open as a torn tail: the
    /// deleted items came back, the added ones were gone. It folds now.
    /// (The limit is lowered for this thread: the real one takes a GiB.)
    #[test]
    fn a_change_too_large_for_the_log_is_folded_not_lost() {
        let (_keep, dir) = three_hundred();
        // A delete of 2 ids takes 28 bytes, of 30 ids 252; an add of 10
        // rows of 8 floats 340.
        log::tests::MAX_RECORD_FOR_TEST.with(|l| l.set(Some(200)));
        let mut w = Writer::open(&dir).unwrap();
        assert_eq!(w.delete(&[1, 2]).unwrap(), 2);
        let mut generations = vec![w.index().generation()];
        let many: Vec<u64> = (10..40).collect();
        assert_eq!(w.delete(&many).unwrap(), 30);
        generations.push(w.index().generation());
        let ids = w
            .add(&NewItems {
                vectors: &rows(10, 1.0),
                ..NewItems::default()
            })
            .unwrap();
        assert_eq!(ids, 300..310);
        generations.push(w.index().generation());
        drop(w);
        let ix = Index::open(&dir).unwrap();
        assert_eq!((ix.len(), ix.live_count()), (310, 310 - 32));
        for id in [1, 2, 10, 39] {
            assert!(ix.is_deleted(id), "{id}");
        }
        assert_eq!(ix.item_vector(309).unwrap(), &rows(10, 1.0)[9 * DIM..]);
        ix.verify().unwrap();
        // The small delete was logged; the two large changes folded.
        assert_eq!(generations, [0, 1, 2]);
        log::tests::MAX_RECORD_FOR_TEST.with(|l| l.set(None));
    }

    /// A fold that failed before its commit changes nothing, and the
    /// writer goes on from the generation it had.
    #[test]
    fn a_fold_that_fails_before_its_commit_changes_nothing() {
        let (_keep, dir) = three_hundred();
        let mut w = Writer::open(&dir).unwrap();
        // No labels to update: refused before anything is written.
        let err = w.update(&[1], Some(&[1]), None).unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
        let ids = w
            .add(&NewItems {
                vectors: &rows(2, 1.0),
                ..NewItems::default()
            })
            .unwrap();
        assert_eq!(ids, 300..302);
        assert_eq!(w.index().generation(), 0);
    }
}
