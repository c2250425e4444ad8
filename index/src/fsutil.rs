//! Atomic file and directory publication.
//!
//! A reader never sees a half-written file or index directory: content is
//! written under a temporary name in the same parent directory (so the final
//! `rename` stays on one filesystem and is atomic), synced, renamed, and the
//! parent directory synced so the rename itself is durable.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A temporary sibling name of `path` that no other process will pick:
/// `.<name>.<tag>-<pid>-<nanoseconds>`.
pub(crate) fn temp_sibling(path: &Path, tag: &str) -> Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut tmp = sibling_prefix(path, tag)?;
    tmp.push(format!("{}-{nanos:08x}", std::process::id()));
    Ok(path.with_file_name(tmp))
}

/// What every [`temp_sibling`] name of `path` with `tag` starts with:
/// `.<name>.<tag>-`.
fn sibling_prefix(path: &Path, tag: &str) -> Result<std::ffi::OsString> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidInput(format!("{} has no file name", path.display())))?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(format!(".{tag}-"));
    Ok(prefix)
}

/// Tag of the name under which [`TempDir::publish_replacing`]'s two-rename
/// fallback keeps the old index between its renames.
const REPLACED: &str = "replaced";

/// Tag of the name a [`TempDir`] builds under before it is published.
const BUILDING: &str = "building";

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
        let path = temp_sibling(target, BUILDING)?;
        fs::create_dir(&path).map_err(|e| Error::io(&path, e))?;
        Ok(TempDir { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs every file in the directory and the directory, then renames it
    /// to `target` (which must not exist) and syncs the parent.
    pub fn publish(mut self, target: &Path) -> Result<()> {
        self.sync_contents()?;
        if target.exists() {
            return Err(Error::InvalidInput(format!(
                "{} already exists; remove it or choose another output directory",
                target.display()
            )));
        }
        step(Step::Rename);
        fs::rename(&self.path, target).map_err(|e| Error::io(target, e))?;
        self.keep = true;
        sync_dir(target.parent().unwrap_or(Path::new(".")))
    }

    /// Syncs every file in the directory, then the directory itself, so the
    /// contents are durable before any rename makes them visible.
    fn sync_contents(&self) -> Result<()> {
        for entry in fs::read_dir(&self.path).map_err(|e| Error::io(&self.path, e))? {
            let p = entry.map_err(|e| Error::io(&self.path, e))?.path();
            step(Step::Sync);
            File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&p, e))?;
        }
        step(Step::Sync);
        sync_dir(&self.path)
    }

    /// As [`TempDir::publish`], but an existing `target` (which must pass
    /// [`check_replaceable`]) is replaced and then removed.
    ///
    /// Every file of the new directory, and the directory, is synced first,
    /// while the old index still serves: the syncs of a large index take
    /// seconds, and they used to run after the old directory had moved
    /// aside, so for all that time no index was at `target` and readers
    /// (`Index::open`, a server's reload) failed with "no such directory".
    ///
    /// Then, on Linux, the two directories are swapped in one
    /// `renameat2(RENAME_EXCHANGE)`: the path names the old index, then the
    /// new one, with no instant in between, and a crash leaves one of the
    /// two whole at `target`. Filesystems (or kernels, or other systems)
    /// that refuse the exchange get two plain renames, old aside and new in,
    /// with nothing but the second rename between them; a crash in that gap
    /// leaves the old index whole under its hidden `.replaced-` name.
    pub fn publish_replacing(mut self, target: &Path, marker: &str) -> Result<()> {
        if !target.exists() {
            return self.publish(target);
        }
        check_replaceable(target, marker)?;
        self.sync_contents()?;
        let parent = target.parent().unwrap_or(Path::new("."));
        step(Step::Rename);
        if exchange(&self.path, target).map_err(|e| Error::io(target, e))? {
            // `self.path` now names the old index, which drop removes;
            // failing to remove it only leaves a hidden sibling behind.
            sync_dir(parent)?;
            return Ok(());
        }
        let old = temp_sibling(target, REPLACED)?;
        fs::rename(target, &old).map_err(|e| Error::io(target, e))?;
        step(Step::Rename);
        if let Err(e) = fs::rename(&self.path, target) {
            let _ = fs::rename(&old, target);
            return Err(Error::io(target, e));
        }
        self.keep = true;
        sync_dir(parent)?;
        // The new index is in place and durable; failing to delete the old
        // copy only leaves a hidden sibling behind.
        let _ = fs::remove_dir_all(&old);
        Ok(())
    }
}

