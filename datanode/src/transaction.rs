//! MULTI/EXEC and WATCH on the node. The gateway queues a transaction and sends it whole
//! (a `TransactionRequest`: its WATCH tokens, then each queued command); the node checks the
//! tokens and runs every command in one critical section, so nothing interleaves. Its
//! effects are framed by `MULTI` / `EXEC` markers in the replication log, and a replica
//! applies the frame in one piece.
//!
//! A WATCH token names the key's state cheaply: the node's history (replication id and
//! config epoch), how many SWAPDBs it has seen, for a live key how many times its database
//! was emptied (FLUSHDB, FLUSHALL: as in Redis they touch only the watched keys that exist,
//! and a missing key that a flush leaves missing has not changed), a write counter of the
//! key's bucket (65536 buckets; every write to a key bumps its bucket, so a write to another
//! key in the same bucket aborts the transaction too: a rare, safe false positive) and the
//! key's live expiry (so a key that expires before EXEC aborts it, as in Redis).

use std::hash::{BuildHasher, Hasher};

use crate::keyspace::Keyspace;
use bytes::Bytes;

const BUCKETS: usize = 1 << 16;

/// Write counters for WATCH.
pub struct WatchVersions {
    buckets: Vec<u32>,
    /// Per database, how many times it was emptied.
    flushes: Vec<u64>,
    swaps: u64,
}

impl Default for WatchVersions {
    fn default() -> Self {
        WatchVersions { buckets: vec![0; BUCKETS], flushes: Vec::new(), swaps: 0 }
    }
}

fn bucket(db: usize, key: &[u8]) -> usize {
    // A fixed-key hasher: the same key maps to the same bucket for the node's lifetime.
    let mut h = std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().build_hasher();
    h.write_usize(db);
    h.write(key);
    (h.finish() as usize) & (BUCKETS - 1)
}

impl WatchVersions {
    pub fn touch(&mut self, db: usize, key: &[u8]) {
        let b = &mut self.buckets[bucket(db, key)];
        *b = b.wrapping_add(1);
    }

    /// Database `db` was emptied.
    pub fn flush(&mut self, db: usize) {
        if self.flushes.len() <= db {
            self.flushes.resize(db + 1, 0);
        }
        self.flushes[db] += 1;
    }

    /// Two databases swapped: every token is void.
    pub fn swap(&mut self) {
        self.swaps += 1;
    }

    /// The token WATCH hands out for `key` of database `db` (held in `ks`) and EXEC compares.
    pub fn token(&self, history: &str, ks: &Keyspace, db: usize, key: &[u8], now: i64) -> Bytes {
        let bucket = self.buckets[bucket(db, key)];
        let swaps = self.swaps;
        Bytes::from(match ks.get(key) {
            Some(e) if !e.is_expired(now) => {
                let flushes = self.flushes.get(db).copied().unwrap_or(0);
                format!("{history}:{swaps}:{flushes}:{bucket}:{}", e.expires_at)
            }
            _ => format!("{history}:{swaps}:-:{bucket}:-"),
        })
    }
}

/// A transaction as the gateway sent it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Transaction {
    /// The database its commands start in (a SELECT among them changes it for the rest).
    pub db: usize,
    /// (database, key, token) triples from the client's WATCHes.
    pub watches: Vec<(usize, Bytes, Bytes)>,
    /// The queued commands, each name first.
    pub commands: Vec<Vec<Bytes>>,
    /// CLIENT NO-TOUCH of the client that sent it.
    pub no_touch: bool,
    /// CLIENT TRACKING NOLOOP: the client's token (0: none).
    pub writer: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_change_with_writes_to_the_bucket_and_flushes() {
        let mut v = WatchVersions::default();
        let ks = Keyspace::new();
        let t0 = v.token("h", &ks, 0, b"k", 0);
        v.touch(0, b"other-key-somewhere");
        let t1 = v.token("h", &ks, 0, b"k", 0);
        v.touch(0, b"k");
        let t2 = v.token("h", &ks, 0, b"k", 0);
        assert_ne!(t1, t2);
        // The same name in another database is another key.
        let in_db_1 = v.token("h", &ks, 1, b"k", 0);
        v.touch(1, b"k");
        assert_ne!(in_db_1, v.token("h", &ks, 1, b"k", 0));
        v.swap();
        assert_ne!(t2, v.token("h", &ks, 0, b"k", 0));
        assert_ne!(t0, v.token("other-history", &ks, 0, b"k", 0));
    }

    #[test]
    fn a_flush_changes_the_tokens_of_live_keys_of_its_database_only() {
        let mut v = WatchVersions::default();
        let mut ks = Keyspace::new();
        ks.insert(b"live", crate::keyspace::Entry::new(crate::value::Value::Str("v".into())));
        let (live, missing, other_db) =
            (v.token("h", &ks, 0, b"live", 0), v.token("h", &ks, 0, b"missing", 0), v.token("h", &ks, 1, b"live", 0));
        v.flush(0);
        assert_ne!(live, v.token("h", &ks, 0, b"live", 0));
        assert_eq!(missing, v.token("h", &ks, 0, b"missing", 0));
        assert_eq!(other_db, v.token("h", &ks, 1, b"live", 0));
    }
}
