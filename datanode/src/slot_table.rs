//! One hash slot's keys: a hash table of boxed items, so a bucket costs 8 bytes and a key
//! one allocation of its entry, with its bytes inside when short (most keys are), or one
//! more allocation for a long key.
//!
//! A map of `(Bytes, Entry)` would put 96 bytes in every bucket, and hash tables run between
//! 44 % and 87 % full: at a typical 50 % that is ~200 bytes per key before the key and value
//! themselves (Redis spends ~130 in all). Hashes come from the keyspace's SipHash keys (the
//! std hasher): keys are chosen by clients, who must not be able to aim for one bucket.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::keyspace::Entry;

struct Item {
    key: Key,
    entry: Entry,
}

/// Keys of up to this many bytes live inside their item: no allocation of their own, and
/// one cache miss less per lookup.
pub(crate) const INLINE_KEY: usize = 22;

enum Key {
    Inline { len: u8, data: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

impl Key {
    fn new(key: &[u8]) -> Key {
        if key.len() <= INLINE_KEY {
            let mut data = [0u8; INLINE_KEY];
            data[..key.len()].copy_from_slice(key);
            Key::Inline { len: key.len() as u8, data }
        } else {
            Key::Heap(key.into())
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, data } => &data[..*len as usize],
            Key::Heap(b) => b,
        }
    }
}

#[derive(Default)]
pub struct SlotTable {
    table: HashTable<Box<Item>>,
}

pub fn hash(hasher: &RandomState, key: &[u8]) -> u64 {
    hasher.hash_one(key)
}

impl SlotTable {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn get(&self, h: u64, key: &[u8]) -> Option<&Entry> {
        self.table.find(h, |it| it.key.bytes() == key).map(|it| &it.entry)
    }

    pub fn get_mut(&mut self, h: u64, key: &[u8]) -> Option<&mut Entry> {
        self.table.find_mut(h, |it| it.key.bytes() == key).map(|it| &mut it.entry)
    }

    pub fn contains(&self, h: u64, key: &[u8]) -> bool {
        self.get(h, key).is_some()
    }

    /// Inserts or replaces (keeping the stored key and allocation); returns the old entry.
    pub fn insert(&mut self, hasher: &RandomState, h: u64, key: &[u8], entry: Entry) -> Option<Entry> {
        if let Some(it) = self.table.find_mut(h, |it| it.key.bytes() == key) {
            return Some(std::mem::replace(&mut it.entry, entry));
        }
        let item = Box::new(Item { key: Key::new(key), entry });
        self.table.insert_unique(h, item, |it| hash(hasher, it.key.bytes()));
        None
    }

    pub fn remove(&mut self, h: u64, key: &[u8]) -> Option<Entry> {
        let found = self.table.find_entry(h, |it| it.key.bytes() == key).ok()?;
        let (item, _) = found.remove();
        Some(item.entry)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.table.iter().map(|it| (it.key.bytes(), &it.entry))
    }

    /// The first step of a lookup of `h` alone: its bucket's control bytes and pointer are
    /// read, the item it points to is not (see [`Candidate`]).
    pub fn candidate(&self, h: u64) -> Option<Candidate<'_>> {
        self.table.iter_hash(h).next().map(|it| Candidate(it))
    }
}

/// The item a lookup would compare its key with first (almost always the key's own item,
/// if the key is there), found but not yet read: [`Keyspace::warm`] takes each step of many
/// lookups before the next step of any, so their cache misses overlap.
///
/// [`Keyspace::warm`]: crate::keyspace::Keyspace::warm
pub struct Candidate<'a>(&'a Item);

impl<'a> Candidate<'a> {
    /// Reads the item: its key (the bytes themselves when inline) and its entry.
    pub fn entry(&self) -> (&'a [u8], &'a Entry) {
        (self.0.key.bytes(), &self.0.entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;
    use bytes::Bytes;

    #[test]
    fn a_map_with_one_pointer_per_bucket() {
        assert_eq!(std::mem::size_of::<Box<Item>>(), 8);
        // Entry and a short key share one allocation that the allocator rounds to 96 bytes
        // (a size class of mimalloc's, and glibc's chunk size).
        assert!(std::mem::size_of::<Item>() <= 88, "{}", std::mem::size_of::<Item>());
        let hasher = RandomState::new();
        let mut t = SlotTable::default();
        let e = |v: &'static str| Entry::new(Value::Str(crate::strval::Str::from(Bytes::from_static(v.as_bytes()))));
        for i in 0..1000 {
            let k = format!("k{i}");
            assert!(t.insert(&hasher, hash(&hasher, k.as_bytes()), k.as_bytes(), e("a")).is_none());
        }
        let h = hash(&hasher, b"k7");
        assert_eq!(t.insert(&hasher, h, b"k7", e("b")).map(|o| o.value), Some(e("a").value));
        assert_eq!(t.get(h, b"k7").map(|o| o.value.clone()), Some(e("b").value));
        assert!(t.remove(h, b"k7").is_some() && !t.contains(h, b"k7") && t.remove(h, b"k7").is_none());
        assert_eq!((t.len(), t.iter().count()), (999, 999));
        // Keys on both sides of the inline length, the empty key, and one longer key that
        // starts like a short one.
        for k in ["", "a", &"x".repeat(INLINE_KEY), &"x".repeat(INLINE_KEY + 1), &"x".repeat(300)] {
            let h = hash(&hasher, k.as_bytes());
            assert!(t.insert(&hasher, h, k.as_bytes(), e("v")).is_none(), "{}", k.len());
            assert!(t.get(h, k.as_bytes()).is_some(), "{}", k.len());
        }
        assert!(t.iter().any(|(k, _)| k.len() == 300) && t.iter().any(|(k, _)| k.is_empty()));
        assert!(t.get(hash(&hasher, b"xx"), b"xx").is_none());
    }

    #[test]
    fn a_lookups_first_candidate_is_almost_always_its_own_key() {
        let hasher = RandomState::new();
        let mut t = SlotTable::default();
        assert!(t.candidate(hash(&hasher, b"k1")).is_none(), "an empty table has none");
        let keys: Vec<String> = (0..1000).map(|i| format!("key:{i}")).collect();
        for k in &keys {
            let v = Value::Str(crate::strval::Str::from(Bytes::copy_from_slice(k.as_bytes())));
            t.insert(&hasher, hash(&hasher, k.as_bytes()), k.as_bytes(), Entry::new(v));
        }
        // Another key with the same 7-bit tag may come first in the probe order (~3 % of keys).
        let own = keys
            .iter()
            .filter(|k| {
                let c = t.candidate(hash(&hasher, k.as_bytes()));
                c.is_some_and(|c| {
                    c.entry().0 == k.as_bytes()
                        && matches!(&c.entry().1.value, Value::Str(s) if s.as_slice() == k.as_bytes())
                })
            })
            .count();
        assert!(own >= 900, "{own} of 1000");
    }
}