/// Looks of [`restore_replaced`] while another process holds the hidden
/// copy's lock, 10 ms more apart each time (0.55 s in all): a live
/// publisher holds it only until its second rename, 16–17 µs after the
/// first on this machine (docs/benchmarks.md, "Replacing an index").
const RESTORE_TRIES: u64 = 10;
/// How much longer each look of [`restore_replaced`] waits than the last.
const RESTORE_STEP_MS: u64 = 10;
/// How long [`restore_replaced`] looks in all, in ms: 10 + 20 + … (550).
const RESTORE_WAIT_MS: u64 = RESTORE_STEP_MS * RESTORE_TRIES * (RESTORE_TRIES + 1) / 2;

/// Puts back the index that [`TempDir::publish_replacing`]'s fallback left
/// under a hidden name when it stopped between its two renames; called
/// when `target` is missing. `Ok(true)`: restored; `Ok(false)`: nothing to
/// restore (no hidden copy holding `marker`), or `target` is there again.
///
/// On a filesystem that cannot swap directories the fallback renames the
/// old index to `.<name>.replaced-<pid>-<n>`, then the new one (synced
/// whole) from `.<name>.building-<pid>-<n>` to `target`. A crash between
/// the two leaves no index at `target` and both whole beside it. The old
/// one is put back, not the new: the build never returned, so its index
/// was never acknowledged, while the old one holds every change that was
/// (and the publisher itself renames it back when its second rename
/// fails).
///
/// The new index beside it, complete but never acknowledged (its build
/// reported no success), is then removed: nobody was told it exists, the
/// person runs the build again, and it held a second copy of the whole
/// gallery under a hidden name (the size of the index again, on the disk
/// a large gallery fills). Only once its process is gone (no process
/// has its id): a live process with that id is a build still
/// running (or the id reused), and its copy is that build's to publish
/// or remove. Nothing acknowledged is in it: a `.building-` copy holds
/// only a build's output until the rename that publishes it.
///
/// A live publisher must not be raced. It holds the old index's lock
/// (`.lock`, `flock`, which moves with the directory) from before its
/// build until after its second rename, and a lock dies with its
/// process. So the lock is taken first, never waited for: while another
/// holds it this looks again, and gives up with an error naming the copy
/// if `target` does not appear; once held, no publisher or writer is
/// using the copy, and it is renamed back without replacing anything at
/// `target` (`RENAME_NOREPLACE`): a build that published there meanwhile
/// (it took no lock, as the path held no index) wins, and the copy stays.
/// Two openers restoring at once: one renames, the other then finds
/// `target`. Then the parent directory is synced. A copy of an empty
/// directory (replaced without a lock) holds no `marker` and is ignored;
/// two copies holding it are refused, as nothing says which is the index.
///
/// Only the gap's own signature counts: a `.replaced-<pid>-` copy beside a
/// `.building-<pid>-` one of the same process, both holding `marker`.
/// A publication that got past its second rename leaves no `.building-`
/// copy, so an old copy it failed to remove (or was killed removing, which
/// takes seconds on a large index) is not brought back after a person
/// deletes the index on purpose.
pub fn restore_replaced(target: &Path, marker: &str) -> Result<bool> {
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // A path without a name ("..") has no hidden copies.
    let Ok(prefix) = sibling_prefix(target, REPLACED) else {
        return Ok(false);
    };
    let unfinished = |hidden: Vec<PathBuf>, reason: String| Error::UnfinishedReplace {
        path: target.to_path_buf(),
        hidden,
        reason,
    };
    for attempt in 0..RESTORE_TRIES {
        if fs::symlink_metadata(target).is_ok() {
            return Ok(false);
        }
        let mut copies = hidden_copies(parent, &prefix, marker);
        let hidden = match copies.len() {
            0 => return Ok(false),
            1 => copies.remove(0),
            n => {
                return Err(unfinished(
                    copies,
                    format!(
                        "there are {n} such copies and nothing says which is the index: rename the one to keep to {} (its {marker} records when it was built)",
                        target.display()
                    ),
                ))
            }
        };
        let lock = match DirLock::acquire(&hidden) {
            Ok(lock) => lock,
            // Its publisher is alive, between its renames: look again.
            Err(Error::Busy { .. }) => {
                std::thread::sleep(std::time::Duration::from_millis(
                    RESTORE_STEP_MS * (attempt + 1),
                ));
                continue;
            }
            // Another opener put it back first.
            Err(_) if fs::symlink_metadata(&hidden).is_err() => continue,
            Err(e) => {
                return Err(unfinished(
                    vec![hidden.clone()],
                    format!(
                        "its lock could not be taken ({}); rename it back by hand: mv {} {}",
                        e.chain_text(),
                        hidden.display(),
                        target.display()
                    ),
                ))
            }
        };
        match rename_noreplace(&hidden, target) {
            Ok(()) => {}
            Err(_) if fs::symlink_metadata(target).is_ok() => return Ok(false),
            Err(e) => {
                return Err(unfinished(
                    vec![hidden.clone()],
                    format!(
                        "renaming it back failed ({e}); rename it back by hand: mv {} {}",
                        hidden.display(),
                        target.display()
                    ),
                ))
            }
        }
        drop(lock);
        sync_dir(parent)?;
        remove_unacknowledged(parent, &hidden, marker);
        return Ok(true);
    }
    let hidden = hidden_copies(parent, &prefix, marker);
    Err(unfinished(
        hidden.clone(),
        format!(
            "another process holds its lock (a `build --force` replacing the index, or a writer) and has not put an index at the path in {:.2} s; open it again when that process ends, or, if none runs, rename it back: mv {} {}",
            RESTORE_WAIT_MS as f64 / 1000.0,
            hidden.first().map_or(String::new(), |h| h.display().to_string()),
            target.display()
        ),
    ))
}

