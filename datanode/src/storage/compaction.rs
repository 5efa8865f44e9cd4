//! Compaction: folds a node's log into a new base without stopping its writes.
//!
//! Under the node's lock, for a moment: a new log segment N is queued (what commits next goes
//! there) and the keyspace starts a capture (keyspace.rs). Then, a few hundred KB at a time,
//! each under the lock for well under a millisecond: slots are copied into base N. Writes go
//! on meanwhile; a slot they touch is copied first. Once base N is complete and fsynced,
//! everything numbered below N is deleted.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::files::NodeFiles;
use super::writer::BaseState;
use super::{Position, StoreError};
use crate::keyspace::CaptureChunk;
use crate::snapshot::file as image;

/// The node side of a compaction.
pub trait Capturable: Send + Sync {
    /// Under the node's lock: queues segment `segment` for what commits next and starts a
    /// capture of the keyspace; returns the position the capture stands at.
    fn begin(&self, segment: u64) -> Position;
    /// The next part of the capture started for `segment`; None once it was abandoned (the
    /// keyspace was emptied or replaced meanwhile).
    fn step(&self, segment: u64, max_bytes: usize) -> Option<CaptureChunk>;
}

/// How a compaction ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done { segment: u64, keys: u64, bytes: u64 },
    Abandoned,
}

/// Runs one compaction on the calling thread.
pub fn compact(
    files: &NodeFiles,
    base: &BaseState,
    node: &dyn Capturable,
    step_bytes: usize,
) -> Result<Outcome, StoreError> {
    let segment = files.allocate();
    let position = node.begin(segment);
    let mut w = image::Writer::create(files.base_path(segment))?;
    w.position(&position)?;
    loop {
        let Some(chunk) = node.step(segment, step_bytes) else {
            return Ok(Outcome::Abandoned);
        };
        w.raw(&chunk.records, chunk.keys)?;
        if chunk.done {
            break;
        }
    }
    let (keys, bytes) = w.finish()?;
    // A full sync may have installed a newer base meanwhile: never step back from it.
    if base.segment.fetch_max(segment, Ordering::AcqRel) < segment {
        base.bytes.store(bytes, Ordering::Release);
        base.mark_saved(position.offset);
    }
    files.remove_before(segment)?;
    base.compactions.fetch_add(1, Ordering::Relaxed);
    Ok(Outcome::Done { segment, keys, bytes })
}

/// Starts [`compact`] on its own thread; `base.running` is cleared when it ends.
pub fn spawn(name: &str, files: Arc<NodeFiles>, base: Arc<BaseState>, node: Arc<dyn Capturable>, step_bytes: usize) {
    let thread = format!("compact-{name}");
    let node_name = name.to_string();
    let flag = base.clone();
    let spawned = std::thread::Builder::new().name(thread).spawn(move || {
        let started = std::time::Instant::now();
        match compact(&files, &base, node.as_ref(), step_bytes) {
            Ok(Outcome::Done { segment, keys, bytes }) => {
                tracing::info!(node = %node_name, segment, keys, bytes, ms = started.elapsed().as_millis() as u64, "log compacted into a new base");
            }
            Ok(Outcome::Abandoned) => tracing::info!(node = %node_name, "compaction abandoned (the keyspace was replaced); it will run again"),
            Err(e) => tracing::error!(node = %node_name, "compaction failed: {e}"),
        }
        base.running.store(false, Ordering::Release);
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start a compaction: {e}");
        flag.running.store(false, Ordering::Release);
    }
}
