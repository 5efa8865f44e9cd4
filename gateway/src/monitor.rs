//! MONITOR: the commands this gateway receives for a group, streamed to the clients that
//! asked, in Redis's line format (`+<secs>.<micros> [0 <addr>] "cmd" "arg" ...`). The
//! commands scripts run come from the group's primary on the MONITOR feed (pubsub.rs).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;

/// Lines a slow monitor may fall behind before it misses some.
const BACKLOG: usize = 4096;

pub struct Monitor {
    tx: broadcast::Sender<Bytes>,
    watching: AtomicUsize,
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor { tx: broadcast::channel(BACKLOG).0, watching: AtomicUsize::new(0) }
    }
}

/// One MONITOR client's feed; it stops counting when dropped.
pub struct Watcher {
    monitor: Arc<Monitor>,
    rx: broadcast::Receiver<Bytes>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.monitor.watching.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Watcher {
    /// The next line (lines missed while far behind are skipped, not waited for).
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            match self.rx.recv().await {
                Ok(line) => return Some(line),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Monitor {
    pub fn watch(self: &Arc<Self>) -> Watcher {
        self.watching.fetch_add(1, Ordering::Relaxed);
        Watcher { monitor: self.clone(), rx: self.tx.subscribe() }
    }

    /// Someone is watching.
    pub fn active(&self) -> bool {
        self.watching.load(Ordering::Relaxed) > 0
    }

    /// Sends a command to the watchers; `db`: the database it ran in.
    pub fn feed(&self, db: usize, addr: SocketAddr, args: &[Bytes]) {
        let line =
            ferrocache_common::monitor_line::line(db, &addr.to_string(), args, |i| crate::stats::redacted(args, i));
        let _ = self.tx.send(Bytes::from(line));
    }
}