/// The hidden copies in `parent` whose names start with `prefix` and
/// that hold `marker`, each beside a `.building-` copy of the same process
/// that holds it too (none where `parent` cannot be read).
fn hidden_copies(parent: &Path, prefix: &std::ffi::OsStr, marker: &str) -> Vec<PathBuf> {
    let names: Vec<std::ffi::OsString> = fs::read_dir(parent)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    let prefix = prefix.as_encoded_bytes();
    // `.<name>.` of `.<name>.replaced-`, then `building-`.
    let Some(stem) = prefix.strip_suffix(format!("{REPLACED}-").as_bytes()) else {
        return Vec::new();
    };
    let building = [stem, format!("{BUILDING}-").as_bytes()].concat();
    let holds = |n: &std::ffi::OsString| parent.join(n).join(marker).is_file();
    // `<pid>-` of `<pid>-<nanoseconds>`.
    let process = |rest: &[u8]| -> Option<Vec<u8>> {
        let dash = rest.iter().position(|&b| b == b'-')?;
        Some(rest[..=dash].to_vec())
    };
    let builders: Vec<Vec<u8>> = names
        .iter()
        .filter(|n| holds(n))
        .filter_map(|n| process(n.as_encoded_bytes().strip_prefix(building.as_slice())?))
        .collect();
    let mut v: Vec<PathBuf> = names
        .iter()
        .filter(|n| {
            n.as_encoded_bytes()
                .strip_prefix(prefix)
                .and_then(process)
                .is_some_and(|pid| builders.contains(&pid))
        })
        .filter(|n| holds(n))
        .map(|n| parent.join(n))
        .collect();
    v.sort();
    v
}

