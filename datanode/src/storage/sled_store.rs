//! sled store: one tree per node in the datanode's database. Keys are stored under a `d`
//! prefix and the replication position under `m:position`, in the same tree, so one
//! `apply_batch` writes both atomically.

use bytes::Bytes;

use super::{decode_entry, decode_position, encode_entry, encode_position, Position, Store, StoreBatch, StoreError};
use crate::keyspace::Entry;

const POSITION_KEY: &[u8] = b"m:position";

pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
}

impl SledStore {
    pub fn open(db: &sled::Db, node_id: &str) -> Result<SledStore, StoreError> {
        let tree = db.open_tree(format!("node:{node_id}"))?;
        Ok(SledStore { db: db.clone(), tree })
    }
}

fn data_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(b'd');
    k.extend_from_slice(key);
    k
}

impl Store for SledStore {
    fn load(&self) -> Result<(Position, Vec<(Bytes, Entry)>), StoreError> {
        let position = self.tree.get(POSITION_KEY)?.map(|v| decode_position(&v)).unwrap_or_default();
        let mut entries = Vec::new();
        for item in self.tree.scan_prefix(b"d") {
            let (k, v) = item?;
            entries.push((Bytes::copy_from_slice(&k[1..]), decode_entry(&k[1..], &v)?));
        }
        Ok((position, entries))
    }

    fn write(&self, batch: StoreBatch) -> Result<(), StoreError> {
        if batch.clear {
            // Keep the position key; it is rewritten below when the batch carries one.
            for key in self.tree.scan_prefix(b"d").keys() {
                self.tree.remove(key?)?;
            }
        }
        let mut b = sled::Batch::default();
        for (key, entry) in &batch.writes {
            match entry {
                Some(e) => b.insert(data_key(key), encode_entry(e)),
                None => b.remove(data_key(key)),
            }
        }
        if let Some(p) = &batch.position {
            b.insert(POSITION_KEY, encode_position(p));
        }
        self.tree.apply_batch(b)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn destroy(&self) -> Result<(), StoreError> {
        self.tree.clear()?;
        self.db.drop_tree(self.tree.name())?;
        Ok(())
    }
}
