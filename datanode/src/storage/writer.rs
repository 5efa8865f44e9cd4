//! The storage writer: one thread per node that applies write batches to the store in
//! order, off the hot path, and owns fsync.
//!
//! ```text
//!  node (under its lock): batch #n ──bounded queue──▶ writer thread: coalesce queued
//!                                                     batches, one store.write, then
//!  `always` replies wait for durable >= n ◀────────── fsync when asked or every interval
//! ```
//! Coalescing keeps the last state per key, so a hot key written 100 times between two
//! writer runs costs one store write. The bounded queue is the backpressure: when the disk
//! cannot keep up, commits wait.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::{Position, Store, StoreBatch, StoreError};
use crate::keyspace::Entry;

const QUEUE: usize = 1024;
const MAX_COALESCE: usize = 256;

enum Job {
    Write {
        seq: u64,
        batch: StoreBatch,
        durable: bool,
    },
    /// Apply everything queued before, fsync, then answer.
    Sync(std::sync::mpsc::Sender<Result<(), String>>),
}

pub struct StoreWriter {
    tx: SyncSender<Job>,
    durable: watch::Receiver<u64>,
    failed: watch::Receiver<Option<String>>,
}

impl StoreWriter {
    /// Starts the writer thread; `fsync_every` is how often unflushed writes are fsynced
    /// (None = only when a batch asks for it).
    pub fn start(name: &str, store: Arc<dyn Store>, fsync_every: Option<Duration>) -> StoreWriter {
        let (tx, rx) = sync_channel(QUEUE);
        let (durable_tx, durable) = watch::channel(0);
        let (failed_tx, failed) = watch::channel(None);
        let spawned = std::thread::Builder::new().name(format!("store-{name}")).spawn(move || {
            run(rx, store, fsync_every, durable_tx, failed_tx);
        });
        if let Err(e) = spawned {
            tracing::error!("cannot start the storage writer: {e}");
        }
        StoreWriter { tx, durable, failed }
    }

    /// Queues batch `seq` (sequence numbers rise by one per call). Blocks while the queue is
    /// full. `durable`: fsync as soon as it is written.
    pub fn submit(&self, seq: u64, batch: StoreBatch, durable: bool) -> Result<(), StoreError> {
        self.tx.send(Job::Write { seq, batch, durable }).map_err(|_| StoreError::WriterGone)
    }

    /// Waits until batch `seq` is on disk.
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

    /// Applies and fsyncs everything queued so far (shutdown, tests). Blocking.
    pub fn sync(&self) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx.send(Job::Sync(tx)).map_err(|_| StoreError::WriterGone)?;
        rx.recv_timeout(Duration::from_secs(30)).map_err(|_| StoreError::WriterGone)?.map_err(StoreError::Io)
    }
}

/// Several batches folded into one: the last state of each key wins; a `clear` drops what
/// came before it.
#[derive(Default)]
struct Coalesced {
    clear: bool,
    writes: HashMap<Bytes, Option<Entry>>,
    position: Option<Position>,
}

impl Coalesced {
    fn add(&mut self, batch: StoreBatch) {
        if batch.clear {
            self.clear = true;
            self.writes.clear();
        }
        for (k, v) in batch.writes {
            self.writes.insert(k, v);
        }
        if batch.position.is_some() {
            self.position = batch.position;
        }
    }

    fn into_batch(self) -> StoreBatch {
        StoreBatch { clear: self.clear, writes: self.writes.into_iter().collect(), position: self.position }
    }
}

fn run(
    rx: Receiver<Job>,
    store: Arc<dyn Store>,
    fsync_every: Option<Duration>,
    durable_tx: watch::Sender<u64>,
    failed_tx: watch::Sender<Option<String>>,
) {
    let mut written = 0u64;
    let mut dirty = false;
    let mut last_fsync = Instant::now();
    let tick = fsync_every.unwrap_or(Duration::from_secs(3600)).min(Duration::from_millis(200));
    loop {
        let first = match rx.recv_timeout(tick) {
            Ok(job) => Some(job),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut group = Coalesced::default();
        let (mut any, mut want_fsync) = (false, false);
        let mut syncs = Vec::new();
        let mut next = first;
        let mut taken = 0;
        while let Some(job) = next {
            match job {
                Job::Write { seq, batch, durable } => {
                    group.add(batch);
                    written = seq;
                    any = true;
                    want_fsync |= durable;
                }
                Job::Sync(reply) => {
                    want_fsync = true;
                    syncs.push(reply);
                }
            }
            taken += 1;
            next = if taken < MAX_COALESCE { rx.try_recv().ok() } else { None };
        }
        let mut result = Ok(());
        if any {
            result = store.write(group.into_batch()).map_err(|e| e.to_string());
            dirty = true;
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
        for reply in syncs {
            let _ = reply.send(result.clone());
        }
    }
    // Queue closed: make the last writes durable.
    if dirty {
        if let Err(e) = store.flush() {
            tracing::error!("final fsync failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStore;
    use crate::value::Value;

    fn batch(key: &str, v: Option<&str>) -> StoreBatch {
        let entry = v.map(|v| Entry::new(Value::Str(Bytes::copy_from_slice(v.as_bytes()))));
        StoreBatch { clear: false, writes: vec![(Bytes::copy_from_slice(key.as_bytes()), entry)], position: None }
    }

    #[tokio::test]
    async fn applies_in_order_and_reports_durability() {
        let store = Arc::new(MemoryStore::default());
        let writer = StoreWriter::start("t", store.clone(), None);
        writer.submit(1, batch("a", Some("1")), false).unwrap();
        writer.submit(2, batch("a", Some("2")), false).unwrap();
        writer.submit(3, batch("b", Some("x")), false).unwrap();
        writer.submit(4, batch("b", None), true).unwrap();
        writer.wait_durable(4).await.unwrap();
        let (_, entries) = store.load().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].1.value, Value::Str(Bytes::from_static(b"2")));
        writer.submit(5, StoreBatch { clear: true, writes: vec![], position: None }, false).unwrap();
        writer.sync().unwrap();
        assert!(store.load().unwrap().1.is_empty());
    }
}
