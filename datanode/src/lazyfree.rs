//! Lazy freeing, as Redis's lazyfree: UNLINK of a big value and FLUSHALL / FLUSHDB ASYNC
//! hand what they removed to a background thread, so freeing millions of allocations does
//! not hold the node's lock (every other client of the node would wait for it).
//!
//! One thread per datanode process, started on first use. Its queue is bounded: when it is
//! full the caller frees inline, as it would without lazy freeing (slower, never unbounded).
//! The counters are the process's, like `used_memory_rss`: INFO's `lazyfree_pending_objects`
//! and `lazyfreed_objects`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;

use crate::value::Value;

/// Redis's LAZYFREE_THRESHOLD: values that take more allocations than this to free go to
/// the background thread; smaller ones are freed at once (a hand-off would cost more).
pub const THRESHOLD: usize = 64;

/// Jobs queued at most (each may be a whole database).
const QUEUE: usize = 1024;

/// Objects queued and not freed yet (a database emptied by FLUSHALL ASYNC counts its keys).
static PENDING: AtomicU64 = AtomicU64::new(0);
/// Objects freed in the background since the start or the last CONFIG RESETSTAT.
static FREED: AtomicU64 = AtomicU64::new(0);

type Job = (Box<dyn Send>, u64);

fn queue() -> Option<&'static SyncSender<Job>> {
    static QUEUE_TX: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();
    QUEUE_TX
        .get_or_init(|| {
            let (tx, rx) = sync_channel::<Job>(QUEUE);
            let spawned = std::thread::Builder::new().name("lazyfree".into()).spawn(move || {
                while let Ok((job, objects)) = rx.recv() {
                    drop(job);
                    PENDING.fetch_sub(objects, Ordering::Relaxed);
                    FREED.fetch_add(objects, Ordering::Relaxed);
                }
            });
            match spawned {
                Ok(_) => Some(tx),
                Err(e) => {
                    tracing::warn!("cannot start the lazyfree thread, freeing inline: {e}");
                    None
                }
            }
        })
        .as_ref()
}

/// Frees `what` (`objects` of Redis's counting) on the background thread, or here when
/// that thread's queue is full.
pub fn free_later(what: Box<dyn Send>, objects: u64) {
    let Some(tx) = queue() else { return drop(what) };
    PENDING.fetch_add(objects, Ordering::Relaxed);
    if let Err(TrySendError::Full((what, _)) | TrySendError::Disconnected((what, _))) = tx.try_send((what, objects)) {
        PENDING.fetch_sub(objects, Ordering::Relaxed);
        drop(what);
    }
}

/// Frees a removed value: in the background when it is big (see [`effort`]).
pub fn free_value(value: Value) {
    if effort(&value) > THRESHOLD {
        free_later(Box::new(value), 1);
    }
}

/// About how many allocations freeing `value` takes, as Redis's lazyfreeGetFreeEffort
/// counts them: 1 for a string or a collection small enough for Redis's compact
/// encodings, one per element past them (one per 128 elements of a list, Redis's
/// quicklist nodes), one per stream entry plus its consumer groups' pending entries.
pub fn effort(value: &Value) -> usize {
    const COMPACT: usize = 128;
    let per_element = |n: usize| if n > COMPACT { n } else { 1 };
    match value {
        Value::Str(_) => 1,
        Value::Hash(h) => per_element(h.len()),
        Value::List(l) => 1 + l.len() / COMPACT,
        Value::Set(s) => match **s {
            crate::set::Set::Hashed(ref m) => m.len().max(1),
            _ => 1,
        },
        Value::ZSet(z) => per_element(z.len()),
        Value::Stream(s) => {
            let pending = s.groups.values().next().map_or(0, |g| g.pel.len());
            s.len() + s.groups.len() * (1 + pending)
        }
    }
}

/// INFO's `lazyfree_pending_objects` and `lazyfreed_objects`.
pub fn counts() -> (u64, u64) {
    (PENDING.load(Ordering::Relaxed), FREED.load(Ordering::Relaxed))
}

/// CONFIG RESETSTAT.
pub fn reset_stats() {
    FREED.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::collections::VecDeque;

    #[test]
    fn big_values_are_freed_in_the_background() {
        let small = Value::List((0..10).map(|i| Bytes::from(i.to_string())).collect::<VecDeque<_>>());
        assert_eq!(effort(&small), 1);
        let big = Value::List((0..100_000).map(|i| Bytes::from(i.to_string())).collect::<VecDeque<_>>());
        assert!(effort(&big) > THRESHOLD);
        let (_, before) = counts();
        free_value(big);
        free_value(small);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while counts().1 == before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Other tests of this process may free in the background too: at least ours.
        assert!(counts().1 > before);
    }
}
