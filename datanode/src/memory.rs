//! maxmemory and eviction, approximated as Redis approximates them: when a write that may
//! grow memory (a `denyoom` command) finds the node over its limit, keys are evicted one at a
//! time, each the best of `maxmemory-samples` random candidates under the group's policy,
//! until the node is under the limit again. Evictions run on the primary and replicate as
//! DELs (replicas never evict on their own, as Redis's `replica-ignore-maxmemory`).

use std::collections::BTreeMap;

use ferrocache_common::parameters::{self, notify};

use crate::cmd::DbKey;
use crate::databases::Databases;
use crate::keyspace::{idle_ms, lfu_decayed};

pub const OOM: &str = ferrocache_common::reply::errors::OOM;

/// Most keys one command may evict before it gives up (and is refused with OOM).
pub const MAX_EVICTIONS_PER_COMMAND: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    fn parse(s: &str) -> Policy {
        match s {
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Policy::NoEviction => "noeviction",
            Policy::AllKeysLru => "allkeys-lru",
            Policy::AllKeysLfu => "allkeys-lfu",
            Policy::AllKeysRandom => "allkeys-random",
            Policy::VolatileLru => "volatile-lru",
            Policy::VolatileLfu => "volatile-lfu",
            Policy::VolatileRandom => "volatile-random",
            Policy::VolatileTtl => "volatile-ttl",
        }
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }
}

/// The group's memory parameters as one node applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryPolicy {
    /// 0 = no limit.
    pub maxmemory: u64,
    pub policy: Policy,
    pub samples: usize,
    pub lfu_log_factor: u32,
    pub lfu_decay_time: u32,
    /// notify-keyspace-events, as flags.
    pub notify: u32,
    /// hll-sparse-max-bytes: the largest sparse HyperLogLog (header included).
    pub hll_sparse_max_bytes: usize,
    pub encodings: Encodings,
}

/// The sizes up to which Redis keeps a collection compact (its `*-max-listpack-*`
/// parameters): what OBJECT ENCODING names a value by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encodings {
    pub hash_entries: usize,
    pub hash_value: usize,
    pub zset_entries: usize,
    pub zset_value: usize,
    /// list-max-listpack-size: > 0 entries, < 0 a size class (-1 4 KB ... -5 64 KB).
    pub list_size: i64,
    /// stream-node-max-entries / -bytes: how Redis lays a stream out in nodes, which
    /// decides where `~` trimming may cut.
    pub stream_nodes: crate::stream::NodeLimits,
}

impl Encodings {
    fn from_parameters(set: &BTreeMap<String, String>) -> Encodings {
        let int = |name: &str| parameters::value(set, name).parse::<i64>().unwrap_or(0);
        let size = |name: &str| usize::try_from(int(name)).unwrap_or(0);
        Encodings {
            hash_entries: size("hash-max-listpack-entries"),
            hash_value: size("hash-max-listpack-value"),
            zset_entries: size("zset-max-listpack-entries"),
            zset_value: size("zset-max-listpack-value"),
            list_size: int("list-max-listpack-size"),
            stream_nodes: crate::stream::NodeLimits {
                entries: u64::try_from(int("stream-node-max-entries")).unwrap_or(0),
                bytes: size("stream-node-max-bytes"),
            },
        }
    }

    /// Whether a list of these element sizes fits one listpack (else it is a quicklist).
    pub fn list_fits(&self, sizes: impl ExactSizeIterator<Item = usize>) -> bool {
        if self.list_size > 0 {
            return sizes.len() <= self.list_size as usize;
        }
        // -1 .. -5: 4 KB .. 64 KB; anything lower counts as the largest class, as in Redis.
        // (unsigned_abs: a client may set i64::MIN, whose negation overflows.)
        let class = self.list_size.unsigned_abs().clamp(1, 5) as u32;
        let limit = 4096usize << (class - 1);
        // A listpack entry: its bytes plus a few of header and back-length.
        sizes.map(|n| n + 11).sum::<usize>() <= limit
    }
}

