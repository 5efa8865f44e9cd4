//! The storage writer: one thread per node that persists the node's changed keys off the
//! hot path, and owns fsync.
//!
//! ```text
//!  node commit (under its lock): add dirty keys to the pending set, bump seq, kick
//!  writer thread: lock the node, take the pending set, copy those keys' current values and
//!  the replication position (one consistent cut), unlock; one store.write; fsync when asked
//!  or every interval; `always` replies wait for durable >= seq
//! ```
//! Pulling the current values, rather than queueing a copy per commit, is what keeps big
//! collections cheap: a sorted set written 10,000 times between two writer runs is copied
//! and stored once, not 10,000 times. Taking the keys, their values and the position under
//! the node's lock makes every stored state one the node really was in.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{Store, StoreBatch, StoreError};

enum Job {
    /// Something is pending: write it.
    Kick,
    /// Write what is pending, fsync, then answer.
    Sync(std::sync::mpsc::Sender<Result<(), String>>),
}

/// What the writer takes from its node in one run.
pub struct Pulled {
    /// The node's commit sequence number this state corresponds to.
    pub seq: u64,
    pub batch: StoreBatch,
    /// Some commit in it wants an fsync before it answers (`appendfsync always`).
    pub fsync: bool,
}

/// Takes the node's pending writes, or None when nothing is pending.
pub type Source = Box<dyn FnMut() -> Option<Pulled> + Send>;

pub struct StoreWriter {
    tx: SyncSender<Job>,
    durable: watch::Receiver<u64>,
    failed: watch::Receiver<Option<String>>,
}

impl StoreWriter {
    /// Starts the writer thread; `fsync_every` is how often unflushed writes are fsynced
    /// (None = only when a pull asks for it).
    pub fn start(name: &str, store: Arc<dyn Store>, fsync_every: Option<Duration>, source: Source) -> StoreWriter {
        // One queued kick is enough: a run takes everything pending at that moment.
        let (tx, rx) = sync_channel(1);
        let (durable_tx, durable) = watch::channel(0);
        let (failed_tx, failed) = watch::channel(None);
        let spawned = std::thread::Builder::new().name(format!("store-{name}")).spawn(move || {
            run(rx, store, source, fsync_every, durable_tx, failed_tx);
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start the storage writer: {e}");
        }
        StoreWriter { tx, durable, failed }
    }

    /// Tells the writer something is pending (never blocks).
    pub fn kick(&self) -> Result<(), StoreError> {
        match self.tx.try_send(Job::Kick) {
            Ok(()) | Err(TrySendError::Full(_)) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::WriterGone),
        }
    }

    /// Waits until commit `seq` is on disk.
    pub async fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        let mut durable = self.durable.clone();
        let mut failed = self.failed.clone();
        loop {
            if let Some(e) = failed.borrow_and_update().clone() {
                return Err(StoreError::Io(e));
            }
            if *durable.borrow_and_update() >= seq {
                return Ok(());
            }
            tokio::select! {
                r = durable.changed() => if r.is_err() { return Err(StoreError::WriterGone) },
                r = failed.changed() => if r.is_err() { return Err(StoreError::WriterGone) },
            }
        }
    }

    /// Writes and fsyncs everything pending (shutdown, tests). Blocking.
    pub fn sync(&self) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx.send(Job::Sync(tx)).map_err(|_| StoreError::WriterGone)?;
        rx.recv_timeout(Duration::from_secs(30)).map_err(|_| StoreError::WriterGone)?.map_err(StoreError::Io)
    }
}

fn run(
    rx: Receiver<Job>,
    store: Arc<dyn Store>,
    mut source: Source,
    fsync_every: Option<Duration>,
    durable_tx: watch::Sender<u64>,
    failed_tx: watch::Sender<Option<String>>,
) {
    let mut written = 0u64;
    let mut dirty = false;
    let mut last_fsync = Instant::now();
    let tick = fsync_every.unwrap_or(Duration::from_secs(3600)).min(Duration::from_millis(200));
    loop {
        let sync = match rx.recv_timeout(tick) {
            Ok(Job::Sync(reply)) => Some(reply),
            Ok(Job::Kick) | Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut result = Ok(());
        let mut want_fsync = sync.is_some();
        if let Some(pulled) = source() {
            result = store.write(pulled.batch).map_err(|e| e.to_string());
            written = pulled.seq;
            dirty = true;
            want_fsync |= pulled.fsync;
        }
        let due = fsync_every.is_some_and(|every| last_fsync.elapsed() >= every);
        if result.is_ok() && dirty && (want_fsync || due) {
            result = store.flush().map_err(|e| e.to_string());
            last_fsync = Instant::now();
            dirty = false;
        }
        match &result {
            Ok(()) if !dirty => {
                durable_tx.send_replace(written);
            }
            Ok(()) => {}
            Err(e) => {
                tracing::error!("storage write failed: {e}");
                failed_tx.send_replace(Some(e.clone()));
            }
        }
        if let Some(reply) = sync {
            let _ = reply.send(result.clone());
        }
    }
    // The node is gone: make what was written durable.
    if dirty {
        if let Err(e) = store.flush() {
            tracing::error!("final fsync failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Entry;
    use crate::storage::MemoryStore;
    use crate::value::Value;
    use bytes::Bytes;
    use parking_lot::Mutex;

    #[tokio::test]
    async fn writes_pulled_state_and_reports_durability() {
        let store = Arc::new(MemoryStore::default());
        let pending: Arc<Mutex<Vec<Pulled>>> = Arc::default();
        let queue = pending.clone();
        let writer = StoreWriter::start("t", store.clone(), None, Box::new(move || queue.lock().pop()));
        let entry = |v: &str| Some(Entry::new(Value::Str(Bytes::copy_from_slice(v.as_bytes()))));
        let writes = vec![(Bytes::from_static(b"a"), entry("2")), (Bytes::from_static(b"b"), None)];
        pending.lock().push(Pulled { seq: 4, batch: StoreBatch { clear: false, writes, position: None }, fsync: true });
        writer.kick().unwrap();
        writer.wait_durable(4).await.unwrap();
        let (_, entries) = store.load().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].1.value, Value::Str(Bytes::from_static(b"2")));
        pending.lock().push(Pulled {
            seq: 5,
            batch: StoreBatch { clear: true, writes: vec![], position: None },
            fsync: false,
        });
        writer.sync().unwrap();
        assert!(store.load().unwrap().1.is_empty());
    }
}
