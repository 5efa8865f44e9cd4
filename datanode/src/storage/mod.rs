//! Durable storage of one node's keyspace: the in-memory keyspace is the truth; the disk holds
//! an append-only log of the node's commits (the same effects replication sends) and, from
//! time to time, a compacted image of the keyspace (a base) that the log continues from.
//!
//! Restart = newest base + the log after it, replayed as a replica replays effects.
//! `appendfsync always | everysec | no` decides when appended records are fsynced. Nodes never
//! touch the disk on their hot path: a [`writer::StoreWriter`] thread per node appends and
//! fsyncs, and compactions ([`compaction`]) run on their own thread without stopping writes.

pub mod compaction;
pub mod direct;
pub mod files;
pub mod legacy;
pub mod log;
pub mod spare;
pub mod writer;

/// Where a node's data stands in its replication stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    pub replid: String,
    pub offset: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored file {file} is damaged: {reason}")]
    Corrupt { file: String, reason: String },
    #[error("storage write failed: {0}")]
    Io(String),
    #[error("storage image: {0}")]
    Image(#[from] crate::snapshot::file::SnapshotError),
    #[error("the storage writer has stopped")]
    WriterGone,
}
