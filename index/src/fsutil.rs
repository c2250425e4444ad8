//! Atomic file and directory publication.
//!
//! A reader never sees a half-written file or index directory: content is
//! written under a temporary name in the same parent directory (so the final
//! `rename` stays on one filesystem and is atomic), synced, renamed, and the
//! parent directory synced so the rename itself is durable.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A temporary sibling name of `path` that no other process will pick.
pub(crate) fn temp_sibling(path: &Path, tag: &str) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidInput(format!("{} has no file name", path.display())))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{tag}-{}-{nanos:08x}", std::process::id()));
    Ok(path.with_file_name(tmp))
}

/// Syncs a directory so a rename into it is durable. Errors are ignored on
/// platforms where directories cannot be opened for syncing.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    match File::open(dir) {
        Ok(f) => match f.sync_all() {
            Ok(()) => Ok(()),
            // Some filesystems refuse fsync on directories.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
            Err(e) => Err(Error::io(dir, e)),
        },
        Err(_) => Ok(()),
    }
}

/// Writes `path` through `fill` into a temporary sibling, syncs it and
/// renames it into place.
pub fn atomic_write(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = temp_sibling(path, "tmp")?;
    let res = (|| {
        let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        fill(&mut f).map_err(|e| Error::io(path, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// A temporary sibling directory that is removed on drop unless it was published.
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// Creates a fresh temporary sibling directory of `target`.
    pub fn sibling_of(target: &Path) -> Result<Self> {
        let path = temp_sibling(target, "building")?;
        fs::create_dir(&path).map_err(|e| Error::io(&path, e))?;
        Ok(TempDir { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs every file in the directory and the directory, then renames it
    /// to `target` (which must not exist) and syncs the parent.
    pub fn publish(mut self, target: &Path) -> Result<()> {
        for entry in fs::read_dir(&self.path).map_err(|e| Error::io(&self.path, e))? {
            let p = entry.map_err(|e| Error::io(&self.path, e))?.path();
            File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&p, e))?;
        }
        sync_dir(&self.path)?;
        if target.exists() {
            return Err(Error::InvalidInput(format!(
                "{} already exists; remove it or choose another output directory",
                target.display()
            )));
        }
        fs::rename(&self.path, target).map_err(|e| Error::io(target, e))?;
        self.keep = true;
        sync_dir(target.parent().unwrap_or(Path::new(".")))
    }
}

impl TempDir {
    /// As [`TempDir::publish`], but an existing `target` (which must pass
    /// [`check_replaceable`]) is moved aside, replaced and then removed. The
    /// new directory is complete and synced before the old one moves, so a
    /// reader sees either the old index or the new one (or, for the instant
    /// between the two renames, none).
    pub fn publish_replacing(self, target: &Path, marker: &str) -> Result<()> {
        if !target.exists() {
            return self.publish(target);
        }
        check_replaceable(target, marker)?;
        let old = temp_sibling(target, "replaced")?;
        fs::rename(target, &old).map_err(|e| Error::io(target, e))?;
        match self.publish(target) {
            Ok(()) => {
                // The new index is in place; failing to delete the old copy
                // only leaves a hidden sibling behind.
                let _ = fs::remove_dir_all(&old);
                Ok(())
            }
            Err(e) => {
                let _ = fs::rename(&old, target);
                Err(e)
            }
        }
    }
}

/// Whether `target` may be replaced by a new index: a directory that is
/// empty or holds `marker` (the manifest). Anything else is refused so a
/// mistyped output path cannot delete unrelated files.
pub fn check_replaceable(target: &Path, marker: &str) -> Result<()> {
    let refuse = |why: &str| {
        Err(Error::InvalidInput(format!(
            "{} {why}; refusing to replace it, remove it by hand or choose another output directory",
            target.display()
        )))
    };
    let meta = fs::symlink_metadata(target).map_err(|e| Error::io(target, e))?;
    if !meta.is_dir() {
        return refuse("is not a directory");
    }
    if target.join(marker).is_file() {
        return Ok(());
    }
    let mut entries = fs::read_dir(target).map_err(|e| Error::io(target, e))?;
    if entries.next().is_none() {
        return Ok(());
    }
    refuse(&format!("is not an index directory (no {marker})"))
}

/// Name of the lock file in an index directory.
pub const LOCK: &str = ".lock";

/// An exclusive lock (`flock`) on a directory's [`LOCK`] file, held until
/// dropped: whoever changes an index in place ([`crate::Writer`]) or
/// replaces it ([`crate::IndexBuilder::overwrite`]) holds it, so the two
/// never overlap. A lock is a property of the file, not of its path: a
/// directory renamed aside keeps its lock with it, which is why
/// [`DirLock::check`] compares the path's file with the one held.
#[derive(Debug)]
pub struct DirLock {
    file: File,
    dir: PathBuf,
}

impl DirLock {
    /// Takes the lock of `dir` (creating its lock file), or fails with
    /// [`Error::Busy`] while another holds it (another process, or another
    /// open file of this one).
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK);
        // The file opened may be moved away (its directory replaced) before
        // it is locked: the lock taken then guards the old directory, so
        // look again at what the path names now.
        for _ in 0..3 {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| Error::io(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Busy {
                        path: dir.to_path_buf(),
                    })
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            let lock = DirLock {
                file,
                dir: dir.to_path_buf(),
            };
            if lock.still_named()? {
                return Ok(lock);
            }
        }
        Err(Error::Busy {
            path: dir.to_path_buf(),
        })
    }

    /// Whether `dir/.lock` still names the file this lock holds.
    fn still_named(&self) -> Result<bool> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let path = self.dir.join(LOCK);
            let held = self.file.metadata().map_err(|e| Error::io(&path, e))?;
            match fs::metadata(&path) {
                Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(Error::io(&path, e)),
            }
        }
        // Elsewhere a directory with open files cannot be renamed.
        #[cfg(not(unix))]
        Ok(true)
    }

    /// Fails with [`Error::Replaced`] when the directory at the lock's path
    /// is no longer the one locked (it was replaced, or its lock file
    /// removed): writing through the path would then change a directory
    /// this lock does not guard.
    pub fn check(&self) -> Result<()> {
        if self.still_named()? {
            Ok(())
        } else {
            Err(Error::Replaced {
                path: self.dir.clone(),
            })
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
