//! In-memory store: for tests and for nodes that need no durability.

use std::collections::BTreeMap;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{Position, Store, StoreBatch, StoreError};
use crate::keyspace::Entry;

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<(Position, BTreeMap<Bytes, Entry>)>,
}

impl Store for MemoryStore {
    fn load(&self) -> Result<(Position, Vec<(Bytes, Entry)>), StoreError> {
        let inner = self.inner.lock();
        Ok((inner.0.clone(), inner.1.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
    }

    fn write(&self, batch: StoreBatch) -> Result<(), StoreError> {
        let mut inner = self.inner.lock();
        if batch.clear {
            inner.1.clear();
        }
        for (key, entry) in batch.writes {
            match entry {
                Some(e) => inner.1.insert(key, e),
                None => inner.1.remove(&key),
            };
        }
        if let Some(p) = batch.position {
            inner.0 = p;
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn destroy(&self) -> Result<(), StoreError> {
        *self.inner.lock() = Default::default();
        Ok(())
    }
}
