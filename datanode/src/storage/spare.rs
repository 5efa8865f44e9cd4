//! Log segments written ahead as zeros, for `appendfsync always`.
//!
//! An fdatasync after an append that grew the file must also write the inode (its size
//! changed): two device writes and a flush per group commit. Over blocks already written and
//! synced, the same fdatasync writes the data alone: on this project's machines it took half
//! the time and ~40 % less CPU (bench/RESULTS.md, session 24). Redis's AOF grows with every
//! write; this is a lever it lacks.
//!
//! A thread per node keeps one spare file of zeros ready beside the log (written and fsynced
//! off the writer's path); the writer renames it into place as its next segment when the
//! current one is full. When no spare is ready the writer goes on growing the segment it has,
//! as without preallocation: it never waits for one. Recovery reads a segment's zero tail as
//! its end (log.rs: no record starts with a zero header).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

/// The spare file's name: `files.rs` lists only `log-N.aof` and `base-N.fcsnap`.
const SPARE_NAME: &str = "log-next.prealloc";
/// Zeros are written this much at a time, so a stop request is seen quickly.
const PIECE: usize = 1 << 20;
/// A preparation that failed (a full disk) is tried again after this long.
const RETRY: Duration = Duration::from_secs(10);

pub struct Spare {
    path: PathBuf,
    size: u64,
    ready: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Asks the thread for another spare (one queued request is enough).
    wanted: SyncSender<()>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Spare {
    /// Starts preparing spares of `size` bytes in `dir` (a stale one from an earlier run is
    /// replaced: it may be half written).
    pub fn start(dir: &Path, name: &str, size: u64) -> Spare {
        let path = dir.join(SPARE_NAME);
        let ready = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (wanted, rx) = sync_channel(1);
        let _ = wanted.try_send(());
        let (p, r, s) = (path.clone(), ready.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("spare-{name}"))
            .spawn(move || prepare_loop(&p, size, &r, &s, rx))
            .map_err(|e| tracing::warn!("cannot start the log preallocation thread: {e}"))
            .ok();
        Spare { path, size, ready, stop, wanted, thread: Mutex::new(thread) }
    }

    /// Bytes a spare holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Moves a ready spare to `dest` and asks for the next; None when none is ready (the
    /// caller goes on without). The caller makes the rename durable (syncs the folder).
    pub fn take(&self, dest: &Path) -> Option<std::fs::File> {
        if !self.ready.swap(false, Ordering::AcqRel) {
            return None;
        }
        let taken = std::fs::rename(&self.path, dest)
            .and_then(|()| std::fs::OpenOptions::new().write(true).open(dest))
            .map_err(|e| tracing::warn!(file = %dest.display(), "cannot use the preallocated log segment: {e}"))
            .ok();
        let _ = self.wanted.try_send(());
        taken
    }

    /// Stops the thread and removes its file (the node's files are about to go).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.wanted.try_send(());
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Spare {
    fn drop(&mut self) {
        self.stop();
    }
}

fn prepare_loop(path: &Path, size: u64, ready: &AtomicBool, stop: &AtomicBool, wanted: Receiver<()>) {
    let mut failed = false;
    loop {
        match wanted.recv_timeout(RETRY) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) if failed => {}
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if stop.load(Ordering::Acquire) {
            return;
        }
        if ready.load(Ordering::Acquire) {
            continue;
        }
        match prepare(path, size, stop) {
            Ok(true) => {
                failed = false;
                ready.store(true, Ordering::Release);
            }
            Ok(false) => return,
            Err(e) => {
                if !failed {
                    tracing::warn!(file = %path.display(), "cannot preallocate the next log segment (appends grow the log instead): {e}");
                }
                failed = true;
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Writes `size` zeros to `path` and syncs them; false when stopped half-way.
fn prepare(path: &Path, size: u64, stop: &AtomicBool) -> std::io::Result<bool> {
    let written = match write_zeros(path, size, stop, true) {
        // The filesystem takes no direct writes (tmpfs, some overlays): through the page cache.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => write_zeros(path, size, stop, false),
        other => other,
    }?;
    if !written {
        let _ = std::fs::remove_file(path);
    }
    Ok(written)
}

/// [`prepare`] into a new file. `direct`: the zeros go around the page cache (no copy into
/// it and no write-back later; copying them was ~6 % of a replica's CPU under `always`
/// SETs), all but what follows the last whole block, which goes through it.
fn write_zeros(path: &Path, size: u64, stop: &AtomicBool, direct: bool) -> std::io::Result<bool> {
    use std::os::unix::fs::{FileExt, OpenOptionsExt};
    const BLOCK: u64 = super::direct::BLOCK as u64;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if direct {
        options.custom_flags(libc::O_DIRECT);
    }
    let f = options.open(path)?;
    let buf = vec![0u8; PIECE + BLOCK as usize];
    let start = buf.as_ptr().align_offset(BLOCK as usize);
    let zeros = &buf[start..start + PIECE];
    let whole = if direct { size - size % BLOCK } else { size };
    let mut at = 0u64;
    while at < whole {
        if stop.load(Ordering::Acquire) {
            return Ok(false);
        }
        let n = (whole - at).min(PIECE as u64) as usize;
        f.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    if whole < size {
        let tail = std::fs::OpenOptions::new().write(true).open(path)?;
        tail.write_all_at(&zeros[..(size - whole) as usize], whole)?;
    }
    // One fsync covers the file whichever descriptor wrote it.
    f.sync_all()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_go_through_the_page_cache_too_and_a_stopped_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("z");
        let size = 2 * PIECE as u64 + 7;
        assert!(write_zeros(&path, size, &AtomicBool::new(false), false).unwrap());
        let data = std::fs::read(&path).unwrap();
        assert!(data.len() as u64 == size && data.iter().all(|&b| b == 0));
        assert!(!prepare(&path, size, &AtomicBool::new(true)).unwrap());
        assert!(!path.exists(), "a stopped preparation removes its file");
    }

    #[test]
    fn a_spare_is_zeros_of_its_size_and_another_follows_a_take() {
        let dir = tempfile::tempdir().unwrap();
        let spare = Spare::start(dir.path(), "t", 3 * PIECE as u64 + 5);
        let dest = dir.path().join("log-7.aof");
        let mut taken = None;
        for _ in 0..500 {
            taken = spare.take(&dest);
            if taken.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(taken.is_some(), "a spare was made ready");
        let data = std::fs::read(&dest).unwrap();
        assert_eq!(data.len(), 3 * PIECE + 5);
        assert!(data.iter().all(|&b| b == 0));
        for _ in 0..500 {
            if spare.ready.load(Ordering::Acquire) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(dir.path().join(SPARE_NAME).exists(), "the next spare is prepared");
        spare.stop();
        assert!(!dir.path().join(SPARE_NAME).exists(), "stopping removes the spare");
    }
}
