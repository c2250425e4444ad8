//! The index writers that `Index` objects of this process hold, so that a
//! second writer of the same process is told who holds the lock.
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use likeness_index::{Error, Writer};

/// Index directories (canonical paths) whose writer an `Index` object of
/// this process holds, once per writer. The lock (`flock` on `.lock`)
/// refuses a second writer of this process as it refuses another
/// process's, and the engine's message then says "another process"; this
/// list lets `py_err` name the holder instead.
static HELD: LazyLock<Mutex<Vec<PathBuf>>> = LazyLock::new(|| Mutex::new(Vec::new()));

/// Whether an `Index` object of this process holds the writer of `dir`.
pub(crate) fn held_here(dir: &Path) -> bool {
    let Ok(key) = dir.canonicalize() else {
        return false;
    };
    HELD.lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&key)
}

/// A writer, listed in `HELD` for as long as it lives.
pub(crate) struct HeldWriter {
    pub(crate) writer: Writer,
    key: Option<PathBuf>,
}

impl HeldWriter {
    pub(crate) fn open(dir: &Path) -> Result<Self, Error> {
        let writer = Writer::open(dir)?;
        let key = dir.canonicalize().ok();
        if let Some(k) = &key {
            HELD.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(k.clone());
        }
        Ok(HeldWriter { writer, key })
    }
}

impl Drop for HeldWriter {
    fn drop(&mut self) {
        let Some(k) = &self.key else { return };
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = held.iter().position(|h| h == k) {
            held.swap_remove(at);
        }
    }
}