/// The process id of a hidden copy's name, `.<name>.<tag>-<pid>-<n>`.
fn pid_of(name: &[u8]) -> Option<u32> {
    let rest = &name[..name.iter().rposition(|&b| b == b'-')?];
    let digits = &rest[rest.iter().rposition(|&b| b == b'-')? + 1..];
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Removes the `.building-` copies holding `marker` that the process of
/// the put-back copy `restored` (`.<name>.replaced-<pid>-<n>`) left beside
/// it, when that process is gone ([`restore_replaced`] says why). Failing
/// to remove one only leaves a hidden sibling behind, as a publication
/// that fails to remove its old copy does.
fn remove_unacknowledged(parent: &Path, restored: &Path, marker: &str) {
    let Some(name) = restored.file_name() else {
        return;
    };
    let name = name.as_encoded_bytes();
    let Some(pid) = pid_of(name) else {
        return;
    };
    if !process_gone(pid) {
        return;
    }
    // `.<name>.` of `.<name>.replaced-<pid>-<n>`.
    let tag = format!(".{REPLACED}-{pid}-");
    let Some(at) = name.windows(tag.len()).rposition(|w| w == tag.as_bytes()) else {
        return;
    };
    let building = [&name[..=at], format!("{BUILDING}-{pid}-").as_bytes()].concat();
    for e in fs::read_dir(parent).into_iter().flatten().flatten() {
        let copy = e.path();
        if e.file_name().as_encoded_bytes().starts_with(&building) && copy.join(marker).is_file() {
            let _ = fs::remove_dir_all(&copy);
        }
    }
    let _ = sync_dir(parent);
}

/// Whether no process has the id `pid` (`kill(pid, 0)` fails with
/// `ESRCH`). `false` where that cannot be told: another user's process
/// (`EPERM`), an id that is no process's (0), systems other than Linux
/// (where this crate does not link `libc`).
fn process_gone(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // 0 and negative ids name process groups, not a process.
        if pid <= 0 {
            return false;
        }
        // SAFETY: `kill` with signal 0 sends nothing; it only checks that
        // a process with this id exists and may be signalled. It takes no
        // pointers.
        let rc = unsafe { libc::kill(pid, 0) };
        rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        false
    }
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`):
/// `renameat2(RENAME_NOREPLACE)` on Linux; where it is refused, a look
/// then a plain rename (which still cannot replace a directory that holds
/// anything).
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if renameat2(from, to, libc::RENAME_NOREPLACE)? {
        return Ok(());
    }
    if fs::symlink_metadata(to).is_ok() {
        return Err(std::io::ErrorKind::AlreadyExists.into());
    }
    fs::rename(from, to)
}

/// Swaps the directories `a` and `b` atomically. `Ok(false)` when this
/// system or filesystem cannot (the caller then renames twice).
fn exchange(a: &Path, b: &Path) -> std::io::Result<bool> {
    #[cfg(test)]
    if tests::NO_EXCHANGE.with(std::cell::Cell::get) {
        return Ok(false);
    }
    #[cfg(target_os = "linux")]
    return renameat2(a, b, libc::RENAME_EXCHANGE);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

/// `renameat2(from, to, flags)`; `Ok(false)` where the system or the
/// filesystem does not do `flags` (the callers then fall back).
#[cfg(target_os = "linux")]
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (a, b) = (cstr(from)?, cstr(to)?);
    // The raw system call rather than glibc's wrapper, which only glibc
    // 2.28 and later have; the kernel has had it since 3.15.
    // SAFETY: both paths are NUL-terminated strings that outlive the call,
    // and renameat2 only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        // No such system call (old kernel, a sandbox's filter), or a
        // filesystem without the flag (EINVAL; some report EOPNOTSUPP).
        Some(libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP | libc::EPERM) => Ok(false),
        _ => Err(e),
    }
}

/// A step of a publication, recorded in tests to check their order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Sync,
    Rename,
}

#[cfg(test)]
fn step(s: Step) {
    tests::STEPS.with(|v| v.borrow_mut().push(s));
}

#[cfg(not(test))]
fn step(_: Step) {}

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    thread_local! {
        /// The steps of this thread's publications, in order.
        pub(crate) static STEPS: RefCell<Vec<Step>> = const { RefCell::new(Vec::new()) };
        /// Makes `exchange` report no support, as some filesystems do.
        pub(crate) static NO_EXCHANGE: Cell<bool> = const { Cell::new(false) };
    }

    /// An index-like directory at `dir` holding `marker` = `text`.
    fn fill(dir: &Path, text: &str) {
        fs::write(dir.join("manifest.json"), text).unwrap();
        fs::write(dir.join("vectors.npy"), vec![7u8; 1 << 16]).unwrap();
    }

    fn replace(target: &Path, text: &str) -> Vec<Step> {
        let tmp = TempDir::sibling_of(target).unwrap();
        fill(tmp.path(), text);
        STEPS.with(|s| s.borrow_mut().clear());
        tmp.publish_replacing(target, "manifest.json").unwrap();
        assert_eq!(
            fs::read_to_string(target.join("manifest.json")).unwrap(),
            text
        );
        STEPS.with(|s| s.take())
    }

    /// The old index moved aside before the new one's files were synced,
    /// so for all those syncs no index was at the path.
    #[test]
    fn replacing_syncs_the_new_index_before_the_old_one_moves() {
        for no_exchange in [false, true] {
            NO_EXCHANGE.with(|c| c.set(no_exchange));
            let t = tempfile::tempdir().unwrap();
            let target = t.path().join("ix");
            fs::create_dir(&target).unwrap();
            fill(&target, "old");
            let steps = replace(&target, "new");
            let first_rename = steps.iter().position(|s| *s == Step::Rename).unwrap();
            // Two files and the directory.
            assert_eq!(steps[..first_rename], [Step::Sync; 3], "{steps:?}");
            assert!(!steps[first_rename..].contains(&Step::Sync), "{steps:?}");
            // Nothing left behind: no old copy, no temporary directory.
            let names: Vec<_> = fs::read_dir(t.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["ix"], "no_exchange={no_exchange}");
        }
        NO_EXCHANGE.with(|c| c.set(false));
    }

    /// The name the two-rename fallback gives the old index is the one
    /// `restore_replaced` looks for (`tests/grow.rs` makes the state by
    /// hand).
    #[test]
    fn the_fallbacks_hidden_copy_is_found_and_put_back() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("ix");
        let aside = temp_sibling(&target, REPLACED).unwrap();
        fs::create_dir(&aside).unwrap();
        fill(&aside, "old");
        // Alone, the old copy is one a finished publication left behind.
        assert!(!restore_replaced(&target, "manifest.json").unwrap());
        // Beside this process's new copy, it is the gap's.
        let new = TempDir::sibling_of(&target).unwrap();
        fill(new.path(), "new");
        assert!(restore_replaced(&target, "manifest.json").unwrap());
        assert_eq!(
            fs::read_to_string(target.join("manifest.json")).unwrap(),
            "old"
        );
        assert!(!aside.exists());
        assert!(
            !restore_replaced(&target, "manifest.json").unwrap(),
            "nothing more"
        );
    }

    /// Where the filesystem swaps directories atomically, a reader never
    /// finds the path missing while the index is replaced again and again.
    #[test]
    fn replacing_leaves_no_instant_without_a_directory() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("ix");
        fs::create_dir(&target).unwrap();
        fill(&target, "0");
        let probe = TempDir::sibling_of(&target).unwrap();
        let supported = exchange(probe.path(), &target).unwrap();
        if supported {
            exchange(probe.path(), &target).unwrap();
        } else {
            eprintln!("skipped: this filesystem does not exchange directories");
            return;
        }
        drop(probe);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (stop, target) = (stop.clone(), target.clone());
            std::thread::spawn(move || {
                let (mut looks, mut missing) = (0u64, 0u64);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    looks += 1;
                    if fs::metadata(target.join("manifest.json")).is_err() {
                        missing += 1;
                    }
                }
                (looks, missing)
            })
        };
        for i in 1..=50 {
            replace(&target, &i.to_string());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (looks, missing) = reader.join().unwrap();
        assert!(looks > 0);
        assert_eq!(
            missing, 0,
            "the index was missing in {missing} of {looks} looks"
        );
    }
}