impl Default for Encodings {
    fn default() -> Self {
        Encodings::from_parameters(&BTreeMap::new())
    }
}

impl Default for MemoryPolicy {
    fn default() -> Self {
        MemoryPolicy::from_parameters(&BTreeMap::new())
    }
}

impl MemoryPolicy {
    pub fn from_parameters(set: &BTreeMap<String, String>) -> MemoryPolicy {
        let int = |name: &str| parameters::value(set, name).parse::<u64>().unwrap_or(0);
        MemoryPolicy {
            maxmemory: int("maxmemory"),
            policy: Policy::parse(parameters::value(set, "maxmemory-policy")),
            samples: int("maxmemory-samples").clamp(1, 64) as usize,
            lfu_log_factor: int("lfu-log-factor") as u32,
            lfu_decay_time: int("lfu-decay-time") as u32,
            notify: notify::parse(parameters::value(set, "notify-keyspace-events")).unwrap_or(0),
            hll_sparse_max_bytes: usize::try_from(int("hll-sparse-max-bytes")).unwrap_or(usize::MAX),
            encodings: Encodings::from_parameters(set),
        }
    }

    /// What an access records for LFU: (log factor, decay minutes), when LFU is in force.
    pub fn lfu(&self) -> Option<(u32, u32)> {
        self.policy.is_lfu().then_some((self.lfu_log_factor, self.lfu_decay_time))
    }

    /// Over maxmemory, counting every database (as Redis does).
    pub fn over_limit(&self, dbs: &Databases) -> bool {
        self.maxmemory > 0 && dbs.used_memory() as u64 > self.maxmemory
    }
}

/// Redis's eviction pool size: the best candidates seen so far are kept between evictions,
/// so each eviction compares fresh samples with earlier ones.
const POOL_SIZE: usize = 16;

/// The eviction candidates carried from one eviction to the next.
#[derive(Debug, Default)]
pub struct EvictionPool {
    keys: Vec<DbKey>,
}

impl EvictionPool {
    /// The key to evict next, from any database, or None when the policy allows none
    /// (noeviction, or a volatile policy with no key carrying an expiry).
    pub fn next_victim(&mut self, dbs: &Databases, p: &MemoryPolicy, now: u32) -> Option<DbKey> {
        let volatile = matches!(p.policy, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom);
        let with_ttl = volatile || p.policy == Policy::VolatileTtl;
        // The databases a victim can come from (as Redis, every database is sampled).
        let candidates: Vec<usize> = dbs
            .iter()
            .filter(|(_, ks)| if with_ttl { ks.keys_with_expiry() > 0 } else { !ks.is_empty() })
            .map(|(db, _)| db)
            .collect();
        let any_db = || candidates.get(rand::random::<u64>() as usize % candidates.len().max(1)).copied();
        let samples: Vec<DbKey> = match p.policy {
            Policy::NoEviction => return None,
            Policy::VolatileTtl => {
                let soonest = candidates.iter().filter_map(|&db| {
                    let key = dbs.db(db).soonest_expiring(1).pop()?;
                    Some((dbs.db(db).get(&key)?.expires_at, db, key))
                });
                return soonest.min_by_key(|(at, db, _)| (*at, *db)).map(|(_, db, key)| (db, key));
            }
            Policy::AllKeysRandom => {
                let db = any_db()?;
                return dbs.db(db).random_key(rand::random()).map(|k| (db, k));
            }
            Policy::VolatileRandom => {
                let db = any_db()?;
                return dbs.db(db).random_expiring_key(rand::random()).map(|k| (db, k));
            }
            _ => candidates
                .iter()
                .flat_map(|&db| {
                    let ks = dbs.db(db);
                    (0..p.samples).filter_map(move |_| {
                        let key = if volatile {
                            ks.random_expiring_key(rand::random())
                        } else {
                            ks.random_key(rand::random())
                        };
                        key.map(|k| (db, k))
                    })
                })
                .collect(),
        };
        for k in samples {
            if !self.keys.contains(&k) {
                self.keys.push(k);
            }
        }
        // Lower is evicted first: LFU by decayed counter, then idleness; LRU by idleness.
        // Keys that went away (or lost their expiry, for volatile policies) leave the pool.
        let mut scored: Vec<((u32, std::cmp::Reverse<u32>), DbKey)> = self
            .keys
            .drain(..)
            .filter_map(|k| {
                let e = dbs.db(k.0).get(&k.1).filter(|e| !volatile || e.expires_at != 0)?;
                let idle = std::cmp::Reverse(idle_ms(e, now));
                let counter = if p.policy.is_lfu() { lfu_decayed(e, now, p.lfu_decay_time) as u32 } else { 0 };
                Some(((counter, idle), k))
            })
            .collect();
        scored.sort_by_key(|(score, _)| *score);
        scored.truncate(POOL_SIZE);
        let mut best = scored.into_iter().map(|(_, k)| k);
        let victim = best.next();
        self.keys = best.collect();
        victim
    }
}

