//! Durable storage of one node's keyspace, behind a trait with an in-memory and a sled
//! implementation that pass one conformance suite.
//!
//! The store holds each key's latest state (value + absolute expiry) and the node's
//! replication position, written together atomically per batch: recovery is "load every
//! key, skip the expired ones, resume from the stored offset" with no log to replay. When the
//! batch reaches the disk is the caller's choice (`flush`), which is how `appendfsync
//! always | everysec | no` is implemented. Nodes never write on their hot path: a
//! [`writer::StoreWriter`] thread per node applies batches in order and fsyncs.

mod memory;
mod sled_store;
pub mod writer;

#[cfg(test)]
mod conformance;

use bytes::Bytes;

pub use memory::MemoryStore;
pub use sled_store::SledStore;

use crate::keyspace::Entry;
use crate::value::Value;

/// Where a node's data stands in its replication stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    pub replid: String,
    pub offset: u64,
}

/// One atomic write.
#[derive(Debug, Default)]
pub struct StoreBatch {
    /// Remove every key first (FLUSHALL, full sync).
    pub clear: bool,
    /// Key -> new state; `None` deletes.
    pub writes: Vec<(Bytes, Option<Entry>)>,
    pub position: Option<Position>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    #[error("stored record for key {key:?} is corrupt: {reason}")]
    Corrupt { key: String, reason: &'static str },
    #[error("storage write failed: {0}")]
    Io(String),
    #[error("the storage writer has stopped")]
    WriterGone,
}

pub trait Store: Send + Sync + 'static {
    /// Every stored key, expired ones included (the caller decides), and the position.
    fn load(&self) -> Result<(Position, Vec<(Bytes, Entry)>), StoreError>;
    fn write(&self, batch: StoreBatch) -> Result<(), StoreError>;
    /// Makes everything written so far durable (fsync).
    fn flush(&self) -> Result<(), StoreError>;
    /// Deletes the node's data for good (the node was removed from its group).
    fn destroy(&self) -> Result<(), StoreError>;
}

/// Record layout: expiry (i64, big-endian) then the value's own encoding.
pub(crate) fn encode_entry(entry: &Entry) -> Vec<u8> {
    let value = entry.value.encode();
    let mut out = Vec::with_capacity(8 + value.len());
    out.extend_from_slice(&entry.expires_at.to_be_bytes());
    out.extend_from_slice(&value);
    out
}

pub(crate) fn decode_entry(key: &[u8], data: &[u8]) -> Result<Entry, StoreError> {
    let corrupt = |reason| StoreError::Corrupt { key: String::from_utf8_lossy(key).into_owned(), reason };
    if data.len() < 9 {
        return Err(corrupt("record too short"));
    }
    let mut at = [0u8; 8];
    at.copy_from_slice(&data[..8]);
    let value = Value::decode(&data[8..]).map_err(|e| corrupt(e.0))?;
    Ok(Entry::with_expiry(value, i64::from_be_bytes(at)))
}

pub(crate) fn encode_position(p: &Position) -> Vec<u8> {
    let mut out = p.offset.to_be_bytes().to_vec();
    out.extend_from_slice(p.replid.as_bytes());
    out
}

pub(crate) fn decode_position(data: &[u8]) -> Position {
    if data.len() < 8 {
        return Position::default();
    }
    let mut off = [0u8; 8];
    off.copy_from_slice(&data[..8]);
    Position { offset: u64::from_be_bytes(off), replid: String::from_utf8_lossy(&data[8..]).into_owned() }
}
