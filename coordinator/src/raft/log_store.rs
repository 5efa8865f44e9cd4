//! The Raft log, vote and commit index in sled: tree `raft_log` keyed by big-endian index
//! (so sled's order is log order), tree `raft_meta` for the rest. Appends are fsynced before
//! openraft is told they are durable.

// openraft's StorageError is large and is what its traits return; boxing it here would
// only move the allocation.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{LogId, OptionalSend, StorageIOError, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::types::{Entry, NodeId, StorageError, TypeConfig};

#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    logs: sled::Tree,
    meta: sled::Tree,
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

impl LogStore {
    pub fn open(db: &sled::Db) -> Result<LogStore, sled::Error> {
        Ok(LogStore { db: db.clone(), logs: db.open_tree("raft_log")?, meta: db.open_tree("raft_meta")? })
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        match self.meta.get(key).map_err(read_err)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(read_err)?)),
            None => Ok(None),
        }
    }

    async fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StorageError> {
        let v = serde_json::to_vec(value).map_err(write_err)?;
        self.meta.insert(key, v).map_err(write_err)?;
        self.db.flush_async().await.map_err(write_err)?;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(x) => x.saturating_add(1),
            Bound::Excluded(x) => *x,
            Bound::Unbounded => u64::MAX,
        };
        let mut out = Vec::new();
        for item in self.logs.range(start.to_be_bytes()..end.to_be_bytes()) {
            let (_, v) = item.map_err(read_err)?;
            out.push(serde_json::from_slice(&v).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId<NodeId>> = self.get_meta("last_purged")?;
        let last = match self.logs.last().map_err(read_err)? {
            Some((_, v)) => Some(serde_json::from_slice::<Entry>(&v).map_err(read_err)?.log_id),
            None => last_purged,
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError> {
        self.put_meta("committed", &committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self.get_meta::<Option<LogId<NodeId>>>("committed")?.flatten())
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.put_meta("vote", vote).await.map_err(|_| StorageIOError::write_vote(&std::io::Error::other("vote")).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_meta("vote")
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(&entry.log_id.index.to_be_bytes(), serde_json::to_vec(&entry).map_err(write_err)?);
        }
        self.logs.apply_batch(batch).map_err(write_err)?;
        let flushed = self.db.flush_async().await.map(|_| ()).map_err(std::io::Error::other);
        callback.log_io_completed(flushed);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let keys: Vec<_> =
            self.logs.range(log_id.index.to_be_bytes()..).keys().collect::<Result<_, _>>().map_err(write_err)?;
        for k in keys {
            self.logs.remove(k).map_err(write_err)?;
        }
        self.db.flush_async().await.map_err(write_err)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        self.put_meta("last_purged", &Some(log_id)).await?;
        let keys: Vec<_> =
            self.logs.range(..=log_id.index.to_be_bytes()).keys().collect::<Result<_, _>>().map_err(write_err)?;
        for k in keys {
            self.logs.remove(k).map_err(write_err)?;
        }
        Ok(())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }
}
