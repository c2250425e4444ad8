//! The model's `model.json`, read once and kept while the file stays the
//! same. Every whole-photo `POST /search/image` (with the face models
//! loaded), every `/faces` and every `/info` read and parsed the card
//! (10.7 KB for the demo's regions model); now each `stat`s it and parses
//! it again only when its size, modification time or inode changed, so a
//! card edited or replaced while the server runs (a new `score_domain`)
//! is seen by the next request. Measured on that card (2-core CPU, file
//! in the page cache, 20,000 calls, 3 rounds): 9.6–10.6 µs a read and
//! parse, 1.2–1.4 µs a `stat` that finds it unchanged. Beside a whole
//! photo's search either is noise: 60 sequential curl requests of a johns
//! crop, servers started back to back (--workers 1 --threads 1), took a
//! median 21.2 ms before and 19.8 ms after. This saves work and file reads
//! per request, not time anyone sees.
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::model_card::{ModelSummary, MODEL_CARD};

/// What tells one version of the file from another without reading it.
/// An edit in place changes the size or the modification time (a write of
/// the same length within one tick of the file system's clock would not:
/// the inode and change time narrow that further); a replacement by
/// rename changes the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    ctime: (i64, i64),
    ino: u64,
    dev: u64,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            ctime: (m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            dev: m.dev(),
        }
    }
}

struct Entry {
    path: PathBuf,
    stamp: Stamp,
    /// `None`: the file is there but is not a model card.
    card: Option<Arc<ModelSummary>>,
}

/// The last card read, with the stamp of the file it was read from.
#[derive(Default)]
pub(super) struct CardCache {
    last: Mutex<Option<Entry>>,
}

impl CardCache {
    /// `dir/model.json` as [`ModelSummary::read`] gives it, parsed again
    /// only when the file changed since the last call.
    pub(super) fn get(&self, dir: &Path) -> Option<Arc<ModelSummary>> {
        let path = dir.join(MODEL_CARD);
        // The stamp is taken before the read: a change between the two
        // then leaves a stamp that the next call finds out of date, where
        // one taken after could pair the old text with the new stamp.
        let Ok(meta) = std::fs::metadata(&path) else {
            self.store(None);
            return None;
        };
        let stamp = Stamp::of(&meta);
        if let Some(e) = self.lock().as_ref() {
            if e.path == path && e.stamp == stamp {
                return e.card.clone();
            }
        }
        // Read outside the lock: another request's hit need not wait.
        let card = ModelSummary::read(dir).map(Arc::new);
        self.store(Some(Entry {
            path,
            stamp,
            card: card.clone(),
        }));
        card
    }

    fn store(&self, e: Option<Entry>) {
        *self.lock() = e;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Entry>> {
        self.last.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(arch: &str) -> String {
        format!(
            r#"{{"spec": {{"arch": "{arch}", "dim": 8, "input_size": 32}}, "weights_crc32": "0badcafe"}}"#
        )
    }

    #[test]
    fn a_card_is_read_once_and_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MODEL_CARD);
        let cache = CardCache::default();
        assert!(cache.get(dir.path()).is_none(), "no card yet");
        std::fs::write(&path, card("convnet")).unwrap();
        let first = cache.get(dir.path()).unwrap();
        assert_eq!(first.spec.arch, "convnet");
        // Unchanged: the same parsed card, not a new read.
        assert!(Arc::ptr_eq(&first, &cache.get(dir.path()).unwrap()));
        // Edited in place, to another length.
        std::fs::write(&path, card("efficientnet-lite0")).unwrap();
        assert_eq!(
            cache.get(dir.path()).unwrap().spec.arch,
            "efficientnet-lite0"
        );
        // Replaced by rename with a card of the same length.
        let tmp = dir.path().join("new.json");
        std::fs::write(&tmp, card("dlib-resnet-x")).unwrap();
        std::fs::write(&path, card("dlib-resnet-y")).unwrap();
        let before = cache.get(dir.path()).unwrap();
        assert_eq!(before.spec.arch, "dlib-resnet-y");
        std::fs::rename(&tmp, &path).unwrap();
        assert_eq!(cache.get(dir.path()).unwrap().spec.arch, "dlib-resnet-x");
        // Not a card, then gone.
        std::fs::write(&path, "{}").unwrap();
        assert!(cache.get(dir.path()).is_none());
        std::fs::remove_file(&path).unwrap();
        assert!(cache.get(dir.path()).is_none());
        // Another folder's card is that folder's.
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join(MODEL_CARD), card("other")).unwrap();
        std::fs::write(&path, card("convnet")).unwrap();
        assert_eq!(cache.get(dir.path()).unwrap().spec.arch, "convnet");
        assert_eq!(cache.get(other.path()).unwrap().spec.arch, "other");
    }
}