/// One eviction pick without a pool.
#[cfg(test)]
fn pick_victim(dbs: &Databases, p: &MemoryPolicy, now: u32) -> Option<bytes::Bytes> {
    EvictionPool::default().next_victim(dbs, p, now).map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Entry;
    use crate::value::Value;
    use bytes::Bytes;

    #[test]
    fn list_sizes_are_read_as_redis_reads_them() {
        let limits = |size: i64| Encodings { list_size: size, ..Encodings::default() };
        assert!(limits(2).list_fits([1, 1].into_iter()) && !limits(2).list_fits([1, 1, 1].into_iter()));
        // -2: 8 KB; a class below -5 is the largest (64 KB), i64::MIN included.
        assert!(limits(-2).list_fits([8000].into_iter()) && !limits(-2).list_fits([9000].into_iter()));
        assert!(limits(i64::MIN).list_fits([60_000].into_iter()));
    }

    fn policy(name: &str) -> MemoryPolicy {
        let mut set = BTreeMap::new();
        set.insert("maxmemory-policy".to_string(), name.to_string());
        set.insert("maxmemory-samples".to_string(), "64".to_string());
        MemoryPolicy::from_parameters(&set)
    }

    #[test]
    fn picks_per_policy() {
        let mut dbs = Databases::default();
        // Database 3 holds the keys: victims come from whichever database holds them.
        let ks = dbs.db_mut(3);
        for i in 0..20u32 {
            let mut e = Entry::new(Value::Str(crate::strval::Str::from(Bytes::from_static(b"v"))));
            e.access = 1000 + i;
            if i >= 10 {
                e.expires_at = 10_000 + i as i64;
            }
            ks.insert(format!("k{i}").as_bytes(), e);
        }
        let ks = &dbs;
        assert_eq!(pick_victim(ks, &policy("noeviction"), 2000), None);
        assert_eq!(pick_victim(ks, &policy("volatile-ttl"), 2000), Some(Bytes::from_static(b"k10")));
        // 64 samples over 20 keys: the oldest sampled wins, so one of the older half (random
        // keys are drawn per slot, which is only near uniform over keys in big keyspaces).
        let v = pick_victim(ks, &policy("allkeys-lru"), 2000).expect("a key");
        assert!(ks.db(3).get(&v).is_some_and(|e| e.access < 1010), "{v:?}");
        let v = pick_victim(ks, &policy("volatile-lru"), 2000).expect("a volatile key");
        assert!(ks.db(3).get(&v).is_some_and(|e| e.expires_at != 0));
        let mut no_ttl = Databases::default();
        no_ttl.db_mut(0).insert(b"x", Entry::new(Value::Str(crate::strval::Str::from(Bytes::new()))));
        assert_eq!(pick_victim(&no_ttl, &policy("volatile-random"), 0), None);
    }
}
